// SPDX-License-Identifier: Apache-2.0
#include "s3/client.h"

#ifdef AURUM_HAVE_CURL
#include <curl/curl.h>
#endif

namespace aurum::s3 {

#ifdef AURUM_HAVE_CURL
namespace {

constexpr size_t kMaxBody = 64u << 20;

struct CurlGlobal {
  // curl_global_init is not thread-safe; a function-local static runs it exactly once.
  CurlGlobal() { curl_global_init(CURL_GLOBAL_DEFAULT); }
};

size_t append_body(char* data, size_t size, size_t n, void* user) {
  auto* body = static_cast<std::string*>(user);
  if (body->size() + size * n > kMaxBody) return 0;  // makes curl fail with CURLE_WRITE_ERROR
  body->append(data, size * n);
  return size * n;
}

int check_cancel(void* cancel, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(cancel)->load() ? 1 : 0;  // non-zero aborts
}

class CurlTransport final : public HttpTransport {
 public:
  explicit CurlTransport(const std::atomic<bool>& cancel) : cancel_(cancel) {
    static CurlGlobal global;
    handle_ = curl_easy_init();
    if (!handle_) throw std::runtime_error("curl_easy_init failed");
  }
  ~CurlTransport() override { curl_easy_cleanup(handle_); }
  CurlTransport(const CurlTransport&) = delete;
  CurlTransport& operator=(const CurlTransport&) = delete;

  HttpResponse get(const std::string& url, const std::vector<std::string>& headers,
                   std::chrono::milliseconds timeout) override {
    HttpResponse resp;
    curl_slist* list = nullptr;
    for (const auto& h : headers) list = curl_slist_append(list, h.c_str());
    std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> guard(list, &curl_slist_free_all);
    char errbuf[CURL_ERROR_SIZE] = {0};

    curl_easy_reset(handle_);
    curl_easy_setopt(handle_, CURLOPT_URL, url.c_str());
    curl_easy_setopt(handle_, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(handle_, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(handle_, CURLOPT_NOSIGNAL, 1L);  // threads: no SIGALRM for DNS timeouts
    curl_easy_setopt(handle_, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
    curl_easy_setopt(handle_, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(timeout.count()));
    curl_easy_setopt(handle_, CURLOPT_FOLLOWLOCATION, 0L);  // a redirect means a wrong region/URL
    curl_easy_setopt(handle_, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(handle_, CURLOPT_WRITEFUNCTION, &append_body);
    curl_easy_setopt(handle_, CURLOPT_WRITEDATA, &resp.body);
    curl_easy_setopt(handle_, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(handle_, CURLOPT_USERAGENT, "aurum/" AURUM_VERSION);
    curl_easy_setopt(handle_, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(handle_, CURLOPT_XFERINFOFUNCTION, &check_cancel);
    curl_easy_setopt(handle_, CURLOPT_XFERINFODATA, const_cast<std::atomic<bool>*>(&cancel_));

    const CURLcode rc = curl_easy_perform(handle_);
    if (rc != CURLE_OK) {
      const std::string what = "GET " + url + ": " + (errbuf[0] ? errbuf : curl_easy_strerror(rc));
      switch (rc) {
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
          throw ScrapeError(FailureReason::kUnreachable, what);
        case CURLE_OPERATION_TIMEDOUT:
          throw ScrapeError(FailureReason::kTimeout, what);
        default:
          throw ScrapeError(FailureReason::kTransport, what);
      }
    }
    curl_easy_getinfo(handle_, CURLINFO_RESPONSE_CODE, &resp.status);
    return resp;
  }

 private:
  const std::atomic<bool>& cancel_;
  CURL* handle_ = nullptr;
};

}  // namespace

std::unique_ptr<HttpTransport> make_curl_transport(const std::atomic<bool>& cancel) {
  return std::make_unique<CurlTransport>(cancel);
}

#else

std::unique_ptr<HttpTransport> make_curl_transport(const std::atomic<bool>&) {
  throw std::runtime_error("aurum was built without libcurl: the S3 collector is unavailable");
}

#endif

}  // namespace aurum::s3
