// SPDX-License-Identifier: Apache-2.0
#include "proto/amqp_codec.h"

namespace aurum::proto::amqp_codec {
namespace {

constexpr int kMaxTableDepth = 8;

// Skips one field value. Type letters as RabbitMQ and its clients use them (RabbitMQ's AMQP
// 0-9-1 errata, "field types"): 's' is a signed 16-bit integer there, not the short string of
// the 0-9-1 spec text, and pika, the Java and .NET clients agree with the broker.
bool skip_value(Reader& r, uint8_t type, int depth);

bool skip_table_body(Reader& r, uint32_t len, int depth) {
  if (!r.need(len)) return false;
  Reader t{r.p + r.i, len};
  while (t.ok && t.i < t.n) {
    t.shortstr();
    if (!skip_value(t, t.u8(), depth + 1)) return false;
  }
  r.i += len;
  return t.ok;
}

bool skip_value(Reader& r, uint8_t type, int depth) {
  if (depth > kMaxTableDepth) return false;
  switch (type) {
    case 't': case 'b': case 'B': r.skip(1); break;
    case 's': case 'u': r.skip(2); break;
    case 'I': case 'i': case 'f': r.skip(4); break;
    case 'l': case 'L': case 'd': case 'T': r.skip(8); break;
    case 'D': r.skip(5); break;
    case 'V': break;
    case 'S': case 'x': r.skip(r.u32()); break;
    case 'F': return skip_table_body(r, r.u32(), depth);
    case 'A': {
      uint32_t len = r.u32();
      if (!r.need(len)) return false;
      Reader a{r.p + r.i, len};
      while (a.ok && a.i < a.n)
        if (!skip_value(a, a.u8(), depth + 1)) return false;
      r.i += len;
      return a.ok;
    }
    default: return false;
  }
  return r.ok;
}

}  // namespace

bool table_find(Reader& r, std::string_view key, std::string* str) {
  uint32_t len = r.u32();
  if (!r.need(len)) return false;
  Reader t{r.p + r.i, len};
  r.i += len;
  while (t.ok && t.i < t.n) {
    std::string name = t.shortstr();
    uint8_t type = t.u8();
    if (!t.ok) return false;
    if (name == key) {
      if (str && (type == 'S' || type == 'x')) *str = t.longstr();
      return t.ok;
    }
    if (!skip_value(t, type, 0)) return false;
  }
  return false;
}


}  // namespace aurum::proto::amqp_codec
