// SPDX-License-Identifier: Apache-2.0
// PostgreSQL stream parser: real captures (psql, pgbench, a raw pipelining client against
// PostgreSQL 15) fed whole, byte by byte, in random splits and with gaps.
#include <gtest/gtest.h>

#include <random>
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
