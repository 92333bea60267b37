// SPDX-License-Identifier: Apache-2.0
#include "proto/amqp.h"

#include <algorithm>
#include <cstring>

#include "bpf/proto/amqp.h"
#include "proto/amqp_codec.h"

namespace aurum::proto {

using amqp_codec::Reader;
using amqp_codec::table_find;
void AmqpTopology::declare_queue(const std::string& queue, const std::string& dlx) {
  auto it = queue_dlx_.find(queue);
  if (it == queue_dlx_.end() && queue_dlx_.size() >= kMaxQueues) return;
  if (it != queue_dlx_.end() && !it->second.empty()) {
    if (--dlx_refs_[it->second] == 0) dlx_refs_.erase(it->second);
  }
  queue_dlx_[queue] = dlx;
  if (!dlx.empty()) ++dlx_refs_[dlx];
}

std::optional<std::string> AmqpTopology::queue_dlx(const std::string& queue) const {
  auto it = queue_dlx_.find(queue);
  if (it == queue_dlx_.end()) return std::nullopt;
  return it->second;
}

bool AmqpTopology::is_dead_letter_exchange(const std::string& exchange) const {
  return dlx_refs_.count(exchange) > 0;
}

AmqpParser::AmqpParser(Callback on_settle, AmqpTopology* topology)
    : on_settle_(std::move(on_settle)), topology_(topology ? topology : &own_topology_) {}

size_t AmqpParser::unacked() const { return tracked_; }

size_t AmqpParser::unacked(uint16_t ch) const {
  auto it = channels_.find(ch);
  return it == channels_.end() ? 0 : it->second.unacked.size();
}

void AmqpParser::feed(AmqpDirection dir, const uint8_t* data, size_t len, uint64_t ts_ns) {
  if (gave_up_ != AmqpGiveUp::kNone || data == nullptr) return;
  feed_stream(dir, stream(dir), data, len, ts_ns);
}

void AmqpParser::feed_stream(AmqpDirection dir, Stream& s, const uint8_t* p, size_t n,
                             uint64_t ts) {
  while (n > 0 && gave_up_ == AmqpGiveUp::kNone) {
    size_t used = 0;
    switch (s.phase) {
      case Phase::kStart:
        // "AMQP" opens the client's side; a broker sends it only to refuse our version. Anything
        // else is a frame: the agent attached to a live connection.
        s.phase = p[0] == 'A' ? Phase::kProtocolHeader : Phase::kFrame;
        break;
      case Phase::kProtocolHeader: used = step_protocol_header(s, p, n); break;
      case Phase::kFrame: used = step_frame(dir, s, p, n, ts); break;
      case Phase::kScan: used = step_scan(dir, s, p, n, ts); break;
      case Phase::kDead: return;
    }
    p += used;
    n -= used;
  }
}

size_t AmqpParser::step_protocol_header(Stream& s, const uint8_t* p, size_t n) {
  size_t take = std::min(n, AURUM_AMQP_PROTOCOL_HEADER_LEN - s.hdr_have);
  std::memcpy(s.hdr + s.hdr_have, p, take);
  s.hdr_have += take;
  int r = aurum_amqp_protocol_header(s.hdr, static_cast<__u32>(s.hdr_have));
  if (r == AURUM_AMQP_INCOMPLETE) return take;
  s.hdr_have = 0;
  if (r == 1) {
    s.phase = Phase::kFrame;
  } else if (r == 2) {
    give_up(AmqpGiveUp::kVersion);
  } else {
    ++stats_.malformed;
    lose_sync(s);
  }
  return take;
}

size_t AmqpParser::step_frame(AmqpDirection dir, Stream& s, const uint8_t* p, size_t n,
                              uint64_t ts) {
  if (s.hdr_have < AURUM_AMQP_FRAME_HEADER_LEN) {
    if (s.hdr_have == 0) s.ts = ts;
    size_t take = std::min(n, AURUM_AMQP_FRAME_HEADER_LEN - s.hdr_have);
    std::memcpy(s.hdr + s.hdr_have, p, take);
    s.hdr_have += take;
    if (s.hdr_have < AURUM_AMQP_FRAME_HEADER_LEN) return take;
    aurum_amqp_frame_hdr h{};
    if (aurum_amqp_frame_header(s.hdr, AURUM_AMQP_FRAME_HEADER_LEN, frame_max_, &h) != 0) {
      ++stats_.malformed;
      lose_sync(s);
      return take;
    }
    s.type = h.type;
    s.channel = h.channel;
    s.size = h.size;
    s.left = h.size;
    s.end_pending = true;
    s.payload.clear();
    s.truncated = false;
    return take;
  }
  if (s.left > 0) {
    size_t take = static_cast<size_t>(std::min<uint64_t>(n, s.left));
    bool keep = s.type == AURUM_AMQP_FRAME_METHOD || s.type == AURUM_AMQP_FRAME_HEADER;
    if (keep && !s.truncated && s.payload.size() < kKeepPayload)
      s.payload.insert(s.payload.end(), p, p + std::min(take, kKeepPayload - s.payload.size()));
    s.left -= take;
    return take;
  }
  // The frame-end octet: the only check AMQP offers that framing is still right.
  s.hdr_have = 0;
  s.end_pending = false;
  if (p[0] != AURUM_AMQP_FRAME_END) {
    ++stats_.malformed;
    lose_sync(s);
    return 1;
  }
  ++stats_.frames;
  on_frame(dir, s);
  return 1;
}

// Scans for a frame that can be verified whole (valid header, known method class, end octet at
// the right place) within kScanBuffer bytes, then resumes parsing there.
size_t AmqpParser::step_scan(AmqpDirection dir, Stream& s, const uint8_t* p, size_t n,
                             uint64_t ts) {
  size_t take = std::min(n, kScanBuffer - s.scan.size());
  s.scan.insert(s.scan.end(), p, p + take);
  s.scanned += take;
  size_t off = 0;
  while (off + AURUM_AMQP_FRAME_HEADER_LEN <= s.scan.size()) {
    aurum_amqp_frame_hdr h{};
    const uint8_t* c = s.scan.data() + off;
    bool plausible = aurum_amqp_frame_header(c, AURUM_AMQP_FRAME_HEADER_LEN, frame_max_, &h) == 0 &&
                     h.size + 8u <= kScanBuffer;
    if (plausible && h.type == AURUM_AMQP_FRAME_METHOD) {
      if (off + AURUM_AMQP_FRAME_HEADER_LEN + 2 > s.scan.size()) break;  // need the class id
      uint16_t cls = aurum_be16(c + AURUM_AMQP_FRAME_HEADER_LEN);
      plausible = cls == 10 || cls == 20 || cls == 40 || cls == 50 || cls == 60 || cls == 85 ||
                  cls == 90;
    }
    if (plausible) {
      size_t end = off + AURUM_AMQP_FRAME_HEADER_LEN + h.size;
      if (end >= s.scan.size()) break;  // wait for the end octet
      if (s.scan[end] == AURUM_AMQP_FRAME_END) {
        std::vector<uint8_t> replay(s.scan.begin() + static_cast<long>(off), s.scan.end());
        s.scan.clear();
        s.scanned = 0;
        s.phase = Phase::kFrame;
        s.hdr_have = 0;
        feed_stream(dir, s, replay.data(), replay.size(), ts);
        return take;
      }
    }
    ++off;
  }
  s.scan.erase(s.scan.begin(), s.scan.begin() + static_cast<long>(off));
  if (s.scan.size() >= kScanBuffer) s.scan.erase(s.scan.begin(), s.scan.begin() + kScanBuffer / 2);
  if (s.scanned > kMaxScan) give_up(AmqpGiveUp::kMalformed);
  // Progress is guaranteed: either bytes were taken or the buffer just shrank.
  return take;
}

void AmqpParser::gap(AmqpDirection dir, uint64_t n) {
  if (gave_up_ != AmqpGiveUp::kNone || n == 0) return;
  Stream& s = stream(dir);
  if (s.phase == Phase::kScan) {
    s.scan.clear();  // the window must be contiguous
    s.scanned += static_cast<size_t>(std::min<uint64_t>(n, kMaxScan));
    if (s.scanned > kMaxScan) give_up(AmqpGiveUp::kMalformed);
    return;
  }
  if (s.phase == Phase::kFrame && s.hdr_have == AURUM_AMQP_FRAME_HEADER_LEN && n <= s.left) {
    ++stats_.gaps_in_payload;
    s.left -= n;
    s.truncated = true;
    return;
  }
  lose_sync(s);
}

void AmqpParser::lose_sync(Stream& s) {
  ++stats_.resyncs;
  if (++resyncs_ > kMaxResyncs) {
    give_up(AmqpGiveUp::kMalformed);
    return;
  }
  s.phase = Phase::kScan;
  s.hdr_have = 0;
  s.scan.clear();
  s.scanned = 0;
  // Deliveries and settlements may have been lost: a stale unacked entry is settled later by a
  // `multiple` ack, a channel close, or connection close; nothing else needs resetting.
}

void AmqpParser::give_up(AmqpGiveUp why) {
  gave_up_ = why;
  c2b_.phase = b2c_.phase = Phase::kDead;
}

AmqpParser::Channel* AmqpParser::channel(uint16_t ch) {
  auto it = channels_.find(ch);
  if (it != channels_.end()) return &it->second;
  if (channels_.size() >= kMaxChannels) return nullptr;
  return &channels_[ch];
}

void AmqpParser::on_frame(AmqpDirection dir, Stream& s) {
  const uint8_t* p = s.payload.data();
  size_t n = s.payload.size();
  if (s.type == AURUM_AMQP_FRAME_METHOD) {
    on_method(dir, s.channel, p, n, s.ts);
  } else if (s.type == AURUM_AMQP_FRAME_HEADER) {
    on_content_header(dir, s.channel, p, n);
  }
}

void AmqpParser::on_method(AmqpDirection dir, uint16_t ch, const uint8_t* p, size_t n,
                           uint64_t ts) {
  Reader r{p, n};
  uint16_t cls = r.u16();
  uint16_t method = r.u16();
  if (!r.ok) {
    ++stats_.malformed;
    return;
  }
  const bool from_client = dir == AmqpDirection::kClientToBroker;
  switch (cls) {
    case AURUM_AMQP_CLASS_CONNECTION:
      if (method == AURUM_AMQP_CONNECTION_TUNE_OK && from_client) {
        r.u16();  // channel-max
        uint32_t fm = r.u32();
        if (r.ok) frame_max_ = fm;  // 0 means "no limit" (the sanity ceiling applies)
      } else if (method == AURUM_AMQP_CONNECTION_CLOSE || method == AURUM_AMQP_CONNECTION_CLOSE_OK) {
        for (auto& [id, c] : channels_) settle_all(c, id, AmqpSettle::kConnectionClosed, ts);
        channels_.clear();
      }
      return;
    case AURUM_AMQP_CLASS_CHANNEL:
      if (method == AURUM_AMQP_CHANNEL_OPEN || method == AURUM_AMQP_CHANNEL_CLOSE ||
          method == AURUM_AMQP_CHANNEL_CLOSE_OK) {
        auto it = channels_.find(ch);
        if (it != channels_.end()) {
          settle_all(it->second, ch, AmqpSettle::kChannelClosed, ts);
          channels_.erase(it);
        }
      }
      return;
    case AURUM_AMQP_CLASS_QUEUE:
      if (method == AURUM_AMQP_QUEUE_DECLARE && from_client) {
        r.u16();  // reserved
        std::string queue = r.shortstr();
        uint8_t bits = r.u8();
        std::string dlx;
        bool has_dlx = table_find(r, "x-dead-letter-exchange", &dlx);
        if (!r.ok) {
          ++stats_.malformed;
          return;
        }
        if (!has_dlx) dlx.clear();
        bool passive = bits & 1, no_wait = bits & 16;
        if (passive) return;  // a passive declare only checks; its arguments mean nothing
        if (!queue.empty()) {
          topology_->declare_queue(queue, dlx);
        } else if (!no_wait) {
          Channel* c = channel(ch);
          if (c && c->pending_declare_dlx.size() < kMaxPerChannel) c->pending_declare_dlx.push_back(dlx);
        }
      } else if (method == AURUM_AMQP_QUEUE_DECLARE_OK && !from_client) {
        std::string queue = r.shortstr();
        Channel* c = channel(ch);
        if (c && !c->pending_declare_dlx.empty()) {
          if (r.ok) topology_->declare_queue(queue, c->pending_declare_dlx.front());
          c->pending_declare_dlx.pop_front();
        }
      }
      return;
    case AURUM_AMQP_CLASS_CONFIRM:
      if (method == AURUM_AMQP_CONFIRM_SELECT && from_client) {
        if (Channel* c = channel(ch)) c->confirm = true;
      }
      return;
    case AURUM_AMQP_CLASS_BASIC:
      break;
    default:
      return;
  }

  Channel* c = channel(ch);
  switch (method) {
    case AURUM_AMQP_BASIC_CONSUME: {
      if (!from_client || !c) return;
      r.u16();
      Consumer con;
      con.queue = r.shortstr();
      std::string tag = r.shortstr();
      uint8_t bits = r.u8();
      if (!r.ok) return;
      con.no_ack = bits & 2;
      if (!tag.empty()) {
        if (c->consumers.size() < kMaxPerChannel) c->consumers[tag] = con;
      } else if (!(bits & 8) && c->pending_consume.size() < kMaxPerChannel) {
        c->pending_consume.push_back(con);
      }
      return;
    }
    case AURUM_AMQP_BASIC_CONSUME_OK: {
      if (from_client || !c) return;
      std::string tag = r.shortstr();
      if (!r.ok || c->pending_consume.empty()) return;
      // consume-ok answers basic.consume in order; with a client-chosen tag it repeats it.
      if (!c->consumers.count(tag) && c->consumers.size() < kMaxPerChannel)
        c->consumers[tag] = c->pending_consume.front();
      c->pending_consume.pop_front();
      return;
    }
    case AURUM_AMQP_BASIC_PUBLISH:
      if (!from_client) return;
      ++counts_.publish;
      return;
    case AURUM_AMQP_BASIC_DELIVER: {
      if (from_client) return;
      std::string consumer_tag = r.shortstr();
      uint64_t tag = r.u64();
      bool redelivered = r.u8() & 1;
      std::string exchange = r.shortstr();
      if (!r.ok) {
        ++stats_.malformed;
        return;
      }
      on_delivery(ch, consumer_tag, false, tag, redelivered, exchange, ts);
      return;
    }
    case AURUM_AMQP_BASIC_GET:
      if (!from_client || !c) return;
      {
        r.u16();
        Consumer get;
        get.queue = r.shortstr();
        get.no_ack = r.u8() & 1;
        if (r.ok && c->pending_get.size() < kMaxPerChannel) c->pending_get.push_back(get);
      }
      return;
    case AURUM_AMQP_BASIC_GET_OK: {
      if (from_client) return;
      uint64_t tag = r.u64();
      bool redelivered = r.u8() & 1;
      std::string exchange = r.shortstr();
      if (!r.ok) {
        ++stats_.malformed;
        return;
      }
      ++counts_.get_ok;
      on_delivery(ch, {}, true, tag, redelivered, exchange, ts);
      return;
    }
    case AURUM_AMQP_BASIC_GET_EMPTY:
      if (!from_client && c && !c->pending_get.empty()) c->pending_get.pop_front();
      return;
    case AURUM_AMQP_BASIC_ACK: {
      uint64_t tag = r.u64();
      bool multiple = r.u8() & 1;
      if (!r.ok) return;
      if (from_client)
        settle(ch, tag, multiple, AmqpSettle::kAck, false, ts);
      else
        confirm(ch, tag, multiple, true);
      return;
    }
    case AURUM_AMQP_BASIC_NACK: {
      uint64_t tag = r.u64();
      uint8_t bits = r.u8();
      if (!r.ok) return;
      if (from_client)
        settle(ch, tag, bits & 1, AmqpSettle::kNack, bits & 2, ts);
      else
        confirm(ch, tag, bits & 1, false);
      return;
    }
    case AURUM_AMQP_BASIC_REJECT: {
      uint64_t tag = r.u64();
      bool requeue = r.u8() & 1;
      if (!r.ok || !from_client) return;
      settle(ch, tag, false, AmqpSettle::kReject, requeue, ts);
      return;
    }
    case AURUM_AMQP_BASIC_RECOVER:
    case AURUM_AMQP_BASIC_RECOVER_ASYNC:
      // Either requeue value hands every unacked message back; RabbitMQ redelivers them with
      // new delivery tags.
      if (from_client && c) settle_all(*c, ch, AmqpSettle::kRecovered, ts);
      return;
    default:
      return;
  }
}

void AmqpParser::on_delivery(uint16_t ch, const std::string& consumer_tag, bool from_get,
                             uint64_t tag, bool redelivered, const std::string& exchange,
                             uint64_t ts) {
  ++counts_.deliver;
  if (redelivered) ++counts_.redelivered;
  if (topology_->is_dead_letter_exchange(exchange)) ++counts_.dlx_deliveries;
  Channel* c = channel(ch);
  if (!c) return;
  Consumer source;
  bool known = false;
  if (from_get) {
    if (!c->pending_get.empty()) {
      source = c->pending_get.front();
      c->pending_get.pop_front();
      known = true;
    }
  } else if (auto it = c->consumers.find(consumer_tag); it != c->consumers.end()) {
    source = it->second;
    known = true;
  }
  if (!known) source.queue = sole_queue(*c);
  c->header_for = tag;
  if (source.no_ack) return;
  if (tracked_ >= kMaxTracked) {
    // A consumer that never acks, or garbage that looks like deliveries: keep memory bounded
    // and count what is no longer tracked.
    ++counts_.untracked;
    if (c->unacked.empty()) return;
    c->unacked.erase(c->unacked.begin());
    --tracked_;
  }
  if (c->unacked.insert_or_assign(tag, Delivery{ts, source.queue, false}).second) ++tracked_;
}

void AmqpParser::on_content_header(AmqpDirection dir, uint16_t ch, const uint8_t* p, size_t n) {
  if (dir != AmqpDirection::kBrokerToClient) return;
  auto it = channels_.find(ch);
  if (it == channels_.end() || !it->second.header_for) return;
  Channel& c = it->second;
  uint64_t tag = *c.header_for;
  c.header_for.reset();
  Reader r{p, n};
  r.u16();  // class
  r.u16();  // weight
  r.u64();  // body size
  uint16_t flags = r.u16();
  if (!r.ok || !(flags & (1 << 13))) return;  // no headers table
  if (flags & (1 << 15)) r.shortstr();        // content-type
  if (flags & (1 << 14)) r.shortstr();        // content-encoding
  if (!r.ok) return;
  if (table_find(r, "x-death", nullptr)) {
    ++counts_.x_death_deliveries;
    if (auto d = c.unacked.find(tag); d != c.unacked.end()) d->second.x_death = true;
  }
}

std::string AmqpParser::sole_queue(const Channel& c) const {
  std::string queue;
  for (const auto& [tag, con] : c.consumers) {
    if (!queue.empty() && con.queue != queue) return {};
    queue = con.queue;
  }
  return queue;
}

void AmqpParser::emit(uint16_t ch, uint64_t tag, const Delivery& d, AmqpSettle how, bool requeue,
                      uint64_t ts) {
  AmqpSettleEvent ev;
  ev.channel = ch;
  ev.delivery_tag = tag;
  ev.how = how;
  ev.requeue = requeue;
  ev.x_death = d.x_death;
  ev.deliver_ns = d.ts;
  ev.settle_ns = ts;
  ev.queue = d.queue;
  if ((how == AmqpSettle::kNack || how == AmqpSettle::kReject) && !requeue) {
    auto dlx = d.queue.empty() ? std::nullopt : topology_->queue_dlx(d.queue);
    ev.dead_lettered = dlx && !dlx->empty();
    ++(ev.dead_lettered ? counts_.dead_lettered : counts_.discarded);
  }
  if (requeue) ++counts_.requeued;
  if (on_settle_) on_settle_(ev);
}

void AmqpParser::settle(uint16_t ch, uint64_t tag, bool multiple, AmqpSettle how, bool requeue,
                        uint64_t ts) {
  uint64_t* counter = how == AmqpSettle::kAck    ? &counts_.ack
                      : how == AmqpSettle::kNack ? &counts_.nack
                                                 : &counts_.reject;
  Channel* c = channel(ch);
  if (!c) return;
  if (!multiple) {
    ++*counter;
    auto it = c->unacked.find(tag);
    if (it == c->unacked.end()) {
      // Delivered before the agent attached, or lost to a gap: still an operation.
      ++counts_.unknown_tag;
      Delivery d{ts, sole_queue(*c), false};
      emit(ch, tag, d, how, requeue, ts);
      return;
    }
    Delivery d = std::move(it->second);
    c->unacked.erase(it);
    --tracked_;
    emit(ch, tag, d, how, requeue, ts);
    return;
  }
  // multiple: every outstanding tag up to and including `tag`; tag 0 means all of them
  // (amqp0-9-1 basic.ack "multiple").
  auto end = tag == 0 ? c->unacked.end() : c->unacked.upper_bound(tag);
  for (auto it = c->unacked.begin(); it != end;) {
    ++*counter;
    emit(ch, it->first, it->second, how, requeue, ts);
    it = c->unacked.erase(it);
    --tracked_;
  }
}

void AmqpParser::settle_all(Channel& c, uint16_t ch, AmqpSettle how, uint64_t ts) {
  for (auto& [tag, d] : c.unacked) emit(ch, tag, d, how, true, ts);
  tracked_ -= c.unacked.size();
  c.unacked.clear();
}

void AmqpParser::confirm(uint16_t ch, uint64_t tag, bool multiple, bool ack) {
  uint64_t& counter = ack ? counts_.confirm_ack : counts_.confirm_nack;
  Channel* c = channel(ch);
  if (!c || !c->confirm) {
    // confirm.select went by before the agent attached: sequence numbers are unknown, count
    // the frame.
    ++counter;
    return;
  }
  // Sequence numbers start at 1 with confirm.select. Below the watermark everything is
  // confirmed; above it, single confirms are remembered so that a later `multiple` one does not
  // count them twice.
  if (!multiple) {
    if (tag > c->confirmed_upto && c->confirmed_singles.insert(tag).second) ++counter;
    // In-order single confirms (the common case without `multiple`) move the watermark, so the
    // set only holds the out-of-order ones.
    while (!c->confirmed_singles.empty() && *c->confirmed_singles.begin() == c->confirmed_upto + 1) {
      c->confirmed_singles.erase(c->confirmed_singles.begin());
      ++c->confirmed_upto;
    }
    if (c->confirmed_singles.size() > kMaxPerChannel * 16)
      c->confirmed_singles.erase(c->confirmed_singles.begin());
    return;
  }
  if (tag <= c->confirmed_upto) return;
  uint64_t fresh = tag - c->confirmed_upto;
  auto end = c->confirmed_singles.upper_bound(tag);
  fresh -= static_cast<uint64_t>(std::distance(c->confirmed_singles.begin(), end));
  c->confirmed_singles.erase(c->confirmed_singles.begin(), end);
  c->confirmed_upto = tag;
  counter += fresh;
}

}  // namespace aurum::proto
