// SPDX-License-Identifier: Apache-2.0
#pragma once
#include <cerrno>
#include <cstring>
#include <source_location>
#include <stdexcept>
#include <string>

namespace aurum {

// An error with its context: what was being done, errno when there is one, and where.
class Error : public std::runtime_error {
public:
	explicit Error(const std::string &what, int err = 0,
		       std::source_location loc = std::source_location::current())
		: std::runtime_error(format(what, err, loc)), errno_(err) {}
	int err() const { return errno_; }

private:
	static std::string format(const std::string &what, int err, const std::source_location &loc)
	{
		std::string s = what;
		if (err)
			s += ": " + std::string(std::strerror(err < 0 ? -err : err));
		std::string file = loc.file_name();
		auto slash = file.rfind("userspace/");
		if (slash != std::string::npos)
			file = file.substr(slash + 10);
		s += " [" + file + ":" + std::to_string(loc.line()) + "]";
		return s;
	}
	int errno_;
};

// Bad configuration or flags: reported as one line, exit code 2.
class ConfigError : public std::runtime_error {
public:
	using std::runtime_error::runtime_error;
};

} // namespace aurum
