// Minimal blocking HTTP(S) client over libcurl. It performs exactly one request per call and never follows
// redirects itself: the hub layer decides hop by hop where to go and whether the token may be sent there.
#pragma once
#include <cstddef>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "t5g/error.h"

namespace t5g::hub {

struct HttpResponse {
  long status = 0;
  std::string url;                             // the URL that was requested
  std::map<std::string, std::string> headers;  // lower-case names; a repeated header keeps its last value
  std::string body;                            // the body, unless a sink took it (always kept for non-2xx)
  std::string redirect_url;                    // absolute form of Location, when the status is 3xx

  std::string header(const std::string& lower_name) const;  // "" when absent
};

// No HTTP answer at all (DNS, refused connection, TLS, timeout) or a body cut short. `retryable` marks the
// kinds a later attempt may get past (timeouts, resets, truncated transfers).
class HttpTransportError : public Error {
 public:
  HttpTransportError(const std::string& what, int code, bool can_retry)
      : Error(what), curl_code(code), retryable(can_retry) {}
  int curl_code;
  bool retryable;
};

class HttpClient {
 public:
  // Receives the body of a 2xx response as it arrives; `head` already holds the status and headers.
  // Throwing aborts the transfer and the exception reaches the caller of request().
  using Sink = std::function<void(const HttpResponse& head, const char* data, size_t size)>;

  HttpClient(int connect_timeout_s, int read_timeout_s);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // One request (method "GET" or "HEAD") with extra "Name: value" headers. Returns whatever status the server
  // answered; throws HttpTransportError when there is no complete answer.
  HttpResponse request(const std::string& method, const std::string& url, const std::vector<std::string>& headers,
                       const Sink& sink = {});

 private:
  void* curl_ = nullptr;  // CURL*, reused so connections stay open across the requests of one pull
  int connect_timeout_s_;
  int read_timeout_s_;
};

}  // namespace t5g::hub
