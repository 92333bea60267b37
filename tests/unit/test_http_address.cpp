// SPDX-License-Identifier: Apache-2.0
// The server_address label of the client side: the kernel's 16 address bytes (network order,
// IPv4 as ::ffff:a.b.c.d) as text.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <cstring>

#include "collectors/http.h"

namespace {

std::string text_of(const char *literal)
{
	__u32 addr[4] = {};
	in6_addr a6{};
	in_addr a4{};
	if (::inet_pton(AF_INET, literal, &a4) == 1) {
		addr[2] = htonl(0xffff); // as bpf/http.bpf.c stores an IPv4 peer
		addr[3] = a4.s_addr;
	} else if (::inet_pton(AF_INET6, literal, &a6) == 1) {
		std::memcpy(addr, &a6, sizeof addr);
	} else {
		ADD_FAILURE() << literal;
	}
	return aurum::HttpCollector::address_text(addr);
}

} // namespace

TEST(HttpAddress, Ipv4AsTheKernelStoresIt)
{
	EXPECT_EQ(text_of("127.0.0.1"), "127.0.0.1");
	EXPECT_EQ(text_of("10.20.30.40"), "10.20.30.40");
	EXPECT_EQ(text_of("255.255.255.255"), "255.255.255.255");
}

TEST(HttpAddress, Ipv6AndMappedIpv4)
{
	EXPECT_EQ(text_of("::1"), "::1");
	EXPECT_EQ(text_of("2001:db8::17"), "2001:db8::17");
	EXPECT_EQ(text_of("::ffff:192.0.2.1"), "192.0.2.1"); // an IPv6 socket talking to an IPv4 peer
	EXPECT_EQ(text_of("fe80::1:2:3:4"), "fe80::1:2:3:4");
}
