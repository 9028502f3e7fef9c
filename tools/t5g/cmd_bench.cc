// t5g bench: load time, encoder throughput, time to first token, decode throughput and peak
// memory, printed as JSON with the roofline bound each number is measured against.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>
#include <random>

#include <omp.h>

#include "commands.h"
#include "common.h"
#include "kernels/cpu_features.h"
#include "kernels/matmul.h"
#include "kernels/roofline.h"
#include "model/encoder.h"
#include "model/model.h"
#include "model/vision.h"
#include "runtime/generate.h"
#include "util/error.h"

namespace t5g::cli {

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// The best of kRooflineSamples calls of measure() (all of them into `samples`, a JSON array).
constexpr int kRooflineSamples = 3;
template <class F>
double best_of_samples(F&& measure, nlohmann::ordered_json& samples) {
  samples = nlohmann::ordered_json::array();
  double best = 0.0;
  for (int i = 0; i < kRooflineSamples; ++i) {
    const double v = measure();
    samples.push_back(v);
    best = std::max(best, v);
  }
  return best;
}

struct BenchArgs {
  ModelArgs m;
  std::string encoder_lengths = "128,512,2048";
  std::string decode_batches = "1,8";
  int64_t decode_tokens = 32;
  int repeats = 3;
  bool no_image = false;
  int image_runs = 2;
  std::string long_lengths;
};

// Ordinary token ids (no special or image ids) for a synthetic input.
std::vector<int32_t> random_ids(int64_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_int_distribution<int32_t> d(10, static_cast<int32_t>(std::min<int64_t>(vocab - 1, 250000)));
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& x : ids) x = d(g);
  if (n > 0) ids[0] = 2;
  return ids;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Floating-point operations of the text encoder over L tokens: the projections and MLP (2 flops per
// multiply-add) and the attention products (q·k and p·v over each query's band of keys).
double encoder_flops(const TextConfig& c, int64_t L) {
  const double H = c.hidden_size, q = c.q_dim(), kv = c.kv_dim(), I = c.intermediate_size;
  double f = 0;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    f += 2.0 * L * (H * (q + 2 * kv) + q * H + 3 * H * I);
    const Band band = encoder_band(c, c.layer_types[l], L);
    double keys = 0;  // sum over queries of the keys they see
    for (int64_t i = 0; i < L; ++i)
      keys += static_cast<double>(std::min(L - 1, i + band.ahead) - std::max<int64_t>(0, i - band.behind) + 1);
    f += 4.0 * keys * c.head_dim * c.num_heads;
  }
  return f;
}

}  // namespace

Action add_bench(CLI::App& app) {
  auto a = std::make_shared<BenchArgs>();
  CLI::App* c = app.add_subcommand("bench", "Measure speed and memory on a checkpoint (JSON output)");
  a->m.add_to(c);
  c->add_option("--encoder-lengths", a->encoder_lengths, "Input lengths for encoder/first-token timings")
      ->capture_default_str();
  c->add_option("--decode-batches", a->decode_batches, "Batch sizes for decode timings (their repeats interleave; with batch 1 listed, each reports speedup_over_batch_1)")->capture_default_str();
  c->add_option("--decode-tokens", a->decode_tokens, "Tokens generated per decode timing")->capture_default_str();
  c->add_option("--repeats", a->repeats, "Repeats per measurement (median reported)")->capture_default_str();
  c->add_flag("--no-image", a->no_image, "Skip the time per image (vision tower + projector)");
  c->add_option("--image-runs", a->image_runs,
                "Images timed one after another: the first is reported as first_image_seconds (cold: its buffers' "
                "and weights' first touch), seconds_per_image is the median of the others (the first alone with 1)")
      ->capture_default_str();
  c->add_option("--long-lengths", a->long_lengths,
                "Long-input lengths (e.g. 32768,131072): one request each, time to the first and second token, the "
                "median decode step over the long cross K/V, and peak RSS (run last, in increasing order)");
  return [a]() {
    check(a->repeats > 0 && a->decode_tokens > 1, "--repeats must be > 0 and --decode-tokens > 1");
    check(a->image_runs > 0, "--image-runs must be > 0");
    auto t0 = Clock::now();
    auto model = a->m.open();
    const double load_s = seconds_since(t0);
    const LoadedModel& m = model->internals();
    const int64_t V = m.config.decoder.vocab_size;
    nlohmann::ordered_json out;
    out["model"] = a->m.model;
    out["isa"] = isa_name(active_isa());
    out["threads"] = model->threads();
    out["weight_dtype"] = precision_name(m.weights.precision);
    out["weights"] = weight_type_name(m.weights.embed.type);
    out["weight_memory"] = weight_memory_name(m.weights.memory);
    out["cross_kv"] = cross_kv_storage_name(cross_kv_storage(m.cross_kv, m.weights.precision));
    out["weight_bytes"] = m.weights.bytes;
    out["load_s"] = load_s;
    omp_set_num_threads(model->threads());
    // The roofline is the best of three measurements: on a shared machine one of them can catch a
    // neighbour's burst, and a low peak or bandwidth would overstate every fraction against it.
    nlohmann::ordered_json peak_samples;
    const double peak = best_of_samples([] { return measure_fma_peak_gflops(); }, peak_samples);
    out["fma_peak_gflop_per_s"] = peak;  // = the bf16 GEMM peak on CPUs without AVX512_BF16 (bf16 is widened)
    out["fma_peak_samples_gflop_per_s"] = peak_samples;
    // A bf16 model's GEMMs (linear layers, encoder, prefill, vision) run on vdpbf16ps where the CPU has
    // AVX512_BF16: their peak is that instruction's, about twice the fp32 FMA peak. An int8 / q4 model's
    // run on vpdpbusd where it has AVX512_VNNI (X quantized to int8 as in decode), about twice that again.
    // compute_peak is the peak this model's GEMMs can reach here; fraction_of_compute_peak is measured
    // against it, fraction_of_bf16_dot_peak against the vdpbf16ps peak (the machine's bf16 GEMM peak).
    const bool quantized = is_quantized(m.weights.embed.type);
    const bool bf16_dot = gemm_bf16_available() && m.weights.precision == Precision::kBF16 && !quantized;
    double compute_peak = peak, vision_peak = peak, dot_peak = 0;  // the vision tower stays as stored (bf16 in a bf16 model)
    if (gemm_bf16_available()) {
      nlohmann::ordered_json dot_samples;
      dot_peak = best_of_samples([] { return measure_bf16_dot_peak_gflops(); }, dot_samples);
      out["bf16_dot_peak_gflop_per_s"] = dot_peak;
      out["bf16_dot_peak_samples_gflop_per_s"] = dot_samples;
      if (bf16_dot) compute_peak = dot_peak;
      if (m.weights.precision == Precision::kBF16) vision_peak = dot_peak;
    } else {
      out["bf16_dot_peak_gflop_per_s"] = nullptr;
    }
    const bool int8_dot = quantized && active_isa() == Isa::kAvx512 && cpu_features().avx512vnni;
    if (int8_dot) {
      nlohmann::ordered_json int8_samples;
      compute_peak = best_of_samples([] { return measure_int8_dot_peak_gops(); }, int8_samples);
      out["int8_dot_peak_gop_per_s"] = compute_peak;
      out["int8_dot_peak_samples_gop_per_s"] = int8_samples;
    } else {
      out["int8_dot_peak_gop_per_s"] = nullptr;
    }
    out["compute_peak_gflop_per_s"] = compute_peak;
    out["compute_peak_kind"] = int8_dot ? "int8_dot" : bf16_dot ? "bf16_dot" : "fp32_fma";
    // The fractions of an entry's rate: of the FMA peak, of the peak its GEMMs can reach (`against`: the
    // model's compute peak, or the vision tower's), and of the vdpbf16ps peak.
    auto fractions = [&](nlohmann::ordered_json& e, double gflop_per_s, double against) {
      e["fraction_of_fma_peak"] = gflop_per_s / peak;
      e["fraction_of_compute_peak"] = gflop_per_s / against;
      e["fraction_of_bf16_dot_peak"] = dot_peak > 0 ? nlohmann::ordered_json(gflop_per_s / dot_peak) : nlohmann::ordered_json();
    };

    nlohmann::ordered_json enc = nlohmann::ordered_json::array(), ftl = nlohmann::ordered_json::array();
    for (int32_t L : parse_id_list(a->encoder_lengths, "--encoder-lengths")) {
      check(L > 0, "--encoder-lengths must be positive");
      auto ids = random_ids(L, V, static_cast<uint32_t>(L));
      std::vector<double> te, tf;
      for (int r = 0; r < a->repeats; ++r) {
        auto t = Clock::now();
        omp_set_num_threads(model->threads());
        run_encoder(m.weights, m.config, EncoderInput{ids.data(), L, nullptr, 0});
        te.push_back(seconds_since(t));
        GenerateRequest req;
        req.input_ids = ids;
        req.max_new_tokens = 1;
        req.ignore_eos = true;
        t = Clock::now();
        model->generate({req});
        tf.push_back(seconds_since(t));
      }
      const double s = median(te), gflop = encoder_flops(m.config.encoder, L) / 1e9;
      nlohmann::ordered_json e = {{"tokens", L}, {"seconds", s}, {"tokens_per_s", L / s}, {"gflop", gflop}, {"gflop_per_s", gflop / s}};
      fractions(e, gflop / s, compute_peak);
      enc.push_back(e);
      // First token: the encoder, the cross K/V of every decoder layer, one decoder step and the LM head.
      const TextConfig& dc = m.config.decoder;
      const double ft_gflop = gflop + (2.0 * L * dc.hidden_size * 2 * dc.kv_dim() * dc.num_layers +
                                       2.0 * dc.vocab_size * dc.hidden_size) / 1e9;
      nlohmann::ordered_json f = {{"tokens", L}, {"seconds", median(tf)}, {"gflop", ft_gflop}};
      fractions(f, ft_gflop / median(tf), compute_peak);
      ftl.push_back(f);
    }
    out["encoder"] = enc;
    out["first_token"] = ftl;

    omp_set_num_threads(model->threads());
    nlohmann::ordered_json bw_samples;
    const double bw = best_of_samples([] { return measure_read_bandwidth_gbs(); }, bw_samples);
    // Each decode step reads every decoder weight and the tied LM head once.
    uint64_t step_bytes = 0, step_macs = 0;
    for (const WeightMatrix* w : decode_step_matrices(m.weights)) {
      step_bytes += static_cast<uint64_t>(weight_matrix_bytes(*w));
      step_macs += static_cast<uint64_t>(w->rows * w->cols);
    }
    out["memory_bandwidth_gbs"] = bw;
    out["memory_bandwidth_samples_gbs"] = bw_samples;
    out["decode_step_weight_bytes"] = step_bytes;
    // ... and does one multiply-add per weight and token: at batch B the products' 2·B·step_macs operations
    // take at least that over the compute peak. Batch 1 is bound by the bandwidth; a batch of 8 q4 rows can
    // be bound by the peak (vpdpbusd): the roofline of an entry is the lower of its two bounds.
    out["decode_step_multiply_adds_per_token"] = step_macs;
    // The compute bound in tokens/s, the same for every batch size (none without a SIMD ISA, which
    // measures no compute peak: the roofline is then the bandwidth bound alone).
    const bool peak_known = compute_peak > 0 && step_macs > 0;
    const double compute_bound = peak_known ? compute_peak * 1e9 / (2.0 * static_cast<double>(step_macs)) : 0.0;

    // The batches' repeats interleave (1, 8, 1, 8, ...) so that a slow minute of this shared machine falls on
    // every batch size, and speedup_over_batch_1 is the median of the ratios within each round.
    const std::vector<int32_t> batches = parse_id_list(a->decode_batches, "--decode-batches");
    std::vector<std::vector<GenerateRequest>> batch_reqs;
    for (int32_t B : batches) {
      check(B > 0, "--decode-batches must be positive");
      std::vector<GenerateRequest> reqs;
      for (int32_t b = 0; b < B; ++b) {
        GenerateRequest r;
        r.input_ids = random_ids(128, V, 1000 + b);
        r.max_new_tokens = a->decode_tokens;
        r.ignore_eos = true;
        reqs.push_back(std::move(r));
      }
      batch_reqs.push_back(std::move(reqs));
    }
    std::vector<std::vector<double>> rates(batches.size());
    for (int rep = 0; rep < a->repeats; ++rep)
      for (size_t i = 0; i < batches.size(); ++i) {
        // Decode time: from the first token of the batch (after encoder + first step) to the last.
        const int32_t B = batches[i];
        int64_t count = 0;
        Clock::time_point first, last;
        model->generate(batch_reqs[i], [&](size_t, int32_t) {
          auto now = Clock::now();
          if (count++ == B - 1) first = now;
          last = now;
        });
        const double s = std::chrono::duration<double>(last - first).count();
        rates[i].push_back(static_cast<double>(B) * (a->decode_tokens - 1) / s);
      }
    const auto one = std::find(batches.begin(), batches.end(), 1);
    nlohmann::ordered_json dec = nlohmann::ordered_json::array();
    for (size_t i = 0; i < batches.size(); ++i) {
      const int32_t B = batches[i];
      const double rate = median(rates[i]);
      const double bound = B * bw * 1e9 / static_cast<double>(step_bytes);
      const double roofline = peak_known ? std::min(bound, compute_bound) : bound;
      nlohmann::ordered_json e = {{"batch", B},
                                  {"new_tokens", a->decode_tokens},
                                  {"tokens_per_s", rate},
                                  {"bandwidth_bound_tokens_per_s", bound},
                                  {"fraction_of_bound", rate / bound},
                                  {"compute_bound_tokens_per_s",
                                   peak_known ? nlohmann::ordered_json(compute_bound) : nlohmann::ordered_json()},
                                  {"roofline_tokens_per_s", roofline},
                                  {"fraction_of_roofline", rate / roofline}};
      if (one != batches.end()) {
        const std::vector<double>& r1 = rates[static_cast<size_t>(one - batches.begin())];
        std::vector<double> ratios;
        for (int rep = 0; rep < a->repeats; ++rep) ratios.push_back(rates[i][rep] / r1[rep]);
        e["speedup_over_batch_1"] = median(ratios);
      }
      dec.push_back(e);
    }
    out["decode"] = dec;

    if (m.weights.vision.present && !a->no_image) {
      // Images through the tower and projector, one after another (at full size each takes seconds): the
      // first one cold (its activations' pages and the tower's weights touched for the first time), the
      // others as a process serving images sees them.
      const VisionConfig& vc = m.config.vision;
      const int64_t S = vc.image_size, N = (S / vc.patch_size) * (S / vc.patch_size), Hv = vc.hidden_size;
      std::vector<float> px(static_cast<size_t>(vc.num_channels * S * S));
      std::mt19937 g(5);
      std::uniform_real_distribution<float> u(-1.f, 1.f);
      for (auto& x : px) x = u(g);
      omp_set_num_threads(model->threads());
      std::vector<double> runs;
      for (int r = 0; r < a->image_runs; ++r) {
        auto t = Clock::now();
        image_features(m.weights, m.config, px.data());
        runs.push_back(seconds_since(t));
      }
      const double s_first = runs[0];
      const double s_img = runs.size() > 1 ? median(std::vector<double>(runs.begin() + 1, runs.end())) : s_first;
      const double flops = static_cast<double>(vc.num_layers) *
                               (2.0 * N * (4.0 * Hv * Hv + 2.0 * Hv * vc.intermediate_size) + 4.0 * N * N * Hv) +
                           2.0 * N * Hv * vc.num_channels * vc.patch_size * vc.patch_size;
      nlohmann::ordered_json img = {{"seconds_per_image", s_img},
                                    {"first_image_seconds", s_first},
                                    {"runs", a->image_runs},
                                    {"gflop", flops / 1e9},
                                    {"gflop_per_s", flops / 1e9 / s_img}};
      fractions(img, flops / 1e9 / s_img, vision_peak);
      out["image"] = img;
    }
    if (!a->long_lengths.empty()) {
      // Long inputs: one request each; peak RSS is the process's high-water mark after the run
      // (lengths run in increasing order, so each reading is that length's peak).
      nlohmann::ordered_json lo = nlohmann::ordered_json::array();
      for (int32_t L : parse_id_list(a->long_lengths, "--long-lengths")) {
        check(L > 0, "--long-lengths must be positive");
        // The first token, then kLongSteps decode steps over the long cross K/V.
        constexpr int kLongSteps = 8;
        GenerateRequest req;
        req.input_ids = random_ids(L, V, static_cast<uint32_t>(L));
        req.max_new_tokens = 1 + kLongSteps;
        req.ignore_eos = true;
        auto t = Clock::now();
        std::vector<double> at;
        model->generate({req}, [&](size_t, int32_t) { at.push_back(seconds_since(t)); });
        check(at.size() == 1 + kLongSteps, "long input of ", L, " tokens: expected ", 1 + kLongSteps, " tokens");
        std::vector<double> steps;
        for (size_t i = 1; i < at.size(); ++i) steps.push_back(at[i] - at[i - 1]);
        const double gflop = encoder_flops(m.config.encoder, L) / 1e9;
        nlohmann::ordered_json e = {{"tokens", L},
                                    {"first_token_s", at[0]},
                                    {"second_token_s", at[1] - at[0]},
                                    {"decode_step_s", median(steps)},  // median of the kLongSteps steps after the first token
                                    {"encoder_gflop", gflop}};
        fractions(e, gflop / at[0], compute_peak);
        e["peak_rss_mb"] = static_cast<double>(peak_rss_bytes()) / (1 << 20);
        lo.push_back(e);
      }
      out["long"] = lo;
    }
    out["peak_rss_mb"] = static_cast<double>(peak_rss_bytes()) / (1 << 20);
    print_json(out);
    return 0;
  };
}

}  // namespace t5g::cli
