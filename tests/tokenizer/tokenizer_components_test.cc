// The tokenizer's building blocks on small hand-written tokenizer.json files: BPE details
// (merge forms, ranks, byte fallback, unk), added-token flags, normalizers, pre-tokenizer
// split behaviours, decoders (incl. streaming), post-processors, and errors for bad files.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "t5g/error.h"
#include "tokenizer/decoder.h"
#include "tokenizer/json_cursor.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace t5g {
namespace {

using nlohmann::json;
using Ids = std::vector<int32_t>;

std::string write_tmp(const std::string& name, const std::string& content) {
  const std::string path = std::string(T5G_TEST_TMP) + "/tok_" + name;
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

// A tiny SentencePiece-style BPE: "▁" marks spaces, two byte-fallback tokens, an unk.
json tiny_tokenizer() {
  json vocab = {{"<unk>", 0}, {"<s>", 1}, {"</s>", 2}, {"\xE2\x96\x81", 3}, {"a", 4},    {"b", 5},
                {"c", 6},     {"ab", 7},  {"abc", 8},  {"\xE2\x96\x81" "a", 9},        {"bc", 10},
                {"<0xC3>", 11}, {"<0xA9>", 12}, {"<x>", 13}, {"yes", 14}, {"y", 15}, {"e", 16}, {"s", 17},
                {"ye", 18},   {"cc", 19}};
  return {
      {"version", "1.0"},
      {"added_tokens",
       json::array({{{"id", 0}, {"content", "<unk>"}, {"special", true}, {"normalized", false}},
                    {{"id", 1}, {"content", "<s>"}, {"special", true}, {"normalized", false}},
                    {{"id", 2}, {"content", "</s>"}, {"special", true}, {"normalized", false}}})},
      {"normalizer",
       {{"type", "Sequence"},
        {"normalizers", json::array({{{"type", "Prepend"}, {"prepend", "\xE2\x96\x81"}},
                                     {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\xE2\x96\x81"}}})}}},
      {"pre_tokenizer", nullptr},
      {"post_processor",
       {{"type", "TemplateProcessing"},
        {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
        {"pair", json::array()},
        {"special_tokens", {{"<s>", {{"id", "<s>"}, {"ids", {1}}, {"tokens", {"<s>"}}}}}}}},
      {"decoder",
       {{"type", "Sequence"},
        {"decoders", json::array({{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                                  {{"type", "ByteFallback"}},
                                  {{"type", "Fuse"}},
                                  {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}})}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", "<unk>"},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", true},
        {"byte_fallback", true},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", {"a b", "ab c", "\xE2\x96\x81 a", "b c", "y e", "ye s", "c c"}}}},
  };
}

Tokenizer load_json(const std::string& name, const json& j, const std::string& config = "") {
  const std::string cfg = config.empty() ? "" : write_tmp(name + "_config.json", config);
  return Tokenizer::from_files(write_tmp(name + ".json", j.dump()), cfg);
}

TEST(TokenizerBpe, MergeRanksAndBothMergeForms) {
  json j = tiny_tokenizer();
  const Tokenizer str_form = load_json("str_form", j);
  json pairs = json::array();
  for (const auto& m : j["model"]["merges"]) {
    const std::string s = m;
    const size_t sp = s.find(' ');
    pairs.push_back({s.substr(0, sp), s.substr(sp + 1)});
  }
  j["model"]["merges"] = pairs;
  const Tokenizer list_form = load_json("list_form", j);
  // The Prepend normalizer makes "abc" "▁abc". (a,b) has rank 0, so it beats (▁,a) (rank 2);
  // then (ab,c) makes "abc", and (▁,abc) is no merge.
  for (const Tokenizer* t : {&str_form, &list_form}) {
    EXPECT_EQ(t->encode("abc", false), (Ids{3, 8}));
    EXPECT_EQ(t->encode("abc"), (Ids{1, 3, 8}));
    EXPECT_EQ(t->encode("a", false), (Ids{9}));
    EXPECT_EQ(t->encode("bcc", false), (Ids{3, 10, 6}));  // (b,c) rank 3 before (c,c) rank 6
    EXPECT_EQ(t->decode({1, 3, 8}), "<s> abc");           // Strip(" ", 1, 0) only strips a leading space
    EXPECT_EQ(t->decode({3, 8}), "abc");
    EXPECT_EQ(t->decode({1, 3, 8}, true), "abc");
  }
}

TEST(TokenizerBpe, ByteFallbackAndFusedUnknowns) {
  json j = tiny_tokenizer();
  const Tokenizer t = load_json("bytes", j);
  EXPECT_EQ(t.encode("\xC3\xA9", false), (Ids{3, 11, 12}));    // "é": both bytes exist
  EXPECT_EQ(t.encode("\xC3\xBC\xC3\xBC" "a", false), (Ids{3, 0, 4}));  // "üü": <0xBC> missing -> one fused <unk>
  EXPECT_EQ(t.decode({11, 12}), "\xC3\xA9");
  EXPECT_EQ(t.decode({11}), "\xEF\xBF\xBD");                    // incomplete run: U+FFFD per byte
  EXPECT_EQ(t.decode({11, 11, 12}), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // any bad byte poisons the whole run
  j["model"]["fuse_unk"] = false;
  const Tokenizer unfused = load_json("bytes_unfused", j);
  EXPECT_EQ(unfused.encode("\xC3\xBC\xC3\xBC" "a", false), (Ids{3, 0, 0, 4}));
}

TEST(TokenizerAddedTokens, StripSingleWordAndNormalizedFlags) {
  json j = tiny_tokenizer();
  j["added_tokens"].push_back({{"id", 13}, {"content", "<x>"}, {"lstrip", true}, {"rstrip", true}, {"normalized", false}, {"special", false}});
  j["added_tokens"].push_back({{"id", 14}, {"content", "yes"}, {"single_word", true}, {"normalized", false}, {"special", false}});
  j["added_tokens"].push_back({{"id", 19}, {"content", "cc"}, {"normalized", true}, {"special", false}});
  j["added_tokens"].push_back({{"id", 99}, {"content", "<new>"}, {"normalized", false}, {"special", true}});
  const Tokenizer t = load_json("added", j);
  // lstrip/rstrip swallow the surrounding whitespace.
  EXPECT_EQ(t.encode("a <x>  b", false), (Ids{9, 13, 3, 5}));
  // single_word: only "yes" standing alone is the added token; inside "yesa" BPE makes it.
  EXPECT_EQ(t.encode("yes", false), (Ids{14}));
  EXPECT_EQ(t.encode("yesa", false), (Ids{3, 14, 4}));
  // A normalized added token is matched in normalized text, against its own normalized form
  // (HF runs the whole normalizer on it: "cc" -> "▁cc"), so only at a piece start or after a space.
  EXPECT_EQ(t.encode("b cc", false), (Ids{3, 5, 19}));
  EXPECT_EQ(t.encode("bcc", false), (Ids{3, 10, 6}));
  // A new token gets the next id after the model vocabulary, as HF assigns it.
  EXPECT_EQ(t.token_to_id("<new>"), 20);
  EXPECT_EQ(t.vocab_size(), 21);
  EXPECT_EQ(t.encode("a<new>", false), (Ids{9, 20}));
  EXPECT_TRUE(t.is_special(20));
  EXPECT_EQ(t.decode({9, 20, 4}, true), "aa");
}

TEST(TokenizerPostProcessor, TemplateAndConfigOverrides) {
  json j = tiny_tokenizer();
  j["post_processor"]["single"].push_back({{"SpecialToken", {{"id", "</s>"}, {"type_id", 0}}}});
  j["post_processor"]["special_tokens"]["</s>"] = {{"id", "</s>"}, {"ids", {2}}, {"tokens", {"</s>"}}};
  EXPECT_EQ(load_json("tmpl", j).encode("a"), (Ids{1, 9, 2}));
  EXPECT_EQ(load_json("tmpl_cfg", j, R"({"add_bos_token": false, "bos_token": "<s>", "eos_token": "</s>"})").encode("a"),
            (Ids{9, 2}));
  const Tokenizer cfg = load_json("tmpl_cfg2", j, R"({"add_eos_token": false, "bos_token": {"content": "<s>"}})");
  EXPECT_EQ(cfg.encode("a"), (Ids{1, 9}));
  EXPECT_EQ(cfg.bos_id(), 1);
  j["post_processor"] = {{"type", "BertProcessing"}, {"sep", {"</s>", 2}}, {"cls", {"<s>", 1}}};
  EXPECT_EQ(load_json("bert", j).encode("a"), (Ids{1, 9, 2}));
  j["post_processor"] = nullptr;
  EXPECT_EQ(load_json("nopp", j).encode("a"), (Ids{9}));
}

TEST(TokenizerPipeline, NormalizerSteps) {
  const Normalizer n = Normalizer::from_json(
      json::parse(R"({"type":"Sequence","normalizers":[{"type":"Strip","strip_left":true,"strip_right":true},
                     {"type":"Replace","pattern":{"String":"ab"},"content":"X"},{"type":"Prepend","prepend":"^"}]})"),
      "test");
  std::string out;
  n.apply(" \t\xE3\x80\x80" "abab aab\n", out);  // U+3000 is whitespace too
  EXPECT_EQ(out, "^XX aX");
  n.apply(" ", out);
  EXPECT_EQ(out, "");  // Prepend leaves empty text alone
}

std::vector<std::string> split(const char* behavior, bool invert, const std::string& text) {
  json j = {{"type", "Split"}, {"pattern", {{"String", "-"}}}, {"behavior", behavior}, {"invert", invert}};
  std::vector<std::string_view> words;
  PreTokenizer::from_json(j, "test").apply(text, words);
  return {words.begin(), words.end()};
}

TEST(TokenizerPipeline, SplitBehaviours) {
  using V = std::vector<std::string>;
  EXPECT_EQ(split("Removed", false, "a-b--c-"), (V{"a", "b", "c"}));
  EXPECT_EQ(split("Isolated", false, "a-b--c-"), (V{"a", "-", "b", "-", "-", "c", "-"}));
  EXPECT_EQ(split("MergedWithPrevious", false, "a-b--c-"), (V{"a-", "b-", "-", "c-"}));
  EXPECT_EQ(split("MergedWithNext", false, "-a-b--c"), (V{"-a", "-b", "-", "-c"}));
  EXPECT_EQ(split("Contiguous", false, "a-b--c-"), (V{"a", "-", "b", "--", "c", "-"}));
  EXPECT_EQ(split("Removed", true, "a-b--c-"), (V{"-", "-", "-", "-"}));
  EXPECT_EQ(split("MergedWithPrevious", false, ""), (V{}));
}

// The streamed pieces concatenate to the batch decode for the Llama-style chain, whose Strip
// after Fuse only touches the very start of the text.
TEST(TokenizerPipeline, StreamDecoderWithLeadingStrip) {
  const Tokenizer t = load_json("stream", tiny_tokenizer());
  std::mt19937 rng(3);
  for (int iter = 0; iter < 300; ++iter) {
    Ids ids;
    for (size_t n = rng() % 12; n > 0; --n) ids.push_back(static_cast<int32_t>(rng() % 22) - 1);
    for (bool skip : {false, true}) {
      StreamDecoder sd(t, skip);
      std::string s;
      for (int32_t id : ids) s += sd.push(id);
      s += sd.flush();
      ASSERT_EQ(s, t.decode(ids, skip)) << json(ids).dump();
    }
  }
  // Strip(" ", 2, 0) may cross into the second token; a stop strip makes the chain hold text.
  json dec = {{"type", "Sequence"},
              {"decoders", json::array({{{"type", "Replace"}, {"pattern", {{"String", "\xE2\x96\x81"}}}, {"content", " "}},
                                        {{"type", "Fuse"}},
                                        {{"type", "Strip"}, {"content", " "}, {"start", 2}, {"stop", 1}}})}};
  json j = tiny_tokenizer();
  j["decoder"] = dec;
  const Tokenizer t2 = load_json("stream2", j);
  const Ids ids{3, 3, 9, 3};  // "▁", "▁", "▁a", "▁"  ->  "   a " -> " a"
  EXPECT_EQ(t2.decode(ids), " a");
  StreamDecoder sd(t2, false);
  std::string s;
  for (int32_t id : ids) s += sd.push(id);
  s += sd.flush();
  EXPECT_EQ(s, " a");
}

TEST(TokenizerPipeline, NoDecoderJoinsWithSpaces) {
  json j = tiny_tokenizer();
  j["decoder"] = nullptr;
  const Tokenizer t = load_json("nodecoder", j);
  EXPECT_EQ(t.decode({9, 10, 11}), "\xE2\x96\x81" "a bc <0xC3>");
  StreamDecoder sd(t, false);
  std::string s = sd.push(9);
  s += sd.push(10);
  s += sd.push(11);
  s += sd.flush();
  EXPECT_EQ(s, "\xE2\x96\x81" "a bc <0xC3>");
}

TEST(TokenizerUtf8, ReplacementMatchesPython) {
  // Expected values from Python: bytes.decode("utf-8", errors="replace").encode("utf-8").
  const std::pair<std::string, std::string> cases[] = {
      {"\x61\xFF\x62", "\x61\xEF\xBF\xBD\x62"},
      {"\xE2\x82", "\xEF\xBF\xBD"},
      {"\xE2\x82\xAC", "\xE2\x82\xAC"},
      {"\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
      {"\xF0\x9F\x98", "\xEF\xBF\xBD"},
      {"\xF0\x9F\x98\x80", "\xF0\x9F\x98\x80"},
      {"\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD"},
      {"\xE0\x80\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
      {"\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
      {"\xF5", "\xEF\xBF\xBD"},
      {"\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD"},
      {"\xE1\x80\xE2\xF0\x91\x92\xF1\xBF\x41", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\x41"},
      {"\xC2", "\xEF\xBF\xBD"},
      {"\xEF\xBF\xBE", "\xEF\xBF\xBE"},
      {"\xF8\x88\x80\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"},
      {"\xE0\xA0", "\xEF\xBF\xBD"},
      {"\xF0\x90\x80", "\xEF\xBF\xBD"},
  };
  for (const auto& [in, want] : cases) {
    EXPECT_EQ(utf8::sanitize(in), want) << testing::PrintToString(in);
    EXPECT_EQ(utf8::is_valid(in), in == want);
  }
}

TEST(TokenizerJson, CursorUnescapesAndRejectsBadInput) {
  std::string s;
  JsonCursor c(R"("a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00")", "doc");
  c.read_string(s);
  EXPECT_EQ(s, "a\"\\/\b\f\n\r\t\xC3\xA9\xF0\x9F\x98\x80");
  auto bad = [](const std::string& text) {
    JsonCursor k(text, "doc.json");
    std::string out;
    try {
      if (k.peek() == '"') k.read_string(out);
      else k.skip_value();
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("doc.json"), std::string::npos) << e.what();
      return true;
    }
    return false;
  };
  EXPECT_TRUE(bad(R"("\ud83d")"));
  EXPECT_TRUE(bad(R"("\x")"));
  EXPECT_TRUE(bad("\"a\nb\""));
  EXPECT_TRUE(bad("\"\xFF\""));
  EXPECT_TRUE(bad("[1, 2"));
  EXPECT_TRUE(bad("{\"a\" 1}"));
  EXPECT_TRUE(bad("[1,]"));
  EXPECT_TRUE(bad("tru"));
  EXPECT_TRUE(bad(std::string(100000, '[')));  // deep nesting: an error, not a stack overflow
  EXPECT_FALSE(bad(R"({"a": [1, -2.5e3, true, false, null, {"b": "c"}], "d": {}})"));
}

// Every malformed file is a t5g::Error naming the file and the field at fault.
TEST(TokenizerErrors, MalformedFilesNameFileAndField) {
  struct Case {
    const char* name;
    std::function<void(json&)> edit;
    const char* expect;
  };
  const std::vector<Case> cases = {
      {"no_model", [](json& j) { j.erase("model"); }, "missing field \"model\""},
      {"bad_merge", [](json& j) { j["model"]["merges"].push_back("a zz"); }, "model.merges[7]: token \"zz\""},
      {"merge_spaces", [](json& j) { j["model"]["merges"].push_back("a b c"); }, "exactly one space"},
      {"merge_result", [](json& j) { j["model"]["merges"].push_back("c a"); }, "merged token \"ca\""},
      {"vocab_id", [](json& j) { j["model"]["vocab"]["zz"] = -4; }, "out of range"},
      {"vocab_type", [](json& j) { j["model"]["vocab"]["zz"] = "x"; }, "expected an integer"},
      {"model_type", [](json& j) { j["model"]["type"] = "Unigram"; }, "model.type: unsupported model type"},
      {"regex", [](json& j) { j["normalizer"]["normalizers"][1]["pattern"] = {{"Regex", "\\s"}}; },
       "normalizer.normalizers[1].pattern: Regex patterns are not supported"},
      {"norm_type", [](json& j) { j["normalizer"] = {{"type", "NFKC"}}; }, "unsupported normalizer type \"NFKC\""},
      {"pre_type", [](json& j) { j["pre_tokenizer"] = {{"type", "ByteLevel"}}; }, "pre_tokenizer: unsupported"},
      {"dec_strip", [](json& j) { j["decoder"]["decoders"][3]["content"] = "ab"; }, "decoder.decoders[3].content"},
      {"pp_missing", [](json& j) { j["post_processor"]["special_tokens"].erase("<s>"); }, "missing \"<s>\""},
      {"added_content", [](json& j) { j["added_tokens"][1].erase("content"); }, "added_tokens[1]: missing field \"content\""},
      {"added_flag", [](json& j) { j["added_tokens"][0]["lstrip"] = "yes"; }, "added_tokens[0].lstrip"},
      {"unk_bool", [](json& j) { j["model"]["fuse_unk"] = 3; }, "model.fuse_unk"},
  };
  for (const Case& c : cases) {
    json j = tiny_tokenizer();
    c.edit(j);
    const std::string path = write_tmp(std::string("bad_") + c.name + ".json", j.dump());
    try {
      Tokenizer::from_files(path, "");
      ADD_FAILURE() << c.name << ": no error";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << c.name << ": " << msg;
      EXPECT_NE(msg.find(c.expect), std::string::npos) << c.name << ": " << msg;
    }
  }
  const std::string good = tiny_tokenizer().dump();
  for (const auto& [name, text] : std::vector<std::pair<std::string, std::string>>{
           {"truncated", good.substr(0, good.size() / 2)}, {"empty", ""}, {"not_object", "[1]"},
           {"trailing", good + "x"}, {"bad_utf8", "{\"model\": {\"vocab\": {\"\xC3\": 1}}}"}}) {
    const std::string path = write_tmp("raw_" + name + ".json", text);
    try {
      Tokenizer::from_files(path, "");
      ADD_FAILURE() << name << ": no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << name << ": " << e.what();
    }
  }
  EXPECT_THROW(Tokenizer::from_files(std::string(T5G_TEST_TMP) + "/tok_does_not_exist.json", ""), Error);
  const std::string ok = write_tmp("ok.json", good);
  for (const auto& [name, cfg, expect] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"cfg_syntax", "{", "tokenizer_config"}, {"cfg_type", "[]", "expected a JSON object"},
           {"cfg_bos", R"({"add_bos_token": true, "bos_token": "<nope>"})", "add_bos_token is true"},
           {"cfg_tok", R"({"eos_token": 5})", "eos_token"},
           {"cfg_tmpl", R"({"chat_template": 5})", "chat_template"}}) {
    const std::string path = write_tmp(name + "_tokenizer_config.json", cfg);
    try {
      Tokenizer::from_files(ok, path);
      ADD_FAILURE() << name << ": no error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << name << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find(expect), std::string::npos) << name << ": " << e.what();
    }
  }
}

}  // namespace
}  // namespace t5g
