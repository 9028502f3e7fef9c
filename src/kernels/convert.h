// Array conversions between fp32 and the 16-bit float formats, vectorised and dispatched on
// active_isa(). Results are bit-identical to the scalar functions of util/bf16.h on every input
// (round to nearest even; NaN kept, made quiet, as f32_to_bf16 does). Single-threaded: callers
// parallelise over independent ranges.
#pragma once
#include <cstdint>

#include "kernels/cpu_features.h"

namespace t5g {

void convert_bf16_to_f32(const uint16_t* src, float* dst, int64_t n);
void convert_f16_to_f32(const uint16_t* src, float* dst, int64_t n);
void convert_f32_to_bf16(const float* src, uint16_t* dst, int64_t n);
// x[i] = round_bf16(x[i]): rounds fp32 values to the nearest bf16, keeping them in fp32.
void round_to_bf16_inplace(float* x, int64_t n);

// The same with the kernels of a given ISA (lowered to active_isa()), for tests and benchmarks.
void convert_bf16_to_f32_isa(Isa isa, const uint16_t* src, float* dst, int64_t n);
void convert_f16_to_f32_isa(Isa isa, const uint16_t* src, float* dst, int64_t n);
void convert_f32_to_bf16_isa(Isa isa, const float* src, uint16_t* dst, int64_t n);
void round_to_bf16_inplace_isa(Isa isa, float* x, int64_t n);

}  // namespace t5g
