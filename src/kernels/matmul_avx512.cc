// AVX-512 matrix products (F, BW, VL, DQ; plus AVX512_BF16 for the vdpbf16ps path). Compiled with the
// AVX-512 flags (see CMakeLists.txt); called only when active_isa() >= kAvx512, and the bf16-dot path
// only when cpu_features().avx512bf16.
#include <immintrin.h>
#include <omp.h>

#include <cstdint>
#include <cstring>

#include "kernels/bf16_avx512.h"
#include "kernels/matmul_internal.h"
#include "util/bf16.h"

namespace t5g::kern::avx512 {
namespace {

struct V {
  static constexpr int L = 16;
  using F = __m512;
  using Mask = __mmask16;
  static F zero() { return _mm512_setzero_ps(); }
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, F v) { _mm512_storeu_ps(p, v); }
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm512_fmadd_ps(a, b, c); }
  static F bcast(const float* p) { return _mm512_set1_ps(*p); }
  static Mask mask(int n) { return static_cast<Mask>((1u << n) - 1u); }
  static F loadm(const float* p, Mask m) { return _mm512_maskz_loadu_ps(m, p); }
  static void storem(float* p, Mask m, F v) { _mm512_mask_storeu_ps(p, m, v); }
  static float hsum(F v) {
    const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
  }
  static F bf16_even(const uint16_t* p) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_loadu_si512(p), 16)); }
  static F bf16_odd(const uint16_t* p) {
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_loadu_si512(p), _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
  }
  static F f16(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
};

constexpr int kMR = 12;
constexpr int kNV = 2;

#include "kernels/matmul_impl.inl"

// ---------------------------------------------------------------------------------------------
// AVX512_BF16 path: X is bf16-representable (MatmulOptions::x_is_bf16) and W is bf16, so both are fed
// to vdpbf16ps as (k, k+1) pairs; fp32 accumulation. Per output element the pair order is fixed by K.

inline __m512bh as_bh(__m512i v) { return (__m512bh)v; }
inline uint32_t hi16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u >> 16;  // exact: the caller guarantees f is a bf16 value
}

// GEMM regime: the vdpbf16ps register tile, C[MR x 16 NV] (+)= A·B over kp (k, k+1) pairs, fp32 chains.
// B: pair panels (dwords, low half = even k), ldbk dwords from one pair to the next. A: PACKED, pairs as
// [kp][kMR] dwords (PackBf16Dot::pack_a); else bf16 row-major (lda elements) read in place, each pair a
// broadcast dword (attention's operands: gemm_bf16_panels). PREFETCH: B is a panel packed at load, read
// from memory by the first row tile over it: each pair's line is asked for kBdPanelPrefetchPairs ahead
// (the 128-token encode's products 2-3% faster; the hardware prefetcher alone left the tile waiting).
constexpr int64_t kBdPanelPrefetchPairs = 32;
template <int MR, bool EDGE, bool PACKED, bool PREFETCH = false, int NV = kNV>
void bd_ukernel(int64_t kp, const uint16_t* A, int64_t lda, const uint32_t* Bp, int64_t ldbk, float* C, int64_t ldc,
                int nvalid, bool accumulate) {
  __m512 c[MR][NV];
  __mmask16 mk[NV];
#pragma GCC unroll 8
  for (int j = 0; j < NV; ++j) mk[j] = V::mask(static_cast<int>(imax(0, imin(16, nvalid - j * 16))));
  if (accumulate) {
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j)
        c[i][j] = EDGE ? _mm512_maskz_loadu_ps(mk[j], C + i * ldc + j * 16) : _mm512_loadu_ps(C + i * ldc + j * 16);
  } else {
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) c[i][j] = _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < kp; ++k) {
    if constexpr (PREFETCH) {
      static_assert(NV * 16 * 4 == 128, "a pair of the panel is two lines");
      _mm_prefetch(reinterpret_cast<const char*>(Bp + kBdPanelPrefetchPairs * ldbk), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(Bp + kBdPanelPrefetchPairs * ldbk + 16), _MM_HINT_T0);
    }
    __m512i b[NV];
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) b[j] = _mm512_loadu_si512(Bp + j * 16);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      int32_t pair;
      std::memcpy(&pair, PACKED ? A + 2 * (k * kMR + i) : A + i * lda + 2 * k, 4);
      const __m512i a = _mm512_set1_epi32(pair);
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) c[i][j] = _mm512_dpbf16_ps(c[i][j], as_bh(a), as_bh(b[j]));
    }
    Bp += ldbk;
  }
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) {
      if constexpr (EDGE) _mm512_mask_storeu_ps(C + i * ldc + j * 16, mk[j], c[i][j]);
      else _mm512_storeu_ps(C + i * ldc + j * 16, c[i][j]);
    }
}

using BdUkernelFn = void (*)(int64_t, const uint16_t*, int64_t, const uint32_t*, int64_t, float*, int64_t, int, bool);

template <bool PACKED, bool PREFETCH, int NV, int MR>
constexpr void bd_fill(BdUkernelFn full[], BdUkernelFn edge[]) {
  full[MR] = &bd_ukernel<MR, false, PACKED, PREFETCH, NV>;
  edge[MR] = &bd_ukernel<MR, true, PACKED, PREFETCH, NV>;
  if constexpr (MR > 1) bd_fill<PACKED, PREFETCH, NV, MR - 1>(full, edge);
}

// The register tiles of up to MAXMR rows (by row count), NV vectors of 16 columns wide.
template <bool PACKED, bool PREFETCH = false, int NV = kNV, int MAXMR = kMR>
struct BdUkernels {
  BdUkernelFn full[MAXMR + 1] = {};
  BdUkernelFn edge[MAXMR + 1] = {};
  constexpr BdUkernels() { bd_fill<PACKED, PREFETCH, NV, MAXMR>(full, edge); }
  void run(int mr, int nvalid, int64_t kp, const uint16_t* A, int64_t lda, const uint32_t* Bp, int64_t ldbk, float* C,
           int64_t ldc, bool accumulate) const {
    (nvalid == kNR ? full : edge)[mr](kp, A, lda, Bp, ldbk, C, ldc, nvalid, accumulate);
  }
};
constexpr BdUkernels<true> g_bd_uk;        // A packed (bd_gemm)
constexpr BdUkernels<true, true> g_bd_uk_first;  // ... the first row tile over a panel packed at load
constexpr BdUkernels<false> g_bd_direct;  // A read in place (gemm_bf16_panels)
// gemm_bf16_panels' last panel when it has at most 16 columns (the vision tower's P·V: head dim 72 = 2 x 32 +
// 8): its first 16 columns only, instead of 32 with 24 of them padding, in tiles of up to 24 rows (one vector
// each: 24 chains keep both vdpbf16ps pipes busy).
constexpr int kBdHalfMR = 24;
constexpr BdUkernels<false, false, 1, kBdHalfMR> g_bd_direct_half;

inline uint32_t w_pair(const uint16_t* row, int64_t k, int64_t kend) {
  const uint32_t lo = k < kend ? row[k] : 0u;
  const uint32_t hi = k + 1 < kend ? row[k + 1] : 0u;
  return lo | (hi << 16);
}

// r[j] lane l -> r[l] lane j (16 x 16, 32-bit lanes): 32-bit, then 64-bit interleaves within the 128-bit
// lanes, then two 128-bit lane shuffles.
inline void transpose16(__m512 (&r)[16]) {
  __m512 a[16], b[16];
  for (int i = 0; i < 16; i += 2) {
    a[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    a[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int g = 0; g < 16; g += 4) {  // b[g + e]: column 4q + e of rows g..g+3 in 128-bit lane q
    b[g + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a[g]), _mm512_castps_pd(a[g + 2])));
    b[g + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a[g]), _mm512_castps_pd(a[g + 2])));
    b[g + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a[g + 1]), _mm512_castps_pd(a[g + 3])));
    b[g + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a[g + 1]), _mm512_castps_pd(a[g + 3])));
  }
  for (int e = 0; e < 4; ++e) {
    const __m512 c0 = _mm512_shuffle_f32x4(b[e], b[4 + e], 0x88), c1 = _mm512_shuffle_f32x4(b[e], b[4 + e], 0xdd);
    const __m512 c2 = _mm512_shuffle_f32x4(b[8 + e], b[12 + e], 0x88), c3 = _mm512_shuffle_f32x4(b[8 + e], b[12 + e], 0xdd);
    r[e] = _mm512_shuffle_f32x4(c0, c2, 0x88);
    r[8 + e] = _mm512_shuffle_f32x4(c0, c2, 0xdd);
    r[4 + e] = _mm512_shuffle_f32x4(c1, c3, 0x88);
    r[12 + e] = _mm512_shuffle_f32x4(c1, c3, 0xdd);
  }
}

struct PackBf16Dot {
  static int64_t kp(int64_t kc) { return (kc + 1) / 2; }
  static void pack_b(const WeightMatrix& W, int64_t n0, int nr, int64_t k0, int64_t kc, float* Bpf) {
    uint32_t* Bp = reinterpret_cast<uint32_t*>(Bpf);
    const uint16_t* w = static_cast<const uint16_t*>(W.data);
    const int64_t K = W.cols;
    const int64_t kpp = kc / 2;  // whole pairs
    const int64_t np = kp(kc);
    int j0 = 0;
    for (; j0 + 8 <= nr; j0 += 8) {
      int64_t kk = 0;
      // The next 8 rows (this panel's, or the next panel's first) into L2 alongside, a line of each per
      // line read here: each group of rows otherwise starts on 8 cold streams from memory.
      const bool pf = n0 + j0 + 16 <= W.rows;
      for (; kk + 8 <= kpp; kk += 8) {
        if (pf && (kk & 8) == 0)
#pragma GCC unroll 8
          for (int j = 0; j < 8; ++j)
            _mm_prefetch(reinterpret_cast<const char*>(w + (n0 + j0 + 8 + j) * K + k0 + 2 * kk), _MM_HINT_T1);
        __m256 r[8];
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j)
          r[j] = _mm256_castsi256_ps(
              _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + (n0 + j0 + j) * K + k0 + 2 * kk)));
        transpose8(r);
#pragma GCC unroll 8
        for (int t = 0; t < 8; ++t)
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(Bp + (kk + t) * kNR + j0), _mm256_castps_si256(r[t]));
      }
      for (; kk < np; ++kk)
        for (int j = 0; j < 8; ++j) Bp[kk * kNR + j0 + j] = w_pair(w + (n0 + j0 + j) * K + k0, 2 * kk, kc);
    }
    for (int64_t kk = 0; kk < np; ++kk) {
      for (int j = j0; j < nr; ++j) Bp[kk * kNR + j] = w_pair(w + (n0 + j) * K + k0, 2 * kk, kc);
      for (int j = nr; j < kNR; ++j) Bp[kk * kNR + j] = 0u;
    }
  }
  // Ap[kk·kMR + i] = the pair (k0 + 2kk, k0 + 2kk + 1) of X row m0 + i as bf16 (the top halves of the fp32
  // values: exact, X being bf16 values), zero past kc and for rows i >= mr. 16 pairs of the 12 rows at a
  // time: each row's 32 values become 16 dwords, and a 16 x 16 transpose (rows 12-15 zero) gives each
  // pair's 12 rows side by side (the scalar loop was 5% of a 128-token encode).
  static void pack_a(const float* X, int64_t ldx, int64_t m0, int mr, int64_t k0, int64_t kc, float* Apf) {
    static_assert(kMR <= 16, "one 16 x 16 transpose per block of pairs");
    const int64_t np = kp(kc);
    const __mmask16 rows = static_cast<__mmask16>((1u << kMR) - 1u);
    for (int64_t p0 = 0; p0 < np; p0 += 16) {
      const int64_t left = kc - 2 * p0;  // values of each row from this block on
      const __mmask16 m_lo = static_cast<__mmask16>(left >= 16 ? 0xffff : (1u << left) - 1u);
      const __mmask16 m_hi = static_cast<__mmask16>(left <= 16 ? 0 : left >= 32 ? 0xffff : (1u << (left - 16)) - 1u);
      __m512 r[16];
      for (int i = 0; i < 16; ++i) {
        if (i >= mr) {
          r[i] = _mm512_setzero_ps();
          continue;
        }
        const float* x = X + (m0 + i) * ldx + k0 + 2 * p0;
        const __m256i b0 = _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(_mm512_maskz_loadu_ps(m_lo, x)), 16));
        const __m256i b1 =
            _mm512_cvtepi32_epi16(_mm512_srli_epi32(_mm512_castps_si512(_mm512_maskz_loadu_ps(m_hi, x + 16)), 16));
        r[i] = _mm512_castsi512_ps(_mm512_inserti64x4(_mm512_castsi256_si512(b0), b1, 1));
      }
      transpose16(r);
      const int64_t n = imin(16, np - p0);
      for (int64_t t = 0; t < n; ++t) _mm512_mask_storeu_ps(Apf + (p0 + t) * kMR, rows, r[t]);
    }
  }
};

// Decode regime (M <= kGemvMaxM) of the vdpbf16ps path. Every output is one fp32 chain over the (k, k+1)
// pairs in order, exactly as the GEMM's bd_ukernel computes it, so a row's result is the same bits at any M
// (decode or GEMM), from either weight layout and on any thread count. The weights are read as the GEMM's
// pair panels of kNR = 32 rows: WeightMatrix::gemm_panels where packed at load (--weight-memory huge-pages,
// a bf16 model's decode-step matrices and encoder), else transposed from the row-major matrix in registers
// (bd_row_block). Why panels: a 64-byte line holds one pair of 16 rows, so vdpbf16ps accumulates 16 outputs
// with no horizontal sums, and 8 X rows cost 8 vdpbf16ps per line, where the row-major kernel this
// replaced (four accumulators per output, summed at the end) ran out of registers at 4 rows and read each
// line twice: the LM head at M = 8 runs 18-25% faster, the 270m's batch-8 decode 17-36% more tokens/s (BENCHMARKS.md,
// twenty-sixth session).
//
// X as bf16 pairs interleaved by pair, xi[kk · MP + m] (MP = M rounded up to even, rows past M zero):
// one 64-bit broadcast gives X rows 2h and 2h + 1 to the even and odd lanes, and each line of weights
// meets it twice, as loaded and with its adjacent rows swapped, so that the even lanes accumulate row 2h
// against the weight rows of both parities and the odd lanes row 2h + 1: half the broadcasts.
template <int H>
T5G_QINLINE void bd_panel_rows(const uint32_t* P, int64_t Kp, const uint32_t* xi, __m512 (&out)[2 * H][2]) {
  __m512 a[2][2][H];  // [line][as loaded, swapped][row pair]
  static_for<H>([&](auto h) T5G_QLAMBDA {
    for (int l = 0; l < 2; ++l) a[l][0][h.value] = a[l][1][h.value] = _mm512_setzero_ps();
  });
  for (int64_t kk = 0; kk < Kp; ++kk) {
    const __m512i w0 = _mm512_loadu_si512(P + kk * kNR), w1 = _mm512_loadu_si512(P + kk * kNR + 16);
    const __m512i s0 = _mm512_shuffle_epi32(w0, _MM_PERM_CDAB), s1 = _mm512_shuffle_epi32(w1, _MM_PERM_CDAB);
    static_for<H>([&](auto h) T5G_QLAMBDA {
      long long pairs;
      std::memcpy(&pairs, xi + kk * 2 * H + 2 * h.value, 8);
      const __m512i x = _mm512_set1_epi64(pairs);
      a[0][0][h.value] = _mm512_dpbf16_ps(a[0][0][h.value], as_bh(x), as_bh(w0));
      a[0][1][h.value] = _mm512_dpbf16_ps(a[0][1][h.value], as_bh(x), as_bh(s0));
      a[1][0][h.value] = _mm512_dpbf16_ps(a[1][0][h.value], as_bh(x), as_bh(w1));
      a[1][1][h.value] = _mm512_dpbf16_ps(a[1][1][h.value], as_bh(x), as_bh(s1));
    });
  }
  // Row 2h: the even lanes' weight rows in a[.][0], the odd lanes' in the even neighbour of a[.][1]; row
  // 2h + 1 the other way round.
  static_for<H>([&](auto h) T5G_QLAMBDA {
    for (int l = 0; l < 2; ++l) {
      const __m512 sw = _mm512_permute_ps(a[l][1][h.value], 0xB1);
      out[2 * h.value][l] = _mm512_mask_mov_ps(a[l][0][h.value], 0xAAAA, sw);
      out[2 * h.value + 1][l] = _mm512_mask_mov_ps(a[l][0][h.value], 0x5555, sw);
    }
  });
}

// M = 1: NP panels side by side (ldp dwords apart), two chains each: 2·NP chains hide the instruction's
// latency and NP streams keep the memory busy.
template <int NP>
T5G_QINLINE void bd_panels_row(const uint32_t* P, int64_t ldp, int64_t Kp, const uint32_t* xi, __m512 (&out)[NP][2]) {
  __m512 a[NP][2];
  static_for<NP>([&](auto i) T5G_QLAMBDA { a[i.value][0] = a[i.value][1] = _mm512_setzero_ps(); });
  for (int64_t kk = 0; kk < Kp; ++kk) {
    const __m512i x = _mm512_set1_epi32(static_cast<int>(xi[2 * kk]));
    static_for<NP>([&](auto i) T5G_QLAMBDA {
      const uint32_t* p = P + i.value * ldp + kk * kNR;
      a[i.value][0] = _mm512_dpbf16_ps(a[i.value][0], as_bh(x), as_bh(_mm512_loadu_si512(p)));
      a[i.value][1] = _mm512_dpbf16_ps(a[i.value][1], as_bh(x), as_bh(_mm512_loadu_si512(p + 16)));
    });
  }
  static_for<NP>([&](auto i) T5G_QLAMBDA {
    out[i.value][0] = a[i.value][0];
    out[i.value][1] = a[i.value][1];
  });
}

// Panels the M = 1 kernel takes side by side.
constexpr int kBdDecodePanels = 4;

// One vector of outputs, rounded to bf16 when rnd (MatmulOut::round_bf16: in registers, instead of a pass of
// its own over a batch's logits after the product, 0.4-0.5 ms of a batch-8 step).
T5G_QINLINE void bd_store_vec(float* y, __mmask16 mk, __m512 v, bool rnd) {
  _mm512_mask_storeu_ps(y, mk, rnd ? round_bf16_16(v) : v);
}

// Stores panel output vectors: out[m][l] holds rows r0 + 16 l .. of X row m; rows at or past N are dropped.
T5G_QINLINE void bd_store(const __m512 (*out)[2], int M, int64_t r0, int64_t N, float* y, int64_t ldy, bool rnd) {
  for (int l = 0; l < 2; ++l) {
    const int64_t r = r0 + 16 * l, valid = imin(16, N - r);
    if (valid <= 0) break;
    const __mmask16 mk = V::mask(static_cast<int>(valid));
    for (int m = 0; m < M; ++m) bd_store_vec(y + m * ldy + r, mk, out[m][l], rnd);
  }
}

template <int H>
void bd_decode_rows(const uint32_t* P, int64_t Kp, const uint32_t* xi, int M, int64_t r0, int64_t N, float* y,
                    int64_t ldy, bool rnd) {
  __m512 out[2 * H][2];
  bd_panel_rows<H>(P, Kp, xi, out);
  bd_store(out, M, r0, N, y, ldy, rnd);
}

template <int NP>
void bd_decode_row(const uint32_t* P, int64_t ldp, int64_t Kp, const uint32_t* xi, int64_t r0, int64_t N, float* y,
                   bool rnd) {
  __m512 out[NP][2];
  bd_panels_row<NP>(P, ldp, Kp, xi, out);
  for (int i = 0; i < NP; ++i) bd_store(&out[i], 1, r0 + i * kNR, N, y, 0, rnd);
}

// The same products from a row-major matrix (no panels: --weight-memory mapped, or a matrix not packed at
// load), with the same arithmetic: 16 rows x 16 pairs at a time are loaded and transposed in registers
// into the 16 panel lines of those pairs (transpose16), which then go through the same vdpbf16ps steps in
// the same order. Packing each panel into a buffer first (PackBf16Dot::pack_b, then the panel kernel)
// measured twice as slow on the streamed LM head. Each row's line is prefetched one group of rows ahead
// (AHEAD rows further on): a group reads its 16 rows' lines side by side, which the hardware prefetchers
// do not follow (without it the streamed LM head at M = 1 took 22 ms instead of 8.5).
template <int AHEAD>
T5G_QINLINE void bd_row_block(const uint16_t* w, int64_t K, int64_t r, int64_t N, int64_t b, __m512 (&t)[16]) {
  const int64_t left = K - 32 * b;  // elements of each row from pair 16b on
  const __mmask32 mk = left >= 32 ? ~__mmask32{0} : static_cast<__mmask32>((1u << left) - 1u);
  // One running row pointer (the compiler otherwise keeps 32 row and prefetch addresses, spilled).
  const char* p = reinterpret_cast<const char*>(w + r * K + 32 * b);
  const int64_t rs = K * 2, ahead = AHEAD * rs;
  if (r + 16 + AHEAD <= N) {  // all 16 rows, and the group after them
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) {
      t[i] = _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(mk, p));
      _mm_prefetch(p + ahead, _MM_HINT_T1);
      p += rs;
      asm("" : "+r"(p));
    }
  } else {
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) {
      t[i] = r + i < N ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(mk, p)) : _mm512_setzero_ps();
      p += rs;
      asm("" : "+r"(p));
    }
  }
  transpose16(t);
}

// Rows r .. r + 16·G - 1 of a row-major matrix, X row 0 only (M = 1): G groups of 16 rows, one chain each.
template <int G>
void bd_decode_row_rm(const uint16_t* w, int64_t K, int64_t Kp, const uint32_t* xi, int64_t r, int64_t N, float* y,
                      bool rnd) {
  __m512 a[G];
  for (int g = 0; g < G; ++g) a[g] = _mm512_setzero_ps();
  // Pairs 16b .. 16b + jn - 1 (the full blocks inline it with jn = 16: no test left in the loop).
  const auto block = [&](int64_t b, int jn) T5G_QLAMBDA {
    static_for<G>([&](auto g) T5G_QLAMBDA {
      __m512 t[16];
      bd_row_block<16 * G>(w, K, r + 16 * g.value, N, b, t);
      static_for<16>([&](auto j) T5G_QLAMBDA {  // (a runtime index into t would put it on the stack)
        if (j.value < jn) {
          const __m512i x = _mm512_set1_epi32(static_cast<int>(xi[2 * (16 * b + j.value)]));
          a[g.value] = _mm512_dpbf16_ps(a[g.value], as_bh(x), as_bh(_mm512_castps_si512(t[j.value])));
        }
      });
    });
  };
  const int64_t full = Kp / 16;
  for (int64_t b = 0; b < full; ++b) block(b, 16);
  if (full * 16 < Kp) block(full, static_cast<int>(Kp - full * 16));
  for (int g = 0; g < G; ++g) {
    const int64_t valid = imin(16, N - r - 16 * g);
    if (valid > 0) bd_store_vec(y + r + 16 * g, V::mask(static_cast<int>(valid)), a[g], rnd);
  }
}

// Rows r .. r + 15 of a row-major matrix, X rows 0 .. 2H - 1 (the pairing of bd_panel_rows).
template <int H>
void bd_decode_rows_rm(const uint16_t* w, int64_t K, int64_t Kp, const uint32_t* xi, int M, int64_t r, int64_t N,
                       float* y, int64_t ldy, bool rnd) {
  __m512 a[2][H];
  static_for<H>([&](auto h) T5G_QLAMBDA { a[0][h.value] = a[1][h.value] = _mm512_setzero_ps(); });
  const auto block = [&](int64_t b, int jn) T5G_QLAMBDA {  // as in bd_decode_row_rm
    __m512 t[16];
    bd_row_block<16>(w, K, r, N, b, t);
    static_for<16>([&](auto j) T5G_QLAMBDA {
      if (j.value >= jn) return;
      const __m512i w0 = _mm512_castps_si512(t[j.value]), s0 = _mm512_shuffle_epi32(w0, _MM_PERM_CDAB);
      const int64_t kk = 16 * b + j.value;
      static_for<H>([&](auto h) T5G_QLAMBDA {
        long long pairs;
        std::memcpy(&pairs, xi + kk * 2 * H + 2 * h.value, 8);
        const __m512i x = _mm512_set1_epi64(pairs);
        a[0][h.value] = _mm512_dpbf16_ps(a[0][h.value], as_bh(x), as_bh(w0));
        a[1][h.value] = _mm512_dpbf16_ps(a[1][h.value], as_bh(x), as_bh(s0));
      });
    });
  };
  const int64_t full = Kp / 16;
  for (int64_t b = 0; b < full; ++b) block(b, 16);
  if (full * 16 < Kp) block(full, static_cast<int>(Kp - full * 16));
  const int64_t valid = imin(16, N - r);
  const __mmask16 mk = V::mask(static_cast<int>(valid));
  static_for<H>([&](auto h) T5G_QLAMBDA {
    const __m512 sw = _mm512_permute_ps(a[1][h.value], 0xB1);
    const int m = 2 * h.value;
    bd_store_vec(y + m * ldy + r, mk, _mm512_mask_mov_ps(a[0][h.value], 0xAAAA, sw), rnd);
    if (m + 1 < M) bd_store_vec(y + (m + 1) * ldy + r, mk, _mm512_mask_mov_ps(a[0][h.value], 0x5555, sw), rnd);
  });
}

// The kernels by row pairs of X (M >= 2: [MP / 2]) and by panels side by side (M = 1).
using BdRowsPanelFn = void (*)(const uint32_t*, int64_t, const uint32_t*, int, int64_t, int64_t, float*, int64_t, bool);
using BdRowsRmFn = void (*)(const uint16_t*, int64_t, int64_t, const uint32_t*, int, int64_t, int64_t, float*, int64_t,
                            bool);
using BdRowPanelsFn = void (*)(const uint32_t*, int64_t, int64_t, const uint32_t*, int64_t, int64_t, float*, bool);
constexpr BdRowsPanelFn kRowsPanel[] = {nullptr, &bd_decode_rows<1>, &bd_decode_rows<2>, &bd_decode_rows<3>,
                                        &bd_decode_rows<4>};
constexpr BdRowsRmFn kRowsRm[] = {nullptr, &bd_decode_rows_rm<1>, &bd_decode_rows_rm<2>, &bd_decode_rows_rm<3>,
                                  &bd_decode_rows_rm<4>};
constexpr BdRowPanelsFn kRowPanels[] = {nullptr, &bd_decode_row<1>, &bd_decode_row<2>, &bd_decode_row<3>,
                                        &bd_decode_row<4>};
static_assert(sizeof(kRowPanels) / sizeof(kRowPanels[0]) == kBdDecodePanels + 1);
static_assert(2 * (sizeof(kRowsPanel) / sizeof(kRowsPanel[0]) - 1) == kGemvMaxM);

// Y_p = X·W_pᵀ for the parts (bf16, one K), M <= kGemvMaxM: one schedule for all the parts (the decode
// schedule of the quantized kernels, for_each_range, in units of a panel: q, k, v and gate, up each meet
// the threads once), panels streamed in memory order.
void bd_gemv(const float* X, int64_t M, int64_t ldx, const MatmulOut* parts, int np) {
  const int64_t K = parts[0].w->cols, Kp = cdiv(K, 2), MP = M + (M & 1);
  uint32_t* xi = static_cast<uint32_t*>(kern::scratch(kern::kScratchX, static_cast<size_t>(Kp * MP + 16) * 4));
  for (int64_t kk = 0; kk < Kp; ++kk)
    for (int64_t m = 0; m < MP; ++m) {
      const float* x = X + m * ldx;
      xi[kk * MP + m] = m >= M ? 0u : hi16(x[2 * kk]) | (2 * kk + 1 < K ? hi16(x[2 * kk + 1]) << 16 : 0u);
    }
  const int64_t rs = K * 2, ldp = kNR * Kp;  // a panel: kNR rows of Kp pairs
  int64_t N[kMaxMatmulParts];
  const bool parallel = part_rows(parts, np, rs, N);
  for_each_range(N, np, kNR, rs, parallel, [&](int p, int64_t n0, int64_t n1) {
    const WeightMatrix& W = *parts[p].w;
    const int64_t ldy = parts[p].ldy;
    float* y = parts[p].y;
    const bool rnd = parts[p].round_bf16;
    if (!W.gemm_panels) {
      const uint16_t* w = static_cast<const uint16_t*>(W.data);
      for (int64_t r = n0; r < n1; r += kNR) {  // r: a multiple of kNR
        if (M == 1) {  // (four groups, 64 rows, measured 5-20% slower)
          bd_decode_row_rm<2>(w, K, Kp, xi, r, N[p], y, rnd);
          continue;
        }
        for (int64_t h = r; h < imin(r + kNR, n1); h += 16)
          kRowsRm[MP / 2](w, K, Kp, xi, static_cast<int>(M), h, N[p], y, ldy, rnd);
      }
      return;
    }
    for (int64_t r = n0; r < n1;) {  // r: a multiple of kNR
      const uint32_t* P = W.gemm_panels + (r / kNR) * ldp;
      const int64_t panels = M == 1 ? imin(kBdDecodePanels, cdiv(n1 - r, kNR)) : 1;
      if (M == 1) kRowPanels[panels](P, ldp, Kp, xi, r, N[p], y, rnd);
      else kRowsPanel[MP / 2](P, Kp, xi, static_cast<int>(M), r, N[p], y, ldy, rnd);
      r += panels * kNR;
    }
  });
}

// GEMM regime (M > kGemvMaxM) of the vdpbf16ps path, for one product or several of the same X and K
// (matmul_parts: q, k, v; gate, up). X is packed once per block of kBdRowBlock rows into bf16-pair row
// panels spanning the whole K (shared by the threads); the columns of all the products then go out as
// one dynamic list of chunks of kBdChunkPanels panels, each thread packing its own B chunk (or reading
// the matrix's gemm_panels, packed at load in the same layout) and running it against every row panel of
// the block. K is cut into blocks of at most kBdKcMax (a B panel of 32
// columns stays within L1/L2), so a C tile is reloaded only K / kBdKcMax times: with 128-wide K blocks
// the micro-kernel spent a quarter of its time waiting for C tiles evicted between blocks. Every output
// is one fp32 chain over the (k, k+1) pairs in order (storing and reloading the fp32 accumulator
// between K blocks changes nothing), so the result depends neither on the blocking, nor on M, nor on
// the threads.
constexpr int64_t kBdKcMax = 1024;
constexpr int64_t kBdRowBlock = 32 * kMR;
constexpr int64_t kBdChunkPanels = 2;
constexpr int64_t kBdPackASlices = 4;

// K block: even (blocks start on a pair).
inline int64_t bd_kc(int64_t K) {
  const int64_t nk = cdiv(K, kBdKcMax);
  return cdiv(cdiv(K, nk), 2) * 2;
}

void bd_gemm(const float* X, int64_t M, int64_t ldx, const MatmulOut* parts, int np) {
  const int64_t K = parts[0].w->cols;
  if (K == 0) {
    for (int p = 0; p < np; ++p)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < parts[p].w->rows; ++n) parts[p].y[m * parts[p].ldy + n] = 0.f;
    return;
  }
  const int64_t Kp = cdiv(K, 2), kc_nom = bd_kc(K);
  int64_t first[kMaxMatmulParts + 1], rows = 0;
  first[0] = 0;
  for (int p = 0; p < np; ++p) {
    first[p + 1] = first[p] + cdiv(cdiv(parts[p].w->rows, kNR), kBdChunkPanels);
    rows += parts[p].w->rows;
  }
  const int64_t block_rows = imin(M, kBdRowBlock);
  uint32_t* Ap = static_cast<uint32_t*>(
      kern::scratch(kern::kScratchX, static_cast<size_t>(cdiv(block_rows, kMR) * kMR * Kp) * sizeof(uint32_t)));
  // Over several row blocks, the weights not packed at load are packed once for the call, whole (as
  // pack_bf16_gemm_panels: the layout the chunks would pack), instead of once per block: an image's 4096-row
  // products packed each weight 11 times, 3% of the vision tower's time.
  int64_t wp_first[kMaxMatmulParts + 1];  // part p's panels from dword wp_first[p] of wp
  wp_first[0] = 0;
  for (int p = 0; p < np; ++p) wp_first[p + 1] = wp_first[p] + cdiv(parts[p].w->rows, kNR) * kNR * Kp;
  bool pack_once = false;
  for (int p = 0; p < np; ++p) pack_once |= M > kBdRowBlock && parts[p].w->gemm_panels == nullptr;
  uint32_t* wp =
      pack_once ? static_cast<uint32_t*>(kern::scratch(kern::kScratchPackedW, static_cast<size_t>(wp_first[np]) * 4))
                : nullptr;
#pragma omp parallel if (M * rows * K >= kGemmParallelMacs)
  {
    if (wp != nullptr) {
#pragma omp for schedule(dynamic, 4)
      for (int64_t c = 0; c < first[np] * kBdChunkPanels; ++c) {  // (part, panel) pairs
        int p = 0;
        while (c >= first[p + 1] * kBdChunkPanels) ++p;
        const WeightMatrix& W = *parts[p].w;
        const int64_t jp = c - first[p] * kBdChunkPanels;
        if (W.gemm_panels != nullptr || jp * kNR >= W.rows) continue;
        PackBf16Dot::pack_b(W, jp * kNR, static_cast<int>(imin(kNR, W.rows - jp * kNR)), 0, K,
                            reinterpret_cast<float*>(wp + wp_first[p] + jp * kNR * Kp));
      }
    }
    uint32_t* Bp = static_cast<uint32_t*>(
        kern::scratch(kern::kScratchB, static_cast<size_t>(kBdChunkPanels * kNR * (kc_nom / 2)) * sizeof(uint32_t)));
    for (int64_t r0 = 0; r0 < M; r0 += kBdRowBlock) {
      const int64_t m = imin(kBdRowBlock, M - r0), npr = cdiv(m, kMR);
      // By row tile and slice of K (whole blocks of 16 pairs): the 11 tiles of a 128-row X split 6 / 5
      // over two threads, the slices evenly.
      const int64_t nks = imin(kBdPackASlices, cdiv(Kp, 16)), ks = cdiv(cdiv(Kp, 16), nks) * 16;
#pragma omp for schedule(static)
      for (int64_t it = 0; it < npr * nks; ++it) {
        const int64_t pr = it / nks, p0 = (it % nks) * ks;
        if (2 * p0 >= K) continue;
        PackBf16Dot::pack_a(X + r0 * ldx, ldx, pr * kMR, static_cast<int>(imin(kMR, m - pr * kMR)), 2 * p0,
                            imin(2 * ks, K - 2 * p0), reinterpret_cast<float*>(Ap + pr * kMR * Kp + p0 * kMR));
      }
#pragma omp for schedule(dynamic, 1)
      for (int64_t c = 0; c < first[np]; ++c) {
        int p = 0;
        while (c >= first[p + 1]) ++p;
        const WeightMatrix& W = *parts[p].w;
        float* Y = parts[p].y + r0 * parts[p].ldy;
        const int64_t ldy = parts[p].ldy, N = W.rows, npan = cdiv(N, kNR);
        const int64_t jp0 = (c - first[p]) * kBdChunkPanels, jp1 = imin(npan, jp0 + kBdChunkPanels);
        const uint32_t* packed = W.gemm_panels != nullptr ? W.gemm_panels : wp != nullptr ? wp + wp_first[p] : nullptr;
        for (int64_t pc = 0; pc < K; pc += kc_nom) {
          const int64_t kc = imin(kc_nom, K - pc), kp = cdiv(kc, 2);
          if (!packed)
            for (int64_t jp = jp0; jp < jp1; ++jp)
              PackBf16Dot::pack_b(W, jp * kNR, static_cast<int>(imin(kNR, N - jp * kNR)), pc, kc,
                                  reinterpret_cast<float*>(Bp + (jp - jp0) * kNR * kp));
          for (int64_t jp = jp0; jp < jp1; ++jp) {
            const int nvalid = static_cast<int>(imin(kNR, N - jp * kNR));
            // A panel packed at load holds all K: this block's pairs start pc / 2 pairs in.
            const uint32_t* B = packed ? packed + jp * kNR * Kp + (pc / 2) * kNR : Bp + (jp - jp0) * kNR * kp;
            for (int64_t pr = 0; pr < npr; ++pr) {
              const int mr = static_cast<int>(imin(kMR, m - pr * kMR));
              const uint16_t* At = reinterpret_cast<const uint16_t*>(Ap + pr * kMR * Kp + (pc / 2) * kMR);
              float* Ct = Y + pr * kMR * ldy + jp * kNR;
              if (packed && pr == 0) g_bd_uk_first.run(mr, nvalid, kp, At, 0, B, kNR, Ct, ldy, pc > 0);
              else g_bd_uk.run(mr, nvalid, kp, At, 0, B, kNR, Ct, ldy, pc > 0);
            }
          }
        }
      }
    }
  }
}

// K pairs per block of gemm_bf16_panels: a B panel block of 256 x 32 dwords (32 KiB) stays in L1 while
// the row tiles of A pass over it (a long P·V has thousands of pairs).
constexpr int64_t kBdPanelKp = 256;

}  // namespace

// Panel by panel with the GEMM's own packing (k0 = 0, kc = K): the layout bd_gemm reads is the one it
// would otherwise pack, so the products cannot differ.
void pack_bf16_gemm_panels(const WeightMatrix& W, uint32_t* out) {
  const int64_t Kp = cdiv(W.cols, 2), npan = cdiv(W.rows, kNR);
#pragma omp parallel for schedule(static) if (W.rows * W.cols >= (int64_t(1) << 18))
  for (int64_t jp = 0; jp < npan; ++jp)
    PackBf16Dot::pack_b(W, jp * kNR, static_cast<int>(imin(kNR, W.rows - jp * kNR)), 0, W.cols,
                        reinterpret_cast<float*>(out + jp * kNR * Kp));
}

void gemm_bf16_panels(int64_t M, int64_t N, int64_t Kp, const uint16_t* A, int64_t lda, const uint32_t* Bp,
                      int64_t ldp, float* C, int64_t ldc, bool accumulate) {
  if (Kp == 0) {
    if (!accumulate)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) C[m * ldc + n] = 0.f;
    return;
  }
  const int64_t npan = cdiv(N, kNR);
  for (int64_t k0 = 0; k0 < Kp; k0 += kBdPanelKp) {
    const int64_t kp = imin(kBdPanelKp, Kp - k0);
    const bool acc = accumulate || k0 > 0;
    for (int64_t jp = 0; jp < npan; ++jp) {
      const int nvalid = static_cast<int>(imin(kNR, N - jp * kNR));
      const uint32_t* Bpan = Bp + jp * ldp + k0 * kNR;
      if (nvalid <= 16) {  // each output's pairs in the same order as the full tile: the same bits
        for (int64_t m0 = 0; m0 < M; m0 += kBdHalfMR) {
          const int mr = static_cast<int>(imin(kBdHalfMR, M - m0));
          (nvalid == 16 ? g_bd_direct_half.full : g_bd_direct_half.edge)[mr](
              kp, A + m0 * lda + 2 * k0, lda, Bpan, kNR, C + m0 * ldc + jp * kNR, ldc, nvalid, acc);
        }
        continue;
      }
      for (int64_t m0 = 0; m0 < M; m0 += kMR) {
        const int mr = static_cast<int>(imin(kMR, M - m0));
        g_bd_direct.run(mr, nvalid, kp, A + m0 * lda + 2 * k0, lda, Bpan, kNR, C + m0 * ldc + jp * kNR, ldc, acc);
      }
    }
  }
}

// Whether the vdpbf16ps kernels take weights of type t (bf16_dot given: X bf16-representable, the CPU has
// AVX512_BF16): bf16 only. (Q8 / Q4 products are integer on VNNI, matmul_vnni.cc, which every CPU with
// AVX512_BF16 has; without it they take the fp32 kernels of the dequantized weights.)
inline bool bd_takes(WeightType t) { return t == WeightType::kBF16; }

void matmul(const float* X, int64_t M, int64_t ldx, const WeightMatrix& W, float* Y, int64_t ldy, bool bf16_dot) {
  if (!bf16_dot || !bd_takes(W.type) || M <= 0 || W.rows <= 0) {
    matmul_f32acc(X, M, ldx, W, Y, ldy);
    return;
  }
  const MatmulOut part{&W, Y, ldy};
  if (M <= kGemvMaxM) bd_gemv(X, M, ldx, &part, 1);
  else bd_gemm(X, M, ldx, &part, 1);
}

bool matmul_parts(const float* X, int64_t M, int64_t ldx, const MatmulOut* parts, int n, bool bf16_dot) {
  if (bf16_dot && bd_takes(parts[0].w->type)) {
    if (M > kGemvMaxM) {
      bd_gemm(X, M, ldx, parts, n);  // one schedule for all the parts
      return false;
    }
    bd_gemv(X, M, ldx, parts, n);
    return true;  // rounded as stored
  }
  if (M <= kGemvMaxM) matmul_parts_decode(X, M, ldx, parts, n);
  else matmul_parts_colsplit(X, M, ldx, parts, n);
  return false;
}

void gemm_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
              bool b_transposed, float* C, int64_t ldc, bool accumulate) {
  gemm_f32_impl(M, N, K, A, lda, B, ldb, b_transposed ? BLayout::kTransposed : BLayout::kRows, C, ldc, accumulate);
}

void gemm_f32_panels(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* Bp, int64_t ldp,
                     float* C, int64_t ldc, bool accumulate) {
  gemm_f32_impl(M, N, K, A, lda, Bp, ldp, BLayout::kPanels, C, ldc, accumulate);
}

int64_t gemm_panel_width() { return kNR; }

}  // namespace t5g::kern::avx512
