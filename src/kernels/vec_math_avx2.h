// AVX2 + FMA vector math for the element-wise kernels: rounding to bf16/f16, exp, tanh and erfc on
// 8 fp32 lanes. Include only from translation units compiled with -mavx2 -mfma -mf16c (ops_avx2.cc,
// attention_avx2.cc); everything is in an anonymous namespace so no inline symbol compiled for
// AVX2 can be picked by the linker for baseline code.
//
// Accuracy (checked against double-precision libm in tests/kernels/vec_math_test.cc): exp and tanh
// within 2 ulp, erfc within ~4e-7 relative. The reference rounds these results to bf16 in
// reduced precision and compares fp32 to 1e-4, so libm's last-bit exactness is not needed.
#pragma once
#include <immintrin.h>

#include <cstdint>

namespace t5g::kern::avx2 {
namespace {

// --- rounding (bit-identical to util/bf16.h round_bf16 / round_f16) ------------------------------

inline __m256 round_bf16_v(__m256 x) {
  const __m256i u = _mm256_castps_si256(x);
  const __m256i isnan =
      _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)), _mm256_set1_epi32(0x7f800000));
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i r = _mm256_add_epi32(u, _mm256_add_epi32(_mm256_set1_epi32(0x7fff), lsb));
  // NaN: keep the top 16 bits, made quiet (as f32_to_bf16).
  const __m256i out = _mm256_blendv_epi8(r, _mm256_or_si256(u, _mm256_set1_epi32(0x00400000)), isnan);
  return _mm256_castsi256_ps(_mm256_and_si256(out, _mm256_set1_epi32(static_cast<int>(0xffff0000u))));
}

inline __m256 round_f16_v(__m256 x) {
  // F16C converts with round-to-nearest-even, subnormals and overflow to inf as f32_to_f16 does.
  return _mm256_cvtph_ps(_mm256_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
}

// Compile-time precision: 0 = fp32 (identity), 1 = bf16, 2 = f16 (Precision's order).
template <int P>
inline __m256 rnd(__m256 x) {
  if constexpr (P == 1) return round_bf16_v(x);
  else if constexpr (P == 2) return round_f16_v(x);
  else return x;
}

// --- exp ---------------------------------------------------------------------------------------

// n = round(x / ln 2) and e^r, r = x - n ln 2 (two-constant Cody-Waite, the degree-6 polynomial): the part
// every input takes.
inline __m256 exp_reduced_v(__m256 x, __m256& n) {
  n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  return _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.f)));
}

// exp(x) for every fp32 input: n = round(x / ln2), r = x - n ln2 (two-constant Cody-Waite), a degree-6
// polynomial for e^r on |r| <= ln2/2, then 2^n applied in two steps so results that are subnormal
// come out right. exp(-inf) = 0, exp(+inf) = inf, NaN propagates. (ops_avx512.cc's exp16 is this on
// 16 lanes, operation for operation: change both; test OpsAvx512.ExpSumAndScaleRoundSameBitsAsAvx2.)
inline __m256 exp_v(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.72283935546875f);  // largest x with a finite exp
  const __m256 lo = _mm256_set1_ps(-103.97208f);         // below: rounds to 0
  __m256 n;
  const __m256 p = exp_reduced_v(_mm256_min_ps(_mm256_max_ps(x, lo), hi), n);
  // 2^n = 2^n1 * 2^n2 with n1 = n >> 1: both factors are normal for n in [-150, 128].
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, _mm256_set1_epi32(127)), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, _mm256_set1_epi32(127)), 23));
  __m256 y = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
  y = _mm256_andnot_ps(_mm256_cmp_ps(x, lo, _CMP_LT_OQ), y);                               // -> 0
  y = _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));  // -> inf
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));                          // NaN
}

// exp_v for inputs in [0, 88] (tanh's exponent): no clamps or special values, and p · 2^n in one multiply,
// exact as exp_v's two are (every result normal). Bitwise exp_v there.
inline __m256 exp_nonneg_v(__m256 x) {
  __m256 n;
  const __m256 p = exp_reduced_v(x, n);
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

// --- tanh --------------------------------------------------------------------------------------

// tanh: an odd polynomial for |x| < 0.625, 1 - 2 / (e^{2|x|} + 1) above (no cancellation there:
// tanh >= 0.55), ±1 beyond 9.1 where fp32 tanh is 1. NaN propagates. (ops_avx512.cc's tanh16 and erfc16
// are tanh_v and erfc_v on 16 lanes, operation for operation: change both; test
// OpsAvx512.ElementwiseSameBitsAsAvx2.)
inline __m256 tanh_v(__m256 x) {
  const __m256 sign = _mm256_and_ps(x, _mm256_set1_ps(-0.f));
  const __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.f), x);
  // Small |x|.
  const __m256 z = _mm256_mul_ps(x, x);
  __m256 p = _mm256_set1_ps(-5.70498872745e-3f);
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(2.06390887954e-2f));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-5.37397155531e-2f));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(1.33314422036e-1f));
  p = _mm256_fmadd_ps(p, z, _mm256_set1_ps(-3.33332819422e-1f));
  const __m256 small = _mm256_fmadd_ps(_mm256_mul_ps(p, z), x, x);
  // Large |x| (clamped so e stays finite; tanh(9.1) rounds to 1 in fp32).
  // (min takes its second operand for a NaN: the exponent lies in [0, 18.2].)
  const __m256 axc = _mm256_min_ps(ax, _mm256_set1_ps(9.1f));
  const __m256 e = exp_nonneg_v(_mm256_add_ps(axc, axc));
  const __m256 big = _mm256_sub_ps(_mm256_set1_ps(1.f),
                                   _mm256_div_ps(_mm256_set1_ps(2.f), _mm256_add_ps(e, _mm256_set1_ps(1.f))));
  const __m256 large = _mm256_or_ps(_mm256_blendv_ps(big, _mm256_set1_ps(1.f), _mm256_cmp_ps(ax, _mm256_set1_ps(9.1f), _CMP_GE_OQ)), sign);
  const __m256 y = _mm256_blendv_ps(small, large, _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_GE_OQ));
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

// --- erfc --------------------------------------------------------------------------------------

// erfc(x) = t * exp(-x^2 + P(t)), t = 1 / (1 + |x|/2), P a degree-9 Chebyshev fit (Press et al.,
// "erfcc", relative error < 1.2e-7 for all x); erfc(-x) = 2 - erfc(x). Used by the erf GELU as
// 1 + erf(x) = erfc(-x), which is what needs to be accurate (relative) there.
inline __m256 erfc_v(__m256 x) {
  const __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.f), x);
  const __m256 t = _mm256_div_ps(_mm256_set1_ps(1.f), _mm256_fmadd_ps(ax, _mm256_set1_ps(0.5f), _mm256_set1_ps(1.f)));
  __m256 p = _mm256_set1_ps(0.17087277f);
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.82215223f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.48851587f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.13520398f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.27886807f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.18628806f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.09678418f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.37409196f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.00002368f));
  p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.26551223f));
  const __m256 r = _mm256_mul_ps(t, exp_v(_mm256_fnmadd_ps(ax, ax, p)));
  const __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
  const __m256 y = _mm256_blendv_ps(r, _mm256_sub_ps(_mm256_set1_ps(2.f), r), neg);
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

// --- helpers ------------------------------------------------------------------------------------

// Lanes [0, n) set, n in [0, 8]: for the masked loads/stores of row tails.
inline __m256i tail_mask(int64_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

inline float hsum_v(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

inline float hmax_v(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

}  // namespace
}  // namespace t5g::kern::avx2
