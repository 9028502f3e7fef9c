// Internal interface between the dispatching entry points (baseline x86-64 code) and the per-ISA
// translation units (matmul_avx2.cc, matmul_avx512.cc, convert_avx2.cc, convert_avx512.cc), which
// are compiled with their own -m flags. Only plain declarations here: nothing in this header may be
// inline code, since it is included by baseline and ISA translation units alike.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/matmul.h"
#include "kernels/row_shares.h"

namespace t5g::kern {

// Largest M handled by the streaming (decode) kernels; larger products pack the weights (GEMM).
inline constexpr int64_t kDecodeMaxM = 8;
// Largest M of the column-split GEMM, which also runs several products of one X as one schedule.
inline constexpr int64_t kColSplitMaxM = 256;

// Per-thread scratch buffers (64-byte aligned, contents unspecified, grown on demand, kept for the
// life of the thread). `slot` keeps buffers in use at the same time apart. Implemented in baseline code
// (matmul.cc) so no std:: template is instantiated inside the ISA translation units.
enum ScratchSlot : int {
  kScratchX = 0,
  kScratchA = 1,
  kScratchB = 2,
  kScratchGemmA = 3,
  kScratchGemmB = 4,
  kScratchPackedW = 5,  // a whole weight packed for one call (bd_gemm over several row blocks)
  kNumScratch = 6
};
void* scratch(int slot, size_t bytes);

// AVX2 + FMA + F16C kernels.
namespace avx2 {
void matmul(const float* X, int64_t M, int64_t ldx, const WeightMatrix& W, float* Y, int64_t ldy);
// Decode products sharing X: 1 <= M <= 8, parts of one weight type and K, n <= kMaxMatmulParts.
void matmul_parts(const float* X, int64_t M, int64_t ldx, const MatmulOut* parts, int n);
void gemm_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
              bool b_transposed, float* C, int64_t ldc, bool accumulate);
void gemm_f32_panels(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* Bp, int64_t ldp,
                     float* C, int64_t ldc, bool accumulate);
int64_t gemm_panel_width();
void bf16_to_f32(const uint16_t* src, float* dst, int64_t n);
void f16_to_f32(const uint16_t* src, float* dst, int64_t n);
void f32_to_bf16(const float* src, uint16_t* dst, int64_t n);
void round_to_bf16_inplace(float* x, int64_t n);
}  // namespace avx2

// AVX-512 (F, BW, VL, DQ) kernels; `bf16_dot` selects the AVX512_BF16 (vdpbf16ps) path, allowed only
// when the CPU has AVX512_BF16 and the caller guarantees X is bf16-representable.
namespace avx512 {
void matmul(const float* X, int64_t M, int64_t ldx, const WeightMatrix& W, float* Y, int64_t ldy, bool bf16_dot);
// Returns whether the outputs are already rounded as MatmulOut::round_bf16 asks (the vdpbf16ps decode kernels
// round as they store); else the caller rounds them.
bool matmul_parts(const float* X, int64_t M, int64_t ldx, const MatmulOut* parts, int n, bool bf16_dot);
// AVX512_BF16 only (see t5g::pack_bf16_gemm_panels, t5g::gemm_bf16_panels).
void pack_bf16_gemm_panels(const WeightMatrix& W, uint32_t* out);
void gemm_bf16_panels(int64_t M, int64_t N, int64_t Kp, const uint16_t* A, int64_t lda, const uint32_t* Bp,
                      int64_t ldp, float* C, int64_t ldc, bool accumulate);
void gemm_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
              bool b_transposed, float* C, int64_t ldc, bool accumulate);
void gemm_f32_panels(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* Bp, int64_t ldp,
                     float* C, int64_t ldc, bool accumulate);
int64_t gemm_panel_width();
void bf16_to_f32(const uint16_t* src, float* dst, int64_t n);
void f16_to_f32(const uint16_t* src, float* dst, int64_t n);
void f32_to_bf16(const float* src, uint16_t* dst, int64_t n);
void round_to_bf16_inplace(float* x, int64_t n);
}  // namespace avx512

// AVX-512 + AVX512_VNNI: Q8/Q4 products, decode (1 <= M <= kDecodeMaxM) and GEMM (M > kDecodeMaxM), each row
// with the same bits either way (parts of one quantized type and K).
namespace avx512vnni {
void qmatmul_decode(const float* X, int64_t M, int64_t ldx, const MatmulOut* parts, int n);
void qmatmul_gemm(const float* X, int64_t M, int64_t ldx, const MatmulOut* parts, int n);
}  // namespace avx512vnni

}  // namespace t5g::kern
