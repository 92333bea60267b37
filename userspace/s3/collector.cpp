// SPDX-License-Identifier: Apache-2.0
#include "s3/collector.h"

#include <set>

#include <prometheus/client_metric.h>

#include "core/log.h"

namespace aurum::s3 {
namespace {

// The one place this module writes the agent's log.
void agent_log(log::Level level, const std::string& line) {
  if (level >= log::level()) log::write(level, "s3: %s", line.c_str());
}

double seconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
}

prometheus::ClientMetric labelled(const std::string& endpoint, const std::string& bucket) {
  prometheus::ClientMetric m;
  m.label = {{"endpoint", endpoint}, {"bucket", bucket}};
  return m;
}

}  // namespace

S3Collector::S3Collector(Config cfg, CollectorOptions opts) : opts_(std::move(opts)) {
  if (!opts_.log) opts_.log = agent_log;
  for (auto& ep : cfg.endpoints) {
    Endpoint e;
    e.cfg = std::move(ep);
    endpoints_.push_back(std::move(e));
  }
}

S3Collector::~S3Collector() { stop(); }

void S3Collector::log(log::Level level, const std::string& line) const {
  opts_.log(level, line);
}

void S3Collector::start() {
  std::lock_guard lock(mu_);
  if (!threads_.empty()) return;
  stopping_ = false;
  cancel_ = false;
  for (size_t i = 0; i < endpoints_.size(); ++i) threads_.emplace_back([this, i] { run(i); });
}

void S3Collector::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cancel_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

void S3Collector::run(size_t index) {
  const auto interval = endpoints_[index].cfg.interval;
  for (;;) {
    const auto next = std::chrono::steady_clock::now() + interval;
    try {
      scrape_endpoint(index);
    } catch (const std::exception& e) {
      // scrape_endpoint records every expected failure itself; this is the last net that keeps
      // one endpoint's surprise from killing the agent.
      log(log::Level::error, "endpoint " + endpoints_[index].cfg.url + ": unexpected error: " + e.what());
    }
    std::unique_lock lock(mu_);
    if (wake_.wait_until(lock, next, [this] { return stopping_; })) return;
  }
}

void S3Collector::scrape_endpoint(size_t index) {
  Endpoint& ep = endpoints_.at(index);
  if (!ep.transport) {
    try {
      ep.transport = opts_.make_transport(cancel_);
    } catch (const std::exception& e) {
      record_failure(ep, "", ScrapeError(FailureReason::kTransport, e.what()));
      return;
    }
  }
  Client client(ep.cfg, *ep.transport, opts_.now);

  std::vector<std::string> buckets = ep.cfg.buckets;
  if (buckets.empty()) {
    try {
      buckets = client.list_buckets();
      record_success(ep, "", {});
    } catch (const ScrapeError& e) {
      if (cancel_) return;
      record_failure(ep, "", e);
      // Every bucket learnt earlier is now unknown too: none of their figures is current.
      std::lock_guard lock(mu_);
      for (auto& [name, state] : ep.buckets) state.fresh = false;
      return;
    }
    // Buckets that no longer exist stop being exported.
    std::lock_guard lock(mu_);
    const std::set<std::string> listed(buckets.begin(), buckets.end());
    for (auto it = ep.buckets.begin(); it != ep.buckets.end();) {
      if (!it->first.empty() && !listed.count(it->first)) it = ep.buckets.erase(it);
      else ++it;
    }
  }
  for (const auto& bucket : buckets) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    try {
      record_success(ep, bucket, client.bucket_usage(bucket));
    } catch (const ScrapeError& e) {
      if (cancel_) return;  // abandoned by stop(): not the endpoint's fault
      record_failure(ep, bucket, e);
    }
  }
}

void S3Collector::record_success(Endpoint& ep, const std::string& bucket, const BucketUsage& usage) {
  bool recovered = false;
  {
    std::lock_guard lock(mu_);
    BucketState& s = ep.buckets[bucket];
    s.fresh = true;
    s.bytes = usage.bytes;
    s.objects = usage.objects;
    s.last_success = seconds(opts_.now());
    recovered = s.failing;
    s.failing = false;
  }
  if (recovered)
    log(log::Level::info, "endpoint " + ep.cfg.url + (bucket.empty() ? "" : " bucket " + bucket) + ": recovered");
}

void S3Collector::record_failure(Endpoint& ep, const std::string& bucket, const ScrapeError& err) {
  bool changed = false;
  {
    std::lock_guard lock(mu_);
    BucketState& s = ep.buckets[bucket];
    s.fresh = false;
    changed = !s.failing || s.last_reason != err.reason;
    s.failing = true;
    s.last_reason = err.reason;
    ++ep.errors[{bucket, err.reason}];
  }
  // One line when a bucket starts failing or fails differently, not one per interval.
  if (changed)
    log(log::Level::warn, "endpoint " + ep.cfg.url + (bucket.empty() ? "" : " bucket " + bucket) + ": scrape failed (" +
        reason_label(err.reason) + "): " + err.what());
}

std::vector<prometheus::MetricFamily> S3Collector::Collect() const {
  prometheus::MetricFamily size{"aurum_s3_bucket_size_bytes",
                                "Sum of object sizes in the bucket (ListObjectsV2), from the latest scrape; "
                                "absent while the latest scrape failed",
                                prometheus::MetricType::Gauge, {}};
  prometheus::MetricFamily objects{"aurum_s3_bucket_objects",
                                   "Number of objects in the bucket (ListObjectsV2), from the latest scrape; "
                                   "absent while the latest scrape failed",
                                   prometheus::MetricType::Gauge, {}};
  prometheus::MetricFamily success{"aurum_s3_last_success_timestamp",
                                   "Unix time in seconds of the last successful scrape of the bucket "
                                   "(bucket=\"\": of the endpoint's ListBuckets)",
                                   prometheus::MetricType::Gauge, {}};
  prometheus::MetricFamily errors{"aurum_s3_scrape_errors_total",
                                  "Failed S3 scrapes by reason (bucket=\"\": the endpoint's ListBuckets)",
                                  prometheus::MetricType::Counter, {}};
  {
    std::lock_guard lock(mu_);
    for (const auto& ep : endpoints_) {
      for (const auto& [bucket, s] : ep.buckets) {
        if (s.fresh && !bucket.empty()) {
          auto m = labelled(ep.cfg.url, bucket);
          m.gauge.value = static_cast<double>(s.bytes);
          size.metric.push_back(m);
          m.gauge.value = static_cast<double>(s.objects);
          objects.metric.push_back(m);
        }
        if (s.last_success > 0) {
          auto m = labelled(ep.cfg.url, bucket);
          m.gauge.value = s.last_success;
          success.metric.push_back(std::move(m));
        }
      }
      for (const auto& [key, count] : ep.errors) {
        auto m = labelled(ep.cfg.url, key.first);
        m.label.push_back({"reason", reason_label(key.second)});
        m.counter.value = static_cast<double>(count);
        errors.metric.push_back(std::move(m));
      }
    }
  }
  std::vector<prometheus::MetricFamily> out;
  for (auto* f : {&size, &objects, &success, &errors})
    if (!f->metric.empty()) out.push_back(std::move(*f));
  return out;
}

}  // namespace aurum::s3
