// The machine's limits that speed is reported against: fp32 FMA peak (what a GEMM of bf16 weights
// reaches on CPUs without AVX512_BF16, after widening), the vdpbf16ps peak where AVX512_BF16 runs a
// bf16 model's GEMMs, and memory read bandwidth. All use the
// calling thread's OpenMP thread count.
#pragma once
#include <cstdint>

#include "kernels/cpu_features.h"

namespace t5g {

// One thread's register-only FMA loop: `iters` iterations over independent chains of `isa`'s vectors
// (kAvx2 or kAvx512; the caller checks the CPU has it). Returns a value depending on every FMA, for the
// caller to consume so the loop is kept; fma_loop_flops is the work it did.
float fma_loop(Isa isa, int64_t iters);
double fma_loop_flops(Isa isa, int64_t iters);

// Register-only fused multiply-add loop on every thread, in GFLOP/s (2 flops per FMA lane), for the
// widest vector ISA active_isa() allows.
double measure_fma_peak_gflops(double seconds = 0.3);

// Register-only vdpbf16ps loop on every thread, in GFLOP/s (4 flops per fp32 lane: two products and
// their adds): the compute peak of a bf16 model's GEMMs where gemm_bf16_available() (matmul.h), the
// condition under which they run on vdpbf16ps; 0 elsewhere.
double measure_bf16_dot_peak_gflops(double seconds = 0.3);

// Register-only vpdpbusd loop on every thread, in GOP/s (2 ops per byte product: multiply and add): the
// compute peak of int8 / q4 models' GEMMs where they run on AVX512_VNNI (matmul.h); 0 elsewhere.
double measure_int8_dot_peak_gops(double seconds = 0.3);

// Sum of n floats with independent vector chains (AVX2 where active_isa() allows): one thread's
// streaming read, limited by the loads, not the adds.
float read_sum(const float* p, int64_t n);

// Best of a few parallel passes of read_sum over a 512 MiB buffer, in GB/s.
double measure_read_bandwidth_gbs();

}  // namespace t5g
