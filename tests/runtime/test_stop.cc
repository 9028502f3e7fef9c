// Stop strings spanning token boundaries, with a fake vocabulary behind the decode callback
// (transformers' StopStringCriteria examples), incomplete UTF-8 across byte tokens, and stop ids.
#include <gtest/gtest.h>

#include <map>

#include "runtime/stop.h"
#include "t5g/error.h"

namespace t5g {
namespace {

// A fake tokenizer: id -> piece, decode = concatenation.
struct FakeVocab {
  std::vector<std::string> pieces;
  int32_t id(const std::string& piece) {
    for (size_t i = 0; i < pieces.size(); ++i)
      if (pieces[i] == piece) return static_cast<int32_t>(i);
    pieces.push_back(piece);
    return static_cast<int32_t>(pieces.size() - 1);
  }
  std::vector<int32_t> ids(const std::vector<std::string>& ps) {
    std::vector<int32_t> out;
    for (const auto& p : ps) out.push_back(id(p));
    return out;
  }
  DecodeFn decoder(int* calls = nullptr) {
    return [this, calls](std::span<const int32_t> ids) {
      if (calls) ++*calls;
      std::string s;
      for (int32_t i : ids) s += pieces.at(static_cast<size_t>(i));
      return s;
    };
  }
};

// Feeds the pieces one by one; returns the index of the token at which the matcher fired, or -1.
int fires_at(FakeVocab& v, const std::vector<std::string>& stops, const std::vector<std::string>& pieces) {
  StopStringMatcher m(stops, v.decoder());
  const auto ids = v.ids(pieces);
  for (size_t i = 0; i < ids.size(); ++i)
    if (m.push(ids[i])) return static_cast<int>(i);
  return -1;
}

TEST(GenStopStrings, MatchAcrossTokenBoundaries) {
  FakeVocab v;
  // transformers' positive examples for "stop": each fires on its last token
  EXPECT_EQ(fires_at(v, {"stop"}, {"st", "op"}), 1);
  EXPECT_EQ(fires_at(v, {"stop"}, {"stop"}), 0);
  EXPECT_EQ(fires_at(v, {"stop"}, {"st", "opera"}), 1);
  EXPECT_EQ(fires_at(v, {"stop"}, {"sto", "pper"}), 1);
  EXPECT_EQ(fires_at(v, {"stop"}, {"las", "topper"}), 1);
  EXPECT_EQ(fires_at(v, {"stop"}, {"s", "to", "pped"}), 2);
  EXPECT_EQ(fires_at(v, {"stop"}, {"a", "b", "s", "t", "o", "p", "x"}), 5);
  EXPECT_EQ(fires_at(v, {"stop"}, {"sto", "x", "p"}), -1);
  EXPECT_EQ(fires_at(v, {"stop"}, {"top", "s"}), -1);
  // the first of several stop strings to complete
  EXPECT_EQ(fires_at(v, {"xyz", "\n\n"}, {"a\n", "\nb", "xyz"}), 1);
  EXPECT_EQ(fires_at(v, {"xyz", "\n\n"}, {"ax", "y", "z\n", "\n"}), 2);
}

TEST(GenStopStrings, ReportsWhichStringAndWhere) {
  FakeVocab v;
  StopStringMatcher m({"END", "op"}, v.decoder());
  for (int32_t id : v.ids({"hello ", "E", "N"})) EXPECT_FALSE(m.push(id));
  EXPECT_TRUE(m.push(v.id("Dless")));
  EXPECT_EQ(m.match_index(), 0);
  EXPECT_EQ(m.match_offset(), 6u);
  EXPECT_EQ(m.text().substr(0, m.match_offset()), "hello ");
  EXPECT_TRUE(m.push(v.id("more")));  // stays matched
}

TEST(GenStopStrings, StatelessCheckNeedsOverlapWithTheLastToken) {
  FakeVocab v;
  const auto dec = v.decoder();
  EXPECT_EQ(ends_with_stop_string(v.ids({"st", "op"}), {"stop"}, dec), 0);
  EXPECT_EQ(ends_with_stop_string(v.ids({"las", "topper"}), {"stop"}, dec), 0);
  EXPECT_EQ(ends_with_stop_string(v.ids({"s", "to", "pped"}), {"x", "stop"}, dec), 1);
  // transformers' negative examples: the stop string does not overlap the final token
  EXPECT_EQ(ends_with_stop_string(v.ids({"stop", "at"}), {"stop"}, dec), -1);
  EXPECT_EQ(ends_with_stop_string(v.ids({"st", "op", "at"}), {"stop"}, dec), -1);
  EXPECT_EQ(ends_with_stop_string(v.ids({"st", "opera", "tion"}), {"stop"}, dec), -1);
}

TEST(GenStopStrings, IncompleteUtf8WaitsForTheCompletingToken) {
  // "é" is C3 A9, split over two byte tokens; "€" is E2 82 AC over three.
  FakeVocab v;
  EXPECT_EQ(fires_at(v, {"\xC3\xA9!"}, {"caf", "\xC3", "\xA9", "!"}), 3);
  EXPECT_EQ(fires_at(v, {"f\xC3\xA9"}, {"caf", "\xC3", "\xA9", "!"}), 2);
  EXPECT_EQ(fires_at(v, {"\xE2\x82\xAC"}, {"1", "\xE2", "\x82", "\xAC", "x"}), 3);
  // a decoder that renders pending bytes as U+FFFD
  std::vector<std::string> pieces{"a", "\xC3", "\xA9", "b"};
  DecodeFn dec = [&](std::span<const int32_t> ids) {
    std::string raw;
    for (int32_t i : ids) raw += pieces[i];
    if (!raw.empty() && static_cast<unsigned char>(raw.back()) == 0xC3) raw.replace(raw.size() - 1, 1, "\xEF\xBF\xBD");
    return raw;
  };
  StopStringMatcher m({"\xC3\xA9" "b"}, dec);
  EXPECT_FALSE(m.push(0));
  EXPECT_FALSE(m.push(1));
  EXPECT_EQ(m.text(), "a");  // the placeholder is not committed
  EXPECT_FALSE(m.push(2));
  EXPECT_EQ(m.text(), "a\xC3\xA9");
  EXPECT_TRUE(m.push(3));
  EXPECT_EQ(m.match_offset(), 1u);
}

TEST(GenStopStrings, DecodesOnlyRecentTokens) {
  FakeVocab v;
  int calls = 0;
  // a decoder that counts how many ids it is asked for
  size_t decoded = 0;
  DecodeFn base = v.decoder(&calls);
  DecodeFn dec = [&](std::span<const int32_t> ids) {
    decoded += ids.size();
    return base(ids);
  };
  StopStringMatcher m({"zz"}, dec);
  const int32_t a = v.id("ab");
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(m.push(a));
  EXPECT_EQ(m.text().size(), 2000u);
  EXPECT_LT(decoded, 4000u);  // O(1) ids per token, not O(n)
  EXPECT_EQ(calls, 2000);
}

TEST(GenStopStrings, PushTextAndValidation) {
  StopStringMatcher m({"abc"});
  EXPECT_FALSE(m.push_text("xxa"));
  EXPECT_FALSE(m.push_text("b"));
  EXPECT_TRUE(m.push_text("cdef"));
  EXPECT_EQ(m.match_offset(), 2u);
  EXPECT_THROW(StopStringMatcher({""}), Error);
  StopStringMatcher no_decoder({"x"});
  EXPECT_THROW(no_decoder.push(1), Error);
  StopStringMatcher none({});
  EXPECT_FALSE(none.push(1));
}

TEST(GenStopIds, MergeGenerationConfigAndUserIds) {
  GenerationConfig g;
  g.eos_token_ids = {1, 106};
  const std::vector<int32_t> extra{106, 7};
  const auto ids = stop_token_ids(g, extra);
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 106, 7}));
  EXPECT_TRUE(is_stop_token(7, ids));
  EXPECT_FALSE(is_stop_token(2, ids));
}

}  // namespace
}  // namespace t5g
