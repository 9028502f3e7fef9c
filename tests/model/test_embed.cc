// Encoder embeddings: the per-token states are the reference encoder output, the pooled vector
// their mean, L2-normalised on request; NumPy output round-trips.
#include <gtest/gtest.h>

#include <cmath>

#include "../support/case_file.h"
#include "format/npy.h"
#include "runtime/embed.h"

namespace t5g {
namespace {

TEST(Embed, HiddenAndPooledMatchReference) {
  auto m = load_model(test::vectors_dir() + "/tiny/model");
  test::CaseFile cf(test::vectors_dir() + "/tiny/cases/text_single.safetensors");
  auto ids = cf.get("in.input_ids");
  auto ref = cf.get("out.encoder_last_hidden_state");
  std::vector<int32_t> in(ids.i.begin(), ids.i.end());
  const int64_t L = static_cast<int64_t>(in.size()), H = m->config.encoder.hidden_size;
  auto e = embed_inputs(*m, {EncoderInput{in.data(), L, nullptr, 0}}, false);
  ASSERT_EQ(e.size(), 1u);
  ASSERT_EQ(e[0].tokens, L);
  ASSERT_EQ(e[0].dim, H);
  for (int64_t j = 0; j < H; ++j) {
    double mean = 0;
    for (int64_t t = 0; t < L; ++t) mean += ref.f[t * H + j];
    EXPECT_NEAR(e[0].pooled[j], mean / L, 1e-4);
  }
  for (int64_t i = 0; i < L * H; ++i) ASSERT_NEAR(e[0].hidden[i], ref.f[i], 1e-4);

  auto n = embed_inputs(*m, {EncoderInput{in.data(), L, nullptr, 0}}, true);
  double norm = 0;
  for (float x : n[0].pooled) norm += static_cast<double>(x) * x;
  EXPECT_NEAR(norm, 1.0, 1e-5);
  EXPECT_NEAR(n[0].pooled[0] * std::sqrt([&] { double s = 0; for (float x : e[0].pooled) s += double(x) * x; return s; }()),
              e[0].pooled[0], 1e-5);
}

TEST(Npy, RoundTrip) {
  const std::string p = std::string(T5G_TEST_TMP) + "/x.npy";
  std::vector<float> d{1, 2, 3, 4, 5, 6};
  write_npy_f32(p, d.data(), {2, 3});
  std::vector<int64_t> shape;
  EXPECT_EQ(read_npy_f32(p, &shape), d);
  EXPECT_EQ(shape, (std::vector<int64_t>{2, 3}));
}

}  // namespace
}  // namespace t5g
