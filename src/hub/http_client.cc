#include "hub/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <mutex>

#include "util/error.h"

namespace t5g::hub {
namespace {

// Error bodies are only kept to build messages; listings of large repos can be a few MB.
constexpr size_t kMaxBodyBytes = 64u << 20;

struct Transfer {
  CURL* curl = nullptr;
  HttpResponse resp;
  const HttpClient::Sink* sink = nullptr;
  bool status_known = false;
  bool to_sink = false;
  std::exception_ptr error;  // thrown inside a callback; rethrown after curl returns
  bool body_too_large = false;
};

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string line(data, size * count);
  if (line.rfind("HTTP/", 0) == 0) {
    t->resp.headers.clear();  // a new response (e.g. after a proxy's CONNECT): forget the previous headers
    return size * count;
  }
  const size_t colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = trim(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    t->resp.headers[name] = trim(line.substr(colon + 1));
  }
  return size * count;
}

size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  if (!t->status_known) {
    curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &t->resp.status);
    t->status_known = true;
    t->to_sink = t->sink && *t->sink && t->resp.status >= 200 && t->resp.status < 300;
  }
  if (!t->to_sink) {
    if (t->resp.body.size() + n > kMaxBodyBytes) {
      t->body_too_large = true;
      return 0;
    }
    t->resp.body.append(data, n);
    return n;
  }
  try {
    (*t->sink)(t->resp, data, n);
  } catch (...) {
    t->error = std::current_exception();
    return 0;  // makes curl abort with CURLE_WRITE_ERROR
  }
  return n;
}

bool is_retryable(CURLcode code) {
  switch (code) {
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_COULDNT_CONNECT:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
      return true;
    default:
      return false;
  }
}

}  // namespace

std::string HttpResponse::header(const std::string& lower_name) const {
  const auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

HttpClient::HttpClient(int connect_timeout_s, int read_timeout_s)
    : connect_timeout_s_(connect_timeout_s), read_timeout_s_(read_timeout_s) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  curl_ = curl_easy_init();
  check(curl_ != nullptr, "cannot initialise libcurl");
}

HttpClient::~HttpClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

HttpResponse HttpClient::request(const std::string& method, const std::string& url,
                                 const std::vector<std::string>& headers, const Sink& sink) {
  CURL* curl = static_cast<CURL*>(curl_);
  curl_easy_reset(curl);  // keeps the connection cache
  Transfer t;
  t.curl = curl;
  t.resp.url = url;
  t.sink = &sink;
  char errbuf[CURL_ERROR_SIZE] = {0};

  curl_slist* list = nullptr;
  for (const auto& h : headers) list = curl_slist_append(list, h.c_str());

  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  if (method == "HEAD")
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  else
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "t5gemma.cpp/0.1 (libcurl)");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, static_cast<long>(connect_timeout_s_));
  // "Read timeout": fail when less than 1 byte/s arrives for read_timeout_s (covers waiting for headers too).
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, static_cast<long>(read_timeout_s_));
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &t);

  const CURLcode code = curl_easy_perform(curl);
  curl_slist_free_all(list);
  if (t.error) std::rethrow_exception(t.error);
  if (t.body_too_large) fail("the response from ", url, " is larger than ", kMaxBodyBytes >> 20, " MB");
  if (code != CURLE_OK) {
    std::string detail = errbuf[0] ? std::string(errbuf) : std::string(curl_easy_strerror(code));
    if (code == CURLE_OPERATION_TIMEDOUT) detail = "timed out: " + detail;
    throw HttpTransportError(detail, static_cast<int>(code), is_retryable(code));
  }
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &t.resp.status);
  if (t.resp.status >= 300 && t.resp.status < 400) {
    char* location = nullptr;
    if (curl_easy_getinfo(curl, CURLINFO_REDIRECT_URL, &location) == CURLE_OK && location)
      t.resp.redirect_url = location;
  }
  return t.resp;
}

}  // namespace t5g::hub

