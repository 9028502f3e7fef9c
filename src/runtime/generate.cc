#include "runtime/generate.h"

#include <algorithm>
#include <span>

#include "model/decoder.h"
#include "runtime/sampling.h"
#include "util/error.h"

namespace t5g {

namespace {

bool is_eos(const GenerationConfig& g, int32_t id) {
  return std::find(g.eos_token_ids.begin(), g.eos_token_ids.end(), id) != g.eos_token_ids.end();
}

}  // namespace

std::vector<GreedyOutput> generate_greedy(const LoadedModel& m, const std::vector<EncoderInput>& inputs,
                                          const GreedyParams& params, const TokenCallback& on_token) {
  const ModelWeights& w = m.weights;
  const ModelConfig& cfg = m.config;
  check(params.max_new_tokens >= 0, "max_new_tokens must be >= 0");
  const size_t B = inputs.size();
  std::vector<GreedyOutput> out(B);
  std::vector<DecoderState> states;
  states.reserve(B);
  for (const EncoderInput& in : inputs) {
    std::vector<float> enc = run_encoder(w, cfg, in);
    states.push_back(start_decoder(w, cfg, enc.data(), in.length, m.cross_kv));
  }
  const int64_t V = cfg.decoder.vocab_size;
  std::vector<int32_t> next(B, m.generation.decoder_start_token_id);
  std::vector<size_t> active;
  if (params.max_new_tokens > 0)
    for (size_t b = 0; b < B; ++b) active.push_back(b);
  std::vector<float> hidden, logits;
  while (!active.empty()) {
    std::vector<DecoderState*> st;
    std::vector<std::span<const int32_t>> toks;
    for (size_t b : active) {
      st.push_back(&states[b]);
      toks.emplace_back(&next[b], 1);
    }
    decoder_forward(w, cfg, st, toks, hidden);
    const int64_t n = static_cast<int64_t>(active.size());
    logits.resize(static_cast<size_t>(n * V));
    lm_head(w, cfg, hidden.data(), n, logits.data());
    std::vector<size_t> still;
    for (int64_t r = 0; r < n; ++r) {
      const size_t b = active[r];
      const float* lr = logits.data() + r * V;
      const int32_t id = argmax_id(lr, V);
      if (params.keep_step_logits) out[b].step_logits.emplace_back(lr, lr + V);
      out[b].ids.push_back(id);
      if (on_token) on_token(b, id);
      next[b] = id;
      const bool done = (!params.ignore_eos && is_eos(m.generation, id)) ||
                        static_cast<int64_t>(out[b].ids.size()) >= params.max_new_tokens;
      if (!done) still.push_back(b);
    }
    active.swap(still);
  }
  return out;
}

std::vector<std::vector<float>> score_targets(const LoadedModel& m, const std::vector<EncoderInput>& inputs,
                                              const std::vector<std::vector<int32_t>>& targets) {
  const ModelWeights& w = m.weights;
  const ModelConfig& cfg = m.config;
  check(inputs.size() == targets.size(), "score: ", inputs.size(), " inputs but ", targets.size(), " targets");
  const int64_t V = cfg.decoder.vocab_size;
  std::vector<std::vector<float>> out(inputs.size());
  for (size_t b = 0; b < inputs.size(); ++b) {
    const auto& tgt = targets[b];
    check(!tgt.empty(), "score: target ", b, " is empty");
    for (int32_t id : tgt) check(id >= 0 && id < V, "score: target id ", id, " is outside the vocabulary");
    std::vector<float> enc = run_encoder(w, cfg, inputs[b]);
    DecoderState st = start_decoder(w, cfg, enc.data(), inputs[b].length, m.cross_kv);
    std::vector<int32_t> dec_in{m.generation.decoder_start_token_id};
    dec_in.insert(dec_in.end(), tgt.begin(), tgt.end() - 1);
    std::vector<float> hidden;
    decoder_forward(w, cfg, {&st}, {std::span<const int32_t>(dec_in)}, hidden);
    const int64_t T = static_cast<int64_t>(dec_in.size());
    std::vector<float> logits(static_cast<size_t>(V)), lsm(static_cast<size_t>(V));
    for (int64_t t = 0; t < T; ++t) {  // one row at a time: never a [T, V] buffer
      lm_head(w, cfg, hidden.data() + t * cfg.decoder.hidden_size, 1, logits.data());
      log_softmax(logits.data(), V, lsm.data());
      out[b].push_back(lsm[tgt[t]]);
    }
  }
  return out;
}

}  // namespace t5g
