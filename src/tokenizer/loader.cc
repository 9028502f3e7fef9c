// Reads tokenizer.json (fast path for model.vocab / model.merges, nlohmann::json for the rest)
// and tokenizer_config.json into a Tokenizer::Impl, applying the rules HF uses when it builds
// the same objects (added-token ids, special tokens, the BOS/EOS post-processor).
#include <algorithm>
#include <map>
#include <memory>
#include <set>

#include <nlohmann/json.hpp>

#include "tokenizer/json_cursor.h"
#include "tokenizer/json_fields.h"
#include "tokenizer/tokenizer_impl.h"
#include "util/error.h"
#include "util/mapped_file.h"

namespace t5g {

namespace {

using json = nlohmann::json;

struct Span {
  std::string_view text;
  size_t offset = 0;  // in the file, for error messages
};

json parse_span(const Span& s, const std::string& where) {
  try {
    return json::parse(s.text.begin(), s.text.end());
  } catch (const json::exception& e) {
    fail(where, ": ", e.what());
  }
}

// ---- model ------------------------------------------------------------------------------

// Small model fields (type, unk_token, ...) kept as raw JSON for nlohmann.
using FieldSpans = std::map<std::string, Span>;

void read_vocab(JsonCursor& c, size_t size_hint, BpeModel& model) {
  // size_hint is the whole file: Gemma's has one vocab entry per ~127 bytes (the merges take
  // most of it). Under-estimating only costs a rehash; over-estimating costs page faults.
  model.vocab.reserve(size_hint / 128 + 16, size_hint / 16);
  if (c.peek() != '{') c.error("model.vocab: expected an object");
  c.expect('{');
  // Entries are parsed in batches so the hash-table slots can be prefetched together.
  constexpr size_t kBatch = 64;
  std::string keys[kBatch];
  std::string_view views[kBatch];
  int32_t ids[kBatch];
  size_t n = 0;
  auto flush = [&] {
    model.vocab.prefetch(views, n);
    for (size_t i = 0; i < n; ++i) model.vocab.add(views[i], ids[i]);
    n = 0;
  };
  bool first = true;
  while (c.next_member(first)) {
    if (c.peek() != '"') c.error("model.vocab: expected a token string");
    c.read_string(keys[n]);
    c.expect(':');
    ids[n] = static_cast<int32_t>(c.read_int(0, Vocab::kMaxId));
    views[n] = keys[n];
    if (++n == kBatch) flush();
  }
  flush();
}

void read_merges(JsonCursor& c, const std::string& path, BpeModel& model) {
  const std::string where = path + ": model.merges";
  const size_t prefix_len = model.options.continuing_subword_prefix ? model.options.continuing_subword_prefix->size() : 0;
  // BPE vocabularies have about as many merges as tokens (Gemma: 2x); the table grows if needed.
  model.reserve_merges(2 * model.vocab.size() + 16);
  if (c.peek() != '[') c.error("model.merges: expected an array");
  c.expect('[');
  // Batches of merges: parse, look the 3 strings of each up together (prefetched), insert.
  constexpr size_t kBatch = 64;
  std::string a[kBatch], b[kBatch], merged[kBatch];
  std::string_view keys[3 * kBatch];
  int32_t ids[3 * kBatch];
  BpeModel::MergeRule rules[kBatch];
  std::string line;
  size_t n = 0;
  uint32_t rank = 0;
  auto flush = [&] {
    model.vocab.find_many(keys, 3 * n, ids);
    for (size_t i = 0; i < n; ++i) {
      const uint32_t r = rank - static_cast<uint32_t>(n - i);
      if (ids[3 * i] < 0) fail(where, "[", r, "]: token \"", a[i], "\" is not in model.vocab");
      if (ids[3 * i + 1] < 0) fail(where, "[", r, "]: token \"", b[i], "\" is not in model.vocab");
      if (ids[3 * i + 2] < 0) fail(where, "[", r, "]: merged token \"", merged[i], "\" is not in model.vocab");
      rules[i] = {ids[3 * i], ids[3 * i + 1], ids[3 * i + 2], r};
    }
    model.add_merges(rules, n);
    n = 0;
  };
  bool first = true;
  while (c.next_element(first)) {
    if (c.peek() == '"') {  // legacy "a b" form
      c.read_string(line);
      if (line.rfind("#version", 0) == 0) continue;  // HF skips these lines (merges.txt header)
      const size_t sp = line.find(' ');
      if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos) {
        fail(where, "[", rank, "] (byte ", c.offset(), "): expected \"<a> <b>\" with exactly one space, found \"", line, "\"");
      }
      a[n].assign(line, 0, sp);
      b[n].assign(line, sp + 1);
    } else if (c.consume('[')) {  // ["a", "b"] form
      if (c.peek() != '"') c.error("model.merges: expected [\"a\", \"b\"]");
      c.read_string(a[n]);
      c.expect(',');
      if (c.peek() != '"') c.error("model.merges: expected [\"a\", \"b\"]");
      c.read_string(b[n]);
      c.expect(']');
    } else {
      c.error("model.merges: expected \"a b\" or [\"a\", \"b\"]");
    }
    if (b[n].size() < prefix_len) fail(where, "[", rank, "]: token \"", b[n], "\" is shorter than continuing_subword_prefix");
    merged[n].assign(a[n]);
    merged[n].append(b[n], prefix_len);
    keys[3 * n] = a[n];
    keys[3 * n + 1] = b[n];
    keys[3 * n + 2] = merged[n];
    ++rank;
    if (++n == kBatch) flush();
  }
  flush();
}

std::optional<std::string> opt_string(const FieldSpans& m, const char* key, const std::string& where) {
  auto it = m.find(key);
  if (it == m.end()) return std::nullopt;
  const json v = parse_span(it->second, where + "." + key);
  if (v.is_null()) return std::nullopt;
  return jf::as_string(v, where + "." + key);
}

bool opt_bool(const FieldSpans& m, const char* key, const std::string& where, bool dflt) {
  auto it = m.find(key);
  if (it == m.end()) return dflt;
  const json v = parse_span(it->second, where + "." + key);
  if (v.is_null()) return dflt;
  return jf::as_bool(v, where + "." + key);
}

void read_options(const FieldSpans& m, const std::string& where, BpeOptions& o) {
  if (auto type = opt_string(m, "type", where); type && *type != "BPE") {
    fail(where, ".type: unsupported model type \"", *type, "\" (only BPE)");
  }
  o.unk_token = opt_string(m, "unk_token", where);
  o.continuing_subword_prefix = opt_string(m, "continuing_subword_prefix", where);
  o.end_of_word_suffix = opt_string(m, "end_of_word_suffix", where);
  o.fuse_unk = opt_bool(m, "fuse_unk", where, false);
  o.byte_fallback = opt_bool(m, "byte_fallback", where, false);
  o.ignore_merges = opt_bool(m, "ignore_merges", where, false);
  // dropout is a training-time regulariser; inference is deterministic, so it is ignored.
}

// The model object. HF writes the options first, then vocab, then merges, so both big
// members are normally parsed in place in a single pass. Other orders work too: merges seen
// before vocab are skipped and parsed from their span afterwards, and merges resolved before
// a later continuing_subword_prefix are resolved again.
void read_model(JsonCursor& c, const std::string& path, size_t file_size, BpeModel& model) {
  const std::string where = path + ": model";
  FieldSpans fields;
  if (c.peek() != '{') c.error("model: expected an object");
  c.expect('{');
  std::string key;
  bool first = true;
  std::optional<Span> merges_span;
  bool have_vocab = false, merges_resolved = false;
  while (c.next_member(first)) {
    if (c.peek() != '"') c.error("model: expected a key");
    c.read_string(key);
    c.expect(':');
    if ((key == "vocab" && have_vocab) || (key == "merges" && merges_span)) fail(where, ": duplicate field \"", key, "\"");
    if (key == "vocab") {
      read_options(fields, where, model.options);
      read_vocab(c, file_size, model);
      have_vocab = true;
    } else if (key == "merges" && have_vocab) {
      c.peek();
      const size_t begin = c.offset();
      read_merges(c, path, model);
      merges_span = Span{c.slice(begin, c.offset()), begin};
      merges_resolved = true;
    } else {
      Span s;
      s.text = c.skip_value();
      s.offset = c.offset_of(s.text);
      if (key == "merges") merges_span = s;
      else fields[key] = s;
    }
  }
  if (!have_vocab) fail(where, ": missing field \"vocab\"");
  if (!merges_span) fail(where, ": missing field \"merges\" (only BPE models are supported)");
  const std::optional<std::string> prefix_used = model.options.continuing_subword_prefix;
  read_options(fields, where, model.options);
  if (!merges_resolved || prefix_used != model.options.continuing_subword_prefix) {
    model.clear_merges();
    JsonCursor mc(merges_span->text, path, merges_span->offset);
    read_merges(mc, path, model);
  }
  model.finalize();
}

// ---- added tokens ---------------------------------------------------------------------

// Adds a token the way HF's AddedVocabulary::add_tokens does: a content already known keeps
// its id; a new one gets the next id after the model vocab / the largest added id.
void add_token(Tokenizer::Impl& t, AddedToken tok) {
  if (tok.content.empty()) return;
  int32_t id = t.added_vocab.find(tok.content);
  if (id >= 0) {  // already added: at most its special flag changes
    for (AddedToken& old : t.added) {
      if (old.id == id) old.special = old.special || tok.special;
    }
    return;
  }
  id = t.model.vocab.find(tok.content);
  if (id < 0) {
    const auto model_size = static_cast<int32_t>(t.model.vocab.size());
    int32_t max_added = -1;
    for (const AddedToken& a : t.added) max_added = std::max(max_added, a.id);
    id = (max_added < 0) ? model_size : ((max_added >= model_size || model_size == 0) ? max_added + 1 : model_size);
  }
  tok.id = id;
  t.added_vocab.add(tok.content, id);
  t.added.push_back(std::move(tok));
}

void read_added_tokens(const json& j, const std::string& where, Tokenizer::Impl& t) {
  if (j.is_null()) return;
  if (!j.is_array()) fail(where, ": expected an array");
  for (size_t i = 0; i < j.size(); ++i) {
    const std::string w = where + "[" + std::to_string(i) + "]";
    const json& e = j[i];
    AddedToken tok;
    tok.content = jf::get_string(e, "content", w);
    jf::as_int(jf::get(e, "id", w), w + ".id", 0, Vocab::kMaxId);  // validated; HF only warns on mismatch
    tok.special = jf::get_bool(e, "special", w, false);
    tok.single_word = jf::get_bool(e, "single_word", w, false);
    tok.lstrip = jf::get_bool(e, "lstrip", w, false);
    tok.rstrip = jf::get_bool(e, "rstrip", w, false);
    tok.normalized = jf::get_bool(e, "normalized", w, true);
    add_token(t, std::move(tok));
  }
}

// ---- post-processor ---------------------------------------------------------------------

void read_post_processor(const json& j, const std::string& where, Tokenizer::Impl& t) {
  t.prefix_ids.clear();
  t.suffix_ids.clear();
  if (j.is_null()) return;
  const std::string type = jf::type_of(j, where);
  if (type == "TemplateProcessing") {
    const json& single = jf::get(j, "single", where);
    const json& specials = jf::get(j, "special_tokens", where);
    if (!single.is_array()) fail(where, ".single: expected an array");
    bool seen_seq = false;
    for (size_t i = 0; i < single.size(); ++i) {
      const std::string w = where + ".single[" + std::to_string(i) + "]";
      const json& piece = single[i];
      if (const json* seq = jf::find(piece, "Sequence")) {
        const std::string id = jf::get_string(*seq, "id", w + ".Sequence");
        if (id != "A") fail(w, ".Sequence.id: expected \"A\" in the single template, found \"", id, "\"");
        if (seen_seq) fail(w, ": the single template has two sequences");
        seen_seq = true;
      } else if (const json* sp = jf::find(piece, "SpecialToken")) {
        const std::string name = jf::get_string(*sp, "id", w + ".SpecialToken");
        const json* def = jf::find(specials, name.c_str());
        if (def == nullptr) fail(where, ".special_tokens: missing \"", name, "\" used by the template");
        const std::string dw = where + ".special_tokens." + name;
        const json& ids = jf::get(*def, "ids", dw);
        if (!ids.is_array()) fail(dw, ".ids: expected an array");
        for (size_t k = 0; k < ids.size(); ++k) {
          const auto id = static_cast<int32_t>(jf::as_int(ids[k], dw + ".ids[" + std::to_string(k) + "]", 0, Vocab::kMaxId));
          (seen_seq ? t.suffix_ids : t.prefix_ids).push_back(id);
        }
      } else {
        fail(w, ": expected {\"Sequence\": ...} or {\"SpecialToken\": ...}");
      }
    }
    if (!seen_seq) fail(where, ".single: the template has no $A sequence");
  } else if (type == "BertProcessing" || type == "RobertaProcessing") {
    auto pair_id = [&](const char* key) {
      const json& p = jf::get(j, key, where);
      if (!p.is_array() || p.size() != 2) fail(where, ".", key, ": expected [token, id]");
      return static_cast<int32_t>(jf::as_int(p[1], where + "." + key + "[1]", 0, Vocab::kMaxId));
    };
    t.prefix_ids.push_back(pair_id("cls"));
    t.suffix_ids.push_back(pair_id("sep"));
  } else {
    fail(where, ": unsupported post_processor type \"", type,
         "\" (supported: TemplateProcessing, BertProcessing, RobertaProcessing)");
  }
}

// ---- tokenizer_config.json --------------------------------------------------------------

// A special-token entry: "<bos>" or {"content": "<bos>", ...} (AddedToken dict), or null.
std::optional<std::string> token_content(const json& v, const std::string& where) {
  if (v.is_null()) return std::nullopt;
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object()) return jf::get_string(v, "content", where);
  fail(where, ": expected a token string or {\"content\": ...}, found ", v.type_name());
}

struct ConfigTokens {
  std::map<std::string, std::string> named;  // bos_token, eos_token, ... -> content
  std::vector<std::string> extra;            // additional / extra special tokens
  std::set<int32_t> special_ids;             // added_tokens_decoder entries marked special
};

void read_config(const json& cfg, const std::string& path, Tokenizer::Impl& t) {
  if (!cfg.is_object()) fail(path, ": expected a JSON object");
  ConfigTokens ct;
  // GemmaTokenizer's constructor defaults fill in what the config leaves out.
  const json* cls = jf::find(cfg, "tokenizer_class");
  const std::string class_name = (cls && cls->is_string()) ? cls->get<std::string>() : "";
  if (class_name.rfind("Gemma", 0) == 0) {
    ct.named = {{"bos_token", "<bos>"}, {"eos_token", "<eos>"}, {"unk_token", "<unk>"},
                {"pad_token", "<pad>"}, {"mask_token", "<mask>"}};
  }
  for (const char* key : {"bos_token", "eos_token", "unk_token", "pad_token", "mask_token", "cls_token", "sep_token"}) {
    if (const json* v = jf::find(cfg, key)) {
      auto c = token_content(*v, path + ": " + key);
      if (c) ct.named[key] = *c;
      else ct.named.erase(key);
    }
  }
  if (const json* v = jf::find(cfg, "additional_special_tokens"); v && !v->is_null()) {
    if (!v->is_array()) fail(path, ": additional_special_tokens: expected an array");
    for (size_t i = 0; i < v->size(); ++i) {
      if (auto c = token_content((*v)[i], path + ": additional_special_tokens[" + std::to_string(i) + "]")) ct.extra.push_back(*c);
    }
  }
  if (const json* v = jf::find(cfg, "extra_special_tokens"); v && !v->is_null()) {
    const std::string w = path + ": extra_special_tokens";
    if (v->is_object()) {
      for (auto it = v->begin(); it != v->end(); ++it) {
        if (auto c = token_content(it.value(), w + "." + it.key())) ct.extra.push_back(*c);
      }
    } else if (v->is_array()) {
      for (size_t i = 0; i < v->size(); ++i) {
        if (auto c = token_content((*v)[i], w + "[" + std::to_string(i) + "]")) ct.extra.push_back(*c);
      }
    } else {
      fail(w, ": expected an object or an array");
    }
  }
  if (const json* v = jf::find(cfg, "added_tokens_decoder"); v && !v->is_null()) {
    const std::string w = path + ": added_tokens_decoder";
    if (!v->is_object()) fail(w, ": expected an object");
    for (auto it = v->begin(); it != v->end(); ++it) {
      const std::string ew = w + "." + it.key();
      if (!jf::get_bool(it.value(), "special", ew, false)) continue;
      const std::string content = jf::get_string(it.value(), "content", ew);
      // Entries are keyed by id; trust the content (ids of the loaded files win).
      int32_t id = t.added_vocab.find(content);
      if (id < 0) id = t.model.vocab.find(content);
      if (id >= 0) ct.special_ids.insert(id);
    }
  }

  // transformers registers every named / extra special token as a special added token
  // (normalized=False). Tokens absent from the vocabulary would be appended as new ids by
  // transformers; that never happens with released Gemma files and is not reproduced.
  auto register_special = [&](const std::string& content) {
    if (t.added_vocab.find(content) < 0 && t.model.vocab.find(content) < 0) return;
    AddedToken tok;
    tok.content = content;
    tok.special = true;
    tok.normalized = false;
    add_token(t, std::move(tok));
  };
  for (const auto& [key, content] : ct.named) register_special(content);
  for (const std::string& content : ct.extra) register_special(content);
  for (int32_t id : ct.special_ids) {
    for (AddedToken& a : t.added) {
      if (a.id == id) a.special = true;
    }
  }

  // A token the config names decides the id (none if it is not in the vocabulary); one it
  // does not name keeps what tokenizer.json implied.
  auto set_id = [&](const char* key, std::optional<int32_t>& id) {
    auto it = ct.named.find(key);
    if (it == ct.named.end()) return;
    int32_t v = t.added_vocab.find(it->second);
    if (v < 0) v = t.model.vocab.find(it->second);
    id = v < 0 ? std::nullopt : std::optional<int32_t>(v);
  };
  set_id("bos_token", t.bos);
  set_id("eos_token", t.eos);
  set_id("pad_token", t.pad);

  // add_bos_token / add_eos_token, when the config sets them, replace the post-processor
  // with [bos] $A [eos], as transformers' update_post_processor() does (Gemma, Llama, and
  // any TokenizersBackend in transformers 5). Otherwise tokenizer.json's post-processor stands.
  const json* ab = jf::find(cfg, "add_bos_token");
  const json* ae = jf::find(cfg, "add_eos_token");
  const bool has_ab = ab && !ab->is_null();
  const bool has_ae = ae && !ae->is_null();
  if (has_ab || has_ae) {
    const bool add_bos = has_ab ? jf::as_bool(*ab, path + ": add_bos_token") : !t.prefix_ids.empty();
    const bool add_eos = has_ae ? jf::as_bool(*ae, path + ": add_eos_token") : !t.suffix_ids.empty();
    if (add_bos && !t.bos) fail(path, ": add_bos_token is true but bos_token is missing or not in the vocabulary");
    if (add_eos && !t.eos) fail(path, ": add_eos_token is true but eos_token is missing or not in the vocabulary");
    t.prefix_ids.clear();
    t.suffix_ids.clear();
    if (add_bos) t.prefix_ids.push_back(*t.bos);
    if (add_eos) t.suffix_ids.push_back(*t.eos);
  }

  if (const json* v = jf::find(cfg, "chat_template"); v && !v->is_null()) {
    const std::string w = path + ": chat_template";
    if (v->is_string()) {
      t.chat_template = v->get<std::string>();
    } else if (v->is_array()) {  // [{"name": ..., "template": ...}]: use "default"
      for (size_t i = 0; i < v->size(); ++i) {
        const std::string ew = w + "[" + std::to_string(i) + "]";
        if (jf::get_string((*v)[i], "name", ew) == "default") t.chat_template = jf::get_string((*v)[i], "template", ew);
      }
    } else {
      fail(w, ": expected a string or a list of {name, template}");
    }
  }
}

}  // namespace

std::shared_ptr<const Tokenizer::Impl> load_tokenizer(const std::string& tokenizer_json,
                                                       const std::string& tokenizer_config_json,
                                                       const std::string& chat_template_file) {
  auto t = std::make_shared<Tokenizer::Impl>();
  const std::string& path = tokenizer_json;
  {
    MappedFile file(path);
    const std::string_view text(reinterpret_cast<const char*>(file.data()), file.size());
    if (text.empty()) fail(path, ": file is empty");
    JsonCursor c(text, path);
    if (c.peek() != '{') c.error("expected a JSON object");
    c.expect('{');
    std::map<std::string, Span> sections;
    bool have_model = false;
    std::string key;
    bool first = true;
    while (c.next_member(first)) {
      if (c.peek() != '"') c.error("expected a key");
      c.read_string(key);
      c.expect(':');
      if (key == "model") {
        read_model(c, path, text.size(), t->model);
        have_model = true;
      } else {
        const std::string_view v = c.skip_value();
        sections[key] = Span{v, c.offset_of(v)};
      }
    }
    if (!c.at_end()) c.error("trailing characters after the top-level object");
    if (!have_model) fail(path, ": missing field \"model\"");

    auto section = [&](const char* name) -> json {
      auto it = sections.find(name);
      return it == sections.end() ? json() : parse_span(it->second, path + ": " + name);
    };
    read_added_tokens(section("added_tokens"), path + ": added_tokens", *t);
    t->normalizer = Normalizer::from_json(section("normalizer"), path + ": normalizer");
    t->pre_tokenizer = PreTokenizer::from_json(section("pre_tokenizer"), path + ": pre_tokenizer");
    t->decoder = Decoder::from_json(section("decoder"), path + ": decoder");
    read_post_processor(section("post_processor"), path + ": post_processor", *t);
    if (!t->prefix_ids.empty()) t->bos = t->prefix_ids.front();
    if (!t->suffix_ids.empty()) t->eos = t->suffix_ids.back();
    if (const json pad = section("padding"); pad.is_object()) {
      if (const json* pid = jf::find(pad, "pad_id"); pid && pid->is_number_integer()) {
        t->pad = static_cast<int32_t>(jf::as_int(*pid, path + ": padding.pad_id", 0, Vocab::kMaxId));
      }
    }
  }  // unmap the 33 MB file

  if (!tokenizer_config_json.empty()) {
    const std::string text = read_text_file(tokenizer_config_json);
    json cfg;
    try {
      cfg = json::parse(text);
    } catch (const json::exception& e) {
      fail(tokenizer_config_json, ": ", e.what());
    }
    read_config(cfg, tokenizer_config_json, *t);
  }
  if (t->chat_template.empty() && !chat_template_file.empty()) t->chat_template = read_text_file(chat_template_file);

  // Every id the post-processor emits must decode to something.
  for (int32_t id : t->prefix_ids) {
    std::string_view s;
    if (!t->token_of(id, s)) fail(path, ": post_processor: id ", id, " is not in the vocabulary");
  }
  for (int32_t id : t->suffix_ids) {
    std::string_view s;
    if (!t->token_of(id, s)) fail(path, ": post_processor: id ", id, " is not in the vocabulary");
  }

  // Matchers: normalized tokens are matched on normalized text, so their patterns are
  // normalized too (HF refresh_added_tokens).
  std::vector<std::string> raw_patterns, norm_patterns;
  std::vector<AddedToken> raw_tokens, norm_tokens;
  // HF lists special tokens first, then the others; order only matters for identical
  // patterns, which cannot happen (contents are unique).
  for (const AddedToken& a : t->added) {
    if (a.normalized) {
      std::string n;
      t->normalizer.apply(a.content, n);
      norm_patterns.push_back(std::move(n));
      norm_tokens.push_back(a);
    } else {
      raw_patterns.push_back(a.content);
      raw_tokens.push_back(a);
    }
  }
  t->raw_matcher.build(raw_patterns, raw_tokens);
  t->normalized_matcher.build(norm_patterns, norm_tokens);

  // Special flags by id, and the vocabulary size counting distinct strings.
  int32_t id_end = t->model.vocab.id_end();
  for (const AddedToken& a : t->added) id_end = std::max(id_end, a.id + 1);
  t->special.assign(static_cast<size_t>(id_end), 0);
  int64_t extra = 0;
  for (const AddedToken& a : t->added) {
    if (a.special) t->special[static_cast<size_t>(a.id)] = 1;
    if (t->model.vocab.find(a.content) < 0) ++extra;
  }
  t->vocab_size = static_cast<int64_t>(t->model.vocab.size()) + extra;
  return t;
}

}  // namespace t5g
