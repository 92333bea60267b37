// SPDX-License-Identifier: Apache-2.0
// AWS Signature Version 4 for S3 requests sent with an Authorization header.
// Spec: AWS S3 API reference, "Authenticating Requests (AWS Signature Version 4)",
// section "Signature Calculations for the Authorization Header: Transferring Payload in a
// Single Chunk". Every step is a separate function so that tests can compare each
// intermediate value (canonical request, string to sign, signature) with AWS's examples.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace aurum::s3 {

struct Credentials {
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // empty unless temporary (STS) credentials
};

// One request as seen by the signer. `path` is the raw (not yet encoded) absolute path,
// `query` the raw (not yet encoded) parameters; the signer encodes both the way S3 does.
struct SigningRequest {
  std::string method = "GET";
  std::string path = "/";
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> headers;  // must include host
  std::string payload_sha256;  // hex; the hash of the empty string for a GET
};

struct Signature {
  std::string canonical_request;
  std::string string_to_sign;
  std::string signature;      // hex
  std::string authorization;  // the full Authorization header value
};

// Hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);
// Raw 32-byte HMAC-SHA256.
std::string hmac_sha256(std::string_view key, std::string_view data);
// RFC 3986 unreserved characters stay, everything else is %XX (upper case); '/' is kept
// when `keep_slash` (for paths, S3 does not double-encode).
std::string uri_encode(std::string_view in, bool keep_slash);
// "YYYYMMDDTHHMMSSZ" in UTC.
std::string amz_date(std::chrono::system_clock::time_point when);

std::string canonical_request(const SigningRequest& req);
std::string string_to_sign(std::string_view amz_date, std::string_view scope,
                           std::string_view canonical_request);
// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")
std::string signing_key(std::string_view secret, std::string_view date, std::string_view region,
                        std::string_view service);

// `amz_date_value` must equal the x-amz-date header the request carries.
Signature sign(const SigningRequest& req, const Credentials& creds, std::string_view region,
               std::string_view service, std::string_view amz_date_value);

inline constexpr std::string_view kEmptyPayloadSha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

}  // namespace aurum::s3
