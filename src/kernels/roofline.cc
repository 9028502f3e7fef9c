#include "kernels/roofline.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "kernels/cpu_features.h"

namespace t5g {

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kChains = 12;  // independent FMA chains: more than latency (4) x FMA pipes (2)

__attribute__((target("avx2,fma"), noinline)) float fma_loop_avx2(int64_t iters) {
  __m256 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm256_set1_ps(0.001f * i);
  const __m256 b = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = _mm256_fmadd_ps(acc[i], b, c);
  }
  __m256 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm256_add_ps(s, acc[i]);
  float out[8];
  _mm256_storeu_ps(out, s);
  return out[0];
}

__attribute__((target("avx512f"), noinline)) float fma_loop_avx512(int64_t iters) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(0.001f * i);
  const __m512 b = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_fmadd_ps(acc[i], b, c);
  }
  __m512 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm512_add_ps(s, acc[i]);
  float out[16];
  _mm512_storeu_ps(out, s);
  return out[0];
}

}  // namespace

float fma_loop(Isa isa, int64_t iters) { return isa == Isa::kAvx512 ? fma_loop_avx512(iters) : fma_loop_avx2(iters); }

double fma_loop_flops(Isa isa, int64_t iters) {
  return 2.0 * (isa == Isa::kAvx512 ? 16 : 8) * kChains * static_cast<double>(iters);
}

double measure_fma_peak_gflops(double seconds) {
  const Isa isa = active_isa();
  if (isa == Isa::kScalar) return 0;
  int64_t iters = 1 << 20;
  double best = 0;
  for (int rep = 0; rep < 10; ++rep) {
    auto t = Clock::now();
    int threads = 1;
    float sink = 0;
#pragma omp parallel reduction(+ : sink)
    {
#pragma omp single
      threads = omp_get_num_threads();
      sink += fma_loop(isa, iters);
    }
    const double s = std::chrono::duration<double>(Clock::now() - t).count();
    if (sink == 42.f) std::fputc(' ', stderr);  // keeps the loops
    best = std::max(best, fma_loop_flops(isa, iters) * threads / s / 1e9);
    if (s < seconds / 4) iters *= 2;
  }
  return best;
}

double measure_read_bandwidth_gbs() {
  const size_t n = (512ull << 20) / sizeof(uint64_t);
  std::vector<uint64_t> buf(n, 1);
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    auto t = Clock::now();
    uint64_t sum = 0;
#pragma omp parallel for reduction(+ : sum) schedule(static)
    for (size_t i = 0; i < n; ++i) sum += buf[i];
    const double s = std::chrono::duration<double>(Clock::now() - t).count();
    if (sum == 42) std::fputc(' ', stderr);  // keeps the loop
    best = std::max(best, (n * sizeof(uint64_t)) / s / 1e9);
  }
  return best;
}

}  // namespace t5g
