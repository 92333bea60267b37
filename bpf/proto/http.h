/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* HTTP/1.x classifiers over the first bytes of a TCP segment or of a read/write buffer.
 *
 * The caller (BPF or userspace) copies up to AURUM_HTTP_PEEK bytes into a buffer of at least
 * AURUM_HTTP_PEEK bytes and passes how many are valid in `len` (bytes past `len` may hold anything:
 * they are masked off). Every read is at a constant offset below AURUM_HTTP_PEEK, there are no
 * loops, and the bytes are compared as two 64-bit words, so the verifier accepts these on a stack
 * or map-value buffer of that size with few states (tests/proto_bpf_compile loads them).
 *
 * Return convention of the classifiers: > 0 a match, 0 definitely not this kind of message,
 * AURUM_HTTP_INCOMPLETE the bytes seen so far are a prefix of a match but `len` is too short to
 * decide (a request line split across segments; the caller may retry with more bytes). */
#ifndef AURUM_PROTO_HTTP_H
#define AURUM_PROTO_HTTP_H

#include "byteorder.h"

/* Bytes a caller should copy: the longest thing read here is "HTTP/1.1 200 " (13) and
 * "OPTIONS /" (9); 16 keeps stack buffers word-sized. */
#define AURUM_HTTP_PEEK 16
#define AURUM_HTTP_INCOMPLETE (-1)

/* RFC 9110 section 9.3 plus PATCH (RFC 5789). Values are stable: they are map keys and labels. */
enum aurum_http_method {
	AURUM_HTTP_METHOD_UNKNOWN = 0,
	AURUM_HTTP_METHOD_GET = 1,
	AURUM_HTTP_METHOD_HEAD = 2,
	AURUM_HTTP_METHOD_POST = 3,
	AURUM_HTTP_METHOD_PUT = 4,
	AURUM_HTTP_METHOD_DELETE = 5,
	AURUM_HTTP_METHOD_CONNECT = 6,
	AURUM_HTTP_METHOD_OPTIONS = 7,
	AURUM_HTTP_METHOD_TRACE = 8,
	AURUM_HTTP_METHOD_PATCH = 9,
	AURUM_HTTP_METHOD_COUNT = 10,
};

#define AURUM_HTTP_STATUS_MIN 100
#define AURUM_HTTP_STATUS_MAX 599

/* Eight bytes packed little-endian, to compare a whole token against a loaded word at once. */
#define AURUM_HTTP_NAME8(a, b, c, d, e, f, g, h)                                                   \
	((__u64)(a) | ((__u64)(b) << 8) | ((__u64)(c) << 16) | ((__u64)(d) << 24) |                \
	 ((__u64)(e) << 32) | ((__u64)(f) << 40) | ((__u64)(g) << 48) | ((__u64)(h) << 56))

/* The first 8 bytes of `p`, little-endian: byte i of the buffer is bits 8i..8i+7. */
static __always_inline __u64 aurum_http_le64(const __u8 *p)
{
	return (__u64)p[0] | ((__u64)p[1] << 8) | ((__u64)p[2] << 16) | ((__u64)p[3] << 24) |
	       ((__u64)p[4] << 32) | ((__u64)p[5] << 40) | ((__u64)p[6] << 48) |
	       ((__u64)p[7] << 56);
}

/* Mask of the first `n` bytes of a word (n may exceed 8). */
static __always_inline __u64 aurum_http_bytes_mask(__u32 n)
{
	return n >= 8 ? ~(__u64)0 : ((__u64)1 << (n * 8)) - 1;
}

/* The buffer as two words with every byte at or past `len` zeroed. Working on two registers
 * instead of a byte array keeps the verifier's state count flat: there is no branch per byte, and
 * a zero never matches a method letter, a space or a digit. */
struct aurum_http_window {
	__u64 lo, hi;
};

static __always_inline struct aurum_http_window aurum_http_load(const __u8 *buf, __u32 len)
{
	struct aurum_http_window w;

	w.lo = aurum_http_le64(buf) & aurum_http_bytes_mask(len);
	w.hi = aurum_http_le64(buf + 8) & aurum_http_bytes_mask(len > 8 ? len - 8 : 0);
	return w;
}

/* Byte `i` (a compile-time constant below 16 after inlining) of the window. */
static __always_inline __u8 aurum_http_byte(struct aurum_http_window w, __u32 i)
{
	return (__u8)(i < 8 ? w.lo >> (8 * i) : w.hi >> (8 * (i - 8)));
}

/* The request-target forms of RFC 9112 section 3.2: origin-form starts with '/', asterisk-form is
 * '*' (OPTIONS only), absolute-form with a scheme ("http://", "https://"), authority-form
 * ("host:port", CONNECT only). */
static __always_inline int aurum_http_target_ok(int method, __u8 c)
{
	if (method == AURUM_HTTP_METHOD_CONNECT)
		return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		       c == '[';
	if (c == '/')
		return 1;
	if (c == '*')
		return method == AURUM_HTTP_METHOD_OPTIONS;
	return c == 'h' || c == 'H';
}

#define AURUM_HTTP_NOT_THIS (-3)

/* One method: `name` is the token plus its SP packed little-endian, `k` its length (4..8). */
static __always_inline int aurum_http_try_method(struct aurum_http_window w, __u32 len, __u64 name,
						 __u32 k, int method)
{
	if ((w.lo ^ name) & aurum_http_bytes_mask(k) & aurum_http_bytes_mask(len))
		return AURUM_HTTP_NOT_THIS;
	/* Every byte seen so far matches: the token, its space and one target byte are needed. */
	if (len <= k)
		return AURUM_HTTP_INCOMPLETE;
	return aurum_http_target_ok(method, aurum_http_byte(w, k)) ? method : 0;
}

/* Classifies the start of a request line ("GET /x HTTP/1.1"): the method, the single space and the
 * first byte of a plausible request target. Method names are case-sensitive (RFC 9110 9.1). */
static __always_inline int aurum_http_parse_method(const __u8 *buf, __u32 len)
{
	struct aurum_http_window w = aurum_http_load(buf, len);
	int r;

#define AURUM_HTTP_TRY(a, b, c, d, e, f, g, h, k, m)                                               \
	do {                                                                                       \
		r = aurum_http_try_method(w, len, AURUM_HTTP_NAME8(a, b, c, d, e, f, g, h), (k),   \
					  (m));                                                    \
		if (r != AURUM_HTTP_NOT_THIS)                                                      \
			return r;                                                                  \
	} while (0)
	AURUM_HTTP_TRY('G', 'E', 'T', ' ', 0, 0, 0, 0, 4, AURUM_HTTP_METHOD_GET);
	AURUM_HTTP_TRY('P', 'O', 'S', 'T', ' ', 0, 0, 0, 5, AURUM_HTTP_METHOD_POST);
	AURUM_HTTP_TRY('P', 'U', 'T', ' ', 0, 0, 0, 0, 4, AURUM_HTTP_METHOD_PUT);
	AURUM_HTTP_TRY('H', 'E', 'A', 'D', ' ', 0, 0, 0, 5, AURUM_HTTP_METHOD_HEAD);
	AURUM_HTTP_TRY('D', 'E', 'L', 'E', 'T', 'E', ' ', 0, 7, AURUM_HTTP_METHOD_DELETE);
	AURUM_HTTP_TRY('P', 'A', 'T', 'C', 'H', ' ', 0, 0, 6, AURUM_HTTP_METHOD_PATCH);
	AURUM_HTTP_TRY('O', 'P', 'T', 'I', 'O', 'N', 'S', ' ', 8, AURUM_HTTP_METHOD_OPTIONS);
	AURUM_HTTP_TRY('C', 'O', 'N', 'N', 'E', 'C', 'T', ' ', 8, AURUM_HTTP_METHOD_CONNECT);
	AURUM_HTTP_TRY('T', 'R', 'A', 'C', 'E', ' ', 0, 0, 6, AURUM_HTTP_METHOD_TRACE);
#undef AURUM_HTTP_TRY
	return 0;
}

static __always_inline int aurum_http_digit(__u8 c)
{
	return c >= '0' && c <= '9';
}

/* Classifies the start of a status line ("HTTP/1.1 200 OK", RFC 9112 section 4) and returns the
 * status code 100..599. HTTP/1.0 and HTTP/1.1 only: HTTP/2 and later are not text. The byte after
 * the code must be the space of the grammar (status-code SP [reason-phrase]); a CR is tolerated
 * because some servers drop the space when the reason phrase is empty. */
static __always_inline int aurum_http_parse_status(const __u8 *buf, __u32 len)
{
	struct aurum_http_window w = aurum_http_load(buf, len);
	__u8 minor, d0, d1, d2, after;
	int code;

	if ((w.lo ^ AURUM_HTTP_NAME8('H', 'T', 'T', 'P', '/', '1', '.', 0)) &
	    aurum_http_bytes_mask(7) & aurum_http_bytes_mask(len))
		return 0;
	if (len < 9)
		return len == 8 && aurum_http_byte(w, 7) != '0' && aurum_http_byte(w, 7) != '1'
			       ? 0
			       : AURUM_HTTP_INCOMPLETE;
	minor = aurum_http_byte(w, 7);
	if ((minor != '0' && minor != '1') || aurum_http_byte(w, 8) != ' ')
		return 0;
	d0 = aurum_http_byte(w, 9);
	d1 = aurum_http_byte(w, 10);
	d2 = aurum_http_byte(w, 11);
	/* A zero (unseen) digit fails aurum_http_digit; tell that apart from a non-digit. */
	if ((len > 9 && !aurum_http_digit(d0)) || (len > 10 && !aurum_http_digit(d1)) ||
	    (len > 11 && !aurum_http_digit(d2)))
		return 0;
	if (len < 12)
		return AURUM_HTTP_INCOMPLETE;
	code = (d0 - '0') * 100 + (d1 - '0') * 10 + (d2 - '0');
	if (code < AURUM_HTTP_STATUS_MIN || code > AURUM_HTTP_STATUS_MAX)
		return 0;
	if (len < 13)
		return AURUM_HTTP_INCOMPLETE;
	after = aurum_http_byte(w, 12);
	if (after != ' ' && after != '\r')
		return 0;
	return code;
}

/* An interim response (RFC 9110 section 15.2) is followed by the final one and must not end the
 * request: 100 Continue, 102 Processing, 103 Early Hints. 101 Switching Protocols is the last
 * HTTP/1.x message on the connection, so it does end the request. */
static __always_inline int aurum_http_status_is_interim(int code)
{
	return code >= 100 && code <= 199 && code != 101;
}

/* The method token for labels; never called from BPF (it returns pointers into .rodata). */
static __always_inline const char *aurum_http_method_name(int method)
{
	switch (method) {
	case AURUM_HTTP_METHOD_GET: return "GET";
	case AURUM_HTTP_METHOD_HEAD: return "HEAD";
	case AURUM_HTTP_METHOD_POST: return "POST";
	case AURUM_HTTP_METHOD_PUT: return "PUT";
	case AURUM_HTTP_METHOD_DELETE: return "DELETE";
	case AURUM_HTTP_METHOD_CONNECT: return "CONNECT";
	case AURUM_HTTP_METHOD_OPTIONS: return "OPTIONS";
	case AURUM_HTTP_METHOD_TRACE: return "TRACE";
	case AURUM_HTTP_METHOD_PATCH: return "PATCH";
	default: return "_OTHER"; /* the OTel semantic conventions' value for an unknown method */
	}
}

#endif /* AURUM_PROTO_HTTP_H */
