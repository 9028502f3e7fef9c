// Kernels for the quantized weight formats Q8 / Q4 (layout in matmul.h). Included by matmul_impl.inl
// (so once per ISA translation unit, inside its anonymous namespace); written with 256-bit AVX2
// integer intrinsics only, which every ISA translation unit here can compile (the AVX-512 unit is
// built with -mavx2 too). Uses kNR, kGemvMaxM and transpose8 from matmul_impl.inl, and imin/imax/cdiv,
// static_for, qhsum / qhsum_rows, for_each_range and part_rows from matmul_shared.inl. (The AVX512_VNNI
// decode kernels are matmul_vnni.cc.)
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
//   Weight rows are streamed in memory order, one at a time, except Q4 at M = 1, which takes blocks of
//   4 consecutive rows interleaved (q4_rows, q4_gemv_m1); a thread's range of rows is one call with the
//   row kernels inlined (q8_rows_m1, qrows_range). Each output's
//   fp32 accumulation is lanewise over the groups in order (Q8: into two alternating accumulators; Q4:
//   into one), then one fixed horizontal sum: its order depends only on K, never on M, on X-row
//   passes, on the rows interleaved with it, or on threads.
// GEMM (M > 8): the packed fp32 GEMM with the weights dequantized into its B micro-panels
//   (value = q · d exactly as weight_row_f32 computes it), so only the weight quantization is lost.

constexpr int64_t kQPrefetchBytes = 1024;  // software prefetch distance (into L1) along the row stream
constexpr int64_t kQ8TileFar = 16384;      // Q8 tiles: far prefetch distance (into L2), as matmul_vnni.cc
// Prefetch distance for a kernel reading R interleaved rows of rs bytes: R = 1 streams one row, so a
// fixed distance ahead; R > 1 consumes R rows at once, so the same position in the next block of rows
// (measured on the streamed Q4 LM head: 4.5 ms against 5.4 ms with 1 KiB ahead of each row).
inline int64_t q_prefetch_offset(int R, int64_t rs) { return R == 1 ? kQPrefetchBytes : R * rs; }
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
T5G_QINLINE __m256 load8_scales(const uint16_t* sc, int64_t G, int64_t g0, bool tail_ok) {
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

// Q8 (tiles of 16 rows, matmul.h): one tile (G groups of 512 bytes at t, scales sc: G x 16 fp16) times
// MC (<= 2) quantized X rows into out[m][0] (rows 0-7) and out[m][1] (rows 8-15). Per group the tile's
// bytes are 8 chunks of [16 rows x 4 bytes], 32 bytes per 8 rows: q = byte ^ 0x80 (signed), the sign
// trick (|q| · sign(x, q): vpmaddubsw takes an unsigned and a signed operand; |q|, |x| <= 127 so no pair
// saturates) against a broadcast of X's 4 bytes, vpmaddwd, and the group's exact int32 sum; then one
// FMA per group: acc = fma(float(sum), dw·dx, acc), groups in order. The AVX512_VNNI kernel computes the
// same int32 sums and the same FMAs, so both give the same bits.
template <int MC, bool STREAM>
T5G_QINLINE void q8_tile(const uint8_t* t, const uint16_t* sc, int64_t G, const QuantX& xq, __m256 (&out)[MC][2]) {
  static_assert(MC >= 1 && MC <= 2, "2 X rows per pass: 16 ymm registers");
  __m256 acc[MC][2];
  static_for<MC>([&](auto mc) T5G_QLAMBDA { acc[mc.value][0] = acc[mc.value][1] = _mm256_setzero_ps(); });
  const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80)), ones16 = _mm256_set1_epi16(1);
  for (int64_t g = 0; g < G; ++g) {
    const uint8_t* p = t + g * 512;
    if constexpr (STREAM) {  // near (L1) and far (L2, spread over the loads: q8_tiles_range)
      static_for<8>([&](auto o) T5G_QLAMBDA {
        _mm_prefetch(reinterpret_cast<const char*>(p) + kQPrefetchBytes + 64 * o.value, _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(p) + kQ8TileFar + 64 * o.value, _MM_HINT_T2);
      });
    }
    __m256i is[MC][2];
    static_for<MC>([&](auto mc) T5G_QLAMBDA { is[mc.value][0] = is[mc.value][1] = _mm256_setzero_si256(); });
    static_for<8>([&](auto cc) T5G_QLAMBDA {
      constexpr int c = decltype(cc)::value;
      __m256i x[MC];
      static_for<MC>([&](auto mc) T5G_QLAMBDA {
        int32_t xb;
        std::memcpy(&xb, xq.q + mc.value * xq.Q + g * kQG + 4 * c, 4);
        x[mc.value] = _mm256_set1_epi32(xb);
      });
      static_for<2>([&](auto hc) T5G_QLAMBDA {
        constexpr int h = decltype(hc)::value;
        const __m256i wv = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 64 * c + 32 * h)), flip);
        const __m256i aw = _mm256_abs_epi8(wv);
        static_for<MC>([&](auto mc) T5G_QLAMBDA {
          constexpr int m = decltype(mc)::value;
          is[m][h] = _mm256_add_epi32(is[m][h], _mm256_madd_epi16(_mm256_maddubs_epi16(aw, _mm256_sign_epi8(x[m], wv)), ones16));
        });
      });
    });
    static_for<2>([&](auto hc) T5G_QLAMBDA {
      constexpr int h = decltype(hc)::value;
      const __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc + g * kQ8TileRows + 8 * h)));
      static_for<MC>([&](auto mc) T5G_QLAMBDA {
        constexpr int m = decltype(mc)::value;
        acc[m][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is[m][h]), _mm256_mul_ps(dw, _mm256_set1_ps(xq.d[m * xq.Gp + g])), acc[m][h]);
      });
    });
  }
  static_for<MC>([&](auto mc) T5G_QLAMBDA { out[mc.value][0] = acc[mc.value][0], out[mc.value][1] = acc[mc.value][1]; });
}

// The first n (<= 16) of a tile's 16 outputs v[0] (rows 0-7), v[1] (rows 8-15) to y.
T5G_QINLINE void store_tile_rows(const __m256 (&v)[2], int64_t n, float* y) {
  if (n == kQ8TileRows) {
    _mm256_storeu_ps(y, v[0]);
    _mm256_storeu_ps(y + 8, v[1]);
  } else {
    alignas(32) float b[kQ8TileRows];
    _mm256_store_ps(b, v[0]);
    _mm256_store_ps(b + 8, v[1]);
    for (int64_t i = 0; i < n; ++i) y[i] = b[i];
  }
}

// Q8: rows [n0, n1) of one matrix (n0 a multiple of 16; n1 - n0 may end inside a tile) times the M rows
// of X, tile after tile, each in passes of at most 2 X rows (later passes re-read the tile from L1/L2).
// The first pass prefetches: the weights kQ8TileFar bytes ahead spread over its loads (tiles are
// contiguous), the scales as many tiles ahead, and a range's first kQ8TileFar bytes at its start (as
// matmul_vnni.cc, where spreading measured faster than prefetch_block_far's burst per block).
inline void q8_tiles_range(const WeightMatrix& W, int64_t n0, int64_t n1, int64_t G, const QuantX& xq, int64_t M,
                           float* y, int64_t ldy) {
  const int64_t tb = G * 512, sb = G * kQ8TileRows * 2;  // bytes per tile, of its scales
  const uint8_t* base = static_cast<const uint8_t*>(W.data) + (n0 / kQ8TileRows) * tb;
  const uint16_t* scales = W.scales + (n0 / kQ8TileRows) * G * kQ8TileRows;
  const int64_t tiles = cdiv(n1 - n0, kQ8TileRows), ahead = cdiv(kQ8TileFar, tb);
  prefetch_l2(base, imin(kQ8TileFar, tiles * tb));
  prefetch_l2(scales, imin(ahead, tiles) * sb);
  for (int64_t i = 0; i < tiles; ++i) {
    const uint8_t* t = base + i * tb;
    const uint16_t* sc = scales + i * G * kQ8TileRows;
    if (i + ahead < tiles) prefetch_l2(reinterpret_cast<const char*>(sc) + ahead * sb, sb);
    const int64_t n = n0 + i * kQ8TileRows, rows = imin(kQ8TileRows, n1 - n);
    auto pass = [&](auto mcc, auto streamc, int64_t m) T5G_QLAMBDA {
      constexpr int MC = decltype(mcc)::value;
      const QuantX xm{xq.q + m * xq.Q, xq.d + m * xq.Gp, xq.c + m * xq.Gp, xq.Q, xq.Gp};
      __m256 out[MC][2];
      q8_tile<MC, decltype(streamc)::value != 0>(t, sc, G, xm, out);
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

// R consecutive Q4 weight rows (G groups of 16 bytes each, row stride rs bytes, at w; scales sc, row
// stride G) times MC quantized X rows (pair order): y[m * ldy + r]. The R rows are interleaved pair by
// pair (independent FMA chains, one pass of loop control and one shared X load for all of them). Per
// block of 8 groups, an output's single accumulator first takes the offset correction -dw·cx
// (lanewise), then pairs j0..j0+3 in order: pair j (groups 2j, 2j+1: one 32-byte load) has the
// products of group 2j in lanes 0-3 and of 2j+1 in lanes 4-7, scaled by a vector permuted from the
// block's 8 group scales dw·dx. Result qhsum(acc): the order depends on K only, never on R, MC or M.
// `scales_left`: scale entries from sc to the end of the scale array (load8_scales may then read
// past a row's own scales).
template <int R, int MC, bool PREFETCH>
T5G_QINLINE void q4_rows_inline(const uint8_t* w, int64_t rs, const uint16_t* sc, int64_t G, int64_t scales_left,
                                const QuantX& xq, float* y, int64_t ldy) {
  __m256 acc[MC][R], s8[MC][R];
  static_for<MC>([&](auto mc) T5G_QLAMBDA { static_for<R>([&](auto rc) T5G_QLAMBDA { acc[mc.value][rc.value] = _mm256_setzero_ps(); }); });
  const __m256i ones16 = _mm256_set1_epi16(1);
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i even_odd = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
  auto step = [&](auto tc, auto rc, const uint8_t* wp, const __m256i (&x)[MC][2]) T5G_QLAMBDA {
    constexpr int t = decltype(tc)::value, r = decltype(rc)::value;
    const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wp));
    const __m256i lo = _mm256_and_si256(wv, low4);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(wv, 4), low4);
    static_for<MC>([&](auto mc) T5G_QLAMBDA {
      constexpr int m = decltype(mc)::value;
      const __m256i p = _mm256_add_epi16(_mm256_maddubs_epi16(lo, x[m][0]), _mm256_maddubs_epi16(hi, x[m][1]));
      const __m256 f = _mm256_cvtepi32_ps(_mm256_madd_epi16(p, ones16));
      acc[m][r] = _mm256_fmadd_ps(f, _mm256_permute_ps(s8[m][r], t * 0x55), acc[m][r]);
    });
  };
  // Pair t of the current block for all R rows (wp(r): the pair's 32 bytes in row r).
  auto pair = [&](auto tc, int64_t j, auto&& wp) T5G_QLAMBDA {
    __m256i x[MC][2];
    static_for<MC>([&](auto mc) T5G_QLAMBDA {
      const int8_t* xp = xq.q + mc.value * xq.Q + j * 2 * kQG;
      x[mc.value][0] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp));
      x[mc.value][1] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp + kQG));
    });
    static_for<R>([&](auto rc) T5G_QLAMBDA { step(tc, rc, wp(rc.value), x); });
  };
  const int64_t P = G / 2;  // whole pairs in a row
  const int64_t tail_need = G + imax(0, 8 - G % 8);
  const int64_t pf_off = q_prefetch_offset(R, rs);
  for (int64_t g0 = 0; g0 < G; g0 += 8) {
    static_for<R>([&](auto rc) T5G_QLAMBDA {
      constexpr int r = decltype(rc)::value;
      const __m256 dw = load8_scales(sc + r * G, G, g0, r * G + tail_need <= scales_left);
      static_for<MC>([&](auto mc) T5G_QLAMBDA {
        constexpr int m = decltype(mc)::value;
        // [s0 s2 s4 s6 | s1 s3 s5 s7]: pair t's scales [s2t x4 | s2t+1 x4] are then an in-lane
        // permute (vpermilps) instead of a lane-crossing one per pair.
        s8[m][r] = _mm256_permutevar8x32_ps(_mm256_mul_ps(dw, _mm256_loadu_ps(xq.d + m * xq.Gp + g0)), even_odd);
        acc[m][r] = _mm256_fnmadd_ps(dw, _mm256_loadu_ps(xq.c + m * xq.Gp + g0), acc[m][r]);
      });
    });
    const int64_t j0 = g0 / 2;
    if (j0 + 4 <= P) {
      if constexpr (PREFETCH) {
        static_for<R>([&](auto rc) T5G_QLAMBDA {
          const char* pf = reinterpret_cast<const char*>(w + rc.value * rs + j0 * kQG) + pf_off;
          _mm_prefetch(pf, _MM_HINT_T0);
          _mm_prefetch(pf + 64, _MM_HINT_T0);
        });
      }
      static_for<4>([&](auto tc) T5G_QLAMBDA {
        const int64_t j = j0 + decltype(tc)::value;
        pair(tc, j, [&](int r) T5G_QLAMBDA { return w + r * rs + j * kQG; });
      });
    } else {
      static_for<4>([&](auto tc) T5G_QLAMBDA {
        const int64_t j = j0 + decltype(tc)::value;
        if (j < P) {
          pair(tc, j, [&](int r) T5G_QLAMBDA { return w + r * rs + j * kQG; });
        } else if (j == P && G % 2 != 0) {  // a last single group: zero-padded copies (its partner's X and scale are zero)
          alignas(32) uint8_t buf[R][kQG] = {};
          for (int r = 0; r < R; ++r) std::memcpy(buf[r], w + r * rs + P * kQG, kQG / 2);
          pair(tc, j, [&](int r) T5G_QLAMBDA { return &buf[r][0]; });
        }
      });
    }
  }
  static_for<MC>([&](auto mc) T5G_QLAMBDA { qhsum_rows<R>(acc[mc.value], y + mc.value * ldy); });
}

template <int R, int MC, bool PREFETCH>
void q4_rows(const uint8_t* w, int64_t rs, const uint16_t* sc, int64_t G, int64_t scales_left, const QuantX& xq,
             float* y, int64_t ldy) {
  q4_rows_inline<R, MC, PREFETCH>(w, rs, sc, G, scales_left, xq, y, ldy);
}

// X rows per pass over a quantized weight row.
constexpr int kQGemvMC = 4;

// One pass of mc (<= MC) X rows over one Q4 weight row: y[m * ldy], m < mc. Inlined into qrows_range.
template <bool PREFETCH, int MC = kQGemvMC>
T5G_QINLINE void qrow_pass(int mc, const uint8_t* w, const uint16_t* sc, int64_t G, int64_t scales_left,
                           const QuantX& xq, float* y, int64_t ldy) {
  if (mc == MC) {
    q4_rows_inline<1, MC, PREFETCH>(w, 0, sc, G, scales_left, xq, y, ldy);
  } else if constexpr (MC > 1) {
    qrow_pass<PREFETCH, MC - 1>(mc, w, sc, G, scales_left, xq, y, ldy);
  }
}

// Q4: M (2..8) X rows times rows 0..nrows-1 of one matrix (at w, scales sc; `scales_left` from sc to the end
// of the scale array), row after row, each in passes of at most kQGemvMC X rows balanced as
// for_each_part_row_pass (the first pass streams the row, later ones re-read it from L1): the whole
// range in one call with the pass kernels inlined (a call per row and pass made M = 8 at K = 640
// 10-45% slower: bench_kernels BM_Matmul/M:8).
void qrows_range(const uint8_t* w, int64_t rs, const uint16_t* sc, int64_t G, int64_t scales_left, const QuantX& xq,
                 int64_t M, int64_t nrows, float* y, int64_t ldy) {
  // The plan is written out here and in gemv_rows_range rather than shared with for_each_part_row_pass
  // through a helper: with one, GCC grew this function by three quarters and q4 at M = 8 measured
  // 7-19% slower (BM_Matmul/M:8).
  int mcs[kGemvMaxM];
  int npass = 0;
  for (int64_t m0 = 0; m0 < M; m0 += mcs[npass++]) mcs[npass] = static_cast<int>(cdiv(M - m0, cdiv(M - m0, kQGemvMC)));
  for (int64_t r = 0; r < nrows; ++r) {
    const uint8_t* wr = w + r * rs;
    const uint16_t* sr = sc + r * G;
    const int64_t left = scales_left - r * G;
    qrow_pass<true>(mcs[0], wr, sr, G, left, xq, y + r, ldy);
    int64_t m0 = mcs[0];
    for (int i = 1; i < npass; m0 += mcs[i++]) {
      const QuantX xm{xq.q + m0 * xq.Q, xq.d + m0 * xq.Gp, xq.c + m0 * xq.Gp, xq.Q, xq.Gp};
      qrow_pass<false>(mcs[i], wr, sr, G, left, xm, y + m0 * ldy + r, ldy);
    }
  }
}

// Q4 weight rows per call at M = 1: interleaved rows give the FMA chains that X rows give at M > 1 and
// share the X loads and the loop control (1.4-1.5x faster from cache; the streamed LM head 1.2-1.4x).
constexpr int kQ4RowBlock = 4;

// Q4 at M = 1: y_p = x·W_pᵀ in blocks of kQ4RowBlock consecutive rows (a range's last partial block row
// by row, in the same order); ranges as for_each_range.
inline void q4_gemv_m1(const MatmulOut* parts, int np, const int64_t* N, int64_t rs, int64_t G, const QuantX& xq,
                       bool parallel) {
  for_each_range(N, np, kQ4RowBlock, rs + 2 * G, parallel, [&](int p, int64_t n0, int64_t n1) {
    const uint8_t* base = static_cast<const uint8_t*>(parts[p].w->data);
    const uint16_t* scales = parts[p].w->scales;
    const int64_t ldy = parts[p].ldy;
    float* y = parts[p].y;
    prefetch_range_start(base + n0 * rs, scales + n0 * G, kQ4RowBlock, rs, G, n1 - n0);
    for (int64_t n = n0; n < n1; n += kQ4RowBlock) {
      const uint8_t* w = base + n * rs;
      const uint16_t* sc = scales + n * G;
      prefetch_block_far(w, sc, kQ4RowBlock, rs, G, n1 - n);
      if (n + kQ4RowBlock <= n1) {
        q4_rows<kQ4RowBlock, 1, true>(w, rs, sc, G, (N[p] - n) * G, xq, y + n, ldy);
      } else {
        for (int64_t r = 0; n + r < n1; ++r)
          q4_rows<1, 1, true>(w + r * rs, rs, sc + r * G, G, (N[p] - n - r) * G, xq, y + n + r, ldy);
      }
    }
  });
}

// Y_p = X·W_pᵀ for M <= 8 and Q8/Q4 parts of one type and K: X quantized once; rows streamed in memory
// order over the ranges of for_each_range (M = 1: q8_rows_m1, q4_gemv_m1; M >= 2: qrows_range).
template <WeightType WT>
void qgemv(const float* X, int64_t M, int64_t ldx, const MatmulOut* parts, int np) {
  const int64_t K = parts[0].w->cols;
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
  int64_t N[kMaxMatmulParts];
  const bool parallel = part_rows(parts, np, rs + 2 * G, N);
  const QuantX xq{qx, dx, cx, Q, Gp};
  if constexpr (WT == WeightType::kQ8) {  // ranges of whole tiles
    for_each_range(N, np, kQ8TileRows, rs + 2 * G, parallel, [&](int p, int64_t n0, int64_t n1) {
      q8_tiles_range(*parts[p].w, n0, n1, G, xq, M, parts[p].y, parts[p].ldy);
    });
  } else if (M == 1) {
    q4_gemv_m1(parts, np, N, rs, G, xq, parallel);
  } else {
    for_each_range(N, np, 1, rs + 2 * G, parallel, [&](int p, int64_t n0, int64_t n1) {
      qrows_range(static_cast<const uint8_t*>(parts[p].w->data) + n0 * rs, rs, parts[p].w->scales + n0 * G, G,
                  (N[p] - n0) * G, xq, M, n1 - n0, parts[p].y + n0, parts[p].ldy);
    });
  }
}

// ---- GEMM: dequantization into the fp32 B micro-panels ----

// Element k of weight row n, as weight_row_f32 computes it.
template <WeightType WT>
inline float qscalar(const WeightMatrix& W, int64_t Q, int64_t n, int64_t k) {
  const int64_t G = Q / kQG, g = k / kQG, j = k % kQG;
  if constexpr (WT == WeightType::kQ8) {
    return static_cast<float>(static_cast<int>(static_cast<const uint8_t*>(W.data)[q8_byte_index(n, k, G)]) - 128) *
           _cvtsh_ss(W.scales[q8_scale_index(n, g, G)]);
  } else {
    const uint8_t b = static_cast<const uint8_t*>(W.data)[n * (Q / 2) + g * (kQG / 2) + (j % (kQG / 2))];
    const int nib = j < kQG / 2 ? (b & 0xf) : (b >> 4);
    return static_cast<float>(nib - 8) * _cvtsh_ss(W.scales[n * G + g]);
  }
}

// Elements k..k+7 (k a multiple of 8, so within one group) of weight row n, as fp32.
template <WeightType WT>
inline __m256 qload8(const WeightMatrix& W, int64_t Q, int64_t n, int64_t k) {
  const int64_t G = Q / kQG, g = k / kQG, j = k % kQG;
  __m256i i;
  __m256 d;
  if constexpr (WT == WeightType::kQ8) {  // two chunks of 4 bytes, 64 bytes apart (tiles)
    const uint8_t* p = static_cast<const uint8_t*>(W.data) + q8_byte_index(n, k, G);
    int32_t a, b;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, p + 64, 4);
    i = _mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_setr_epi32(a, b, 0, 0)), _mm256_set1_epi32(128));
    d = _mm256_set1_ps(_cvtsh_ss(W.scales[q8_scale_index(n, g, G)]));
  } else {
    d = _mm256_set1_ps(_cvtsh_ss(W.scales[n * G + g]));
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
