// t5g inspect: what a checkpoint is (architecture, sizes, parameters, dtypes) and the memory a
// run of a given input length needs, computed from config.json and the safetensors headers
// (no weight is read).
#include <map>
#include <memory>

#include "commands.h"
#include "common.h"
#include "model/checkpoint_layout.h"
#include "model/model.h"
#include "util/error.h"

namespace t5g::cli {

namespace {
struct InspectArgs {
  ModelArgs m;
  int64_t context = 2048, new_tokens = 256, batch = 1;
  bool json = false;
};

int64_t numel(const std::vector<int64_t>& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}
}  // namespace

Action add_inspect(CLI::App& app) {
  auto a = std::make_shared<InspectArgs>();
  CLI::App* c = app.add_subcommand("inspect", "Architecture, sizes, parameter counts, dtypes, and the memory a run needs");
  a->m.add_to(c, /*with_threads=*/false);
  c->add_option("--context", a->context, "Input tokens for the memory estimate")->capture_default_str();
  c->add_option("--max-new-tokens", a->new_tokens, "Output tokens for the memory estimate")->capture_default_str();
  c->add_option("--batch", a->batch, "Requests decoded together")->capture_default_str();
  c->add_flag("--json", a->json, "Print JSON");
  return [a]() {
    check(a->context > 0 && a->new_tokens >= 0 && a->batch > 0, "--context, --batch must be positive");
    auto model = open_model(a->m.model, 1, a->m.weights, a->m.cross_kv, a->m.weight_memory);
    const LoadedModel& m = model->internals();
    const ModelConfig& cfg = m.config;
    const bool vision = m.weights.vision.present;
    std::map<std::string, int64_t> params;
    for (const TensorSpec& t : checkpoint_tensors(cfg, vision)) {
      const std::string group = t.name.find("vision_tower") != std::string::npos          ? "vision_tower"
                                : t.name.find("multi_modal_projector") != std::string::npos ? "projector"
                                : t.name.find("embed_tokens") != std::string::npos          ? "embedding"
                                : t.name.rfind("model.encoder.", 0) == 0                     ? "encoder"
                                                                                             : "decoder";
      params[group] += numel(t.shape);
    }
    std::map<std::string, int64_t> dtypes;
    for (const std::string& n : m.checkpoint->tensor_names()) dtypes[dtype_name(m.checkpoint->find(n).info->dtype)]++;

    const TextConfig& e = cfg.encoder;
    const TextConfig& d = cfg.decoder;
    const int64_t L = a->context, B = a->batch, f = 4;  // activations and self K/V are fp32
    int64_t sliding = 0, full = 0;
    for (LayerType t : d.layer_types) (t == LayerType::kSliding ? sliding : full)++;
    const int64_t enc_act = L * (2 * e.hidden_size + 2 * e.q_dim() + 2 * e.kv_dim()) * f +
                            std::min<int64_t>(L, 1024) * 2 * e.intermediate_size * f;
    const double cross_elem = cross_kv_element_bytes(cross_kv_storage(m.cross_kv, m.weights.precision), d.head_dim);
    const int64_t cross_kv =
        static_cast<int64_t>(static_cast<double>(B * d.num_layers * L * d.kv_dim() * 2) * cross_elem);
    const int64_t self_kv = B * (sliding * std::min(d.sliding_window, a->new_tokens + 1) +
                                 full * (a->new_tokens + 1)) * d.kv_dim() * 2 * f;
    const int64_t logits = B * d.vocab_size * f;
    const uint64_t weights = m.weights.bytes;

    nlohmann::ordered_json out;
    out["architecture"] = "T5Gemma2ForConditionalGeneration";
    out["model"] = a->m.model;
    out["encoder"] = {{"layers", e.num_layers}, {"hidden", e.hidden_size}, {"intermediate", e.intermediate_size},
                      {"heads", e.num_heads}, {"kv_heads", e.num_kv_heads}, {"head_dim", e.head_dim},
                      {"sliding_window", e.sliding_window}};
    out["decoder"] = {{"layers", d.num_layers}, {"hidden", d.hidden_size}, {"intermediate", d.intermediate_size},
                      {"heads", d.num_heads}, {"kv_heads", d.num_kv_heads}, {"head_dim", d.head_dim},
                      {"sliding_window", d.sliding_window}};
    out["vocab_size"] = d.vocab_size;
    out["vision"] = vision ? nlohmann::ordered_json{{"layers", cfg.vision.num_layers},
                                                    {"hidden", cfg.vision.hidden_size},
                                                    {"image_size", cfg.vision.image_size},
                                                    {"patch_size", cfg.vision.patch_size},
                                                    {"tokens_per_image", cfg.mm_tokens_per_image}}
                           : nlohmann::ordered_json(nullptr);
    int64_t text = params["embedding"] + params["encoder"] + params["decoder"];
    out["parameters"] = {{"text", text},
                         {"vision", params["vision_tower"] + params["projector"]},
                         {"embedding", params["embedding"]},
                         {"encoder", params["encoder"]},
                         {"decoder", params["decoder"]}};
    out["tensor_dtypes"] = dtypes;
    out["compute_precision"] = precision_name(m.weights.precision);
    out["memory_bytes"] = {{"weights", weights},
                           {"encoder_activations", enc_act},
                           {"cross_kv_cache", cross_kv},
                           {"self_kv_cache", self_kv},
                           {"logits", logits},
                           {"total", weights + enc_act + cross_kv + self_kv + logits},
                           {"for", {{"context", L}, {"max_new_tokens", a->new_tokens}, {"batch", B}}}};
    if (a->json) {
      print_json(out);
    } else {
      std::printf("%s\n", out.dump(2).c_str());
    }
    return 0;
  };
}

}  // namespace t5g::cli
