// Logits processing and token selection, in transformers' order and with its semantics
// (generation/logits_process.py, GenerationMixin._get_logits_processor, _sample):
//
//   repetition_penalty -> no_repeat_ngram_size -> min_new_tokens (EOS ids to -inf)
//   then, only when sampling: temperature -> top_k -> top_p -> min_p
//   then argmax (greedy, as torch.argmax: the first NaN if any, else the first maximum) or a draw from
//   softmax(scores).
//
// "history" is always the decoder's input so far: the start token followed by the tokens generated
// so far (transformers passes decoder_input_ids to the processors, so the start token counts for the
// repetition penalty and the n-gram ban).
//
// Sampling uses our own seeded RNG (std::mt19937_64 driving an inverse-CDF draw): a given seed always
// gives the same ids, but never the ids torch.multinomial gives for the same seed.
#pragma once
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "model/config.h"

namespace t5g {

struct SamplingParams {
  bool do_sample = false;
  // Sampling warpers (used only when do_sample). temperature 0 while sampling means greedy
  // (transformers rejects 0; we accept it as "the limit of temperature -> 0"); < 0 is an error.
  double temperature = 1.0;
  int64_t top_k = 50;        // 0 = off
  double top_p = 1.0;        // 1 = off
  double min_p = 0.0;        // 0 = off
  // Deterministic processors (greedy, sampling and beam search).
  double repetition_penalty = 1.0;  // 1 = off; > 1 discourages tokens already in the history
  int64_t no_repeat_ngram_size = 0;  // 0 = off
  int64_t min_new_tokens = 0;        // EOS ids are banned while fewer tokens were generated
  uint64_t seed = 0;

  // do_sample, temperature, top_k, top_p from generation_config.json; everything else off.
  static SamplingParams from_generation_config(const GenerationConfig& g);
  // Throws t5g::Error naming the offending parameter (negative top_k, top_p outside [0, 1], ...).
  void validate() const;
  bool greedy() const { return !do_sample || temperature <= 0.0; }
};

// ---- individual processors, in place on one row of V scores (fp32, as transformers) ----

// Every distinct id of history: s < 0 ? s * penalty : s / penalty.
void apply_repetition_penalty(float* scores, int64_t V, std::span<const int32_t> history, double penalty);
// Bans (-inf) every token that would complete an n-gram already present in history.
void apply_no_repeat_ngram(float* scores, int64_t V, std::span<const int32_t> history, int64_t n);
// Bans the EOS ids while generated < min_new_tokens.
void apply_min_new_tokens(float* scores, int64_t V, int64_t generated, int64_t min_new_tokens,
                          std::span<const int32_t> eos_ids);
void apply_temperature(float* scores, int64_t V, double temperature);
// Keeps every score >= the k-th largest (ties at the k-th are kept); k = max(k, min_keep).
void apply_top_k(float* scores, int64_t V, int64_t k, int64_t min_keep = 1);
// Removes the tokens whose ascending cumulative probability is <= 1 - top_p, keeping the min_keep
// most probable.
void apply_top_p(float* scores, int64_t V, double top_p, int64_t min_keep = 1);
// Removes tokens with probability < min_p * (largest probability), keeping the min_keep most probable.
void apply_min_p(float* scores, int64_t V, double min_p, int64_t min_keep = 1);

// The deterministic processors of p, in transformers' order (history = start token + generated ids,
// so generated = history.size() - 1).
void apply_processors(float* scores, int64_t V, std::span<const int32_t> history, const SamplingParams& p,
                      std::span<const int32_t> eos_ids);
// The sampling warpers of p (temperature, top_k, top_p, min_p), in transformers' order.
void apply_warpers(float* scores, int64_t V, const SamplingParams& p);

// torch.argmax of the row: the first NaN if any, else the first maximum (kernels' argmax_first).
int32_t argmax_id(const float* scores, int64_t V);

// The reproducible RNG: std::mt19937_64 seeded with `seed`; uniform() is a double in [0, 1) from the
// top 53 bits of one draw.
class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : gen_(seed) {}
  double uniform() { return static_cast<double>(gen_() >> 11) * 0x1.0p-53; }
  uint64_t next() { return gen_(); }

 private:
  std::mt19937_64 gen_;
};

// Draws an index from softmax(scores) (-inf scores have probability 0) with one uniform() of rng.
int32_t sample_from_scores(const float* scores, int64_t V, Rng& rng);

// Token selection for one sequence: holds the parameters, the EOS ids and the sequence's own RNG
// (seeded with params.seed, so a row's draws never depend on the other rows of a batch).
class TokenSelector {
 public:
  TokenSelector(const SamplingParams& params, std::vector<int32_t> eos_ids);
  // Processes `scores` in place (the raw fp32 logits of the next token) and returns the chosen id.
  // history = start token + tokens generated so far.
  int32_t select(float* scores, int64_t V, std::span<const int32_t> history);
  const SamplingParams& params() const { return p_; }

 private:
  SamplingParams p_;
  std::vector<int32_t> eos_;
  Rng rng_;
};

}  // namespace t5g
