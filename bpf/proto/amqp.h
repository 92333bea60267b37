/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* AMQP 0-9-1 framing (amqp0-9-1.pdf section 4.2 and RabbitMQ's errata).
 *
 * Pure helpers over a small byte buffer, shared by the BPF side (to recognise an AMQP connection
 * and count basic.* frames that start a segment) and the userspace stream parser in
 * userspace/proto/amqp.cpp (which validates every frame header with them). Reads are at constant
 * offsets guarded by `len`; callers pass a buffer of at least AURUM_AMQP_PEEK bytes. */
#ifndef AURUM_PROTO_AMQP_H
#define AURUM_PROTO_AMQP_H

#include "byteorder.h"

#define AURUM_AMQP_PEEK 16
#define AURUM_AMQP_INCOMPLETE (-1)
#define AURUM_AMQP_INVALID (-2)

#define AURUM_AMQP_PROTOCOL_HEADER_LEN 8
/* type u8, channel u16, size u32; the payload follows, then the frame-end octet. */
#define AURUM_AMQP_FRAME_HEADER_LEN 7
#define AURUM_AMQP_FRAME_END 0xCE

#define AURUM_AMQP_FRAME_METHOD 1
#define AURUM_AMQP_FRAME_HEADER 2
#define AURUM_AMQP_FRAME_BODY 3
/* The 0-9-1 spec text says 4; the XML, RabbitMQ and every client use 8 (RabbitMQ errata). */
#define AURUM_AMQP_FRAME_HEARTBEAT 8

/* Largest frame accepted before connection.tune says otherwise: a sanity ceiling far above
 * RabbitMQ's default frame_max of 128 KiB, low enough that garbage rarely passes for a size. */
#define AURUM_AMQP_MAX_FRAME (128u << 20)

#define AURUM_AMQP_CLASS_CONNECTION 10
#define AURUM_AMQP_CLASS_CHANNEL 20
#define AURUM_AMQP_CLASS_EXCHANGE 40
#define AURUM_AMQP_CLASS_QUEUE 50
#define AURUM_AMQP_CLASS_BASIC 60
#define AURUM_AMQP_CLASS_CONFIRM 85
#define AURUM_AMQP_CLASS_TX 90

#define AURUM_AMQP_CONNECTION_TUNE 30
#define AURUM_AMQP_CONNECTION_TUNE_OK 31
#define AURUM_AMQP_CONNECTION_CLOSE 50
#define AURUM_AMQP_CONNECTION_CLOSE_OK 51
#define AURUM_AMQP_CHANNEL_OPEN 10
#define AURUM_AMQP_CHANNEL_CLOSE 40
#define AURUM_AMQP_CHANNEL_CLOSE_OK 41
#define AURUM_AMQP_QUEUE_DECLARE 10
#define AURUM_AMQP_QUEUE_DECLARE_OK 11
#define AURUM_AMQP_BASIC_CONSUME 20
#define AURUM_AMQP_BASIC_CONSUME_OK 21
#define AURUM_AMQP_BASIC_PUBLISH 40
#define AURUM_AMQP_BASIC_DELIVER 60
#define AURUM_AMQP_BASIC_GET 70
#define AURUM_AMQP_BASIC_GET_OK 71
#define AURUM_AMQP_BASIC_GET_EMPTY 72
#define AURUM_AMQP_BASIC_ACK 80
#define AURUM_AMQP_BASIC_REJECT 90
#define AURUM_AMQP_BASIC_RECOVER_ASYNC 100
#define AURUM_AMQP_BASIC_RECOVER 110
#define AURUM_AMQP_BASIC_NACK 120
#define AURUM_AMQP_CONFIRM_SELECT 10

struct aurum_amqp_frame_hdr {
	__u32 size;
	__u16 channel;
	__u8 type;
	__u8 pad;
};

/* "AMQP" 0 0 9 1 opens a 0-9-1 connection (section 4.2.2). Returns 1 for it, 2 for another
 * "AMQP" version (a broker answers a mismatch with its own header, then closes), 0 for anything
 * else, AURUM_AMQP_INCOMPLETE if the bytes so far are a prefix of "AMQP". */
static __always_inline int aurum_amqp_protocol_header(const __u8 *buf, __u32 len)
{
	if (len == 0)
		return AURUM_AMQP_INCOMPLETE;
	if (buf[0] != 'A')
		return 0;
	if (len < 2)
		return AURUM_AMQP_INCOMPLETE;
	if (buf[1] != 'M')
		return 0;
	if (len < 3)
		return AURUM_AMQP_INCOMPLETE;
	if (buf[2] != 'Q')
		return 0;
	if (len < 4)
		return AURUM_AMQP_INCOMPLETE;
	if (buf[3] != 'P')
		return 0;
	if (len < AURUM_AMQP_PROTOCOL_HEADER_LEN)
		return AURUM_AMQP_INCOMPLETE;
	return buf[4] == 0 && buf[5] == 0 && buf[6] == 9 && buf[7] == 1 ? 1 : 2;
}

/* Decodes and validates a frame header against `max_frame` (the negotiated frame_max, which
 * counts the 8 bytes of header and end octet, or 0 if unknown). Returns 0 with *hdr filled,
 * AURUM_AMQP_INVALID, or AURUM_AMQP_INCOMPLETE below 7 bytes. */
static __always_inline int aurum_amqp_frame_header(const __u8 *buf, __u32 len, __u32 max_frame,
						   struct aurum_amqp_frame_hdr *hdr)
{
	__u32 size;
	__u16 channel;
	__u8 type;

	if (len < AURUM_AMQP_FRAME_HEADER_LEN)
		return AURUM_AMQP_INCOMPLETE;
	type = buf[0];
	channel = aurum_be16(buf + 1);
	size = aurum_be32(buf + 3);
	if (max_frame == 0 || max_frame > AURUM_AMQP_MAX_FRAME)
		max_frame = AURUM_AMQP_MAX_FRAME;
	if (size > max_frame - 8)
		return AURUM_AMQP_INVALID;
	switch (type) {
	case AURUM_AMQP_FRAME_METHOD:
		/* class id + method id at least */
		if (size < 4)
			return AURUM_AMQP_INVALID;
		break;
	case AURUM_AMQP_FRAME_HEADER:
		/* class, weight, body size, property flags; content travels on channels >= 1 */
		if (size < 14 || channel == 0)
			return AURUM_AMQP_INVALID;
		break;
	case AURUM_AMQP_FRAME_BODY:
		if (channel == 0)
			return AURUM_AMQP_INVALID;
		break;
	case AURUM_AMQP_FRAME_HEARTBEAT:
		if (size != 0 || channel != 0)
			return AURUM_AMQP_INVALID;
		break;
	default:
		return AURUM_AMQP_INVALID;
	}
	hdr->type = type;
	hdr->channel = channel;
	hdr->size = size;
	hdr->pad = 0;
	return 0;
}

/* For a segment that starts with a frame: the basic.* method id (publish, deliver, ack, ...) if it
 * is a basic-class method frame, 0 if it is another valid frame, AURUM_AMQP_INVALID if the bytes
 * are not a frame, AURUM_AMQP_INCOMPLETE below 11 bytes. */
static __always_inline int aurum_amqp_basic_method(const __u8 *buf, __u32 len)
{
	struct aurum_amqp_frame_hdr hdr;
	int err = aurum_amqp_frame_header(buf, len, 0, &hdr);

	if (err)
		return err;
	if (hdr.type != AURUM_AMQP_FRAME_METHOD)
		return 0;
	if (len < AURUM_AMQP_FRAME_HEADER_LEN + 4)
		return AURUM_AMQP_INCOMPLETE;
	if (aurum_be16(buf + 7) != AURUM_AMQP_CLASS_BASIC)
		return 0;
	return aurum_be16(buf + 9);
}

#endif /* AURUM_PROTO_AMQP_H */
