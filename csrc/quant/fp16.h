// IEEE binary16 <-> binary32 conversions. Exactly one implementation of each, bit-identical to the x86
// F16C instructions (vcvtph2ps, vcvtps2ph with imm8 = 0): fp16 -> fp32 is exact; fp32 -> fp16 rounds to
// nearest, ties to even, overflows to +-inf, keeps subnormals, and turns a NaN into a quiet NaN that
// keeps the top 9 payload bits and the sign (sign | 0x7E00 | mantissa >> 13).
#pragma once
#include <cstdint>
#include <cstring>

namespace npuemu {

inline uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float bits_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  if (exp == 0x1F) return bits_f32(sign | 0x7F800000u | (mant << 13));  // inf / nan (payload kept)
  if (exp != 0) return bits_f32(sign | ((exp + 112) << 23) | (mant << 13));
  if (mant == 0) return bits_f32(sign);
  // subnormal: normalise
  int e = -1;
  do {
    mant <<= 1;
    ++e;
  } while ((mant & 0x400) == 0);
  return bits_f32(sign | static_cast<uint32_t>(112 - e) << 23 | ((mant & 0x3FF) << 13));
}

inline uint16_t fp32_to_fp16(float f) {
  const uint32_t u = f32_bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
  const uint32_t abs = u & 0x7FFFFFFFu;
  if (abs >= 0x7F800000u) {  // inf or nan
    if (abs == 0x7F800000u) return sign | 0x7C00;
    return static_cast<uint16_t>(sign | 0x7E00 | ((abs >> 13) & 0x3FF));
  }
  if (abs >= 0x477FF000u) return sign | 0x7C00;  // rounds to >= 65520 -> inf
  if (abs >= 0x38800000u) {                     // normal fp16 range (>= 2^-14)
    const uint32_t mant_round = abs + 0xFFF + ((abs >> 13) & 1);  // round to nearest even at bit 13
    return static_cast<uint16_t>(sign | ((mant_round - 0x38000000u) >> 13));
  }
  if (abs < 0x33000000u) return sign;  // < 2^-25: rounds to zero (2^-25 itself is a tie -> even 0)
  // subnormal fp16: value = m * 2^-24 with m in [0, 1024)
  const uint32_t exp = abs >> 23;                     // biased fp32 exponent, 102..112
  const uint32_t mant = (abs & 0x7FFFFFu) | 0x800000u;  // 24-bit significand
  const uint32_t shift = 126 - exp;                   // bits to drop so that the unit is 2^-24
  const uint32_t q = mant >> shift;
  const uint32_t rem = mant & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  const uint32_t r = q + ((rem > half || (rem == half && (q & 1))) ? 1 : 0);
  return static_cast<uint16_t>(sign | r);
}

// Round a float to the nearest fp16 value (returned as float).
inline float round_to_fp16(float f) { return fp16_to_fp32(fp32_to_fp16(f)); }

}  // namespace npuemu
