// tokenizer.json "normalizer": rewrites each piece of text between added tokens before
// pre-tokenization. Supported HF types: Replace (literal pattern), Prepend, Strip, Sequence.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace t5g {

class Normalizer {
 public:
  // Builds from the JSON value (null = identity); `where` names the field in errors.
  static Normalizer from_json(const nlohmann::json& j, const std::string& where);

  bool identity() const { return steps_.empty(); }
  // Normalizes `text` (non-empty) into `out`.
  void apply(std::string_view text, std::string& out) const;

 private:
  enum class Kind { Replace, Prepend, Strip };
  struct Step {
    Kind kind;
    std::string a;  // Replace: pattern; Prepend: prefix
    std::string b;  // Replace: content
    bool left = false, right = false;  // Strip
  };
  void add(const nlohmann::json& j, const std::string& where);
  std::vector<Step> steps_;
};

// Replaces every non-overlapping occurrence of `pattern` (scanning left to right).
void replace_all(std::string_view text, std::string_view pattern, std::string_view content, std::string& out);

}  // namespace t5g
