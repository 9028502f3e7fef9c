// t5g: the command-line tool of t5gemma.cpp.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "commands.h"
#include "t5g/error.h"

int main(int argc, char** argv) {
  CLI::App app{"t5g: T5Gemma 2 inference on the CPU (t5gemma.cpp)"};
  app.require_subcommand(1);
  std::vector<std::pair<CLI::App*, t5g::cli::Action>> commands;
  auto reg = [&](t5g::cli::Action (*add)(CLI::App&)) {
    const size_t before = app.get_subcommands({}).size();
    t5g::cli::Action a = add(app);
    commands.emplace_back(app.get_subcommands({})[before], std::move(a));
  };
  reg(t5g::cli::add_generate);
  reg(t5g::cli::add_score);
  reg(t5g::cli::add_encode);
  reg(t5g::cli::add_tokenize);
  reg(t5g::cli::add_detokenize);
  reg(t5g::cli::add_pull);
  reg(t5g::cli::add_inspect);
  reg(t5g::cli::add_bench);
  reg(t5g::cli::add_init_random);
  reg(t5g::cli::add_quantize);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "error: %s (see t5g --help)\n", e.what());
    return 2;
  }
  try {
    for (auto& [sub, action] : commands)
      if (sub->parsed()) return action();
  } catch (const t5g::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 1;
}
