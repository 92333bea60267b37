#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""RabbitMQ producer and consumer for tests/integration/test_amqp.cpp (Debian's python3-pika).

Declares a durable work queue whose x-dead-letter-exchange routes to a dead-letter queue, and
publishes --publish persistent messages to it on a channel with publisher confirms (the broker's
basic.ack frames must not be counted as consumer acks). A consumer with manual acks on a second
connection then rejects the first --reject deliveries with requeue=false (one by one), acks the
next ones with multiple acks (every 7th tag, then the last), and holds the last --hold unsettled.
Writes what pika saw to --out as JSON, prints "ready" and stays connected until killed.
"""
import argparse
import json
import sys

import pika


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--queue", required=True)
    ap.add_argument("--publish", type=int, required=True)
    ap.add_argument("--reject", type=int, required=True)
    ap.add_argument("--hold", type=int, required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    params = pika.ConnectionParameters(host="127.0.0.1", port=a.port, heartbeat=0)
    dlx, dlq = a.queue + ".dlx", a.queue + ".dlq"

    pub = pika.BlockingConnection(params)
    ch = pub.channel()
    ch.exchange_declare(dlx, exchange_type="fanout", durable=True)
    ch.queue_declare(dlq, durable=True)
    ch.queue_bind(dlq, dlx)
    ch.queue_declare(a.queue, durable=True, arguments={"x-dead-letter-exchange": dlx})
    ch.confirm_delivery()
    published = 0
    for i in range(a.publish):
        ch.basic_publish("", a.queue, f"message {i}".encode(),
                         pika.BasicProperties(delivery_mode=2), mandatory=True)
        published += 1  # confirm_delivery: basic_publish returned after the broker's ack
    pub.close()

    con = pika.BlockingConnection(params)
    cch = con.channel()
    tags = []
    for method, _, _ in cch.consume(a.queue, auto_ack=False):
        tags.append(method.delivery_tag)
        if len(tags) == published:
            break
    rejected = acked = 0
    for t in tags[:a.reject]:
        cch.basic_reject(t, requeue=False)
        rejected += 1
    to_ack = tags[a.reject:len(tags) - a.hold]
    for i, t in enumerate(to_ack):
        if (i + 1) % 7 == 0 or i == len(to_ack) - 1:
            cch.basic_ack(t, multiple=True)
    acked = len(to_ack)
    con.process_data_events(0)
    with open(a.out, "w") as f:
        json.dump({"published": published, "delivered": len(tags), "acked": acked,
                   "rejected": rejected, "held": len(tags) - acked - rejected}, f)
    print("ready", flush=True)
    while True:
        con.sleep(60)


if __name__ == "__main__":
    sys.exit(main())
