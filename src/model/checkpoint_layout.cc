#include "model/checkpoint_layout.h"

namespace t5g {

namespace {
void text_layers(std::vector<TensorSpec>& out, const std::string& prefix, const TextConfig& c) {
  const int64_t H = c.hidden_size, I = c.intermediate_size;
  for (int64_t i = 0; i < c.num_layers; ++i) {
    const std::string p = prefix + ".layers." + std::to_string(i) + ".";
    out.push_back({p + "self_attn.q_proj.weight", {c.q_dim(), H}, TensorRole::kMatrix});
    out.push_back({p + "self_attn.k_proj.weight", {c.kv_dim(), H}, TensorRole::kMatrix});
    out.push_back({p + "self_attn.v_proj.weight", {c.kv_dim(), H}, TensorRole::kMatrix});
    out.push_back({p + "self_attn.o_proj.weight", {H, c.q_dim()}, TensorRole::kMatrix});
    out.push_back({p + "self_attn.q_norm.weight", {c.head_dim}, TensorRole::kNormOffset});
    out.push_back({p + "self_attn.k_norm.weight", {c.head_dim}, TensorRole::kNormOffset});
    for (const char* n : {"pre_self_attn_layernorm", "post_self_attn_layernorm", "pre_feedforward_layernorm",
                          "post_feedforward_layernorm"})
      out.push_back({p + n + ".weight", {H}, TensorRole::kNormOffset});
    out.push_back({p + "mlp.gate_proj.weight", {I, H}, TensorRole::kMatrix});
    out.push_back({p + "mlp.up_proj.weight", {I, H}, TensorRole::kMatrix});
    out.push_back({p + "mlp.down_proj.weight", {H, I}, TensorRole::kMatrix});
  }
  out.push_back({prefix + ".norm.weight", {H}, TensorRole::kNormOffset});
}
}  // namespace

std::vector<TensorSpec> checkpoint_tensors(const ModelConfig& cfg, bool with_vision) {
  std::vector<TensorSpec> out;
  const int64_t V = cfg.encoder.vocab_size, H = cfg.encoder.hidden_size;
  out.push_back({"model.encoder.embed_tokens.weight", {V, H}, TensorRole::kEmbedding});
  out.push_back({"model.encoder.embed_tokens.eoi_embedding", {H}, TensorRole::kOther});
  text_layers(out, "model.encoder", cfg.encoder);
  text_layers(out, "model.decoder", cfg.decoder);
  if (with_vision) {
    const VisionConfig& v = cfg.vision;
    const int64_t Hv = v.hidden_size, Iv = v.intermediate_size, P = v.patch_size;
    const int64_t n_patches = (v.image_size / P) * (v.image_size / P);
    const std::string p = "model.encoder.vision_tower.vision_model.";
    out.push_back({p + "embeddings.patch_embedding.weight", {Hv, v.num_channels, P, P}, TensorRole::kMatrix});
    out.push_back({p + "embeddings.patch_embedding.bias", {Hv}, TensorRole::kBias});
    out.push_back({p + "embeddings.position_embedding.weight", {n_patches, Hv}, TensorRole::kOther});
    for (int64_t i = 0; i < v.num_layers; ++i) {
      const std::string l = p + "encoder.layers." + std::to_string(i) + ".";
      for (const char* ln : {"layer_norm1", "layer_norm2"}) {
        out.push_back({l + ln + ".weight", {Hv}, TensorRole::kOther});
        out.push_back({l + ln + ".bias", {Hv}, TensorRole::kBias});
      }
      for (const char* pr : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
        out.push_back({l + "self_attn." + pr + ".weight", {Hv, Hv}, TensorRole::kMatrix});
        out.push_back({l + "self_attn." + pr + ".bias", {Hv}, TensorRole::kBias});
      }
      out.push_back({l + "mlp.fc1.weight", {Iv, Hv}, TensorRole::kMatrix});
      out.push_back({l + "mlp.fc1.bias", {Iv}, TensorRole::kBias});
      out.push_back({l + "mlp.fc2.weight", {Hv, Iv}, TensorRole::kMatrix});
      out.push_back({l + "mlp.fc2.bias", {Hv}, TensorRole::kBias});
    }
    out.push_back({p + "post_layernorm.weight", {Hv}, TensorRole::kOther});
    out.push_back({p + "post_layernorm.bias", {Hv}, TensorRole::kBias});
    out.push_back({"model.encoder.multi_modal_projector.mm_soft_emb_norm.weight", {Hv}, TensorRole::kNormOffset});
    out.push_back({"model.encoder.multi_modal_projector.mm_input_projection_weight", {Hv, H}, TensorRole::kMatrix});
  }
  return out;
}

}  // namespace t5g
