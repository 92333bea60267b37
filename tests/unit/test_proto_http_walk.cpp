// SPDX-License-Identifier: Apache-2.0
// bpf/proto/http.h: the walk over the messages of a segment (header block end, Content-Length,
// Transfer-Encoding, the next start line), eight bytes a step, as the BPF side runs it; against a
// plain std::string reference on hand-written and generated segments.
#include <gtest/gtest.h>

#include <cctype>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bpf/proto/http.h"

namespace {

struct Msg {
  unsigned at;
  int kind;
  long long body;
  bool operator==(const Msg& o) const { return at == o.at && kind == o.kind && body == o.body; }
};

std::ostream& operator<<(std::ostream& os, const Msg& m) {
  return os << "{at " << m.at << ", kind " << m.kind << ", body " << m.body << "}";
}

struct Result {
  std::vector<Msg> msgs;
  int stop;
  unsigned next;
};

// One window as the BPF side walks it: the bytes in a buffer whose slack holds junk, so that a
// read past `n` that mattered would show.
Result walk(const std::string& seg, bool response, int first_kind = -100, unsigned head_mask = 0) {
  auto s = std::make_unique<aurum_http_walk>();
  std::memset(s.get(), 0xA5, sizeof(*s));
  size_t n = std::min<size_t>(seg.size(), AURUM_HTTP_WALK);
  std::memcpy(s->b, seg.data(), n);
  if (first_kind == -100) {
    __u8 peek[AURUM_HTTP_PEEK] = {};
    std::memcpy(peek, seg.data(), std::min<size_t>(n, AURUM_HTTP_PEEK));
    __u32 len = static_cast<__u32>(std::min<size_t>(n, AURUM_HTTP_PEEK));
    first_kind = response ? aurum_http_parse_status(peek, len) : aurum_http_parse_method(peek, len);
  }
  s->count = 0;
  s->finals = 0;
  aurum_http_walk_begin(s.get(), static_cast<__u32>(n), 0, response, first_kind, head_mask);
  aurum_http_walk_all(s.get());
  Result r{{}, s->stop, s->next};
  for (unsigned k = 0; k < s->count; k++) r.msgs.push_back({s->msg[k].at, s->msg[k].kind, s->msg[k].body});
  EXPECT_EQ(s->state, AURUM_HTTP_WALK_DONE);
  return r;
}

// ---- A plain reference ---------------------------------------------------------------------------

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

long long ref_clen(const std::string& value_and_cr) {
  // value_and_cr: the bytes after "content-length:" up to the line feed.
  std::string v = value_and_cr;
  if (!v.empty() && v.back() == '\r') v.pop_back();
  if (v.size() > AURUM_HTTP_CLEN_MAX) return AURUM_HTTP_CLEN_BAD;
  size_t a = v.find_first_not_of(" \t"), b = v.find_last_not_of(" \t");
  if (a == std::string::npos) return AURUM_HTTP_CLEN_BAD;
  std::string d = v.substr(a, b - a + 1);
  if (d.empty() || d.size() > 10) return AURUM_HTTP_CLEN_BAD;
  for (char c : d)
    if (c < '0' || c > '9') return AURUM_HTTP_CLEN_BAD;
  long long x = std::stoll(d);
  return x > 0x7fffffffLL ? AURUM_HTTP_CLEN_BAD : x;
}

int classify(const std::string& seg, size_t at, bool response) {
  __u8 peek[AURUM_HTTP_PEEK] = {};
  size_t len = std::min<size_t>(seg.size() - at, AURUM_HTTP_PEEK);
  std::memcpy(peek, seg.data() + at, len);
  return response ? aurum_http_parse_status(peek, static_cast<__u32>(len))
                  : aurum_http_parse_method(peek, static_cast<__u32>(len));
}

Result reference(const std::string& seg, bool response, unsigned head_mask = 0) {
  Result r{{}, AURUM_HTTP_STOP_NONE, 0};
  size_t n = std::min<size_t>(seg.size(), AURUM_HTTP_WALK), pos = 0;
  unsigned finals = 0;
  int kind = classify(seg.substr(0, n), 0, response);
  while (true) {
    if (kind == AURUM_HTTP_INCOMPLETE && n - pos < AURUM_HTTP_PEEK) {
      r.stop = AURUM_HTTP_STOP_PARTIAL;
      r.next = static_cast<unsigned>(pos);
      return r;
    }
    if (kind <= 0 || r.msgs.size() >= AURUM_HTTP_WALK_MSGS) {
      r.next = static_cast<unsigned>(pos);
      return r;
    }
    r.msgs.push_back({static_cast<unsigned>(pos), kind, AURUM_HTTP_BODY_UNKNOWN});
    long long clen = AURUM_HTTP_CLEN_NONE;
    bool te = false;
    size_t line = pos, end = 0;
    while (true) {
      size_t p = seg.find('\n', line);
      if (p == std::string::npos || p >= n) {
        r.stop = AURUM_HTTP_STOP_OPEN;
        return r;
      }
      std::string l = seg.substr(line, p - line);
      if (l.empty() || l == "\r") {
        end = p + 1;
        break;
      }
      if (lower(l).rfind("content-length:", 0) == 0) clen = ref_clen(l.substr(15));
      if (lower(l).rfind("transfer-encoding:", 0) == 0) te = true;
      line = p + 1;
    }
    bool head = false;
    if (response && !aurum_http_status_is_interim(kind)) head = (head_mask >> (finals++ & 7)) & 1;
    long long body;
    if (response && (head || (kind >= 100 && kind <= 199) || kind == 204 || kind == 304))
      body = 0;
    else if (te || clen == AURUM_HTTP_CLEN_BAD)
      body = AURUM_HTTP_BODY_UNKNOWN;
    else if (clen >= 0)
      body = clen;
    else
      body = response ? AURUM_HTTP_BODY_UNKNOWN : 0;
    r.msgs.back().body = body;
    if (body < 0) {
      r.stop = AURUM_HTTP_STOP_UNKNOWN;
      return r;
    }
    size_t next = end + static_cast<size_t>(body);
    if (next >= n) {
      r.stop = AURUM_HTTP_STOP_NEXT;
      r.next = static_cast<unsigned>(next);
      return r;
    }
    pos = next;
    kind = classify(seg.substr(0, n), pos, response);
  }
}

void expect_same(const std::string& seg, bool response, unsigned head_mask = 0) {
  Result got = walk(seg, response, -100, head_mask), want = reference(seg, response, head_mask);
  EXPECT_EQ(got.msgs, want.msgs) << seg;
  EXPECT_EQ(got.stop, want.stop) << seg;
  if (want.stop == AURUM_HTTP_STOP_NEXT || want.stop == AURUM_HTTP_STOP_PARTIAL) EXPECT_EQ(got.next, want.next) << seg;
}

}  // namespace

TEST(ProtoHttpWalk, NewlineMaskIsExact) {
  std::mt19937_64 rng(7);
  for (int i = 0; i < 200000; i++) {
    __u64 w = rng();
    // Bias towards line feeds and their neighbours (0x0b after a 0x0a fooled the classic test).
    for (int j = 0; j < 8; j++)
      if (rng() % 3 == 0) w = (w & ~(0xffULL << (8 * j))) | (static_cast<__u64>(0x09 + rng() % 3) << (8 * j));
    __u64 want = 0;
    for (int j = 0; j < 8; j++)
      if (((w >> (8 * j)) & 0xff) == 0x0a) want |= 0x80ULL << (8 * j);
    ASSERT_EQ(aurum_http_newlines(w), want) << std::hex << w;
    if (want) {
      int j = 0;
      while (!((want >> (8 * j)) & 0x80)) j++;
      ASSERT_EQ(aurum_http_lowest_byte(want), static_cast<__u32>(j));
    }
  }
}

TEST(ProtoHttpWalk, OneRequestWithoutBody) {
  std::string r = "GET /x HTTP/1.1\r\nHost: a\r\n\r\n";
  Result got = walk(r, false);
  ASSERT_EQ(got.msgs.size(), 1u);
  EXPECT_EQ(got.msgs[0], (Msg{0, AURUM_HTTP_METHOD_GET, 0}));
  EXPECT_EQ(got.stop, AURUM_HTTP_STOP_NEXT);
  EXPECT_EQ(got.next, r.size());
}

TEST(ProtoHttpWalk, PipelinedRequestsWithBodies) {
  std::string a = "POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nGET /", b = "PUT /b HTTP/1.1\r\ncontent-length:\t12 \r\n\r\nGET / HTTP/1",
              c = "DELETE /c HTTP/1.1\r\n\r\n";
  Result got = walk(a + b + c, false);
  ASSERT_EQ(got.msgs.size(), 3u);
  EXPECT_EQ(got.msgs[0], (Msg{0, AURUM_HTTP_METHOD_POST, 5}));  // the body looks like a request: skipped
  EXPECT_EQ(got.msgs[1], (Msg{static_cast<unsigned>(a.size()), AURUM_HTTP_METHOD_PUT, 12}));
  EXPECT_EQ(got.msgs[2], (Msg{static_cast<unsigned>(a.size() + b.size()), AURUM_HTTP_METHOD_DELETE, 0}));
  EXPECT_EQ(got.stop, AURUM_HTTP_STOP_NEXT);
}

TEST(ProtoHttpWalk, CoalescedResponses) {
  std::string ok = "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nok\n";
  std::string err = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nbad\n";
  Result got = walk(ok + ok + err, true);
  ASSERT_EQ(got.msgs.size(), 3u);
  EXPECT_EQ(got.msgs[0], (Msg{0, 200, 3}));
  EXPECT_EQ(got.msgs[1], (Msg{static_cast<unsigned>(ok.size()), 200, 3}));
  EXPECT_EQ(got.msgs[2], (Msg{static_cast<unsigned>(2 * ok.size()), 500, 4}));
  EXPECT_EQ(got.next, 2 * ok.size() + err.size());
}

TEST(ProtoHttpWalk, ResponsesWithoutBodies) {
  // 100 Continue then the final response; a 204; the answer to a HEAD (its Content-Length
  // announces what a GET would get; no body follows); a 304.
  std::string cont = "HTTP/1.1 100 Continue\r\n\r\n", created = "HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
  std::string none = "HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", head = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
  std::string nm = "HTTP/1.1 304 Not Modified\r\n\r\n";
  // Finals: created (0), none (1), head (2: a HEAD), nm (3).
  Result got = walk(cont + created + none + head + nm, true, -100, 1u << 2);
  ASSERT_EQ(got.msgs.size(), 5u);
  EXPECT_EQ(got.msgs[0].body, 0);
  EXPECT_EQ(got.msgs[1], (Msg{static_cast<unsigned>(cont.size()), 201, 2}));
  EXPECT_EQ(got.msgs[2].body, 0);
  EXPECT_EQ(got.msgs[3].kind, 200);
  EXPECT_EQ(got.msgs[3].body, 0);
  EXPECT_EQ(got.msgs[4].kind, 304);
  EXPECT_EQ(got.stop, AURUM_HTTP_STOP_NEXT);
}

TEST(ProtoHttpWalk, ChunkedAndCloseDelimitedBodiesAreUnknown) {
  Result chunked = walk("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n3\r\nabc\r\n0\r\n\r\n", true);
  ASSERT_EQ(chunked.msgs.size(), 1u);
  EXPECT_EQ(chunked.msgs[0].body, AURUM_HTTP_BODY_UNKNOWN);
  EXPECT_EQ(chunked.stop, AURUM_HTTP_STOP_UNKNOWN);
  Result to_close = walk("HTTP/1.0 200 OK\r\nServer: x\r\n\r\nanything", true);
  EXPECT_EQ(to_close.msgs[0].body, AURUM_HTTP_BODY_UNKNOWN);
  Result chunked_req = walk("POST / HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n", false);
  EXPECT_EQ(chunked_req.msgs[0].body, AURUM_HTTP_BODY_UNKNOWN);
}

TEST(ProtoHttpWalk, ContentLengthValues) {
  auto body = [](const std::string& field) {
    return walk("POST / HTTP/1.1\r\n" + field + "\r\n\r\n", false).msgs.at(0).body;
  };
  EXPECT_EQ(body("Content-Length: 0"), 0);
  EXPECT_EQ(body("CONTENT-LENGTH:42"), 42);
  EXPECT_EQ(body("content-length: \t 1048576 \t"), 1048576);
  EXPECT_EQ(body("Content-Length: 2147483647"), 2147483647);
  EXPECT_EQ(body("Content-Length: 2147483648"), AURUM_HTTP_BODY_UNKNOWN);
  EXPECT_EQ(body("Content-Length: 12345678901"), AURUM_HTTP_BODY_UNKNOWN);
  EXPECT_EQ(body("Content-Length: 5, 5"), AURUM_HTTP_BODY_UNKNOWN);
  EXPECT_EQ(body("Content-Length: -1"), AURUM_HTTP_BODY_UNKNOWN);
  EXPECT_EQ(body("Content-Length: 4 2"), AURUM_HTTP_BODY_UNKNOWN);
  EXPECT_EQ(body("Content-Length: "), AURUM_HTTP_BODY_UNKNOWN);
  EXPECT_EQ(body("Content-Lengthy: 5"), 0);       // another field: no Content-Length at all
  EXPECT_EQ(body("Content\rLength: 5"), 0);       // not a name that case folding may produce
  EXPECT_EQ(body("X-Content-Length: 5"), 0);
  EXPECT_EQ(body("Content-Length: 5\r\nContent-Length: 7"), 7);  // the last one (a list is invalid anyway)
  // One space, 1 to 5 digits, CR LF: the one-step path (aurum_http_walk_clen_fast); every other
  // shape a byte per step. Both give the same values.
  for (long v : {0L, 3L, 9L, 10L, 615L, 1000L, 9999L, 12345L, 99999L, 100000L, 123456L, 9876543L}) {
    EXPECT_EQ(body("Content-Length: " + std::to_string(v)), v) << v;
    EXPECT_EQ(body("Content-Length:  " + std::to_string(v)), v) << v;   // two spaces
    EXPECT_EQ(body("Content-Length: " + std::to_string(v) + " "), v) << v; // OWS after
  }
  EXPECT_EQ(body("Content-Length: 00007"), 7);
  EXPECT_EQ(body("Content-Length: 1a3"), AURUM_HTTP_BODY_UNKNOWN);
  EXPECT_EQ(body("Content-Length: 12/45"), AURUM_HTTP_BODY_UNKNOWN);
  EXPECT_EQ(body("Content-Length: 12:45"), AURUM_HTTP_BODY_UNKNOWN);
  EXPECT_EQ(body("Content-Length: 3\r"), AURUM_HTTP_BODY_UNKNOWN);  // a CR not before LF
}

TEST(ProtoHttpWalk, WhereTheWalkStops) {
  // A start line cut by the segment's end.
  std::string a = "GET /a HTTP/1.1\r\n\r\n";
  Result partial = walk(a + "GE", false);
  EXPECT_EQ(partial.msgs.size(), 1u);
  EXPECT_EQ(partial.stop, AURUM_HTTP_STOP_PARTIAL);
  EXPECT_EQ(partial.next, a.size());
  // A header block going on in the next segment.
  Result open = walk("GET /a HTTP/1.1\r\nHost: a\r\nUser-Ag", false);
  EXPECT_EQ(open.stop, AURUM_HTTP_STOP_OPEN);
  // Bytes that are no start line after a message.
  Result junk = walk(a + "\x16\x03\x01 not http at all", false);
  EXPECT_EQ(junk.msgs.size(), 1u);
  EXPECT_EQ(junk.stop, AURUM_HTTP_STOP_NONE);
  // A body going past the segment: `next` says how far.
  Result big = walk("POST / HTTP/1.1\r\nContent-Length: 1000000\r\n\r\nxyz", false);
  EXPECT_EQ(big.stop, AURUM_HTTP_STOP_NEXT);
  EXPECT_EQ(big.next, 44u + 1000000u);  // 44 bytes of start line and header block
  // More messages than the FIFO holds: the first AURUM_HTTP_WALK_MSGS.
  std::string many;
  for (int i = 0; i < 12; i++) many += a;
  Result capped = walk(many, false);
  EXPECT_EQ(capped.msgs.size(), static_cast<size_t>(AURUM_HTTP_WALK_MSGS));
  EXPECT_EQ(capped.stop, AURUM_HTTP_STOP_NONE);
}

TEST(ProtoHttpWalk, WindowStartingInsideAMessage) {
  // The first bytes of the request line came in an earlier segment (classified from there).
  Result r = walk("T /x HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiGET / HTTP/1.1\r\n\r\n", false, AURUM_HTTP_METHOD_GET);
  ASSERT_EQ(r.msgs.size(), 2u);
  EXPECT_EQ(r.msgs[0], (Msg{0, AURUM_HTTP_METHOD_GET, 2}));
  EXPECT_EQ(r.msgs[1].at, 38u);
}

// Generated segments: requests or responses with random fields, names in random case, bodies,
// junk, cut anywhere; the walk equals the reference.
TEST(ProtoHttpWalk, DifferentialAgainstReference) {
  std::mt19937 rng(42);
  auto pick = [&](std::initializer_list<const char*> l) { return std::string(*(l.begin() + rng() % l.size())); };
  auto mixcase = [&](std::string s) {
    for (auto& c : s)
      if (rng() % 2) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
  };
  for (int iter = 0; iter < 20000; iter++) {
    bool response = rng() % 2;
    unsigned head_mask = rng() % 256;
    std::string seg;
    int msgs = 1 + rng() % 10;
    for (int m = 0; m < msgs; m++) {
      seg += response ? pick({"HTTP/1.1 200 OK", "HTTP/1.1 500 Oops", "HTTP/1.0 204 ", "HTTP/1.1 100 Continue",
                              "HTTP/1.1 304 Not Modified", "HTTP/1.1 404 Not Found"})
                      : pick({"GET /", "POST /api/x?y=1", "PUT /a", "HEAD /", "DELETE /x/1", "OPTIONS *"}) +
                            std::string(" HTTP/1.1");
      seg += pick({"\r\n", "\n"});
      int fields = rng() % 6;
      int body = -1;
      for (int f = 0; f < fields; f++) {
        switch (rng() % 6) {
        case 0: body = static_cast<int>(rng() % 300); seg += mixcase("content-length:") + pick({"", " ", "\t", "  "}) + std::to_string(body) + pick({"", " "}); break;
        case 1: seg += mixcase("transfer-encoding:") + " chunked"; break;
        case 2: seg += "Host: example.com"; break;
        case 3: seg += "Content-Type: text/plain"; break;
        case 4: seg += "c" + std::string(rng() % 20, 'x') + ": " + std::to_string(rng() % 100); break;
        default: seg += "Content-Length: " + pick({"1,1", "x", "99999999999", "-3", ""}); break;
        }
        seg += pick({"\r\n", "\n"});
      }
      seg += pick({"\r\n", "\n"});
      if (body > 0) seg += std::string(static_cast<size_t>(body), "GH\r\n"[rng() % 4]);
      if (rng() % 20 == 0) seg += "junk";
    }
    if (rng() % 3 == 0) seg.resize(rng() % (seg.size() + 1));
    if (seg.size() < 2) continue;
    if (seg.size() > AURUM_HTTP_WALK) seg.resize(AURUM_HTTP_WALK);
    expect_same(seg, response, head_mask);
    if (HasFailure()) break;
  }
}
