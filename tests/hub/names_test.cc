#include "hub/names.h"

#include <gtest/gtest.h>

#include "hub/hub.h"
#include "hub/hub_api.h"
#include "util/error.h"

namespace t5g {
namespace {

TEST(HubNames, RepoIdRecognition) {
  EXPECT_TRUE(looks_like_repo_id("google/t5gemma-2-270m-270m"));
  EXPECT_TRUE(looks_like_repo_id("google/t5gemma-2-270m-270m@main"));
  EXPECT_TRUE(looks_like_repo_id("org/name@refs/pr/1"));
  EXPECT_TRUE(looks_like_repo_id("a_b.c/d-e.f@0123456789abcdef0123456789abcdef01234567"));
  EXPECT_FALSE(looks_like_repo_id("name"));              // a bare name is a missing folder, not a repo
  EXPECT_FALSE(looks_like_repo_id("./models/x"));
  EXPECT_FALSE(looks_like_repo_id("/abs/path"));
  EXPECT_FALSE(looks_like_repo_id("a/b/c"));
  EXPECT_FALSE(looks_like_repo_id("org/na--me"));
  EXPECT_FALSE(looks_like_repo_id("org/na..me"));
  EXPECT_FALSE(looks_like_repo_id("org/-name"));
  EXPECT_FALSE(looks_like_repo_id("org/name.git"));
  EXPECT_FALSE(looks_like_repo_id("org/name@"));
  EXPECT_FALSE(looks_like_repo_id("org/name@../../x"));
  EXPECT_FALSE(looks_like_repo_id("org/na me"));
  EXPECT_FALSE(looks_like_repo_id(""));
}

TEST(HubNames, ParseRepoSpec) {
  RepoSpec s = parse_repo_spec("org/name");
  EXPECT_EQ(s.repo, "org/name");
  EXPECT_EQ(s.revision, "main");
  s = parse_repo_spec("org/name@v1.0");
  EXPECT_EQ(s.repo, "org/name");
  EXPECT_EQ(s.revision, "v1.0");
  EXPECT_THROW(parse_repo_spec("org"), Error);
  EXPECT_THROW(parse_repo_spec("org/name@a/../b"), Error);
}

TEST(HubNames, UnsafeNamesAreRejected) {
  EXPECT_NO_THROW(hub::check_repo_filename("model.safetensors"));
  EXPECT_NO_THROW(hub::check_repo_filename("sub/dir/file.json"));
  for (const char* bad : {"", "/etc/passwd", "../x", "a/../b", "a//b", "a/./b", "a\\b", "dir/"})
    EXPECT_THROW(hub::check_repo_filename(bad), Error) << bad;
  EXPECT_NO_THROW(hub::check_etag("582858c45fa1cb8d26b81e18cb0126cb3929a6b5717f819debe33df82ba3e077", "f"));
  for (const char* bad : {"", "..", "a/b", ".hidden", "x y"}) EXPECT_THROW(hub::check_etag(bad, "f"), Error) << bad;
}

TEST(HubNames, CacheFolderAndUrls) {
  EXPECT_EQ(hub::repo_folder_name("google/t5gemma-2"), "models--google--t5gemma-2");
  EXPECT_EQ(hub::url_encode("refs/pr/1", false), "refs%2Fpr%2F1");
  EXPECT_EQ(hub::url_encode("sub dir/a+b.json", true), "sub%20dir/a%2Bb.json");
  EXPECT_TRUE(hub::is_commit_hash("0123456789abcdef0123456789abcdef01234567"));
  EXPECT_FALSE(hub::is_commit_hash("0123456789ABCDEF0123456789abcdef01234567"));
  EXPECT_FALSE(hub::is_commit_hash("main"));
}

TEST(HubNames, OriginsAndEtags) {
  EXPECT_EQ(hub::url_origin("https://huggingface.co/a/b"), "https://huggingface.co:443");
  EXPECT_EQ(hub::url_origin("HTTPS://HuggingFace.co:443"), "https://huggingface.co:443");
  EXPECT_EQ(hub::url_origin("http://127.0.0.1:8080/x?y"), "http://127.0.0.1:8080");
  EXPECT_EQ(hub::url_origin("http://user:pw@host/x"), "http://host:80");
  EXPECT_NE(hub::url_origin("https://cdn-lfs.huggingface.co/x"), hub::url_origin("https://huggingface.co/x"));
  EXPECT_NE(hub::url_origin("http://127.0.0.1:1/x"), hub::url_origin("http://127.0.0.1:2/x"));
  EXPECT_EQ(hub::url_origin("file:///etc/passwd"), "");
  EXPECT_EQ(hub::normalize_etag("\"abc\""), "abc");
  EXPECT_EQ(hub::normalize_etag("W/\"abc\""), "abc");
  EXPECT_EQ(hub::normalize_etag("abc"), "abc");
}

}  // namespace
}  // namespace t5g
