#include "tokenizer/json_cursor.h"

#include <utility>

#include "tokenizer/utf8.h"
#include "util/error.h"

namespace t5g {

namespace {
constexpr int kMaxDepth = 512;  // deeper nesting is certainly not a tokenizer file; also bounds recursion
}

JsonCursor::JsonCursor(std::string_view text, std::string what, size_t base)
    : s_(text), what_(std::move(what)), base_(base) {}

void JsonCursor::error(std::string_view msg) const {
  fail(what_, ": invalid JSON at byte ", base_ + pos_, ": ", msg);
}

void JsonCursor::skip_ws() {
  while (pos_ < s_.size()) {
    const char c = s_[pos_];
    if (c != ' ' && c != '\n' && c != '\r' && c != '\t') break;
    ++pos_;
  }
}

char JsonCursor::peek() {
  skip_ws();
  return pos_ < s_.size() ? s_[pos_] : '\0';
}

bool JsonCursor::at_end() {
  skip_ws();
  return pos_ >= s_.size();
}

void JsonCursor::expect(char c) {
  if (peek() != c) {
    if (pos_ >= s_.size()) error(std::string("unexpected end of input, expected '") + c + "'");
    error(std::string("expected '") + c + "', found '" + s_[pos_] + "'");
  }
  ++pos_;
}

bool JsonCursor::consume(char c) {
  if (peek() != c) return false;
  ++pos_;
  return true;
}

bool JsonCursor::consume_null() {
  if (peek() != 'n') return false;
  skip_literal("null");
  return true;
}

bool JsonCursor::next_member(bool& first) {
  if (consume('}')) return false;
  if (!first) expect(',');
  first = false;
  return true;
}

bool JsonCursor::next_element(bool& first) {
  if (consume(']')) return false;
  if (!first) expect(',');
  first = false;
  return true;
}

uint32_t JsonCursor::read_hex4() {
  if (s_.size() - pos_ < 4) error("truncated \\u escape");
  uint32_t v = 0;
  for (int k = 0; k < 4; ++k) {
    const char c = s_[pos_++];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= static_cast<uint32_t>(c - '0');
    else if (c >= 'a' && c <= 'f') v |= static_cast<uint32_t>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= static_cast<uint32_t>(c - 'A' + 10);
    else error("bad hex digit in \\u escape");
  }
  return v;
}

void JsonCursor::read_string(std::string& out) {
  out.clear();
  expect('"');
  for (;;) {
    // Copy the run of plain ASCII in one go; stop at quote, backslash, control or non-ASCII.
    size_t run = pos_;
    while (run < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[run]);
      if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
      ++run;
    }
    out.append(s_.data() + pos_, run - pos_);
    pos_ = run;
    if (pos_ >= s_.size()) error("unterminated string");
    const auto c = static_cast<unsigned char>(s_[pos_]);
    if (c == '"') {
      ++pos_;
      return;
    }
    if (c >= 0x80) {
      const size_t n = utf8::valid_seq_len(s_, pos_);
      if (n == 0) error("invalid UTF-8 in string");
      out.append(s_.data() + pos_, n);
      pos_ += n;
      continue;
    }
    if (c < 0x20) error("control character in string");
    ++pos_;  // backslash
    if (pos_ >= s_.size()) error("unterminated escape");
    const char e = s_[pos_++];
    switch (e) {
      case '"': out.push_back('"'); break;
      case '\\': out.push_back('\\'); break;
      case '/': out.push_back('/'); break;
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case 'u': {
        uint32_t cp = read_hex4();
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          if (s_.size() - pos_ < 6 || s_[pos_] != '\\' || s_[pos_ + 1] != 'u') error("lone high surrogate in \\u escape");
          pos_ += 2;
          const uint32_t lo = read_hex4();
          if (lo < 0xDC00 || lo > 0xDFFF) error("bad low surrogate in \\u escape");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          error("lone low surrogate in \\u escape");
        }
        utf8::append(out, cp);
        break;
      }
      default: --pos_; error("bad escape character");
    }
  }
}

int64_t JsonCursor::read_int(int64_t min, int64_t max) {
  skip_ws();
  const size_t start = pos_;
  bool neg = false;
  if (pos_ < s_.size() && s_[pos_] == '-') {
    neg = true;
    ++pos_;
  }
  if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') error("expected an integer");
  int64_t v = 0;
  while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') {
    if (v > (INT64_MAX - 9) / 10) error("integer out of range");
    v = v * 10 + (s_[pos_++] - '0');
  }
  if (pos_ < s_.size() && (s_[pos_] == '.' || s_[pos_] == 'e' || s_[pos_] == 'E')) {
    pos_ = start;
    error("expected an integer, found a fraction or exponent");
  }
  if (neg) v = -v;
  if (v < min || v > max) {
    pos_ = start;
    error("integer " + std::to_string(v) + " out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return v;
}

void JsonCursor::skip_literal(std::string_view lit) {
  if (s_.substr(pos_, lit.size()) != lit) error("invalid literal");
  pos_ += lit.size();
}

void JsonCursor::skip_string() {
  ++pos_;  // opening quote
  for (;;) {
    while (pos_ < s_.size()) {
      const auto c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80) break;
      ++pos_;
    }
    if (pos_ >= s_.size()) error("unterminated string");
    const auto c = static_cast<unsigned char>(s_[pos_]);
    if (c == '"') {
      ++pos_;
      return;
    }
    if (c >= 0x80) {
      const size_t n = utf8::valid_seq_len(s_, pos_);
      if (n == 0) error("invalid UTF-8 in string");
      pos_ += n;
    } else if (c < 0x20) {
      error("control character in string");
    } else {
      pos_ += 2;  // escape; its validity is checked by whoever parses the captured span
      if (pos_ > s_.size()) error("unterminated escape");
    }
  }
}

void JsonCursor::skip_number() {
  const size_t start = pos_;
  if (s_[pos_] == '-') ++pos_;
  auto digits = [&] {
    const size_t d = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    if (pos_ == d) error("malformed number");
  };
  digits();
  if (pos_ < s_.size() && s_[pos_] == '.') {
    ++pos_;
    digits();
  }
  if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
    ++pos_;
    if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
    digits();
  }
  if (pos_ == start) error("malformed number");
}

std::string_view JsonCursor::skip_value() {
  peek();  // skip leading whitespace
  const size_t start = pos_;
  // Iterative, with an explicit stack of open containers, so hostile nesting cannot
  // overflow the C++ stack.
  std::string stack;  // '{' or '['
  bool expect_value = true;
  for (;;) {
    if (expect_value) {
      const char c = peek();
      switch (c) {
        case '"': skip_string(); break;
        case '{':
        case '[':
          if (stack.size() >= kMaxDepth) error("nesting too deep");
          ++pos_;
          stack.push_back(c);
          if (peek() == (c == '{' ? '}' : ']')) {
            ++pos_;
            stack.pop_back();
            break;
          }
          if (c == '{') {
            if (peek() != '"') error("expected a string key");
            skip_string();
            expect(':');
          }
          continue;  // expect_value stays true
        case 't': skip_literal("true"); break;
        case 'f': skip_literal("false"); break;
        case 'n': skip_literal("null"); break;
        case '\0':
          if (pos_ >= s_.size()) error("unexpected end of input");
          [[fallthrough]];
        default:
          if (c == '-' || (c >= '0' && c <= '9')) {
            skip_number();
            break;
          }
          error(std::string("unexpected character '") + c + "'");
      }
      expect_value = false;
    }
    if (stack.empty()) break;
    const char close = stack.back() == '{' ? '}' : ']';
    if (consume(close)) {
      stack.pop_back();
      continue;
    }
    expect(',');
    if (stack.back() == '{') {
      if (peek() != '"') error("expected a string key");
      skip_string();
      expect(':');
    }
    expect_value = true;
  }
  return s_.substr(start, pos_ - start);
}

}  // namespace t5g
