# SPDX-License-Identifier: Apache-2.0
"""The RabbitMQ topology of the testbed, declared the same way by the Shop API (publisher) and the
MES worker (mes_api.js, consumer), so that either may start first.

  exchange shop.orders (direct, durable) --order.created--> queue mes.orders (durable,
      x-dead-letter-exchange=shop.orders.dlx)
  exchange shop.orders.dlx (fanout, durable) --> queue mes.orders.dlq (durable)
"""
EXCHANGE = "shop.orders"
ROUTING_KEY = "order.created"
QUEUE = "mes.orders"
DLX = "shop.orders.dlx"
DLQ = "mes.orders.dlq"


def declare(channel):
    channel.exchange_declare(exchange=EXCHANGE, exchange_type="direct", durable=True)
    channel.exchange_declare(exchange=DLX, exchange_type="fanout", durable=True)
    channel.queue_declare(queue=DLQ, durable=True)
    channel.queue_bind(queue=DLQ, exchange=DLX)
    channel.queue_declare(queue=QUEUE, durable=True, arguments={"x-dead-letter-exchange": DLX})
    channel.queue_bind(queue=QUEUE, exchange=EXCHANGE, routing_key=ROUTING_KEY)
