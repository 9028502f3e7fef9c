// Internal state of t5g::Tokenizer, shared by the loader, the encoder/decoder and the stream
// decoder. Immutable once loaded.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace t5g {

struct Tokenizer::Impl {
  BpeModel model;
  std::vector<AddedToken> added;       // in file order
  Vocab added_vocab;                   // content -> id of added tokens
  AddedTokenMatcher raw_matcher;       // added tokens with normalized == false, matched on the raw text
  AddedTokenMatcher normalized_matcher;  // normalized == true, matched on normalized pieces
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  Decoder decoder;

  // Post-processor for a single sequence: ids before and after it.
  std::vector<int32_t> prefix_ids, suffix_ids;

  std::vector<uint8_t> special;  // by id: skipped by decode(skip_special_tokens)
  int64_t vocab_size = 0;
  std::optional<int32_t> bos, eos, pad;
  std::string chat_template;

  // Token string of an id (added tokens first, as HF), or nullptr-like empty optional.
  bool token_of(int32_t id, std::string_view& out) const {
    if (id >= 0 && added_vocab.has_id(id)) {
      out = added_vocab.token(id);
      return true;
    }
    if (model.vocab.has_id(id)) {
      out = model.vocab.token(id);
      return true;
    }
    return false;
  }
  bool is_special(int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < special.size() && special[static_cast<size_t>(id)] != 0;
  }
};

// Loader entry point (loader.cc).
std::shared_ptr<const Tokenizer::Impl> load_tokenizer(const std::string& tokenizer_json,
                                                       const std::string& tokenizer_config_json,
                                                       const std::string& chat_template_file);

}  // namespace t5g
