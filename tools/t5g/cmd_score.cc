// t5g score: log-probabilities of target tokens under teacher forcing.
#include <memory>

#include "commands.h"
#include "common.h"
#include "util/error.h"

namespace t5g::cli {

namespace {
struct ScoreArgs {
  std::string model;
  std::vector<std::string> input_ids, target_ids;
  int threads = 0;
  bool json = false;
};
}  // namespace

Action add_score(CLI::App& app) {
  auto a = std::make_shared<ScoreArgs>();
  CLI::App* c = app.add_subcommand(
      "score", "Log-probability of each target token given the input (teacher forcing: the decoder reads the "
               "start token + target without its last token), from fp32 logits");
  c->add_option("-m,--model", a->model, "Checkpoint folder (Hugging Face layout)")->required();
  c->add_option("--input-ids", a->input_ids, "Encoder input ids, comma-separated; repeat for a batch")
      ->required()
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  c->add_option("--target-ids", a->target_ids, "Target ids, comma-separated; one per --input-ids, in order")
      ->required()
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  c->add_option("--threads", a->threads, "Compute threads (0 = all cores)")->capture_default_str();
  c->add_flag("--json", a->json, "Print {\"logprobs\":[...]} (a list of lists for a batch)");
  return [a]() {
    check(a->input_ids.size() == a->target_ids.size(), "score: ", a->input_ids.size(), " --input-ids but ",
          a->target_ids.size(), " --target-ids; give one target per input");
    std::vector<std::vector<int32_t>> inputs, targets;
    for (const auto& s : a->input_ids) inputs.push_back(parse_id_list(s, "--input-ids"));
    for (const auto& s : a->target_ids) targets.push_back(parse_id_list(s, "--target-ids"));
    auto model = open_model(a->model, a->threads);
    auto lp = model->score(inputs, targets);
    if (a->json) {
      nlohmann::ordered_json out;
      if (lp.size() == 1) out["logprobs"] = lp[0];
      else out["logprobs"] = lp;
      print_json(out);
    } else {
      for (const auto& row : lp) {
        double total = 0;
        for (float x : row) {
          std::printf("%.6f ", x);
          total += x;
        }
        std::printf("(sum %.6f)\n", total);
      }
    }
    return 0;
  };
}

}  // namespace t5g::cli
