// Shared by the end-to-end tests and bench/sandbox.bench.ts: a sandbox (API double + admitlb) in a
// temp folder driven by the real kubectl, manifests, webhook child processes and a round-robin
// TLS-passthrough proxy that spreads the API server's webhook calls over them.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, rmSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import pino from 'pino';
import { stringify as stringifyYaml } from 'yaml';
import type { WebhookCall } from '../../src/sandbox/admission.ts';
import { startApiServer, type ApiServer } from '../../src/sandbox/apiserver.ts';
import {
  apiRequest,
  createOrReplace,
  ensureWebhookFiles,
  installAdmitlb,
  objectBody,
  startSandbox,
  webhookConfigurations,
  PROJECT_ROOT,
  type ApiResponse,
  type ControlPlaneKind,
  type RunningSandbox,
  type SandboxOptions,
  type WebhookFiles,
} from '../../src/cmd/sandbox.ts';
import { COMPONENT_ACCOUNTS, installWithKustomize, serviceAccountKubeconfig } from '../../src/sandbox/kustomize-install.ts';
import { startRealControlPlane } from '../../src/sandbox/real-control-plane.ts';
import { runKubectl, tempDir, type KubectlResult } from '../sandbox/helpers.ts';

export type { KubectlResult };

export interface E2eCluster {
  sandbox: RunningSandbox;
  dataDir: string;
  kubeconfig: string;
  /** the real kubectl with this cluster's kubeconfig and its own discovery cache */
  kubectl(args: string[], input?: string): Promise<KubectlResult>;
  /** `kubectl apply -f -` of one or more objects (a YAML stream) */
  apply(...objects: object[]): Promise<KubectlResult>;
  /** a raw JSON request to the API server */
  request(method: string, path: string, body?: unknown): Promise<ApiResponse>;
  /** waits until the webhook's cache knows the pool (its informer follows the API by a few ms) */
  waitForPool(name: string): Promise<void>;
  /** stops the sandbox (and, unless keepData, removes its folder) */
  close(opts?: { keepData?: boolean }): Promise<void>;
}

/** The Kubernetes target of this run (scripts/run-tests.mjs sets E2E_TARGET per run): the API double or the real control plane. */
export function e2eTarget(): ControlPlaneKind {
  const t = process.env.E2E_TARGET ?? 'sandbox';
  if (t !== 'sandbox' && t !== 'real') throw new Error(`E2E_TARGET must be sandbox or real inside a test run, got ${t}`);
  return t;
}

export async function startCluster(prefix: string, opts: Partial<SandboxOptions> = {}): Promise<E2eCluster> {
  const dataDir = opts.dataDir ?? tempDir(`e2e-${prefix}`);
  const cacheDir = tempDir(`e2e-${prefix}-kubecache`);
  let sandbox: RunningSandbox;
  try {
    sandbox = await startSandbox({ controlPlane: e2eTarget(), host: '127.0.0.1', port: 0, logger: process.env.ADMITLB_E2E_LOG ? undefined : pino({ level: 'silent' }), ...opts, dataDir });
  } catch (err) {
    rmSync(cacheDir, { recursive: true, force: true });
    if (!opts.dataDir) rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  const kubectl = (args: string[], input?: string) => runKubectl(sandbox.kubeconfigPath, cacheDir, args, input);
  const request = (method: string, path: string, body?: unknown) => apiRequest(sandbox.api, method, path, body);
  return {
    sandbox,
    dataDir,
    kubeconfig: sandbox.kubeconfigPath,
    kubectl,
    apply: (...objects) => kubectl(['apply', '-f', '-'], objects.map((o) => stringifyYaml(o)).join('---\n')),
    request,
    waitForPool: (name) => waitForPool(request, name),
    async close({ keepData = false } = {}) {
      await sandbox.close();
      rmSync(cacheDir, { recursive: true, force: true });
      if (!keepData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Dry-run creates naming the pool until the webhook no longer answers that it does not exist. */
export async function waitForPool(request: E2eCluster['request'], name: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const probe = service('pool-probe', { annotations: { 'admitlb.io/pool': name } });
  for (;;) {
    const r = await request('POST', '/api/v1/namespaces/default/services?dryRun=All', probe);
    const message: string = objectBody(r).message ?? '';
    if (!message.includes(`IPPool "${name}" does not exist`)) return;
    if (Date.now() > deadline) throw new Error(`the webhook did not see IPPool ${name} within ${timeoutMs} ms: ${message}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// ---- manifests ----

export interface ServiceOptions {
  namespace?: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
  type?: string;
  ports?: (number | { port: number; protocol?: string; name?: string })[];
  spec?: Record<string, unknown>;
}

export function service(name: string, o: ServiceOptions = {}): Record<string, any> {
  const ports = (o.ports ?? [80]).map((p, i) => {
    const q = typeof p === 'number' ? { port: p } : p;
    return { name: q.name ?? `p${i}-${q.port}`, port: q.port, protocol: q.protocol ?? 'TCP', targetPort: q.port };
  });
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, ...(o.namespace ? { namespace: o.namespace } : {}), ...(o.annotations ? { annotations: o.annotations } : {}), ...(o.labels ? { labels: o.labels } : {}) },
    spec: { type: o.type ?? 'LoadBalancer', selector: { app: name }, ports, ...o.spec },
  };
}

export function pool(name: string, spec: Record<string, unknown>): Record<string, any> {
  return { apiVersion: 'admitlb.io/v1alpha1', kind: 'IPPool', metadata: { name }, spec };
}

export function namespace(name: string, labels?: Record<string, string>): Record<string, any> {
  return { apiVersion: 'v1', kind: 'Namespace', metadata: { name, ...(labels ? { labels } : {}) } };
}

// ---- webhook child processes and the proxy ----

export interface WebhookProcess {
  child: ChildProcess;
  port: number;
  /** everything the process wrote to stderr (stdout carries pino's JSON lines, ignored) */
  stderr(): string;
  /** SIGTERM, then SIGKILL after 5 s; resolves when the process is gone */
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function getStatus(url: string, caPem: string): Promise<number> {
  return new Promise((resolve) => {
    const req = https.get(url, { ca: caPem, timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
  });
}

/** `admitlb webhook` as a child process (the binary users run), ready when /readyz answers 200. */
export async function spawnWebhookProcess(files: WebhookFiles, kubeconfig: string, opts: { logLevel?: string; timeoutMs?: number; logFile?: string; clientCaFile?: string } = {}): Promise<WebhookProcess> {
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      join(PROJECT_ROOT, 'bin/admitlb.js'),
      'webhook',
      '--tls-cert-file', files.tlsCertFile,
      '--tls-key-file', files.tlsKeyFile,
      '--signing-keys-dir', files.signingKeysDir,
      '--host', '127.0.0.1',
      '--port', String(port),
      '--kubeconfig', kubeconfig,
      '--log-level', opts.logLevel ?? 'warn',
      ...(opts.clientCaFile ? ['--client-ca-file', opts.clientCaFile] : []),
    ],
    { stdio: ['ignore', opts.logFile ? openSync(opts.logFile, 'a') : 'ignore', 'pipe'], env: { ...process.env, KUBECONFIG: kubeconfig } },
  );
  let err = '';
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const exited = new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve())));
  const proc: WebhookProcess = {
    child,
    port,
    stderr: () => err,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`admitlb webhook exited with ${child.exitCode}: ${err}`);
    if ((await getStatus(`https://127.0.0.1:${port}/readyz`, files.caPem)) === 200) return proc;
    if (Date.now() > deadline) {
      await proc.stop();
      throw new Error(`admitlb webhook on port ${port} not ready: ${err}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface RoundRobinProxy {
  port: number;
  url: string;
  /** connections handed to each target, in target order */
  connections: number[];
  close(): Promise<void>;
}

/**
 * A TLS-passthrough TCP proxy on 127.0.0.1 that hands each new connection to the next target in
 * turn. The API server keeps connections alive, so calls spread by connection, as behind a Service.
 */
export async function startRoundRobinProxy(targets: { host: string; port: number }[]): Promise<RoundRobinProxy> {
  const sockets = new Set<net.Socket>();
  const connections = targets.map(() => 0);
  let next = 0;
  const server = net.createServer((client) => {
    if (targets.length === 0) {
      client.destroy();
      return;
    }
    const i = next++ % targets.length;
    connections[i]!++;
    const upstream = net.connect(targets[i]!.port, targets[i]!.host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: `https://127.0.0.1:${port}`,
    connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// ---- many clients ----

export interface LoadResult {
  created: { namespace: string; name: string; assigned: string }[];
  /** denials and errors: status and message */
  failed: { name: string; status: number; message: string }[];
  /** client-observed create latency (ms), one per attempt that succeeded */
  latenciesMs: number[];
  /** attempts that were retried after a 409 "could not claim" or 5xx, with the status and message */
  retries: number;
  retried: { name: string; status: number; message: string }[];
  elapsedMs: number;
}

/**
 * `total` Services created by `clients` parallel clients (each its own keep-alive connection, as
 * separate kubectl or client-node processes would hold), spread over `namespaces`. A create that
 * comes back as a retryable admission failure is retried, as a client would.
 */
export async function createServicesInParallel(
  api: ApiServer,
  opts: { total: number; clients: number; namespaces: string[]; prefix?: string; maxRetries?: number; type?: 'LoadBalancer' | 'ClusterIP'; spec?: Record<string, unknown> },
): Promise<LoadResult> {
  const result: LoadResult = { created: [], failed: [], latenciesMs: [], retries: 0, retried: [], elapsedMs: 0 };
  let nextIndex = 0;
  const started = performance.now();
  const client = async () => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (;;) {
        const i = nextIndex++;
        if (i >= opts.total) return;
        const ns = opts.namespaces[i % opts.namespaces.length]!;
        const name = `${opts.prefix ?? 'load'}-${i}`;
        for (let attempt = 0; ; attempt++) {
          const t0 = performance.now();
          const r = await apiRequest(api, 'POST', `/api/v1/namespaces/${ns}/services`, service(name, { namespace: ns, type: opts.type ?? 'LoadBalancer', ...(opts.spec ? { spec: opts.spec } : {}) }), agent);
          if (r.status === 201) {
            result.latenciesMs.push(performance.now() - t0);
            result.created.push({ namespace: ns, name, assigned: objectBody(r).metadata?.annotations?.['admitlb.io/assigned-ips'] ?? '' });
            break;
          }
          const message: string = objectBody(r).message ?? String(r.body);
          const retryable = r.status >= 500 || (r.status === 409 && message.includes('could not claim'));
          if (retryable && attempt < (opts.maxRetries ?? 5)) {
            result.retries++;
            result.retried.push({ name: `${ns}/${name}`, status: r.status, message });
            continue;
          }
          result.failed.push({ name: `${ns}/${name}`, status: r.status, message });
          break;
        }
      }
    } finally {
      agent.destroy();
    }
  };
  await Promise.all(Array.from({ length: opts.clients }, client));
  result.elapsedMs = performance.now() - started;
  return result;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

// ---- several webhook processes behind one URL ----

export interface MultiWebhookCluster {
  api: ApiServer;
  dataDir: string;
  files: WebhookFiles;
  webhooks: WebhookProcess[];
  proxy: RoundRobinProxy;
  target: ControlPlaneKind;
  /** every webhook call the API server made, with its duration (the double reports them; kube-apiserver does not) */
  calls: WebhookCall[] | undefined;
  /** `admitlb_admission_decisions_total` summed per process (from /metrics) */
  decisionsPerProcess(): Promise<number[]>;
  close(): Promise<void>;
}

async function scrape(port: number, caPem: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = https.get(`https://127.0.0.1:${port}/metrics`, { ca: caPem }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve(text));
    });
    req.on('error', reject);
  });
}

/**
 * The API double with admitlb installed, `count` `admitlb webhook` child processes, and the webhook
 * configurations pointing at a round-robin proxy in front of them (one URL, as a Service would be).
 * `pools` are created once every process serves; the call returns when each process has them cached.
 */
export async function startMultiWebhookCluster(prefix: string, opts: { count: number; pools: object[] }): Promise<MultiWebhookCluster> {
  const dataDir = tempDir(`e2e-${prefix}`);
  const calls: WebhookCall[] = [];
  // ADMITLB_E2E_KEEP=1 keeps the folder (the control plane's logs, the webhooks' audit logs) for a post-mortem.
  const cleanups: (() => Promise<void> | void)[] = [() => (process.env.ADMITLB_E2E_KEEP ? console.log(`# kept ${dataDir}`) : rmSync(dataDir, { recursive: true, force: true }))];
  const close = async () => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch {
        // keep closing the rest
      }
    }
  };
  try {
    // The proxy's URL goes into the webhook configurations, which the real control plane gets at
    // install time: it listens first and learns its targets once the processes serve.
    const targets: { host: string; port: number }[] = [];
    const proxy = await startRoundRobinProxy(targets);
    cleanups.push(() => proxy.close());
    let api: ApiServer;
    let files: WebhookFiles;
    let kubeconfig: string;
    if (e2eTarget() === 'real') {
      api = await startRealControlPlane({ dataDir });
      cleanups.push(() => api.close());
      files = (await installWithKustomize(api, dataDir, proxy.url)).files;
      kubeconfig = await serviceAccountKubeconfig(api, dataDir, COMPONENT_ACCOUNTS.webhook);
    } else {
      files = await ensureWebhookFiles(dataDir);
      api = await startApiServer({ dataDir, host: '127.0.0.1', port: 0, onWebhookCall: (call) => calls.push(call) });
      cleanups.push(() => api.close());
      await installAdmitlb(api);
      kubeconfig = api.kubeconfigPath;
    }
    const webhooks = await Promise.all(Array.from({ length: opts.count }, (_, i) => spawnWebhookProcess(files, kubeconfig, { clientCaFile: api.webhookClientCaFile, ...(process.env.ADMITLB_E2E_KEEP ? { logFile: join(dataDir, `webhook-${i}.log`), logLevel: 'info' } : {}) })));
    for (const w of webhooks) cleanups.push(() => w.stop());
    targets.push(...webhooks.map((w) => ({ host: '127.0.0.1', port: w.port })));
    proxy.connections.push(...webhooks.map(() => 0));
    if (e2eTarget() === 'sandbox') for (const obj of await webhookConfigurations(proxy.url, files.caPem)) await createOrReplace(api, obj);
    for (const p of opts.pools) {
      const r = await apiRequest(api, 'POST', '/apis/admitlb.io/v1alpha1/ippools', p);
      if (r.status !== 201) throw new Error(`creating pool: ${r.status} ${JSON.stringify(r.body)}`);
    }
    // Every process must have every pool in its cache before the load starts.
    const names = opts.pools.map((p) => (p as { metadata: { name: string } }).metadata.name);
    const deadline = Date.now() + 15_000;
    for (const w of webhooks) {
      for (;;) {
        const text = await scrape(w.port, files.caPem);
        if (names.every((n) => text.includes(`admitlb_pool_capacity_addresses{pool="${n}"`))) break;
        if (Date.now() > deadline) throw new Error(`webhook on port ${w.port} did not see pools ${names.join(', ')}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    calls.length = 0;
    return {
      api,
      target: e2eTarget(),
      dataDir,
      files,
      webhooks,
      proxy,
      calls: e2eTarget() === 'sandbox' ? calls : undefined,
      async decisionsPerProcess() {
        const out: number[] = [];
        for (const w of webhooks) {
          const text = await scrape(w.port, files.caPem);
          let sum = 0;
          for (const m of text.matchAll(/^admitlb_admission_decisions_total\{[^}]*webhook="services\.admitlb\.io"[^}]*\} (\d+)/gm)) sum += Number(m[1]);
          out.push(sum);
        }
        return out;
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * The end state after a load: `problems` are violations (an address assigned to two Services, two
 * claims for one address, a claim held by another Service than the one showing the address, a
 * Service without an address or without a claim); `orphans` are claims that back no Service, which
 * a create that failed after its claim was written leaves behind by design (the controller releases
 * them after a grace period), as "IPClaim <address> (<namespace>/<name>)".
 */
export async function checkNoAddressHeldTwice(api: ApiServer): Promise<{ services: number; claims: number; problems: string[]; orphans: string[] }> {
  const problems: string[] = [];
  const orphans: string[] = [];
  const svcs = objectBody(await apiRequest(api, 'GET', '/api/v1/services')).items as any[];
  const claimList = objectBody(await apiRequest(api, 'GET', '/apis/admitlb.io/v1alpha1/ipclaims')).items as any[];
  const holderOf = new Map<string, string>();
  let services = 0;
  for (const s of svcs) {
    if (s.spec.type !== 'LoadBalancer') continue;
    services++;
    const who = `${s.metadata.namespace}/${s.metadata.name}`;
    const ips: string = s.metadata.annotations?.['admitlb.io/assigned-ips'] ?? '';
    if (!ips) problems.push(`${who} has no assigned address`);
    for (const ip of ips.split(',').filter(Boolean)) {
      if (holderOf.has(ip)) problems.push(`${ip} is assigned to both ${holderOf.get(ip)} and ${who}`);
      holderOf.set(ip, who);
    }
  }
  const claimed = new Map<string, any>();
  for (const c of claimList) {
    if (claimed.has(c.spec.address)) problems.push(`two claims for ${c.spec.address}`);
    claimed.set(c.spec.address, c);
  }
  for (const [ip, who] of holderOf) {
    const c = claimed.get(ip);
    if (!c) problems.push(`${ip} (${who}) has no IPClaim`);
    else if (c.spec.heldBy !== who) problems.push(`the IPClaim for ${ip} is held by ${c.spec.heldBy}, the Service is ${who}`);
  }
  for (const [ip, c] of claimed) if (!holderOf.has(ip)) orphans.push(`IPClaim ${ip} (${c.spec.heldBy})`);
  return { services, claims: claimList.length, problems, orphans };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` every 25 ms until it returns a value; fails naming `what` after `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}
