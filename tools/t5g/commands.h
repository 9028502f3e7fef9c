// Each t5g subcommand registers itself on the CLI11 app and returns the action to run when chosen.
#pragma once
#include <functional>

#include <CLI/CLI.hpp>

namespace t5g::cli {

using Action = std::function<int()>;

Action add_generate(CLI::App& app);
Action add_score(CLI::App& app);
Action add_encode(CLI::App& app);
Action add_tokenize(CLI::App& app);
Action add_detokenize(CLI::App& app);
Action add_pull(CLI::App& app);
Action add_inspect(CLI::App& app);
Action add_bench(CLI::App& app);
Action add_init_random(CLI::App& app);
Action add_quantize(CLI::App& app);

}  // namespace t5g::cli
