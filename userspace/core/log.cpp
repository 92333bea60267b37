// SPDX-License-Identifier: Apache-2.0
#include "core/log.h"

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace aurum::log {
namespace {
std::atomic<Level> g_level{Level::info};
std::mutex g_mu; // keeps lines from two threads whole
const char *name(Level l)
{
	switch (l) {
	case Level::debug: return "debug";
	case Level::info: return "info";
	case Level::warn: return "warn";
	case Level::error: return "error";
	}
	return "?";
}
} // namespace

void set_level(Level l) { g_level = l; }
Level level() { return g_level; }

bool parse_level(std::string_view t, Level &out)
{
	if (t == "debug") out = Level::debug;
	else if (t == "info") out = Level::info;
	else if (t == "warn") out = Level::warn;
	else if (t == "error") out = Level::error;
	else return false;
	return true;
}

void write(Level l, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	std::vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	timespec ts{};
	clock_gettime(CLOCK_REALTIME, &ts);
	tm t{};
	gmtime_r(&ts.tv_sec, &t);
	std::lock_guard lock(g_mu);
	std::fprintf(stderr, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=\"%s\"\n",
		     t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
		     ts.tv_nsec / 1000000, name(l), msg);
}

} // namespace aurum::log
