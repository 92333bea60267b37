// SPDX-License-Identifier: Apache-2.0
// The Helm chart without helm: every object of deploy/kubernetes/ must have a template in
// deploy/helm/aurum/templates/, and the template filled with the chart's default values must equal
// the manifest. This is not a template engine: it knows three plain forms and rejects the rest.
//   key: {{ .Values.a.b }}   (optionally `| quote`)      the whole scalar is that value
//   "text{{ .Values.a }}text"                            a value inside a string
//   key:\n  {{- toYaml .Values.a | nindent N }}           the whole subtree is that value
// plus {{ .Release.Namespace }} (taken as "aurum", the documented namespace) and a file-wide
// {{- if .Values.x.enabled }} ... {{- end }} whose default must be true for the manifest to exist.
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";
import { ROOT, rel, listFiles, loadYamlDocs, Report } from "./lib.mjs";

const r = new Report("helm chart vs manifests");
const CHART = path.join(ROOT, "deploy/helm/aurum");
const RELEASE = { Namespace: "aurum" };
const values = YAML.parse(fs.readFileSync(path.join(CHART, "values.yaml"), "utf8"));
const usedValues = new Set();

function lookup(ref) {
  const [root, ...keys] = ref.split(".").filter(Boolean);
  if (root === "Values") {
    usedValues.add(keys.join("."));
    return keys.reduce((o, k) => (o == null ? undefined : o[k]), values);
  }
  if (root === "Release" && keys.length === 1 && keys[0] in RELEASE) return RELEASE[keys[0]];
  throw new Error(`unsupported reference .${ref}`);
}

const MARK = (ref) => `@@${ref}@@`;
const MARK_RE = /@@([A-Za-z0-9_.]+)@@/g;

// Turns a template into YAML whose template expressions are markers, or throws on anything else.
function preprocess(text, file) {
  const out = [];
  const conditions = [];
  for (const line of text.split("\n")) {
    const control = line.match(/^\s*\{\{-?\s*(if|end|else|with|range|define|include|template)\b\s*([^}]*?)\s*-?\}\}\s*$/);
    if (control) {
      if (control[1] === "if" && /^\.Values\.[\w.]+$/.test(control[2])) conditions.push(control[2].slice(1));
      else if (control[1] !== "end") throw new Error(`${rel(file)}: unsupported construct: ${line.trim()}`);
      continue;
    }
    const block = line.match(/^\s*\{\{-\s*toYaml\s+\.(Values\.[\w.]+)\s*\|\s*nindent\s+\d+\s*\}\}\s*$/);
    if (block) {
      if (!out.length || !/:\s*$/.test(out[out.length - 1])) throw new Error(`${rel(file)}: toYaml must follow a "key:" line`);
      out[out.length - 1] += ` "${MARK(block[1])}"`;
      continue;
    }
    out.push(line.replace(/\{\{-?\s*([^}]*?)\s*-?\}\}/g, (_, expr) => {
      const m = expr.match(/^\.((?:Values|Release)\.[\w.]+)(\s*\|\s*quote)?$/);
      if (!m) throw new Error(`${rel(file)}: unsupported expression {{ ${expr} }}`);
      return MARK(m[1]);
    }));
  }
  // A scalar that is only a marker must be quoted to stay a string in YAML.
  const yamlText = out.join("\n").replace(/:\s+(@@[\w.]+@@)\s*$/gm, ': "$1"');
  return { obj: YAML.parse(yamlText), conditions };
}

function compare(tpl, man, where, errs) {
  if (typeof tpl === "string" && MARK_RE.test(tpl)) {
    MARK_RE.lastIndex = 0;
    const whole = tpl.match(/^@@([\w.]+)@@$/);
    const expected = whole ? lookup(whole[1]) : tpl.replace(MARK_RE, (_, ref) => String(lookup(ref)));
    if (JSON.stringify(expected) !== JSON.stringify(man) &&
        !(whole === null && String(man) === expected))
      errs.push(`${where}: chart default ${JSON.stringify(expected)} != manifest ${JSON.stringify(man)}`);
    return;
  }
  if (Array.isArray(tpl) || Array.isArray(man)) {
    if (!Array.isArray(tpl) || !Array.isArray(man) || tpl.length !== man.length) {
      errs.push(`${where}: list differs (${JSON.stringify(tpl)} vs ${JSON.stringify(man)})`); return;
    }
    tpl.forEach((t, i) => compare(t, man[i], `${where}[${i}]`, errs));
    return;
  }
  if (tpl && typeof tpl === "object" && man && typeof man === "object") {
    for (const k of new Set([...Object.keys(tpl), ...Object.keys(man)])) {
      if (!(k in tpl)) errs.push(`${where}.${k}: in the manifest, not in the template`);
      else if (!(k in man)) errs.push(`${where}.${k}: in the template, not in the manifest`);
      else compare(tpl[k], man[k], `${where}.${k}`, errs);
    }
    return;
  }
  if (tpl !== man) errs.push(`${where}: template ${JSON.stringify(tpl)} != manifest ${JSON.stringify(man)}`);
}

const key = (o) => `${o.kind}/${o.metadata?.name}`;
const manifests = new Map();
for (const f of listFiles(path.join(ROOT, "deploy/kubernetes"), [".yaml", ".yml"]))
  for (const o of loadYamlDocs(f)) manifests.set(key(o), { obj: o, file: f });

const templates = new Map();
for (const f of listFiles(path.join(CHART, "templates"), [".yaml", ".yml"])) {
  try {
    const { obj, conditions } = preprocess(fs.readFileSync(f, "utf8"), f);
    for (const c of conditions)
      r.check(lookup(c) === true, `${rel(f)}: rendered only if ${c}, which defaults to ${lookup(c)}, but deploy/kubernetes has the object`);
    templates.set(key(obj), { obj, file: f });
  } catch (e) { r.fail(e.message); }
}

for (const [k, m] of manifests) {
  const t = templates.get(k);
  if (!t) { r.fail(`${rel(m.file)}: ${k} has no template in ${rel(CHART)}/templates`); continue; }
  const errs = [];
  compare(t.obj, m.obj, k, errs);
  if (errs.length) errs.forEach((e) => r.fail(`${rel(t.file)} vs ${rel(m.file)}: ${e}`));
  else { r.ok(); console.log(`ok   ${k}: ${rel(t.file)} with default values == ${rel(m.file)}`); }
}
for (const [k, t] of templates) r.check(manifests.has(k), `${rel(t.file)}: ${k} has no manifest in deploy/kubernetes`);

// Every value should do something, or a user sets it and nothing happens.
const leaves = (o, p = "") => (o && typeof o === "object" && !Array.isArray(o) && Object.keys(o).length &&
  !["resources", "securityContext", "nodeSelector"].includes(p))
  ? Object.entries(o).flatMap(([k, v]) => leaves(v, p ? `${p}.${k}` : k)) : [p];
for (const leaf of leaves(values))
  r.check([...usedValues].some((u) => u === leaf || leaf.startsWith(u + ".")), `values.yaml: ${leaf} is used by no template`);
r.finish();
