// Encoder embeddings: T5Gemma encoders serve as text encoders. The final encoder hidden states
// per token, and a pooled vector (mean over the sequence's tokens, optionally L2-normalised).
#pragma once
#include <cstdint>
#include <vector>

#include "model/encoder.h"
#include "model/model.h"

namespace t5g {

struct Embedding {
  int64_t tokens = 0, dim = 0;
  std::vector<float> hidden;  // [tokens, dim]: encoder output after the final norm
  std::vector<float> pooled;  // [dim]
};

// Each input runs at its own length (no padding), so the mean is over exactly its tokens.
std::vector<Embedding> embed_inputs(const LoadedModel& m, const std::vector<EncoderInput>& inputs, bool l2_normalize);

}  // namespace t5g
