// pull() and resolve_model(): choose the files a checkpoint needs, fetch what the cache lacks, and answer from the
// cache alone whenever it already holds a whole checkpoint (or when offline).
#include <fnmatch.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "hub/cache.h"
#include "hub/download.h"
#include "hub/hub.h"
#include "hub/hub_api.h"
#include "hub/names.h"
#include "util/error.h"

namespace t5g {
namespace {

using hub::RepoCache;

// The single-file parts of a checkpoint besides the weights. config.json is required; the others are used
// when the repo has them.
const std::vector<std::string> kOptionalFiles = {"generation_config.json", "tokenizer.json",
                                                 "tokenizer_config.json",  "special_tokens_map.json",
                                                 "processor_config.json",  "preprocessor_config.json"};
constexpr const char* kConfig = "config.json";
constexpr const char* kWeights = "model.safetensors";
constexpr const char* kIndex = "model.safetensors.index.json";

bool is_directory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

// fnmatch as Python's fnmatch does it for huggingface_hub's allow_patterns: '*' also crosses '/', and a
// pattern ending in '/' means everything below that folder.
bool matches(const std::string& pattern, const std::string& name) {
  std::string p = pattern;
  if (!p.empty() && p.back() == '/') p += '*';
  return ::fnmatch(p.c_str(), name.c_str(), 0) == 0;
}

bool is_default_file(const std::string& name) {
  if (name.find('/') != std::string::npos) return false;  // top level only: skip e.g. onnx/ or original/ copies
  for (const auto& p : default_checkpoint_patterns())
    if (matches(p, name)) return true;
  return false;
}

// Shard names listed in a cached model.safetensors.index.json; throws when it is unreadable.
std::set<std::string> index_shards(const std::string& path) {
  std::ifstream in(path);
  check(static_cast<bool>(in), "cannot read ", path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    fail("invalid JSON in ", path, ": ", e.what());
  }
  check(j.is_object() && j.contains("weight_map") && j["weight_map"].is_object(), path, " has no weight_map");
  std::set<std::string> shards;
  for (const auto& [tensor, file] : j["weight_map"].items()) {
    check(file.is_string(), path, ": weight_map entry for ", tensor, " is not a file name");
    shards.insert(file.get<std::string>());
  }
  return shards;
}

// What a cached snapshot lacks to be a usable checkpoint, "" when nothing. `strict` also wants every optional
// file either present or known to be absent from the repo (.no_exist), so a cache filled by other tools with
// only some of the files is completed by a pull rather than used half-way.
std::string missing_part(const RepoCache& cache, const std::string& commit, bool strict) {
  if (!is_directory(cache.snapshot_dir(commit))) return "the snapshot folder " + cache.snapshot_dir(commit);
  if (!cache.has_file(commit, kConfig)) return kConfig;
  if (cache.has_file(commit, kIndex)) {
    std::set<std::string> shards;
    try {
      shards = index_shards(cache.snapshot_file(commit, kIndex));
    } catch (const Error& e) {
      return std::string(kIndex) + " (" + e.what() + ")";
    }
    for (const auto& s : shards) {
      try {
        hub::check_repo_filename(s);
      } catch (const Error&) {
        return "shard '" + s + "' (unsafe name in the index)";
      }
      if (!cache.has_file(commit, s)) return s;
    }
  } else if (!cache.has_file(commit, kWeights)) {
    return std::string(kWeights) + " (or " + kIndex + " and its shards)";
  }
  if (strict)
    for (const auto& f : kOptionalFiles)
      if (!cache.has_file(commit, f) && !cache.known_missing(commit, f)) return f;
  return "";
}

[[noreturn]] void fail_offline(const std::string& repo, const std::string& revision, const std::string& why) {
  fail("HF_HUB_OFFLINE is set and ", repo, "@", revision, " cannot be served from the hub cache: ", why,
       ". Download it first with network access (t5g pull ", repo, "), or unset HF_HUB_OFFLINE.");
}

// Offline pull: the cached snapshot, checked for the requested files, without any request.
std::string pull_offline(const RepoCache& cache, const std::string& repo, const std::string& revision,
                         const std::vector<std::string>& include) {
  const auto commit = cache.cached_commit(revision);
  if (!commit) fail_offline(repo, revision, "it is not in the cache (" + cache.repo_dir() + ")");
  const std::string dir = cache.snapshot_dir(*commit);
  if (include.empty()) {
    if (const std::string missing = missing_part(cache, *commit, false); !missing.empty())
      fail_offline(repo, revision, "the cached snapshot " + dir + " lacks " + missing);
    return dir;
  }
  if (!is_directory(dir)) fail_offline(repo, revision, "the snapshot folder " + dir + " is missing");
  std::vector<std::string> cached;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
    if (hub::file_size(it->path().string()) >= 0)
      cached.push_back(it->path().lexically_relative(dir).generic_string());
  for (const auto& p : include) {
    bool found = false;
    for (const auto& f : cached) found = found || matches(p, f);
    if (!found) fail_offline(repo, revision, "no cached file in " + dir + " matches '" + p + "'");
  }
  return dir;
}

}  // namespace

const std::vector<std::string>& default_checkpoint_patterns() {
  static const std::vector<std::string> patterns = [] {
    std::vector<std::string> p = {kConfig, "*.safetensors", kIndex};
    p.insert(p.end(), kOptionalFiles.begin(), kOptionalFiles.end());
    return p;
  }();
  return patterns;
}

std::string pull(const std::string& repo, const std::string& revision, const std::vector<std::string>& include,
                 const HubOptions& opts, const PullProgressFn& progress) {
  hub::check_repo_id(repo);
  hub::check_revision(revision);
  const RepoCache cache(opts.cache_dir, repo);
  if (opts.offline) return pull_offline(cache, repo, revision, include);

  hub::HubSession session(opts, repo);
  const hub::RepoListing listing = session.list(revision);
  const std::string& commit = listing.commit;

  std::vector<hub::RepoFile> selected;
  std::set<std::string> listed;
  for (const auto& f : listing.files) {
    listed.insert(f.name);
    bool want = include.empty() ? is_default_file(f.name) : false;
    for (const auto& p : include) want = want || matches(p, f.name);
    if (want) selected.push_back(f);
  }
  const std::string where = repo + "@" + revision;
  if (include.empty()) {
    check(listed.count(kConfig) > 0, where, " has no config.json: it is not a model checkpoint");
    bool has_weights = false;
    for (const auto& f : selected)
      has_weights = has_weights || (f.name.size() > 12 && f.name.compare(f.name.size() - 12, 12, ".safetensors") == 0);
    check(has_weights, where, " has no .safetensors weights at the top level (t5gemma.cpp reads safetensors "
          "only); use include patterns to pick other files");
  } else {
    check(!selected.empty(), "no file in ", where, " matches the include patterns");
  }
  for (const auto& f : selected) hub::check_repo_filename(f.name);

  const int count = static_cast<int>(selected.size());
  for (int i = 0; i < count; ++i) {
    const hub::RepoFile& f = selected[i];
    PullProgress p;
    p.file = f.name;
    p.index = i;
    p.count = count;
    p.total = f.size;
    if (cache.has_file(commit, f.name)) {
      p.cached = true;
      p.total = p.done = hub::file_size(cache.snapshot_file(commit, f.name));
      if (progress) progress(p);
      continue;
    }
    // Asking by commit pins every file to the listed snapshot even if the branch moves meanwhile.
    const hub::FileMetadata meta = session.head(commit, f.name);
    check(meta.commit == commit, "the hub answered for commit ", meta.commit, " while listing ", commit, " for ",
          repo, "/", f.name);
    std::string sha = f.lfs_sha256;
    if (hub::is_sha256_hex(meta.etag)) {
      check(sha.empty() || sha == meta.etag, "inconsistent hub metadata for ", repo, "/", f.name,
            ": listing sha256 ", sha, " vs ETag ", meta.etag);
      sha = meta.etag;  // an LFS file's etag is the sha256 of its content
    }
    if (!f.lfs_sha256.empty() && f.size >= 0)
      check(f.size == meta.size, "inconsistent hub metadata for ", repo, "/", f.name, ": listing says ", f.size,
            " bytes, the file ", meta.size);
    p.total = meta.size;
    const auto report = [&](int64_t done, int64_t total) {
      p.done = done;
      p.total = total;
      if (progress) progress(p);
    };
    if (hub::file_size(cache.blob_path(meta.etag)) == meta.size) {
      p.cached = true;  // same content already cached for another revision
      report(meta.size, meta.size);
    } else {
      hub::download_blob(session, cache, f.name, meta, sha, report);
    }
    cache.link_snapshot_file(commit, f.name, meta.etag);
  }

  if (include.empty()) {
    // Remember which checkpoint files this commit lacks, as huggingface_hub does after a 404, so the next
    // resolve_model() knows the snapshot is complete without asking.
    for (const auto& name : std::vector<std::string>{kIndex, kWeights})
      if (!listed.count(name)) cache.mark_missing(commit, name);
    for (const auto& name : kOptionalFiles)
      if (!listed.count(name)) cache.mark_missing(commit, name);
  }
  cache.write_ref(revision, commit);
  return cache.snapshot_dir(commit);
}

std::string resolve_model(const std::string& spec, const HubOptions& opts, const PullProgressFn& progress) {
  if (is_directory(spec)) return spec;
  if (!looks_like_repo_id(spec)) {
    check(!spec.empty(), "no model given: expected a checkpoint folder or a hub repo id (org/name[@revision])");
    fail("'", spec, "' is neither an existing folder nor a hub repo id (org/name[@revision])");
  }
  const RepoSpec rs = parse_repo_spec(spec);
  const RepoCache cache(opts.cache_dir, rs.repo);
  const auto commit = cache.cached_commit(rs.revision);
  if (commit && missing_part(cache, *commit, !opts.offline).empty()) return cache.snapshot_dir(*commit);
  if (opts.offline) return pull_offline(cache, rs.repo, rs.revision, {});
  try {
    return pull(rs.repo, rs.revision, {}, opts, progress);
  } catch (const hub::HubUnreachable&) {
    // No network, but the cache has config and weights (only optional files are unknown): use it, as
    // huggingface_hub falls back to cached files when the hub cannot be reached.
    if (commit && missing_part(cache, *commit, false).empty()) return cache.snapshot_dir(*commit);
    throw;
  }
}

}  // namespace t5g
