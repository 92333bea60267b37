// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The bpf/proto/ headers must also be plain C for the host (C++ is covered by the unit tests). */
#include "proto/amqp.h"
#include "proto/http.h"
#include "proto/pgsql.h"

int main(void)
{
	static const __u8 line[AURUM_HTTP_PEEK] = "GET / HTTP/1.1\r";
	return aurum_http_parse_method(line, 15) == AURUM_HTTP_METHOD_GET ? 0 : 1;
}
