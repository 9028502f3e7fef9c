// Q8 / Q4 weights: quantize_matrix and weight_row_f32 properties, and the optimised matmul kernels of
// every ISA this CPU runs against ref::matmul (fp32 X times the dequantized weights).
//
// Error bounds. For M > 8 (packed GEMM) without AVX512_VNNI the weights are dequantized exactly as the
// reference does, so only fp32 reassociation separates the two: the usual 2(K+2)·2⁻²⁴·Σ|x·w| bound. For
// M <= 8 (decode), and for every M on AVX-512 with VNNI (matmul_vnni.cc's GEMM, the decode arithmetic),
// each row of X is quantized to int8 per group of 32, dx_g = max|x_g| / 127, and the integer dot
// products are exact, so the kernel computes Σ_k w_k·x̂_k with |x_k - x̂_k| <= dx_g/2 (round to
// nearest; 127/max|x| and max|x|/127 are each one fp32 rounding apart, hence the factor 1.001). So
//   |y - y_ref| <= Σ_g (1.001·dx_g/2)·Σ_{k in g}|w_k|  +  4(K+64)·2⁻²⁴·Σ_k (|w_k| + 8|d_g|)(|x_k| + dx_g)
// where the second term covers the fp32 products and sums (per group, the 8 lanes, the 8-lane
// horizontal sum) including the Q4 offset correction (8·dw·dx·Σqx, of magnitude up to 8|d|·Σ|x̂|).
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/matmul.h"
#include "util/bf16.h"

#include "decode_rows_check.h"

namespace t5g {
namespace {

// Whether matmul_isa(isa, ...) quantizes X (the decode arithmetic) for M rows, or runs the GEMM of the
// dequantized weights.
bool quantizes_x(Isa isa, int64_t M) {
  return M <= 8 || (isa == Isa::kAvx512 && cpu_features().avx512vnni);
}

std::vector<Isa> simd_isas() {
  std::vector<Isa> v;
  for (int i = 1; i <= static_cast<int>(active_isa()); ++i) v.push_back(static_cast<Isa>(i));
  return v;
}

struct QWeights {
  WeightType type;
  int64_t rows, cols;
  std::vector<float> src;       // the fp32 values quantized
  std::vector<uint8_t> data;
  std::vector<uint16_t> scales;
  std::vector<float> deq;       // dequantized, [rows, cols]
  WeightMatrix matrix() const { return WeightMatrix{type, rows, cols, data.data(), scales.data()}; }
};

// Gaussian values; every 7th group (of row r) scaled by 50 (outliers), every 11th all zero.
QWeights make_qweights(WeightType t, int64_t rows, int64_t cols, std::mt19937& rng, float sigma = 1.f) {
  std::normal_distribution<float> nd(0.f, sigma);
  QWeights w{t, rows, cols, {}, {}, {}, {}};
  w.src.resize(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < cols; ++k) {
      const int64_t g = k / kQuantGroup + r;
      float v = nd(rng);
      if (g % 7 == 3) v *= 50.f;
      if (g % 11 == 5) v = 0.f;
      w.src[r * cols + k] = v;
    }
  w.data.resize(static_cast<size_t>(quant_data_bytes(t, rows, cols)));
  w.scales.resize(static_cast<size_t>(quant_scale_count(rows, cols)));
  quantize_matrix(WeightMatrix{WeightType::kF32, rows, cols, w.src.data()}, t, w.data.data(), w.scales.data());
  w.deq.resize(w.src.size());
  for (int64_t r = 0; r < rows; ++r) weight_row_f32(w.matrix(), r, w.deq.data() + r * cols);
  return w;
}

// Index of the scale of row r, group g in the layout described in matmul.h (Q8: tiles of 16 rows).
// (Written out here rather than through quant_scale_index: 16 per tile and group.)
size_t scale_index(int64_t cols, int64_t r, int64_t g) {
  const int64_t G = quant_padded_cols(cols) / kQuantGroup;
  return static_cast<size_t>(((r / 16) * G + g) * 16 + r % 16);
}

// Element k of row r decoded straight from the layout described in matmul.h (q, d), written out here
// rather than through q8_byte_index / q4_byte_index: tile r / 16, group g, chunks of 64 bytes with 4
// bytes per row; Q8 chunk (k % 32) / 4, q + 128; Q4 chunk (k % 16) / 4, q + 8 in the low nibble for
// k % 32 < 16, else in the high one.
void decode(const QWeights& w, int64_t r, int64_t k, int* q, float* d) {
  const int64_t Q = quant_padded_cols(w.cols), G = Q / kQuantGroup, g = k / kQuantGroup, j = k % kQuantGroup;
  *d = f16_to_f32(w.scales[scale_index(w.cols, r, g)]);
  if (w.type == WeightType::kQ8) {
    *q = static_cast<int>(w.data[(((r / 16) * G + g) * 8 + j / 4) * 64 + (r % 16) * 4 + j % 4]) - 128;
  } else {
    const uint8_t b = w.data[(((r / 16) * G + g) * 4 + (j % 16) / 4) * 64 + (r % 16) * 4 + j % 4];
    *q = (j < 16 ? (b & 0xf) : (b >> 4)) - 8;
  }
}

TEST(MatmulQuantize, RoundTripProperties) {
  std::mt19937 rng(3);
  for (WeightType t : {WeightType::kQ8, WeightType::kQ4}) {
    for (int64_t cols : {1, 5, 31, 32, 33, 48, 50, 64, 100, 257}) {
      const QWeights w = make_qweights(t, 23, cols, rng);
      const int64_t Q = quant_padded_cols(cols), G = Q / kQuantGroup;
      {  // rows 23..31 pad the last tile of 16: q = 0, d = 0
        ASSERT_EQ(w.data.size(), static_cast<size_t>(32 * (t == WeightType::kQ8 ? Q : Q / 2)));
        for (int64_t r = 23; r < 32; ++r)
          for (int64_t k = 0; k < Q; ++k) {
            int q;
            float d;
            decode(w, r, k, &q, &d);
            ASSERT_EQ(q, 0) << "padding row " << r;
            ASSERT_EQ(d, 0.f) << "padding row " << r;
          }
      }
      for (int64_t r = 0; r < w.rows; ++r) {
        for (int64_t g = 0; g < G; ++g) {
          float amax = 0.f, vmax = 0.f;
          int64_t kmax = -1;
          for (int64_t k = g * kQuantGroup; k < std::min(cols, (g + 1) * kQuantGroup); ++k)
            if (std::fabs(w.src[r * cols + k]) > amax) amax = std::fabs(w.src[r * cols + k]), vmax = w.src[r * cols + k], kmax = k;
          int q;
          float d;
          decode(w, r, g * kQuantGroup, &q, &d);
          const std::string what = std::string(weight_type_name(t)) + " cols=" + std::to_string(cols) + " r=" +
                                   std::to_string(r) + " g=" + std::to_string(g);
          if (amax == 0.f) {  // zero group: zero scale, zero values
            EXPECT_EQ(d, 0.f) << what;
          } else {
            // The scale is the fp16 rounding of max|x|/127 (Q8) or -vmax/8 (Q4) ...
            EXPECT_EQ(w.scales[scale_index(cols, r, g)], f32_to_f16(t == WeightType::kQ8 ? amax / 127.f : vmax / -8.f))
                << what;
            // ... and the largest element maps to the end of the range, within the fp16 rounding of d.
            decode(w, r, kmax, &q, &d);
            if (t == WeightType::kQ8) EXPECT_EQ(std::abs(q), 127) << what;
            else EXPECT_EQ(q, -8) << what;
            EXPECT_NEAR(q * d, vmax, std::fabs(vmax) * 1e-3) << what;
          }
          for (int64_t k = g * kQuantGroup; k < (g + 1) * kQuantGroup; ++k) {
            decode(w, r, k, &q, &d);
            if (k >= cols) {  // padding: value zero
              EXPECT_EQ(q, 0) << what << " k=" << k;
              continue;
            }
            const float x = w.src[r * cols + k];
            const float deq = static_cast<float>(q) * d;
            EXPECT_EQ(w.deq[r * cols + k], deq) << what << " k=" << k;  // weight_row_f32 = q·d
            // Round to nearest: |x - q·d| <= |d|/2; Q4's +8 clamps to 7 (error up to |d|).
            const float bound = (t == WeightType::kQ4 && q == 7 ? 1.001f : 0.5f) * std::fabs(d) * 1.0001f;
            EXPECT_LE(std::fabs(x - deq), bound) << what << " k=" << k << " x=" << x << " q=" << q << " d=" << d;
          }
        }
      }
    }
  }
}

TEST(MatmulQuantize, DeterministicAcrossThreadsAndRowAccess) {
  std::mt19937 rng(8);
  std::normal_distribution<float> nd;
  const int64_t rows = 301, cols = 200;
  std::vector<uint16_t> bf(static_cast<size_t>(rows * cols));
  for (auto& v : bf) v = f32_to_bf16(nd(rng));
  const WeightMatrix src{WeightType::kBF16, rows, cols, bf.data()};
  const int saved = omp_get_max_threads();
  for (WeightType t : {WeightType::kQ8, WeightType::kQ4}) {
    std::vector<uint8_t> d1(static_cast<size_t>(quant_data_bytes(t, rows, cols))), d3 = d1;
    std::vector<uint16_t> s1(static_cast<size_t>(quant_scale_count(rows, cols))), s3 = s1;
    omp_set_num_threads(1);
    quantize_matrix(src, t, d1.data(), s1.data());
    omp_set_num_threads(3);
    quantize_matrix(src, t, d3.data(), s3.data());
    EXPECT_EQ(d1, d3);
    EXPECT_EQ(s1, s3);
    // Quantizing the bf16 matrix or its fp32 rows gives the same bytes.
    std::vector<float> f(static_cast<size_t>(rows * cols));
    for (int64_t r = 0; r < rows; ++r) weight_row_f32(src, r, f.data() + r * cols);
    EXPECT_EQ(f[5], bf16_to_f32(bf[5]));
    std::vector<uint8_t> df(d1.size());
    std::vector<uint16_t> sf(s1.size());
    quantize_matrix(WeightMatrix{WeightType::kF32, rows, cols, f.data()}, t, df.data(), sf.data());
    EXPECT_EQ(d1, df);
    EXPECT_EQ(s1, sf);
    EXPECT_EQ(weight_matrix_bytes(WeightMatrix{t, rows, cols, d1.data(), s1.data()}),
              static_cast<int64_t>(d1.size() + 2 * s1.size()));
  }
  omp_set_num_threads(saved);
}

std::vector<float> make_x(int64_t M, int64_t ldx, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(static_cast<size_t>(M * ldx + 1));
  for (auto& v : x) v = nd(rng);
  // Outliers and an all-zero group in some rows, as activations have.
  for (int64_t m = 0; m < M; m += 3) x[static_cast<size_t>(m * ldx)] *= 40.f;
  for (int64_t m = 1; m < M; m += 4)
    for (int64_t k = 0; k < std::min<int64_t>(ldx, kQuantGroup); ++k) x[static_cast<size_t>(m * ldx + k)] = 0.f;
  return x;
}

constexpr float kSentinel = -12345.f;

// Bound on |y - y_ref| for one output (see the comment at the top).
double tolerance(const QWeights& w, const float* x, int64_t n, bool decode) {
  const int64_t K = w.cols, Q = quant_padded_cols(K), G = Q / kQuantGroup;
  const float* wr = w.deq.data() + n * K;
  double s = 0, quant = 0, fp = 0;
  for (int64_t k = 0; k < K; ++k) s += std::fabs(double(x[k]) * wr[k]);
  if (!decode) return 2.0 * (K + 2) * std::ldexp(1.0, -24) * s + 1e-30;
  for (int64_t g = 0; g < G; ++g) {
    const int64_t k1 = std::min(K, (g + 1) * kQuantGroup);
    double amax = 0, sw = 0;
    for (int64_t k = g * kQuantGroup; k < k1; ++k) amax = std::max(amax, double(std::fabs(x[k])));
    const double dx = amax / 127, dw = std::fabs(f16_to_f32(w.scales[scale_index(w.cols, n, g)]));
    for (int64_t k = g * kQuantGroup; k < k1; ++k) {
      sw += std::fabs(wr[k]);
      fp += (std::fabs(wr[k]) + 8 * dw) * (std::fabs(x[k]) + dx);
    }
    quant += 1.001 * dx / 2 * sw;
  }
  return quant + 4.0 * (K + 64) * std::ldexp(1.0, -24) * fp + 1e-30;
}

void check_quant_matmul(const QWeights& w, int64_t M, int64_t ldx, int64_t ldy, std::mt19937& rng) {
  const int64_t N = w.rows, K = w.cols;
  const std::vector<float> x = make_x(M, ldx, rng);
  std::vector<float> yr(static_cast<size_t>(M * ldy), kSentinel);
  ref::matmul(x.data(), M, ldx, w.matrix(), yr.data(), ldy);
  for (Isa isa : simd_isas()) {
    std::vector<float> y(static_cast<size_t>(M * ldy), kSentinel);
    matmul_isa(isa, x.data(), M, ldx, w.matrix(), y.data(), ldy);
    const std::string what = std::string(isa_name(isa)) + " " + weight_type_name(w.type) + " M=" + std::to_string(M) +
                             " N=" + std::to_string(N) + " K=" + std::to_string(K) + " ldx=" + std::to_string(ldx) +
                             " ldy=" + std::to_string(ldy);
    int bad = 0;
    for (int64_t m = 0; m < M && bad < 5; ++m)
      for (int64_t n = 0; n < ldy && bad < 5; ++n) {
        const float got = y[m * ldy + n];
        if (n >= N) {
          if (got != kSentinel) ADD_FAILURE() << what << ": padding overwritten at m=" << m << " n=" << n, ++bad;
          continue;
        }
        const double tol = tolerance(w, x.data() + m * ldx, n, quantizes_x(isa, M));
        const float want = yr[m * ldy + n];
        if (!(std::fabs(double(got) - want) <= tol))
          ADD_FAILURE() << what << ": Y[" << m << "," << n << "] = " << got << ", ref " << want << ", tol " << tol, ++bad;
      }
  }
}

TEST(MatmulQuant, MatchesReferenceOddShapes) {
  std::mt19937 rng(21);
  const int64_t Ms[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 17, 64};
  const int64_t NKs[][2] = {{1, 1}, {1, 48}, {5, 50}, {3, 32}, {17, 33}, {16, 64}, {31, 100}, {37, 257}, {19, 640}, {7, 300}};
  for (WeightType t : {WeightType::kQ8, WeightType::kQ4})
    for (const auto& nk : NKs) {
      const QWeights w = make_qweights(t, nk[0], nk[1], rng, 0.05f);
      for (int64_t M : Ms) {
        check_quant_matmul(w, M, nk[1], nk[0], rng);
        if (M == 3 || M == 8 || M == 9) check_quant_matmul(w, M, nk[1] + 3, nk[0] + 5, rng);  // strided X / Y
      }
    }
}

// The decode kernels read a row's last block of 8 scales as one vector, past the row's own scales
// when they can (into the next row's) and mask the extra lanes off: an Inf or NaN scale in the next
// row must not reach this row's outputs (Inf · 0 would be NaN).
TEST(MatmulQuant, NextRowNonFiniteScaleDoesNotLeak) {
  std::mt19937 rng(33);
  for (WeightType t : {WeightType::kQ8, WeightType::kQ4})
    for (int64_t K : {int64_t(50), int64_t(300), int64_t(650)}) {  // 2, 10, 21 groups: a partial block of 8
      QWeights w = make_qweights(t, 4, K, rng, 0.05f);
      w.scales[scale_index(K, 1, 0)] = 0x7c00;  // +Inf in row 1's first scale
      w.scales[scale_index(K, 3, 1)] = 0x7e00;  // NaN in row 3's second scale
      for (int64_t M : {int64_t(1), int64_t(5)}) {
        const std::vector<float> x = make_x(M, K, rng);
        for (Isa isa : simd_isas()) {
          std::vector<float> y(static_cast<size_t>(M * 4));
          matmul_isa(isa, x.data(), M, K, w.matrix(), y.data(), 4);
          for (int64_t m = 0; m < M; ++m) {
            EXPECT_TRUE(std::isfinite(y[m * 4 + 0])) << weight_type_name(t) << " K=" << K << " M=" << M;
            EXPECT_TRUE(std::isfinite(y[m * 4 + 2])) << weight_type_name(t) << " K=" << K << " M=" << M;
            EXPECT_FALSE(std::isfinite(y[m * 4 + 3])) << "row 3 has a NaN scale: " << weight_type_name(t);
          }
        }
      }
    }
}

// Several K blocks and N blocks of the GEMM, many row blocks of the decode path, multithreaded.
TEST(MatmulQuant, MatchesReferenceLargeBlocks) {
  std::mt19937 rng(22);
  for (WeightType t : {WeightType::kQ8, WeightType::kQ4}) {
    const QWeights w = make_qweights(t, 4100, 300, rng, 0.05f);
    for (int64_t M : {1, 8, 14}) check_quant_matmul(w, M, 300, 4100, rng);
    const QWeights w2 = make_qweights(t, 70, 1100, rng, 0.05f);
    for (int64_t M : {2, 150, 300}) check_quant_matmul(w2, M, 1100, 70, rng);
  }
}

TEST(MatmulQuant, BitwiseIndependentOfThreadCount) {
  std::mt19937 rng(5);
  const int saved = omp_get_max_threads();
  for (Isa isa : simd_isas())
    for (WeightType t : {WeightType::kQ8, WeightType::kQ4}) {
      const QWeights w = make_qweights(t, 4000, 300, rng, 0.05f);  // > 512 KiB: multithreaded
      for (int64_t M : {1, 3, 8, 9, 61}) {
        const std::vector<float> x = make_x(M, 300, rng);
        std::vector<float> ys[3];
        const int threads[3] = {1, 2, 3};
        for (int i = 0; i < 3; ++i) {
          ys[i].assign(static_cast<size_t>(M * 4000), 0.f);
          omp_set_num_threads(threads[i]);
          matmul_isa(isa, x.data(), M, 300, w.matrix(), ys[i].data(), 4000);
        }
        for (int i = 1; i < 3; ++i)
          EXPECT_EQ(0, std::memcmp(ys[0].data(), ys[i].data(), ys[0].size() * 4))
              << isa_name(isa) << " " << weight_type_name(t) << " M=" << M << " threads=" << threads[i];
      }
    }
  omp_set_num_threads(saved);
}

// A row's result is the same whatever the other rows of its decode batch (M = 1..8 directly, and
// larger M through MatmulOptions::row_stable).
TEST(MatmulQuant, RowsIndependentOfBatchSize) {
  std::mt19937 rng(9);
  const int64_t N = 302, K = 650, maxM = 21;  // N: M = 1 takes blocks of 4 rows and a 2-row remainder
  for (WeightType t : {WeightType::kQ8, WeightType::kQ4}) {
    const QWeights w = make_qweights(t, N, K, rng, 0.05f);
    const std::vector<float> x = make_x(maxM, K, rng);
    for (Isa isa : simd_isas()) {
      expect_decode_rows_independent(isa, w.matrix(), x, maxM, weight_type_name(t));
      if (HasFatalFailure()) return;
    }
    std::vector<float> alone(static_cast<size_t>(maxM * N));
    for (int64_t m = 0; m < maxM; ++m) matmul(x.data() + m * K, 1, K, w.matrix(), alone.data() + m * N, N, MatmulOptions{false, true});
    for (int64_t M : {9, 16, 17, 21}) {
      std::vector<float> y(static_cast<size_t>(M * N));
      matmul(x.data(), M, K, w.matrix(), y.data(), N, MatmulOptions{false, true});
      ASSERT_EQ(0, std::memcmp(y.data(), alone.data(), y.size() * 4)) << weight_type_name(t) << " M=" << M;
    }
  }
}

// row_stable products of mixed weight types sharing X (a Q8 and a bf16 matrix): every part's rows equal
// the row alone, bitwise, though only the quantized part's rows are independent of M by themselves.
TEST(MatmulQuant, RowStableMixedParts) {
  std::mt19937 rng(10);
  const int64_t N = 70, K = 300, M = 21;
  const QWeights w = make_qweights(WeightType::kQ8, N, K, rng, 0.05f);
  std::vector<uint16_t> b16(static_cast<size_t>(N * K));
  for (size_t i = 0; i < b16.size(); ++i) b16[i] = f32_to_bf16(round_bf16(w.deq[i]));
  const WeightMatrix wq = w.matrix(), wb{WeightType::kBF16, N, K, b16.data()};
  std::vector<float> x = make_x(M, K, rng);
  for (auto& v : x) v = round_bf16(v);
  const MatmulOptions opt{true, true};
  std::vector<float> y(static_cast<size_t>(M * 2 * N)), alone(static_cast<size_t>(2 * N));
  const MatmulOut parts[2] = {{&wq, y.data(), 2 * N}, {&wb, y.data() + N, 2 * N}};
  matmul_parts(x.data(), M, K, parts, 2, opt);
  for (int64_t m = 0; m < M; ++m) {
    const MatmulOut one[2] = {{&wq, alone.data(), 2 * N}, {&wb, alone.data() + N, 2 * N}};
    matmul_parts(x.data() + m * K, 1, K, one, 2, opt);
    ASSERT_EQ(0, std::memcmp(y.data() + m * 2 * N, alone.data(), 2 * N * 4)) << "row " << m;
  }
}

// Decode does the same arithmetic on every SIMD ISA (the AVX2 kernels' sign trick or nibble products
// and matmul_vnni.cc's vpdpbusd from -128·Σqx or -8·Σqx give the same exact int32 group sums, then the
// same FMAs): bitwise equal.
TEST(MatmulQuant, DecodeSameBitsOnEveryIsa) {
  if (active_isa() < Isa::kAvx512) GTEST_SKIP() << "one SIMD ISA here";
  std::mt19937 rng(12);
  for (WeightType t : {WeightType::kQ8, WeightType::kQ4}) {
    for (int64_t K : {int64_t(40), int64_t(300), int64_t(650), int64_t(2048)}) {
      SCOPED_TRACE(weight_type_name(t));
      QWeights w = make_qweights(t, 133, K, rng, 0.05f);
      // The extremes the formats store: Q8 -127 (byte 1), Q4 -8 in both nibbles (byte 0).
      for (size_t i = 0; i < w.data.size(); i += 97) w.data[i] = t == WeightType::kQ8 ? 1 : 0;
      for (int64_t M = 1; M <= 8; ++M) {
        std::vector<float> x = make_x(M, K, rng);
        x[0] = 3.f;  // a group with a value at +127 after quantizing, and one at -127
        x[static_cast<size_t>(K - 1)] = -3.f;
        std::vector<float> y2(static_cast<size_t>(M * 133)), y5(y2.size());
        matmul_isa(Isa::kAvx2, x.data(), M, K, w.matrix(), y2.data(), 133);
        matmul_isa(Isa::kAvx512, x.data(), M, K, w.matrix(), y5.data(), 133);
        ASSERT_EQ(0, std::memcmp(y2.data(), y5.data(), y2.size() * 4)) << "K=" << K << " M=" << M;
      }
    }
  }
}

// On AVX-512 with VNNI the GEMM (M > 8) does the decode arithmetic (matmul_vnni.cc): every row of Y is
// bitwise the row its X row gives alone (M = 1), whatever M (blocks of 6 rows, passes of 192: M = 9..400),
// N (pairs of 16-row tiles, an odd last tile, a partial one), K (partial groups), the parts sharing X,
// the bf16 rounding as it stores, and the threads.
TEST(MatmulQuant, VnniGemmRowsAreTheDecodeRows) {
  if (!quantizes_x(active_isa(), 9)) GTEST_SKIP() << "no AVX512_VNNI here (or T5G_ISA lowered)";
  std::mt19937 rng(41);
  const int saved = omp_get_max_threads();
  for (WeightType t : {WeightType::kQ8, WeightType::kQ4})
    for (const auto& nk : {std::array<int64_t, 2>{37, 40}, std::array<int64_t, 2>{16, 300}, std::array<int64_t, 2>{70, 650},
                           std::array<int64_t, 2>{33, 2048}}) {
      const int64_t N = nk[0], K = nk[1];
      const QWeights w = make_qweights(t, N, K, rng, 0.05f);
      const WeightMatrix wm = w.matrix();
      for (int64_t M : {9, 13, 100, 197, 400}) {
        SCOPED_TRACE(std::string(weight_type_name(t)) + " M=" + std::to_string(M) + " N=" + std::to_string(N) +
                     " K=" + std::to_string(K));
        const std::vector<float> x = make_x(M, K, rng);
        for (bool rnd : {false, true}) {
          std::vector<float> alone(static_cast<size_t>(M * N));
          for (int64_t m = 0; m < M; ++m) {
            const MatmulOut one{&wm, alone.data() + m * N, N, rnd};
            matmul_parts(x.data() + m * K, 1, K, &one, 1);
          }
          for (int threads : {1, 2, 3}) {
            omp_set_num_threads(threads);
            std::vector<float> y(static_cast<size_t>(M * 2 * N), kSentinel);  // two parts side by side
            const MatmulOut parts[2] = {{&wm, y.data(), 2 * N, rnd}, {&wm, y.data() + N, 2 * N, rnd}};
            matmul_parts(x.data(), M, K, parts, 2);
            for (int64_t m = 0; m < M; ++m)
              for (int h = 0; h < 2; ++h)
                ASSERT_EQ(0, std::memcmp(y.data() + m * 2 * N + h * N, alone.data() + m * N, N * 4))
                    << "row " << m << " part " << h << " threads " << threads << (rnd ? " rounded" : "");
          }
          omp_set_num_threads(saved);
        }
      }
    }
}

// A NaN in X reaches Y (it is not lost in the int8 quantization of X); tiny groups count as zero.
TEST(MatmulQuant, NanAndTinyX) {
  std::mt19937 rng(4);
  for (WeightType t : {WeightType::kQ8, WeightType::kQ4}) {
    const QWeights w = make_qweights(t, 20, 70, rng, 0.05f);
    std::vector<float> x = make_x(2, 70, rng);
    x[5] = std::nanf("");
    for (int64_t k = 0; k < 70; ++k) x[70 + k] = 1e-38f * static_cast<float>(k % 5);  // tiny row
    for (Isa isa : simd_isas()) {
      std::vector<float> y(40);
      matmul_isa(isa, x.data(), 2, 70, w.matrix(), y.data(), 20);
      for (int64_t n = 0; n < 20; ++n) {
        EXPECT_TRUE(std::isnan(y[n])) << weight_type_name(t) << " n=" << n;
        EXPECT_TRUE(std::isfinite(y[20 + n]) && std::fabs(y[20 + n]) < 1e-30f) << weight_type_name(t) << " " << y[20 + n];
      }
    }
  }
}

// An infinity in X reaches Y as a non-finite value (never as a finite number, nor as UB in the int8
// conversion of X: UBSan runs this).
TEST(MatmulQuant, InfiniteX) {
  std::mt19937 rng(6);
  for (WeightType t : {WeightType::kQ8, WeightType::kQ4}) {
    const QWeights w = make_qweights(t, 20, 70, rng, 0.05f);
    std::vector<float> x = make_x(2, 70, rng);
    x[3] = INFINITY;
    x[70 + 40] = -INFINITY;
    x[70 + 41] = INFINITY;
    for (Isa isa : simd_isas()) {
      std::vector<float> y(40);
      matmul_isa(isa, x.data(), 2, 70, w.matrix(), y.data(), 20);
      for (int64_t i = 0; i < 40; ++i) EXPECT_FALSE(std::isfinite(y[i])) << weight_type_name(t) << " " << isa_name(isa) << " " << i;
    }
  }
}

// Accuracy on realistic data (Gaussian X and W, K = 640): the rms error of the decode kernels relative
// to the rms of Y, against (a) ref::matmul with the same quantized weights — the X quantization alone —
// and (b) the unquantized fp32 weights — everything. Printed for the record; loose bounds asserted.
TEST(MatmulQuant, AccuracyGaussian) {
  std::mt19937 rng(31);
  std::normal_distribution<float> nd;
  const int64_t N = 512, K = 640, M = 4;
  std::vector<float> x(static_cast<size_t>(M * K));
  for (auto& v : x) v = nd(rng);
  for (WeightType t : {WeightType::kQ8, WeightType::kQ4}) {
    QWeights w{t, N, K, {}, {}, {}, {}};
    w.src.resize(static_cast<size_t>(N * K));
    for (auto& v : w.src) v = 0.05f * nd(rng);
    w.data.resize(static_cast<size_t>(quant_data_bytes(t, N, K)));
    w.scales.resize(static_cast<size_t>(quant_scale_count(N, K)));
    quantize_matrix(WeightMatrix{WeightType::kF32, N, K, w.src.data()}, t, w.data.data(), w.scales.data());
    std::vector<float> y(static_cast<size_t>(M * N)), yq(y.size()), yf(y.size()), yg(y.size());
    matmul(x.data(), M, K, w.matrix(), y.data(), N);  // decode kernel
    ref::matmul(x.data(), M, K, w.matrix(), yq.data(), N);
    ref::matmul(x.data(), M, K, WeightMatrix{WeightType::kF32, N, K, w.src.data()}, yf.data(), N);
    std::vector<float> x17(static_cast<size_t>(17 * K));
    for (size_t i = 0; i < x17.size(); ++i) x17[i] = x[i % x.size()];
    std::vector<float> y17(static_cast<size_t>(17 * N));
    matmul(x17.data(), 17, K, w.matrix(), y17.data(), N);  // GEMM: dequantized weights, or on VNNI the decode arithmetic
    double e_x = 0, e_all = 0, e_w = 0, e_gemm = 0, ss = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      e_x += (double(y[i]) - yq[i]) * (double(y[i]) - yq[i]);
      e_all += (double(y[i]) - yf[i]) * (double(y[i]) - yf[i]);
      e_w += (double(yq[i]) - yf[i]) * (double(yq[i]) - yf[i]);
      e_gemm += (double(y17[i]) - yq[i]) * (double(y17[i]) - yq[i]);
      ss += double(yf[i]) * yf[i];
    }
    const double rx = std::sqrt(e_x / ss), ra = std::sqrt(e_all / ss), rw = std::sqrt(e_w / ss), rg = std::sqrt(e_gemm / ss);
    std::cout << weight_type_name(t) << " K=" << K << ": rms error / rms(y): X int8 quantization (decode vs ref) " << rx
              << ", weight quantization (ref vs fp32 weights) " << rw << ", decode vs fp32 weights " << ra
              << ", GEMM vs ref " << rg << "\n";
    EXPECT_LT(rx, 0.01);
    if (quantizes_x(active_isa(), 17)) {  // each GEMM row is its decode row, bitwise
      for (int64_t m = 0; m < 17; ++m)
        EXPECT_EQ(0, std::memcmp(y17.data() + m * N, y.data() + (m % M) * N, N * 4)) << weight_type_name(t) << " m=" << m;
    } else {
      EXPECT_LT(rg, 1e-5);
    }
    EXPECT_LT(ra, t == WeightType::kQ8 ? 0.02 : 0.15);
  }
}

}  // namespace
}  // namespace t5g
