// SPDX-License-Identifier: Apache-2.0
// fuzz-sources: userspace/proto/pgsql.cpp
// The PostgreSQL stream parser and the kernel's framer (bpf/proto/pgsql.h, driven as
// bpf/stream.bpf.c drives it) on the same arbitrary conversation. The input is a sequence of
// records: a control byte (bit 7 direction, bit 6 "gap", bits 0-5 length) followed by that many
// bytes fed in that direction (or, for a gap, skipped). Invariants: no crash, no leak, no hang,
// events have start <= end, the pending queues stay bounded, error classes are two characters or
// _OTHER; and where neither side lost framing nor overflowed, both report the same queries.
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "bpf/proto/pgsql.h"
#include "proto/pgsql.h"

using aurum::proto::PgDirection;
using aurum::proto::PgQueryEvent;

namespace {
void check(const PgQueryEvent& e) {
  if (e.start_ns > e.end_ns) __builtin_trap();
  if (e.error != !e.error_class.empty()) __builtin_trap();
  if (!e.error_class.empty() && e.error_class.size() != 2 && e.error_class != "_OTHER") __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<PgQueryEvent> from_parser, from_kernel;
  aurum::proto::PgsqlParser parser([&](const PgQueryEvent& e) {
    check(e);
    from_parser.push_back(e);
  });
  aurum::proto::PgsqlKernelFramer framer([&](const PgQueryEvent& e) {
    check(e);
    from_kernel.push_back(e);
  });
  uint64_t ts = 0;
  size_t i = 0;
  bool gaps = false;
  while (i < size) {
    uint8_t ctl = data[i++];
    PgDirection dir = ctl & 0x80 ? PgDirection::kBackend : PgDirection::kFrontend;
    size_t n = ctl & 0x3f;
    ++ts;
    if (ctl & 0x40) {
      parser.gap(dir, n * 37);
      framer.gap(dir, static_cast<uint32_t>(n * 37));
      gaps = gaps || n;
      continue;
    }
    if (n > size - i) n = size - i;
    parser.feed(dir, data + i, n, ts);
    framer.feed(dir, data + i, n, ts);
    i += n;
  }
  if (parser.in_flight() > aurum::proto::PgsqlParser::kMaxPending) __builtin_trap();
  if (framer.in_flight() > AURUM_PGSQL_FIFO) __builtin_trap();
  const auto& ps = parser.stats();
  auto ks = framer.stats();
  bool clean = !gaps && ps.malformed == 0 && ps.resyncs == 0 && ks.malformed == 0 && ks.resyncs == 0 &&
               ks.queries_dropped == 0 && ps.queries_dropped == 0 && framer.overflowed() == 0 &&
               parser.gave_up() == aurum::proto::PgGiveUp::kNone && framer.gave_up() == aurum::proto::PgGiveUp::kNone;
  if (clean) {
    if (from_parser.size() != from_kernel.size()) __builtin_trap();
    for (size_t k = 0; k < from_parser.size(); k++) {
      const auto &a = from_parser[k], &b = from_kernel[k];
      if (a.start_ns != b.start_ns || a.end_ns != b.end_ns || a.kind != b.kind || a.error_class != b.error_class)
        __builtin_trap();
    }
  }
  return 0;
}
