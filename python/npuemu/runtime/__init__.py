"""npuemu's runtime side: the model file format (``modelfile``) and, later, the RKNN / RKNNLite facades."""
