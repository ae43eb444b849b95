// `npm run cluster:build`: builds etcd, kube-apiserver and kube-controller-manager from the Go module
// in test/cluster/ into .cache/cluster/<pins>/, unless that folder already holds them.
import { spawnSync } from 'node:child_process';
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { builtBinaries, clusterPins, CLUSTER_MODULE_DIR, CONTROL_PLANE_BINARIES } from '../src/sandbox/cluster-binaries.ts';

const MIN_GO = [1, 24];
const started = performance.now();
const pins = clusterPins();
const seconds = (t: number) => `${((performance.now() - t) / 1000).toFixed(1)} s`;

if (builtBinaries(pins)) {
  console.log(`cluster:build: kubernetes ${pins.kubernetes}, etcd ${pins.etcd} already built in ${pins.binDir} (${seconds(started)})`);
  process.exit(0);
}

const goVersion = spawnSync('go', ['env', 'GOVERSION'], { encoding: 'utf8' });
if (goVersion.error || goVersion.status !== 0) {
  console.error('cluster:build: Go is not installed (or not on the PATH); the real control plane needs Go 1.24 or newer to build');
  process.exit(1);
}
const [major, minor] = (goVersion.stdout.trim().match(/^go(\d+)\.(\d+)/) ?? []).slice(1).map(Number);
if (!(major! > MIN_GO[0]! || (major === MIN_GO[0] && minor! >= MIN_GO[1]!))) {
  console.error(`cluster:build: ${goVersion.stdout.trim()} is too old; kubernetes ${pins.kubernetes} needs go${MIN_GO.join('.')} or newer`);
  process.exit(1);
}

// Version stamps as kubernetes' hack/lib/version.sh sets them: kube-apiserver derives its binary and
// emulation version from gitVersion, and kubectl reads /version.
const [, kMajor, kMinor] = pins.kubernetes.match(/^v(\d+)\.(\d+)/)!;
const ldflags = [
  '-s -w',
  ...['k8s.io/component-base/version', 'k8s.io/client-go/pkg/version'].flatMap((p) => [
    `-X ${p}.gitVersion=${pins.kubernetes}`,
    `-X ${p}.gitMajor=${kMajor}`,
    `-X ${p}.gitMinor=${kMinor}`,
    `-X ${p}.gitTreeState=clean`,
    `-X ${p}.buildDate=1970-01-01T00:00:00Z`,
  ]),
].join(' ');

console.log(`cluster:build: building kubernetes ${pins.kubernetes} (kube-apiserver, kube-controller-manager) and etcd ${pins.etcd} with ${goVersion.stdout.trim()} into ${pins.binDir}`);
const staging = `${pins.binDir}.partial-${process.pid}`;
rmSync(staging, { recursive: true, force: true });
mkdirSync(staging, { recursive: true });
try {
  for (const b of CONTROL_PLANE_BINARIES) {
    const t = performance.now();
    const args = ['build', '-ldflags', ldflags, '-o', join(staging, b.name), b.pkg];
    const r = spawnSync('go', args, { cwd: CLUSTER_MODULE_DIR, stdio: 'inherit', env: process.env });
    if (r.status !== 0) throw new Error(`go build ${b.pkg} failed (exit ${r.status ?? r.signal})`);
    console.log(`  ${b.name.padEnd(24)} ${seconds(t)}`);
  }
  writeFileSync(join(staging, 'pins.json'), `${JSON.stringify({ kubernetes: pins.kubernetes, etcd: pins.etcd, go: goVersion.stdout.trim() }, null, 2)}\n`);
  rmSync(pins.binDir, { recursive: true, force: true });
  mkdirSync(join(pins.binDir, '..'), { recursive: true });
  renameSync(staging, pins.binDir);
} catch (err) {
  rmSync(staging, { recursive: true, force: true });
  console.error(`cluster:build: ${(err as Error).message}`);
  process.exit(1);
}
console.log(`cluster:build: done in ${seconds(started)}`);
