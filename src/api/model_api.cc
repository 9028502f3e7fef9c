// The public Model facade over the internal model and runtime.
#include <omp.h>

#include <sys/stat.h>

#include <mutex>
#include <thread>

#include "api/prepare_input.h"
#include "hub/hub.h"
#include "model/model.h"
#include "runtime/embed.h"
#include "runtime/generate.h"
#include "tokenizer/tokenizer.h"
#include "t5g/t5g.h"
#include "util/error.h"

namespace t5g {

namespace {
// OpenMP thread counts are per calling thread: every entry point sets its own.
struct ThreadScope {
  explicit ThreadScope(int n) { omp_set_num_threads(n); }
};
}  // namespace

// The tokenizer is loaded on first use: generation from ids never pays for it.
struct Model::TokenizerSlot {
  std::once_flag once;
  std::unique_ptr<Tokenizer> tokenizer;
  std::string error;
};

std::shared_ptr<const Model> Model::load(const std::string& path, const LoadOptions& options) {
  check(options.threads >= 0, "threads must be >= 0");
  std::shared_ptr<Model> m(new Model());
  struct stat st {};
  std::string dir = path;
  if (::stat(path.c_str(), &st) != 0 && looks_like_repo_id(path)) {
    PullProgressFn progress;
    if (options.on_download)
      progress = [&](const PullProgress& p) { options.on_download(p.file, p.done, p.total); };
    dir = resolve_model(path, HubOptions::from_env(), progress);
  }
  m->m_ = load_model(dir);
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  m->threads_ = options.threads > 0 ? options.threads : hw;
  m->tok_ = std::make_unique<TokenizerSlot>();
  return m;
}

Model::~Model() = default;

bool Model::has_tokenizer() const {
  struct stat st {};
  return ::stat(m_->checkpoint->file_path("tokenizer.json").c_str(), &st) == 0;
}

const Tokenizer& Model::tokenizer() const {
  std::call_once(tok_->once, [&] {
    check(has_tokenizer(), "no tokenizer.json in ", m_->checkpoint->dir(),
          "; give token ids (--input-ids) or add the checkpoint's tokenizer files");
    tok_->tokenizer = std::make_unique<Tokenizer>(Tokenizer::load(m_->checkpoint->dir()));
  });
  return *tok_->tokenizer;
}

std::vector<int32_t> Model::tokenize(const std::string& text, bool add_special_tokens) const {
  return tokenizer().encode(text, add_special_tokens);
}

std::string Model::detokenize(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  return tokenizer().decode(ids, skip_special_tokens);
}

struct TextStream::Impl {
  StreamDecoder decoder;
};
TextStream::TextStream(const Model& model, bool skip_special_tokens)
    : impl_(new Impl{StreamDecoder(model.tokenizer(), skip_special_tokens)}) {}
TextStream::~TextStream() = default;
std::string TextStream::push(int32_t id) { return impl_->decoder.push(id); }
std::string TextStream::flush() { return impl_->decoder.flush(); }

std::vector<GenerateResult> Model::generate(const std::vector<GenerateRequest>& requests,
                                            const TokenCallback& on_token) const {
  ThreadScope ts(threads_);
  std::vector<GenerateResult> results(requests.size());
  if (requests.empty()) return results;
  std::vector<Prepared> prepared;
  for (size_t i = 0; i < requests.size(); ++i) {
    check(requests[i].max_new_tokens >= 0, "generate: max_new_tokens must be >= 0");
    prepared.push_back(prepare(requests[i]));
    check(!prepared.back().ids.empty(), "generate: request ", i, " has no input");
  }
  std::vector<EncoderInput> inputs;
  for (const auto& p : prepared) inputs.push_back(p.encoder_input());
  // Requests with the same limits decode together in one batch; otherwise one at a time.
  bool same = true;
  for (const auto& r : requests)
    same = same && r.max_new_tokens == requests[0].max_new_tokens && r.ignore_eos == requests[0].ignore_eos;
  auto params = [](const GenerateRequest& r) {
    GreedyParams p;
    p.max_new_tokens = r.max_new_tokens;
    p.ignore_eos = r.ignore_eos;
    return p;
  };
  if (same) {
    auto outs = generate_greedy(*m_, inputs, params(requests[0]), on_token);
    for (size_t i = 0; i < outs.size(); ++i) results[i].ids = std::move(outs[i].ids);
  } else {
    for (size_t i = 0; i < requests.size(); ++i) {
      auto outs = generate_greedy(*m_, {inputs[i]}, params(requests[i]),
                                  on_token ? TokenCallback([&](size_t, int32_t t) { on_token(i, t); }) : TokenCallback{});
      results[i].ids = std::move(outs[0].ids);
    }
  }
  for (size_t i = 0; i < results.size(); ++i)
    if (requests[i].input_ids.empty() || requests[i].return_text) results[i].text = detokenize(results[i].ids, true);
  return results;
}

namespace {
std::vector<Input> id_inputs(const std::vector<std::vector<int32_t>>& ids) {
  std::vector<Input> in(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) in[i].input_ids = ids[i];
  return in;
}
}  // namespace

std::vector<std::vector<float>> Model::score(const std::vector<Input>& inputs,
                                             const std::vector<std::vector<int32_t>>& targets) const {
  ThreadScope ts(threads_);
  std::vector<Prepared> prepared;
  std::vector<EncoderInput> in;
  for (const auto& i : inputs) prepared.push_back(prepare(i));
  for (const auto& p : prepared) {
    check(!p.ids.empty(), "score: an input is empty");
    in.push_back(p.encoder_input());
  }
  return score_targets(*m_, in, targets);
}

std::vector<std::vector<float>> Model::score(const std::vector<std::vector<int32_t>>& inputs,
                                             const std::vector<std::vector<int32_t>>& targets) const {
  return score(id_inputs(inputs), targets);
}

std::vector<EncodeResult> Model::encode(const std::vector<Input>& inputs, bool l2_normalize) const {
  ThreadScope ts(threads_);
  std::vector<Prepared> prepared;
  std::vector<EncoderInput> in;
  for (const auto& i : inputs) prepared.push_back(prepare(i));
  for (const auto& p : prepared) {
    check(!p.ids.empty(), "encode: an input is empty");
    in.push_back(p.encoder_input());
  }
  std::vector<EncodeResult> out;
  for (auto& e : embed_inputs(*m_, in, l2_normalize))
    out.push_back(EncodeResult{e.tokens, e.dim, std::move(e.hidden), std::move(e.pooled)});
  return out;
}

std::vector<EncodeResult> Model::encode(const std::vector<std::vector<int32_t>>& inputs, bool l2_normalize) const {
  return encode(id_inputs(inputs), l2_normalize);
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
  i.image_token_id = c.image_token_id;
  i.mm_tokens_per_image = c.mm_tokens_per_image;
  return i;
}

}  // namespace t5g
