#include "runtime/beam_search.h"

#include <algorithm>
#include <cmath>
#include <span>

#include "kernels/ops.h"
#include "model/decoder.h"
#include "util/error.h"

namespace t5g {

namespace {

constexpr float kBig = 1.0e9f;  // transformers' "very large" penalty

struct Candidate {
  float score;     // accumulated log-prob
  int64_t index;   // beam * V + token
};

// The K best (score desc, index asc) of a stream of candidates visited in increasing index order.
class TopK {
 public:
  explicit TopK(size_t k) : k_(k) { items_.reserve(k + 1); }
  void offer(float score, int64_t index) {
    if (items_.size() == k_ && !(score > items_.back().score)) return;  // NaN and ties lose
    auto it = std::upper_bound(items_.begin(), items_.end(), score,
                               [](float s, const Candidate& c) { return s > c.score; });
    items_.insert(it, Candidate{score, index});
    if (items_.size() > k_) items_.pop_back();
  }
  const std::vector<Candidate>& items() const { return items_; }

 private:
  size_t k_;
  std::vector<Candidate> items_;
};

// Copies what differs between two beams of the same input: the self-attention caches and the
// length (the cross K/V are the same for every beam of an input and are left in place).
void copy_self_cache(DecoderState& dst, const DecoderState& src) {
  dst.layers = src.layers;  // every field of every layer (element-wise: dst's buffers are reused)
  dst.length = src.length;
}

// states[j] <- states[src[j]] for every j: the first beam taken from a source gets it moved; the
// others are copies made in the states no beam takes from.
void reorder_states(std::vector<DecoderState>& states, const std::vector<int>& src) {
  const size_t n = states.size();
  std::vector<int> uses(n, 0), first(n, -1);
  for (int s : src) ++uses[s];
  std::vector<int> spare;
  for (size_t s = 0; s < n; ++s)
    if (uses[s] == 0) spare.push_back(static_cast<int>(s));
  std::vector<DecoderState> out(n);
  for (size_t j = 0; j < n; ++j) {
    const int s = src[j];
    if (first[s] < 0) {
      first[s] = static_cast<int>(j);
      continue;
    }
    const int f = spare.back();
    spare.pop_back();
    copy_self_cache(states[f], states[s]);
    out[j] = std::move(states[f]);
  }
  for (size_t s = 0; s < n; ++s)
    if (first[s] >= 0) out[first[s]] = std::move(states[s]);
  states = std::move(out);
}

struct Search {
  std::vector<DecoderState> states;           // one per running beam
  std::vector<std::vector<int32_t>> seqs;     // start token + generated, per running beam
  std::vector<float> running;                 // running scores (sorted best first after step 0)
  std::vector<BeamHypothesis> finished;       // best first, at most num_beams
  bool improvable = true;                     // transformers' is_early_stop_heuristic_unsatisfied
  bool done = false;
  bool first_step = true;                     // all beams still identical: one decoder row
  size_t row = 0;                             // first logits row of this input in the step
};

}  // namespace

float beam_hypothesis_score(float sum_logprobs, int64_t generated_len, double length_penalty) {
  const float denom = static_cast<float>(std::pow(static_cast<double>(generated_len), length_penalty));
  return sum_logprobs / denom;
}

std::vector<BeamSearchOutput> generate_beam(const LoadedModel& m, const std::vector<EncoderInput>& inputs,
                                            const BeamSearchParams& p) {
  const ModelWeights& w = m.weights;
  const ModelConfig& cfg = m.config;
  check(p.num_beams >= 1, "num_beams must be >= 1, got ", p.num_beams);
  check(p.num_return_sequences >= 1 && p.num_return_sequences <= p.num_beams,
        "num_return_sequences must be in [1, num_beams], got ", p.num_return_sequences);
  check(p.max_new_tokens >= 1, "beam search needs max_new_tokens >= 1, got ", p.max_new_tokens);
  check(std::isfinite(p.length_penalty), "length_penalty must be finite");
  check(!p.processors.do_sample, "beam search with sampling is not supported");
  p.processors.validate();
  check(p.stop_strings.empty() || static_cast<bool>(p.decode), "stop strings need a decode function");

  const std::vector<int32_t> eos = p.eos_token_ids.empty() ? m.generation.eos_token_ids : p.eos_token_ids;
  const int64_t V = cfg.decoder.vocab_size;
  const int nb = static_cast<int>(p.num_beams);
  const size_t K = static_cast<size_t>(std::max<int64_t>(2, 1 + static_cast<int64_t>(eos.size())) * nb);
  const int32_t start = m.generation.decoder_start_token_id;

  std::vector<Search> search(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    Search& s = search[i];
    std::vector<float> enc = run_encoder(w, cfg, inputs[i]);
    s.states.reserve(static_cast<size_t>(nb));
    s.states.push_back(start_decoder(w, cfg, enc.data(), inputs[i].length, m.cross_kv));
    for (int b = 1; b < nb; ++b) s.states.push_back(s.states[0]);
    s.seqs.assign(static_cast<size_t>(nb), std::vector<int32_t>{start});
    s.running.assign(static_cast<size_t>(nb), -kBig);
    s.running[0] = 0.0f;
  }

  std::vector<float> hidden, logits, lp(static_cast<size_t>(V));
  for (int64_t step = 0; step < p.max_new_tokens; ++step) {
    // a. one decoder step for every running beam of every unfinished input
    std::vector<DecoderState*> st;
    std::vector<std::span<const int32_t>> toks;
    for (Search& s : search) {
      if (s.done) continue;
      s.row = st.size();
      const int live = s.first_step ? 1 : nb;
      for (int b = 0; b < live; ++b) {
        st.push_back(&s.states[b]);
        toks.emplace_back(&s.seqs[b].back(), 1);
      }
    }
    if (st.empty()) break;
    decoder_forward(w, cfg, st, toks, hidden);
    const int64_t rows = static_cast<int64_t>(st.size());
    logits.resize(static_cast<size_t>(rows * V));
    lm_head(w, cfg, hidden.data(), rows, logits.data());

    const int64_t generated = step + 1;  // generated length once this step's token is appended
    const bool at_max = generated >= p.max_new_tokens;
    for (Search& s : search) {
      if (s.done) continue;
      // b. processed log-probs + running scores; c. the K best continuations
      TopK top(K);
      for (int b = 0; b < nb; ++b) {
        if (b == 0 || !s.first_step) {
          const float* row = logits.data() + (s.row + (s.first_step ? 0 : b)) * V;
          log_softmax(row, V, lp.data());
          apply_processors(lp.data(), V, s.seqs[b], p.processors, eos);
        }  // on the first step every beam has beam 0's sequence and log-probs
        const float base = s.running[b];
        for (int64_t v = 0; v < V; ++v) top.offer(lp[v] + base, b * V + v);
      }
      const std::vector<Candidate>& cand = top.items();
      // d. which continuations finish
      std::vector<char> hit(cand.size(), 0);
      bool all_hit = true;
      for (size_t k = 0; k < cand.size(); ++k) {
        const int b = static_cast<int>(cand[k].index / V);
        const int32_t tok = static_cast<int32_t>(cand[k].index % V);
        bool h = at_max || is_stop_token(tok, eos);
        if (!h && !p.stop_strings.empty()) {
          std::vector<int32_t> gen(s.seqs[b].begin() + 1, s.seqs[b].end());
          gen.push_back(tok);
          h = ends_with_stop_string(gen, p.stop_strings, p.decode) >= 0;
        }
        hit[k] = h;
        all_hit = all_hit && h;
      }
      // f. finalise the hits among the first num_beams continuations (with the state before this step)
      const bool full = static_cast<int>(s.finished.size()) == nb && p.early_stopping == EarlyStopping::kTrue;
      if (!full && s.improvable) {
        std::vector<BeamHypothesis> merged = s.finished;
        for (size_t k = 0; k < cand.size() && k < static_cast<size_t>(nb); ++k) {
          if (!hit[k]) continue;
          const int b = static_cast<int>(cand[k].index / V);
          BeamHypothesis h;
          h.ids.assign(s.seqs[b].begin() + 1, s.seqs[b].end());
          h.ids.push_back(static_cast<int32_t>(cand[k].index % V));
          h.score = beam_hypothesis_score(cand[k].score, generated, p.length_penalty);
          merged.push_back(std::move(h));
        }
        std::stable_sort(merged.begin(), merged.end(),
                         [](const BeamHypothesis& a, const BeamHypothesis& b) { return a.score > b.score; });
        if (merged.size() > static_cast<size_t>(nb)) merged.resize(static_cast<size_t>(nb));
        s.finished = std::move(merged);
      }
      if (all_hit) {  // no continuation left (max_new_tokens reached, or every candidate stopped)
        s.done = true;
        continue;
      }
      // e. the num_beams best non-finished continuations keep running
      std::vector<size_t> order(cand.size());
      std::vector<float> pen(cand.size());
      for (size_t k = 0; k < cand.size(); ++k) {
        order[k] = k;
        pen[k] = hit[k] ? cand[k].score + -kBig : cand[k].score;
      }
      std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return pen[a] > pen[b]; });
      std::vector<int> src(static_cast<size_t>(nb));
      std::vector<std::vector<int32_t>> seqs(static_cast<size_t>(nb));
      std::vector<float> running(static_cast<size_t>(nb));
      for (int j = 0; j < nb; ++j) {
        const Candidate& c = cand[order[j]];
        const int b = static_cast<int>(c.index / V);
        src[j] = s.first_step ? 0 : b;  // first step: every beam is beam 0
        seqs[j] = s.seqs[b];
        seqs[j].push_back(static_cast<int32_t>(c.index % V));
        running[j] = pen[order[j]];
      }
      reorder_states(s.states, src);
      s.seqs = std::move(seqs);
      s.running = std::move(running);
      s.first_step = false;
      // g. can a running beam still beat the worst finished hypothesis?
      const int64_t hyp_len =
          (p.early_stopping == EarlyStopping::kNever && p.length_penalty > 0.0) ? p.max_new_tokens : generated;
      const float best_possible = beam_hypothesis_score(s.running[0], hyp_len, p.length_penalty);
      const bool all_finished = static_cast<int>(s.finished.size()) == nb;
      s.improvable = s.improvable && (!all_finished || best_possible > s.finished.back().score);
      if (!s.improvable || (all_finished && p.early_stopping == EarlyStopping::kTrue)) s.done = true;
    }
  }

  std::vector<BeamSearchOutput> out(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    auto& f = search[i].finished;
    const size_t n = std::min(f.size(), static_cast<size_t>(p.num_return_sequences));
    out[i].hypotheses.assign(std::make_move_iterator(f.begin()), std::make_move_iterator(f.begin() + n));
  }
  return out;
}

}  // namespace t5g
