// SPDX-License-Identifier: Apache-2.0
// The HTTP classifiers of bpf/proto/http.h on every prefix length of the input, from a heap buffer
// of exactly AURUM_HTTP_PEEK bytes so that ASan catches any read past it. Invariants: results are
// in range, a match really starts with its method token, and once a prefix decides (anything but
// INCOMPLETE) a longer prefix decides the same.
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
  return 0;
}
