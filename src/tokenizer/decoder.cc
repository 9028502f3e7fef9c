#include "tokenizer/decoder.h"

#include "tokenizer/json_fields.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace t5g {

namespace {

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Number of leading (or trailing) repetitions of `c` in `t`, at most `limit`.
size_t count_leading(std::string_view t, std::string_view c, size_t limit) {
  size_t n = 0, pos = 0;
  while (n < limit && t.substr(pos, c.size()) == c) {
    pos += c.size();
    ++n;
  }
  return n;
}
size_t count_trailing(std::string_view t, std::string_view c, size_t limit) {
  size_t n = 0, end = t.size();
  while (n < limit && end >= c.size() && t.substr(end - c.size(), c.size()) == c) {
    end -= c.size();
    ++n;
  }
  return n;
}

}  // namespace

int parse_byte_token(std::string_view t) {
  // Rust: len == 6, "<0x" ... '>', u8::from_str_radix(&t[3..5], 16), which also takes "+N".
  if (t.size() != 6 || t.substr(0, 3) != "<0x" || t[5] != '>') return -1;
  const int lo = hex(t[4]);
  if (lo < 0) return -1;
  if (t[3] == '+') return lo;
  const int hi = hex(t[3]);
  return hi < 0 ? -1 : hi * 16 + lo;
}

Decoder Decoder::from_json(const nlohmann::json& j, const std::string& where) {
  Decoder d;
  if (!j.is_null()) {
    d.present_ = true;
    d.add(j, where);
  }
  d.finish();
  return d;
}

void Decoder::add(const nlohmann::json& j, const std::string& where) {
  const std::string type = jf::type_of(j, where);
  if (type == "Sequence") {
    const auto& list = jf::get(j, "decoders", where);
    if (!list.is_array()) fail(where, ".decoders: expected an array");
    for (size_t i = 0; i < list.size(); ++i) add(list[i], where + ".decoders[" + std::to_string(i) + "]");
  } else if (type == "Replace") {
    steps_.push_back({Kind::Replace, jf::literal_pattern(jf::get(j, "pattern", where), where + ".pattern"),
                      jf::get_string(j, "content", where)});
  } else if (type == "ByteFallback") {
    steps_.push_back({Kind::ByteFallback, {}, {}});
  } else if (type == "Fuse") {
    steps_.push_back({Kind::Fuse, {}, {}});
  } else if (type == "Strip") {
    Step s{Kind::Strip, jf::get_string(j, "content", where), {}};
    size_t i = 0;
    if (s.a.empty() || (utf8::decode(s.a, i), i != s.a.size())) fail(where, ".content: expected a single character");
    s.start = static_cast<size_t>(jf::as_int(jf::get(j, "start", where), where + ".start", 0, INT32_MAX));
    s.stop = static_cast<size_t>(jf::as_int(jf::get(j, "stop", where), where + ".stop", 0, INT32_MAX));
    steps_.push_back(std::move(s));
  } else {
    fail(where, ": unsupported decoder type \"", type, "\" (supported: Sequence, Replace, ByteFallback, Fuse, Strip)");
  }
}

void Decoder::finish() {
  bool fused = false;
  for (Step& s : steps_) {
    s.after_fuse = fused;
    if (s.kind == Kind::ByteFallback) has_byte_fallback_ = true;
    // After Fuse a step sees the whole text as one token; these look across window edges.
    if (fused && (s.kind == Kind::Replace || s.kind == Kind::ByteFallback || (s.kind == Kind::Strip && s.stop > 0))) {
      separable_ = false;
    }
    if (s.kind == Kind::Fuse) fused = true;
  }
}

std::vector<std::string> Decoder::run(std::vector<std::string> tokens, StreamState* st) const {
  std::vector<std::string> tmp;
  std::string buf;
  size_t fuse_strip = 0;  // index of the current Strip-after-Fuse step, for the stream budgets
  for (const Step& s : steps_) {
    switch (s.kind) {
      case Kind::Replace:
        for (std::string& t : tokens) {
          if (t.find(s.a) == std::string::npos) continue;
          replace_all(t, s.a, s.b, buf);
          t.swap(buf);
        }
        break;
      case Kind::ByteFallback: {
        tmp.clear();
        std::string bytes;
        size_t n_bytes = 0;
        auto flush = [&] {
          if (n_bytes == 0) return;
          if (utf8::is_valid(bytes)) {
            tmp.push_back(bytes);
          } else {
            for (size_t k = 0; k < n_bytes; ++k) tmp.emplace_back(utf8::kReplacement);
          }
          bytes.clear();
          n_bytes = 0;
        };
        for (std::string& t : tokens) {
          const int b = parse_byte_token(t);
          if (b >= 0) {
            bytes.push_back(static_cast<char>(b));
            ++n_bytes;
          } else {
            flush();
            tmp.push_back(std::move(t));
          }
        }
        flush();
        tokens.swap(tmp);
        break;
      }
      case Kind::Fuse: {
        std::string all;
        for (const std::string& t : tokens) all += t;
        tokens.assign(1, std::move(all));
        break;
      }
      case Kind::Strip: {
        for (std::string& t : tokens) {
          size_t budget = s.start;
          if (st != nullptr && s.after_fuse) budget = st->strip_budget[fuse_strip];
          const size_t lead = count_leading(t, s.a, budget);
          size_t trail = 0;
          if (st == nullptr || !s.after_fuse) trail = count_trailing(std::string_view(t).substr(lead * s.a.size()), s.a, s.stop);
          if (st != nullptr && s.after_fuse) {
            // The whole-text strip continues into the next window only if this one was all stripped.
            st->strip_budget[fuse_strip] = (lead * s.a.size() == t.size()) ? budget - lead : 0;
          }
          t = t.substr(lead * s.a.size(), t.size() - (lead + trail) * s.a.size());
        }
        if (s.after_fuse) ++fuse_strip;
        break;
      }
    }
  }
  return tokens;
}

std::string Decoder::decode(std::vector<std::string> tokens) const {
  std::string out;
  if (!present_) {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i) out.push_back(' ');
      out += tokens[i];
    }
    return out;
  }
  for (const std::string& t : run(std::move(tokens), nullptr)) out += t;
  return out;
}

bool Decoder::is_byte_token(std::string_view raw) const {
  if (!has_byte_fallback_) return false;
  std::string t(raw), buf;
  for (const Step& s : steps_) {
    if (s.kind == Kind::ByteFallback) return parse_byte_token(t) >= 0;
    if (s.kind == Kind::Replace && t.find(s.a) != std::string::npos) {
      replace_all(t, s.a, s.b, buf);
      t.swap(buf);
    } else if (s.kind == Kind::Strip) {
      const size_t lead = count_leading(t, s.a, s.start);
      const size_t trail = count_trailing(std::string_view(t).substr(lead * s.a.size()), s.a, s.stop);
      t = t.substr(lead * s.a.size(), t.size() - (lead + trail) * s.a.size());
    } else if (s.kind == Kind::Fuse) {
      return false;  // ByteFallback after Fuse: the stream is not separable anyway
    }
  }
  return false;
}

std::string Decoder::decode_window(std::vector<std::string> tokens, StreamState& st) const {
  std::string out;
  if (!present_) {
    for (const std::string& t : tokens) {
      if (st.started) out.push_back(' ');
      out += t;
      st.started = true;
    }
    return out;
  }
  if (!st.started) {
    for (const Step& s : steps_) {
      if (s.kind == Kind::Strip && s.after_fuse) st.strip_budget.push_back(s.start);
    }
    st.started = true;
  }
  for (const std::string& t : run(std::move(tokens), &st)) out += t;
  return out;
}

}  // namespace t5g
