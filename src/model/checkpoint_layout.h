// The tensors a T5Gemma 2 checkpoint stores (hub key layout, spec §2.1), with their shapes
// derived from the config. Used to write random checkpoints (benchmarks, tests).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"

namespace t5g {

enum class TensorRole { kMatrix, kNormOffset, kEmbedding, kBias, kOther };

struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  TensorRole role;
};

std::vector<TensorSpec> checkpoint_tensors(const ModelConfig& cfg, bool with_vision);

}  // namespace t5g
