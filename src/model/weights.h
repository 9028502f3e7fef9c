// The model's tensors, bound by name to the mapped checkpoint: matrices are used in place
// (no copy); the few small vectors (norm gains, EOI embedding) are widened to fp32 once.
// Every tensor's dtype and shape is checked against config.json while binding.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "format/checkpoint.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "model/config.h"

namespace t5g {

struct AttentionWeights {
  WeightMatrix q, k, v, o;
  std::vector<float> q_norm, k_norm;  // 1 + w
};

struct MlpWeights {
  WeightMatrix gate, up, down;
};

struct TextLayerWeights {
  AttentionWeights attn;
  MlpWeights mlp;
  std::vector<float> pre_attn_norm, post_attn_norm, pre_ff_norm, post_ff_norm;  // 1 + w
};

struct VisionLayerWeights {
  std::vector<float> ln1_w, ln1_b, ln2_w, ln2_b;
  WeightMatrix q, k, v, o, fc1, fc2;
  std::vector<float> q_b, k_b, v_b, o_b, fc1_b, fc2_b;
};

struct VisionWeights {
  bool present = false;
  WeightMatrix patch;  // conv weight [Hv, C*P*P] (OIHW flattened)
  std::vector<float> patch_b;
  std::vector<float> pos_embed;  // [num_patches, Hv]
  std::vector<VisionLayerWeights> layers;
  std::vector<float> post_ln_w, post_ln_b;
  std::vector<float> mm_norm;           // projector RMSNorm gain, 1 + w
  WeightMatrix mm_proj_t;               // [H, Hv]: the stored [Hv, H] matrix is used as x @ W, so it is
  std::vector<uint8_t> mm_proj_t_data;  // transposed once at load into nn.Linear layout (small: Hv x H)
};

struct ModelWeights {
  WeightMatrix embed;          // [V, H]: encoder + decoder embedding and the tied LM head
  std::vector<float> eoi;      // [H] eoi_embedding, in fp32
  float embed_scale = 1.f;     // sqrt(H) rounded to the embedding dtype
  Precision precision = Precision::kF32;  // activation precision = the embedding's dtype
  std::vector<TextLayerWeights> encoder, decoder;
  std::vector<float> encoder_norm, decoder_norm;  // 1 + w
  VisionWeights vision;
  uint64_t bytes = 0;  // bytes of tensor data bound
};

// Binds every tensor the model needs. Throws t5g::Error naming the missing or mis-shaped
// tensor and the file it was read from.
ModelWeights bind_weights(const Checkpoint& ckpt, const ModelConfig& cfg);

}  // namespace t5g
