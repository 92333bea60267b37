// SPDX-License-Identifier: Apache-2.0
// http_route normalisation and the per-service cap.
#include <gtest/gtest.h>

#include <string>

#include "proto/http_route.h"

using aurum::proto::http_request_target;
using aurum::proto::normalize_http_route;
using aurum::proto::RouteTable;

TEST(ProtoRoute, RequestTarget) {
  EXPECT_EQ(http_request_target("GET /a/b?c=1 HTTP/1.1\r\nHost: x\r\n"), "/a/b?c=1");
  EXPECT_EQ(http_request_target("DELETE /x HTTP/1.1"), "/x");
  EXPECT_EQ(http_request_target("POST /truncated-capt"), "/truncated-capt");
  EXPECT_EQ(http_request_target("OPTIONS * HTTP/1.1"), "*");
  EXPECT_EQ(http_request_target("GE"), "");
  EXPECT_EQ(http_request_target("HTTP/1.1 200 OK"), "");
  EXPECT_EQ(http_request_target(""), "");
}

TEST(ProtoRoute, Identifiers) {
  EXPECT_EQ(normalize_http_route("/users/123"), "/users/{id}");
  EXPECT_EQ(normalize_http_route("/users/123/orders/456"), "/users/{id}/orders/{id}");
  EXPECT_EQ(normalize_http_route("/o/3f2504e0-4f89-11d3-9a0c-0305e82c3301"), "/o/{id}");
  EXPECT_EQ(normalize_http_route("/o/3F2504E0-4F89-11D3-9A0C-0305E82C3301/x"), "/o/{id}/x");
  EXPECT_EQ(normalize_http_route("/blob/0123456789abcdef0123"), "/blob/{id}");      // long hex
  EXPECT_EQ(normalize_http_route("/obj/507f1f77bcf86cd799439011"), "/obj/{id}");     // 24 hex
  EXPECT_EQ(normalize_http_route("/t/AbCdEfGhIjKlMnOpQrStUvW1xyz"), "/t/{id}");     // opaque token
  EXPECT_EQ(normalize_http_route("/v1/items"), "/v1/items");        // short mixed: a name
  EXPECT_EQ(normalize_http_route("/api/cafe"), "/api/cafe");        // hex letters, short: a word
  EXPECT_EQ(normalize_http_route("/a/defaced"), "/a/defaced");
  EXPECT_EQ(normalize_http_route("/a/this-is-a-long-readable-slug"), "/a/this-is-a-long-readable-slug");
}

TEST(ProtoRoute, QueryFormsAndSlashes) {
  EXPECT_EQ(normalize_http_route("/search?q=1&page=2"), "/search");
  EXPECT_EQ(normalize_http_route("/a#frag"), "/a");
  EXPECT_EQ(normalize_http_route("/"), "/");
  EXPECT_EQ(normalize_http_route("/?x"), "/");
  EXPECT_EQ(normalize_http_route("//a///b/"), "/a/b");
  EXPECT_EQ(normalize_http_route("http://example.com:8080/users/9?x"), "/users/{id}");
  EXPECT_EQ(normalize_http_route("https://example.com"), "/");
  EXPECT_EQ(normalize_http_route("http://example.com?x=1"), "/");
  EXPECT_EQ(normalize_http_route("*"), "*");
  EXPECT_EQ(normalize_http_route("example.com:443"), "/{other}");
  EXPECT_EQ(normalize_http_route(""), "/{other}");
  EXPECT_EQ(normalize_http_route(std::string("/a\x01/b", 5)), "/{other}");
  EXPECT_EQ(normalize_http_route("/a/\xc3\xa9t\xc3\xa9"), "/{other}");
}

TEST(ProtoRoute, SegmentCap) {
  std::string deep;
  for (int i = 0; i < 20; ++i) deep += "/s" + std::string(1, static_cast<char>('a' + i));
  std::string want;
  for (size_t i = 0; i < RouteTable::kMaxSegments; ++i) want += "/s" + std::string(1, static_cast<char>('a' + i));
  EXPECT_EQ(normalize_http_route(deep), want + "/{rest}");
}

TEST(ProtoRoute, PerServiceCap) {
  RouteTable table(3, 2);
  EXPECT_EQ(table.route("shop", "/a/1"), "/a/{id}");
  EXPECT_EQ(table.route("shop", "/a/2"), "/a/{id}");  // same route, no new slot
  EXPECT_EQ(table.route("shop", "/b"), "/b");
  EXPECT_EQ(table.route("shop", "/c"), "/c");
  EXPECT_EQ(table.routes("shop"), 3u);
  EXPECT_EQ(table.route("shop", "/d"), "/{other}");   // cap reached
  EXPECT_EQ(table.route("shop", "/b?x"), "/b");        // known routes still pass
  EXPECT_EQ(table.overflowed(), 1u);
  EXPECT_EQ(table.route("crm", "/d"), "/d");           // the cap is per service
  EXPECT_EQ(table.route("mes", "/d"), "/{other}");     // and services are capped too
  EXPECT_EQ(table.overflowed(), 2u);
  table.forget("shop");
  EXPECT_EQ(table.routes("shop"), 0u);
  EXPECT_EQ(table.route("shop", "/d"), "/d");
}

TEST(ProtoRoute, ScannerCannotExceedCap) {
  RouteTable table(50, 1);
  for (int i = 0; i < 10000; ++i) table.route("svc", "/probe-" + std::to_string(i) + "x/admin.php");
  EXPECT_EQ(table.routes("svc"), 50u);
  EXPECT_EQ(table.overflowed(), 10000u - 50u);
}
