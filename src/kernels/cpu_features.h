// What this CPU can run, read once with CPUID. Kernels pick their ISA from this at run time.
#pragma once
#include <string>

namespace t5g {

enum class Isa { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512dq = false;
  bool avx512bf16 = false, avx512vnni = false, avxvnni = false;
};

const CpuFeatures& cpu_features();

// The ISA kernels use: the best this CPU supports, lowered (never raised) by the environment
// variable T5G_ISA=scalar|avx2|avx512, so tests and benchmarks can exercise every path.
Isa active_isa();
const char* isa_name(Isa isa);

}  // namespace t5g
