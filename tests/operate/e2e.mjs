// SPDX-License-Identifier: Apache-2.0
// End-to-end steps against a running Prometheus (see e2e.sh).
//   node e2e.mjs configs <prom-port> <am-port> <hook-port> <aurum-port> <outdir>
//       Prometheus and Alertmanager configs derived from deploy/ (only addresses and timings change)
//   node e2e.mjs sweep <prometheus-url>
//       every dashboard panel expression, dashboard variable and recording rule (read from the
//       files) must return data; each one that does not is named, with where it comes from
//   node e2e.mjs wait-alert <webhook.jsonl> <alertname> <firing|resolved> <timeout-s> [path]
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { ROOT } from "./lib.mjs";
import { dashboardExprs, variableQueries, ruleExprs, substitute } from "./promql.mjs";

const [cmd, ...args] = process.argv.slice(2);

if (cmd === "configs") {
  const [promPort, amPort, hookPort, aurumPort, out] = args;
  const prom = YAML.parse(fs.readFileSync(path.join(ROOT, "deploy/prometheus/prometheus.yml"), "utf8"));
  // Faster cycles than production (15 s) so that the test takes minutes, not tens of minutes.
  prom.global.scrape_interval = "5s";
  prom.global.scrape_timeout = "4s";
  prom.global.evaluation_interval = "5s";
  prom.rule_files = [path.join(ROOT, "alerting/rules/*.yml")];
  prom.alerting.alertmanagers = [{ static_configs: [{ targets: [`127.0.0.1:${amPort}`] }] }];
  for (const job of prom.scrape_configs) {
    if (job.job_name === "aurum") job.static_configs = [{ targets: [`127.0.0.1:${aurumPort}`], labels: { env: "e2e" } }];
    else if (job.job_name === "prometheus") job.static_configs = [{ targets: [`127.0.0.1:${promPort}`] }];
  }
  fs.writeFileSync(path.join(out, "prometheus.yml"), YAML.stringify(prom));
  const am = YAML.parse(fs.readFileSync(path.join(ROOT, "deploy/alertmanager/alertmanager.yml"), "utf8"));
  Object.assign(am.route, { group_wait: "5s", group_interval: "10s" });
  for (const r of am.receivers)
    for (const w of r.webhook_configs || []) w.url = w.url.replace(/^http:\/\/[^/]+/, `http://127.0.0.1:${hookPort}`);
  fs.writeFileSync(path.join(out, "alertmanager.yml"), YAML.stringify(am));
} else if (cmd === "sweep") {
  const base = args[0];
  const query = async (expr) => {
    const res = await fetch(`${base}/api/v1/query`, { method: "POST", body: new URLSearchParams({ query: expr }) });
    const j = await res.json();
    if (j.status !== "success") throw new Error(`${j.errorType}: ${j.error}`);
    return j.data.result.length;
  };
  const series = async (sel) => {
    const now = Date.now() / 1000;
    const res = await fetch(`${base}/api/v1/series`, { method: "POST", body: new URLSearchParams({ "match[]": sel, start: String(now - 600), end: String(now) }) });
    const j = await res.json();
    if (j.status !== "success") throw new Error(`${j.errorType}: ${j.error}`);
    return j.data.length;
  };
  const items = [
    ...dashboardExprs().map((e) => ({ source: e.source, run: () => query(substitute(e.expr)), expr: e.expr })),
    ...variableQueries().map((v) => ({ source: v.source, run: () => series(substitute(v.selector)), expr: v.query })),
    ...ruleExprs().filter((e) => e.kind === "record").flatMap((e) => [
      { source: e.source, run: () => query(e.expr), expr: e.expr },
      { source: `${e.source} (recorded series)`, run: () => query(e.name), expr: e.name }]),
  ];
  const empty = [], failed = [];
  for (const it of items) {
    try { if ((await it.run()) === 0) empty.push(it); } catch (e) { failed.push({ ...it, error: e.message }); }
  }
  for (const it of empty) console.error(`NO DATA  ${it.source}\n         ${it.expr.replace(/\s+/g, " ")}`);
  for (const it of failed) console.error(`ERROR    ${it.source}: ${it.error}\n         ${it.expr.replace(/\s+/g, " ")}`);
  console.log(`sweep: ${items.length - empty.length - failed.length}/${items.length} expressions returned data`);
  process.exit(empty.length || failed.length ? 1 : 0);
} else if (cmd === "wait-alert") {
  const [file, alertname, status, timeout, wantPath] = args;
  const deadline = Date.now() + Number(timeout) * 1000;
  for (;;) {
    const lines = fs.existsSync(file) ? fs.readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l)) : [];
    for (const n of lines)
      for (const a of n.body.alerts || [])
        if (a.labels.alertname === alertname && a.status === status && (!wantPath || n.path === wantPath)) {
          console.log(`${status}: ${alertname} ${JSON.stringify(a.labels)} at ${n.receivedAt} on ${n.path}`);
          process.exit(0);
        }
    if (Date.now() > deadline) {
      console.error(`FAIL no ${status} ${alertname} notification${wantPath ? " on " + wantPath : ""} within ${timeout}s (${lines.length} notifications received)`);
      process.exit(1);
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
} else {
  console.error("usage: e2e.mjs configs|sweep|wait-alert ..."); process.exit(2);
}
