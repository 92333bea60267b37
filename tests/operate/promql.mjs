// SPDX-License-Identifier: Apache-2.0
// Every PromQL expression aurum ships, read from the files themselves (never listed by hand):
// dashboard panel targets, dashboard variable queries, recording rules and alerts.
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { ROOT, rel, listFiles } from "./lib.mjs";

export const DASHBOARD_DIR = path.join(ROOT, "dashboards");
export const RULE_DIR = path.join(ROOT, "alerting/rules");

export function loadDashboards() {
  return listFiles(DASHBOARD_DIR, [".json"]).map((file) => ({ file, json: JSON.parse(fs.readFileSync(file, "utf8")) }));
}

export function panelsOf(dash) {
  const out = [];
  const walk = (panels) => { for (const p of panels || []) { out.push(p); walk(p.panels); } };
  walk(dash.panels);
  return out;
}

// { source, expr, kind } for every panel target.
export function dashboardExprs() {
  const out = [];
  for (const { file, json } of loadDashboards())
    for (const p of panelsOf(json))
      for (const t of p.targets || [])
        out.push({ source: `${rel(file)} panel "${p.title}" ${t.refId}`, expr: t.expr, kind: "panel",
                   instant: !!t.instant && !t.range });
  return out;
}

// label_values(selector, label) of the query variables, as the selector expression alone.
export function variableQueries() {
  const out = [];
  for (const { file, json } of loadDashboards())
    for (const v of json.templating?.list || []) {
      if (v.type !== "query") continue;
      const q = typeof v.query === "string" ? v.query : v.query?.query;
      const m = q?.match(/^label_values\((.*),\s*([A-Za-z_]\w*)\)$/);
      out.push({ source: `${rel(file)} variable $${v.name}`, query: q, selector: m?.[1], label: m?.[2] });
    }
  return out;
}

export function loadRuleGroups() {
  const out = [];
  for (const file of listFiles(RULE_DIR, [".yml", ".yaml"]))
    for (const g of YAML.parse(fs.readFileSync(file, "utf8")).groups || []) out.push({ file, group: g });
  return out;
}

export function ruleExprs() {
  const out = [];
  for (const { file, group } of loadRuleGroups())
    for (const rule of group.rules)
      out.push({ source: `${rel(file)} ${rule.record ? "record " + rule.record : "alert " + rule.alert}`,
                 expr: rule.expr.trim(), kind: rule.record ? "record" : "alert", name: rule.record || rule.alert, rule });
  return out;
}

// Grafana's variables replaced by what "All" and a default time range give.
export function substitute(expr, { rateInterval = "1m", range = "15m" } = {}) {
  return expr
    .replaceAll("$__rate_interval", rateInterval)
    .replaceAll("$__range", range)
    .replace(/\$\{?(\w+)\}?/g, ".*");
}

const KEYWORDS = new Set(["and", "or", "unless", "offset", "bool", "by", "without", "on", "ignoring",
  "group_left", "group_right", "inf", "nan", "Inf", "NaN", "atan2"]);

// Metric names an expression reads (a light tokenizer, enough for the expressions we write).
export function metricNames(expr) {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, "")
    .replace(/\[[^\]]*\]/g, "")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ");
  const names = new Set();
  for (const m of s.matchAll(/(?<![\w.:$])([A-Za-z_:][\w:]*)(?!\w)(\s*\()?/g)) {
    if (m[2] || KEYWORDS.has(m[1])) continue;
    names.add(m[1]);
  }
  return [...names];
}
