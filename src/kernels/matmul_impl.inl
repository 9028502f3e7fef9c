// Shared body of the SIMD matrix-product kernels, written once against a small vector-traits
// struct and compiled once per ISA. Include it ONLY from a per-ISA translation unit, and only
// inside an anonymous namespace, after defining:
//
//   struct V {                      // one SIMD register of fp32
//     static constexpr int L;       // lanes
//     using F; using Mask;          // register type, lane-mask type
//     F zero(); F load(const float*); void store(float*, F); F fma(F a, F b, F c) /* a*b+c */;
//     F bcast(const float*); Mask mask(int n) /* first n lanes */;
//     F loadm(const float*, Mask); void storem(float*, Mask, F);
//     float hsum(F)                 /* fixed summation order */;
//     F bf16_even(const uint16_t* p), bf16_odd(const uint16_t* p);  // of 2L bf16 at p, as fp32
//     F f16(const uint16_t* p);                                      // L f16 at p, as fp32
//   };
//   constexpr int kMR, kNV;         // GEMM register tile: kMR rows x (kNV * L) columns
//
// Everything here has internal linkage (anonymous namespace of the including file), so the copies
// compiled for different ISAs never meet at link time. No std:: templates are used for the same reason.
//
// Determinism: every output element's K reduction is done by one thread in an order that depends only
// on K (and the kernel chosen from M), never on the thread count or on how rows are grouped.

constexpr int kL = V::L;
constexpr int kNR = kNV * kL;  // GEMM register tile width (output features)
using VF = typename V::F;

#include "kernels/matmul_shared.inl"

inline float bf16s(uint16_t h) {
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline float f16s(uint16_t h) { return _cvtsh_ss(h); }

template <WeightType WT>
constexpr int64_t wbytes() {
  return WT == WeightType::kF32 ? 4 : 2;
}

template <WeightType WT>
inline float wscalar(const void* base, int64_t i) {
  if constexpr (WT == WeightType::kF32) return static_cast<const float*>(base)[i];
  else if constexpr (WT == WeightType::kBF16) return bf16s(static_cast<const uint16_t*>(base)[i]);
  else return f16s(static_cast<const uint16_t*>(base)[i]);
}

// ---------------------------------------------------------------------------------------------
// Decode regime (small M): the weight rows are streamed once, in memory order. At M = 1 one row at a
// time keeps the access perfectly sequential, which the hardware prefetchers (and one software prefetch
// per cache line) turn into close to the machine's read bandwidth; interleaving several rows measured
// 20-30% slower on Zen 3 (tools/bench: BM_Matmul M=1). At M >= 2 on AVX2 the product is bound by the
// loads of X, not by memory, and two rows share each X load (gemv_rows). A thread's range of rows is one
// call with the row kernels inlined (gemv_range_m1, gemv_rows_range): at K = 640 a call per row cost a
// sixth of the row's work.
//
// K is processed in blocks of 4L elements (bf16 on AVX2: one 64-byte line), split into four quarters of
// L; quarters 0 and 2 go to one accumulator per row of X, 1 and 3 to another (two chains of two FMAs
// per block keep up with the memory at M = 1; at larger M the X rows give the independent chains, and
// fewer accumulators let more X rows share one pass over the weight row). For bf16 a half block of 2L elements is loaded as L 32-bit lanes; (lane << 16)
// gives the even elements and (lane & 0xffff0000) the odd ones, so X is pre-permuted per half block into
// [even | odd] order. For f32/f16 the quarters are consecutive L elements and X is copied as is. K is
// zero-padded to a whole block (X in the scratch copy, W through a small stack buffer).
//
// Reduction order of an output (row n, X row m): acc0 takes quarters 0, 2 of blocks 0, 1, ... in order,
// acc1 quarters 1, 3; the result is hsum(acc0 + acc1). It depends on K only: never on M, on how X rows are
// chunked, or on the thread count.

constexpr int64_t kGB = 4 * kL;  // K elements per block

template <WeightType WT>
void gemv_prep_x(const float* X, int64_t M, int64_t ldx, int64_t K, int64_t K2, float* xp) {
  for (int64_t m = 0; m < M; ++m) {
    const float* x = X + m * ldx;
    float* d = xp + m * K2;
    if constexpr (WT == WeightType::kBF16) {
      for (int64_t b = 0; b < K2; b += 2 * kL) {
        for (int i = 0; i < kL; ++i) {
          const int64_t k = b + 2 * i;
          d[b + i] = k < K ? x[k] : 0.f;
          d[b + kL + i] = k + 1 < K ? x[k + 1] : 0.f;
        }
      }
    } else {
      for (int64_t k = 0; k < K; ++k) d[k] = x[k];
      for (int64_t k = K; k < K2; ++k) d[k] = 0.f;
    }
  }
}

// Software prefetch distance (into L1) along the row stream. Only the first X chunk of a row
// prefetches; later chunks re-read the row from L1.
constexpr int64_t kGemvPrefetchBytes = 1024;

// Quarter q of the 4L-element weight block at p, as fp32.
template <WeightType WT>
inline VF gemv_w(const char* p, int q) {
  if constexpr (WT == WeightType::kBF16) {
    const uint16_t* h = reinterpret_cast<const uint16_t*>(p) + (q >> 1) * 2 * kL;
    return (q & 1) == 0 ? V::bf16_even(h) : V::bf16_odd(h);
  } else if constexpr (WT == WeightType::kF16) {
    return V::f16(reinterpret_cast<const uint16_t*>(p) + q * kL);
  } else {
    return V::load(reinterpret_cast<const float*>(p) + q * kL);
  }
}

template <WeightType WT, int MC>
inline void gemv_block(const char* p, const float* x, int64_t K2, VF (&acc)[MC][2]) {
#pragma GCC unroll 4
  for (int q = 0; q < 4; ++q) {
    const VF w = gemv_w<WT>(p, q);
#pragma GCC unroll 8
    for (int m = 0; m < MC; ++m) acc[m][q & 1] = V::fma(V::load(x + m * K2 + q * kL), w, acc[m][q & 1]);
  }
}

// One weight row (at w, K elements) times MC rows of X (xp, row stride K2): Y[m * ldy].
template <WeightType WT, int MC, bool PREFETCH>
inline __attribute__((always_inline)) void gemv_row_inline(const char* w, int64_t K, const float* xp, int64_t K2,
                                                           float* y, int64_t ldy) {
  constexpr int64_t es = wbytes<WT>();
  constexpr int64_t bb = kGB * es;  // block bytes
  VF acc[MC][2];
#pragma GCC unroll 8
  for (int m = 0; m < MC; ++m) acc[m][0] = acc[m][1] = V::zero();
  const int64_t nfull = K / kGB;
  for (int64_t blk = 0; blk < nfull; ++blk) {
    const char* p = w + blk * bb;
    if constexpr (PREFETCH) {
#pragma GCC unroll 4
      for (int64_t o = 0; o < bb; o += 64) _mm_prefetch(p + kGemvPrefetchBytes + o, _MM_HINT_T0);
    }
    gemv_block<WT, MC>(p, xp + blk * kGB, K2, acc);
  }
  if (nfull * kGB < K) {  // partial last block: a zero-padded copy (X is zero-padded already)
    alignas(64) unsigned char buf[bb];
    std::memset(buf, 0, sizeof(buf));
    std::memcpy(buf, w + nfull * bb, static_cast<size_t>((K - nfull * kGB) * es));
    gemv_block<WT, MC>(reinterpret_cast<const char*>(buf), xp + nfull * kGB, K2, acc);
  }
#pragma GCC unroll 8
  for (int m = 0; m < MC; ++m) y[m * ldy] = V::hsum(V::add(acc[m][0], acc[m][1]));
}

template <WeightType WT, int MC, bool PREFETCH>
void gemv_row(const char* w, int64_t K, const float* xp, int64_t K2, float* y, int64_t ldy) {
  gemv_row_inline<WT, MC, PREFETCH>(w, K, xp, K2, y, ldy);
}

// M = 1: rows 0..nrows-1 (row stride rs bytes) in one call, gemv_row inlined (at K = 640 a call per
// row is a sixth of the row's work).
template <WeightType WT>
void gemv_range_m1(const char* w, int64_t rs, int64_t K, const float* xp, int64_t K2, int64_t nrows, float* y) {
  for (int64_t r = 0; r < nrows; ++r) gemv_row_inline<WT, 1, true>(w + r * rs, K, xp, K2, y + r, 1);
}

// R consecutive weight rows (row stride rs bytes) times MC rows of X: y[m * ldy + r]. Each X quarter is
// loaded once into a register and used by the R rows' FMAs, where gemv_row reads it from L1 once per
// FMA: on Zen 3 the loads, not the FMAs, bound gemv_row at M > 1. The R rows' accumulators are those
// of R separate gemv_row calls, in the same order: bitwise equal to gemv_row.
template <WeightType WT, int R, int MC>
inline void gemv_block_rows(const char* p, int64_t rs, const float* x, int64_t K2, VF (&acc)[R][MC][2]) {
#pragma GCC unroll 4
  for (int q = 0; q < 4; ++q) {
    VF w[R];
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) w[r] = gemv_w<WT>(p + r * rs, q);
#pragma GCC unroll 8
    for (int m = 0; m < MC; ++m) {
      VF xv = V::load(x + m * K2 + q * kL);
      // Keep X in a register: GCC otherwise folds the load into each row's FMA (a load per FMA again).
      __asm__("" : "+x"(xv));
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) acc[r][m][q & 1] = V::fma(xv, w[r], acc[r][m][q & 1]);
    }
  }
}

template <WeightType WT, int R, int MC, bool PREFETCH>
inline __attribute__((always_inline)) void gemv_rows(const char* w, int64_t rs, int64_t K, const float* xp,
                                                     int64_t K2, float* y, int64_t ldy) {
  constexpr int64_t es = wbytes<WT>();
  constexpr int64_t bb = kGB * es;
  VF acc[R][MC][2];
#pragma GCC unroll 4
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int m = 0; m < MC; ++m) acc[r][m][0] = acc[r][m][1] = V::zero();
  const int64_t nfull = K / kGB;
  for (int64_t blk = 0; blk < nfull; ++blk) {
    const char* p = w + blk * bb;
    if constexpr (PREFETCH) {
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
        for (int64_t o = 0; o < bb; o += 64) _mm_prefetch(p + (r + 2 * R) * rs + o, _MM_HINT_T0);
    }
    gemv_block_rows<WT, R, MC>(p, rs, xp + blk * kGB, K2, acc);
  }
  if (nfull * kGB < K) {  // partial last block: zero-padded copies, as gemv_row
    alignas(64) unsigned char buf[R][bb];
    std::memset(buf, 0, sizeof(buf));
    for (int r = 0; r < R; ++r)
      std::memcpy(buf[r], w + r * rs + nfull * bb, static_cast<size_t>((K - nfull * kGB) * es));
    gemv_block_rows<WT, R, MC>(reinterpret_cast<const char*>(buf), bb, xp + nfull * kGB, K2, acc);
  }
#pragma GCC unroll 8
  for (int m = 0; m < MC; ++m)
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) y[m * ldy + r] = V::hsum(V::add(acc[r][m][0], acc[r][m][1]));
}

// X rows per pass over a weight row: 2 accumulators each plus one weight quarter within the register
// file (16 ymm: 6 rows; 32 zmm: 8). X is read from L1 by the FMAs' memory operands. (On Zen 3 the
// loads, one per FMA, bound this at about half the FMA peak: ~50 GFLOP/s per core at M = 8.)
constexpr int kGemvMC = kL == 16 ? 8 : 6;

// Weight rows per call at 2 <= M (AVX2 only: with 16 registers, 2 rows x 3 X rows x 2 accumulators + 2
// weight quarters + 1 X quarter fill the file; AVX-512's 32 registers already take 8 X rows per pass).
constexpr int kGemvRows = kL == 8 ? 2 : 1;
constexpr int kGemvRowsMC = 3;  // X rows per pass of kGemvRows weight rows

template <WeightType WT, bool PREFETCH, int MC = kGemvRowsMC>
inline __attribute__((always_inline)) void gemv_rows_dispatch(int mc, const char* w, int64_t rs, int64_t K,
                                                              const float* xp, int64_t K2, float* y, int64_t ldy) {
  if (mc == MC) gemv_rows<WT, kGemvRows, MC, PREFETCH>(w, rs, K, xp, K2, y, ldy);
  else if constexpr (MC > 1) gemv_rows_dispatch<WT, PREFETCH, MC - 1>(mc, w, rs, K, xp, K2, y, ldy);
}

template <WeightType WT, bool PREFETCH, int MC = kGemvMC>
void gemv_row_dispatch(int mc, const char* w, int64_t K, const float* xp, int64_t K2, float* y, int64_t ldy) {
  if (mc == MC) gemv_row<WT, MC, PREFETCH>(w, K, xp, K2, y, ldy);
  else if constexpr (MC > 1) gemv_row_dispatch<WT, PREFETCH, MC - 1>(mc, w, K, xp, K2, y, ldy);
}

// 2 <= M: rows 0..nrows-1 (row stride rs bytes) in blocks of kGemvRows, each in passes of at most
// kGemvRowsMC X rows (the first streams the rows, later ones re-read them from L1); a last odd row alone
// through gemv_row (the same order). One call per range, the pass kernels inlined.
template <WeightType WT>
void gemv_rows_range(const char* w, int64_t rs, int64_t K, const float* xp, int64_t K2, int64_t M, int64_t nrows,
                     float* y, int64_t ldy) {
  int mcs[kern::kDecodeMaxM];  // passes as for_each_part_row_pass's, written out: through a shared
                               // helper GCC grew the quantized row kernels of the time by three quarters and
                               // made them 7-19% slower (BM_Matmul/M:8)
  int npass = 0;
  for (int64_t m0 = 0; m0 < M; m0 += mcs[npass++])
    mcs[npass] = static_cast<int>(cdiv(M - m0, cdiv(M - m0, kGemvRowsMC)));
  int64_t n = 0;
  for (; n + kGemvRows <= nrows; n += kGemvRows) {
    gemv_rows_dispatch<WT, true>(mcs[0], w + n * rs, rs, K, xp, K2, y + n, ldy);
    int64_t m0 = mcs[0];
    for (int i = 1; i < npass; m0 += mcs[i++])
      gemv_rows_dispatch<WT, false>(mcs[i], w + n * rs, rs, K, xp + m0 * K2, K2, y + m0 * ldy + n, ldy);
  }
  for (; n < nrows; ++n) {
    for (int64_t m0 = 0; m0 < M;) {
      const int mc = static_cast<int>(cdiv(M - m0, cdiv(M - m0, kGemvMC)));
      if (m0 == 0) gemv_row_dispatch<WT, true>(mc, w + n * rs, K, xp, K2, y + n, ldy);
      else gemv_row_dispatch<WT, false>(mc, w + n * rs, K, xp + m0 * K2, K2, y + m0 * ldy + n, ldy);
      m0 += mc;
    }
  }
}

// The decode kernels' schedule: body(n, m0, mc) for every weight row n and every pass over X rows
// [m0, m0 + mc), passes of at most max_mc rows, balanced (max_mc 6: 8 rows = 4 + 4, 7 = 4 + 3); the pass
// with m0 == 0 streams the row from memory, later ones re-read it from L1. Rows go out in contiguous
// ranges (long sequential streams), 16 per thread, handed out dynamically: a thread delayed by the OS
// does not hold the others up. This decides only who computes a row and which X rows share a pass,
// never how an output is reduced.
// body(part, n, m0, mc) for every row n of every part and every pass over X rows [m0, m0 + mc).
template <class Body>
void for_each_part_row_pass(const int64_t* N, int np, int64_t M, int max_mc, int64_t row_bytes, bool parallel,
                            Body&& body) {
  for_each_range(N, np, 1, row_bytes, parallel, [&](int p, int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      for (int64_t m0 = 0; m0 < M;) {
        const int mc = static_cast<int>(cdiv(M - m0, cdiv(M - m0, max_mc)));
        body(p, n, m0, mc);
        m0 += mc;
      }
    }
  });
}

constexpr int64_t kGemmParallelMacs = int64_t(1) << 21;   // smaller products: single-threaded

// Y_p = X·W_pᵀ for the parts (same weight type and K), M <= kGemvMaxM.
template <WeightType WT>
void gemv(const float* X, int64_t M, int64_t ldx, const MatmulOut* parts, int np) {
  const int64_t K = parts[0].w->cols;
  const int64_t K2 = cdiv(K, kGB) * kGB;
  const int64_t rs = K * wbytes<WT>();  // row stride in bytes
  float* xp = static_cast<float*>(kern::scratch(kern::kScratchX, static_cast<size_t>(M * K2 + 1) * sizeof(float)));
  gemv_prep_x<WT>(X, M, ldx, K, K2, xp);
  int64_t N[kMaxMatmulParts];
  const bool parallel = part_rows(parts, np, rs, N);
  if (M == 1) {
    for_each_range(N, np, 1, rs, parallel, [&](int p, int64_t n0, int64_t n1) {
      gemv_range_m1<WT>(static_cast<const char*>(parts[p].w->data) + n0 * rs, rs, K, xp, K2, n1 - n0, parts[p].y + n0);
    });
    return;
  }
  if constexpr (kGemvRows > 1) {
    for_each_range(N, np, kGemvRows, rs, parallel, [&](int p, int64_t n0, int64_t n1) {
      gemv_rows_range<WT>(static_cast<const char*>(parts[p].w->data) + n0 * rs, rs, K, xp, K2, M, n1 - n0,
                          parts[p].y + n0, parts[p].ldy);
    });
  } else {
    for_each_part_row_pass(N, np, M, kGemvMC, rs, parallel, [&](int p, int64_t n, int64_t m0, int mc) {
      const char* w = static_cast<const char*>(parts[p].w->data) + n * rs;
      const int64_t ldy = parts[p].ldy;
      float* y = parts[p].y + m0 * ldy + n;
      if (m0 == 0) gemv_row_dispatch<WT, true>(mc, w, K, xp + m0 * K2, K2, y, ldy);
      else gemv_row_dispatch<WT, false>(mc, w, K, xp + m0 * K2, K2, y, ldy);
    });
  }
}

// ---------------------------------------------------------------------------------------------
// GEMM regime: packed, cache-blocked. A (= X rows) is packed into [k][kMR] micro-panels, B (= weight
// rows, i.e. columns of Wᵀ) into [k][kNR] micro-panels converted to fp32. The register tile is kMR x kNR.
// The micro-kernel accumulates into C directly (loading it for every K block but the first), so each
// output element is one fp32 FMA chain over k = 0..K-1 in order.

// 8x8 fp32 transpose (AVX), in place over r[0..7].
inline void transpose8(__m256 r[8]) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

template <WeightType WT>
inline __m256 load8_f32(const void* base, int64_t i) {
  if constexpr (WT == WeightType::kF32) {
    return _mm256_loadu_ps(static_cast<const float*>(base) + i);
  } else if constexpr (WT == WeightType::kBF16) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(base) + i));
    return _mm256_cvtph_ps(h);
  }
}

// Pack rows n0..n0+nr-1 (nr <= kNR), columns k0..k0+kc-1 of a row-major matrix (row stride rs elements)
// into Bp[k * kNR + j], zero for j >= nr.
// The next panel's rows (kNR further) are prefetched along the way: packing reads the weights from
// memory once per product, 8-16 rows side by side, which the hardware prefetchers alone left waiting
// (at 128 input tokens the packing took a sixth of the encoder's time).
template <WeightType WT>
void pack_b_f32(const void* base, int64_t rs, int64_t n0, int nr, int64_t k0, int64_t kc, float* Bp) {
  constexpr int64_t es = wbytes<WT>();
  const char* pf = static_cast<const char*>(base) + ((n0 + kNR) * rs + k0) * es;
  int j0 = 0;
  for (; j0 + 8 <= nr; j0 += 8) {
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8) {
      if ((k * es) % 64 == 0) {
#pragma GCC unroll 8
        for (int j = 0; j < 8; ++j) _mm_prefetch(pf + ((j0 + j) * rs + k) * es, _MM_HINT_T0);
      }
      __m256 r[8];
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) r[j] = load8_f32<WT>(base, (n0 + j0 + j) * rs + k0 + k);
      transpose8(r);
#pragma GCC unroll 8
      for (int t = 0; t < 8; ++t) _mm256_storeu_ps(Bp + (k + t) * kNR + j0, r[t]);
    }
    for (; k < kc; ++k)
      for (int j = 0; j < 8; ++j) Bp[k * kNR + j0 + j] = wscalar<WT>(base, (n0 + j0 + j) * rs + k0 + k);
  }
  for (int64_t k = 0; k < kc; ++k) {
    for (int j = j0; j < nr; ++j) Bp[k * kNR + j] = wscalar<WT>(base, (n0 + j) * rs + k0 + k);
    for (int j = nr; j < kNR; ++j) Bp[k * kNR + j] = 0.f;
  }
}

// Copy kc rows of nvalid (<= kNR) columns of a row-major fp32 matrix (row stride ld) into Bp[k * kNR + j],
// zero for j >= nvalid.
inline void pack_b_copy(const float* B, int64_t ld, int nvalid, int64_t kc, float* Bp) {
  typename V::Mask mk[kNV];
#pragma GCC unroll 8
  for (int j = 0; j < kNV; ++j) mk[j] = V::mask(static_cast<int>(imax(0, imin(kL, nvalid - j * kL))));
  for (int64_t k = 0; k < kc; ++k)
#pragma GCC unroll 8
    for (int j = 0; j < kNV; ++j) V::store(Bp + k * kNR + j * kL, V::loadm(B + k * ld + j * kL, mk[j]));
}

// Pack rows m0..m0+mr-1 (mr <= kMR), columns k0..k0+kc-1 of A (row stride lda) into Ap[k * kMR + i].
inline void pack_a_f32(const float* A, int64_t lda, int64_t m0, int mr, int64_t k0, int64_t kc, float* Ap) {
  for (int i = 0; i < kMR; ++i) {
    if (i < mr) {
      const float* a = A + (m0 + i) * lda + k0;
      for (int64_t k = 0; k < kc; ++k) Ap[k * kMR + i] = a[k];
    } else {
      for (int64_t k = 0; k < kc; ++k) Ap[k * kMR + i] = 0.f;
    }
  }
}

// C[0..MR) x [0..nvalid) (+)= A (MR x kc) · B (kc rows of kNR, row stride ldbk).
// APACKED: A is a packed micro-panel Ap[k * kMR + i] (lda unused); else A[i * lda + k].
// EDGE: nvalid < kNR; B and C are then accessed with lane masks only (never past column nvalid).
template <int MR, bool EDGE, bool APACKED>
void ukernel(int64_t kc, const float* A, int64_t lda, const float* B, int64_t ldbk, float* C, int64_t ldc, int nvalid,
             bool accumulate) {
  VF c[MR][kNV];
  typename V::Mask mk[kNV];
  if constexpr (EDGE) {
#pragma GCC unroll 8
    for (int j = 0; j < kNV; ++j) mk[j] = V::mask(static_cast<int>(imax(0, imin(kL, nvalid - j * kL))));
  }
  if (accumulate) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < kNV; ++j)
        c[i][j] = EDGE ? V::loadm(C + i * ldc + j * kL, mk[j]) : V::load(C + i * ldc + j * kL);
  } else {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < kNV; ++j) c[i][j] = V::zero();
  }
  const float* arow[MR];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i) arow[i] = APACKED ? A + i : A + i * lda;
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    VF b[kNV];
#pragma GCC unroll 8
    for (int j = 0; j < kNV; ++j) b[j] = EDGE ? V::loadm(B + j * kL, mk[j]) : V::load(B + j * kL);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const VF a = APACKED ? V::bcast(A + i) : V::bcast(arow[i] + k);
#pragma GCC unroll 8
      for (int j = 0; j < kNV; ++j) c[i][j] = V::fma(a, b[j], c[i][j]);
    }
    B += ldbk;
    if constexpr (APACKED) A += kMR;
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
    for (int j = 0; j < kNV; ++j) {
      if constexpr (EDGE) V::storem(C + i * ldc + j * kL, mk[j], c[i][j]);
      else V::store(C + i * ldc + j * kL, c[i][j]);
    }
}

using UkernelFn = void (*)(int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t, int, bool);

template <int MR, bool APACKED>
constexpr void uk_fill(UkernelFn full[], UkernelFn edge[]) {
  full[MR] = &ukernel<MR, false, APACKED>;
  edge[MR] = &ukernel<MR, true, APACKED>;
  if constexpr (MR > 1) uk_fill<MR - 1, APACKED>(full, edge);
}

template <bool APACKED>
struct Ukernels {
  UkernelFn full[kMR + 1] = {};
  UkernelFn edge[kMR + 1] = {};
  constexpr Ukernels() { uk_fill<kMR, APACKED>(full, edge); }
  void run(int mr, int64_t kc, const float* A, int64_t lda, const float* B, int64_t ldbk, float* C, int64_t ldc,
           int nvalid, bool accumulate) const {
    (nvalid == kNR ? full : edge)[mr](kc, A, lda, B, ldbk, C, ldc, nvalid, accumulate);
  }
};
constexpr Ukernels<true> g_uk;          // packed A
constexpr Ukernels<false> g_uk_direct;  // A read in place

// Blocking. kKC bounds the K block (B micro-panel kKC x kNR fp32 stays in L1), kMC the rows of X per
// packed A block (L2), kNC the output features per packed B block (L3, shared by the threads).
constexpr int64_t kKC = 4096 / kNR;  // 256 (AVX2, kNR = 16), 128 (AVX-512, kNR = 32): a 16 KiB B micro-panel
constexpr int64_t kMC = 96;
constexpr int64_t kNC = 4096;

inline int64_t gemm_kc(int64_t K) {
  const int64_t nk = cdiv(K, kKC);
  return cdiv(cdiv(K, nk), 8) * 8;  // depends on K only: fixes the reduction blocking
}

// Packing + micro-kernel policy of the fp32 GEMM: weights of type WT converted to fp32 when packed.
template <WeightType WT>
struct PackF32 {
  static int64_t kp(int64_t kc) { return kc; }  // packed rows per K block
  static void pack_b(const WeightMatrix& W, int64_t n0, int nr, int64_t k0, int64_t kc, float* Bp) {
    pack_b_f32<WT>(W.data, W.cols, n0, nr, k0, kc, Bp);
  }
  static void pack_a(const float* X, int64_t ldx, int64_t m0, int mr, int64_t k0, int64_t kc, float* Ap) {
    pack_a_f32(X, ldx, m0, mr, k0, kc, Ap);
  }
  static void ukr(int mr, int64_t kc, const float* Ap, const float* Bp, float* C, int64_t ldc, int nvalid, bool acc) {
    g_uk.run(mr, kc, Ap, 0, Bp, kNR, C, ldc, nvalid, acc);
  }
};

// Y = X·Wᵀ for M > kGemvMaxM, all threads. P: packing / micro-kernel policy (PackF32 or an ISA's own).
template <class P>
void gemm_packed(const float* X, int64_t M, int64_t ldx, const WeightMatrix& W, float* Y, int64_t ldy) {
  const int64_t N = W.rows, K = W.cols;
  if (K == 0) {
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) Y[m * ldy + n] = 0.f;
    return;
  }
  const int64_t kc_nom = gemm_kc(K);
  const int64_t kp_nom = P::kp(kc_nom);
  const int64_t nc_max = imin(kNC, cdiv(N, kNR) * kNR);
  float* Bp = static_cast<float*>(kern::scratch(kern::kScratchB, static_cast<size_t>(kp_nom * nc_max) * sizeof(float)));
  const int64_t P_ = cdiv(M, kMR);  // row panels
#pragma omp parallel if (M * N * K >= kGemmParallelMacs)
  {
    const int T = omp_get_num_threads();
    // Row blocks: a multiple of the thread count when there are enough panels; column splits otherwise.
    // Items (row block x column split) are handed out dynamically, so a thread delayed by the OS does not
    // hold the others up. (This only decides who computes what: no element's reduction depends on it.)
    const int64_t n_ic = imin(P_, cdiv(cdiv(P_ * kMR, kMC), T) * T);
    const int64_t n_js = n_ic >= T ? 1 : cdiv(T, n_ic);
    const int64_t items = n_ic * n_js;
    const int64_t max_pan = cdiv(P_, n_ic);
    float* Ap = static_cast<float*>(kern::scratch(kern::kScratchA, static_cast<size_t>(max_pan * kMR * kp_nom) * sizeof(float)));
    for (int64_t jc = 0; jc < N; jc += kNC) {
      const int64_t nc = imin(kNC, N - jc);
      const int64_t npan = cdiv(nc, kNR);
      for (int64_t pc = 0; pc < K; pc += kc_nom) {
        const int64_t kc = imin(kc_nom, K - pc);
        const int64_t kp = P::kp(kc);
#pragma omp for schedule(dynamic, 4)
        for (int64_t p = 0; p < npan; ++p)
          P::pack_b(W, jc + p * kNR, static_cast<int>(imin(kNR, nc - p * kNR)), pc, kc, Bp + p * kNR * kp);
        int64_t last_ic = -1;
#pragma omp for schedule(dynamic, 1) nowait
        for (int64_t it = 0; it < items; ++it) {
          const int64_t ic = it / n_js, js = it % n_js;
          const int64_t pr0 = ic * P_ / n_ic, pr1 = (ic + 1) * P_ / n_ic;
          if (ic != last_ic) {
            for (int64_t pr = pr0; pr < pr1; ++pr)
              P::pack_a(X, ldx, pr * kMR, static_cast<int>(imin(kMR, M - pr * kMR)), pc, kc, Ap + (pr - pr0) * kMR * kp);
            last_ic = ic;
          }
          const int64_t jp0 = js * npan / n_js, jp1 = (js + 1) * npan / n_js;
          for (int64_t jp = jp0; jp < jp1; ++jp) {
            const int nvalid = static_cast<int>(imin(kNR, nc - jp * kNR));
            const float* Bpan = Bp + jp * kNR * kp;
            for (int64_t pr = pr0; pr < pr1; ++pr) {
              const int64_t m0 = pr * kMR;
              P::ukr(static_cast<int>(imin(kMR, M - m0)), kc, Ap + (pr - pr0) * kMR * kp, Bpan,
                     Y + m0 * ldy + jc + jp * kNR, ldy, nvalid, pc > 0);
            }
          }
        }
#pragma omp barrier
      }
    }
  }
}

// Y = X·Wᵀ for kGemvMaxM < M <= kColSplitMaxM (an encoder or prefill of a few hundred tokens), all
// threads, with fp32 X read in place. The work is split by columns only: a thread takes a chunk of
// kColChunkPanels B micro-panels, packs them itself K block by K block and multiplies them by all rows
// of X. No thread waits for another's packing (gemm_packed meets after packing each B block, and at
// 128 rows splits the rows in just two items: any delay of one thread idled the other, an eighth of
// the encoder's time), and chunks handed out dynamically balance the threads. Each output is the same
// FMA chain as in gemm_packed (same K blocks, same micro-kernel): the result is bitwise the same.
// Several products of one X (matmul_parts: q, k, v; gate, up; parts of one weight type and K > 0) put
// their chunks in one list: one parallel region and one meeting for all, and the small k and v
// products (four chunks each at the 270m) no longer end a region with a thread idle.
constexpr int64_t kColSplitMaxM = kern::kColSplitMaxM;
constexpr int64_t kColChunkPanels = 4;

template <class P>
void gemm_colsplit(const float* X, int64_t M, int64_t ldx, const MatmulOut* parts, int np) {
  const int64_t K = parts[0].w->cols;
  const int64_t kc_nom = gemm_kc(K);
  int64_t first[kMaxMatmulParts + 1], rows = 0;
  first[0] = 0;
  for (int p = 0; p < np; ++p) {
    first[p + 1] = first[p] + cdiv(cdiv(parts[p].w->rows, kNR), kColChunkPanels);
    rows += parts[p].w->rows;
  }
#pragma omp parallel if (M * rows * K >= kGemmParallelMacs)
  {
    float* Bp = static_cast<float*>(
        kern::scratch(kern::kScratchB, static_cast<size_t>(kColChunkPanels * kNR * kc_nom) * sizeof(float)));
#pragma omp for schedule(dynamic, 1)
    for (int64_t c = 0; c < first[np]; ++c) {
      int p = 0;
      while (c >= first[p + 1]) ++p;
      const WeightMatrix& W = *parts[p].w;
      float* Y = parts[p].y;
      const int64_t ldy = parts[p].ldy, N = W.rows, npan = cdiv(N, kNR);
      const int64_t jp0 = (c - first[p]) * kColChunkPanels, jp1 = imin(npan, jp0 + kColChunkPanels);
      for (int64_t pc = 0; pc < K; pc += kc_nom) {
        const int64_t kc = imin(kc_nom, K - pc);
        for (int64_t jp = jp0; jp < jp1; ++jp)
          P::pack_b(W, jp * kNR, static_cast<int>(imin(kNR, N - jp * kNR)), pc, kc, Bp + (jp - jp0) * kNR * kc);
        for (int64_t jp = jp0; jp < jp1; ++jp) {
          const int nvalid = static_cast<int>(imin(kNR, N - jp * kNR));
          for (int64_t m0 = 0; m0 < M; m0 += kMR)
            g_uk_direct.run(static_cast<int>(imin(kMR, M - m0)), kc, X + m0 * ldx + pc, ldx, Bp + (jp - jp0) * kNR * kc,
                            kNR, Y + m0 * ldy + jp * kNR, ldy, nvalid, pc > 0);
        }
      }
    }
  }
}

// Largest M handled by the streaming (decode) kernels.
constexpr int64_t kGemvMaxM = kern::kDecodeMaxM;

// Q8 / Q4 weights: integer-dot decode kernels and dequantizing GEMM packing.
#include "kernels/matmul_quant.inl"

// Y_p = X·W_pᵀ for parts of one weight type and K (checked by the caller) and M <= kGemvMaxM.
void matmul_parts_decode(const float* X, int64_t M, int64_t ldx, const MatmulOut* parts, int np) {
  switch (parts[0].w->type) {
    case WeightType::kF32: gemv<WeightType::kF32>(X, M, ldx, parts, np); break;
    case WeightType::kBF16: gemv<WeightType::kBF16>(X, M, ldx, parts, np); break;
    case WeightType::kF16: gemv<WeightType::kF16>(X, M, ldx, parts, np); break;
    case WeightType::kQ8: qgemv<WeightType::kQ8>(X, M, ldx, parts, np); break;
    case WeightType::kQ4: qgemv<WeightType::kQ4>(X, M, ldx, parts, np); break;
  }
}

// Y_p = X·W_pᵀ for kGemvMaxM < M <= kColSplitMaxM and parts of one weight type and K > 0 (checked by
// the caller): one column-split schedule for all of them.
void matmul_parts_colsplit(const float* X, int64_t M, int64_t ldx, const MatmulOut* parts, int np) {
  switch (parts[0].w->type) {
    case WeightType::kF32: gemm_colsplit<PackF32<WeightType::kF32>>(X, M, ldx, parts, np); break;
    case WeightType::kBF16: gemm_colsplit<PackF32<WeightType::kBF16>>(X, M, ldx, parts, np); break;
    case WeightType::kF16: gemm_colsplit<PackF32<WeightType::kF16>>(X, M, ldx, parts, np); break;
    case WeightType::kQ8: gemm_colsplit<PackQuant<WeightType::kQ8>>(X, M, ldx, parts, np); break;
    case WeightType::kQ4: gemm_colsplit<PackQuant<WeightType::kQ4>>(X, M, ldx, parts, np); break;
  }
}

void matmul_f32acc(const float* X, int64_t M, int64_t ldx, const WeightMatrix& W, float* Y, int64_t ldy) {
  if (M <= 0 || W.rows <= 0) return;
  if (M <= kGemvMaxM) {
    const MatmulOut part{&W, Y, ldy};
    matmul_parts_decode(X, M, ldx, &part, 1);
    return;
  }
  // Column split up to kColSplitMaxM rows; K = 0 goes to gemm_packed, which writes the zeros.
  const bool colsplit = M <= kColSplitMaxM && W.cols > 0;
  const MatmulOut part{&W, Y, ldy};
  auto run = [&](auto policy) {
    using P = decltype(policy);
    if (colsplit) gemm_colsplit<P>(X, M, ldx, &part, 1);
    else gemm_packed<P>(X, M, ldx, W, Y, ldy);
  };
  switch (W.type) {
    case WeightType::kF32: run(PackF32<WeightType::kF32>{}); break;
    case WeightType::kBF16: run(PackF32<WeightType::kBF16>{}); break;
    case WeightType::kF16: run(PackF32<WeightType::kF16>{}); break;
    case WeightType::kQ8: run(PackQuant<WeightType::kQ8>{}); break;
    case WeightType::kQ4: run(PackQuant<WeightType::kQ4>{}); break;
  }
}

// ---------------------------------------------------------------------------------------------
// Single-threaded dense fp32 GEMM for attention tiles.
// B layouts of gemm_f32_impl: [K, N] row-major, [N, K] row-major (Bᵀ), or column panels of kNR columns
// (panel j at B + j * ldb, its row k at + k * kNR: the micro-kernel's own layout, read in place).
enum class BLayout { kRows, kTransposed, kPanels };

void gemm_f32_impl(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                   BLayout layout, float* C, int64_t ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) C[m * ldc + n] = 0.f;
    return;
  }
  // A is read in place (broadcasts from kMR row pointers); B is used in place when it is [K, N] or
  // already in panels, and packed one kNR-column micro-panel at a time (a transpose) when it is [N, K].
  const int64_t kc_nom = gemm_kc(K);
  float* Bp = static_cast<float*>(kern::scratch(kern::kScratchGemmB, static_cast<size_t>(kNR * kc_nom) * sizeof(float)));
  const int64_t npan = cdiv(N, kNR);
  for (int64_t pc = 0; pc < K; pc += kc_nom) {
    const int64_t kc = imin(kc_nom, K - pc);
    const bool acc = accumulate || pc > 0;
    for (int64_t jp = 0; jp < npan; ++jp) {
      const int nvalid = static_cast<int>(imin(kNR, N - jp * kNR));
      const float* Bpan;
      int64_t ldbk;
      if (layout == BLayout::kPanels) {
        Bpan = B + jp * ldb + pc * kNR;
        ldbk = kNR;
      } else if (layout == BLayout::kTransposed) {
        pack_b_f32<WeightType::kF32>(B, ldb, jp * kNR, nvalid, pc, kc, Bp);
        Bpan = Bp;
        ldbk = kNR;
      } else if (ldb % 256 == 0 && N > kNR) {
        // Power-of-two-ish row strides put a panel's rows in a few L1 sets: copy it to a dense panel.
        pack_b_copy(B + pc * ldb + jp * kNR, ldb, nvalid, kc, Bp);
        Bpan = Bp;
        ldbk = kNR;
      } else {
        Bpan = B + pc * ldb + jp * kNR;
        ldbk = ldb;
      }
      for (int64_t m0 = 0; m0 < M; m0 += kMR)
        g_uk_direct.run(static_cast<int>(imin(kMR, M - m0)), kc, A + m0 * lda + pc, lda, Bpan, ldbk,
                        C + m0 * ldc + jp * kNR, ldc, nvalid, acc);
    }
  }
}
