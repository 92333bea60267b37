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

/* ---- The messages of a segment, eight bytes a step -------------------------------------------
 *
 * After a request or status line, the header block is searched for its end (the empty line),
 * Content-Length and Transfer-Encoding, which give the length of the body that follows (RFC 9112
 * section 6.3); after the body comes the next message's start line. That is how a body is stepped
 * over, how pipelined requests and responses coalesced into one segment are all found, and what
 * the body-size histograms record.
 *
 * The caller copies up to AURUM_HTTP_WALK bytes of a segment into `b` (a window), sets up the
 * walk (aurum_http_walk_begin: the first message already classified, or to be classified at the
 * window's start) and calls aurum_http_walk_step until it returns 1; in BPF from a bpf_loop
 * callback, so the verifier walks one step, whatever the length. A step has no loop: it looks at
 * one aligned 8-byte word of a header block with word arithmetic (aurum_http_walk_headers); a
 * Content-Length value is then read a byte per step, and at a header block's end the next start
 * line is classified. The messages found are in msg[0..count). */
#define AURUM_HTTP_WALK 2048
#define AURUM_HTTP_WALK_MASK 2047      /* AURUM_HTTP_WALK - 1, a literal for the BPF mask */
#define AURUM_HTTP_WALK_LAST_WORD 2040 /* AURUM_HTTP_WALK - 8, likewise */
/* Reads reach up to this many bytes past an offset below AURUM_HTTP_WALK. */
#define AURUM_HTTP_WALK_SLACK 48
#define AURUM_HTTP_WALK_BUF (AURUM_HTTP_WALK + AURUM_HTTP_WALK_SLACK)
/* Messages recorded per segment (the FIFO's depth). */
#define AURUM_HTTP_WALK_MSGS 8
/* Steps a window can need: one per word, one per line feed, one per Content-Length byte. */
#define AURUM_HTTP_WALK_MAX_STEPS (2 * AURUM_HTTP_WALK + AURUM_HTTP_WALK / 8 + 8)
#define AURUM_HTTP_BODY_UNKNOWN (-1)
#define AURUM_HTTP_CLEN_NONE (-1)
#define AURUM_HTTP_CLEN_BAD (-2)

/* In BPF an AND that clang cannot fold away, so that the verifier sees the bound on the register
 * it indexes with (clang would otherwise drop a mask it proves redundant, or index with a copy). */
#define AURUM_HTTP_STR_(x) #x
#define AURUM_HTTP_STR(x) AURUM_HTTP_STR_(x)
#if defined(__bpf__)
#define AURUM_HTTP_CLAMP(v, mask) asm volatile("%[x] &= " AURUM_HTTP_STR(mask) : [x] "+r"(v))
#else
#define AURUM_HTTP_CLAMP(v, mask) ((v) &= (mask))
#endif

enum aurum_http_walk_state {
	AURUM_HTTP_WALK_START = 0,   /* classify a start line at the cursor */
	AURUM_HTTP_WALK_HEADERS = 1, /* look for line feeds from the cursor */
	AURUM_HTTP_WALK_CLEN = 2,    /* read the Content-Length value, a byte per step */
	AURUM_HTTP_WALK_BODY = 3,    /* the header block ended: the body's length, then the next */
	AURUM_HTTP_WALK_DONE = 4,
};

/* Why the walk stopped (what the caller does next). */
enum aurum_http_walk_stop {
	AURUM_HTTP_STOP_NONE = 0,     /* bytes that are no start line, or too many messages */
	AURUM_HTTP_STOP_NEXT = 1,     /* a message ended at `next` (window offset), at or past n */
	AURUM_HTTP_STOP_PARTIAL = 2,  /* a start line begins at `next` and is cut by the window's end */
	AURUM_HTTP_STOP_OPEN = 3,     /* a header block goes on past the window's end */
	AURUM_HTTP_STOP_UNKNOWN = 4,  /* a body of unknown length (chunked, or to the close) */
};

struct aurum_http_walk_msg {
	__u32 at;   /* offset of its start line in the segment (window base + offset) */
	__s32 kind; /* method (request) or status code (response) */
	__s64 body; /* body bytes, AURUM_HTTP_BODY_UNKNOWN if not known */
};

struct aurum_http_walk {
	__u32 n;        /* valid bytes in b, at most AURUM_HTTP_WALK */
	__u32 base;     /* the window's offset in the segment */
	__u32 cursor;   /* the search goes on from here */
	__u32 hdr_end;  /* offset past the empty line that ended the header block */
	__u32 next;     /* after a message's body: where the next one starts */
	__s32 clen;     /* AURUM_HTTP_CLEN_NONE, AURUM_HTTP_CLEN_BAD or the value */
	__u32 clen_at;  /* where the last Content-Length field's value starts, 0 none */
	__u32 pad0;
	__u64 clen_v;
	__u8 clen_digits, clen_after;
	__u8 te;        /* a Transfer-Encoding field was seen (it overrides Content-Length) */
	__u8 state;     /* enum aurum_http_walk_state */
	__u8 stop;      /* enum aurum_http_walk_stop, once state is DONE */
	__u8 response;  /* status lines (1) or request lines (0) */
	__u8 count;     /* messages in msg[] */
	__u8 finals;    /* final responses among them (the head mask is indexed by it) */
	__u8 head_mask; /* response direction: bit k, the k-th pending request is a HEAD */
	__u8 pad[7];
	struct aurum_http_walk_msg msg[AURUM_HTTP_WALK_MSGS];
	__u8 b[AURUM_HTTP_WALK_BUF] __attribute__((aligned(8)));
};

/* An 8-byte aligned word of the buffer, byte i in bits 8i..8i+7. */
static __always_inline __u64 aurum_http_word(const __u8 *p)
{
	__u64 v;

	__builtin_memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	v = __builtin_bswap64(v);
#endif
	return v;
}

/* 0x80 in every byte of t that is zero, 0 elsewhere. Exact: no carry crosses a byte (the classic
 * (x - 0x01..) & ~x test flags a 0x01 after a zero byte too). */
static __always_inline __u64 aurum_http_zero_bytes(__u64 t)
{
	return ~(((t & 0x7f7f7f7f7f7f7f7fULL) + 0x7f7f7f7f7f7f7f7fULL) | t | 0x7f7f7f7f7f7f7f7fULL);
}

/* 0x80 in every byte of w equal to c. */
static __always_inline __u64 aurum_http_eq(__u64 w, __u8 c)
{
	return aurum_http_zero_bytes(w ^ (0x0101010101010101ULL * c));
}

static __always_inline __u64 aurum_http_newlines(__u64 w)
{
	return aurum_http_eq(w, '\n');
}

/* Index (0..7) of the lowest flagged byte of a non-zero aurum_http_eq() mask: the flag moved to
 * bit 0 of its byte, times a constant whose byte 7-j is j, leaves j in the top byte. */
static __always_inline __u32 aurum_http_lowest_byte(__u64 m)
{
	return (__u32)((((m & -m) >> 7) * 0x0001020304050607ULL) >> 56);
}

static __always_inline void aurum_http_walk_headers_from(struct aurum_http_walk *s, __u32 at)
{
	s->cursor = at;
	s->hdr_end = 0;
	s->clen = AURUM_HTTP_CLEN_NONE;
	s->clen_at = 0;
	s->te = 0;
	s->state = AURUM_HTTP_WALK_HEADERS;
}

/* A window of n bytes at `base` in the segment. first_kind > 0: the window starts inside the first
 * message (already classified, perhaps from bytes of an earlier segment); 0: classify a start line
 * at its first byte. `count` and `finals` go on from the previous window of the same segment. */
static __always_inline void aurum_http_walk_begin(struct aurum_http_walk *s, __u32 n, __u32 base, int response,
						  int first_kind, __u32 head_mask)
{
	s->n = n < AURUM_HTTP_WALK ? n : AURUM_HTTP_WALK;
	s->base = base;
	s->next = 0;
	s->stop = AURUM_HTTP_STOP_NONE;
	s->response = response;
	s->head_mask = head_mask;
	aurum_http_walk_headers_from(s, 0);
	s->state = AURUM_HTTP_WALK_START;
	if (first_kind > 0 && s->count < AURUM_HTTP_WALK_MSGS) {
		s->msg[s->count & (AURUM_HTTP_WALK_MSGS - 1)].at = base;
		s->msg[s->count & (AURUM_HTTP_WALK_MSGS - 1)].kind = first_kind;
		s->msg[s->count & (AURUM_HTTP_WALK_MSGS - 1)].body = AURUM_HTTP_BODY_UNKNOWN;
		s->count++;
		s->state = AURUM_HTTP_WALK_HEADERS;
	}
}

/* A line starting at `at` that the word test flagged: is it Content-Length or Transfer-Encoding?
 * Names are case-insensitive (RFC 9110 section 5.1); letters are compared with bit 5 forced on,
 * and only letters, so no other byte passes for one. */
static __always_inline void aurum_http_walk_field(struct aurum_http_walk *s, __u32 line)
{
	__u64 at = line, lo, hi;

	if (line >= s->n)
		return;
	AURUM_HTTP_CLAMP(at, AURUM_HTTP_WALK_MASK);
	lo = aurum_http_le64(s->b + at);
	hi = aurum_http_le64(s->b + at + 8);
	if ((lo | 0x0020202020202020ULL) == AURUM_HTTP_NAME8('c', 'o', 'n', 't', 'e', 'n', 't', '-') &&
	    ((hi | 0x0000202020202020ULL) & 0x00ffffffffffffffULL) == AURUM_HTTP_NAME8('l', 'e', 'n', 'g', 't', 'h', ':', 0))
		s->clen_at = line + 15;
	else if ((lo | 0x2020202020202020ULL) == AURUM_HTTP_NAME8('t', 'r', 'a', 'n', 's', 'f', 'e', 'r') &&
		 (hi | 0x2020202020202000ULL) == AURUM_HTTP_NAME8('-', 'e', 'n', 'c', 'o', 'd', 'i', 'n') &&
		 (s->b[at + 16] | 0x20) == 'g' && s->b[at + 17] == ':')
		s->te = 1;
}

/* Eight bytes of a header block from the cursor. With three aligned words (this one and the next
 * two, whose bytes past n are never trusted for a decision), byte masks say at once which line
 * feeds start an empty line ("\n\n" or "\n\r\n": the block's end) and which start a line whose
 * first byte is 'c' and ninth 'l', or first 't' and ninth '-' (the only candidates for
 * Content-Length and Transfer-Encoding: Content-Type, Connection and Cache-Control are not). Only
 * a candidate costs a compare, and a second candidate before the end in the same word a second
 * step from just after the first. */
static __always_inline void aurum_http_walk_headers(struct aurum_http_walk *s)
{
	__u32 cur = s->cursor, left, jb = 8, jc;
	__u64 base, w0, w1, w2, s1, s2, s9, nl, blank, cand, lf1;

	if (cur >= s->n) {
		s->state = AURUM_HTTP_WALK_DONE;
		s->stop = AURUM_HTTP_STOP_OPEN;
		return;
	}
	base = cur & ~7U;
	AURUM_HTTP_CLAMP(base, AURUM_HTTP_WALK_LAST_WORD);
	left = s->n - (__u32)base;
	w0 = aurum_http_word(s->b + base);
	nl = aurum_http_newlines(w0) & aurum_http_bytes_mask(left) & ~aurum_http_bytes_mask(cur - (__u32)base);
	/* Most words of a header block hold no line feed (lines average 25-40 bytes): look at up
	 * to AURUM_HTTP_SKIP_WORDS more of them in this step rather than a step each. Every
	 * step costs its bpf_loop round and its state dispatch, so this halves an nginx
	 * response's steps. Each word is tested only if it starts before n, so that base + 8 <= n
	 * <= AURUM_HTTP_WALK keeps base within AURUM_HTTP_WALK_LAST_WORD (the mask below is then
	 * no-op, there for the verifier). */
#define AURUM_HTTP_SKIP_WORDS 3
	for (jc = 0; jc < AURUM_HTTP_SKIP_WORDS && !nl; jc++) {
		if ((__u32)base + 8 >= s->n)
			break;
		base += 8;
		AURUM_HTTP_CLAMP(base, AURUM_HTTP_WALK_LAST_WORD);
		left = s->n - (__u32)base;
		w0 = aurum_http_word(s->b + base);
		nl = aurum_http_newlines(w0) & aurum_http_bytes_mask(left);
	}
	if (!nl) {
		s->cursor = (__u32)base + 8;
		return;
	}
	w1 = aurum_http_word(s->b + base + 8);
	w2 = aurum_http_word(s->b + base + 16);
	s1 = (w0 >> 8) | (w1 << 56);  /* byte j: the byte after byte j */
	s2 = (w0 >> 16) | (w1 << 48); /* two after */
	s9 = (w1 >> 8) | (w2 << 56);  /* nine after */
	lf1 = aurum_http_newlines(s1) & aurum_http_bytes_mask(left > 1 ? left - 1 : 0);
	blank = nl & (lf1 | (aurum_http_eq(s1, '\r') & aurum_http_newlines(s2) &
			     aurum_http_bytes_mask(left > 2 ? left - 2 : 0)));
	cand = nl & ((aurum_http_eq(s1 | 0x2020202020202020ULL, 'c') & aurum_http_eq(s9 | 0x2020202020202020ULL, 'l')) |
		     (aurum_http_eq(s1 | 0x2020202020202020ULL, 't') & aurum_http_eq(s9, '-')));
	if (blank) {
		jb = aurum_http_lowest_byte(blank);
		cand &= aurum_http_bytes_mask(jb);
	}
	if (cand) {
		jc = aurum_http_lowest_byte(cand);
		aurum_http_walk_field(s, (__u32)base + jc + 1);
		if (cand & (cand - 1)) {
			s->cursor = (__u32)base + jc + 1;
			return;
		}
	}
	if (blank) {
		/* "\n\n" ends two bytes on, "\n\r\n" three. */
		s->hdr_end = (__u32)base + jb + ((lf1 >> (8 * (jb & 7))) & 0x80 ? 2 : 3);
		s->state = s->clen_at ? AURUM_HTTP_WALK_CLEN : AURUM_HTTP_WALK_BODY;
		s->cursor = s->clen_at;
		s->clen_v = 0;
		s->clen_digits = 0;
		s->clen_after = 0;
		return;
	}
	s->cursor = (__u32)base + 8;
}

/* One byte of the Content-Length value (RFC 9110 sections 5.6.3 and 8.6), up to its line feed:
 * OWS, 1 to 10 digits, OWS, the CR of the line end; AURUM_HTTP_CLEN_BAD for anything else (a
 * list, a sign, 2^31 or more, more than AURUM_HTTP_CLEN_MAX bytes). Read after the block's end was
 * found, so the line is complete in the window. A digit loop inside the header step multiplied the
 * verifier's paths past its limit, hence a byte per step. */
#define AURUM_HTTP_CLEN_MAX 31
static __always_inline void aurum_http_walk_clen(struct aurum_http_walk *s)
{
	__u64 k = s->cursor;
	__u8 d, e;

	if (k >= s->n || k > (__u64)s->clen_at + AURUM_HTTP_CLEN_MAX) {
		s->clen = AURUM_HTTP_CLEN_BAD;
		s->state = AURUM_HTTP_WALK_BODY;
		return;
	}
	/* k < n <= AURUM_HTTP_WALK: the mask changes nothing but shows the verifier the bound (a
	 * compare did not survive on 6.1). */
	AURUM_HTTP_CLAMP(k, AURUM_HTTP_WALK_MASK);
	d = s->b[k];
	e = s->b[k + 1];
	s->cursor++;
	if (d == '\n' || (d == '\r' && e == '\n' && k + 1 < s->n)) {
		s->clen = s->clen_digits && s->clen_v <= 0x7fffffffULL ? (__s32)s->clen_v : AURUM_HTTP_CLEN_BAD;
		s->state = AURUM_HTTP_WALK_BODY;
	} else if (d >= '0' && d <= '9' && !s->clen_after && s->clen_digits < 10) {
		s->clen_v = s->clen_v * 10 + (d - '0');
		s->clen_digits++;
	} else if (d == ' ' || d == '\t') {
		s->clen_after = s->clen_digits > 0;
	} else {
		s->clen = AURUM_HTTP_CLEN_BAD;
		s->state = AURUM_HTTP_WALK_BODY;
	}
}

/* The usual Content-Length value in one step: one space, 1 to 5 digits, CR LF, in the eight bytes
 * at its start (" 3\r\n", " 615\r\n"); 0 for anything else, which then goes a byte per step. The
 * digits are turned into their value with word arithmetic, no loop: right-aligned in the word
 * behind zero digits, then pairs, quads and the eight combined by three multiplies. */
static __always_inline int aurum_http_walk_clen_fast(struct aurum_http_walk *s)
{
	__u64 at = s->clen_at, w, x, nd, cr;
	__u32 j;

	if (at + 8 > s->n)
		return 0;
	AURUM_HTTP_CLAMP(at, AURUM_HTTP_WALK_MASK);
	w = aurum_http_word(s->b + at);
	cr = aurum_http_eq(w, '\r');
	if ((w & 0xff) != ' ' || !cr)
		return 0;
	j = aurum_http_lowest_byte(cr); /* CR at byte j: j - 1 digits */
	if (j < 2 || j > 6 || ((w >> (8 * (j + 1))) & 0xff) != '\n')
		return 0;
	x = (w >> 8) ^ 0x3030303030303030ULL;
	/* 0x80 in each byte that is no digit (above 9 after the XOR; no carry crosses a byte). */
	nd = (((x & 0x7f7f7f7f7f7f7f7fULL) + 0x7676767676767676ULL) | x) & 0x8080808080808080ULL;
	if (nd & aurum_http_bytes_mask(j - 1))
		return 0;
	x = (x & aurum_http_bytes_mask(j - 1)) << (8 * (9 - j));
	x = x * 10 + (x >> 8);
	x = (((x & 0x000000ff000000ffULL) * (100 + (1000000ULL << 32))) +
	     (((x >> 16) & 0x000000ff000000ffULL) * (1 + (10000ULL << 32)))) >> 32;
	s->clen = (__s32)x;
	s->state = AURUM_HTTP_WALK_BODY;
	return 1;
}

/* Bytes of body after a complete header block (RFC 9112 section 6.3), or AURUM_HTTP_BODY_UNKNOWN.
 * `status` is 0 for a request; `head` says the response answers a HEAD request. A response to
 * HEAD, an interim response, 204 and 304 have none; Transfer-Encoding (chunked) is not followed;
 * a request with neither field has none, a response with neither runs to the connection's close. */
static __always_inline __s64 aurum_http_body_len(__s32 clen, int te, int status, int head)
{
	if (status && (head || (status >= 100 && status <= 199) || status == 204 || status == 304))
		return 0;
	if (te || clen == AURUM_HTTP_CLEN_BAD)
		return AURUM_HTTP_BODY_UNKNOWN;
	if (clen >= 0)
		return clen;
	return status ? AURUM_HTTP_BODY_UNKNOWN : 0;
}

/* The header block ended: the body's length, then where the next message starts. */
static __always_inline void aurum_http_walk_body(struct aurum_http_walk *s)
{
	__u32 k = (s->count - 1) & (AURUM_HTTP_WALK_MSGS - 1);
	int status = s->response ? s->msg[k].kind : 0, head = 0;
	__s64 body;

	if (s->response && !aurum_http_status_is_interim(status)) {
		head = (s->head_mask >> (s->finals & 7)) & 1;
		s->finals++;
	}
	body = aurum_http_body_len(s->clen, s->te, status, head);
	s->msg[k].body = body;
	if (body < 0) {
		s->state = AURUM_HTTP_WALK_DONE;
		s->stop = AURUM_HTTP_STOP_UNKNOWN;
		return;
	}
	s->next = s->hdr_end + (__u32)body;
	if ((__u64)s->hdr_end + body >= s->n) {
		if ((__u64)s->hdr_end + body > 0xffffffffULL)
			s->next = 0xffffffffU;
		s->state = AURUM_HTTP_WALK_DONE;
		s->stop = AURUM_HTTP_STOP_NEXT;
		return;
	}
	s->cursor = s->next;
	s->state = AURUM_HTTP_WALK_START;
}

/* A start line at the cursor: a further message, or the end of the walk. */
static __always_inline void aurum_http_walk_start(struct aurum_http_walk *s)
{
	__u64 at = s->cursor;
	__u32 left;
	int kind;

	if (at >= s->n) {
		s->state = AURUM_HTTP_WALK_DONE;
		return;
	}
	left = s->n - (__u32)at;
	AURUM_HTTP_CLAMP(at, AURUM_HTTP_WALK_MASK);
	left = left < AURUM_HTTP_PEEK ? left : AURUM_HTTP_PEEK;
	kind = s->response ? aurum_http_parse_status(s->b + at, left) : aurum_http_parse_method(s->b + at, left);
	s->next = (__u32)at;
	if (kind == AURUM_HTTP_INCOMPLETE && left < AURUM_HTTP_PEEK) {
		s->state = AURUM_HTTP_WALK_DONE;
		s->stop = AURUM_HTTP_STOP_PARTIAL;
		return;
	}
	if (kind <= 0 || s->count >= AURUM_HTTP_WALK_MSGS) {
		s->state = AURUM_HTTP_WALK_DONE;
		return;
	}
	s->msg[s->count & (AURUM_HTTP_WALK_MSGS - 1)].at = s->base + (__u32)at;
	s->msg[s->count & (AURUM_HTTP_WALK_MSGS - 1)].kind = kind;
	s->msg[s->count & (AURUM_HTTP_WALK_MSGS - 1)].body = AURUM_HTTP_BODY_UNKNOWN;
	s->count++;
	aurum_http_walk_headers_from(s, (__u32)at);
}

/* One step; 1 when the walk is over (s->stop says why). */
static __always_inline int aurum_http_walk_step(struct aurum_http_walk *s)
{
	switch (s->state) {
	case AURUM_HTTP_WALK_START:
		aurum_http_walk_start(s);
		break;
	case AURUM_HTTP_WALK_HEADERS:
		aurum_http_walk_headers(s);
		break;
	case AURUM_HTTP_WALK_CLEN:
		if (s->cursor != s->clen_at || !aurum_http_walk_clen_fast(s))
			aurum_http_walk_clen(s);
		break;
	default:
		return 1;
	}
	/* The header block's length known (AURUM_HTTP_WALK_BODY, set only by the two cases above):
	 * the body and where the next message starts, in the same step (a step of its own was one in
	 * ten of an nginx response's). */
	if (s->state == AURUM_HTTP_WALK_BODY)
		aurum_http_walk_body(s);
	return s->state == AURUM_HTTP_WALK_DONE;
}

/* The whole walk of one window, for callers that may loop (userspace, tests). */
static __always_inline void aurum_http_walk_all(struct aurum_http_walk *s)
{
	__u32 i;

	for (i = 0; i < AURUM_HTTP_WALK_MAX_STEPS; i++)
		if (aurum_http_walk_step(s))
			break;
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
