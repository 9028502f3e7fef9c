#include "tokenizer/bpe.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <iterator>

#include "tokenizer/utf8.h"
#include "util/error.h"

namespace t5g {

namespace {

constexpr uint64_t kEmptyKey = UINT64_MAX;  // ids are < 2^24, so no real key has all bits set
constexpr uint32_t kSpaceMarker = 0x2581;  // "▁"

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

uint64_t mix(uint64_t k) {  // splitmix64 finaliser
  k ^= k >> 30;
  k *= 0xbf58476d1ce4e5b9ULL;
  k ^= k >> 27;
  k *= 0x94d049bb133111ebULL;
  k ^= k >> 31;
  return k;
}

struct Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  bool alive;
};

// Per-thread scratch space: tokenize() is const and called concurrently, and reusing the
// buffers avoids two allocations per word.
struct QueuedMerge {
  uint64_t key;  // (rank << 32) | position: the min-heap order
  int32_t left, right, merged;
  bool operator>(const QueuedMerge& o) const { return key > o.key; }
};

struct Scratch {
  std::vector<Symbol> symbols;
  std::vector<QueuedMerge> heap;
};
thread_local Scratch tls_scratch;

// Per-thread word cache: no locking, and a thread only ever sees its own entries. It is a
// direct-mapped table of cache-line-sized entries (short words and their ids inline), so a
// lookup touches one line and a collision simply replaces the older word. It serves one
// model at a time: using another model on the same thread starts it afresh.
struct CachedWord {
  uint64_t hash;
  uint8_t len;       // 0 = empty
  uint8_t n_ids;
  char text[22];
  int32_t ids[8];
};
static_assert(sizeof(CachedWord) == 64);
constexpr size_t kCacheLines = 1 << 15;  // 2 MB per thread
struct WordCache {
  uint64_t serial = 0;
  std::vector<CachedWord> lines;
};
thread_local WordCache tls_cache;
std::atomic<uint64_t> next_serial{1};

}  // namespace

void BpeModel::reserve_merges(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap *= 2;
  if (cap <= merge_keys_.size()) return;
  std::vector<uint64_t> keys(cap, kEmptyKey);
  std::vector<MergeValue> values(cap);
  const size_t mask = cap - 1;
  for (size_t i = 0; i < merge_keys_.size(); ++i) {
    if (merge_keys_[i] == kEmptyKey) continue;
    size_t j = mix(merge_keys_[i]) & mask;
    while (keys[j] != kEmptyKey) j = (j + 1) & mask;
    keys[j] = merge_keys_[i];
    values[j] = merge_values_[i];
  }
  merge_keys_.swap(keys);
  merge_values_.swap(values);
}

void BpeModel::clear_merges() {
  merge_keys_.clear();
  merge_values_.clear();
  merge_count_ = 0;
}

void BpeModel::grow_merges() { reserve_merges(std::max<size_t>(merge_keys_.size(), 8)); }

void BpeModel::add_merge(int32_t a, int32_t b, int32_t merged, uint32_t rank) {
  if ((merge_count_ + 1) * 2 > merge_keys_.size()) grow_merges();
  const uint64_t key = pair_key(a, b);
  const size_t mask = merge_keys_.size() - 1;
  size_t j = mix(key) & mask;
  while (merge_keys_[j] != kEmptyKey && merge_keys_[j] != key) j = (j + 1) & mask;
  if (merge_keys_[j] == kEmptyKey) ++merge_count_;
  merge_keys_[j] = key;
  merge_values_[j] = {rank, merged};
}

void BpeModel::add_merges(const MergeRule* rules, size_t n) {
  if ((merge_count_ + n) * 2 > merge_keys_.size()) reserve_merges(std::max(merge_keys_.size(), merge_count_ + n));
  const size_t mask = merge_keys_.size() - 1;
  for (size_t i = 0; i < n; ++i) __builtin_prefetch(&merge_keys_[mix(pair_key(rules[i].a, rules[i].b)) & mask]);
  for (size_t i = 0; i < n; ++i) add_merge(rules[i].a, rules[i].b, rules[i].merged, rules[i].rank);
}

bool BpeModel::find_merge(int32_t a, int32_t b, MergeValue& v) const {
  if (merge_keys_.empty()) return false;
  const uint64_t key = pair_key(a, b);
  const size_t mask = merge_keys_.size() - 1;
  for (size_t j = mix(key) & mask;; j = (j + 1) & mask) {
    const uint64_t k = merge_keys_[j];
    if (k == key) {
      v = merge_values_[j];
      return true;
    }
    if (k == kEmptyKey) return false;
  }
}

void BpeModel::finalize() {
  serial_ = next_serial.fetch_add(1);
  plain_chars_ = !options.continuing_subword_prefix && !options.end_of_word_suffix;
  bmp_ids_.assign(plain_chars_ ? 0x10000 : 0, -1);
  astral_ids_.clear();
  glued_before_space_.clear();
  static const char* kHex = "0123456789ABCDEF";
  for (int b = 0; b < 256; ++b) {
    const char name[7] = {'<', '0', 'x', kHex[b >> 4], kHex[b & 15], '>', '\0'};
    byte_ids_[b] = vocab.find(name);
  }
  unk_id_ = options.unk_token ? vocab.find(*options.unk_token) : -1;

  for (int32_t id = 0; id < vocab.id_end(); ++id) {
    if (!vocab.has_id(id)) continue;
    const std::string_view t = vocab.token(id);
    size_t i = 0;
    uint32_t prev = 0;
    size_t n_chars = 0;
    while (i < t.size()) {
      const uint32_t cp = utf8::decode(t, i);
      if (cp == kSpaceMarker && n_chars > 0 && prev != kSpaceMarker) glued_before_space_.insert(prev);
      prev = cp;
      ++n_chars;
    }
    if (plain_chars_ && n_chars == 1 && vocab.find(t) == id) {
      size_t k = 0;
      const uint32_t cp = utf8::decode(t, k);
      if (cp < 0x10000) bmp_ids_[cp] = id;
      else astral_ids_[cp] = id;
    }
  }
  split_enabled_ = plain_chars_ && !options.ignore_merges && vocab.find("\xE2\x96\x81") >= 0;
}

int32_t BpeModel::char_id(std::string_view ch, uint32_t cp) const {
  if (plain_chars_) {
    if (cp < 0x10000) return bmp_ids_[cp];
    auto it = astral_ids_.find(cp);
    return it == astral_ids_.end() ? -1 : it->second;
  }
  return vocab.find(ch);
}

void BpeModel::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (!split_enabled_) {
    tokenize_cached(word, out);
    return;
  }
  size_t part_start = 0;
  size_t prev_at = 0;
  uint32_t prev = kSpaceMarker;  // no cut at the very start
  size_t i = 0;
  while (i < word.size()) {
    const size_t at = i;
    const uint32_t cp = utf8::decode(word, i);
    if (cp == kSpaceMarker && prev != kSpaceMarker && at > part_start && !glued_before_space_.count(prev) &&
        char_id(word.substr(prev_at, at - prev_at), prev) >= 0) {
      tokenize_cached(word.substr(part_start, at - part_start), out);
      part_start = at;
    }
    prev = cp;
    prev_at = at;
  }
  tokenize_cached(word.substr(part_start), out);
}

void BpeModel::tokenize_cached(std::string_view word, std::vector<int32_t>& out) const {
  if (word.size() > sizeof(CachedWord::text)) {
    tokenize_whole(word, out);
    return;
  }
  WordCache& cache = tls_cache;
  if (cache.serial != serial_) {
    cache.lines.assign(kCacheLines, CachedWord{});
    cache.serial = serial_;
  }
  const uint64_t h = std::hash<std::string_view>{}(word);
  CachedWord& line = cache.lines[h & (kCacheLines - 1)];
  if (line.hash == h && line.len == word.size() && std::memcmp(line.text, word.data(), word.size()) == 0) {
    out.insert(out.end(), line.ids, line.ids + line.n_ids);
    return;
  }
  const size_t start = out.size();
  tokenize_whole(word, out);
  const size_t n = out.size() - start;
  if (n == 0 || n > std::size(line.ids)) return;
  line.hash = h;
  line.len = static_cast<uint8_t>(word.size());
  line.n_ids = static_cast<uint8_t>(n);
  std::memcpy(line.text, word.data(), word.size());
  std::copy(out.begin() + static_cast<std::ptrdiff_t>(start), out.end(), line.ids);
}

void BpeModel::tokenize_whole(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (options.ignore_merges) {
    const int32_t id = vocab.find(word);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  Scratch& sc = tls_scratch;
  std::vector<Symbol>& sym = sc.symbols;
  sym.clear();
  auto add = [&](int32_t id) {
    const auto n = static_cast<int32_t>(sym.size());
    sym.push_back({id, n - 1, n + 1, true});
  };

  // 1. Characters to ids, as HF's BPE::merge_word.
  int32_t pending_unk = -1;  // fused run of unknown characters waiting to be emitted
  std::string decorated;
  size_t i = 0;
  while (i < word.size()) {
    const size_t at = i;
    const uint32_t cp = utf8::decode(word, i);
    std::string_view ch = word.substr(at, i - at);
    int32_t id;
    if (plain_chars_) {
      id = char_id(ch, cp);
    } else {
      decorated.clear();
      if (at != 0 && options.continuing_subword_prefix) decorated += *options.continuing_subword_prefix;
      decorated += ch;
      if (i == word.size() && options.end_of_word_suffix) decorated += *options.end_of_word_suffix;
      ch = decorated;
      id = vocab.find(ch);
    }
    if (id >= 0) {
      if (pending_unk >= 0) {
        add(pending_unk);
        pending_unk = -1;
      }
      add(id);
      continue;
    }
    if (options.byte_fallback) {
      bool all = true;
      for (char b : ch) all = all && byte_ids_[static_cast<unsigned char>(b)] >= 0;
      if (all) {
        // HF does not flush a pending unk here, so it lands after these bytes; mirror that.
        for (char b : ch) add(byte_ids_[static_cast<unsigned char>(b)]);
        continue;
      }
    }
    if (options.unk_token) {
      if (unk_id_ < 0) fail("BPE: unk_token '", *options.unk_token, "' is not in the vocab but is needed for this input");
      if (pending_unk >= 0 && !options.fuse_unk) add(pending_unk);
      pending_unk = unk_id_;
    }
  }
  if (pending_unk >= 0) add(pending_unk);
  if (sym.empty()) return;
  sym.back().next = -1;

  // 2. Merges, lowest rank first, leftmost first among equal ranks (HF's Word::merge_all).
  // A queued merge remembers the pair it was made for; it is stale once either symbol has
  // changed, which is checked without another lookup in the (cache-unfriendly) merge table.
  std::vector<QueuedMerge>& heap = sc.heap;
  heap.clear();
  MergeValue mv;
  auto queue = [&](int32_t pos, int32_t left, int32_t right) {
    if (!find_merge(left, right, mv)) return false;
    heap.push_back({(static_cast<uint64_t>(mv.rank) << 32) | static_cast<uint32_t>(pos), left, right, mv.merged});
    return true;
  };
  for (size_t p = 0; p + 1 < sym.size(); ++p) queue(static_cast<int32_t>(p), sym[p].id, sym[p + 1].id);
  std::make_heap(heap.begin(), heap.end(), std::greater<>());
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), std::greater<>());
    const QueuedMerge top = heap.back();
    heap.pop_back();
    const auto pos = static_cast<int32_t>(top.key & 0xffffffffu);
    Symbol& cur = sym[pos];
    if (!cur.alive || cur.next < 0 || cur.id != top.left || sym[cur.next].id != top.right) continue;
    const int32_t nxt = cur.next;
    cur.id = top.merged;
    sym[nxt].alive = false;
    cur.next = sym[nxt].next;
    if (cur.next >= 0) sym[cur.next].prev = pos;
    if (cur.prev >= 0 && queue(cur.prev, sym[cur.prev].id, cur.id)) std::push_heap(heap.begin(), heap.end(), std::greater<>());
    if (cur.next >= 0 && queue(pos, cur.id, sym[cur.next].id)) std::push_heap(heap.begin(), heap.end(), std::greater<>());
  }
  for (int32_t p = 0; p >= 0; p = sym[p].next) out.push_back(sym[p].id);
}

}  // namespace t5g
