// Shared by the certs tests: temp copies of webhook-manifests/ and `kubectl kustomize` rendering.
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

export const REPO_MANIFESTS = resolve(import.meta.dirname, '../../webhook-manifests');

export interface TempInstall {
  root: string;
  manifestsDir: string;
  certsDir: string;
  cleanup(): void;
}

/**
 * Copies webhook-manifests/ into a temp dir, leaving out a developer's generated/ (private keys and a
 * stale state). crds.yaml is produced by other code; when it does not exist yet, the copy gets an empty
 * one so kustomize can render the rest.
 */
export function tempInstall(): TempInstall {
  const root = mkdtempSync(join(tmpdir(), 'admitlb-certs-test-'));
  const manifestsDir = join(root, 'webhook-manifests');
  cpSync(REPO_MANIFESTS, manifestsDir, {
    recursive: true,
    filter: (src) => resolve(src) !== join(REPO_MANIFESTS, 'generated'),
  });
  if (!existsSync(join(manifestsDir, 'crds.yaml'))) writeFileSync(join(manifestsDir, 'crds.yaml'), '');
  return { root, manifestsDir, certsDir: join(root, 'certs'), cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [key: string]: unknown;
}

export function kustomize(dir: string): K8sObject[] {
  const out = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return parseAllDocuments(out)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

export function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`${kind}/${name} not rendered; have: ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found;
}

/** Polls cond until it holds or timeoutMs passes. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Every container and initContainer image of every workload kind, as `Kind/name container: image`. */
export function workloadImages(objects: K8sObject[]): Map<string, string> {
  const out = new Map<string, string>();
  type Pod = { containers?: { name: string; image: string }[]; initContainers?: { name: string; image: string }[] };
  for (const o of objects) {
    const spec = (o.spec ?? {}) as { template?: { spec: Pod }; jobTemplate?: { spec: { template: { spec: Pod } } } };
    let pod: Pod | undefined;
    if (o.kind === 'Pod') pod = spec as Pod;
    else if (['Deployment', 'DaemonSet', 'StatefulSet', 'ReplicaSet', 'Job'].includes(o.kind)) pod = spec.template?.spec;
    else if (o.kind === 'CronJob') pod = spec.jobTemplate?.spec.template.spec;
    if (!pod) continue;
    for (const c of [...(pod.initContainers ?? []), ...(pod.containers ?? [])]) out.set(`${o.kind}/${o.metadata.name} ${c.name}`, c.image);
  }
  return out;
}
