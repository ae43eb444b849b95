// Where the real control plane's binaries (etcd, kube-apiserver, kube-controller-manager) are, and
// how they are built. The Go module in test/cluster/ pins them; the binaries go to a git-ignored
// cache folder keyed by the pins, so a change of go.mod/go.sum/tools.go builds again and nothing
// else does. Go is needed only to build them; running them needs nothing but the files.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLUSTER_MODULE_DIR = join(PROJECT_ROOT, 'test', 'cluster');
export const CLUSTER_CACHE_DIR = join(PROJECT_ROOT, '.cache', 'cluster');

export const CONTROL_PLANE_BINARIES = [
  { name: 'etcd', pkg: 'go.etcd.io/etcd/server/v3', module: 'go.etcd.io/etcd/server/v3' },
  { name: 'kube-apiserver', pkg: 'k8s.io/kubernetes/cmd/kube-apiserver', module: 'k8s.io/kubernetes' },
  { name: 'kube-controller-manager', pkg: 'k8s.io/kubernetes/cmd/kube-controller-manager', module: 'k8s.io/kubernetes' },
] as const;

export type ControlPlaneBinary = (typeof CONTROL_PLANE_BINARIES)[number]['name'];

export interface ClusterPins {
  /** k8s.io/kubernetes version, e.g. v1.34.4 */
  kubernetes: string;
  /** go.etcd.io/etcd/server/v3 version */
  etcd: string;
  /** the cache folder for exactly these pins */
  binDir: string;
}

/** The version `require`d for a module in go.mod (a replace line does not count). */
function requiredVersion(goMod: string, module: string): string {
  const m = goMod.match(new RegExp(`^\\s*(?:require\\s+)?${module.replace(/[.]/g, '\\.')}\\s+(v\\S+)`, 'm'));
  if (!m) throw new Error(`${join(CLUSTER_MODULE_DIR, 'go.mod')} does not require ${module}`);
  return m[1]!;
}

export function clusterPins(): ClusterPins {
  const goMod = readFileSync(join(CLUSTER_MODULE_DIR, 'go.mod'), 'utf8');
  const hash = createHash('sha256');
  for (const f of ['go.mod', 'go.sum', 'tools.go']) hash.update(readFileSync(join(CLUSTER_MODULE_DIR, f)));
  const kubernetes = requiredVersion(goMod, 'k8s.io/kubernetes');
  const etcd = requiredVersion(goMod, 'go.etcd.io/etcd/server/v3');
  const key = `k8s-${kubernetes}-etcd-${etcd}-${hash.digest('hex').slice(0, 12)}`;
  return { kubernetes, etcd, binDir: process.env.ADMITLB_CLUSTER_BIN_DIR ?? join(CLUSTER_CACHE_DIR, key) };
}

/** Paths of the built binaries, or undefined when any is missing. */
export function builtBinaries(pins = clusterPins()): Record<ControlPlaneBinary, string> | undefined {
  const out = {} as Record<ControlPlaneBinary, string>;
  for (const b of CONTROL_PLANE_BINARIES) {
    const path = join(pins.binDir, b.name);
    if (!existsSync(path)) return undefined;
    out[b.name] = path;
  }
  return out;
}

export const BUILD_HINT = 'build them with `npm run cluster:build` (needs Go 1.24 or newer and the Go module proxy; a cold build takes several minutes)';
