// SPDX-License-Identifier: Apache-2.0
// PostgreSQL frontend/backend protocol 3.x stream parser: one instance per TCP connection, fed
// both directions of the conversation in the order they were seen, with arbitrary fragmentation.
// It turns the messages into completed-query events (start, end, SQLSTATE). Framing checks come
// from bpf/proto/pgsql.h, the same code the BPF side runs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>

namespace aurum::proto {

enum class PgDirection : uint8_t {
  kFrontend,  // client to server
  kBackend,   // server to client
};

enum class PgQueryKind : uint8_t {
  kSimple,    // 'Q'
  kExtended,  // Parse/Bind/Execute ... Sync
};

struct PgQueryEvent {
  uint64_t start_ns = 0;  // timestamp of the feed() that carried the first byte of Q, or of the
                          // first P/B/E of an extended batch
  uint64_t end_ns = 0;    // timestamp of the feed() that carried the first byte of ReadyForQuery
  PgQueryKind kind = PgQueryKind::kSimple;
  bool error = false;         // an ErrorResponse came back before ReadyForQuery
  std::string sqlstate;       // its field 'C' (five characters), empty if none or not captured
  std::string error_class;    // first two characters of sqlstate; "_OTHER" for an error whose
                              // SQLSTATE was lost to a capture gap; empty on success
};

// Why a connection was abandoned. Only kMalformed is a parse failure; the others are protocol
// outcomes the parser cannot look through.
enum class PgGiveUp : uint8_t {
  kNone,
  kTls,          // SSLRequest answered 'S': the rest is encrypted
  kGssEncrypted, // GSSENCRequest answered 'G'
  kCancel,       // a CancelRequest connection: no queries follow
  kMalformed,    // resynchronisation failed too often
};

struct PgStats {
  uint64_t messages_frontend = 0;
  uint64_t messages_backend = 0;
  uint64_t malformed = 0;         // headers that failed validation
  uint64_t gaps_in_body = 0;      // gaps absorbed inside a message body
  uint64_t resyncs = 0;           // times a direction lost framing and started scanning
  uint64_t queries_dropped = 0;   // in-flight queries discarded because framing was lost
  uint64_t unmatched_ready = 0;   // ReadyForQuery with no query waiting (other than start-up)
};

class PgsqlParser {
 public:
  using Callback = std::function<void(const PgQueryEvent&)>;

  explicit PgsqlParser(Callback on_query);

  // Bytes of one direction, as read; `ts_ns` is when they were seen (any monotonic clock).
  void feed(PgDirection dir, const uint8_t* data, size_t len, uint64_t ts_ns);
  // The capture skipped `n` bytes of this direction (a truncated copy, a lost event).
  void gap(PgDirection dir, uint64_t n);

  const PgStats& stats() const { return stats_; }
  PgGiveUp gave_up() const { return gave_up_; }
  // Queries sent and not yet answered (pipelined batches count one each).
  size_t in_flight() const;

  // Limits, public so tests can reach them.
  static constexpr size_t kMaxPending = 1024;     // pipelined queries remembered per connection
  static constexpr size_t kErrorBodyKeep = 256;   // bytes of an ErrorResponse kept to find 'C'
  static constexpr int kMaxResyncs = 16;          // then give up on the connection
  static constexpr size_t kMaxScan = 1 << 20;     // bytes scanned for a header per resync

 private:
  enum class Phase : uint8_t {
    kUnknown,        // first bytes: startup packet or (mid-connection) a typed message
    kStartup,        // untyped startup-phase packets (frontend only)
    kAwaitAnswer,    // backend: one byte answering SSLRequest/GSSENCRequest
    kTyped,          // type byte + int32 length
    kScan,           // lost framing: looking for a header to trust
    kDead,
  };

  struct Stream {
    Phase phase = Phase::kUnknown;
    uint8_t hdr[8] = {};     // header being assembled (5 typed, 8 startup)
    size_t hdr_have = 0;
    uint8_t type = 0;        // type of the message whose body is being read; 0 for startup
    uint64_t body_left = 0;  // body bytes still to come
    std::string body;        // kept prefix of bodies we read (ErrorResponse, startup code)
    bool body_truncated = false;  // part of the kept prefix was lost to a gap
    uint64_t msg_ts = 0;     // timestamp of the header's first byte
    size_t scanned = 0;      // bytes examined in kScan
    uint64_t scan_ts[8] = {};  // arrival time of each byte of the kScan window
  };

  struct Pending {
    uint64_t start_ns = 0;
    PgQueryKind kind = PgQueryKind::kSimple;
    bool silent = false;    // a ReadyForQuery is due but there is no query to report (start-up,
                            // a batch of only Describe/Close, a function call)
    bool error = false;
    std::string sqlstate;
  };

  Stream& stream(PgDirection dir) { return dir == PgDirection::kFrontend ? fe_ : be_; }
  void feed_stream(PgDirection dir, Stream& s, const uint8_t* data, size_t len, uint64_t ts);
  void step_unknown(PgDirection dir, Stream& s, const uint8_t* p);
  size_t step_startup(Stream& s, const uint8_t* p, size_t n, uint64_t ts);
  size_t step_answer(Stream& s, const uint8_t* p, size_t n);
  size_t step_typed(PgDirection dir, Stream& s, const uint8_t* p, size_t n, uint64_t ts);
  size_t step_scan(PgDirection dir, Stream& s, const uint8_t* p, size_t n, uint64_t ts);
  void on_startup(const uint8_t hdr[8]);
  void on_message_start(PgDirection dir, uint8_t type, uint64_t ts);
  void on_message_end(PgDirection dir, Stream& s);
  void lose_sync(PgDirection dir, Stream& s);
  void give_up(PgGiveUp why);
  void push(Pending p);

  Callback on_query_;
  Stream fe_, be_;
  std::deque<Pending> pending_;
  bool batch_open_ = false;     // an extended batch has started and its Sync not yet seen
  uint64_t batch_start_ = 0;
  bool batch_has_query_ = false;
  bool batch_error_ = false;    // an ErrorResponse arrived before the batch's Sync was sent
  std::string batch_sqlstate_;
  bool quarantine_ = false;     // framing was lost: report nothing until the streams realign
  int resyncs_ = 0;
  PgGiveUp gave_up_ = PgGiveUp::kNone;
  PgStats stats_;
};

// The kernel's framer (bpf/proto/pgsql.h, run by bpf/stream.bpf.c) driven on the host the way the
// BPF program drives it: one call per TCP segment with its sequence number, the segment walked a
// step at a time with at most AURUM_PGSQL_WIN bytes visible per step. For the tests and fuzzers
// that check it against PgsqlParser, and for nothing else.
class PgsqlKernelFramer {
 public:
  using Callback = std::function<void(const PgQueryEvent&)>;
  explicit PgsqlKernelFramer(Callback on_query);
  ~PgsqlKernelFramer();
  // A segment of one direction: `seq` is its first byte's TCP sequence number.
  void segment(PgDirection dir, uint32_t seq, const uint8_t* data, size_t len, uint64_t ts_ns);
  // A segment following the previous one of that direction (sequence numbers kept here).
  void feed(PgDirection dir, const uint8_t* data, size_t len, uint64_t ts_ns);
  // The next `n` bytes of a direction are never seen (a hole in the capture).
  void gap(PgDirection dir, uint32_t n);

  PgStats stats() const;
  PgGiveUp gave_up() const;
  size_t in_flight() const;
  uint64_t step_limited() const { return step_limited_; }
  uint64_t overflowed() const;

  static constexpr uint32_t kMaxSteps = 16384;  // PG_MAX_STEPS in bpf/stream.bpf.c

 private:
  void emit();
  struct State;
  std::unique_ptr<State> st_;
  Callback on_query_;
  uint32_t next_seq_[2] = {1000, 5000000};
  uint64_t step_limited_ = 0;
};

}  // namespace aurum::proto
