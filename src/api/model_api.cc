// The public Model facade over the internal model and runtime.
#include <omp.h>

#include <thread>

#include "model/model.h"
#include "runtime/embed.h"
#include "runtime/generate.h"
#include "t5g/t5g.h"
#include "util/error.h"

namespace t5g {

namespace {
// OpenMP thread counts are per calling thread: every entry point sets its own.
struct ThreadScope {
  explicit ThreadScope(int n) { omp_set_num_threads(n); }
};
}  // namespace

std::shared_ptr<const Model> Model::load(const std::string& path, const LoadOptions& options) {
  check(options.threads >= 0, "threads must be >= 0");
  std::shared_ptr<Model> m(new Model());
  m->m_ = load_model(path);
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  m->threads_ = options.threads > 0 ? options.threads : hw;
  return m;
}

Model::~Model() = default;

std::vector<GenerateResult> Model::generate(const std::vector<GenerateRequest>& requests,
                                            const TokenCallback& on_token) const {
  ThreadScope ts(threads_);
  std::vector<GenerateResult> results(requests.size());
  if (requests.empty()) return results;
  // Requests with the same options decode together; different limits are honoured per row.
  std::vector<EncoderInput> inputs;
  int64_t max_new = 0;
  for (const auto& r : requests) {
    check(!r.input_ids.empty(), "generate: a request has no input ids");
    check(r.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0");
    inputs.push_back(EncoderInput{r.input_ids.data(), static_cast<int64_t>(r.input_ids.size()), nullptr, 0});
    max_new = std::max(max_new, r.max_new_tokens);
  }
  bool same = true;
  for (const auto& r : requests)
    same = same && r.max_new_tokens == requests[0].max_new_tokens && r.ignore_eos == requests[0].ignore_eos;
  if (same) {
    GreedyParams p;
    p.max_new_tokens = requests[0].max_new_tokens;
    p.ignore_eos = requests[0].ignore_eos;
    auto outs = generate_greedy(*m_, inputs, p, on_token);
    for (size_t i = 0; i < outs.size(); ++i) results[i].ids = std::move(outs[i].ids);
    return results;
  }
  for (size_t i = 0; i < requests.size(); ++i) {  // mixed options: one at a time
    GreedyParams p;
    p.max_new_tokens = requests[i].max_new_tokens;
    p.ignore_eos = requests[i].ignore_eos;
    auto outs = generate_greedy(*m_, {inputs[i]}, p,
                                on_token ? TokenCallback([&](size_t, int32_t t) { on_token(i, t); }) : TokenCallback{});
    results[i].ids = std::move(outs[0].ids);
  }
  return results;
}

std::vector<std::vector<float>> Model::score(const std::vector<std::vector<int32_t>>& inputs,
                                             const std::vector<std::vector<int32_t>>& targets) const {
  ThreadScope ts(threads_);
  std::vector<EncoderInput> in;
  for (const auto& ids : inputs) {
    check(!ids.empty(), "score: an input has no ids");
    in.push_back(EncoderInput{ids.data(), static_cast<int64_t>(ids.size()), nullptr, 0});
  }
  return score_targets(*m_, in, targets);
}

std::vector<EncodeResult> Model::encode(const std::vector<std::vector<int32_t>>& inputs, bool l2_normalize) const {
  ThreadScope ts(threads_);
  std::vector<EncoderInput> in;
  for (const auto& ids : inputs) {
    check(!ids.empty(), "encode: an input has no ids");
    in.push_back(EncoderInput{ids.data(), static_cast<int64_t>(ids.size()), nullptr, 0});
  }
  std::vector<EncodeResult> out;
  for (auto& e : embed_inputs(*m_, in, l2_normalize))
    out.push_back(EncodeResult{e.tokens, e.dim, std::move(e.hidden), std::move(e.pooled)});
  return out;
}

ModelInfo Model::info() const {
  const ModelConfig& c = m_->config;
  ModelInfo i;
  i.vocab_size = c.decoder.vocab_size;
  i.hidden_size = c.decoder.hidden_size;
  i.encoder_layers = c.encoder.num_layers;
  i.decoder_layers = c.decoder.num_layers;
  i.decoder_start_token_id = m_->generation.decoder_start_token_id;
  i.eos_token_ids = m_->generation.eos_token_ids;
  i.weight_dtype = precision_name(m_->weights.precision);
  i.weight_bytes = m_->weights.bytes;
  i.has_vision = m_->weights.vision.present;
  return i;
}

}  // namespace t5g
