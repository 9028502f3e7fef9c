// Shared by the matmul tests: a decode product's rows do not depend on the other rows of the batch.
#pragma once
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/matmul.h"

namespace t5g {

// For M = 2..8, X rows [m0, m0 + M) with m0 = 0 and m0 = maxM - M: each row of Y is bitwise what matmul_isa
// gives for that row of X alone (x holds maxM rows of W.cols values). `what` names the case in a failure.
inline void expect_decode_rows_independent(Isa isa, const WeightMatrix& W, const std::vector<float>& x, int64_t maxM,
                                           const std::string& what) {
  const int64_t N = W.rows, K = W.cols;
  std::vector<float> alone(static_cast<size_t>(maxM * N));
  for (int64_t m = 0; m < maxM; ++m) matmul_isa(isa, x.data() + m * K, 1, K, W, alone.data() + m * N, N);
  for (int64_t M = 2; M <= 8; ++M)
    for (int64_t m0 : {int64_t(0), maxM - M}) {
      std::vector<float> y(static_cast<size_t>(M * N));
      matmul_isa(isa, x.data() + m0 * K, M, K, W, y.data(), N);
      ASSERT_EQ(0, std::memcmp(y.data(), alone.data() + m0 * N, y.size() * 4))
          << what << " " << isa_name(isa) << " N=" << N << " K=" << K << " M=" << M << " first row " << m0;
    }
}

}  // namespace t5g
