// Stop conditions: stop token ids (the generation config's EOS ids plus any the user adds) and stop
// strings that may span token boundaries, matched on decoded text. The tokenizer is not a dependency:
// text comes from a DecodeFn (ids -> UTF-8 text), e.g. a lambda over t5g's Tokenizer::decode.
//
// Semantics follow transformers' StopStringCriteria: generation stops at the first token whose text
// completes a stop string, the string may start in earlier tokens and may end inside the final token
// ("st" + "opera" stops on "stop"), and a stop string already complete before the final token does
// not count again. Matching is on decoded text (not on the vocabulary's token strings, as transformers
// does), so text withheld by the incremental decoder (an incomplete UTF-8 sequence from byte-fallback
// tokens) is matched once the token completing it arrives.
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/config.h"

namespace t5g {

using DecodeFn = std::function<std::string(std::span<const int32_t>)>;

// The ids that end a sequence: the generation config's EOS ids followed by `extra` (user stop ids),
// without duplicates. These are also the ids min_new_tokens suppresses and beam search finishes on.
std::vector<int32_t> stop_token_ids(const GenerationConfig& g, std::span<const int32_t> extra = {});

bool is_stop_token(int32_t id, std::span<const int32_t> stop_ids);

// Incremental matcher for one sequence. push(id) decodes with the callback (prefix/read offsets, as
// streaming detokenizers do: each call decodes only the tokens since the last committed text);
// push_text(delta) takes text the caller has already decoded. Either returns true once a stop string
// has appeared in the text; later calls keep returning true.
class StopStringMatcher {
 public:
  explicit StopStringMatcher(std::vector<std::string> stop_strings, DecodeFn decode = {});

  bool push(int32_t id);
  bool push_text(std::string_view delta);

  bool matched() const { return match_ >= 0; }
  int match_index() const { return match_; }          // which stop string, -1 when none
  size_t match_offset() const { return match_pos_; }  // byte offset of its start in text()
  const std::string& text() const { return text_; }   // the text committed so far
  bool empty() const { return stops_.empty(); }

 private:
  bool scan(size_t from);

  std::vector<std::string> stops_;
  DecodeFn decode_;
  std::vector<int32_t> ids_;
  size_t prefix_offset_ = 0, read_offset_ = 0;
  std::string text_;
  size_t max_len_ = 0;
  int match_ = -1;
  size_t match_pos_ = 0;
};

// Stateless check for a whole sequence (used for beam candidates): does a stop string occur in
// decode(ids) and end after the text of ids[:-1]? Returns the stop string's index or -1.
int ends_with_stop_string(std::span<const int32_t> ids, const std::vector<std::string>& stop_strings,
                          const DecodeFn& decode);

}  // namespace t5g
