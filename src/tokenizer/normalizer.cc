#include "tokenizer/normalizer.h"

#include "tokenizer/json_fields.h"
#include "tokenizer/utf8.h"
#include "util/error.h"

namespace t5g {

void replace_all(std::string_view text, std::string_view pattern, std::string_view content, std::string& out) {
  out.clear();
  if (pattern.empty()) {  // HF: an empty pattern never matches
    out.assign(text);
    return;
  }
  out.reserve(text.size() + text.size() / 2);
  size_t pos = 0;
  for (;;) {
    const size_t hit = text.find(pattern, pos);
    if (hit == std::string_view::npos) break;
    out.append(text.data() + pos, hit - pos);
    out.append(content);
    pos = hit + pattern.size();
  }
  out.append(text.data() + pos, text.size() - pos);
}

Normalizer Normalizer::from_json(const nlohmann::json& j, const std::string& where) {
  Normalizer n;
  if (!j.is_null()) n.add(j, where);
  return n;
}

void Normalizer::add(const nlohmann::json& j, const std::string& where) {
  const std::string type = jf::type_of(j, where);
  if (type == "Sequence") {
    const auto& list = jf::get(j, "normalizers", where);
    if (!list.is_array()) fail(where, ".normalizers: expected an array");
    for (size_t i = 0; i < list.size(); ++i) add(list[i], where + ".normalizers[" + std::to_string(i) + "]");
  } else if (type == "Replace") {
    steps_.push_back({Kind::Replace, jf::literal_pattern(jf::get(j, "pattern", where), where + ".pattern"),
                      jf::get_string(j, "content", where)});
  } else if (type == "Prepend") {
    steps_.push_back({Kind::Prepend, jf::get_string(j, "prepend", where), {}});
  } else if (type == "Strip") {
    Step s{Kind::Strip, {}, {}};
    s.left = jf::get_bool(j, "strip_left", where, false);
    s.right = jf::get_bool(j, "strip_right", where, false);
    steps_.push_back(s);
  } else {
    fail(where, ": unsupported normalizer type \"", type, "\" (supported: Sequence, Replace, Prepend, Strip)");
  }
}

void Normalizer::apply(std::string_view text, std::string& out) const {
  out.assign(text);
  std::string tmp;
  for (const Step& s : steps_) {
    switch (s.kind) {
      case Kind::Replace:
        if (out.find(s.a) == std::string::npos) break;
        replace_all(out, s.a, s.b, tmp);
        out.swap(tmp);
        break;
      case Kind::Prepend:
        if (!out.empty()) out.insert(0, s.a);
        break;
      case Kind::Strip: {
        size_t b = 0, e = out.size();
        if (s.left) {
          while (b < e) {
            size_t j = b;
            if (!utf8::is_whitespace(utf8::decode(out, j))) break;
            b = j;
          }
        }
        if (s.right) {
          while (e > b) {
            size_t k = e;
            do {
              --k;
            } while (k > b && (static_cast<unsigned char>(out[k]) & 0xC0) == 0x80);
            size_t j = k;
            if (!utf8::is_whitespace(utf8::decode(out, j))) break;
            e = k;
          }
        }
        out = out.substr(b, e - b);
        break;
      }
    }
  }
}

}  // namespace t5g
