// t5gemma.cpp public C++ API.
//
//   auto model = t5g::Model::load("path/to/t5gemma-2-270m-270m");
//   t5g::GenerateRequest req;  req.input_ids = {2, 17, 33};  req.max_new_tokens = 32;
//   auto results = model->generate({req});          // results[0].ids
//
// A loaded Model is immutable: any number of threads may call it at once, each call with its
// own state. Errors are thrown as t5g::Error with a message naming what is at fault.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "t5g/error.h"

namespace t5g {

struct LoadedModel;
class Tokenizer;

// Progress of a download while a hub model is fetched: file name, bytes done, total (-1 unknown).
using DownloadProgress = std::function<void(const std::string& file, int64_t done, int64_t total)>;

struct LoadOptions {
  int threads = 0;  // compute threads per call; 0 = all cores
  DownloadProgress on_download;  // called while missing hub files are downloaded
  // Format of the text model's weight matrices: "auto" (as stored: in place from the mmap), "bf16",
  // "int8" or "q4" (grouped 8- / 4-bit, quantized once at load; `t5g quantize` writes a checkpoint that
  // loads pre-quantized, in place). The vision tower stays as stored.
  std::string weights = "auto";
  // Where the decode step's matrices (the decoder's and the tied LM head) are kept: "auto" (huge pages
  // where the kernel offers transparent huge pages, else mapped), "mapped" (in place in the checkpoint's
  // mmap: the fastest load, the page cache shared with other processes) or "huge-pages" (copied at load
  // into transparent huge pages, about 0.1 s per GB: each decode step streams them, and with 4 KiB pages
  // it measured 5-25% slower on a virtual machine). The copy replaces the mapped pages in memory. With
  // huge pages, a bf16 model on a CPU with AVX512_BF16 also gets its encoder matrices packed once into the
  // bf16 GEMM's layout (replacing their mapped pages too): every encode otherwise repacked them, 14% of a
  // 128-token encode. Results are the same bits either way.
  std::string weight_memory = "auto";
  // How each request's cross keys/values (the decoder's attention over the encoder output, the largest
  // buffer of a long input) are held: "auto" (as the reference: bf16 for a bf16 model, which changes no
  // result, fp32 otherwise) or "int8" (one scale per row and kv head: half of bf16's memory, approximate).
  std::string cross_kv = "auto";
  // Keep up to 512 MiB of freed heap memory in the process for the next request (glibc's trim threshold,
  // a process-wide setting) instead of handing it back to the kernel, which made every request fault
  // its buffers in again (a 128-token encode after a generate: 78 ms instead of 65 on a virtual machine).
  // Memory freed after a long input stays with the process, and peak RSS can grow (270m bf16 text only:
  // 1285 -> 1344 MB, since blocks freed between phases are reused rather than returned and re-mapped).
  bool keep_freed_memory = true;
};

// An image for the encoder: a file, or encoded file bytes (JPEG, PNG, WebP, GIF, BMP).
struct Image {
  std::string path;           // read when `data` is empty
  std::vector<uint8_t> data;  // encoded bytes
  std::string name;           // for error messages (defaults to the path)
};

// One encoder input: token ids, or text; plus images.
//  - ids: used exactly (nothing added); the images fill the image-token positions in order
//    (mm_tokens_per_image positions per image).
//  - text (when ids is empty): each "<start_of_image>" expands as the reference processor does
//    ("\n\n", BOI, mm_tokens_per_image image tokens, EOI, "\n\n"), then the text is tokenized
//    (BOS per tokenizer_config). Images given without markers get the markers prepended.
struct Input {
  std::vector<int32_t> input_ids;
  std::string prompt;
  std::vector<Image> images;
  // Image preprocessing (defaults as the reference processor): pan-and-scan crops appended after
  // each image (off by default), PIL's bilinear resize instead of torchvision's (the transformers
  // 5 default; PIL differs by up to 1/255 per pixel), EXIF orientation applied (off by default).
  bool pan_and_scan = false;
  bool pil_resize = false;
  bool apply_exif_orientation = false;
};

struct GenerateRequest : Input {
  bool return_text = false;         // also decode the result to text (always done for a prompt)
  int64_t max_new_tokens = 32;
  int64_t min_new_tokens = 0;       // EOS / stop ids are suppressed before this many tokens
  bool ignore_eos = false;          // generate exactly max_new_tokens

  // Sampling; unset fields take generation_config.json's values (do_sample, temperature, top_k, top_p).
  std::optional<bool> do_sample;
  std::optional<double> temperature;  // 0 = greedy
  std::optional<int64_t> top_k;       // 0 = off
  std::optional<double> top_p;
  double min_p = 0.0;
  double repetition_penalty = 1.0;
  int64_t no_repeat_ngram_size = 0;
  uint64_t seed = 0;                  // same seed, same request -> same output

  std::vector<int32_t> stop_token_ids;  // in addition to generation_config's EOS ids
  std::vector<std::string> stop_strings;  // generation ends once the text contains one (may span tokens)

  // Beam search (num_beams > 1): deterministic, scores as transformers' sequences_scores.
  int64_t num_beams = 1;
  double length_penalty = 1.0;
  std::string early_stopping = "false";  // "false", "true" or "never"
  int64_t num_return_sequences = 1;
};

struct Hypothesis {
  std::vector<int32_t> ids;
  std::string text;
  float score = 0.f;
};

struct GenerateResult {
  std::vector<int32_t> ids;  // generated ids: start token excluded, EOS included when produced
  std::string text;          // ids decoded, special tokens skipped (for prompts, or when return_text is set)
  std::string finish_reason;  // "stop" (EOS/stop id), "stop_string", "length"; "beam" for beam search
  float score = 0.f;          // beam search: the best sequence's score
  std::vector<Hypothesis> alternatives;  // beam search: the other returned sequences, best first
};

// Called as each token is generated: (request index, token id).
using TokenCallback = std::function<void(size_t request, int32_t token)>;

struct EncodeResult {
  int64_t tokens = 0, dim = 0;
  std::vector<float> hidden;  // [tokens, dim]: final encoder hidden states (after the final norm)
  std::vector<float> pooled;  // [dim]: mean over the tokens, L2-normalised when asked
};

struct ModelInfo {
  int64_t vocab_size, hidden_size, encoder_layers, decoder_layers;
  int32_t decoder_start_token_id;
  std::vector<int32_t> eos_token_ids;
  std::string weight_dtype;  // dtype of the embedding: f32 / bf16 / f16
  uint64_t weight_bytes;     // bytes of tensor data in use
  bool has_vision;
  int32_t image_token_id;
  int64_t mm_tokens_per_image;
};

class Model;

// Turns generated ids into text piece by piece as they arrive: a piece is returned as soon as it
// is complete UTF-8, and the pieces concatenate to the full decode.
class TextStream {
 public:
  TextStream(const Model& model, bool skip_special_tokens = true);
  ~TextStream();
  std::string push(int32_t id);
  std::string flush();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class Model {
 public:
  // Loads a checkpoint: a folder in the Hugging Face layout (config.json, generation_config.json,
  // model.safetensors or sharded index), or a hub repo id "org/name[@revision]" resolved in the
  // standard hub cache (HF_HOME, HF_HUB_CACHE, HF_TOKEN, HF_HUB_OFFLINE, HF_ENDPOINT as
  // huggingface_hub), downloading what is missing. Weights are memory-mapped, not copied.
  static std::shared_ptr<const Model> load(const std::string& path, const LoadOptions& options = {});
  ~Model();

  // Generation for a batch (greedy, sampled or beam search per request): each request's result
  // equals running it alone. `on_token` streams tokens (not for beam search, which ends at once).
  std::vector<GenerateResult> generate(const std::vector<GenerateRequest>& requests,
                                       const TokenCallback& on_token = {}) const;

  // Log-probabilities of each target token under teacher forcing, from fp32 logits.
  std::vector<std::vector<float>> score(const std::vector<Input>& inputs,
                                        const std::vector<std::vector<int32_t>>& targets) const;
  std::vector<std::vector<float>> score(const std::vector<std::vector<int32_t>>& inputs,
                                        const std::vector<std::vector<int32_t>>& targets) const;

  // Encoder embeddings of each input (each at its own length: the mean is over its own tokens).
  std::vector<EncodeResult> encode(const std::vector<Input>& inputs, bool l2_normalize = false) const;
  std::vector<EncodeResult> encode(const std::vector<std::vector<int32_t>>& inputs, bool l2_normalize = false) const;

  // The encoder input ids an Input becomes (prompt expansion and tokenization done).
  std::vector<int32_t> input_ids(const Input& input) const;

  // The model's tokenizer (tokenizer.json + tokenizer_config.json in the checkpoint folder),
  // loaded on first use. tokenize() builds the model input exactly (BOS per tokenizer_config).
  bool has_tokenizer() const;
  std::vector<int32_t> tokenize(const std::string& text, bool add_special_tokens = true) const;
  std::string detokenize(const std::vector<int32_t>& ids, bool skip_special_tokens = true) const;

  ModelInfo info() const;
  int threads() const { return threads_; }
  const LoadedModel& internals() const { return *m_; }  // for tools and tests in this project

 private:
  Model() = default;
  const Tokenizer& tokenizer() const;
  struct Prepared;
  Prepared prepare(const Input& input, bool features = true) const;
  friend class TextStream;
  std::unique_ptr<LoadedModel> m_;
  int threads_ = 1;
  struct TokenizerSlot;
  std::unique_ptr<TokenizerSlot> tok_;
};

}  // namespace t5g
