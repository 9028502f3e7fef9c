#include "model/model.h"

namespace t5g {

std::unique_ptr<LoadedModel> load_model(const std::string& dir, WeightFormat format, WeightMemory memory) {
  auto m = std::make_unique<LoadedModel>();
  m->checkpoint = std::make_unique<Checkpoint>(dir);
  m->config = load_model_config(m->checkpoint->file_path("config.json"));
  m->generation = load_generation_config(m->checkpoint->dir(), m->config);
  m->weights = bind_weights(*m->checkpoint, m->config, format);
  if (memory == WeightMemory::kHugePages) {
    move_decode_matrices_to_huge_pages(m->weights);
    pack_encoder_matrices(m->weights);
  }
  return m;
}

}  // namespace t5g
