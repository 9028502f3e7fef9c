// Helpers shared by the tokenizer tests: the Gemma 3 tokenizer loaded once per process,
// deterministic random text, and access to the BPE model for white-box checks.
#pragma once
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/utf8.h"

namespace t5g {

using Rng = std::mt19937;

// Loaded once per test process (ctest runs every TEST in its own process).
inline const Tokenizer& gemma3() {
  static const Tokenizer tok = Tokenizer::load(T5G_GEMMA3_TOKENIZER_DIR);
  return tok;
}

inline const BpeModel& tokenizer_model(const Tokenizer& t) { return t.impl().model; }
inline void bpe_tokenize(const BpeModel& m, const std::string& w, std::vector<int32_t>& out) { m.tokenize(w, out); }
inline void bpe_tokenize_whole(const BpeModel& m, const std::string& w, std::vector<int32_t>& out) {
  m.tokenize_whole(w, out);
}

inline std::string repeat(const std::string& s, size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

inline std::string replace_all_copy(const std::string& s, const std::string& from, const std::string& to) {
  std::string out;
  size_t pos = 0;
  for (size_t hit = s.find(from); hit != std::string::npos; hit = s.find(from, pos)) {
    out.append(s, pos, hit - pos);
    out += to;
    pos = hit + from.size();
  }
  out.append(s, pos);
  return out;
}

inline bool is_valid_utf8(const std::string& s) { return utf8::is_valid(s); }
inline std::string python_replace_decode(const std::string& s) { return utf8::sanitize(s); }

// Random valid UTF-8 mixing what stresses a Gemma tokenizer: ASCII words and spaces, runs
// of whitespace, Latin/Cyrillic/CJK/Indic, emoji and other astral characters (many absent
// from the vocab, so they take the byte-fallback path), controls, private use, combining
// marks, "▁" itself, and fragments or whole spellings of added tokens.
inline std::string random_unicode(Rng& rng, size_t n_items) {
  static const char* kFragments[] = {"<bos>", "<eos>", "<start_of_image>", "<end_of_turn>", "<unused7>", "<mask>",
                                     "[multimodal]", "<unused", "<start_of", ">", "<", " ", "  ", "\n", "\n\n",
                                     "\t", "\xE2\x96\x81", "the", " of", "ing", "Hello", "<0x41>", "<0xZZ>"};
  std::string s;
  for (size_t i = 0; i < n_items; ++i) {
    uint32_t cp;
    switch (rng() % 12) {
      case 0: s += kFragments[rng() % (sizeof(kFragments) / sizeof(kFragments[0]))]; continue;
      case 1: cp = " \n\t\r"[rng() % 4]; break;
      case 2: cp = 0x20 + rng() % 0x5F; break;
      case 3: cp = 'a' + rng() % 26; break;
      case 4: cp = 0xA0 + rng() % 0x560; break;           // Latin-1 .. Armenian
      case 5: cp = 0x900 + rng() % 0x300; break;          // Indic
      case 6: cp = 0x4E00 + rng() % 0x5200; break;        // CJK
      case 7: cp = 0x1F300 + rng() % 0x700; break;        // emoji and pictographs
      case 8: cp = 0x10000 + rng() % 0x100000; break;     // anything astral
      case 9: cp = rng() % 0x20; break;                   // C0 controls (incl. NUL)
      case 10: cp = 0x300 + rng() % 0x70; break;          // combining marks
      default: cp = 0xE000 + rng() % 0x1FFE; break;       // private use .. CJK compatibility
    }
    if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;
    utf8::append(s, cp);
  }
  return s;
}

}  // namespace t5g
