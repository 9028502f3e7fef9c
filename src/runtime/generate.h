// The generation runtime: the encoder once per request, cross K/V once per request, then
// decode steps batched over the requests still running (finished ones leave the batch).
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "model/encoder.h"
#include "model/model.h"

namespace t5g {

struct GreedyParams {
  int64_t max_new_tokens = 32;
  bool ignore_eos = false;  // generate exactly max_new_tokens (benchmarks)
  bool keep_step_logits = false;  // record every step's fp32 logits (tests)
};

struct GreedyOutput {
  std::vector<int32_t> ids;  // generated ids, start token excluded, EOS included when produced
  std::vector<std::vector<float>> step_logits;  // when keep_step_logits
};

// Called as each token is chosen: (request index, token id).
using TokenCallback = std::function<void(size_t, int32_t)>;

// The plain greedy loop. The API decodes through generate_sampled (sample_loop.h), which with
// default parameters must return exactly this: the tests hold the two against each other.
std::vector<GreedyOutput> generate_greedy(const LoadedModel& m, const std::vector<EncoderInput>& inputs,
                                          const GreedyParams& params, const TokenCallback& on_token = {});

// Log-probability of each target token under teacher forcing (decoder input = start token +
// target[:-1]), from fp32 logits. One vector per request.
std::vector<std::vector<float>> score_targets(const LoadedModel& m, const std::vector<EncoderInput>& inputs,
                                              const std::vector<std::vector<int32_t>>& targets);

}  // namespace t5g
