// SPDX-License-Identifier: Apache-2.0
// Helpers shared by the offline checks of deploy/, dashboards/ and alerting/.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const rel = (p) => path.relative(ROOT, p);

export function listFiles(dir, suffixes) {
  return fs.readdirSync(dir).filter((f) => suffixes.some((s) => f.endsWith(s))).sort()
    .map((f) => path.join(dir, f));
}

export function loadYamlDocs(file) {
  const docs = YAML.parseAllDocuments(fs.readFileSync(file, "utf8"));
  for (const d of docs) if (d.errors.length) throw new Error(`${rel(file)}: ${d.errors[0].message}`);
  return docs.map((d) => d.toJS()).filter((d) => d != null);
}

// Collects failures and exits non-zero with all of them listed, so one run shows every problem.
export class Report {
  constructor(name) { this.name = name; this.failures = []; this.checked = 0; }
  ok() { this.checked++; }
  fail(msg) { this.checked++; this.failures.push(msg); }
  check(cond, msg) { if (cond) this.ok(); else this.fail(msg); }
  finish() {
    for (const f of this.failures) console.error(`FAIL ${f}`);
    console.log(`${this.name}: ${this.checked - this.failures.length}/${this.checked} checks passed`);
    process.exit(this.failures.length ? 1 : 0);
  }
}
