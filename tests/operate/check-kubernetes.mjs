// SPDX-License-Identifier: Apache-2.0
// Validates every object of deploy/kubernetes/ against the Kubernetes (and Prometheus Operator)
// OpenAPI schemas shipped in the kubernetes-models packages.
import path from "node:path";
import { createRequire } from "node:module";
import { ROOT, rel, listFiles, loadYamlDocs, Report } from "./lib.mjs";

const require = createRequire(import.meta.url);
const r = new Report("kubernetes schemas");

function modelFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const module = group === "monitoring.coreos.com"
    ? `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`
    : `kubernetes-models/${group ? group + "/" : ""}${version}/${kind}`;
  return require(module)[kind];
}

const files = listFiles(path.join(ROOT, "deploy/kubernetes"), [".yaml", ".yml"]);
r.check(files.length > 0, "deploy/kubernetes has no manifests");
const kinds = new Set();
for (const file of files) {
  for (const obj of loadYamlDocs(file)) {
    const where = `${rel(file)} ${obj.kind}/${obj.metadata?.name}`;
    kinds.add(obj.kind);
    let Model;
    try { Model = modelFor(obj.apiVersion, obj.kind); } catch (e) {
      r.fail(`${where}: no schema for ${obj.apiVersion} ${obj.kind} (${e.message})`); continue;
    }
    try { new Model(obj).validate(); r.ok(); console.log(`ok   ${where}`); } catch (e) {
      r.fail(`${where}: ${e.message}`);
    }
  }
}
for (const k of ["DaemonSet", "ServiceAccount", "ConfigMap", "Service", "PodMonitor"])
  r.check(kinds.has(k), `deploy/kubernetes has no ${k}`);
r.finish();
