// Building blocks shared by the encoder and decoder layers (spec §3.1): the scaled embedding
// with EOI substitution, the query/key/value projections with q/k RMSNorm and RoPE, and the
// sandwich-normed GeGLU MLP with its residual add.
#pragma once
#include <cstdint>
#include <vector>

#include "kernels/attention.h"
#include "model/config.h"
#include "model/weights.h"

namespace t5g {

// out[i] = embed[ids[i]] * embed_scale (rounded), EOI rows replaced by the unscaled eoi_embedding.
// Ids are checked against the vocabulary.
void embed_tokens(const ModelWeights& w, const ModelConfig& cfg, const int32_t* ids, int64_t n, float* out);

// Projects xn [n, H] to q [n, q_dim] and k, v [n, kv_dim]; applies q_norm/k_norm per head; rotates
// q and k with `rope` (nullptr: keys are not rotated, as the decoder's cross keys).
// `row_stable`: rows are decoder batch rows whose results must not depend on the batch (see MatmulOptions).
void project_qkv(const AttentionWeights& a, const TextConfig& c, const float* xn, int64_t n, float* q, float* k,
                 float* v, const RopeTable* rope, Precision p, bool row_stable = false);

// Only k and v (the decoder's cross keys/values of the encoder output: k-normed, never rotated).
void project_kv(const AttentionWeights& a, const TextConfig& c, const float* xn, int64_t n, float* k, float* v,
                Precision p, bool row_stable = false);

// h = h + post_norm(attn_out · Woᵀ): the attention half's output projection and residual.
void attention_output(const TextLayerWeights& l, const TextConfig& c, const float* attn, int64_t n, float* h,
                      std::vector<float>& scratch, Precision p, bool row_stable = false);

// h = h + post_ff_norm(down(gelu(gate(x)) * up(x))), x = pre_ff_norm(h); processed in row chunks so
// that long inputs never hold [n, intermediate] buffers. `scratch`: the caller's buffer for the chunk's
// activations, grown as needed and reused from layer to layer.
void mlp_block(const TextLayerWeights& l, const TextConfig& c, float* h, int64_t n, std::vector<float>& scratch,
               Precision p, bool row_stable = false);

// The attention scale the reference uses: query_pre_attn_scalar ** -0.5, as fp32.
float attention_scale(const TextConfig& c);

// Attention parameters of a text layer. attn_logit_softcapping is in the config but the reference
// never passes it to attention (spec §9), so it is not set.
AttnParams text_attention_params(const TextConfig& c, Precision p);

// RoPE tables of both layer types for the given positions.
struct RopeTables {
  RopeTable sliding, full;
  const RopeTable& of(LayerType t) const { return t == LayerType::kSliding ? sliding : full; }
};
RopeTables make_rope_tables(const TextConfig& c, const int64_t* positions, int64_t n, Precision p);

}  // namespace t5g
