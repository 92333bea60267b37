// SPDX-License-Identifier: Apache-2.0
#include <gtest/gtest.h>

#include "s3/xml.h"

namespace aurum::s3 {
namespace {

// Shaped like the ListObjectsV2 response example in the S3 API reference, with a key that
// contains markup-looking text (escaped) to prove nothing is found by string search.
constexpr const char* kPage = R"(<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>bucket</Name>
  <Prefix/>
  <KeyCount>3</KeyCount>
  <MaxKeys>3</MaxKeys>
  <IsTruncated>true</IsTruncated>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
  <Contents>
    <Key>my-image.jpg</Key>
    <LastModified>2009-10-12T17:50:30.000Z</LastModified>
    <ETag>"fba9dede5f27731c9771645a39863328"</ETag>
    <Size>434234</Size>
    <StorageClass>STANDARD</StorageClass>
  </Contents>
  <Contents>
    <Key>&lt;Size&gt;999&lt;/Size&gt;</Key>
    <Size>0</Size>
  </Contents>
  <Contents>
    <Key>big</Key>
    <Size>5497558138880</Size>
  </Contents>
</ListBucketResult>)";

TEST(S3Xml, ListObjectsV2Page) {
  const ListObjectsPage p = parse_list_objects_v2(kPage);
  EXPECT_EQ(p.objects, 3u);
  EXPECT_EQ(p.bytes, 434234u + 0u + 5497558138880u);  // 5 TiB object: no 32-bit overflow
  EXPECT_TRUE(p.truncated);
  EXPECT_EQ(p.next_continuation_token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
}

TEST(S3Xml, LastPageWithoutNamespaceAndEmptyBucket) {
  const ListObjectsPage p = parse_list_objects_v2(
      "<ListBucketResult><Name>b</Name><KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>");
  EXPECT_EQ(p.objects, 0u);
  EXPECT_EQ(p.bytes, 0u);
  EXPECT_FALSE(p.truncated);
}

TEST(S3Xml, RejectsMalformedAndUnexpectedDocuments) {
  EXPECT_THROW(parse_list_objects_v2("<ListBucketResult><Contents><Size>1</Size>"), XmlError);
  EXPECT_THROW(parse_list_objects_v2("<Error><Code>AccessDenied</Code></Error>"), XmlError);
  EXPECT_THROW(parse_list_objects_v2("<ListBucketResult><Contents><Size>-1</Size></Contents></ListBucketResult>"),
               XmlError);
  EXPECT_THROW(parse_list_objects_v2("<ListBucketResult><Contents><Size>12x</Size></Contents></ListBucketResult>"),
               XmlError);
  EXPECT_THROW(parse_list_objects_v2("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>"),
               XmlError);  // truncated, yet no token to continue from
  EXPECT_THROW(parse_list_objects_v2(""), XmlError);
  EXPECT_THROW(parse_list_objects_v2("<html><body>proxy error</body></html>"), XmlError);
}

TEST(S3Xml, ListBuckets) {
  const auto names = parse_list_buckets(R"(<?xml version="1.0" encoding="UTF-8"?>
<ListAllMyBucketsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Owner><ID>1</ID><DisplayName>me</DisplayName></Owner>
  <Buckets>
    <Bucket><Name>alpha</Name><CreationDate>2019-12-11T23:32:47+00:00</CreationDate></Bucket>
    <Bucket><Name>b&amp;c</Name><CreationDate>2019-12-11T23:32:47+00:00</CreationDate></Bucket>
  </Buckets>
</ListAllMyBucketsResult>)");
  EXPECT_EQ(names, (std::vector<std::string>{"alpha", "b&c"}));
  EXPECT_THROW(parse_list_buckets("<ListBucketResult/>"), XmlError);
}

TEST(S3Xml, ErrorDocument) {
  auto e = parse_error(R"(<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error>)");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, "SignatureDoesNotMatch");
  EXPECT_EQ(e->message, "The request signature we calculated does not match");
  EXPECT_FALSE(parse_error("not xml").has_value());
  EXPECT_FALSE(parse_error("<ListBucketResult/>").has_value());
}

}  // namespace
}  // namespace aurum::s3
