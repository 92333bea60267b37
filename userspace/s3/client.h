// SPDX-License-Identifier: Apache-2.0
// A minimal S3 client: ListBuckets and paginated ListObjectsV2, signed with SigV4, over an
// injectable HTTP transport (libcurl in the agent, a fake in unit tests).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "s3/config.h"

namespace aurum::s3 {

// Why a scrape failed. The value is the `reason` label of aurum_s3_scrape_errors_total, so the
// set is small and fixed.
enum class FailureReason {
  kUnreachable,    // connection refused, DNS failure, no route
  kTimeout,        // connect or whole-request timeout
  kTransport,      // any other transport failure (TLS, reset mid-body, body too large)
  kAuth,           // HTTP 401/403: bad key id, signature mismatch, access denied, expired token
  kNotFound,       // HTTP 404: no such bucket
  kHttp,           // any other non-200 status
  kBadResponse,    // a 200 whose body is not the document expected
  kNoCredentials,  // neither the config nor the environment gave a key pair
};
const char* reason_label(FailureReason r);

struct ScrapeError : std::runtime_error {
  ScrapeError(FailureReason r, const std::string& what) : std::runtime_error(what), reason(r) {}
  FailureReason reason;
};

struct HttpResponse {
  long status = 0;
  std::string body;
};

class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  // Throws ScrapeError (kUnreachable, kTimeout or kTransport) when no HTTP response arrived.
  virtual HttpResponse get(const std::string& url, const std::vector<std::string>& headers,
                           std::chrono::milliseconds timeout) = 0;
};

// libcurl, one easy handle reused across requests (keeps the connection alive between pages).
// Not thread-safe: one per endpoint thread. Responses larger than 64 MiB are refused. A request
// in flight is abandoned (kTransport) as soon as `cancel` becomes true, so that stopping the
// agent does not wait for a slow endpoint's timeout.
std::unique_ptr<HttpTransport> make_curl_transport(const std::atomic<bool>& cancel);

struct BucketUsage {
  std::uint64_t bytes = 0;
  std::uint64_t objects = 0;
  unsigned pages = 0;
};

class Client {
 public:
  using Clock = std::function<std::chrono::system_clock::time_point()>;
  // `endpoint.credentials` must already be resolved; `transport` must outlive the client.
  Client(EndpointConfig endpoint, HttpTransport& transport, Clock now = std::chrono::system_clock::now);

  std::vector<std::string> list_buckets();
  // Walks every ListObjectsV2 page (1,000 keys each) following NextContinuationToken.
  BucketUsage bucket_usage(const std::string& bucket);

 private:
  HttpResponse signed_get(const std::string& bucket, std::vector<std::pair<std::string, std::string>> query);

  EndpointConfig ep_;
  HttpTransport& transport_;
  Clock now_;
  std::string scheme_;     // "http" or "https"
  std::string authority_;  // host[:port] as written in the URL
  std::string base_path_;  // "" or "/prefix" (no trailing slash)
};

}  // namespace aurum::s3
