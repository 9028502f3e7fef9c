// t5g generate: greedy generation from token ids or text.
#include <cstdio>
#include <memory>

#include "commands.h"
#include "common.h"
#include "util/error.h"

namespace t5g::cli {

namespace {
struct GenerateArgs {
  ModelArgs m;
  InputArgs in;
  int64_t max_new_tokens = 32;
  bool json = false;
  bool ignore_eos = false;
  bool keep_special = false;
  // sampling / beam search
  bool do_sample = false, greedy = false;
  double temperature = 1, top_p = 1, min_p = 0, repetition_penalty = 1, length_penalty = 1;
  int64_t top_k = 50, no_repeat_ngram_size = 0, min_new_tokens = 0, num_beams = 1, num_return_sequences = 1;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  std::vector<int32_t> stop_ids;
  std::string early_stopping = "false";
};
}  // namespace

Action add_generate(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* c = app.add_subcommand(
      "generate", "Generate text (greedy) for one input or a batch. Generation stops at any EOS id of "
                  "generation_config.json or after --max-new-tokens.");
  a->m.add_to(c);
  a->in.add_to(c, "to continue");
  c->add_option("--max-new-tokens", a->max_new_tokens, "Most tokens to generate per input")->capture_default_str();
  c->add_flag("--ignore-eos", a->ignore_eos, "Do not stop at EOS: generate exactly --max-new-tokens (benchmarks)");
  c->add_flag("--keep-special", a->keep_special, "Show special tokens (<eos>, ...) in the printed text");
  auto* o_sample = c->add_flag("--do-sample", a->do_sample, "Sample (default: generation_config.json's do_sample)");
  auto* o_greedy = c->add_flag("--greedy", a->greedy, "Greedy decoding even if generation_config.json samples");
  o_sample->excludes(o_greedy);
  auto* o_temp = c->add_option("--temperature", a->temperature, "Sampling temperature (implies sampling; 0 = greedy)");
  auto* o_topk = c->add_option("--top-k", a->top_k, "Keep the k most likely tokens (implies sampling; 0 = off)");
  auto* o_topp = c->add_option("--top-p", a->top_p, "Nucleus sampling mass (implies sampling)");
  auto* o_minp = c->add_option("--min-p", a->min_p, "Drop tokens below min_p x the top probability (implies sampling)");
  c->add_option("--repetition-penalty", a->repetition_penalty, "Penalty > 1 for tokens already in the output")
      ->capture_default_str();
  c->add_option("--no-repeat-ngram-size", a->no_repeat_ngram_size, "Never repeat an n-gram of this size")
      ->capture_default_str();
  c->add_option("--min-new-tokens", a->min_new_tokens, "EOS and stop ids are suppressed before this many tokens")
      ->capture_default_str();
  c->add_option("--seed", a->seed, "Random seed: the same seed gives the same output")->capture_default_str();
  c->add_option("--stop", a->stop, "Stop once the output text contains this string (repeatable; may span tokens)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  c->add_option("--stop-id", a->stop_ids, "Stop at this token id, besides generation_config's EOS ids (repeatable)")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  c->add_option("--num-beams", a->num_beams, "Beam search with N beams (deterministic; no streaming)")
      ->capture_default_str();
  c->add_option("--length-penalty", a->length_penalty, "Beam score = sum logprob / length^penalty")
      ->capture_default_str();
  c->add_option("--early-stopping", a->early_stopping, "Beam search stop rule: false, true or never")
      ->capture_default_str();
  c->add_option("--num-return-sequences", a->num_return_sequences,
                "Beam search: sequences returned per input (the best in outputs[i].ids, the rest in "
                "outputs[i].alternatives)")
      ->capture_default_str();
  c->add_flag("--json", a->json,
              "Print {\"outputs\":[{\"ids\":[...],\"text\":\"...\"}]}: generated ids (start token excluded, EOS "
              "included when produced); \"text\" for text inputs. Without --json a single input streams as it is "
              "generated: text for text inputs, ids otherwise.");
  return [a, o_sample, o_greedy, o_temp, o_topk, o_topp, o_minp]() {
    check(a->max_new_tokens >= 0, "--max-new-tokens must be >= 0");
    auto model = a->m.open();
    const auto inputs = a->in.resolve(*model);
    const bool text = a->in.is_text();
    std::vector<GenerateRequest> reqs;
    for (const auto& in : inputs) {
      GenerateRequest r;
      static_cast<Input&>(r) = in;
      r.max_new_tokens = a->max_new_tokens;
      r.ignore_eos = a->ignore_eos;
      r.return_text = text;
      if (o_sample->count()) r.do_sample = true;
      if (o_greedy->count()) r.do_sample = false;
      if (o_temp->count()) r.temperature = a->temperature;
      if (o_topk->count()) r.top_k = a->top_k;
      if (o_topp->count()) r.top_p = a->top_p;
      if (o_minp->count()) r.min_p = a->min_p;
      r.repetition_penalty = a->repetition_penalty;
      r.no_repeat_ngram_size = a->no_repeat_ngram_size;
      r.min_new_tokens = a->min_new_tokens;
      r.seed = a->seed;
      r.stop_strings = a->stop;
      r.stop_token_ids = a->stop_ids;
      r.num_beams = a->num_beams;
      r.length_penalty = a->length_penalty;
      r.early_stopping = a->early_stopping;
      r.num_return_sequences = a->num_return_sequences;
      reqs.push_back(std::move(r));
    }
    const bool stream = !a->json && reqs.size() == 1 && a->num_beams == 1;
    std::unique_ptr<TextStream> ts;
    if (stream && text) ts = std::make_unique<TextStream>(*model, !a->keep_special);
    TokenCallback cb;
    if (stream)
      cb = [&](size_t, int32_t id) {
        if (ts) {
          const std::string piece = ts->push(id);
          std::fwrite(piece.data(), 1, piece.size(), stdout);
        } else {
          std::printf("%d ", id);
        }
        std::fflush(stdout);
      };
    auto results = model->generate(reqs, cb);
    if (a->json) {
      nlohmann::ordered_json out = {{"outputs", nlohmann::ordered_json::array()}};
      for (const auto& r : results) {
        nlohmann::ordered_json o = {{"ids", r.ids}};
        if (text) o["text"] = a->keep_special ? model->detokenize(r.ids, false) : r.text;
        o["finish_reason"] = r.finish_reason;
        if (a->num_beams > 1) {
          o["score"] = r.score;
          nlohmann::ordered_json alts = nlohmann::ordered_json::array();
          for (const auto& h : r.alternatives) {
            nlohmann::ordered_json x = {{"ids", h.ids}, {"score", h.score}};
            if (text) x["text"] = h.text;
            alts.push_back(std::move(x));
          }
          o["alternatives"] = std::move(alts);
        }
        out["outputs"].push_back(std::move(o));
      }
      print_json(out);
    } else if (stream) {
      if (ts) {
        const std::string rest = ts->flush();
        std::fwrite(rest.data(), 1, rest.size(), stdout);
      }
      std::printf("\n");
    } else {
      for (const auto& r : results) {
        if (text) {
          std::printf("%s\n", (a->keep_special ? model->detokenize(r.ids, false) : r.text).c_str());
        } else {
          for (int32_t id : r.ids) std::printf("%d ", id);
          std::printf("\n");
        }
      }
    }
    return 0;
  };
}

}  // namespace t5g::cli
