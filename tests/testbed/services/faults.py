# SPDX-License-Identifier: Apache-2.0
"""Fault injection shared by the Python services: the load generator asks for errors and latency
per request, so that every alert can be triggered on purpose without restarting anything.

  X-Fail-Share: 0.2   (or ?fail_share=0.2)  answer 500 with that probability, before any side effect
  X-Delay-Ms: 150     (or ?delay_ms=150)    sleep that long before answering
  X-Cpu-Ms: 20        (or ?cpu_ms=20)       burn that much CPU (busy loop) before answering
"""
import random
import time
from urllib.parse import parse_qs


def _pick(headers, query, header, param):
    value = headers.get(header)
    if value is None:
        values = query.get(param)
        value = values[0] if values else None
    return value


def decide(headers, raw_query):
    """Returns (fail, delay_seconds, cpu_seconds) for one request."""
    query = parse_qs(raw_query or "")
    try:
        share = float(_pick(headers, query, "X-Fail-Share", "fail_share") or 0)
    except ValueError:
        share = 0.0
    try:
        delay_ms = float(_pick(headers, query, "X-Delay-Ms", "delay_ms") or 0)
    except ValueError:
        delay_ms = 0.0
    try:
        cpu_ms = float(_pick(headers, query, "X-Cpu-Ms", "cpu_ms") or 0)
    except ValueError:
        cpu_ms = 0.0
    return random.random() < share, max(0.0, delay_ms) / 1000.0, max(0.0, cpu_ms) / 1000.0


def apply_delay(delay_seconds, cpu_seconds=0.0):
    if delay_seconds > 0:
        time.sleep(delay_seconds)
    if cpu_seconds > 0:
        end = time.thread_time() + cpu_seconds
        while time.thread_time() < end:
            pass
