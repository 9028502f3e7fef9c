#include "model/config.h"

#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/mapped_file.h"

namespace t5g {

namespace {
using json = nlohmann::json;

// Field readers: absent or null -> default; present with the wrong type -> error naming the field.
int64_t get_int(const json& j, const char* key, int64_t def, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (it->is_number_integer()) return it->get<int64_t>();
  if (it->is_number_float() && it->get<double>() == static_cast<double>(static_cast<int64_t>(it->get<double>())))
    return static_cast<int64_t>(it->get<double>());
  fail(where, ".", key, ": expected an integer, got ", it->dump());
}

double get_num(const json& j, const char* key, double def, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  check(it->is_number(), where, ".", key, ": expected a number, got ", it->dump());
  return it->get<double>();
}

std::optional<double> get_opt_num(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  check(it->is_number(), where, ".", key, ": expected a number or null, got ", it->dump());
  return it->get<double>();
}

bool get_bool(const json& j, const char* key, bool def, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  check(it->is_boolean(), where, ".", key, ": expected true/false, got ", it->dump());
  return it->get<bool>();
}

std::string get_str(const json& j, const char* key, const std::string& def, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  check(it->is_string(), where, ".", key, ": expected a string, got ", it->dump());
  return it->get<std::string>();
}

const json& get_obj(const json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  check(it != j.end() && it->is_object(), where, ": missing object \"", key, "\"");
  return *it;
}

Activation parse_activation(const std::string& s, const std::string& where) {
  if (s == "gelu_pytorch_tanh" || s == "gelu_tanh" || s == "gelu_new" || s == "gelu_fast") return Activation::kGeluTanh;
  if (s == "gelu") return Activation::kGeluErf;
  fail(where, ": unsupported activation '", s, "'");
}

RopeConfig parse_rope_entry(const json& r, double default_theta, const std::string& where) {
  check(r.is_object(), where, ": expected an object");
  RopeConfig rc;
  rc.theta = get_num(r, "rope_theta", default_theta, where);
  const std::string type = get_str(r, "rope_type", get_str(r, "type", "default", where), where);
  if (type == "linear") {
    rc.linear_factor = get_num(r, "factor", 1.0, where);
    check(rc.linear_factor > 0, where, ".factor must be positive");
  } else {
    check(type == "default", where, ".rope_type '", type, "' is not supported (default and linear are)");
  }
  check(rc.theta > 0, where, ".rope_theta must be positive");
  return rc;
}

void positive(int64_t v, const char* field, const std::string& where) {
  check(v > 0, where, ".", field, " must be positive, got ", v);
}

TextConfig parse_text_config(const json& j, const std::string& where) {
  TextConfig c;
  c.vocab_size = get_int(j, "vocab_size", c.vocab_size, where);
  c.hidden_size = get_int(j, "hidden_size", c.hidden_size, where);
  c.intermediate_size = get_int(j, "intermediate_size", c.intermediate_size, where);
  c.num_layers = get_int(j, "num_hidden_layers", c.num_layers, where);
  c.num_heads = get_int(j, "num_attention_heads", c.num_heads, where);
  c.num_kv_heads = get_int(j, "num_key_value_heads", c.num_kv_heads, where);
  c.head_dim = get_int(j, "head_dim", c.head_dim, where);
  c.max_position_embeddings = get_int(j, "max_position_embeddings", c.max_position_embeddings, where);
  c.rms_norm_eps = get_num(j, "rms_norm_eps", c.rms_norm_eps, where);
  c.query_pre_attn_scalar = get_num(j, "query_pre_attn_scalar", c.query_pre_attn_scalar, where);
  c.sliding_window = get_int(j, "sliding_window", c.sliding_window, where);
  c.final_logit_softcapping = get_opt_num(j, "final_logit_softcapping", where);
  c.attn_logit_softcapping = get_opt_num(j, "attn_logit_softcapping", where);
  c.attention_bias = get_bool(j, "attention_bias", false, where);
  c.activation = parse_activation(get_str(j, "hidden_activation", "gelu_pytorch_tanh", where), where + ".hidden_activation");
  if (get_bool(j, "use_bidirectional_attention", false, where)) c.sliding_window = c.sliding_window / 2 + 1;

  positive(c.vocab_size, "vocab_size", where);
  positive(c.hidden_size, "hidden_size", where);
  positive(c.intermediate_size, "intermediate_size", where);
  positive(c.num_layers, "num_hidden_layers", where);
  positive(c.num_heads, "num_attention_heads", where);
  positive(c.num_kv_heads, "num_key_value_heads", where);
  positive(c.head_dim, "head_dim", where);
  positive(c.sliding_window, "sliding_window", where);
  check(c.head_dim % 2 == 0, where, ".head_dim must be even for RoPE, got ", c.head_dim);
  check(c.num_heads % c.num_kv_heads == 0, where, ": num_attention_heads (", c.num_heads,
        ") is not a multiple of num_key_value_heads (", c.num_kv_heads, ")");
  check(c.query_pre_attn_scalar > 0, where, ".query_pre_attn_scalar must be positive");
  check(!c.attention_bias, where, ".attention_bias=true is not supported (no T5Gemma 2 checkpoint uses it)");
  if (c.final_logit_softcapping) check(*c.final_logit_softcapping > 0, where, ".final_logit_softcapping must be > 0");
  if (c.attn_logit_softcapping) check(*c.attn_logit_softcapping > 0, where, ".attn_logit_softcapping must be > 0");

  auto lt = j.find("layer_types");
  if (lt != j.end() && !lt->is_null()) {
    check(lt->is_array(), where, ".layer_types: expected an array");
    check(static_cast<int64_t>(lt->size()) == c.num_layers, where, ".layer_types has ", lt->size(),
          " entries but num_hidden_layers is ", c.num_layers);
    for (const auto& e : *lt) {
      const std::string s = e.is_string() ? e.get<std::string>() : e.dump();
      if (s == "sliding_attention") c.layer_types.push_back(LayerType::kSliding);
      else if (s == "full_attention") c.layer_types.push_back(LayerType::kFull);
      else fail(where, ".layer_types: unknown layer type ", s);
    }
  } else {
    int64_t pattern = get_int(j, "sliding_window_pattern", get_int(j, "_sliding_window_pattern", 6, where), where);
    positive(pattern, "sliding_window_pattern", where);
    for (int64_t i = 0; i < c.num_layers; ++i)
      c.layer_types.push_back((i + 1) % pattern != 0 ? LayerType::kSliding : LayerType::kFull);
  }

  auto rp = j.find("rope_parameters");
  if (rp != j.end() && !rp->is_null()) {
    check(rp->is_object(), where, ".rope_parameters: expected an object");
    if (rp->contains("full_attention") || rp->contains("sliding_attention")) {
      if (rp->contains("full_attention"))
        c.rope_full = parse_rope_entry((*rp)["full_attention"], 1e6, where + ".rope_parameters.full_attention");
      if (rp->contains("sliding_attention"))
        c.rope_sliding = parse_rope_entry((*rp)["sliding_attention"], 1e4, where + ".rope_parameters.sliding_attention");
    } else {  // one set of parameters for every layer type
      c.rope_full = c.rope_sliding = parse_rope_entry(*rp, 1e4, where + ".rope_parameters");
    }
  } else {  // legacy keys
    c.rope_full.theta = get_num(j, "rope_theta", 1e6, where);
    c.rope_sliding.theta = get_num(j, "rope_local_base_freq", 1e4, where);
    auto rs = j.find("rope_scaling");
    if (rs != j.end() && !rs->is_null())
      c.rope_full = parse_rope_entry(*rs, c.rope_full.theta, where + ".rope_scaling");
  }
  return c;
}

VisionConfig parse_vision_config(const json& j, const std::string& where) {
  VisionConfig v;
  v.hidden_size = get_int(j, "hidden_size", v.hidden_size, where);
  v.intermediate_size = get_int(j, "intermediate_size", v.intermediate_size, where);
  v.num_layers = get_int(j, "num_hidden_layers", v.num_layers, where);
  v.num_heads = get_int(j, "num_attention_heads", v.num_heads, where);
  v.num_channels = get_int(j, "num_channels", v.num_channels, where);
  v.image_size = get_int(j, "image_size", v.image_size, where);
  v.patch_size = get_int(j, "patch_size", v.patch_size, where);
  v.layer_norm_eps = get_num(j, "layer_norm_eps", v.layer_norm_eps, where);
  v.activation = parse_activation(get_str(j, "hidden_act", "gelu_pytorch_tanh", where), where + ".hidden_act");
  positive(v.hidden_size, "hidden_size", where);
  positive(v.intermediate_size, "intermediate_size", where);
  positive(v.num_layers, "num_hidden_layers", where);
  positive(v.num_heads, "num_attention_heads", where);
  positive(v.num_channels, "num_channels", where);
  positive(v.image_size, "image_size", where);
  positive(v.patch_size, "patch_size", where);
  check(v.hidden_size % v.num_heads == 0, where, ": hidden_size is not a multiple of num_attention_heads");
  check(v.image_size % v.patch_size == 0, where, ": image_size is not a multiple of patch_size");
  check(!get_bool(j, "vision_use_head", false, where), where, ".vision_use_head=true is not supported");
  return v;
}

}  // namespace

ModelConfig parse_model_config(const std::string& text, const std::string& what) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  check(!j.is_discarded(), what, ": not valid JSON");
  check(j.is_object(), what, ": expected a JSON object");
  const std::string mt = get_str(j, "model_type", "t5gemma2", what);
  check(mt == "t5gemma2", what, ": model_type is '", mt, "', expected 't5gemma2' (T5Gemma 2)");
  ModelConfig c;
  c.dtype = get_str(j, "dtype", get_str(j, "torch_dtype", "", what), what);
  const json& enc = get_obj(j, "encoder", what);
  const json& dec = get_obj(j, "decoder", what);
  c.encoder = parse_text_config(get_obj(enc, "text_config", what + ": encoder"), what + ": encoder.text_config");
  c.decoder = parse_text_config(dec, what + ": decoder");
  auto vc = enc.find("vision_config");
  c.vision = (vc != enc.end() && vc->is_object()) ? parse_vision_config(*vc, what + ": encoder.vision_config")
                                                  : VisionConfig{};
  const std::string ew = what + ": encoder";
  c.mm_tokens_per_image = get_int(enc, "mm_tokens_per_image", 256, ew);
  c.boi_token_id = static_cast<int32_t>(get_int(enc, "boi_token_index", 255999, ew));
  const int64_t enc_eoi = get_int(enc, "eoi_token_index", 256000, ew);
  c.eoi_token_id = static_cast<int32_t>(get_int(j, "eoi_token_index", enc_eoi, what));
  c.image_token_id = static_cast<int32_t>(get_int(j, "image_token_index", 256001, what));
  c.bos_token_id = static_cast<int32_t>(get_int(j, "bos_token_id", get_int(dec, "bos_token_id", 2, what), what));
  c.pad_token_id = static_cast<int32_t>(get_int(j, "pad_token_id", get_int(dec, "pad_token_id", 0, what), what));
  {
    auto e = j.find("eos_token_id");
    if (e != j.end() && e->is_array() && !e->empty()) e = e->begin();  // first id; the list lives in generation_config
    c.eos_token_id = (e != j.end() && e->is_number_integer()) ? e->get<int32_t>()
                                                              : static_cast<int32_t>(get_int(dec, "eos_token_id", 1, what));
  }
  positive(c.mm_tokens_per_image, "mm_tokens_per_image", ew);
  check(c.encoder.hidden_size == c.decoder.hidden_size, what, ": encoder hidden_size (", c.encoder.hidden_size,
        ") != decoder hidden_size (", c.decoder.hidden_size, "); T5Gemma 2 shares one embedding");
  check(c.encoder.vocab_size == c.decoder.vocab_size, what, ": encoder vocab_size (", c.encoder.vocab_size,
        ") != decoder vocab_size (", c.decoder.vocab_size, ")");
  auto in_vocab = [&](int64_t id, const char* name) {
    check(id >= 0 && id < c.encoder.vocab_size, what, ": ", name, " ", id, " is outside the vocabulary (",
          c.encoder.vocab_size, ")");
  };
  in_vocab(c.bos_token_id, "bos_token_id");
  in_vocab(c.eos_token_id, "eos_token_id");
  in_vocab(c.pad_token_id, "pad_token_id");
  in_vocab(c.eoi_token_id, "eoi_token_index");
  in_vocab(c.boi_token_id, "boi_token_index");
  in_vocab(c.image_token_id, "image_token_index");
  return c;
}

ModelConfig load_model_config(const std::string& path) { return parse_model_config(read_text_file(path), path); }

GenerationConfig parse_generation_config(const std::string& text, const std::string& what, const ModelConfig& m) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  check(!j.is_discarded() && j.is_object(), what, ": not a valid JSON object");
  GenerationConfig g;
  g.pad_token_id = static_cast<int32_t>(get_int(j, "pad_token_id", m.pad_token_id, what));
  g.decoder_start_token_id =
      static_cast<int32_t>(get_int(j, "decoder_start_token_id", get_int(j, "bos_token_id", m.bos_token_id, what), what));
  auto e = j.find("eos_token_id");
  if (e == j.end() || e->is_null()) {
    g.eos_token_ids = {m.eos_token_id};
  } else if (e->is_number_integer()) {
    g.eos_token_ids = {e->get<int32_t>()};
  } else {
    check(e->is_array(), what, ".eos_token_id: expected an id or a list of ids");
    g.eos_token_ids.clear();
    for (const auto& v : *e) {
      check(v.is_number_integer(), what, ".eos_token_id: expected integers, got ", v.dump());
      g.eos_token_ids.push_back(v.get<int32_t>());
    }
  }
  for (int32_t id : g.eos_token_ids)
    check(id >= 0 && id < m.decoder.vocab_size, what, ".eos_token_id ", id, " is outside the vocabulary");
  check(g.decoder_start_token_id >= 0 && g.decoder_start_token_id < m.decoder.vocab_size, what,
        ".decoder_start_token_id is outside the vocabulary");
  g.do_sample = get_bool(j, "do_sample", false, what);
  g.temperature = get_num(j, "temperature", 1.0, what);
  g.top_k = get_int(j, "top_k", 50, what);
  g.top_p = get_num(j, "top_p", 1.0, what);
  if (j.contains("max_new_tokens") && !j["max_new_tokens"].is_null())
    g.max_new_tokens = get_int(j, "max_new_tokens", 0, what);
  return g;
}

GenerationConfig load_generation_config(const std::string& dir, const ModelConfig& m) {
  const std::string path = dir + "/generation_config.json";
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    GenerationConfig g;
    g.decoder_start_token_id = m.bos_token_id;
    g.eos_token_ids = {m.eos_token_id};
    g.pad_token_id = m.pad_token_id;
    return g;
  }
  std::fclose(f);
  return parse_generation_config(read_text_file(path), path, m);
}

}  // namespace t5g
