#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""The testbed's end-to-end test steps (run with /usr/bin/python3; ctest drives them, see
tests.cmake). The ground truth is what the load generator was answered and what the components
themselves hold (the databases' rows, RabbitMQ's own counters, the S3 bucket's listing); aurum's
/metrics are checked against the plan's table in plan_metrics.tsv.

  e2e.py load           baseline, run the load (scraping aurum and RabbitMQ midway), save the truth
  e2e.py check-system   orders in Shop DB, jobs in MES DB, poison events in the DLQ, invoices in S3
  e2e.py check-plan     every row of the plan's table has a live series in aurum's /metrics
  e2e.py check-down     nothing of the testbed runs any more, none of its ports listens
"""
import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "services"))
import loadgen  # noqa: E402
import topology  # noqa: E402
from s3client import S3Client  # noqa: E402

PORTS = loadgen.load_ports()
STATE = subprocess.run([os.path.join(HERE, "state-dir.sh")], capture_output=True, text=True,
                       check=True).stdout.strip()
TRUTH = os.path.join(STATE, "e2e-truth.json")
DURING = os.path.join(STATE, "metrics-during-load.txt")
RABBIT_DURING = os.path.join(STATE, "rabbitmq-during-load.txt")
DLQ_READS = os.path.join(STATE, "dlq-reads.txt")


def fetch(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


# ------------------------------------------------------------------------------------------
# Prometheus text format, enough for exporters' output: name{labels} value [timestamp]

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)')
LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def parse_metrics(text):
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            continue
        labels = {k: v.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
                  for k, v in LABEL.findall(m.group(2) or "")}
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        samples.append((m.group(1), labels, value))
    return samples


def select(samples, name, matchers):
    return [(labels, v) for n, labels, v in samples
            if n == name and all(labels.get(k) == want for k, want in matchers.items())]


def parse_matchers(text):
    return dict(LABEL.findall(text or ""))


# ------------------------------------------------------------------------------------------
# Ground truth from the components themselves

def dead_letter_order_ids():
    """{order id: copies} of the events in the dead-letter queue. Reads every message
    without acking and closes the channel, so that RabbitMQ puts them all back."""
    import pika
    conn = pika.BlockingConnection(pika.URLParameters(
        f"amqp://guest:guest@127.0.0.1:{PORTS['TESTBED_AMQP_PORT']}/%2F"))
    ids = {}
    try:
        ch = conn.channel()
        while True:
            method, _, body = ch.basic_get(topology.DLQ, auto_ack=False)
            if method is None:
                break
            m = re.search(rb"order (\d+)", body) or re.search(rb'"order_id": (\d+)', body)
            key = int(m.group(1)) if m else None  # None: not an order event (counted all the same)
            ids[key] = ids.get(key, 0) + 1
    finally:
        conn.close()
    return ids


def rabbit_global_dead_lettered():
    """rabbitmq_global_messages_dead_lettered_rejected_total where the broker has it (3.11+)."""
    text = fetch(f"http://127.0.0.1:{PORTS['TESTBED_RABBITMQ_PROMETHEUS_PORT']}/metrics")
    vals = [v for n, _, v in parse_metrics(text)
            if n == "rabbitmq_global_messages_dead_lettered_rejected_total"]
    return sum(vals) if vals else None


def db(port, dbname, user):
    import psycopg2
    return psycopg2.connect(host="127.0.0.1", port=port, dbname=dbname, user=user)


def aurum_url():
    return f"http://127.0.0.1:{PORTS['TESTBED_AURUM_PORT']}/metrics"


# ------------------------------------------------------------------------------------------

def cmd_load(args):
    baseline = {"dead_lettered": rabbit_global_dead_lettered()}

    def scrape_midway():
        time.sleep(args.duration * 0.7)
        for url, path in ((aurum_url(), DURING),
                          (f"http://127.0.0.1:{PORTS['TESTBED_RABBITMQ_PROMETHEUS_PORT']}/metrics",
                           RABBIT_DURING)):
            try:
                text = fetch(url)
            except OSError as e:
                text = f"# scrape failed: {e}\n"
            with open(path, "w") as f:
                f.write(text)

    scraper = threading.Thread(target=scrape_midway, daemon=True)
    scraper.start()
    lg = loadgen.parser().parse_args([
        "--rate", str(args.rate), "--duration", str(args.duration),
        "--error-share", str(args.error_share), "--poison-share", str(args.poison_share),
        "--delay-ms", str(args.delay_ms), "--slow-ms", str(args.slow_ms)])
    summary = loadgen.run(lg, PORTS)
    scraper.join()
    # Slow mode off again, so that what is held drains.
    urllib.request.urlopen(urllib.request.Request(
        f"http://127.0.0.1:{PORTS['TESTBED_MES_API_PORT']}/admin/slow?ms=0", method="PUT"),
        timeout=10).read()
    summary["baseline"] = baseline
    if os.path.exists(DLQ_READS):
        os.remove(DLQ_READS)
    # Whether this test started the testbed (else it shares one that runs others' load too).
    summary["owner"] = os.environ.get("AURUM_TESTBED_OWNER", "1") == "1"
    with open(TRUTH, "w") as f:
        json.dump(summary, f)
    print(json.dumps({k: v for k, v in summary.items() if k not in ("orders", "poison_orders")}))
    print(f"load: {len(summary['orders'])} orders, {len(summary['poison_orders'])} with poison events")
    return 0


class Checks:
    def __init__(self):
        self.failures = []

    def check(self, ok, what):
        print(("ok      " if ok else "FAILED  ") + what)
        if not ok:
            self.failures.append(what)


def cmd_check_system(args):
    with open(TRUTH) as f:
        truth = json.load(f)
    c = Checks()
    orders, poison = truth["orders"], truth["poison_orders"]
    created = orders + poison
    c.check(len(orders) > 0 and len(poison) > 0,
            f"load created orders: {len(orders)} well-formed, {len(poison)} poison")
    for api, per in sorted(truth["responses"].items()):
        unexpected = {s: n for s, n in per.items() if s not in ("200", "201", "500")}
        c.check(not unexpected, f"{api} API answered only 200/201/500: {per}")
        if truth["error_share"] > 0:
            c.check(per.get("500", 0) > 0, f"{api} API answered injected 500s ({per.get('500', 0)})")

    # Shop DB: every order the load was told about is there, with its poison flag.
    with db(PORTS["TESTBED_SHOP_DB_PORT"], "shop", "shop") as conn, conn.cursor() as cur:
        cur.execute("SELECT id, poison_event FROM orders WHERE id = ANY(%s)", (created,))
        rows = dict(cur.fetchall())
    c.check(len(rows) == len(created), f"Shop DB holds {len(rows)} of the {len(created)} orders created")
    c.check(all(rows.get(i) is True for i in poison) and all(rows.get(i) is False for i in orders),
            "Shop DB marks exactly the poison orders as such")

    # MES: wait until this run's events are settled (slow mode holds them a while): a job per
    # well-formed order, each poison event in the dead-letter queue. Compared by order id, so that
    # someone else's load on a shared testbed (tests/operate reuses a running one) cannot blur it.
    deadline = time.time() + args.drain_timeout
    reads = []
    while True:
        with db(PORTS["TESTBED_MES_DB_PORT"], "mes", "mes") as conn, conn.cursor() as cur:
            cur.execute("SELECT order_id FROM jobs WHERE order_id = ANY(%s)", (created,))
            jobs = {r[0] for r in cur.fetchall()}
        dead = dead_letter_order_ids()
        reads.append(sum(dead.values()))
        if (jobs >= set(orders) and dead.keys() >= set(poison)) or time.time() > deadline:
            break
        time.sleep(0.5)
    with open(DLQ_READS, "a") as f:  # each read is a delivery from the DLX that aurum may count
        f.write(f"{sum(reads)}\n")
    c.check(jobs == set(orders), f"MES DB has a job for each of the {len(orders)} well-formed orders "
            f"and none for the poison ones (jobs found: {len(jobs)})")
    missing = sorted(set(poison) - dead.keys())
    c.check(not missing, f"RabbitMQ: {topology.DLQ} holds the event of each of the {len(poison)} "
            f"poison orders" + (f" (missing: {missing[:10]})" if missing else ""))
    wrong = sorted(i for i in dead if i in set(orders))
    c.check(not wrong, f"no well-formed order's event was dead-lettered (found: {wrong[:10]})")
    dupes = sorted(i for i in poison if dead.get(i, 0) > 1)
    c.check(not dupes, f"each poison event dead-lettered once (more than once: {dupes[:10]})")
    if truth["baseline"]["dead_lettered"] is not None:
        dl = rabbit_global_dead_lettered() - truth["baseline"]["dead_lettered"]
        exact = truth.get("owner", True)
        ok = dl == len(poison) if exact else dl >= len(poison)
        c.check(ok, f"RabbitMQ's rabbitmq_global_messages_dead_lettered_rejected_total grew by {dl:g} "
                f"({'=' if exact else '>='} {len(poison)} poison events"
                + ("" if exact else "; a shared testbed: others' load counts too") + ")")

    # In flight: RabbitMQ's own gauge midway through the slow-mode load.
    if truth.get("slow_ms"):
        during = parse_metrics(open(RABBIT_DURING).read()) if os.path.exists(RABBIT_DURING) else []
        unacked = sum(v for _, v in select(during, "rabbitmq_queue_messages_unacked", {}))
        c.check(unacked > 0, f"RabbitMQ counted {unacked:g} unacked messages midway (slow mode)")

    # S3: an invoice object per order.
    s3 = S3Client("127.0.0.1", PORTS["TESTBED_S3_PORT"], "S3RVER", "S3RVER")
    keys = {k for k, size in s3.list_objects("invoices", "invoices/") if size > 0}
    missing = [i for i in created if f"invoices/{i}.json" not in keys]
    c.check(not missing, f"S3 bucket invoices holds an invoice for each of the {len(created)} orders"
            + (f" (missing: {missing[:10]})" if missing else ""))

    # The demo's Prometheus scrapes the broker (and the agent), and its Alertmanager is ready.
    if os.environ.get("AURUM_DEMO_NO_PROMETHEUS") != "1":
        prom = f"http://127.0.0.1:{PORTS['TESTBED_PROMETHEUS_PORT']}"
        deadline = time.time() + 20
        while True:
            try:
                targets = json.loads(fetch(prom + "/api/v1/targets"))["data"]["activeTargets"]
                health = {t["labels"]["job"]: t["health"] for t in targets}
            except (OSError, ValueError, KeyError) as e:
                health = {"error": str(e)}
            if health.get("rabbitmq") == "up" or time.time() > deadline:
                break
            time.sleep(1)
        c.check(health.get("rabbitmq") == "up", f"Prometheus scrapes the broker (targets: {health})")
        try:
            fetch(f"http://127.0.0.1:{PORTS['TESTBED_ALERTMANAGER_PORT']}/-/ready")
            am = True
        except OSError:
            am = False
        c.check(am, "Alertmanager is ready")

    # The agent's config names the components on the ports the testbed uses.
    import yaml
    with open(os.path.join(HERE, "aurum.yaml")) as f:
        conf = yaml.safe_load(f)
    names = {r["name"] for r in conf["services"]["rules"]}
    plan = {"shop-api", "crm-api", "mes-api", "shop-db", "mes-db", "message-queue", "s3-storage"}
    c.check(plan <= names, f"aurum.yaml names the seven components (missing: {sorted(plan - names)})")
    urls = [e["url"] for e in conf.get("s3", {}).get("endpoints", [])]
    c.check(f"http://127.0.0.1:{PORTS['TESTBED_S3_PORT']}" in urls, "aurum.yaml's S3 endpoint is the testbed's")
    c.check(f"{PORTS['TESTBED_EPMD_PORT']}" in json.dumps(conf), "aurum.yaml's epmd port is the testbed's")
    return report(c, "system")


def cmd_check_plan(args):
    try:
        now = parse_metrics(fetch(aurum_url()))
    except OSError as e:
        print(f"FAILED  aurum's /metrics at {aurum_url()} cannot be read: {e}")
        print("        (is the agent built and running? scripts/demo.sh up says why not; its log: "
              f"{os.path.join(STATE, 'log', 'aurum.log')})")
        return 1
    during = parse_metrics(open(DURING).read()) if os.path.exists(DURING) else []
    c = Checks()
    with open(os.path.join(HERE, "plan_metrics.tsv")) as f:
        rows = [line.rstrip("\n").split("\t") for line in f
                if line.strip() and not line.startswith("#")]
    for component, row, metric, matchers, expect, by in rows:
        want = parse_matchers(matchers)
        if by == "service_name":
            want["service_name"] = component
        found = select(now, metric, want) + select(during, metric, want)
        sel = metric + "{" + ",".join(f'{k}="{v}"' for k, v in want.items()) + "}"
        if not found:
            c.check(False, f"{component} / {row}: no series {sel}")
        elif expect == "positive" and not any(v > 0 for _, v in found):
            c.check(False, f"{component} / {row}: {sel} is 0 after load")
        else:
            c.check(True, f"{component} / {row}: {sel} = {max(v for _, v in found):g}")
    compare_with_truth(now, during)
    return report(c, "plan rows")


def compare_with_truth(now, during):
    """Informational, not a pass/fail: aurum's figures next to the ground truth this run has, so
    that the signal issues can see where they stand on the full system."""
    print("\naurum vs ground truth (informational):")
    try:
        with open(TRUTH) as f:
            truth = json.load(f)
    except OSError:
        print("  no ground truth of a load run")
        return

    def total(samples, name, want):
        return sum(v for _, v in select(samples, name, want))

    # 500s come only from the load generator's injected failures (the CRM does not pass the share
    # on, health checks never answer 500), so each API's count is exact.
    for api, svc in (("shop", "shop-api"), ("crm", "crm-api"), ("mes", "mes-api")):
        got = total(now, "http_server_request_duration_seconds_count",
                    {"service_name": svc, "http_response_status_code": "500"})
        print(f"  {svc}: HTTP 500 aurum {got:g}, load generator {truth['responses'].get(api, {}).get('500', 0)}")
    got = total(now, "aurum_amqp_dead_lettered_messages_total", {"service_name": "message-queue"})
    try:
        with open(DLQ_READS) as f:
            reads = sum(int(x) for x in f.read().split())
    except OSError:
        reads = 0
    print(f"  message-queue: dead letters aurum {got:g}, poison events {len(truth['poison_orders'])}"
          f" rejected; the system check read {reads} messages back from the DLQ (deliveries from"
          " the DLX, which issue 5 also counts)")
    rabbit = parse_metrics(open(RABBIT_DURING).read()) if os.path.exists(RABBIT_DURING) else []
    print(f"  message-queue: unacked midway aurum "
          f"{total(during, 'aurum_amqp_unacked_messages', {'service_name': 'message-queue'}):g}, "
          f"RabbitMQ {total(rabbit, 'rabbitmq_queue_messages_unacked', {}):g} (scraped within ms)")
    try:
        s3 = S3Client("127.0.0.1", PORTS["TESTBED_S3_PORT"], "S3RVER", "S3RVER")
        size = sum(sz for _, sz in s3.list_objects("invoices"))
        print(f"  s3-storage: bucket bytes aurum "
              f"{total(now, 'aurum_s3_bucket_size_bytes', {'bucket': 'invoices'}):g}, listing {size}"
              " (aurum lists every interval_seconds)")
    except (OSError, RuntimeError) as e:
        print(f"  s3-storage: listing failed: {e}")
    for svc, port, dbname in (("shop-db", PORTS["TESTBED_SHOP_DB_PORT"], "shop"),
                              ("mes-db", PORTS["TESTBED_MES_DB_PORT"], "mes")):
        try:
            with db(port, dbname, dbname) as conn, conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
                backends = cur.fetchone()[0] - 1  # less this query's own connection
            got = total(now, "aurum_tcp_active_connections", {"service_name": svc, "direction": "inbound"})
            print(f"  {svc}: connections aurum {got:g}, pg_stat_activity {backends} (before this check connected)")
        except Exception as e:  # informational only
            print(f"  {svc}: {e}")


def cmd_check_down(args):
    c = Checks()
    mark = f"AURUM_TESTBED_MARK={STATE}".encode()
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                env = f.read().split(b"\0")
            with open(f"/proc/{pid}/status") as f:
                zombie = any(line.startswith("State:") and "Z" in line for line in f)
            if mark in env and not zombie:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
                left.append(f"{pid} {cmdline[:100]}")
        except OSError:
            continue
    c.check(not left, f"no process of the testbed is left (found: {left})")
    listening = subprocess.run(["ss", "-Htln"], capture_output=True, text=True).stdout
    open_ports = {int(m.group(1)) for m in re.finditer(r":(\d+)\s", listening)}
    busy = sorted(k for k, p in PORTS.items() if p in open_ports)
    c.check(not busy, f"no testbed port listens (listening: {busy})")
    return report(c, "down")


def report(c, what):
    if c.failures:
        print(f"\n{len(c.failures)} {what} check(s) failed:")
        for f in c.failures:
            print("  - " + f)
        return 1
    print(f"\nall {what} checks passed")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    load = sub.add_parser("load")
    load.add_argument("--rate", type=float, default=40)
    load.add_argument("--duration", type=float, default=15)
    load.add_argument("--error-share", type=float, default=0.1)
    load.add_argument("--poison-share", type=float, default=0.1)
    load.add_argument("--delay-ms", type=float, default=5)
    load.add_argument("--slow-ms", type=int, default=2000)
    sys_ = sub.add_parser("check-system")
    sys_.add_argument("--drain-timeout", type=float, default=30)
    sub.add_parser("check-plan")
    sub.add_parser("check-down")
    args = p.parse_args()
    return {"load": cmd_load, "check-system": cmd_check_system, "check-plan": cmd_check_plan,
            "check-down": cmd_check_down}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
