// Helpers shared by the matrix-product units of every ISA (matmul_impl.inl for AVX2 / AVX-512,
// matmul_vnni.cc): integer helpers, compile-time loops, an L2 prefetch, and the decode schedule (which
// thread streams which weight rows). Include it ONLY inside an anonymous namespace of a translation
// unit compiled with at least AVX2 + FMA, after <immintrin.h> and <omp.h>; it needs kMaxMatmulParts and
// MatmulOut (matmul.h) and for_each_unit_range (row_shares.h).

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

// Claims of at least kGemvChunkBytes of weights (row_shares.h): the unit of work handed out at the end,
// when a thread takes over the rest of another's share.
constexpr int64_t kGemvChunkBytes = int64_t(1) << 16;

constexpr int64_t kGemvParallelBytes = int64_t(1) << 17;  // smaller weight matrices: single-threaded (q4 q/o, 368 KiB, now split)

// Several matrices multiplied by the same X (matmul_parts: q, k, v; gate, up) share one schedule: their
// rows, in units of R (whole blocks, but for the last of a part), are laid end to end and split by
// for_each_unit_range (contiguous shares per thread), so a matrix too small to split alone still shares
// the threads, and the threads meet once at the end instead of once per matrix. body(part, n0, n1) for
// each range [n0, n1) of rows of part `part`.
template <class Body>
void for_each_range(const int64_t* N, int np, int R, int64_t row_bytes, bool parallel, Body&& body) {
  int64_t first[kMaxMatmulParts + 1];
  first[0] = 0;
  for (int p = 0; p < np; ++p) first[p + 1] = first[p] + cdiv(N[p], R);
  auto run = [&](int64_t a, int64_t b) {
    for (int p = 0; p < np; ++p) {
      const int64_t lo = imax(a, first[p]), hi = imin(b, first[p + 1]);
      if (lo < hi) body(p, (lo - first[p]) * R, imin(N[p], (hi - first[p]) * R));
    }
  };
  using Run = decltype(run);
  for_each_unit_range(
      first[np], cdiv(kGemvChunkBytes, R * row_bytes), parallel,
      [](void* c, int64_t a, int64_t b) { (*static_cast<Run*>(c))(a, b); }, &run);
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

