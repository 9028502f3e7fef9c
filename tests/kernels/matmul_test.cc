// Optimised matmul / gemm_f32 kernels of every ISA this CPU runs, against the reference loops.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/matmul.h"
#include "t5g/error.h"
#include "util/bf16.h"

#include "decode_rows_check.h"

namespace t5g {
namespace {

std::vector<Isa> isas() {
  std::vector<Isa> v;
  for (int i = 0; i <= static_cast<int>(active_isa()); ++i) v.push_back(static_cast<Isa>(i));
  return v;
}

struct Weights {
  WeightType type;
  int64_t rows, cols;
  std::vector<float> f32;     // the values, as fp32 (exactly representable in `type`)
  std::vector<uint16_t> u16;  // storage for bf16 / f16
  std::vector<float> store;   // storage for f32
  WeightMatrix matrix() const {
    WeightMatrix w;
    w.type = type;
    w.rows = rows;
    w.cols = cols;
    w.data = type == WeightType::kF32 ? static_cast<const void*>(store.data()) : static_cast<const void*>(u16.data());
    return w;
  }
};

Weights make_weights(WeightType t, int64_t rows, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.f, 1.f);
  Weights w{t, rows, cols, {}, {}, {}};
  const size_t n = static_cast<size_t>(rows * cols);
  w.f32.resize(n);
  if (t == WeightType::kF32) w.store.resize(n);
  else w.u16.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const float v = nd(rng);
    switch (t) {
      case WeightType::kF32: w.store[i] = w.f32[i] = v; break;
      case WeightType::kBF16: w.u16[i] = f32_to_bf16(v); w.f32[i] = bf16_to_f32(w.u16[i]); break;
      case WeightType::kF16: w.u16[i] = f32_to_f16(v); w.f32[i] = f16_to_f32(w.u16[i]); break;
      case WeightType::kQ8:
      case WeightType::kQ4: break;  // quantized weights: matmul_quant_test.cc
    }
  }
  return w;
}

std::vector<float> make_x(int64_t M, int64_t ldx, std::mt19937& rng, bool bf16_values) {
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> x(static_cast<size_t>(M * ldx + 1));
  for (auto& v : x) v = bf16_values ? round_bf16(nd(rng)) : nd(rng);
  return x;
}

constexpr float kSentinel = -12345.f;

// The optimised ISAs to test (kScalar is the reference itself: see ScalarIsReference).
std::vector<Isa> simd_isas() {
  std::vector<Isa> v;
  for (Isa i : isas())
    if (i != Isa::kScalar) v.push_back(i);
  return v;
}

// Checks each ISA's Y against the reference (computed once) with a bound on fp32 reassociation error,
// and that the padding between rows (ldy > N) is untouched.
void check_matmul(const Weights& w, int64_t M, int64_t ldx, int64_t ldy, std::mt19937& rng, bool x_bf16) {
  const int64_t N = w.rows, K = w.cols;
  const std::vector<float> x = make_x(M, ldx, rng, x_bf16);
  std::vector<float> yr(static_cast<size_t>(M * ldy), kSentinel), tol(static_cast<size_t>(M * N));
  ref::matmul(x.data(), M, ldx, w.matrix(), yr.data(), ldy);
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;
      const float* xr = x.data() + m * ldx;
      const float* wr = w.f32.data() + n * K;
      for (int64_t k = 0; k < K; ++k) s += std::fabs(double(xr[k]) * wr[k]);
      tol[m * N + n] = static_cast<float>(2.0 * (K + 2) * std::ldexp(1.0, -24) * s + 1e-30);
    }
  MatmulOptions opt;
  opt.x_is_bf16 = x_bf16;
  for (Isa isa : simd_isas()) {
    std::vector<float> y(static_cast<size_t>(M * ldy), kSentinel);
    matmul_isa(isa, x.data(), M, ldx, w.matrix(), y.data(), ldy, opt);
    const std::string what = std::string(isa_name(isa)) + " " + weight_type_name(w.type) + " M=" + std::to_string(M) +
                             " N=" + std::to_string(N) + " K=" + std::to_string(K) + " ldx=" + std::to_string(ldx) +
                             " ldy=" + std::to_string(ldy) + (x_bf16 ? " x_bf16" : "");
    int bad = 0;
    for (int64_t m = 0; m < M && bad < 5; ++m) {
      for (int64_t n = 0; n < ldy && bad < 5; ++n) {
        const float got = y[m * ldy + n];
        if (n >= N) {
          if (got != kSentinel) {
            ADD_FAILURE() << what << ": padding overwritten at m=" << m << " n=" << n;
            ++bad;
          }
          continue;
        }
        const float want = yr[m * ldy + n];
        if (!(std::fabs(double(got) - want) <= tol[m * N + n])) {
          ADD_FAILURE() << what << ": Y[" << m << "," << n << "] = " << got << ", ref " << want << ", tol " << tol[m * N + n];
          ++bad;
        }
      }
    }
  }
}

const WeightType kTypes[] = {WeightType::kF32, WeightType::kBF16, WeightType::kF16};

TEST(Matmul, ScalarIsReference) {
  std::mt19937 rng(77);
  const Weights w = make_weights(WeightType::kBF16, 19, 23, rng);
  const std::vector<float> x = make_x(5, 23, rng, false);
  std::vector<float> y(5 * 19), yr(5 * 19);
  matmul_isa(Isa::kScalar, x.data(), 5, 23, w.matrix(), y.data(), 19);
  ref::matmul(x.data(), 5, 23, w.matrix(), yr.data(), 19);
  EXPECT_EQ(0, std::memcmp(y.data(), yr.data(), y.size() * 4));
}

TEST(Matmul, MatchesReferenceAllIsasShapesTypes) {
  std::mt19937 rng(1234);
  const int64_t Ms[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 63, 130};
  const int64_t NKs[][2] = {{1, 1}, {1, 37}, {5, 1}, {3, 2}, {17, 33}, {16, 16}, {31, 100}, {64, 64}, {40, 257}, {33, 641}};
  for (WeightType t : kTypes) {
    for (const auto& nk : NKs) {
      const Weights w = make_weights(t, nk[0], nk[1], rng);
      for (int64_t M : Ms) {
        check_matmul(w, M, nk[1], nk[0], rng, false);
        if (M == 3 || M == 9) check_matmul(w, M, nk[1] + 3, nk[0] + 5, rng, false);  // strided X / Y
        if (t == WeightType::kBF16 && (M == 2 || M == 13)) check_matmul(w, M, nk[1] + 1, nk[0], rng, true);
      }
    }
  }
}

// Shapes that cross the blocking boundaries: several K blocks, several N blocks, a partial last panel.
TEST(Matmul, MatchesReferenceLargeBlocks) {
  std::mt19937 rng(99);
  for (WeightType t : kTypes) {
    const Weights w = make_weights(t, 4100, 300, rng);
    check_matmul(w, 1, 300, 4100, rng, false);
    if (t == WeightType::kBF16) check_matmul(w, 8, 301, 4103, rng, false);
    check_matmul(w, 14, 300, 4100, rng, t == WeightType::kBF16);
  }
  const Weights w2 = make_weights(WeightType::kBF16, 70, 1100, rng);
  check_matmul(w2, 150, 1100, 70, rng, false);
  check_matmul(w2, 150, 1100, 70, rng, true);
  // M > 256: the row-blocked GEMM with packed X (smaller M split the columns only, reading X in place).
  check_matmul(w2, 300, 1100, 70, rng, false);
}

TEST(Matmul, DefaultEntryPointMatchesReference) {
  std::mt19937 rng(7);
  const Weights w = make_weights(WeightType::kBF16, 50, 70, rng);
  for (int64_t M : {1, 8, 20}) {
    const std::vector<float> x = make_x(M, 70, rng, false);
    std::vector<float> y(static_cast<size_t>(M * 50)), yi(static_cast<size_t>(M * 50));
    matmul(x.data(), M, 70, w.matrix(), y.data(), 50);
    matmul_isa(active_isa(), x.data(), M, 70, w.matrix(), yi.data(), 50);
    EXPECT_EQ(0, std::memcmp(y.data(), yi.data(), y.size() * 4)) << "M=" << M;
  }
}

// The result must not depend on the number of threads (each output's K reduction has a fixed order).
TEST(Matmul, BitwiseIndependentOfThreadCount) {
  std::mt19937 rng(5);
  const int saved = omp_get_max_threads();
  for (Isa isa : simd_isas()) {
    for (WeightType t : kTypes) {
      const Weights w = make_weights(t, 1000, 300, rng);  // large enough to run multithreaded
      for (int64_t M : {1, 3, 8, 9, 61, 300}) {
        for (bool xb : {false, true}) {
          if (xb && t != WeightType::kBF16) continue;
          const std::vector<float> x = make_x(M, 300, rng, xb);
          MatmulOptions opt;
          opt.x_is_bf16 = xb;
          std::vector<float> ys[3];
          const int threads[3] = {1, 2, 3};
          for (int i = 0; i < 3; ++i) {
            ys[i].assign(static_cast<size_t>(M * 1000), 0.f);
            omp_set_num_threads(threads[i]);
            matmul_isa(isa, x.data(), M, 300, w.matrix(), ys[i].data(), 1000, opt);
          }
          for (int i = 1; i < 3; ++i)
            EXPECT_EQ(0, std::memcmp(ys[0].data(), ys[i].data(), ys[0].size() * 4))
                << isa_name(isa) << " " << weight_type_name(t) << " M=" << M << " threads=" << threads[i];
        }
      }
    }
  }
  omp_set_num_threads(saved);
}

// Decode products (M <= 8) of the float weight types: each row of Y is bitwise what X's row alone gives,
// whatever M, the X rows a pass groups, or the weight rows a kernel takes together (AVX2 pairs rows at
// M >= 2; N odd and small ranges leave single rows; K = 650 ends in a partial block).
TEST(Matmul, DecodeRowsIndependentOfBatchSize) {
  std::mt19937 rng(11);
  const int64_t maxM = 12;
  for (const auto& nk : {std::pair<int64_t, int64_t>{301, 650}, {7, 64}, {1001, 300}}) {
    const int64_t N = nk.first, K = nk.second;
    for (WeightType t : kTypes) {
      const Weights w = make_weights(t, N, K, rng);
      const std::vector<float> x = make_x(maxM, K, rng, false);
      for (Isa isa : simd_isas()) {
        expect_decode_rows_independent(isa, w.matrix(), x, maxM, weight_type_name(t));
        if (HasFatalFailure()) return;
      }
    }
  }
}

// The two GEMM schedules (columns only at M <= 256 with X read in place; row blocks with packed X above)
// compute each output as the same FMA chain: the rows they share agree bitwise.
TEST(Matmul, GemmSchedulesAgreeBitwise) {
  std::mt19937 rng(13);
  const int64_t N = 203, K = 700;
  for (WeightType t : kTypes) {
    const Weights w = make_weights(t, N, K, rng);
    const std::vector<float> x = make_x(300, K, rng, false);
    for (Isa isa : simd_isas()) {
      std::vector<float> big(static_cast<size_t>(300 * N)), small(static_cast<size_t>(100 * N));
      matmul_isa(isa, x.data(), 300, K, w.matrix(), big.data(), N);
      matmul_isa(isa, x.data() + 37 * K, 100, K, w.matrix(), small.data(), N);
      ASSERT_EQ(0, std::memcmp(small.data(), big.data() + 37 * N, small.size() * 4)) << isa_name(isa) << " "
                                                                                      << weight_type_name(t);
    }
  }
}

// The bf16 GEMM with bf16 X (vdpbf16ps where the CPU has AVX512_BF16): a row's outputs are the same bits
// wherever the row sits in X (another row of its tile, another tile, another block of rows) and however
// many rows there are, and close to the reference. N = 203 ends in a partial panel; K = 701 is odd.
TEST(Matmul, Bf16GemmRowsIndependentOfPlacement) {
  std::mt19937 rng(17);
  const int64_t N = 203;
  for (int64_t K : {700, 701, 2048}) {
    const Weights w = make_weights(WeightType::kBF16, N, K, rng);
    const std::vector<float> x = make_x(600, K, rng, true);
    MatmulOptions opt;
    opt.x_is_bf16 = true;
    for (Isa isa : simd_isas()) {
      std::vector<float> big(static_cast<size_t>(600 * N));
      matmul_isa(isa, x.data(), 600, K, w.matrix(), big.data(), N, opt);
      for (auto [r0, m] : {std::pair<int64_t, int64_t>{37, 100}, {5, 45}, {290, 17}, {0, 9}}) {
        std::vector<float> small(static_cast<size_t>(m * N));
        matmul_isa(isa, x.data() + r0 * K, m, K, w.matrix(), small.data(), N, opt);
        ASSERT_EQ(0, std::memcmp(small.data(), big.data() + r0 * N, small.size() * 4))
            << isa_name(isa) << " K=" << K << " rows " << r0 << "+" << m;
      }
      if (K == 700) check_matmul(w, 45, K, N, rng, true);
    }
  }
}

// A bf16 matrix packed once by pack_bf16_gemm_panels: the layout is the documented one (element by
// element, zero past the rows and after an odd K), and the vdpbf16ps GEMM reading those panels gives the
// same bits as packing on every call, alone and among unpacked parts; K past one K block (1024) reads
// each block's pairs at its offset in the panel.
TEST(Matmul, Bf16GemmPanelsPackedAtLoadSameBits) {
  if (!gemm_bf16_available()) GTEST_SKIP() << "no AVX512_BF16";
  std::mt19937 rng(23);
  const int64_t w = gemm_bf16_panel_width();
  for (auto [N, K] : {std::pair<int64_t, int64_t>{70, 64}, {32, 7}, {45, 1}, {203, 1030}, {64, 2501}}) {
    SCOPED_TRACE("N=" + std::to_string(N) + " K=" + std::to_string(K));
    const Weights wt = make_weights(WeightType::kBF16, N, K, rng), wt2 = make_weights(WeightType::kBF16, N, K, rng);
    const int64_t Kp = (K + 1) / 2;
    ASSERT_EQ(bf16_gemm_panel_words(N, K), (N + w - 1) / w * w * Kp);
    std::vector<uint32_t> panels(static_cast<size_t>(bf16_gemm_panel_words(N, K)), 0xdeadbeefu);
    WeightMatrix packed = wt.matrix();
    pack_bf16_gemm_panels(packed, panels.data());
    for (int64_t n = 0; n < (N + w - 1) / w * w; ++n)
      for (int64_t kk = 0; kk < Kp; ++kk) {
        const auto at = [&](int64_t k) -> uint32_t { return n < N && k < K ? wt.u16[n * K + k] : 0u; };
        ASSERT_EQ(panels[(n / w) * w * Kp + kk * w + n % w], at(2 * kk) | at(2 * kk + 1) << 16) << n << "," << kk;
      }
    packed.gemm_panels = panels.data();
    // A row read back from the panels (an embedding lookup of a packed table) is the stored row.
    std::vector<float> row(static_cast<size_t>(K));
    for (int64_t n : {int64_t(0), N / 2, N - 1}) {
      weight_row_f32(packed, n, row.data());
      ASSERT_EQ(0, std::memcmp(row.data(), wt.f32.data() + n * K, K * 4)) << "row " << n;
    }
    MatmulOptions opt;
    opt.x_is_bf16 = true;
    for (int64_t M : {9, 37, 130, 500}) {  // (500: several row blocks, the plain part packed once per call)
      const std::vector<float> x = make_x(M, K, rng, true);
      std::vector<float> y0(static_cast<size_t>(M * N)), y1(y0.size(), kSentinel);
      matmul(x.data(), M, K, wt.matrix(), y0.data(), N, opt);
      matmul(x.data(), M, K, packed, y1.data(), N, opt);
      ASSERT_EQ(0, std::memcmp(y0.data(), y1.data(), y0.size() * 4)) << "M=" << M;
      // In matmul_parts beside parts that are packed per call (one of another matrix).
      std::vector<float> p0(y0.size(), kSentinel), p1(y0.size(), kSentinel), p2(y0.size(), kSentinel), y2(y0.size());
      const WeightMatrix plain = wt.matrix(), other = wt2.matrix();
      matmul(x.data(), M, K, other, y2.data(), N, opt);
      const MatmulOut parts[] = {{&packed, p0.data(), N}, {&plain, p1.data(), N}, {&other, p2.data(), N}};
      matmul_parts(x.data(), M, K, parts, 3, opt);
      ASSERT_EQ(0, std::memcmp(y0.data(), p0.data(), y0.size() * 4)) << "M=" << M;
      ASSERT_EQ(0, std::memcmp(y0.data(), p1.data(), y0.size() * 4)) << "M=" << M;
      ASSERT_EQ(0, std::memcmp(y2.data(), p2.data(), y2.size() * 4)) << "M=" << M;
    }
  }
  WeightMatrix f32;
  f32.type = WeightType::kF32;
  f32.rows = f32.cols = 4;
  std::vector<uint32_t> out(static_cast<size_t>(bf16_gemm_panel_words(4, 4)));
  EXPECT_THROW(pack_bf16_gemm_panels(f32, out.data()), Error);
}

// The vdpbf16ps products (bf16 weights and X, AVX512_BF16), decode (M <= 8) and GEMM alike, from the
// row-major matrix and from its panels packed at load: every output is bitwise one fp32 chain over the
// (k, k+1) pairs in order, each pair adding its odd product and then its even one (vdpbf16ps: each
// product of two bf16 values is exact in fp32, each addition rounds). So a row does not depend on M, the
// layout, the threads or the other parts of matmul_parts. N = 203 / 45 end in partial panels and 16-row
// groups; K odd ends in a half pair; K = 2048 and 1000 x 300 run multithreaded.
TEST(Matmul, Bf16DotEveryOutputIsOneChainOverThePairs) {
  if (!gemm_bf16_available()) GTEST_SKIP() << "no AVX512_BF16";
  std::mt19937 rng(29);
  const int saved = omp_get_max_threads();
  for (auto [N, K] : {std::pair<int64_t, int64_t>{203, 701}, {45, 1}, {32, 7}, {17, 33}, {70, 64}, {96, 2048},
                      {1000, 300}}) {
    SCOPED_TRACE("N=" + std::to_string(N) + " K=" + std::to_string(K));
    const Weights wt = make_weights(WeightType::kBF16, N, K, rng);
    std::vector<uint32_t> panels(static_cast<size_t>(bf16_gemm_panel_words(N, K)));
    WeightMatrix packed = wt.matrix();
    pack_bf16_gemm_panels(packed, panels.data());
    packed.gemm_panels = panels.data();
    const WeightMatrix plain = wt.matrix();
    const int64_t maxM = 20, ldy = N + 3;
    const std::vector<float> x = make_x(maxM, K, rng, true);
    std::vector<float> want(static_cast<size_t>(maxM * N));
    for (int64_t m = 0; m < maxM; ++m)
      for (int64_t n = 0; n < N; ++n) {
        float acc = 0.f;
        for (int64_t k = 0; k < K; k += 2) {
          if (k + 1 < K) acc = std::fma(x[m * K + k + 1], wt.f32[n * K + k + 1], acc);
          acc = std::fma(x[m * K + k], wt.f32[n * K + k], acc);
        }
        want[m * N + n] = acc;
      }
    MatmulOptions opt;
    opt.x_is_bf16 = true;
    for (int threads : {2, 1, 3}) {
      omp_set_num_threads(threads);
      for (int64_t M : {1, 2, 3, 4, 5, 6, 7, 8, 9, 20}) {
        if (threads != 2 && M != 1 && M != 5 && M != 8) continue;
        const int64_t m0 = maxM - M;
        for (const WeightMatrix* w : {&plain, static_cast<const WeightMatrix*>(&packed)}) {
          std::vector<float> y(static_cast<size_t>(M * ldy), kSentinel);
          matmul(x.data() + m0 * K, M, K, *w, y.data(), ldy, opt);
          for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < ldy; ++n) {
              const float got = y[m * ldy + n], exp = n < N ? want[(m0 + m) * N + n] : kSentinel;
              ASSERT_EQ(std::memcmp(&got, &exp, 4), 0) << (w->gemm_panels ? "panels" : "row-major") << " M=" << M
                                                       << " threads=" << threads << " Y[" << m << "," << n
                                                       << "] = " << got << ", the chain gives " << exp;
            }
        }
        // Both layouts in one matmul_parts schedule (decode: the rows of both go out to the threads together).
        std::vector<float> p0(static_cast<size_t>(M * N)), p1(p0.size());
        const MatmulOut parts[] = {{&packed, p0.data(), N}, {&plain, p1.data(), N}};
        matmul_parts(x.data() + m0 * K, M, K, parts, 2, opt);
        ASSERT_EQ(0, std::memcmp(p0.data(), want.data() + m0 * N, p0.size() * 4)) << "parts, panels, M=" << M;
        ASSERT_EQ(0, std::memcmp(p1.data(), want.data() + m0 * N, p1.size() * 4)) << "parts, row-major, M=" << M;
      }
    }
  }
  omp_set_num_threads(saved);
}

void check_gemm(Isa isa, int64_t M, int64_t N, int64_t K, bool bt, bool acc, int64_t pad, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.f, 1.f);
  const int64_t lda = K + pad, ldb = (bt ? K : N) + pad, ldc = N + pad;
  std::vector<float> A(static_cast<size_t>(M * lda + 1)), B(static_cast<size_t>((bt ? N : K) * ldb + 1));
  std::vector<float> C(static_cast<size_t>(M * ldc + 1));
  for (auto& v : A) v = nd(rng);
  for (auto& v : B) v = nd(rng);
  for (auto& v : C) v = nd(rng);
  std::vector<float> Cr = C, C0 = C;
  gemm_f32_isa(isa, M, N, K, A.data(), lda, B.data(), ldb, bt, C.data(), ldc, acc);
  ref::gemm_f32(M, N, K, A.data(), lda, B.data(), ldb, bt, Cr.data(), ldc, acc);
  int bad = 0;
  for (int64_t m = 0; m < M && bad < 5; ++m) {
    for (int64_t n = 0; n < ldc && bad < 5; ++n) {
      const size_t i = static_cast<size_t>(m * ldc + n);
      if (n >= N) {
        if (C[i] != C0[i]) {
          ADD_FAILURE() << "padding overwritten";
          ++bad;
        }
        continue;
      }
      double s = acc ? std::fabs(C0[i]) : 0.0;
      for (int64_t k = 0; k < K; ++k) s += std::fabs(double(A[m * lda + k]) * (bt ? B[n * ldb + k] : B[k * ldb + n]));
      const double tol = 2.0 * (K + 3) * std::ldexp(1.0, -24) * s + 1e-30;
      if (!(std::fabs(double(C[i]) - Cr[i]) <= tol)) {
        ADD_FAILURE() << isa_name(isa) << " M=" << M << " N=" << N << " K=" << K << " bt=" << bt << " acc=" << acc
                      << " pad=" << pad << ": C[" << m << "," << n << "] = " << C[i] << ", ref " << Cr[i];
        ++bad;
      }
    }
  }
}

TEST(GemmF32, MatchesReference) {
  std::mt19937 rng(42);
  const int64_t shapes[][3] = {{1, 1, 1},   {1, 7, 3},     {3, 1, 5},    {6, 16, 8},   {7, 17, 9},  {13, 33, 1},
                               {64, 64, 32}, {64, 100, 64}, {64, 64, 300}, {37, 45, 67}, {5, 130, 256}, {64, 129, 80}, {20, 256, 40}, {7, 512, 19},
                               {12, 8, 0}};
  for (Isa isa : isas())
    for (const auto& s : shapes)
      for (bool bt : {false, true})
        for (bool acc : {false, true})
          for (int64_t pad : {0, 3}) check_gemm(isa, s[0], s[1], s[2], bt, acc, pad, rng);
}

// B in gemm_f32_panels' layout gives the same bits as the same B row-major: each output is the same
// micro-kernel FMA chain, only the addresses of B differ. Panels' columns past N are zero, their row
// stride ldp is padded, and the padding of C is left alone.
TEST(GemmF32, PanelsEqualRowMajorBitwise) {
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.f, 1.f);
  const int64_t shapes[][3] = {{1, 1, 1}, {6, 16, 8}, {7, 17, 9}, {18, 72, 300}, {13, 40, 600}, {5, 130, 257}, {12, 8, 0}};
  for (Isa isa : isas()) {
    const int64_t w = gemm_panel_width_isa(isa);
    for (const auto& sh : shapes) {
      const int64_t M = sh[0], N = sh[1], K = sh[2], lda = K + 3, ldc = N + 5, ldp = K * w + 2 * w;
      std::vector<float> A(static_cast<size_t>(M * lda + 1)), B(static_cast<size_t>(K * N + 1));
      for (auto& v : A) v = nd(rng);
      for (auto& v : B) v = nd(rng);
      const int64_t npan = (N + w - 1) / w;
      std::vector<float> Bp(static_cast<size_t>(npan * ldp + 1), 0.f);
      for (int64_t k = 0; k < K; ++k)
        for (int64_t n = 0; n < N; ++n) Bp[static_cast<size_t>((n / w) * ldp + k * w + n % w)] = B[k * N + n];
      for (bool acc : {false, true}) {
        std::vector<float> C(static_cast<size_t>(M * ldc + 1));
        for (auto& v : C) v = nd(rng);
        std::vector<float> Cp = C;
        gemm_f32_isa(isa, M, N, K, A.data(), lda, B.data(), N, false, C.data(), ldc, acc);
        gemm_f32_panels_isa(isa, M, N, K, A.data(), lda, Bp.data(), ldp, Cp.data(), ldc, acc);
        ASSERT_EQ(0, std::memcmp(C.data(), Cp.data(), C.size() * sizeof(float)))
            << isa_name(isa) << " M=" << M << " N=" << N << " K=" << K << " acc=" << acc;
      }
    }
  }
}

// gemm_bf16_panels (AVX512_BF16 only): against the plain-loop reference within fp32 reassociation
// error (vdpbf16ps adds a pair's two products in its own order), C's padding untouched, and each row
// bitwise the same whether it is multiplied alone or with others (one chain per output).
TEST(GemmBf16, PanelsMatchReference) {
  if (!gemm_bf16_available()) GTEST_SKIP() << "no AVX512_BF16 here";
  std::mt19937 rng(21);
  std::normal_distribution<float> nd(0.f, 1.f);
  const int64_t w = gemm_bf16_panel_width();
  const int64_t shapes[][3] = {{1, 1, 1},     {12, 32, 8},   {13, 33, 36}, {30, 72, 128}, {5, 100, 300},
                               {25, 7, 513}, {3, 40, 0},    {18, 72, 300}, {48, 80, 40}, {24, 48, 20}};
  for (const auto& sh : shapes) {
    const int64_t M = sh[0], N = sh[1], Kp = sh[2], lda = 2 * Kp + 4, ldc = N + 5, ldp = Kp * w + w;
    std::vector<uint16_t> A(static_cast<size_t>(M * lda + 1));
    for (auto& v : A) v = f32_to_bf16(nd(rng));
    const int64_t npan = (N + w - 1) / w;
    std::vector<uint32_t> Bp(static_cast<size_t>(npan * ldp + 1), 0u);
    for (int64_t kk = 0; kk < Kp; ++kk)
      for (int64_t n = 0; n < N; ++n)
        Bp[static_cast<size_t>((n / w) * ldp + kk * w + n % w)] =
            f32_to_bf16(nd(rng)) | (static_cast<uint32_t>(f32_to_bf16(nd(rng))) << 16);
    for (bool acc : {false, true}) {
      std::vector<float> C(static_cast<size_t>(M * ldc + 1));
      for (auto& v : C) v = nd(rng);
      std::vector<float> Cr = C, C0 = C;
      gemm_bf16_panels(M, N, Kp, A.data(), lda, Bp.data(), ldp, C.data(), ldc, acc);
      ref::gemm_bf16_panels(M, N, Kp, A.data(), lda, Bp.data(), w, ldp, Cr.data(), ldc, acc);
      const std::string what = "M=" + std::to_string(M) + " N=" + std::to_string(N) + " Kp=" + std::to_string(Kp) +
                               " acc=" + std::to_string(acc);
      for (int64_t m = 0; m < M; ++m) {
        for (int64_t n = 0; n < ldc; ++n) {
          const size_t i = static_cast<size_t>(m * ldc + n);
          if (n >= N) {
            ASSERT_EQ(C0[i], C[i]) << what << ": padding overwritten at " << m << "," << n;
            continue;
          }
          double mag = acc ? std::fabs(double(C0[i])) : 0.0;
          for (int64_t kk = 0; kk < Kp; ++kk) {
            const uint32_t b = Bp[static_cast<size_t>((n / w) * ldp + kk * w + n % w)];
            mag += std::fabs(double(bf16_to_f32(A[m * lda + 2 * kk])) * bf16_to_f32(static_cast<uint16_t>(b & 0xffffu)));
            mag += std::fabs(double(bf16_to_f32(A[m * lda + 2 * kk + 1])) * bf16_to_f32(static_cast<uint16_t>(b >> 16)));
          }
          ASSERT_NEAR(C[i], Cr[i], 2.0 * (2 * Kp + 2) * std::ldexp(1.0, -24) * mag + 1e-30) << what << " at " << m << "," << n;
        }
        std::vector<float> one(static_cast<size_t>(ldc));
        std::copy(C0.begin() + m * ldc, C0.begin() + (m + 1) * ldc, one.begin());
        gemm_bf16_panels(1, N, Kp, A.data() + m * lda, lda, Bp.data(), ldp, one.data(), ldc, acc);
        ASSERT_EQ(0, std::memcmp(one.data(), C.data() + m * ldc, static_cast<size_t>(N) * 4)) << what << " row " << m;
      }
      // A last panel of at most 16 columns (its own narrower tiles) gives the bits of the whole panel's tile:
      // the product over all npan * w columns (the padding's B is zero) has the same first N columns.
      const int64_t Nw = npan * w;
      if (N < Nw && N % w <= 16) {
        std::vector<float> Cw(static_cast<size_t>(M * Nw));
        for (int64_t m = 0; m < M; ++m)
          for (int64_t n = 0; n < Nw; ++n) Cw[static_cast<size_t>(m * Nw + n)] = n < N ? C0[static_cast<size_t>(m * ldc + n)] : 0.f;
        gemm_bf16_panels(M, Nw, Kp, A.data(), lda, Bp.data(), ldp, Cw.data(), Nw, acc);
        for (int64_t m = 0; m < M; ++m)
          ASSERT_EQ(0, std::memcmp(Cw.data() + m * Nw, C.data() + m * ldc, static_cast<size_t>(N) * 4)) << what << " row " << m;
      }
    }
  }
}

}  // namespace
}  // namespace t5g
