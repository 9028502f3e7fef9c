// t5g generate: greedy generation from encoder input ids.
#include <cstdio>
#include <memory>

#include "commands.h"
#include "common.h"
#include "util/error.h"

namespace t5g::cli {

namespace {
struct GenerateArgs {
  std::string model;
  std::vector<std::string> input_ids;
  int64_t max_new_tokens = 32;
  int threads = 0;
  bool json = false;
  bool ignore_eos = false;
};
}  // namespace

Action add_generate(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  CLI::App* c = app.add_subcommand("generate", "Generate output tokens (greedy) for one input or a batch");
  c->add_option("-m,--model", a->model, "Checkpoint folder (Hugging Face layout)")->required();
  c->add_option("--input-ids", a->input_ids,
                "Encoder input ids, comma-separated, used exactly as given (no BOS/EOS added). "
                "Repeat the flag to make a batch; each row's result equals running it alone.")
      ->required()
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  c->add_option("--max-new-tokens", a->max_new_tokens, "Most tokens to generate per input")->capture_default_str();
  c->add_flag("--ignore-eos", a->ignore_eos, "Do not stop at EOS: generate exactly --max-new-tokens (benchmarks)");
  c->add_option("--threads", a->threads, "Compute threads (0 = all cores)")->capture_default_str();
  c->add_flag("--json", a->json,
              "Print {\"outputs\":[{\"ids\":[...]}]}: generated ids, start token excluded, EOS included when produced");
  return [a]() {
    std::vector<GenerateRequest> reqs;
    for (const auto& s : a->input_ids) {
      GenerateRequest r;
      r.input_ids = parse_id_list(s, "--input-ids");
      r.max_new_tokens = a->max_new_tokens;
      r.ignore_eos = a->ignore_eos;
      reqs.push_back(std::move(r));
    }
    check(a->max_new_tokens >= 0, "--max-new-tokens must be >= 0");
    auto model = open_model(a->model, a->threads);
    const bool stream = !a->json && reqs.size() == 1;
    auto results = model->generate(reqs, stream ? TokenCallback([](size_t, int32_t id) {
      std::printf("%d ", id);
      std::fflush(stdout);
    })
                                                : TokenCallback{});
    if (a->json) {
      nlohmann::ordered_json out = {{"outputs", nlohmann::ordered_json::array()}};
      for (const auto& r : results) out["outputs"].push_back({{"ids", r.ids}});
      print_json(out);
    } else if (stream) {
      std::printf("\n");
    } else {
      for (const auto& r : results) {
        for (int32_t id : r.ids) std::printf("%d ", id);
        std::printf("\n");
      }
    }
    return 0;
  };
}

}  // namespace t5g::cli
