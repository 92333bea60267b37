// SPDX-License-Identifier: Apache-2.0
// SigV4 against the worked examples in AWS's S3 API reference, "Signature Calculations for the
// Authorization Header: Transferring Payload in a Single Chunk (AWS Signature Version 4)":
// credentials AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY, 20130524T000000Z,
// us-east-1, bucket examplebucket. Every intermediate value below is copied from that page.
#include <gtest/gtest.h>

#include "s3/sigv4.h"

namespace aurum::s3 {
namespace {

const Credentials kCreds{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", ""};
constexpr const char* kDate = "20130524T000000Z";
constexpr const char* kHost = "examplebucket.s3.amazonaws.com";

TEST(S3SigV4, EmptyPayloadHash) { EXPECT_EQ(sha256_hex(""), kEmptyPayloadSha256); }

TEST(S3SigV4, AwsExampleGetObject) {
  SigningRequest req;
  req.path = "/test.txt";
  req.payload_sha256 = std::string(kEmptyPayloadSha256);
  req.headers = {{"Host", kHost},
                 {"Range", "bytes=0-9"},
                 {"x-amz-content-sha256", req.payload_sha256},
                 {"x-amz-date", kDate}};
  const Signature s = sign(req, kCreds, "us-east-1", "s3", kDate);
  EXPECT_EQ(s.canonical_request,
            "GET\n"
            "/test.txt\n"
            "\n"
            "host:examplebucket.s3.amazonaws.com\n"
            "range:bytes=0-9\n"
            "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "x-amz-date:20130524T000000Z\n"
            "\n"
            "host;range;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n"
            "20130524T000000Z\n"
            "20130524/us-east-1/s3/aws4_request\n"
            "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
  EXPECT_EQ(s.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
  EXPECT_EQ(s.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
            "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
            "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

TEST(S3SigV4, AwsExampleListObjects) {
  SigningRequest req;
  req.path = "/";
  req.query = {{"prefix", "J"}, {"max-keys", "2"}};  // unsorted on purpose
  req.payload_sha256 = std::string(kEmptyPayloadSha256);
  req.headers = {{"host", kHost}, {"x-amz-date", kDate}, {"x-amz-content-sha256", req.payload_sha256}};
  const Signature s = sign(req, kCreds, "us-east-1", "s3", kDate);
  EXPECT_EQ(s.canonical_request,
            "GET\n"
            "/\n"
            "max-keys=2&prefix=J\n"
            "host:examplebucket.s3.amazonaws.com\n"
            "x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n"
            "x-amz-date:20130524T000000Z\n"
            "\n"
            "host;x-amz-content-sha256;x-amz-date\n"
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(s.string_to_sign,
            "AWS4-HMAC-SHA256\n"
            "20130524T000000Z\n"
            "20130524/us-east-1/s3/aws4_request\n"
            "df57d21db20da04d7fa30298dd4488ba3a2b47ca3a489c74750e0f1e7df1b9b7");
  EXPECT_EQ(s.signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
}

TEST(S3SigV4, AwsExampleGetBucketLifecycle) {
  // A query parameter without a value is canonicalised as "lifecycle=".
  SigningRequest req;
  req.path = "/";
  req.query = {{"lifecycle", ""}};
  req.payload_sha256 = std::string(kEmptyPayloadSha256);
  req.headers = {{"host", kHost}, {"x-amz-date", kDate}, {"x-amz-content-sha256", req.payload_sha256}};
  const Signature s = sign(req, kCreds, "us-east-1", "s3", kDate);
  EXPECT_NE(s.canonical_request.find("\n/\nlifecycle=\nhost:"), std::string::npos) << s.canonical_request;
  EXPECT_EQ(s.string_to_sign.substr(s.string_to_sign.rfind('\n') + 1),
            "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca");
  EXPECT_EQ(s.signature, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

TEST(S3SigV4, UriEncoding) {
  EXPECT_EQ(uri_encode("a b+c/d~e_f.g-h", true), "a%20b%2Bc/d~e_f.g-h");
  EXPECT_EQ(uri_encode("a/b=c&d", false), "a%2Fb%3Dc%26d");
  EXPECT_EQ(uri_encode("\xc3\xa9", false), "%C3%A9");  // UTF-8 bytes, upper-case hex
  // A continuation token is opaque base64: '+', '/' and '=' must all be encoded.
  EXPECT_EQ(uri_encode("1Ab+/x==", false), "1Ab%2B%2Fx%3D%3D");
}

TEST(S3SigV4, CanonicalHeaderValuesAreTrimmed) {
  SigningRequest req;
  req.headers = {{"Host", "  h  "}, {"X-Amz-Meta-A", " a   b  "}};
  req.payload_sha256 = "p";
  EXPECT_EQ(canonical_request(req), "GET\n/\n\nhost:h\nx-amz-meta-a:a b\n\nhost;x-amz-meta-a\np");
}

TEST(S3SigV4, AmzDateIsUtc) {
  using namespace std::chrono;
  EXPECT_EQ(amz_date(system_clock::time_point(seconds(1369353600))), "20130524T000000Z");
}

TEST(S3SigV4, SessionTokenIsSignedAsAHeader) {
  SigningRequest req;
  req.payload_sha256 = std::string(kEmptyPayloadSha256);
  req.headers = {{"host", kHost}, {"x-amz-date", kDate}, {"x-amz-security-token", "tok"}};
  const Signature with = sign(req, kCreds, "us-east-1", "s3", kDate);
  EXPECT_NE(with.authorization.find("SignedHeaders=host;x-amz-date;x-amz-security-token,"), std::string::npos);
}

}  // namespace
}  // namespace aurum::s3
