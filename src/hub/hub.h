// Hugging Face hub client: turns `org/name[@revision]` into a local checkpoint folder, downloading what is
// missing into the standard hub cache (the same layout huggingface_hub uses, so caches are shared both ways).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace t5g {

// Where and how to reach the hub. Build with from_env() and override fields as needed; tests pass
// everything explicitly so they never depend on the caller's environment.
struct HubOptions {
  std::string endpoint = "https://huggingface.co";  // HF_ENDPOINT; no trailing slash
  std::string cache_dir;  // hub cache root holding models--org--name folders (HF_HUB_CACHE, $HF_HOME/hub, ...)
  std::string token;      // sent as `Authorization: Bearer` to the endpoint only; empty: anonymous
  bool offline = false;   // HF_HUB_OFFLINE: never touch the network, answer from the cache or fail
  int connect_timeout_s = 10;  // HF_HUB_ETAG_TIMEOUT
  int read_timeout_s = 10;     // HF_HUB_DOWNLOAD_TIMEOUT: a transfer idle this long fails (and is resumed)
  int max_retries = 5;         // resumes of one file in a row that get no new byte before giving up
  int retry_delay_ms = 1000;   // pause before each resume

  // Endpoint, cache, token, offline flag and timeouts from the HF_* variables, with huggingface_hub's
  // precedence: cache $HF_HUB_CACHE > $HF_HOME/hub > $XDG_CACHE_HOME/huggingface/hub > ~/.cache/huggingface/hub;
  // token $HF_TOKEN > the file at $HF_TOKEN_PATH > $HF_HOME/token > ~/.cache/huggingface/token.
  static HubOptions from_env();
};

// One progress report: `done` of `total` bytes of `file` are on disk. Reported at the start and end of every
// file and as bytes arrive; `cached` files were already present and cost nothing.
struct PullProgress {
  std::string file;     // repo-relative name, e.g. "model-00001-of-00002.safetensors"
  int64_t done = 0;
  int64_t total = -1;   // -1 while unknown
  int index = 0;        // 0-based position of this file in the pull
  int count = 0;        // number of files in the pull
  bool cached = false;
};
// Throwing from the callback cancels the pull; a partial file is kept and resumed next time.
using PullProgressFn = std::function<void(const PullProgress&)>;

struct RepoSpec {
  std::string repo;                // "org/name"
  std::string revision = "main";   // branch, tag or 40-hex commit
};

// True for `org/name` or `org/name@revision` with hub-valid names (letters, digits, '-', '_', '.').
bool looks_like_repo_id(const std::string& spec);
// Splits `org/name[@revision]`; throws t5g::Error saying what is malformed.
RepoSpec parse_repo_spec(const std::string& spec);

// The files a t5gemma.cpp checkpoint is made of, as glob patterns over repo-relative names: configs,
// tokenizer and processor files, top-level *.safetensors and the shard index.
const std::vector<std::string>& default_checkpoint_patterns();

// A local directory is returned as is. A repo id resolves to its snapshot folder in the cache; when the cache
// already holds a complete checkpoint for that revision no request is made (the ref is not re-checked, use
// pull() to update), otherwise the missing files are pulled. Offline, only the cache is consulted; if the hub
// cannot be reached, a cached snapshot with config.json and all weights is used.
std::string resolve_model(const std::string& spec, const HubOptions& opts, const PullProgressFn& progress = {});

// Lists `repo` at `revision` and downloads the files matching `include` (fnmatch globs like huggingface_hub's
// allow_patterns; empty: default_checkpoint_patterns()) into the cache, resuming partial downloads and
// checking sizes and LFS sha256. Updates refs/<revision>. Returns the snapshot folder.
std::string pull(const std::string& repo, const std::string& revision, const std::vector<std::string>& include,
                 const HubOptions& opts, const PullProgressFn& progress = {});

}  // namespace t5g
