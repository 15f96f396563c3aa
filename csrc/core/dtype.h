// Element types of the emulated NPU and their integer ranges.
//
// int4 values are held one per int8 byte in memory seen by users and kernels; for storage (model files,
// prepared weights) they are packed two per byte: element 2i in the low nibble (bits 0-3), element 2i+1
// in the high nibble (bits 4-7), two's complement, as ONNX's INT4 type. An odd count leaves the last
// high nibble zero.
#pragma once
#include <cstddef>
#include <cstdint>

namespace npuemu {

enum class DType : int { kUInt8, kInt8, kInt4, kInt16, kInt32, kInt64, kFloat16, kFloat32 };

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::kUInt8: return "uint8";
    case DType::kInt8: return "int8";
    case DType::kInt4: return "int4";
    case DType::kInt16: return "int16";
    case DType::kInt32: return "int32";
    case DType::kInt64: return "int64";
    case DType::kFloat16: return "float16";
    case DType::kFloat32: return "float32";
  }
  return "?";
}

// Bytes per element as held in memory (int4: one per byte, unpacked).
inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::kUInt8: case DType::kInt8: case DType::kInt4: return 1;
    case DType::kInt16: case DType::kFloat16: return 2;
    case DType::kInt32: case DType::kFloat32: return 4;
    case DType::kInt64: return 8;
  }
  return 0;
}

inline bool is_quantized_int(DType t) {
  return t == DType::kUInt8 || t == DType::kInt8 || t == DType::kInt4 || t == DType::kInt16;
}

inline int32_t dtype_min(DType t) {
  switch (t) {
    case DType::kUInt8: return 0;
    case DType::kInt8: return -128;
    case DType::kInt4: return -8;
    case DType::kInt16: return -32768;
    default: return INT32_MIN;
  }
}

inline int32_t dtype_max(DType t) {
  switch (t) {
    case DType::kUInt8: return 255;
    case DType::kInt8: return 127;
    case DType::kInt4: return 7;
    case DType::kInt16: return 32767;
    default: return INT32_MAX;
  }
}

// int4 nibble packing (see file comment).
inline void pack_int4(const int8_t* src, size_t n, uint8_t* dst) {
  for (size_t i = 0; i < n; i += 2) {
    const uint8_t lo = static_cast<uint8_t>(src[i]) & 0xF;
    const uint8_t hi = i + 1 < n ? (static_cast<uint8_t>(src[i + 1]) & 0xF) : 0;
    dst[i / 2] = static_cast<uint8_t>(lo | (hi << 4));
  }
}

inline void unpack_int4(const uint8_t* src, size_t n, int8_t* dst) {
  for (size_t i = 0; i < n; ++i) {
    const uint8_t nib = (src[i / 2] >> ((i & 1) * 4)) & 0xF;
    dst[i] = static_cast<int8_t>(static_cast<int8_t>(nib << 4) >> 4);  // sign-extend bit 3
  }
}

}  // namespace npuemu
