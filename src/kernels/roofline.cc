#include "kernels/roofline.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "kernels/cpu_features.h"
#include "kernels/matmul.h"

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

// vdpbf16ps: 16 lanes x 2 products x 2 flops per instruction.
__attribute__((target("avx512f,avx512bf16"), noinline)) float bf16_dot_loop(int64_t iters) {
  __m512 acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_ps(0.001f * i);
  const __m512bh a = (__m512bh)_mm512_set1_epi16(0x3f80), b = (__m512bh)_mm512_set1_epi16(0x3f7f);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_dpbf16_ps(acc[i], a, b);
  }
  __m512 s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm512_add_ps(s, acc[i]);
  float out[16];
  _mm512_storeu_ps(out, s);
  return out[0];
}

// vpdpbusd: 16 lanes x 4 byte products x 2 ops (multiply, add) per instruction.
__attribute__((target("avx512f,avx512vnni"), noinline)) float int8_dot_loop(int64_t iters) {
  __m512i acc[kChains];
  for (int i = 0; i < kChains; ++i) acc[i] = _mm512_set1_epi32(i);
  const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < kChains; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], a, b);
  }
  __m512i s = acc[0];
  for (int i = 1; i < kChains; ++i) s = _mm512_add_epi32(s, acc[i]);
  int32_t out[16];
  _mm512_storeu_si512(out, s);
  return static_cast<float>(out[0]);
}

template <class Loop>
double best_parallel_gflops(Loop loop, double flops_per_iter, double seconds) {
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
      sink += loop(iters);
    }
    const double s = std::chrono::duration<double>(Clock::now() - t).count();
    if (sink == 42.f) std::fputc(' ', stderr);  // keeps the loops
    best = std::max(best, flops_per_iter * static_cast<double>(iters) * threads / s / 1e9);
    if (s < seconds / 4) iters *= 2;
  }
  return best;
}

}  // namespace

double measure_bf16_dot_peak_gflops(double seconds) {
  if (!gemm_bf16_available()) return 0;
  return best_parallel_gflops([](int64_t iters) { return bf16_dot_loop(iters); }, 2.0 * 2 * 16 * kChains, seconds);
}

double measure_int8_dot_peak_gops(double seconds) {
  if (active_isa() != Isa::kAvx512 || !cpu_features().avx512vnni) return 0;
  return best_parallel_gflops([](int64_t iters) { return int8_dot_loop(iters); }, 2.0 * 4 * 16 * kChains, seconds);
}

float fma_loop(Isa isa, int64_t iters) { return isa == Isa::kAvx512 ? fma_loop_avx512(iters) : fma_loop_avx2(iters); }

double fma_loop_flops(Isa isa, int64_t iters) {
  return 2.0 * (isa == Isa::kAvx512 ? 16 : 8) * kChains * static_cast<double>(iters);
}

double measure_fma_peak_gflops(double seconds) {
  const Isa isa = active_isa();
  if (isa == Isa::kScalar) return 0;
  return best_parallel_gflops([isa](int64_t iters) { return fma_loop(isa, iters); }, fma_loop_flops(isa, 1), seconds);
}

__attribute__((target("avx2"), noinline)) static float read_sum_avx2(const float* p, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + i + 24));
  }
  float out[8];
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  float s = out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
  for (; i < n; ++i) s += p[i];
  return s;
}

static float read_sum_scalar(const float* p, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += p[i];
  return s;
}

float read_sum(const float* p, int64_t n) {
  return active_isa() != Isa::kScalar ? read_sum_avx2(p, n) : read_sum_scalar(p, n);
}

// The best of several streaming reads of 512 MiB (far beyond the caches), each thread reading one
// contiguous part with vector loads: the most a weight stream can get. Ordinary 4 KiB pages, like the
// mapped checkpoint.
double measure_read_bandwidth_gbs() {
  const int64_t n = (int64_t(512) << 20) / int64_t(sizeof(float));
  std::vector<float> buf(static_cast<size_t>(n));
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) buf[static_cast<size_t>(i)] = 1e-9f;
  double best = 0;
  for (int rep = 0; rep < 5; ++rep) {
    auto t = Clock::now();
    float sink = 0;
#pragma omp parallel reduction(+ : sink)
    {
      const int64_t T = omp_get_num_threads(), i = omp_get_thread_num();
      const int64_t b = n * i / T, e = n * (i + 1) / T;
      sink += read_sum(buf.data() + b, e - b);
    }
    const double s = std::chrono::duration<double>(Clock::now() - t).count();
    if (sink == 42.f) std::fputc(' ', stderr);  // keeps the loop
    best = std::max(best, double(n) * sizeof(float) / s / 1e9);
  }
  return best;
}

}  // namespace t5g
