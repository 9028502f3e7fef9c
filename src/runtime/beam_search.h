// Beam search equal to transformers' generate(num_beams=N, length_penalty, early_stopping,
// num_return_sequences) for encoder-decoder models (GenerationMixin._beam_search, transformers 5.12):
//
// - each step, every running beam's fp32 logits go through log_softmax, then the deterministic
//   processors (repetition_penalty, no_repeat_ngram_size, min_new_tokens — on log-probs, as
//   transformers does in beam search), and are added (fp32) to the beam's running score;
// - the K = max(2, 1 + #EOS ids) * num_beams best continuations over all beams are kept; those ending
//   in an EOS id (or a stop string, or reaching max_new_tokens) among the first num_beams are
//   finalised with score = sum_logprobs / generated_len ** length_penalty, where generated_len counts
//   the generated tokens including the EOS and excluding the decoder start token; the num_beams best
//   non-finished continuations keep running (the first step starts from one beam, the others at -1e9);
// - early_stopping: kTrue stops when num_beams hypotheses are finished; kFalse stops when the best
//   running beam, divided by (current generated length) ** length_penalty, cannot beat the worst
//   finished one; kNever does the same with max_new_tokens as the length when length_penalty > 0.
//
// Each input is searched independently (inputs of a batch share decoder steps): the result of a row
// is the same as searching it alone, as in transformers. Beams are DecoderState objects; the beams of
// one input share their cross K/V contents, so reordering copies only the self-attention caches
// (memory: num_beams full decoder states per input).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/encoder.h"
#include "model/model.h"
#include "runtime/sampling.h"
#include "runtime/stop.h"

namespace t5g {

enum class EarlyStopping { kFalse, kTrue, kNever };

struct BeamSearchParams {
  int64_t num_beams = 4;
  int64_t max_new_tokens = 20;
  double length_penalty = 1.0;
  EarlyStopping early_stopping = EarlyStopping::kFalse;
  int64_t num_return_sequences = 1;  // <= num_beams
  // Only the deterministic processors are used (repetition_penalty, no_repeat_ngram_size,
  // min_new_tokens); do_sample must be false (beam sampling is not implemented).
  SamplingParams processors;
  // Ids that finish a hypothesis; empty = the generation config's EOS ids (use stop_token_ids() to
  // add user stop ids).
  std::vector<int32_t> eos_token_ids;
  // Stop strings finish a hypothesis like an EOS id (transformers' StopStringCriteria); need decode.
  std::vector<std::string> stop_strings;
  DecodeFn decode;
};

struct BeamHypothesis {
  std::vector<int32_t> ids;  // generated ids, start token excluded, EOS included when produced
  float score = 0.0f;        // transformers' sequences_scores: sum_logprobs / len ** length_penalty
};

struct BeamSearchOutput {
  std::vector<BeamHypothesis> hypotheses;  // best first, num_return_sequences of them
};

std::vector<BeamSearchOutput> generate_beam(const LoadedModel& m, const std::vector<EncoderInput>& inputs,
                                            const BeamSearchParams& params);

// The length-normalised score of a finished hypothesis, in fp32 as transformers computes it.
float beam_hypothesis_score(float sum_logprobs, int64_t generated_len, double length_penalty);

}  // namespace t5g
