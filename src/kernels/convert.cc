// Dispatch of the array conversions, and their scalar versions.
#include "kernels/convert.h"

#include "kernels/matmul_internal.h"
#include "util/bf16.h"

namespace t5g {

static Isa conv_isa(Isa isa) {
  const Isa best = active_isa();
  return static_cast<int>(isa) > static_cast<int>(best) ? best : isa;
}

void convert_bf16_to_f32_isa(Isa isa, const uint16_t* src, float* dst, int64_t n) {
  switch (conv_isa(isa)) {
    case Isa::kAvx512: kern::avx512::bf16_to_f32(src, dst, n); return;
    case Isa::kAvx2: kern::avx2::bf16_to_f32(src, dst, n); return;
    case Isa::kScalar: break;
  }
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(src[i]);
}

void convert_f16_to_f32_isa(Isa isa, const uint16_t* src, float* dst, int64_t n) {
  switch (conv_isa(isa)) {
    case Isa::kAvx512: kern::avx512::f16_to_f32(src, dst, n); return;
    case Isa::kAvx2: kern::avx2::f16_to_f32(src, dst, n); return;
    case Isa::kScalar: break;
  }
  for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(src[i]);
}

void convert_f32_to_bf16_isa(Isa isa, const float* src, uint16_t* dst, int64_t n) {
  switch (conv_isa(isa)) {
    case Isa::kAvx512: kern::avx512::f32_to_bf16(src, dst, n); return;
    case Isa::kAvx2: kern::avx2::f32_to_bf16(src, dst, n); return;
    case Isa::kScalar: break;
  }
  for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_bf16(src[i]);
}

void round_to_bf16_inplace_isa(Isa isa, float* x, int64_t n) {
  switch (conv_isa(isa)) {
    case Isa::kAvx512: kern::avx512::round_to_bf16_inplace(x, n); return;
    case Isa::kAvx2: kern::avx2::round_to_bf16_inplace(x, n); return;
    case Isa::kScalar: break;
  }
  for (int64_t i = 0; i < n; ++i) x[i] = round_bf16(x[i]);
}

void convert_bf16_to_f32(const uint16_t* src, float* dst, int64_t n) { convert_bf16_to_f32_isa(active_isa(), src, dst, n); }
void convert_f16_to_f32(const uint16_t* src, float* dst, int64_t n) { convert_f16_to_f32_isa(active_isa(), src, dst, n); }
void convert_f32_to_bf16(const float* src, uint16_t* dst, int64_t n) { convert_f32_to_bf16_isa(active_isa(), src, dst, n); }
void round_to_bf16_inplace(float* x, int64_t n) { round_to_bf16_inplace_isa(active_isa(), x, n); }

}  // namespace t5g
