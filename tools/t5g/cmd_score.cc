// t5g score: log-probabilities of target tokens under teacher forcing.
#include <memory>

#include "commands.h"
#include "common.h"
#include "util/error.h"

namespace t5g::cli {

namespace {
struct ScoreArgs {
  ModelArgs m;
  InputArgs in;
  std::vector<std::string> target_ids, targets;
  bool json = false;
};
}  // namespace

Action add_score(CLI::App& app) {
  auto a = std::make_shared<ScoreArgs>();
  CLI::App* c = app.add_subcommand(
      "score", "Log-probability of each target token given the input (teacher forcing: the decoder reads the "
               "start token + target without its last token), from fp32 logits");
  a->m.add_to(c);
  a->in.add_to(c, "to condition on");
  c->add_option("--target-ids", a->target_ids, "Target ids, comma-separated; one per input, in order")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  c->add_option("--target", a->targets,
                "Target text, tokenized without special tokens (no BOS/EOS; add them as ids if wanted); one per input")
      ->expected(1)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  c->add_flag("--json", a->json, "Print {\"logprobs\":[...]} (a list of lists for a batch)");
  return [a]() {
    check(a->target_ids.empty() != a->targets.empty(), "give the targets either as --target-ids or as --target");
    auto model = a->m.open();
    const auto inputs = a->in.resolve(*model);
    std::vector<std::vector<int32_t>> targets;
    for (const auto& s : a->target_ids) targets.push_back(parse_id_list(s, "--target-ids"));
    for (const auto& t : a->targets) {
      targets.push_back(model->tokenize(t, /*add_special_tokens=*/false));
      check(!targets.back().empty(), "--target '", t, "' tokenizes to nothing");
    }
    check(inputs.size() == targets.size(), "score: ", inputs.size(), " inputs but ", targets.size(),
          " targets; give one target per input");
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
