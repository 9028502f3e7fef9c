// t5g generate: greedy generation from token ids or text.
#include <cstdio>
#include <memory>

#include "commands.h"
#include "common.h"
#include "util/error.h"

namespace t5g::cli {

namespace {
struct GenerateArgs {
  std::string model;
  InputArgs in;
  int64_t max_new_tokens = 32;
  int threads = 0;
  bool json = false;
  bool ignore_eos = false;
  bool keep_special = false;
};
}  // namespace

Action add_generate(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* c = app.add_subcommand(
      "generate", "Generate text (greedy) for one input or a batch. Generation stops at any EOS id of "
                  "generation_config.json or after --max-new-tokens.");
  c->add_option("-m,--model", a->model, kModelHelp)->required();
  a->in.add_to(c, "to continue");
  c->add_option("--max-new-tokens", a->max_new_tokens, "Most tokens to generate per input")->capture_default_str();
  c->add_flag("--ignore-eos", a->ignore_eos, "Do not stop at EOS: generate exactly --max-new-tokens (benchmarks)");
  c->add_flag("--keep-special", a->keep_special, "Show special tokens (<eos>, ...) in the printed text");
  c->add_option("--threads", a->threads, "Compute threads (0 = all cores)")->capture_default_str();
  c->add_flag("--json", a->json,
              "Print {\"outputs\":[{\"ids\":[...],\"text\":\"...\"}]}: generated ids (start token excluded, EOS "
              "included when produced); \"text\" for text inputs. Without --json a single input streams as it is "
              "generated: text for text inputs, ids otherwise.");
  return [a]() {
    check(a->max_new_tokens >= 0, "--max-new-tokens must be >= 0");
    auto model = open_model(a->model, a->threads);
    const auto inputs = a->in.resolve(*model);
    const bool text = a->in.is_text();
    std::vector<GenerateRequest> reqs;
    for (const auto& in : inputs) {
      GenerateRequest r;
      static_cast<Input&>(r) = in;
      r.max_new_tokens = a->max_new_tokens;
      r.ignore_eos = a->ignore_eos;
      r.return_text = text;
      reqs.push_back(std::move(r));
    }
    const bool stream = !a->json && reqs.size() == 1;
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
