#include "common.h"

#include <sys/resource.h>

#include <charconv>
#include <cstdio>

#include "util/error.h"

namespace t5g::cli {

std::vector<int32_t> parse_id_list(const std::string& text, const std::string& flag) {
  std::vector<int32_t> ids;
  size_t i = 0;
  check(!text.empty(), flag, ": empty id list");
  while (i <= text.size()) {
    size_t j = text.find(',', i);
    if (j == std::string::npos) j = text.size();
    std::string tok = text.substr(i, j - i);
    while (!tok.empty() && tok.front() == ' ') tok.erase(tok.begin());
    while (!tok.empty() && tok.back() == ' ') tok.pop_back();
    int64_t v = 0;
    auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
    check(!tok.empty() && ec == std::errc() && p == tok.data() + tok.size() && v >= 0 && v <= INT32_MAX, flag,
          ": '", tok, "' is not a token id (expected comma-separated non-negative integers)");
    ids.push_back(static_cast<int32_t>(v));
    i = j + 1;
  }
  return ids;
}

std::shared_ptr<const Model> open_model(const std::string& path, int threads) {
  LoadOptions o;
  o.threads = threads;
  return Model::load(path, o);
}

void print_json(const nlohmann::ordered_json& j) {
  std::string s = j.dump();
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

uint64_t peak_rss_bytes() {
  struct rusage ru {};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<uint64_t>(ru.ru_maxrss) * 1024;
}

}  // namespace t5g::cli
