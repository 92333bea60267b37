// SPDX-License-Identifier: Apache-2.0
// fuzz-sources: userspace/proto/pgsql.cpp
// The PostgreSQL stream parser on an arbitrary conversation. The input is a sequence of records:
// a control byte (bit 7 direction, bit 6 "gap", bits 0-5 length) followed by that many bytes fed
// in that direction (or, for a gap, skipped). Invariants: no crash, no leak, events have
// start <= end, the pending queue stays bounded, error classes are two characters or _OTHER.
#include <cstdint>
#include <cstdlib>

#include "proto/pgsql.h"

using aurum::proto::PgDirection;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  aurum::proto::PgsqlParser parser([](const aurum::proto::PgQueryEvent& e) {
    if (e.start_ns > e.end_ns) __builtin_trap();
    if (e.error != !e.error_class.empty()) __builtin_trap();
    if (!e.error_class.empty() && e.error_class.size() != 2 && e.error_class != "_OTHER") __builtin_trap();
  });
  uint64_t ts = 0;
  size_t i = 0;
  while (i < size) {
    uint8_t ctl = data[i++];
    PgDirection dir = ctl & 0x80 ? PgDirection::kBackend : PgDirection::kFrontend;
    size_t n = ctl & 0x3f;
    ++ts;
    if (ctl & 0x40) {
      parser.gap(dir, n * 37);
      continue;
    }
    if (n > size - i) n = size - i;
    parser.feed(dir, data + i, n, ts);
    i += n;
  }
  if (parser.in_flight() > aurum::proto::PgsqlParser::kMaxPending) __builtin_trap();
  return 0;
}
