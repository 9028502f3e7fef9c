// Logits processors and sampling: transformers' semantics on hand-made rows, RNG reproducibility,
// and distribution checks (top-k / top-p / min-p never sample outside their set, temperature -> 0
// approaches argmax, empirical frequencies match softmax).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <set>

#include "runtime/sampling.h"
#include "t5g/error.h"

namespace t5g {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<double> softmax(const std::vector<float>& x) {
  double mx = -INFINITY, sum = 0;
  for (float v : x) mx = std::max(mx, static_cast<double>(v));
  std::vector<double> p(x.size());
  for (size_t i = 0; i < x.size(); ++i) sum += p[i] = std::exp(x[i] - mx);
  for (double& v : p) v /= sum;
  return p;
}

TEST(GenProcessors, RepetitionPenaltyDividesPositiveAndMultipliesNegative) {
  std::vector<float> s{2.0f, -1.0f, 0.5f, 3.0f, -2.0f, 0.0f};
  const std::vector<int32_t> hist{2, 0, 1, 1, 5};  // start token 2 counts; 1 twice is penalised once
  apply_repetition_penalty(s.data(), 6, hist, 2.0);
  EXPECT_FLOAT_EQ(s[0], 1.0f);
  EXPECT_FLOAT_EQ(s[1], -2.0f);
  EXPECT_FLOAT_EQ(s[2], 0.25f);
  EXPECT_FLOAT_EQ(s[3], 3.0f);
  EXPECT_FLOAT_EQ(s[4], -2.0f);
  EXPECT_FLOAT_EQ(s[5], 0.0f);
  // a penalty < 1 rewards
  std::vector<float> r{2.0f, -1.0f};
  apply_repetition_penalty(r.data(), 2, std::vector<int32_t>{0, 1}, 0.5);
  EXPECT_FLOAT_EQ(r[0], 4.0f);
  EXPECT_FLOAT_EQ(r[1], -0.5f);
}

TEST(GenProcessors, NoRepeatNgramBansCompletions) {
  const int64_t V = 10;
  auto banned = [&](std::vector<int32_t> hist, int64_t n) {
    std::vector<float> s(V, 1.0f);
    apply_no_repeat_ngram(s.data(), V, hist, n);
    std::set<int> out;
    for (int i = 0; i < V; ++i)
      if (s[i] == -kInf) out.insert(i);
    return out;
  };
  // bigrams: last token 3 was followed by 4 and by 7 before
  EXPECT_EQ(banned({2, 3, 4, 5, 3, 7, 1, 3}, 2), (std::set<int>{4, 7}));
  // unigrams: every token seen is banned
  EXPECT_EQ(banned({2, 3, 4}, 1), (std::set<int>{2, 3, 4}));
  // trigrams: (5, 6) followed by 7 earlier
  EXPECT_EQ(banned({2, 5, 6, 7, 8, 5, 6}, 3), (std::set<int>{7}));
  EXPECT_EQ(banned({2, 5, 6, 7, 8, 6, 5}, 3), (std::set<int>{}));
  // too short to complete an n-gram: nothing banned
  EXPECT_EQ(banned({2}, 3), (std::set<int>{}));
  EXPECT_EQ(banned({2, 2}, 3), (std::set<int>{}));
  EXPECT_EQ(banned({2, 2}, 2), (std::set<int>{2}));
}

TEST(GenProcessors, MinNewTokensSuppressesEveryEosId) {
  const std::vector<int32_t> eos{1, 4};
  for (int64_t generated = 0; generated < 5; ++generated) {
    std::vector<float> s(6, 0.5f);
    std::vector<int32_t> hist(static_cast<size_t>(generated + 1), 3);
    SamplingParams p;
    p.min_new_tokens = 3;
    apply_processors(s.data(), 6, hist, p, eos);
    const bool banned = generated < 3;
    EXPECT_EQ(s[1] == -kInf, banned) << generated;
    EXPECT_EQ(s[4] == -kInf, banned) << generated;
    EXPECT_EQ(s[0], 0.5f);
    // greedy then never picks EOS even when it is the best token
    std::vector<float> t{0.0f, 9.0f, 1.0f, 0.0f, 8.0f, 0.0f};
    TokenSelector sel(p, eos);
    const int32_t id = sel.select(t.data(), 6, hist);
    EXPECT_EQ(id, banned ? 2 : 1);
  }
}

TEST(GenProcessors, TopKKeepsTiesAtTheKth) {
  std::vector<float> s{1.0f, 5.0f, 3.0f, 3.0f, 2.0f, 4.0f};
  apply_top_k(s.data(), 6, 3, 1);  // 5, 4, 3 (and the tied 3)
  EXPECT_EQ(s[0], -kInf);
  EXPECT_EQ(s[4], -kInf);
  EXPECT_EQ(s[1], 5.0f);
  EXPECT_EQ(s[2], 3.0f);
  EXPECT_EQ(s[3], 3.0f);
  EXPECT_EQ(s[5], 4.0f);
}

TEST(GenProcessors, TopPKeepsTheNucleus) {
  // probabilities 0.5, 0.25, 0.125, 0.125 (log space); top_p 0.7 keeps 0.5 and 0.25: ascending
  // cumulative sums are .125, .25, .5, 1 and those <= 0.3 go.
  std::vector<float> s{std::log(0.125f), std::log(0.5f), std::log(0.25f), std::log(0.125f)};
  apply_top_p(s.data(), 4, 0.7, 1);
  EXPECT_EQ(s[0], -kInf);
  EXPECT_EQ(s[3], -kInf);
  EXPECT_TRUE(std::isfinite(s[1]));
  EXPECT_TRUE(std::isfinite(s[2]));
  // a tiny top_p keeps min_tokens_to_keep
  std::vector<float> t{0.0f, 1.0f, 2.0f};
  apply_top_p(t.data(), 3, 0.0001, 1);
  EXPECT_EQ(t[0], -kInf);
  EXPECT_EQ(t[1], -kInf);
  EXPECT_EQ(t[2], 2.0f);
  std::vector<float> u{0.0f, 1.0f, 2.0f};
  apply_top_p(u.data(), 3, 0.0001, 2);
  EXPECT_EQ(u[0], -kInf);
  EXPECT_EQ(u[1], 1.0f);
}

TEST(GenProcessors, MinPScalesWithTheTopProbability) {
  // probs .5 .3 .15 .05: min_p .2 -> threshold .1 removes .05
  std::vector<float> s{std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  apply_min_p(s.data(), 4, 0.2, 1);
  EXPECT_TRUE(std::isfinite(s[2]));
  EXPECT_EQ(s[3], -kInf);
  std::vector<float> t{std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  apply_min_p(t.data(), 4, 1.0, 1);  // only the top token survives
  EXPECT_TRUE(std::isfinite(t[0]));
  EXPECT_EQ(t[1], -kInf);
  EXPECT_EQ(t[2], -kInf);
}

TEST(GenProcessors, ValidationNamesTheParameter) {
  SamplingParams p;
  p.top_p = 1.5;
  EXPECT_THROW(p.validate(), Error);
  p = {};
  p.repetition_penalty = 0.0;
  EXPECT_THROW(p.validate(), Error);
  p = {};
  p.top_k = -1;
  EXPECT_THROW(p.validate(), Error);
  p = {};
  p.min_p = -0.1;
  EXPECT_THROW(p.validate(), Error);
  p = {};
  p.temperature = -1.0;
  EXPECT_THROW(p.validate(), Error);
  p.temperature = 0.0;
  EXPECT_NO_THROW(p.validate());
  GenerationConfig g;
  g.do_sample = true;
  g.temperature = 0.7;
  g.top_k = 20;
  g.top_p = 0.9;
  p = SamplingParams::from_generation_config(g);
  EXPECT_TRUE(p.do_sample);
  EXPECT_DOUBLE_EQ(p.temperature, 0.7);
  EXPECT_EQ(p.top_k, 20);
  EXPECT_DOUBLE_EQ(p.top_p, 0.9);
}

std::vector<float> random_logits(int64_t V, uint64_t seed) {
  Rng r(seed);
  std::vector<float> x(static_cast<size_t>(V));
  for (float& v : x) v = static_cast<float>(r.uniform() * 6.0 - 3.0);
  return x;
}

std::vector<int32_t> draws(const std::vector<float>& logits, const SamplingParams& p, int n) {
  TokenSelector sel(p, {});
  std::vector<int32_t> out;
  const std::vector<int32_t> hist{0};
  for (int i = 0; i < n; ++i) {
    std::vector<float> row = logits;
    out.push_back(sel.select(row.data(), static_cast<int64_t>(row.size()), hist));
  }
  return out;
}

TEST(GenSampling, SameSeedSameIdsDifferentSeedsDiffer) {
  const auto x = random_logits(50, 1);
  SamplingParams p;
  p.do_sample = true;
  p.top_k = 0;
  p.seed = 1234;
  const auto a = draws(x, p, 200), b = draws(x, p, 200);
  EXPECT_EQ(a, b);
  p.seed = 1235;
  EXPECT_NE(a, draws(x, p, 200));
  Rng r1(7), r2(7);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(r1.next(), r2.next());
}

TEST(GenSampling, TopKNeverSamplesOutsideTheTopK) {
  const auto x = random_logits(64, 2);
  SamplingParams p;
  p.do_sample = true;
  p.top_k = 5;
  p.seed = 3;
  std::vector<float> sorted = x;
  std::sort(sorted.begin(), sorted.end(), std::greater<float>());
  std::set<int32_t> seen;
  for (int32_t id : draws(x, p, 5000)) {
    EXPECT_GE(x[id], sorted[4]);
    seen.insert(id);
  }
  EXPECT_EQ(seen.size(), 5u);  // and every one of the k is reachable
}

TEST(GenSampling, TopPNeverSamplesOutsideTheNucleus) {
  const auto x = random_logits(40, 4);
  const auto prob = softmax(x);
  SamplingParams p;
  p.do_sample = true;
  p.top_k = 0;
  p.top_p = 0.6;
  p.seed = 5;
  // the nucleus: most probable tokens until their mass reaches top_p
  std::vector<int32_t> order(40);
  for (int i = 0; i < 40; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](int a, int b) { return prob[a] > prob[b]; });
  std::set<int32_t> nucleus;
  double mass = 0;
  for (int32_t i : order) {
    nucleus.insert(i);
    mass += prob[i];
    if (mass >= 0.6) break;
  }
  std::set<int32_t> seen;
  for (int32_t id : draws(x, p, 5000)) {
    EXPECT_TRUE(nucleus.count(id)) << id;
    seen.insert(id);
  }
  EXPECT_EQ(seen, nucleus);
}

TEST(GenSampling, MinPNeverSamplesBelowTheThreshold) {
  const auto x = random_logits(40, 6);
  const auto prob = softmax(x);
  const double top = *std::max_element(prob.begin(), prob.end());
  SamplingParams p;
  p.do_sample = true;
  p.top_k = 0;
  p.min_p = 0.3;
  p.seed = 8;
  for (int32_t id : draws(x, p, 3000)) EXPECT_GE(prob[id], 0.3 * top * (1 - 1e-5));
}

TEST(GenSampling, TemperatureToZeroApproachesArgmax) {
  const auto x = random_logits(100, 9);
  const int32_t best = argmax_id(x.data(), 100);
  SamplingParams p;
  p.do_sample = true;
  p.top_k = 0;
  p.seed = 10;
  p.temperature = 1e-3;
  for (int32_t id : draws(x, p, 500)) EXPECT_EQ(id, best);
  p.temperature = 0.0;  // our convention: greedy
  for (int32_t id : draws(x, p, 10)) EXPECT_EQ(id, best);
  // the argmax's frequency grows as the temperature falls
  auto freq = [&](double t) {
    p.temperature = t;
    int hits = 0;
    for (int32_t id : draws(x, p, 4000)) hits += id == best;
    return hits / 4000.0;
  };
  const double f2 = freq(2.0), f1 = freq(1.0), f05 = freq(0.5), f01 = freq(0.1);
  EXPECT_LT(f2, f1);
  EXPECT_LT(f1, f05);
  EXPECT_LT(f05, f01);
}

TEST(GenSampling, FrequenciesMatchSoftmax) {
  const std::vector<float> x{0.0f, 1.0f, -0.5f, 2.0f, 0.3f};
  SamplingParams p;
  p.do_sample = true;
  p.top_k = 0;
  p.seed = 11;
  p.temperature = 1.3;
  std::vector<float> scaled(x);
  for (float& v : scaled) v = v / 1.3f;
  const auto prob = softmax(scaled);
  const int n = 200000;
  std::vector<int> count(5, 0);
  for (int32_t id : draws(x, p, n)) ++count[id];
  for (int i = 0; i < 5; ++i) {
    const double f = count[i] / static_cast<double>(n);
    const double sigma = std::sqrt(prob[i] * (1 - prob[i]) / n);
    EXPECT_NEAR(f, prob[i], 5 * sigma) << "token " << i;
  }
}

TEST(GenSampling, NoFiniteScoreIsAnError) {
  std::vector<float> s(4, -kInf);
  Rng r(1);
  EXPECT_THROW(sample_from_scores(s.data(), 4, r), Error);
}

}  // namespace
}  // namespace t5g
