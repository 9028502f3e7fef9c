// The BPE model of HF tokenizers (models/bpe), without dropout: characters -> vocab ids
// (with byte fallback <0xNN> and unk fusing), then merges applied lowest rank first using a
// priority queue over a linked list of symbols, so a word of n characters costs
// O(n log n) however long it is.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tokenizer/vocab.h"

namespace t5g {

struct BpeOptions {
  std::optional<std::string> unk_token;
  std::optional<std::string> continuing_subword_prefix;
  std::optional<std::string> end_of_word_suffix;
  bool fuse_unk = false;
  bool byte_fallback = false;
  bool ignore_merges = false;
};

class BpeModel {
 public:
  BpeOptions options;
  Vocab vocab;

  void reserve_merges(size_t n);
  void clear_merges();
  // Registers merge number `rank` of the pair (a, b) producing `merged`. A pair listed twice
  // keeps the later rank (HF builds its merge map with a HashMap collect).
  void add_merge(int32_t a, int32_t b, int32_t merged, uint32_t rank);
  // add_merge() for a batch, prefetching the table slots first (the table is 16+ MB).
  struct MergeRule {
    int32_t a, b, merged;
    uint32_t rank;
  };
  void add_merges(const MergeRule* rules, size_t n);
  size_t merge_count() const { return merge_count_; }
  // Precomputes the lookup tables used by tokenize(); call once after vocab and merges.
  void finalize();

  // Appends the ids of one pre-tokenized word. Cuts the word first where no merge can cross
  // (see glued_before_space_ below) and tokenizes the parts independently, through the word
  // cache; the result is identical to tokenize_whole() on the whole word.
  void tokenize(std::string_view word, std::vector<int32_t>& out) const;
  // The reference algorithm on the whole word, exactly as HF does it.
  void tokenize_whole(std::string_view word, std::vector<int32_t>& out) const;
  // tokenize_whole() through a per-thread cache of short words (HF caches words too): most
  // words of real text repeat, and a hit costs one cache line instead of a dozen lookups in
  // the 16 MB merge table, each a likely cache miss.
  void tokenize_cached(std::string_view word, std::vector<int32_t>& out) const;

 private:
  struct MergeValue {
    uint32_t rank;
    int32_t merged;
  };
  bool find_merge(int32_t a, int32_t b, MergeValue& v) const;
  int32_t char_id(std::string_view ch, uint32_t cp) const;
  void grow_merges();

  // Open-addressing map (a, b) -> (rank, merged).
  std::vector<uint64_t> merge_keys_;  // kEmptyKey = empty
  std::vector<MergeValue> merge_values_;
  size_t merge_count_ = 0;

  // Single-code-point tokens: BMP in a table, the rest in a map. Only used when no
  // continuing_subword_prefix / end_of_word_suffix decorates the characters.
  std::vector<int32_t> bmp_ids_;
  std::unordered_map<uint32_t, int32_t> astral_ids_;
  bool plain_chars_ = false;
  int32_t byte_ids_[256];
  int32_t unk_id_ = -1;

  // Word splitting: a word may be cut just before U+2581 (the SentencePiece space marker)
  // when the previous character is not U+2581 and no vocab token contains that character
  // followed by U+2581; then no merge can ever produce a token spanning the cut, so both
  // sides tokenize independently (and short, repeated parts stay cheap).
  bool split_enabled_ = false;
  uint64_t serial_ = 0;  // identifies this model in the per-thread word caches
  std::unordered_set<uint32_t> glued_before_space_;
};

}  // namespace t5g
