// The public API: a loaded Model shared by many threads gives each request the same result as
// running the requests one after another (each call owns its state; the model is read-only).
#include <gtest/gtest.h>

#include <thread>

#include "t5g/t5g.h"

namespace t5g {
namespace {

const std::string kModel = std::string(T5G_TEST_DATA) + "/shapes/gqa_evenwin_softcap/model";

std::vector<GenerateRequest> requests() {
  std::vector<GenerateRequest> rs;
  for (int i = 0; i < 6; ++i) {
    GenerateRequest r;
    r.input_ids = {2, 10 + i, 20 + 2 * i, 30, 40 + i, 7};
    r.max_new_tokens = 12;
    r.ignore_eos = true;
    if (i % 3 == 1) {  // sampled, seeded
      r.do_sample = true;
      r.temperature = 0.8;
      r.seed = 100 + i;
    }
    if (i % 3 == 2) r.num_beams = 3;  // beam search
    rs.push_back(r);
  }
  return rs;
}

LoadOptions threads_option(int n) {
  LoadOptions o;
  o.threads = n;
  return o;
}

TEST(ApiConcurrency, ThreadsGiveSequentialResults) {
  auto model = Model::load(kModel, threads_option(1));
  const auto reqs = requests();
  std::vector<std::vector<int32_t>> expected;
  for (const auto& r : reqs) expected.push_back(model->generate({r})[0].ids);
  std::vector<std::vector<float>> expected_scores = model->score({{2, 5, 6, 7}}, {{8, 9, 10}});

  constexpr int kThreads = 4, kRounds = 3;
  std::vector<std::vector<std::vector<int32_t>>> got(kThreads);
  std::vector<std::vector<float>> scores(kThreads);
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round)
        for (size_t i = 0; i < reqs.size(); ++i) {
          const size_t k = (i + t) % reqs.size();  // threads run different requests at the same time
          auto res = model->generate({reqs[k]});
          if (round == 0 && got[t].size() < reqs.size()) got[t].resize(reqs.size());
          if (res[0].ids != expected[k]) got[t][k] = {-1};  // mismatch marker
          else got[t][k] = res[0].ids;
        }
      scores[t] = model->score({{2, 5, 6, 7}}, {{8, 9, 10}})[0];
    });
  for (auto& th : ts) th.join();
  for (int t = 0; t < kThreads; ++t) {
    for (size_t k = 0; k < reqs.size(); ++k) EXPECT_EQ(got[t][k], expected[k]) << "thread " << t << " request " << k;
    EXPECT_EQ(scores[t], expected_scores[0]);
  }
}

TEST(ApiConcurrency, BatchEqualsAloneThroughTheApi) {
  auto model = Model::load(kModel, threads_option(2));
  const auto reqs = requests();
  auto batch = model->generate(reqs);  // mixed options: grouped internally
  for (size_t k = 0; k < reqs.size(); ++k) EXPECT_EQ(batch[k].ids, model->generate({reqs[k]})[0].ids) << k;
}

TEST(ApiErrors, ClearMessages) {
  auto model = Model::load(kModel);
  GenerateRequest r;
  EXPECT_THROW(model->generate({r}), Error);  // no input
  r.input_ids = {2, 5};
  r.num_beams = 2;
  r.num_return_sequences = 3;
  EXPECT_THROW(model->generate({r}), Error);
  r.num_return_sequences = 1;
  r.top_p = 1.5;
  EXPECT_THROW(model->generate({r}), Error);
  GenerateRequest t;
  t.prompt = "hello";  // this fixture has no tokenizer.json
  try {
    model->generate({t});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tokenizer.json"), std::string::npos);
  }
  EXPECT_THROW(Model::load("/nonexistent/folder"), Error);
}

}  // namespace
}  // namespace t5g
