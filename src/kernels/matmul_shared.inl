// Helpers shared by the matrix-product units of every ISA (matmul_impl.inl for AVX2 / AVX-512,
// matmul_vnni.cc): integer helpers, compile-time loops, the fixed-order horizontal sums of the quantized
// decode kernels, and the decode schedule (which thread streams which weight rows). Include it ONLY
// inside an anonymous namespace of a translation unit compiled with at least AVX2 + FMA (the sums are
// 256-bit), after <immintrin.h> and <omp.h>; it needs kMaxMatmulParts and MatmulOut (matmul.h).

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
inline int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Forced inlining: every call from a kernel would make it spill all live ymm registers (caller-saved).
#define T5G_QINLINE inline __attribute__((always_inline))
#define T5G_QLAMBDA __attribute__((always_inline))

T5G_QINLINE float qhsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// Calls f(Ic<0>{}), ..., f(Ic<N-1>{}): loop indices that are compile-time constants, so that arrays of
// accumulators indexed by them stay in registers (a runtime index, even in a tail loop, puts the whole
// array on the stack and every FMA behind a store-to-load round trip).
template <int I>
struct Ic {
  static constexpr int value = I;
};
template <int N, int I = 0, class F>
T5G_QINLINE void static_for(F&& f) {
  if constexpr (I < N) {
    f(Ic<I>{});
    static_for<N, I + 1>(f);
  }
}

// Horizontal sums of R vectors in qhsum's order, ((v0+v4) + (v2+v6)) + ((v1+v5) + (v3+v7)), with
// shared shuffles for R = 4: the result of an output never depends on how many rows were reduced together.
template <int R>
T5G_QINLINE void qhsum_rows(const __m256 (&v)[R], float* y) {
  if constexpr (R == 4) {
    // [x0+x4, x1+x5, x2+x6, x3+x7] of rows 0, 1 in one register and of rows 2, 3 in another, lanes
    // reordered to [s0, s2, s1, s3] so that two hadds form (s0+s2) + (s1+s3).
    const __m256 s01 = _mm256_add_ps(_mm256_permute2f128_ps(v[0], v[1], 0x20), _mm256_permute2f128_ps(v[0], v[1], 0x31));
    const __m256 s23 = _mm256_add_ps(_mm256_permute2f128_ps(v[2], v[3], 0x20), _mm256_permute2f128_ps(v[2], v[3], 0x31));
    const __m256 h1 = _mm256_hadd_ps(_mm256_permute_ps(s01, 0xd8), _mm256_permute_ps(s23, 0xd8));
    const __m256 h2 = _mm256_hadd_ps(h1, h1);  // lanes: [r0, r2, r0, r2 | r1, r3, r1, r3]
    const __m128 lo = _mm256_castps256_ps128(h2), hi = _mm256_extractf128_ps(h2, 1);
    _mm_storeu_ps(y, _mm_unpacklo_ps(lo, hi));  // [r0, r1, r2, r3]
  } else {
#pragma GCC unroll 4
    for (int r = 0; r < R; ++r) y[r] = qhsum(v[r]);
  }
}

// Far prefetch for the quantized decode kernels: besides the near prefetch into L1, the weight and the
// scale streams (two arrays) kFarBlocks blocks of rows ahead into L2. With the near one alone too few
// lines were in flight: from DRAM the Q4 LM head streamed at 25-30 GB/s with the read bandwidth at 35-60,
// with both at 37-59, the read bandwidth measured beside it (bench_kernels BM_Matmul, BM_DecoderProjections,
// AVX512_VNNI kernels on Zen 5). 4 blocks ahead gained half as much, 16 and 32 no more than 8.
constexpr int64_t kFarBlocks = 8;

// Lines [p, p + bytes) into L2.
T5G_QINLINE void prefetch_l2(const void* p, int64_t bytes) {
  for (int64_t o = 0; o < bytes; o += 64) _mm_prefetch(static_cast<const char*>(p) + o, _MM_HINT_T2);
}

// The far prefetch of a block of R rows (rs bytes, G scales each; no scales: G = 0) at w / sc, issued
// with that block: the block kFarBlocks ahead, never past the range's end (rows_left rows from w) ...
T5G_QINLINE void prefetch_block_far(const void* w, const uint16_t* sc, int R, int64_t rs, int64_t G, int64_t rows_left) {
  const int64_t ahead = kFarBlocks * R;
  if (ahead < rows_left) {
    const int64_t n = imin(R, rows_left - ahead);
    prefetch_l2(static_cast<const char*>(w) + ahead * rs, n * rs);
    if (G > 0) prefetch_l2(sc + ahead * G, n * G * 2);
  }
}
// ... and at the start of a range its first kFarBlocks blocks.
T5G_QINLINE void prefetch_range_start(const void* w, const uint16_t* sc, int R, int64_t rs, int64_t G, int64_t rows) {
  const int64_t n = imin(kFarBlocks * R, rows);
  prefetch_l2(w, n * rs);
  if (G > 0) prefetch_l2(sc, n * G * 2);
}

// A range is at least kGemvChunkBytes of weights: each range restarts the hardware prefetchers' stream, a
// ramp-up that 23 KB ranges (Q4 MLP matrices at 16 ranges per thread) paid on every range.
constexpr int64_t kGemvChunkBytes = int64_t(1) << 16;

constexpr int64_t kGemvParallelBytes = int64_t(1) << 17;  // smaller weight matrices: single-threaded (q4 q/o, 368 KiB, now split)

inline int64_t row_chunk(int64_t N, int T, int64_t row_bytes) {
  return imax(imax(8, cdiv(N, int64_t(T) * 16)), cdiv(kGemvChunkBytes, imax(1, row_bytes)));
}

// Several matrices multiplied by the same X (matmul_parts: q, k, v; gate, up) share one schedule: the
// ranges of every part go into one dynamically handed-out list, so a matrix too small to split alone
// still shares the threads, and the threads meet once at the end instead of once per matrix.
// body(part, n0, n1) for each range [n0, n1) of part `part` (ranges of R rows: whole blocks, but for
// the last of a part).
template <class Body>
void for_each_range(const int64_t* N, int np, int R, int64_t row_bytes, bool parallel, Body&& body) {
  const int T = parallel ? omp_get_max_threads() : 1;
  int64_t chunk[kMaxMatmulParts], first[kMaxMatmulParts + 1];
  first[0] = 0;
  for (int p = 0; p < np; ++p) {
    chunk[p] = cdiv(row_chunk(N[p], T, row_bytes), R) * R;
    first[p + 1] = first[p] + cdiv(N[p], chunk[p]);
  }
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
  for (int64_t c = 0; c < first[np]; ++c) {
    int p = 0;
    while (c >= first[p + 1]) ++p;
    const int64_t n0 = (c - first[p]) * chunk[p];
    body(p, n0, imin(N[p], n0 + chunk[p]));
  }
}

// Rows and total bytes of parts that share one weight type and K (row_bytes each).
inline bool part_rows(const MatmulOut* parts, int np, int64_t row_bytes, int64_t* N) {
  int64_t total = 0;
  for (int p = 0; p < np; ++p) {
    N[p] = parts[p].w->rows;
    total += N[p] * row_bytes;
  }
  return total >= kGemvParallelBytes;
}

