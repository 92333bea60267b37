# SPDX-License-Identifier: Apache-2.0
"""Shop API: products and orders. Python from Debian (/usr/bin/python3), stdlib HTTP server,
psycopg2 (python3-psycopg2) for Shop DB, pika (python3-pika) for the Message Queue, and a stdlib
SigV4 client for S3 storage. Not instrumented in any way: aurum must see it from outside.

Creating an order (POST /orders) writes the order to Shop DB, publishes an order event to the
Message Queue and stores the invoice object invoices/<order id>.json in S3. With X-Poison-Event: 1
(or ?poison=1) the event is published malformed, so that the MES worker dead-letters it.
Fault injection: see faults.py. Configuration comes from the environment (see scripts/demo.sh).
"""
import json
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pika
import psycopg2
import psycopg2.pool

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import faults  # noqa: E402
import topology  # noqa: E402
from s3client import S3Client  # noqa: E402


class Publisher:
    """One AMQP connection shared by the handler threads (pika's BlockingConnection is not
    thread-safe, hence the lock), publisher confirms on, reconnect once on a broken connection."""

    def __init__(self, url):
        self.params = pika.URLParameters(url)
        self.params.heartbeat = 0  # the connection idles between orders; nothing pumps heartbeats
        self.lock = threading.Lock()
        self.conn = None
        self.channel = None

    def _connect(self):
        self.conn = pika.BlockingConnection(self.params)
        self.channel = self.conn.channel()
        topology.declare(self.channel)
        self.channel.confirm_delivery()

    def publish(self, body):
        with self.lock:
            for attempt in (1, 2):
                try:
                    if self.conn is None or self.conn.is_closed:
                        self._connect()
                    self.channel.basic_publish(
                        exchange=topology.EXCHANGE, routing_key=topology.ROUTING_KEY, body=body,
                        properties=pika.BasicProperties(content_type="application/json",
                                                        delivery_mode=2))
                    return
                except pika.exceptions.AMQPError:
                    self.conn = None
                    if attempt == 2:
                        raise


class Shop:
    def __init__(self):
        self.pool = psycopg2.pool.ThreadedConnectionPool(1, 16, os.environ["SHOP_DB_DSN"])
        self.publisher = Publisher(os.environ["AMQP_URL"])
        self.s3 = S3Client(os.environ.get("S3_HOST", "127.0.0.1"), int(os.environ["S3_PORT"]),
                           os.environ.get("S3_ACCESS_KEY", "S3RVER"),
                           os.environ.get("S3_SECRET_KEY", "S3RVER"))
        self.bucket = os.environ.get("S3_BUCKET", "invoices")

    def query(self, sql, args=(), one=False, commit=False):
        conn = self.pool.getconn()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                rows = cur.fetchall() if cur.description else []
                cols = [d[0] for d in cur.description] if cur.description else []
            if commit:
                conn.commit()
            else:
                conn.rollback()
        except Exception:
            conn.rollback()
            raise
        finally:
            self.pool.putconn(conn)
        result = [dict(zip(cols, r)) for r in rows]
        return (result[0] if result else None) if one else result

    def create_order(self, customer_id, product_id, quantity, poison):
        product = self.query("SELECT id, name, price_cents FROM products WHERE id = %s",
                             (product_id,), one=True)
        if product is None:
            return None
        order = self.query(
            "INSERT INTO orders (customer_id, product_id, quantity, total_cents, poison_event) "
            "VALUES (%s, %s, %s, %s, %s) "
            "RETURNING id, customer_id, product_id, quantity, total_cents, poison_event",
            (customer_id, product_id, quantity, product["price_cents"] * quantity, poison),
            one=True, commit=True)
        event = {"type": "order.created", "order_id": order["id"], "customer_id": customer_id,
                 "product_id": product_id, "quantity": quantity}
        body = b"{not json: order %d" % order["id"] if poison else json.dumps(event).encode()
        self.publisher.publish(body)
        invoice = {"order_id": order["id"], "customer_id": customer_id, "product": product["name"],
                   "quantity": quantity, "total_cents": order["total_cents"]}
        self.s3.put_object(self.bucket, f"invoices/{order['id']}.json",
                           json.dumps(invoice).encode())
        return order


ORDER_PATH = re.compile(r"^/orders/(\d+)$")
PRODUCT_PATH = re.compile(r"^/products/(\d+)$")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real clients use it
    server_version = "shop-api/1"
    shop = None

    def log_message(self, fmt, *args):
        pass

    def reply(self, status, obj):
        body = json.dumps(obj, default=str).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body_json(self):
        return json.loads(self.body or b"{}")

    def handle_one(self, method):
        # Read the body first, whatever happens next: on a keep-alive connection an unread body
        # would be parsed as the next request.
        length = int(self.headers.get("Content-Length") or 0)
        self.body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        fail, delay, cpu = faults.decide(self.headers, url.query)
        faults.apply_delay(delay, cpu)
        if fail:
            return self.reply(500, {"error": "injected failure"})
        try:
            return self.route(method, url)
        except (ValueError, KeyError, TypeError) as e:
            return self.reply(400, {"error": str(e)})
        except Exception as e:  # a dependency failed: a real 500
            return self.reply(500, {"error": f"{type(e).__name__}: {e}"})

    def route(self, method, url):
        path, query = url.path, parse_qs(url.query)
        if method == "GET" and path == "/healthz":
            return self.reply(200, {"status": "ok"})
        if method == "GET" and path == "/products":
            return self.reply(200, self.shop.query(
                "SELECT id, name, price_cents FROM products ORDER BY id"))
        m = PRODUCT_PATH.match(path)
        if method == "GET" and m:
            p = self.shop.query("SELECT id, name, price_cents FROM products WHERE id = %s",
                                (int(m.group(1)),), one=True)
            return self.reply(200, p) if p else self.reply(404, {"error": "no such product"})
        if method == "GET" and path == "/orders":
            if "customer_id" in query:
                rows = self.shop.query(
                    "SELECT id, customer_id, product_id, quantity, total_cents, created_at "
                    "FROM orders WHERE customer_id = %s ORDER BY id DESC LIMIT 50",
                    (int(query["customer_id"][0]),))
            else:
                rows = self.shop.query(
                    "SELECT id, customer_id, product_id, quantity, total_cents, created_at "
                    "FROM orders ORDER BY id DESC LIMIT 50")
            return self.reply(200, rows)
        m = ORDER_PATH.match(path)
        if method == "GET" and m:
            o = self.shop.query(
                "SELECT id, customer_id, product_id, quantity, total_cents, created_at "
                "FROM orders WHERE id = %s", (int(m.group(1)),), one=True)
            return self.reply(200, o) if o else self.reply(404, {"error": "no such order"})
        if method == "POST" and path == "/orders":
            req = self.body_json()
            poison = (self.headers.get("X-Poison-Event") == "1"
                      or query.get("poison", ["0"])[0] == "1")
            order = self.shop.create_order(int(req["customer_id"]), int(req["product_id"]),
                                           int(req.get("quantity", 1)), poison)
            if order is None:
                return self.reply(404, {"error": "no such product"})
            return self.reply(201, order)
        return self.reply(404, {"error": "not found"})

    def do_GET(self):
        self.handle_one("GET")

    def do_POST(self):
        self.handle_one("POST")


def main():
    Handler.shop = Shop()
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["SHOP_API_PORT"])), Handler)
    server.daemon_threads = True
    print(f"shop-api listening on 127.0.0.1:{server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
