// Scalar conversions between fp32 and the 16-bit float formats (bf16, IEEE fp16), with
// round-to-nearest-even as PyTorch does. Vector versions live in kernels/.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace t5g {

inline float bf16_to_f32(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest, ties to even
  return static_cast<uint16_t>(u >> 16);
}

inline float round_bf16(float f) { return bf16_to_f32(f32_to_bf16(f)); }

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while ((man & 0x400u) == 0) {
        man <<= 1;
        --exp;
      }
      man &= 0x3ffu;
      u = sign | (exp << 23) | (man << 13);
    }
  } else if (exp == 0x1f) {
    u = sign | 0x7f800000u | (man << 13);
  } else {
    u = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t f32_to_f16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t au = u & 0x7fffffffu;
  if (au > 0x7f800000u) return sign | 0x7e00u;  // NaN
  if (au >= 0x477ff000u) return sign | 0x7c00u;  // overflow (incl. rounding up past max) -> inf
  if (au < 0x38800000u) {  // result is subnormal or zero: scale so that rint does the rounding (RNE)
    float af;
    std::memcpy(&af, &au, 4);
    return sign | static_cast<uint16_t>(std::nearbyint(af * 16777216.0f));  // 2^24 = 1 / f16 min subnormal
  }
  uint32_t r = au + 0xfffu + ((au >> 13) & 1u);  // round mantissa to 10 bits, ties to even
  return sign | static_cast<uint16_t>(((r >> 13) - ((127 - 15) << 10)) & 0x7fffu);
}

inline float round_f16(float f) { return f16_to_f32(f32_to_f16(f)); }

}  // namespace t5g
