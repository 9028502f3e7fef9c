// AVX-512 versions of the attention softmax's per-row kernels that dominate a long row's element-wise
// time (a vision layer exponentiates 16 x 4096 x 4096 scores): finish_scores_row, exp_sum_row and
// scale_round_row (and scale_round_row_bf16, its bf16 results as the P·V operand); and of
// the decode step's Q·K and P·V rows (dot_rows_heads, axpy_rows_heads). Each computes bitwise what the AVX2 kernel (ops_avx2.cc)
// computes: the same operations lane for lane, and exp_sum_row's sum in the AVX2 kernel's order (its two
// 8-lane accumulators are the halves of one zmm).
// Compiled with the AVX-512 flags and -ffp-contract=off (as ops_avx2.cc); called when active_isa() is
// kAvx512 (attention.cc).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "kernels/bf16_avx512.h"
#include "kernels/ops_internal.h"
#include "kernels/vec_math_avx2.h"

namespace t5g::kern::avx512 {
namespace {

constexpr float kNegInf = -__builtin_inff();

// The first `left` of 16 lanes (all from 16, none from 0).
inline __mmask16 lanes(int64_t left) {
  return static_cast<__mmask16>(left >= 16 ? 0xffff : left <= 0 ? 0 : (1u << left) - 1u);
}

// n = round(x / ln 2) and exp(x - n ln 2) (two-constant Cody-Waite, a degree-6 polynomial): the part of
// avx2::exp_v every input takes, on 16 lanes with the same constants and operations in the same order.
inline __m512 exp16_reduced(__m512 x, __m512& n) {
  n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                           _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  return _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.f)));
}

// avx2::exp_v on 16 lanes: the input clamped, the reduced exp times 2^n in two steps (subnormal results), and
// the special values.
inline __m512 exp16(__m512 x) {
  const __m512 hi = _mm512_set1_ps(88.72283935546875f);
  const __m512 lo = _mm512_set1_ps(-103.97208f);
  __m512 n;
  const __m512 p = exp16_reduced(_mm512_min_ps(_mm512_max_ps(x, lo), hi), n);
  const __m512i ni = _mm512_cvtps_epi32(n);
  const __m512i n1 = _mm512_srai_epi32(ni, 1);
  const __m512i n2 = _mm512_sub_epi32(ni, n1);
  const __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, _mm512_set1_epi32(127)), 23));
  const __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, _mm512_set1_epi32(127)), 23));
  __m512 y = _mm512_mul_ps(_mm512_mul_ps(p, s1), s2);
  y = _mm512_maskz_mov_ps(static_cast<__mmask16>(~_mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ)), y);  // -> 0
  y = _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ), _mm512_set1_ps(__builtin_inff()));
  return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);  // NaN
}

// exp16 on lanes known to lie in [kExpInRangeLo, kExpInRangeHi] (every softmax exponent but the far tail):
// no clamps or special values, and p * 2^n in one vscalefps. Bitwise exp16 there: every result is normal
// (>= 1.4 * 2^-126), so p * 2^n1 * 2^n2 and p * 2^n are both exact. The FMA pipes run 12 operations per
// vector instead of 16, and the chain is shorter (a vision layer's softmax: 7.6 against 12.6 cycles per
// vector on Zen 5).
constexpr float kExpInRangeLo = -87.f, kExpInRangeHi = 88.f;
inline __m512 exp16_in_range(__m512 x) {
  __m512 n;
  const __m512 p = exp16_reduced(x, n);
  return _mm512_scalef_ps(p, n);
}

// Lanes of x (at least one of them) outside the range of exp16_in_range (NaN included).
inline bool out_of_exp_range(__m512 x) {
  return (_mm512_cmp_ps_mask(x, _mm512_set1_ps(kExpInRangeLo), _CMP_GE_OQ) &
          _mm512_cmp_ps_mask(x, _mm512_set1_ps(kExpInRangeHi), _CMP_LE_OQ)) != 0xffff;
}

// exp16 of U vectors side by side (their chains interleaved: one vector's chain alone leaves the FMA pipes
// waiting on latency), on exp16_in_range when all of them allow it.
constexpr int kExpGroup = 4;  // vectors per exp16_group in the row kernels
template <int U>
inline void exp16_group(__m512 (&x)[U]) {
  bool out = false;
  for (int u = 0; u < U; ++u) out |= out_of_exp_range(x[u]);
  if (!out)
    for (int u = 0; u < U; ++u) x[u] = exp16_in_range(x[u]);
  else
    for (int u = 0; u < U; ++u) x[u] = exp16(x[u]);
}

// avx2::round_f16_v / rnd<P> on 16 lanes (round to nearest even; NaN kept, made quiet); bf16: bf16_avx512.h.
template <int P>
inline __m512 rnd16(__m512 x) {
  if constexpr (P == 1) return round_bf16_16(x);
  else if constexpr (P == 2) return _mm512_cvtph_ps(_mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  else return x;
}

// rnd16<P> for lanes that hold no NaN (fp32 and bf16): round_bf16_16 without its NaN select, 5 operations
// instead of 8.
template <int P>
inline __m512 rnd16_no_nan(__m512 x) {
  static_assert(P == 0 || P == 1);
  if constexpr (P == 1) {
    const __m512i u = _mm512_castps_si512(x);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i r = _mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb);
    return _mm512_castsi512_ps(_mm512_and_si512(r, _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
  } else {
    return x;
  }
}

// avx2::tanh_v on 16 lanes, operation for operation.
inline __m512 tanh16(__m512 x) {
  const __m512 sign = _mm512_and_ps(x, _mm512_set1_ps(-0.f));
  const __m512 ax = _mm512_andnot_ps(_mm512_set1_ps(-0.f), x);
  const __m512 z = _mm512_mul_ps(x, x);
  __m512 p = _mm512_set1_ps(-5.70498872745e-3f);
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(2.06390887954e-2f));
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-5.37397155531e-2f));
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(1.33314422036e-1f));
  p = _mm512_fmadd_ps(p, z, _mm512_set1_ps(-3.33332819422e-1f));
  const __m512 small = _mm512_fmadd_ps(_mm512_mul_ps(p, z), x, x);
  // min takes its second operand for a NaN: the exponent lies in [0, 18.2], exp16_in_range's range.
  const __m512 axc = _mm512_min_ps(ax, _mm512_set1_ps(9.1f));
  const __m512 e = exp16_in_range(_mm512_add_ps(axc, axc));
  const __m512 big = _mm512_sub_ps(_mm512_set1_ps(1.f), _mm512_div_ps(_mm512_set1_ps(2.f), _mm512_add_ps(e, _mm512_set1_ps(1.f))));
  const __m512 large = _mm512_or_ps(
      _mm512_mask_mov_ps(big, _mm512_cmp_ps_mask(ax, _mm512_set1_ps(9.1f), _CMP_GE_OQ), _mm512_set1_ps(1.f)), sign);
  const __m512 y = _mm512_mask_mov_ps(small, _mm512_cmp_ps_mask(ax, _mm512_set1_ps(0.625f), _CMP_GE_OQ), large);
  return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

// avx2::erfc_v on 16 lanes, operation for operation.
inline __m512 erfc16(__m512 x) {
  const __m512 ax = _mm512_andnot_ps(_mm512_set1_ps(-0.f), x);
  const __m512 t = _mm512_div_ps(_mm512_set1_ps(1.f), _mm512_fmadd_ps(ax, _mm512_set1_ps(0.5f), _mm512_set1_ps(1.f)));
  __m512 p = _mm512_set1_ps(0.17087277f);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.82215223f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.48851587f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.13520398f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.27886807f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.18628806f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.09678418f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.37409196f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.00002368f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.26551223f));
  const __m512 r = _mm512_mul_ps(t, exp16(_mm512_fnmadd_ps(ax, ax, p)));
  const __m512 y = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ),
                                      _mm512_sub_ps(_mm512_set1_ps(2.f), r));
  return _mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q), x);
}

// avx2::gelu_v on 16 lanes (the tanh form when T).
template <bool T>
__attribute__((always_inline)) inline __m512 gelu16(__m512 z) {
  const __m512 half_z = _mm512_mul_ps(_mm512_set1_ps(0.5f), z);
  if constexpr (T) {
    const __m512 c = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.044715f), z), z), z);
    const __m512 u = _mm512_mul_ps(_mm512_set1_ps(0.7978845608028654f), _mm512_add_ps(z, c));
    return _mm512_mul_ps(half_z, _mm512_add_ps(_mm512_set1_ps(1.f), tanh16(u)));
  }
  const __m512 u = _mm512_mul_ps(z, _mm512_set1_ps(0.7071067811865476f));
  return _mm512_mul_ps(half_z, erfc16(_mm512_xor_ps(u, _mm512_set1_ps(-0.f))));
}

// f(Ic<0>), ..., f(Ic<N-1>) written out: the GELU groups' chains as straight-line code. As a loop over
// an array the compiler kept one vector's chain at a time, its division's latency exposed, and the
// array on the stack.
template <int N, class F>
__attribute__((always_inline)) inline void unrolled(F&& f) {
  [&]<int... U>(std::integer_sequence<int, U...>) { (f(std::integral_constant<int, U>{}), ...); }(
      std::make_integer_sequence<int, N>{});
}

// Calls f.template operator()<P, T>() for the precision p and the GELU form.
template <class F>
inline void with_precision_and_form(Precision p, bool tanh_approx, F&& f) {
  with_precision(p, [&]<int P>() {
    if (tanh_approx) f.template operator()<P, true>();
    else f.template operator()<P, false>();
  });
}

}  // namespace

// The element-wise ops on whole blocks of 16, the rest (< 16 values) by the AVX2 kernel: bitwise its results.
// GELU takes groups of kGeluGroup blocks, their chains side by side.
constexpr int kGeluGroup = 4;
void round_act(float* x, int64_t n, Precision p) {
  int64_t i = 0;
  with_precision(p, [&]<int P>() {
    if constexpr (P != 0)
      for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, rnd16<P>(_mm512_loadu_ps(x + i)));
    else i = n;
  });
  if (i < n) avx2::round_act(x + i, n - i, p);
}

void gelu_mul(float* gate, const float* up, int64_t n, bool tanh_approx, Precision p) {
  int64_t i = 0;
  with_precision_and_form(p, tanh_approx, [&]<int P, bool T>() {
    for (; i + 16 * kGeluGroup <= n; i += 16 * kGeluGroup) {  // (chains side by side, as exp16_group)
      __m512 g[kGeluGroup];
      unrolled<kGeluGroup>([&](auto u) { g[u] = rnd16<P>(_mm512_loadu_ps(gate + i + 16 * u)); });
      unrolled<kGeluGroup>([&](auto u) { g[u] = rnd16<P>(gelu16<T>(g[u])); });
      unrolled<kGeluGroup>([&](auto u) {
        _mm512_storeu_ps(gate + i + 16 * u, rnd16<P>(_mm512_mul_ps(g[u], rnd16<P>(_mm512_loadu_ps(up + i + 16 * u)))));
      });
    }
    for (; i + 16 <= n; i += 16) {
      const __m512 g = rnd16<P>(gelu16<T>(rnd16<P>(_mm512_loadu_ps(gate + i))));
      _mm512_storeu_ps(gate + i, rnd16<P>(_mm512_mul_ps(g, rnd16<P>(_mm512_loadu_ps(up + i)))));
    }
  });
  if (i < n) avx2::gelu_mul(gate + i, up + i, n - i, tanh_approx, p);
}

void gelu(float* x, int64_t n, bool tanh_approx, Precision p) {
  int64_t i = 0;
  with_precision_and_form(p, tanh_approx, [&]<int P, bool T>() {
    for (; i + 16 * kGeluGroup <= n; i += 16 * kGeluGroup) {
      __m512 g[kGeluGroup];
      unrolled<kGeluGroup>([&](auto u) { g[u] = gelu16<T>(_mm512_loadu_ps(x + i + 16 * u)); });
      unrolled<kGeluGroup>([&](auto u) { _mm512_storeu_ps(x + i + 16 * u, rnd16<P>(g[u])); });
    }
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(x + i, rnd16<P>(gelu16<T>(_mm512_loadu_ps(x + i))));
  });
  if (i < n) avx2::gelu(x + i, n - i, tanh_approx, p);
}

void add(const float* a, const float* b, float* y, int64_t n, Precision p) {
  int64_t i = 0;
  with_precision(p, [&]<int P>() {
    for (; i + 16 <= n; i += 16)
      _mm512_storeu_ps(y + i, rnd16<P>(_mm512_add_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i))));
  });
  if (i < n) avx2::add(a + i, b + i, y + i, n - i, p);
}

namespace {
// avx2::softcap_v on 16 lanes, operation for operation.
template <int P>
inline __m512 softcap16(__m512 x, float cap) {
  const __m512 c = _mm512_set1_ps(cap);
  return rnd16<P>(_mm512_mul_ps(rnd16<P>(tanh16(rnd16<P>(_mm512_div_ps(x, c)))), c));
}
}  // namespace

// Each stored score is the AVX2 kernel's, bitwise; the maximum is the same value (max is exact in any
// order; only the sign of a zero maximum, which exp(s - max) does not see, may differ, and for a row
// holding a NaN, whose sum and outputs are NaN whatever maximum it returns, as in the AVX2 kernel).
float finish_scores_row(float* s, int64_t n, int64_t lo, int64_t hi, float scale, const float* cap, Precision p) {
  clamp_visible_keys(n, lo, hi);
  mask_invisible_keys(s, n, lo, hi);
  __m512 mx = _mm512_set1_ps(kNegInf);
  const __m512 vscale = _mm512_set1_ps(scale);
  float* r = s + lo;
  const int64_t m = hi - lo;
  with_precision(p, [&]<int P>() {
    for (int64_t i = 0; i < m; i += 16) {
      const __mmask16 k = lanes(m - i);
      __m512 x = rnd16<P>(_mm512_mul_ps(rnd16<P>(_mm512_maskz_loadu_ps(k, r + i)), vscale));
      if (cap != nullptr) x = softcap16<P>(x, *cap);
      _mm512_mask_storeu_ps(r + i, k, x);
      mx = _mm512_mask_max_ps(mx, k, mx, x);
    }
  });
  return _mm512_reduce_max_ps(mx);
}

float exp_sum_row(float* s, int64_t n, float max) {
  if (max == kNegInf) {
    for (int64_t i = 0; i < n; ++i) s[i] = 0.f;
    return 0.f;
  }
  const __m512 vmax = _mm512_set1_ps(max);
  __m512 acc = _mm512_setzero_ps();  // lanes 0-7: the AVX2 kernel's acc0 (even blocks of 8), 8-15: acc1
  int64_t i = 0;
  for (; i + 16 * kExpGroup <= n; i += 16 * kExpGroup) {
    __m512 e[kExpGroup];
    for (int u = 0; u < kExpGroup; ++u) e[u] = _mm512_sub_ps(_mm512_loadu_ps(s + i + 16 * u), vmax);
    exp16_group(e);
    for (int u = 0; u < kExpGroup; ++u) {
      _mm512_storeu_ps(s + i + 16 * u, e[u]);
      acc = _mm512_add_ps(acc, e[u]);
    }
  }
  for (; i + 16 <= n; i += 16) {
    const __m512 e = exp16(_mm512_sub_ps(_mm512_loadu_ps(s + i), vmax));
    _mm512_storeu_ps(s + i, e);
    acc = _mm512_add_ps(acc, e);
  }
  // The rest as the AVX2 kernel: blocks of 8 into acc0, the last one masked (its other lanes zero).
  __m256 acc0 = _mm512_castps512_ps256(acc);
  const __m256 acc1 = _mm512_extractf32x8_ps(acc, 1);
  const __m256 vmax8 = _mm256_set1_ps(max);
  for (; i < n; i += 8) {
    const int k = static_cast<int>(n - i < 8 ? n - i : 8);
    const __mmask8 m = static_cast<__mmask8>((1u << k) - 1u);
    const __m256 e = _mm256_maskz_mov_ps(m, avx2::exp_v(_mm256_sub_ps(_mm256_maskz_loadu_ps(m, s + i), vmax8)));
    _mm256_mask_storeu_ps(s + i, m, e);
    acc0 = _mm256_add_ps(acc0, e);
  }
  return avx2::hsum_v(_mm256_add_ps(acc0, acc1));
}

// finish_scores_row then exp_sum_row, in one pass over the row where that gives the same bits: no softcap,
// scale > 0, fp32 or bf16, no NaN among the visible scores. Rounding and a positive scale never decrease, so
// the finished row's maximum is the finished raw maximum, known before any score is finished; each score is
// then finished and exponentiated in registers (load, store once instead of twice; a vision layer's softmax
// rows 35% faster). The sum adds the same blocks in the same order as exp_sum_row.
float finish_exp_sum_row(float* s, int64_t n, int64_t lo, int64_t hi, float scale, const float* cap, Precision p) {
  const auto two_passes = [&] { return exp_sum_row(s, n, finish_scores_row(s, n, lo, hi, scale, cap, p)); };
  if (cap != nullptr || !(scale > 0.f) || p == Precision::kF16) return two_passes();
  clamp_visible_keys(n, lo, hi);
  __m512 mx = _mm512_set1_ps(kNegInf);
  __mmask16 nan = 0;
  for (int64_t i = lo; i < hi; i += 16) {
    const __mmask16 k = lanes(hi - i);
    const __m512 x = _mm512_maskz_loadu_ps(k, s + i);
    mx = _mm512_mask_max_ps(mx, k, mx, x);
    nan |= _mm512_mask_fpclass_ps_mask(k, x, 0x81);  // 0x81: quiet or signalling NaN
  }
  const float raw_max = _mm512_reduce_max_ps(mx);
  if (nan != 0 || raw_max == kNegInf) return two_passes();
  const __m512 vscale = _mm512_set1_ps(scale);
  float sum = 0.f;
  with_precision(p, [&]<int P>() {
    if constexpr (P == 2) return;
    else {
      const auto finish = [&](__m512 x) { return rnd16<P>(_mm512_mul_ps(rnd16<P>(x), vscale)); };
      const __m512 vmax = _mm512_set1_ps(_mm512_cvtss_f32(finish(_mm512_set1_ps(raw_max))));
      // exp(finish(s) - max) of the visible lanes in [i, i + 16) that are also below `end`; zero elsewhere.
      const auto block = [&](int64_t i, int64_t end) {
        const __mmask16 vis = static_cast<__mmask16>(lanes(hi - i) & ~lanes(lo - i) & lanes(end - i));
        const __m512 e = exp16(_mm512_sub_ps(finish(_mm512_maskz_loadu_ps(vis, s + i)), vmax));
        return _mm512_maskz_mov_ps(vis, e);
      };
      __m512 acc = _mm512_setzero_ps();  // as exp_sum_row's
      int64_t i = 0;
      for (; i + 16 * kExpGroup <= n; i += 16 * kExpGroup) {
        __m512 e[kExpGroup];
        if (i >= lo && i + 16 * kExpGroup <= hi) {  // all visible, no NaN
          for (int u = 0; u < kExpGroup; ++u) {
            const __m512 x = _mm512_loadu_ps(s + i + 16 * u);
            e[u] = _mm512_sub_ps(rnd16_no_nan<P>(_mm512_mul_ps(rnd16_no_nan<P>(x), vscale)), vmax);
          }
          exp16_group(e);
        } else {
          for (int u = 0; u < kExpGroup; ++u) e[u] = block(i + 16 * u, n);
        }
        for (int u = 0; u < kExpGroup; ++u) {
          _mm512_storeu_ps(s + i + 16 * u, e[u]);
          acc = _mm512_add_ps(acc, e[u]);
        }
      }
      for (; i + 16 <= n; i += 16) {
        const __m512 e = block(i, n);
        _mm512_storeu_ps(s + i, e);
        acc = _mm512_add_ps(acc, e);
      }
      // The rest in blocks of 8 into the low half, as exp_sum_row (exp16's lanes are exp_v's).
      __m256 acc0 = _mm512_castps512_ps256(acc);
      const __m256 acc1 = _mm512_extractf32x8_ps(acc, 1);
      for (; i < n; i += 8) {
        const int64_t end = n - i < 8 ? n : i + 8;
        const __m256 e = _mm512_castps512_ps256(block(i, end));
        _mm256_mask_storeu_ps(s + i, static_cast<__mmask8>(lanes(end - i)), e);
        acc0 = _mm256_add_ps(acc0, e);
      }
      sum = avx2::hsum_v(_mm256_add_ps(acc0, acc1));
    }
  });
  return sum;
}

void scale_round_row(float* s, int64_t n, float f, Precision p) {
  const __m512 vf = _mm512_set1_ps(f);
  int64_t i = 0;
  if (p == Precision::kBF16) {
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(s + i, round_bf16_16(_mm512_mul_ps(_mm512_loadu_ps(s + i), vf)));
  } else if (p == Precision::kF32) {
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(s + i, _mm512_mul_ps(_mm512_loadu_ps(s + i), vf));
  }
  if (i < n) avx2::scale_round_row(s + i, n - i, f, p);  // the rest (and f16) as the AVX2 kernel
}

// Whole blocks of 16 without a subnormal product on vcvtneps2bf16 (round to nearest even, NaN made quiet:
// round_bf16's results, but it flushes subnormals to zero); the others as round_bf16_16. Called only on CPUs
// with AVX512_BF16 (the P·V operand of gemm_bf16_panels).
void scale_round_row_bf16(const float* s, int64_t n, float f, uint16_t* dst) {
  const __m512 vf = _mm512_set1_ps(f);
  // round_bf16's results as 16 bf16 values (the high halves).
  const auto halves = [](__m512 x) {
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(round_bf16_16(x)), 16));
  };
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 x = _mm512_mul_ps(_mm512_loadu_ps(s + i), vf);
    const bool subnormal = _mm512_fpclass_ps_mask(x, 0x20) != 0;  // 0x20: subnormal
    const __m256i h = subnormal ? halves(x) : reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(x));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), h);
  }
  for (; i < n; i += 16) {
    const __mmask16 k = lanes(n - i);
    _mm256_mask_storeu_epi16(dst + i, k, halves(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, s + i), vf)));
  }
  if (n % 2) dst[n] = 0;
}

namespace {

// 16 V values (the lanes of m; zero elsewhere) as fp32: bf16 widened exactly, int8 as the integers (the
// row's scale goes into the weight), as avx2's load8.
inline __m512 load16(const float* p, __mmask16 m) { return _mm512_maskz_loadu_ps(m, p); }
inline __m512 load16(const uint16_t* p, __mmask16 m) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}
inline __m512 load16(const int8_t* p, __mmask16 m) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, p)));
}

// Word w[src_j] of 32 bf16 values, for the 16 sources src_j of idx, widened exactly to fp32 in lane j: the
// value placed in the upper half of a dword whose lower half is zeroed (one vpermw, against a vpmovzxwd
// and a shift per 16 values). bf16_words(a) is the index of words a .. a + 7 and a + 16 .. a + 23.
inline __m512i bf16_words(int a, int b) {
  alignas(64) int32_t w[16];
  for (int j = 0; j < 8; ++j) w[j] = (a + j) << 16, w[8 + j] = (b + j) << 16;
  return _mm512_load_si512(w);
}
inline __m512 widen_bf16(__m512i w, __m512i idx) {
  return _mm512_castsi512_ps(_mm512_maskz_permutexvar_epi16(0xAAAAAAAAu, idx, w));
}

// 32 V values: lanes of m0 from p, of m1 from p + 16 (zero elsewhere), as load16 twice.
template <class T>
inline void load32(const T* p, __mmask16 m0, __mmask16 m1, __m512& x0, __m512& x1) {
  x0 = load16(p, m0), x1 = load16(p + 16, m1);
}
inline void load32(const uint16_t* p, __mmask16 m0, __mmask16 m1, __m512& x0, __m512& x1) {
  const __m512i w = _mm512_maskz_loadu_epi16(static_cast<__mmask32>(m0) | static_cast<__mmask32>(m1) << 16, p);
  x0 = widen_bf16(w, bf16_words(0, 8)), x1 = widen_bf16(w, bf16_words(16, 24));
}

// NH heads (up to 4), 64 columns at a time (the last block masked): 4·NH accumulators (independent
// chains enough to keep both FMA pipes busy), each V row segment loaded once and each weight broadcast
// once per 64 columns. Per element exactly avx2's chain: acc += w[c] · v[c] (int8: (w[c] · scale) · v[c])
// for the keys in order.
template <class T, int NH>
void axpy_heads16(const float* w, int64_t ldw, const T* v, int64_t ldv, int64_t n, int64_t d, float* acc,
                  int64_t lda, const float* sc, int64_t sld) {
  constexpr bool kScaled = std::is_same_v<T, int8_t>;
  constexpr int kV = 4;  // vectors of 16 columns per pass
  const int64_t pd = kv_prefetch_rows<T>(d) * ldv;
  for (int64_t e0 = 0; e0 < d; e0 += 16 * kV) {
    __mmask16 m[kV];
    for (int j = 0; j < kV; ++j) m[j] = lanes(d - e0 - 16 * j);
    __m512 a[NH][kV];
    for (int h = 0; h < NH; ++h)
      for (int j = 0; j < kV; ++j) a[h][j] = _mm512_maskz_loadu_ps(m[j], acc + h * lda + e0 + 16 * j);
    for (int64_t c = 0; c < n; ++c) {
      const T* vr = v + c * ldv + e0;
      if (e0 == 0) kv_prefetch_row(vr + pd, d);  // the first pass brings the rows in, as avx2
      __m512 x[kV];
      for (int j = 0; j < kV; j += 2) load32(vr + 16 * j, m[j], m[j + 1], x[j], x[j + 1]);
      const float f = kScaled ? sc[c * sld] : 1.f;
      for (int h = 0; h < NH; ++h) {
        const __m512 wc = _mm512_set1_ps(kScaled ? w[h * ldw + c] * f : w[h * ldw + c]);
        for (int j = 0; j < kV; ++j) a[h][j] = _mm512_fmadd_ps(wc, x[j], a[h][j]);
      }
    }
    for (int h = 0; h < NH; ++h)
      for (int j = 0; j < kV; ++j) _mm512_mask_storeu_ps(acc + h * lda + e0 + 16 * j, m[j], a[h][j]);
  }
}

// 8 K values of a row (the lanes of m) as fp32, as avx2's load8 / masked load.
inline __m256 load8m(const float* p, __mmask8 m) { return _mm256_maskz_loadu_ps(m, p); }
inline __m256 load8m(const uint16_t* p, __mmask8 m) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_maskz_loadu_epi16(m, p)), 16));
}
inline __m256 load8m(const int8_t* p, __mmask8 m) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, p)));
}

// Two keys' 8 K values (the lanes of m) in one zmm: key a's in lanes 0-7, key b's in lanes 8-15.
template <class T>
inline __m512 load_pair(const T* a, const T* b, __mmask8 m) {
  return _mm512_insertf32x8(_mm512_castps256_ps512(load8m(a, m)), load8m(b, m), 1);
}
inline __m512 load_pair(const uint16_t* a, const uint16_t* b, __mmask8 m) {
  const __m256i ab = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_maskz_loadu_epi16(m, a)),
                                             _mm_maskz_loadu_epi16(m, b), 1);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(ab), 16));
}

// avx2::hsum_v of the two 8-lane halves of each of a (keys c, c + 1) and b (keys c + 2, c + 3), as the four
// lanes 0, 4, 8, 12 of the result: ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)), the same additions
// (each commutes, so the operands' order within one does not matter).
inline __m512 hsum_pairs(__m512 a, __m512 b) {
  a = _mm512_add_ps(a, _mm512_shuffle_f32x4(a, a, 0xB1));  // 128-bit lanes 1 0 3 2: l_j + l_(j+4)
  b = _mm512_add_ps(b, _mm512_shuffle_f32x4(b, b, 0xB1));
  __m512 c = _mm512_shuffle_f32x4(a, b, 0x88);  // lanes 0, 2 of a, then of b: one key's four sums each
  c = _mm512_add_ps(c, _mm512_permute_ps(c, 0x4E));  // (s0 + s2), (s1 + s3)
  return _mm512_add_ps(c, _mm512_permute_ps(c, 0xB1));
}

// NH heads (up to 4) against shared keys, two keys per zmm: lanes 0-7 hold key c's chain, lanes 8-15 key
// c + 1's, each exactly avx2's 8-lane chain (q·k over whole vectors of 8 in order, then the masked tail;
// a masked lane adds 0·0, as avx2's zeroing masked loads), then avx2's hsum of each half. Four keys at a
// time (2·NH independent chains: NH alone left the FMAs waiting on their latency), then two, and a last
// odd key through avx2 itself. So bitwise avx2::dot_rows_heads, with half the FMAs.
template <class T, int NH>
void dot_heads16(const float* q, int64_t ldq, const T* k, int64_t ldk, int64_t n, int64_t d, float* s, int64_t lds,
                 const float* sc, int64_t sld) {
  constexpr bool kScaled = std::is_same_v<T, int8_t>;
  const int64_t dv = d / 8 * 8;
  const int64_t pd = kv_prefetch_rows<T>(d) * ldk;
  const __mmask8 tm = static_cast<__mmask8>((1u << (d - dv)) - 1u);
  // q's 8 values at e in both halves (a broadcast load; masked: the tail).
  const auto qv = [&](int h, int64_t e, __mmask8 m) {
    if (m == 0xff) return _mm512_broadcast_f32x8(_mm256_loadu_ps(q + h * ldq + e));
    const __m256 qh = _mm256_maskz_loadu_ps(m, q + h * ldq + e);
    return _mm512_insertf32x8(_mm512_castps256_ps512(qh), qh, 1);
  };
  int64_t c = 0;
  for (; c + 4 <= n; c += 4) {
    const T* k0 = k + c * ldk;
    for (int i = 0; i < 4; ++i) kv_prefetch_row(k0 + pd + i * ldk, d);
    __m512 a[NH], b[NH];
    for (int h = 0; h < NH; ++h) a[h] = b[h] = _mm512_setzero_ps();
    auto step = [&](int64_t e, __mmask8 m) {
      const __m512 x = load_pair(k0 + e, k0 + ldk + e, m), y = load_pair(k0 + 2 * ldk + e, k0 + 3 * ldk + e, m);
      for (int h = 0; h < NH; ++h) {
        const __m512 qh = qv(h, e, m);
        a[h] = _mm512_fmadd_ps(qh, x, a[h]);
        b[h] = _mm512_fmadd_ps(qh, y, b[h]);
      }
    };
    int64_t e = 0;
    if constexpr (std::is_same_v<T, uint16_t>) {
      // 16 values of each key per step: keys (0, 1) and (2, 3) as 32 words each, then their values e .. e + 7
      // and e + 8 .. e + 15 in pairs by vpermw; the same chains in the same order as step().
      const __m512i ia = bf16_words(0, 16), ib = bf16_words(8, 24);
      const auto words = [](const uint16_t* p0, const uint16_t* p1) {
        return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p0))),
                                  _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p1)), 1);
      };
      for (; e + 16 <= dv; e += 16) {
        const __m512i w01 = words(k0 + e, k0 + ldk + e), w23 = words(k0 + 2 * ldk + e, k0 + 3 * ldk + e);
        const __m512 xa = widen_bf16(w01, ia), ya = widen_bf16(w23, ia);
        const __m512 xb = widen_bf16(w01, ib), yb = widen_bf16(w23, ib);
        for (int h = 0; h < NH; ++h) {
          const __m512 qa = qv(h, e, 0xff), qb = qv(h, e + 8, 0xff);
          a[h] = _mm512_fmadd_ps(qa, xa, a[h]);
          b[h] = _mm512_fmadd_ps(qa, ya, b[h]);
          a[h] = _mm512_fmadd_ps(qb, xb, a[h]);
          b[h] = _mm512_fmadd_ps(qb, yb, b[h]);
        }
      }
    }
    for (; e < dv; e += 8) step(e, 0xff);
    if (dv < d) step(dv, tm);
    const __m512i pick = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0);
    for (int h = 0; h < NH; ++h) {
      __m128 r = _mm512_castps512_ps128(_mm512_permutexvar_ps(pick, hsum_pairs(a[h], b[h])));
      if constexpr (kScaled) r = _mm_mul_ps(r, _mm_set_ps(sc[(c + 3) * sld], sc[(c + 2) * sld], sc[(c + 1) * sld], sc[c * sld]));
      _mm_storeu_ps(s + h * lds + c, r);
    }
  }
  for (; c + 2 <= n; c += 2) {
    const T* k0 = k + c * ldk;
    kv_prefetch_row(k0 + pd, d);
    kv_prefetch_row(k0 + pd + ldk, d);
    __m512 a[NH];
    for (int h = 0; h < NH; ++h) a[h] = _mm512_setzero_ps();
    auto step = [&](int64_t e, __mmask8 m) {
      const __m512 x = load_pair(k0 + e, k0 + ldk + e, m);
      for (int h = 0; h < NH; ++h) a[h] = _mm512_fmadd_ps(qv(h, e, m), x, a[h]);
    };
    for (int64_t e = 0; e < dv; e += 8) step(e, 0xff);
    if (dv < d) step(dv, tm);
    for (int h = 0; h < NH; ++h) {
      s[h * lds + c] = avx2::hsum_v(_mm512_castps512_ps256(a[h]));
      s[h * lds + c + 1] = avx2::hsum_v(_mm512_extractf32x8_ps(a[h], 1));
      if constexpr (kScaled) {
        s[h * lds + c] *= sc[c * sld];
        s[h * lds + c + 1] *= sc[(c + 1) * sld];
      }
    }
  }
  if (c < n) {  // the last odd key: avx2's own one-key path
    KvRows r;
    if constexpr (std::is_same_v<T, float>) r.f = k + c * ldk;
    if constexpr (std::is_same_v<T, uint16_t>) r.b = k + c * ldk;
    if constexpr (kScaled) r.q = k + c * ldk, r.s = sc + c * sld, r.sld = sld;
    avx2::dot_rows_heads(q, ldq, NH, r, ldk, 1, d, s + c, lds);
  }
}

}  // namespace

void dot_rows_heads(const float* q, int64_t ldq, int64_t nh, const KvRows& k, int64_t ldk, int64_t n, int64_t d,
                    float* s, int64_t lds) {
  for_kv_head_groups(k, nh, [&]<class T, int NH>(const T* kp, const float* sc, int64_t sld, int64_t h) {
    dot_heads16<T, NH>(q + h * ldq, ldq, kp, ldk, n, d, s + h * lds, lds, sc, sld);
  });
}

void axpy_rows_heads(const float* w, int64_t ldw, int64_t nh, const KvRows& v, int64_t ldv, int64_t n, int64_t d,
                     float* acc, int64_t lda) {
  for_kv_head_groups(v, nh, [&]<class T, int NH>(const T* vp, const float* sc, int64_t sld, int64_t h) {
    axpy_heads16<T, NH>(w + h * ldw, ldw, vp, ldv, n, d, acc + h * lda, lda, sc, sld);
  });
}

}  // namespace t5g::kern::avx512
