// The model against the reference vectors of Hugging Face transformers (tests/data/vectors):
// every hidden state, the encoder output, the logits and the greedy sequences, on the tiny
// fp32 checkpoints in both key layouts, and the bf16 checkpoint against bf16 reference compute.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <span>

#include "../support/case_file.h"
#include "model/decoder.h"
#include "model/encoder.h"
#include "model/model.h"
#include "runtime/generate.h"

namespace t5g {
namespace {

using test::Array;
using test::CaseFile;

struct Row {
  std::vector<int32_t> ids;  // the unpadded encoder input of this batch row
  int64_t first = 0;         // its first position in the padded reference row
  std::vector<float> image_features;
  int64_t image_rows = 0;
};

// The rows of a case, padding removed (our engine runs each row at its own length).
std::vector<Row> case_rows(const CaseFile& cf, const ModelConfig& cfg, int64_t H) {
  Array ids = cf.get("in.input_ids"), mask = cf.get("in.attention_mask");
  const int64_t B = ids.dim(0);
  std::vector<Row> rows(static_cast<size_t>(B));
  Array feats;
  const bool images = cf.has("out.image_features");
  if (images) feats = cf.get("out.image_features");  // [n_images, mm, H]
  int64_t img_row = 0;
  for (int64_t b = 0; b < B; ++b) {
    Row& r = rows[b];
    auto [row_ids, first] = test::unpadded_row(ids, mask, b);
    r.ids = std::move(row_ids);
    r.first = first;
    const int64_t n_img = std::count(r.ids.begin(), r.ids.end(), cfg.image_token_id);
    if (n_img > 0) {
      r.image_features.assign(feats.f.begin() + img_row * H, feats.f.begin() + (img_row + n_img) * H);
      r.image_rows = n_img;
      img_row += n_img;
    }
  }
  return rows;
}

// max |a - b| over rows [first, first+n) of reference row b of a [B, L, H] array.
double max_diff(const Array& ref, int64_t b, int64_t first, const float* ours, int64_t n) {
  const int64_t L = ref.dim(1), H = ref.dim(2);
  double m = 0;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t j = 0; j < H; ++j)
      m = std::max(m, static_cast<double>(std::fabs(ref.f[(b * L + first + t) * H + j] - ours[t * H + j])));
  return m;
}

EncoderInput as_input(const Row& r) {
  return EncoderInput{r.ids.data(), static_cast<int64_t>(r.ids.size()),
                      r.image_rows ? r.image_features.data() : nullptr, r.image_rows, r.first};
}

struct Param {
  std::string variant, layout, kase;
};

class ReferenceFp32 : public ::testing::TestWithParam<Param> {};

constexpr double kTol = 1e-4;

TEST_P(ReferenceFp32, HiddenStatesLogitsAndGreedy) {
  const Param& P = GetParam();
  const std::string vdir = test::vectors_dir() + "/" + P.variant;
  auto m = load_model(vdir + "/" + P.layout);
  ASSERT_EQ(m->weights.precision, Precision::kF32);
  CaseFile cf(vdir + "/cases/" + P.kase + ".safetensors");
  const ModelConfig& cfg = m->config;
  const int64_t H = cfg.encoder.hidden_size, V = cfg.decoder.vocab_size;
  std::vector<Row> rows = case_rows(cf, cfg, H);
  Array enc_last = cf.get("out.encoder_last_hidden_state");
  std::vector<Array> enc_hs;
  for (int i = 0; i <= cfg.encoder.num_layers; ++i) enc_hs.push_back(cf.get("out.encoder_hidden_states." + std::to_string(i)));
  Array dec_ids = cf.get("in.decoder_input_ids");
  Array logits_ref = cf.get("out.logits");
  std::vector<Array> dec_hs;
  for (int i = 0; i <= cfg.decoder.num_layers; ++i) dec_hs.push_back(cf.get("out.decoder_hidden_states." + std::to_string(i)));
  const int64_t T = dec_ids.dim(1);

  for (size_t b = 0; b < rows.size(); ++b) {
    SCOPED_TRACE("row " + std::to_string(b));
    const Row& r = rows[b];
    const int64_t L = static_cast<int64_t>(r.ids.size());
    std::vector<double> hs_diff(enc_hs.size(), -1);
    std::vector<float> enc = run_encoder(m->weights, cfg, as_input(r), [&](int i, const float* h, int64_t n) {
      hs_diff[i] = max_diff(enc_hs[i], static_cast<int64_t>(b), r.first, h, n);
    });
    // hidden_states[i] is the state after layer i; the last entry is the final-normed output, compared below.
    for (size_t i = 0; i + 1 < hs_diff.size(); ++i) EXPECT_LT(hs_diff[i], kTol) << "encoder hidden state " << i;
    EXPECT_LT(max_diff(enc_last, static_cast<int64_t>(b), r.first, enc.data(), L), kTol) << "encoder output";

    // Teacher-forced decoder over the reference decoder inputs, all tokens in one step.
    DecoderState st = start_decoder(m->weights, cfg, enc.data(), L);
    std::vector<int32_t> dec(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) dec[t] = static_cast<int32_t>(dec_ids.i[b * T + t]);
    std::vector<float> hidden;
    std::vector<double> dhs(dec_hs.size(), -1);
    decoder_forward(m->weights, cfg, {&st}, {std::span<const int32_t>(dec)}, hidden,
                    [&](int i, const float* h, int64_t n) { dhs[i] = max_diff(dec_hs[i], b, 0, h, n); });
    for (size_t i = 0; i + 1 < dhs.size(); ++i) EXPECT_LT(dhs[i], kTol) << "decoder hidden state " << i;
    // The last recorded decoder hidden state is the final-normed output.
    EXPECT_LT(max_diff(dec_hs.back(), b, 0, hidden.data(), T), kTol) << "decoder output (after final norm)";
    std::vector<float> logits(static_cast<size_t>(T * V));
    lm_head(m->weights, cfg, hidden.data(), T, logits.data());
    EXPECT_LT(max_diff(logits_ref, b, 0, logits.data(), T), kTol) << "logits";
  }

  // Greedy generation of the whole batch at once vs HF generate().
  Array seq = cf.get("out.generate_sequences");
  Array step_logits = cf.get("out.generate_step_logits");
  std::vector<EncoderInput> inputs;
  for (const Row& r : rows) inputs.push_back(as_input(r));
  GreedyParams gp;
  gp.max_new_tokens = seq.dim(1) - 1;
  gp.keep_step_logits = true;
  auto outs = generate_greedy(*m, inputs, gp);
  const int64_t S = seq.dim(1);
  for (size_t b = 0; b < rows.size(); ++b) {
    std::vector<int32_t> expect;
    for (int64_t t = 1; t < S; ++t) {
      const int32_t id = static_cast<int32_t>(seq.i[b * S + t]);
      expect.push_back(id);
      if (id == m->generation.eos_token_ids[0]) break;
    }
    EXPECT_EQ(outs[b].ids, expect) << "greedy row " << b;
    for (size_t t = 0; t < outs[b].step_logits.size() && t + 1 < static_cast<size_t>(S); ++t) {
      double d = 0;
      for (int64_t j = 0; j < V; ++j)
        d = std::max(d, static_cast<double>(std::fabs(outs[b].step_logits[t][j] - step_logits.f[(b * (S - 1) + t) * V + j])));
      EXPECT_LT(d, kTol) << "step logits row " << b << " step " << t;
    }
  }
}

std::vector<Param> all_params() {
  std::vector<Param> ps;
  for (std::string v : {"tiny", "tiny_softcap"})
    for (std::string l : {"model", "model_v5_12_1_save"})
      for (std::string c : {"text_single", "text_batch_pad_right", "text_batch_pad_left", "text_with_eoi",
                            "image_single", "image_batch_pad_right"})
        ps.push_back({v, l, c});
  return ps;
}

INSTANTIATE_TEST_SUITE_P(Vectors, ReferenceFp32, ::testing::ValuesIn(all_params()),
                         [](const auto& pi) {
                           return pi.param.variant + "_" + (pi.param.layout == "model" ? "hub" : "v5save") + "_" +
                                  pi.param.kase;
                         });

}  // namespace
}  // namespace t5g
