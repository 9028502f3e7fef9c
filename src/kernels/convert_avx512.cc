// AVX-512 array conversions (compiled with the AVX-512 flags; F + BW + VL + DQ used).
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/matmul_internal.h"

namespace t5g::kern::avx512 {
namespace {

#include "kernels/convert_scalar.inl"

// 16 fp32 -> bf16 bit patterns (RNE, NaN quieted) in the low 16 bits of each 32-bit lane. The same rounding
// as round_bf16_16 (bf16_avx512.h), kept apart: built on round_bf16_16 the array conversions ran ~20% slower
// (BM_Convert f32_to_bf16 / round_to_bf16_inplace, 1 Mi values: 64-70 -> 50-55 and 89-97 -> 69-76 GB/s).
inline __m512i to_bf16_lanes(__m512i u) {
  const __mmask16 isnan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)), _mm512_set1_epi32(0x7f800000));
  const __m512i hi = _mm512_srli_epi32(u, 16);
  const __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), _mm512_and_si512(hi, _mm512_set1_epi32(1))));
  return _mm512_mask_blend_epi32(isnan, _mm512_srli_epi32(r, 16), _mm512_or_si512(hi, _mm512_set1_epi32(0x40)));
}

inline __m512 f16x16_to_f32(__m256i h) {
  const __m512 r = _mm512_cvtph_ps(h);
  const __m512i hx = _mm512_cvtepu16_epi32(h);
  const __mmask16 isnan = _mm512_cmpgt_epi32_mask(_mm512_and_si512(hx, _mm512_set1_epi32(0x7fff)), _mm512_set1_epi32(0x7c00));
  if (isnan == 0) return r;
  const __m512i nan = _mm512_or_si512(
      _mm512_or_si512(_mm512_slli_epi32(_mm512_and_si512(hx, _mm512_set1_epi32(0x8000)), 16), _mm512_set1_epi32(0x7f800000)),
      _mm512_slli_epi32(_mm512_and_si512(hx, _mm512_set1_epi32(0x3ff)), 13));
  return _mm512_mask_blend_ps(isnan, r, _mm512_castsi512_ps(nan));
}

}  // namespace

void bf16_to_f32(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i));
    _mm512_storeu_si512(dst + i, _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  for (; i < n; ++i) dst[i] = cs_bf16_to_f32(src[i]);
}

void f16_to_f32(const uint16_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dst + i, f16x16_to_f32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i))));
  for (; i < n; ++i) dst[i] = cs_f16_to_f32(src[i]);
}

void f32_to_bf16(const float* src, uint16_t* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i h = to_bf16_lanes(_mm512_loadu_si512(src + i));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), _mm512_cvtepi32_epi16(h));
  }
  for (; i < n; ++i) dst[i] = cs_f32_to_bf16(src[i]);
}

void round_to_bf16_inplace(float* x, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512i h = to_bf16_lanes(_mm512_loadu_si512(x + i));
    _mm512_storeu_si512(x + i, _mm512_slli_epi32(h, 16));
  }
  for (; i < n; ++i) x[i] = cs_bf16_to_f32(cs_f32_to_bf16(x[i]));
}

}  // namespace t5g::kern::avx512
