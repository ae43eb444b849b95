#!/usr/bin/env node
// Runs every test file under test/ with node:test (Node 20 has no --test glob support).
// Usage: npm test [-- <substring filter>...]
//
// End-to-end files (test/e2e/, test/speaker/*e2e*) run once per Kubernetes target, chosen by
// E2E_TARGET=sandbox|real|both: `sandbox` is the API double, `real` is etcd + kube-apiserver +
// kube-controller-manager built by `npm run cluster:build`. Files under test/real/ need the real
// control plane and run only when it is a target. Unset, E2E_TARGET is `both` when the binaries are
// built (always under CI=true, where missing binaries are an error, never a skip), else `sandbox`,
// and the run says so.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const TARGETED = [/^test\/e2e\//, /^test\/speaker\/[^/]*e2e[^/]*\.test\.ts$/];
const REAL_ONLY = /^test\/real\//;
// A test that hangs fails instead (a bug that loops must not stall CI for its whole budget).
const TEST_TIMEOUT_MS = Number(process.env.TEST_TIMEOUT_MS ?? 300_000);

const filter = process.argv.slice(2);

// The whole run starts with the static checks: tests run through tsx, which strips types without
// checking them, so without this a type error would reach CI unnoticed. A filtered run (a developer
// iterating on a few files) skips them; ADMITLB_SKIP_LINT=1 skips them too, never under CI=true.
if (filter.length === 0 && !(process.env.ADMITLB_SKIP_LINT === '1' && process.env.CI !== 'true')) {
  console.log('# npm run lint (tsc --noEmit with the strict flags of tsconfig.json, then biome lint)');
  const lint = spawnSync('npm', ['run', '--silent', 'lint'], { stdio: 'inherit' });
  if (lint.status !== 0) {
    console.error('lint failed: fix the errors above (npm run lint)');
    process.exit(lint.status ?? 1);
  }
}
const files = [];
(function walk(dir) {
  for (const entry of readdirSync(dir).sort()) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) walk(path);
    else if (entry.endsWith('.test.ts')) files.push(path);
  }
})('test');
const selected = filter.length ? files.filter((f) => filter.some((s) => f.includes(s))) : files;
if (selected.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}

function realBuilt() {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', "import('./src/sandbox/cluster-binaries.ts').then((m) => process.stdout.write(m.builtBinaries() ? 'yes' : 'no'))"], { encoding: 'utf8' });
  return r.stdout.trim() === 'yes';
}

const ci = process.env.CI === 'true';
let target = process.env.E2E_TARGET;
if (target && !['sandbox', 'real', 'both'].includes(target)) {
  console.error(`E2E_TARGET must be sandbox, real or both, got ${target}`);
  process.exit(2);
}
const needsReal = selected.some((f) => REAL_ONLY.test(f) || TARGETED.some((re) => re.test(f)));
if (!target) {
  if (ci || !needsReal || realBuilt()) target = 'both';
  else {
    target = 'sandbox';
    console.log('# the real control plane is not built (npm run cluster:build, needs Go 1.24+): end-to-end tests run on the sandbox target only');
  }
}
if (target !== 'sandbox' && needsReal && !realBuilt()) {
  console.error(`E2E_TARGET=${target} needs the real control plane: run \`npm run cluster:build\` first (Go 1.24 or newer)`);
  process.exit(1);
}

const targeted = (f) => TARGETED.some((re) => re.test(f));
const runs = [];
const plain = selected.filter((f) => !targeted(f) && !REAL_ONLY.test(f));
const e2e = selected.filter(targeted);
const realOnly = selected.filter((f) => REAL_ONLY.test(f));
if (target === 'sandbox' || target === 'both') runs.push({ target: 'sandbox', files: [...plain, ...e2e] });
else runs.push({ target: 'sandbox', files: plain });
if (target === 'real' || target === 'both') runs.push({ target: 'real', files: [...e2e, ...realOnly] });

let status = 0;
for (const run of runs) {
  if (run.files.length === 0) continue;
  console.log(`# E2E_TARGET=${run.target}: ${run.files.length} file(s)`);
  const result = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--test', `--test-timeout=${TEST_TIMEOUT_MS}`, '--test-reporter=spec', ...run.files],
    { stdio: 'inherit', env: { ...process.env, E2E_TARGET: run.target } },
  );
  if (result.status !== 0) status = result.status ?? 1;
}
process.exit(status);
