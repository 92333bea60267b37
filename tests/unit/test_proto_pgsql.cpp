// SPDX-License-Identifier: Apache-2.0
// PostgreSQL stream parser: real captures (psql, pgbench, a raw pipelining client against
// PostgreSQL 15) fed whole, byte by byte, in random splits and with gaps.
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>
#include <vector>

#include "bpf/proto/pgsql.h"
#include "proto/pgsql.h"
#include "proto_fixture.h"

using aurum::proto::PgDirection;
using aurum::proto::PgGiveUp;
using aurum::proto::PgQueryEvent;
using aurum::proto::PgQueryKind;
using aurum::proto::PgsqlParser;
using aurum::test::Chunk;

namespace {

struct PgRun {
  std::vector<PgQueryEvent> events;
  PgsqlParser parser{[this](const PgQueryEvent& e) { events.push_back(e); }};

  void feed(const std::vector<Chunk>& chunks) {
    for (const auto& c : chunks)
      parser.feed(c.from_client ? PgDirection::kFrontend : PgDirection::kBackend, c.bytes.data(),
                  c.bytes.size(), c.ns);
  }
};

std::vector<PgQueryEvent> run(const std::vector<Chunk>& chunks) {
  PgRun r;
  r.feed(chunks);
  EXPECT_EQ(r.parser.stats().malformed, 0u);
  EXPECT_EQ(r.parser.stats().resyncs, 0u);
  return r.events;
}

void expect_same(const std::vector<PgQueryEvent>& a, const std::vector<PgQueryEvent>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].start_ns, b[i].start_ns) << i;
    EXPECT_EQ(a[i].end_ns, b[i].end_ns) << i;
    EXPECT_EQ(a[i].kind, b[i].kind) << i;
    EXPECT_EQ(a[i].error, b[i].error) << i;
    EXPECT_EQ(a[i].sqlstate, b[i].sqlstate) << i;
  }
}

// Every fragmentation of the same capture must give the same events.
void expect_fragmentation_invariant(const std::vector<Chunk>& chunks) {
  auto whole = run(chunks);
  for (unsigned seed = 1; seed <= 20; ++seed) {
    std::mt19937 rng(seed);
    expect_same(whole, run(aurum::test::resplit(chunks, rng, seed % 4 == 0 ? 1 : 3 + seed * 5)));
  }
}

// Builders for synthetic streams (the framing of the PostgreSQL docs, "Message Formats").
std::vector<uint8_t> msg(char type, const std::string& body = {}) {
  std::vector<uint8_t> m{static_cast<uint8_t>(type)};
  uint32_t len = static_cast<uint32_t>(body.size() + 4);
  for (int s = 24; s >= 0; s -= 8) m.push_back(static_cast<uint8_t>(len >> s));
  m.insert(m.end(), body.begin(), body.end());
  return m;
}
std::string cstr(const std::string& s) { return s + std::string(1, '\0'); }
std::vector<uint8_t> cat(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
std::vector<uint8_t> ready() { return msg('Z', "I"); }
std::vector<uint8_t> error(const std::string& state) {
  return msg('E', cstr("SERROR") + cstr("VERROR") + cstr("C" + state) + cstr("Mboom") + std::string(1, '\0'));
}
std::vector<uint8_t> datarow(size_t n) { return msg('D', std::string(2, '\0') + std::string(n, 'x')); }

}  // namespace

TEST(ProtoPgsql, PsqlCaptureSimpleQueries) {
  auto chunks = aurum::test::load_capture("pgsql_psql.hex");
  auto ev = run(chunks);
  // -c "select 1" -c "select pg_sleep(0.05)" -c "select * from no_such_table" -c "select 1; select 2"
  ASSERT_EQ(ev.size(), 4u);
  for (const auto& e : ev) {
    EXPECT_EQ(e.kind, PgQueryKind::kSimple);
    EXPECT_LE(e.start_ns, e.end_ns);
  }
  EXPECT_FALSE(ev[0].error);
  EXPECT_GE(ev[1].end_ns - ev[1].start_ns, 50'000'000u);  // pg_sleep(0.05), timed by the proxy
  EXPECT_TRUE(ev[2].error);
  EXPECT_EQ(ev[2].sqlstate, "42P01");  // undefined_table
  EXPECT_EQ(ev[2].error_class, "42");
  EXPECT_FALSE(ev[3].error);  // two statements, one Query message, one ReadyForQuery
  EXPECT_EQ(ev[3].error_class, "");
  expect_fragmentation_invariant(chunks);
}

TEST(ProtoPgsql, PgbenchExtendedAndPipeline) {
  auto all = aurum::test::load_capture("pgsql_pgbench.hex");
  // Connections 1 and 3 are pgbench's start-up probes: startup, then Terminate.
  EXPECT_TRUE(run(aurum::test::only_conn(all, 1)).empty());
  EXPECT_TRUE(run(aurum::test::only_conn(all, 3)).empty());

  auto ext = aurum::test::only_conn(all, 2);  // -M extended, 3 x (select 1; select pg_sleep(0.01))
  auto ev = run(ext);
  ASSERT_EQ(ev.size(), 6u);
  for (size_t i = 0; i < ev.size(); ++i) {
    EXPECT_EQ(ev[i].kind, PgQueryKind::kExtended);
    EXPECT_FALSE(ev[i].error);
    if (i % 2 == 1) {
      EXPECT_GE(ev[i].end_ns - ev[i].start_ns, 10'000'000u) << i;
    }
  }
  expect_fragmentation_invariant(ext);

  // \startpipeline ... \endpipeline: three queries and one Sync per transaction, so one cycle.
  auto pipe = aurum::test::only_conn(all, 4);
  ev = run(pipe);
  ASSERT_EQ(ev.size(), 2u);
  for (const auto& e : ev) {
    EXPECT_EQ(e.kind, PgQueryKind::kExtended);
    EXPECT_GE(e.end_ns - e.start_ns, 20'000'000u);
  }
  expect_fragmentation_invariant(pipe);
}

TEST(ProtoPgsql, PgbenchBulkCountsEqualTransactions) {
  // pgbench: 80 transactions of two statements per run, as it reported. In prepared mode each
  // client first prepares each statement in a Parse+Sync cycle of its own (2 clients x 2
  // statements), which is a query cycle by the protocol's rule (it starts at a 'P').
  auto all = aurum::test::load_capture("pgsql_pgbench_bulk.hex");
  size_t simple = 0, extended = 0, slow = 0;
  for (int conn = 1; conn <= 6; ++conn) {
    for (const auto& e : run(aurum::test::only_conn(all, conn))) {
      EXPECT_FALSE(e.error);
      ++(e.kind == PgQueryKind::kSimple ? simple : extended);
      if (e.end_ns - e.start_ns >= 10'000'000u) ++slow;  // pg_sleep(0.01)
    }
  }
  EXPECT_EQ(simple, 80u * 2);
  EXPECT_EQ(extended, 80u * 2 + 2 * 2);
  EXPECT_EQ(slow, 80u * 2);  // every pg_sleep, in both modes, and nothing else
}

TEST(ProtoPgsql, RawClientPipelinedBatchesWithError) {
  auto all = aurum::test::load_capture("pgsql_raw.hex");
  auto conn = aurum::test::only_conn(all, 1);
  auto ev = run(conn);
  ASSERT_EQ(ev.size(), 6u);
  // Three Sync-terminated batches in one write, matched in order to three ReadyForQuery.
  EXPECT_FALSE(ev[0].error);
  EXPECT_TRUE(ev[1].error);
  EXPECT_EQ(ev[1].sqlstate, "42P01");
  EXPECT_FALSE(ev[2].error);
  EXPECT_GE(ev[2].end_ns - ev[2].start_ns, 30'000'000u);  // select pg_sleep(0.03)
  // All three began with the same write.
  EXPECT_EQ(ev[0].start_ns, ev[1].start_ns);
  EXPECT_EQ(ev[1].start_ns, ev[2].start_ns);
  EXPECT_EQ(ev[3].kind, PgQueryKind::kSimple);
  EXPECT_EQ(ev[3].sqlstate, "22012");  // division_by_zero
  EXPECT_EQ(ev[3].error_class, "22");
  EXPECT_EQ(ev[4].kind, PgQueryKind::kExtended);  // Parse + Sync
  EXPECT_EQ(ev[5].kind, PgQueryKind::kExtended);  // Bind + Execute + Sync
  EXPECT_FALSE(ev[5].error);
  expect_fragmentation_invariant(conn);
}

TEST(ProtoPgsql, CancelAndEncryptionGiveUp) {
  auto all = aurum::test::load_capture("pgsql_raw.hex");
  PgRun cancel;
  cancel.feed(aurum::test::only_conn(all, 2));
  EXPECT_EQ(cancel.parser.gave_up(), PgGiveUp::kCancel);
  PgRun gss;  // the server answered the GSSENCRequest with 'G'
  gss.feed(aurum::test::only_conn(all, 3));
  EXPECT_EQ(gss.parser.gave_up(), PgGiveUp::kGssEncrypted);

  PgRun tls;
  const uint8_t ssl_request[] = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};
  tls.parser.feed(PgDirection::kFrontend, ssl_request, sizeof(ssl_request), 1);
  const uint8_t yes[] = {'S', 0x16, 0x03, 0x01};  // 'S' then a TLS record
  tls.parser.feed(PgDirection::kBackend, yes, sizeof(yes), 2);
  EXPECT_EQ(tls.parser.gave_up(), PgGiveUp::kTls);
  EXPECT_EQ(tls.parser.stats().malformed, 0u);
}

TEST(ProtoPgsql, AttachMidConnection) {
  // The agent starts after the connection was set up: the first bytes are typed messages.
  auto chunks = aurum::test::load_capture("pgsql_psql.hex");
  size_t first_query = 0;
  while (first_query < chunks.size() && !(chunks[first_query].from_client && chunks[first_query].bytes[0] == 'Q'))
    ++first_query;
  ASSERT_LT(first_query, chunks.size());
  std::vector<Chunk> tail(chunks.begin() + static_cast<long>(first_query), chunks.end());
  auto ev = run(tail);
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[2].sqlstate, "42P01");
}

TEST(ProtoPgsql, RandomGapsInRealCapturesAreAccountedFor) {
  // Cut a random run of bytes out of a random read of each capture and report it as a gap: the
  // parser must account for it (absorbed in a body, or a resync), never invent queries, never
  // report end < start, and not lose queries far from the gap in the simple one-at-a-time case.
  for (const char* name : {"pgsql_psql.hex", "pgsql_raw.hex"}) {
    auto chunks = aurum::test::only_conn(aurum::test::load_capture(name), 1);
    size_t whole = run(chunks).size();
    std::mt19937 rng(11);
    for (int round = 0; round < 200; ++round) {
      size_t victim = rng() % chunks.size();
      const auto& v = chunks[victim].bytes;
      size_t from = rng() % v.size();
      size_t len = 1 + rng() % (v.size() - from);
      PgRun r;
      for (size_t i = 0; i < chunks.size(); ++i) {
        const auto& c = chunks[i];
        PgDirection dir = c.from_client ? PgDirection::kFrontend : PgDirection::kBackend;
        if (i != victim) {
          r.parser.feed(dir, c.bytes.data(), c.bytes.size(), c.ns);
          continue;
        }
        r.parser.feed(dir, c.bytes.data(), from, c.ns);
        r.parser.gap(dir, len);
        r.parser.feed(dir, c.bytes.data() + from + len, c.bytes.size() - from - len, c.ns);
      }
      const auto& st = r.parser.stats();
      EXPECT_GE(st.gaps_in_body + st.resyncs + (r.parser.gave_up() != PgGiveUp::kNone), 1u) << name << " " << round;
      EXPECT_LE(r.events.size(), whole) << name << " " << round;
      for (const auto& e : r.events) EXPECT_LE(e.start_ns, e.end_ns);
      // psql sends one query at a time: a gap costs at most the query it hits and the one
      // after (quarantine until the streams realign).
      if (std::string(name) == "pgsql_psql.hex" && r.parser.gave_up() == PgGiveUp::kNone) {
        EXPECT_GE(r.events.size() + 2, whole) << round << " victim " << victim << " from " << from << " len " << len << " of " << v.size() << " resyncs " << r.parser.stats().resyncs << " unmatched " << r.parser.stats().unmatched_ready;
      }
    }
  }
}

TEST(ProtoPgsql, GapInsideBodyIsAbsorbed) {
  PgRun r;
  auto q = msg('Q', cstr("select repeat('x', 100000)"));
  r.parser.feed(PgDirection::kFrontend, q.data(), q.size(), 100);
  // A 100 kB DataRow of which the capture kept only the first 16 bytes.
  auto row = datarow(100000);
  r.parser.feed(PgDirection::kBackend, row.data(), 16, 150);
  r.parser.gap(PgDirection::kBackend, row.size() - 16);
  auto tail = cat({msg('C', cstr("SELECT 1")), ready()});
  r.parser.feed(PgDirection::kBackend, tail.data(), tail.size(), 200);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].start_ns, 100u);
  EXPECT_EQ(r.events[0].end_ns, 200u);
  EXPECT_EQ(r.parser.stats().gaps_in_body, 1u);
  EXPECT_EQ(r.parser.stats().resyncs, 0u);
}

TEST(ProtoPgsql, GapInErrorBeforeSqlstateGivesOtherClass) {
  PgRun r;
  auto q = msg('Q', cstr("select boom"));
  r.parser.feed(PgDirection::kFrontend, q.data(), q.size(), 1);
  auto e = error("42703");
  r.parser.feed(PgDirection::kBackend, e.data(), 8, 2);  // header + "SER"
  r.parser.gap(PgDirection::kBackend, 10);
  r.parser.feed(PgDirection::kBackend, e.data() + 18, e.size() - 18, 2);
  auto z = ready();
  r.parser.feed(PgDirection::kBackend, z.data(), z.size(), 3);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_TRUE(r.events[0].error);
  EXPECT_EQ(r.events[0].error_class, "_OTHER");
}

TEST(ProtoPgsql, GapAcrossHeaderResynchronises) {
  PgRun r;
  auto q = msg('Q', cstr("select 1"));
  auto resp = cat({msg('T', std::string(20, 'r')), datarow(30), msg('C', cstr("SELECT 1")), ready()});
  uint64_t ts = 0;
  // Query 1 answered normally.
  r.parser.feed(PgDirection::kFrontend, q.data(), q.size(), ++ts);
  r.parser.feed(PgDirection::kBackend, resp.data(), resp.size(), ++ts);
  // Query 2: the capture loses the backend's bytes from inside the RowDescription to the middle
  // of the DataRow header.
  r.parser.feed(PgDirection::kFrontend, q.data(), q.size(), ++ts);
  r.parser.feed(PgDirection::kBackend, resp.data(), 10, ++ts);
  r.parser.gap(PgDirection::kBackend, 25 + 3);
  r.parser.feed(PgDirection::kBackend, resp.data() + 38, resp.size() - 38, ++ts);
  EXPECT_EQ(r.parser.stats().resyncs, 1u);
  // Queries 3 and 4 are reported again: the ReadyForQuery of query 2 realigned the streams.
  for (int i = 0; i < 2; ++i) {
    r.parser.feed(PgDirection::kFrontend, q.data(), q.size(), ++ts);
    r.parser.feed(PgDirection::kBackend, resp.data(), resp.size(), ++ts);
  }
  ASSERT_EQ(r.events.size(), 3u);
  EXPECT_EQ(r.events[1].start_ns, 6u);
  EXPECT_EQ(r.events[2].start_ns, 8u);
  EXPECT_EQ(r.parser.gave_up(), PgGiveUp::kNone);
}

TEST(ProtoPgsql, PipelineWithErrorBeforeSync) {
  // libpq pipeline mode: Parse/Bind/Execute, Flush; the error arrives before the client Syncs.
  PgRun r;
  auto batch = cat({msg('P', cstr("") + cstr("bad") + std::string(2, '\0')), msg('B', std::string(8, '\0')),
                    msg('E', cstr("") + std::string(4, '\0')), msg('H')});
  r.parser.feed(PgDirection::kFrontend, batch.data(), batch.size(), 10);
  auto err = error("42601");
  r.parser.feed(PgDirection::kBackend, err.data(), err.size(), 11);
  auto sync = msg('S');
  r.parser.feed(PgDirection::kFrontend, sync.data(), sync.size(), 12);
  auto z = ready();
  r.parser.feed(PgDirection::kBackend, z.data(), z.size(), 13);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].start_ns, 10u);
  EXPECT_EQ(r.events[0].sqlstate, "42601");
  EXPECT_EQ(r.events[0].kind, PgQueryKind::kExtended);
  // 'E' from the frontend is Execute, never an error.
  EXPECT_EQ(r.parser.stats().malformed, 0u);
}

TEST(ProtoPgsql, ReadyForQueryOlderThanTheQueryIsNotItsAnswer) {
  // Found by fuzz_pgsql: a ReadyForQuery whose header arrived before the query was sent (it
  // answers a query the capture lost) must not close the new query with end < start.
  PgRun r;
  auto z = ready();
  r.parser.feed(PgDirection::kBackend, z.data(), 5, 10);  // header of a stale ReadyForQuery
  auto q = msg('Q', cstr("select 1"));
  r.parser.feed(PgDirection::kFrontend, q.data(), q.size(), 20);
  r.parser.feed(PgDirection::kBackend, z.data() + 5, 1, 30);
  EXPECT_TRUE(r.events.empty());
  EXPECT_EQ(r.parser.stats().unmatched_ready, 1u);
  r.parser.feed(PgDirection::kBackend, z.data(), z.size(), 40);  // the real answer
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].start_ns, 20u);
  EXPECT_EQ(r.events[0].end_ns, 40u);
}

TEST(ProtoPgsql, DescribeOnlyBatchIsNotAQuery) {
  PgRun r;
  auto fe = cat({msg('D', "S" + cstr("stmt")), msg('S'), msg('Q', cstr("select 1"))});
  r.parser.feed(PgDirection::kFrontend, fe.data(), fe.size(), 5);
  auto be = cat({msg('t', std::string(2, '\0')), msg('n'), ready(), msg('C', cstr("SELECT 1")), ready()});
  r.parser.feed(PgDirection::kBackend, be.data(), be.size(), 9);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].kind, PgQueryKind::kSimple);
}

TEST(ProtoPgsql, GarbageNeverCrashesAndIsCounted) {
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    PgRun r;
    std::vector<uint8_t> junk(std::uniform_int_distribution<size_t>(1, 4096)(rng));
    for (auto& b : junk) b = static_cast<uint8_t>(rng());
    junk[0] = 'Q';  // skip the startup path: typed messages from a random stream
    for (size_t i = 0; i < junk.size();) {
      size_t n = std::min<size_t>(junk.size() - i, 1 + rng() % 64);
      r.parser.feed(round % 2 ? PgDirection::kFrontend : PgDirection::kBackend, junk.data() + i, n, i);
      if (rng() % 16 == 0) r.parser.gap(PgDirection::kBackend, rng() % 100);
      i += n;
    }
    EXPECT_LE(r.parser.in_flight(), PgsqlParser::kMaxPending);
    for (const auto& e : r.events) EXPECT_LE(e.start_ns, e.end_ns);  // timestamps only grow
    // A full header was seen: it was either accepted or counted as malformed.
    if (junk.size() >= 5) {
      EXPECT_GT(r.parser.stats().malformed + r.parser.stats().messages_frontend +
                    r.parser.stats().messages_backend,
                0u);
    }
  }
}

TEST(ProtoPgsql, HeaderHelpers) {
  const uint8_t z[] = {'Z', 0, 0, 0, 5, 'T'};
  EXPECT_EQ(aurum_pgsql_ready_for_query(z, sizeof(z)), 'T');
  EXPECT_EQ(aurum_pgsql_header(z, sizeof(z), AURUM_PGSQL_BACKEND), 1);
  EXPECT_EQ(aurum_pgsql_header(z, sizeof(z), AURUM_PGSQL_FRONTEND), AURUM_PGSQL_INVALID);
  EXPECT_EQ(aurum_pgsql_header(z, 4, AURUM_PGSQL_BACKEND), AURUM_PGSQL_INCOMPLETE);
  const uint8_t bad_sync[] = {'S', 0, 0, 0, 5};
  EXPECT_EQ(aurum_pgsql_header(bad_sync, 5, AURUM_PGSQL_FRONTEND), AURUM_PGSQL_INVALID);
  const uint8_t huge[] = {'D', 0x7f, 0, 0, 0};
  EXPECT_EQ(aurum_pgsql_header(huge, 5, AURUM_PGSQL_BACKEND), AURUM_PGSQL_INVALID);
  const uint8_t v3[] = {0, 0, 0, 9, 0, 3, 0, 0};
  EXPECT_EQ(aurum_pgsql_startup_kind(v3, 8), AURUM_PGSQL_STARTUP_V3);
  const uint8_t v2[] = {0, 0, 0, 9, 0, 2, 0, 0};
  EXPECT_EQ(aurum_pgsql_startup_kind(v2, 8), AURUM_PGSQL_STARTUP_NONE);
  const uint8_t cancel[] = {0, 0, 0, 16, 0x04, 0xd2, 0x16, 0x2e};
  EXPECT_EQ(aurum_pgsql_startup_kind(cancel, 8), AURUM_PGSQL_STARTUP_CANCEL);
  EXPECT_EQ(aurum_pgsql_startup_kind(cancel, 7), AURUM_PGSQL_INCOMPLETE);
}

// ---- The kernel's framer (bpf/proto/pgsql.h) against the userspace parser ----------------------

using aurum::proto::PgsqlKernelFramer;

namespace {

struct KernelRun {
  std::vector<PgQueryEvent> events;
  PgsqlKernelFramer framer{[this](const PgQueryEvent& e) { events.push_back(e); }};
  void feed(const std::vector<Chunk>& chunks) {
    for (const auto& c : chunks)
      framer.feed(c.from_client ? PgDirection::kFrontend : PgDirection::kBackend, c.bytes.data(), c.bytes.size(),
                  c.ns);
  }
};

std::vector<PgQueryEvent> run_kernel(const std::vector<Chunk>& chunks) {
  KernelRun r;
  r.feed(chunks);
  EXPECT_EQ(r.framer.stats().malformed, 0u);
  EXPECT_EQ(r.framer.stats().resyncs, 0u);
  EXPECT_EQ(r.framer.step_limited(), 0u);
  return r.events;
}

// Same queries, same timestamps, same error classes.
void expect_same_queries(const std::vector<PgQueryEvent>& parser, const std::vector<PgQueryEvent>& kernel) {
  ASSERT_EQ(parser.size(), kernel.size());
  for (size_t i = 0; i < parser.size(); ++i) {
    EXPECT_EQ(parser[i].start_ns, kernel[i].start_ns) << i;
    EXPECT_EQ(parser[i].end_ns, kernel[i].end_ns) << i;
    EXPECT_EQ(parser[i].kind, kernel[i].kind) << i;
    EXPECT_EQ(parser[i].error, kernel[i].error) << i;
    EXPECT_EQ(parser[i].error_class, kernel[i].error_class) << i;
  }
}

// The capture whole and cut at random (down to single bytes, so every header is split somewhere).
void expect_kernel_matches_parser(const std::vector<Chunk>& chunks) {
  auto want = run(chunks);
  expect_same_queries(want, run_kernel(chunks));
  for (unsigned seed = 1; seed <= 30; ++seed) {
    std::mt19937 rng(seed);
    auto cut = aurum::test::resplit(chunks, rng, seed % 5 == 0 ? 1 : 2 + seed * 7);
    SCOPED_TRACE("seed " + std::to_string(seed));
    expect_same_queries(want, run_kernel(cut));
  }
}

std::vector<Chunk> segments(bool from_client, const std::vector<uint8_t>& bytes, size_t mss, uint64_t ns) {
  std::vector<Chunk> out;
  for (size_t i = 0; i < bytes.size(); i += mss) {
    Chunk c;
    c.from_client = from_client;
    c.ns = ns;
    c.bytes.assign(bytes.begin() + static_cast<long>(i), bytes.begin() + static_cast<long>(std::min(bytes.size(), i + mss)));
    out.push_back(std::move(c));
  }
  return out;
}

void append(std::vector<Chunk>& to, const std::vector<Chunk>& more) { to.insert(to.end(), more.begin(), more.end()); }

std::vector<uint8_t> startup() {
  std::string params = cstr("user") + cstr("postgres") + cstr("database") + cstr("postgres") + std::string(1, '\0');
  uint32_t len = static_cast<uint32_t>(8 + params.size());
  std::vector<uint8_t> m;
  for (int s = 24; s >= 0; s -= 8) m.push_back(static_cast<uint8_t>(len >> s));
  for (uint8_t b : {0x00, 0x03, 0x00, 0x00}) m.push_back(b);
  m.insert(m.end(), params.begin(), params.end());
  return m;
}
std::vector<uint8_t> auth_ok() { return cat({msg('R', std::string(4, '\0')), msg('S', cstr("a") + cstr("b")), ready()}); }

}  // namespace

TEST(ProtoPgsqlKernel, SameQueriesAsTheParserOnEveryCapture) {
  for (const char* name : {"pgsql_psql.hex", "pgsql_pgbench.hex", "pgsql_pgbench_bulk.hex", "pgsql_raw.hex"}) {
    auto all = aurum::test::load_capture(name);
    std::set<int> conns;
    for (const auto& c : all) conns.insert(c.conn);
    for (int conn : conns) {
      SCOPED_TRACE(std::string(name) + " connection " + std::to_string(conn));
      auto chunks = aurum::test::only_conn(all, conn);
      KernelRun k;
      k.feed(chunks);
      PgRun p;
      p.feed(chunks);
      EXPECT_EQ(k.framer.gave_up(), p.parser.gave_up());
      if (p.parser.gave_up() != PgGiveUp::kNone) continue;
      expect_kernel_matches_parser(chunks);
    }
  }
}

TEST(ProtoPgsqlKernel, RetransmittedSegmentsAreNotCountedTwice) {
  auto chunks = aurum::test::only_conn(aurum::test::load_capture("pgsql_raw.hex"), 1);
  auto want = run(chunks);
  ASSERT_FALSE(want.empty());
  std::mt19937 rng(7);
  auto cut = aurum::test::resplit(chunks, rng, 9);
  KernelRun k;
  uint32_t seq[2] = {100, 900000};
  std::vector<std::pair<uint32_t, size_t>> sent[2];  // (seq, index) of every segment per direction
  for (size_t i = 0; i < cut.size(); ++i) {
    int d = cut[i].from_client ? 0 : 1;
    auto dir = cut[i].from_client ? PgDirection::kFrontend : PgDirection::kBackend;
    k.framer.segment(dir, seq[d], cut[i].bytes.data(), cut[i].bytes.size(), cut[i].ns);
    sent[d].push_back({seq[d], i});
    seq[d] += static_cast<uint32_t>(cut[i].bytes.size());
    // Now and then an earlier segment again (a retransmission), or two glued together (a
    // retransmission that coalesced the original segments and overlaps the new data).
    if (i % 3 == 0 && sent[d].size() >= 2) {
      auto [s, j] = sent[d][sent[d].size() - 2];
      k.framer.segment(dir, s, cut[j].bytes.data(), cut[j].bytes.size(), cut[i].ns + 1);
      std::vector<uint8_t> glued = cut[j].bytes;
      glued.insert(glued.end(), cut[i].bytes.begin(), cut[i].bytes.end());
      k.framer.segment(dir, s, glued.data(), glued.size(), cut[i].ns + 2);
    }
  }
  EXPECT_EQ(k.framer.stats().malformed, 0u);
  EXPECT_EQ(k.framer.stats().resyncs, 0u);
  expect_same_queries(want, k.events);
}

TEST(ProtoPgsqlKernel, BigResultSetOverManySegments) {
  // 20,000 rows of ~40 bytes: 800 kB in 1,448-byte segments and in 64 KiB (loopback GSO) ones,
  // headers cut at every possible place.
  std::vector<uint8_t> rows = msg('T', std::string(2, '\0'));
  for (int i = 0; i < 20000; i++) {
    auto r = datarow(static_cast<size_t>(i % 71));
    rows.insert(rows.end(), r.begin(), r.end());
  }
  rows = cat({rows, msg('C', cstr("SELECT 20000")), ready()});
  for (size_t mss : {size_t(1448), size_t(65483), size_t(7)}) {
    std::vector<Chunk> conv = segments(true, startup(), 1448, 1);
    append(conv, segments(false, auth_ok(), 1448, 2));
    append(conv, segments(true, msg('Q', cstr("select big")), 1448, 10));
    append(conv, segments(false, rows, mss, 20));
    append(conv, segments(true, msg('Q', cstr("select 1")), 1448, 30));
    append(conv, segments(false, cat({msg('T', std::string(2, '\0')), datarow(1), msg('C', cstr("SELECT 1")), ready()}), mss, 40));
    auto ev = run_kernel(conv);
    ASSERT_EQ(ev.size(), 2u) << mss;
    EXPECT_EQ(ev[0].start_ns, 10u);
    EXPECT_EQ(ev[0].end_ns, 20u);
    EXPECT_EQ(ev[1].start_ns, 30u);
    expect_same_queries(run(conv), ev);
  }
}

TEST(ProtoPgsqlKernel, PipelinedExtendedBatches) {
  // Five Parse/Bind/Describe/Execute/Sync batches in one segment, the third failing; then the
  // answers in one segment, and the same cut at every byte.
  std::vector<uint8_t> fe, be;
  for (int i = 0; i < 5; i++) {
    fe = cat({fe, msg('P', cstr("") + cstr("select $1") + std::string(2, '\0')), msg('B', std::string(8, '\0')),
              msg('D', "P" + cstr("")), msg('E', cstr("") + std::string(4, '\0')), msg('S')});
    if (i == 2)
      be = cat({be, msg('1'), msg('2'), error("22012"), ready()});
    else
      be = cat({be, msg('1'), msg('2'), msg('T', std::string(2, '\0')), datarow(3), msg('C', cstr("SELECT 1")), ready()});
  }
  std::vector<Chunk> conv = segments(true, startup(), 1448, 1);
  append(conv, segments(false, auth_ok(), 1448, 2));
  append(conv, segments(true, fe, 65483, 10));
  append(conv, segments(false, be, 65483, 20));
  auto ev = run_kernel(conv);
  ASSERT_EQ(ev.size(), 5u);
  for (size_t i = 0; i < ev.size(); i++) {
    EXPECT_EQ(ev[i].kind, PgQueryKind::kExtended);
    EXPECT_EQ(ev[i].error, i == 2) << i;
  }
  EXPECT_EQ(ev[2].error_class, "22");
  expect_kernel_matches_parser(conv);
  // Deeper than the kernel's FIFO: the oldest are dropped and counted, never mismatched.
  std::vector<uint8_t> deep_fe, deep_be;
  for (int i = 0; i < AURUM_PGSQL_FIFO + 4; i++) {
    deep_fe = cat({deep_fe, msg('Q', cstr("select 1"))});
    deep_be = cat({deep_be, msg('C', cstr("SELECT 1")), ready()});
  }
  std::vector<Chunk> deep = segments(true, startup(), 1448, 1);
  append(deep, segments(false, auth_ok(), 1448, 2));
  append(deep, segments(true, deep_fe, 65483, 10));
  append(deep, segments(false, deep_be, 65483, 20));
  KernelRun k;
  k.feed(deep);
  EXPECT_EQ(k.events.size(), size_t(AURUM_PGSQL_FIFO));
  EXPECT_EQ(k.framer.stats().queries_dropped, 4u);
  EXPECT_EQ(k.framer.stats().unmatched_ready, 4u);
}

TEST(ProtoPgsqlKernel, SslRequestRefusedThenPlaintext) {
  const std::vector<uint8_t> ssl_request = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};
  for (char answer : {'N', 'S'}) {
    std::vector<Chunk> conv = segments(true, ssl_request, 1448, 1);
    append(conv, segments(false, {static_cast<uint8_t>(answer)}, 1448, 2));
    if (answer == 'N') {
      append(conv, segments(true, startup(), 1448, 3));
      append(conv, segments(false, auth_ok(), 1448, 4));
    } else {
      append(conv, segments(true, {0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc}, 1448, 3));  // ClientHello
      append(conv, segments(false, {0x16, 0x03, 0x03, 0x00, 0x7a, 0x02}, 1448, 4));
    }
    append(conv, segments(true, msg('Q', cstr("select 1")), 1448, 10));
    append(conv, segments(false, cat({msg('C', cstr("SELECT 1")), ready()}), 1448, 20));
    KernelRun k;
    k.feed(conv);
    if (answer == 'N') {
      EXPECT_EQ(k.framer.gave_up(), PgGiveUp::kNone);
      ASSERT_EQ(k.events.size(), 1u);
      EXPECT_EQ(k.events[0].start_ns, 10u);
      expect_kernel_matches_parser(conv);
    } else {
      EXPECT_EQ(k.framer.gave_up(), PgGiveUp::kTls);
      EXPECT_TRUE(k.events.empty());
    }
    EXPECT_EQ(k.framer.stats().malformed, 0u);
  }
}

TEST(ProtoPgsqlKernel, AttachMidConnection) {
  // From the first Query on (a connection older than the agent): the same queries.
  auto chunks = aurum::test::load_capture("pgsql_psql.hex");
  size_t first_query = 0;
  while (first_query < chunks.size() && !(chunks[first_query].from_client && chunks[first_query].bytes[0] == 'Q'))
    ++first_query;
  ASSERT_LT(first_query, chunks.size());
  std::vector<Chunk> tail(chunks.begin() + static_cast<long>(first_query), chunks.end());
  expect_same_queries(run(tail), run_kernel(tail));

  // From the middle of a big answer: the rest of it is not framed (counted), the connection
  // resynchronises at a segment that starts with a header, and the next query is counted.
  std::vector<uint8_t> rows = msg('T', std::string(2, '\0'));
  for (int i = 0; i < 3000; i++) rows = cat({rows, datarow(37)});
  rows = cat({rows, msg('C', cstr("SELECT 3000")), ready()});
  std::vector<Chunk> conv = segments(false, std::vector<uint8_t>(rows.begin() + 1001, rows.end()), 1448, 5);
  for (int q = 0; q < 3; q++) {
    append(conv, segments(true, msg('Q', cstr("select 1")), 1448, 10 + 10 * q));
    append(conv, segments(false, cat({msg('T', std::string(2, '\0')), datarow(1), msg('C', cstr("SELECT 1")), ready()}),
                          1448, 15 + 10 * q));
  }
  KernelRun k;
  k.feed(conv);
  EXPECT_GE(k.framer.stats().malformed, 1u);
  EXPECT_EQ(k.framer.gave_up(), PgGiveUp::kNone);
  ASSERT_GE(k.events.size(), 2u) << "resynchronised at the next answer";
  ASSERT_LE(k.events.size(), 3u);
  for (const auto& e : k.events) EXPECT_EQ(e.end_ns - e.start_ns, 5u);
}

TEST(ProtoPgsqlKernel, TooManyMessagesInOneSegmentIsCountedNotWedged) {
  // Each step takes up to 1 + AURUM_PGSQL_RUN messages: more than that many steps' worth.
  std::vector<uint8_t> many;
  const auto nodata = msg('n');
  for (uint32_t i = 0; i < PgsqlKernelFramer::kMaxSteps * (1 + AURUM_PGSQL_RUN) + 10; i++)
    many.insert(many.end(), nodata.begin(), nodata.end());
  std::vector<Chunk> conv = segments(true, startup(), 1448, 1);
  append(conv, segments(false, auth_ok(), 1448, 2));
  append(conv, segments(true, msg('Q', cstr("select 1")), 1448, 10));
  append(conv, segments(false, cat({many, ready()}), many.size() + 6, 20));
  for (int q = 0; q < 2; q++) {
    append(conv, segments(true, msg('Q', cstr("select 1")), 1448, 30 + 10 * q));
    append(conv, segments(false, cat({msg('C', cstr("SELECT 1")), ready()}), 1448, 35 + 10 * q));
  }
  KernelRun k;
  k.feed(conv);
  EXPECT_EQ(k.framer.step_limited(), 1u);
  EXPECT_GE(k.framer.stats().resyncs, 1u);
  EXPECT_GE(k.framer.stats().queries_dropped, 1u);
  EXPECT_EQ(k.framer.gave_up(), PgGiveUp::kNone);
  ASSERT_GE(k.events.size(), 1u) << "the last query after the resync";
  for (const auto& e : k.events) EXPECT_EQ(e.end_ns - e.start_ns, 5u);
}

TEST(ProtoPgsqlKernel, GapsNeverInventQueries) {
  // Holes anywhere in real captures: every query the framer still reports is one the parser saw
  // on the whole stream (same start and end), and every other one is counted somewhere.
  for (const char* name : {"pgsql_psql.hex", "pgsql_pgbench_bulk.hex", "pgsql_raw.hex"}) {
    auto chunks = aurum::test::only_conn(aurum::test::load_capture(name), 1);
    auto want = run(chunks);
    std::set<std::pair<uint64_t, uint64_t>> real;
    for (const auto& e : want) real.insert({e.start_ns, e.end_ns});
    for (unsigned seed = 1; seed <= 40; ++seed) {
      std::mt19937 rng(seed);
      auto cut = aurum::test::resplit(chunks, rng, 3 + seed % 50);
      KernelRun k;
      for (const auto& c : cut) {
        auto dir = c.from_client ? PgDirection::kFrontend : PgDirection::kBackend;
        if (rng() % 23 == 0) {
          k.framer.gap(dir, static_cast<uint32_t>(c.bytes.size()));
          continue;
        }
        k.framer.feed(dir, c.bytes.data(), c.bytes.size(), c.ns);
      }
      for (const auto& e : k.events)
        EXPECT_TRUE(real.count({e.start_ns, e.end_ns})) << name << " seed " << seed << ": " << e.start_ns;
      EXPECT_LE(k.events.size(), want.size());
      EXPECT_LE(k.framer.in_flight(), size_t(AURUM_PGSQL_FIFO));
    }
  }
}

TEST(ProtoPgsqlKernel, ErrorClassAcrossSegmentsAndLimits) {
  // The SQLSTATE cut between segments at every byte; a 'C' field past the first 256 bytes is
  // not looked for (as the parser); an error without 'C' is _OTHER.
  auto err = error("42P01");
  for (size_t cut = 1; cut < err.size(); cut++) {
    std::vector<Chunk> conv = segments(true, startup(), 1448, 1);
    append(conv, segments(false, auth_ok(), 1448, 2));
    append(conv, segments(true, msg('Q', cstr("select x")), 1448, 10));
    append(conv, segments(false, std::vector<uint8_t>(err.begin(), err.begin() + static_cast<long>(cut)), 1448, 20));
    append(conv, segments(false, cat({std::vector<uint8_t>(err.begin() + static_cast<long>(cut), err.end()), ready()}), 1448, 21));
    auto ev = run_kernel(conv);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].error_class, "42") << cut;
  }
  auto late = msg('E', cstr("S" + std::string(300, 'x')) + cstr("C42P01") + std::string(1, '\0'));
  auto none = msg('E', cstr("SERROR") + cstr("Mno code") + std::string(1, '\0'));
  for (const auto& e : {late, none}) {
    std::vector<Chunk> conv = segments(true, startup(), 1448, 1);
    append(conv, segments(false, auth_ok(), 1448, 2));
    append(conv, segments(true, msg('Q', cstr("select x")), 1448, 10));
    append(conv, segments(false, cat({e, ready()}), 1448, 20));
    auto ev = run_kernel(conv);
    ASSERT_EQ(ev.size(), 1u);
    EXPECT_EQ(ev[0].error_class, "_OTHER");
    expect_same_queries(run(conv), ev);
  }
}

TEST(ProtoPgsqlKernel, MessageTypeMasksAreTheProtocolsLists) {
  // The bit masks of bpf/proto/pgsql.h against the message lists of the protocol documentation.
  const std::string frontend = "BCcdDEfFHpPQSX";
  const std::string backend = "123AcCdDEGHIKnNRsStTvVWZ";
  for (int t = 0; t < 256; t++) {
    EXPECT_EQ(aurum_pgsql_frontend_type_ok(static_cast<uint8_t>(t)) != 0, t != 0 && frontend.find(static_cast<char>(t)) != std::string::npos) << t;
    EXPECT_EQ(aurum_pgsql_backend_type_ok(static_cast<uint8_t>(t)) != 0, t != 0 && backend.find(static_cast<char>(t)) != std::string::npos) << t;
  }
}
