// AVX2 + FMA + F16C matrix products. Compiled with -mavx2 -mfma -mf16c (see CMakeLists.txt); called only
// when active_isa() >= kAvx2.
#include <immintrin.h>
#include <omp.h>

#include <cstdint>
#include <cstring>

#include "kernels/matmul_internal.h"

namespace t5g::kern::avx2 {
namespace {

struct V {
  static constexpr int L = 8;
  using F = __m256;
  using Mask = __m256i;
  static F zero() { return _mm256_setzero_ps(); }
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, F v) { _mm256_storeu_ps(p, v); }
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F fma(F a, F b, F c) { return _mm256_fmadd_ps(a, b, c); }
  static F bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static Mask mask(int n) { return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)); }
  static F loadm(const float* p, Mask m) { return _mm256_maskload_ps(p, m); }
  static void storem(float* p, Mask m, F v) { _mm256_maskstore_ps(p, m, v); }
  static float hsum(F v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    return _mm_cvtss_f32(s);
  }
  static F bf16_even(const uint16_t* p) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)), 16));
  }
  static F bf16_odd(const uint16_t* p) {
    return _mm256_castsi256_ps(_mm256_and_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)),
                                                _mm256_set1_epi32(static_cast<int>(0xffff0000u))));
  }
  static F f16(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
};

constexpr int kMR = 6;
constexpr int kNV = 2;

#include "kernels/matmul_impl.inl"

}  // namespace

void matmul(const float* X, int64_t M, int64_t ldx, const WeightMatrix& W, float* Y, int64_t ldy) {
  matmul_f32acc(X, M, ldx, W, Y, ldy);
}

void matmul_parts(const float* X, int64_t M, int64_t ldx, const MatmulOut* parts, int n) {
  if (M <= kGemvMaxM) matmul_parts_decode(X, M, ldx, parts, n);
  else matmul_parts_colsplit(X, M, ldx, parts, n);
}

void gemm_f32(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
              bool b_transposed, float* C, int64_t ldc, bool accumulate) {
  gemm_f32_impl(M, N, K, A, lda, B, ldb, b_transposed ? BLayout::kTransposed : BLayout::kRows, C, ldc, accumulate);
}

void gemm_f32_panels(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* Bp, int64_t ldp,
                     float* C, int64_t ldc, bool accumulate) {
  gemm_f32_impl(M, N, K, A, lda, Bp, ldp, BLayout::kPanels, C, ldc, accumulate);
}

int64_t gemm_panel_width() { return kNR; }

}  // namespace t5g::kern::avx2
