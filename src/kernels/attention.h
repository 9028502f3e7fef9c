// Attention computed as the reference's eager attention: s = round(round(q·k) * scale), optional
// softcap, masked keys skipped, softmax in fp32 (max, exp, sum over the whole row, then the
// probabilities rounded to the precision before P·V). No seq x seq matrix is formed: a block of
// query rows holds its scores against its key span only ([rows, span] per thread, so memory stays
// linear in the sequence length), and each score is computed once. Long key spans (over 1024 keys for
// head_dim >= 128, over 4096 otherwise: full layers of long inputs) use blocks of 96 query rows and Q·Kᵀ
// by key tiles; fp32 then runs an online
// softmax over the tiles (a [96, 512] score tile per thread), reduced precision keeps the block's
// [96, span] score rows so that the probabilities are rounded exactly as above.
#pragma once
#include <cstdint>
#include <optional>

#include "kernels/ops.h"

namespace t5g {

struct AttnParams {
  int64_t num_heads = 1;
  int64_t num_kv_heads = 1;  // query head h reads kv head h / (num_heads / num_kv_heads)
  int64_t head_dim = 1;
  float scale = 1.f;
  std::optional<float> softcap;
  Precision precision = Precision::kF32;
};

// Which keys a query at position i sees inside one sequence: [i - behind, i + ahead] ∩ [0, L).
// Full (unbanded) attention: behind = ahead = L.
struct Band {
  int64_t behind;
  int64_t ahead;
};

// Bidirectional (encoder / vision) attention over one sequence of L tokens.
// q, out: [L, ldq] with head h at columns [h*hd, (h+1)*hd); k, v: [L, ldkv] likewise per kv head.
// Multithreaded over heads x query blocks.
void attention_banded(const float* q, int64_t ldq, const float* k, const float* v, int64_t ldkv, float* out,
                      int64_t ldo, int64_t L, Band band, const AttnParams& p);

// A contiguous run of keys/values for one query: rows of stride ld elements, all kv heads interleaved as
// in the projections' output. k, v in any KvRows form; for int8 the scale of row c, kv head h is
// s[c * sld + h] (sld = the number of kv heads).
struct KvSpan {
  KvRows k, v;
  int64_t ld = 0;
  int64_t n = 0;
};

// fp32 rows (self-attention caches, tests).
inline KvSpan kv_span_f32(const float* k, const float* v, int64_t ld, int64_t n) {
  return KvSpan{KvRows{.f = k}, KvRows{.f = v}, ld, n};
}

// bf16 rows (a bf16 model's self and cross caches).
inline KvSpan kv_span_bf16(const uint16_t* k, const uint16_t* v, int64_t ld, int64_t n) {
  return KvSpan{KvRows{.b = k}, KvRows{.b = v}, ld, n};
}

// One query row (all heads) against the union of `spans`, one softmax over all of them (the
// decoder's merged self + cross attention). q/out: [num_heads * head_dim].
void attention_row(const float* q, const KvSpan* spans, int n_spans, float* out, const AttnParams& p);

}  // namespace t5g
