// SPDX-License-Identifier: Apache-2.0
// Lints dashboards/*.json and writes every panel expression into a rules file for
// `promtool check rules` (argv[2]), which is what parses the PromQL.
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { ROOT, rel, Report } from "./lib.mjs";
import { loadDashboards, panelsOf, dashboardExprs, variableQueries, ruleExprs, substitute, metricNames } from "./promql.mjs";

const r = new Report("dashboards");
const outRules = process.argv[2];
const DS = "${datasource}";

// The plan's table (../shared/mission/seed-monitoring-plan.en.md): every row has a panel on the
// dashboard of its service type. The three APIs share the templated HTTP dashboard, the two DB
// instances the PostgreSQL one.
const API = "aurum-http", DB = "aurum-postgresql";
const PLAN = [
  ["Message Queue: dead-letter-exchange letters", "aurum-rabbitmq", /aurum_amqp_dead_lettered_messages_total/],
  ["Message Queue: messages in flight", "aurum-rabbitmq", /aurum_amqp_unacked_messages/],
  ["API: CPU %", API, /rate\(process_cpu_time_seconds_total/],
  ["API: memory", API, /process_memory_usage_bytes/],
  ["API: response time", API, /histogram_quantile\(0\.\d+, sum by \([^)]*\) \(rate\(http_server_request_duration_seconds_bucket/],
  ["API: RPS", API, /rate\(http_server_request_duration_seconds_count/],
  ["API: simultaneous sessions", API, /http_server_active_requests/],
  ["API: HTTP 200", API, /http_response_status_code=~?"200"/],
  ["API: HTTP 500", API, /http_response_status_code=~?"500"/],
  ["API: KB received", API, /process_network_io_bytes_total\{[^}]*network_io_direction="receive"/],
  ["API: KB sent", API, /process_network_io_bytes_total\{[^}]*network_io_direction="transmit"/],
  ["DB instance: memory", DB, /process_memory_usage_bytes/],
  ["DB instance: number of connections", DB, /aurum_tcp_active_connections\{[^}]*direction="inbound"/],
  ["DB instance: size", DB, /aurum_storage_used_bytes/],
  ["S3 storage: size", "aurum-s3", /aurum_s3_bucket_size_bytes/],
];
// What the issue asks for besides: an overview, a node/kernel view, aurum's own health.
const REQUIRED = {
  "aurum-overview": [], "aurum-node": [/aurum_cpu_runqueue_latency_seconds_bucket/, /aurum_tcp_retransmits_total/, /aurum_tcp_failed_connects_total/],
  "aurum-self": [/aurum_probe_attached/, /aurum_lost_events_total/, /aurum_bpf_program_run_seconds_total/, /scrape_samples_scraped/],
};
const WITH_HEATMAP = ["aurum-http", "aurum-postgresql", "aurum-rabbitmq", "aurum-node"];

// The metric contract (issues 2-5), plus Prometheus' own series and the recording rules.
const contract = new Set(fs.readFileSync(path.join(ROOT, "tests/operate/contract-metrics.txt"), "utf8")
  .split("\n").map((l) => l.replace(/#.*/, "").trim()).filter(Boolean));
for (const e of ruleExprs()) if (e.kind === "record") contract.add(e.name);
const knownMetric = (n) => contract.has(n) || /^aurum:config:\w+:override$/.test(n);

const dashboards = loadDashboards();
const uids = new Map();
const byUid = new Map();
for (const { file, json } of dashboards) {
  const f = rel(file);
  const stem = path.basename(file, ".json");
  r.check(json.schemaVersion === 39, `${f}: schemaVersion ${json.schemaVersion}, want 39`);
  r.check(json.uid === stem, `${f}: uid "${json.uid}" should be the file name "${stem}" (stable uids)`);
  r.check(!uids.has(json.uid), `${f}: uid ${json.uid} also used by ${uids.get(json.uid)}`);
  uids.set(json.uid, f);
  byUid.set(json.uid, json);
  r.check(typeof json.title === "string" && json.title.length > 0, `${f}: no title`);
  const vars = json.templating?.list || [];
  const dsVar = vars.find((v) => v.name === "datasource");
  r.check(dsVar?.type === "datasource" && dsVar?.query === "prometheus", `${f}: no Prometheus "datasource" variable`);
  for (const v of vars.filter((v) => v.type === "query"))
    r.check(v.datasource?.uid === DS, `${f}: variable $${v.name} does not use ${DS}`);
  const ids = new Set();
  const cells = new Map();   // "x,y" -> panel title: panels must not overlap
  for (const p of panelsOf(json)) {
    const g = p.gridPos || {};
    r.check(g.x >= 0 && g.x + g.w <= 24, `${f} panel "${p.title}": gridPos outside the 24 columns`);
    for (let x = g.x; x < g.x + g.w; x++)
      for (let y = g.y; y < g.y + g.h; y++) {
        const other = cells.get(`${x},${y}`);
        if (other) { r.fail(`${f} panel "${p.title}" overlaps "${other}"`); x = Infinity; break; }
        cells.set(`${x},${y}`, p.title);
      }
  }
  for (const p of panelsOf(json)) {
    const where = `${f} panel "${p.title}"`;
    r.check(!ids.has(p.id), `${where}: duplicate panel id ${p.id}`);
    ids.add(p.id);
    r.check(p.gridPos && Number.isInteger(p.gridPos.w) && Number.isInteger(p.gridPos.h), `${where}: no gridPos`);
    if (p.type === "row") continue;
    r.check(["timeseries", "stat", "table", "heatmap", "gauge", "bargauge", "text"].includes(p.type), `${where}: unexpected panel type ${p.type}`);
    const refIds = (p.targets || []).map((t) => t.refId);
    r.check(new Set(refIds).size === refIds.length, `${where}: duplicate refIds ${refIds}`);
    r.check(p.datasource?.uid === DS, `${where}: datasource is ${JSON.stringify(p.datasource)}, want uid ${DS}`);
    r.check(Array.isArray(p.targets) && p.targets.length > 0, `${where}: no queries`);
    const unit = p.fieldConfig?.defaults?.unit;
    r.check(typeof unit === "string" && unit.length > 0, `${where}: no unit`);
    if (p.type === "heatmap") {
      r.check(!!p.options?.yAxis?.unit, `${where}: heatmap without a y-axis unit`);
      r.check(p.options?.calculate === false, `${where}: heatmap should show the histogram's buckets, not recalculate`);
    }
    for (const t of p.targets || []) {
      const tw = `${where} ${t.refId}`;
      r.check(t.datasource?.uid === DS, `${tw}: query datasource is not ${DS}`);
      r.check(typeof t.expr === "string" && t.expr.trim().length > 0, `${tw}: empty expression`);
      if (!t.expr) continue;
      if (p.type === "heatmap")
        r.check(t.format === "heatmap" && /_bucket\{/.test(t.expr) && /\ble\b/.test(t.expr), `${tw}: heatmap query must return le buckets with format heatmap`);
      for (const m of t.expr.matchAll(/\[([^\]]*)\]/g))
        r.check(["$__rate_interval", "$__range"].includes(m[1]) || (t.instant && /^\d+[smhd]$/.test(m[1])),
          `${tw}: range [${m[1]}] should be [$__rate_interval] (or [$__range])`);
      for (const n of metricNames(t.expr)) r.check(knownMetric(n), `${tw}: unknown metric ${n} (not in tests/operate/contract-metrics.txt nor a recording rule)`);
      for (const m of t.expr.matchAll(/(\w+)_bucket\b/g))
        r.check(new RegExp(`histogram_quantile\\([^,]+, sum by \\([^)]*\\ble\\b[^)]*\\) \\(rate\\(${m[1]}_bucket`).test(
          dashboardExprs().map((e) => e.expr).join("\n")), `${tw}: histogram ${m[1]} has no percentile panel`);
    }
  }
}

for (const [what, uid, re] of PLAN) {
  const d = byUid.get(uid);
  r.check(d && panelsOf(d).some((p) => (p.targets || []).some((t) => re.test(t.expr))), `plan row "${what}": no panel on ${uid} matches ${re}`);
}
for (const [uid, res] of Object.entries(REQUIRED)) {
  const d = byUid.get(uid);
  r.check(!!d, `no dashboard ${uid}`);
  for (const re of res) r.check(d && panelsOf(d).some((p) => (p.targets || []).some((t) => re.test(t.expr))), `${uid}: no panel matches ${re}`);
}
for (const uid of WITH_HEATMAP) {
  const d = byUid.get(uid);
  r.check(d && panelsOf(d).some((p) => p.type === "heatmap"), `${uid}: latency must also be shown as a heatmap`);
  r.check(d && panelsOf(d).some((p) => (p.targets || []).some((t) => /histogram_quantile/.test(t.expr))), `${uid}: no latency percentiles`);
}

for (const v of variableQueries()) {
  r.check(!!v.selector, `${v.source}: query "${v.query}" is not label_values(selector, label)`);
  if (v.selector) for (const n of metricNames(v.selector)) r.check(knownMetric(n), `${v.source}: unknown metric ${n}`);
}

// promtool parses the PromQL: one recording rule per expression, Grafana variables substituted.
const rules = [];
for (const e of dashboardExprs()) rules.push({ record: `aurum_dashboard_expr_${rules.length}`, expr: substitute(e.expr), labels: { source: e.source } });
for (const v of variableQueries()) if (v.selector) rules.push({ record: `aurum_dashboard_expr_${rules.length}`, expr: substitute(v.selector), labels: { source: v.source } });
if (outRules) fs.writeFileSync(outRules, YAML.stringify({ groups: [{ name: "dashboard-expressions", rules }] }));
console.log(`${dashboards.length} dashboards, ${rules.length} expressions${outRules ? " written to " + outRules : ""}`);
r.finish();
