// SPDX-License-Identifier: Apache-2.0
// fuzz-sources: userspace/proto/http_route.cpp
// Route normalisation on arbitrary request lines and targets. Invariants: the route is "*" or
// starts with '/', carries no query, is idempotent, and the per-service cap holds.
#include <cstdint>
#include <string>
#include <string_view>

#include "proto/http_route.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  (void)aurum::proto::http_request_target(in);
  std::string r = aurum::proto::normalize_http_route(in);
  if (r.empty() || (r != "*" && r[0] != '/')) __builtin_trap();
  if (r.find('?') != std::string::npos || r.find('#') != std::string::npos) __builtin_trap();
  if (aurum::proto::normalize_http_route(r) != r) __builtin_trap();

  aurum::proto::RouteTable table(4, 2);
  for (size_t i = 0; i + 1 < size; i += 2) {
    std::string_view svc = in.substr(i, 1);
    std::string target = "/" + std::string(in.substr(i + 1, 1));
    (void)table.route(svc, target);
    if (table.routes(svc) > 4) __builtin_trap();
  }
  return 0;
}
