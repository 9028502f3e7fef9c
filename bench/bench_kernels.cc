// Kernel microbenchmarks. Counters: GB/s (weight bytes streamed = weight_matrix_bytes, for matmul; bytes read+written for
// conversions), GFLOP/s (2*M*N*K). Roofline: BM_PeakFma (register-only fp32 FMA loop, 1 and 2 threads)
// and BM_MemReadBandwidth (reads a 1 GiB buffer, 1 and 2 threads).
//   ./bench_kernels --benchmark_filter=... --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
// Matmul and the roofline benchmarks use the OpenMP thread count (OMP_NUM_THREADS) unless stated.
#include <benchmark/benchmark.h>
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <tuple>
#include <vector>

#include "kernels/attention.h"
#include "kernels/convert.h"
#include "kernels/cpu_features.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/ops_internal.h"
#include "kernels/roofline.h"
#include "kernels/team.h"
#include "util/bf16.h"

namespace {

using namespace t5g;


// ---------------------------------------------------------------------------------------------
// Roofline. The FMA and read loops are the library's (kernels/roofline.h), the ones `t5g bench` measures with.

void BM_PeakFma(benchmark::State& state) {
  const int threads = static_cast<int>(state.range(0));
  const bool wide = state.range(1) != 0;
  if (static_cast<int>(active_isa()) < static_cast<int>(wide ? Isa::kAvx512 : Isa::kAvx2)) {
    state.SkipWithError("ISA not available");
    return;
  }
  const int64_t iters = 20'000'000;
  const Isa isa = wide ? Isa::kAvx512 : Isa::kAvx2;
  for (auto _ : state) {
    float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    sink += fma_loop(isa, iters);
    benchmark::DoNotOptimize(sink);
  }
  state.counters["GFLOP/s"] = benchmark::Counter(fma_loop_flops(isa, iters) * threads * state.iterations() / 1e9,
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(BM_PeakFma)->ArgNames({"threads", "avx512"})->Args({1, 0})->Args({2, 0})->Args({1, 1})->Args({2, 1})->UseRealTime();

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
  for (auto _ : state) {
    float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : sink)
    {
      const int t = omp_get_thread_num(), T = omp_get_num_threads();
      const int64_t chunk = (n / T) / 32 * 32;
      const int64_t b = t * chunk, e = t == T - 1 ? n : b + chunk;
      sink += read_sum(buf + b, e - b);
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
  std::vector<uint8_t> q;  // Q8 / Q4 data (scales in h)
  std::vector<uint32_t> panels;  // bf16: the matrix packed as at load (WeightMatrix::gemm_panels), on demand
};

WeightStore& weight_store(WeightType t, int64_t N, int64_t K) {
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
    if (is_quantized(t)) {
      std::vector<uint16_t> src(n);
      for (auto& v : src) v = f32_to_bf16(ud(rng));
      s.q.resize(static_cast<size_t>(quant_data_bytes(t, N, K)));
      s.h.resize(static_cast<size_t>(quant_scale_count(N, K)));
      quantize_matrix(WeightMatrix{WeightType::kBF16, N, K, src.data()}, t, s.q.data(), s.h.data());
    } else if (t == WeightType::kF32) {
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
    if (is_quantized(t)) {
      s.w.data = s.q.data();
      s.w.scales = s.h.data();
    }
  }
  return *slot;
}

const WeightMatrix& weights(WeightType t, int64_t N, int64_t K) { return weight_store(t, N, K).w; }

// The bf16 matrix with its gemm_panels packed (as --weight-memory huge-pages does at load), where the
// vdpbf16ps kernels run; else the plain matrix.
WeightMatrix packed_bf16_weights(int64_t N, int64_t K) {
  WeightStore& s = weight_store(WeightType::kBF16, N, K);
  if (!gemm_bf16_available()) return s.w;
  if (s.panels.empty()) {
    s.panels.resize(static_cast<size_t>(bf16_gemm_panel_words(N, K)));
    pack_bf16_gemm_panels(s.w, s.panels.data());
  }
  WeightMatrix w = s.w;
  w.gemm_panels = s.panels.data();
  return w;
}

void BM_Matmul(benchmark::State& state) {
  const int64_t M = state.range(0), N = state.range(1), K = state.range(2);
  const WeightType t = static_cast<WeightType>(state.range(3));
  const bool x_bf16 = state.range(4) != 0, packed = state.range(4) == 2 && t == WeightType::kBF16;
  const WeightMatrix W = packed ? packed_bf16_weights(N, K) : weights(t, N, K);
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
  const double bytes = double(weight_matrix_bytes(W));
  state.counters["GB/s"] = benchmark::Counter(bytes * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * M * N * K * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.SetLabel(std::string(isa_name(active_isa())) + " " + weight_type_name(t) + (x_bf16 ? " x_bf16" : "") +
                 (W.gemm_panels ? " panels" : ""));
}

void matmul_args(benchmark::internal::Benchmark* b) {
  b->ArgNames({"M", "N", "K", "wtype", "xbf16"});
  const int64_t NK[][2] = {{1024, 640}, {256, 640}, {2048, 640}, {262144, 640}, {640, 1024}, {640, 2048}};
  for (int t : {static_cast<int>(WeightType::kBF16), static_cast<int>(WeightType::kF32)})
    for (const auto& nk : NK)
      for (int64_t M : {1, 8, 128, 512, 2048}) b->Args({M, nk[0], nk[1], t, 0});
  // bf16 compute mode (X bf16-representable): takes the AVX512_BF16 path where the CPU has it.
  for (const auto& nk : NK)
    for (int64_t M : {1, 8, 128, 512}) b->Args({M, nk[0], nk[1], static_cast<int>(WeightType::kBF16), 1});
  // ... with the matrix packed into the vdpbf16ps panels at load (xbf16:2), as a bf16 model's decode-step and
  // encoder matrices are under --weight-memory huge-pages; the decode kernels stream the panels.
  for (const auto& nk : NK)
    for (int64_t M : {1, 8, 128}) b->Args({M, nk[0], nk[1], static_cast<int>(WeightType::kBF16), 2});
  // Quantized weights (GB/s counts data + scales): decode shapes at M = 1, 4 (four beams; int8 takes the
  // four-row broadcast kernel there, q4 one broadcast per row) and 8, and GEMM at M = 512.
  const int64_t QNK[][2] = {{262144, 640}, {2048, 640}, {640, 2048}, {1024, 640}};
  for (int t : {static_cast<int>(WeightType::kQ8), static_cast<int>(WeightType::kQ4)})
    for (const auto& nk : QNK)
      for (int64_t M : {1, 4, 8, 512}) b->Args({M, nk[0], nk[1], t, 0});
  // ... and the encoder's GEMM in bf16 compute mode (the weights unpacked to bf16 as the product goes).
  for (int t : {static_cast<int>(WeightType::kQ8), static_cast<int>(WeightType::kQ4)})
    for (const auto& nk : QNK)
      if (nk[0] < 262144)
        for (int64_t M : {128, 512}) b->Args({M, nk[0], nk[1], t, 1});
  // A cache-resident decode shape (64 x 640: 23-82 KB, single-threaded): the kernels' compute ceiling,
  // to compare with their rate on the streamed shapes above.
  for (int t : {static_cast<int>(WeightType::kBF16), static_cast<int>(WeightType::kQ8), static_cast<int>(WeightType::kQ4)})
    b->Args({1, 64, 640, t, 0});
  // Batch 8 on a matrix that stays in L2 (256 x 640: 90-170 KB): the quantized kernels' compute rate at M = 8.
  for (int t : {static_cast<int>(WeightType::kQ8), static_cast<int>(WeightType::kQ4)}) b->Args({8, 256, 640, t, 0});
  // The vision tower's products (4096 patches, hidden 1152, MLP 4304): bf16, the image's GEMM regime.
  const int64_t VNK[][2] = {{1152, 1152}, {4304, 1152}, {1152, 4304}};
  for (const auto& nk : VNK)
    for (int xb : {0, 1}) b->Args({4096, nk[0], nk[1], static_cast<int>(WeightType::kBF16), xb});  // xb 1: a bf16 model's
}
BENCHMARK(BM_Matmul)->Apply(matmul_args)->UseRealTime();

// A decode step's serial work between two products (norms, RoPE, an attention row: 10-20 us a layer),
// stood in for by the calling thread reading an L2-resident buffer for `us` microseconds while the other
// threads wait for the next product. The products measured 11% (int8) to 37% (q4) slower after such
// gaps than back to back (GB/s counts the products' bytes over the whole time, gaps included: gap_s is
// the gaps' share). Prefetching the next product's first 64 KB per thread during the gap was slower.
static std::vector<float> g_gapbuf(32768, 1.f);
static double g_gap_total = 0;
static void gap_us(double us) {
  if (us <= 0) return;
  auto t0 = std::chrono::steady_clock::now();
  volatile float s = 0;
  while (std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() < us)
    for (int i = 0; i < 32768; i += 16) s = s + g_gapbuf[i];
  g_gap_total += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
// A decode step's projections that share an input, over 18 layers of distinct 270m-shaped weights (more
// than the L3 cache, as in decoding): per layer q, k, v of the normed hidden state and gate, up of the
// MLP input, at M = 1. fused:1 runs each group as one matmul_parts schedule, fused:0 one matmul per matrix. gap:10
// puts gap_us(10) after each fused group.
void BM_DecoderProjections(benchmark::State& state) {
  const double gap = state.range(2);
  g_gap_total = 0;
  const WeightType t = static_cast<WeightType>(state.range(0));
  const bool fused = state.range(1) != 0;
  constexpr int kLayers = 18;
  const int64_t H = 640, shapes[5] = {1024, 256, 256, 2048, 2048};
  static std::map<int, std::vector<std::unique_ptr<WeightStore>>> stores;
  auto& st = stores[static_cast<int>(t)];
  if (st.empty()) {
    std::mt19937 rng(5);
    std::uniform_real_distribution<float> ud(-0.05f, 0.05f);
    for (int l = 0; l < kLayers; ++l)
      for (int64_t N : shapes) {
        auto s = std::make_unique<WeightStore>();
        std::vector<uint16_t> src(static_cast<size_t>(N * H));
        for (auto& v : src) v = f32_to_bf16(ud(rng));
        s->w = WeightMatrix{t, N, H, nullptr, nullptr};
        if (is_quantized(t)) {
          s->q.resize(static_cast<size_t>(quant_data_bytes(t, N, H)));
          s->h.resize(static_cast<size_t>(quant_scale_count(N, H)));
          quantize_matrix(WeightMatrix{WeightType::kBF16, N, H, src.data()}, t, s->q.data(), s->h.data());
          s->w.data = s->q.data();
          s->w.scales = s->h.data();
        } else {
          s->h = std::move(src);
          s->w.type = WeightType::kBF16;
          s->w.data = s->h.data();
        }
        st.push_back(std::move(s));
      }
  }
  std::vector<float> x(static_cast<size_t>(H));
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (auto& v : x) v = round_bf16(nd(rng));
  std::vector<float> y[5];
  for (int i = 0; i < 5; ++i) y[i].resize(static_cast<size_t>(shapes[i]));
  double bytes = 0;
  for (const auto& s : st) bytes += double(weight_matrix_bytes(s->w));
  const MatmulOptions opt{true, true};
  for (auto _ : state) {
    for (int l = 0; l < kLayers; ++l) {
      const auto w = [&](int i) -> const WeightMatrix* { return &st[static_cast<size_t>(l * 5 + i)]->w; };
      if (fused) {
        const MatmulOut qkv[] = {{w(0), y[0].data(), 1024}, {w(1), y[1].data(), 256}, {w(2), y[2].data(), 256}};
        matmul_parts(x.data(), 1, H, qkv, 3, opt);
        gap_us(gap);
        const MatmulOut mlp[] = {{w(3), y[3].data(), 2048}, {w(4), y[4].data(), 2048}};
        matmul_parts(x.data(), 1, H, mlp, 2, opt);
        gap_us(gap);
      } else {
        for (int i = 0; i < 5; ++i) matmul(x.data(), 1, H, *w(i), y[i].data(), shapes[i], opt);
      }
    }
    benchmark::ClobberMemory();
  }
  state.counters["GB/s"] = benchmark::Counter(bytes * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.counters["gap_s"] = g_gap_total;
  state.SetLabel(std::string(isa_name(active_isa())) + " " + weight_type_name(t));
}
BENCHMARK(BM_DecoderProjections)
    ->ArgNames({"wtype", "fused", "gap"})
    ->ArgsProduct({{static_cast<int>(WeightType::kBF16), static_cast<int>(WeightType::kQ8), static_cast<int>(WeightType::kQ4)}, {0, 1}, {0, 10}})
    ->UseRealTime();

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

// ---------------------------------------------------------------------------------------------
// Attention (single-threaded: one OpenMP thread) at the model shapes. GFLOP/s counts the two
// products, 4 * rows * visible keys * head_dim per head.
//   vision: L=4096 full, head_dim 72 (one head of SigLIP at 896 px); text: L=2048, head_dim 256,
//   full or the 512 sliding band. Precision 0 = fp32, 1 = bf16.

void BM_Attention(benchmark::State& state) {
  const int64_t L = state.range(0), hd = state.range(1), window = state.range(2);
  const Precision pr = state.range(3) ? Precision::kBF16 : Precision::kF32;
  AttnParams p;
  p.head_dim = hd;
  p.scale = 0.0625f;
  p.precision = pr;
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.f, 1.f);
  // Rows strided as in the model (all heads of a token side by side); one head is computed.
  const int64_t ld = hd == 72 ? 16 * hd : 4 * hd;
  std::vector<float> q(static_cast<size_t>(L * ld)), k(q.size()), v(q.size()), o(q.size());
  for (auto* a : {&q, &k, &v})
    for (auto& x : *a) x = round_one(nd(rng), pr);
  const Band band = window > 0 ? Band{(window + 1) / 2 - 1, window / 2} : Band{L, L};
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  for (auto _ : state) {
    attention_banded(q.data(), ld, k.data(), v.data(), ld, o.data(), ld, L, band, p);
    benchmark::ClobberMemory();
  }
  omp_set_num_threads(saved);
  double visible = 0;
  for (int64_t i = 0; i < L; ++i)
    visible += static_cast<double>(std::min(L, i + band.ahead + 1) - std::max<int64_t>(0, i - band.behind));
  state.counters["GFLOP/s"] =
      benchmark::Counter(4.0 * visible * hd * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_Attention)
    ->ArgNames({"L", "hd", "window", "bf16"})
    ->Args({4096, 72, 0, 1})
    ->Args({128, 256, 0, 1})  // a short input (128 tokens): the encoder's first-token case
    ->Args({512, 256, 0, 1})
    ->Args({2048, 256, 0, 1})
    ->Args({2048, 256, 512, 1})
    ->Args({2048, 256, 0, 0})
    ->Args({8192, 256, 0, 1})  // key spans over 4096: the tiled long-input path
    ->Args({8192, 256, 0, 0})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// One decoder query row (4 heads sharing 1 kv head, head_dim 256, as the 270m/1b) against n cross keys,
// bf16 model precision, all threads; the cross K/V held as fp32 (kv 0), bf16 (1: the bf16 model's cache)
// or int8 with per-row scales (2: --cross-kv int8). GB/s counts the K and V bytes read once per call.
void BM_AttentionRow(benchmark::State& state) {
  const int64_t n = state.range(0), hd = 256, H = 4;
  const int kind = static_cast<int>(state.range(1));
  AttnParams p;
  p.num_heads = H;
  p.num_kv_heads = 1;
  p.head_dim = hd;
  p.scale = 0.0625f;
  p.precision = Precision::kBF16;
  std::mt19937 rng(4);
  std::normal_distribution<float> nd(0.f, 1.f);
  std::vector<float> q(static_cast<size_t>(H * hd)), o(q.size()), k, v, ks, vs;
  std::vector<uint16_t> kb, vb;
  std::vector<int8_t> kq, vq;
  for (auto& x : q) x = round_one(nd(rng), p.precision);
  KvSpan span;
  span.ld = hd;
  span.n = n;
  const size_t ne = static_cast<size_t>(n * hd);
  if (kind == 0) {
    k.resize(ne);
    v.resize(ne);
    for (auto* a : {&k, &v})
      for (auto& x : *a) x = round_one(nd(rng), p.precision);
    span.k.f = k.data();
    span.v.f = v.data();
  } else if (kind == 1) {
    kb.resize(ne);
    vb.resize(ne);
    for (auto* a : {&kb, &vb})
      for (auto& x : *a) x = f32_to_bf16(nd(rng));
    span.k.b = kb.data();
    span.v.b = vb.data();
  } else {
    kq.resize(ne);
    vq.resize(ne);
    ks.assign(static_cast<size_t>(n), 0.02f);
    vs.assign(static_cast<size_t>(n), 0.02f);
    for (auto* a : {&kq, &vq})
      for (auto& x : *a) x = static_cast<int8_t>(static_cast<int>(rng() % 255) - 127);
    span.k = KvRows{nullptr, nullptr, kq.data(), ks.data(), 1};
    span.v = KvRows{nullptr, nullptr, vq.data(), vs.data(), 1};
  }
  // Inside a team, as a decode step calls it (kernels/team.h): long rows split their keys over it.
  run_as_team(omp_get_max_threads(), [&] {
    for (auto _ : state) {
      attention_row(q.data(), &span, 1, o.data(), p);
      benchmark::ClobberMemory();
    }
  });
  const double bytes = 2.0 * n * (kind == 0 ? 4 * hd : kind == 1 ? 2 * hd : hd + 4);
  state.counters["GB/s"] = benchmark::Counter(bytes * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_AttentionRow)
    ->ArgNames({"keys", "kv"})
    ->ArgsProduct({{130, 512, 16384, 131072}, {0, 1, 2}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// One hand-off of a job to the threads and back: an OpenMP parallel region (fork and join) against a job
// posted to a team held open (kernels/team.h, as a decode step runs: ~4 products a layer, each a hand-off).
void BM_ParallelHandoff(benchmark::State& state) {
  const bool team = state.range(0) != 0;
  std::atomic<int> sink{0};
  if (team) {
    run_as_team(omp_get_max_threads(), [&] {
      for (auto _ : state) team_run([&](int m, int) { sink.fetch_add(m, std::memory_order_relaxed); });
    });
  } else {
    for (auto _ : state) {
#pragma omp parallel
      sink.fetch_add(omp_get_thread_num(), std::memory_order_relaxed);
    }
  }
  benchmark::DoNotOptimize(sink.load());
}
BENCHMARK(BM_ParallelHandoff)->ArgNames({"team"})->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();

// Element-wise ops (single-threaded) over 1 Mi elements, bf16 rounding: 0 = gelu_mul (tanh),
// 1 = gelu (erf), 2 = add, 3 = rms_norm (rows of 1152), 4 = layer_norm (rows of 1152), 5 = round_act.
void BM_Elementwise(benchmark::State& state) {
  const int which = static_cast<int>(state.range(0));
  const int64_t n = 1 << 20, H = 1152, rows = n / H;
  std::mt19937 rng(2);
  std::normal_distribution<float> nd(0.f, 2.f);
  std::vector<float> a(static_cast<size_t>(n)), b(a.size()), y(a.size()), g(static_cast<size_t>(H), 1.f);
  for (auto* v : {&a, &b})
    for (auto& x : *v) x = round_one(nd(rng), Precision::kBF16);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  for (auto _ : state) {
    switch (which) {
      case 0: y = a; gelu_mul(y.data(), b.data(), n, true, Precision::kBF16); break;
      case 1: y = a; gelu(y.data(), n, false, Precision::kBF16); break;
      case 2: add(a.data(), b.data(), y.data(), n, Precision::kBF16); break;
      case 3: rms_norm(a.data(), rows, H, H, g.data(), 1e-6f, y.data(), H, Precision::kBF16); break;
      case 4: layer_norm(a.data(), rows, H, g.data(), g.data(), 1e-6f, y.data(), Precision::kBF16); break;
      case 5: y = a; round_act(y.data(), n, Precision::kBF16); break;
    }
    benchmark::ClobberMemory();
  }
  omp_set_num_threads(saved);
  state.counters["Melem/s"] = benchmark::Counter(1e-6 * n * state.iterations(), benchmark::Counter::kIsRate);
  static const char* names[] = {"gelu_mul_tanh", "gelu_erf", "add", "rms_norm", "layer_norm", "round_act"};
  state.SetLabel(names[which]);
}
BENCHMARK(BM_Elementwise)->ArgNames({"op"})->DenseRange(0, 5)->UseRealTime();

// RMSNorm over the 270m's shapes (single-threaded, bf16 rounding): a decode step's q / k heads (4 x 256),
// a hidden row (1 x 640), a 128-token encoder's hidden rows (128 x 640). rows_kernel 0 = avx2::rms_norm_row
// row after row (the previous dispatch), 1 = the dispatched kernel (kern::avx2::rms_norm_rows on x86-64:
// kNormRows rows' sums of squares interleaved, the same bits).
void BM_RmsNorm(benchmark::State& state) {
  if (static_cast<int>(active_isa()) < static_cast<int>(Isa::kAvx2)) {
    state.SkipWithError("ISA not available");
    return;
  }
  const int64_t rows = state.range(0), n = state.range(1);
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.f, 2.f);
  std::vector<float> x(static_cast<size_t>(rows * n)), y(x.size()), g(static_cast<size_t>(n), 1.f);
  for (auto& v : x) v = round_one(nd(rng), Precision::kBF16);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  for (auto _ : state) {
    if (state.range(2) == 0)
      for (int64_t r = 0; r < rows; ++r)
        kern::avx2::rms_norm_row(x.data() + r * n, n, g.data(), 1e-6f, y.data() + r * n, Precision::kBF16);
    else
      rms_norm(x.data(), rows, n, n, g.data(), 1e-6f, y.data(), n, Precision::kBF16);
    benchmark::ClobberMemory();
  }
  omp_set_num_threads(saved);
  state.counters["Melem/s"] = benchmark::Counter(1e-6 * rows * n * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_RmsNorm)
    ->ArgNames({"rows", "n", "rows_kernel"})
    ->ArgsProduct({{1, 4, 128}, {256, 640}, {0, 1}})
    ->UseRealTime();

// Greedy selection over one row of logits (the 270m's 262144), from cache as after the LM head:
// 0 = the scalar loop (kern::scalar), 1 = the dispatched kernel (AVX2 on x86-64).
void BM_ArgmaxRow(benchmark::State& state) {
  const int64_t n = 262144;
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.f, 3.f);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = round_one(nd(rng), Precision::kBF16);
  int64_t sink = 0;
  for (auto _ : state) {
    sink += state.range(0) == 0 ? kern::scalar::argmax_first(x.data(), n) : argmax_first(x.data(), n);
    benchmark::DoNotOptimize(sink);
  }
  state.counters["GB/s"] = benchmark::Counter(4.0 * n * state.iterations(), benchmark::Counter::kIsRate);
  state.SetLabel(state.range(0) == 0 ? "scalar" : "dispatched");
}
BENCHMARK(BM_ArgmaxRow)->ArgNames({"simd"})->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
