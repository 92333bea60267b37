// SPDX-License-Identifier: Apache-2.0
// The client and collector over a fake transport that serves generated ListObjectsV2 pages, so
// pagination, error mapping and staleness are checked without a server (tests/s3/ has the
// real-server test).
#include <gtest/gtest.h>

#include <map>
#include <optional>

#include "s3/collector.h"

namespace aurum::s3 {
namespace {

using namespace std::chrono_literals;

struct FakeBucket {
  std::vector<std::uint64_t> sizes;
};

// Serves a tiny S3: GET / (ListBuckets) and GET /<bucket>?list-type=2 with 1,000-key pages.
struct FakeS3 {
  std::map<std::string, FakeBucket> buckets;
  std::optional<FailureReason> transport_failure;  // thrown instead of answering
  long forced_status = 0;                          // answered instead of the document
  std::vector<std::string> urls;                   // every URL requested
  std::vector<std::vector<std::string>> headers;

  HttpResponse get(const std::string& url, const std::vector<std::string>& hdrs) {
    urls.push_back(url);
    headers.push_back(hdrs);
    if (transport_failure) throw ScrapeError(*transport_failure, "fake transport failure");
    if (forced_status)
      return {forced_status, "<Error><Code>SignatureDoesNotMatch</Code><Message>nope</Message></Error>"};
    const std::string prefix = "http://127.0.0.1:9/";
    std::string rest = url.substr(prefix.size());
    std::string bucket = rest.substr(0, rest.find('?'));
    if (bucket.empty()) {
      std::string xml = "<ListAllMyBucketsResult><Buckets>";
      for (const auto& [name, b] : buckets) xml += "<Bucket><Name>" + name + "</Name></Bucket>";
      return {200, xml + "</Buckets></ListAllMyBucketsResult>"};
    }
    auto it = buckets.find(bucket);
    if (it == buckets.end()) return {404, "<Error><Code>NoSuchBucket</Code><Message>gone</Message></Error>"};
    size_t start = 0;
    const auto tok = url.find("continuation-token=tok");
    if (tok != std::string::npos) start = std::stoul(url.substr(tok + 22));
    const auto& sizes = it->second.sizes;
    const size_t end = std::min(sizes.size(), start + 1000);
    std::string xml = "<ListBucketResult>";
    for (size_t i = start; i < end; ++i)
      xml += "<Contents><Key>k" + std::to_string(i) + "</Key><Size>" + std::to_string(sizes[i]) + "</Size></Contents>";
    if (end < sizes.size())
      xml += "<IsTruncated>true</IsTruncated><NextContinuationToken>tok" + std::to_string(end) + "</NextContinuationToken>";
    else
      xml += "<IsTruncated>false</IsTruncated>";
    return {200, xml + "</ListBucketResult>"};
  }
};

class FakeTransport : public HttpTransport {
 public:
  explicit FakeTransport(FakeS3& s3) : s3_(s3) {}
  HttpResponse get(const std::string& url, const std::vector<std::string>& headers,
                   std::chrono::milliseconds) override {
    return s3_.get(url, headers);
  }

 private:
  FakeS3& s3_;
};

EndpointConfig endpoint(std::vector<std::string> buckets = {}) {
  EndpointConfig ep;
  ep.url = "http://127.0.0.1:9";
  ep.credentials = {"AK", "SK", ""};
  ep.buckets = std::move(buckets);
  return ep;
}

struct Harness {
  FakeS3 s3;
  double now_s = 1700000000;
  std::vector<std::string> logs;
  std::unique_ptr<S3Collector> collector;

  explicit Harness(EndpointConfig ep) {
    CollectorOptions o;
    o.make_transport = [this](const std::atomic<bool>&) { return std::make_unique<FakeTransport>(s3); };
    o.now = [this] {
      return std::chrono::system_clock::time_point(
          std::chrono::duration_cast<std::chrono::system_clock::duration>(std::chrono::duration<double>(now_s)));
    };
    o.log = [this](log::Level, const std::string& l) { logs.push_back(l); };
    collector = std::make_unique<S3Collector>(Config{{std::move(ep)}}, o);
  }

  // value of family{bucket=...[,reason=...]}; nullopt when the series is absent.
  std::optional<double> value(const std::string& family, const std::string& bucket,
                              const std::string& reason = "") const {
    for (const auto& f : collector->Collect()) {
      if (f.name != family) continue;
      for (const auto& m : f.metric) {
        std::map<std::string, std::string> labels;
        for (const auto& l : m.label) labels[l.name] = l.value;
        if (labels["bucket"] != bucket || labels["endpoint"] != "http://127.0.0.1:9") continue;
        if (!reason.empty() && labels["reason"] != reason) continue;
        return f.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
      }
    }
    return std::nullopt;
  }
};

std::vector<std::uint64_t> sizes(size_t n, std::uint64_t mul) {
  std::vector<std::uint64_t> v;
  for (size_t i = 0; i < n; ++i) v.push_back((i * mul) % 4093 + 1);
  return v;
}

std::uint64_t sum(const std::vector<std::uint64_t>& v) {
  std::uint64_t s = 0;
  for (auto x : v) s += x;
  return s;
}

TEST(S3Collector, PaginatesPastAThousandKeys) {
  Harness h(endpoint({"big"}));
  h.s3.buckets["big"].sizes = sizes(2345, 7);
  h.collector->scrape_endpoint(0);
  EXPECT_EQ(h.value("aurum_s3_bucket_objects", "big"), 2345.0);
  EXPECT_EQ(h.value("aurum_s3_bucket_size_bytes", "big"), static_cast<double>(sum(h.s3.buckets["big"].sizes)));
  EXPECT_EQ(h.value("aurum_s3_last_success_timestamp", "big"), 1700000000.0);
  ASSERT_EQ(h.s3.urls.size(), 3u);  // 1000 + 1000 + 345
  EXPECT_EQ(h.s3.urls[0], "http://127.0.0.1:9/big?list-type=2&max-keys=1000");
  EXPECT_EQ(h.s3.urls[1], "http://127.0.0.1:9/big?continuation-token=tok1000&list-type=2&max-keys=1000");
  bool signed_request = false;
  for (const auto& hd : h.s3.headers[0]) signed_request |= hd.rfind("Authorization: AWS4-HMAC-SHA256 Credential=AK/", 0) == 0;
  EXPECT_TRUE(signed_request);
}

TEST(S3Collector, FailureHidesTheFigureAndKeepsTheTimestamp) {
  Harness h(endpoint({"b"}));
  h.s3.buckets["b"].sizes = {10, 20};
  h.collector->scrape_endpoint(0);
  EXPECT_EQ(h.value("aurum_s3_bucket_size_bytes", "b"), 30.0);

  h.now_s += 30;
  h.s3.forced_status = 403;
  h.collector->scrape_endpoint(0);
  EXPECT_EQ(h.value("aurum_s3_bucket_size_bytes", "b"), std::nullopt);
  EXPECT_EQ(h.value("aurum_s3_bucket_objects", "b"), std::nullopt);
  EXPECT_EQ(h.value("aurum_s3_last_success_timestamp", "b"), 1700000000.0);  // not advanced
  EXPECT_EQ(h.value("aurum_s3_scrape_errors_total", "b", "auth"), 1.0);
  ASSERT_EQ(h.logs.size(), 1u);
  EXPECT_NE(h.logs[0].find("SignatureDoesNotMatch"), std::string::npos) << h.logs[0];

  h.now_s += 30;
  h.collector->scrape_endpoint(0);  // same failure again: counted, not logged again
  EXPECT_EQ(h.value("aurum_s3_scrape_errors_total", "b", "auth"), 2.0);
  EXPECT_EQ(h.logs.size(), 1u);

  h.now_s += 30;
  h.s3.forced_status = 0;
  h.s3.buckets["b"].sizes.push_back(5);
  h.collector->scrape_endpoint(0);
  EXPECT_EQ(h.value("aurum_s3_bucket_size_bytes", "b"), 35.0);
  EXPECT_EQ(h.value("aurum_s3_last_success_timestamp", "b"), 1700000090.0);
  EXPECT_EQ(h.value("aurum_s3_scrape_errors_total", "b", "auth"), 2.0);
  EXPECT_EQ(h.logs.size(), 2u);  // "recovered"
}

TEST(S3Collector, TransportFailuresKeepTheirReason) {
  Harness h(endpoint({"b"}));
  h.s3.transport_failure = FailureReason::kUnreachable;
  h.collector->scrape_endpoint(0);
  h.s3.transport_failure = FailureReason::kTimeout;
  h.collector->scrape_endpoint(0);
  EXPECT_EQ(h.value("aurum_s3_scrape_errors_total", "b", "unreachable"), 1.0);
  EXPECT_EQ(h.value("aurum_s3_scrape_errors_total", "b", "timeout"), 1.0);
  EXPECT_EQ(h.value("aurum_s3_last_success_timestamp", "b"), std::nullopt);  // never succeeded
  EXPECT_EQ(h.value("aurum_s3_bucket_size_bytes", "b"), std::nullopt);
}

TEST(S3Collector, MissingBucketAndMissingCredentials) {
  Harness h(endpoint({"nope"}));
  h.collector->scrape_endpoint(0);
  EXPECT_EQ(h.value("aurum_s3_scrape_errors_total", "nope", "not_found"), 1.0);

  EndpointConfig anon = endpoint({"b"});
  anon.credentials = {};
  Harness h2(anon);
  h2.collector->scrape_endpoint(0);
  EXPECT_EQ(h2.value("aurum_s3_scrape_errors_total", "b", "no_credentials"), 1.0);
  EXPECT_TRUE(h2.s3.urls.empty());  // nothing unsigned is ever sent
}

TEST(S3Collector, DiscoversBucketsAndForgetsDeletedOnes) {
  Harness h(endpoint());
  h.s3.buckets["a"].sizes = {1, 2, 3};
  h.s3.buckets["b"].sizes = {};
  h.collector->scrape_endpoint(0);
  EXPECT_EQ(h.value("aurum_s3_bucket_objects", "a"), 3.0);
  EXPECT_EQ(h.value("aurum_s3_bucket_size_bytes", "a"), 6.0);
  EXPECT_EQ(h.value("aurum_s3_bucket_objects", "b"), 0.0);  // an empty bucket is a real zero
  EXPECT_EQ(h.value("aurum_s3_last_success_timestamp", ""), 1700000000.0);

  h.s3.buckets.erase("b");
  h.collector->scrape_endpoint(0);
  EXPECT_EQ(h.value("aurum_s3_bucket_objects", "b"), std::nullopt);

  h.s3.forced_status = 500;  // ListBuckets fails: every bucket's figure goes stale
  h.collector->scrape_endpoint(0);
  EXPECT_EQ(h.value("aurum_s3_bucket_objects", "a"), std::nullopt);
  EXPECT_EQ(h.value("aurum_s3_scrape_errors_total", "", "http"), 1.0);
}

TEST(S3Collector, BackgroundThreadScrapesAndStops) {
  Harness h(endpoint({"b"}));
  h.s3.buckets["b"].sizes = {7};
  h.collector->start();
  for (int i = 0; i < 200 && !h.value("aurum_s3_bucket_size_bytes", "b"); ++i)
    std::this_thread::sleep_for(10ms);
  h.collector->stop();
  EXPECT_EQ(h.value("aurum_s3_bucket_size_bytes", "b"), 7.0);
}

}  // namespace
}  // namespace aurum::s3
