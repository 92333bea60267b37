// SPDX-License-Identifier: Apache-2.0
// fuzz-sources: userspace/proto/amqp.cpp userspace/proto/amqp_codec.cpp
// The AMQP 0-9-1 stream parser on an arbitrary conversation. Records: a control byte (bit 7
// direction, bit 6 "gap", bits 0-5 length) and that many bytes. The first input byte selects a
// prologue so the fuzzer also starts from a live, consuming connection (frames a random stream
// rarely forms). Invariants: no crash or leak; settle events have deliver <= settle; dead-letter
// and discard counts never exceed the settlements that can cause them; unacked <= delivered.
#include <cstdint>
#include <vector>

#include "proto/amqp.h"

using aurum::proto::AmqpDirection;

namespace {
void put_frame(std::vector<uint8_t>& out, uint8_t type, uint16_t ch, const std::vector<uint8_t>& p) {
  out.push_back(type);
  out.push_back(static_cast<uint8_t>(ch >> 8));
  out.push_back(static_cast<uint8_t>(ch));
  uint32_t n = static_cast<uint32_t>(p.size());
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(n >> s));
  out.insert(out.end(), p.begin(), p.end());
  out.push_back(0xCE);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  aurum::proto::AmqpParser parser([](const aurum::proto::AmqpSettleEvent& e) {
    if (e.deliver_ns > e.settle_ns) __builtin_trap();
  });
  uint64_t ts = 1;
  if (size > 0 && (data[0] & 1)) {
    // basic.consume(queue "q", tag "c") on channel 1, then nothing else: the fuzzer supplies the
    // broker's deliveries and the client's settlements.
    std::vector<uint8_t> c2b = {'A', 'M', 'Q', 'P', 0, 0, 9, 1};
    put_frame(c2b, 1, 1, {0, 60, 0, 20, 0, 0, 1, 'q', 1, 'c', 0, 0, 0, 0, 0});
    parser.feed(AmqpDirection::kClientToBroker, c2b.data(), c2b.size(), ts);
  }
  size_t i = size > 0 ? 1 : 0;
  while (i < size) {
    uint8_t ctl = data[i++];
    AmqpDirection dir = ctl & 0x80 ? AmqpDirection::kBrokerToClient : AmqpDirection::kClientToBroker;
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
  const auto& c = parser.counts();
  if (c.dead_lettered + c.discarded > c.nack + c.reject) __builtin_trap();
  if (parser.unacked() > c.deliver) __builtin_trap();  // only deliveries create unacked entries
  return 0;
}
