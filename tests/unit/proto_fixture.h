// SPDX-License-Identifier: Apache-2.0
// Helpers for the protocol parser tests: loading the captures recorded by
// tests/unit/fixtures/capture_proxy.py and cutting byte streams into random pieces.
#pragma once

#include <cstdint>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#ifndef AURUM_SOURCE_DIR
#error "AURUM_SOURCE_DIR must name the source tree (tests/CMakeLists.txt defines it)"
#endif

namespace aurum::test {

struct Chunk {
  bool from_client = false;
  int conn = 0;
  uint64_t ns = 0;
  std::vector<uint8_t> bytes;
};

inline std::vector<uint8_t> from_hex(const std::string& hex) {
  if (hex.size() % 2) throw std::runtime_error("odd hex length");
  std::vector<uint8_t> out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<uint8_t>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
  return out;
}

// Lines "c|s <conn> <ns> <hex>"; '#' starts a comment line.
inline std::vector<Chunk> load_capture(const std::string& name) {
  std::string path = std::string(AURUM_SOURCE_DIR) + "/tests/unit/fixtures/" + name;
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<Chunk> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string dir, hex;
    Chunk c;
    ls >> dir >> c.conn >> c.ns >> hex;
    if (!ls || (dir != "c" && dir != "s")) throw std::runtime_error("bad line in " + path + ": " + line);
    c.from_client = dir == "c";
    c.bytes = from_hex(hex);
    out.push_back(std::move(c));
  }
  return out;
}

inline std::vector<Chunk> only_conn(const std::vector<Chunk>& all, int conn) {
  std::vector<Chunk> out;
  for (const auto& c : all)
    if (c.conn == conn) out.push_back(c);
  return out;
}

// Re-cuts each chunk into pieces of 1..max_piece bytes (same direction, same timestamp), as a
// different scheduling of reads or segments would have delivered them.
inline std::vector<Chunk> resplit(const std::vector<Chunk>& in, std::mt19937& rng, size_t max_piece) {
  std::vector<Chunk> out;
  for (const auto& c : in) {
    size_t i = 0;
    while (i < c.bytes.size()) {
      size_t n = std::uniform_int_distribution<size_t>(1, max_piece)(rng);
      n = std::min(n, c.bytes.size() - i);
      Chunk p = c;
      p.bytes.assign(c.bytes.begin() + static_cast<long>(i), c.bytes.begin() + static_cast<long>(i + n));
      out.push_back(std::move(p));
      i += n;
    }
  }
  return out;
}

}  // namespace aurum::test
