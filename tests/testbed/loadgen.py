#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Load generator for the testbed (stdlib only; run with /usr/bin/python3).

A fixed-rate, open-loop mix of reads and writes over keep-alive connections to the three APIs:
orders placed directly on the Shop API and through the CRM API (which calls the Shop API), product
and customer reads, customers' orders (CRM -> Shop), MES jobs. Knobs, so that each alert can be
triggered on purpose:

  --rate N            requests per second, all APIs together
  --duration S        seconds of load
  --error-share F     every request asks its API to answer 500 with probability F (X-Fail-Share)
  --delay-ms N        every request asks its API to wait N ms first (X-Delay-Ms)
  --cpu-ms N          every request asks its API to burn N ms of CPU first (X-Cpu-Ms)
  --poison-share F    share of the placed orders whose event is published malformed (the MES
                      worker rejects it with requeue=false: a dead letter)
  --slow-ms N         MES worker slow mode: hold each message unacked N ms (messages in flight);
                      set before the load and left as set (0 turns it off)
  --hold-db-connections N
                      open N idle connections to Shop DB and to MES DB each for the duration
                      (max_connections is 100: the connection alert)

Prints (and with --out writes) a JSON summary that is the ground truth of the end-to-end test:
responses per API and status, the ids of the orders created, which of them carry poison events.
"""
import argparse
import http.client
import json
import os
import random
import sys
import threading
import time


def load_ports():
    ports = {}
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ports.env")
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                ports[k] = int(v)
    return ports


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.responses = {}        # api -> status -> count
        self.orders = []           # ids of orders created with a well-formed event
        self.poison_orders = []    # ids of orders created with a malformed event
        self.late = 0              # requests sent more than 1 s behind schedule
        self.sent = 0

    def record(self, api, status):
        with self.lock:
            per = self.responses.setdefault(api, {})
            per[str(status)] = per.get(str(status), 0) + 1


class Client:
    """One keep-alive connection per API per worker thread."""

    def __init__(self, ports):
        self.ports = ports
        self.conns = {}

    def request(self, api, method, path, body=None, headers=None):
        conn = self.conns.get(api)
        if conn is None:
            conn = http.client.HTTPConnection("127.0.0.1", self.ports[api], timeout=30)
            self.conns[api] = conn
        data = json.dumps(body).encode() if body is not None else None
        hdrs = dict(headers or {})
        if data is not None:
            hdrs["Content-Type"] = "application/json"
        try:
            conn.request(method, path, body=data, headers=hdrs)
            resp = conn.getresponse()
            raw = resp.read()
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
                self.conns.pop(api, None)
            try:
                return resp.status, json.loads(raw) if raw else None
            except ValueError:
                return resp.status, None
        except (OSError, http.client.HTTPException):
            conn.close()
            self.conns.pop(api, None)
            return 0, None


def one_request(client, stats, args, rng):
    faults = {}
    if args.error_share > 0:
        faults["X-Fail-Share"] = str(args.error_share)
    if args.delay_ms > 0:
        faults["X-Delay-Ms"] = str(args.delay_ms)
    if args.cpu_ms > 0:
        faults["X-Cpu-Ms"] = str(args.cpu_ms)
    r = rng.random()
    customer = rng.randint(1, 100)
    product = rng.randint(1, 50)
    if r < 0.35:  # place an order, directly or through the CRM
        poison = rng.random() < args.poison_share
        headers = dict(faults)
        if poison:
            headers["X-Poison-Event"] = "1"
        body = {"product_id": product, "quantity": rng.randint(1, 5)}
        if r < 0.25:
            api = "shop"
            body["customer_id"] = customer
            status, resp = client.request(api, "POST", "/orders", body, headers)
        else:
            api = "crm"
            status, resp = client.request(api, "POST", f"/customers/{customer}/orders", body, headers)
        if status == 201 and isinstance(resp, dict) and "id" in resp:
            with stats.lock:
                (stats.poison_orders if poison else stats.orders).append(resp["id"])
    elif r < 0.50:
        api = "shop"
        path = "/products" if r < 0.45 else f"/products/{product}"
        status, _ = client.request(api, "GET", path, None, faults)
    elif r < 0.65:
        api = "crm"
        status, _ = client.request(api, "GET", f"/customers/{customer}/orders", None, faults)
    elif r < 0.75:
        api = "crm"
        status, _ = client.request(api, "GET", f"/customers/{customer}", None, faults)
    else:
        api = "mes"
        status, _ = client.request(api, "GET", "/jobs", None, faults)
    stats.record(api, status)


def hold_db_connections(n, ports):
    if n <= 0:
        return []
    import psycopg2  # python3-psycopg2: only this knob needs it
    conns = []
    for port, db in ((ports["TESTBED_SHOP_DB_PORT"], "shop"), (ports["TESTBED_MES_DB_PORT"], "mes")):
        for _ in range(n):
            conns.append(psycopg2.connect(host="127.0.0.1", port=port, dbname=db, user=db))
    return conns


def run(args, ports=None):
    ports = ports or load_ports()
    api_ports = {"shop": ports["TESTBED_SHOP_API_PORT"], "crm": ports["TESTBED_CRM_API_PORT"],
                 "mes": ports["TESTBED_MES_API_PORT"]}
    if args.slow_ms is not None:
        c = Client(api_ports)
        status, _ = c.request("mes", "PUT", f"/admin/slow?ms={args.slow_ms}")
        if status != 200:
            raise SystemExit(f"loadgen: MES slow mode not set (status {status})")
    held = hold_db_connections(args.hold_db_connections, ports)
    stats = Stats()
    total = int(args.rate * args.duration)
    start = time.monotonic() + 0.1
    counter = iter(range(total))
    counter_lock = threading.Lock()

    def worker(seed):
        rng = random.Random(seed)
        client = Client(api_ports)
        while True:
            with counter_lock:
                i = next(counter, None)
            if i is None:
                return
            due = start + i / args.rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            elif now - due > 1.0:
                with stats.lock:
                    stats.late += 1
            one_request(client, stats, args, rng)
            with stats.lock:
                stats.sent += 1

    base_seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    threads = [threading.Thread(target=worker, args=(base_seed + n,), daemon=True)
               for n in range(args.concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    for conn in held:
        conn.close()
    return {
        "rate": args.rate, "duration": args.duration, "error_share": args.error_share,
        "delay_ms": args.delay_ms, "cpu_ms": args.cpu_ms, "poison_share": args.poison_share, "slow_ms": args.slow_ms,
        "seed": base_seed, "sent": stats.sent, "late": stats.late, "elapsed": round(elapsed, 3),
        "responses": stats.responses, "orders": sorted(stats.orders),
        "poison_orders": sorted(stats.poison_orders),
    }


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rate", type=float, default=20.0)
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--error-share", type=float, default=0.0)
    p.add_argument("--delay-ms", type=float, default=0.0)
    p.add_argument("--poison-share", type=float, default=0.0)
    p.add_argument("--cpu-ms", type=float, default=0.0)
    p.add_argument("--slow-ms", type=int, default=None)
    p.add_argument("--hold-db-connections", type=int, default=0)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", help="also write the JSON summary here")
    return p


def main():
    args = parser().parse_args()
    if args.rate <= 0 or args.duration <= 0:
        raise SystemExit("loadgen: --rate and --duration must be positive")
    summary = run(args)
    text = json.dumps(summary, indent=1)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    json.dump({k: v for k, v in summary.items() if k not in ("orders", "poison_orders")},
              sys.stdout, indent=1)
    print(f"\norders created: {len(summary['orders'])} well-formed, "
          f"{len(summary['poison_orders'])} poison")


if __name__ == "__main__":
    main()
