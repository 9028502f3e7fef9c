// Beam search and the deterministic processors against transformers' generate() on the tiny
// checkpoints (tests/data/generation/cases.json, made by tools/oracle/make_generation_vectors.py):
// sequences identical, beam scores within 1e-4. Plus model-level checks of the sampling loop:
// defaults equal generate_greedy, seeds reproduce, batched rows equal single runs, stop strings
// and min_new_tokens. Runs single-threaded (tiny models).
#include <gtest/gtest.h>
#include <omp.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../support/case_file.h"
#include "format/safetensors.h"
#include "runtime/beam_search.h"
#include "runtime/generate.h"
#include "runtime/sample_loop.h"
#include "t5g/error.h"

namespace t5g {
namespace {

using nlohmann::json;

// The tiny checkpoints gain nothing from threads, and OpenMP barriers on a busy machine would
// dominate the run time: one thread for this binary.
class OneThread : public ::testing::Environment {
 public:
  void SetUp() override { omp_set_num_threads(1); }
};
[[maybe_unused]] ::testing::Environment* const kOneThread = ::testing::AddGlobalTestEnvironment(new OneThread);

const json& cases() {
  static const json j = [] {
    std::ifstream f(test::data_dir() + "/generation/cases.json");
    EXPECT_TRUE(f.good()) << "missing tests/data/generation/cases.json";
    std::stringstream ss;
    ss << f.rdbuf();
    return json::parse(ss.str());
  }();
  return j;
}

const LoadedModel& model(const std::string& name) {
  static std::map<std::string, std::unique_ptr<LoadedModel>> cache;
  auto it = cache.find(name);
  if (it == cache.end()) {
    const std::string rel = cases()["models"][name].get<std::string>();
    it = cache.emplace(name, load_model(test::data_dir() + "/" + rel)).first;
  }
  return *it->second;
}

EncoderInput input_of(const std::vector<int32_t>& ids) {
  return EncoderInput{ids.data(), static_cast<int64_t>(ids.size()), nullptr, 0};
}

EarlyStopping early_of(const json& j) {
  if (j.is_string()) return EarlyStopping::kNever;
  return j.get<bool>() ? EarlyStopping::kTrue : EarlyStopping::kFalse;
}

SamplingParams processors_of(const json& c) {
  SamplingParams p;
  p.repetition_penalty = c["repetition_penalty"].get<double>();
  p.no_repeat_ngram_size = c["no_repeat_ngram_size"].get<int64_t>();
  p.min_new_tokens = c["min_new_tokens"].get<int64_t>();
  return p;
}

TEST(GenBeamSearchReference, MatchesTransformers) {
  const json& all = cases()["beam"];
  ASSERT_GE(all.size(), 40u);
  // Cases that differ only in their input run as one batch: each row must equal transformers
  // running it alone.
  std::map<std::string, std::vector<const json*>> groups;
  for (const json& c : all) {
    json key = c;
    key.erase("input_ids");
    key.erase("sequences");
    key.erase("scores");
    key.erase("eos_token_ids");
    key["eos_count"] = c["eos_token_ids"].size();
    groups[key.dump()].push_back(&c);
  }
  size_t checked = 0, with_eos = 0, max_len = 0;
  double worst = 0;
  for (const auto& [key, group] : groups) {
    // inputs of a group may use different EOS ids: split further by them
    std::map<std::vector<int32_t>, std::vector<const json*>> by_eos;
    for (const json* c : group) by_eos[(*c)["eos_token_ids"].get<std::vector<int32_t>>()].push_back(c);
    for (const auto& [eos, cs] : by_eos) {
      const json& c0 = *cs[0];
      SCOPED_TRACE(key);
      BeamSearchParams p;
      p.num_beams = c0["num_beams"].get<int64_t>();
      p.length_penalty = c0["length_penalty"].get<double>();
      p.early_stopping = early_of(c0["early_stopping"]);
      p.num_return_sequences = c0["num_return_sequences"].get<int64_t>();
      p.max_new_tokens = c0["max_new_tokens"].get<int64_t>();
      p.eos_token_ids = eos;
      p.processors = processors_of(c0);
      std::vector<std::vector<int32_t>> ids;
      for (const json* c : cs) ids.push_back((*c)["input_ids"].get<std::vector<int32_t>>());
      std::vector<EncoderInput> ins;
      for (const auto& v : ids) ins.push_back(input_of(v));
      const auto out = generate_beam(model(c0["model"].get<std::string>()), ins, p);
      ASSERT_EQ(out.size(), cs.size());
      for (size_t r = 0; r < cs.size(); ++r) {
        const json& c = *cs[r];
        const auto seqs = c["sequences"].get<std::vector<std::vector<int32_t>>>();
        const auto scores = c["scores"].get<std::vector<float>>();
        ASSERT_EQ(out[r].hypotheses.size(), seqs.size()) << c.dump();
        for (size_t k = 0; k < seqs.size(); ++k) {
          EXPECT_EQ(out[r].hypotheses[k].ids, seqs[k]) << "hypothesis " << k << " of " << c.dump();
          EXPECT_NEAR(out[r].hypotheses[k].score, scores[k], 1e-4) << "hypothesis " << k << " of " << c.dump();
          worst = std::max(worst, static_cast<double>(std::fabs(out[r].hypotheses[k].score - scores[k])));
          with_eos += !seqs[k].empty() && std::find(eos.begin(), eos.end(), seqs[k].back()) != eos.end();
          max_len = std::max(max_len, seqs[k].size());
        }
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, all.size());
  EXPECT_GT(with_eos, 20u) << "too few hypotheses end in EOS to exercise finalisation";
  std::printf("beam cases %zu, hypotheses ending in EOS %zu, longest %zu, worst score diff %.3g\n", checked,
              with_eos, max_len, worst);
}

TEST(GenGreedyProcessorsReference, MatchesTransformers) {
  const json& all = cases()["greedy"];
  ASSERT_GE(all.size(), 20u);
  size_t changed = 0;
  for (const json& c : all) {
    SampleParams p;
    p.max_new_tokens = c["max_new_tokens"].get<int64_t>();
    p.sampling = processors_of(c);
    p.stop_ids = c["eos_token_ids"].get<std::vector<int32_t>>();
    const auto ids = c["input_ids"].get<std::vector<int32_t>>();
    const auto out = generate_sampled(model(c["model"].get<std::string>()), {input_of(ids)}, p);
    EXPECT_EQ(out[0].ids, c["sequence"].get<std::vector<int32_t>>()) << c.dump();
    changed += c["sequence"] != c["plain_sequence"];
    // without the processors: the plain reference sequence
    SampleParams plain = p;
    plain.sampling = {};
    EXPECT_EQ(generate_sampled(model(c["model"].get<std::string>()), {input_of(ids)}, plain)[0].ids,
              c["plain_sequence"].get<std::vector<int32_t>>())
        << c.dump();
  }
  EXPECT_GT(changed, all.size() / 2) << "the processors should change most reference sequences";
}

// ---- model-level checks of the sampling loop (tiny checkpoint) ----

// A fake detokenizer: each id as "<id>".
std::string angle_decode(std::span<const int32_t> ids) {
  std::string s;
  for (int32_t id : ids) {
    s += '<';
    s += std::to_string(id);
    s += '>';
  }
  return s;
}

const std::vector<int32_t> kInput{2, 17, 33, 105, 260, 44, 9, 371};

TEST(GenSampleLoop, DefaultsEqualGenerateGreedy) {
  const LoadedModel& m = model("tiny");
  const std::vector<int32_t> other{2, 400, 12, 13};
  GreedyParams gp;
  gp.max_new_tokens = 15;
  const auto g = generate_greedy(m, {input_of(kInput), input_of(other)}, gp);
  SampleParams sp;
  sp.max_new_tokens = 15;
  const auto s = generate_sampled(m, {input_of(kInput), input_of(other)}, sp);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].ids, g[0].ids);
  EXPECT_EQ(s[1].ids, g[1].ids);
}

// A batch's rows select their tokens on the threads (sample_loop.cc): an error there (no token with a finite
// score: every logit NaN, from a NaN in the decoder's final norm) reaches the caller as t5g::Error, from
// one thread or several, instead of escaping an OpenMP region (std::terminate).
TEST(GenSampleLoop, SelectionErrorInABatchIsAnError) {
  const std::string src = test::data_dir() + "/vectors/tiny/model";
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("t5g_nan_norm_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  for (const char* f : {"config.json", "generation_config.json"})
    std::filesystem::copy_file(src + "/" + f, dir / f, std::filesystem::copy_options::overwrite_existing);
  {
    SafetensorsFile st(src + "/model.safetensors");
    std::vector<float> nan_norm;
    std::vector<TensorToWrite> out;
    for (const TensorInfo& t : st.header().tensors) {
      const void* data = st.tensor_data(t);
      if (t.name == "model.decoder.norm.weight") {
        ASSERT_EQ(t.dtype, DType::kF32);
        nan_norm.assign(static_cast<size_t>(t.numel()), std::numeric_limits<float>::quiet_NaN());
        data = nan_norm.data();
      }
      out.push_back(TensorToWrite{t.name, t.dtype, t.shape, data, static_cast<size_t>(t.end - t.begin)});
    }
    write_safetensors((dir / "model.safetensors").string(), out);
  }
  auto m = load_model(dir.string());
  SampleParams p;
  p.max_new_tokens = 4;
  p.sampling.do_sample = true;
  p.sampling.seed = 7;
  const std::vector<int32_t> other{2, 400, 12, 13};
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2}) {
    omp_set_num_threads(threads);
    EXPECT_THROW(generate_sampled(*m, {input_of(kInput), input_of(other)}, p), Error) << threads << " threads";
    EXPECT_THROW(generate_sampled(*m, {input_of(kInput)}, p), Error) << threads << " threads";
  }
  omp_set_num_threads(saved);
  std::filesystem::remove_all(dir);
}

TEST(GenSampleLoop, SeedsReproduceAndBatchedRowsEqualSingleRuns) {
  const LoadedModel& m = model("tiny");
  SampleParams p;
  p.max_new_tokens = 24;
  p.sampling.do_sample = true;
  p.sampling.temperature = 1.5;
  p.sampling.top_k = 0;
  p.sampling.seed = 42;
  p.stop_ids = {-1};  // never stop early: compare full-length draws
  const auto a = generate_sampled(m, {input_of(kInput)}, p);
  const auto b = generate_sampled(m, {input_of(kInput)}, p);
  EXPECT_EQ(a[0].ids, b[0].ids);
  EXPECT_EQ(a[0].ids.size(), 24u);
  p.sampling.seed = 43;
  const auto c = generate_sampled(m, {input_of(kInput)}, p);
  EXPECT_NE(a[0].ids, c[0].ids);
  // a batch: every row with the same seed behaves as alone
  p.sampling.seed = 42;
  const std::vector<int32_t> other{2, 400, 12, 13};
  const auto batch = generate_sampled(m, {input_of(other), input_of(kInput)}, p);
  EXPECT_EQ(batch[1].ids, a[0].ids);
  EXPECT_EQ(batch[0].ids, generate_sampled(m, {input_of(other)}, p)[0].ids);
  // per-row seeds
  p.seeds = {43, 42};
  const auto seeded = generate_sampled(m, {input_of(kInput), input_of(kInput)}, p);
  EXPECT_EQ(seeded[0].ids, c[0].ids);
  EXPECT_EQ(seeded[1].ids, a[0].ids);
  // top_k = 1 is greedy whatever the seed
  p.seeds.clear();
  p.sampling.top_k = 1;
  GreedyParams gp;
  gp.max_new_tokens = 24;
  gp.ignore_eos = true;
  EXPECT_EQ(generate_sampled(m, {input_of(kInput)}, p)[0].ids, generate_greedy(m, {input_of(kInput)}, gp)[0].ids);
}

TEST(GenSampleLoop, StopStringSpanningTokensEndsGeneration) {
  const LoadedModel& m = model("tiny");
  GreedyParams gp;
  gp.max_new_tokens = 20;
  gp.ignore_eos = true;
  const auto greedy = generate_greedy(m, {input_of(kInput)}, gp)[0].ids;
  // decode: each id as "<id>"; the stop string "><X" starts in token i-1 and ends inside token i,
  // for the first i >= 3 whose id X did not occur before.
  const DecodeFn decode = angle_decode;
  size_t i = 3;
  while (i < greedy.size() && std::find(greedy.begin(), greedy.begin() + i, greedy[i]) != greedy.begin() + i) ++i;
  ASSERT_LT(i, greedy.size());
  SampleParams p;
  p.max_new_tokens = 20;
  p.ignore_eos = true;
  p.stop_strings = {"never-there", "><" + std::to_string(greedy[i])};
  p.decode = decode;
  const auto out = generate_sampled(m, {input_of(kInput)}, p)[0];
  EXPECT_EQ(out.finish, FinishReason::kStopString);
  EXPECT_EQ(out.stop_string, 1);
  EXPECT_EQ(out.ids, std::vector<int32_t>(greedy.begin(), greedy.begin() + i + 1));
  const std::vector<int32_t> before(greedy.begin(), greedy.begin() + i);
  EXPECT_EQ(out.stop_text_offset, decode(before).size() - 1);
  // without decode it is an error
  p.decode = {};
  EXPECT_THROW(generate_sampled(m, {input_of(kInput)}, p), Error);
}

TEST(GenSampleLoop, MinNewTokensSuppressesEosAndStopIds) {
  const LoadedModel& m = model("tiny");
  GreedyParams gp;
  gp.max_new_tokens = 20;
  gp.ignore_eos = true;
  const auto greedy = generate_greedy(m, {input_of(kInput)}, gp)[0].ids;
  // make the greedy token at position 1 the stop id: without min_new_tokens generation ends there
  SampleParams p;
  p.max_new_tokens = 20;
  p.stop_ids = {greedy[1]};
  auto out = generate_sampled(m, {input_of(kInput)}, p)[0];
  const size_t first = static_cast<size_t>(std::find(greedy.begin(), greedy.end(), greedy[1]) - greedy.begin());
  EXPECT_EQ(out.ids.size(), first + 1);
  EXPECT_EQ(out.finish, FinishReason::kStopToken);
  p.sampling.min_new_tokens = 8;
  out = generate_sampled(m, {input_of(kInput)}, p)[0];
  ASSERT_GE(out.ids.size(), 9u);
  for (size_t k = 0; k < 8; ++k) EXPECT_NE(out.ids[k], greedy[1]) << k;
  if (out.finish == FinishReason::kStopToken) {
    EXPECT_EQ(out.ids.back(), greedy[1]);
  }
  // also while sampling
  p.sampling.do_sample = true;
  p.sampling.top_k = 0;
  for (uint64_t seed = 0; seed < 5; ++seed) {
    p.sampling.seed = seed;
    out = generate_sampled(m, {input_of(kInput)}, p)[0];
    ASSERT_GE(out.ids.size(), 9u);
    for (size_t k = 0; k < 8; ++k) EXPECT_NE(out.ids[k], greedy[1]);
  }
}

TEST(GenBeamSearch, StopStringsAndValidation) {
  const LoadedModel& m = model("tiny");
  BeamSearchParams p;
  p.num_beams = 3;
  p.max_new_tokens = 10;
  p.num_return_sequences = 3;
  p.eos_token_ids = {-1};
  const auto plain = generate_beam(m, {input_of(kInput)}, p)[0];
  ASSERT_EQ(plain.hypotheses.size(), 3u);
  for (const auto& h : plain.hypotheses) EXPECT_EQ(h.ids.size(), 10u);
  // a stop string spanning two tokens of the best hypothesis ("X><Y>" starts inside token i-1):
  // every hypothesis shorter than max_new_tokens must have finished through it, at its last token
  const auto& best = plain.hypotheses[0].ids;
  p.decode = angle_decode;
  p.stop_strings = {std::to_string(best[2]) + "><" + std::to_string(best[3]) + ">"};
  const auto stopped = generate_beam(m, {input_of(kInput)}, p)[0];
  ASSERT_EQ(stopped.hypotheses.size(), 3u);
  size_t early = 0;
  for (const auto& h : stopped.hypotheses) {
    const std::string text = p.decode(h.ids);
    const size_t pos = text.find(p.stop_strings[0]);
    if (h.ids.size() < 10u) {
      ++early;
      EXPECT_EQ(pos + p.stop_strings[0].size(), text.size()) << text;  // first occurrence, at the end
      EXPECT_EQ(ends_with_stop_string(h.ids, p.stop_strings, p.decode), 0);
    } else {
      EXPECT_TRUE(pos == std::string::npos || pos + p.stop_strings[0].size() == text.size()) << text;
    }
  }
  EXPECT_GT(early, 0u);
  p.num_return_sequences = 4;
  EXPECT_THROW(generate_beam(m, {input_of(kInput)}, p), Error);
  p.num_return_sequences = 1;
  p.processors.do_sample = true;
  EXPECT_THROW(generate_beam(m, {input_of(kInput)}, p), Error);
}

}  // namespace
}  // namespace t5g
