// A minimal, validating JSON pull parser over an in-memory buffer.
//
// Why not nlohmann::json for everything: tokenizer.json is 33 MB, almost all of it the BPE
// vocab (262k entries) and merges (515k pairs). nlohmann's DOM takes ~1 s on it and even
// its SAX interface ~0.35 s; walking those two arrays with this cursor, straight into the
// final tables, is several times faster. Everything else in the file is small and is handed
// to nlohmann::json as a raw span (see skip_value).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace t5g {

class JsonCursor {
 public:
  // `what` names the document in error messages (normally the file path); `base` is the
  // offset of `text` inside that document, so errors in a sub-span report file offsets.
  JsonCursor(std::string_view text, std::string what, size_t base = 0);

  // Skips whitespace and returns the next character without consuming it ('\0' at the end).
  char peek();
  // Consumes `c` (after whitespace) or throws.
  void expect(char c);
  // Consumes `c` if it is next; returns whether it did.
  bool consume(char c);
  // Consumes the literal null if it is next.
  bool consume_null();

  // Reads a string (the cursor must be on its opening quote) into `out`, unescaping it and
  // checking that it is valid UTF-8.
  void read_string(std::string& out);
  // Reads an integer in [min, max].
  int64_t read_int(int64_t min, int64_t max);
  // Skips any value, checking its syntax, and returns its exact text.
  std::string_view skip_value();

  // Helpers for walking containers: after '{' / '[' was consumed, returns false at the
  // closing bracket (consuming it) and otherwise consumes the separating comma if needed.
  bool next_member(bool& first);
  bool next_element(bool& first);

  [[noreturn]] void error(std::string_view msg) const;
  size_t offset() const { return base_ + pos_; }
  // The document text between two offsets previously returned by offset().
  std::string_view slice(size_t begin, size_t end) const { return s_.substr(begin - base_, end - begin); }
  // Document offset of a view returned by skip_value().
  size_t offset_of(std::string_view sub) const { return base_ + static_cast<size_t>(sub.data() - s_.data()); }
  bool at_end();

 private:
  void skip_ws();
  void skip_string();
  void skip_number();
  void skip_literal(std::string_view lit);
  uint32_t read_hex4();

  std::string_view s_;
  size_t pos_ = 0;
  std::string what_;
  size_t base_;
};

}  // namespace t5g
