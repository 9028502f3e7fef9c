// Kernels for the quantized weight formats Q8 / Q4 (layout in matmul.h: tiles of 16 rows). Included by
// matmul_impl.inl (so once per ISA translation unit, inside its anonymous namespace); written with
// 256-bit AVX2 integer intrinsics only, which every ISA translation unit here can compile (the AVX-512
// unit is built with -mavx2 too). Uses kNR, kGemvMaxM and transpose8 from matmul_impl.inl, and
// imin/imax/cdiv, static_for, Ic, prefetch_l2, for_each_range and part_rows from matmul_shared.inl.
// (The AVX512_VNNI decode kernels, same arithmetic, are matmul_vnni.cc.)
//
// Decode (M <= 8): each row of X is quantized to int8 per group of kQuantGroup (the weight groups),
//   dx = max|x| / 127, qx = round(x / dx) (as llama.cpp's Q8 activations). Each output's group dot
//   product Σ q·qx is an exact int32 sum: Q8 by the sign trick (|q| · sign(qx, q): vpmaddubsw takes
//   an unsigned and a signed operand; |q|, |qx| <= 127 so no pair saturates), Q4 from the stored
//   nibbles q + 8 (0..15) times qx, minus 8·Σqx. Then acc = fma(float(sum), dw·dx, acc), the groups in
//   order: an output's result depends on K only, never on M, the X-row passes or the threads, and the
//   VNNI kernels give the same bits. A tile is 16 outputs side by side (two 8-lane halves): no
//   horizontal sums. Error vs fp32 X times the dequantized weights: |Δy| <= Σ_g (dx_g / 2) Σ_{k in g}
//   |w_k| (+ fp32 rounding), about 0.5% rms of |y| for Gaussian data (tests/kernels/matmul_quant_test.cc).
// GEMM (M > 8) where the CPU has no AVX512_VNNI: the packed fp32 GEMM with the weights dequantized into its
//   B micro-panels (value = q · d exactly as weight_row_f32 computes it), so only the weight quantization
//   is lost. (With VNNI the GEMM does the decode arithmetic, matmul_vnni.cc.)

constexpr int64_t kQPrefetchBytes = 1024;  // near prefetch distance (into L1) along the weight stream
constexpr int64_t kQTileFar = 16384;       // far prefetch distance (into L2), as matmul_vnni.cc
constexpr int64_t kQG = kQuantGroup;       // 32
static_assert(kQuantGroup == 32, "the quantized kernels assume groups of 32");

// X quantized per group: qx [M][Q] int8, dx [M][Gp] fp32 group scales, sx [M][Gp] int32 = Σqx (Q4's
// offset correction); groups past K have dx = sx = 0.
struct QuantX {
  const int8_t* q;
  const float* d;
  const int32_t* s;
  int64_t Q, Gp;
};

inline void quantize_x_row(const float* x, int64_t K, int64_t Q, int64_t Gp, int8_t* q, float* d, int32_t* sx) {
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
    sx[g] = _mm_cvtsi128_si32(s);
  }
  for (int64_t g = G; g < Gp; ++g) d[g] = 0.f, sx[g] = 0;
}

// Four X bytes qx[k .. k+3] broadcast to 8 lanes.
T5G_QINLINE __m256i x4_avx2(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm256_set1_epi32(v);
}

// One tile (G groups at t: 512 bytes each for Q8, 256 for Q4; scales sc: G x 16 fp16) times MC (<= 2)
// quantized X rows into out[m][0] (rows 0-7) and out[m][1] (rows 8-15): per group and half of the
// tile (8 rows, 32 bytes of each 64-byte chunk) the exact int32 sums of the 8 rows, then one FMA.
// STREAM: the pass that first reads the tile prefetches (near into L1, far into L2 spread over the
// loads: tiles are contiguous, q_tiles_range).
template <WeightType WT, int MC, bool STREAM>
T5G_QINLINE void q_tile(const uint8_t* t, const uint16_t* sc, int64_t G, const QuantX& xq, __m256 (&out)[MC][2]) {
  static_assert(MC >= 1 && MC <= 2, "2 X rows per pass: 16 ymm registers");
  constexpr int kChunks = WT == WeightType::kQ8 ? 8 : 4;
  __m256 acc[MC][2];
  static_for<MC>([&](auto mc) T5G_QLAMBDA { acc[mc.value][0] = acc[mc.value][1] = _mm256_setzero_ps(); });
  const __m256i ones16 = _mm256_set1_epi16(1);
  for (int64_t g = 0; g < G; ++g) {
    const uint8_t* p = t + g * kChunks * 64;
    if constexpr (STREAM) {
      static_for<kChunks>([&](auto o) T5G_QLAMBDA {
        _mm_prefetch(reinterpret_cast<const char*>(p) + kQPrefetchBytes + 64 * o.value, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(p) + kQTileFar + 64 * o.value, _MM_HINT_T2);
      });
    }
    static_for<2>([&](auto hc) T5G_QLAMBDA {
      constexpr int h = decltype(hc)::value;
      __m256i is[MC];
      static_for<MC>([&](auto mc) T5G_QLAMBDA {
        is[mc.value] = WT == WeightType::kQ8 ? _mm256_setzero_si256() : _mm256_set1_epi32(-8 * xq.s[mc.value * xq.Gp + g]);
      });
      static_for<kChunks>([&](auto cc) T5G_QLAMBDA {
        constexpr int c = decltype(cc)::value;
        const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 64 * c + 32 * h));
        if constexpr (WT == WeightType::kQ8) {
          const __m256i q = _mm256_xor_si256(wv, _mm256_set1_epi8(static_cast<char>(0x80)));  // q + 128 -> q
          const __m256i aq = _mm256_abs_epi8(q);
          static_for<MC>([&](auto mc) T5G_QLAMBDA {
            constexpr int m = decltype(mc)::value;
            const __m256i x = x4_avx2(xq.q + m * xq.Q + g * kQG + 4 * c);
            is[m] = _mm256_add_epi32(is[m], _mm256_madd_epi16(_mm256_maddubs_epi16(aq, _mm256_sign_epi8(x, q)), ones16));
          });
        } else {  // low nibbles: elements 4c..4c+3, high: 16+4c..16+4c+3; |pair sums| <= 2·15·127, twice: no int16 overflow
          const __m256i low4 = _mm256_set1_epi8(0x0f);
          const __m256i lo = _mm256_and_si256(wv, low4), hi = _mm256_and_si256(_mm256_srli_epi16(wv, 4), low4);
          static_for<MC>([&](auto mc) T5G_QLAMBDA {
            constexpr int m = decltype(mc)::value;
            const int8_t* xp = xq.q + m * xq.Q + g * kQG + 4 * c;
            const __m256i pr = _mm256_add_epi16(_mm256_maddubs_epi16(lo, x4_avx2(xp)), _mm256_maddubs_epi16(hi, x4_avx2(xp + 16)));
            is[m] = _mm256_add_epi32(is[m], _mm256_madd_epi16(pr, ones16));
          });
        }
      });
      const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc + g * kQuantTileRows + 8 * h)));
      static_for<MC>([&](auto mc) T5G_QLAMBDA {
        constexpr int m = decltype(mc)::value;
        acc[m][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[m]), _mm256_mul_ps(dw, _mm256_set1_ps(xq.d[m * xq.Gp + g])), acc[m][h]);
      });
    });
  }
  static_for<MC>([&](auto mc) T5G_QLAMBDA { out[mc.value][0] = acc[mc.value][0], out[mc.value][1] = acc[mc.value][1]; });
}

// The first n (<= 16) of a tile's 16 outputs v[0] (rows 0-7), v[1] (rows 8-15) to y.
T5G_QINLINE void store_tile_rows(const __m256 (&v)[2], int64_t n, float* y) {
  if (n == kQuantTileRows) {
    _mm256_storeu_ps(y, v[0]);
    _mm256_storeu_ps(y + 8, v[1]);
  } else {
    alignas(32) float b[kQuantTileRows];
    _mm256_store_ps(b, v[0]);
    _mm256_store_ps(b + 8, v[1]);
    for (int64_t i = 0; i < n; ++i) y[i] = b[i];
  }
}

// Rows [n0, n1) of one matrix (n0 a multiple of 16; n1 - n0 may end inside a tile) times the M rows
// of X, tile after tile, each in passes of at most 2 X rows (later passes re-read the tile from L1/L2).
// The first pass prefetches: the weights kQTileFar bytes ahead spread over its loads (tiles are
// contiguous), the scales as many tiles ahead, and a range's first kQTileFar bytes at its start (as
// matmul_vnni.cc, where spreading measured faster than a burst per block of rows).
template <WeightType WT>
void q_tiles_range(const WeightMatrix& W, int64_t n0, int64_t n1, int64_t G, const QuantX& xq, int64_t M, float* y,
                   int64_t ldy) {
  const int64_t tb = G * (WT == WeightType::kQ8 ? 512 : 256), sb = G * kQuantTileRows * 2;  // bytes per tile, of its scales
  const uint8_t* base = static_cast<const uint8_t*>(W.data) + (n0 / kQuantTileRows) * tb;
  const uint16_t* scales = W.scales + (n0 / kQuantTileRows) * G * kQuantTileRows;
  const int64_t tiles = cdiv(n1 - n0, kQuantTileRows), ahead = cdiv(kQTileFar, tb);
  prefetch_l2(base, imin(kQTileFar, tiles * tb));
  prefetch_l2(scales, imin(ahead, tiles) * sb);
  for (int64_t i = 0; i < tiles; ++i) {
    const uint8_t* t = base + i * tb;
    const uint16_t* sc = scales + i * G * kQuantTileRows;
    if (i + ahead < tiles) prefetch_l2(reinterpret_cast<const char*>(sc) + ahead * sb, sb);
    const int64_t n = n0 + i * kQuantTileRows, rows = imin(kQuantTileRows, n1 - n);
    auto pass = [&](auto mcc, auto streamc, int64_t m) T5G_QLAMBDA {
      constexpr int MC = decltype(mcc)::value;
      const QuantX xm{xq.q + m * xq.Q, xq.d + m * xq.Gp, xq.s + m * xq.Gp, xq.Q, xq.Gp};
      __m256 out[MC][2];
      q_tile<WT, MC, decltype(streamc)::value != 0>(t, sc, G, xm, out);
      static_for<MC>([&](auto j) T5G_QLAMBDA { store_tile_rows(out[j.value], rows, y + (m + j.value) * ldy + n); });
    };
    if (M == 1) {
      pass(Ic<1>{}, Ic<1>{}, 0);
      continue;
    }
    pass(Ic<2>{}, Ic<1>{}, 0);
    int64_t m = 2;
    for (; m + 2 <= M; m += 2) pass(Ic<2>{}, Ic<0>{}, m);
    if (m < M) pass(Ic<1>{}, Ic<0>{}, m);
  }
}

// Y_p = X·W_pᵀ for M <= 8 and Q8/Q4 parts of one type and K: X quantized once; ranges of whole tiles
// handed out as for_each_range.
template <WeightType WT>
void qgemv(const float* X, int64_t M, int64_t ldx, const MatmulOut* parts, int np) {
  const int64_t K = parts[0].w->cols;
  const int64_t G = quant_padded_cols(K) / kQG;  // weight groups per row
  const int64_t Q = G * kQG, Gp = cdiv(G, 8) * 8;
  // Scratch: qx [M][Q] int8, then dx [M][Gp] fp32, sx [M][Gp] int32.
  const size_t qbytes = static_cast<size_t>(cdiv(M * Q + 32, 64) * 64);
  char* s = static_cast<char*>(kern::scratch(kern::kScratchX, qbytes + static_cast<size_t>(2 * M * Gp) * 4));
  int8_t* qx = reinterpret_cast<int8_t*>(s);
  float* dx = reinterpret_cast<float*>(s + qbytes);
  int32_t* sx = reinterpret_cast<int32_t*>(dx + M * Gp);
  for (int64_t m = 0; m < M; ++m) quantize_x_row(X + m * ldx, K, Q, Gp, qx + m * Q, dx + m * Gp, sx + m * Gp);
  int64_t N[kMaxMatmulParts];
  const int64_t row_bytes = (WT == WeightType::kQ8 ? Q : Q / 2) + 2 * G;
  const bool parallel = part_rows(parts, np, row_bytes, N);
  const QuantX xq{qx, dx, sx, Q, Gp};
  for_each_range(N, np, kQuantTileRows, row_bytes, parallel, [&](int p, int64_t n0, int64_t n1) {
    q_tiles_range<WT>(*parts[p].w, n0, n1, G, xq, M, parts[p].y, parts[p].ldy);
  });
}

// ---- GEMM: dequantization into the fp32 B micro-panels ----

// Element k of weight row n, as weight_row_f32 computes it.
template <WeightType WT>
inline float qscalar(const WeightMatrix& W, int64_t Q, int64_t n, int64_t k) {
  const int64_t G = Q / kQG, g = k / kQG, j = k % kQG;
  if constexpr (WT == WeightType::kQ8) {
    return static_cast<float>(static_cast<int>(static_cast<const uint8_t*>(W.data)[q8_byte_index(n, k, G)]) - 128) *
           _cvtsh_ss(W.scales[quant_scale_index(n, g, G)]);
  } else {
    const uint8_t b = static_cast<const uint8_t*>(W.data)[q4_byte_index(n, k, G)];
    const int nib = j < kQG / 2 ? (b & 0xf) : (b >> 4);
    return static_cast<float>(nib - 8) * _cvtsh_ss(W.scales[quant_scale_index(n, g, G)]);
  }
}

// Elements k..k+7 (k a multiple of 8, so within one group) of weight row n, as fp32: two chunks of 4
// bytes of the tile, 64 bytes apart (Q4: the low nibbles for k % 32 < 16, else the high ones).
template <WeightType WT>
inline __m256 qload8(const WeightMatrix& W, int64_t Q, int64_t n, int64_t k) {
  const int64_t G = Q / kQG, g = k / kQG, j = k % kQG;
  const uint8_t* p = static_cast<const uint8_t*>(W.data) + (WT == WeightType::kQ8 ? q8_byte_index(n, k, G) : q4_byte_index(n, k, G));
  int32_t a, b;
  std::memcpy(&a, p, 4);
  std::memcpy(&b, p + 64, 4);
  __m256i i = _mm256_cvtepu8_epi32(_mm_setr_epi32(a, b, 0, 0));
  if constexpr (WT == WeightType::kQ8) {
    i = _mm256_sub_epi32(i, _mm256_set1_epi32(128));
  } else {
    if (j >= kQG / 2) i = _mm256_srli_epi32(i, 4);
    i = _mm256_sub_epi32(_mm256_and_si256(i, _mm256_set1_epi32(0xf)), _mm256_set1_epi32(8));
  }
  return _mm256_mul_ps(_mm256_cvtepi32_ps(i), _mm256_set1_ps(_cvtsh_ss(W.scales[quant_scale_index(n, g, G)])));
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
