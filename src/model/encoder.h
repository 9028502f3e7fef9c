// The text encoder (spec §3): bidirectional attention, with the asymmetric sliding band on
// sliding layers, over one sequence. Sequences of a batch run one at a time through here, so a
// row's result never depends on what it is batched with.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "kernels/attention.h"
#include "model/config.h"
#include "model/weights.h"

namespace t5g {

// Called with the hidden state [L, H] after the embedding (index 0) and after each layer i
// (index i+1, before the final norm), for tests and debugging.
using HiddenStateHook = std::function<void(int index, const float* h, int64_t rows)>;

struct EncoderInput {
  const int32_t* ids = nullptr;
  int64_t length = 0;
  // Rows that replace the image-token positions, in order: [n_image_tokens, H] (may be null when
  // the input has no image tokens).
  const float* image_features = nullptr;
  int64_t image_feature_rows = 0;
  // Position of the first token. 0 normally; a left-padded row of a reference batch has its
  // tokens at positions [pad, L) (positions are not padding-aware in the reference).
  int64_t position_offset = 0;
};

// Returns the final encoder hidden states [L, H] (after encoder.norm).
std::vector<float> run_encoder(const ModelWeights& w, const ModelConfig& cfg, const EncoderInput& in,
                               const HiddenStateHook& hook = {});

// The encoder's sliding band: (W+1)//2 keys behind (including self), W//2+1 ahead (spec §3.4).
Band encoder_band(const TextConfig& c, LayerType t, int64_t L);

}  // namespace t5g
