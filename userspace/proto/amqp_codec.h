// SPDX-License-Identifier: Apache-2.0
// AMQP 0-9-1 wire decoding used by the stream parser: a bounds-checked reader and field-table
// lookup (amqp0-9-1 section 4.2.5, with RabbitMQ's field-type letters).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "bpf/proto/byteorder.h"

namespace aurum::proto::amqp_codec {

// Bounds-checked reader over a kept payload prefix: every read past the end fails softly (ok
// turns false and reads return zero), so a truncated or hostile payload decodes to "unknown".
struct Reader {
  const uint8_t* p;
  size_t n;
  size_t i = 0;
  bool ok = true;

  bool need(size_t k) {
    if (!ok || n - i < k) ok = false;
    return ok;
  }
  uint8_t u8() { return need(1) ? p[i++] : 0; }
  uint16_t u16() {
    if (!need(2)) return 0;
    uint16_t v = aurum_be16(p + i);
    i += 2;
    return v;
  }
  uint32_t u32() {
    if (!need(4)) return 0;
    uint32_t v = aurum_be32(p + i);
    i += 4;
    return v;
  }
  uint64_t u64() {
    if (!need(8)) return 0;
    uint64_t v = aurum_be64(p + i);
    i += 8;
    return v;
  }
  void skip(uint64_t k) {
    if (!ok || n - i < k) {
      ok = false;
      return;
    }
    i += static_cast<size_t>(k);
  }
  std::string shortstr() {
    uint8_t len = u8();
    if (!need(len)) return {};
    std::string s(reinterpret_cast<const char*>(p + i), len);
    i += len;
    return s;
  }
  std::string longstr() {
    uint32_t len = u32();
    if (!need(len)) return {};
    std::string s(reinterpret_cast<const char*>(p + i), len);
    i += len;
    return s;
  }
};

// Looks up `key` in a field table at the reader (long-uint size, then name/type/value entries).
// Returns true if found; a long-string value is copied to *str. Leaves the reader after the
// table. Nested tables and arrays are skipped up to a fixed depth; an unknown type letter ends
// the lookup (false), since the rest of the table cannot be framed.
bool table_find(Reader& r, std::string_view key, std::string* str);

}  // namespace aurum::proto::amqp_codec
