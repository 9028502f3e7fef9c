#include "mock_hub.h"

#include <nlohmann/json.hpp>

#include "hub/sha256.h"

namespace t5g::testing {
namespace {

void set_error(httplib::Response& res, int status, const std::string& code, const std::string& message) {
  res.status = status;
  res.set_header("X-Error-Code", code);
  res.set_header("X-Error-Message", message);
  res.set_content(nlohmann::json{{"error", message}}.dump(), "application/json");
}

// "\"" + s + "\"" spelled out: GCC 12 warns (-Wrestrict, a false positive) on the operator+ chain.
std::string quoted(const std::string& s) {
  std::string q;
  q.reserve(s.size() + 2);
  q += '"';
  q += s;
  q += '"';
  return q;
}

}  // namespace

std::string MockHub::sha256_hex(const std::string& data) {
  Sha256 sha;
  sha.update(data.data(), data.size());
  return sha.hex_digest();
}

std::string MockHub::git_oid(const std::string& data) {
  return sha256_hex("blob " + std::to_string(data.size()) + std::string(1, '\0') + data).substr(0, 40);
}

MockHub::MockHub() {
  server_.set_keep_alive_timeout(1);
  server_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    log(req);
    if (request_count() > static_cast<size_t>(kMaxRequests)) {
      {
        std::lock_guard<std::mutex> lock(stop_mu_);
        stopping_ = true;
      }
      stop_cv_.notify_all();
      res.status = 503;
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server_.Get(R"(/api/models/([^/]+/[^/]+)/revision/(.+))",
              [this](const httplib::Request& req, httplib::Response& res) { handle_listing(req, res); });
  server_.Get(R"(/([^/]+/[^/]+)/resolve/([^/]+)/(.+))",
              [this](const httplib::Request& req, httplib::Response& res) { handle_resolve(req, res); });
  server_.Get(R"(/cdn/([0-9a-f]{64}))",
              [this](const httplib::Request& req, httplib::Response& res) { handle_cdn(req, res); });

  port_ = server_.bind_to_any_port("127.0.0.1");
  if (port_ <= 0) throw std::runtime_error("mock hub: cannot bind a port on 127.0.0.1");
  cdn_base_ = url();
  thread_ = std::thread([this] { server_.listen_after_bind(); });
  // stop() is a no-op until the accept loop runs: without this wait a MockHub destroyed right away (or the
  // watchdog) could "stop" it too early and leave the loop accepting forever.
  for (int i = 0; i < 5000 && !server_.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  watchdog_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(stop_mu_);
    stop_cv_.wait_for(lock, kMaxLifetime, [this] { return stopping_; });
    lock.unlock();
    server_.stop();
  });
}

MockHub::~MockHub() {
  {
    std::lock_guard<std::mutex> lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  watchdog_.join();
  thread_.join();
}

std::string MockHub::url() const { return "http://127.0.0.1:" + std::to_string(port_); }

void MockHub::add_repo(const std::string& id, MockRepo repo) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, f] : repo.files)
    if (f.lfs) blobs_[sha256_hex(f.content)] = f.content;
  repos_[id] = std::move(repo);
}

void MockHub::set_cdn_base(const std::string& base) {
  std::lock_guard<std::mutex> lock(mu_);
  cdn_base_ = base;
}

void MockHub::cut_cdn_downloads(int64_t cut_at, int times) {
  std::lock_guard<std::mutex> lock(mu_);
  cut_at_ = cut_at;
  cut_times_ = times;
}

void MockHub::corrupt_cdn(bool on) {
  std::lock_guard<std::mutex> lock(mu_);
  corrupt_ = on;
}

void MockHub::stall_cdn(std::chrono::milliseconds delay) {
  std::lock_guard<std::mutex> lock(mu_);
  stall_ = delay;
}

std::vector<LoggedRequest> MockHub::requests() const {
  std::lock_guard<std::mutex> lock(mu_);
  return log_;
}

size_t MockHub::request_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return log_.size();
}

void MockHub::clear_log() {
  std::lock_guard<std::mutex> lock(mu_);
  log_.clear();
}

void MockHub::log(const httplib::Request& req) {
  std::lock_guard<std::mutex> lock(mu_);
  log_.push_back({req.method, req.path, req.get_header_value("Range"), req.get_header_value("Authorization")});
}

bool MockHub::authorized(const MockRepo& repo, const httplib::Request& req, httplib::Response& res) const {
  if (!repo.gated) return true;
  const std::string auth = req.get_header_value("Authorization");
  if (auth == std::string("Bearer ") + kToken) return true;
  if (auth.empty())
    set_error(res, 401, "GatedRepo", "Access to this model is restricted. You must be authenticated to access it.");
  else
    set_error(res, 403, "GatedRepo", "Access to this model is restricted and you are not in the authorized list.");
  return false;
}

void MockHub::handle_listing(const httplib::Request& req, httplib::Response& res) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = repos_.find(req.matches[1]);
  if (it == repos_.end()) return set_error(res, 404, "RepoNotFound", "Repository not found");
  const MockRepo& repo = it->second;
  if (req.matches[2] != "main" && req.matches[2] != repo.commit)
    return set_error(res, 404, "RevisionNotFound", "Invalid rev id: " + req.matches[2].str());
  // Like the real hub, a gated repo's listing is public; only file contents need access.
  const bool blobs = req.get_param_value("blobs") == "true";
  nlohmann::json siblings = nlohmann::json::array();
  for (const auto& [name, f] : repo.files) {
    nlohmann::json s = {{"rfilename", name}};
    if (blobs) {
      s["size"] = f.content.size();
      s["blobId"] = git_oid(f.lfs ? "pointer:" + name : f.content);
      if (f.lfs)
        s["lfs"] = {{"sha256", sha256_hex(f.content)}, {"size", f.content.size()}, {"pointerSize", 134}};
    }
    siblings.push_back(s);
  }
  const nlohmann::json body = {{"id", it->first}, {"sha", repo.commit}, {"siblings", siblings}, {"gated", repo.gated}};
  res.set_content(body.dump(), "application/json");
}

void MockHub::handle_resolve(const httplib::Request& req, httplib::Response& res) {
  std::lock_guard<std::mutex> lock(mu_);
  const auto it = repos_.find(req.matches[1]);
  if (it == repos_.end()) return set_error(res, 404, "RepoNotFound", "Repository not found");
  const MockRepo& repo = it->second;
  if (req.matches[2] != "main" && req.matches[2] != repo.commit)
    return set_error(res, 404, "RevisionNotFound", "Invalid rev id: " + req.matches[2].str());
  if (!authorized(repo, req, res)) return;
  res.set_header("X-Repo-Commit", repo.commit);
  const auto f = repo.files.find(req.matches[3]);
  if (f == repo.files.end()) return set_error(res, 404, "EntryNotFound", "Entry not found");
  if (f->second.lfs) {
    const std::string sha = sha256_hex(f->second.content);
    res.status = 302;
    res.set_header("Location", cdn_base_ + "/cdn/" + sha);
    res.set_header("ETag", quoted(git_oid("pointer:" + f->first)));
    res.set_header("X-Linked-Etag", quoted(sha));
    res.set_header("X-Linked-Size", std::to_string(f->second.content.size()));
    return;
  }
  res.set_header("ETag", quoted(git_oid(f->second.content)));
  res.set_content(f->second.content, "application/octet-stream");  // HEAD: headers only, same Content-Length
}

void MockHub::handle_cdn(const httplib::Request& req, httplib::Response& res) {
  std::string content;
  int64_t cut = -1;
  std::chrono::milliseconds stall{0};
  {
    std::lock_guard<std::mutex> lock(mu_);
    const auto it = blobs_.find(req.matches[1]);
    if (it == blobs_.end()) return set_error(res, 404, "EntryNotFound", "No such blob");
    content = it->second;
    if (cut_times_ > 0) {
      --cut_times_;
      cut = cut_at_;
    }
    if (corrupt_ && !content.empty()) content[content.size() / 2] ^= 0x5a;
    stall = stall_;
  }
  // httplib applies the request's Range to the offsets it asks the provider for and answers 206.
  res.set_content_provider(
      content.size(), "application/octet-stream",
      [this, content, cut, stall](size_t offset, size_t length, httplib::DataSink& sink) {
        if (stall.count() > 0) {
          std::unique_lock<std::mutex> lock(stop_mu_);
          stop_cv_.wait_for(lock, stall, [this] { return stopping_; });
          return false;  // a stalled transfer never delivers
        }
        size_t n = std::min<size_t>(length, 64 << 10);
        if (cut >= 0) {
          if (static_cast<int64_t>(offset) >= cut) return false;  // drop the connection mid-file
          n = std::min<size_t>(n, static_cast<size_t>(cut) - offset);
        }
        return sink.write(content.data() + offset, n);
      });
}

}  // namespace t5g::testing
