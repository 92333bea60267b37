// SPDX-License-Identifier: Apache-2.0
#include "s3/config.h"

#include <set>

namespace aurum::s3 {
namespace {

class Parser {
 public:
  explicit Parser(const std::string& source) : source_(source) {}

[[noreturn]] void fail(const std::string& key, const YAML::Node& node, const std::string& what) const {
  const YAML::Mark m = node.Mark();
  const std::string line = m.line >= 0 ? std::to_string(m.line + 1) : "?";
  throw ConfigError(source_ + ":" + line + ": " + key + ": " + what);
}

std::string scalar(const YAML::Node& node, const std::string& key) const {
  if (!node.IsScalar()) fail(key, node, "expected a string");
  return node.Scalar();
}

long long positive_int(const YAML::Node& node, const std::string& key, long long max) const {
  if (!node.IsScalar()) fail(key, node, "expected a positive integer");
  const std::string& s = node.Scalar();
  long long v = 0;
  size_t used = 0;
  try {
    v = std::stoll(s, &used);
  } catch (const std::exception&) {
    fail(key, node, "expected a positive integer, got '" + s + "'");
  }
  if (used != s.size() || v <= 0 || v > max)
    fail(key, node, "expected an integer in 1.." + std::to_string(max) + ", got '" + s + "'");
  return v;
}

bool boolean(const YAML::Node& node, const std::string& key) const {
  bool v = false;
  if (!node.IsScalar() || !YAML::convert<bool>::decode(node, v)) fail(key, node, "expected true or false");
  return v;
}

EndpointConfig parse_endpoint(const YAML::Node& node, const std::string& key) const {
  if (!node.IsMap()) fail(key, node, "expected a map with at least `url`");
  static const std::set<std::string> kKnown = {"url", "region", "access_key_id", "secret_access_key",
                                               "session_token", "buckets", "interval_seconds",
                                               "timeout_seconds", "path_style"};
  for (const auto& kv : node) {
    const std::string name = kv.first.Scalar();
    if (!kKnown.count(name)) fail(key + "." + name, kv.first, "unknown key");
  }
  EndpointConfig ep;
  if (!node["url"]) fail(key + ".url", node, "missing (required)");
  ep.url = scalar(node["url"], key + ".url");
  if (ep.url.rfind("http://", 0) != 0 && ep.url.rfind("https://", 0) != 0)
    fail(key + ".url", node["url"], "must start with http:// or https://, got '" + ep.url + "'");
  const std::string after_scheme = ep.url.substr(ep.url.find("://") + 3);
  if (after_scheme.empty() || after_scheme.front() == '/')
    fail(key + ".url", node["url"], "has no host: '" + ep.url + "'");
  while (ep.url.back() == '/') ep.url.pop_back();
  if (ep.url.find('?') != std::string::npos || ep.url.find('@') != std::string::npos)
    fail(key + ".url", node["url"], "must not carry a query or user info (credentials go in access_key_id)");
  if (node["region"]) ep.region = scalar(node["region"], key + ".region");
  if (ep.region.empty()) fail(key + ".region", node["region"], "must not be empty");
  if (node["access_key_id"]) ep.credentials.access_key_id = scalar(node["access_key_id"], key + ".access_key_id");
  if (node["secret_access_key"])
    ep.credentials.secret_access_key = scalar(node["secret_access_key"], key + ".secret_access_key");
  if (node["session_token"]) ep.credentials.session_token = scalar(node["session_token"], key + ".session_token");
  if (ep.credentials.access_key_id.empty() != ep.credentials.secret_access_key.empty())
    fail(key, node, "access_key_id and secret_access_key must be given together");
  if (const YAML::Node b = node["buckets"]) {
    if (!b.IsSequence()) fail(key + ".buckets", b, "expected a list of bucket names");
    for (size_t i = 0; i < b.size(); ++i) {
      const std::string bkey = key + ".buckets[" + std::to_string(i) + "]";
      std::string name = scalar(b[i], bkey);
      if (name.empty() || name.find('/') != std::string::npos)
        fail(bkey, b[i], "not a bucket name: '" + name + "'");
      ep.buckets.push_back(std::move(name));
    }
  }
  if (node["interval_seconds"])
    ep.interval = std::chrono::seconds(positive_int(node["interval_seconds"], key + ".interval_seconds", 86400));
  if (node["timeout_seconds"])
    ep.timeout = std::chrono::seconds(positive_int(node["timeout_seconds"], key + ".timeout_seconds", 600));
  if (node["path_style"]) ep.path_style = boolean(node["path_style"], key + ".path_style");
  return ep;
}

 private:
  const std::string& source_;
};

}  // namespace

Config parse_config(const YAML::Node& s3, const std::string& source) {
  const Parser p(source);
  Config cfg;
  if (!s3 || s3.IsNull()) return cfg;
  if (!s3.IsMap()) p.fail("s3", s3, "expected a map with `endpoints`");
  for (const auto& kv : s3) {
    if (kv.first.Scalar() != "endpoints") p.fail("s3." + kv.first.Scalar(), kv.first, "unknown key");
  }
  const YAML::Node eps = s3["endpoints"];
  if (!eps || eps.IsNull()) return cfg;
  if (!eps.IsSequence()) p.fail("s3.endpoints", eps, "expected a list");
  std::set<std::string> seen;
  for (size_t i = 0; i < eps.size(); ++i) {
    const std::string key = "s3.endpoints[" + std::to_string(i) + "]";
    EndpointConfig ep = p.parse_endpoint(eps[i], key);
    if (!seen.insert(ep.url).second) p.fail(key + ".url", eps[i]["url"], "duplicate endpoint '" + ep.url + "'");
    cfg.endpoints.push_back(std::move(ep));
  }
  return cfg;
}

void resolve_credentials(EndpointConfig& ep, const std::function<const char*(const char*)>& getenv) {
  if (!ep.credentials.access_key_id.empty()) return;  // the file wins, as a pair
  const char* id = getenv("AWS_ACCESS_KEY_ID");
  const char* secret = getenv("AWS_SECRET_ACCESS_KEY");
  const char* token = getenv("AWS_SESSION_TOKEN");
  if (id && secret) {
    ep.credentials.access_key_id = id;
    ep.credentials.secret_access_key = secret;
    if (token && ep.credentials.session_token.empty()) ep.credentials.session_token = token;
  }
}

}  // namespace aurum::s3
