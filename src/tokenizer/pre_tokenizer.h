// tokenizer.json "pre_tokenizer": cuts normalized text into the words the model encodes
// one by one. Supported HF types: Split (literal pattern, every behavior, invert) and
// Sequence. Both only cut, never rewrite, so words are views into the normalized text.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace t5g {

class PreTokenizer {
 public:
  static PreTokenizer from_json(const nlohmann::json& j, const std::string& where);

  // Appends the non-empty words of `text` to `out`.
  void apply(std::string_view text, std::vector<std::string_view>& out) const;

 private:
  enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
  struct Split {
    std::string pattern;
    Behavior behavior;
    bool invert;
  };
  void add(const nlohmann::json& j, const std::string& where);
  static void split_one(const Split& s, std::string_view text, std::vector<std::string_view>& out);
  std::vector<Split> steps_;
};

}  // namespace t5g
