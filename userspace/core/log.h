// SPDX-License-Identifier: Apache-2.0
// One small logger: level-filtered, one line per message, to stderr (journald and kubectl logs
// take it from there). libbpf's own log is routed here too (see features.cpp).
#pragma once
#include <string_view>

namespace aurum::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3 };

void set_level(Level level);
Level level();
// Parses debug|info|warn|error; false on anything else.
bool parse_level(std::string_view text, Level &out);

void write(Level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define AURUM_LOG_FN(name, lvl)                                                              \
	template <typename... Args> void name(const char *fmt, Args... args)                     \
	{                                                                                        \
		if (lvl >= level())                                                                  \
			write(lvl, fmt, args...);                                                        \
	}
AURUM_LOG_FN(debug, Level::debug)
AURUM_LOG_FN(info, Level::info)
AURUM_LOG_FN(warn, Level::warn)
AURUM_LOG_FN(error, Level::error)
#undef AURUM_LOG_FN

} // namespace aurum::log
