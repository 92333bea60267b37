// SPDX-License-Identifier: Apache-2.0
#include "proto/pgsql.h"

#include <algorithm>
#include <cstring>

#include "bpf/proto/pgsql.h"

namespace aurum::proto {
namespace {

constexpr int kDir(PgDirection d) {
  return d == PgDirection::kFrontend ? AURUM_PGSQL_FRONTEND : AURUM_PGSQL_BACKEND;
}

// Bytes in a resynchronisation window: a 5-byte header plus the first body byte.
constexpr size_t kScanWindow = 6;
// While scanning, a frontend Query or Parse is trusted only with a modest length.
constexpr uint32_t kScanMaxLen = 1 << 20;

bool printable_or_nul(uint8_t c) {
  return c == 0 || c == '\t' || c == '\n' || c == '\r' || (c >= 0x20 && c < 0x7f);
}

// A header worth resuming at after framing was lost. Backend: ReadyForQuery, whose six bytes are
// fixed but for three status values, and which is also the boundary where query matching can
// restart. Frontend: the messages that start queries or end batches.
bool trusted_header(PgDirection dir, const uint8_t* w) {
  if (dir == PgDirection::kBackend) return aurum_pgsql_ready_for_query(w, kScanWindow) != 0;
  uint32_t len = aurum_be32(w + 1);
  switch (w[0]) {
    case 'S':
    case 'X':
    case 'H':
      return len == 4;
    case 'Q':
    case 'P':
      return len >= 6 && len < kScanMaxLen && printable_or_nul(w[5]);
    default:
      return false;
  }
}

// ErrorResponse body: (field code byte, NUL-terminated string)* then a NUL. Returns field 'C'.
std::string sqlstate_of(const std::string& body) {
  size_t i = 0;
  while (i < body.size() && body[i] != '\0') {
    char code = body[i++];
    size_t end = body.find('\0', i);
    if (end == std::string::npos) return {};
    if (code == 'C') return end - i == 5 ? body.substr(i, 5) : std::string{};
    i = end + 1;
  }
  return {};
}

}  // namespace

PgsqlParser::PgsqlParser(Callback on_query) : on_query_(std::move(on_query)) {
  be_.phase = Phase::kTyped;  // a backend never sends untyped bytes unless asked (kAwaitAnswer)
}

size_t PgsqlParser::in_flight() const {
  return static_cast<size_t>(
      std::count_if(pending_.begin(), pending_.end(), [](const Pending& p) { return !p.silent; }));
}

void PgsqlParser::feed(PgDirection dir, const uint8_t* data, size_t len, uint64_t ts_ns) {
  if (gave_up_ != PgGiveUp::kNone || data == nullptr) return;
  feed_stream(dir, stream(dir), data, len, ts_ns);
}

void PgsqlParser::feed_stream(PgDirection dir, Stream& s, const uint8_t* p, size_t n,
                              uint64_t ts) {
  while (n > 0 && gave_up_ == PgGiveUp::kNone) {
    size_t used = 0;
    switch (s.phase) {
      case Phase::kUnknown: step_unknown(dir, s, p); break;  // consumes nothing, decides phase
      case Phase::kStartup: used = step_startup(s, p, n, ts); break;
      case Phase::kAwaitAnswer: used = step_answer(s, p, n); break;
      case Phase::kTyped: used = step_typed(dir, s, p, n, ts); break;
      case Phase::kScan: used = step_scan(dir, s, p, n, ts); break;
      case Phase::kDead: return;
    }
    p += used;
    n -= used;
  }
}

// The first frontend bytes: a startup packet (its int32 length is below 10000, so the first byte
// is 0) or, when the agent attached to a live connection, a typed message.
void PgsqlParser::step_unknown(PgDirection dir, Stream& s, const uint8_t* p) {
  s.phase = dir == PgDirection::kFrontend && p[0] == 0 ? Phase::kStartup : Phase::kTyped;
}

size_t PgsqlParser::step_startup(Stream& s, const uint8_t* p, size_t n, uint64_t ts) {
  if (s.hdr_have < 8) {
    if (s.hdr_have == 0) s.msg_ts = ts;
    size_t take = std::min(n, 8 - s.hdr_have);
    std::memcpy(s.hdr + s.hdr_have, p, take);
    s.hdr_have += take;
    if (s.hdr_have == 8) {
      int kind = aurum_pgsql_startup_kind(s.hdr, 8);
      if (kind <= 0) {
        ++stats_.malformed;
        lose_sync(PgDirection::kFrontend, s);
        return take;
      }
      ++stats_.messages_frontend;
      s.body_left = aurum_be32(s.hdr) - 8;
      on_startup(s.hdr);
      if (gave_up_ == PgGiveUp::kNone && s.body_left == 0) on_message_end(PgDirection::kFrontend, s);
    }
    return take;
  }
  size_t take = static_cast<size_t>(std::min<uint64_t>(n, s.body_left));
  s.body_left -= take;
  if (s.body_left == 0) on_message_end(PgDirection::kFrontend, s);
  return take;
}

void PgsqlParser::on_startup(const uint8_t hdr[8]) {
  switch (aurum_pgsql_startup_kind(hdr, 8)) {
    case AURUM_PGSQL_STARTUP_V3:
      // The server ends authentication with a ReadyForQuery that answers no query.
      push(Pending{.silent = true});
      break;
    case AURUM_PGSQL_STARTUP_SSL:
    case AURUM_PGSQL_STARTUP_GSSENC:
      // Answered by one untyped byte; the client then sends another startup packet.
      be_.phase = Phase::kAwaitAnswer;
      be_.hdr_have = 0;
      break;
    case AURUM_PGSQL_STARTUP_CANCEL:
      give_up(PgGiveUp::kCancel);
      break;
    default:
      break;
  }
}

size_t PgsqlParser::step_answer(Stream& s, const uint8_t* p, size_t /*n*/) {
  switch (p[0]) {
    case 'N':  // not supported: plaintext continues
      s.phase = Phase::kTyped;
      return 1;
    case 'S':
      give_up(PgGiveUp::kTls);
      return 1;
    case 'G':
      give_up(PgGiveUp::kGssEncrypted);
      return 1;
    case 'E':  // a server too old for the request answers with an ErrorResponse
      s.phase = Phase::kTyped;
      return 0;
    default:
      ++stats_.malformed;
      lose_sync(PgDirection::kBackend, s);
      return 1;
  }
}

size_t PgsqlParser::step_typed(PgDirection dir, Stream& s, const uint8_t* p, size_t n,
                               uint64_t ts) {
  if (s.hdr_have < AURUM_PGSQL_HEADER_LEN) {
    if (s.hdr_have == 0) s.msg_ts = ts;
    size_t take = std::min(n, AURUM_PGSQL_HEADER_LEN - s.hdr_have);
    std::memcpy(s.hdr + s.hdr_have, p, take);
    s.hdr_have += take;
    if (s.hdr_have < AURUM_PGSQL_HEADER_LEN) return take;
    __s64 body = aurum_pgsql_header(s.hdr, AURUM_PGSQL_HEADER_LEN, kDir(dir));
    if (body < 0) {
      ++stats_.malformed;
      lose_sync(dir, s);
      return take;
    }
    ++(dir == PgDirection::kFrontend ? stats_.messages_frontend : stats_.messages_backend);
    s.type = s.hdr[0];
    s.body_left = static_cast<uint64_t>(body);
    s.body.clear();
    s.body_truncated = false;
    on_message_start(dir, s.type, s.msg_ts);
    if (s.body_left == 0) on_message_end(dir, s);
    return take;
  }
  size_t take = static_cast<size_t>(std::min<uint64_t>(n, s.body_left));
  bool keep = dir == PgDirection::kBackend && s.type == 'E';
  if (keep && !s.body_truncated && s.body.size() < kErrorBodyKeep)
    s.body.append(reinterpret_cast<const char*>(p), std::min(take, kErrorBodyKeep - s.body.size()));
  s.body_left -= take;
  if (s.body_left == 0) on_message_end(dir, s);
  return take;
}

size_t PgsqlParser::step_scan(PgDirection dir, Stream& s, const uint8_t* p, size_t n,
                              uint64_t ts) {
  size_t used = 0;
  while (used < n) {
    // Each window byte keeps the timestamp it arrived with, so that a header found by sliding
    // is dated by its own first byte, not by the start of the scan.
    s.scan_ts[s.hdr_have] = ts;
    s.hdr[s.hdr_have++] = p[used++];
    if (++s.scanned > kMaxScan) {
      give_up(PgGiveUp::kMalformed);
      return used;
    }
    if (s.hdr_have < kScanWindow) continue;
    if (trusted_header(dir, s.hdr)) {
      uint8_t replay[kScanWindow];
      std::memcpy(replay, s.hdr, kScanWindow);
      uint64_t replay_ts = s.scan_ts[0];
      s.phase = Phase::kTyped;
      s.hdr_have = 0;
      s.scanned = 0;
      feed_stream(dir, s, replay, kScanWindow, replay_ts);
      return used;
    }
    std::memmove(s.hdr, s.hdr + 1, kScanWindow - 1);
    std::memmove(s.scan_ts, s.scan_ts + 1, (kScanWindow - 1) * sizeof(s.scan_ts[0]));
    s.hdr_have = kScanWindow - 1;
  }
  return used;
}

void PgsqlParser::on_message_start(PgDirection dir, uint8_t type, uint64_t ts) {
  if (dir == PgDirection::kFrontend) {
    switch (type) {
      case 'Q':
        push(Pending{.start_ns = ts, .kind = PgQueryKind::kSimple});
        break;
      case 'P':
      case 'B':
      case 'E':
        if (!batch_open_ || !batch_has_query_) batch_start_ = ts;
        batch_open_ = true;
        batch_has_query_ = true;
        break;
      case 'D':
      case 'C':
        batch_open_ = true;  // a batch, but not a query until a P/B/E joins it
        break;
      case 'S':
        // Every Sync is answered by exactly one ReadyForQuery, in order: this is what lets
        // pipelined batches be matched.
        push(Pending{.start_ns = batch_start_, .kind = PgQueryKind::kExtended,
                     .silent = !batch_has_query_, .error = batch_error_,
                     .sqlstate = batch_sqlstate_});
        batch_open_ = batch_has_query_ = batch_error_ = false;
        batch_sqlstate_.clear();
        break;
      case 'F':  // FunctionCall: answered by ReadyForQuery, not a query we time
        push(Pending{.silent = true});
        break;
      default:
        break;
    }
    return;
  }
}

void PgsqlParser::on_message_end(PgDirection dir, Stream& s) {
  s.hdr_have = 0;
  if (dir == PgDirection::kFrontend) {
    if (s.phase == Phase::kStartup &&
        aurum_pgsql_startup_kind(s.hdr, 8) == AURUM_PGSQL_STARTUP_V3)
      s.phase = Phase::kTyped;
    return;
  }
  if (s.type == 'E') {
    std::string state = sqlstate_of(s.body);
    // The error belongs to the oldest unanswered cycle: the backend works through them in order
    // and, after an error, skips to the next Sync.
    if (!pending_.empty()) {
      Pending& head = pending_.front();
      if (!head.error) head.sqlstate = state;
      head.error = true;
    } else if (batch_open_) {
      if (!batch_error_) batch_sqlstate_ = state;
      batch_error_ = true;
    }
    return;
  }
  if (s.type != 'Z') return;
  if (pending_.empty()) {
    ++stats_.unmatched_ready;
    quarantine_ = false;
    return;
  }
  if (pending_.front().start_ns > s.msg_ts) {
    // This ReadyForQuery began before the oldest waiting query was sent, so it cannot answer it:
    // it answers one that was lost (sent before the agent attached, or skipped by a gap).
    ++stats_.unmatched_ready;
    return;
  }
  Pending done = std::move(pending_.front());
  pending_.pop_front();
  if (quarantine_) {
    // Framing was lost: this ReadyForQuery may answer a query sent before the gap. Report
    // nothing until every cycle in flight has been answered, then start afresh.
    if (!done.silent) ++stats_.queries_dropped;
    if (pending_.empty()) quarantine_ = false;
    return;
  }
  if (done.silent) return;
  PgQueryEvent ev;
  ev.start_ns = done.start_ns;
  ev.end_ns = s.msg_ts;
  ev.kind = done.kind;
  ev.error = done.error;
  ev.sqlstate = done.sqlstate;
  if (done.error) ev.error_class = done.sqlstate.empty() ? "_OTHER" : done.sqlstate.substr(0, 2);
  if (on_query_) on_query_(ev);
}

void PgsqlParser::gap(PgDirection dir, uint64_t n) {
  if (gave_up_ != PgGiveUp::kNone || n == 0) return;
  Stream& s = stream(dir);
  bool in_body = false;
  if (s.phase == Phase::kTyped) in_body = s.hdr_have == AURUM_PGSQL_HEADER_LEN;
  if (s.phase == Phase::kStartup) in_body = s.hdr_have == 8;
  if (s.phase == Phase::kScan) {
    s.hdr_have = 0;  // the window must be contiguous bytes
    s.scanned += std::min<uint64_t>(n, kMaxScan);
    return;
  }
  if (in_body && n <= s.body_left) {
    ++stats_.gaps_in_body;
    if (s.body.size() < kErrorBodyKeep) s.body_truncated = true;
    s.body_left -= n;
    if (s.body_left == 0) on_message_end(dir, s);
    return;
  }
  lose_sync(dir, s);
}

void PgsqlParser::lose_sync(PgDirection dir, Stream& s) {
  (void)dir;
  ++stats_.resyncs;
  if (++resyncs_ > kMaxResyncs) {
    give_up(PgGiveUp::kMalformed);
    return;
  }
  stats_.queries_dropped += in_flight() + (batch_open_ && batch_has_query_ ? 1 : 0);
  pending_.clear();
  batch_open_ = batch_has_query_ = batch_error_ = false;
  batch_sqlstate_.clear();
  quarantine_ = true;
  s.phase = Phase::kScan;
  s.hdr_have = 0;
  s.scanned = 0;
  s.body_left = 0;
}

void PgsqlParser::give_up(PgGiveUp why) {
  gave_up_ = why;
  if (why == PgGiveUp::kMalformed) stats_.queries_dropped += in_flight();
  pending_.clear();
  fe_.phase = be_.phase = Phase::kDead;
}

void PgsqlParser::push(Pending p) {
  if (pending_.size() >= kMaxPending) {
    // A client that pipelines without reading, or a frontend stream we misparse: keep the
    // newest, count the loss.
    if (!pending_.front().silent) ++stats_.queries_dropped;
    pending_.pop_front();
  }
  pending_.push_back(std::move(p));
}

struct PgsqlKernelFramer::State {
  aurum_pgsql_conn conn{};
  aurum_pgsql_out totals{};  // counters summed over every walk
  aurum_pgsql_out out{};     // the current walk's
};

PgsqlKernelFramer::PgsqlKernelFramer(Callback on_query)
    : st_(std::make_unique<State>()), on_query_(std::move(on_query)) {}
PgsqlKernelFramer::~PgsqlKernelFramer() = default;

void PgsqlKernelFramer::emit() {
  auto& o = st_->out;
  if (!o.ev) return;
  o.ev = 0;
  PgQueryEvent ev;
  ev.start_ns = o.ev_start;
  ev.end_ns = o.ev_end;
  ev.kind = o.ev_extended ? PgQueryKind::kExtended : PgQueryKind::kSimple;
  ev.error = o.ev_error != 0;
  if (ev.error)
    ev.error_class = o.ev_cls[0] ? std::string(reinterpret_cast<const char*>(o.ev_cls), 2) : "_OTHER";
  if (on_query_) on_query_(ev);
}

void PgsqlKernelFramer::segment(PgDirection dir, uint32_t seq, const uint8_t* data, size_t len,
                                uint64_t ts_ns) {
  int d = kDir(dir);
  auto& o = st_->out;
  o = {};
  auto n = static_cast<uint32_t>(len);
  if (n && !st_->conn.gave_up) {
    __s64 first = aurum_pgsql_segment(&st_->conn, d, seq, n, &o);
    emit();
    if (first >= 0 && !st_->conn.gave_up) {
      uint32_t pos = static_cast<uint32_t>(first);
      bool done = false;
      for (uint32_t i = 0; i < kMaxSteps; i++) {
        uint32_t left = n - pos;
        uint32_t nb = left < AURUM_PGSQL_WIN ? left : AURUM_PGSQL_WIN;
        int r = aurum_pgsql_run(&st_->conn, d, data + pos, nb, left, ts_ns,
                                 pos == static_cast<uint32_t>(first), &o);
        emit();
        if (r < 0) {
          done = true;
          break;
        }
        pos += static_cast<uint32_t>(r);
        if (pos >= n) {
          done = true;
          break;
        }
      }
      if (!done) {
        ++step_limited_;
        aurum_pgsql_lose_sync(&st_->conn, aurum_pgsql_half_of(&st_->conn, d), &o);
      }
    }
  }
  auto& t = st_->totals;
  t.messages += o.messages;
  t.malformed += o.malformed;
  t.resyncs += o.resyncs;
  t.gaps_in_body += o.gaps_in_body;
  t.dropped += o.dropped;
  t.unmatched += o.unmatched;
  t.overflow += o.overflow;
}

uint64_t PgsqlKernelFramer::overflowed() const { return st_->totals.overflow; }

void PgsqlKernelFramer::feed(PgDirection dir, const uint8_t* data, size_t len, uint64_t ts_ns) {
  uint32_t& next = next_seq_[dir == PgDirection::kFrontend ? 0 : 1];
  uint32_t seq = next;
  next += static_cast<uint32_t>(len);
  segment(dir, seq, data, len, ts_ns);
}

void PgsqlKernelFramer::gap(PgDirection dir, uint32_t n) {
  next_seq_[dir == PgDirection::kFrontend ? 0 : 1] += n;
}

PgStats PgsqlKernelFramer::stats() const {
  const auto& t = st_->totals;
  PgStats s;
  s.messages_frontend = t.messages;  // both directions: the kernel does not tell them apart
  s.malformed = t.malformed;
  s.resyncs = t.resyncs;
  s.gaps_in_body = t.gaps_in_body;
  s.queries_dropped = t.dropped;
  s.unmatched_ready = t.unmatched;
  return s;
}

PgGiveUp PgsqlKernelFramer::gave_up() const {
  switch (st_->conn.gave_up) {
    case AURUM_PGSQL_GAVE_UP_TLS: return PgGiveUp::kTls;
    case AURUM_PGSQL_GAVE_UP_GSS: return PgGiveUp::kGssEncrypted;
    case AURUM_PGSQL_GAVE_UP_CANCEL: return PgGiveUp::kCancel;
    case AURUM_PGSQL_GAVE_UP_MALFORMED: return PgGiveUp::kMalformed;
    default: return PgGiveUp::kNone;
  }
}

size_t PgsqlKernelFramer::in_flight() const { return aurum_pgsql_in_flight(&st_->conn); }

}  // namespace aurum::proto
