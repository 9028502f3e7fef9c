#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"

namespace t5g {

struct StreamDecoder::State {
  std::shared_ptr<const Tokenizer::Impl> impl;  // keeps the tokenizer alive
  bool skip_special;
  std::vector<std::string> pending;  // tokens whose text is not final yet
  Decoder::StreamState window;
};

StreamDecoder::StreamDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : state_(std::make_unique<State>(State{tokenizer.impl_, skip_special_tokens, {}, {}})) {}
StreamDecoder::~StreamDecoder() = default;
StreamDecoder::StreamDecoder(StreamDecoder&&) noexcept = default;
StreamDecoder& StreamDecoder::operator=(StreamDecoder&&) noexcept = default;

std::string StreamDecoder::push(int32_t id) {
  State& s = *state_;
  const Tokenizer::Impl& t = *s.impl;
  std::string_view tok;
  // Same filter as Tokenizer::decode, applied before the decoder sees anything (so a
  // skipped token does not end a byte run, exactly as in the batch decode).
  if (!t.token_of(id, tok) || (s.skip_special && t.is_special(id))) return {};
  s.pending.emplace_back(tok);
  if (!t.decoder.separable() || t.decoder.is_byte_token(tok)) return {};
  std::string out = t.decoder.decode_window(std::move(s.pending), s.window);
  s.pending.clear();
  return out;
}

std::string StreamDecoder::flush() {
  State& s = *state_;
  const Tokenizer::Impl& t = *s.impl;
  std::string out;
  if (!s.pending.empty()) {
    out = t.decoder.separable() ? t.decoder.decode_window(std::move(s.pending), s.window)
                                : t.decoder.decode(std::move(s.pending));
  }
  s.pending.clear();
  s.window = {};
  return out;
}

}  // namespace t5g
