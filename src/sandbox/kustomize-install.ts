// Installing admitlb on a real API server the way the README tells users to: `admitlb certs` wires
// the per-cluster secrets into a copy of webhook-manifests/, and `kubectl apply -k` applies an
// overlay whose only change is the webhooks' clientConfig (a URL on this machine instead of the
// in-cluster Service: there is no cluster network here). The components then run as local
// processes with tokens of the manifests' own ServiceAccounts, so RBAC is what the manifests grant.
import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments, stringify as stringifyYaml } from 'yaml';
import { runCertsCommand } from '../certs/command.ts';
import { ACTIVE_SIGNING_KEY_FILE } from '../certs/generate.ts';
import type { ApiServer } from './apiserver.ts';
import { apiRequest, objectBody } from './api-client.ts';
import { MANIFESTS_DIR } from './paths.ts';
import { tokenKubeconfig } from './real-control-plane.ts';

/** The ServiceAccounts of webhook-manifests/rbac.yaml, by the component that runs as each. */
export const COMPONENT_ACCOUNTS = {
  webhook: { namespace: 'admitlb-system', name: 'admitlb' },
  controller: { namespace: 'admitlb-system', name: 'admitlb' },
  speaker: { namespace: 'admitlb-system', name: 'admitlb-speaker' },
} as const;

export type Component = keyof typeof COMPONENT_ACCOUNTS;

interface KubectlRun {
  code: number;
  stdout: string;
  stderr: string;
}

export function kubectl(kubeconfig: string, cacheDir: string, args: string[]): Promise<KubectlRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('kubectl', ['--kubeconfig', kubeconfig, '--cache-dir', cacheDir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('error', (err) => reject(new Error(`cannot run kubectl (is it on the PATH?): ${err.message}`)));
    child.once('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** JSON 6902 operations that swap each webhook's `clientConfig.service` for a URL under `baseUrl`. */
function clientConfigPatches(baseUrl: string): { target: object; patch: string }[] {
  const out: { target: object; patch: string }[] = [];
  for (const doc of parseAllDocuments(readFileSync(join(MANIFESTS_DIR, 'webhook-configurations.yaml'), 'utf8'))) {
    const cfg = doc.toJS() as { kind?: string; metadata?: { name?: string }; webhooks?: { clientConfig?: { service?: { path?: string } } }[] } | null;
    if (!cfg?.kind || !cfg.webhooks) continue;
    const ops = cfg.webhooks.flatMap((w, i) =>
      w.clientConfig?.service
        ? [
            { op: 'remove', path: `/webhooks/${i}/clientConfig/service` },
            { op: 'add', path: `/webhooks/${i}/clientConfig/url`, value: `${baseUrl}${w.clientConfig.service.path ?? ''}` },
          ]
        : [],
    );
    if (ops.length) out.push({ target: { group: 'admissionregistration.k8s.io', version: 'v1', kind: cfg.kind, name: cfg.metadata?.name }, patch: JSON.stringify(ops) });
  }
  return out;
}

/** The webhook's serving pair, its CA (the caBundle) and the signing keys. */
export interface WebhookFiles {
  certsDir: string;
  tlsCertFile: string;
  tlsKeyFile: string;
  signingKeysDir: string;
  /** PEM of the CA that signed tls.crt (the caBundle). */
  caPem: string;
}

export interface KustomizeInstall {
  /** the overlay folder that was applied (`kubectl apply -k <dir>`) */
  overlayDir: string;
  files: WebhookFiles;
  /** `kubectl apply -k` output */
  applied: string;
}

/**
 * Prepares <dataDir>/install/{base,overlay} and applies the overlay with the admin kubeconfig. The
 * base is a copy of webhook-manifests/ (without generated/ and the cert-manager component) with
 * `admitlb certs` run against it; certificates and signing keys go to <dataDir>/certs and are kept
 * across runs.
 */
export async function installWithKustomize(api: ApiServer, dataDir: string, webhookBaseUrl: string): Promise<KustomizeInstall> {
  const installDir = join(dataDir, 'install');
  const baseDir = join(installDir, 'base');
  const overlayDir = join(installDir, 'overlay');
  rmSync(installDir, { recursive: true, force: true });
  mkdirSync(baseDir, { recursive: true });
  mkdirSync(overlayDir, { recursive: true });
  for (const f of readdirSync(MANIFESTS_DIR)) if (f.endsWith('.yaml')) cpSync(join(MANIFESTS_DIR, f), join(baseDir, f));
  const certsDir = join(dataDir, 'certs');
  await runCertsCommand({ outDir: certsDir, manifestsDir: baseDir, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'] });
  writeFileSync(
    join(overlayDir, 'kustomization.yaml'),
    `# Written by the sandbox: webhook-manifests/ as users apply it, with the webhooks called at a local URL.\n${stringifyYaml({
      apiVersion: 'kustomize.config.k8s.io/v1beta1',
      kind: 'Kustomization',
      resources: ['../base'],
      patches: clientConfigPatches(webhookBaseUrl.replace(/\/$/, '')),
    })}`,
  );
  const cacheDir = join(dataDir, 'kubectl-cache');
  const r = await kubectl(api.kubeconfigPath, cacheDir, ['apply', '-k', overlayDir]);
  if (r.code !== 0) throw new Error(`kubectl apply -k ${overlayDir} failed:\n${r.stderr || r.stdout}`);
  await waitForCrds(api);
  const files: WebhookFiles = {
    certsDir,
    tlsCertFile: join(certsDir, 'tls.crt'),
    tlsKeyFile: join(certsDir, 'tls.key'),
    signingKeysDir: join(certsDir, 'signing'),
    caPem: readFileSync(join(certsDir, 'ca.crt'), 'utf8'),
  };
  readFileSync(join(files.signingKeysDir, ACTIVE_SIGNING_KEY_FILE));
  return { overlayDir, files, applied: r.stdout };
}

/** Waits until every admitlb.io resource of crds.yaml is served (CRDs become Established asynchronously). */
async function waitForCrds(api: ApiServer, timeoutMs = 30_000): Promise<void> {
  const wanted = parseAllDocuments(readFileSync(join(MANIFESTS_DIR, 'crds.yaml'), 'utf8'))
    .map((d) => d.toJS() as { kind?: string; spec?: { group?: string; names?: { plural?: string } } } | null)
    .filter((c) => c?.kind === 'CustomResourceDefinition')
    .map((c) => `${c!.spec!.group}/${c!.spec!.names!.plural}`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const groups = new Map<string, Set<string>>();
    for (const g of new Set(wanted.map((w) => w.split('/')[0]!))) {
      const r = await apiRequest(api, 'GET', `/apis/${g}/v1alpha1`);
      groups.set(g, new Set(r.status === 200 ? (objectBody(r).resources as { name: string }[]).map((x) => x.name) : []));
    }
    if (wanted.every((w) => groups.get(w.split('/')[0]!)!.has(w.split('/')[1]!))) return;
    if (Date.now() > deadline) throw new Error(`admitlb's CRDs were not served within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A kubeconfig for a ServiceAccount, with a token from TokenRequest (what a pod's projected token
 * volume holds). Written to <dataDir>/identities/<namespace>.<name>.kubeconfig.
 */
export async function serviceAccountKubeconfig(api: ApiServer, dataDir: string, account: { namespace: string; name: string }, expirationSeconds = 86_400): Promise<string> {
  const r = await apiRequest(api, 'POST', `/api/v1/namespaces/${account.namespace}/serviceaccounts/${account.name}/token`, {
    apiVersion: 'authentication.k8s.io/v1',
    kind: 'TokenRequest',
    spec: { expirationSeconds },
  });
  if (r.status !== 201 && r.status !== 200) throw new Error(`TokenRequest for ${account.namespace}/${account.name}: HTTP ${r.status}: ${objectBody(r).message ?? JSON.stringify(r.body)}`);
  const dir = join(dataDir, 'identities');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${account.namespace}.${account.name}.kubeconfig`);
  writeFileSync(path, tokenKubeconfig(api.url, api.caPem, `system:serviceaccount:${account.namespace}:${account.name}`, objectBody(r).status.token), { mode: 0o600 });
  return path;
}

/**
 * On the API double, which has no ServiceAccounts or TokenRequest: a kubeconfig with the admin token
 * that impersonates the ServiceAccount (`as:`), so admission (policies, webhooks' userInfo) sees the
 * component as the account it runs as in a cluster. Written next to the real target's files.
 */
export function impersonationKubeconfig(api: Pick<ApiServer, 'url' | 'caPem' | 'token'>, dataDir: string, account: { namespace: string; name: string }): string {
  const dir = join(dataDir, 'identities');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${account.namespace}.${account.name}.kubeconfig`);
  const user = `system:serviceaccount:${account.namespace}:${account.name}`;
  writeFileSync(
    path,
    stringifyYaml({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'admitlb', cluster: { server: api.url, 'certificate-authority-data': Buffer.from(api.caPem).toString('base64') } }],
      users: [{ name: user, user: { token: api.token, as: user } }],
      contexts: [{ name: 'admitlb', context: { cluster: 'admitlb', user } }],
      'current-context': 'admitlb',
    }),
    { mode: 0o600 },
  );
  return path;
}
