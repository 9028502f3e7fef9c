// Added tokens (tokenizer.json "added_tokens"): the strings matched in the text before the
// model sees it, as HF's AddedVocabulary does: leftmost-longest matching over all tokens,
// then the single_word / lstrip / rstrip rules of each token.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace t5g {

struct AddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = true;
};

// A piece of the text: either an added token (id >= 0) or plain text for the model.
struct TextSplit {
  size_t begin;
  size_t end;
  int32_t id;
};

// Leftmost-longest multi-pattern matcher: a byte trie walked from each candidate start.
// Cost is O(text length x longest pattern) in the worst case, and close to a memchr over
// the text when few bytes can start a pattern (all Gemma tokens start with '<' or '[').
class AddedTokenMatcher {
 public:
  // `patterns[k]` is matched for token `tokens[k]` (its flags and id are copied); empty
  // patterns are ignored.
  void build(const std::vector<std::string>& patterns, const std::vector<AddedToken>& tokens);
  bool empty() const { return tokens_.empty(); }
  // Splits `text` into added tokens and the text between them (empty pieces omitted).
  void split(std::string_view text, std::vector<TextSplit>& out) const;

 private:
  struct Node {
    std::vector<std::pair<uint8_t, int32_t>> children;  // sorted by byte
    int32_t token = -1;  // index into tokens_ when a pattern ends here
  };
  int32_t child(int32_t node, uint8_t b) const;
  // Longest pattern starting at text[pos]: returns its token index and sets len, or -1.
  int32_t longest_at(std::string_view text, size_t pos, size_t& len) const;

  std::vector<Node> nodes_;
  struct Rule {
    int32_t id;
    bool single_word, lstrip, rstrip;
  };
  std::vector<Rule> tokens_;
  bool first_byte_[256] = {};
};

}  // namespace t5g
