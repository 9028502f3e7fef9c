#include "tokenizer/added_tokens.h"

#include <algorithm>
#include <cstring>

#include "tokenizer/utf8.h"

namespace t5g {

namespace {

// Code point ending just before `end` in valid UTF-8 text.
uint32_t last_char(std::string_view s, size_t end) {
  size_t i = end;
  do {
    --i;
  } while (i > 0 && (static_cast<unsigned char>(s[i]) & 0xC0) == 0x80);
  return utf8::decode(s, i);
}

}  // namespace

void AddedTokenMatcher::build(const std::vector<std::string>& patterns, const std::vector<AddedToken>& tokens) {
  nodes_.assign(1, Node{});
  tokens_.clear();
  std::memset(first_byte_, 0, sizeof(first_byte_));
  for (size_t k = 0; k < patterns.size(); ++k) {
    const std::string& p = patterns[k];
    if (p.empty()) continue;
    int32_t node = 0;
    for (char ch : p) {
      const auto b = static_cast<uint8_t>(ch);
      int32_t next = child(node, b);
      if (next < 0) {
        next = static_cast<int32_t>(nodes_.size());
        auto& kids = nodes_[node].children;
        kids.insert(std::lower_bound(kids.begin(), kids.end(), std::make_pair(b, INT32_MIN)), {b, next});
        nodes_.emplace_back();
      }
      node = next;
    }
    if (nodes_[node].token < 0) {  // identical patterns: the first one wins
      nodes_[node].token = static_cast<int32_t>(tokens_.size());
      const AddedToken& t = tokens[k];
      tokens_.push_back({t.id, t.single_word, t.lstrip, t.rstrip});
    }
    first_byte_[static_cast<uint8_t>(p[0])] = true;
  }
}

int32_t AddedTokenMatcher::child(int32_t node, uint8_t b) const {
  const auto& kids = nodes_[node].children;
  for (const auto& [kb, kn] : kids) {
    if (kb == b) return kn;
    if (kb > b) break;
  }
  return -1;
}

int32_t AddedTokenMatcher::longest_at(std::string_view text, size_t pos, size_t& len) const {
  int32_t node = 0;
  int32_t best = -1;
  for (size_t i = pos; i < text.size(); ++i) {
    node = child(node, static_cast<uint8_t>(text[i]));
    if (node < 0) break;
    if (nodes_[node].token >= 0) {
      best = nodes_[node].token;
      len = i + 1 - pos;
    }
  }
  return best;
}

void AddedTokenMatcher::split(std::string_view text, std::vector<TextSplit>& out) const {
  size_t start_offset = 0;  // end of what has been emitted so far
  size_t pos = 0;           // where the (non-overlapping) match search resumes
  if (!tokens_.empty()) {
    while (pos < text.size()) {
      if (!first_byte_[static_cast<uint8_t>(text[pos])]) {
        ++pos;
        continue;
      }
      size_t len = 0;
      const int32_t k = longest_at(text, pos, len);
      if (k < 0) {
        ++pos;
        continue;
      }
      size_t start = pos;
      size_t stop = pos + len;
      pos = stop;
      const Rule& r = tokens_[k];
      if (r.single_word) {
        const bool start_ok = start == 0 || !utf8::is_word_char(last_char(text, start));
        size_t j = stop;
        const bool stop_ok = stop == text.size() || !utf8::is_word_char(utf8::decode(text, j));
        if (!start_ok || !stop_ok) continue;
      }
      if (r.lstrip) {
        size_t s = start;
        while (s > 0) {
          size_t b = s;
          do {
            --b;
          } while (b > 0 && (static_cast<unsigned char>(text[b]) & 0xC0) == 0x80);
          size_t j = b;
          if (!utf8::is_whitespace(utf8::decode(text, j))) break;
          s = b;
        }
        start = std::max(s, start_offset);
      }
      if (r.rstrip) {
        size_t j = stop;
        while (j < text.size()) {
          size_t n = j;
          if (!utf8::is_whitespace(utf8::decode(text, n))) break;
          j = n;
        }
        stop = j;
      }
      if (start_offset < start) out.push_back({start_offset, start, -1});
      out.push_back({start, stop, r.id});
      start_offset = stop;
    }
  }
  if (start_offset < text.size()) out.push_back({start_offset, text.size(), -1});
}

}  // namespace t5g
