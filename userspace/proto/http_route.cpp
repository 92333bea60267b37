// SPDX-License-Identifier: Apache-2.0
#include "proto/http_route.h"

#include <algorithm>
#include <cstring>

#include "bpf/proto/http.h"

namespace aurum::proto {
namespace {

bool is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_token(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '-';
}

bool all_of(std::string_view s, bool (*pred)(char)) {
  for (char c : s)
    if (!pred(c)) return false;
  return true;
}

bool is_uuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? s[i] != '-' : !is_hex(s[i])) return false;
  }
  return true;
}

bool is_identifier(std::string_view seg) {
  if (all_of(seg, is_digit)) return true;
  if (is_uuid(seg)) return true;
  if (seg.size() >= 16 && all_of(seg, is_hex)) return true;
  if (seg.size() >= 24 && all_of(seg, is_token)) {
    for (char c : seg)
      if (is_digit(c)) return true;
  }
  return false;
}

bool printable(std::string_view seg) {
  for (char c : seg) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return false;
  }
  return true;
}

}  // namespace

std::string_view http_request_target(std::string_view line) {
  // The classifier reads AURUM_HTTP_PEEK bytes whatever the length: give it a full buffer.
  __u8 peek[AURUM_HTTP_PEEK] = {};
  size_t n = std::min<size_t>(line.size(), AURUM_HTTP_PEEK);
  std::memcpy(peek, line.data(), n);
  int method = aurum_http_parse_method(peek, static_cast<__u32>(n));
  if (method <= 0) return {};
  size_t start = std::string_view(aurum_http_method_name(method)).size() + 1;
  size_t end = line.find_first_of(" \r\n", start);
  return line.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
}

std::string normalize_http_route(std::string_view target) {
  if (target == "*") return "*";
  for (std::string_view scheme : {"http://", "https://", "HTTP://", "HTTPS://"}) {
    if (target.substr(0, scheme.size()) == scheme) {
      size_t slash = target.find_first_of("/?#", scheme.size());
      target = slash == std::string_view::npos || target[slash] != '/' ? std::string_view("/")
                                                                        : target.substr(slash);
      break;
    }
  }
  if (target.empty() || target[0] != '/') return std::string(kRouteOther);
  target = target.substr(0, target.find_first_of("?#"));

  std::string out;
  size_t segments = 0;
  size_t i = 0;
  while (i < target.size()) {
    while (i < target.size() && target[i] == '/') ++i;
    if (i >= target.size()) break;
    size_t end = target.find('/', i);
    if (end == std::string_view::npos) end = target.size();
    std::string_view seg = target.substr(i, end - i);
    i = end;
    if (!printable(seg)) return std::string(kRouteOther);
    if (++segments > RouteTable::kMaxSegments) {
      out += "/{rest}";
      break;
    }
    out += '/';
    if (is_identifier(seg))
      out += "{id}";
    else
      out.append(seg);
  }
  return out.empty() ? "/" : out;
}

RouteTable::RouteTable(size_t max_routes_per_service, size_t max_services)
    : max_routes_(max_routes_per_service), max_services_(max_services) {}

std::string RouteTable::route(std::string_view service, std::string_view target) {
  std::string r = normalize_http_route(target);
  auto it = known_.find(std::string(service));
  if (it == known_.end()) {
    if (known_.size() >= max_services_) {
      ++overflowed_;
      return std::string(kRouteOther);
    }
    it = known_.emplace(std::string(service), std::unordered_set<std::string>{}).first;
  }
  auto& routes = it->second;
  if (routes.count(r)) return r;
  if (r == kRouteOther) return r;
  if (routes.size() >= max_routes_) {
    ++overflowed_;
    return std::string(kRouteOther);
  }
  routes.insert(r);
  return r;
}

void RouteTable::forget(std::string_view service) { known_.erase(std::string(service)); }

size_t RouteTable::routes(std::string_view service) const {
  auto it = known_.find(std::string(service));
  return it == known_.end() ? 0 : it->second.size();
}

}  // namespace aurum::proto
