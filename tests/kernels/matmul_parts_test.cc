// matmul_parts (several products of one X in one schedule: decode up to 8 rows, the column-split GEMM
// up to 256) against one matmul per product: the results must be the same bits, for every weight
// format, ISA, M and thread count.
#include <gtest/gtest.h>
#include <omp.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/matmul.h"
#include "util/bf16.h"

namespace t5g {
namespace {

// A matrix of Gaussian values stored as `t` (quantized with quantize_matrix for Q8/Q4).
struct Stored {
  WeightMatrix m;
  std::vector<float> f32;
  std::vector<uint16_t> u16;
  std::vector<uint8_t> q;
  std::vector<uint16_t> scales;
};

Stored make(WeightType t, int64_t rows, int64_t cols, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.f, 1.f);
  Stored s;
  s.f32.resize(static_cast<size_t>(rows * cols));
  for (auto& v : s.f32) v = nd(rng);
  s.m = WeightMatrix{t, rows, cols, s.f32.data(), nullptr};
  if (t == WeightType::kBF16 || t == WeightType::kF16) {
    s.u16.resize(s.f32.size());
    for (size_t i = 0; i < s.f32.size(); ++i) s.u16[i] = t == WeightType::kBF16 ? f32_to_bf16(s.f32[i]) : f32_to_f16(s.f32[i]);
    s.m.data = s.u16.data();
  } else if (is_quantized(t)) {
    s.q.resize(static_cast<size_t>(quant_data_bytes(t, rows, cols)));
    s.scales.resize(static_cast<size_t>(quant_scale_count(rows, cols)));
    quantize_matrix(WeightMatrix{WeightType::kF32, rows, cols, s.f32.data()}, t, s.q.data(), s.scales.data());
    s.m.data = s.q.data();
    s.m.scales = s.scales.data();
  }
  return s;
}

constexpr float kPad = -777.f;

TEST(MatmulParts, SameBitsAsOneProductAtATime) {
  std::mt19937 rng(11);
  const int saved = omp_get_max_threads();
  const WeightType types[] = {WeightType::kF32, WeightType::kBF16, WeightType::kF16, WeightType::kQ8, WeightType::kQ4};
  for (int isa_i = static_cast<int>(Isa::kScalar); isa_i <= static_cast<int>(active_isa()); ++isa_i) {
    const Isa isa = static_cast<Isa>(isa_i);
    for (WeightType t : types) {
      // A large part (split over the threads), a 3-row one, an odd-sized one, K not a multiple of a block.
      const int64_t K = 300;
      const int64_t rows[] = {1100, 3, 129};
      std::vector<Stored> w;
      for (int64_t r : rows) w.push_back(make(t, r, K, rng));
      for (int64_t M : {1, 2, 3, 5, 8, 9, 40, 300}) {
        std::normal_distribution<float> nd(0.f, 1.f);
        std::vector<float> x(static_cast<size_t>(M * (K + 5)));
        for (auto& v : x) v = round_bf16(nd(rng));
        for (int threads : {1, 2, 3}) {
          omp_set_num_threads(threads);
          std::vector<std::vector<float>> one(3), all(3);
          MatmulOut parts[3];
          for (int p = 0; p < 3; ++p) {
            const int64_t ldy = rows[p] + 2;  // padding between rows must stay untouched
            one[p].assign(static_cast<size_t>(M * ldy), kPad);
            all[p].assign(static_cast<size_t>(M * ldy), kPad);
            matmul_isa(isa, x.data(), M, K + 5, w[p].m, one[p].data(), ldy);
            parts[p] = MatmulOut{&w[p].m, all[p].data(), ldy};
          }
          matmul_parts_isa(isa, x.data(), M, K + 5, parts, 3);
          for (int p = 0; p < 3; ++p) {
            ASSERT_EQ(0, std::memcmp(one[p].data(), all[p].data(), one[p].size() * sizeof(float)))
                << isa_name(isa) << " " << weight_type_name(t) << " M=" << M << " threads=" << threads << " part " << p;
            EXPECT_EQ(all[p][static_cast<size_t>(rows[p])], kPad);
            EXPECT_NE(all[p][0], kPad);
          }
        }
      }
    }
  }
  omp_set_num_threads(saved);
}

// MatmulOut::round_bf16: every output rounded to bf16 as round_bf16 rounds it, once, whichever path (the
// AVX512_VNNI decode kernels round in registers, the others after the product), and the padding between
// rows untouched. X bf16-representable, so the AVX512_BF16 kernels take the bf16 weights.
TEST(MatmulParts, RoundBf16Outputs) {
  std::mt19937 rng(14);
  const int saved = omp_get_max_threads();
  const WeightType types[] = {WeightType::kF32, WeightType::kBF16, WeightType::kQ8, WeightType::kQ4};
  for (int isa_i = static_cast<int>(Isa::kScalar); isa_i <= static_cast<int>(active_isa()); ++isa_i) {
    const Isa isa = static_cast<Isa>(isa_i);
    for (WeightType t : types) {
      const int64_t K = 200;
      Stored big = make(t, 1500, K, rng), small = make(t, 37, K, rng), other = make(t, 20, K + 8, rng);
      for (bool mixed : {false, true})  // a part of another K: no shared schedule
        for (int64_t M : {1, 3, 4, 7, 8, 9, 40}) {
          std::normal_distribution<float> nd(0.f, 1.f);
          std::vector<float> x(static_cast<size_t>(M * (K + 8)));
          for (auto& v : x) v = round_bf16(nd(rng));
          if (M == 3) x[5] = std::numeric_limits<float>::quiet_NaN();  // a NaN output row stays NaN
          for (int threads : {1, 2, 3}) {
            omp_set_num_threads(threads);
            const Stored* ws[3] = {&big, &small, &other};
            const int np = mixed ? 3 : 2;
            std::vector<std::vector<float>> want(3), got(3);
            MatmulOut parts[3];
            const MatmulOptions opt{true, false};
            for (int p = 0; p < np; ++p) {
              const int64_t n = ws[p]->m.rows, ldy = n + 3;
              want[p].assign(static_cast<size_t>(M * ldy), kPad);
              got[p].assign(static_cast<size_t>(M * ldy), kPad);
              matmul_isa(isa, x.data(), M, K + 8, ws[p]->m, want[p].data(), ldy, opt);
              const bool rnd = p != 1;  // part 1 stays fp32
              if (rnd)
                for (int64_t m = 0; m < M; ++m)
                  for (int64_t j = 0; j < n; ++j) want[p][m * ldy + j] = round_bf16(want[p][m * ldy + j]);
              parts[p] = MatmulOut{&ws[p]->m, got[p].data(), ldy, rnd};
            }
            matmul_parts_isa(isa, x.data(), M, K + 8, parts, np, opt);
            for (int p = 0; p < np; ++p)
              ASSERT_EQ(0, std::memcmp(want[p].data(), got[p].data(), want[p].size() * sizeof(float)))
                  << isa_name(isa) << " " << weight_type_name(t) << " M=" << M << " threads=" << threads << " part " << p
                  << (mixed ? " mixed" : "");
          }
        }
    }
  }
  omp_set_num_threads(saved);
}

// ... and on the row-stable path over more than 8 rows (8 rows at a time, then the rounding).
TEST(MatmulParts, RoundBf16OnRowStablePath) {
  std::mt19937 rng(15);
  for (WeightType t : {WeightType::kBF16, WeightType::kQ8}) {
    Stored a = make(t, 300, 64, rng);
    std::vector<float> x(20 * 64);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 7) - 3.f;
    const MatmulOptions stable{true, true};
    std::vector<float> want(20 * 300), got(20 * 300);
    matmul(x.data(), 20, 64, a.m, want.data(), 300, stable);
    for (float& v : want) v = round_bf16(v);
    const MatmulOut part{&a.m, got.data(), 300, true};
    matmul_parts(x.data(), 20, 64, &part, 1, stable);
    EXPECT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float))) << weight_type_name(t);
  }
}

// Parts of different K or formats cannot share a schedule: each is then computed on its own.
TEST(MatmulParts, MixedShapesAndFormatsFallBack) {
  std::mt19937 rng(12);
  Stored a = make(WeightType::kBF16, 64, 96, rng), b = make(WeightType::kQ4, 40, 96, rng),
         c = make(WeightType::kBF16, 50, 64, rng);
  std::vector<float> x(2 * 96);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 13) - 6.f;
  std::vector<float> ya(2 * 64), yb(2 * 40), yc(2 * 50), ra(ya.size()), rb(yb.size()), rc(yc.size());
  const MatmulOut parts[] = {{&a.m, ya.data(), 64}, {&b.m, yb.data(), 40}, {&c.m, yc.data(), 50}};
  matmul_parts(x.data(), 2, 96, parts, 3);
  matmul(x.data(), 2, 96, a.m, ra.data(), 64);
  matmul(x.data(), 2, 96, b.m, rb.data(), 40);
  matmul(x.data(), 2, 96, c.m, rc.data(), 50);  // c reads only the first 64 columns of each row
  EXPECT_EQ(ya, ra);
  EXPECT_EQ(yb, rb);
  EXPECT_EQ(yc, rc);
}

TEST(MatmulParts, RejectsTooManyParts) {
  std::mt19937 rng(13);
  Stored a = make(WeightType::kF32, 4, 8, rng);
  std::vector<float> x(8, 1.f), y(4);
  std::vector<MatmulOut> parts(kMaxMatmulParts + 1, MatmulOut{&a.m, y.data(), 4});
  EXPECT_ANY_THROW(matmul_parts(x.data(), 1, 8, parts.data(), static_cast<int>(parts.size())));
  EXPECT_ANY_THROW(matmul_parts(x.data(), 1, 8, parts.data(), 0));
  // The row-stable path for M > 8 (one product at a time) checks the count too.
  std::vector<float> x9(9 * 8, 1.f), y9(9 * 4);
  std::vector<MatmulOut> parts9(kMaxMatmulParts + 1, MatmulOut{&a.m, y9.data(), 4});
  const MatmulOptions stable{false, true};
  EXPECT_ANY_THROW(matmul_parts(x9.data(), 9, 8, parts9.data(), static_cast<int>(parts9.size()), stable));
  EXPECT_ANY_THROW(matmul_parts(x9.data(), 9, 8, parts9.data(), 0, stable));
}

}  // namespace
}  // namespace t5g
