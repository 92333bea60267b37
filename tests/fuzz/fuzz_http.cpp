// SPDX-License-Identifier: Apache-2.0
// The HTTP classifiers of bpf/proto/http.h on every prefix length of the input, from a heap buffer
// of exactly AURUM_HTTP_PEEK bytes so that ASan catches any read past it. Invariants: results are
// in range, a match really starts with its method token, and once a prefix decides (anything but
// INCOMPLETE) a longer prefix decides the same. Then the walk over a segment's messages, both
// directions: it ends within AURUM_HTTP_WALK_MAX_STEPS, its messages are in order inside the bytes,
// each where a start line classifies, with a body of -1 or more.
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "bpf/proto/http.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // malloc, not <memory>: the fuzz build puts bpf/ on the include path, where bpf/sched.h
  // shadows the system <sched.h> that <memory> pulls in through gthreads.
  uint8_t* buf = static_cast<uint8_t*>(std::malloc(AURUM_HTTP_PEEK));
  size_t n = size < AURUM_HTTP_PEEK ? size : AURUM_HTTP_PEEK;
  std::memcpy(buf, data, n);
  int decided_method = AURUM_HTTP_INCOMPLETE, decided_status = AURUM_HTTP_INCOMPLETE;
  for (size_t len = 0; len <= n; ++len) {
    int m = aurum_http_parse_method(buf, static_cast<__u32>(len));
    if (m < AURUM_HTTP_INCOMPLETE || m >= AURUM_HTTP_METHOD_COUNT) __builtin_trap();
    if (m > 0) {
      const char* name = aurum_http_method_name(m);
      size_t k = std::strlen(name);
      if (len < k + 2 || std::memcmp(buf, name, k) != 0 || buf[k] != ' ') __builtin_trap();
    }
    if (decided_method != AURUM_HTTP_INCOMPLETE && m != decided_method) __builtin_trap();
    if (m != AURUM_HTTP_INCOMPLETE) decided_method = m;

    int s = aurum_http_parse_status(buf, static_cast<__u32>(len));
    if (s != AURUM_HTTP_INCOMPLETE && s != 0 && (s < AURUM_HTTP_STATUS_MIN || s > AURUM_HTTP_STATUS_MAX))
      __builtin_trap();
    if (s > 0 && (len < 13 || std::memcmp(buf, "HTTP/1.", 7) != 0)) __builtin_trap();
    if (decided_status != AURUM_HTTP_INCOMPLETE && s != decided_status) __builtin_trap();
    if (s != AURUM_HTTP_INCOMPLETE) decided_status = s;
    (void)aurum_http_status_is_interim(s);
  }
  std::free(buf);

  // The walk reads its own buffer (with slack); a heap object of exactly its size for ASan.
  auto* w = static_cast<aurum_http_walk*>(std::malloc(sizeof(aurum_http_walk)));
  size_t wn = size < AURUM_HTTP_WALK ? size : AURUM_HTTP_WALK;
  for (int response = 0; response < 2; ++response) {
    std::memset(w, 0x5A, sizeof(*w));
    std::memcpy(w->b, data, wn);
    w->count = 0;
    w->finals = 0;
    int first = size > 0 ? data[0] % 3 : 0;  // classify at 0, or a window inside a message
    aurum_http_walk_begin(w, static_cast<__u32>(wn), 0, response, first == 2 ? 200 : 0, size > 1 ? data[1] : 0);
    aurum_http_walk_all(w);
    if (w->state != AURUM_HTTP_WALK_DONE || w->count > AURUM_HTTP_WALK_MSGS) __builtin_trap();
    for (unsigned k = 0; k < w->count; ++k) {
      const auto& m = w->msg[k];
      if (m.at >= wn && wn > 0) __builtin_trap();
      if (k > 0 && m.at <= w->msg[k - 1].at) __builtin_trap();
      if (m.body < AURUM_HTTP_BODY_UNKNOWN) __builtin_trap();
      if (k > 0 || first != 2) {
        size_t left = wn - m.at < AURUM_HTTP_PEEK ? wn - m.at : AURUM_HTTP_PEEK;
        uint8_t peek[AURUM_HTTP_PEEK] = {};
        std::memcpy(peek, data + m.at, left);
        int kind = response ? aurum_http_parse_status(peek, static_cast<__u32>(left))
                            : aurum_http_parse_method(peek, static_cast<__u32>(left));
        if (kind != m.kind || kind <= 0) __builtin_trap();
      }
    }
  }
  std::free(w);
  return 0;
}
