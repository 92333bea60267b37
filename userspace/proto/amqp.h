// SPDX-License-Identifier: Apache-2.0
// AMQP 0-9-1 stream parser: one instance per TCP connection, fed both directions in the order they
// were seen, with arbitrary fragmentation and capture gaps. It counts basic.* operations and
// tracks, per channel, the delivery tags the broker handed out and the client settled, so that
// `multiple` acks settle the right messages, unacked messages are known at any time, and each
// settlement yields a deliver->settle duration. Frame headers are validated by bpf/proto/amqp.h.
//
// Heuristics (documented in docs/metrics.md by whoever exports these):
//  - Direction decides what an ack means: basic.ack/nack from the broker are publisher confirms,
//    from the client consumer settlements. confirm.select is tracked to count confirms per
//    channel, but a broker never acks anything else, so direction alone is authoritative (this
//    also holds when the agent attached after confirm.select went by).
//  - A delivery's queue comes from its consumer tag (basic.consume names queue and tag, or
//    consume-ok names a server-generated tag) or from the basic.get it answers (FIFO per
//    channel). Unknown deliveries fall back to the channel's only consumed queue, if it has one.
//  - A reject/nack with requeue=false is "dead-lettered" when the delivery's queue is known to
//    have an x-dead-letter-exchange (queue.declare arguments seen on any connection sharing the
//    AmqpTopology), else "discarded". A DLX set by policy never crosses the wire, so such queues
//    count as discarded: the broker's rabbitmq_global_messages_dead_lettered_* covers them, and
//    also the causes the wire cannot show (TTL expiry, length limit, delivery limit).
//  - channel.close / connection.close (either side) and basic.recover hand every unacked delivery
//    of the channel/connection back to the broker: they are settled as "requeued", not acked.
//  - Deliveries to no-ack consumers (and no-ack basic.get) are counted but never unacked.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace aurum::proto {

enum class AmqpDirection : uint8_t {
  kClientToBroker,
  kBrokerToClient,
};

enum class AmqpSettle : uint8_t {
  kAck,
  kNack,
  kReject,
  kRecovered,         // basic.recover
  kChannelClosed,     // channel.close: the broker requeues
  kConnectionClosed,  // connection.close: the broker requeues
};

struct AmqpSettleEvent {
  uint16_t channel = 0;
  uint64_t delivery_tag = 0;
  AmqpSettle how = AmqpSettle::kAck;
  bool requeue = false;        // back to the queue (nack/reject requeue=true, recover, close)
  bool dead_lettered = false;  // requeue=false on a queue with a known dead-letter exchange
  bool x_death = false;        // the message carried an x-death header: dead-lettered before
  uint64_t deliver_ns = 0;
  uint64_t settle_ns = 0;
  std::string queue;           // empty if unknown
};

struct AmqpCounts {
  uint64_t publish = 0;
  uint64_t deliver = 0;          // basic.deliver + basic.get-ok
  uint64_t get_ok = 0;
  uint64_t ack = 0;              // messages settled by consumer acks (multiple counts each)
  uint64_t nack = 0;
  uint64_t reject = 0;
  uint64_t confirm_ack = 0;      // publisher confirms (broker to client), in messages when known
  uint64_t confirm_nack = 0;
  uint64_t dead_lettered = 0;    // reject/nack requeue=false on a queue with a known DLX
  uint64_t discarded = 0;        // reject/nack requeue=false, no DLX known for the queue
  uint64_t requeued = 0;         // nack/reject requeue=true, recover, channel/connection close
  uint64_t dlx_deliveries = 0;   // deliveries whose exchange is a known dead-letter exchange
  uint64_t x_death_deliveries = 0;  // deliveries whose headers carry x-death
  uint64_t redelivered = 0;      // deliveries with the redelivered bit
  uint64_t unknown_tag = 0;      // single settlements of a tag never seen delivered
  uint64_t untracked = 0;        // deliveries dropped from tracking by the per-connection cap
};

struct AmqpStats {
  uint64_t frames = 0;
  uint64_t malformed = 0;        // bad header, bad end octet, undecodable method
  uint64_t gaps_in_payload = 0;  // gaps absorbed inside a frame payload
  uint64_t resyncs = 0;
};

// What the AMQP traffic of one host has taught about queues and exchanges. Shared (by pointer)
// between the parsers of all connections, because the connection that declares a queue is
// rarely the one that consumes from it. Not thread-safe; bounded.
class AmqpTopology {
 public:
  static constexpr size_t kMaxQueues = 16384;

  // `dlx` empty: the queue was declared without x-dead-letter-exchange.
  void declare_queue(const std::string& queue, const std::string& dlx);
  // nullopt: never seen declared; "": declared without a DLX.
  std::optional<std::string> queue_dlx(const std::string& queue) const;
  bool is_dead_letter_exchange(const std::string& exchange) const;

 private:
  std::unordered_map<std::string, std::string> queue_dlx_;
  std::unordered_map<std::string, uint32_t> dlx_refs_;
};

enum class AmqpGiveUp : uint8_t {
  kNone,
  kVersion,    // another protocol version (AMQP 1.0, 0-8): nothing to parse
  kMalformed,  // resynchronisation failed too often or found nothing
};

class AmqpParser {
 public:
  using Callback = std::function<void(const AmqpSettleEvent&)>;

  // `topology` is shared with the parsers of other connections and must outlive this parser;
  // null gives the parser a private one.
  explicit AmqpParser(Callback on_settle, AmqpTopology* topology = nullptr);

  void feed(AmqpDirection dir, const uint8_t* data, size_t len, uint64_t ts_ns);
  void gap(AmqpDirection dir, uint64_t n);

  const AmqpCounts& counts() const { return counts_; }
  const AmqpStats& stats() const { return stats_; }
  AmqpGiveUp gave_up() const { return gave_up_; }
  size_t unacked() const;                    // delivered, not yet settled, on every channel
  size_t unacked(uint16_t channel) const;
  uint32_t frame_max() const { return frame_max_; }
  const AmqpTopology& topology() const { return *topology_; }

  static constexpr size_t kKeepPayload = 16 * 1024;  // bytes of a method/header frame decoded
  static constexpr size_t kMaxTracked = 65536;       // unacked deliveries tracked per connection
  static constexpr size_t kMaxChannels = 1024;
  static constexpr size_t kMaxPerChannel = 64;       // consumers, pending gets/consumes/declares
  static constexpr size_t kScanBuffer = 8192;        // frames up to this size can resync
  static constexpr size_t kMaxScan = 1 << 20;
  static constexpr int kMaxResyncs = 16;

 private:
  struct Delivery {
    uint64_t ts = 0;
    std::string queue;
    bool x_death = false;
  };
  struct Consumer {
    std::string queue;
    bool no_ack = false;
  };
  struct Channel {
    std::map<uint64_t, Delivery> unacked;               // by delivery tag, ordered for multiple
    std::unordered_map<std::string, Consumer> consumers;  // by consumer tag
    std::deque<Consumer> pending_consume;               // basic.consume with an empty tag
    std::deque<Consumer> pending_get;                   // basic.get awaiting get-ok/get-empty
    std::deque<std::string> pending_declare_dlx;        // server-named queue.declare with a DLX
    bool confirm = false;                               // confirm.select seen
    uint64_t confirmed_upto = 0;                        // publisher confirms: all <= are done
    std::set<uint64_t> confirmed_singles;               // single confirms above the watermark
    std::optional<uint64_t> header_for;                 // delivery awaiting its content header
  };
  enum class Phase : uint8_t { kStart, kProtocolHeader, kFrame, kScan, kDead };
  struct Stream {
    Phase phase = Phase::kStart;
    uint8_t hdr[8] = {};
    size_t hdr_have = 0;
    uint8_t type = 0;
    uint16_t channel = 0;
    uint32_t size = 0;
    uint64_t left = 0;       // payload bytes still to come, then the end octet
    bool end_pending = false;
    std::vector<uint8_t> payload;  // kept prefix
    bool truncated = false;  // the kept prefix stops at a gap
    uint64_t ts = 0;
    std::vector<uint8_t> scan;
    size_t scanned = 0;
  };

  Stream& stream(AmqpDirection d) { return d == AmqpDirection::kClientToBroker ? c2b_ : b2c_; }
  void feed_stream(AmqpDirection dir, Stream& s, const uint8_t* p, size_t n, uint64_t ts);
  size_t step_protocol_header(Stream& s, const uint8_t* p, size_t n);
  size_t step_frame(AmqpDirection dir, Stream& s, const uint8_t* p, size_t n, uint64_t ts);
  size_t step_scan(AmqpDirection dir, Stream& s, const uint8_t* p, size_t n, uint64_t ts);
  void on_frame(AmqpDirection dir, Stream& s);
  void on_method(AmqpDirection dir, uint16_t ch, const uint8_t* p, size_t n, uint64_t ts);
  void on_content_header(AmqpDirection dir, uint16_t ch, const uint8_t* p, size_t n);
  void on_delivery(uint16_t ch, const std::string& consumer_tag, bool from_get, uint64_t tag,
                   bool redelivered, const std::string& exchange, uint64_t ts);
  void settle(uint16_t ch, uint64_t tag, bool multiple, AmqpSettle how, bool requeue, uint64_t ts);
  void settle_all(Channel& c, uint16_t ch, AmqpSettle how, uint64_t ts);
  void confirm(uint16_t ch, uint64_t tag, bool multiple, bool ack);
  void emit(uint16_t ch, uint64_t tag, const Delivery& d, AmqpSettle how, bool requeue, uint64_t ts);
  Channel* channel(uint16_t ch);
  std::string sole_queue(const Channel& c) const;
  void lose_sync(Stream& s);
  void give_up(AmqpGiveUp why);

  Callback on_settle_;
  AmqpTopology own_topology_;
  AmqpTopology* topology_;
  Stream c2b_, b2c_;
  std::unordered_map<uint16_t, Channel> channels_;
  uint32_t frame_max_ = 0;  // negotiated by connection.tune-ok; 0 = not seen
  size_t tracked_ = 0;      // unacked entries over all channels
  int resyncs_ = 0;
  AmqpGiveUp gave_up_ = AmqpGiveUp::kNone;
  AmqpCounts counts_;
  AmqpStats stats_;
};

}  // namespace aurum::proto
