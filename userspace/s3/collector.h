// SPDX-License-Identifier: Apache-2.0
// Bucket size and object count per S3 endpoint, refreshed by one background thread per
// endpoint every `interval_seconds`, exported through prometheus-cpp.
//
// Staleness: a bucket's size and object count are exported only while its latest scrape
// succeeded. A failed scrape removes both series (Prometheus then marks them stale) and counts
// aurum_s3_scrape_errors_total{reason}; aurum_s3_last_success_timestamp keeps the time of the
// last success, so `time() - aurum_s3_last_success_timestamp` is the age of the last good
// figure. No number older than the latest attempt is ever exported as current.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/log.h"
#include "s3/client.h"
#include "s3/config.h"

namespace aurum::s3 {

struct CollectorOptions {
  // Called once per endpoint, on its thread; `cancel` turns true when the collector stops.
  std::function<std::unique_ptr<HttpTransport>(const std::atomic<bool>& cancel)> make_transport =
      make_curl_transport;
  Client::Clock now = std::chrono::system_clock::now;
  std::function<void(log::Level, const std::string&)> log;  // empty: the agent log (core/log.h)
};

class S3Collector : public prometheus::Collectable {
 public:
  // Credentials in `cfg` must already be resolved (see resolve_credentials).
  explicit S3Collector(Config cfg, CollectorOptions opts = {});
  ~S3Collector() override;
  S3Collector(const S3Collector&) = delete;
  S3Collector& operator=(const S3Collector&) = delete;

  // One thread per endpoint: scrape at once, then every interval. Idempotent.
  void start();
  // Wakes the threads, abandons requests in flight, joins.
  void stop();
  // One synchronous round over endpoint `index` (every bucket); what each thread runs.
  void scrape_endpoint(size_t index);

  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  struct BucketState {
    bool fresh = false;  // the latest attempt succeeded
    std::uint64_t bytes = 0;
    std::uint64_t objects = 0;
    double last_success = 0;  // unix seconds; 0 = never
    bool failing = false;     // for logging transitions only
    FailureReason last_reason{};
  };
  struct Endpoint {
    EndpointConfig cfg;
    std::unique_ptr<HttpTransport> transport;
    std::map<std::string, BucketState> buckets;  // "" = the endpoint itself (ListBuckets)
    std::map<std::pair<std::string, FailureReason>, std::uint64_t> errors;
  };

  void record_success(Endpoint& ep, const std::string& bucket, const BucketUsage& usage);
  void record_failure(Endpoint& ep, const std::string& bucket, const ScrapeError& err);
  void run(size_t index);
  void log(log::Level level, const std::string& line) const;

  CollectorOptions opts_;
  std::vector<Endpoint> endpoints_;
  mutable std::mutex mu_;  // guards endpoints_[*].buckets / errors, stopping_
  std::condition_variable wake_;
  bool stopping_ = false;
  std::atomic<bool> cancel_{false};  // stopping_, readable without mu_ from curl's callback
  std::vector<std::thread> threads_;
};

}  // namespace aurum::s3
