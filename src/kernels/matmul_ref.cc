// Reference (plain loop) matrix products, and the default entry points until optimised kernels
// are dispatched.
#include <vector>

#include "kernels/matmul.h"
#include "util/bf16.h"

namespace t5g {

const char* weight_type_name(WeightType t) {
  switch (t) {
    case WeightType::kF32: return "f32";
    case WeightType::kBF16: return "bf16";
    case WeightType::kF16: return "f16";
  }
  return "?";
}

int64_t weight_type_bytes(WeightType t) { return t == WeightType::kF32 ? 4 : 2; }

namespace ref {

static void weight_row_f32(const WeightMatrix& W, int64_t n, float* out) {
  const int64_t K = W.cols;
  switch (W.type) {
    case WeightType::kF32: {
      const float* p = static_cast<const float*>(W.data) + n * K;
      for (int64_t k = 0; k < K; ++k) out[k] = p[k];
      break;
    }
    case WeightType::kBF16: {
      const uint16_t* p = static_cast<const uint16_t*>(W.data) + n * K;
      for (int64_t k = 0; k < K; ++k) out[k] = bf16_to_f32(p[k]);
      break;
    }
    case WeightType::kF16: {
      const uint16_t* p = static_cast<const uint16_t*>(W.data) + n * K;
      for (int64_t k = 0; k < K; ++k) out[k] = f16_to_f32(p[k]);
      break;
    }
  }
}

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

}  // namespace ref

}  // namespace t5g
