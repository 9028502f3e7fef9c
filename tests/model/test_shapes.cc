// Shapes beyond the shared tiny checkpoints (tests/data/shapes, made by
// tools/oracle/make_shape_vectors.py): MQA, odd/even windows, query_pre_attn_scalar != head_dim,
// inputs and outputs several times the window (the sliding-layer ring buffer wraps many times),
// a final softcap. Encoder output and logits within 1e-4, greedy sequences exact, batched rows
// bitwise equal to running alone, and score() equal to the reference log-softmax.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <span>

#include "../support/case_file.h"
#include "model/decoder.h"
#include "model/model.h"
#include "runtime/generate.h"

namespace t5g {
namespace {

using test::Array;
using test::CaseFile;

class Shapes : public ::testing::TestWithParam<std::string> {};

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) m = std::max(m, static_cast<double>(std::fabs(a[i] - b[i])));
  return m;
}

std::vector<int32_t> to_i32(const Array& a) { return std::vector<int32_t>(a.i.begin(), a.i.end()); }

TEST_P(Shapes, MatchesReference) {
  const std::string dir = test::data_dir() + "/shapes/" + GetParam();
  auto m = load_model(dir + "/model");
  EXPECT_FALSE(m->weights.vision.present);
  CaseFile cf(dir + "/cases.safetensors");
  const int64_t V = m->config.decoder.vocab_size;
  std::vector<std::vector<int32_t>> inputs;
  std::vector<std::vector<int32_t>> expected_greedy;
  int64_t new_tokens = 0;
  for (int b = 0; cf.has(std::to_string(b) + ".input_ids"); ++b) {
    SCOPED_TRACE("row " + std::to_string(b));
    const std::string p = std::to_string(b) + ".";
    auto ids = to_i32(cf.get(p + "input_ids"));
    auto dec = to_i32(cf.get(p + "decoder_input_ids"));
    const int64_t L = static_cast<int64_t>(ids.size()), T = static_cast<int64_t>(dec.size());
    auto enc = run_encoder(m->weights, m->config, EncoderInput{ids.data(), L, nullptr, 0});
    EXPECT_LT(max_abs_diff(enc, cf.get(p + "encoder_last_hidden_state").f), 1e-4) << "encoder output";
    DecoderState st = start_decoder(m->weights, m->config, enc.data(), L);
    std::vector<float> hidden, logits(static_cast<size_t>(T * V));
    decoder_forward(m->weights, m->config, {&st}, {std::span<const int32_t>(dec)}, hidden);
    lm_head(m->weights, m->config, hidden.data(), T, logits.data());
    const Array ref_logits = cf.get(p + "logits");
    EXPECT_LT(max_abs_diff(logits, ref_logits.f), 1e-4) << "teacher-forced logits";

    // score(): target = dec[1:] + one more token; logprobs = log_softmax(reference logits)[target].
    std::vector<int32_t> target(dec.begin() + 1, dec.end());
    target.push_back(7);
    auto lp = score_targets(*m, {EncoderInput{ids.data(), L, nullptr, 0}}, {target});
    std::vector<float> row(static_cast<size_t>(V)), ls(static_cast<size_t>(V));
    double worst = 0;
    for (int64_t t = 0; t < T; ++t) {
      std::copy(ref_logits.f.begin() + t * V, ref_logits.f.begin() + (t + 1) * V, row.begin());
      log_softmax(row.data(), V, ls.data());
      worst = std::max(worst, static_cast<double>(std::fabs(lp[0][t] - ls[target[t]])));
    }
    EXPECT_LT(worst, 1e-4) << "score logprobs";

    const auto seq = to_i32(cf.get(p + "generate_sequence"));
    expected_greedy.emplace_back(seq.begin() + 1, seq.end());
    new_tokens = static_cast<int64_t>(seq.size()) - 1;
    inputs.push_back(ids);
  }
  ASSERT_FALSE(inputs.empty());

  // Greedy, EOS not stopping (the reference ran with eos_token_id=None), all rows in one batch.
  GreedyParams gp;
  gp.max_new_tokens = new_tokens;
  gp.ignore_eos = true;
  gp.keep_step_logits = true;
  std::vector<EncoderInput> ins;
  for (const auto& ids : inputs) ins.push_back(EncoderInput{ids.data(), static_cast<int64_t>(ids.size()), nullptr, 0});
  auto batched = generate_greedy(*m, ins, gp);
  for (size_t b = 0; b < inputs.size(); ++b) {
    EXPECT_EQ(batched[b].ids, expected_greedy[b]) << "greedy row " << b;
    const Array step = cf.get(std::to_string(b) + ".generate_step_logits");
    std::vector<float> ours;
    for (const auto& s : batched[b].step_logits) ours.insert(ours.end(), s.begin(), s.end());
    EXPECT_LT(max_abs_diff(ours, step.f), 1e-4) << "step logits row " << b;
    // Each row of the batch is bitwise what it is alone.
    auto alone = generate_greedy(*m, {ins[b]}, gp);
    EXPECT_EQ(alone[0].ids, batched[b].ids);
    EXPECT_EQ(alone[0].step_logits, batched[b].step_logits) << "row " << b << " differs when batched";
  }
  // The decoder's steps run as a team of the OpenMP threads (kernels/team.h): the batch gives the same
  // bits on one thread (no team) and on three.
  const int saved = omp_get_max_threads();
  for (int threads : {1, 3}) {
    omp_set_num_threads(threads);
    auto again = generate_greedy(*m, ins, gp);
    for (size_t b = 0; b < inputs.size(); ++b)
      EXPECT_EQ(again[b].step_logits, batched[b].step_logits) << "row " << b << " differs on " << threads << " threads";
  }
  omp_set_num_threads(saved);
}

INSTANTIATE_TEST_SUITE_P(Oracle, Shapes, ::testing::Values("mqa_oddwin", "gqa_evenwin_softcap"));

// The sliding-layer self cache is a ring of `sliding_window` rows: its memory does not grow with
// the output, while full layers grow by one row per token. Before the window fills, a sliding layer
// holds no more rows than twice the positions so far (allocated as they arrive).
TEST(DecoderCache, SlidingLayersKeepOnlyTheirWindow) {
  auto m = load_model(test::data_dir() + "/shapes/mqa_oddwin/model");
  const auto& c = m->config.decoder;
  ASSERT_GE(c.sliding_window, 3);
  std::vector<int32_t> ids{2, 10, 11, 12, 13, 14, 15};
  auto enc = run_encoder(m->weights, m->config, EncoderInput{ids.data(), 7, nullptr, 0});
  DecoderState st = start_decoder(m->weights, m->config, enc.data(), 7);
  std::vector<float> hidden;
  for (int step = 0; step < 50; ++step) {
    int32_t tok = 20 + step % 7;
    decoder_forward(m->weights, m->config, {&st}, {std::span<const int32_t>(&tok, 1)}, hidden);
    if (step == 0)
      for (int64_t li = 0; li < c.num_layers; ++li) {
        const auto& lc = st.layers[li];
        EXPECT_EQ(lc.bf16 ? lc.kb.size() : lc.k.size(), static_cast<size_t>(c.kv_dim())) << "layer " << li;
      }
  }
  for (int64_t li = 0; li < c.num_layers; ++li) {
    const auto& lc = st.layers[li];
    const size_t held = lc.bf16 ? lc.kb.size() : lc.k.size();
    if (c.layer_types[li] == LayerType::kSliding) {
      EXPECT_EQ(lc.capacity, c.sliding_window);
      EXPECT_EQ(held, static_cast<size_t>(c.sliding_window * c.kv_dim()));
    } else {
      EXPECT_EQ(held, static_cast<size_t>(50 * c.kv_dim()));
    }
  }
}

}  // namespace
}  // namespace t5g
