// SPDX-License-Identifier: Apache-2.0
// bpf/proto/http.h: the request-line and status-line classifiers the BPF side runs.
#include <gtest/gtest.h>

#include <cctype>
#include <cstring>
#include <random>
#include <string>

#include "bpf/proto/http.h"
#include "proto_fixture.h"

namespace {

// The classifiers read AURUM_HTTP_PEEK bytes whatever `len` says; pad like a BPF buffer, with
// junk past `len` so that a read beyond it would show.
int method_of(const std::string& s, size_t len = std::string::npos) {
  uint8_t buf[AURUM_HTTP_PEEK];
  std::memset(buf, 0xA5, sizeof(buf));
  size_t n = std::min({s.size(), len, sizeof(buf)});
  std::memcpy(buf, s.data(), n);
  return aurum_http_parse_method(buf, static_cast<__u32>(n));
}

int status_of(const std::string& s, size_t len = std::string::npos) {
  uint8_t buf[AURUM_HTTP_PEEK];
  std::memset(buf, 'Z', sizeof(buf));
  size_t n = std::min({s.size(), len, sizeof(buf)});
  std::memcpy(buf, s.data(), n);
  return aurum_http_parse_status(buf, static_cast<__u32>(n));
}

// A plain reference implementation with std::string, for differential testing.
int reference_method(const std::string& s) {
  static const char* names[] = {"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"};
  for (int m = 1; m < AURUM_HTTP_METHOD_COUNT; ++m) {
    std::string want = std::string(names[m - 1]) + " ";
    size_t cmp = std::min(s.size(), want.size());
    if (s.compare(0, cmp, want, 0, cmp) != 0) continue;
    if (s.size() <= want.size()) return AURUM_HTTP_INCOMPLETE;
    char c = s[want.size()];
    bool ok;
    if (m == AURUM_HTTP_METHOD_CONNECT)
      ok = std::isalnum(static_cast<unsigned char>(c)) || c == '[';
    else
      ok = c == '/' || c == 'h' || c == 'H' || (c == '*' && m == AURUM_HTTP_METHOD_OPTIONS);
    return ok ? m : 0;
  }
  return s.empty() ? AURUM_HTTP_INCOMPLETE : 0;
}

}  // namespace

TEST(ProtoHttp, EveryMethodOriginForm) {
  EXPECT_EQ(method_of("GET /index.html HTTP/1.1\r\n"), AURUM_HTTP_METHOD_GET);
  EXPECT_EQ(method_of("HEAD / HTTP/1.1\r\n"), AURUM_HTTP_METHOD_HEAD);
  EXPECT_EQ(method_of("POST /api/orders HTTP/1.1\r\n"), AURUM_HTTP_METHOD_POST);
  EXPECT_EQ(method_of("PUT /x HTTP/1.1\r\n"), AURUM_HTTP_METHOD_PUT);
  EXPECT_EQ(method_of("DELETE /x/1 HTTP/1.1\r\n"), AURUM_HTTP_METHOD_DELETE);
  EXPECT_EQ(method_of("OPTIONS /x HTTP/1.1\r\n"), AURUM_HTTP_METHOD_OPTIONS);
  EXPECT_EQ(method_of("TRACE / HTTP/1.1\r\n"), AURUM_HTTP_METHOD_TRACE);
  EXPECT_EQ(method_of("PATCH /x HTTP/1.1\r\n"), AURUM_HTTP_METHOD_PATCH);
}

TEST(ProtoHttp, OtherTargetForms) {
  EXPECT_EQ(method_of("OPTIONS * HTTP/1.1\r\n"), AURUM_HTTP_METHOD_OPTIONS);
  EXPECT_EQ(method_of("GET * HTTP/1.1\r\n"), 0);  // asterisk-form is OPTIONS only
  EXPECT_EQ(method_of("CONNECT example.com:443 HTTP/1.1\r\n"), AURUM_HTTP_METHOD_CONNECT);
  EXPECT_EQ(method_of("CONNECT [::1]:443 HTTP/1.1\r\n"), AURUM_HTTP_METHOD_CONNECT);
  EXPECT_EQ(method_of("CONNECT /x HTTP/1.1\r\n"), 0);
  EXPECT_EQ(method_of("GET http://example.com/ HTTP/1.1\r\n"), AURUM_HTTP_METHOD_GET);
}

TEST(ProtoHttp, NotRequests) {
  EXPECT_EQ(method_of("get / HTTP/1.1"), 0);      // methods are case-sensitive
  EXPECT_EQ(method_of("GET  / HTTP/1.1"), 0);     // one space exactly
  EXPECT_EQ(method_of("GET\t/ HTTP/1.1"), 0);
  EXPECT_EQ(method_of("GETX / HTTP/1.1"), 0);
  EXPECT_EQ(method_of("POSTS / HTTP/1.1"), 0);
  EXPECT_EQ(method_of("HTTP/1.1 200 OK"), 0);
  EXPECT_EQ(method_of("PRI * HTTP/2.0\r\n"), 0);  // the HTTP/2 preface is not HTTP/1.x
  EXPECT_EQ(method_of(std::string("\0GET /", 6)), 0);
  EXPECT_EQ(method_of("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), 0);  // TLS ClientHello
}

TEST(ProtoHttp, SplitRequestLineIsIncomplete) {
  const std::string line = "DELETE /items/7 HTTP/1.1\r\n";
  for (size_t n = 0; n <= 7; ++n) EXPECT_EQ(method_of(line, n), AURUM_HTTP_INCOMPLETE) << n;
  EXPECT_EQ(method_of(line, 8), AURUM_HTTP_METHOD_DELETE);
  EXPECT_EQ(method_of("GE", 2), AURUM_HTTP_INCOMPLETE);
  EXPECT_EQ(method_of("GX", 2), 0);
  EXPECT_EQ(method_of("OPTIONS ", 8), AURUM_HTTP_INCOMPLETE);
}

TEST(ProtoHttp, StatusLines) {
  for (int code = 100; code <= 599; ++code) {
    for (const char* version : {"HTTP/1.1 ", "HTTP/1.0 "}) {
      std::string line = version + std::to_string(code) + " Reason\r\n";
      EXPECT_EQ(status_of(line), code) << line;
    }
  }
  EXPECT_EQ(status_of("HTTP/1.1 204\r\n"), 204);  // empty reason phrase without its space
  EXPECT_EQ(status_of("HTTP/1.1 099 X"), 0);
  EXPECT_EQ(status_of("HTTP/1.1 600 X"), 0);
  EXPECT_EQ(status_of("HTTP/1.1 2000 X"), 0);
  EXPECT_EQ(status_of("HTTP/1.1 20x X"), 0);
  EXPECT_EQ(status_of("HTTP/1.2 200 OK"), 0);
  EXPECT_EQ(status_of("HTTP/2 200 OK\r\n"), 0);
  EXPECT_EQ(status_of("HTTP/1.1  200 OK"), 0);
  EXPECT_EQ(status_of("http/1.1 200 OK"), 0);
  EXPECT_EQ(status_of("GET / HTTP/1.1\r\n"), 0);
}

TEST(ProtoHttp, SplitStatusLineIsIncomplete) {
  const std::string line = "HTTP/1.1 503 Service Unavailable\r\n";
  for (size_t n = 0; n <= 12; ++n) EXPECT_EQ(status_of(line, n), AURUM_HTTP_INCOMPLETE) << n;
  EXPECT_EQ(status_of(line, 13), 503);
  EXPECT_EQ(status_of("HTTP/1.3", 8), 0);
  EXPECT_EQ(status_of("HTTP/1.1 2a", 11), 0);
}

TEST(ProtoHttp, InterimResponses) {
  EXPECT_TRUE(aurum_http_status_is_interim(100));  // 100 Continue must not end a request
  EXPECT_TRUE(aurum_http_status_is_interim(102));
  EXPECT_TRUE(aurum_http_status_is_interim(103));
  EXPECT_FALSE(aurum_http_status_is_interim(101));  // Switching Protocols is final
  EXPECT_FALSE(aurum_http_status_is_interim(200));
  EXPECT_FALSE(aurum_http_status_is_interim(0));
  EXPECT_FALSE(aurum_http_status_is_interim(AURUM_HTTP_INCOMPLETE));
}

TEST(ProtoHttp, MethodNames) {
  for (int m = 1; m < AURUM_HTTP_METHOD_COUNT; ++m) {
    std::string line = std::string(aurum_http_method_name(m)) + " http://h/ HTTP/1.1";
    EXPECT_EQ(method_of(line), m) << line;
  }
  EXPECT_STREQ(aurum_http_method_name(AURUM_HTTP_METHOD_UNKNOWN), "_OTHER");
  EXPECT_STREQ(aurum_http_method_name(99), "_OTHER");
}

TEST(ProtoHttp, DifferentialAgainstReference) {
  // Inputs from an alphabet dense in the letters that matter, at every length up to the peek.
  const std::string alphabet = "GETHADPOSUCNIRLX /*h[1 ";
  std::mt19937 rng(42);
  for (int i = 0; i < 200000; ++i) {
    std::string s(std::uniform_int_distribution<size_t>(0, AURUM_HTTP_PEEK)(rng), ' ');
    // Start from a real method name half of the time, so that matches are frequent.
    if (i % 2) {
      std::string name = aurum_http_method_name(1 + static_cast<int>(rng() % 9));
      s.replace(0, std::min(s.size(), name.size()), name.substr(0, std::min(s.size(), name.size())));
      if (s.size() > name.size()) s[name.size()] = rng() % 4 ? ' ' : 'X';
    }
    for (size_t k = (i % 2) ? s.size() : 0; k < s.size(); ++k) s[k] = alphabet[rng() % alphabet.size()];
    if (i % 2 && s.size() > 8) s[s.size() - 1] = alphabet[rng() % alphabet.size()];
    ASSERT_EQ(method_of(s), reference_method(s)) << '"' << s << '"';
  }
}

TEST(ProtoHttp, CurlAgainstPythonServerCapture) {
  // What the classifiers say about the first bytes of every read in a real conversation: request
  // starts and status lines are recognised, bodies ("xxx...", "ok\n", and a PATCH body that
  // itself reads "POST / HTTP/1.1" but sits after the headers in the same read) are not.
  auto chunks = aurum::test::load_capture("http_curl.hex");
  std::vector<int> methods, statuses;
  for (const auto& c : chunks) {
    std::string head(c.bytes.begin(), c.bytes.end());
    if (c.from_client) {
      int m = method_of(head);
      if (m != 0) methods.push_back(m);
      EXPECT_EQ(status_of(head), 0);
    } else {
      int code = status_of(head);
      if (code != 0) statuses.push_back(code);
      EXPECT_EQ(method_of(head), 0);
    }
  }
  EXPECT_EQ(methods, (std::vector<int>{AURUM_HTTP_METHOD_GET, AURUM_HTTP_METHOD_GET, AURUM_HTTP_METHOD_GET,
                                       AURUM_HTTP_METHOD_PUT, AURUM_HTTP_METHOD_DELETE, AURUM_HTTP_METHOD_HEAD,
                                       AURUM_HTTP_METHOD_OPTIONS, AURUM_HTTP_METHOD_PATCH}));
  EXPECT_EQ(statuses, (std::vector<int>{200, 500, 200, 100, 200, 200, 200, 200, 200}));
  // Requests answered: every final status, not the interim 100.
  size_t finals = 0;
  for (int code : statuses) finals += aurum_http_status_is_interim(code) ? 0 : 1;
  EXPECT_EQ(finals, methods.size());
}
