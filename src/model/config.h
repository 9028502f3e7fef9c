// The model's configuration, read from config.json (T5Gemma2Config: encoder.text_config,
// encoder.vision_config, decoder, top-level ids) and generation_config.json. Defaults are
// transformers' (spec §1); unknown extra fields are ignored.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace t5g {

enum class LayerType { kSliding, kFull };
enum class Activation { kGeluTanh, kGeluErf };

struct RopeConfig {
  double theta = 10000.0;
  double linear_factor = 1.0;  // "linear" scaling divides inv_freq by this; 1 for "default"
};

// T5Gemma2TextConfig / T5Gemma2DecoderConfig.
struct TextConfig {
  int64_t vocab_size = 262208;
  int64_t hidden_size = 2304;
  int64_t intermediate_size = 9216;
  int64_t num_layers = 26;
  int64_t num_heads = 8;
  int64_t num_kv_heads = 4;
  int64_t head_dim = 256;
  int64_t max_position_embeddings = 131072;
  double rms_norm_eps = 1e-6;
  double query_pre_attn_scalar = 256;
  int64_t sliding_window = 4096;  // already halved+1 when use_bidirectional_attention is set
  std::vector<LayerType> layer_types;
  std::optional<double> final_logit_softcapping;
  std::optional<double> attn_logit_softcapping;
  RopeConfig rope_sliding{10000.0, 1.0};
  RopeConfig rope_full{1000000.0, 1.0};
  Activation activation = Activation::kGeluTanh;
  bool attention_bias = false;

  const RopeConfig& rope(LayerType t) const { return t == LayerType::kSliding ? rope_sliding : rope_full; }
  int64_t q_dim() const { return num_heads * head_dim; }
  int64_t kv_dim() const { return num_kv_heads * head_dim; }
};

// SiglipVisionConfig.
struct VisionConfig {
  int64_t hidden_size = 768;
  int64_t intermediate_size = 3072;
  int64_t num_layers = 12;
  int64_t num_heads = 12;
  int64_t num_channels = 3;
  int64_t image_size = 224;
  int64_t patch_size = 16;
  double layer_norm_eps = 1e-6;
  Activation activation = Activation::kGeluTanh;
};

struct ModelConfig {
  TextConfig encoder;
  TextConfig decoder;
  VisionConfig vision;
  int64_t mm_tokens_per_image = 256;
  int32_t boi_token_id = 255999;
  int32_t eoi_token_id = 256000;
  int32_t image_token_id = 256001;
  int32_t bos_token_id = 2;
  int32_t eos_token_id = 1;
  int32_t pad_token_id = 0;
  std::string dtype;  // "dtype"/"torch_dtype" as written, informational
};

struct GenerationConfig {
  int32_t decoder_start_token_id = 2;
  std::vector<int32_t> eos_token_ids{1};
  int32_t pad_token_id = 0;
  // sampling defaults (used by the sampling runtime)
  bool do_sample = false;
  double temperature = 1.0;
  int64_t top_k = 50;
  double top_p = 1.0;
  std::optional<int64_t> max_new_tokens;
};

// Parses config.json text; `what` names the file in errors. Validates sizes (positive, heads
// divide, layer_types length) and the encoder/decoder consistency the reference requires.
ModelConfig parse_model_config(const std::string& json_text, const std::string& what);
ModelConfig load_model_config(const std::string& path);

// Parses generation_config.json; fields missing there fall back to the model config's ids.
GenerationConfig parse_generation_config(const std::string& json_text, const std::string& what,
                                         const ModelConfig& model);
// The generation config of a model folder: generation_config.json when present, else defaults.
GenerationConfig load_generation_config(const std::string& dir, const ModelConfig& model);

}  // namespace t5g
