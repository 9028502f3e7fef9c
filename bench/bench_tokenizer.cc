// Gemma 3 tokenizer microbenchmarks: loading the 33 MB tokenizer.json, encoding (English-like
// prose, uniformly random words, the multilingual/code/emoji test strings, short prompts, a
// pathological run of spaces), batch and streaming decode. Throughput is in input bytes (encode) or output bytes
// (decode) per second, on one thread.
//
//   build-tok/bench/bench_tokenizer [--benchmark_filter=Encode]
// T5G_TOKENIZER_DIR=<dir> points it at another tokenizer.json/tokenizer_config.json pair.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tokenizer/tokenizer.h"

namespace {

std::string tokenizer_dir() {
  const char* env = std::getenv("T5G_TOKENIZER_DIR");
  return env != nullptr ? env : T5G_GEMMA3_TOKENIZER_DIR;
}

const t5g::Tokenizer& tok() {
  static const t5g::Tokenizer t = t5g::Tokenizer::load(tokenizer_dir());
  return t;
}

const std::vector<std::string>& test_strings() {
  static const std::vector<std::string> v = [] {
    std::ifstream in(std::string(T5G_TEST_DATA) + "/tokenizer/test_strings.json");
    return nlohmann::json::parse(in).get<std::vector<std::string>>();
  }();
  return v;
}

// ~1 MB of English-like prose from whole-word vocab entries ("▁word"), with punctuation and
// paragraph breaks. `zipf`: word frequencies fall off as 1/rank, as in real text (a few
// words are most of it); otherwise uniform over 20k words, the worst case for the word cache.
std::string make_prose(bool zipf) {
  std::vector<std::string> words;
  const t5g::Tokenizer& t = tok();
  for (int32_t id = 0; id < 262144 && words.size() < 20000; ++id) {
    const std::string p = t.id_to_token(id);
    if (p.size() < 5 || p.size() > 13 || p.compare(0, 3, "\xE2\x96\x81") != 0) continue;
    bool alpha = true;
    for (size_t i = 3; i < p.size(); ++i) alpha = alpha && p[i] >= 'a' && p[i] <= 'z';
    if (alpha) words.push_back(p.substr(3));
  }
  std::vector<double> weights(words.size());
  for (size_t i = 0; i < words.size(); ++i) weights[i] = zipf ? 1.0 / static_cast<double>(i + 1) : 1.0;
  std::discrete_distribution<size_t> pick(weights.begin(), weights.end());
  std::mt19937 rng(1);
  std::string s;
  size_t n = 0;
  while (s.size() < (1u << 20)) {
    s += words[pick(rng)];
    ++n;
    if (n % 97 == 0) s += ".\n\n";
    else if (n % 13 == 0) s += ". ";
    else if (n % 7 == 0) s += ", ";
    else s += ' ';
  }
  return s;
}

const std::string& english() {
  static const std::string text = make_prose(true);
  return text;
}

const std::string& random_words() {
  static const std::string text = make_prose(false);
  return text;
}

const std::string& mixed() {
  static const std::string text = [] {
    std::string all, s;
    for (const std::string& x : test_strings()) all += x + "\n";
    while (s.size() < (1u << 20)) s += all;
    return s;
  }();
  return text;
}

void BM_Load(benchmark::State& state) {
  const std::string dir = tokenizer_dir();
  for (auto _ : state) {
    auto t = t5g::Tokenizer::load(dir);
    benchmark::DoNotOptimize(t);
  }
}
BENCHMARK(BM_Load)->Unit(benchmark::kMillisecond)->Iterations(5);

void encode_bench(benchmark::State& state, const std::string& text) {
  const t5g::Tokenizer& t = tok();
  size_t n_ids = 0;
  for (auto _ : state) {
    auto ids = t.encode(text);
    n_ids = ids.size();
    benchmark::DoNotOptimize(ids.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
  state.counters["bytes_per_token"] = static_cast<double>(text.size()) / static_cast<double>(n_ids);
}

void BM_EncodeEnglish(benchmark::State& state) { encode_bench(state, english()); }
BENCHMARK(BM_EncodeEnglish)->Unit(benchmark::kMillisecond);

void BM_EncodeRandomWords(benchmark::State& state) { encode_bench(state, random_words()); }
BENCHMARK(BM_EncodeRandomWords)->Unit(benchmark::kMillisecond);

void BM_EncodeMixed(benchmark::State& state) { encode_bench(state, mixed()); }
BENCHMARK(BM_EncodeMixed)->Unit(benchmark::kMillisecond);

void BM_EncodeSpaces(benchmark::State& state) { encode_bench(state, std::string(state.range(0), ' ')); }
BENCHMARK(BM_EncodeSpaces)->Arg(1 << 14)->Arg(1 << 17)->Arg(1 << 20)->Unit(benchmark::kMillisecond);

// Each test string on its own (prompt-sized inputs: per-call overhead matters).
void BM_EncodeShortStrings(benchmark::State& state) {
  const t5g::Tokenizer& t = tok();
  size_t bytes = 0;
  for (const std::string& s : test_strings()) bytes += s.size();
  for (auto _ : state) {
    for (const std::string& s : test_strings()) benchmark::DoNotOptimize(t.encode(s).data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * bytes));
  state.counters["strings_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * test_strings().size()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_EncodeShortStrings)->Unit(benchmark::kMicrosecond);

void BM_Decode(benchmark::State& state) {
  const t5g::Tokenizer& t = tok();
  const auto ids = t.encode(english());
  size_t out = 0;
  for (auto _ : state) {
    const std::string s = t.decode(ids, true);
    out = s.size();
    benchmark::DoNotOptimize(s.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * out));
}
BENCHMARK(BM_Decode)->Unit(benchmark::kMillisecond);

void BM_StreamDecode(benchmark::State& state) {
  const t5g::Tokenizer& t = tok();
  const auto ids = t.encode(mixed());
  size_t out = 0;
  for (auto _ : state) {
    t5g::StreamDecoder sd(t, true);
    out = 0;
    for (int32_t id : ids) out += sd.push(id).size();
    out += sd.flush().size();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * out));
  state.counters["tokens_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * ids.size()), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_StreamDecode)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
