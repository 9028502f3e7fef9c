// A loaded checkpoint: the mapped files, the parsed configs and the bound weights, immutable
// after loading so any number of threads can run requests on it.
#pragma once
#include <memory>
#include <string>

#include "format/checkpoint.h"
#include "model/config.h"
#include "model/decoder.h"
#include "model/weights.h"

namespace t5g {

struct LoadedModel {
  std::unique_ptr<Checkpoint> checkpoint;
  ModelConfig config;
  GenerationConfig generation;
  ModelWeights weights;
  CrossKvFormat cross_kv = CrossKvFormat::kAuto;  // how each request's cross K/V are held
};

// Loads a checkpoint folder (config.json, generation_config.json, safetensors), with the text
// matrices in `format` (see WeightFormat) and the decode step's in `memory` (see WeightMemory). Throws
// t5g::Error.
std::unique_ptr<LoadedModel> load_model(const std::string& dir, WeightFormat format = WeightFormat::kAsStored,
                                        WeightMemory memory = WeightMemory::kMapped);

}  // namespace t5g
