// Pre-quantized checkpoints, written by `t5g quantize` and loaded in place by bind_weights.
// The result is an ordinary safetensors checkpoint folder:
//   - each converted text matrix keeps its tensor name: BF16 [rows, cols]; or, quantized, I8 [rows, qcols]
//     (int8) or U8 [rows, qcols / 2] (q4 nibbles), plus an F16 "<name>_scale" tensor [rows, qcols / 32]
//     of group scales (layout: kernels/matmul.h);
//   - metadata: "t5g.weights" (bf16 | int8 | q4) and "t5g.quant_group" (32);
//   - every other tensor and side file (config, generation config, tokenizer, processor) is copied
//     unchanged; tied aliases of the embedding (decoder embed_tokens, lm_head) are dropped.
#pragma once
#include <cstdint>
#include <string>

#include "model/model.h"

namespace t5g {

struct QuantizedCheckpointStats {
  int64_t tensors = 0;       // tensors written
  int64_t files_copied = 0;  // side files copied
  uint64_t bytes = 0;        // size of the written model.safetensors
};

// `model` must have been loaded in `format` (its text matrices are written as they are in memory).
// Throws t5g::Error when `out_dir` is the model's own folder, exists and !overwrite, or cannot be written.
QuantizedCheckpointStats write_quantized_checkpoint(const LoadedModel& model, WeightFormat format,
                                                    const std::string& out_dir, bool overwrite);

}  // namespace t5g
