// Kernels for the quantized weight formats Q8 / Q4 (layout in matmul.h). Included by matmul_impl.inl
// (so once per ISA translation unit, inside its anonymous namespace); written with 256-bit AVX2
// integer intrinsics only, which every ISA translation unit here can compile (the AVX-512 unit is
// built with -mavx2 too). Uses imin/cdiv, kNR, transpose8 and kGemvPrefetchBytes from matmul_impl.inl.
//
// Decode (M <= 8): each row of X is quantized to int8 per group of kQuantGroup (the weight groups),
//   dx = max|x| / 127, qx = round(x / dx) (as llama.cpp's Q8 activations). A group's dot product
//   is exact in int32 (vpmaddubsw + vpmaddwd), converted to fp32 and multiplied by dw·dx; a weight
//   row is streamed once for all M rows of X. Q8 uses the sign trick (|w| · sign(x, w): vpmaddubsw
//   takes an unsigned and a signed operand; |w|, |x| <= 127 so no pair saturates). Q4 multiplies the
//   stored nibble u = q + 8 (0..15) directly and subtracts 8·Σqx afterwards, folded in fp32 as
//   Σ_g dw_g · (8·dx_g·Σqx_g): one FMA per 8 groups per X row, from values prepared with X.
//   Error vs fp32 X times the dequantized weights: |Δy| <= Σ_g (dx_g / 2) Σ_{k in g} |w_k| (+ fp32
//   rounding), i.e. about 0.5% rms of |y| for Gaussian data; see tests/kernels/matmul_quant_test.cc.
//   Each output's fp32 accumulation is lanewise over the groups in order, then one fixed horizontal
//   sum: its order depends only on K, never on M, on how rows are grouped, or on the thread count.
// GEMM (M > 8): the packed fp32 GEMM with the weights dequantized into its B micro-panels
//   (value = q · d exactly as weight_row_f32 computes it), so only the weight quantization is lost.

inline float qhsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

// Software prefetch of the weight rows (on: measured faster at M = 1 on Zen 3; -DT5G_QUANT_PREFETCH=0 to compare).
#ifndef T5G_QUANT_PREFETCH
#define T5G_QUANT_PREFETCH 1
#endif
constexpr bool kQPrefetch = T5G_QUANT_PREFETCH;
#ifndef T5G_QUANT_PREFETCH_BYTES
#define T5G_QUANT_PREFETCH_BYTES 32768
#endif
constexpr int64_t kQPrefetchBytes = T5G_QUANT_PREFETCH_BYTES;  // distance ahead, in whole weight rows
constexpr int64_t kQG = kQuantGroup;  // 32: one group = one 256-bit vector of int8
static_assert(kQuantGroup == 32, "the quantized kernels assume groups of 32");

template <WeightType WT>
constexpr int64_t qgroup_bytes() {
  return WT == WeightType::kQ8 ? kQG : kQG / 2;
}

// X quantized per group: qx [M][Q] int8, dx [M][Gp] fp32 group scales, cx [M][Gp] fp32 = 8·dx·Σqx (Q4
// offset correction); groups G..Gp-1 (Gp = G rounded up to 8) have dx = cx = 0.
struct QuantX {
  const int8_t* q;
  const float* d;
  const float* c;
  int64_t Q, Gp;
};

inline void quantize_x_row(const float* x, int64_t K, int64_t Q, int64_t Gp, int8_t* q, float* d, float* c) {
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256i perm = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  const int64_t G = Q / kQG;
  for (int64_t g = 0; g < G; ++g) {
    alignas(32) float buf[kQG];
    const float* xs = x + g * kQG;
    if ((g + 1) * kQG > K) {  // the row's last partial group: zero-padded copy
      const int64_t n = K - g * kQG;
      for (int64_t i = 0; i < kQG; ++i) buf[i] = i < n ? xs[i] : 0.f;
      xs = buf;
    }
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps(), nan = _mm256_setzero_ps();
    for (int i = 0; i < 4; ++i) {
      v[i] = _mm256_loadu_ps(xs + 8 * i);
      amax = _mm256_max_ps(amax, _mm256_and_ps(v[i], absmask));
      nan = _mm256_or_ps(nan, _mm256_cmp_ps(v[i], v[i], _CMP_UNORD_Q));
    }
    __m128 a = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    a = _mm_max_ps(a, _mm_movehl_ps(a, a));
    a = _mm_max_ss(a, _mm_shuffle_ps(a, a, 1));
    // A group below 2^-100 (where 127/max|x| could overflow) counts as zero: error < 2^-100·Σ|w|.
    const float am = _mm_cvtss_f32(a) < 0x1p-100f ? 0.f : _mm_cvtss_f32(a);
    // A NaN in the group makes its scale NaN, so that it reaches Y as in the reference.
    const float dg = _mm256_movemask_ps(nan) ? __builtin_nanf("") : am / 127.f;
    const __m256 id = _mm256_set1_ps(am > 0.f ? 127.f / am : 0.f);
    __m256i qi[4];
    for (int i = 0; i < 4; ++i) qi[i] = _mm256_cvtps_epi32(_mm256_mul_ps(v[i], id));  // round to nearest even
    const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(qi[0], qi[1]), _mm256_packs_epi32(qi[2], qi[3]));
    const __m256i qb = _mm256_permutevar8x32_epi32(p, perm);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + g * kQG), qb);
    // Σqx: |Σ| <= 32·127 fits the int16 lanes of vpmaddubsw(1, q) then vpmaddwd.
    const __m256i s32 = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), qb), _mm256_set1_epi16(1));
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(s32), _mm256_extracti128_si256(s32, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
    d[g] = dg;
    c[g] = 8.f * dg * static_cast<float>(_mm_cvtsi128_si32(s));
  }
  for (int64_t g = G; g < Gp; ++g) d[g] = c[g] = 0.f;
}

// The scales of R weight rows times those of X, group-major: sdx[g * 8 + r * M + m] = dw[r][g]·dx[m][g]
// for g < Gp (zero past G), so the main loop broadcasts them from one pointer at constant offsets; and
// the Q4 offset correction -Σ_g dw_g·cx[m][g] as 8 lanes, the accumulators' starting values.
template <WeightType WT, int M, int R>
inline void qrows_scales(const uint16_t* sc, int64_t G, const QuantX& xq, float* sdx, __m256 (&acc)[R][M]) {
  static_assert(R * M <= 8, "");
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) acc[r][m] = _mm256_setzero_ps();
  for (int64_t g0 = 0; g0 < G; g0 += 8) {
    __m256 v[8];
#pragma GCC unroll 8
    for (int i = R * M; i < 8; ++i) v[i] = _mm256_setzero_ps();
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      __m256 dw;
      if (g0 + 8 <= G) {
        dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc + r * G + g0)));
      } else {  // the row's last G - g0 < 8 scales, never reading past them (nor the array)
        const int n = static_cast<int>(G - g0);
        const uint16_t* p = sc + r * G + g0;
        const __m128i pairs = _mm_cmpgt_epi32(_mm_set1_epi32(n / 2), _mm_setr_epi32(0, 1, 2, 3));
        __m128i h = _mm_maskload_epi32(reinterpret_cast<const int*>(p), pairs);  // whole pairs
        switch (n) {  // an odd last scale (its lane index must be a constant)
          case 1: h = _mm_insert_epi16(h, p[0], 0); break;
          case 3: h = _mm_insert_epi16(h, p[2], 2); break;
          case 5: h = _mm_insert_epi16(h, p[4], 4); break;
          case 7: h = _mm_insert_epi16(h, p[6], 6); break;
          default: break;
        }
        dw = _mm256_cvtph_ps(h);
      }
#pragma GCC unroll 8
      for (int m = 0; m < M; ++m) {
        v[r * M + m] = _mm256_mul_ps(dw, _mm256_loadu_ps(xq.d + m * xq.Gp + g0));
        if constexpr (WT == WeightType::kQ4)
          acc[r][m] = _mm256_fnmadd_ps(dw, _mm256_loadu_ps(xq.c + m * xq.Gp + g0), acc[r][m]);
      }
    }
    transpose8(v);
#pragma GCC unroll 8
    for (int t = 0; t < 8; ++t) _mm256_store_ps(sdx + (g0 + t) * 8, v[t]);
  }
}

// R weight rows starting at n0 times the M quantized rows of X. sdx: scratch of 8·Gp floats (32-byte aligned).
template <WeightType WT, int M, int R>
void qgemv_rows(const QuantX& xq, const WeightMatrix& W, int64_t n0, float* Y, int64_t ldy, float* sdx) {
  constexpr int64_t gb = qgroup_bytes<WT>();
  const int64_t G = xq.Q / kQG;
  const int64_t rs = G * gb;  // data row stride, bytes
  const uint8_t* base = static_cast<const uint8_t*>(W.data) + n0 * rs;
  const int64_t pf = cdiv(kQPrefetchBytes, rs) * rs;  // prefetch whole rows ahead (same offset)
  const int64_t pfs = cdiv(kQPrefetchBytes, rs) * G;
  const __m256i ones16 = _mm256_set1_epi16(1);
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i shifts = _mm256_setr_epi32(0, 0, 0, 0, 4, 4, 4, 4);
  __m256 acc[R][M];
  const uint16_t* sc = W.scales + n0 * G;
  for (int64_t o = 0; kQPrefetch && o < R * G * 2; o += 64) _mm_prefetch(reinterpret_cast<const char*>(sc + pfs) + o, _MM_HINT_T1);
  qrows_scales<WT, M, R>(sc, G, xq, sdx, acc);
  for (int64_t g = 0; g < G; ++g) {
    if (kQPrefetch && (g * gb) % 64 == 0) {
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) _mm_prefetch(reinterpret_cast<const char*>(base + r * rs + g * gb) + pf, _MM_HINT_T1);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const uint8_t* wp = base + r * rs + g * gb;
      __m256i w;
      if constexpr (WT == WeightType::kQ8) {
        w = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp));
      } else {  // bytes 0..15 twice; low nibbles in the low half, high nibbles in the high half
        w = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wp)));
        w = _mm256_and_si256(_mm256_srlv_epi32(w, shifts), low4);
      }
      const __m256i aw = WT == WeightType::kQ8 ? _mm256_abs_epi8(w) : w;
#pragma GCC unroll 8
      for (int m = 0; m < M; ++m) {
        const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq.q + m * xq.Q + g * kQG));
        const __m256i p = WT == WeightType::kQ8 ? _mm256_maddubs_epi16(aw, _mm256_sign_epi8(x, w))
                                                : _mm256_maddubs_epi16(aw, x);
        const __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones16));
        acc[r][m] = _mm256_fmadd_ps(f, _mm256_broadcast_ss(sdx + g * 8 + r * M + m), acc[r][m]);
      }
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int m = 0; m < M; ++m) Y[m * ldy + n0 + r] = qhsum(acc[r][m]);
}

// Weight rows per step: R·M <= 8 accumulators (of 16 ymm registers); 8 rows at M = 1 so that enough
// independent FMA chains hide the FMA latency (one FMA per group per accumulator).
template <int M>
constexpr int qgemv_rows_per_step() {
  return M == 1 ? 8 : M <= 2 ? 4 : M <= 4 ? 2 : 1;
}

template <WeightType WT, int M>
void qgemv_block(const QuantX& xq, const WeightMatrix& W, int64_t n0, int64_t n1, float* Y, int64_t ldy, float* sdx) {
  constexpr int R = qgemv_rows_per_step<M>();
  int64_t n = n0;
  for (; n + R <= n1; n += R) qgemv_rows<WT, M, R>(xq, W, n, Y, ldy, sdx);
  for (; n < n1; ++n) qgemv_rows<WT, M, 1>(xq, W, n, Y, ldy, sdx);
}

template <WeightType WT, int M = 8>
void qgemv_block_dispatch(int mc, const QuantX& xq, const WeightMatrix& W, int64_t n0, int64_t n1, float* Y, int64_t ldy,
                          float* sdx) {
  if (mc == M) qgemv_block<WT, M>(xq, W, n0, n1, Y, ldy, sdx);
  else if constexpr (M > 1) qgemv_block_dispatch<WT, M - 1>(mc, xq, W, n0, n1, Y, ldy, sdx);
}

constexpr int64_t kQGemvRowBlock = 16;  // weight rows per scheduling unit (a multiple of every R)

// Y = X·Wᵀ for M <= 8 and a Q8/Q4 W.
template <WeightType WT>
void qgemv(const float* X, int64_t M, int64_t ldx, const WeightMatrix& W, float* Y, int64_t ldy) {
  const int64_t K = W.cols, N = W.rows;
  const int64_t Q = quant_padded_cols(K), G = Q / kQG, Gp = cdiv(G, 8) * 8;
  // Scratch: qx [M][Q] int8 (+32 so a 256-bit load never passes the end), then dx, cx [M][Gp] fp32.
  const size_t qbytes = static_cast<size_t>(cdiv(M * Q + 32, 64) * 64);
  char* s = static_cast<char*>(kern::scratch(kern::kScratchX, qbytes + static_cast<size_t>(2 * M * Gp) * sizeof(float)));
  int8_t* qx = reinterpret_cast<int8_t*>(s);
  float* dx = reinterpret_cast<float*>(s + qbytes);
  float* cx = dx + M * Gp;
  for (int64_t m = 0; m < M; ++m) quantize_x_row(X + m * ldx, K, Q, Gp, qx + m * Q, dx + m * Gp, cx + m * Gp);
  const QuantX xq{qx, dx, cx, Q, Gp};
  const int64_t nblocks = cdiv(N, kQGemvRowBlock);
  const int mc = static_cast<int>(M);
  // Dynamic scheduling decides only which thread computes a row block, never how (see gemv).
#pragma omp parallel for schedule(dynamic, 2) if (weight_matrix_bytes(W) >= kGemvParallelBytes)
  for (int64_t b = 0; b < nblocks; ++b) {
    const int64_t n0 = b * kQGemvRowBlock, n1 = imin(N, n0 + kQGemvRowBlock);
    float* sdx = static_cast<float*>(kern::scratch(kern::kScratchA, static_cast<size_t>(8 * Gp) * sizeof(float)));
    qgemv_block_dispatch<WT>(mc, xq, W, n0, n1, Y, ldy, sdx);
  }
}

// ---- GEMM: dequantization into the fp32 B micro-panels ----

// Element k of weight row n, as weight_row_f32 computes it.
template <WeightType WT>
inline float qscalar(const WeightMatrix& W, int64_t Q, int64_t n, int64_t k) {
  const int64_t G = Q / kQG, g = k / kQG, j = k % kQG;
  const float d = _cvtsh_ss(W.scales[n * G + g]);
  if constexpr (WT == WeightType::kQ8) {
    return static_cast<float>(static_cast<const int8_t*>(W.data)[n * Q + k]) * d;
  } else {
    const uint8_t b = static_cast<const uint8_t*>(W.data)[n * (Q / 2) + g * (kQG / 2) + (j % (kQG / 2))];
    const int nib = j < kQG / 2 ? (b & 0xf) : (b >> 4);
    return static_cast<float>(nib - 8) * d;
  }
}

// Elements k..k+7 (k a multiple of 8, so within one group) of weight row n, as fp32.
template <WeightType WT>
inline __m256 qload8(const WeightMatrix& W, int64_t Q, int64_t n, int64_t k) {
  const int64_t G = Q / kQG, g = k / kQG, j = k % kQG;
  const __m256 d = _mm256_set1_ps(_cvtsh_ss(W.scales[n * G + g]));
  __m256i i;
  if constexpr (WT == WeightType::kQ8) {
    i = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(static_cast<const int8_t*>(W.data) + n * Q + k)));
  } else {
    const uint8_t* p = static_cast<const uint8_t*>(W.data) + n * (Q / 2) + g * (kQG / 2) + (j % (kQG / 2));
    i = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
    if (j >= kQG / 2) i = _mm256_srli_epi32(i, 4);
    i = _mm256_sub_epi32(_mm256_and_si256(i, _mm256_set1_epi32(0xf)), _mm256_set1_epi32(8));
  }
  return _mm256_mul_ps(_mm256_cvtepi32_ps(i), d);
}

// Rows n0..n0+nr-1 (nr <= kNR), columns k0..k0+kc-1 (k0 a multiple of 8) into Bp[k * kNR + j], zero for j >= nr.
template <WeightType WT>
void pack_b_quant(const WeightMatrix& W, int64_t n0, int nr, int64_t k0, int64_t kc, float* Bp) {
  const int64_t Q = quant_padded_cols(W.cols);
  int j0 = 0;
  for (; j0 + 8 <= nr; j0 += 8) {
    int64_t k = 0;
    for (; k + 8 <= kc; k += 8) {
      __m256 r[8];
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j) r[j] = qload8<WT>(W, Q, n0 + j0 + j, k0 + k);
      transpose8(r);
#pragma GCC unroll 8
      for (int t = 0; t < 8; ++t) _mm256_storeu_ps(Bp + (k + t) * kNR + j0, r[t]);
    }
    for (; k < kc; ++k)
      for (int j = 0; j < 8; ++j) Bp[k * kNR + j0 + j] = qscalar<WT>(W, Q, n0 + j0 + j, k0 + k);
  }
  for (int64_t k = 0; k < kc; ++k) {
    for (int j = j0; j < nr; ++j) Bp[k * kNR + j] = qscalar<WT>(W, Q, n0 + j, k0 + k);
    for (int j = nr; j < kNR; ++j) Bp[k * kNR + j] = 0.f;
  }
}

template <WeightType WT>
struct PackQuant {
  static int64_t kp(int64_t kc) { return kc; }
  static void pack_b(const WeightMatrix& W, int64_t n0, int nr, int64_t k0, int64_t kc, float* Bp) {
    pack_b_quant<WT>(W, n0, nr, k0, kc, Bp);
  }
  static void pack_a(const float* X, int64_t ldx, int64_t m0, int mr, int64_t k0, int64_t kc, float* Ap) {
    pack_a_f32(X, ldx, m0, mr, k0, kc, Ap);
  }
  static void ukr(int mr, int64_t kc, const float* Ap, const float* Bp, float* C, int64_t ldc, int nvalid, bool acc) {
    g_uk.run(mr, kc, Ap, 0, Bp, kNR, C, ldc, nvalid, acc);
  }
};
