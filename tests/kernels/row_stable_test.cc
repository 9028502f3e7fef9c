// MatmulOptions::row_stable: a row's result is bitwise the same whatever the number of rows
// multiplied with it — what makes a decoder batch row equal the same request run alone.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "kernels/matmul.h"
#include "util/bf16.h"

namespace t5g {
namespace {

TEST(MatmulRowStable, RowsIndependentOfBatchSize) {
  std::mt19937 g(7);
  std::normal_distribution<float> d;
  const int64_t N = 300, K = 640, maxM = 21;
  std::vector<uint16_t> w(static_cast<size_t>(N * K));
  for (auto& x : w) x = f32_to_bf16(d(g) * 0.05f);
  WeightMatrix W{WeightType::kBF16, N, K, w.data()};
  std::vector<float> X(static_cast<size_t>(maxM * K));
  for (auto& x : X) x = round_bf16(d(g));
  for (bool bf16 : {false, true}) {
    std::vector<float> alone(static_cast<size_t>(maxM * N));
    for (int64_t m = 0; m < maxM; ++m)
      matmul(X.data() + m * K, 1, K, W, alone.data() + m * N, N, MatmulOptions{bf16, true});
    for (int64_t M : {2, 3, 5, 8, 9, 16, 17, 21}) {
      std::vector<float> Y(static_cast<size_t>(M * N));
      matmul(X.data(), M, K, W, Y.data(), N, MatmulOptions{bf16, true});
      for (int64_t i = 0; i < M * N; ++i) ASSERT_EQ(Y[i], alone[i]) << "M=" << M << " element " << i;
    }
  }
}

}  // namespace
}  // namespace t5g
