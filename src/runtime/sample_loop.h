// Greedy or sampled generation with logits processors and stop conditions: the same loop as
// generate_greedy (encoder once per request, decode steps batched over the unfinished requests) with
// a TokenSelector per request choosing each token, and stop ids / stop strings ending a request.
// With default SamplingParams (greedy, no processors) and no stop strings it returns exactly what
// generate_greedy returns.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/encoder.h"
#include "model/model.h"
#include "runtime/generate.h"
#include "runtime/sampling.h"
#include "runtime/stop.h"

namespace t5g {

struct SampleParams {
  int64_t max_new_tokens = 32;
  bool ignore_eos = false;  // stop ids do not end generation (stop strings still do)
  SamplingParams sampling;  // processors, warpers, seed
  // Per-request seeds (size = number of inputs); empty: every request uses sampling.seed, so a
  // request's result does not depend on the batch it is in.
  std::vector<uint64_t> seeds;
  // Ids that end a request; empty = the generation config's EOS ids. To add user stop ids:
  // stop_ids = stop_token_ids(model.generation, user_ids). min_new_tokens suppresses these ids.
  std::vector<int32_t> stop_ids;
  std::vector<std::string> stop_strings;  // need decode
  DecodeFn decode;
  bool keep_step_logits = false;  // record every step's raw fp32 logits (tests)
};

enum class FinishReason { kStopToken, kStopString, kLength };

struct SampleOutput {
  std::vector<int32_t> ids;  // generated ids, start token excluded; the stop id / the token that
                             // completed a stop string included
  FinishReason finish = FinishReason::kLength;
  int stop_string = -1;            // index into stop_strings when finish == kStopString
  size_t stop_text_offset = 0;     // byte offset of the stop string's start in decode(ids) (as
                                   // committed incrementally), to cut the text there
  std::vector<std::vector<float>> step_logits;
};

std::vector<SampleOutput> generate_sampled(const LoadedModel& m, const std::vector<EncoderInput>& inputs,
                                           const SampleParams& params, const TokenCallback& on_token = {});

}  // namespace t5g
