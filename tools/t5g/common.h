// Helpers shared by the t5g subcommands: argument parsing and JSON output.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "t5g/t5g.h"

namespace t5g::cli {

inline constexpr const char* kModelHelp =
    "Checkpoint folder (Hugging Face layout) or hub repo id org/name[@revision], resolved in the hub cache "
    "($HF_HOME, $HF_HUB_CACHE) and downloaded when missing ($HF_TOKEN for gated repos, $HF_HUB_OFFLINE=1 "
    "never downloads, $HF_ENDPOINT sets the server)";

// "2,17,33" -> {2, 17, 33}; throws t5g::Error naming the flag on anything else.
std::vector<int32_t> parse_id_list(const std::string& text, const std::string& flag);

// Reads a whole text file for --prompt-file.
std::string read_prompt_file(const std::string& path);

// The encoder inputs named on the command line: --input-ids lists, -p texts and --prompt-file
// files (exactly one kind), tokenized with the model's tokenizer for text.
struct InputArgs {
  std::vector<std::string> input_ids, prompts, prompt_files, images;
  bool pan_and_scan = false, pil_resize = false, exif = false;
  void add_to(CLI::App* c, const std::string& what);
  bool is_text() const { return input_ids.empty(); }
  // The inputs, with the --image files given to them in order: a single input takes them all; in a
  // batch each input takes as many as it has image markers (text) or image-token blocks (ids).
  std::vector<Input> resolve(const Model& model) const;
  std::vector<std::string> texts() const;  // prompts then prompt files' contents
};

// The options every model command shares: -m, --threads, --weights, --weight-memory, --cross-kv.
struct ModelArgs {
  std::string model;
  int threads = 0;
  std::string weights = "auto";
  std::string weight_memory = "auto";
  std::string cross_kv = "auto";
  // What --cross-kv means to a command: only the commands that decode build a cross K/V cache. `t5g encode`
  // accepts (and checks) it without effect because the README listed it there; new commands leave it out.
  enum class CrossKvFlag { kUsed, kNoEffect, kAbsent };
  // Adds -m/--model, --weights and --weight-memory, --threads when `with_threads`, and --cross-kv as `cross` says.
  void add_to(CLI::App* c, bool with_threads = true, CrossKvFlag cross = CrossKvFlag::kUsed);
  // Loads the model (downloading it when it is a hub repo id not in the cache).
  std::shared_ptr<const Model> open() const;
};

// Loads the model named by -m (a checkpoint folder) with the thread count of --threads.
std::shared_ptr<const Model> open_model(const std::string& path, int threads, const std::string& weights = "auto",
                                        const std::string& cross_kv = "auto", const std::string& weight_memory = "auto");

// A one-line download progress bar on stderr (only when stderr is a terminal, else a line per file).
DownloadProgress progress_bar();

// Prints a JSON document on one line to stdout.
void print_json(const nlohmann::ordered_json& j);

// Peak resident set size of this process in bytes.
uint64_t peak_rss_bytes();

}  // namespace t5g::cli
