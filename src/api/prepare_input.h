// Turns a public Input (ids or text, plus images) into what the encoder consumes: token ids
// with image prompts expanded as the reference processor does, and the image features that
// fill the image-token positions.
#pragma once
#include <cstdint>
#include <vector>

#include "model/encoder.h"
#include "t5g/t5g.h"

namespace t5g {

struct Model::Prepared {
  std::vector<int32_t> ids;
  std::vector<float> features;  // [feature_rows, H]
  int64_t feature_rows = 0;
  EncoderInput encoder_input() const {
    return EncoderInput{ids.data(), static_cast<int64_t>(ids.size()), feature_rows ? features.data() : nullptr,
                        feature_rows};
  }
};

}  // namespace t5g
