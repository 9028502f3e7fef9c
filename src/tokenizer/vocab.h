// Token string <-> id table. All strings live in one arena and the lookup is an
// open-addressing hash table of ids, so building 262k entries costs a few allocations
// instead of 262k node allocations (this is most of the load time otherwise).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace t5g {

class Vocab {
 public:
  // Ids must lie in [0, kMaxId]; larger ones are rejected by the loader as implausible
  // (the id table is dense).
  static constexpr int32_t kMaxId = (1 << 24) - 1;

  void reserve(size_t n_tokens, size_t n_bytes);
  // Maps `token` to `id` and `id` to `token`. A token string seen again is remapped to the
  // new id (later JSON keys win, as with serde); an id seen again takes the new string.
  void add(std::string_view token, int32_t id);

  // Id of `token`, or -1.
  int32_t find(std::string_view token) const;
  // find() for n keys at once. The table is far bigger than the caches, so looking keys up
  // one by one waits on two memory round trips each; prefetching the whole batch first lets
  // those misses overlap (this halves the load time of the 515k merges).
  void find_many(const std::string_view* keys, size_t n, int32_t* ids) const;
  // Prefetches the slots `keys` will land in, before a run of add() calls.
  void prefetch(const std::string_view* keys, size_t n) const;
  bool has_id(int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < entries_.size() && entries_[id].len != kNone;
  }
  // Token string of an id for which has_id() holds.
  std::string_view token(int32_t id) const { return {arena_.data() + entries_[id].off, entries_[id].len}; }
  // Number of distinct token strings.
  size_t size() const { return count_; }
  // One past the largest id (0 when empty).
  int32_t id_end() const { return static_cast<int32_t>(entries_.size()); }

 private:
  static constexpr uint32_t kNone = UINT32_MAX;
  struct Entry {
    uint32_t off = 0;
    uint32_t len = kNone;
  };
  // A slot carries the string's location and a hash tag, so a lookup touches the slot and
  // (on a tag + length hit) the arena: two cache misses, not three via entries_.
  struct Slot {
    uint32_t tag = 0;  // high hash bits; 0 only for an empty slot (id < 0)
    uint32_t len = 0;
    uint32_t off = 0;
    int32_t id = -1;
  };
  static uint64_t hash(std::string_view s);
  static uint32_t tag_of(uint64_t h) { return static_cast<uint32_t>(h >> 32) | 1u; }
  void rehash(size_t cap);
  // Slot of `token` (occupied by it, or the empty slot where it would go).
  size_t probe(std::string_view token, uint64_t h) const;

  std::string arena_;
  std::vector<Entry> entries_;  // by id
  std::vector<Slot> slots_;     // open addressing, linear probing, load <= 1/2
  size_t count_ = 0;
};

}  // namespace t5g
