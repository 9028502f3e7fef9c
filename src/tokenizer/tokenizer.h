// The Gemma 3 tokenizer, reading Hugging Face's tokenizer.json (+ tokenizer_config.json) and
// reproducing HF tokenizers / transformers' GemmaTokenizer exactly: added tokens matched
// first, then normalizer, pre-tokenizer and BPE with byte fallback; the post-processor adds
// <bos>; decode runs the file's decoder chain.
//
// Input text that is not valid UTF-8 cannot reach HF at all (Python str / Rust &str); here
// each ill-formed byte sequence is replaced with U+FFFD first, exactly like Python's
// bytes.decode("utf-8", errors="replace"), so encode() never throws on user text.
//
// Decoding drops ids that are not in the vocabulary, as HF does (tokens it cannot name are
// filtered out rather than reported).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace t5g {

class Tokenizer {
 public:
  // Loads dir/tokenizer.json and (optional) dir/tokenizer_config.json; the chat template also
  // comes from dir/chat_template.jinja when the config has none.
  static Tokenizer load(const std::string& model_dir);
  // tokenizer_config_json may be "" (then: raw HF tokenizers behaviour from tokenizer.json).
  static Tokenizer from_files(const std::string& tokenizer_json, const std::string& tokenizer_config_json);

  // With add_special_tokens, the post-processor's tokens are added (Gemma: <bos> first).
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const;
  // skip_special_tokens drops the special tokens (those flagged special in tokenizer.json and
  // those tokenizer_config.json / GemmaTokenizer name as bos/eos/unk/pad/mask/extra tokens).
  std::string decode(const std::vector<int32_t>& ids, bool skip_special_tokens = false) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  // Raw vocab piece ("▁Hello", "<0x0A>", "<bos>"); "" for an unknown id.
  std::string id_to_token(int32_t id) const;
  bool is_special(int32_t id) const;
  // Distinct tokens, added tokens included (HF get_vocab_size(with_added_tokens=True)).
  int64_t vocab_size() const;
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  std::optional<int32_t> pad_id() const;
  const std::string& chat_template() const;  // "" when absent

  // Internal state (tokenizer/tokenizer_impl.h), for the library's own tests and tools.
  struct Impl;
  const Impl& impl() const { return *impl_; }

 private:
  explicit Tokenizer(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
  // Immutable after loading, so copies share it and concurrent const use is safe.
  std::shared_ptr<const Impl> impl_;
  friend class StreamDecoder;
};

// Incremental decode for generation: push ids one at a time and get back the text that is
// final so far; the concatenation of all push() results and flush() equals
// tokenizer.decode(all ids, skip_special_tokens).
//
// Text is released as soon as HF's decode of it can no longer change: immediately for
// ordinary tokens, and at the end of a run of byte-fallback tokens (<0xNN>) for those,
// because HF turns the whole run into U+FFFD characters if any byte in it is invalid, so a
// byte run is only final once a non-byte token (or flush) ends it. Each piece is valid UTF-8.
// Holds a reference to the tokenizer's shared state, so it may outlive the Tokenizer object.
class StreamDecoder {
 public:
  StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens);
  ~StreamDecoder();
  StreamDecoder(StreamDecoder&&) noexcept;
  StreamDecoder& operator=(StreamDecoder&&) noexcept;

  std::string push(int32_t id);
  // Returns the text still held back and resets the stream for a new sequence.
  std::string flush();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace t5g
