// tokenizer.json "decoder": turns token strings back into text. Supported HF types:
// Replace (literal), ByteFallback, Fuse, Strip, Sequence; with no decoder the tokens are
// joined with spaces, as HF does.
//
// Streaming: the chain is also run on "windows" of consecutive tokens. A window ends after
// any token that is not a byte-fallback token, so a run of <0xNN> tokens (which HF decodes
// as a whole: valid UTF-8, or one U+FFFD per byte) is never cut. For the supported chains
// the concatenated window outputs equal the decode of all tokens, except when a step after
// Fuse looks across token boundaries (Replace, ByteFallback, or Strip with stop > 0 after
// Fuse): then separable() is false and the stream holds all text until flush.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace t5g {

class Decoder {
 public:
  static Decoder from_json(const nlohmann::json& j, const std::string& where);

  // HF Tokenizer::decode on the (already filtered) token strings.
  std::string decode(std::vector<std::string> tokens) const;

  // --- streaming ---
  struct StreamState {
    bool started = false;                 // some window was already decoded
    std::vector<size_t> strip_budget;     // per Strip step after Fuse: leading chars still to strip
  };
  bool separable() const { return separable_; }
  // Whether `raw` becomes a <0xNN> token by the time ByteFallback sees it.
  bool is_byte_token(std::string_view raw) const;
  // Decodes the next window of tokens; the outputs of successive windows concatenate to
  // decode(all tokens) when separable().
  std::string decode_window(std::vector<std::string> tokens, StreamState& st) const;

 private:
  enum class Kind { Replace, ByteFallback, Fuse, Strip };
  struct Step {
    Kind kind;
    std::string a, b;  // Replace: pattern, content; Strip: content (one character)
    size_t start = 0, stop = 0;
    bool after_fuse = false;
  };
  void add(const nlohmann::json& j, const std::string& where);
  void finish();
  std::vector<std::string> run(std::vector<std::string> tokens, StreamState* st) const;

  bool present_ = false;
  bool separable_ = true;
  bool has_byte_fallback_ = false;
  std::vector<Step> steps_;
};

// The byte of a "<0xNN>" token as Rust's ByteFallback parses it, or -1.
int parse_byte_token(std::string_view t);

}  // namespace t5g
