// An in-process stand-in for huggingface.co on 127.0.0.1 (ephemeral port), speaking the hub's URL scheme and
// headers: the revision listing, HEAD/GET on resolve URLs (ETag, X-Repo-Commit, and for LFS files a 302 to a
// "CDN" path with X-Linked-Etag / X-Linked-Size), gated repos, and injectable faults. Every request is logged so
// tests can assert what went over the wire. The server stops on destruction, after kMaxRequests requests, or
// after kMaxLifetime, whichever comes first.
#pragma once
#include <httplib.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace t5g::testing {

struct MockFile {
  std::string content;
  bool lfs = false;  // served through a redirect to the CDN path, etag = sha256
};

struct MockRepo {
  std::string commit;                     // 40 hex
  std::map<std::string, MockFile> files;  // rfilename -> file
  bool gated = false;                     // resolve needs "Authorization: Bearer <MockHub::token>"
};

struct LoggedRequest {
  std::string method, path, range, authorization;
};

class MockHub {
 public:
  static constexpr int kMaxRequests = 500;
  static constexpr std::chrono::seconds kMaxLifetime{60};
  static constexpr const char* kToken = "hf_mock_token";

  MockHub();
  ~MockHub();
  MockHub(const MockHub&) = delete;
  MockHub& operator=(const MockHub&) = delete;

  std::string url() const;  // http://127.0.0.1:<port>
  void add_repo(const std::string& id, MockRepo repo);

  // LFS redirects point at <cdn_base>/cdn/<sha256>; default is this server. Another MockHub's url() makes the
  // CDN a different host (to check the token is not sent there).
  void set_cdn_base(const std::string& base);
  // The next `times` CDN downloads send only up to byte `cut_at` of the file and then drop the connection.
  void cut_cdn_downloads(int64_t cut_at, int times = 1);
  // CDN downloads serve the right size with a flipped byte.
  void corrupt_cdn(bool on);

  std::vector<LoggedRequest> requests() const;
  size_t request_count() const;
  void clear_log();

  // CDN downloads wait this long before the first byte (interruptible by shutdown): exercises read timeouts.
  void stall_cdn(std::chrono::milliseconds delay);

  static std::string sha256_hex(const std::string& data);
  // A 40-hex id shaped like the git blob sha1 the hub uses as ETag of regular files. Not the real git hash: the
  // client treats it as an opaque name, so only its shape matters.
  static std::string git_oid(const std::string& data);

 private:
  void log(const httplib::Request& req);
  void handle_listing(const httplib::Request& req, httplib::Response& res);
  void handle_resolve(const httplib::Request& req, httplib::Response& res);
  void handle_cdn(const httplib::Request& req, httplib::Response& res);
  bool authorized(const MockRepo& repo, const httplib::Request& req, httplib::Response& res) const;

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::thread watchdog_;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;

  mutable std::mutex mu_;
  std::map<std::string, MockRepo> repos_;
  std::map<std::string, std::string> blobs_;  // sha256 -> content (the CDN's store)
  std::vector<LoggedRequest> log_;
  std::string cdn_base_;
  int64_t cut_at_ = -1;
  int cut_times_ = 0;
  bool corrupt_ = false;
  std::chrono::milliseconds stall_{0};
};

}  // namespace t5g::testing
