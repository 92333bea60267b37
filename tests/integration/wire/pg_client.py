#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""PostgreSQL client for tests/integration/test_pgsql.cpp (Debian's python3-psycopg2).

Runs --simple successful simple-protocol queries and --fail queries on a table that does not
exist, over TCP, and writes what the client itself saw to --out as JSON: successes and errors by
SQLSTATE class, as libpq reported them. Then opens --hold idle connections, prints "held" and
stays until killed, so that the test can count connections on both sides.
"""
import argparse
import json
import sys
import time

import psycopg2


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--simple", type=int, default=0)
    ap.add_argument("--fail", type=int, default=0)
    ap.add_argument("--hold", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    dsn = f"host=127.0.0.1 port={a.port} user=postgres dbname=postgres sslmode=disable"

    conn = psycopg2.connect(dsn)
    # Autocommit: psycopg2 would otherwise send its own BEGIN before the first statement.
    conn.autocommit = True
    ok, errors = 0, {}
    with conn.cursor() as cur:
        for i in range(a.simple):
            cur.execute(f"SELECT {i} + 1")  # no parameters: one Query ('Q') message each
            cur.fetchall()
            ok += 1
        for _ in range(a.fail):
            try:
                cur.execute("SELECT * FROM aurum_no_such_table")
                ok += 1
            except psycopg2.Error as e:
                cls = (e.pgcode or "")[:2]
                errors[cls] = errors.get(cls, 0) + 1
    conn.close()
    with open(a.out, "w") as f:
        json.dump({"ok": ok, "errors": errors}, f)

    held = [psycopg2.connect(dsn) for _ in range(a.hold)]
    print("held", flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    sys.exit(main())
