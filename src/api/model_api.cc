// The public Model facade over the internal model and runtime.
#include <omp.h>

#include <sys/stat.h>

#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "api/prepare_input.h"
#include "hub/hub.h"
#include "model/model.h"
#include "runtime/embed.h"
#include "runtime/beam_search.h"
#include "runtime/generate.h"
#include "runtime/sample_loop.h"
#include "runtime/sampling.h"
#include "runtime/stop.h"
#include "tokenizer/tokenizer.h"
#include "t5g/t5g.h"
#include "util/error.h"
#include "util/heap.h"

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
  const WeightFormat format = parse_weight_format(options.weights);
  const CrossKvFormat cross_kv = parse_cross_kv_format(options.cross_kv);
  const WeightMemory memory = parse_weight_memory(options.weight_memory);
  if (options.keep_freed_memory) keep_freed_heap_memory(size_t(512) << 20);
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  m->threads_ = options.threads > 0 ? options.threads : hw;
  {
    ThreadScope ts(m->threads_);  // quantizing at load runs on the model's threads
    m->m_ = load_model(dir, format, memory);
  }
  m->m_->cross_kv = cross_kv;
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

namespace {

SamplingParams sampling_params(const GenerateRequest& r, const GenerationConfig& g) {
  SamplingParams sp = SamplingParams::from_generation_config(g);
  if (r.temperature || r.top_k || r.top_p || r.min_p > 0) sp.do_sample = true;
  if (r.do_sample) sp.do_sample = *r.do_sample;
  if (r.temperature) sp.temperature = *r.temperature;
  if (r.top_k) sp.top_k = *r.top_k;
  if (r.top_p) sp.top_p = *r.top_p;
  sp.min_p = r.min_p;
  sp.repetition_penalty = r.repetition_penalty;
  sp.no_repeat_ngram_size = r.no_repeat_ngram_size;
  sp.min_new_tokens = r.min_new_tokens;
  sp.seed = r.seed;
  sp.validate();
  return sp;
}

// Requests that can decode together in one batch have the same options (everything but the input).
std::string options_key(const GenerateRequest& r) {
  std::ostringstream k;
  k << r.max_new_tokens << '|' << r.min_new_tokens << '|' << r.ignore_eos << '|' << (r.do_sample ? int(*r.do_sample) : -1)
    << '|' << (r.temperature ? *r.temperature : -1) << '|' << (r.top_k ? *r.top_k : -1) << '|'
    << (r.top_p ? *r.top_p : -1) << '|' << r.min_p << '|' << r.repetition_penalty << '|' << r.no_repeat_ngram_size
    << '|' << r.seed << '|' << r.num_beams << '|' << r.length_penalty << '|' << r.early_stopping << '|'
    << r.num_return_sequences;
  for (int32_t id : r.stop_token_ids) k << ',' << id;
  for (const auto& st : r.stop_strings) k << '\x1f' << st;
  return k.str();
}

const char* finish_name(FinishReason f) {
  switch (f) {
    case FinishReason::kStopToken: return "stop";
    case FinishReason::kStopString: return "stop_string";
    case FinishReason::kLength: return "length";
  }
  return "";
}

}  // namespace

std::vector<GenerateResult> Model::generate(const std::vector<GenerateRequest>& requests,
                                            const TokenCallback& on_token) const {
  ThreadScope ts(threads_);
  std::vector<GenerateResult> results(requests.size());
  if (requests.empty()) return results;
  std::vector<Prepared> prepared;
  for (size_t i = 0; i < requests.size(); ++i) {
    const GenerateRequest& r = requests[i];
    check(r.max_new_tokens >= 0, "generate: max_new_tokens must be >= 0");
    check(r.max_new_tokens < m_->config.decoder.max_position_embeddings, "generate: max_new_tokens ", r.max_new_tokens,
          " reaches the decoder's max_position_embeddings (", m_->config.decoder.max_position_embeddings, ")");
    check(r.num_beams >= 1, "generate: num_beams must be >= 1");
    check(r.num_return_sequences >= 1 && r.num_return_sequences <= r.num_beams,
          "generate: num_return_sequences must be between 1 and num_beams");
    check(r.stop_strings.empty() || has_tokenizer(), "generate: stop strings need the model's tokenizer");
    prepared.push_back(prepare(r));
    check(!prepared.back().ids.empty(), "generate: request ", i, " has no input");
  }
  const GenerationConfig& gen = m_->generation;
  DecodeFn decode;
  if (has_tokenizer()) decode = [this](std::span<const int32_t> ids) {
    return detokenize(std::vector<int32_t>(ids.begin(), ids.end()), false);
  };
  // Group requests with identical options; each group decodes as one batch.
  std::map<std::string, std::vector<size_t>> groups;
  for (size_t i = 0; i < requests.size(); ++i) groups[options_key(requests[i])].push_back(i);
  for (const auto& [key, rows] : groups) {
    const GenerateRequest& r = requests[rows[0]];
    std::vector<EncoderInput> inputs;
    for (size_t i : rows) inputs.push_back(prepared[i].encoder_input());
    const SamplingParams sp = sampling_params(r, gen);
    const std::vector<int32_t> stop_ids = stop_token_ids(gen, r.stop_token_ids);
    if (r.num_beams > 1) {
      BeamSearchParams bp;
      bp.num_beams = r.num_beams;
      bp.max_new_tokens = r.max_new_tokens;
      bp.length_penalty = r.length_penalty;
      check(r.early_stopping == "false" || r.early_stopping == "true" || r.early_stopping == "never",
            "generate: early_stopping must be false, true or never, got '", r.early_stopping, "'");
      bp.early_stopping = r.early_stopping == "true"    ? EarlyStopping::kTrue
                          : r.early_stopping == "never" ? EarlyStopping::kNever
                                                        : EarlyStopping::kFalse;
      bp.num_return_sequences = r.num_return_sequences;
      bp.processors = sp;
      bp.eos_token_ids = stop_ids;
      bp.stop_strings = r.stop_strings;
      bp.decode = decode;
      auto outs = generate_beam(*m_, inputs, bp);
      for (size_t k = 0; k < rows.size(); ++k) {
        GenerateResult& res = results[rows[k]];
        auto& hyps = outs[k].hypotheses;
        res.ids = hyps[0].ids;
        res.score = hyps[0].score;
        res.finish_reason = "beam";
        for (size_t h = 1; h < hyps.size(); ++h) res.alternatives.push_back(Hypothesis{hyps[h].ids, "", hyps[h].score});
      }
    } else {
      SampleParams p;
      p.max_new_tokens = r.max_new_tokens;
      p.ignore_eos = r.ignore_eos;
      p.sampling = sp;
      p.stop_ids = stop_ids;
      p.stop_strings = r.stop_strings;
      p.decode = decode;
      auto outs = generate_sampled(*m_, inputs, p,
                                   on_token ? TokenCallback([&](size_t k, int32_t t) { on_token(rows[k], t); })
                                            : TokenCallback{});
      for (size_t k = 0; k < rows.size(); ++k) {
        results[rows[k]].ids = std::move(outs[k].ids);
        results[rows[k]].finish_reason = finish_name(outs[k].finish);
      }
    }
  }
  for (size_t i = 0; i < results.size(); ++i)
    if (requests[i].input_ids.empty() || requests[i].return_text) {
      results[i].text = detokenize(results[i].ids, true);
      for (auto& h : results[i].alternatives) h.text = detokenize(h.ids, true);
    }
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
