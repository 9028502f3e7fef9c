// t5g init-random: writes a checkpoint with random weights for a config (benchmarks on the real
// architectures without downloading weights; speed does not depend on the values).
#include <sys/stat.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <memory>

#include "commands.h"
#include "common.h"
#include "format/safetensors.h"
#include "model/checkpoint_layout.h"
#include "model/config.h"
#include "util/bf16.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace t5g::cli {

namespace {
struct InitArgs {
  std::string config, out, dtype = "bf16";
  uint64_t seed = 1;
  bool no_vision = false;
};

// xorshift64*: fast, seeded, good enough for weights nobody reads.
struct Rng {
  uint64_t s;
  float uniform() {  // [-1, 1)
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return static_cast<float>(static_cast<int64_t>((s * 2685821657736338717ull) >> 11) - (1ll << 52)) / (1ll << 52);
  }
};
}  // namespace

Action add_init_random(CLI::App& app) {
  auto a = std::make_shared<InitArgs>();
  CLI::App* c = app.add_subcommand("init-random", "Write a checkpoint of random weights for a config.json");
  c->add_option("--config", a->config, "A T5Gemma 2 config.json")->required();
  c->add_option("--out", a->out, "Output folder (created)")->required();
  c->add_option("--dtype", a->dtype, "bf16 or f32")->capture_default_str();
  c->add_option("--seed", a->seed, "Random seed")->capture_default_str();
  c->add_flag("--no-vision", a->no_vision, "Leave out the vision tower");
  return [a]() {
    check(a->dtype == "bf16" || a->dtype == "f32", "--dtype must be bf16 or f32, got '", a->dtype, "'");
    const std::string text = read_text_file(a->config);
    const ModelConfig cfg = parse_model_config(text, a->config);
    ::mkdir(a->out.c_str(), 0755);
    struct stat st {};
    check(::stat(a->out.c_str(), &st) == 0 && S_ISDIR(st.st_mode), "cannot create folder ", a->out);
    const DType dt = a->dtype == "bf16" ? DType::kBF16 : DType::kF32;
    const auto specs = checkpoint_tensors(cfg, !a->no_vision);
    std::vector<std::vector<uint8_t>> store;
    std::vector<TensorToWrite> tensors;
    Rng rng{a->seed * 0x9E3779B97F4A7C15ull + 1};
    for (const TensorSpec& s : specs) {
      int64_t n = 1;
      for (int64_t d : s.shape) n *= d;
      float scale = 0.02f;
      if (s.role == TensorRole::kMatrix) scale = 1.0f / std::sqrt(static_cast<float>(s.shape.back()));
      if (s.role == TensorRole::kNormOffset) scale = 0.1f;
      std::vector<uint8_t> buf(static_cast<size_t>(n * dtype_size(dt)));
      for (int64_t i = 0; i < n; ++i) {
        float x = scale * rng.uniform() * 1.7320508f;  // unit variance uniform, times scale
        if (s.role == TensorRole::kOther && s.name.find("layer_norm") != std::string::npos) x += 1.0f;
        if (dt == DType::kBF16) {
          uint16_t h = f32_to_bf16(x);
          std::memcpy(buf.data() + 2 * i, &h, 2);
        } else {
          std::memcpy(buf.data() + 4 * i, &x, 4);
        }
      }
      store.push_back(std::move(buf));
      tensors.push_back({s.name, dt, s.shape, store.back().data(), store.back().size()});
    }
    write_safetensors(a->out + "/model.safetensors", tensors, {{"format", "pt"}});
    {
      std::ofstream f(a->out + "/config.json");
      f << text;
      check(static_cast<bool>(f), "cannot write ", a->out, "/config.json");
    }
    {
      nlohmann::ordered_json g = {{"bos_token_id", cfg.bos_token_id},
                                  {"decoder_start_token_id", cfg.bos_token_id},
                                  {"eos_token_id", cfg.eos_token_id},
                                  {"pad_token_id", cfg.pad_token_id}};
      std::ofstream f(a->out + "/generation_config.json");
      f << g.dump(2) << "\n";
      check(static_cast<bool>(f), "cannot write ", a->out, "/generation_config.json");
    }
    std::fprintf(stderr, "wrote %zu tensors to %s\n", tensors.size(), a->out.c_str());
    return 0;
  };
}

}  // namespace t5g::cli
