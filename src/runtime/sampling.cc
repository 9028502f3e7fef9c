#include "runtime/sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "kernels/ops.h"
#include "util/error.h"

namespace t5g {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

bool in_vocab(int32_t id, int64_t V) { return id >= 0 && id < V; }

// softmax of the row in fp32, as torch: exp(x - max) / sum; -inf gives 0.
void softmax_f32(const float* x, int64_t n, float* out) {
  float mx = kNegInf;
  for (int64_t i = 0; i < n; ++i) mx = std::max(mx, x[i]);
  if (mx == kNegInf) {  // nothing finite: uniform nothing
    std::fill(out, out + n, 0.0f);
    return;
  }
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    out[i] = std::exp(x[i] - mx);
    sum += out[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) out[i] *= inv;
}

}  // namespace

SamplingParams SamplingParams::from_generation_config(const GenerationConfig& g) {
  SamplingParams p;
  p.do_sample = g.do_sample;
  p.temperature = g.temperature;
  p.top_k = g.top_k;
  p.top_p = g.top_p;
  return p;
}

void SamplingParams::validate() const {
  check(std::isfinite(temperature) && temperature >= 0.0, "temperature must be >= 0 (0 = greedy), got ",
        temperature);
  check(top_k >= 0, "top_k must be >= 0 (0 = off), got ", top_k);
  check(top_p >= 0.0 && top_p <= 1.0, "top_p must be in [0, 1], got ", top_p);
  check(min_p >= 0.0 && min_p <= 1.0, "min_p must be in [0, 1], got ", min_p);
  check(repetition_penalty > 0.0 && std::isfinite(repetition_penalty),
        "repetition_penalty must be a positive number, got ", repetition_penalty);
  check(no_repeat_ngram_size >= 0, "no_repeat_ngram_size must be >= 0, got ", no_repeat_ngram_size);
  check(min_new_tokens >= 0, "min_new_tokens must be >= 0, got ", min_new_tokens);
}

void apply_repetition_penalty(float* scores, int64_t V, std::span<const int32_t> history, double penalty) {
  if (penalty == 1.0 || history.empty()) return;
  std::vector<int32_t> ids(history.begin(), history.end());
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  const float pf = static_cast<float>(penalty);
  for (int32_t id : ids) {
    if (!in_vocab(id, V)) continue;
    float& s = scores[id];
    s = s < 0.0f ? s * pf : s / pf;
  }
}

void apply_no_repeat_ngram(float* scores, int64_t V, std::span<const int32_t> history, int64_t n) {
  if (n <= 0) return;
  const int64_t len = static_cast<int64_t>(history.size());
  if (len + 1 < n) return;
  // The last n-1 tokens; every earlier n-gram starting with them bans its last token.
  const int32_t* key = history.data() + (len + 1 - n);
  for (int64_t i = 0; i + n <= len; ++i) {
    if (std::equal(key, key + (n - 1), history.data() + i)) {
      const int32_t banned = history[static_cast<size_t>(i + n - 1)];
      if (in_vocab(banned, V)) scores[banned] = kNegInf;
    }
  }
}

void apply_min_new_tokens(float* scores, int64_t V, int64_t generated, int64_t min_new_tokens,
                          std::span<const int32_t> eos_ids) {
  if (generated >= min_new_tokens) return;
  for (int32_t id : eos_ids)
    if (in_vocab(id, V)) scores[id] = kNegInf;
}

void apply_temperature(float* scores, int64_t V, double temperature) {
  if (temperature == 1.0) return;
  check(temperature > 0.0, "temperature must be > 0, got ", temperature);
  const float t = static_cast<float>(temperature);
  for (int64_t i = 0; i < V; ++i) scores[i] = scores[i] / t;
}

void apply_top_k(float* scores, int64_t V, int64_t k, int64_t min_keep) {
  if (k <= 0) return;
  k = std::min(std::max(k, min_keep), V);
  if (k >= V) return;
  std::vector<float> tmp(scores, scores + V);
  std::nth_element(tmp.begin(), tmp.begin() + (k - 1), tmp.end(), std::greater<float>());
  const float kth = tmp[static_cast<size_t>(k - 1)];
  for (int64_t i = 0; i < V; ++i)
    if (scores[i] < kth) scores[i] = kNegInf;
}

void apply_top_p(float* scores, int64_t V, double top_p, int64_t min_keep) {
  if (top_p >= 1.0) return;
  // Tokens with -inf have probability 0: their cumulative probability (0) is always <= 1 - top_p,
  // so they stay removed; only the finite ones need sorting.
  std::vector<int32_t> idx;
  idx.reserve(static_cast<size_t>(V));
  for (int64_t i = 0; i < V; ++i)
    if (scores[i] != kNegInf) idx.push_back(static_cast<int32_t>(i));
  const int64_t n = static_cast<int64_t>(idx.size());
  if (n == 0) return;
  // Ascending by score (ties: lower index first).
  std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return scores[a] < scores[b]; });
  std::vector<float> sorted(static_cast<size_t>(n)), probs(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) sorted[i] = scores[idx[i]];
  softmax_f32(sorted.data(), n, probs.data());
  const float threshold = static_cast<float>(1.0 - top_p);
  double cum = 0.0;  // torch's CPU cumsum accumulates fp32 in double and stores fp32
  const int64_t keep_from = std::max<int64_t>(0, n - min_keep);
  for (int64_t i = 0; i < n; ++i) {
    cum += probs[i];
    if (i < keep_from && static_cast<float>(cum) <= threshold) scores[idx[i]] = kNegInf;
  }
}

void apply_min_p(float* scores, int64_t V, double min_p, int64_t min_keep) {
  if (min_p <= 0.0) return;
  std::vector<float> probs(static_cast<size_t>(V));
  softmax_f32(scores, V, probs.data());
  float top = 0.0f;
  for (float q : probs) top = std::max(top, q);
  const float thr = static_cast<float>(min_p) * top;
  // The min_keep most probable tokens always stay.
  std::vector<int32_t> keep;
  if (min_keep > 0) {
    std::vector<int32_t> order(static_cast<size_t>(V));
    for (int64_t i = 0; i < V; ++i) order[i] = static_cast<int32_t>(i);
    const int64_t k = std::min(min_keep, V);
    std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
      return probs[a] > probs[b] || (probs[a] == probs[b] && a < b);
    });
    keep.assign(order.begin(), order.begin() + k);
  }
  std::vector<char> protect(static_cast<size_t>(V), 0);
  for (int32_t i : keep) protect[i] = 1;
  for (int64_t i = 0; i < V; ++i)
    if (!protect[i] && probs[i] < thr) scores[i] = kNegInf;
}

void apply_processors(float* scores, int64_t V, std::span<const int32_t> history, const SamplingParams& p,
                      std::span<const int32_t> eos_ids) {
  apply_repetition_penalty(scores, V, history, p.repetition_penalty);
  apply_no_repeat_ngram(scores, V, history, p.no_repeat_ngram_size);
  const int64_t generated = history.empty() ? 0 : static_cast<int64_t>(history.size()) - 1;
  apply_min_new_tokens(scores, V, generated, p.min_new_tokens, eos_ids);
}

void apply_warpers(float* scores, int64_t V, const SamplingParams& p) {
  apply_temperature(scores, V, p.temperature);
  apply_top_k(scores, V, p.top_k, 1);
  apply_top_p(scores, V, p.top_p, 1);
  apply_min_p(scores, V, p.min_p, 1);
}

int32_t argmax_id(const float* x, int64_t n) { return static_cast<int32_t>(argmax_first(x, n)); }

int32_t sample_from_scores(const float* scores, int64_t V, Rng& rng) {
  float mx = kNegInf;
  for (int64_t i = 0; i < V; ++i) mx = std::max(mx, scores[i]);
  check(mx != kNegInf && !std::isnan(mx), "sampling: no token has a finite score");
  std::vector<double> w(static_cast<size_t>(V));
  double total = 0.0;
  for (int64_t i = 0; i < V; ++i) {
    w[i] = scores[i] == kNegInf ? 0.0 : std::exp(static_cast<double>(scores[i]) - mx);
    total += w[i];
  }
  const double u = rng.uniform() * total;
  double cum = 0.0;
  int64_t last = -1;
  for (int64_t i = 0; i < V; ++i) {
    if (w[i] <= 0.0) continue;
    cum += w[i];
    last = i;
    if (u < cum) return static_cast<int32_t>(i);
  }
  return static_cast<int32_t>(last);  // u landed on the rounding slack at the very end
}

TokenSelector::TokenSelector(const SamplingParams& params, std::vector<int32_t> eos_ids)
    : p_(params), eos_(std::move(eos_ids)), rng_(params.seed) {
  p_.validate();
}

int32_t TokenSelector::select(float* scores, int64_t V, std::span<const int32_t> history) {
  apply_processors(scores, V, history, p_, eos_);
  if (p_.greedy()) return argmax_id(scores, V);
  apply_warpers(scores, V, p_);
  return sample_from_scores(scores, V, rng_);
}

}  // namespace t5g
