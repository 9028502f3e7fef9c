// AVX2 + FMA + F16C element-wise kernels (compiled with -mavx2 -mfma -mf16c -ffp-contract=off; see
// ops_internal.h). Each computes the scalar kernel's expression with the same operation order and the
// same rounding points: with contraction off, a*b + c stays a rounded product then a rounded add, as
// in the scalar code. Row tails use masked loads/stores, so any n works and nothing outside [0, n) is
// touched.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "kernels/ops_internal.h"
#include "kernels/vec_math_avx2.h"

namespace t5g::kern::avx2 {
namespace {

constexpr float kNegInf = -__builtin_inff();

// Runs op(i, mask, tail) for the vectors of 8 at i = 0, 8, ... covering [0, n): mask is all lanes and
// tail false except for a final partial vector (then load/store below use masked accesses).
template <typename Op>
inline void for_each_vec(int64_t n, Op&& op) {
  int64_t i = 0;
  const __m256i all = _mm256_set1_epi32(-1);
  for (; i + 8 <= n; i += 8) op(i, all, false);
  if (i < n) op(i, tail_mask(n - i), true);
}

inline __m256 load(const float* p, __m256i m, bool tail) { return tail ? _mm256_maskload_ps(p, m) : _mm256_loadu_ps(p); }
// 8 K/V values as fp32: bf16 widened exactly, int8 as the integers (the row's scale is applied by the
// caller).
inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const uint16_t* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16));
}
inline __m256 load8(const int8_t* p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
}
// The same with a tail: only the lanes of m are read (zero elsewhere, as the masked fp32 load), through a
// zeroed copy, since AVX2 has no masked 8- or 16-bit load.
template <class T>
inline __m256 load(const T* p, __m256i m, bool tail) {
  if (!tail) return load8(p);
  alignas(16) T b[16] = {};
  const int cnt = __builtin_popcount(static_cast<unsigned>(_mm256_movemask_ps(_mm256_castsi256_ps(m))));
  for (int i = 0; i < cnt; ++i) b[i] = p[i];
  return load8(b);
}
inline void store(float* p, __m256 v, __m256i m, bool tail) {
  if (tail) _mm256_maskstore_ps(p, m, v);
  else _mm256_storeu_ps(p, v);
}

// (ops_avx512.cc's gelu16 is this on 16 lanes: change both.)
template <int P>
inline __m256 gelu_v(__m256 z, bool tanh_approx) {
  const __m256 half_z = _mm256_mul_ps(_mm256_set1_ps(0.5f), z);
  if (tanh_approx) {
    // 0.5 z (1 + tanh(k (z + 0.044715 z^3))), the cube as ((0.044715 z) z) z as in the scalar code.
    const __m256 c = _mm256_mul_ps(_mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.044715f), z), z), z);
    const __m256 u = _mm256_mul_ps(_mm256_set1_ps(0.7978845608028654f), _mm256_add_ps(z, c));
    return _mm256_mul_ps(half_z, _mm256_add_ps(_mm256_set1_ps(1.f), tanh_v(u)));
  }
  // 0.5 z (1 + erf(z / sqrt 2)) = 0.5 z erfc(-z / sqrt 2).
  const __m256 u = _mm256_mul_ps(z, _mm256_set1_ps(0.7071067811865476f));
  return _mm256_mul_ps(half_z, erfc_v(_mm256_xor_ps(u, _mm256_set1_ps(-0.f))));
}

template <int P>
inline __m256 softcap_v(__m256 x, float cap) {
  const __m256 c = _mm256_set1_ps(cap);
  return rnd<P>(_mm256_mul_ps(rnd<P>(tanh_v(rnd<P>(_mm256_div_ps(x, c)))), c));
}

}  // namespace

void round_act(float* x, int64_t n, Precision p) {
  with_precision(p, [&]<int P>() {
    if constexpr (P != 0)
      for_each_vec(n, [&](int64_t i, __m256i m, bool t) { store(x + i, rnd<P>(load(x + i, m, t)), m, t); });
  });
}

// Two passes over the row (from cache: it was just written): the maximum of the numbers and whether any
// lane is NaN, then the first index holding the answer. Same result as the scalar loop.
int64_t argmax_first(const float* x, int64_t n) {
  if (n <= 0) return 0;
  __m256 mx[4], nan[4];
  for (int j = 0; j < 4; ++j) mx[j] = _mm256_set1_ps(kNegInf), nan[j] = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (int j = 0; j < 4; ++j) {
      const __m256 v = _mm256_loadu_ps(x + i + 8 * j);
      nan[j] = _mm256_or_ps(nan[j], _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
      mx[j] = _mm256_max_ps(v, mx[j]);  // a NaN in v gives the second operand: NaN never enters mx
    }
  const __m256 m4 = _mm256_max_ps(_mm256_max_ps(mx[0], mx[1]), _mm256_max_ps(mx[2], mx[3]));
  const bool any_nan = _mm256_movemask_ps(_mm256_or_ps(_mm256_or_ps(nan[0], nan[1]), _mm256_or_ps(nan[2], nan[3])));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, m4);
  float m = kNegInf;
  for (float v : lanes) m = std::max(m, v);
  bool tail_nan = false;
  for (int64_t t = i; t < n; ++t) {
    if (x[t] != x[t]) tail_nan = true;
    else m = std::max(m, x[t]);
  }
  if (any_nan || tail_nan) return scalar::argmax_first(x, n);  // the rare row with a NaN: its first one
  const __m256 mv = _mm256_set1_ps(m);
  int64_t t = 0;
  for (; t + 8 <= n; t += 8) {
    const int hit = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(x + t), mv, _CMP_EQ_OQ));
    if (hit) return t + __builtin_ctz(static_cast<unsigned>(hit));
  }
  for (; t < n; ++t)
    if (x[t] == m) return t;
  return 0;  // unreachable: m is one of the values
}

namespace {
// rms_norm_row on nr <= kNormRows rows side by side: each row's sum of squares is one 8-lane accumulator
// over its vectors in order (so every row gets the one-row bits), the rows' chains interleaved instead of
// each waiting on its own FMA latency.
void rms_norm_group(const float* x, int64_t nr, int64_t n, int64_t ldx, const float* gain, float eps, float* y,
                    int64_t ldy, Precision p) {
  __m256 acc[kNormRows];
  for (int64_t r = 0; r < kNormRows; ++r) acc[r] = _mm256_setzero_ps();
  for_each_vec(n, [&](int64_t i, __m256i m, bool t) {
    for (int64_t r = 0; r < nr; ++r) {
      const __m256 v = load(x + r * ldx + i, m, t);
      acc[r] = _mm256_fmadd_ps(v, v, acc[r]);
    }
  });
  with_precision(p, [&]<int P>() {
    for (int64_t r = 0; r < nr; ++r) {
      const float* xr = x + r * ldx;
      float* yr = y + r * ldy;
      const __m256 vinv = _mm256_set1_ps(1.0f / __builtin_sqrtf(hsum_v(acc[r]) / static_cast<float>(n) + eps));
      for_each_vec(n, [&](int64_t i, __m256i m, bool t) {
        store(yr + i, rnd<P>(_mm256_mul_ps(_mm256_mul_ps(load(xr + i, m, t), vinv), load(gain + i, m, t))), m, t);
      });
    }
  });
}
}  // namespace

void rms_norm_row(const float* x, int64_t n, const float* gain, float eps, float* y, Precision p) {
  rms_norm_group(x, 1, n, n, gain, eps, y, n, p);
}

void rms_norm_rows(const float* x, int64_t rows, int64_t n, int64_t ldx, const float* gain, float eps, float* y,
                   int64_t ldy, Precision p) {
  for (int64_t r0 = 0; r0 < rows; r0 += kNormRows)
    rms_norm_group(x + r0 * ldx, std::min<int64_t>(kNormRows, rows - r0), n, ldx, gain, eps, y + r0 * ldy, ldy, p);
}

void layer_norm_row(const float* x, int64_t n, const float* w, const float* b, float eps, float* y, Precision p) {
  // Statistics in double as the scalar kernel (4 lanes per half vector).
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd();
  for_each_vec(n, [&](int64_t i, __m256i m, bool t) {
    const __m256 v = load(x + i, m, t);
    s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  });
  double tmp[4];
  _mm256_storeu_pd(tmp, _mm256_add_pd(s0, s1));
  const double mean = (tmp[0] + tmp[1] + tmp[2] + tmp[3]) / static_cast<double>(n);
  const __m256d vm = _mm256_set1_pd(mean);
  __m256d q0 = _mm256_setzero_pd(), q1 = _mm256_setzero_pd();
  for_each_vec(n, [&](int64_t i, __m256i m, bool t) {
    const __m256 v = load(x + i, m, t);
    const __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), vm);
    const __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), vm);
    // Masked-off lanes loaded 0 and must not add (0 - mean)^2.
    const __m256d m0 = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_castsi256_si128(m)));
    const __m256d m1 = _mm256_castsi256_pd(_mm256_cvtepi32_epi64(_mm256_extracti128_si256(m, 1)));
    q0 = _mm256_add_pd(q0, _mm256_and_pd(_mm256_mul_pd(d0, d0), m0));
    q1 = _mm256_add_pd(q1, _mm256_and_pd(_mm256_mul_pd(d1, d1), m1));
  });
  _mm256_storeu_pd(tmp, _mm256_add_pd(q0, q1));
  const double var = (tmp[0] + tmp[1] + tmp[2] + tmp[3]) / static_cast<double>(n);
  const __m256 vinv = _mm256_set1_ps(static_cast<float>(1.0 / __builtin_sqrt(var + eps)));
  const __m256 vmf = _mm256_set1_ps(static_cast<float>(mean));
  with_precision(p, [&]<int P>() {
    for_each_vec(n, [&](int64_t i, __m256i m, bool t) {
      const __m256 v = _mm256_mul_ps(_mm256_mul_ps(_mm256_sub_ps(load(x + i, m, t), vmf), vinv), load(w + i, m, t));
      store(y + i, rnd<P>(_mm256_add_ps(v, load(b + i, m, t))), m, t);
    });
  });
}

void gelu_mul(float* gate, const float* up, int64_t n, bool tanh_approx, Precision p) {
  with_precision(p, [&]<int P>() {
    for_each_vec(n, [&](int64_t i, __m256i m, bool t) {
      const __m256 g = rnd<P>(gelu_v<P>(rnd<P>(load(gate + i, m, t)), tanh_approx));
      store(gate + i, rnd<P>(_mm256_mul_ps(g, rnd<P>(load(up + i, m, t)))), m, t);
    });
  });
}

void gelu(float* x, int64_t n, bool tanh_approx, Precision p) {
  with_precision(p, [&]<int P>() {
    for_each_vec(n, [&](int64_t i, __m256i m, bool t) {
      store(x + i, rnd<P>(gelu_v<P>(load(x + i, m, t), tanh_approx)), m, t);
    });
  });
}

void add(const float* a, const float* b, float* y, int64_t n, Precision p) {
  with_precision(p, [&]<int P>() {
    for_each_vec(n, [&](int64_t i, __m256i m, bool t) {
      store(y + i, rnd<P>(_mm256_add_ps(load(a + i, m, t), load(b + i, m, t))), m, t);
    });
  });
}

void rope_head(float* v, const float* c, const float* s, int64_t half, Precision p) {
  with_precision(p, [&]<int P>() {
    for_each_vec(half, [&](int64_t j, __m256i m, bool t) {
      const __m256 a = load(v + j, m, t), b = load(v + j + half, m, t);
      const __m256 cj = load(c + j, m, t), sj = load(s + j, m, t);
      const __m256 nb = _mm256_xor_ps(b, _mm256_set1_ps(-0.f));
      store(v + j, rnd<P>(_mm256_add_ps(rnd<P>(_mm256_mul_ps(a, cj)), rnd<P>(_mm256_mul_ps(nb, sj)))), m, t);
      store(v + j + half, rnd<P>(_mm256_add_ps(rnd<P>(_mm256_mul_ps(b, cj)), rnd<P>(_mm256_mul_ps(a, sj)))), m, t);
    });
  });
}

void softcap(float* x, int64_t n, float cap, Precision p) {
  with_precision(p, [&]<int P>() {
    for_each_vec(n, [&](int64_t i, __m256i m, bool t) { store(x + i, softcap_v<P>(load(x + i, m, t), cap), m, t); });
  });
}

float finish_scores_row(float* s, int64_t n, int64_t lo, int64_t hi, float scale, const float* cap, Precision p) {
  clamp_visible_keys(n, lo, hi);
  mask_invisible_keys(s, n, lo, hi);
  __m256 mx = _mm256_set1_ps(kNegInf);
  const __m256 vscale = _mm256_set1_ps(scale);
  float* r = s + lo;
  with_precision(p, [&]<int P>() {
    for_each_vec(hi - lo, [&](int64_t i, __m256i m, bool t) {
      __m256 x = rnd<P>(_mm256_mul_ps(rnd<P>(load(r + i, m, t)), vscale));
      if (cap != nullptr) x = softcap_v<P>(x, *cap);
      store(r + i, x, m, t);
      mx = _mm256_max_ps(mx, t ? _mm256_blendv_ps(_mm256_set1_ps(kNegInf), x, _mm256_castsi256_ps(m)) : x);
    });
  });
  return hmax_v(mx);
}

float exp_sum_row(float* s, int64_t n, float max) {
  if (max == kNegInf) {
    for (int64_t i = 0; i < n; ++i) s[i] = 0.f;
    return 0.f;
  }
  const __m256 vmax = _mm256_set1_ps(max);
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {  // two independent chains: exp's latency dominates otherwise
    const __m256 e0 = exp_v(_mm256_sub_ps(_mm256_loadu_ps(s + i), vmax));
    const __m256 e1 = exp_v(_mm256_sub_ps(_mm256_loadu_ps(s + i + 8), vmax));
    _mm256_storeu_ps(s + i, e0);
    _mm256_storeu_ps(s + i + 8, e1);
    acc0 = _mm256_add_ps(acc0, e0);
    acc1 = _mm256_add_ps(acc1, e1);
  }
  for_each_vec(n - i, [&](int64_t j, __m256i m, bool t) {
    __m256 e = exp_v(_mm256_sub_ps(load(s + i + j, m, t), vmax));
    if (t) e = _mm256_and_ps(e, _mm256_castsi256_ps(m));
    store(s + i + j, e, m, t);
    acc0 = _mm256_add_ps(acc0, e);
  });
  return hsum_v(_mm256_add_ps(acc0, acc1));
}

void scale_round_row(float* s, int64_t n, float f, Precision p) {
  const __m256 vf = _mm256_set1_ps(f);
  with_precision(p, [&]<int P>() {
    for_each_vec(n, [&](int64_t i, __m256i m, bool t) { store(s + i, rnd<P>(_mm256_mul_ps(load(s + i, m, t), vf)), m, t); });
  });
}

namespace {

// K / V rows of fp32, bf16 or int8. Whole vectors use load8 (no mask, no branch: a masked bf16 load needs
// a stack copy, which kept GCC from holding the accumulators in registers); the last partial vector uses
// the masked load(). The order of operations is that of for_each_vec.
// int8 rows carry a scale per row (sc[c * sld]); fp32 / bf16 rows none (sc null, never read).
template <class T>
constexpr bool kScaled = std::is_same_v<T, int8_t>;

// One head against keys one at a time: the tails of dot_heads_t (its last odd key) and axpy_heads_t (its last
// columns, fewer than 16). dot_rows_t: q·k over whole vectors in order, then the masked tail, one fixed hsum.
template <class T>
void dot_rows_t(const float* q, const T* k, int64_t ldk, int64_t n, int64_t d, float* s, const float* sc, int64_t sld) {
  const int64_t dv = d / 8 * 8;
  const __m256i tm = tail_mask(d - dv);
  for (int64_t c = 0; c < n; ++c) {
    const T* kr = k + c * ldk;
    __m256 a0 = _mm256_setzero_ps();
    for (int64_t e = 0; e < dv; e += 8) a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + e), load8(kr + e), a0);
    if (dv < d) a0 = _mm256_fmadd_ps(load(q + dv, tm, true), load(kr + dv, tm, true), a0);
    s[c] = hsum_v(a0);
    if constexpr (kScaled<T>) s[c] *= sc[c * sld];
  }
}

// axpy_rows_t: acc += w[c] · v[c] for the keys in order, in masked blocks of up to 32 columns.
template <class T>
void axpy_rows_t(const float* w, const T* v, int64_t ldv, int64_t n, int64_t d, float* acc, const float* sc, int64_t sld) {
  for (int64_t e0 = 0; e0 < d; e0 += 32) {
    const int64_t de = d - e0;
    __m256i mk[4];
    bool tl[4];
    __m256 a[4];
    for (int j = 0; j < 4; ++j) {
      const int64_t left = de - 8 * j;
      mk[j] = tail_mask(left < 0 ? 0 : left > 8 ? 8 : left);
      tl[j] = left < 8;
      a[j] = load(acc + e0 + 8 * j, mk[j], tl[j]);
    }
    for (int64_t c = 0; c < n; ++c) {
      const __m256 wc = _mm256_set1_ps(kScaled<T> ? w[c] * sc[c * sld] : w[c]);
      const T* vr = v + c * ldv + e0;
      for (int j = 0; j < 4; ++j) a[j] = _mm256_fmadd_ps(wc, load(vr + 8 * j, mk[j], tl[j]), a[j]);
    }
    for (int j = 0; j < 4; ++j) store(acc + e0 + 8 * j, a[j], mk[j], tl[j]);
  }
}

// NH heads (up to 4) against shared keys, two keys at a time: 2·NH independent FMA chains, each K row
// loaded once. Per (head, key) exactly dot_rows_t's chain: q·k over whole vectors in order, then the tail.
template <class T, int NH>
void dot_heads_t(const float* q, int64_t ldq, const T* k, int64_t ldk, int64_t n, int64_t d, float* s, int64_t lds,
                 const float* sc, int64_t sld) {
  const int64_t dv = d / 8 * 8, pd = kv_prefetch_rows<T>(d) * ldk;
  const __m256i tm = tail_mask(d - dv);
  int64_t c = 0;
  for (; c + 2 <= n; c += 2) {
    const T* k0 = k + c * ldk;
    kv_prefetch_row(k0 + pd, d);
    kv_prefetch_row(k0 + pd + ldk, d);
    __m256 a0[NH], a1[NH];
    for (int h = 0; h < NH; ++h) a0[h] = a1[h] = _mm256_setzero_ps();
    for (int64_t e = 0; e < dv; e += 8) {
      const __m256 x0 = load8(k0 + e), x1 = load8(k0 + ldk + e);
      for (int h = 0; h < NH; ++h) {
        const __m256 qv = _mm256_loadu_ps(q + h * ldq + e);
        a0[h] = _mm256_fmadd_ps(qv, x0, a0[h]);
        a1[h] = _mm256_fmadd_ps(qv, x1, a1[h]);
      }
    }
    if (dv < d) {
      const __m256 x0 = load(k0 + dv, tm, true), x1 = load(k0 + ldk + dv, tm, true);
      for (int h = 0; h < NH; ++h) {
        const __m256 qv = load(q + h * ldq + dv, tm, true);
        a0[h] = _mm256_fmadd_ps(qv, x0, a0[h]);
        a1[h] = _mm256_fmadd_ps(qv, x1, a1[h]);
      }
    }
    for (int h = 0; h < NH; ++h) {
      s[h * lds + c] = hsum_v(a0[h]);
      s[h * lds + c + 1] = hsum_v(a1[h]);
      if constexpr (kScaled<T>) {
        s[h * lds + c] *= sc[c * sld];
        s[h * lds + c + 1] *= sc[(c + 1) * sld];
      }
    }
  }
  if (c < n)
    for (int h = 0; h < NH; ++h)
      dot_rows_t(q + h * ldq, k + c * ldk, ldk, n - c, d, s + h * lds + c, kScaled<T> ? sc + c * sld : nullptr, sld);
}

// NH heads (up to 4), 16 columns at a time: 2·NH accumulators, each V row segment loaded once. Per
// element exactly axpy_rows_t's chain: acc += w[c] · v[c] for the keys in order.
template <class T, int NH>
void axpy_heads_t(const float* w, int64_t ldw, const T* v, int64_t ldv, int64_t n, int64_t d, float* acc, int64_t lda,
                  const float* sc, int64_t sld) {
  const int64_t pd = kv_prefetch_rows<T>(d) * ldv;
  int64_t e0 = 0;
  for (; e0 + 16 <= d; e0 += 16) {
    __m256 a0[NH], a1[NH];
    for (int h = 0; h < NH; ++h) {
      a0[h] = _mm256_loadu_ps(acc + h * lda + e0);
      a1[h] = _mm256_loadu_ps(acc + h * lda + e0 + 8);
    }
    for (int64_t c = 0; c < n; ++c) {
      const T* vr = v + c * ldv + e0;
      if (e0 == 0) kv_prefetch_row(vr + pd, d);  // the first pass brings the rows in; later ones hit the cache
      const __m256 x0 = load8(vr), x1 = load8(vr + 8);
      const float f = kScaled<T> ? sc[c * sld] : 1.f;
      for (int h = 0; h < NH; ++h) {
        const __m256 wc = _mm256_set1_ps(kScaled<T> ? w[h * ldw + c] * f : w[h * ldw + c]);
        a0[h] = _mm256_fmadd_ps(wc, x0, a0[h]);
        a1[h] = _mm256_fmadd_ps(wc, x1, a1[h]);
      }
    }
    for (int h = 0; h < NH; ++h) {
      _mm256_storeu_ps(acc + h * lda + e0, a0[h]);
      _mm256_storeu_ps(acc + h * lda + e0 + 8, a1[h]);
    }
  }
  if (e0 < d)
    for (int h = 0; h < NH; ++h) axpy_rows_t(w + h * ldw, v + e0, ldv, n, d - e0, acc + h * lda + e0, sc, sld);
}

}  // namespace

void dot_rows_heads(const float* q, int64_t ldq, int64_t nh, const KvRows& k, int64_t ldk, int64_t n, int64_t d,
                    float* s, int64_t lds) {
  for_kv_head_groups(k, nh, [&]<class T, int NH>(const T* kp, const float* sc, int64_t sld, int64_t h) {
    dot_heads_t<T, NH>(q + h * ldq, ldq, kp, ldk, n, d, s + h * lds, lds, sc, sld);
  });
}

void axpy_rows_heads(const float* w, int64_t ldw, int64_t nh, const KvRows& v, int64_t ldv, int64_t n, int64_t d,
                     float* acc, int64_t lda) {
  for_kv_head_groups(v, nh, [&]<class T, int NH>(const T* vp, const float* sc, int64_t sld, int64_t h) {
    axpy_heads_t<T, NH>(w + h * ldw, ldw, vp, ldv, n, d, acc + h * lda, lda, sc, sld);
  });
}

}  // namespace t5g::kern::avx2
