// The decoder (spec §4): merged attention (one softmax over the self keys and the encoder's
// cross keys, both from the same k/v projections), run incrementally over a per-sequence cache.
// Sliding layers keep only their window of self K/V (a ring buffer of W rows), so their memory
// does not grow with the output; cross K/V are computed once per request.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "model/config.h"
#include "model/encoder.h"
#include "model/weights.h"

namespace t5g {

struct DecoderLayerCache {
  bool ring = false;        // sliding layer: slot = position % capacity
  int64_t capacity = 0;     // rows allocated in k/v
  std::vector<float> k, v;  // self keys (k-normed, rotated) and values: [capacity, kv_dim]
  std::vector<float> ck, cv;  // cross keys (k-normed, not rotated) and values: [S, kv_dim]
};

struct DecoderState {
  std::vector<DecoderLayerCache> layers;
  int64_t encoder_length = 0;
  int64_t length = 0;  // decoder tokens consumed so far = position of the next token
  size_t bytes() const;
};

// Builds a sequence's decoder state from its encoder output [S, H]: the cross K/V of every layer.
DecoderState start_decoder(const ModelWeights& w, const ModelConfig& cfg, const float* encoder_out, int64_t S);

// Feeds tokens[b] (one or more new tokens) to states[b] for every b, batched: the rows of all
// sequences go through each projection together. Writes the final-normed hidden states of all new
// tokens, concatenated in order, to `hidden` ([sum of token counts, H]). Advances each state.
void decoder_forward(const ModelWeights& w, const ModelConfig& cfg, const std::vector<DecoderState*>& states,
                     const std::vector<std::span<const int32_t>>& tokens, std::vector<float>& hidden,
                     const HiddenStateHook& hook = {});

// logits [n, V] = hidden · embedᵀ (tied LM head), rounded to the model precision, then the final
// softcap when the config sets one.
void lm_head(const ModelWeights& w, const ModelConfig& cfg, const float* hidden, int64_t n, float* logits);

}  // namespace t5g
