/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* PostgreSQL frontend/backend protocol framing (protocol 3.x, PostgreSQL docs "Message Formats").
 *
 * Pure helpers over a small byte buffer, shared by the BPF side (to recognise a PostgreSQL
 * connection from its first bytes) and by the userspace stream parser in userspace/proto/pgsql.cpp
 * (which validates every header with them). Reads are at constant offsets guarded by `len`;
 * callers pass a buffer of at least AURUM_PGSQL_PEEK bytes.
 *
 * The same type letter means different messages in each direction ('E' is Execute from the
 * frontend, ErrorResponse from the backend), so every check takes the direction. */
#ifndef AURUM_PROTO_PGSQL_H
#define AURUM_PROTO_PGSQL_H

#include "byteorder.h"

#define AURUM_PGSQL_PEEK 8
#define AURUM_PGSQL_INCOMPLETE (-1)
#define AURUM_PGSQL_INVALID (-2)

/* A header is the type byte plus an int32 length that counts itself but not the type byte. */
#define AURUM_PGSQL_HEADER_LEN 5
/* PostgreSQL refuses messages over 1 GB (PQ_LARGE_MESSAGE_LIMIT, src/include/libpq/libpq.h);
 * anything larger is not PostgreSQL or we lost sync. */
#define AURUM_PGSQL_MAX_MSG 0x40000000u
/* MAX_STARTUP_PACKET_LENGTH, src/include/libpq/pqcomm.h. */
#define AURUM_PGSQL_MAX_STARTUP 10000u

/* Request codes of the untyped startup-phase packets (src/include/libpq/pqcomm.h). */
#define AURUM_PGSQL_CANCEL_CODE 80877102u
#define AURUM_PGSQL_SSL_CODE 80877103u
#define AURUM_PGSQL_GSSENC_CODE 80877104u

enum aurum_pgsql_dir {
	AURUM_PGSQL_FRONTEND = 0, /* client to server */
	AURUM_PGSQL_BACKEND = 1,  /* server to client */
};

enum aurum_pgsql_startup_kind {
	AURUM_PGSQL_STARTUP_NONE = 0,
	AURUM_PGSQL_STARTUP_V3 = 1, /* StartupMessage, protocol 3.x */
	AURUM_PGSQL_STARTUP_SSL = 2,
	AURUM_PGSQL_STARTUP_CANCEL = 3,
	AURUM_PGSQL_STARTUP_GSSENC = 4,
};

/* Classifies an untyped startup-phase packet: int32 length, int32 protocol version or request
 * code. Returns the kind, 0 if the bytes are not one, or AURUM_PGSQL_INCOMPLETE below 8 bytes. */
static __always_inline int aurum_pgsql_startup_kind(const __u8 *buf, __u32 len)
{
	__u32 plen, code;

	if (len < 8)
		return AURUM_PGSQL_INCOMPLETE;
	plen = aurum_be32(buf);
	code = aurum_be32(buf + 4);
	if (code == AURUM_PGSQL_SSL_CODE || code == AURUM_PGSQL_GSSENC_CODE)
		return plen == 8 ? (code == AURUM_PGSQL_SSL_CODE ? AURUM_PGSQL_STARTUP_SSL
								  : AURUM_PGSQL_STARTUP_GSSENC)
				 : AURUM_PGSQL_STARTUP_NONE;
	/* 16 bytes up to protocol 3.1; 3.2 (PostgreSQL 18) allows secret keys up to 256 bytes. */
	if (code == AURUM_PGSQL_CANCEL_CODE)
		return plen >= 16 && plen <= 12 + 256 ? AURUM_PGSQL_STARTUP_CANCEL
						      : AURUM_PGSQL_STARTUP_NONE;
	/* Major version 3, any minor (3.0; 3.2 since PostgreSQL 18); the parameter list ends with
	 * a NUL, so the shortest packet is 9 bytes. */
	if ((code >> 16) == 3 && (code & 0xffff) < 16 && plen >= 9 && plen <= AURUM_PGSQL_MAX_STARTUP)
		return AURUM_PGSQL_STARTUP_V3;
	return AURUM_PGSQL_STARTUP_NONE;
}

/* Message types a frontend sends after start-up: B Bind, C Close, c CopyDone, d CopyData,
 * D Describe, E Execute, f CopyFail, F FunctionCall, H Flush, p PasswordMessage (and the SASL and
 * GSS responses), P Parse, Q Query, S Sync, X Terminate. A bit per letter from 'B' (one test on
 * the hot path instead of a chain of compares). */
#define AURUM_PGSQL_FE_BIT(c) (1ULL << ((c) - 'B'))
#define AURUM_PGSQL_FE_TYPES                                                                         \
	(AURUM_PGSQL_FE_BIT('B') | AURUM_PGSQL_FE_BIT('C') | AURUM_PGSQL_FE_BIT('c') |              \
	 AURUM_PGSQL_FE_BIT('d') | AURUM_PGSQL_FE_BIT('D') | AURUM_PGSQL_FE_BIT('E') |              \
	 AURUM_PGSQL_FE_BIT('f') | AURUM_PGSQL_FE_BIT('F') | AURUM_PGSQL_FE_BIT('H') |              \
	 AURUM_PGSQL_FE_BIT('p') | AURUM_PGSQL_FE_BIT('P') | AURUM_PGSQL_FE_BIT('Q') |              \
	 AURUM_PGSQL_FE_BIT('S') | AURUM_PGSQL_FE_BIT('X'))
static __always_inline int aurum_pgsql_frontend_type_ok(__u8 t)
{
	return t >= 'B' && t < 'B' + 64 && ((AURUM_PGSQL_FE_TYPES >> (t - 'B')) & 1);
}

/* Message types a backend sends: 1 ParseComplete, 2 BindComplete, 3 CloseComplete,
 * A NotificationResponse, c CopyDone, C CommandComplete, d CopyData, D DataRow, E ErrorResponse,
 * G CopyInResponse, H CopyOutResponse, I EmptyQueryResponse, K BackendKeyData, n NoData,
 * N NoticeResponse, R Authentication*, s PortalSuspended, S ParameterStatus,
 * t ParameterDescription, T RowDescription, v NegotiateProtocolVersion, V FunctionCallResponse,
 * W CopyBothResponse, Z ReadyForQuery. Letters from 'A' in one mask, the digits apart. */
#define AURUM_PGSQL_BE_BIT(c) (1ULL << ((c) - 'A'))
#define AURUM_PGSQL_BE_TYPES                                                                         \
	(AURUM_PGSQL_BE_BIT('A') | AURUM_PGSQL_BE_BIT('c') | AURUM_PGSQL_BE_BIT('C') |              \
	 AURUM_PGSQL_BE_BIT('d') | AURUM_PGSQL_BE_BIT('D') | AURUM_PGSQL_BE_BIT('E') |              \
	 AURUM_PGSQL_BE_BIT('G') | AURUM_PGSQL_BE_BIT('H') | AURUM_PGSQL_BE_BIT('I') |              \
	 AURUM_PGSQL_BE_BIT('K') | AURUM_PGSQL_BE_BIT('n') | AURUM_PGSQL_BE_BIT('N') |              \
	 AURUM_PGSQL_BE_BIT('R') | AURUM_PGSQL_BE_BIT('s') | AURUM_PGSQL_BE_BIT('S') |              \
	 AURUM_PGSQL_BE_BIT('t') | AURUM_PGSQL_BE_BIT('T') | AURUM_PGSQL_BE_BIT('v') |              \
	 AURUM_PGSQL_BE_BIT('V') | AURUM_PGSQL_BE_BIT('W') | AURUM_PGSQL_BE_BIT('Z'))
static __always_inline int aurum_pgsql_backend_type_ok(__u8 t)
{
	if (t >= '1' && t <= '3')
		return 1;
	return t >= 'A' && t < 'A' + 64 && ((AURUM_PGSQL_BE_TYPES >> (t - 'A')) & 1);
}

/* Types whose messages carry no body (length exactly 4): frontend Sync, Flush, CopyDone,
 * Terminate; backend ParseComplete, BindComplete, CloseComplete (the digits, tested apart), NoData,
 * EmptyQueryResponse, CopyDone, PortalSuspended. */
#define AURUM_PGSQL_FE_EMPTY                                                                         \
	(AURUM_PGSQL_FE_BIT('S') | AURUM_PGSQL_FE_BIT('H') | AURUM_PGSQL_FE_BIT('c') | AURUM_PGSQL_FE_BIT('X'))
#define AURUM_PGSQL_BE_EMPTY                                                                         \
	(AURUM_PGSQL_BE_BIT('n') | AURUM_PGSQL_BE_BIT('I') | AURUM_PGSQL_BE_BIT('c') | AURUM_PGSQL_BE_BIT('s'))

/* Validates a typed message header and returns its body length (length field minus 4),
 * AURUM_PGSQL_INVALID if the header is not valid for that direction, or AURUM_PGSQL_INCOMPLETE
 * below 5 bytes. Messages
 * with a fixed length are checked exactly: they are what a resynchronising parser relies on.
 * One mask test per check (this runs for every message the kernel frames). */
static __always_inline __s64 aurum_pgsql_header(const __u8 *buf, __u32 len, int dir)
{
	__u64 bit;
	__u32 mlen, i;
	__u8 t;

	if (len < AURUM_PGSQL_HEADER_LEN)
		return AURUM_PGSQL_INCOMPLETE;
	t = buf[0];
	mlen = aurum_be32(buf + 1);
	if (mlen < 4 || mlen > AURUM_PGSQL_MAX_MSG)
		return AURUM_PGSQL_INVALID;
	if (dir == AURUM_PGSQL_FRONTEND) {
		i = (__u32)t - 'B';
		if (i >= 64)
			return AURUM_PGSQL_INVALID;
		bit = 1ULL << i;
		if (!(AURUM_PGSQL_FE_TYPES & bit) || ((AURUM_PGSQL_FE_EMPTY & bit) && mlen != 4))
			return AURUM_PGSQL_INVALID;
	} else if ((__u32)t - '1' < 3) {
		if (mlen != 4)
			return AURUM_PGSQL_INVALID;
	} else {
		i = (__u32)t - 'A';
		if (i >= 64)
			return AURUM_PGSQL_INVALID;
		bit = 1ULL << i;
		if (!(AURUM_PGSQL_BE_TYPES & bit) || ((AURUM_PGSQL_BE_EMPTY & bit) && mlen != 4) ||
		    (t == 'Z' && mlen != 5))
			return AURUM_PGSQL_INVALID;
	}
	return (__s64)mlen - 4;
}

/* ReadyForQuery ('Z', length 5, transaction status 'I' idle, 'T' in a transaction block, 'E' in
 * a failed transaction): the end of every query cycle. Returns the status byte or 0. */
static __always_inline int aurum_pgsql_ready_for_query(const __u8 *buf, __u32 len)
{
	if (len < 6)
		return 0;
	if (buf[0] != 'Z' || aurum_be32(buf + 1) != 5)
		return 0;
	return buf[5] == 'I' || buf[5] == 'T' || buf[5] == 'E' ? buf[5] : 0;
}

/* ---- In-kernel framing (bpf/stream.bpf.c), also run on the host by the tests -----------------
 *
 * The same query semantics as userspace/proto/pgsql.cpp, over fixed-size state that fits a
 * socket's sk_storage: per direction the next expected TCP sequence number, the body bytes left
 * in the current message, up to 7 bytes of a header cut by a segment boundary, and an
 * ErrorResponse's SQLSTATE class as it streams past; per connection the cycles awaiting their
 * ReadyForQuery. Only headers are looked at (and the first bytes of an ErrorResponse): a caller
 * walks one segment with aurum_pgsql_step(), handing it up to AURUM_PGSQL_WIN bytes at the
 * current position each time.
 *
 * Differences from the userspace parser, all on damaged streams only: at most AURUM_PGSQL_FIFO
 * cycles wait (the oldest is dropped and counted beyond that), and after lost framing a direction
 * resumes only at a segment that starts with a header it can trust (the userspace parser slides
 * byte by byte). Queries are never reported while framing is in doubt (quarantine, as there). */
#define AURUM_PGSQL_FIFO 16
/* Bytes visible per step: an extended-protocol query (Parse/Bind/Describe/Execute/Sync) or its
 * answer is ~100 bytes, so its headers all start within one step's view (64 took two steps). */
#define AURUM_PGSQL_WIN 128
#define AURUM_PGSQL_ERR_KEEP 256 /* ErrorResponse bytes searched for the 'C' field (as userspace) */
#define AURUM_PGSQL_MAX_RESYNCS 16
#define AURUM_PGSQL_SCAN_MAX_LEN (1u << 20) /* a resync header announcing more is not trusted */

enum aurum_pgsql_phase {
	AURUM_PGSQL_PH_UNKNOWN = 0, /* first bytes: a startup packet or, mid-connection, typed */
	AURUM_PGSQL_PH_STARTUP = 1, /* untyped startup-phase packets (frontend) */
	AURUM_PGSQL_PH_ANSWER = 2,  /* one byte answering SSLRequest/GSSENCRequest (backend) */
	AURUM_PGSQL_PH_TYPED = 3,
	AURUM_PGSQL_PH_SCAN = 4,    /* framing lost: wait for a segment starting with a trusted header */
	AURUM_PGSQL_PH_DEAD = 5,
};

enum aurum_pgsql_gave_up {
	AURUM_PGSQL_GAVE_UP_NONE = 0,
	AURUM_PGSQL_GAVE_UP_TLS = 1,
	AURUM_PGSQL_GAVE_UP_GSS = 2,
	AURUM_PGSQL_GAVE_UP_CANCEL = 3,
	AURUM_PGSQL_GAVE_UP_MALFORMED = 4,
};

/* ErrorResponse scan states. */
#define AURUM_PGSQL_ERR_CODE 0  /* at a field code byte */
#define AURUM_PGSQL_ERR_SKIP 1  /* inside a field that is not 'C' */
#define AURUM_PGSQL_ERR_IN_C 2  /* inside the 'C' field */
#define AURUM_PGSQL_ERR_FOUND 3 /* a five-character 'C' field was read: err_cls holds its class */
#define AURUM_PGSQL_ERR_NONE 4  /* finished without one */

struct aurum_pgsql_half {
	__u64 msg_ts;    /* arrival of the first byte of the message being read */
	__u64 hdr;       /* bytes of a cut header, little-endian (byte i at bits 8i) */
	__u32 next_seq;  /* TCP sequence number after the last byte seen */
	__u32 body_left; /* body bytes of the current message still to come */
	__u16 err_seen;  /* ErrorResponse body bytes scanned */
	__u8 phase;      /* enum aurum_pgsql_phase */
	__u8 hdr_have;
	__u8 type;       /* type of the message whose body is being read, 0 for startup */
	__u8 seq_valid;
	__u8 err_state;
	__u8 err_len;    /* characters of the 'C' field seen */
	__u8 err_cls[2];
	__u8 pad[6];
};

#define AURUM_PGSQL_CYCLE_SILENT 1   /* a ReadyForQuery is due that answers no query */
#define AURUM_PGSQL_CYCLE_ERROR 2
#define AURUM_PGSQL_CYCLE_EXTENDED 4

struct aurum_pgsql_cycle {
	__u64 start_ns;
	__u8 flags;
	__u8 cls[2];
	__u8 pad[5];
};

#define AURUM_PGSQL_BATCH_OPEN 1
#define AURUM_PGSQL_BATCH_QUERY 2
#define AURUM_PGSQL_BATCH_ERROR 4

struct aurum_pgsql_conn {
	struct aurum_pgsql_half fe, be;
	struct aurum_pgsql_cycle fifo[AURUM_PGSQL_FIFO];
	__u64 batch_start;
	__u8 head;       /* oldest waiting cycle (mod AURUM_PGSQL_FIFO) */
	__u8 count;
	__u8 batch;      /* AURUM_PGSQL_BATCH_* */
	__u8 batch_cls[2];
	__u8 quarantine; /* framing was lost: report nothing until the cycles in flight are answered */
	__u8 resyncs;
	__u8 gave_up;    /* enum aurum_pgsql_gave_up */
	__u8 live;       /* waiting cycles that are queries (not silent) */
	__u8 pad[7];
};

/* What one segment's walk produced besides queries: added to the counters by the caller. */
struct aurum_pgsql_out {
	__u32 messages;
	__u32 malformed;   /* headers that failed validation */
	__u32 resyncs;     /* times a direction lost framing */
	__u32 gaps_in_body;
	__u32 dropped;     /* queries discarded: framing lost, or the FIFO full */
	__u32 unmatched;   /* ReadyForQuery with no query waiting (other than start-up) */
	__u32 overflow;    /* cycles pushed out of a full FIFO (silent ones included) */
	__u8 gave_up;      /* set when the connection was given up on in this segment */
	/* A query that ended in the last step (at most one per step). */
	__u8 ev;
	__u8 ev_error;
	__u8 ev_extended;
	__u8 ev_cls[2];    /* SQLSTATE class; zero with ev_error: it was not captured (_OTHER) */
	__u8 pad[2];
	__u64 ev_start, ev_end;
};

static __always_inline struct aurum_pgsql_half *aurum_pgsql_half_of(struct aurum_pgsql_conn *c, int dir)
{
	return dir == AURUM_PGSQL_FRONTEND ? &c->fe : &c->be;
}

static __always_inline __u32 aurum_pgsql_in_flight(const struct aurum_pgsql_conn *c)
{
	return c->live;
}

static __always_inline void aurum_pgsql_give_up(struct aurum_pgsql_conn *c, __u8 why, struct aurum_pgsql_out *o)
{
	if (why == AURUM_PGSQL_GAVE_UP_MALFORMED)
		o->dropped += aurum_pgsql_in_flight(c);
	c->gave_up = why;
	o->gave_up = why;
	c->count = 0;
	c->live = 0;
	c->fe.phase = AURUM_PGSQL_PH_DEAD;
	c->be.phase = AURUM_PGSQL_PH_DEAD;
}

static __always_inline void aurum_pgsql_lose_sync(struct aurum_pgsql_conn *c, struct aurum_pgsql_half *h,
						  struct aurum_pgsql_out *o)
{
	o->resyncs++;
	if (++c->resyncs > AURUM_PGSQL_MAX_RESYNCS) {
		aurum_pgsql_give_up(c, AURUM_PGSQL_GAVE_UP_MALFORMED, o);
		return;
	}
	o->dropped += aurum_pgsql_in_flight(c) +
		      ((c->batch & (AURUM_PGSQL_BATCH_OPEN | AURUM_PGSQL_BATCH_QUERY)) ==
		       (AURUM_PGSQL_BATCH_OPEN | AURUM_PGSQL_BATCH_QUERY));
	c->count = 0;
	c->live = 0;
	c->batch = 0;
	c->quarantine = 1;
	h->phase = AURUM_PGSQL_PH_SCAN;
	h->hdr_have = 0;
	h->body_left = 0;
}

static __always_inline void aurum_pgsql_push(struct aurum_pgsql_conn *c, __u64 start, __u8 flags, __u8 cls0,
					     __u8 cls1, struct aurum_pgsql_out *o)
{
	struct aurum_pgsql_cycle *y;

	if (c->count >= AURUM_PGSQL_FIFO) {
		/* A client that pipelines deeper than this: keep the newest, count the loss. */
		o->overflow++;
		if (!(c->fifo[c->head & (AURUM_PGSQL_FIFO - 1)].flags & AURUM_PGSQL_CYCLE_SILENT)) {
			o->dropped++;
			c->live--;
		}
		c->head = (c->head + 1) & (AURUM_PGSQL_FIFO - 1);
		c->count--;
	}
	y = &c->fifo[(c->head + c->count) & (AURUM_PGSQL_FIFO - 1)];
	y->start_ns = start;
	y->flags = flags;
	y->cls[0] = cls0;
	y->cls[1] = cls1;
	c->count++;
	if (!(flags & AURUM_PGSQL_CYCLE_SILENT))
		c->live++;
}

static __always_inline void aurum_pgsql_message_start(struct aurum_pgsql_conn *c, __u8 type, __u64 ts,
						      struct aurum_pgsql_out *o)
{
	switch (type) {
	case 'Q':
		aurum_pgsql_push(c, ts, 0, 0, 0, o);
		break;
	case 'P':
	case 'B':
	case 'E':
		if (!(c->batch & AURUM_PGSQL_BATCH_OPEN) || !(c->batch & AURUM_PGSQL_BATCH_QUERY))
			c->batch_start = ts;
		c->batch |= AURUM_PGSQL_BATCH_OPEN | AURUM_PGSQL_BATCH_QUERY;
		break;
	case 'D':
	case 'C':
		c->batch |= AURUM_PGSQL_BATCH_OPEN; /* a batch, but not a query until a P/B/E joins it */
		break;
	case 'S':
		/* Every Sync is answered by exactly one ReadyForQuery, in order. */
		aurum_pgsql_push(c, c->batch_start,
				 AURUM_PGSQL_CYCLE_EXTENDED |
					 (c->batch & AURUM_PGSQL_BATCH_QUERY ? 0 : AURUM_PGSQL_CYCLE_SILENT) |
					 (c->batch & AURUM_PGSQL_BATCH_ERROR ? AURUM_PGSQL_CYCLE_ERROR : 0),
				 c->batch_cls[0], c->batch_cls[1], o);
		c->batch = 0;
		c->batch_cls[0] = c->batch_cls[1] = 0;
		break;
	case 'F': /* FunctionCall: answered by ReadyForQuery, not a query we time */
		aurum_pgsql_push(c, 0, AURUM_PGSQL_CYCLE_SILENT, 0, 0, o);
		break;
	default:
		break;
	}
}

/* The end of a backend message (its whole body went by). */
static __always_inline void aurum_pgsql_backend_end(struct aurum_pgsql_conn *c, struct aurum_pgsql_half *h,
						    struct aurum_pgsql_out *o)
{
	struct aurum_pgsql_cycle *y;
	__u8 c0 = 0, c1 = 0;

	h->hdr_have = 0;
	if (h->type == 'E') {
		if (h->err_state == AURUM_PGSQL_ERR_FOUND) {
			c0 = h->err_cls[0];
			c1 = h->err_cls[1];
		}
		/* The error belongs to the oldest unanswered cycle: the backend works through them in
		 * order and, after an error, skips to the next Sync. */
		if (c->count) {
			y = &c->fifo[c->head & (AURUM_PGSQL_FIFO - 1)];
			if (!(y->flags & AURUM_PGSQL_CYCLE_ERROR)) {
				y->cls[0] = c0;
				y->cls[1] = c1;
			}
			y->flags |= AURUM_PGSQL_CYCLE_ERROR;
		} else if (c->batch & AURUM_PGSQL_BATCH_OPEN) {
			if (!(c->batch & AURUM_PGSQL_BATCH_ERROR)) {
				c->batch_cls[0] = c0;
				c->batch_cls[1] = c1;
			}
			c->batch |= AURUM_PGSQL_BATCH_ERROR;
		}
		return;
	}
	if (h->type != 'Z')
		return;
	if (!c->count) {
		o->unmatched++;
		c->quarantine = 0;
		return;
	}
	y = &c->fifo[c->head & (AURUM_PGSQL_FIFO - 1)];
	if (y->start_ns > h->msg_ts) {
		/* Began before the oldest waiting query was sent: it answers one that was lost. */
		o->unmatched++;
		return;
	}
	c->head = (c->head + 1) & (AURUM_PGSQL_FIFO - 1);
	c->count--;
	if (!(y->flags & AURUM_PGSQL_CYCLE_SILENT))
		c->live--;
	if (c->quarantine) {
		if (!(y->flags & AURUM_PGSQL_CYCLE_SILENT))
			o->dropped++;
		if (!c->count)
			c->quarantine = 0;
		return;
	}
	if (y->flags & AURUM_PGSQL_CYCLE_SILENT)
		return;
	o->ev = 1;
	o->ev_start = y->start_ns;
	o->ev_end = h->msg_ts;
	o->ev_error = (y->flags & AURUM_PGSQL_CYCLE_ERROR) != 0;
	o->ev_extended = (y->flags & AURUM_PGSQL_CYCLE_EXTENDED) != 0;
	o->ev_cls[0] = o->ev_error ? y->cls[0] : 0;
	o->ev_cls[1] = o->ev_error ? y->cls[1] : 0;
}

static __always_inline void aurum_pgsql_frontend_end(struct aurum_pgsql_half *h)
{
	h->hdr_have = 0;
	if (h->phase == AURUM_PGSQL_PH_STARTUP && h->type == 1)
		h->phase = AURUM_PGSQL_PH_TYPED; /* a StartupMessage ends the untyped packets */
}

static __always_inline void aurum_pgsql_message_end(struct aurum_pgsql_conn *c, int dir, struct aurum_pgsql_half *h,
						    struct aurum_pgsql_out *o)
{
	if (dir == AURUM_PGSQL_FRONTEND)
		aurum_pgsql_frontend_end(h);
	else
		aurum_pgsql_backend_end(c, h, o);
}

/* Feeds up to AURUM_PGSQL_ERR_STEP bytes of an ErrorResponse body to its SQLSTATE scan (fields:
 * code byte, C string; a NUL ends the list); returns how many it took. Like the userspace parser,
 * only the first AURUM_PGSQL_ERR_KEEP bytes count. The state is re-read from memory each byte
 * (volatile) so that the verifier meets one state per iteration rather than one per path. */
#define AURUM_PGSQL_ERR_STEP 16
static __always_inline __u32 aurum_pgsql_error_scan(struct aurum_pgsql_half *h, const __u8 *b, __u32 n)
{
	volatile __u8 *state = &h->err_state;
	__u32 i;

	for (i = 0; i < AURUM_PGSQL_ERR_STEP; i++) {
		__u8 ch, st = *state;

		if (i >= n || st >= AURUM_PGSQL_ERR_FOUND)
			break;
		if (h->err_seen >= AURUM_PGSQL_ERR_KEEP) {
			*state = AURUM_PGSQL_ERR_NONE;
			break;
		}
		h->err_seen++;
		ch = b[i];
		if (st == AURUM_PGSQL_ERR_CODE)
			*state = ch == 0 ? AURUM_PGSQL_ERR_NONE : ch == 'C' ? AURUM_PGSQL_ERR_IN_C : AURUM_PGSQL_ERR_SKIP;
		else if (st == AURUM_PGSQL_ERR_SKIP)
			*state = ch == 0 ? AURUM_PGSQL_ERR_CODE : AURUM_PGSQL_ERR_SKIP;
		else if (ch == 0)
			*state = h->err_len == 5 ? AURUM_PGSQL_ERR_FOUND : AURUM_PGSQL_ERR_NONE;
		else {
			__u8 k = *(volatile __u8 *)&h->err_len;

			if (k < 2)
				h->err_cls[k & 1] = ch;
			if (k < 255)
				h->err_len = k + 1;
		}
	}
	return i;
}

/* A header worth resuming at after framing was lost, at the start of a segment (b holds nb bytes).
 * Frontend: the messages that start queries or end batches (as the userspace parser). Backend: any
 * valid header of modest length (a response's first message is rarely ReadyForQuery); a wrong
 * guess fails at a following header and costs another resync, and quarantine keeps it from
 * reporting anything meanwhile. */
static __always_inline int aurum_pgsql_trusted(int dir, const __u8 *b, __u32 nb)
{
	__u32 len;

	if (nb < AURUM_PGSQL_HEADER_LEN)
		return 0;
	len = aurum_be32(b + 1);
	if (dir == AURUM_PGSQL_BACKEND)
		return len <= AURUM_PGSQL_SCAN_MAX_LEN && aurum_pgsql_header(b, nb, AURUM_PGSQL_BACKEND) >= 0;
	switch (b[0]) {
	case 'S':
	case 'X':
	case 'H':
		return len == 4;
	case 'Q':
	case 'P':
		return nb >= 6 && len >= 6 && len < AURUM_PGSQL_SCAN_MAX_LEN &&
		       (b[5] == 0 || b[5] == '\t' || b[5] == '\n' || b[5] == '\r' || (b[5] >= 0x20 && b[5] < 0x7f));
	default:
		return 0;
	}
}

/* The part of a segment not seen before: returns the offset of its first new byte, or -1 when all
 * of it was seen (a retransmission). Bytes skipped since the last segment are a gap. */
static __always_inline __s64 aurum_pgsql_segment(struct aurum_pgsql_conn *c, int dir, __u32 seq, __u32 len,
						struct aurum_pgsql_out *o)
{
	struct aurum_pgsql_half *h = aurum_pgsql_half_of(c, dir);
	__u32 skip = 0;

	if (h->seq_valid) {
		__s32 delta = (__s32)(seq - h->next_seq);

		if (delta < 0) {
			skip = (__u32)(-(__s64)delta);
			if (skip >= len)
				return -1;
		} else if (delta > 0 && h->phase != AURUM_PGSQL_PH_DEAD && h->phase != AURUM_PGSQL_PH_SCAN) {
			__u32 n = (__u32)delta;

			if (h->body_left && n <= h->body_left) {
				o->gaps_in_body++;
				if (h->err_state < AURUM_PGSQL_ERR_FOUND)
					h->err_state = AURUM_PGSQL_ERR_NONE;
				h->body_left -= n;
				if (!h->body_left)
					aurum_pgsql_message_end(c, dir, h, o);
			} else {
				aurum_pgsql_lose_sync(c, h, o);
			}
		}
	}
	h->seq_valid = 1;
	h->next_seq = seq + len;
	return skip;
}

/* Consumes body bytes of the current message at b (nb available here, left in the segment). */
static __always_inline __u32 aurum_pgsql_body(struct aurum_pgsql_conn *c, int dir, struct aurum_pgsql_half *h,
					      const __u8 *b, __u32 nb, __u32 left, struct aurum_pgsql_out *o)
{
	__u32 take = left < h->body_left ? left : h->body_left;

	if (dir == AURUM_PGSQL_BACKEND && h->type == 'E' && h->err_state < AURUM_PGSQL_ERR_FOUND) {
		/* Scanned a few bytes a step; the rest of the body is skipped once the scan is over. */
		if (take > nb)
			take = nb;
		take = aurum_pgsql_error_scan(h, b, take);
	}
	h->body_left -= take;
	if (!h->body_left)
		aurum_pgsql_message_end(c, dir, h, o);
	return take;
}

/* A complete typed header: its message starts (and, without a body, ends). Returns -1 when the
 * header was not valid (framing lost), else 0. */
static __always_inline int aurum_pgsql_typed(struct aurum_pgsql_conn *c, int dir, struct aurum_pgsql_half *h, __u8 type,
					     __s64 body, struct aurum_pgsql_out *o)
{
	if (body < 0) {
		o->malformed++;
		aurum_pgsql_lose_sync(c, h, o);
		return -1;
	}
	o->messages++;
	h->type = type;
	h->body_left = (__u32)body;
	h->err_state = AURUM_PGSQL_ERR_CODE;
	h->err_seen = 0;
	h->err_len = 0;
	if (dir == AURUM_PGSQL_FRONTEND)
		aurum_pgsql_message_start(c, type, h->msg_ts, o);
	if (!h->body_left)
		aurum_pgsql_message_end(c, dir, h, o);
	return 0;
}

/* A whole typed header at q, in the typed phase with nothing held: read in place, the message
 * started, its body stepped over as far as this segment goes (unless its bytes are wanted: an
 * ErrorResponse). Returns the bytes consumed, or -1 when the header was not valid. The same state
 * changes as aurum_pgsql_typed followed by the body step of aurum_pgsql_step, in one pass: this
 * runs for every message the kernel frames. */
static __always_inline int aurum_pgsql_whole(struct aurum_pgsql_conn *c, int dir, struct aurum_pgsql_half *h,
					     const __u8 *q, __u32 left, __u64 ts, struct aurum_pgsql_out *o)
{
	__s64 body = aurum_pgsql_header(q, AURUM_PGSQL_HEADER_LEN, dir);
	__u32 take = 0;
	__u8 type = q[0];

	h->msg_ts = ts;
	if (body < 0) {
		h->hdr_have = AURUM_PGSQL_HEADER_LEN;
		o->malformed++;
		aurum_pgsql_lose_sync(c, h, o);
		return -1;
	}
	o->messages++;
	h->type = type;
	h->err_state = AURUM_PGSQL_ERR_CODE;
	h->err_seen = 0;
	h->err_len = 0;
	if (dir == AURUM_PGSQL_FRONTEND)
		aurum_pgsql_message_start(c, type, ts, o);
	if (!(dir == AURUM_PGSQL_BACKEND && type == 'E')) {
		/* left >= AURUM_PGSQL_HEADER_LEN: the caller saw the whole header */
		take = left - AURUM_PGSQL_HEADER_LEN;
		if ((__u64)body < take)
			take = (__u32)body;
	}
	h->body_left = (__u32)body - take;
	if (h->body_left) {
		h->hdr_have = AURUM_PGSQL_HEADER_LEN;
	} else if (dir == AURUM_PGSQL_FRONTEND) {
		h->hdr_have = 0; /* aurum_pgsql_frontend_end: the phase is typed already */
	} else {
		aurum_pgsql_backend_end(c, h, o);
	}
	return (int)(AURUM_PGSQL_HEADER_LEN + take);
}

/* One step of a segment's walk at the current position: b holds nb bytes of it (nb <= WIN, at
 * least 1), `left` >= nb bytes remain in the segment from here, `at_start` says the position is
 * the segment's first new byte. Returns the bytes consumed (0 when only the state moved on), or
 * -1 when the rest of this segment is not to be looked at. o->ev says whether a query ended. */
static __always_inline int aurum_pgsql_step(struct aurum_pgsql_conn *c, int dir, const __u8 *b, __u32 nb, __u32 left,
					    __u64 ts, int at_start, struct aurum_pgsql_out *o)
{
	struct aurum_pgsql_half *h = aurum_pgsql_half_of(c, dir);
	__u8 hb[8];
	__u64 v;
	__u32 need, take, j, used;
	int kind;

	o->ev = 0;
	if (nb == 0 || nb > AURUM_PGSQL_WIN || left < nb)
		return -1;
	switch (h->phase) {
	case AURUM_PGSQL_PH_DEAD:
		return -1;
	case AURUM_PGSQL_PH_SCAN:
		if (!at_start || !aurum_pgsql_trusted(dir, b, nb))
			return -1;
		h->phase = AURUM_PGSQL_PH_TYPED;
		h->hdr_have = 0;
		return 0;
	case AURUM_PGSQL_PH_UNKNOWN:
		/* A startup packet's int32 length is below 10000: its first byte is 0. */
		h->phase = dir == AURUM_PGSQL_FRONTEND && b[0] == 0 ? AURUM_PGSQL_PH_STARTUP : AURUM_PGSQL_PH_TYPED;
		return 0;
	case AURUM_PGSQL_PH_ANSWER:
		switch (b[0]) {
		case 'N': /* not supported: plaintext continues */
			h->phase = AURUM_PGSQL_PH_TYPED;
			return 1;
		case 'S':
			aurum_pgsql_give_up(c, AURUM_PGSQL_GAVE_UP_TLS, o);
			return -1;
		case 'G':
			aurum_pgsql_give_up(c, AURUM_PGSQL_GAVE_UP_GSS, o);
			return -1;
		case 'E': /* a server too old for the request answers with an ErrorResponse */
			h->phase = AURUM_PGSQL_PH_TYPED;
			return 0;
		default:
			o->malformed++;
			aurum_pgsql_lose_sync(c, h, o);
			return -1;
		}
	default:
		break;
	}
	if (h->body_left)
		return (int)aurum_pgsql_body(c, dir, h, b, nb, left, o);

	/* The common case: a whole header in view. */
	if (h->phase == AURUM_PGSQL_PH_TYPED && !h->hdr_have && nb >= AURUM_PGSQL_HEADER_LEN)
		return aurum_pgsql_whole(c, dir, h, b, left, ts, o);

	/* A header: 8 bytes for a startup packet, 5 for a typed message, maybe cut by the segment. */
	need = (h->phase == AURUM_PGSQL_PH_STARTUP ? 8 : AURUM_PGSQL_HEADER_LEN) - (h->hdr_have & 7);
	if (need > 8)
		return -1;
	take = nb < need ? nb : need;
	if (!h->hdr_have) {
		h->msg_ts = ts;
		h->hdr = 0;
	}
	v = h->hdr;
	for (j = 0; j < 8; j++) {
		if (j >= take)
			break;
		v |= (__u64)b[j] << (8 * ((h->hdr_have + j) & 7));
	}
	h->hdr_have += take;
	used = take;
	if (take < need) {
		h->hdr = v;
		return (int)used;
	}
	for (j = 0; j < 8; j++)
		hb[j] = (__u8)(v >> (8 * j));
	h->hdr = v;
	if (h->phase == AURUM_PGSQL_PH_STARTUP) {
		__u32 plen = aurum_be32(hb);

		kind = aurum_pgsql_startup_kind(hb, 8);
		if (kind <= 0) {
			o->malformed++;
			aurum_pgsql_lose_sync(c, h, o);
			return -1;
		}
		o->messages++;
		h->type = kind == AURUM_PGSQL_STARTUP_V3 ? 1 : 0;
		h->body_left = plen - 8;
		switch (kind) {
		case AURUM_PGSQL_STARTUP_V3:
			/* The server ends authentication with a ReadyForQuery that answers no query. */
			aurum_pgsql_push(c, 0, AURUM_PGSQL_CYCLE_SILENT, 0, 0, o);
			break;
		case AURUM_PGSQL_STARTUP_SSL:
		case AURUM_PGSQL_STARTUP_GSSENC:
			/* Answered by one untyped byte; the client then sends another startup packet. */
			c->be.phase = AURUM_PGSQL_PH_ANSWER;
			c->be.hdr_have = 0;
			break;
		case AURUM_PGSQL_STARTUP_CANCEL:
			aurum_pgsql_give_up(c, AURUM_PGSQL_GAVE_UP_CANCEL, o);
			return -1;
		default:
			break;
		}
		if (!h->body_left)
			aurum_pgsql_frontend_end(h);
	} else if (aurum_pgsql_typed(c, dir, h, hb[0], aurum_pgsql_header(hb, AURUM_PGSQL_HEADER_LEN, dir), o)) {
		return -1;
	}
	/* Step over the body in the same step unless its bytes are wanted (an ErrorResponse). */
	if (h->body_left && left > used && !(dir == AURUM_PGSQL_BACKEND && h->type == 'E')) {
		take = left - used < h->body_left ? left - used : h->body_left;
		h->body_left -= take;
		used += take;
		if (!h->body_left)
			aurum_pgsql_message_end(c, dir, h, o);
	}
	return (int)used;
}

/* Messages a run takes beyond its first step (aurum_pgsql_run). */
#define AURUM_PGSQL_RUN 8

/* aurum_pgsql_step, then on through the following messages whose whole header is in view (b holds
 * nb bytes; the caller keeps AURUM_PGSQL_WIN more readable past any of them), up to
 * AURUM_PGSQL_RUN of them: one call for the handful of small messages a query or its answer is
 * made of. Stops after a query ended (o->ev), so that the caller records each. Same return as
 * aurum_pgsql_step. */
static __always_inline int aurum_pgsql_run(struct aurum_pgsql_conn *c, int dir, const __u8 *b, __u32 nb, __u32 left,
					   __u64 ts, int at_start, struct aurum_pgsql_out *o)
{
	struct aurum_pgsql_half *h = aurum_pgsql_half_of(c, dir);
	int r = aurum_pgsql_step(c, dir, b, nb, left, ts, at_start, o);
	__u32 used, off, k;

	if (r <= 0 || o->ev)
		return r;
	used = (__u32)r;
	for (k = 0; k < AURUM_PGSQL_RUN; k++) {
		if (used >= AURUM_PGSQL_WIN || used + AURUM_PGSQL_HEADER_LEN > nb || h->phase != AURUM_PGSQL_PH_TYPED ||
		    h->body_left || h->hdr_have)
			break;
		/* The mask bounds the offset for the verifier; clang must not see that it is a no-op. */
		off = used;
		__asm__ __volatile__("" : "+r"(off));
		off &= AURUM_PGSQL_WIN - 1;
		r = aurum_pgsql_whole(c, dir, h, b + off, left - used, ts, o);
		if (r < 0)
			return -1;
		used += (__u32)r;
		if (o->ev)
			break;
	}
	return (int)used;
}

#endif /* AURUM_PROTO_PGSQL_H */
