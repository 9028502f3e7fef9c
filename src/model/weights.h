// The model's tensors, bound by name to the mapped checkpoint: matrices are used in place
// (no copy); the few small vectors (norm gains, EOI embedding) are widened to fp32 once.
// Every tensor's dtype and shape is checked against config.json while binding.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "format/checkpoint.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "model/config.h"
#include "util/aligned_bytes.h"

namespace t5g {

struct AttentionWeights {
  WeightMatrix q, k, v, o;
  std::vector<float> q_norm, k_norm;  // 1 + w
};

struct MlpWeights {
  WeightMatrix gate, up, down;
};

struct TextLayerWeights {
  AttentionWeights attn;
  MlpWeights mlp;
  std::vector<float> pre_attn_norm, post_attn_norm, pre_ff_norm, post_ff_norm;  // 1 + w
};

struct VisionLayerWeights {
  std::vector<float> ln1_w, ln1_b, ln2_w, ln2_b;
  WeightMatrix q, k, v, o, fc1, fc2;
  std::vector<float> q_b, k_b, v_b, o_b, fc1_b, fc2_b;
};

struct VisionWeights {
  bool present = false;
  WeightMatrix patch;  // conv weight [Hv, C*P*P] (OIHW flattened)
  std::vector<float> patch_b;
  std::vector<float> pos_embed;  // [num_patches, Hv]
  std::vector<VisionLayerWeights> layers;
  std::vector<float> post_ln_w, post_ln_b;
  std::vector<float> mm_norm;           // projector RMSNorm gain, 1 + w
  WeightMatrix mm_proj_t;               // [H, Hv]: the stored [Hv, H] matrix is used as x @ W, so it is
  std::vector<uint8_t> mm_proj_t_data;  // transposed once at load into nn.Linear layout (small: Hv x H)
};

// The format the text model's matrices (every encoder/decoder projection and the tied
// embedding / LM head) are used in. kAsStored uses the checkpoint's tensors in place; the others
// convert or quantize dense tensors once at load into memory the ModelWeights owns. A checkpoint
// written by `t5g quantize` holds Q8/Q4 tensors, used in place (mmap) under kAsStored or the
// matching format. The vision tower always stays as stored: its cost is compute, not bandwidth.
enum class WeightFormat { kAsStored, kBF16, kQ8, kQ4 };
const char* weight_format_name(WeightFormat f);  // "auto", "bf16", "int8", "q4"
// "auto" | "bf16" | "int8" | "q4" (also "q8"); throws t5g::Error naming the value otherwise.
WeightFormat parse_weight_format(const std::string& s);

// Names of the stored companion tensor holding a quantized matrix's fp16 group scales.
std::string quant_scale_name(const std::string& tensor_name);
// The stored shapes of a pre-quantized rows x cols matrix in tiles of 16 rows (kernels/matmul.h): data
// [tiles, groups, 512] (Q8) or [tiles, groups, 256] (Q4) bytes, scales [tiles, groups, 16]. (Written by
// `t5g quantize`, checked at load.)
std::vector<int64_t> quant_data_shape(WeightType type, int64_t rows, int64_t cols);
std::vector<int64_t> quant_scales_shape(int64_t rows, int64_t cols);

// Where the decode step's matrices (every decoder projection and the tied embedding / LM head) live:
// kMapped in place in the checkpoint's mmap (or the buffers they were converted into), kHugePages copied
// at load into one buffer of transparent huge pages (util/aligned_bytes.h: a decode step streams them,
// and 4 KiB pages cost a TLB miss per 4 KiB, a two-level walk in a virtual machine). The copy takes the
// place of the mapped pages in memory (they are released from the process), so it costs load time
// (about 0.1 s per 1 GB), not memory.
enum class WeightMemory { kMapped, kHugePages };
const char* weight_memory_name(WeightMemory m);  // "mapped", "huge-pages"
// "auto" (huge pages where the kernel offers them), "mapped" or "huge-pages"; throws t5g::Error naming
// the value otherwise.
WeightMemory parse_weight_memory(const std::string& s);

struct ModelWeights {
  WeightMatrix embed;          // [V, H]: encoder + decoder embedding and the tied LM head
  std::vector<float> eoi;      // [H] eoi_embedding, in fp32
  float embed_scale = 1.f;     // sqrt(H) rounded to the embedding dtype
  Precision precision = Precision::kF32;  // activation precision = the embedding's dtype
  std::vector<TextLayerWeights> encoder, decoder;
  std::vector<float> encoder_norm, decoder_norm;  // 1 + w
  VisionWeights vision;
  uint64_t bytes = 0;  // bytes of tensor data bound (after conversion / quantization)
  // Every text matrix by the checkpoint tensor name it was bound from (for `t5g quantize`).
  std::vector<std::pair<std::string, WeightMatrix>> text_matrices;
  // Checkpoint tensors that alias the encoder's (tied) and are not used.
  std::vector<std::string> tied_aliases;
  // Memory of converted / quantized matrices (the WeightMatrix pointers point into it), cache-line aligned.
  std::vector<AlignedBytes> owned;
  WeightMemory memory = WeightMemory::kMapped;  // where the decode step's matrices are
};

// Binds every tensor the model needs. Throws t5g::Error naming the missing or mis-shaped
// tensor and the file it was read from.
ModelWeights bind_weights(const Checkpoint& ckpt, const ModelConfig& cfg,
                          WeightFormat format = WeightFormat::kAsStored);

// The matrices a decode step streams, once each: every decoder projection (q, k, v, o, gate, up, down of
// each layer) and the tied embedding / LM head.
std::vector<WeightMatrix*> decode_step_matrices(ModelWeights& w);
std::vector<const WeightMatrix*> decode_step_matrices(const ModelWeights& w);

// Packs the encoder's bf16 projections (q, k, v, o, gate, up, down of every layer) once into the
// vdpbf16ps GEMM's panel layout (kernels/matmul.h, WeightMatrix::gemm_panels), in one huge-page buffer
// owned by w, and releases their mapped pages: every encode otherwise packed each weight into cache again
// (14% of a 128-token encode, mostly waiting on memory). The results are the same bits. Only where that
// GEMM runs (gemm_bf16_available(), bf16 activations); returns the bytes packed (0: nothing to do).
size_t pack_encoder_matrices(ModelWeights& w);

// Copies the decode step's matrices (data and scales) into one huge-page buffer owned by w and points
// them (and their text_matrices entries) there; the buffers they leave are freed and the mapped pages
// released. The values are unchanged. Where the vdpbf16ps kernels run (gemm_bf16_available(), bf16
// activations), a bf16 matrix is packed into that buffer as its gemm_panels instead, which the decode
// kernels stream (bf16 batch-8 decoding 17-24% more tokens/s in calm rounds) and embedding lookups read; its data stays
// where it was (a converted buffer kept, mapped pages released). Sets w.memory to kHugePages.
void move_decode_matrices_to_huge_pages(ModelWeights& w);

}  // namespace t5g
