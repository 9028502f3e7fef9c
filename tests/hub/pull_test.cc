// pull() / resolve_model() against the in-process mock hub: cache layout, reuse, auth, resume, checksums, offline.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "hub/hub.h"
#include "mock_hub.h"
#include "util/error.h"

namespace t5g {
namespace {

namespace fs = std::filesystem;
using testing::MockHub;
using testing::MockRepo;

constexpr const char* kCommit = "0123456789abcdef0123456789abcdef01234567";
constexpr const char* kRepo = "org/tiny";

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string fixture(const std::string& name) {
  return read_file(std::string(T5G_TEST_DATA) + "/vectors/tiny/model/" + name);
}

MockRepo tiny_repo(bool gated = false) {
  MockRepo r;
  r.commit = kCommit;
  r.gated = gated;
  r.files["config.json"] = {fixture("config.json"), false};
  r.files["generation_config.json"] = {fixture("generation_config.json"), false};
  r.files["model.safetensors"] = {fixture("model.safetensors"), true};
  // Not part of a checkpoint: the default selection must leave these alone.
  r.files["README.md"] = {"# tiny\n", false};
  r.files["onnx/model.safetensors"] = {"not really weights", true};
  return r;
}

bool is_symlink(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0 && S_ISLNK(st.st_mode);
}

bool exists(const std::string& p) {
  struct stat st {};
  return ::lstat(p.c_str(), &st) == 0;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

class HubPull : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::string(T5G_TEST_TMP) + "/hub_" + info->name() + "_" + std::to_string(::getpid());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    hub_.add_repo(kRepo, tiny_repo());
    opts_.endpoint = hub_.url();
    opts_.cache_dir = dir_ + "/hub";
    opts_.connect_timeout_s = 5;
    opts_.read_timeout_s = 5;
    opts_.max_retries = 2;
    opts_.retry_delay_ms = 10;
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string repo_dir() const { return opts_.cache_dir + "/models--org--tiny"; }
  std::string snapshot() const { return repo_dir() + "/snapshots/" + kCommit; }
  std::string weights_blob() const { return repo_dir() + "/blobs/" + MockHub::sha256_hex(fixture("model.safetensors")); }

  void expect_checkpoint(const std::string& dir) const {
    EXPECT_EQ(read_file(dir + "/config.json"), fixture("config.json"));
    EXPECT_EQ(read_file(dir + "/generation_config.json"), fixture("generation_config.json"));
    EXPECT_EQ(read_file(dir + "/model.safetensors"), fixture("model.safetensors"));
  }

  std::vector<testing::LoggedRequest> cdn_gets(const MockHub& hub) const {
    std::vector<testing::LoggedRequest> out;
    for (const auto& r : hub.requests())
      if (r.method == "GET" && r.path.rfind("/cdn/", 0) == 0) out.push_back(r);
    return out;
  }

  MockHub hub_;
  HubOptions opts_;
  std::string dir_;
};

TEST_F(HubPull, DownloadsCheckpointIntoHubCacheLayout) {
  std::vector<PullProgress> reports;
  const std::string dir = pull(kRepo, "main", {}, opts_, [&](const PullProgress& p) { reports.push_back(p); });
  EXPECT_EQ(dir, snapshot());
  expect_checkpoint(dir);

  // huggingface_hub layout: relative symlinks into blobs/<etag>, the LFS blob named by its sha256, refs/main.
  for (const char* f : {"config.json", "generation_config.json", "model.safetensors"}) {
    ASSERT_TRUE(is_symlink(dir + "/" + f)) << f;
    EXPECT_EQ(fs::read_symlink(dir + "/" + f).string().rfind("../../blobs/", 0), 0u) << f;
  }
  EXPECT_EQ(fs::read_symlink(dir + "/model.safetensors").string(),
            "../../blobs/" + MockHub::sha256_hex(fixture("model.safetensors")));
  EXPECT_EQ(fs::read_symlink(dir + "/config.json").string(), "../../blobs/" + MockHub::git_oid(fixture("config.json")));
  EXPECT_EQ(read_file(repo_dir() + "/refs/main"), kCommit);  // bare hash, no newline
  EXPECT_FALSE(exists(dir + "/README.md"));
  EXPECT_FALSE(exists(dir + "/onnx"));
  EXPECT_TRUE(exists(repo_dir() + "/.no_exist/" + kCommit + "/tokenizer.json"));
  EXPECT_TRUE(exists(opts_.cache_dir + "/.locks/models--org--tiny"));
  for (const auto& e : fs::directory_iterator(repo_dir() + "/blobs"))
    EXPECT_EQ(e.path().string().find(".incomplete"), std::string::npos);

  // The weights came from the CDN path the resolve URL redirected to, in one piece.
  const auto cdn = cdn_gets(hub_);
  ASSERT_EQ(cdn.size(), 1u);
  EXPECT_EQ(cdn[0].range, "");

  // Progress: every file reported, the weights ending at their full size.
  ASSERT_FALSE(reports.empty());
  EXPECT_EQ(reports.back().count, 3);
  int64_t weights_done = 0;
  for (const auto& p : reports)
    if (p.file == "model.safetensors") weights_done = std::max(weights_done, p.done);
  EXPECT_EQ(weights_done, static_cast<int64_t>(fixture("model.safetensors").size()));
}

TEST_F(HubPull, ResolveModelReusesCacheWithoutRequests) {
  const std::string first = resolve_model(kRepo, opts_);
  EXPECT_EQ(first, snapshot());
  hub_.clear_log();
  EXPECT_EQ(resolve_model(kRepo, opts_), first);
  EXPECT_EQ(resolve_model(std::string(kRepo) + "@main", opts_), first);
  EXPECT_EQ(resolve_model(std::string(kRepo) + "@" + kCommit, opts_), first);
  EXPECT_EQ(hub_.request_count(), 0u);

  // An explicit pull re-lists the revision but downloads nothing it already has.
  pull(kRepo, "main", {}, opts_);
  ASSERT_EQ(hub_.request_count(), 1u);
  EXPECT_EQ(hub_.requests()[0].path, std::string("/api/models/") + kRepo + "/revision/main");
}

// Builds by hand the cache huggingface_hub would leave (blobs, relative symlinks, refs/main, .no_exist markers).
void write_hf_style_cache(const std::string& cache, bool with_no_exist_markers) {
  const std::string repo = cache + "/models--org--tiny";
  const std::string snap = repo + "/snapshots/" + kCommit;
  fs::create_directories(repo + "/blobs");
  fs::create_directories(snap);
  fs::create_directories(repo + "/refs");
  for (const char* f : {"config.json", "generation_config.json", "model.safetensors"}) {
    const std::string content = fixture(f);
    const std::string etag = std::string(f) == "model.safetensors" ? MockHub::sha256_hex(content) : MockHub::git_oid(content);
    std::ofstream(repo + "/blobs/" + etag, std::ios::binary) << content;
    fs::create_symlink("../../blobs/" + etag, snap + "/" + f);
  }
  std::ofstream(repo + "/refs/main") << kCommit;
  if (with_no_exist_markers) {
    fs::create_directories(repo + "/.no_exist/" + kCommit);
    for (const char* f : {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                          "processor_config.json", "preprocessor_config.json"})
      std::ofstream(repo + "/.no_exist/" + kCommit + "/" + f);
  }
}

TEST_F(HubPull, UsesCacheWrittenByHuggingfaceHubWithoutRequests) {
  write_hf_style_cache(opts_.cache_dir, true);
  EXPECT_EQ(resolve_model(kRepo, opts_), snapshot());
  EXPECT_EQ(hub_.request_count(), 0u);
}

TEST_F(HubPull, CacheWithUnknownOptionalFilesIsCheckedOnceWithoutDownloads) {
  // Without .no_exist markers we cannot know whether tokenizer.json etc. exist upstream: one listing settles it.
  write_hf_style_cache(opts_.cache_dir, false);
  EXPECT_EQ(resolve_model(kRepo, opts_), snapshot());
  ASSERT_EQ(hub_.request_count(), 1u);
  EXPECT_EQ(hub_.requests()[0].path, std::string("/api/models/") + kRepo + "/revision/main");
  hub_.clear_log();
  EXPECT_EQ(resolve_model(kRepo, opts_), snapshot());
  EXPECT_EQ(hub_.request_count(), 0u);
}

TEST_F(HubPull, UnreachableHubFallsBackToCachedCheckpoint) {
  write_hf_style_cache(opts_.cache_dir, false);  // optional files unknown: would normally ask the hub
  opts_.endpoint = "http://127.0.0.1:1";           // nothing listens there
  EXPECT_EQ(resolve_model(kRepo, opts_), snapshot());
  // Without weights in the cache the connection error is reported.
  EXPECT_THROW(resolve_model("org/other", opts_), Error);
}

TEST_F(HubPull, GatedRepoNeedsToken) {
  hub_.add_repo("org/gated", tiny_repo(true));
  const std::string err = error_of([&] { resolve_model("org/gated", opts_); });
  EXPECT_NE(err.find("401"), std::string::npos) << err;
  EXPECT_NE(err.find("gated"), std::string::npos) << err;
  EXPECT_NE(err.find("accept its license"), std::string::npos) << err;
  EXPECT_NE(err.find("HF_TOKEN"), std::string::npos) << err;
  EXPECT_FALSE(exists(opts_.cache_dir + "/models--org--gated/snapshots/" + kCommit + "/config.json"));

  opts_.token = "hf_wrong";
  const std::string err403 = error_of([&] { resolve_model("org/gated", opts_); });
  EXPECT_NE(err403.find("403"), std::string::npos) << err403;
  EXPECT_NE(err403.find("is invalid or has no access"), std::string::npos) << err403;

  opts_.token = MockHub::kToken;
  hub_.clear_log();
  const std::string dir = resolve_model("org/gated", opts_);
  expect_checkpoint(dir);
  for (const auto& r : hub_.requests())  // same host and port as the endpoint: the token goes along
    EXPECT_EQ(r.authorization, std::string("Bearer ") + MockHub::kToken) << r.path;
}

TEST_F(HubPull, TokenIsNotSentToAnotherHost) {
  MockHub cdn;  // a second server: different host:port, like cdn-lfs.huggingface.co
  cdn.add_repo("org/gated", tiny_repo(true));
  hub_.add_repo("org/gated", tiny_repo(true));
  hub_.set_cdn_base(cdn.url());
  opts_.token = MockHub::kToken;
  expect_checkpoint(pull("org/gated", "main", {}, opts_));
  const auto cdn_requests = cdn_gets(cdn);
  ASSERT_EQ(cdn_requests.size(), 1u);
  EXPECT_EQ(cdn_requests[0].authorization, "");
  EXPECT_TRUE(cdn_gets(hub_).empty());
}

TEST_F(HubPull, ResumesAfterConnectionCutWithinOnePull) {
  hub_.cut_cdn_downloads(400000);
  expect_checkpoint(pull(kRepo, "main", {}, opts_));
  const auto cdn = cdn_gets(hub_);
  ASSERT_EQ(cdn.size(), 2u);
  EXPECT_EQ(cdn[0].range, "");
  EXPECT_EQ(cdn[1].range, "bytes=400000-");
}

TEST_F(HubPull, InterruptedDownloadIsNeverUsedAndResumesNextTime) {
  opts_.max_retries = 0;
  hub_.cut_cdn_downloads(300000);
  const std::string err = error_of([&] { pull(kRepo, "main", {}, opts_); });
  EXPECT_NE(err.find("model.safetensors"), std::string::npos) << err;
  EXPECT_NE(err.find("resume"), std::string::npos) << err;
  // The partial file is kept for resuming but nothing presents it as the real one.
  EXPECT_EQ(fs::file_size(weights_blob() + ".incomplete"), 300000u);
  EXPECT_FALSE(exists(weights_blob()));
  EXPECT_FALSE(exists(snapshot() + "/model.safetensors"));
  EXPECT_FALSE(exists(repo_dir() + "/refs/main"));
  HubOptions offline = opts_;
  offline.offline = true;
  EXPECT_THROW(resolve_model(kRepo, offline), Error);

  hub_.clear_log();
  expect_checkpoint(resolve_model(kRepo, opts_));
  const auto cdn = cdn_gets(hub_);
  ASSERT_EQ(cdn.size(), 1u);
  EXPECT_EQ(cdn[0].range, "bytes=300000-");
  EXPECT_FALSE(exists(weights_blob() + ".incomplete"));
}

TEST_F(HubPull, WrongChecksumIsRejected) {
  hub_.corrupt_cdn(true);
  const std::string err = error_of([&] { pull(kRepo, "main", {}, opts_); });
  EXPECT_NE(err.find("checksum mismatch"), std::string::npos) << err;
  EXPECT_NE(err.find(MockHub::sha256_hex(fixture("model.safetensors"))), std::string::npos) << err;
  EXPECT_FALSE(exists(weights_blob()));
  EXPECT_FALSE(exists(weights_blob() + ".incomplete"));
  EXPECT_FALSE(exists(snapshot() + "/model.safetensors"));

  hub_.corrupt_cdn(false);
  expect_checkpoint(pull(kRepo, "main", {}, opts_));
}

TEST_F(HubPull, OfflineUsesCacheOnly) {
  pull(kRepo, "main", {}, opts_);
  hub_.clear_log();
  opts_.offline = true;
  EXPECT_EQ(resolve_model(kRepo, opts_), snapshot());
  EXPECT_EQ(pull(kRepo, "main", {}, opts_), snapshot());
  EXPECT_EQ(pull(kRepo, "main", {"*.json"}, opts_), snapshot());
  EXPECT_THROW(pull(kRepo, "main", {"tokenizer.json"}, opts_), Error);
  EXPECT_EQ(hub_.request_count(), 0u);
}

TEST_F(HubPull, OfflineFailsClearlyWhenNotCached) {
  opts_.offline = true;
  const std::string err = error_of([&] { resolve_model(kRepo, opts_); });
  EXPECT_NE(err.find("HF_HUB_OFFLINE"), std::string::npos) << err;
  EXPECT_NE(err.find(kRepo), std::string::npos) << err;
  EXPECT_NE(err.find("not in the cache"), std::string::npos) << err;
  EXPECT_EQ(hub_.request_count(), 0u);
}

TEST_F(HubPull, IncludePatternsOverrideDefaults) {
  const std::string dir = pull(kRepo, "main", {"*.json", "README.md"}, opts_);
  EXPECT_TRUE(exists(dir + "/config.json"));
  EXPECT_TRUE(exists(dir + "/generation_config.json"));
  EXPECT_EQ(read_file(dir + "/README.md"), "# tiny\n");
  EXPECT_FALSE(exists(dir + "/model.safetensors"));
  EXPECT_FALSE(exists(repo_dir() + "/.no_exist"));  // only a default pull knows what a checkpoint lacks
  EXPECT_TRUE(cdn_gets(hub_).empty());

  const std::string sub = pull(kRepo, "main", {"onnx/"}, opts_);
  EXPECT_EQ(read_file(sub + "/onnx/model.safetensors"), "not really weights");
  EXPECT_EQ(fs::read_symlink(sub + "/onnx/model.safetensors").string().rfind("../../../blobs/", 0), 0u);
  EXPECT_THROW(pull(kRepo, "main", {"*.bin"}, opts_), Error);
}

TEST_F(HubPull, CommitRevisionWritesNoRef) {
  EXPECT_EQ(pull(kRepo, kCommit, {}, opts_), snapshot());
  EXPECT_FALSE(exists(repo_dir() + "/refs"));
}

TEST_F(HubPull, NotFoundErrors) {
  std::string err = error_of([&] { pull("org/missing", "main", {}, opts_); });
  EXPECT_NE(err.find("repository org/missing not found"), std::string::npos) << err;
  err = error_of([&] { pull(kRepo, "v9", {}, opts_); });
  EXPECT_NE(err.find("revision 'v9' not found"), std::string::npos) << err;
  err = error_of([&] { resolve_model("no/such/dir", opts_); });
  EXPECT_NE(err.find("neither an existing folder nor a hub repo id"), std::string::npos) << err;
}

TEST_F(HubPull, ConnectionFailureIsClear) {
  int port;
  {
    MockHub gone;  // learn a port that nothing listens on once it is destroyed
    port = std::stoi(gone.url().substr(gone.url().rfind(':') + 1));
  }
  opts_.endpoint = "http://127.0.0.1:" + std::to_string(port);
  const std::string err = error_of([&] { resolve_model(kRepo, opts_); });
  EXPECT_NE(err.find("cannot reach"), std::string::npos) << err;
  EXPECT_NE(err.find("HF_HUB_OFFLINE"), std::string::npos) << err;
}

TEST_F(HubPull, StalledTransferTimesOut) {
  opts_.read_timeout_s = 1;
  opts_.max_retries = 0;
  hub_.stall_cdn(std::chrono::seconds(20));
  const auto start = std::chrono::steady_clock::now();
  const std::string err = error_of([&] { pull(kRepo, "main", {}, opts_); });
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_NE(err.find("model.safetensors"), std::string::npos) << err;
  EXPECT_FALSE(exists(snapshot() + "/model.safetensors"));
}

TEST_F(HubPull, LocalDirectoryIsReturnedAsIs) {
  const std::string local = std::string(T5G_TEST_DATA) + "/vectors/tiny/model";
  EXPECT_EQ(resolve_model(local, opts_), local);
  EXPECT_EQ(hub_.request_count(), 0u);
}

TEST_F(HubPull, ProgressCallbackCanCancel) {
  struct Cancel {};
  EXPECT_THROW(pull(kRepo, "main", {}, opts_,
                    [](const PullProgress& p) {
                      if (p.file == "model.safetensors" && p.done > 0) throw Cancel{};
                    }),
               Cancel);
  EXPECT_FALSE(exists(snapshot() + "/model.safetensors"));
  expect_checkpoint(pull(kRepo, "main", {}, opts_));
}

}  // namespace
}  // namespace t5g
