#include "tokenizer/vocab.h"

#include <algorithm>
#include <functional>

namespace t5g {

uint64_t Vocab::hash(std::string_view s) { return std::hash<std::string_view>{}(s); }

void Vocab::rehash(size_t cap) {
  std::vector<Slot> old;
  old.swap(slots_);
  slots_.assign(cap, Slot{});
  const size_t mask = cap - 1;
  for (const Slot& s : old) {
    if (s.id < 0) continue;
    const std::string_view str(arena_.data() + s.off, s.len);
    size_t i = static_cast<size_t>(hash(str)) & mask;
    while (slots_[i].id >= 0) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

void Vocab::reserve(size_t n_tokens, size_t n_bytes) {
  arena_.reserve(n_bytes);
  entries_.reserve(n_tokens);
  size_t cap = 16;
  while (cap < n_tokens * 2) cap *= 2;
  if (cap > slots_.size()) rehash(cap);
}

size_t Vocab::probe(std::string_view token_str, uint64_t h) const {
  const size_t mask = slots_.size() - 1;
  const uint32_t tag = tag_of(h);
  const auto len = static_cast<uint32_t>(token_str.size());
  for (size_t i = static_cast<size_t>(h) & mask;; i = (i + 1) & mask) {
    const Slot& s = slots_[i];
    if (s.id < 0) return i;
    if (s.tag == tag && s.len == len && std::string_view(arena_.data() + s.off, len) == token_str) return i;
  }
}

void Vocab::add(std::string_view token_str, int32_t id) {
  if ((count_ + 1) * 2 > slots_.size()) rehash(slots_.empty() ? 16 : slots_.size() * 2);
  if (static_cast<size_t>(id) >= entries_.size()) entries_.resize(static_cast<size_t>(id) + 1);
  const uint64_t h = hash(token_str);
  Slot& slot = slots_[probe(token_str, h)];
  Entry& e = entries_[id];
  if (e.len == kNone || token(id) != token_str) {
    e.off = static_cast<uint32_t>(arena_.size());
    e.len = static_cast<uint32_t>(token_str.size());
    arena_.append(token_str);
  }
  if (slot.id < 0) ++count_;
  // A string seen again is remapped to the new id (later wins).
  slot = Slot{tag_of(h), e.len, e.off, id};
}

int32_t Vocab::find(std::string_view token_str) const {
  if (slots_.empty()) return -1;
  return slots_[probe(token_str, hash(token_str))].id;
}

void Vocab::prefetch(const std::string_view* keys, size_t n) const {
  if (slots_.empty()) return;
  const size_t mask = slots_.size() - 1;
  for (size_t i = 0; i < n; ++i) __builtin_prefetch(&slots_[static_cast<size_t>(hash(keys[i])) & mask]);
}

void Vocab::find_many(const std::string_view* keys, size_t n, int32_t* ids) const {
  if (slots_.empty()) {
    for (size_t i = 0; i < n; ++i) ids[i] = -1;
    return;
  }
  constexpr size_t kBatch = 64;
  uint64_t h[kBatch];
  const size_t mask = slots_.size() - 1;
  for (size_t base = 0; base < n; base += kBatch) {
    const size_t m = std::min(kBatch, n - base);
    for (size_t i = 0; i < m; ++i) {
      h[i] = hash(keys[base + i]);
      __builtin_prefetch(&slots_[static_cast<size_t>(h[i]) & mask]);
    }
    for (size_t i = 0; i < m; ++i) {
      const Slot& s = slots_[static_cast<size_t>(h[i]) & mask];
      if (s.id >= 0) __builtin_prefetch(arena_.data() + s.off);
    }
    for (size_t i = 0; i < m; ++i) ids[base + i] = slots_[probe(keys[base + i], h[i])].id;
  }
}

}  // namespace t5g
