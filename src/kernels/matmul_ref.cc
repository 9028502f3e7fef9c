// Reference (plain loop) matrix products, and the default entry points until optimised kernels
// are dispatched.
#include <vector>

#include "kernels/matmul.h"
#include "util/bf16.h"

namespace t5g {

namespace ref {

void matmul(const float* X, int64_t M, int64_t ldx, const WeightMatrix& W, float* Y, int64_t ldy) {
  const int64_t N = W.rows, K = W.cols;
#pragma omp parallel
  {
    std::vector<float> wrow(static_cast<size_t>(K));
#pragma omp for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      weight_row_f32(W, n, wrow.data());
      for (int64_t m = 0; m < M; ++m) {
        const float* x = X + m * ldx;
        float acc = 0.f;
        for (int64_t k = 0; k < K; ++k) acc += x[k] * wrow[k];
        Y[m * ldy + n] = acc;
      }
    }
  }
}

void gemm_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
              bool b_transposed, float* C, int64_t ldc, bool accumulate) {
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      float acc = 0.f;
      for (int64_t k = 0; k < K; ++k) acc += A[m * lda + k] * (b_transposed ? B[n * ldb + k] : B[k * ldb + n]);
      C[m * ldc + n] = accumulate ? C[m * ldc + n] + acc : acc;
    }
  }
}

void gemm_bf16_panels(int64_t M, int64_t N, int64_t Kp, const uint16_t* A, int64_t lda, const uint32_t* Bp, int64_t w,
                      int64_t ldp, float* C, int64_t ldc, bool accumulate) {
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      float acc = accumulate ? C[m * ldc + n] : 0.f;
      for (int64_t kk = 0; kk < Kp; ++kk) {
        const uint32_t b = Bp[(n / w) * ldp + kk * w + n % w];
        acc += bf16_to_f32(A[m * lda + 2 * kk + 1]) * bf16_to_f32(static_cast<uint16_t>(b >> 16));
        acc += bf16_to_f32(A[m * lda + 2 * kk]) * bf16_to_f32(static_cast<uint16_t>(b & 0xffffu));
      }
      C[m * ldc + n] = acc;
    }
  }
}

void gemm_f32_panels(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* Bp, int64_t w,
                     int64_t ldp, float* C, int64_t ldc, bool accumulate) {
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < N; ++n) {
      float acc = 0.f;
      for (int64_t k = 0; k < K; ++k) acc += A[m * lda + k] * Bp[(n / w) * ldp + k * w + n % w];
      C[m * ldc + n] = accumulate ? C[m * ldc + n] + acc : acc;
    }
  }
}

}  // namespace ref

}  // namespace t5g
