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

// One group of X (n <= 32 values from x, zero past them) quantized: elements 0-15 in b0, 16-31 in b1,
// the scale *d and Σq *sum.
T5G_QINLINE void quantize_group(const float* x, int64_t n, __m128i& b0, __m128i& b1, float* d, int* sum) {
  const __mmask16 m0 = static_cast<__mmask16>(n >= 16 ? 0xffff : (1u << n) - 1u);
  const __mmask16 m1 = static_cast<__mmask16>(n <= 16 ? 0 : n >= 32 ? 0xffff : (1u << (n - 16)) - 1u);
  const __m512 v0 = _mm512_maskz_loadu_ps(m0, x), v1 = _mm512_maskz_loadu_ps(m1, x + 16);
  // A NaN or an infinity makes the group's scale NaN (it reaches Y as a non-finite value, as in the
  // reference) and its int8 values zero (they would convert to INT_MIN).
  const __m512 inf = _mm512_set1_ps(__builtin_inff());
  const bool bad = (_mm512_cmp_ps_mask(_mm512_abs_ps(v0), inf, _CMP_NLT_UQ) |
                    _mm512_cmp_ps_mask(_mm512_abs_ps(v1), inf, _CMP_NLT_UQ)) != 0;
  const float a = bad ? 0.f : _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
  const float am = a < 0x1p-100f ? 0.f : a;  // as quantize_x_row: tiny groups count as zero
  *d = bad ? __builtin_nanf("") : am / 127.f;
  const __m512 id = _mm512_set1_ps(am > 0.f ? 127.f / am : 0.f);
  const __m512i q0 = _mm512_cvtps_epi32(_mm512_mul_ps(bad ? _mm512_setzero_ps() : v0, id));
  const __m512i q1 = _mm512_cvtps_epi32(_mm512_mul_ps(bad ? _mm512_setzero_ps() : v1, id));
  b0 = _mm512_cvtsepi32_epi8(q0), b1 = _mm512_cvtsepi32_epi8(q1);  // |q| <= 127: no saturation
  *sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
}

// One row of X (K values) into Q int8 (groups past K zero), scales d and offsets c of Gp groups.
void quantize_row(const float* x, int64_t K, int64_t Q, int64_t Gp, bool q4_order, int8_t* q, float* d, float* c) {
  const int64_t G = Q / kQG;
  for (int64_t g = 0; g < G; ++g) {
    __m128i b0, b1;
    int sum;
    quantize_group(x + g * kQG, imax(0, imin(kQG, K - g * kQG)), b0, b1, d + g, &sum);
    if (q4_order) {  // group g = 4i + s: elements 0..15 at 128i + 16s, 16..31 at 128i + 64 + 16s
      int8_t* base = q + (g / 4) * 4 * kQG + (g % 4) * 16;
      _mm_storeu_si128(reinterpret_cast<__m128i*>(base), b0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(base + 64), b1);
    } else {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + g * kQG), b0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(q + g * kQG + 16), b1);
    }
    c[g] = 8.f * d[g] * static_cast<float>(sum);
  }
  for (int64_t g = G; g < Gp; ++g) d[g] = c[g] = 0.f;
}

// Q8's X, interleaved for the tile kernels: of group g, the 4 bytes of chunk c (elements 32g + 4c ..
// 32g + 4c + 3) of X row m as one int32 at x[(8g + c)·M + m], dx at d[g·M + m], -128·Σqx at o[g·M + m]
// (the weight bytes are q + 128): the MC rows' operands lie side by side, so each is a broadcast at a
// constant offset (folded into vpdpbusd as {1to16}) rather than a row stride apart (an address add
// per X row and step: M = 8 measured 10-25% slower).
struct TileX {
  const int32_t* x;
  const float* d;
  const int32_t* o;
};

// Row m of M rows of X (K values, G groups) into the TileX arrays.
void quantize_row_tiles(const float* x, int64_t K, int64_t G, int64_t m, int64_t M, int32_t* tx, float* d, int32_t* o) {
  alignas(32) int32_t w[8];
  for (int64_t g = 0; g < G; ++g) {
    __m128i b0, b1;
    int sum;
    quantize_group(x + g * kQG, imax(0, imin(kQG, K - g * kQG)), b0, b1, d + g * M + m, &sum);
    o[g * M + m] = -128 * sum;
    if (M == 1) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tx + 8 * g), b0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tx + 8 * g + 4), b1);
    } else {
      _mm256_store_si256(reinterpret_cast<__m256i*>(w), _mm256_set_m128i(b1, b0));
      for (int c = 0; c < 8; ++c) tx[(8 * g + c) * M + m] = w[c];
    }
  }
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

// The scales dw·dx of group g of a tile (16 fp16 at sc) for the X row whose dx is at dx.
T5G_QINLINE __m512 tile_scales(const uint16_t* sc, int64_t g, const float* dx) {
  return _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sc + g * kQ8TileRows))),
                       _mm512_set1_ps(*dx));
}

// The tile kernels' far prefetch (into L2) at M <= 2, where they stream at the memory's rate: spread
// over the loads, a fixed distance ahead in the matrix's bytes (tiles are contiguous), rather than the
// row kernels' burst per block (prefetch_block_far: a tile is 10-32 KB, so bursts of 160-512 lines).
// bench_kernels, same runs: decoder projections 42 -> 49-56 GB/s, LM head 45 -> 48-54 GB/s; distances
// of 4, 8 and 32 KB were no better. At M = 8 (compute-bound) it made no difference and is left out.
constexpr int64_t kTileFar = 16384;
// Q8 (tiles of 16 rows, matmul.h): one tile (G groups of 512 bytes at t, scales sc) times MC X rows:
// out[m] = the tile's 16 outputs. Per group, 8 vpdpbusd (the weight bytes q + 128, unsigned, times a
// broadcast of X's 4 signed bytes) from -128·Σqx give the exact int32 sum Σ q·qx of each row; then
// acc = fma(float(sum), dw·dx, acc), groups in order: the AVX2 kernel's sums and FMAs (q8_tile,
// matmul_quant.inl), so the same bits. MC X rows are MC independent chains.
template <int MC>
T5G_QINLINE void q8_tile(const uint8_t* t, const uint16_t* sc, int64_t G, const TileX& xt, __m512 (&out)[MC]) {
  __m512 acc[MC];
  static_for<MC>([&](auto mc) { acc[mc.value] = _mm512_setzero_ps(); });
  for (int64_t g = 0; g < G; ++g) {
    const uint8_t* p = t + g * 512;
    static_for<8>([&](auto o) { _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetch + 64 * o.value, _MM_HINT_T0); });
    if constexpr (MC <= 2) static_for<8>([&](auto o) { _mm_prefetch(reinterpret_cast<const char*>(p) + kTileFar + 64 * o.value, _MM_HINT_T2); });
    const int32_t* xg = xt.x + g * 8 * MC;
    __m512i is[MC];
    static_for<MC>([&](auto mc) { is[mc.value] = _mm512_set1_epi32(xt.o[g * MC + mc.value]); });
    static_for<8>([&](auto cc) {
      constexpr int c = decltype(cc)::value;
      const __m512i wv = _mm512_loadu_si512(p + 64 * c);
      static_for<MC>([&](auto mc) {
        constexpr int m = decltype(mc)::value;
        is[m] = _mm512_dpbusd_epi32(is[m], wv, _mm512_set1_epi32(xg[c * MC + m]));
      });
    });
    static_for<MC>([&](auto mc) {
      constexpr int m = decltype(mc)::value;
      acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[m]), tile_scales(sc, g, xt.d + g * MC + m), acc[m]);
    });
  }
  static_for<MC>([&](auto mc) { out[mc.value] = acc[mc.value]; });
}


// One X row: the tile's groups 4 at a time (4 independent vpdpbusd chains, where MC rows give MC), then
// their FMAs in order: the same arithmetic as q8_tile<1>. Only the far prefetch: a near one into L1
// as well measured no different.
T5G_QINLINE __m512 q8_tile_m1(const uint8_t* t, const uint16_t* sc, int64_t G, const TileX& xt) {
  __m512 acc = _mm512_setzero_ps();
  int64_t g = 0;
  for (; g + 4 <= G; g += 4) {
    const uint8_t* p = t + g * 512;
    static_for<32>([&](auto o) { _mm_prefetch(reinterpret_cast<const char*>(p) + kTileFar + 64 * o.value, _MM_HINT_T2); });
    __m512i is[4];
    static_for<4>([&](auto j) { is[j.value] = _mm512_set1_epi32(xt.o[g + j.value]); });
    static_for<8>([&](auto cc) {
      constexpr int c = decltype(cc)::value;
      static_for<4>([&](auto jc) {
        constexpr int j = decltype(jc)::value;
        is[j] = _mm512_dpbusd_epi32(is[j], _mm512_loadu_si512(p + 512 * j + 64 * c), _mm512_set1_epi32(xt.x[(g + j) * 8 + c]));
      });
    });
    static_for<4>([&](auto j) {
      acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[j.value]), tile_scales(sc, g + j.value, xt.d + g + j.value), acc);
    });
  }
  for (; g < G; ++g) {
    const uint8_t* p = t + g * 512;
    __m512i is = _mm512_set1_epi32(xt.o[g]);
    static_for<8>([&](auto cc) {
      constexpr int c = decltype(cc)::value;
      is = _mm512_dpbusd_epi32(is, _mm512_loadu_si512(p + 64 * c), _mm512_set1_epi32(xt.x[g * 8 + c]));
    });
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), tile_scales(sc, g, xt.d + g), acc);
  }
  return acc;
}

// The first n (<= 16) of a tile's outputs to y.
T5G_QINLINE void store_tile(__m512 v, int64_t n, float* y) {
  _mm512_mask_storeu_ps(y, static_cast<__mmask16>(n >= 16 ? 0xffff : (1u << n) - 1u), v);
}

// Q8: rows [n0, n1) of one matrix (n0 a multiple of 16; n1 may end inside a tile) times the MC rows of X,
// tile after tile, with the far prefetch (matmul_shared.inl) a tile counting as a block of 16 rows of Q bytes.
template <int MC>
void q8_tiles_range(const WeightMatrix& W, int64_t n0, int64_t n1, int64_t G, const TileX& xq, float* y, int64_t ldy) {
  const int64_t tb = G * 512, Q = G * kQG;
  const uint8_t* base = static_cast<const uint8_t*>(W.data) + (n0 / kQ8TileRows) * tb;
  const uint16_t* scales = W.scales + (n0 / kQ8TileRows) * G * kQ8TileRows;
  // The scales (a separate stream, 1/16 of the bytes): as many tiles ahead as kTileFar is in the weights.
  const int64_t tiles = cdiv(n1 - n0, kQ8TileRows), ahead = cdiv(kTileFar, tb), sb = G * kQ8TileRows * 2;
  if constexpr (MC <= 2) {  // the range's first kTileFar bytes (the kernels prefetch further on), with their scales
    prefetch_l2(base, imin(kTileFar, tiles * tb));
    prefetch_l2(scales, imin(ahead, tiles) * sb);
  }
  for (int64_t n = n0; n < n1; n += kQ8TileRows) {
    const int64_t i = (n - n0) / kQ8TileRows;
    const uint8_t* t = base + i * tb;
    const uint16_t* sc = scales + i * G * kQ8TileRows;
    if constexpr (MC <= 2)
      if (i + ahead < tiles) prefetch_l2(reinterpret_cast<const char*>(sc) + ahead * sb, sb);
    const int64_t rows = imin(kQ8TileRows, n1 - n);
    if constexpr (MC == 1) {
      store_tile(q8_tile_m1(t, sc, G, xq), rows, y + n);
    } else {
      __m512 out[MC];
      q8_tile<MC>(t, sc, G, xq, out);
      static_for<MC>([&](auto mc) { store_tile(out[mc.value], rows, y + mc.value * ldy + n); });
    }
  }
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
// row at a time.
constexpr int kRowBlock = 4;

// Q4: rows [n0, n1) of one matrix times the MC rows of X.
template <WeightType WT, int MC>
void rows_range(const WeightMatrix& W, int64_t n0, int64_t n1, int64_t rs, int64_t G, const QuantX& xq, float* y,
                int64_t ldy) {
  const uint8_t* base = static_cast<const uint8_t*>(W.data);
  // One X row: blocks of kRowBlock weight rows (independent chains, shared X loads); more X rows give
  // the chains themselves.
  constexpr int R = MC == 1 ? kRowBlock : 1;
  // The far prefetch (at MC <= 2: more X rows make the kernel compute-bound, where it cost 5% at M = 8).
  constexpr bool kFar = MC <= 2;
  if constexpr (kFar) prefetch_range_start(base + n0 * rs, W.scales + n0 * G, R, rs, G, n1 - n0);
  int64_t n = n0;
  for (; n + R <= n1; n += R) {
    if constexpr (kFar) prefetch_block_far(base + n * rs, W.scales + n * G, R, rs, G, n1 - n);
    q4_rows<R, MC>(base + n * rs, rs, W.scales + n * G, G, xq, y + n, ldy);
  }
  for (; n < n1; ++n) q4_rows<1, MC>(base + n * rs, rs, W.scales + n * G, G, xq, y + n, ldy);
}

template <WeightType WT, int MC = 8>
void rows_range_dispatch(int mc, const WeightMatrix& W, int64_t n0, int64_t n1, int64_t rs, int64_t G,
                         const QuantX& xq, float* y, int64_t ldy) {
  if (mc == MC) rows_range<WT, MC>(W, n0, n1, rs, G, xq, y, ldy);
  else if constexpr (MC > 1) rows_range_dispatch<WT, MC - 1>(mc, W, n0, n1, rs, G, xq, y, ldy);
}

template <int MC = 8>
void q8_tiles_dispatch(int mc, const WeightMatrix& W, int64_t n0, int64_t n1, int64_t G, const TileX& xt, float* y,
                       int64_t ldy) {
  if (mc == MC) q8_tiles_range<MC>(W, n0, n1, G, xt, y, ldy);
  else if constexpr (MC > 1) q8_tiles_dispatch<MC - 1>(mc, W, n0, n1, G, xt, y, ldy);
}

// Q8: X quantized into the TileX layout, then ranges of whole tiles in the decode schedule.
void q8_gemv(const float* X, int64_t M, int64_t ldx, const MatmulOut* parts, int np) {
  const int64_t K = parts[0].w->cols, G = quant_padded_cols(K) / kQG;
  const size_t xbytes = static_cast<size_t>(G * 8 * M) * 4, gbytes = static_cast<size_t>(G * M) * 4;
  char* s = static_cast<char*>(kern::scratch(kern::kScratchX, xbytes + 2 * gbytes));
  int32_t* x = reinterpret_cast<int32_t*>(s);
  float* d = reinterpret_cast<float*>(s + xbytes);
  int32_t* o = reinterpret_cast<int32_t*>(s + xbytes + gbytes);
  for (int64_t m = 0; m < M; ++m) quantize_row_tiles(X + m * ldx, K, G, m, M, x, d, o);
  const TileX xt{x, d, o};
  int64_t N[kMaxMatmulParts];
  const int64_t row_bytes = G * kQG + 2 * G;
  const bool parallel = part_rows(parts, np, row_bytes, N);
  for_each_range(N, np, kQ8TileRows, row_bytes, parallel, [&](int p, int64_t n0, int64_t n1) {
    q8_tiles_dispatch(static_cast<int>(M), *parts[p].w, n0, n1, G, xt, parts[p].y, parts[p].ldy);
  });
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
  const int R = M == 1 ? kRowBlock : 1;  // ranges of whole row blocks (rows_range)
  for_each_range(N, np, R, row_bytes, parallel, [&](int p, int64_t n0, int64_t n1) {
    rows_range_dispatch<WT>(static_cast<int>(M), *parts[p].w, n0, n1, rs, G, xq, parts[p].y, parts[p].ldy);
  });
}

}  // namespace

void qmatmul_decode(const float* X, int64_t M, int64_t ldx, const MatmulOut* parts, int n) {
  if (parts[0].w->type == WeightType::kQ8) q8_gemv(X, M, ldx, parts, n);
  else qgemv<WeightType::kQ4>(X, M, ldx, parts, n);
}

}  // namespace t5g::kern::avx512vnni
