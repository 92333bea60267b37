// SPDX-License-Identifier: Apache-2.0
// AMQP 0-9-1 stream parser: a real pika <-> RabbitMQ 3.10 capture whose ground truth is the
// client's own record and rabbitmqctl (see fixtures/amqp_pika.hex), plus synthetic frames for the
// corners a capture does not reach.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "bpf/proto/amqp.h"
#include "proto/amqp.h"
#include "proto/amqp_codec.h"
#include "proto_fixture.h"

using aurum::proto::AmqpCounts;
using aurum::proto::AmqpDirection;
using aurum::proto::AmqpGiveUp;
using aurum::proto::AmqpParser;
using aurum::proto::AmqpSettle;
using aurum::proto::AmqpSettleEvent;
using aurum::test::Chunk;

namespace {

constexpr auto kC2B = AmqpDirection::kClientToBroker;
constexpr auto kB2C = AmqpDirection::kBrokerToClient;

struct AmqpRun {
  std::vector<AmqpSettleEvent> events;
  AmqpParser parser{[this](const AmqpSettleEvent& e) { events.push_back(e); }};

  void feed(const std::vector<Chunk>& chunks) {
    for (const auto& c : chunks) parser.feed(c.from_client ? kC2B : kB2C, c.bytes.data(), c.bytes.size(), c.ns);
  }
  void c2b(const std::vector<uint8_t>& b, uint64_t ts = 0) { parser.feed(kC2B, b.data(), b.size(), ts); }
  void b2c(const std::vector<uint8_t>& b, uint64_t ts = 0) { parser.feed(kB2C, b.data(), b.size(), ts); }
};

// --- frame builders (amqp0-9-1 section 4.2) ---
struct Bytes {
  std::vector<uint8_t> v;
  Bytes& u8(uint8_t x) { v.push_back(x); return *this; }
  Bytes& u16(uint16_t x) { return u8(static_cast<uint8_t>(x >> 8)).u8(static_cast<uint8_t>(x)); }
  Bytes& u32(uint32_t x) { return u16(static_cast<uint16_t>(x >> 16)).u16(static_cast<uint16_t>(x)); }
  Bytes& u64(uint64_t x) { return u32(static_cast<uint32_t>(x >> 32)).u32(static_cast<uint32_t>(x)); }
  Bytes& shortstr(const std::string& s) { u8(static_cast<uint8_t>(s.size())); v.insert(v.end(), s.begin(), s.end()); return *this; }
  Bytes& longstr(const std::string& s) { u32(static_cast<uint32_t>(s.size())); v.insert(v.end(), s.begin(), s.end()); return *this; }
  Bytes& raw(const std::vector<uint8_t>& b) { v.insert(v.end(), b.begin(), b.end()); return *this; }
};

std::vector<uint8_t> frame(uint8_t type, uint16_t ch, const std::vector<uint8_t>& payload) {
  Bytes b;
  b.u8(type).u16(ch).u32(static_cast<uint32_t>(payload.size())).raw(payload).u8(0xCE);
  return b.v;
}
std::vector<uint8_t> method(uint16_t ch, uint16_t cls, uint16_t m, const Bytes& args = {}) {
  Bytes b;
  b.u16(cls).u16(m).raw(args.v);
  return frame(1, ch, b.v);
}
// A field table holding one long-string entry (and a few other types before it, to exercise
// skipping).
std::vector<uint8_t> table_with(const std::string& key, const std::string& value) {
  Bytes t;
  t.shortstr("x-max-length").u8('I').u32(1000);
  t.shortstr("x-flag").u8('t').u8(1);
  t.shortstr("x-short").u8('s').u16(7);  // RabbitMQ: 's' is a short int
  t.shortstr("x-nested").u8('F').u32(7).shortstr("a").u8('b').u8(1).shortstr("v").u8('V');
  t.shortstr(key).u8('S').longstr(value);
  Bytes out;
  out.u32(static_cast<uint32_t>(t.v.size())).raw(t.v);
  return out.v;
}
std::vector<uint8_t> empty_table() { return {0, 0, 0, 0}; }

std::vector<uint8_t> queue_declare(uint16_t ch, const std::string& q, const std::vector<uint8_t>& args) {
  return method(ch, 50, 10, Bytes().u16(0).shortstr(q).u8(0).raw(args));
}
std::vector<uint8_t> consume(uint16_t ch, const std::string& q, const std::string& tag, bool no_ack = false) {
  return method(ch, 60, 20, Bytes().u16(0).shortstr(q).shortstr(tag).u8(no_ack ? 2 : 0).raw(empty_table()));
}
std::vector<uint8_t> deliver(uint16_t ch, const std::string& ctag, uint64_t tag, const std::string& exchange = "") {
  return method(ch, 60, 60, Bytes().shortstr(ctag).u64(tag).u8(0).shortstr(exchange).shortstr("rk"));
}
std::vector<uint8_t> ack(uint16_t ch, uint64_t tag, bool multiple) {
  return method(ch, 60, 80, Bytes().u64(tag).u8(multiple ? 1 : 0));
}
std::vector<uint8_t> nack(uint16_t ch, uint64_t tag, bool multiple, bool requeue) {
  return method(ch, 60, 120, Bytes().u64(tag).u8(static_cast<uint8_t>((multiple ? 1 : 0) | (requeue ? 2 : 0))));
}
std::vector<uint8_t> reject(uint16_t ch, uint64_t tag, bool requeue) {
  return method(ch, 60, 90, Bytes().u64(tag).u8(requeue ? 1 : 0));
}
std::vector<uint8_t> content_header(uint16_t ch, const std::vector<uint8_t>& headers) {
  Bytes b;
  b.u16(60).u16(0).u64(3);
  if (headers.empty()) return frame(2, ch, b.u16(0x8000).shortstr("text/plain").v);
  return frame(2, ch, b.u16(0x8000 | 0x2000).shortstr("text/plain").raw(headers).v);
}
std::vector<uint8_t> cat(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}
const std::vector<uint8_t> kProtocolHeader = {'A', 'M', 'Q', 'P', 0, 0, 9, 1};

void expect_counts_eq(const AmqpCounts& a, const AmqpCounts& b) {
  EXPECT_EQ(a.publish, b.publish);
  EXPECT_EQ(a.deliver, b.deliver);
  EXPECT_EQ(a.ack, b.ack);
  EXPECT_EQ(a.nack, b.nack);
  EXPECT_EQ(a.reject, b.reject);
  EXPECT_EQ(a.confirm_ack, b.confirm_ack);
  EXPECT_EQ(a.dead_lettered, b.dead_lettered);
  EXPECT_EQ(a.requeued, b.requeued);
  EXPECT_EQ(a.x_death_deliveries, b.x_death_deliveries);
}

// Index of the first client chunk that holds method cls.m on channel `ch`.
size_t find_client_method(const std::vector<Chunk>& chunks, uint16_t ch, uint8_t cls, uint8_t m) {
  const uint8_t pat[] = {1, static_cast<uint8_t>(ch >> 8), static_cast<uint8_t>(ch)};
  for (size_t i = 0; i < chunks.size(); ++i) {
    const auto& b = chunks[i].bytes;
    if (!chunks[i].from_client) continue;
    for (size_t k = 0; k + 11 <= b.size(); ++k)
      if (std::equal(pat, pat + 3, b.begin() + static_cast<long>(k)) && b[k + 7] == 0 && b[k + 8] == cls &&
          b[k + 9] == 0 && b[k + 10] == m)
        return i;
  }
  return chunks.size();
}
size_t find_channel_close(const std::vector<Chunk>& chunks, uint16_t ch) { return find_client_method(chunks, ch, 20, 40); }

}  // namespace

TEST(ProtoAmqp, PikaCaptureAgainstGroundTruth) {
  auto chunks = aurum::test::load_capture("amqp_pika.hex");
  AmqpRun r;
  r.feed(chunks);
  const auto& c = r.parser.counts();
  EXPECT_EQ(r.parser.stats().malformed, 0u);
  EXPECT_EQ(r.parser.stats().resyncs, 0u);
  EXPECT_EQ(r.parser.frame_max(), 131072u);  // pika's tune-ok
  // truth: 10 confirmed publishes, 3 no-ack publishes, 1 for basic.get
  EXPECT_EQ(c.publish, 14u);
  EXPECT_EQ(c.confirm_ack, 10u);
  EXPECT_EQ(c.confirm_nack, 0u);
  // truth: 10 on channel 2, 3 dead letters, 4 on the recover channel, 3 no-ack, 1 get-ok
  EXPECT_EQ(c.deliver, 21u);
  EXPECT_EQ(c.get_ok, 1u);
  // truth: acked=5 on channel 2, the 3 dead letters (tag 0 + multiple), 2 after recover, 1 get
  EXPECT_EQ(c.ack, 11u);
  EXPECT_EQ(c.reject, 2u);
  EXPECT_EQ(c.nack, 1u);
  // truth: dead_lettered=3, and rabbitmqctl counted 3 messages in proto.dead
  EXPECT_EQ(c.dead_lettered, 3u);
  EXPECT_EQ(c.discarded, 0u);
  // truth: the dead letters came from exchange proto.dlx with x-death
  EXPECT_EQ(c.dlx_deliveries, 3u);
  EXPECT_EQ(c.x_death_deliveries, 3u);
  // channel 2 closed with 2 unacked, recover handed back 2
  EXPECT_EQ(c.requeued, 4u);
  EXPECT_EQ(c.redelivered, 4u);
  EXPECT_EQ(c.unknown_tag, 0u);
  EXPECT_EQ(r.parser.unacked(), 0u);  // rabbitmqctl at the end: nothing unacked

  // Durations: the consumer slept 20 ms before its first 8 settlements (channel 2; pika reuses
  // channel numbers later, so go by order rather than by number).
  size_t consumer_settles = 0, xdeath = 0;
  for (const auto& e : r.events) {
    EXPECT_LE(e.deliver_ns, e.settle_ns);
    bool by_consumer = e.how == AmqpSettle::kAck || e.how == AmqpSettle::kReject || e.how == AmqpSettle::kNack;
    if (by_consumer && ++consumer_settles <= 8) {
      EXPECT_EQ(e.channel, 2u);
      EXPECT_GE(e.settle_ns - e.deliver_ns, 20'000'000u);
      EXPECT_EQ(e.queue, "proto.work");
      EXPECT_EQ(e.dead_lettered, e.how != AmqpSettle::kAck);
    }
    if (e.x_death) {
      ++xdeath;
      EXPECT_EQ(e.queue, "proto.dead");
    }
  }
  EXPECT_EQ(consumer_settles, 14u);  // 11 acks + 2 rejects + 1 nack
  EXPECT_EQ(xdeath, 3u);
}

TEST(ProtoAmqp, PikaCaptureUnackedBeforeChannelClose) {
  auto chunks = aurum::test::load_capture("amqp_pika.hex");
  size_t close = find_channel_close(chunks, 2);
  ASSERT_LT(close, chunks.size());
  AmqpRun r;
  r.feed(std::vector<Chunk>(chunks.begin(), chunks.begin() + static_cast<long>(close)));
  // truth: rabbitmqctl after settling: proto.work unacked 2 (held_unacked=2)
  EXPECT_EQ(r.parser.unacked(2), 2u);
  EXPECT_EQ(r.parser.unacked(), 2u);
  EXPECT_EQ(r.parser.counts().dead_lettered, 3u);
}

TEST(ProtoAmqp, PikaBulkCaptureAgainstGroundTruth) {
  // truth: published=500 delivered=500 acked=353 rejected=57 nacked=42 held_unacked=48;
  // rabbitmqctl before close: bulk.dead 99 messages, bulk.work 48 unacked.
  auto chunks = aurum::test::load_capture("amqp_pika_bulk.hex");
  // pika's connection.close() first closes each channel: the consumer's is channel 2.
  size_t close = find_channel_close(chunks, 2);
  ASSERT_LT(close, chunks.size());
  AmqpRun r;
  r.feed(std::vector<Chunk>(chunks.begin(), chunks.begin() + static_cast<long>(close)));
  const auto& c = r.parser.counts();
  EXPECT_EQ(c.publish, 500u);
  EXPECT_EQ(c.deliver, 500u);
  EXPECT_EQ(c.ack, 353u);
  EXPECT_EQ(c.reject, 57u);
  EXPECT_EQ(c.nack, 42u);
  EXPECT_EQ(c.dead_lettered, 99u);  // = bulk.dead's message count
  EXPECT_EQ(r.parser.unacked(), 48u);  // = bulk.work's messages_unacknowledged
  EXPECT_EQ(r.events.size(), 353u + 57u + 42u);
  r.feed(std::vector<Chunk>(chunks.begin() + static_cast<long>(close), chunks.end()));
  EXPECT_EQ(r.parser.unacked(), 0u);  // channel.close hands them back
  EXPECT_EQ(r.parser.counts().requeued, 48u);
  EXPECT_EQ(r.parser.stats().malformed, 0u);
}

TEST(ProtoAmqp, PikaCaptureFragmentationInvariant) {
  auto chunks = aurum::test::load_capture("amqp_pika.hex");
  AmqpRun whole;
  whole.feed(chunks);
  for (unsigned seed = 1; seed <= 12; ++seed) {
    std::mt19937 rng(seed);
    AmqpRun r;
    r.feed(aurum::test::resplit(chunks, rng, seed % 3 == 0 ? 1 : seed * 7));
    expect_counts_eq(r.parser.counts(), whole.parser.counts());
    ASSERT_EQ(r.events.size(), whole.events.size());
    for (size_t i = 0; i < r.events.size(); ++i) {
      EXPECT_EQ(r.events[i].delivery_tag, whole.events[i].delivery_tag);
      EXPECT_EQ(r.events[i].deliver_ns, whole.events[i].deliver_ns);
    }
    EXPECT_EQ(r.parser.stats().malformed, 0u);
  }
}

TEST(ProtoAmqp, RandomGapsInRealCaptureAreAccountedFor) {
  auto chunks = aurum::test::load_capture("amqp_pika.hex");
  AmqpRun whole;
  whole.feed(chunks);
  std::mt19937 rng(5);
  for (int round = 0; round < 200; ++round) {
    size_t victim = rng() % chunks.size();
    const auto& v = chunks[victim].bytes;
    size_t from = rng() % v.size();
    size_t len = 1 + rng() % (v.size() - from);
    AmqpRun r;
    for (size_t i = 0; i < chunks.size(); ++i) {
      const auto& c = chunks[i];
      auto dir = c.from_client ? kC2B : kB2C;
      if (i != victim) {
        r.parser.feed(dir, c.bytes.data(), c.bytes.size(), c.ns);
        continue;
      }
      r.parser.feed(dir, c.bytes.data(), from, c.ns);
      r.parser.gap(dir, len);
      r.parser.feed(dir, c.bytes.data() + from + len, c.bytes.size() - from - len, c.ns);
    }
    const auto& st = r.parser.stats();
    EXPECT_GE(st.gaps_in_payload + st.resyncs, 1u) << round;
    EXPECT_EQ(r.parser.gave_up(), AmqpGiveUp::kNone) << round;  // one gap never costs the connection
    const auto& c = r.parser.counts();
    const auto& w = whole.parser.counts();
    EXPECT_LE(c.deliver, w.deliver);
    EXPECT_LE(c.publish, w.publish);
    EXPECT_LE(c.dead_lettered, w.dead_lettered);
    // A lost frame costs a few operations at most: the parser is back in step afterwards.
    EXPECT_GE(c.deliver + c.publish + c.ack + 12, w.deliver + w.publish + w.ack) << round;
    for (const auto& e : r.events) EXPECT_LE(e.deliver_ns, e.settle_ns);
  }
}

TEST(ProtoAmqp, MultipleAckSettlesExactlyTheOutstandingTags) {
  AmqpRun r;
  r.c2b(kProtocolHeader);
  r.c2b(consume(1, "q", "c1"));
  for (uint64_t t = 1; t <= 6; ++t) r.b2c(deliver(1, "c1", t), t * 10);
  r.c2b(ack(1, 2, false), 100);        // single: 2
  r.c2b(ack(1, 4, true), 110);         // multiple: 1, 3, 4 (2 already settled)
  EXPECT_EQ(r.parser.counts().ack, 4u);
  EXPECT_EQ(r.parser.unacked(1), 2u);
  r.c2b(nack(1, 0, true, true), 120);  // tag 0 + multiple: all outstanding, requeued
  EXPECT_EQ(r.parser.counts().nack, 2u);
  EXPECT_EQ(r.parser.counts().requeued, 2u);
  EXPECT_EQ(r.parser.unacked(), 0u);
  ASSERT_EQ(r.events.size(), 6u);
  EXPECT_EQ(r.events[0].delivery_tag, 2u);
  EXPECT_EQ(r.events[0].settle_ns - r.events[0].deliver_ns, 80u);
  EXPECT_EQ(r.events[1].delivery_tag, 1u);
  EXPECT_EQ(r.events[3].delivery_tag, 4u);
  r.c2b(ack(1, 99, false), 130);       // never delivered
  EXPECT_EQ(r.parser.counts().unknown_tag, 1u);
  EXPECT_EQ(r.parser.counts().ack, 5u);
}

TEST(ProtoAmqp, DeadLetteringNeedsAKnownDlx) {
  aurum::proto::AmqpTopology shared;
  auto* topo = &shared;
  // One connection declares, another consumes: the topology is shared.
  AmqpParser declarer(nullptr, topo);
  auto d1 = queue_declare(1, "with-dlx", table_with("x-dead-letter-exchange", "dlx"));
  auto d2 = queue_declare(1, "plain", empty_table());
  declarer.feed(kC2B, d1.data(), d1.size(), 0);
  declarer.feed(kC2B, d2.data(), d2.size(), 0);
  EXPECT_EQ(topo->queue_dlx("with-dlx").value_or("?"), "dlx");
  EXPECT_EQ(topo->queue_dlx("plain").value_or("?"), "");
  EXPECT_FALSE(topo->queue_dlx("never").has_value());

  std::vector<AmqpSettleEvent> events;
  AmqpParser consumer([&](const AmqpSettleEvent& e) { events.push_back(e); }, topo);
  auto feed_c = [&](const std::vector<uint8_t>& b) { consumer.feed(kC2B, b.data(), b.size(), 1); };
  auto feed_b = [&](const std::vector<uint8_t>& b) { consumer.feed(kB2C, b.data(), b.size(), 1); };
  feed_c(consume(1, "with-dlx", "a"));
  feed_c(consume(2, "plain", "b"));
  feed_b(deliver(1, "a", 1));
  feed_b(deliver(1, "a", 2));
  feed_b(deliver(2, "b", 1));
  feed_c(reject(1, 1, false));      // dead-lettered
  feed_c(nack(1, 2, false, true));  // requeued: not a dead letter
  feed_c(reject(2, 1, false));      // no DLX: discarded
  EXPECT_EQ(consumer.counts().dead_lettered, 1u);
  EXPECT_EQ(consumer.counts().discarded, 1u);
  EXPECT_EQ(consumer.counts().requeued, 1u);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_TRUE(events[0].dead_lettered);
  EXPECT_EQ(events[0].queue, "with-dlx");
  // Deliveries from the DLX are recognised by exchange.
  feed_c(consume(3, "dead-q", "d"));
  feed_b(deliver(3, "d", 1, "dlx"));
  EXPECT_EQ(consumer.counts().dlx_deliveries, 1u);
}

TEST(ProtoAmqp, FieldTableDecoding) {
  using aurum::proto::amqp_codec::Reader;
  using aurum::proto::amqp_codec::table_find;
  auto t = table_with("x-dead-letter-exchange", "dlx");
  std::string value;
  Reader r{t.data(), t.size()};
  EXPECT_TRUE(table_find(r, "x-dead-letter-exchange", &value));
  EXPECT_EQ(value, "dlx");
  Reader absent{t.data(), t.size()};
  EXPECT_FALSE(table_find(absent, "x-missing", &value));
  EXPECT_TRUE(absent.ok);
  EXPECT_EQ(absent.i, t.size());  // the reader ends after the table
  // Truncated anywhere: never found past the cut, never a read out of bounds.
  for (size_t cut = 0; cut < t.size(); ++cut) {
    Reader c{t.data(), cut};
    EXPECT_FALSE(table_find(c, "x-dead-letter-exchange", &value)) << cut;
  }
  // An unknown type letter before the key: the rest of the table cannot be framed.
  Bytes bad;
  bad.shortstr("x-odd").u8('?').u8(0).shortstr("x-dead-letter-exchange").u8('S').longstr("dlx");
  Bytes table;
  table.u32(static_cast<uint32_t>(bad.v.size())).raw(bad.v);
  Reader u{table.v.data(), table.v.size()};
  EXPECT_FALSE(table_find(u, "x-dead-letter-exchange", &value));
}

TEST(ProtoAmqp, ServerNamedQueueLearnsDlxFromDeclareOk) {
  AmqpRun r;
  r.c2b(queue_declare(1, "", table_with("x-dead-letter-exchange", "dlx2")));
  r.b2c(method(1, 50, 11, Bytes().shortstr("amq.gen-abc").u32(0).u32(0)));
  EXPECT_EQ(r.parser.topology().queue_dlx("amq.gen-abc").value_or("?"), "dlx2");
  // Server-generated consumer tag, learnt from consume-ok.
  r.c2b(consume(1, "amq.gen-abc", ""));
  r.b2c(method(1, 60, 21, Bytes().shortstr("amq.ctag-1")));
  r.b2c(deliver(1, "amq.ctag-1", 1));
  r.c2b(reject(1, 1, false));
  EXPECT_EQ(r.parser.counts().dead_lettered, 1u);
}

TEST(ProtoAmqp, NoAckConsumersAndGetOk) {
  AmqpRun r;
  r.c2b(consume(1, "q", "auto", true));
  for (uint64_t t = 1; t <= 3; ++t) r.b2c(deliver(1, "auto", t));
  EXPECT_EQ(r.parser.counts().deliver, 3u);
  EXPECT_EQ(r.parser.unacked(), 0u);
  r.c2b(method(2, 60, 70, Bytes().u16(0).shortstr("q").u8(0)));  // basic.get, manual ack
  r.b2c(method(2, 60, 71, Bytes().u64(1).u8(0).shortstr("").shortstr("q").u32(0)), 5);
  EXPECT_EQ(r.parser.unacked(2), 1u);
  r.c2b(method(2, 60, 70, Bytes().u16(0).shortstr("q").u8(0)));
  r.b2c(method(2, 60, 72, Bytes().shortstr("")));                // get-empty
  r.c2b(ack(2, 1, false), 9);
  EXPECT_EQ(r.parser.counts().get_ok, 1u);
  EXPECT_EQ(r.parser.counts().deliver, 4u);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].queue, "q");
  EXPECT_EQ(r.events[0].settle_ns - r.events[0].deliver_ns, 4u);
}

TEST(ProtoAmqp, PublisherConfirmsAreNotSettlements) {
  AmqpRun r;
  r.c2b(method(1, 85, 10, Bytes().u8(0)));  // confirm.select
  for (int i = 0; i < 5; ++i) r.c2b(method(1, 60, 40, Bytes().u16(0).shortstr("").shortstr("q").u8(0)));
  r.b2c(ack(1, 2, false));
  r.b2c(ack(1, 4, true));   // 1, 3, 4: 2 already counted
  r.b2c(nack(1, 5, false, false));
  EXPECT_EQ(r.parser.counts().publish, 5u);
  EXPECT_EQ(r.parser.counts().confirm_ack, 4u);
  EXPECT_EQ(r.parser.counts().confirm_nack, 1u);
  EXPECT_EQ(r.parser.counts().ack, 0u);
  EXPECT_EQ(r.parser.counts().nack, 0u);
  EXPECT_TRUE(r.events.empty());
  // In-order single confirms, then a multiple one that covers only new sequence numbers.
  for (uint64_t t = 6; t <= 1000; ++t) r.b2c(ack(1, t, false));
  r.b2c(ack(1, 1003, true));
  EXPECT_EQ(r.parser.counts().confirm_ack, 4u + 995u + 3u);
}

TEST(ProtoAmqp, CloseAndRecoverRequeue) {
  AmqpRun r;
  r.c2b(consume(1, "q", "c"));
  r.c2b(consume(2, "q", "c"));
  r.b2c(deliver(1, "c", 1));
  r.b2c(deliver(1, "c", 2));
  r.b2c(deliver(2, "c", 1));
  r.c2b(method(1, 60, 110, Bytes().u8(1)));  // basic.recover requeue
  EXPECT_EQ(r.parser.unacked(1), 0u);
  EXPECT_EQ(r.parser.unacked(2), 1u);
  r.b2c(method(0, 10, 50, Bytes().u16(320).shortstr("CONNECTION_FORCED").u16(0).u16(0)));
  EXPECT_EQ(r.parser.unacked(), 0u);
  EXPECT_EQ(r.parser.counts().requeued, 3u);
  ASSERT_EQ(r.events.size(), 3u);
  EXPECT_EQ(r.events[2].how, AmqpSettle::kConnectionClosed);
}

TEST(ProtoAmqp, XDeathHeaderMarksDelivery) {
  AmqpRun r;
  r.c2b(consume(1, "dead", "c"));
  Bytes xdeath;  // x-death: an array of tables
  {
    Bytes entry;
    entry.shortstr("reason").u8('S').longstr("rejected").shortstr("count").u8('l').u64(1);
    Bytes arr;
    arr.u8('F').u32(static_cast<uint32_t>(entry.v.size())).raw(entry.v);
    Bytes t;
    t.shortstr("x-first-death-reason").u8('S').longstr("rejected");
    t.shortstr("x-death").u8('A').u32(static_cast<uint32_t>(arr.v.size())).raw(arr.v);
    xdeath.u32(static_cast<uint32_t>(t.v.size())).raw(t.v);
  }
  r.b2c(cat({deliver(1, "c", 1), content_header(1, xdeath.v), frame(3, 1, {'a', 'b', 'c'})}));
  r.b2c(cat({deliver(1, "c", 2), content_header(1, {}), frame(3, 1, {'a', 'b', 'c'})}));
  r.b2c(cat({deliver(1, "c", 3), content_header(1, table_with("other", "x")), frame(3, 1, {'a', 'b', 'c'})}));
  r.c2b(ack(1, 3, true));
  EXPECT_EQ(r.parser.counts().x_death_deliveries, 1u);
  ASSERT_EQ(r.events.size(), 3u);
  EXPECT_TRUE(r.events[0].x_death);
  EXPECT_FALSE(r.events[1].x_death);
  EXPECT_FALSE(r.events[2].x_death);
}

TEST(ProtoAmqp, GapInBodyIsAbsorbedGapAcrossHeaderResyncs) {
  AmqpRun r;
  r.c2b(kProtocolHeader);
  r.c2b(consume(1, "q", "c"));
  std::vector<uint8_t> body(50000, 'x');
  auto big = cat({deliver(1, "c", 1), content_header(1, {}), frame(3, 1, body)});
  size_t body_start = big.size() - body.size() - 1;
  r.b2c(std::vector<uint8_t>(big.begin(), big.begin() + static_cast<long>(body_start) + 100));
  r.parser.gap(kB2C, body.size() - 200);
  r.b2c(std::vector<uint8_t>(big.end() - 101, big.end()));
  EXPECT_EQ(r.parser.stats().gaps_in_payload, 1u);
  EXPECT_EQ(r.parser.stats().resyncs, 0u);
  // Now lose a frame header: the parser scans and picks up at the next verifiable frame.
  auto d2 = deliver(1, "c", 2);
  r.b2c(std::vector<uint8_t>(d2.begin(), d2.begin() + 3));
  r.parser.gap(kB2C, 10);
  r.b2c(cat({deliver(1, "c", 3), deliver(1, "c", 4)}));
  r.c2b(ack(1, 4, true));
  EXPECT_EQ(r.parser.stats().resyncs, 1u);
  EXPECT_EQ(r.parser.counts().deliver, 3u);  // 1, 3, 4 (2 was lost)
  EXPECT_EQ(r.parser.counts().ack, 3u);
  EXPECT_EQ(r.parser.gave_up(), AmqpGiveUp::kNone);
}

TEST(ProtoAmqp, BadEndOctetResyncs) {
  AmqpRun r;
  auto d = deliver(1, "c", 1);
  d.back() = 0x00;
  r.b2c(cat({d, deliver(1, "c", 2)}));
  EXPECT_EQ(r.parser.stats().malformed, 1u);
  EXPECT_EQ(r.parser.counts().deliver, 1u);  // tag 2 after the resync
}

TEST(ProtoAmqp, OtherProtocolVersionGivesUp) {
  AmqpRun r;
  std::vector<uint8_t> amqp10 = {'A', 'M', 'Q', 'P', 0, 1, 0, 0};
  r.c2b(amqp10);
  EXPECT_EQ(r.parser.gave_up(), AmqpGiveUp::kVersion);
}

TEST(ProtoAmqp, GarbageNeverWedges) {
  std::mt19937 rng(3);
  for (int round = 0; round < 100; ++round) {
    AmqpRun r;
    std::vector<uint8_t> junk(1 + rng() % 20000);
    for (auto& b : junk) b = static_cast<uint8_t>(rng());
    r.b2c(junk);
    // Whatever happened, the parser either gave up or is back on valid frames: a clean
    // conversation afterwards on a fresh channel is either ignored (gave up) or counted.
    r.b2c(cat({deliver(9, "c", 1), deliver(9, "c", 2)}));
    if (r.parser.gave_up() == AmqpGiveUp::kNone) {
      EXPECT_GT(r.parser.stats().resyncs + r.parser.stats().frames, 0u);
    }
    EXPECT_LE(r.parser.unacked(), AmqpParser::kMaxTracked);
  }
}

TEST(ProtoAmqp, TrackingIsBoundedPerConnection) {
  AmqpRun r;
  r.c2b(consume(1, "q", "c"));
  r.c2b(consume(2, "q", "c"));
  std::vector<uint8_t> many;
  for (uint64_t t = 1; t <= AmqpParser::kMaxTracked + 10; ++t) {
    auto d = deliver(t % 2 ? 1 : 2, "c", t);
    many.insert(many.end(), d.begin(), d.end());
  }
  r.b2c(many);
  EXPECT_EQ(r.parser.unacked(), AmqpParser::kMaxTracked);
  EXPECT_EQ(r.parser.counts().untracked, 10u);
  EXPECT_EQ(r.parser.unacked(1) + r.parser.unacked(2), AmqpParser::kMaxTracked);
  r.c2b(ack(1, 0, true));
  r.c2b(ack(2, 0, true));
  EXPECT_EQ(r.parser.unacked(), 0u);
}

TEST(ProtoAmqp, FrameHeaderHelpers) {
  aurum_amqp_frame_hdr h{};
  const uint8_t heartbeat[] = {8, 0, 0, 0, 0, 0, 0, 0xCE};
  EXPECT_EQ(aurum_amqp_frame_header(heartbeat, 8, 0, &h), 0);
  EXPECT_EQ(h.type, 8);
  const uint8_t hb_on_channel[] = {8, 0, 1, 0, 0, 0, 0};
  EXPECT_EQ(aurum_amqp_frame_header(hb_on_channel, 7, 0, &h), AURUM_AMQP_INVALID);
  const uint8_t too_big[] = {3, 0, 1, 0, 2, 0, 0};  // 128 KiB body with frame_max 4096
  EXPECT_EQ(aurum_amqp_frame_header(too_big, 7, 4096, &h), AURUM_AMQP_INVALID);
  EXPECT_EQ(aurum_amqp_frame_header(too_big, 7, 0, &h), 0);
  EXPECT_EQ(aurum_amqp_frame_header(too_big, 6, 0, &h), AURUM_AMQP_INCOMPLETE);
  auto a = ack(1, 5, false);
  EXPECT_EQ(aurum_amqp_basic_method(a.data(), static_cast<__u32>(a.size())), AURUM_AMQP_BASIC_ACK);
  EXPECT_EQ(aurum_amqp_protocol_header(kProtocolHeader.data(), 8), 1);
  EXPECT_EQ(aurum_amqp_protocol_header(kProtocolHeader.data(), 3), AURUM_AMQP_INCOMPLETE);
}
