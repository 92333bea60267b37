// SPDX-License-Identifier: Apache-2.0
#include "s3/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <stdexcept>

namespace aurum::s3 {
namespace {

std::string to_hex(const unsigned char* data, size_t len) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(len * 2);
  for (size_t i = 0; i < len; ++i) {
    out.push_back(kDigits[data[i] >> 4]);
    out.push_back(kDigits[data[i] & 0xf]);
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// Canonical header values: leading/trailing spaces trimmed, inner runs of spaces collapsed.
std::string trim_collapse(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

}  // namespace

std::string sha256_hex(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return to_hex(digest, sizeof digest);
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &len) == nullptr)
    throw std::runtime_error("HMAC-SHA256 failed");
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string uri_encode(std::string_view in, bool keep_slash) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(in.size());
  for (unsigned char c : in) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kDigits[c >> 4]);
      out.push_back(kDigits[c & 0xf]);
    }
  }
  return out;
}

std::string amz_date(std::chrono::system_clock::time_point when) {
  std::time_t t = std::chrono::system_clock::to_time_t(when);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return buf;
}

std::string canonical_request(const SigningRequest& req) {
  std::vector<std::pair<std::string, std::string>> query;
  for (const auto& [k, v] : req.query) query.emplace_back(uri_encode(k, false), uri_encode(v, false));
  std::sort(query.begin(), query.end());

  std::vector<std::pair<std::string, std::string>> headers;
  for (const auto& [k, v] : req.headers) headers.emplace_back(lower(k), trim_collapse(v));
  std::sort(headers.begin(), headers.end());

  std::string out = req.method + "\n" + uri_encode(req.path.empty() ? "/" : req.path, true) + "\n";
  for (size_t i = 0; i < query.size(); ++i) {
    if (i) out += '&';
    out += query[i].first + "=" + query[i].second;
  }
  out += '\n';
  for (const auto& [k, v] : headers) out += k + ":" + v + "\n";
  out += '\n';
  for (size_t i = 0; i < headers.size(); ++i) {
    if (i) out += ';';
    out += headers[i].first;
  }
  out += '\n';
  out += req.payload_sha256;
  return out;
}

std::string string_to_sign(std::string_view amz_date_value, std::string_view scope,
                           std::string_view canonical) {
  std::string out = "AWS4-HMAC-SHA256\n";
  out += amz_date_value;
  out += '\n';
  out += scope;
  out += '\n';
  out += sha256_hex(canonical);
  return out;
}

std::string signing_key(std::string_view secret, std::string_view date, std::string_view region,
                        std::string_view service) {
  std::string k = hmac_sha256("AWS4" + std::string(secret), date);
  k = hmac_sha256(k, region);
  k = hmac_sha256(k, service);
  return hmac_sha256(k, "aws4_request");
}

Signature sign(const SigningRequest& req, const Credentials& creds, std::string_view region,
               std::string_view service, std::string_view amz_date_value) {
  if (amz_date_value.size() < 8) throw std::invalid_argument("x-amz-date too short");
  const std::string_view date = amz_date_value.substr(0, 8);
  const std::string scope =
      std::string(date) + "/" + std::string(region) + "/" + std::string(service) + "/aws4_request";

  Signature s;
  s.canonical_request = canonical_request(req);
  s.string_to_sign = string_to_sign(amz_date_value, scope, s.canonical_request);
  const std::string key = signing_key(creds.secret_access_key, date, region, service);
  const std::string mac = hmac_sha256(key, s.string_to_sign);
  s.signature = to_hex(reinterpret_cast<const unsigned char*>(mac.data()), mac.size());

  std::vector<std::string> names;
  for (const auto& h : req.headers) names.push_back(lower(h.first));
  std::sort(names.begin(), names.end());
  std::string signed_headers;
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) signed_headers += ';';
    signed_headers += names[i];
  }
  s.authorization = "AWS4-HMAC-SHA256 Credential=" + creds.access_key_id + "/" + scope +
                    ",SignedHeaders=" + signed_headers + ",Signature=" + s.signature;
  return s;
}

}  // namespace aurum::s3
