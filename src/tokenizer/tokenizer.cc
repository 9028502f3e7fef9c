#include "tokenizer/tokenizer.h"

#include <filesystem>

#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace t5g {

Tokenizer Tokenizer::load(const std::string& model_dir) {
  namespace fs = std::filesystem;
  const fs::path dir(model_dir);
  const fs::path config = dir / "tokenizer_config.json";
  const fs::path jinja = dir / "chat_template.jinja";
  std::error_code ec;
  return Tokenizer(load_tokenizer((dir / "tokenizer.json").string(),
                                  fs::is_regular_file(config, ec) ? config.string() : std::string(),
                                  fs::is_regular_file(jinja, ec) ? jinja.string() : std::string()));
}

Tokenizer Tokenizer::from_files(const std::string& tokenizer_json, const std::string& tokenizer_config_json) {
  return Tokenizer(load_tokenizer(tokenizer_json, tokenizer_config_json, ""));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  const Impl& t = *impl_;
  std::string sanitized;
  if (!utf8::is_valid(text)) {
    sanitized = utf8::sanitize(text);
    text = sanitized;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  if (add_special_tokens) ids = t.prefix_ids;

  // HF order: added tokens on the raw text; then each remaining piece is normalized, searched
  // for normalized added tokens, pre-tokenized, and each word goes through the model.
  std::vector<TextSplit> raw_splits, norm_splits;
  std::vector<std::string_view> words;
  std::string normalized;
  t.raw_matcher.split(text, raw_splits);
  for (const TextSplit& rs : raw_splits) {
    if (rs.id >= 0) {
      ids.push_back(rs.id);
      continue;
    }
    const std::string_view piece = text.substr(rs.begin, rs.end - rs.begin);
    if (piece.empty()) continue;
    std::string_view norm = piece;
    if (!t.normalizer.identity()) {
      t.normalizer.apply(piece, normalized);
      norm = normalized;
    }
    norm_splits.clear();
    t.normalized_matcher.split(norm, norm_splits);
    for (const TextSplit& ns : norm_splits) {
      if (ns.id >= 0) {
        ids.push_back(ns.id);
        continue;
      }
      words.clear();
      t.pre_tokenizer.apply(norm.substr(ns.begin, ns.end - ns.begin), words);
      for (std::string_view w : words) t.model.tokenize(w, ids);
    }
  }
  if (add_special_tokens) ids.insert(ids.end(), t.suffix_ids.begin(), t.suffix_ids.end());
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  const Impl& t = *impl_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  std::string_view s;
  for (int32_t id : ids) {
    if (!t.token_of(id, s)) continue;  // HF filters out ids it cannot name
    if (skip_special_tokens && t.is_special(id)) continue;
    tokens.emplace_back(s);
  }
  return t.decoder.decode(std::move(tokens));
}

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  int32_t id = impl_->added_vocab.find(token);
  if (id < 0) id = impl_->model.vocab.find(token);
  if (id < 0) return std::nullopt;
  return id;
}

std::string Tokenizer::id_to_token(int32_t id) const {
  std::string_view s;
  return impl_->token_of(id, s) ? std::string(s) : std::string();
}

bool Tokenizer::is_special(int32_t id) const { return impl_->is_special(id); }
int64_t Tokenizer::vocab_size() const { return impl_->vocab_size; }
std::optional<int32_t> Tokenizer::bos_id() const { return impl_->bos; }
std::optional<int32_t> Tokenizer::eos_id() const { return impl_->eos; }
std::optional<int32_t> Tokenizer::pad_id() const { return impl_->pad; }
const std::string& Tokenizer::chat_template() const { return impl_->chat_template; }

}  // namespace t5g
