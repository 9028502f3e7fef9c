// The hub's HTTP protocol as huggingface_hub speaks it: the revision listing
// (GET /api/models/{repo}/revision/{rev}), per-file metadata (HEAD /{repo}/resolve/{rev}/{file}: X-Repo-Commit,
// X-Linked-Etag / ETag, X-Linked-Size / Content-Length, Location), downloads that follow redirects to a CDN,
// and the hub's error answers turned into messages that say what to do.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "hub/http_client.h"
#include "hub/hub.h"

namespace t5g::hub {

// The hub could not be reached at all (as opposed to answering with an error): callers may fall back to
// what the cache already has.
class HubUnreachable : public Error {
 public:
  using Error::Error;
};

struct RepoFile {
  std::string name;        // rfilename
  int64_t size = -1;       // bytes, when the listing says
  std::string lfs_sha256;  // set for LFS files: the sha256 of the content
};

struct RepoListing {
  std::string commit;  // 40-hex commit the revision points at
  std::vector<RepoFile> files;
};

struct FileMetadata {
  std::string commit;    // X-Repo-Commit
  std::string etag;      // normalized (no W/, no quotes): git sha1 for regular files, sha256 for LFS files
  std::string location;  // where to GET the content (the resolve URL or a CDN URL)
  int64_t size = -1;     // real content size (X-Linked-Size for LFS files)
};

class HubSession {
 public:
  HubSession(const HubOptions& opts, const std::string& repo);

  RepoListing list(const std::string& revision);
  FileMetadata head(const std::string& revision, const std::string& filename);

  // GETs `url` from byte `offset` on (Range), following redirects; the token goes only to the endpoint's
  // origin, never to a CDN or any other host. The final response is returned whatever its status; the body of
  // a 2xx one went to `sink`.
  HttpResponse get(const std::string& url, int64_t offset, const HttpClient::Sink& sink);

  // Throws the t5g::Error that explains a non-2xx answer about `filename` ("" for the repo itself).
  [[noreturn]] void fail_http(const HttpResponse& r, const std::string& revision, const std::string& filename) const;
  // Throws HubUnreachable for a transport failure while talking to `url`.
  [[noreturn]] void fail_transport(const HttpTransportError& e, const std::string& url) const;

  const HubOptions& options() const { return opts_; }
  const std::string& repo() const { return repo_; }

 private:
  std::vector<std::string> headers_for(const std::string& url) const;
  HttpResponse send(const std::string& method, const std::string& url, const std::vector<std::string>& headers,
                    const HttpClient::Sink& sink = {});

  HubOptions opts_;
  std::string repo_;
  std::string origin_;  // scheme://host:port of the endpoint: the only place the token is sent
  HttpClient http_;
};

// "scheme://host:port" with the scheme and host lower-cased and the default port made explicit; "" when the
// URL is not http(s).
std::string url_origin(const std::string& url);

// Strips a weak-validator prefix and quotes: W/"abc" -> abc.
std::string normalize_etag(const std::string& etag);

}  // namespace t5g::hub
