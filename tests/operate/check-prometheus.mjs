// SPDX-License-Identifier: Apache-2.0
// Prepares deploy/prometheus/*.yml for `promtool check config` in argv[2] (a scratch directory with
// rules/ -> alerting/rules). Debian's promtool has no Kubernetes service discovery, so the
// kubernetes_sd_configs blocks are checked here against the upstream field list and replaced by a
// static target; promtool then checks everything else (relabelling, rule files, alerting).
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { ROOT, Report } from "./lib.mjs";

const r = new Report("prometheus configs");
const out = process.argv[2];
const dir = path.join(ROOT, "deploy/prometheus");
const main = YAML.parse(fs.readFileSync(path.join(dir, "prometheus.yml"), "utf8"));
const k8s = YAML.parse(fs.readFileSync(path.join(dir, "prometheus-kubernetes.yml"), "utf8"));

// https://prometheus.io/docs/prometheus/2.42/configuration/configuration/#kubernetes_sd_config
const SD_FIELDS = new Set(["api_server", "role", "kubeconfig_file", "basic_auth", "authorization", "oauth2",
  "proxy_url", "no_proxy", "proxy_from_environment", "proxy_connect_header", "follow_redirects",
  "enable_http2", "tls_config", "namespaces", "selectors", "attach_metadata"]);
const ROLES = new Set(["node", "service", "pod", "endpoints", "endpointslice", "ingress"]);
const META = { pod: /^__meta_kubernetes_(namespace|pod_(name|ip|label_\w+|labelpresent_\w+|annotation_\w+|annotationpresent_\w+|container_(name|id|image|init|port_name|port_number|port_protocol)|ready|phase|node_name|host_ip|uid|controller_kind|controller_name))$/ };

for (const k of ["global", "rule_files", "alerting"])
  r.check(JSON.stringify(main[k]) === JSON.stringify(k8s[k]), `prometheus-kubernetes.yml: ${k} differs from prometheus.yml`);
let sdJobs = 0;
for (const job of k8s.scrape_configs || []) {
  const sds = job.kubernetes_sd_configs;
  if (!sds) continue;
  sdJobs++;
  for (const sd of sds) {
    for (const f of Object.keys(sd)) r.check(SD_FIELDS.has(f), `${job.job_name}: unknown kubernetes_sd_configs field ${f}`);
    r.check(ROLES.has(sd.role), `${job.job_name}: role ${sd.role} is not one of ${[...ROLES]}`);
    if (sd.namespaces) r.check(Array.isArray(sd.namespaces.names), `${job.job_name}: namespaces.names must be a list`);
    for (const rc of job.relabel_configs || [])
      for (const l of rc.source_labels || [])
        if (l.startsWith("__meta_kubernetes_") && META[sd.role])
          r.check(META[sd.role].test(l), `${job.job_name}: ${l} is not a meta label of role ${sd.role}`);
  }
  delete job.kubernetes_sd_configs;
  job.static_configs = [{ targets: ["kubernetes-sd-placeholder:9890"] }];
  const setsJob = (job.relabel_configs || []).some((rc) => rc.target_label === "job" && rc.replacement === "aurum");
  r.check(setsJob, `${job.job_name}: must relabel job to "aurum" (the dashboards and alerts select job="aurum")`);
}
r.check(sdJobs > 0, "prometheus-kubernetes.yml has no kubernetes_sd_configs job");
r.check((main.scrape_configs || []).some((j) => j.job_name === "aurum"), `prometheus.yml has no job "aurum"`);
if (out) {
  fs.writeFileSync(path.join(out, "prometheus.yml"), YAML.stringify(main));
  fs.writeFileSync(path.join(out, "prometheus-kubernetes.yml"), YAML.stringify(k8s));
}
r.finish();
