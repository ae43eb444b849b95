// `admitlb sandbox` (and `npm start`): a local cluster with nothing else installed. Starts the
// kube-apiserver double, installs admitlb's CRDs and webhook configurations from webhook-manifests/
// (clientConfig.service replaced by a URL: there is no cluster network), starts the webhook in-process,
// applies a default pool on documentation addresses and prints the kubeconfig to use.
//
// Layout of the data folder (a fresh folder is a fresh cluster; a rerun keeps everything):
//   <dataDir>/kubeconfig, token, pki/, journal.jsonl   the API double (see README.md in this folder)
//   <dataDir>/certs/ca.crt, tls.crt, tls.key, signing/  the webhook's serving pair and signing keys
//   <dataDir>/admitlb.log                               the webhook's JSON log (audit lines)
//   <dataDir>/sandbox.lock                              pid of the process using the folder
import { X509Certificate } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { join, relative, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import closeWithGrace from 'close-with-grace';
import pino from 'pino';
import { parseAllDocuments } from 'yaml';
import {
  ACTIVE_SIGNING_KEY_FILE,
  generateSigningKey,
  generateWebhookCertificates,
  writeCertificates,
  writeSigningKey,
} from '../certs/generate.ts';
import type { ControllerConfig } from '../config/webhook-config.ts';
import { parseServerConfig, startWebhook, type RunningWebhook } from './webhook.ts';
import { startApiServer, type ApiServer, type ApiServerOptions } from '../sandbox/apiserver.ts';
import { COMPONENT_ACCOUNTS, impersonationKubeconfig, installWithKustomize, serviceAccountKubeconfig, type Component, type WebhookFiles } from '../sandbox/kustomize-install.ts';
import { ControlPlaneError, startRealControlPlane, type RealControlPlane } from '../sandbox/real-control-plane.ts';
import type { KubeObject } from '../sandbox/store.ts';

import { MANIFESTS_DIR, PROJECT_ROOT } from '../sandbox/paths.ts';
import { apiRequest, objectBody, type ApiResponse } from '../sandbox/api-client.ts';

export { MANIFESTS_DIR, PROJECT_ROOT };
export const DEFAULT_DATA_DIR = join(PROJECT_ROOT, '.sandbox');
export const DEFAULT_REAL_DATA_DIR = join(PROJECT_ROOT, '.sandbox-real');
export const DEFAULT_LISTEN = { host: '127.0.0.1', port: 6443 };

/** The pool `startSandbox` creates when none exists: documentation addresses (RFC 5737, RFC 3849). */
export const DEFAULT_POOL = {
  apiVersion: 'admitlb.io/v1alpha1',
  kind: 'IPPool',
  metadata: { name: 'default' },
  spec: { addresses: ['203.0.113.0/24', '2001:db8:100::/120'], avoidBuggyIPs: true },
};

export const FIRST_COMMAND = 'kubectl create service loadbalancer web --tcp=80:80';

/** A user-facing start-up failure: printed as one line, no stack trace. */
export class SandboxError extends Error {
  override name = 'SandboxError';
}

export { apiRequest, objectBody, type ApiResponse } from '../sandbox/api-client.ts';

const KNOWN_PATHS: Record<string, { path: string; namespaced: boolean }> = {
  'apiextensions.k8s.io/v1/CustomResourceDefinition': { path: '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', namespaced: false },
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration': { path: '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', namespaced: false },
  'admissionregistration.k8s.io/v1/ValidatingWebhookConfiguration': { path: '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations', namespaced: false },
  'v1/Namespace': { path: '/api/v1/namespaces', namespaced: false },
  'admitlb.io/v1alpha1/IPPool': { path: '/apis/admitlb.io/v1alpha1/ippools', namespaced: false },
  'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy': { path: '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies', namespaced: false },
  'admissionregistration.k8s.io/v1/ValidatingAdmissionPolicyBinding': { path: '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings', namespaced: false },
};

function collectionPath(obj: KubeObject): string {
  const known = KNOWN_PATHS[`${obj.apiVersion}/${obj.kind}`];
  if (!known) throw new Error(`cannot install ${obj.apiVersion} ${obj.kind}: unknown kind`);
  return known.path;
}

function fail(what: string, res: ApiResponse): never {
  const msg = objectBody(res).message ? objectBody(res).message : JSON.stringify(res.body);
  throw new Error(`${what}: HTTP ${res.status}: ${msg}`);
}

/**
 * Create or replace (PUT with the live resourceVersion): what `kubectl apply` would end with for
 * these objects. An unchanged object is not rewritten, and a CRD replaced by the same definition
 * keeps its instances, so a rerun on the same data folder keeps everything that was created.
 */
export async function createOrReplace(api: Pick<ApiServer, 'url' | 'caPem' | 'token'>, obj: KubeObject): Promise<'created' | 'replaced'> {
  const base = collectionPath(obj);
  const name = obj.metadata.name as string;
  const live = await apiRequest(api, 'GET', `${base}/${encodeURIComponent(name)}`);
  if (live.status === 404) {
    const res = await apiRequest(api, 'POST', base, obj);
    if (res.status !== 201 && res.status !== 200) fail(`creating ${obj.kind} ${name}`, res);
    return 'created';
  }
  if (live.status !== 200) fail(`reading ${obj.kind} ${name}`, live);
  const body = { ...obj, metadata: { ...obj.metadata, resourceVersion: objectBody(live).metadata.resourceVersion } };
  const res = await apiRequest(api, 'PUT', `${base}/${encodeURIComponent(name)}`, body);
  if (res.status !== 200 && res.status !== 201) fail(`replacing ${obj.kind} ${name}`, res);
  return 'replaced';
}

// ---- manifests ----------------------------------------------------------------------------------

async function readManifest(file: string): Promise<KubeObject[]> {
  const path = join(MANIFESTS_DIR, file);
  const out: KubeObject[] = [];
  for (const doc of parseAllDocuments(await readFile(path, 'utf8'))) {
    if ('errors' in doc && doc.errors.length > 0) throw new Error(`${path}: ${doc.errors[0]?.message}`);
    const obj = doc.toJS() as KubeObject | null;
    if (obj && typeof obj === 'object' && obj.kind) out.push(obj);
  }
  return out;
}

/** admitlb's namespace, CRDs and admission policies (webhook-manifests/), unchanged. */
export async function admitlbResources(): Promise<KubeObject[]> {
  return [...(await readManifest('namespace.yaml')), ...(await readManifest('crds.yaml')), ...(await readManifest('admission-policies.yaml'))];
}

/**
 * The webhook configurations of webhook-manifests/webhook-configurations.yaml with one change per
 * webhook: `clientConfig.service` becomes `clientConfig.url` = baseUrl + the service's path, and the
 * caBundle is set. Everything else (rules, selectors, matchConditions, policies) is kept as shipped.
 */
export async function webhookConfigurations(baseUrl: string, caPem: string): Promise<KubeObject[]> {
  const caBundle = Buffer.from(caPem).toString('base64');
  const base = baseUrl.replace(/\/$/, '');
  return (await readManifest('webhook-configurations.yaml')).map((cfg) => ({
    ...cfg,
    webhooks: (cfg.webhooks as KubeObject[]).map((w) => {
      const { service, url: _url, ...rest } = (w.clientConfig ?? {}) as KubeObject;
      return { ...w, clientConfig: { ...rest, url: `${base}${service?.path ?? ''}`, caBundle } };
    }),
  }));
}

/** Installs CRDs (and the namespace); then the webhook configurations if a webhook URL is given. */
export async function installAdmitlb(api: Pick<ApiServer, 'url' | 'caPem' | 'token'>, webhook?: { url: string; caPem: string }): Promise<void> {
  for (const obj of await admitlbResources()) await createOrReplace(api, obj);
  if (webhook) for (const obj of await webhookConfigurations(webhook.url, webhook.caPem)) await createOrReplace(api, obj);
}

/** Creates DEFAULT_POOL when the cluster has no IPPool at all (a user's own pools are left alone). */
export async function ensureDefaultPool(api: Pick<ApiServer, 'url' | 'caPem' | 'token'>): Promise<boolean> {
  const list = await apiRequest(api, 'GET', '/apis/admitlb.io/v1alpha1/ippools');
  if (list.status !== 200) fail('listing IPPools', list);
  if ((objectBody(list).items as unknown[]).length > 0) return false;
  const res = await apiRequest(api, 'POST', '/apis/admitlb.io/v1alpha1/ippools', DEFAULT_POOL);
  if (res.status !== 201) fail('creating the default IPPool', res);
  return true;
}

// ---- certificates -------------------------------------------------------------------------------

export type { WebhookFiles };

const RENEW_BEFORE_MS = 30 * 86_400_000;

/**
 * The webhook's CA, serving certificate (127.0.0.1, ::1, localhost) and signing key in
 * <dataDir>/certs, generated on first use. The CA is kept across runs; a serving certificate that
 * expires within 30 days is reissued from it. Existing signing keys are kept, so assignments
 * signed in an earlier run still verify.
 */
export async function ensureWebhookFiles(dataDir: string): Promise<WebhookFiles> {
  const certsDir = join(dataDir, 'certs');
  const files = {
    certsDir,
    tlsCertFile: join(certsDir, 'tls.crt'),
    tlsKeyFile: join(certsDir, 'tls.key'),
    signingKeysDir: join(certsDir, 'signing'),
  };
  const caCrt = join(certsDir, 'ca.crt');
  const caKey = join(certsDir, 'ca.key');
  const haveCa = existsSync(caCrt) && existsSync(caKey);
  let fresh = haveCa && existsSync(files.tlsCertFile) && existsSync(files.tlsKeyFile);
  if (fresh) {
    const validTo = Date.parse(new X509Certificate(readFileSync(files.tlsCertFile)).validTo);
    fresh = validTo - Date.now() > RENEW_BEFORE_MS;
  }
  if (!fresh) {
    const ca = haveCa ? { certPem: readFileSync(caCrt, 'utf8'), keyPem: readFileSync(caKey, 'utf8') } : undefined;
    const certs = await generateWebhookCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1', '::1'], ca });
    await writeCertificates(certsDir, certs);
  }
  if (!existsSync(join(files.signingKeysDir, ACTIVE_SIGNING_KEY_FILE))) {
    await writeSigningKey(files.signingKeysDir, await generateSigningKey(), true);
  }
  return { ...files, caPem: readFileSync(caCrt, 'utf8') };
}

// ---- the data folder lock -----------------------------------------------------------------------

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One process per data folder: the double compacts its journal on start, which would pull the
 * journal from under a sandbox already running on the same folder. A lock left by a dead process
 * is taken over.
 */
function lockDataDir(dataDir: string): () => void {
  const path = join(dataDir, 'sandbox.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => rmSync(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pidAlive(pid)) {
        throw new SandboxError(`the data folder ${dataDir} is in use by process ${pid}${pid === process.pid ? ' (this process)' : ''}; stop it first or pass --data-dir <another folder>`);
      }
      rmSync(path, { force: true });
    }
  }
  throw new SandboxError(`cannot lock the data folder ${dataDir}`);
}

const CONTROL_PLANE_FILE = 'control-plane';

/**
 * A data folder belongs to one kind of control plane (the double's journal and etcd's data are not
 * interchangeable): the first start records it, a later start with the other kind is refused.
 */
function checkControlPlaneKind(dataDir: string, kind: ControlPlaneKind): void {
  const path = join(dataDir, CONTROL_PLANE_FILE);
  let recorded: string | undefined;
  if (existsSync(path)) recorded = readFileSync(path, 'utf8').trim();
  else if (existsSync(join(dataDir, 'journal.jsonl'))) recorded = 'sandbox';
  else if (existsSync(join(dataDir, 'etcd'))) recorded = 'real';
  if (recorded && recorded !== kind) {
    throw new SandboxError(`the data folder ${dataDir} holds a cluster of the ${recorded === 'real' ? 'real control plane' : 'API double'}; pass --control-plane ${recorded} or another --data-dir`);
  }
  writeFileSync(path, `${kind}\n`);
}

async function freePort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolvePromise(port));
    });
  });
}

/** Fails early, with a clear message, when host:port cannot be bound. */
function probeListen(host: string, port: number): Promise<void> {
  if (port === 0) return Promise.resolve();
  return new Promise((resolvePromise, reject) => {
    const srv = net.createServer();
    srv.once('error', (err: NodeJS.ErrnoException) => reject(listenError(err, host, port)));
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolvePromise()));
  });
}

function listenError(err: NodeJS.ErrnoException, host: string, port: number): Error {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  if (err.code === 'EADDRINUSE') return new SandboxError(`cannot listen on ${where}: the address is already in use (is another sandbox running?); stop that process or pass --listen ${host.includes(':') ? `[${host}]` : host}:<other port>`);
  if (err.code === 'EADDRNOTAVAIL') return new SandboxError(`cannot listen on ${where}: no interface has the address ${host}`);
  if (err.code === 'EACCES') return new SandboxError(`cannot listen on ${where}: permission denied (ports below 1024 need privileges)`);
  return err;
}

// ---- the sandbox --------------------------------------------------------------------------------

export type ControlPlaneKind = 'sandbox' | 'real';

export interface SandboxOptions {
  /** the data folder; a fresh folder is a fresh cluster */
  dataDir: string;
  /**
   * `sandbox` (default): the API double in this process. `real`: etcd, kube-apiserver and
   * kube-controller-manager built by `npm run cluster:build`, admitlb installed with `kubectl apply -k`
   * and its webhook running as the manifests' ServiceAccount.
   */
  controlPlane?: ControlPlaneKind;
  /** API listen address (default 127.0.0.1) */
  host?: string;
  /** API listen port (default 6443; 0 = any free port) */
  port?: number;
  /** webhook port on 127.0.0.1 (default 0 = any free port; the configurations follow it) */
  webhookPort?: number;
  /** webhook (and controller) logger; default: JSON lines in <dataDir>/admitlb.log */
  logger?: pino.Logger | undefined;
  /** create the default pool when no pool exists (default true) */
  defaultPool?: boolean;
  /** controller settings (leader election, orphan grace...); defaults as for `admitlb webhook` */
  controller?: Partial<ControllerConfig>;
  /** extra options for the API double (tests, benchmarks) */
  apiServer?: Partial<Omit<ApiServerOptions, 'dataDir' | 'host' | 'port'>>;
  /**
   * Whether the webhook requires the API server's client certificate (default true). false models a
   * managed control plane that cannot present one (`admitlb certs --api-server-auth none`): any
   * caller reaches admission, as the defence-in-depth tests need.
   */
  webhookClientAuth?: boolean;
}

export interface RunningSandbox {
  api: ApiServer;
  controlPlane: ControlPlaneKind;
  /** the real control plane's handle (PIDs, versions, the webhook client CA) when controlPlane is real */
  real: RealControlPlane | undefined;
  /** the admin kubeconfig */
  kubeconfigPath: string;
  /**
   * The kubeconfig each admitlb component uses: on the real control plane one per ServiceAccount of
   * the manifests (RBAC applies); on the double, which has no authorization, the admin's token
   * impersonating that ServiceAccount (admission sees the account, as on a cluster).
   */
  identity(component: Component): Promise<string>;
  webhook: RunningWebhook;
  dataDir: string;
  /** the webhook's serving pair, CA and signing keys (for extra webhook processes) */
  files: WebhookFiles;
  /** the log file when no logger was given */
  logFile: string | undefined;
  /** whether this start created the default pool */
  createdDefaultPool: boolean;
  /** stops the webhook, then the API server; safe to call twice */
  close(): Promise<void>;
}

export async function startSandbox(options: SandboxOptions): Promise<RunningSandbox> {
  const dataDir = resolve(options.dataDir);
  const host = options.host ?? DEFAULT_LISTEN.host;
  const port = options.port ?? DEFAULT_LISTEN.port;
  mkdirSync(dataDir, { recursive: true });
  const unlock = lockDataDir(dataDir);
  const cleanups: (() => Promise<void> | void)[] = [unlock];
  const cleanup = async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  };
  try {
    await probeListen(host, port);
    const controlPlane = options.controlPlane ?? 'sandbox';
    checkControlPlaneKind(dataDir, controlPlane);
    let api: ApiServer;
    let real: RealControlPlane | undefined;
    let files: WebhookFiles;
    let webhookKubeconfig: string;
    // The real API server calls the webhook at a URL fixed when admitlb is installed, so the port
    // is chosen before the webhook starts.
    const webhookPort = options.webhookPort || (controlPlane === 'real' ? await freePort() : 0);
    if (controlPlane === 'real') {
      try {
        api = real = await startRealControlPlane({ dataDir, host, port });
      } catch (err) {
        if (err instanceof ControlPlaneError) throw new SandboxError(err.message);
        throw err;
      }
      cleanups.push(() => api.close());
      files = (await installWithKustomize(api, dataDir, `https://127.0.0.1:${webhookPort}`)).files;
      webhookKubeconfig = await serviceAccountKubeconfig(api, dataDir, COMPONENT_ACCOUNTS.webhook);
    } else {
      files = await ensureWebhookFiles(dataDir);
      try {
        api = await startApiServer({ ...options.apiServer, dataDir, host, port });
      } catch (err) {
        throw listenError(err as NodeJS.ErrnoException, host, port);
      }
      cleanups.push(() => api.close());
      await installAdmitlb(api);
      webhookKubeconfig = impersonationKubeconfig(api, dataDir, COMPONENT_ACCOUNTS.webhook);
    }
    const identities = new Map<Component, Promise<string>>();
    const identity = (component: Component) => {
      if (!real) return Promise.resolve(impersonationKubeconfig(api, dataDir, COMPONENT_ACCOUNTS[component]));
      let p = identities.get(component);
      if (!p) identities.set(component, (p = serviceAccountKubeconfig(api, dataDir, COMPONENT_ACCOUNTS[component])));
      return p;
    };

    let logFile: string | undefined;
    let logger = options.logger;
    if (!logger) {
      logFile = join(dataDir, 'admitlb.log');
      const dest = pino.destination({ dest: logFile, sync: true, mkdir: true });
      logger = pino({ level: 'info', base: null }, dest);
    }
    const config = parseServerConfig({
      host: '127.0.0.1',
      port: webhookPort,
      tlsCertFile: files.tlsCertFile,
      tlsKeyFile: files.tlsKeyFile,
      signingKeysDir: files.signingKeysDir,
      // Only the API server may call admission (it presents its webhook client certificate), unless
      // the caller models a control plane that cannot.
      ...(options.webhookClientAuth === false ? {} : { clientCaFile: api.webhookClientCaFile }),
      kubeconfig: webhookKubeconfig,
      ...(options.controller ? { controller: options.controller } : {}),
    });
    let webhook: RunningWebhook;
    try {
      webhook = await startWebhook(config, { logger });
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EADDRINUSE' || e.code === 'EACCES') throw new SandboxError(`the webhook cannot listen on 127.0.0.1:${config.port}: ${e.code === 'EADDRINUSE' ? 'the port is already in use' : 'permission denied'}; pass another --webhook-port (0 picks a free one)`);
      throw err;
    }
    cleanups.push(() => webhook.close());
    // fastify reports the bound address; the configurations use 127.0.0.1 (a SAN of the certificate).
    if (!real) {
      const webhookUrl = `https://127.0.0.1:${new URL(webhook.url).port}`;
      for (const obj of await webhookConfigurations(webhookUrl, files.caPem)) await createOrReplace(api, obj);
    }
    const createdDefaultPool = options.defaultPool === false ? false : await ensureDefaultPool(api);

    let closed: Promise<void> | undefined;
    return {
      api,
      controlPlane,
      real,
      kubeconfigPath: api.kubeconfigPath,
      identity,
      webhook,
      dataDir,
      files,
      logFile,
      createdDefaultPool,
      close: () => (closed ??= cleanup()),
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

// ---- the command --------------------------------------------------------------------------------

export interface SandboxCommandOptions {
  controlPlane: ControlPlaneKind;
  dataDir: string;
  host: string;
  port: number;
  webhookPort: number;
}

/** `HOST:PORT`, `[v6]:PORT`, `:PORT` or `HOST` (port 6443). */
export function parseListen(value: string): { host: string; port: number } {
  let host: string;
  let portText: string | undefined;
  const v6 = value.match(/^\[([^\]]+)\](?::(.*))?$/);
  if (v6) [host, portText] = [v6[1]!, v6[2]];
  else if (net.isIPv6(value)) host = value;
  else {
    const i = value.lastIndexOf(':');
    [host, portText] = i >= 0 ? [value.slice(0, i), value.slice(i + 1)] : [value, undefined];
  }
  host ||= DEFAULT_LISTEN.host;
  const port = portText === undefined ? DEFAULT_LISTEN.port : Number(portText);
  if (!(portText === undefined || /^\d+$/.test(portText)) || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new SandboxError(`--listen ${value}: the port must be a number from 0 to 65535`);
  }
  if (net.isIP(host) === 0 && host !== 'localhost') throw new SandboxError(`--listen ${value}: ${host} is not an IP address`);
  return { host: host === 'localhost' ? '127.0.0.1' : host, port };
}

export function parseSandboxArgs(argv: string[]): SandboxCommandOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      'data-dir': { type: 'string' },
      listen: { type: 'string' },
      'webhook-port': { type: 'string' },
      'control-plane': { type: 'string' },
    },
  });
  const controlPlane = values['control-plane'] ?? 'sandbox';
  if (controlPlane !== 'sandbox' && controlPlane !== 'real') throw new SandboxError(`--control-plane must be sandbox (the API double) or real (etcd + kube-apiserver), got ${controlPlane}`);
  const listen = values.listen === undefined ? DEFAULT_LISTEN : parseListen(values.listen);
  const webhookPort = values['webhook-port'] === undefined ? 0 : Number(values['webhook-port']);
  if (!/^\d+$/.test(values['webhook-port'] ?? '0') || webhookPort > 65535) throw new SandboxError(`--webhook-port must be a number from 0 to 65535, got ${values['webhook-port']}`);
  // Each kind has its own default folder: a data folder holds one kind of cluster.
  const dataDir = resolve(values['data-dir'] ?? (controlPlane === 'real' ? DEFAULT_REAL_DATA_DIR : DEFAULT_DATA_DIR));
  return { controlPlane, dataDir, host: listen.host, port: listen.port, webhookPort };
}

/** Whether `host` (an IP address) reaches only this machine: 127.0.0.0/8, ::1 and their mapped forms. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (net.isIPv4(h)) return h.startsWith('127.');
  const mapped = h.match(/^(?:0*:)*:?ffff:(\d+\.\d+\.\d+\.\d+)$/);
  if (mapped) return mapped[1]!.startsWith('127.');
  if (!net.isIPv6(h)) return false;
  const sl = new net.SocketAddress({ address: h, family: 'ipv6' });
  return sl.address === '::1';
}

/**
 * The warning for an API server reachable from other machines (a wildcard or a routable address):
 * its token, stored in the data folder and the kubeconfig, is cluster-admin (the double has no
 * authorization), so anyone who obtains it owns the sandbox.
 */
export function exposureWarning(host: string, port: number, dataDir: string): string | undefined {
  if (isLoopback(host)) return undefined;
  const where = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return [
    `admitlb sandbox: WARNING: the API server listens on ${where}, which other machines can reach.`,
    `  Its bearer token (${join(dataDir, 'token')}, also in the kubeconfig) is cluster-admin: the sandbox has no authorization.`,
    '  Anyone who gets the token can read and change everything here. Listen on 127.0.0.1 unless the network is yours alone.',
  ].join('\n');
}

function shown(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel && !rel.startsWith('..') ? rel : path;
}

/** Runs `admitlb sandbox`: returns -1 while running (Ctrl-C / SIGTERM stop it), or an exit code. */
export async function runSandboxCommand(argv: string[]): Promise<number> {
  let opts: SandboxCommandOptions;
  let sandbox: RunningSandbox;
  try {
    opts = parseSandboxArgs(argv);
    const warning = exposureWarning(opts.host, opts.port, opts.dataDir);
    if (warning) console.error(warning);
    sandbox = await startSandbox({ controlPlane: opts.controlPlane, dataDir: opts.dataDir, host: opts.host, port: opts.port, webhookPort: opts.webhookPort });
  } catch (err) {
    if (err instanceof SandboxError) {
      console.error(`admitlb sandbox: ${err.message}`);
      return 1;
    }
    throw err;
  }
  closeWithGrace({ delay: 10_000 }, async ({ err, signal }) => {
    if (err) console.error(err);
    if (signal) console.log(`\n${signal}: stopping the webhook and the ${sandbox.real ? 'control plane (kube-controller-manager, kube-apiserver, etcd)' : 'API server'}`);
    await sandbox.close();
    if (signal) console.log(`stopped; the cluster is kept in ${shown(sandbox.dataDir)} (run again to continue)`);
  });
  const kubeconfig = sandbox.kubeconfigPath;
  console.log(
    [
      sandbox.real
        ? `admitlb sandbox: kube-apiserver ${sandbox.real.versions.kubernetes} (etcd ${sandbox.real.versions.etcd}) ${sandbox.api.url}, webhook ${sandbox.webhook.url} (as ServiceAccount admitlb-system/admitlb)`
        : `admitlb sandbox: API server ${sandbox.api.url}, webhook ${sandbox.webhook.url}`,
      `data folder: ${sandbox.dataDir}${sandbox.createdDefaultPool ? ` (new cluster; IPPool "default": ${DEFAULT_POOL.spec.addresses.join(', ')})` : ''}`,
      ...(sandbox.logFile ? [`webhook log: ${sandbox.logFile}`] : []),
      `kubeconfig: ${kubeconfig}`,
      '',
      'In another terminal:',
      '',
      `  export KUBECONFIG=${kubeconfig}`,
      `  ${FIRST_COMMAND}`,
      '  kubectl get svc web',
      '  kubectl get ippools,ipclaims',
      '',
      'Ctrl-C stops everything; running it again keeps what was created.',
    ].join('\n'),
  );
  return -1;
}
