// Decode products (M <= 8) of the Q8 / Q4 weight formats on AVX-512 VNNI (vpdpbusd on 512-bit vectors).
// Compiled with the AVX-512 flags plus -mavx512vnni; called only when active_isa() is kAvx512 and the
// CPU has AVX512_VNNI (matmul.cc). The AVX2 kernels (matmul_quant.inl) need about 2.5 times the
// instructions per weight byte (vpmaddubsw + vpmaddwd on 256 bits, then per pair of groups a convert,
// a permute and an FMA): on this path's CPUs they were compute-bound below the memory bandwidth.
//
// The arithmetic is the AVX2 kernels' (matmul.h, matmul_quant.inl): each X row is quantized to int8 per
// group of 32 (dx = max|x| / 127, round to nearest even; a NaN makes dx NaN; groups below 2^-100 count as
// zero), a group's dot product with the weights is an exact int32 sum, converted to fp32 and multiplied
// by dw·dx. Summation order (depends on K only, never on M, the rows a pass takes, or the threads):
//   Q8: one accumulator per output, 16 lanes: groups 2j in lanes 0-7, 2j+1 in lanes 8-15, pairs in
//       order; result hsum8(low half + high half) — the AVX2 kernel's acc0 + acc1 and qhsum exactly, so
//       Q8 gives bitwise the AVX2 kernels' results.
//   Q4: one accumulator per output, 16 lanes: per block of 16 groups first the offset correction
//       -dw·(8·dx·Σqx) of each group in lane g % 16, then the blocks of 4 groups in order (group 4i + q in
//       lanes 4q..4q+3); result hsum8(low half + high half).
// Q4 X order: per 4 groups (128 values) [g0 0..15 | g1 0..15 | g2 0..15 | g3 0..15 | g0 16..31 | .. | g3
// 16..31], the order of the weights' low and then high nibbles in the 64 bytes of those groups.
#include <immintrin.h>
#include <omp.h>

#include <cstdint>
#include <cstring>

#include "kernels/matmul_internal.h"

namespace t5g::kern::avx512vnni {
namespace {

#include "kernels/matmul_shared.inl"

constexpr int64_t kQG = kQuantGroup;
static_assert(kQuantGroup == 32, "groups of 32");
constexpr int64_t kPrefetch = 1024;  // bytes ahead along a row stream (into L1)
// Besides the near prefetch, a far one into L2 kFarBlocks blocks of rows ahead in the weight and the
// scale streams (prefetch_block_far, matmul_shared.inl), issued per block of rows in rows_range. As one
// burst per block it measured as fast as spread over the loads for Q4 and faster for Q8 (the decoder's
// projections 28-33 -> 40-42 GB/s).

// The 8-lane sum low half + high half of a 16-lane accumulator (the AVX2 kernels' acc0 + acc1).
T5G_QINLINE __m256 fold16(__m512 v) { return _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1)); }

// X quantized: q [M][Q] int8 (Q4 in the order above), d and c [M][Gp] fp32 (c = 8·dx·Σqx), zero past G.
struct QuantX {
  const int8_t* q;
  const float* d;
  const float* c;
  int64_t Q, Gp;
};

// One row of X (K values) into Q int8 (groups past K zero), scales d and offsets c of Gp groups.
void quantize_row(const float* x, int64_t K, int64_t Q, int64_t Gp, bool q4_order, int8_t* q, float* d, float* c) {
  const int64_t G = Q / kQG;
  for (int64_t g = 0; g < G; ++g) {
    const int64_t n = imax(0, imin(kQG, K - g * kQG));
    const __mmask16 m0 = static_cast<__mmask16>(n >= 16 ? 0xffff : (1u << n) - 1u);
    const __mmask16 m1 = static_cast<__mmask16>(n <= 16 ? 0 : n >= 32 ? 0xffff : (1u << (n - 16)) - 1u);
    const __m512 v0 = _mm512_maskz_loadu_ps(m0, x + g * kQG), v1 = _mm512_maskz_loadu_ps(m1, x + g * kQG + 16);
    // A NaN or an infinity makes the group's scale NaN (it reaches Y as a non-finite value, as in the
    // reference) and its int8 values zero (they would convert to INT_MIN).
    const __m512 inf = _mm512_set1_ps(__builtin_inff());
    const bool bad = (_mm512_cmp_ps_mask(_mm512_abs_ps(v0), inf, _CMP_NLT_UQ) |
                      _mm512_cmp_ps_mask(_mm512_abs_ps(v1), inf, _CMP_NLT_UQ)) != 0;
    const float a = bad ? 0.f : _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    const float am = a < 0x1p-100f ? 0.f : a;  // as quantize_x_row: tiny groups count as zero
    const float dg = bad ? __builtin_nanf("") : am / 127.f;
    const __m512 id = _mm512_set1_ps(am > 0.f ? 127.f / am : 0.f);
    const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(bad ? _mm512_setzero_ps() : v0, id));
    const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(bad ? _mm512_setzero_ps() : v1, id));
    const __m128i b0 = _mm512_cvtsepi32_epi8(q0), b1 = _mm512_cvtsepi32_epi8(q1);  // |q| <= 127: no saturation
    const int sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    if (q4_order) {  // group g = 4i + s: elements 0..15 at 128i + 16s, 16..31 at 128i + 64 + 16s
      int8_t* base = q + (g / 4) * 4 * kQG + (g % 4) * 16;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(base), b0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(base + 64), b1);
    } else {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + g * kQG), b0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + g * kQG + 16), b1);
    }
    d[g] = dg;
    c[g] = 8.f * dg * static_cast<float>(sum);
  }
  for (int64_t g = G; g < Gp; ++g) d[g] = c[g] = 0.f;
}

// Prefetch distance for R interleaved rows of rs bytes: one row streams, so a fixed distance ahead; R rows
// are consumed together, so the same place in the next block of rows (as matmul_quant.inl).
inline int64_t prefetch_offset(int R, int64_t rs) { return R == 1 ? kPrefetch : R * rs; }

// n (<= 16) fp16 scales from p as fp32, zero past n (never reads past them).
T5G_QINLINE __m512 load_scales(const uint16_t* p, int64_t n) {
  const __mmask16 m = static_cast<__mmask16>(n >= 16 ? 0xffff : (1u << n) - 1u);
  return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

// Horizontal sums of R accumulators into y[0..R): fold16, then qhsum_rows (qhsum's order whatever R).
template <int R>
T5G_QINLINE void hsum16_rows(const __m512 (&v)[R], float* y) {
  __m256 h[R];
  static_for<R>([&](auto r) { h[r.value] = fold16(v[r.value]); });
  qhsum_rows<R>(h, y);
}

// R consecutive Q8 weight rows (G groups of 32 bytes each, row stride rs, at w; scales sc, row stride
// G) times MC X rows: y[m * ldy + r]. Several rows (at M = 1) give independent chains and share the X
// loads; each output's arithmetic is the same whatever R.
template <int R, int MC>
T5G_QINLINE void q8_rows(const uint8_t* w, int64_t rs, const uint16_t* sc, int64_t G, const QuantX& xq, float* y,
                         int64_t ldy) {
  __m512 acc[MC][R];
  static_for<MC>([&](auto mc) { static_for<R>([&](auto r) { acc[mc.value][r.value] = _mm512_setzero_ps(); }); });
  const __m512i zero = _mm512_setzero_si512();
  // Lane selectors: step t of a block of 8 groups takes groups 2t (lanes 0-7) and 2t + 1 (lanes 8-15).
  const __m512i sel[4] = {
      _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1),
      _mm512_setr_epi32(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3),
      _mm512_setr_epi32(4, 4, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5, 5, 5),
      _mm512_setr_epi32(6, 6, 6, 6, 6, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7)};
  for (int64_t g0 = 0; g0 < G; g0 += 8) {
    const int64_t ng = imin(8, G - g0);
    // dw·dx of the block's 8 groups (as the AVX2 kernel: one product per group).
    __m512 s8[MC][R];
    static_for<R>([&](auto rc) {
      constexpr int r = decltype(rc)::value;
      const __m512 dw = load_scales(sc + r * G + g0, ng);
      static_for<MC>([&](auto mc) {
        s8[mc.value][r] = _mm512_mul_ps(dw, _mm512_castps256_ps512(_mm256_loadu_ps(xq.d + mc.value * xq.Gp + g0)));
      });
      const char* pf = reinterpret_cast<const char*>(w + r * rs + g0 * kQG) + prefetch_offset(R, rs);
      static_for<4>([&](auto o) { _mm_prefetch(pf + 64 * o.value, _MM_HINT_T0); });
    });
    for (int t = 0; t < 4 && 2 * t < ng; ++t) {
      const int64_t g = g0 + 2 * t;
      __m512i x[MC];
      static_for<MC>([&](auto mc) { x[mc.value] = _mm512_loadu_si512(xq.q + mc.value * xq.Q + g * kQG); });
      static_for<R>([&](auto rc) {
        constexpr int r = decltype(rc)::value;
        __m512i wv;
        if (g + 2 <= G) {
          wv = _mm512_loadu_si512(w + r * rs + g * kQG);
        } else {  // a row's last single group: its partner's X and scale are zero
          wv = _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + r * rs + g * kQG)));
          wv = _mm512_inserti64x4(wv, _mm256_setzero_si256(), 1);
        }
        const __m512i aw = _mm512_abs_epi8(wv);
        const __mmask64 neg = _mm512_movepi8_mask(wv);
        static_for<MC>([&](auto mc) {
          constexpr int m = decltype(mc)::value;
          // |w| · (x with w's sign): the AVX2 kernel's sign trick (vpdpbusd takes unsigned · signed).
          // (w + 128 times x from a lane start of -128·Σx, one XOR instead of three ops, measured 8%
          // slower at M = 8: one more load per X row and step.)
          const __m512i xs = _mm512_mask_sub_epi8(x[m], neg, zero, x[m]);
          const __m512 f = _mm512_cvtepi32_ps(_mm512_dpbusd_epi32(zero, aw, xs));
          acc[m][r] = _mm512_fmadd_ps(f, _mm512_permutexvar_ps(sel[t], s8[m][r]), acc[m][r]);
        });
      });
    }
  }
  static_for<MC>([&](auto mc) { hsum16_rows<R>(acc[mc.value], y + mc.value * ldy); });
}

// R consecutive Q4 weight rows (G groups of 16 bytes each, row stride rs, at w; scales sc, row stride G)
// times MC X rows (Q4 order): y[m * ldy + r]. Each output's arithmetic is the same whatever R.
template <int R, int MC>
T5G_QINLINE void q4_rows(const uint8_t* w, int64_t rs, const uint16_t* sc, int64_t G, const QuantX& xq, float* y,
                         int64_t ldy) {
  __m512 acc[MC][R];
  static_for<MC>([&](auto mc) { static_for<R>([&](auto r) { acc[mc.value][r.value] = _mm512_setzero_ps(); }); });
  const __m512i zero = _mm512_setzero_si512();
  const __m512i low4 = _mm512_set1_epi8(0x0f);
  // Step t of a block of 16 groups takes groups 4t..4t+3, each in 4 lanes.
  const __m512i sel[4] = {
      _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3),
      _mm512_setr_epi32(4, 4, 4, 4, 5, 5, 5, 5, 6, 6, 6, 6, 7, 7, 7, 7),
      _mm512_setr_epi32(8, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 10, 11, 11, 11, 11),
      _mm512_setr_epi32(12, 12, 12, 12, 13, 13, 13, 13, 14, 14, 14, 14, 15, 15, 15, 15)};
  for (int64_t g0 = 0; g0 < G; g0 += 16) {
    const int64_t ng = imin(16, G - g0);
    __m512 s16[MC][R];
    static_for<R>([&](auto rc) {
      constexpr int r = decltype(rc)::value;
      const __m512 dw = load_scales(sc + r * G + g0, ng);
      static_for<MC>([&](auto mc) {
        constexpr int m = decltype(mc)::value;
        s16[m][r] = _mm512_mul_ps(dw, _mm512_loadu_ps(xq.d + m * xq.Gp + g0));
        acc[m][r] = _mm512_fnmadd_ps(dw, _mm512_loadu_ps(xq.c + m * xq.Gp + g0), acc[m][r]);
      });
    });
    for (int t = 0; t < 4 && 4 * t < ng; ++t) {
      const int64_t g = g0 + 4 * t;
      __m512i x0[MC], x1[MC];
      static_for<MC>([&](auto mc) {
        const int8_t* xp = xq.q + mc.value * xq.Q + g * kQG;
        x0[mc.value] = _mm512_loadu_si512(xp);
        x1[mc.value] = _mm512_loadu_si512(xp + 64);
      });
      static_for<R>([&](auto rc) {
        constexpr int r = decltype(rc)::value;
        const uint8_t* p = w + r * rs + g * (kQG / 2);
        _mm_prefetch(reinterpret_cast<const char*>(p) + prefetch_offset(R, rs), _MM_HINT_T0);
        __m512i wv;
        if (g + 4 <= G) {
          wv = _mm512_loadu_si512(p);
        } else {  // the row's last 1-3 groups: zero-padded (their X and scales are zero too)
          const __mmask64 m = (__mmask64(1) << ((G - g) * (kQG / 2))) - 1;
          wv = _mm512_maskz_loadu_epi8(m, p);
        }
        const __m512i lo = _mm512_and_si512(wv, low4);
        const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(wv, 4), low4);
        static_for<MC>([&](auto mc) {
          constexpr int m = decltype(mc)::value;
          const __m512i d = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(zero, lo, x0[m]), hi, x1[m]);
          acc[m][r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(d), _mm512_permutexvar_ps(sel[t], s16[m][r]), acc[m][r]);
        });
      });
    }
  }
  static_for<MC>([&](auto mc) { hsum16_rows<R>(acc[mc.value], y + mc.value * ldy); });
}

// Q4 weight rows per call at M = 1 (independent chains, shared X loads): from cache 1.1x faster than one
// row at a time; Q8 streams one row at a time (4 rows measured slower on the decoder's matrices, as on AVX2).
constexpr int kRowBlock = 4;

// Rows [n0, n1) of one matrix times the MC rows of X.
template <WeightType WT, int MC>
void rows_range(const WeightMatrix& W, int64_t n0, int64_t n1, int64_t rs, int64_t G, const QuantX& xq, float* y,
                int64_t ldy) {
  const uint8_t* base = static_cast<const uint8_t*>(W.data);
  // One X row: blocks of kRowBlock weight rows (independent chains, shared X loads); more X rows give
  // the chains themselves.
  constexpr int R = MC == 1 && WT == WeightType::kQ4 ? kRowBlock : 1;
  // The far prefetch (at MC <= 2: more X rows make the kernel compute-bound, where it cost 5% at M = 8).
  constexpr bool kFar = MC <= 2;
  if constexpr (kFar) prefetch_range_start(base + n0 * rs, W.scales + n0 * G, R, rs, G, n1 - n0);
  int64_t n = n0;
  for (; n + R <= n1; n += R) {
    if constexpr (kFar) prefetch_block_far(base + n * rs, W.scales + n * G, R, rs, G, n1 - n);
    if constexpr (WT == WeightType::kQ8) q8_rows<R, MC>(base + n * rs, rs, W.scales + n * G, G, xq, y + n, ldy);
    else q4_rows<R, MC>(base + n * rs, rs, W.scales + n * G, G, xq, y + n, ldy);
  }
  for (; n < n1; ++n) {
    if constexpr (WT == WeightType::kQ8) q8_rows<1, MC>(base + n * rs, rs, W.scales + n * G, G, xq, y + n, ldy);
    else q4_rows<1, MC>(base + n * rs, rs, W.scales + n * G, G, xq, y + n, ldy);
  }
}

template <WeightType WT, int MC = 8>
void rows_range_dispatch(int mc, const WeightMatrix& W, int64_t n0, int64_t n1, int64_t rs, int64_t G,
                         const QuantX& xq, float* y, int64_t ldy) {
  if (mc == MC) rows_range<WT, MC>(W, n0, n1, rs, G, xq, y, ldy);
  else if constexpr (MC > 1) rows_range_dispatch<WT, MC - 1>(mc, W, n0, n1, rs, G, xq, y, ldy);
}

template <WeightType WT>
void qgemv(const float* X, int64_t M, int64_t ldx, const MatmulOut* parts, int np) {
  const int64_t K = parts[0].w->cols;
  const int64_t G = quant_padded_cols(K) / kQG;
  // X row stride: whole blocks of the kernels' steps (Q8: 2 groups, Q4: 4), so no load passes a row.
  const int64_t Q = (WT == WeightType::kQ4 ? cdiv(G, 4) * 4 : cdiv(G, 2) * 2) * kQG;
  const int64_t Gp = cdiv(Q / kQG, 16) * 16;
  const int64_t rs = WT == WeightType::kQ8 ? G * kQG : G * kQG / 2;
  const size_t qbytes = static_cast<size_t>(cdiv(M * Q + 64, 64) * 64);
  char* s = static_cast<char*>(kern::scratch(kern::kScratchX, qbytes + static_cast<size_t>(2 * M * Gp) * sizeof(float)));
  int8_t* qx = reinterpret_cast<int8_t*>(s);
  float* dx = reinterpret_cast<float*>(s + qbytes);
  float* cx = dx + M * Gp;
  for (int64_t m = 0; m < M; ++m)
    quantize_row(X + m * ldx, K, Q, Gp, WT == WeightType::kQ4, qx + m * Q, dx + m * Gp, cx + m * Gp);
  const QuantX xq{qx, dx, cx, Q, Gp};
  // The decode schedule of the other units (for_each_range: one list of row ranges for all the parts).
  int64_t N[kMaxMatmulParts];
  const int64_t row_bytes = rs + 2 * G;
  const bool parallel = part_rows(parts, np, row_bytes, N);
  const int R = M == 1 && WT == WeightType::kQ4 ? kRowBlock : 1;  // ranges of whole row blocks (rows_range)
  for_each_range(N, np, R, row_bytes, parallel, [&](int p, int64_t n0, int64_t n1) {
    rows_range_dispatch<WT>(static_cast<int>(M), *parts[p].w, n0, n1, rs, G, xq, parts[p].y, parts[p].ldy);
  });
}

}  // namespace

void qmatmul_decode(const float* X, int64_t M, int64_t ldx, const MatmulOut* parts, int n) {
  if (parts[0].w->type == WeightType::kQ8) qgemv<WeightType::kQ8>(X, M, ldx, parts, n);
  else qgemv<WeightType::kQ4>(X, M, ldx, parts, n);
}

}  // namespace t5g::kern::avx512vnni
