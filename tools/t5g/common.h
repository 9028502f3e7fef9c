// Helpers shared by the t5g subcommands: argument parsing and JSON output.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "t5g/t5g.h"

namespace t5g::cli {

// "2,17,33" -> {2, 17, 33}; throws t5g::Error naming the flag on anything else.
std::vector<int32_t> parse_id_list(const std::string& text, const std::string& flag);

// Loads the model named by -m (a checkpoint folder) with the thread count of --threads.
std::shared_ptr<const Model> open_model(const std::string& path, int threads);

// Prints a JSON document on one line to stdout.
void print_json(const nlohmann::ordered_json& j);

// Peak resident set size of this process in bytes.
uint64_t peak_rss_bytes();

}  // namespace t5g::cli
