// Helpers shared by the matrix-product units of every ISA (matmul_impl.inl for AVX2 / AVX-512,
// matmul_vnni.cc): integer helpers, compile-time loops, an L2 prefetch, and the decode schedule (which
// thread streams which weight rows). Include it ONLY inside an anonymous namespace of a translation
// unit compiled with at least AVX2 + FMA, after <immintrin.h> and <omp.h>; it needs kMaxMatmulParts and
// MatmulOut (matmul.h).

inline int64_t imin(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t imax(int64_t a, int64_t b) { return a > b ? a : b; }
inline int64_t cdiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Forced inlining: every call from a kernel would make it spill all live ymm registers (caller-saved).
#define T5G_QINLINE inline __attribute__((always_inline))
#define T5G_QLAMBDA __attribute__((always_inline))

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

// Lines [p, p + bytes) into L2 (the quantized decode kernels' far prefetch, matmul_vnni.cc: from DRAM
// the hardware prefetchers alone followed the weight and the scale streams too late).
T5G_QINLINE void prefetch_l2(const void* p, int64_t bytes) {
  for (int64_t o = 0; o < bytes; o += 64) _mm_prefetch(static_cast<const char*>(p) + o, _MM_HINT_T2);
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

