#include "runtime/stop.h"

#include <algorithm>

#include "util/error.h"

namespace t5g {

namespace {

// True when s ends inside a UTF-8 sequence or with U+FFFD (a decoder's placeholder for bytes it could
// not complete yet): more tokens may change the tail, so the text is not committed yet.
bool incomplete_utf8_tail(const std::string& s) {
  if (s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0) return true;
  // Walk back over at most 3 continuation bytes to the lead byte of the last sequence.
  size_t n = s.size(), i = n, cont = 0;
  while (i > 0 && cont < 4 && (static_cast<unsigned char>(s[i - 1]) & 0xC0) == 0x80) {
    --i;
    ++cont;
  }
  if (i == 0) return cont > 0;  // only continuation bytes
  const unsigned char lead = static_cast<unsigned char>(s[i - 1]);
  size_t need = 0;
  if (lead < 0x80) need = 0;
  else if ((lead & 0xE0) == 0xC0) need = 1;
  else if ((lead & 0xF0) == 0xE0) need = 2;
  else if ((lead & 0xF8) == 0xF0) need = 3;
  else return false;  // invalid lead byte: nothing to wait for
  return cont < need;
}

size_t common_prefix(const std::string& a, const std::string& b) {
  size_t n = std::min(a.size(), b.size()), i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

// First stop string (earliest start, then lowest index) occurring in text and ending after `from`.
int find_stop(const std::string& text, size_t from, const std::vector<std::string>& stops, size_t* pos_out) {
  int best = -1;
  size_t best_pos = std::string::npos;
  for (size_t k = 0; k < stops.size(); ++k) {
    const std::string& s = stops[k];
    const size_t start = from >= s.size() - 1 ? from - (s.size() - 1) : 0;
    const size_t pos = text.find(s, start);
    if (pos != std::string::npos && pos + s.size() > from && pos < best_pos) {
      best = static_cast<int>(k);
      best_pos = pos;
    }
  }
  if (best >= 0 && pos_out) *pos_out = best_pos;
  return best;
}

void check_stops(const std::vector<std::string>& stops) {
  for (const std::string& s : stops) check(!s.empty(), "stop strings must not be empty");
}

}  // namespace

std::vector<int32_t> stop_token_ids(const GenerationConfig& g, std::span<const int32_t> extra) {
  std::vector<int32_t> out;
  auto add = [&](int32_t id) {
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  };
  for (int32_t id : g.eos_token_ids) add(id);
  for (int32_t id : extra) add(id);
  return out;
}

bool is_stop_token(int32_t id, std::span<const int32_t> stop_ids) {
  return std::find(stop_ids.begin(), stop_ids.end(), id) != stop_ids.end();
}

StopStringMatcher::StopStringMatcher(std::vector<std::string> stop_strings, DecodeFn decode)
    : stops_(std::move(stop_strings)), decode_(std::move(decode)) {
  check_stops(stops_);
  for (const std::string& s : stops_) max_len_ = std::max(max_len_, s.size());
}

bool StopStringMatcher::push(int32_t id) {
  if (stops_.empty()) return false;
  check(static_cast<bool>(decode_), "stop strings need a decode function");
  ids_.push_back(id);
  if (matched()) return true;
  const std::span<const int32_t> all(ids_);
  const std::string prefix = decode_(all.subspan(prefix_offset_, read_offset_ - prefix_offset_));
  const std::string full = decode_(all.subspan(prefix_offset_));
  if (full.size() <= prefix.size() || incomplete_utf8_tail(full)) return false;  // wait for more tokens
  const size_t keep = common_prefix(prefix, full);  // == prefix.size() for a concatenative decoder
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  return push_text(std::string_view(full).substr(keep));
}

bool StopStringMatcher::push_text(std::string_view delta) {
  if (matched()) return true;
  const size_t from = text_.size();
  text_.append(delta);
  return scan(from);
}

bool StopStringMatcher::scan(size_t from) {
  if (stops_.empty() || text_.size() == from) return false;
  size_t pos = 0;
  const int k = find_stop(text_, from, stops_, &pos);
  if (k < 0) return false;
  match_ = k;
  match_pos_ = pos;
  return true;
}

int ends_with_stop_string(std::span<const int32_t> ids, const std::vector<std::string>& stop_strings,
                          const DecodeFn& decode) {
  if (stop_strings.empty() || ids.empty()) return -1;
  check_stops(stop_strings);
  check(static_cast<bool>(decode), "stop strings need a decode function");
  const std::string before = decode(ids.first(ids.size() - 1));
  const std::string now = decode(ids);
  const size_t from = common_prefix(before, now);
  if (now.size() == from) return -1;
  return find_stop(now, from, stop_strings, nullptr);
}

}  // namespace t5g
