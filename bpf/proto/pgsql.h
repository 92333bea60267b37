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

/* Message types a frontend sends after start-up. */
static __always_inline int aurum_pgsql_frontend_type_ok(__u8 t)
{
	switch (t) {
	case 'B': /* Bind */
	case 'C': /* Close */
	case 'c': /* CopyDone */
	case 'd': /* CopyData */
	case 'D': /* Describe */
	case 'E': /* Execute */
	case 'f': /* CopyFail */
	case 'F': /* FunctionCall */
	case 'H': /* Flush */
	case 'p': /* PasswordMessage, SASLInitialResponse, SASLResponse, GSSResponse */
	case 'P': /* Parse */
	case 'Q': /* Query */
	case 'S': /* Sync */
	case 'X': /* Terminate */
		return 1;
	default:
		return 0;
	}
}

/* Message types a backend sends. */
static __always_inline int aurum_pgsql_backend_type_ok(__u8 t)
{
	switch (t) {
	case '1': /* ParseComplete */
	case '2': /* BindComplete */
	case '3': /* CloseComplete */
	case 'A': /* NotificationResponse */
	case 'c': /* CopyDone */
	case 'C': /* CommandComplete */
	case 'd': /* CopyData */
	case 'D': /* DataRow */
	case 'E': /* ErrorResponse */
	case 'G': /* CopyInResponse */
	case 'H': /* CopyOutResponse */
	case 'I': /* EmptyQueryResponse */
	case 'K': /* BackendKeyData */
	case 'n': /* NoData */
	case 'N': /* NoticeResponse */
	case 'R': /* Authentication* */
	case 's': /* PortalSuspended */
	case 'S': /* ParameterStatus */
	case 't': /* ParameterDescription */
	case 'T': /* RowDescription */
	case 'v': /* NegotiateProtocolVersion */
	case 'V': /* FunctionCallResponse */
	case 'W': /* CopyBothResponse */
	case 'Z': /* ReadyForQuery */
		return 1;
	default:
		return 0;
	}
}

/* Validates a typed message header and returns its body length (length field minus 4),
 * AURUM_PGSQL_INVALID if the header is not valid for that direction, or AURUM_PGSQL_INCOMPLETE
 * below 5 bytes. Messages
 * with a fixed length are checked exactly: they are what a resynchronising parser relies on. */
static __always_inline __s64 aurum_pgsql_header(const __u8 *buf, __u32 len, int dir)
{
	__u32 mlen;
	__u8 t;

	if (len < AURUM_PGSQL_HEADER_LEN)
		return AURUM_PGSQL_INCOMPLETE;
	t = buf[0];
	mlen = aurum_be32(buf + 1);
	if (mlen < 4 || mlen > AURUM_PGSQL_MAX_MSG)
		return AURUM_PGSQL_INVALID;
	if (dir == AURUM_PGSQL_FRONTEND) {
		if (!aurum_pgsql_frontend_type_ok(t))
			return AURUM_PGSQL_INVALID;
		/* Sync, Flush, CopyDone, Terminate carry no body. */
		if ((t == 'S' || t == 'H' || t == 'c' || t == 'X') && mlen != 4)
			return AURUM_PGSQL_INVALID;
	} else {
		if (!aurum_pgsql_backend_type_ok(t))
			return AURUM_PGSQL_INVALID;
		if ((t == '1' || t == '2' || t == '3' || t == 'n' || t == 'I' || t == 'c' ||
		     t == 's') && mlen != 4)
			return AURUM_PGSQL_INVALID;
		if (t == 'Z' && mlen != 5)
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

#endif /* AURUM_PROTO_PGSQL_H */
