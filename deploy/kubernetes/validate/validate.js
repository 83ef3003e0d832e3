#!/usr/bin/env node
// validate.js DOCS.json: validates Kubernetes objects (a JSON array, one per YAML document) against
// the API types of kubernetes-models and @kubernetes-models/prometheus-operator, both generated from
// the published OpenAPI schemas / CRDs, in two passes:
//   1. TypeScript's type check of each object as a literal of its kind's interface: unknown fields
//      (a misspelt "restartPolcy" is an error, as `kubectl apply --validate=strict` makes it),
//      wrong types, missing required fields, values outside an enum;
//   2. the models' JSON-schema validation (patterns, formats, the schema's own constraints).
// Needs the packages of package.json installed (scripts/setup.sh puts them in
// /opt/coset-tools/k8s-validate; NODE_PATH names its node_modules). Exits 1 with every finding.
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { execFileSync } = require("child_process");

const modules = (process.env.NODE_PATH || "").split(path.delimiter).filter(Boolean)[0];
if (!modules || !fs.existsSync(path.join(modules, "kubernetes-models"))) {
  console.error("validate.js: NODE_PATH must name a node_modules with kubernetes-models (run scripts/setup.sh)");
  process.exit(2);
}

// The module of a kind's model: core and built-in groups from kubernetes-models, the Prometheus
// Operator's CRDs from its package.
function modelModule(apiVersion, kind) {
  if (apiVersion.startsWith("monitoring.coreos.com/")) {
    return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  }
  return `kubernetes-models/${apiVersion}/${kind}`;
}

const docs = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const findings = [];
const names = docs.map((d, i) => `${d.kind || "?"}/${(d.metadata && d.metadata.name) || i}`);

// Pass 1: one TypeScript file, one typed constant per object.
const work = fs.mkdtempSync(path.join(os.tmpdir(), "coset-k8s-"));
try {
  const lines = [];
  docs.forEach((doc, i) => {
    if (!doc.apiVersion || !doc.kind) {
      findings.push(`${names[i]}: apiVersion and kind are required`);
      return;
    }
    lines.push(`import { I${doc.kind} as T${i} } from "${modelModule(doc.apiVersion, doc.kind)}";`);
    lines.push(`export const doc${i}: T${i} = ${JSON.stringify(doc, null, 1)};`);
  });
  fs.writeFileSync(path.join(work, "manifests.ts"), lines.join("\n") + "\n");
  fs.writeFileSync(path.join(work, "tsconfig.json"), JSON.stringify({
    compilerOptions: {
      strict: true, noEmit: true, target: "es2019", module: "commonjs", moduleResolution: "node",
      skipLibCheck: true, baseUrl: work, paths: { "*": [path.join(modules, "*")] }, typeRoots: [],
    },
    files: ["manifests.ts"],
  }));
  try {
    execFileSync(process.execPath, [path.join(modules, "typescript", "bin", "tsc"), "-p", work], { encoding: "utf8" });
  } catch (e) {
    // Each error names the line of manifests.ts; map it back to its object.
    const source = fs.readFileSync(path.join(work, "manifests.ts"), "utf8").split("\n");
    for (const line of (e.stdout || e.message).split("\n").filter((l) => l.includes("error TS"))) {
      const m = line.match(/manifests\.ts\((\d+),\d+\)/);
      let owner = "?";
      if (m) {
        for (let n = Number(m[1]) - 1; n >= 0; n--) {
          const decl = source[n].match(/^export const doc(\d+)/);
          if (decl) { owner = names[Number(decl[1])]; break; }
        }
      }
      findings.push(`${owner}: ${line.replace(/^.*error /, "")}`);
    }
  }
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}

// Pass 2: JSON-schema validation by the models.
docs.forEach((doc, i) => {
  if (!doc.apiVersion || !doc.kind) return;
  let Model;
  try {
    Model = require(path.join(modules, modelModule(doc.apiVersion, doc.kind)))[doc.kind];
  } catch (e) {
    findings.push(`${names[i]}: no model for ${doc.apiVersion} ${doc.kind}`);
    return;
  }
  try {
    new Model(doc).validate();
  } catch (e) {
    findings.push(`${names[i]}: ${e.message}`);
  }
});

for (const f of findings) console.log(`INVALID ${f}`);
names.forEach((n, i) => {
  if (!findings.some((f) => f.startsWith(`${n}:`))) console.log(`valid   ${n} (${docs[i].apiVersion})`);
});
process.exit(findings.length ? 1 : 0);
