// Products of the Q8 / Q4 weight formats on AVX-512 VNNI (vpdpbusd on 512-bit vectors): decode (M <= 8)
// and the GEMM (M > 8), one arithmetic. Compiled with the AVX-512 flags plus -mavx512vnni; called only
// when active_isa() is kAvx512 and the CPU has AVX512_VNNI (matmul.cc).
//
// The arithmetic is the AVX2 kernels' (matmul.h, matmul_quant.inl), so both give the same bits: each X
// row is quantized to int8 per group of 32 (dx = max|x| / 127, round to nearest even; a NaN or an
// infinity makes dx NaN; groups below 2^-100 count as zero); each output's group dot product Σ q·qx is
// an exact int32 sum, then acc = fma(float(sum), dw·dx, acc) over the groups in order. The weights are
// in tiles of 16 rows (matmul.h): a 64-byte chunk is 4 bytes of each of 16 rows, so vpdpbusd (the
// unsigned weight bytes times a broadcast of 4 signed X bytes) accumulates the 16 outputs of a tile in
// the 16 lanes, with no horizontal sums. The bytes are unsigned (Q8: q + 128, Q4: nibbles q + 8), so each
// sum starts from -128·Σqx (Q8) or -8·Σqx (Q4).
#include <immintrin.h>
#include <omp.h>

#include <cstdint>
#include <cstring>

#include "kernels/bf16_avx512.h"
#include "kernels/matmul_internal.h"

namespace t5g::kern::avx512vnni {
namespace {

#include "kernels/matmul_shared.inl"

constexpr int64_t kQG = kQuantGroup;
static_assert(kQuantGroup == 32, "groups of 32");

// The far prefetch (into L2) at M <= 2, where the kernels stream at the memory's rate: spread over the
// loads, a fixed distance ahead in the matrix's bytes (tiles are contiguous), rather than the row
// kernels' burst per block of rows 8 blocks ahead (a tile is 10-32 KB: bursts of 160-512 lines).
// bench_kernels, same runs: decoder projections 42 -> 49-56 GB/s, LM head 45 -> 48-54 GB/s; distances
// of 4, 8, 32 and 64 KB were no better. At M = 1 a near prefetch into L1 as well, 4 KB ahead: q4 LM head
// and projections ~5% faster over four alternating rounds (int8 no different). At M = 8 (compute-bound)
// the far prefetch made no difference and is left out.
constexpr int64_t kTileFar = 16384;
constexpr int64_t kTileNear = 4096;

// Bytes of one tile's group: 8 chunks of 64 (Q8) or 4 (Q4).
template <WeightType WT>
constexpr int kChunks = WT == WeightType::kQ8 ? 8 : 4;

// X quantized for the tile kernels: of group g, the 4 bytes of elements 32g + 4c .. 32g + 4c + 3 (c < 8)
// of X row m as one int32 at x[(8g + c)·M + m], dx at d[g·M + m], the sums' start -off·Σqx at o[g·M + m]
// (off = 128 for Q8, 8 for Q4): the MC rows' operands lie side by side, so each is a broadcast at a
// constant offset (folded into vpdpbusd as {1to16}) rather than a row stride apart (an address add per
// X row and step: M = 8 measured 10-25% slower), and 2 or 4 rows' operands are one 8- or 16-byte block
// (q_tile_x2q, q_tile_x4h). M is the product's rows, padded to an even count for q_tile_x2q (tile_x_rows;
// zero rows: x, dx and o 0).
struct TileX {
  const int32_t* x;
  const float* d;
  const int32_t* o;
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

// Row m of M rows of X (K values, G groups) into the TileX arrays; off: the weight bytes' offset.
void quantize_row_tiles(const float* x, int64_t K, int64_t G, int64_t m, int64_t M, int32_t off, int32_t* tx, float* d,
                        int32_t* o) {
  alignas(32) int32_t w[8];
  for (int64_t g = 0; g < G; ++g) {
    __m128i b0, b1;
    int sum;
    quantize_group(x + g * kQG, imax(0, imin(kQG, K - g * kQG)), b0, b1, d + g * M + m, &sum);
    o[g * M + m] = -off * sum;
    if (M == 1) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tx + 8 * g), b0);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(tx + 8 * g + 4), b1);
    } else {
      _mm256_store_si256(reinterpret_cast<__m256i*>(w), _mm256_set_m128i(b1, b0));
      for (int c = 0; c < 8; ++c) tx[(8 * g + c) * M + m] = w[c];
    }
  }
}

// Row m of M rows of the TileX arrays as a padding row: zero operands, scales and sums (its outputs are 0).
void zero_row_tiles(int64_t G, int64_t m, int64_t M, int32_t* tx, float* d, int32_t* o) {
  for (int64_t g = 0; g < G; ++g) {
    d[g * M + m] = 0.f, o[g * M + m] = 0;
    for (int c = 0; c < 8; ++c) tx[(8 * g + c) * M + m] = 0;
  }
}

// The scales dw·dx of group g of a tile (16 fp16 at sc) for the X row whose dx is at dx.
T5G_QINLINE __m512 tile_scales(const uint16_t* sc, int64_t g, const float* dx) {
  return _mm512_mul_ps(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sc + g * kQuantTileRows))),
                       _mm512_set1_ps(*dx));
}

// One chunk c of a group (64 bytes at p) into the sums `is` of the X rows whose operands are xo(c'),
// the int32 of X elements 4c' .. 4c'+3 of the group: Q8 one vpdpbusd; Q4 the low nibbles (elements
// 4c..4c+3) and the high ones (16+4c..16+4c+3).
template <WeightType WT, int MC, class XOp>
T5G_QINLINE void tile_chunk(const uint8_t* p, int c, __m512i (&is)[MC], XOp&& xo) {
  const __m512i wv = _mm512_loadu_si512(p + 64 * c);
  if constexpr (WT == WeightType::kQ8) {
    static_for<MC>([&](auto mc) { is[mc.value] = _mm512_dpbusd_epi32(is[mc.value], wv, xo(c, mc.value)); });
  } else {
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    const __m512i lo = _mm512_and_si512(wv, low4), hi = _mm512_and_si512(_mm512_srli_epi16(wv, 4), low4);
    static_for<MC>([&](auto mc) {
      is[mc.value] = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(is[mc.value], lo, xo(c, mc.value)), hi, xo(c + 4, mc.value));
    });
  }
}

// One tile (G groups at t, scales sc) times MC X rows: out[m] = the tile's 16 outputs. MC X rows are MC
// independent chains.
template <WeightType WT, int MC>
T5G_QINLINE void q_tile(const uint8_t* t, const uint16_t* sc, int64_t G, const TileX& xt, __m512 (&out)[MC]) {
  constexpr int CH = kChunks<WT>;
  __m512 acc[MC];
  static_for<MC>([&](auto mc) { acc[mc.value] = _mm512_setzero_ps(); });
  for (int64_t g = 0; g < G; ++g) {
    const uint8_t* p = t + g * 64 * CH;
    if constexpr (MC <= 2)
      static_for<CH>([&](auto o) { _mm_prefetch(reinterpret_cast<const char*>(p) + kTileFar + 64 * o.value, _MM_HINT_T2); });
    const int32_t* xg = xt.x + g * 8 * MC;
    __m512i is[MC];
    static_for<MC>([&](auto mc) { is[mc.value] = _mm512_set1_epi32(xt.o[g * MC + mc.value]); });
    static_for<CH>([&](auto cc) {
      tile_chunk<WT, MC>(p, cc.value, is, [&](int c, int m) T5G_QLAMBDA { return _mm512_set1_epi32(xg[c * MC + m]); });
    });
    static_for<MC>([&](auto mc) {
      constexpr int m = decltype(mc)::value;
      acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[m]), tile_scales(sc, g, xt.d + g * MC + m), acc[m]);
    });
  }
  static_for<MC>([&](auto mc) { out[mc.value] = acc[mc.value]; });
}

// A group's weight chunks at p as vpdpbusd operands: dots(w, c) with c the X chunk they meet, for Q8's 8
// chunks as loaded, for Q4's 4 the low nibbles (X chunk c) and the high ones (X chunk c + 4).
template <WeightType WT, class Dots>
T5G_QINLINE void group_chunks(const uint8_t* p, Dots&& dots) {
  static_for<kChunks<WT>>([&](auto cc) {
    const __m512i wv = _mm512_loadu_si512(p + 64 * cc.value);
    if constexpr (WT == WeightType::kQ8) {
      dots(wv, cc.value);
    } else {
      const __m512i low4 = _mm512_set1_epi8(0x0f);
      dots(_mm512_and_si512(wv, low4), cc.value);
      dots(_mm512_and_si512(_mm512_srli_epi16(wv, 4), low4), cc.value + 4);
    }
  });
}

// H sets of 4 X rows (taken at 4 rows of Q8: kTileKernel): each set's 4
// bytes of a chunk side by side in a 16-byte block broadcast to the four 128-bit lanes (one load per 4
// vpdpbusd instead of one broadcast per vpdpbusd: the broadcasts' loads bounded q_tile<8>), and each
// weight chunk (row r's 4 bytes in lane r) rotated within its 128-bit lanes: in vector s, lane 4a + b
// holds row 4a + (b + s) % 4 (s = 0 is the chunk as loaded). Sum (s, h) lane 4a + b is then that row
// times X row 4h + b, so the four rotations (three vpshufd) meet every row with every X row. The same
// int32 sums and fp32 FMAs as q_tile, so the same bits; the outputs come back to row order once per tile
// (a 4x4 transpose within each 128-bit lane, then a rotation).
constexpr int kRot[4] = {0xE4, 0x39, 0x4E, 0x93};  // vpshufd: lane b takes dword (b + s) % 4

template <WeightType WT, int H>
T5G_QINLINE void q_tile_x4h(const uint8_t* t, const uint16_t* sc, int64_t G, const TileX& xt, __m512 (&out)[4 * H]) {
  constexpr int CH = kChunks<WT>, MP = 4 * H;
  __m512 acc[4][H];
  static_for<4>([&](auto s) { static_for<H>([&](auto h) { acc[s.value][h.value] = _mm512_setzero_ps(); }); });
  auto bcast4 = [](const void* p) T5G_QLAMBDA {
    return _mm512_broadcast_i32x4(_mm_loadu_si128(static_cast<const __m128i*>(p)));
  };
  for (int64_t g = 0; g < G; ++g) {
    const uint8_t* p = t + g * 64 * CH;
    const int32_t* xg = xt.x + g * 8 * MP;
    __m512i is[4][H];
    static_for<H>([&](auto h) {
      const __m512i o = bcast4(xt.o + g * MP + 4 * h.value);
      static_for<4>([&](auto s) { is[s.value][h.value] = o; });
    });
    auto dots = [&](__m512i w, int c) T5G_QLAMBDA {
      __m512i x[H];
      static_for<H>([&](auto h) { x[h.value] = bcast4(xg + c * MP + 4 * h.value); });
      static_for<4>([&](auto s) {
        constexpr int S = decltype(s)::value;
        const __m512i ws = S == 0 ? w : _mm512_shuffle_epi32(w, static_cast<_MM_PERM_ENUM>(kRot[S]));
        static_for<H>([&](auto h) { is[S][h.value] = _mm512_dpbusd_epi32(is[S][h.value], ws, x[h.value]); });
      });
    };
    group_chunks<WT>(p, dots);
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sc + g * kQuantTileRows)));
    __m512 dx[H];
    static_for<H>([&](auto h) { dx[h.value] = _mm512_broadcast_f32x4(_mm_loadu_ps(xt.d + g * MP + 4 * h.value)); });
    static_for<4>([&](auto s) {
      constexpr int S = decltype(s)::value;
      const __m512 dws = S == 0 ? dw : _mm512_permute_ps(dw, kRot[S]);
      static_for<H>([&](auto h) {
        constexpr int J = decltype(h)::value;
        acc[S][J] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[S][J]), _mm512_mul_ps(dws, dx[J]), acc[S][J]);
      });
    });
  }
  static_for<H>([&](auto h) {
    constexpr int J = decltype(h)::value;
    const __m512 t0 = _mm512_unpacklo_ps(acc[0][J], acc[1][J]), t1 = _mm512_unpacklo_ps(acc[2][J], acc[3][J]);
    const __m512 t2 = _mm512_unpackhi_ps(acc[0][J], acc[1][J]), t3 = _mm512_unpackhi_ps(acc[2][J], acc[3][J]);
    auto lo = [](__m512 a, __m512 b) T5G_QLAMBDA {
      return _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
    };
    auto hi = [](__m512 a, __m512 b) T5G_QLAMBDA {
      return _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
    };
    // T_b lane 4a + s: row 4a + (b + s) % 4; out lane 4a + j takes T_b's dword (j - b) % 4.
    out[4 * J + 0] = lo(t0, t1);
    out[4 * J + 1] = _mm512_permute_ps(hi(t0, t1), kRot[3]);
    out[4 * J + 2] = _mm512_permute_ps(lo(t2, t3), kRot[2]);
    out[4 * J + 3] = _mm512_permute_ps(hi(t2, t3), kRot[1]);
  });
}

// H sets of 2 X rows (2·H rows; TileX padded to an even count, a row past M zero): each set's 8 bytes of a chunk
// (rows 2h, 2h + 1, side by side in the TileX arrays) a 64-bit broadcast, and each weight chunk (row r's 4
// bytes in lane r) taken as loaded and with the two rows of each 64-bit lane swapped: sum (s, h) lane
// 2a + b is weight row 2a + (b + s) % 2 times X row 2h + b. One vpshufd per chunk instead of
// q_tile_x4h's three (its 16-byte broadcasts meet the rows four to a lane, its rotations three ways): the
// shuffles ran on the pipes vpdpbusd needs. The same int32 sums and fp32 FMAs per (weight row, X row), so
// the same bits.
template <WeightType WT, int H>
T5G_QINLINE void q_tile_x2q(const uint8_t* t, const uint16_t* sc, int64_t G, const TileX& xt, __m512 (&out)[2 * H]) {
  constexpr int CH = kChunks<WT>, MP = 2 * H;
  __m512 acc[2][H];
  static_for<2>([&](auto s) { static_for<H>([&](auto h) { acc[s.value][h.value] = _mm512_setzero_ps(); }); });
  auto bcast2 = [](const void* p) T5G_QLAMBDA { return _mm512_set1_epi64(*static_cast<const long long*>(p)); };
  for (int64_t g = 0; g < G; ++g) {
    const uint8_t* p = t + g * 64 * CH;
    const int32_t* xg = xt.x + g * 8 * MP;
    __m512i is[2][H];
    static_for<H>([&](auto h) {
      const __m512i o = bcast2(xt.o + g * MP + 2 * h.value);
      is[0][h.value] = o, is[1][h.value] = o;
    });
    auto dots = [&](__m512i w, int c) T5G_QLAMBDA {
      const __m512i ws = _mm512_shuffle_epi32(w, static_cast<_MM_PERM_ENUM>(0xB1));  // dwords 1 0 3 2
      static_for<H>([&](auto h) {
        const __m512i x = bcast2(xg + c * MP + 2 * h.value);
        is[0][h.value] = _mm512_dpbusd_epi32(is[0][h.value], w, x);
        is[1][h.value] = _mm512_dpbusd_epi32(is[1][h.value], ws, x);
      });
    };
    group_chunks<WT>(p, dots);
    const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sc + g * kQuantTileRows)));
    const __m512 dws = _mm512_permute_ps(dw, 0xB1);
    static_for<H>([&](auto h) {
      const __m512 dx = _mm512_castsi512_ps(bcast2(xt.d + g * MP + 2 * h.value));
      acc[0][h.value] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[0][h.value]), _mm512_mul_ps(dw, dx), acc[0][h.value]);
      acc[1][h.value] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[1][h.value]), _mm512_mul_ps(dws, dx), acc[1][h.value]);
    });
  }
  // Output row 2h + j, lane 2a + b: acc[0][h] there when b == j, else acc[1][h] at lane 2a + j.
  static_for<H>([&](auto h) {
    const __m512 sw = _mm512_permute_ps(acc[1][h.value], 0xB1);
    out[2 * h.value] = _mm512_mask_mov_ps(acc[0][h.value], 0xAAAA, sw);
    out[2 * h.value + 1] = _mm512_mask_mov_ps(acc[0][h.value], 0x5555, sw);
  });
}

// One X row: the tile's groups 4 at a time (4 independent vpdpbusd chains, where MC rows give MC), then
// their FMAs in order: the same arithmetic as q_tile<WT, 1>.
template <WeightType WT>
T5G_QINLINE __m512 q_tile_m1(const uint8_t* t, const uint16_t* sc, int64_t G, const TileX& xt) {
  constexpr int CH = kChunks<WT>;
  constexpr int64_t gb = 64 * CH;  // bytes per group
  __m512 acc = _mm512_setzero_ps();
  int64_t g = 0;
  for (; g + 4 <= G; g += 4) {
    const uint8_t* p = t + g * gb;
    static_for<4 * CH>([&](auto o) {
      _mm_prefetch(reinterpret_cast<const char*>(p) + kTileNear + 64 * o.value, _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(p) + kTileFar + 64 * o.value, _MM_HINT_T2);
    });
    __m512i is[4][1];
    static_for<4>([&](auto j) { is[j.value][0] = _mm512_set1_epi32(xt.o[g + j.value]); });
    static_for<CH>([&](auto cc) {
      static_for<4>([&](auto jc) {
        constexpr int j = decltype(jc)::value;
        tile_chunk<WT, 1>(p + j * gb, cc.value, is[j],
                          [&](int c, int) T5G_QLAMBDA { return _mm512_set1_epi32(xt.x[(g + j) * 8 + c]); });
      });
    });
    static_for<4>([&](auto j) {
      acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[j.value][0]), tile_scales(sc, g + j.value, xt.d + g + j.value), acc);
    });
  }
  for (; g < G; ++g) {
    const uint8_t* p = t + g * gb;
    __m512i is[1] = {_mm512_set1_epi32(xt.o[g])};
    static_for<CH>([&](auto cc) {
      tile_chunk<WT, 1>(p, cc.value, is, [&](int c, int) T5G_QLAMBDA { return _mm512_set1_epi32(xt.x[g * 8 + c]); });
    });
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[0]), tile_scales(sc, g, xt.d + g), acc);
  }
  return acc;
}

// The first n (<= 16) of a tile's outputs to y, rounded to bf16 when rnd (MatmulOut::round_bf16).
T5G_QINLINE void store_tile(__m512 v, int64_t n, float* y, bool rnd) {
  _mm512_mask_storeu_ps(y, static_cast<__mmask16>(n >= 16 ? 0xffff : (1u << n) - 1u), rnd ? round_bf16_16(v) : v);
}

// The kernel a tile takes for MC X rows, by the measurements (one thread, M x 2048 x 640 in L2, minimum of
// 300 alternating runs, us; BENCHMARKS.md, twenty-fourth session):
//   M        2     3     4     5     6     8
//   Q8  x2q 20.2  24.3  26.1  26.7  29.8  33.6    q_tile 18.0  21.5,  x4h 24.4 (M = 4),  q_tile 28.6  34.6, x4h 34.2
//   Q4  x2q 11.8  17.6  19.2  24.4  27.0  32.1    q_tile 15.4  19.8  24.0  27.0  32.9,  x4h 33.5 (M = 8)
// (q_tile_x2q's sets of 2 rows, padded to an even count: one weight shuffle a chunk and a 64-bit broadcast
// per set; q_tile_x4h's sets of 4: three shuffles and a 16-byte broadcast per set; q_tile: one 32-bit
// broadcast per row and chunk. Every broadcast and shuffle runs on the pipes vpdpbusd needs.)
enum class TileKernel { kOneRow, kRowBroadcasts, kPairs, kQuads };
constexpr TileKernel tile_kernel(WeightType wt, int64_t m) {
  if (m == 1) return TileKernel::kOneRow;
  if (wt == WeightType::kQ4 || m >= 5) return TileKernel::kPairs;
  return m == 4 ? TileKernel::kQuads : TileKernel::kRowBroadcasts;
}
template <WeightType WT, int MC>
constexpr TileKernel kTileKernel = tile_kernel(WT, MC);

// The rows the TileX arrays hold for m rows of X: q_tile_x2q reads them in pairs (m odd: a zero row).
constexpr int64_t tile_x_rows(WeightType wt, int64_t m) {
  return tile_kernel(wt, m) == TileKernel::kPairs ? (m + 1) / 2 * 2 : m;
}

// Rows [n0, n1) of one matrix (n0 a multiple of 16; n1 may end inside a tile) times the MC rows of X,
// tile after tile.
template <WeightType WT, int MC>
void q_tiles_range(const WeightMatrix& W, int64_t n0, int64_t n1, int64_t G, const TileX& xt, float* y, int64_t ldy,
                   bool rnd) {
  const int64_t tb = G * 64 * kChunks<WT>;
  const uint8_t* base = static_cast<const uint8_t*>(W.data) + (n0 / kQuantTileRows) * tb;
  const uint16_t* scales = W.scales + (n0 / kQuantTileRows) * G * kQuantTileRows;
  // The scales (a separate stream, 1/16 (Q8) or 1/8 (Q4) of the bytes): as many tiles ahead as kTileFar
  // is in the weights.
  const int64_t tiles = cdiv(n1 - n0, kQuantTileRows), ahead = cdiv(kTileFar, tb), sb = G * kQuantTileRows * 2;
  if constexpr (MC <= 2) {  // the range's first kTileFar bytes (the kernels prefetch further on), with their scales
    prefetch_l2(base, imin(kTileFar, tiles * tb));
    prefetch_l2(scales, imin(ahead, tiles) * sb);
  }
  for (int64_t i = 0; i < tiles; ++i) {
    const uint8_t* t = base + i * tb;
    const uint16_t* sc = scales + i * G * kQuantTileRows;
    if constexpr (MC <= 2)
      if (i + ahead < tiles) prefetch_l2(reinterpret_cast<const char*>(sc) + ahead * sb, sb);
    const int64_t n = n0 + i * kQuantTileRows, rows = imin(kQuantTileRows, n1 - n);
    constexpr TileKernel kind = kTileKernel<WT, MC>;
    if constexpr (kind == TileKernel::kOneRow) {
      store_tile(q_tile_m1<WT>(t, sc, G, xt), rows, y + n, rnd);
    } else {
      __m512 out[8];
      if constexpr (kind == TileKernel::kPairs)
        q_tile_x2q<WT, (MC + 1) / 2>(t, sc, G, xt, reinterpret_cast<__m512(&)[2 * ((MC + 1) / 2)]>(out));
      else if constexpr (kind == TileKernel::kQuads)
        q_tile_x4h<WT, 1>(t, sc, G, xt, reinterpret_cast<__m512(&)[4]>(out));
      else
        q_tile<WT, MC>(t, sc, G, xt, reinterpret_cast<__m512(&)[MC]>(out));
      static_for<MC>([&](auto mc) { store_tile(out[mc.value], rows, y + mc.value * ldy + n, rnd); });
    }
  }
}

template <WeightType WT, int MC = 8>
void q_tiles_dispatch(int mc, const WeightMatrix& W, int64_t n0, int64_t n1, int64_t G, const TileX& xt, float* y,
                      int64_t ldy, bool rnd) {
  if (mc == MC) q_tiles_range<WT, MC>(W, n0, n1, G, xt, y, ldy, rnd);
  else if constexpr (MC > 1) q_tiles_dispatch<WT, MC - 1>(mc, W, n0, n1, G, xt, y, ldy, rnd);
}

// X quantized into the TileX layout, then ranges of whole tiles in the decode schedule (for_each_range:
// one list of row ranges for all the parts).
template <WeightType WT>
void qgemv(const float* X, int64_t M, int64_t ldx, const MatmulOut* parts, int np) {
  const int64_t K = parts[0].w->cols, G = quant_padded_cols(K) / kQG;
  const int64_t Mp = tile_x_rows(WT, M);  // (the padding rows: zero operands, scales and sums)
  const size_t xbytes = static_cast<size_t>(G * 8 * Mp) * 4, gbytes = static_cast<size_t>(G * Mp) * 4;
  char* s = static_cast<char*>(kern::scratch(kern::kScratchX, xbytes + 2 * gbytes));
  int32_t* x = reinterpret_cast<int32_t*>(s);
  float* d = reinterpret_cast<float*>(s + xbytes);
  int32_t* o = reinterpret_cast<int32_t*>(s + xbytes + gbytes);
  const int32_t off = WT == WeightType::kQ8 ? 128 : 8;
  for (int64_t m = 0; m < M; ++m) quantize_row_tiles(X + m * ldx, K, G, m, Mp, off, x, d, o);
  for (int64_t m = M; m < Mp; ++m) zero_row_tiles(G, m, Mp, x, d, o);
  const TileX xt{x, d, o};
  int64_t N[kMaxMatmulParts];
  const int64_t row_bytes = G * kChunks<WT> * 4 + 2 * G;
  const bool parallel = part_rows(parts, np, row_bytes, N);
  for_each_range(N, np, kQuantTileRows, row_bytes, parallel, [&](int p, int64_t n0, int64_t n1) {
    q_tiles_dispatch<WT>(static_cast<int>(M), *parts[p].w, n0, n1, G, xt, parts[p].y, parts[p].ldy, parts[p].round_bf16);
  });
}

// The GEMM (M > 8: the encoder, prefill, the vision tower): NT consecutive tiles (tb bytes and scs scales
// apart) times MC X rows, whose operands are a TileX block of their own (x[(8g + c)·MC + m], d and o at
// g·MC + m). Each X row's 4 bytes are a broadcast (an embedded {1to16}: a load, no shuffle) and each weight
// chunk a plain load: NT·MC chains of vpdpbusd, and per group the same int32 sums and the same
// acc = fma(float(sum), dw·dx, acc) as q_tile, so every output has the decode kernels' bits. NT = 2, MC = 6
// (12 + 12 accumulators) measured fastest, one thread in L1: 75-78% of vpdpbusd's peak against 70% for
// q_tile_x4h's 8 rows; 95-98% without the fp32 multiply and FMA per group, which share its two pipes.
template <WeightType WT, int NT, int MC>
T5G_QINLINE void q_gemm_kernel(const uint8_t* t, int64_t tb, const uint16_t* sc, int64_t scs, int64_t G,
                               const int32_t* x, const float* d, const int32_t* o, __m512 (&out)[NT][MC]) {
  constexpr int CH = kChunks<WT>;
  __m512 acc[NT][MC];
  static_for<NT>([&](auto n) { static_for<MC>([&](auto m) { acc[n.value][m.value] = _mm512_setzero_ps(); }); });
  for (int64_t g = 0; g < G; ++g) {
    __m512i is[NT][MC];
    static_for<MC>([&](auto m) {
      const __m512i ov = _mm512_set1_epi32(o[g * MC + m.value]);
      static_for<NT>([&](auto n) { is[n.value][m.value] = ov; });
    });
    const int32_t* xg = x + g * 8 * MC;
    static_for<CH>([&](auto cc) {
      constexpr int c = decltype(cc)::value;
      __m512i w[NT];
      static_for<NT>([&](auto n) { w[n.value] = _mm512_loadu_si512(t + n.value * tb + (g * CH + c) * 64); });
      if constexpr (WT == WeightType::kQ8) {
        static_for<MC>([&](auto m) {
          const __m512i xb = _mm512_set1_epi32(xg[c * MC + m.value]);
          static_for<NT>([&](auto n) { is[n.value][m.value] = _mm512_dpbusd_epi32(is[n.value][m.value], w[n.value], xb); });
        });
      } else {  // low nibbles: elements 4c..4c+3, high: 16+4c..16+4c+3 (tile_chunk)
        const __m512i low4 = _mm512_set1_epi8(0x0f);
        __m512i hi[NT];
        static_for<NT>([&](auto n) {
          hi[n.value] = _mm512_and_si512(_mm512_srli_epi16(w[n.value], 4), low4);
          w[n.value] = _mm512_and_si512(w[n.value], low4);
        });
        static_for<MC>([&](auto m) {
          const __m512i xl = _mm512_set1_epi32(xg[c * MC + m.value]), xh = _mm512_set1_epi32(xg[(c + 4) * MC + m.value]);
          static_for<NT>([&](auto n) {
            is[n.value][m.value] =
                _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(is[n.value][m.value], w[n.value], xl), hi[n.value], xh);
          });
        });
      }
    });
    static_for<NT>([&](auto n) {
      const __m512 dw =
          _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(sc + n.value * scs + g * kQuantTileRows)));
      static_for<MC>([&](auto m) {
        acc[n.value][m.value] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is[n.value][m.value]),
                                                _mm512_mul_ps(dw, _mm512_set1_ps(d[g * MC + m.value])), acc[n.value][m.value]);
      });
    });
  }
  static_for<NT>([&](auto n) { static_for<MC>([&](auto m) { out[n.value][m.value] = acc[n.value][m.value]; }); });
}

constexpr int kGemmRows = 6;            // X rows per block (q_gemm_kernel's MC)
constexpr int64_t kGemmChunkBlocks = 32;  // blocks per pass over the weights: 192 rows, their int8 in L2

// Tiles [n0, n1) of one matrix (n0 a multiple of 16), two at a time, times the nb blocks of a chunk of X
// (mc rows), each tile pair in L1 (up to K = 640 for Q8) while the blocks stream from L2.
template <WeightType WT>
void q_gemm_range(const MatmulOut& part, int64_t n0, int64_t n1, int64_t G, const int32_t* x, const float* d,
                  const int32_t* o, int64_t nb, int64_t mc, float* y) {
  constexpr int MC = kGemmRows;
  const WeightMatrix& W = *part.w;
  const int64_t tb = G * 64 * kChunks<WT>, scs = G * kQuantTileRows, bx = G * 8 * MC, bg = G * MC;
  auto run = [&]<int NT>(int64_t n) T5G_QLAMBDA {
    const uint8_t* t = static_cast<const uint8_t*>(W.data) + (n / kQuantTileRows) * tb;
    const uint16_t* sc = W.scales + (n / kQuantTileRows) * scs;
    for (int64_t b = 0; b < nb; ++b) {
      __m512 out[NT][MC];
      q_gemm_kernel<WT, NT, MC>(t, tb, sc, scs, G, x + b * bx, d + b * bg, o + b * bg, out);
      const int64_t rows = imin(MC, mc - b * MC);
      static_for<NT>([&](auto nt) {
        const int64_t c0 = n + nt.value * kQuantTileRows, cols = imin(kQuantTileRows, n1 - c0);
        for (int64_t m = 0; m < rows; ++m) store_tile(out[nt.value][m], cols, y + (b * MC + m) * part.ldy + c0, part.round_bf16);
      });
    }
  };
  int64_t n = n0;
  for (; n + kQuantTileRows < n1; n += 2 * kQuantTileRows) run.template operator()<2>(n);
  if (n < n1) run.template operator()<1>(n);
}

// M > 8: X in blocks of kGemmRows rows, each quantized into a TileX block of its own (as the decode kernels
// quantize a row), then every tile pair times every block of a chunk (q_gemm_range). Each output is exactly
// what the decode kernels compute for its X row, whatever M, the chunks or the threads.
template <WeightType WT>
void qgemm(const float* X, int64_t M, int64_t ldx, const MatmulOut* parts, int np) {
  constexpr int MC = kGemmRows;
  const int64_t K = parts[0].w->cols, G = quant_padded_cols(K) / kQG;
  const int32_t off = WT == WeightType::kQ8 ? 128 : 8;
  const int64_t bx = G * 8 * MC, bg = G * MC;  // int32 of x, and floats of d (int32 of o), per block
  const int64_t row_bytes = G * kChunks<WT> * 4 + 2 * G;
  int64_t N[kMaxMatmulParts];
  part_rows(parts, np, row_bytes, N);
  for (int64_t m0 = 0; m0 < M; m0 += kGemmChunkBlocks * MC) {
    const int64_t mc = imin(kGemmChunkBlocks * MC, M - m0), nb = cdiv(mc, MC);
    int32_t* x = static_cast<int32_t*>(kern::scratch(kern::kScratchX, static_cast<size_t>(nb * (bx + 2 * bg)) * 4));
    float* d = reinterpret_cast<float*>(x + nb * bx);
    int32_t* o = reinterpret_cast<int32_t*>(d + nb * bg);
    auto quantize = [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b)
        for (int64_t m = 0; m < MC; ++m) {
          int32_t *xb = x + b * bx, *ob = o + b * bg;
          float* db = d + b * bg;
          if (b * MC + m < mc) quantize_row_tiles(X + (m0 + b * MC + m) * ldx, K, G, m, MC, off, xb, db, ob);
          else zero_row_tiles(G, m, MC, xb, db, ob);
        }
    };
    using Quantize = decltype(quantize);
    for_each_unit_range(
        nb, 1, nb > 1, [](void* c, int64_t a, int64_t b) { (*static_cast<Quantize*>(c))(a, b); }, &quantize);
    for_each_range(N, np, 2 * kQuantTileRows, row_bytes * mc, true, [&](int p, int64_t n0, int64_t n1) {
      q_gemm_range<WT>(parts[p], n0, n1, G, x, d, o, nb, mc, parts[p].y + m0 * parts[p].ldy);
    });
  }
}

}  // namespace

void qmatmul_gemm(const float* X, int64_t M, int64_t ldx, const MatmulOut* parts, int n) {
  if (parts[0].w->type == WeightType::kQ8) qgemm<WeightType::kQ8>(X, M, ldx, parts, n);
  else qgemm<WeightType::kQ4>(X, M, ldx, parts, n);
}

void qmatmul_decode(const float* X, int64_t M, int64_t ldx, const MatmulOut* parts, int n) {
  if (parts[0].w->type == WeightType::kQ8) qgemv<WeightType::kQ8>(X, M, ldx, parts, n);
  else qgemv<WeightType::kQ4>(X, M, ldx, parts, n);
}

}  // namespace t5g::kern::avx512vnni
