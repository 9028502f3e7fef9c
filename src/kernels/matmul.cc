// Entry points of the matrix products: pick the kernel for this CPU and the weight format.
#include "kernels/matmul.h"

namespace t5g {

void matmul(const float* X, int64_t M, int64_t ldx, const WeightMatrix& W, float* Y, int64_t ldy,
            const MatmulOptions& opt) {
  (void)opt;
  ref::matmul(X, M, ldx, W, Y, ldy);
}

void gemm_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
              bool b_transposed, float* C, int64_t ldc, bool accumulate) {
  ref::gemm_f32(M, N, K, A, lda, B, ldb, b_transposed, C, ldc, accumulate);
}

}  // namespace t5g
