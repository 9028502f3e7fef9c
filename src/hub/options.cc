// HubOptions::from_env: the HF_* environment variables, read with huggingface_hub's names and precedence so a
// machine set up for the Python tools (cache location, `huggingface-cli login` token) works unchanged.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "hub/hub.h"
#include "util/error.h"

namespace t5g {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string expand_user(const std::string& path) {
  if (path == "~" || path.rfind("~/", 0) == 0) return env("HOME") + path.substr(1);
  return path;
}

std::string trim(std::string s) {
  auto space = [](unsigned char c) { return std::isspace(c) != 0; };
  s.erase(s.begin(), std::find_if_not(s.begin(), s.end(), space));
  s.erase(std::find_if_not(s.rbegin(), s.rend(), space).base(), s.end());
  return s;
}

bool env_true(const char* name) {
  std::string v = env(name);
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::toupper(c); });
  return v == "1" || v == "ON" || v == "YES" || v == "TRUE";
}

int env_seconds(const char* name, int fallback) {
  const std::string v = trim(env(name));
  if (v.empty()) return fallback;
  try {
    size_t used = 0;
    const double s = std::stod(v, &used);
    if (used == v.size() && s > 0) return std::max(1, static_cast<int>(s + 0.5));
  } catch (const std::exception&) {
  }
  fail(name, "='", v, "' is not a positive number of seconds");
}

// $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface.
std::string hf_home() {
  if (const std::string h = env("HF_HOME"); !h.empty()) return expand_user(h);
  if (const std::string x = env("XDG_CACHE_HOME"); !x.empty()) return expand_user(x) + "/huggingface";
  return env("HOME") + "/.cache/huggingface";
}

}  // namespace

HubOptions HubOptions::from_env() {
  HubOptions o;
  if (std::string e = trim(env("HF_ENDPOINT")); !e.empty()) {
    while (!e.empty() && e.back() == '/') e.pop_back();
    o.endpoint = e;
  }

  if (const std::string c = env("HF_HUB_CACHE"); !c.empty())
    o.cache_dir = expand_user(c);
  else if (const std::string legacy = env("HUGGINGFACE_HUB_CACHE"); !legacy.empty())
    o.cache_dir = expand_user(legacy);
  else
    o.cache_dir = hf_home() + "/hub";

  o.token = trim(env("HF_TOKEN"));
  if (o.token.empty()) o.token = trim(env("HUGGING_FACE_HUB_TOKEN"));
  if (o.token.empty()) {
    std::string path = env("HF_TOKEN_PATH");
    path = path.empty() ? hf_home() + "/token" : expand_user(path);
    std::ifstream in(path);
    if (in) {
      std::stringstream ss;
      ss << in.rdbuf();
      o.token = trim(ss.str());
    }
  }

  o.offline = env_true("HF_HUB_OFFLINE") || env_true("TRANSFORMERS_OFFLINE");
  o.connect_timeout_s = env_seconds("HF_HUB_ETAG_TIMEOUT", o.connect_timeout_s);
  o.read_timeout_s = env_seconds("HF_HUB_DOWNLOAD_TIMEOUT", o.read_timeout_s);
  return o;
}

}  // namespace t5g
