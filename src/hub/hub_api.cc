#include "hub/hub_api.h"

#include <algorithm>
#include <cctype>
#include <sstream>

#include <nlohmann/json.hpp>

#include "hub/names.h"
#include "util/error.h"

namespace t5g::hub {
namespace {

constexpr int kMaxRedirects = 10;

bool is_redirect(long status) { return status == 301 || status == 302 || status == 303 || status == 307 || status == 308; }

// A Location without scheme and host: the hub uses these for renamed repos and for its own resolve cache.
bool is_relative_location(const std::string& location) {
  return location.find("://") == std::string::npos && location.rfind("//", 0) != 0;
}

int64_t parse_size(const std::string& s) {
  if (s.empty() || s.size() > 18) return -1;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v;
}

std::string hub_message(const HttpResponse& r) {
  std::string msg = r.header("x-error-message");
  if (msg.empty() && !r.body.empty()) {
    // The hub's JSON errors look like {"error": "..."}; anything else is not worth quoting.
    try {
      const auto j = nlohmann::json::parse(r.body);
      if (j.is_object() && j.contains("error") && j["error"].is_string()) msg = j["error"].get<std::string>();
    } catch (const std::exception&) {
    }
  }
  if (msg.size() > 300) msg = msg.substr(0, 300) + "...";
  while (!msg.empty() && (msg.back() == '.' || msg.back() == ' ')) msg.pop_back();  // we add our own punctuation
  return msg.empty() ? std::string() : ": " + msg;
}

}  // namespace

std::string url_origin(const std::string& url) {
  const size_t sep = url.find("://");
  if (sep == std::string::npos) return "";
  std::string scheme = url.substr(0, sep);
  std::transform(scheme.begin(), scheme.end(), scheme.begin(), [](unsigned char c) { return std::tolower(c); });
  if (scheme != "http" && scheme != "https") return "";
  std::string authority = url.substr(sep + 3, url.find_first_of("/?#", sep + 3) - (sep + 3));
  if (const size_t at = authority.rfind('@'); at != std::string::npos) authority = authority.substr(at + 1);
  std::transform(authority.begin(), authority.end(), authority.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  const size_t bracket = authority.rfind(']');  // IPv6 literal: the port colon comes after it
  const size_t colon = authority.rfind(':');
  const bool has_port = colon != std::string::npos && (bracket == std::string::npos || colon > bracket);
  if (!has_port) authority += scheme == "https" ? ":443" : ":80";
  return scheme + "://" + authority;
}

std::string normalize_etag(const std::string& etag) {
  std::string e = etag;
  if (e.rfind("W/", 0) == 0) e = e.substr(2);
  if (e.size() >= 2 && e.front() == '"' && e.back() == '"') e = e.substr(1, e.size() - 2);
  return e;
}

HubSession::HubSession(const HubOptions& opts, const std::string& repo)
    : opts_(opts), repo_(repo), origin_(url_origin(opts.endpoint)), http_(opts.connect_timeout_s, opts.read_timeout_s) {
  check(!origin_.empty(), "invalid hub endpoint '", opts.endpoint, "' (HF_ENDPOINT): expected http(s)://host[:port]");
  // The token goes into a header line: a stray newline would let it inject others.
  for (char c : opts.token)
    check(static_cast<unsigned char>(c) >= 0x21 && c != 0x7f,
          "the hub token (HF_TOKEN or the token file) contains spaces or control characters");
  while (!opts_.endpoint.empty() && opts_.endpoint.back() == '/') opts_.endpoint.pop_back();
}

std::vector<std::string> HubSession::headers_for(const std::string& url) const {
  // Compressed bodies would make Content-Length differ from the file size.
  std::vector<std::string> h = {"Accept-Encoding: identity"};
  // Signed CDN URLs need no token, and a token must never reach a host other than the hub itself.
  if (!opts_.token.empty() && url_origin(url) == origin_) h.push_back("Authorization: Bearer " + opts_.token);
  return h;
}

HttpResponse HubSession::send(const std::string& method, const std::string& url,
                              const std::vector<std::string>& headers, const HttpClient::Sink& sink) {
  try {
    return http_.request(method, url, headers, sink);
  } catch (const HttpTransportError& e) {
    fail_transport(e, url);
  }
}

RepoListing HubSession::list(const std::string& revision) {
  const std::string url =
      opts_.endpoint + "/api/models/" + repo_ + "/revision/" + url_encode(revision, false) + "?blobs=true";
  HttpResponse r = send("GET", url, headers_for(url));
  if (r.status < 200 || r.status >= 300) fail_http(r, revision, "");

  RepoListing out;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(r.body);
  } catch (const std::exception& e) {
    fail("the listing of ", repo_, "@", revision, " from ", opts_.endpoint, " is not JSON (", e.what(),
         "); is HF_ENDPOINT a Hugging Face hub?");
  }
  check(j.is_object() && j.contains("sha") && j["sha"].is_string() && j.contains("siblings") &&
            j["siblings"].is_array(),
        "the listing of ", repo_, "@", revision, " from ", opts_.endpoint,
        " lacks \"sha\" or \"siblings\"; is HF_ENDPOINT a Hugging Face hub?");
  out.commit = j["sha"].get<std::string>();
  check(is_commit_hash(out.commit), "the hub returned an invalid commit hash '", out.commit, "' for ", repo_, "@",
        revision);
  for (const auto& s : j["siblings"]) {
    if (!s.is_object() || !s.contains("rfilename") || !s["rfilename"].is_string()) continue;
    RepoFile f;
    f.name = s["rfilename"].get<std::string>();
    if (s.contains("size") && s["size"].is_number_integer()) f.size = s["size"].get<int64_t>();
    if (s.contains("lfs") && s["lfs"].is_object()) {
      const auto& lfs = s["lfs"];
      if (lfs.contains("sha256") && lfs["sha256"].is_string()) f.lfs_sha256 = lfs["sha256"].get<std::string>();
      if (lfs.contains("size") && lfs["size"].is_number_integer()) f.size = lfs["size"].get<int64_t>();
    }
    out.files.push_back(std::move(f));
  }
  return out;
}

FileMetadata HubSession::head(const std::string& revision, const std::string& filename) {
  std::string url = opts_.endpoint + "/" + repo_ + "/resolve/" + url_encode(revision, false) + "/" +
                    url_encode(filename, true);
  HttpResponse r;
  // Follow relative redirects only (renamed repo, the hub's resolve cache); an absolute one points at the CDN
  // and its X-Linked-* headers are what we came for.
  for (int hop = 0;; ++hop) {
    r = send("HEAD", url, headers_for(url));
    if (!is_redirect(r.status) || !is_relative_location(r.header("location")) || r.redirect_url.empty()) break;
    check(hop < kMaxRedirects, "too many redirects while resolving ", repo_, "/", filename);
    url = r.redirect_url;
  }
  if ((r.status < 200 || r.status >= 300) && !is_redirect(r.status)) fail_http(r, revision, filename);

  FileMetadata m;
  m.commit = r.header("x-repo-commit");
  std::string etag = r.header("x-linked-etag");
  if (etag.empty()) etag = r.header("etag");
  m.etag = normalize_etag(etag);
  if (is_redirect(r.status)) {
    check(!r.redirect_url.empty(), "the hub redirected ", filename, " without a usable Location");
    m.location = r.redirect_url;
  } else {
    m.location = url;
  }
  m.size = parse_size(r.header("x-linked-size"));
  if (m.size < 0) m.size = parse_size(r.header("content-length"));

  const std::string where = repo_ + "/" + filename + " (" + url + ")";
  check(!m.commit.empty(), "no X-Repo-Commit header for ", where,
        ": the server does not look like a Hugging Face hub; check HF_ENDPOINT and proxy settings");
  check(is_commit_hash(m.commit), "invalid X-Repo-Commit '", m.commit, "' for ", where);
  check(!m.etag.empty(), "no ETag for ", where, ": cannot store it in the cache reproducibly");
  check(m.size >= 0, "no size (X-Linked-Size / Content-Length) for ", where);
  check_etag(m.etag, filename);
  return m;
}

HttpResponse HubSession::get(const std::string& url, int64_t offset, const HttpClient::Sink& sink) {
  std::string current = url;
  for (int hop = 0;; ++hop) {
    std::vector<std::string> h = headers_for(current);
    if (offset > 0) h.push_back("Range: bytes=" + std::to_string(offset) + "-");
    HttpResponse r = http_.request("GET", current, h, sink);  // transport errors go to the caller: it resumes
    if (!is_redirect(r.status)) return r;
    check(!r.redirect_url.empty(), "redirect without a usable Location from ", current);
    check(hop < kMaxRedirects, "too many redirects downloading ", url);
    current = r.redirect_url;
  }
}

void HubSession::fail_http(const HttpResponse& r, const std::string& revision, const std::string& filename) const {
  const std::string code = r.header("x-error-code");
  const std::string msg = hub_message(r);
  const std::string page = opts_.endpoint + "/" + repo_;
  const std::string what = filename.empty() ? repo_ + "@" + revision : repo_ + "/" + filename + "@" + revision;

  if (code == "RevisionNotFound") fail("revision '", revision, "' not found in ", repo_, " (HTTP ", r.status, ")", msg);
  if (code == "EntryNotFound") fail("file '", filename, "' not found in ", repo_, "@", revision, msg);
  if (r.status == 401 || r.status == 403 || code == "GatedRepo") {
    const std::string subject = filename.empty() ? repo_ : repo_ + " (" + filename + ")";
    const std::string kind = code == "GatedRepo" ? repo_ + " is a gated model"
                                                 : "The repo may be gated or private (or may not exist)";
    const std::string sent = opts_.token.empty() ? "No token was sent. "
                                                 : "The token that was sent is invalid or has no access to it. ";
    fail("access to ", subject, " denied (HTTP ", r.status, msg, "). ", kind, ". ", sent, "To get access, open ",
         page, " while logged in and accept its license (approval can take a moment), then create a read token at ",
         opts_.endpoint, "/settings/tokens and set HF_TOKEN=<token> (or run `huggingface-cli login`).");
  }
  if (r.status == 404 || code == "RepoNotFound") {
    if (!filename.empty() && code != "RepoNotFound")
      fail("file '", filename, "' not found in ", repo_, "@", revision, " (HTTP 404)", msg);
    fail("repository ", repo_, " not found on ", opts_.endpoint, " (HTTP ", r.status, ")", msg,
         ". Check the name at ", page, "; private repos also need HF_TOKEN.");
  }
  if (r.status == 429) fail("the hub is rate-limiting requests (HTTP 429) for ", what, msg, "; wait and try again");
  if (r.status >= 500) fail("the hub failed (HTTP ", r.status, ") for ", what, msg, "; try again later");
  fail("unexpected HTTP ", r.status, " for ", what, " from ", r.url, msg);
}

void HubSession::fail_transport(const HttpTransportError& e, const std::string& url) const {
  std::ostringstream os;
  os << "cannot reach " << url_origin(url) << " (" << e.what() << ") while fetching " << url
     << ". Check the network connection and proxy settings (HTTPS_PROXY), or set HF_HUB_OFFLINE=1 to use only "
        "the local cache.";
  throw HubUnreachable(os.str());
}

}  // namespace t5g::hub
