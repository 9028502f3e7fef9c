// UTF-8 helpers for the tokenizer: decoding one code point, validation, and the
// replacement of ill-formed input with U+FFFD.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace t5g::utf8 {

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// Byte length of the sequence introduced by lead byte `b` (1 for ASCII and for stray bytes).
// Only meaningful on text already known to be valid UTF-8.
inline size_t seq_len(unsigned char b) {
  if (b < 0x80) return 1;
  if (b < 0xE0) return 2;
  if (b < 0xF0) return 3;
  return 4;
}

// Length of the well-formed sequence at s[i], or 0 when it is ill-formed or truncated
// (Unicode Table 3-7: no overlongs, no surrogates, nothing above U+10FFFF).
size_t valid_seq_len(std::string_view s, size_t i);

// Decodes the code point at s[i] of valid UTF-8 text and advances i past it.
inline uint32_t decode(std::string_view s, size_t& i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) {
    ++i;
    return b0;
  }
  const size_t n = seq_len(b0);
  uint32_t cp = b0 & (n == 2 ? 0x1Fu : n == 3 ? 0x0Fu : 0x07u);
  for (size_t k = 1; k < n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3Fu);
  i += n;
  return cp;
}

void append(std::string& out, uint32_t cp);

bool is_valid(std::string_view s);

// Replaces every maximal ill-formed subpart with U+FFFD, exactly as Python's
// bytes.decode("utf-8", errors="replace") does (the Unicode "best practice"); valid text is
// returned unchanged.
std::string sanitize(std::string_view s);

// Rust's char::is_whitespace (Unicode White_Space property).
bool is_whitespace(uint32_t cp);

// Approximation of Rust regex `\w` (Unicode word character) used for single_word added
// tokens: ASCII alphanumerics and '_', plus every non-ASCII code point outside the common
// whitespace / punctuation / symbol blocks. No Gemma token uses single_word.
bool is_word_char(uint32_t cp);

}  // namespace t5g::utf8
