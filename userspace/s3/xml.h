// SPDX-License-Identifier: Apache-2.0
// The three S3 XML documents the collector reads, parsed with expat (never by string search:
// keys may contain anything, including text that looks like tags, escaped as entities).
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace aurum::s3 {

struct XmlError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One page of ListObjectsV2 (ListBucketResult).
struct ListObjectsPage {
  std::uint64_t bytes = 0;    // sum of Contents/Size on this page
  std::uint64_t objects = 0;  // number of Contents elements on this page
  bool truncated = false;     // IsTruncated
  std::string next_continuation_token;
};

// An S3 <Error> document.
struct ErrorDocument {
  std::string code;
  std::string message;
};

// Throws XmlError on malformed XML, on a different root element, or on a non-numeric Size.
ListObjectsPage parse_list_objects_v2(std::string_view xml);
// ListAllMyBucketsResult/Buckets/Bucket/Name, in document order.
std::vector<std::string> parse_list_buckets(std::string_view xml);
// nullopt when `xml` is not a well-formed <Error> document.
std::optional<ErrorDocument> parse_error(std::string_view xml);

}  // namespace aurum::s3
