// Matrix products. The model's linear layers go through matmul(); attention's small dense
// products through gemm_f32(). Every product accumulates in fp32, as the reference does.
#pragma once
#include <cstdint>

#include "kernels/cpu_features.h"

namespace t5g {

// How a weight matrix is stored. F32/BF16/F16 are checkpoint dtypes used in place from the mmap;
// quantized formats are added beside them.
enum class WeightType { kF32, kBF16, kF16 };

const char* weight_type_name(WeightType t);
int64_t weight_type_bytes(WeightType t);

// A weight matrix in nn.Linear layout: `rows` = out_features, `cols` = in_features, row-major,
// rows packed densely (row stride = cols elements).
struct WeightMatrix {
  WeightType type = WeightType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  const void* data = nullptr;
};

struct MatmulOptions {
  // The caller guarantees X holds bf16-representable values (bf16 compute mode), so kernels may
  // feed X to bf16 dot-product instructions without changing its values.
  bool x_is_bf16 = false;
  // Each row's result must not depend on how many rows are multiplied together (a decoder batch
  // row must equal the same request run alone): rows go through the decode path in groups of at
  // most kRowStableGroup, whose per-row summation order is independent of M.
  bool row_stable = false;
};
inline constexpr int64_t kRowStableGroup = 8;

// Y[m, n] = sum_k X[m, k] * W[n, k] for m < M, n < W.rows, k < W.cols (Y = X·Wᵀ).
// X: fp32, row stride ldx >= W.cols. Y: fp32, row stride ldy >= W.rows. Multithreaded (OpenMP).
// W is only read (it may be an mmap'd checkpoint). Results are bit-identical for any thread count:
// each output's K reduction order depends only on K, M (M <= 8 streams W; larger M packs it into
// cache blocks) and the ISA, never on the thread count. Kernels: src/kernels/matmul_impl.inl.
void matmul(const float* X, int64_t M, int64_t ldx, const WeightMatrix& W, float* Y, int64_t ldy,
            const MatmulOptions& opt = {});

// Dense fp32 C[M,N] (+)= A[M,K] · op(B), op(B) = Bᵀ (B is [N,K], ldb) when b_transposed, else B ([K,N], ldb).
// accumulate=false overwrites C. Single-threaded: callers parallelise over independent blocks.
// Any sizes and strides; uses per-thread scratch (a transposed / copied B micro-panel), no allocation
// after the first calls on a thread.
void gemm_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
              bool b_transposed, float* C, int64_t ldc, bool accumulate);

// The same products computed by the kernels of a given ISA (lowered to active_isa() if the CPU or
// T5G_ISA does not allow it): lets tests and benchmarks exercise every code path on one machine.
// With Isa::kAvx512, opt.x_is_bf16 and bf16 weights, the AVX512_BF16 (vdpbf16ps) kernels are used
// when the CPU has them.
void matmul_isa(Isa isa, const float* X, int64_t M, int64_t ldx, const WeightMatrix& W, float* Y, int64_t ldy,
                const MatmulOptions& opt = {});
void gemm_f32_isa(Isa isa, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                  int64_t ldb, bool b_transposed, float* C, int64_t ldc, bool accumulate);

namespace ref {
// Plain loops: the reference the optimised kernels are tested against.
void matmul(const float* X, int64_t M, int64_t ldx, const WeightMatrix& W, float* Y, int64_t ldy);
void gemm_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
              bool b_transposed, float* C, int64_t ldc, bool accumulate);
}  // namespace ref

}  // namespace t5g
