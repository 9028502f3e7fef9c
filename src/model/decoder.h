// The decoder (spec §4): merged attention (one softmax over the self keys and the encoder's
// cross keys, both from the same k/v projections), run incrementally over a per-sequence cache.
// Sliding layers keep only their window of self K/V (a ring buffer of W rows), so their memory
// does not grow with the output; cross K/V are computed once per request.
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "kernels/attention.h"
#include "model/config.h"
#include "model/encoder.h"
#include "model/weights.h"

namespace t5g {

struct DecoderLayerCache {
  bool ring = false;             // sliding layer: slot = position % capacity
  bool bf16 = false;             // rows held in kb/vb (a bf16 model), else in k/v
  int64_t capacity = 0;          // rows allocated
  // A sliding layer's ring size (its window). Its rows are allocated as the positions arrive, doubling up
  // to the window (until then no position has wrapped: slot = position), not all at the start: a
  // request's sliding caches were 8 MB zero-filled before its first token (270m, bf16), and copied whole
  // by every beam-search reorder however few tokens they held.
  int64_t window = 0;
  std::vector<float> k, v;       // self keys (k-normed, rotated) and values: [capacity, kv_dim], fp32
  // The same for a bf16 model, whose keys and values are bf16 values (rounded as the reference rounds
  // them): held exactly in half the memory, and half the bytes each decode step's attention reads.
  std::vector<uint16_t> kb, vb;
};

// How a request's cross K/V are held. kAuto: as the reference holds them, bf16 for a bf16 model (its
// cross K/V are bf16 tensors there too: half of fp32's memory, no result changes), fp32 otherwise.
// kInt8: int8 with one fp32 scale per (row, kv head): a quarter of fp32's memory, half of bf16's, for what
// is a long input's largest buffer; approximate (bounds in tests/model/test_quantized.cc).
enum class CrossKvFormat { kAuto, kInt8 };
// "auto" or "int8"; anything else throws t5g::Error naming it.
CrossKvFormat parse_cross_kv_format(const std::string& s);

// The element type a format stores the cross K/V in for a model of precision p (kAuto resolved), its
// name ("fp32", "bf16", "int8") and its bytes per element (int8: with its fp32 scale per head_dim values).
enum class CrossKvStorage { kF32, kBF16, kInt8 };
CrossKvStorage cross_kv_storage(CrossKvFormat f, Precision p);
const char* cross_kv_storage_name(CrossKvStorage s);
double cross_kv_element_bytes(CrossKvStorage s, int64_t head_dim);

// One input's cross keys (k-normed, not rotated) and values of every layer, [S, kv_dim] each, in one of
// the forms above. Built once per request and never changed, so the beams of an input share one copy.
struct CrossKv {
  struct Layer {
    std::vector<float> k, v;         // fp32
    std::vector<uint16_t> kb, vb;    // bf16
    std::vector<int8_t> kq, vq;      // int8, with scales ks, vs: [S, kv_heads]
    std::vector<float> ks, vs;
  };
  std::vector<Layer> layers;
  size_t bytes() const;
  // Layer `layer`'s keys and values as an attention span.
  KvSpan span(int64_t layer, int64_t kvd, int64_t kv_heads, int64_t S) const;
};

struct DecoderState {
  std::vector<DecoderLayerCache> layers;
  std::shared_ptr<const CrossKv> cross;
  int64_t encoder_length = 0;
  int64_t length = 0;  // decoder tokens consumed so far = position of the next token
  size_t bytes() const;  // self caches plus the (possibly shared) cross K/V
};

// Builds a sequence's decoder state from its encoder output [S, H]: the cross K/V of every layer.
DecoderState start_decoder(const ModelWeights& w, const ModelConfig& cfg, const float* encoder_out, int64_t S,
                           CrossKvFormat format = CrossKvFormat::kAuto);

// Feeds tokens[b] (one or more new tokens) to states[b] for every b, batched: the rows of all
// sequences go through each projection together. Writes the final-normed hidden states of all new
// tokens, concatenated in order, to `hidden` ([sum of token counts, H]). Advances each state.
void decoder_forward(const ModelWeights& w, const ModelConfig& cfg, const std::vector<DecoderState*>& states,
                     const std::vector<std::span<const int32_t>>& tokens, std::vector<float>& hidden,
                     const HiddenStateHook& hook = {});

// logits [n, V] = hidden · embedᵀ (tied LM head), rounded to the model precision, then the final
// softcap when the config sets one.
void lm_head(const ModelWeights& w, const ModelConfig& cfg, const float* hidden, int64_t n, float* logits);

}  // namespace t5g
