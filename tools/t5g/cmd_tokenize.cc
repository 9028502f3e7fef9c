// t5g tokenize / detokenize: the model's tokenizer on its own.
#include <memory>

#include "commands.h"
#include "common.h"
#include "util/error.h"

namespace t5g::cli {

namespace {
struct TokenizeArgs {
  std::string model, prompt, prompt_file;
  bool json = false, no_special = false;
};
struct DetokenizeArgs {
  std::string model, ids;
  bool keep_special = false, json = false;
};
}  // namespace

Action add_tokenize(CLI::App& app) {
  auto a = std::make_shared<TokenizeArgs>();
  CLI::App* c = app.add_subcommand("tokenize", "Token ids of a text, exactly as the model input is built "
                                               "(BOS per tokenizer_config.json)");
  c->add_option("-m,--model", a->model, kModelHelp)->required();
  auto* p = c->add_option("-p,--prompt", a->prompt, "Text to tokenize");
  auto* f = c->add_option("--prompt-file", a->prompt_file, "Read the text from a file");
  p->excludes(f);
  c->add_flag("--no-special", a->no_special, "Do not add special tokens (BOS)");
  c->add_flag("--json", a->json, "Print {\"ids\":[...]}");
  return [a, p, f]() {
    check(p->count() + f->count() == 1, "give the text with -p/--prompt or --prompt-file");
    const std::string text = f->count() ? read_prompt_file(a->prompt_file) : a->prompt;
    auto model = open_model(a->model, 1);
    const auto ids = model->tokenize(text, !a->no_special);
    if (a->json) {
      print_json({{"ids", ids}});
    } else {
      std::string line;
      for (size_t i = 0; i < ids.size(); ++i) line += (i ? "," : "") + std::to_string(ids[i]);
      std::printf("%s\n", line.c_str());
    }
    return 0;
  };
}

Action add_detokenize(CLI::App& app) {
  auto a = std::make_shared<DetokenizeArgs>();
  CLI::App* c = app.add_subcommand("detokenize", "Text of token ids (special tokens skipped unless --keep-special)");
  c->add_option("-m,--model", a->model, kModelHelp)->required();
  c->add_option("--ids", a->ids, "Token ids, comma-separated")->required();
  c->add_flag("--keep-special", a->keep_special, "Show special tokens");
  c->add_flag("--json", a->json, "Print {\"text\":\"...\"}");
  return [a]() {
    const auto ids = parse_id_list(a->ids, "--ids");
    auto model = open_model(a->model, 1);
    const std::string text = model->detokenize(ids, !a->keep_special);
    if (a->json) print_json({{"text", text}});
    else std::printf("%s\n", text.c_str());
    return 0;
  };
}

}  // namespace t5g::cli
