#include "tokenizer/pre_tokenizer.h"

#include <algorithm>

#include "tokenizer/json_fields.h"
#include "util/error.h"

namespace t5g {

PreTokenizer PreTokenizer::from_json(const nlohmann::json& j, const std::string& where) {
  PreTokenizer p;
  if (!j.is_null()) p.add(j, where);
  return p;
}

void PreTokenizer::add(const nlohmann::json& j, const std::string& where) {
  const std::string type = jf::type_of(j, where);
  if (type == "Sequence") {
    const auto& list = jf::get(j, "pretokenizers", where);
    if (!list.is_array()) fail(where, ".pretokenizers: expected an array");
    for (size_t i = 0; i < list.size(); ++i) add(list[i], where + ".pretokenizers[" + std::to_string(i) + "]");
  } else if (type == "Split") {
    Split s;
    s.pattern = jf::literal_pattern(jf::get(j, "pattern", where), where + ".pattern");
    const std::string b = jf::get_string(j, "behavior", where);
    if (b == "Removed") s.behavior = Behavior::Removed;
    else if (b == "Isolated") s.behavior = Behavior::Isolated;
    else if (b == "MergedWithPrevious") s.behavior = Behavior::MergedWithPrevious;
    else if (b == "MergedWithNext") s.behavior = Behavior::MergedWithNext;
    else if (b == "Contiguous") s.behavior = Behavior::Contiguous;
    else fail(where, ".behavior: unknown split behavior \"", b, "\"");
    s.invert = jf::get_bool(j, "invert", where, false);
    steps_.push_back(std::move(s));
  } else {
    fail(where, ": unsupported pre_tokenizer type \"", type, "\" (supported: Sequence, Split)");
  }
}

// HF NormalizedString::split: the text is covered by alternating match / non-match spans,
// which the behavior then drops, isolates or glues to a neighbour.
void PreTokenizer::split_one(const Split& s, std::string_view text, std::vector<std::string_view>& out) {
  struct Span {
    size_t b, e;
    bool match;
  };
  std::vector<Span> spans;
  if (s.pattern.empty()) {
    spans.push_back({0, text.size(), false});
  } else {
    size_t prev = 0;
    for (size_t hit = text.find(s.pattern); hit != std::string_view::npos; hit = text.find(s.pattern, prev)) {
      if (prev != hit) spans.push_back({prev, hit, false});
      spans.push_back({hit, hit + s.pattern.size(), true});
      prev = hit + s.pattern.size();
    }
    if (prev != text.size()) spans.push_back({prev, text.size(), false});
  }
  if (s.invert) {
    for (Span& sp : spans) sp.match = !sp.match;
  }
  std::vector<Span> pieces;  // here `match` means "remove"
  switch (s.behavior) {
    case Behavior::Removed:
      for (const Span& sp : spans) pieces.push_back(sp);
      break;
    case Behavior::Isolated:
      for (const Span& sp : spans) pieces.push_back({sp.b, sp.e, false});
      break;
    case Behavior::Contiguous: {
      bool prev_match = false;
      for (const Span& sp : spans) {
        if (sp.match == prev_match && !pieces.empty()) pieces.back().e = sp.e;
        else pieces.push_back({sp.b, sp.e, false});
        prev_match = sp.match;
      }
      break;
    }
    case Behavior::MergedWithPrevious: {
      bool prev_match = false;
      for (const Span& sp : spans) {
        if (sp.match && !prev_match && !pieces.empty()) pieces.back().e = sp.e;
        else pieces.push_back({sp.b, sp.e, false});
        prev_match = sp.match;
      }
      break;
    }
    case Behavior::MergedWithNext: {
      bool prev_match = false;
      for (size_t k = spans.size(); k-- > 0;) {
        const Span& sp = spans[k];
        if (sp.match && !prev_match && !pieces.empty()) pieces.back().b = sp.b;
        else pieces.push_back({sp.b, sp.e, false});
        prev_match = sp.match;
      }
      std::reverse(pieces.begin(), pieces.end());
      break;
    }
  }
  for (const Span& p : pieces) {
    if (!p.match && p.e > p.b) out.push_back(text.substr(p.b, p.e - p.b));
  }
}

void PreTokenizer::apply(std::string_view text, std::vector<std::string_view>& out) const {
  if (text.empty()) return;
  if (steps_.empty()) {
    out.push_back(text);
    return;
  }
  std::vector<std::string_view> cur{text}, next;
  for (const Split& s : steps_) {
    next.clear();
    for (std::string_view w : cur) split_one(s, w, next);
    cur.swap(next);
  }
  out.insert(out.end(), cur.begin(), cur.end());
}

}  // namespace t5g
