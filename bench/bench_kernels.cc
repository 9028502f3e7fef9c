// Kernel microbenchmarks. Counters: GB/s (weight bytes streamed, for matmul; bytes read+written for
// conversions), GFLOP/s (2*M*N*K). Roofline: BM_PeakFma (register-only fp32 FMA loop, 1 and 2 threads)
// and BM_MemReadBandwidth (reads a 1 GiB buffer, 1 and 2 threads).
//   ./bench_kernels --benchmark_filter=... --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// Matmul and the roofline benchmarks use the OpenMP thread count (OMP_NUM_THREADS) unless stated.
#include <benchmark/benchmark.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <tuple>
#include <vector>

#include "kernels/convert.h"
#include "kernels/cpu_features.h"
#include "kernels/matmul.h"
#include "util/bf16.h"

namespace {

using namespace t5g;


// ---------------------------------------------------------------------------------------------
// Roofline. The loops are compiled for the ISA with a target attribute (no header code is involved).

constexpr int kChains = 12;  // independent FMA chains: > latency (4) x pipes (2)

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

void BM_PeakFma(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const bool wide = state.range(1) != 0;
  if (static_cast<int>(active_isa()) < static_cast<int>(wide ? Isa::kAvx512 : Isa::kAvx2)) {
    state.SkipWithError("ISA not available");
    return;
  }
  const int64_t iters = 20'000'000;
  const int lanes = wide ? 16 : 8;
  for (auto _ : state) {
    float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += wide ? fma_loop_avx512(iters) : fma_loop_avx2(iters);
    benchmark::DoNotOptimize(sink);
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * lanes * kChains * double(iters) * threads * state.iterations() / 1e9,
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(BM_PeakFma)->ArgNames({"threads", "avx512"})->Args({1, 0})->Args({2, 0})->Args({1, 1})->Args({2, 1})->UseRealTime();

__attribute__((target("avx2"), noinline)) float read_sum_avx2(const float* p, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t i = 0; i + 32 <= n; i += 32) {
    a0 = _mm256_add_ps(a0, _mm256_load_ps(p + i));
    a1 = _mm256_add_ps(a1, _mm256_load_ps(p + i + 8));
    a2 = _mm256_add_ps(a2, _mm256_load_ps(p + i + 16));
    a3 = _mm256_add_ps(a3, _mm256_load_ps(p + i + 24));
  }
  float out[8];
  _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}

float read_sum_scalar(const float* p, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += p[i];
  return s;
}

void BM_MemReadBandwidth(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  constexpr int64_t kBytes = int64_t(1) << 30;
  constexpr int64_t n = kBytes / 4;
  static float* buf = [] {
    float* p = static_cast<float*>(std::aligned_alloc(64, kBytes));
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) p[i] = 1e-9f;
    return p;
  }();
  const bool avx2 = static_cast<int>(active_isa()) >= static_cast<int>(Isa::kAvx2);
  for (auto _ : state) {
    float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
      const int t = omp_get_thread_num(), T = omp_get_num_threads();
      const int64_t chunk = (n / T) / 32 * 32;
      const int64_t b = t * chunk, e = t == T - 1 ? n : b + chunk;
      sink += avx2 ? read_sum_avx2(buf + b, e - b) : read_sum_scalar(buf + b, e - b);
    }
    benchmark::DoNotOptimize(sink);
  }
  state.counters["GB/s"] = benchmark::Counter(double(kBytes) * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MemReadBandwidth)->ArgNames({"threads"})->Arg(1)->Arg(2)->UseRealTime()->MinTime(1.0);

// ---------------------------------------------------------------------------------------------
// matmul at the 270m shapes.

struct WeightStore {
  WeightMatrix w;
  std::vector<uint16_t> h;
  std::vector<float> f;
};

const WeightMatrix& weights(WeightType t, int64_t N, int64_t K) {
  static std::map<std::tuple<int, int64_t, int64_t>, std::unique_ptr<WeightStore>> cache;
  auto& slot = cache[{static_cast<int>(t), N, K}];
  if (!slot) {
    // Keep one big matrix alive at a time (the LM head is 335 MB in bf16, 671 MB in f32).
    if (N * K > (int64_t(1) << 26)) {
      for (auto it = cache.begin(); it != cache.end();) {
        if (it->second && it->second->w.rows * it->second->w.cols > (int64_t(1) << 26)) it = cache.erase(it);
        else ++it;
      }
    }
    slot = std::make_unique<WeightStore>();
    auto& s = *slot;
    const size_t n = static_cast<size_t>(N * K);
    std::mt19937 rng(11);
    std::uniform_real_distribution<float> ud(-0.05f, 0.05f);
    if (t == WeightType::kF32) {
      s.f.resize(n);
      for (auto& v : s.f) v = ud(rng);
    } else {
      s.h.resize(n);
      for (auto& v : s.h) v = t == WeightType::kBF16 ? f32_to_bf16(ud(rng)) : f32_to_f16(ud(rng));
    }
    s.w.type = t;
    s.w.rows = N;
    s.w.cols = K;
    s.w.data = t == WeightType::kF32 ? static_cast<const void*>(s.f.data()) : static_cast<const void*>(s.h.data());
  }
  return slot->w;
}

void BM_Matmul(benchmark::State& state) {
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  const WeightType t = static_cast<WeightType>(state.range(3));
  const bool x_bf16 = state.range(4) != 0;
  const WeightMatrix& W = weights(t, N, K);
  std::vector<float> x(static_cast<size_t>(M * K));
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (auto& v : x) v = x_bf16 ? round_bf16(nd(rng)) : nd(rng);
  std::vector<float> y(static_cast<size_t>(M * N));
  MatmulOptions opt;
  opt.x_is_bf16 = x_bf16;
  for (auto _ : state) {
    matmul(x.data(), M, K, W, y.data(), N, opt);
    benchmark::ClobberMemory();
  }
  const double bytes = double(N) * K * weight_type_bytes(t);
  state.counters["GB/s"] = benchmark::Counter(bytes * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(std::string(isa_name(active_isa())) + " " + weight_type_name(t) + (x_bf16 ? " x_bf16" : ""));
}

void matmul_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "N", "K", "wtype", "xbf16"});
  const int64_t NK[][2] = {{1024, 640}, {256, 640}, {2048, 640}, {262144, 640}, {640, 1024}, {640, 2048}};
  for (int t : {static_cast<int>(WeightType::kBF16), static_cast<int>(WeightType::kF32)})
    for (const auto& nk : NK)
      for (int64_t M : {1, 8, 512, 2048}) b->Args({M, nk[0], nk[1], t, 0});
  // bf16 compute mode (X bf16-representable): takes the AVX512_BF16 path where the CPU has it.
  for (const auto& nk : NK)
    for (int64_t M : {1, 8, 512}) b->Args({M, nk[0], nk[1], static_cast<int>(WeightType::kBF16), 1});
}
BENCHMARK(BM_Matmul)->Apply(matmul_args)->UseRealTime();

// ---------------------------------------------------------------------------------------------
// gemm_f32 at attention tile shapes (single-threaded): QKᵀ ([64 x hd] · [kv x hd]ᵀ) and PV ([64 x kv] · [kv x hd]).

void BM_GemmF32(benchmark::State& state) {
  const int64_t hd = state.range(0), kv = state.range(1);
  const bool qk = state.range(2) != 0;
  const int64_t M = 64, N = qk ? kv : hd, K = qk ? hd : kv;
  std::vector<float> A(static_cast<size_t>(M * K), 0.5f), B(static_cast<size_t>(N * K), 0.25f), C(static_cast<size_t>(M * N));
  for (auto _ : state) {
    gemm_f32(M, N, K, A.data(), K, B.data(), qk ? K : N, qk, C.data(), N, false);
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_GemmF32)->ArgNames({"hd", "kv", "qk"})->ArgsProduct({{64, 128, 256}, {64, 256, 512}, {1, 0}});

// ---------------------------------------------------------------------------------------------
// Conversions (single-threaded), 1 Mi elements (in L2/L3) and 64 Mi elements (DRAM).

void BM_Convert(benchmark::State& state) {
  const int which = static_cast<int>(state.range(0));
  const int64_t n = state.range(1);
  std::vector<float> f(static_cast<size_t>(n), 1.5f);
  std::vector<uint16_t> h(static_cast<size_t>(n), 0x3f80);
  for (auto _ : state) {
    switch (which) {
      case 0: convert_bf16_to_f32(h.data(), f.data(), n); break;
      case 1: convert_f16_to_f32(h.data(), f.data(), n); break;
      case 2: convert_f32_to_bf16(f.data(), h.data(), n); break;
      case 3: round_to_bf16_inplace(f.data(), n); break;
    }
    benchmark::ClobberMemory();
  }
  const double bytes = which == 3 ? 8.0 * n : 6.0 * n;
  state.counters["GB/s"] = benchmark::Counter(bytes * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  static const char* names[] = {"bf16_to_f32", "f16_to_f32", "f32_to_bf16", "round_to_bf16_inplace"};
  state.SetLabel(names[which]);
}
BENCHMARK(BM_Convert)->ArgNames({"op", "n"})->ArgsProduct({{0, 1, 2, 3}, {1 << 20, 1 << 26}});

}  // namespace

BENCHMARK_MAIN();
