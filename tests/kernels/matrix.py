#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Judges the kernel matrix on the host: parses the "@@kmx" lines each kernel printed (see
tests/kernels/suite.sh), checks them against expect.txt and degraded.txt, and renders
docs/kernels.md.

  matrix.py check --results DIR --kernels "5.10 6.1 host" --tests tests/kernels
  matrix.py docs  --results DIR --kernels "5.10 6.1 host" --tests tests/kernels > docs/kernels.md
"""
import argparse
import datetime
import json
import os
import re
import sys

MARK = "@@kmx "
HOOK_RE = re.compile(r"hook=(\S+)\s+variant=(.*?)\s+mandatory=(yes|no)\s*$")
SAMPLE_RE = re.compile(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\d+)?$")
LABEL_RE = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


class Step:
    def __init__(self, name, cmd):
        self.name, self.cmd, self.out, self.err, self.rc, self.seconds = name, cmd, [], [], None, None

    def hooks(self):
        """[(hook, variant, mandatory)] from `aurum --check` lines."""
        res = []
        for line in self.out:
            m = HOOK_RE.search(line)
            if m:
                res.append((m.group(1), m.group(2).strip(), m.group(3) == "yes"))
        return res


class Run:
    def __init__(self, kid):
        self.id, self.begin, self.end, self.done = kid, {}, None, None
        self.steps, self.facts, self.metrics, self.meta = {}, {}, [], {}
        self.console_tail = []
        self.skipped = []


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def kv(text):
    return dict(p.split("=", 1) for p in text.split() if "=" in p)


def parse_run(results, kid):
    run = Run(kid)
    meta_path = os.path.join(results, kid + ".run")
    if os.path.exists(meta_path):
        run.meta = kv(read(meta_path))
    path = os.path.join(results, kid + ".console.log")
    if not os.path.exists(path):
        return run
    lines = read(path).splitlines()
    run.console_tail = lines[-40:]
    for raw in lines:
        i = raw.find(MARK)
        if i < 0:
            continue
        kind, _, rest = raw[i + len(MARK):].rstrip("\r").partition(" ")
        if kind == "begin":
            run.begin = kv(rest)
        elif kind == "end":
            run.end = kv(rest)
        elif kind == "guest-done":
            run.done = kv(rest)
        elif kind == "skip":
            name, _, why = rest.partition(" ")
            run.skipped.append((name, why))
        elif kind == "fact":
            run.facts.update(kv(rest))
        elif kind == "metric":
            m = SAMPLE_RE.match(rest.strip())
            if m:
                try:
                    value = float(m.group(4))
                except ValueError:
                    continue
                labels = dict((k, v) for k, v in LABEL_RE.findall(m.group(3) or ""))
                run.metrics.append((m.group(1), labels, value))
        elif kind in ("run", "out", "err", "rc"):
            name, _, text = rest.partition(" ")
            if kind == "run":
                run.steps[name] = Step(name, text)
                continue
            step = run.steps.setdefault(name, Step(name, ""))
            if kind == "out":
                step.out.append(text)
            elif kind == "err":
                step.err.append(text)
            else:
                parts = text.split()
                step.rc = int(parts[0])
                step.seconds = float(parts[1]) if len(parts) > 1 else None
    return run


def parse_selector(sel):
    m = re.match(r"^([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?$", sel)
    if not m:
        raise ValueError("bad selector " + sel)
    return m.group(1), dict(LABEL_RE.findall(m.group(3) or ""))


def metric_sum(run, sel):
    name, want = parse_selector(sel)
    found = [v for n, labels, v in run.metrics
             if n == name and all(labels.get(k) == val for k, val in want.items())]
    return sum(found) if found else None


def load_expectations(tests):
    """expect.txt: `<signal> <selector> <op> <python expression over the facts>`."""
    checks = []
    for lineno, line in enumerate(read(os.path.join(tests, "expect.txt")).splitlines(), 1):
        line = line.split("#", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        if not line:
            continue
        m = re.match(r"^(\S+)\s+(\S+?\}|\S+)\s+(>=|<=|==|>|<)\s+(.+)$", line)
        if not m:
            raise SystemExit("expect.txt:%d: cannot parse: %s" % (lineno, line))
        checks.append(m.groups())
    return checks


def load_degraded(tests):
    res = {}
    for line in read(os.path.join(tests, "degraded.txt")).splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            kid, _, signals = line.partition(" ")
            signals = signals.strip()
            res[kid] = set() if signals in ("", "-") else set(s for s in re.split(r"[,\s]+", signals) if s)
    return res


def agent_degraded(run):
    """What the agent itself reports as degraded: every hook with aurum_probe_attached == 0
    ("component/probe"), and aurum_signal_degraded{signal} == 1 should a signal-level report come."""
    res = set("%s/%s" % (l.get("component", "?"), l.get("probe", "?")) for n, l, v in run.metrics
              if n == "aurum_probe_attached" and v == 0)
    res |= set(l.get("signal", "?") for n, l, v in run.metrics if n == "aurum_signal_degraded" and v >= 1)
    return res


def last_words(step):
    """The agent's own last error line (not libbpf's verifier dump)."""
    mine = [l for l in step.err if "libbpf:" not in l]
    return (mine or step.err or ["(nothing on stderr)"])[-1].strip()


def evaluate(expr, facts):
    env = {}
    for k, v in facts.items():
        try:
            env[k] = float(v)
        except ValueError:
            pass
    return eval(expr, {"__builtins__": {}, "min": min, "max": max}, env)


def judge(run, checks, degraded_expected):
    """Returns (failures, notes, smoke_rows). A failure names what broke, on which kernel."""
    fails, notes, rows = [], [], []
    if not run.begin:
        fails.append("the suite never started (boot failure? see the console tail)")
        return fails, notes, rows
    if run.end is None:
        fails.append("the suite did not finish (time-out, hang or panic; see the console tail)")
    probe = run.steps.get("probe")
    if probe is None or probe.rc != 0:
        fails.append("aurum --probe exited %s" % (probe.rc if probe else "never ran"))
    check = run.steps.get("check")
    if check is None:
        fails.append("aurum --check never ran")
    else:
        hooks = check.hooks()
        if not hooks:
            fails.append("aurum --check exited %s without a hook=... line: %s" %
                         (check.rc, last_words(check)))
        missing = [h for h, v, mand in hooks if mand and v.startswith("unavailable")]
        for h in missing:
            fails.append("mandatory hook %s: %s" % (h, dict((x[0], x[1]) for x in hooks)[h]))
        if check.rc != 0 and hooks and not missing:
            fails.append("aurum --check exited %s with every mandatory hook attached" % check.rc)
        if check.rc == 0 and missing:
            fails.append("aurum --check exited 0 although mandatory hooks failed")
    for name, step in sorted(run.steps.items()):
        if not name.startswith("check-off-"):
            continue
        feature = name[len("check-off-"):]
        hooks = step.hooks()
        if not hooks:
            # Forcing off what a mandatory hook needs may stop the agent before it prints a line;
            # that is a fallback table ending, not a breakage, as long as it says so and exits non-zero.
            if step.rc == 0:
                fails.append("--force-off %s: exit 0 without a hook=... line" % feature)
            else:
                notes.append("--force-off %s: exit %s: %s" % (feature, step.rc, last_words(step)))
            continue
        for h, v, mand in hooks:
            if set(v.split("+")) & set(feature.split("+")):
                fails.append("--force-off %s: hook %s still uses %s" % (feature, h, v))
        missing = [h for h, v, mand in hooks if mand and v.startswith("unavailable")]
        if (step.rc != 0) != bool(missing):
            fails.append("--force-off %s: exit code %s does not match the hook lines" % (feature, step.rc))
        if missing:
            notes.append("--force-off %s leaves mandatory %s unavailable (exit %s)" %
                         (feature, ",".join(missing), step.rc))
    for name, why in run.skipped:
        notes.append("%s skipped: %s" % (name, why))
    smoke = run.steps.get("smoke-agent")
    if run.facts.get("agent_healthy") != "1":
        fails.append("smoke: the agent never answered /healthz")
    if run.facts.get("scrape_ok") != "1":
        fails.append("smoke: /metrics could not be scraped")
    if smoke is not None and smoke.rc not in (0, None):
        fails.append("smoke: the agent exited %s on SIGTERM (0 expected)" % smoke.rc)
    # The ground truth must itself be sound: a port already taken on the host would make every
    # "== http_200" hold with zero requests.
    f = run.facts
    if "http_200_wanted" in f and (f.get("http_200") != f["http_200_wanted"] or
                                   f.get("http_404") != f.get("http_404_wanted")):
        fails.append("smoke workload: %s/%s requests got 200 and %s/%s got 404 (busybox httpd did not "
                     "serve: port taken?)" % (f.get("http_200"), f["http_200_wanted"], f.get("http_404"),
                                              f.get("http_404_wanted")))
    if "burn_cpu_seconds" in f and float(f["burn_cpu_seconds"]) < 0.3:
        fails.append("smoke workload: the burner got only %s s of CPU" % f["burn_cpu_seconds"])
    got = agent_degraded(run)
    if run.facts.get("scrape_ok") == "1" and got != degraded_expected:
        fails.append("degraded signals: agent reports {%s}, degraded.txt expects {%s}" %
                     (",".join(sorted(got)), ",".join(sorted(degraded_expected))))
    if run.facts.get("scrape_ok") != "1":
        return fails, notes, rows
    families = set(n for n, l, v in run.metrics)
    for signal, sel, op, expr in checks:
        # "signal?": the signal has not landed yet; its checks apply as soon as its metric
        # family appears in /metrics (then drop the "?": absence must fail again).
        if signal.endswith("?"):
            name = parse_selector(sel)[0]
            if not any(f == name or name.startswith(f + "_") for f in families):
                rows.append((signal, sel, op, expr, None, None, "pending"))
                continue
        value = metric_sum(run, sel)
        try:
            bound = evaluate(expr, run.facts)
        except Exception as e:  # a fact the suite did not print
            bound = None
            err = str(e)
        if signal in degraded_expected:
            rows.append((signal, sel, op, expr, value, bound, "degraded"))
            continue
        if bound is None:
            ok = False
            why = "cannot evaluate %s: %s" % (expr, err)
        elif value is None:
            ok = False
            why = "%s absent from /metrics" % sel
        else:
            ok = {">=": value >= bound, "<=": value <= bound, "==": abs(value - bound) < 1e-9,
                  ">": value > bound, "<": value < bound}[op]
            why = "%s = %g, expected %s %s (= %g)" % (sel, value, op, expr, bound)
        rows.append((signal, sel, op, expr, value, bound, "ok" if ok else "FAIL"))
        if not ok:
            fails.append("smoke %s: %s" % (signal, why))
    # the rows already show every metric check; keep the failure list to one line per signal
    seen, short = set(), []
    for f in fails:
        key = f.split(":")[0] if f.startswith("smoke ") else f
        if key not in seen:
            seen.add(key)
            short.append(f)
    fails[:] = short
    return fails, notes, rows


def load(args):
    kids = args.kernels.split()
    runs = [parse_run(args.results, k) for k in kids]
    checks = load_expectations(args.tests)
    degraded = load_degraded(args.tests)
    judged = {}
    for run in runs:
        judged[run.id] = judge(run, checks, degraded.get(run.id, set()))
    return runs, judged, degraded


def cmd_check(args):
    runs, judged, _ = load(args)
    total_fail = 0
    for run in runs:
        fails, notes, rows = judged[run.id]
        kernel = run.begin.get("kernel", "?")
        print("== %s (%s): %s, %s s" % (run.id, kernel, "ok" if not fails else "%d failure(s)" % len(fails),
                                        run.meta.get("wall_seconds", "?")))
        check = run.steps.get("check")
        for h, v, mand in (check.hooks() if check else []):
            print("   hook %-28s %-40s %s" % (h, v, "mandatory" if mand else "optional"))
        for r in rows:
            if r[6] in ("pending", "degraded"):
                print("   %-8s %-9s %s" % (r[6], r[0], r[1]))
                continue
            print("   %-8s %-9s %s = %s, expected %s %s" % (r[6], r[0], r[1], r[4], r[2],
                                                          r[5] if r[5] is None else "%g" % r[5]))
        for n in notes:
            print("   note: " + n)
        for f in fails:
            print("   FAIL: " + f)
        if fails:
            total_fail += 1
            # The tail of the unforced check (a verifier rejection ends there) and of the agent.
            for name in ("check", "smoke-agent"):
                step = run.steps.get(name)
                if step is not None and (step.rc not in (0, None) or name == "smoke-agent"):
                    for line in step.err[-25 if name == "check" else -10:]:
                        print("   | %s: %s" % (name, line[:300]))
            if not run.end:
                print("   console tail:")
                for line in run.console_tail[-20:]:
                    print("   | " + line)
    with open(os.path.join(args.results, "summary.json"), "w") as f:
        json.dump({r.id: {"kernel": r.begin.get("kernel"), "failures": judged[r.id][0],
                          "hooks": r.steps["check"].hooks() if "check" in r.steps else []}
                   for r in runs}, f, indent=1)
    print("kernel matrix: %d of %d kernels passed" % (len(runs) - total_fail, len(runs)))
    return 1 if total_fail else 0


def cmd_docs(args):
    runs, judged, degraded = load(args)
    cols = [r for r in runs if r.begin]
    head = lambda r: "%s (%s)" % (r.id if r.id != "host" else "host", r.begin.get("kernel", "?"))
    w = sys.stdout.write
    pins = {}
    for line in read(os.path.join(args.tests, "kernels.txt")).splitlines():
        if line.strip() and not line.startswith("#"):
            p = line.split(None, 4)
            pins[p[0]] = (p[1], p[2], p[4].strip() if len(p) > 4 else "")
    matrix_run = kv(read(os.path.join(args.results, "matrix.run"))) \
        if os.path.exists(os.path.join(args.results, "matrix.run")) else {}
    w("<!-- Generated by scripts/kernel-matrix.sh --docs from the matrix output; do not edit. -->\n")
    w("# Kernels\n\n")
    w("Which hook variant aurum uses on each kernel of the matrix (issue 8), as printed by "
      "`aurum --check` on that kernel, and what the smoke run measured there. The Debian kernels "
      "run under QEMU (TCG, 1 vCPU, 1 GiB) with the agent in a busybox initramfs; the host column "
      "is the same suite run natively on the development VM. Pins: `tests/kernels/kernels.txt`; "
      "expectations: `tests/kernels/expect.txt` and `tests/kernels/degraded.txt`. Regenerate with "
      "`scripts/kernel-matrix.sh --docs`.\n\n")
    w("Generated %s UTC%s; whole matrix %s s.\n\n" % (
        datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M"),
        " from %s" % args.source if args.source else "", matrix_run.get("total_seconds", "?")))
    w("## Kernels\n\n| id | kernel | package | boot to init (s) | whole run (s) | result |\n|---|---|---|---|---|---|\n")
    for r in runs:
        pkg = pins.get(r.id, ("host kernel", "", ""))
        fails = judged[r.id][0]
        w("| %s | %s | %s %s | %s | %s | %s |\n" % (
            r.id, r.begin.get("kernel", "?"), pkg[0], pkg[1],
            r.begin.get("uptime", "-") if r.id != "host" else "-", r.meta.get("wall_seconds", "?"),
            "pass" if not fails else "**%d failure(s)**" % len(fails)))
    # feature probes
    probes, feats = {}, []
    for r in cols:
        for line in (r.steps["probe"].out if "probe" in r.steps else []):
            d = kv(line)
            if "feature" in d:
                if d["feature"] not in feats:
                    feats.append(d["feature"])
                probes[(r.id, d["feature"])] = d.get("available", "?")
    if feats:
        w("\n## Feature probes (`aurum --probe`)\n\n| feature | %s |\n|---|%s\n" %
          (" | ".join(head(r) for r in cols), "---|" * len(cols)))
        for f in feats:
            w("| %s | %s |\n" % (f, " | ".join(probes.get((r.id, f), "-") for r in cols)))
    # hook x kernel, default selection
    hooks, mand = [], {}
    for r in cols:
        if "check" in r.steps:
            for h, v, m in r.steps["check"].hooks():
                if h not in hooks:
                    hooks.append(h)
                mand[h] = mand.get(h, False) or m
    w("\n## Hook variant chosen (no feature forced off)\n\n| hook | mandatory | %s |\n|---|---|%s\n" %
      (" | ".join(head(r) for r in cols), "---|" * len(cols)))
    for h in hooks:
        cells = []
        for r in cols:
            d = dict((x[0], x[1]) for x in r.steps["check"].hooks()) if "check" in r.steps else {}
            cells.append(d.get(h, "-").replace("|", "/"))
        w("| %s | %s | %s |\n" % (h, "yes" if mand[h] else "no", " | ".join(cells)))
    # forced runs
    forced = sorted(set(n[len("check-off-"):] for r in cols
                        for n in list(r.steps) + [x[0] for x in r.skipped] if n.startswith("check-off-")))
    if forced:
        w("\n## With features forced off (`aurum --check --force-off <feature>[,<feature>]`)\n\n"
          "One run per feature that a chosen variant uses, then the fallback chains walked down (every feature chosen so far forced off), then every other switch the kernel has, while the time budget lasts (KMX_FORCE_BUDGET). Hooks whose variant differs from the unforced run; `=` means none changed.\n\n"
          "| forced off | %s |\n|---|%s\n" % (" | ".join(head(r) for r in cols), "---|" * len(cols)))
        for f in forced:
            cells = []
            for r in cols:
                base = dict((x[0], x[1]) for x in r.steps["check"].hooks()) if "check" in r.steps else {}
                st = r.steps.get("check-off-" + f)
                if st is None:
                    skipped = any(x[0] == "check-off-" + f for x in r.skipped)
                    cells.append("skipped (time budget)" if skipped else "-")
                    continue
                if not st.hooks():
                    cells.append("agent stopped (exit %s)" % st.rc)
                    continue
                diff = ["%s: %s" % (h, v.replace("|", "/")) for h, v, m in st.hooks() if base.get(h) != v]
                cells.append(("<br>".join(diff) or "=") + ("" if st.rc == 0 else " (exit %s)" % st.rc))
            w("| %s | %s |\n" % (f, " | ".join(cells)))
    # coverage: every variant that loaded somewhere
    seen = {}
    for r in cols:
        for name, st in r.steps.items():
            if name == "check" or name.startswith("check-off-"):
                for h, v, m in st.hooks():
                    if not v.startswith("unavailable"):
                        seen.setdefault((h, v), set()).add(r.id)
    w("\n## Every variant that loaded and attached somewhere in the matrix\n\n| hook | variant | kernels |\n|---|---|---|\n")
    for (h, v), ks in sorted(seen.items()):
        w("| %s | %s | %s |\n" % (h, v, ", ".join(k for k in [r.id for r in cols] if k in ks)))
    # smoke
    w("\n## Smoke run: measured values (expected bound in brackets)\n\n| signal | metric | %s |\n|---|---|%s\n" %
      (" | ".join(head(r) for r in cols), "---|" * len(cols)))
    rows_by_key = {}
    for r in cols:
        for row in judged[r.id][2]:
            rows_by_key.setdefault((row[0], row[1], row[2], row[3]), {})[r.id] = row
    for key, per in rows_by_key.items():
        cells = []
        for r in cols:
            row = per.get(r.id)
            if row is None:
                cells.append("-")
            elif row[6] in ("degraded", "pending"):
                cells.append(row[6])
            else:
                cells.append("%s %s [%s %s]" % ("ok" if row[6] == "ok" else "**FAIL**",
                                                "absent" if row[4] is None else "%g" % row[4], key[2],
                                                "?" if row[5] is None else "%g" % row[5]))
        w("| %s | `%s` | %s |\n" % (key[0], key[1], " | ".join(cells)))
    w("\n## Signals the agent reports as degraded\n\n| kernel | expected (degraded.txt) | reported |\n|---|---|---|\n")
    for r in cols:
        w("| %s | %s | %s |\n" % (r.id, ", ".join(sorted(degraded.get(r.id, set()))) or "none",
                                  ", ".join(sorted(agent_degraded(r))) or "none"))
    fails = [(r.id, f) for r in runs for f in judged[r.id][0]]
    if fails:
        w("\n## Failures of this run\n\n")
        for kid, f in fails:
            w("- %s: %s\n" % (kid, f))
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("command", choices=["check", "docs"])
    ap.add_argument("--results", required=True)
    ap.add_argument("--kernels", required=True)
    ap.add_argument("--tests", required=True)
    ap.add_argument("--source", default="", help="what the agent was built from, for the docs")
    args = ap.parse_args()
    return cmd_check(args) if args.command == "check" else cmd_docs(args)


if __name__ == "__main__":
    sys.exit(main())
