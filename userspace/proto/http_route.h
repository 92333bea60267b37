// SPDX-License-Identifier: Apache-2.0
// The `http_route` label: a request target reduced to a low-cardinality route. Identifiers in the
// path (numbers, UUIDs, long hex or opaque tokens) become `{id}`, the query is dropped, and each
// service keeps at most a fixed number of distinct routes; the rest are reported as `/{other}`,
// so a crawler or a scanner cannot blow up the number of series (the failure the peers' issue
// trackers report most for route labels).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace aurum::proto {

inline constexpr std::string_view kRouteOther = "/{other}";

// The request-target of a request line ("GET /a?b HTTP/1.1" -> "/a?b"); empty if `line` does not
// start with a method and a space. Stops at the first space, CR or LF, or at the end of the
// buffer (a truncated capture gives a truncated target).
std::string_view http_request_target(std::string_view line);

// Normalises a request target (origin-form or absolute-form) to a route:
//  - "http://host:port/p" and "https://..." keep only the path; "*" stays "*"; any other target
//    (authority-form of CONNECT, garbage) gives "/{other}";
//  - the query ("?") and fragment ("#") are dropped; repeated slashes collapse; a trailing slash
//    is dropped ("/a/" -> "/a"), the root stays "/";
//  - a segment becomes "{id}" when it is: all digits; a UUID (8-4-4-4-12 hex); 16 or more hex
//    digits; or an opaque token of 24+ characters from [A-Za-z0-9_-] containing a digit;
//  - a segment with a byte outside printable ASCII makes the whole route "/{other}";
//  - at most kMaxSegments segments are kept, the rest become one "{rest}" segment.
std::string normalize_http_route(std::string_view target);

// Per-service distinct-route cap. Not thread-safe: one owner (the HTTP collector) calls it.
class RouteTable {
 public:
  static constexpr size_t kMaxSegments = 12;

  RouteTable(size_t max_routes_per_service, size_t max_services);

  // The label for a request target seen on `service`: its normalised route if the route is
  // already known or the service is under its cap, else "/{other}".
  std::string route(std::string_view service, std::string_view target);
  // Drops what is remembered for a service (its series expired).
  void forget(std::string_view service);

  uint64_t overflowed() const { return overflowed_; }  // answers that were "/{other}" by the cap
  size_t routes(std::string_view service) const;

 private:
  size_t max_routes_;
  size_t max_services_;
  std::unordered_map<std::string, std::unordered_set<std::string>> known_;
  uint64_t overflowed_ = 0;
};

}  // namespace aurum::proto
