"""The runtime of compiled models: the program format, the executor on the emulated NPU, the model file
and the numpy reference executor of the integer graph. Imports neither onnx nor the compiler (RKNNLite
uses it alone)."""
