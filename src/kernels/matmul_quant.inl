// Kernels for the quantized weight formats Q8 / Q4 (layout in matmul.h). Included by matmul_impl.inl
// (so once per ISA translation unit, inside its anonymous namespace); written with 256-bit AVX2
// integer intrinsics only, which every ISA translation unit here can compile (the AVX-512 unit is
// built with -mavx2 too). Uses imin/imax/cdiv, kNR, transpose8, for_each_row_pass and kGemvParallelBytes from matmul_impl.inl.
//
// Decode (M <= 8): each row of X is quantized to int8 per group of kQuantGroup (the weight groups),
//   dx = max|x| / 127, qx = round(x / dx) (as llama.cpp's Q8 activations). A group's dot product
//   is exact in int32 (vpmaddubsw + vpmaddwd), converted to fp32 and multiplied by dw·dx; a weight
//   row is streamed once for all M rows of X. Q8 uses the sign trick (|w| · sign(x, w): vpmaddubsw
//   takes an unsigned and a signed operand; |w|, |x| <= 127 so no pair saturates). Q4 multiplies the
//   stored nibble u = q + 8 (0..15) directly and subtracts 8·Σqx afterwards, folded in fp32 as
//   Σ_g dw_g · (8·dx_g·Σqx_g): one FMA per 8 groups per X row, from values prepared with X. Q4 works
//   on pairs of groups (one 32-byte load gives 64 nibbles), halving the per-byte instruction count.
//   Error vs fp32 X times the dequantized weights: |Δy| <= Σ_g (dx_g / 2) Σ_{k in g} |w_k| (+ fp32
//   rounding), i.e. about 0.5% rms of |y| for Gaussian data; see tests/kernels/matmul_quant_test.cc.
//   Weight rows are streamed one at a time in memory order (for_each_row_pass). Each output's fp32
//   accumulation is lanewise over the groups in order into two alternating accumulators, then one
//   fixed horizontal sum: its order depends only on K, never on M, on X-row passes, or on threads.
// GEMM (M > 8): the packed fp32 GEMM with the weights dequantized into its B micro-panels
//   (value = q · d exactly as weight_row_f32 computes it), so only the weight quantization is lost.

inline float qhsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

constexpr int64_t kQPrefetchBytes = 1024;  // software prefetch distance (into L1) along the row stream
constexpr int64_t kQG = kQuantGroup;  // 32: one group = one 256-bit vector of int8
static_assert(kQuantGroup == 32, "the quantized kernels assume groups of 32");

// X quantized per group: qx [M][Q] int8 (Q4: pairs of groups interleaved, see qgemv), dx [M][Gp] fp32
// group scales, cx [M][Gp] fp32 = 8·dx·Σqx (Q4 offset correction); groups past K have dx = cx = 0.
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
    if ((g + 1) * kQG > K) {  // the row's last partial group (or a padding group): zero-padded copy
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

// Q4 pairs: the weight bytes of groups 2j, 2j+1 (32 bytes) hold, after (b & 15) and (b >> 4), elements
// [g0 0..15 | g1 0..15] and [g0 16..31 | g1 16..31]; X is reordered to match, per 64 values.
inline void q4_pair_order_x(int8_t* q, int64_t Q) {
  for (int64_t j = 0; j < Q; j += 2 * kQG) {
    alignas(16) int8_t t[16];
    std::memcpy(t, q + j + 16, 16);            // g0[16..31]
    std::memcpy(q + j + 16, q + j + 32, 16);   // g1[0..15]
    std::memcpy(q + j + 32, t, 16);
  }
}

// Weight-row scales dw[g0 .. g0+8) as fp32, zero past the row's G scales. `tail_ok`: the 8 values
// starting at g0 lie inside the scale array (the next row's scales are then read and masked off).
inline __m256 load8_scales(const uint16_t* sc, int64_t G, int64_t g0, bool tail_ok) {
  if (g0 + 8 <= G) return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc + g0)));
  if (tail_ok) {
    const __m256 v = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc + g0)));
    const __m256 keep = _mm256_castsi256_ps(
        _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(G - g0)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
    return _mm256_and_ps(v, keep);  // also drops an Inf/NaN scale of the next row
  }
  alignas(16) uint16_t b[8] = {};
  for (int64_t i = 0; g0 + i < G && i < 8; ++i) b[i] = sc[g0 + i];
  return _mm256_cvtph_ps(_mm_load_si128(reinterpret_cast<const __m128i*>(b)));
}

// One Q8 weight row (G groups of 32 bytes at w, scales sc) times MC quantized X rows. Groups are taken
// in order, 8 at a time with their scales dw·dx formed per block of 8; accumulator g & 1 takes group g;
// result hsum(acc0 + acc1).
template <int MC, bool PREFETCH>
void q8_row(const uint8_t* w, const uint16_t* sc, int64_t G, bool tail_ok, const QuantX& xq, float* y, int64_t ldy) {
  __m256 acc[MC][2];
#pragma GCC unroll 8
  for (int m = 0; m < MC; ++m) acc[m][0] = acc[m][1] = _mm256_setzero_ps();
  const __m256i ones16 = _mm256_set1_epi16(1);
  alignas(32) float s8[MC][8];  // broadcast from L1 (a load, not a shuffle: the ALUs are the limit at M > 1)
  auto step = [&](int64_t g, int t) {
    const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + g * kQG));
    const __m256i aw = _mm256_abs_epi8(wv);
#pragma GCC unroll 8
    for (int m = 0; m < MC; ++m) {
      const __m256i x = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq.q + m * xq.Q + g * kQG));
      const __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(x, wv)), ones16));
      acc[m][t & 1] = _mm256_fmadd_ps(f, _mm256_broadcast_ss(&s8[m][t]), acc[m][t & 1]);
    }
  };
  for (int64_t g0 = 0; g0 < G; g0 += 8) {
    const __m256 dw = load8_scales(sc, G, g0, tail_ok);
#pragma GCC unroll 8
    for (int m = 0; m < MC; ++m) _mm256_store_ps(s8[m], _mm256_mul_ps(dw, _mm256_loadu_ps(xq.d + m * xq.Gp + g0)));
    if (g0 + 8 <= G) {
      if constexpr (PREFETCH) {
#pragma GCC unroll 4
        for (int o = 0; o < 4; ++o) _mm_prefetch(reinterpret_cast<const char*>(w + g0 * kQG) + kQPrefetchBytes + 64 * o, _MM_HINT_T0);
      }
#pragma GCC unroll 8
      for (int t = 0; t < 8; ++t) step(g0 + t, t);
    } else {
      for (int t = 0; g0 + t < G; ++t) step(g0 + t, t);
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < MC; ++m) y[m * ldy] = qhsum(_mm256_add_ps(acc[m][0], acc[m][1]));
}

// One Q4 weight row (G groups of 16 bytes at w) times MC quantized X rows (pair order). Pair j (groups
// 2j, 2j+1: one 32-byte load) goes to accumulator j & 1; its products' lanes 0-3 belong to group 2j,
// lanes 4-7 to 2j+1, scaled by a vector permuted from the 8 group scales dw·dx of its block of 4
// pairs, formed in registers. The offset correction -Σ dw·cx accumulates lanewise per block of 8
// groups; result hsum((acc0 + acc1) + corr).
template <int MC, bool PREFETCH>
void q4_row(const uint8_t* w, const uint16_t* sc, int64_t G, bool tail_ok, const QuantX& xq, float* y, int64_t ldy) {
  __m256 acc[MC][2], corr[MC], s8[MC];
#pragma GCC unroll 8
  for (int m = 0; m < MC; ++m) acc[m][0] = acc[m][1] = corr[m] = _mm256_setzero_ps();
  const __m256i ones16 = _mm256_set1_epi16(1);
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  auto step = [&](const uint8_t* wp, int64_t j, int t) {
    const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp));
    const __m256i lo = _mm256_and_si256(wv, low4);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(wv, 4), low4);
    const __m256i idx = _mm256_add_epi32(_mm256_set1_epi32(2 * t), _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1));
#pragma GCC unroll 8
    for (int m = 0; m < MC; ++m) {
      const int8_t* xp = xq.q + m * xq.Q + j * 2 * kQG;
      const __m256i p = _mm256_add_epi16(
          _mm256_maddubs_epi16(lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp))),
          _mm256_maddubs_epi16(hi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp + kQG))));
      const __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones16));
      acc[m][t & 1] = _mm256_fmadd_ps(f, _mm256_permutevar8x32_ps(s8[m], idx), acc[m][t & 1]);
    }
  };
  const int64_t P = G / 2;  // whole pairs in the row
  for (int64_t g0 = 0; g0 < G; g0 += 8) {
    const __m256 dw = load8_scales(sc, G, g0, tail_ok);
#pragma GCC unroll 8
    for (int m = 0; m < MC; ++m) {
      s8[m] = _mm256_mul_ps(dw, _mm256_loadu_ps(xq.d + m * xq.Gp + g0));
      corr[m] = _mm256_fnmadd_ps(dw, _mm256_loadu_ps(xq.c + m * xq.Gp + g0), corr[m]);
    }
    const int64_t j0 = g0 / 2;
    if (j0 + 4 <= P) {
      if constexpr (PREFETCH) {
        _mm_prefetch(reinterpret_cast<const char*>(w + j0 * kQG) + kQPrefetchBytes, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(w + j0 * kQG) + kQPrefetchBytes + 64, _MM_HINT_T0);
      }
#pragma GCC unroll 4
      for (int t = 0; t < 4; ++t) step(w + (j0 + t) * kQG, j0 + t, t);
    } else {
      int t = 0;
      for (; j0 + t < P; ++t) step(w + (j0 + t) * kQG, j0 + t, t);
      if (G % 2 != 0) {  // a last single group: a zero-padded copy (its partner's X and scale are zero)
        alignas(32) uint8_t buf[kQG] = {};
        std::memcpy(buf, w + P * kQG, kQG / 2);
        step(buf, P, t);
      }
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < MC; ++m) y[m * ldy] = qhsum(_mm256_add_ps(_mm256_add_ps(acc[m][0], acc[m][1]), corr[m]));
}

// X rows per pass over a quantized weight row.
constexpr int kQGemvMC = 4;

template <WeightType WT, bool PREFETCH, int MC = kQGemvMC>
void qrow_dispatch(int mc, const uint8_t* w, const uint16_t* sc, int64_t G, bool tail_ok, const QuantX& xq, float* y,
                   int64_t ldy) {
  if (mc == MC) {
    if constexpr (WT == WeightType::kQ8) q8_row<MC, PREFETCH>(w, sc, G, tail_ok, xq, y, ldy);
    else q4_row<MC, PREFETCH>(w, sc, G, tail_ok, xq, y, ldy);
  } else if constexpr (MC > 1) {
    qrow_dispatch<WT, PREFETCH, MC - 1>(mc, w, sc, G, tail_ok, xq, y, ldy);
  }
}

// Y = X·Wᵀ for M <= 8 and a Q8/Q4 W: rows streamed one at a time in memory order (for_each_row_pass).
template <WeightType WT>
void qgemv(const float* X, int64_t M, int64_t ldx, const WeightMatrix& W, float* Y, int64_t ldy) {
  const int64_t K = W.cols, N = W.rows;
  const int64_t G = quant_padded_cols(K) / kQG;                                   // weight groups per row
  const int64_t Q = WT == WeightType::kQ4 ? cdiv(G, 2) * 2 * kQG : G * kQG;      // X row stride (Q4: whole pairs)
  const int64_t Gp = cdiv(Q / kQG, 8) * 8;
  const int64_t rs = WT == WeightType::kQ8 ? G * kQG : G * kQG / 2;  // data row stride, bytes
  // Scratch: qx [M][Q] int8 (+32 so a 256-bit load never passes the end), then dx, cx [M][Gp] fp32.
  const size_t qbytes = static_cast<size_t>(cdiv(M * Q + 32, 64) * 64);
  char* s = static_cast<char*>(kern::scratch(kern::kScratchX, qbytes + static_cast<size_t>(2 * M * Gp) * sizeof(float)));
  int8_t* qx = reinterpret_cast<int8_t*>(s);
  float* dx = reinterpret_cast<float*>(s + qbytes);
  float* cx = dx + M * Gp;
  for (int64_t m = 0; m < M; ++m) {
    quantize_x_row(X + m * ldx, K, Q, Gp, qx + m * Q, dx + m * Gp, cx + m * Gp);
    if constexpr (WT == WeightType::kQ4) q4_pair_order_x(qx + m * Q, Q);
  }
  const uint8_t* base = static_cast<const uint8_t*>(W.data);
  for_each_row_pass(N, M, kQGemvMC, weight_matrix_bytes(W) >= kGemvParallelBytes, [&](int64_t n, int64_t m0, int mc) {
    const bool tail_ok = (n + 1) * G + imax(0, 8 - G % 8) <= N * G;  // 8 scales at the last block stay in the array
    const QuantX xq{qx + m0 * Q, dx + m0 * Gp, cx + m0 * Gp, Q, Gp};
    if (m0 == 0) qrow_dispatch<WT, true>(mc, base + n * rs, W.scales + n * G, G, tail_ok, xq, Y + m0 * ldy + n, ldy);
    else qrow_dispatch<WT, false>(mc, base + n * rs, W.scales + n * G, G, tail_ok, xq, Y + m0 * ldy + n, ldy);
  });
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
