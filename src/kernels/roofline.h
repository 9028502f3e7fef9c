// The machine's limits that speed is reported against: fp32 FMA peak (what a GEMM of bf16 weights
// reaches on CPUs without AVX512_BF16, after widening) and memory read bandwidth. Both use the
// calling thread's OpenMP thread count.
#pragma once

namespace t5g {

// Register-only fused multiply-add loop on every thread, in GFLOP/s (2 flops per FMA lane), for the
// widest vector ISA active_isa() allows.
double measure_fma_peak_gflops(double seconds = 0.3);

// Best of a few parallel passes reading a 512 MiB buffer, in GB/s.
double measure_read_bandwidth_gbs();

}  // namespace t5g
