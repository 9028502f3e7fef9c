// AVX2 + F16C array conversions (compiled with -mavx2 -mfma -mf16c).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/matmul_internal.h"

namespace t5g::kern::avx2 {
namespace {

#include "kernels/convert_scalar.inl"

// 8 fp32 -> bf16 bit patterns (RNE, NaN quieted) in the low 16 bits of each 32-bit lane.
inline __m256i to_bf16_lanes(__m256i u) {
  const __m256i isnan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
  const __m256i hi = _mm256_srli_epi32(u, 16);
  const __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), _mm256_and_si256(hi, _mm256_set1_epi32(1))));
  return _mm256_blendv_epi8(_mm256_srli_epi32(r, 16), _mm256_or_si256(hi, _mm256_set1_epi32(0x40)), isnan);
}

inline __m256 f16x8_to_f32(__m128i h) {
  const __m256 r = _mm256_cvtph_ps(h);
  const __m256i hx = _mm256_cvtepu16_epi32(h);
  const __m256i isnan = _mm256_cmpgt_epi32(_mm256_and_si256(hx, _mm256_set1_epi32(0x7fff)), _mm256_set1_epi32(0x7c00));
  if (_mm256_testz_si256(isnan, isnan)) return r;
  const __m256i nan = _mm256_or_si256(
      _mm256_or_si256(_mm256_slli_epi32(_mm256_and_si256(hx, _mm256_set1_epi32(0x8000)), 16), _mm256_set1_epi32(0x7f800000)),
      _mm256_slli_epi32(_mm256_and_si256(hx, _mm256_set1_epi32(0x3ff)), 13));
  return _mm256_blendv_ps(r, _mm256_castsi256_ps(nan), _mm256_castsi256_ps(isnan));
}

}  // namespace

void bf16_to_f32(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    const __m256i a = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(h)), 16);
    const __m256i b = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(h, 1)), 16);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), a);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i + 8), b);
  }
  for (; i < n; ++i) dst[i] = cs_bf16_to_f32(src[i]);
}

void f16_to_f32(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, f16x8_to_f32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i))));
  for (; i < n; ++i) dst[i] = cs_f16_to_f32(src[i]);
}

void f32_to_bf16(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i a = to_bf16_lanes(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i)));
    const __m256i b = to_bf16_lanes(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i + 8)));
    const __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(a, b), 0xD8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), p);
  }
  for (; i < n; ++i) dst[i] = cs_f32_to_bf16(src[i]);
}

void round_to_bf16_inplace(float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i h = to_bf16_lanes(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(x + i), _mm256_slli_epi32(h, 16));
  }
  for (; i < n; ++i) x[i] = cs_bf16_to_f32(cs_f32_to_bf16(x[i]));
}

}  // namespace t5g::kern::avx2
