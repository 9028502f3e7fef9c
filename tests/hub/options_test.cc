// HubOptions::from_env reads process-wide variables: each test saves and restores the ones it touches.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>

#include <unistd.h>

#include "hub/hub.h"
#include "util/error.h"

namespace t5g {
namespace {

const char* const kVars[] = {"HF_ENDPOINT", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME",
                             "XDG_CACHE_HOME", "HOME", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN",
                             "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_ETAG_TIMEOUT",
                             "HF_HUB_DOWNLOAD_TIMEOUT"};

class HubOptionsEnv : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : kVars) {
      const char* cur = std::getenv(v);
      saved_[v] = cur ? std::optional<std::string>(cur) : std::nullopt;
      ::unsetenv(v);
    }
    dir_ = std::string(T5G_TEST_TMP) + "/hub_options_" + std::to_string(::getpid());
    std::filesystem::create_directories(dir_);
    ::setenv("HOME", (dir_ + "/home").c_str(), 1);
  }
  void TearDown() override {
    for (const auto& [k, v] : saved_) {
      if (v)
        ::setenv(k.c_str(), v->c_str(), 1);
      else
        ::unsetenv(k.c_str());
    }
    std::filesystem::remove_all(dir_);
  }
  void write(const std::string& path, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path) << text;
  }
  std::map<std::string, std::optional<std::string>> saved_;
  std::string dir_;
};

TEST_F(HubOptionsEnv, Defaults) {
  const HubOptions o = HubOptions::from_env();
  EXPECT_EQ(o.endpoint, "https://huggingface.co");
  EXPECT_EQ(o.cache_dir, dir_ + "/home/.cache/huggingface/hub");
  EXPECT_EQ(o.token, "");
  EXPECT_FALSE(o.offline);
  EXPECT_EQ(o.connect_timeout_s, 10);
}

TEST_F(HubOptionsEnv, CachePrecedence) {
  ::setenv("XDG_CACHE_HOME", (dir_ + "/xdg").c_str(), 1);
  EXPECT_EQ(HubOptions::from_env().cache_dir, dir_ + "/xdg/huggingface/hub");
  ::setenv("HF_HOME", (dir_ + "/hfhome").c_str(), 1);
  EXPECT_EQ(HubOptions::from_env().cache_dir, dir_ + "/hfhome/hub");
  ::setenv("HF_HUB_CACHE", "~/hubcache", 1);
  EXPECT_EQ(HubOptions::from_env().cache_dir, dir_ + "/home/hubcache");
}

TEST_F(HubOptionsEnv, TokenFromEnvOrFile) {
  write(dir_ + "/home/.cache/huggingface/token", "hf_from_default_file\n");
  EXPECT_EQ(HubOptions::from_env().token, "hf_from_default_file");
  ::setenv("HF_HOME", (dir_ + "/hfhome").c_str(), 1);
  EXPECT_EQ(HubOptions::from_env().token, "");  // the token file follows HF_HOME
  write(dir_ + "/hfhome/token", "  hf_from_hf_home  ");
  EXPECT_EQ(HubOptions::from_env().token, "hf_from_hf_home");
  write(dir_ + "/elsewhere/tok", "hf_from_token_path");
  ::setenv("HF_TOKEN_PATH", (dir_ + "/elsewhere/tok").c_str(), 1);
  EXPECT_EQ(HubOptions::from_env().token, "hf_from_token_path");
  ::setenv("HF_TOKEN", "hf_from_env", 1);
  EXPECT_EQ(HubOptions::from_env().token, "hf_from_env");
}

TEST_F(HubOptionsEnv, EndpointOfflineTimeouts) {
  ::setenv("HF_ENDPOINT", "http://mirror.example:8080/", 1);
  ::setenv("HF_HUB_OFFLINE", "1", 1);
  ::setenv("HF_HUB_ETAG_TIMEOUT", "3", 1);
  ::setenv("HF_HUB_DOWNLOAD_TIMEOUT", "30", 1);
  HubOptions o = HubOptions::from_env();
  EXPECT_EQ(o.endpoint, "http://mirror.example:8080");
  EXPECT_TRUE(o.offline);
  EXPECT_EQ(o.connect_timeout_s, 3);
  EXPECT_EQ(o.read_timeout_s, 30);
  ::setenv("HF_HUB_OFFLINE", "0", 1);
  EXPECT_FALSE(HubOptions::from_env().offline);
  ::setenv("HF_HUB_OFFLINE", "yes", 1);
  EXPECT_TRUE(HubOptions::from_env().offline);
  ::setenv("HF_HUB_DOWNLOAD_TIMEOUT", "soon", 1);
  EXPECT_THROW(HubOptions::from_env(), Error);
}

}  // namespace
}  // namespace t5g
