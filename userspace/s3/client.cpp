// SPDX-License-Identifier: Apache-2.0
#include "s3/client.h"

#include <algorithm>

#include "s3/sigv4.h"
#include "s3/xml.h"

namespace aurum::s3 {

const char* reason_label(FailureReason r) {
  switch (r) {
    case FailureReason::kUnreachable: return "unreachable";
    case FailureReason::kTimeout: return "timeout";
    case FailureReason::kTransport: return "transport";
    case FailureReason::kAuth: return "auth";
    case FailureReason::kNotFound: return "not_found";
    case FailureReason::kHttp: return "http";
    case FailureReason::kBadResponse: return "bad_response";
    case FailureReason::kNoCredentials: return "no_credentials";
  }
  return "unknown";
}

Client::Client(EndpointConfig endpoint, HttpTransport& transport, Clock now)
    : ep_(std::move(endpoint)), transport_(transport), now_(std::move(now)) {
  const auto sep = ep_.url.find("://");
  if (sep == std::string::npos) throw std::invalid_argument("S3 endpoint URL without scheme: " + ep_.url);
  scheme_ = ep_.url.substr(0, sep);
  std::string rest = ep_.url.substr(sep + 3);
  const auto slash = rest.find('/');
  authority_ = rest.substr(0, slash);
  if (slash != std::string::npos) base_path_ = rest.substr(slash);
  while (!base_path_.empty() && base_path_.back() == '/') base_path_.pop_back();
  if (authority_.empty()) throw std::invalid_argument("S3 endpoint URL without host: " + ep_.url);
}

HttpResponse Client::signed_get(const std::string& bucket,
                                std::vector<std::pair<std::string, std::string>> query) {
  if (ep_.credentials.access_key_id.empty() || ep_.credentials.secret_access_key.empty())
    throw ScrapeError(FailureReason::kNoCredentials,
                      "no credentials: set access_key_id/secret_access_key or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY");
  SigningRequest req;
  std::string host = authority_;
  req.path = base_path_;
  if (bucket.empty() || !ep_.path_style) {
    req.path += "/";
    if (!bucket.empty()) host = bucket + "." + authority_;
  } else {
    req.path += "/" + bucket;
  }
  req.query = std::move(query);
  req.payload_sha256 = std::string(kEmptyPayloadSha256);
  const std::string date = amz_date(now_());
  req.headers = {{"host", host}, {"x-amz-content-sha256", req.payload_sha256}, {"x-amz-date", date}};
  if (!ep_.credentials.session_token.empty())
    req.headers.emplace_back("x-amz-security-token", ep_.credentials.session_token);
  const Signature sig = sign(req, ep_.credentials, ep_.region, "s3", date);

  // The URL carries the path and query exactly as they were canonicalised, so what the server
  // recomputes is what was signed.
  auto sorted = req.query;
  for (auto& [k, v] : sorted) {
    k = uri_encode(k, false);
    v = uri_encode(v, false);
  }
  std::sort(sorted.begin(), sorted.end());
  std::string url = scheme_ + "://" + host + uri_encode(req.path, true);
  for (size_t i = 0; i < sorted.size(); ++i) url += (i ? "&" : "?") + sorted[i].first + "=" + sorted[i].second;

  std::vector<std::string> headers;
  for (const auto& [k, v] : req.headers) headers.push_back(k + ": " + v);
  headers.push_back("Authorization: " + sig.authorization);
  HttpResponse resp = transport_.get(url, headers, ep_.timeout);
  if (resp.status == 200) return resp;

  std::string detail = "HTTP " + std::to_string(resp.status);
  if (auto err = parse_error(resp.body)) detail += " " + err->code + ": " + err->message;
  const std::string what = "GET " + url + ": " + detail;
  if (resp.status == 401 || resp.status == 403) throw ScrapeError(FailureReason::kAuth, what);
  if (resp.status == 404) throw ScrapeError(FailureReason::kNotFound, what);
  throw ScrapeError(FailureReason::kHttp, what);
}

std::vector<std::string> Client::list_buckets() {
  HttpResponse resp = signed_get("", {});
  try {
    return parse_list_buckets(resp.body);
  } catch (const XmlError& e) {
    throw ScrapeError(FailureReason::kBadResponse, "ListBuckets on " + ep_.url + ": " + e.what());
  }
}

BucketUsage Client::bucket_usage(const std::string& bucket) {
  BucketUsage usage;
  std::string token;
  for (;;) {
    std::vector<std::pair<std::string, std::string>> query = {{"list-type", "2"}, {"max-keys", "1000"}};
    if (!token.empty()) query.emplace_back("continuation-token", token);
    HttpResponse resp = signed_get(bucket, std::move(query));
    ListObjectsPage page;
    try {
      page = parse_list_objects_v2(resp.body);
    } catch (const XmlError& e) {
      throw ScrapeError(FailureReason::kBadResponse,
                        "ListObjectsV2 " + bucket + " on " + ep_.url + ": " + e.what());
    }
    usage.bytes += page.bytes;
    usage.objects += page.objects;
    ++usage.pages;
    if (!page.truncated) return usage;
    if (page.next_continuation_token == token)
      throw ScrapeError(FailureReason::kBadResponse,
                        "ListObjectsV2 " + bucket + " on " + ep_.url + ": continuation token did not advance");
    token = page.next_continuation_token;
  }
}

}  // namespace aurum::s3
