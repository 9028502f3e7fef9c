// The vision path (spec §5): SigLIP tower (patch conv, position embeddings, pre-LN blocks with
// biases, post-layernorm, no head) and the multimodal projector (average pool to
// mm_tokens_per_image, RMSNorm 1+w, x @ W) producing the rows that replace the image tokens.
#pragma once
#include <cstdint>
#include <vector>

#include "model/config.h"
#include "model/encoder.h"
#include "model/weights.h"

namespace t5g {

// Runs the SigLIP tower on one preprocessed image, pixels CHW [C, S, S] (S = image_size).
// Returns last_hidden_state [num_patches, Hv]. `hook` sees the embeddings (0) and each layer.
std::vector<float> run_vision_tower(const ModelWeights& w, const ModelConfig& cfg, const float* pixels,
                                    const HiddenStateHook& hook = {});

// Projects a tower output [num_patches, Hv] to image features [mm_tokens_per_image, H].
std::vector<float> project_image(const ModelWeights& w, const ModelConfig& cfg, const float* vision_out);

// Tower + projector for one image.
std::vector<float> image_features(const ModelWeights& w, const ModelConfig& cfg, const float* pixels);

}  // namespace t5g
