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

// The schemas accept fields they do not know (a misspelt `hostPid` passes), so run the compiled
// schema validator on a proxy of the object and report every field it never looked at. Maps
// (labels, data) are enumerated by the validator and count as read.
function schemaModule(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  const cap = (x) => x.charAt(0).toUpperCase() + x.slice(1);
  const v = cap(version);
  if (group === "monitoring.coreos.com")
    return path.join(path.dirname(require.resolve("@kubernetes-models/prometheus-operator/package.json")),
                     "_schemas", `MonitoringCoreosCom${v}${kind}.js`);
  const g = group ? cap(group.split(".")[0]) : "Core";
  return path.join(path.dirname(require.resolve("kubernetes-models/package.json")), "_schemas", `IoK8sApi${g}${v}${kind}.js`);
}
function unknownFields(obj, validate) {
  const seen = new Set();
  let recording = false;
  const track = (o, p) => {
    if (o === null || typeof o !== "object") return o;
    const kids = Array.isArray(o) ? o.map((v, i) => track(v, `${p}[${i}]`))
      : Object.fromEntries(Object.entries(o).map(([k, v]) => [k, track(v, `${p}.${k}`)]));
    return new Proxy(kids, {
      get(t, k, r) { if (recording && typeof k === "string") seen.add(`${p}.${k}`); return Reflect.get(t, k, r); },
      ownKeys(t) { if (recording) seen.add(`${p}.*`); return Reflect.ownKeys(t); },
    });
  };
  const proxy = track(obj, "");
  recording = true; validate(proxy); recording = false;
  const out = [];
  const walk = (o, p) => {
    if (o === null || typeof o !== "object") return;
    if (Array.isArray(o)) { o.forEach((v, i) => walk(v, `${p}[${i}]`)); return; }
    for (const [k, v] of Object.entries(o)) {
      if (!seen.has(`${p}.${k}`) && !seen.has(`${p}.*`)) out.push(`${p}.${k}`.slice(1));
      walk(v, `${p}.${k}`);
    }
  };
  walk(obj, "");
  return out;
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
    try { new Model(obj).validate(); r.ok(); console.log(`ok   ${where}: schema`); } catch (e) {
      r.fail(`${where}: ${e.message}`);
    }
    let validate;
    try { validate = require(schemaModule(obj.apiVersion, obj.kind)).validate; } catch (e) {
      r.fail(`${where}: no compiled schema for unknown-field detection (${e.message})`); continue;
    }
    const unknown = unknownFields(obj, validate);
    if (unknown.length) r.fail(`${where}: fields the schema does not know: ${unknown.join(", ")}`);
    else { r.ok(); console.log(`ok   ${where}: no unknown fields`); }
  }
}
for (const k of ["DaemonSet", "ServiceAccount", "ConfigMap", "Service", "PodMonitor"])
  r.check(kinds.has(k), `deploy/kubernetes has no ${k}`);
r.finish();
