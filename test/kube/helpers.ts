// Shared helpers for the Kubernetes adapter tests: the API server double with admitlb's CRDs, a
// kubeconfig pointed elsewhere, a TCP proxy that can drop or black-hole connections, a recording logger.
import type { Logger } from '../../src/log.ts';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { KubeConfig } from '@kubernetes/client-node';
import { loadKubeConfig } from '../../src/kube/client.ts';
import type { ApiServerOptions } from '../../src/sandbox/apiserver.ts';
import { removeDir, startSandbox, type Sandbox } from '../sandbox/helpers.ts';

export { removeDir, startSandbox, type Sandbox };

const crdsYaml = readFileSync(new URL('../../webhook-manifests/crds.yaml', import.meta.url), 'utf8');

/** Creates the IPPool and IPClaim CRDs (idempotent: AlreadyExists is fine). */
export async function installCrds(sb: Sandbox): Promise<void> {
  for (const doc of parseAllDocuments(crdsYaml)) {
    const crd = doc.toJS();
    if (!crd) continue;
    const res = await sb.request('POST', '/apis/apiextensions.k8s.io/v1/customresourcedefinitions', crd);
    if (res.status !== 201 && res.status !== 409) throw new Error(`installing ${crd.metadata?.name}: ${res.status} ${res.text}`);
  }
}

export async function startAdmitlbSandbox(prefix: string, opts: Partial<ApiServerOptions> = {}, dataDir?: string): Promise<Sandbox> {
  const sb = await startSandbox(prefix, opts, dataDir);
  await installCrds(sb);
  return sb;
}

/** The sandbox's kubeconfig with the server URL replaced (a proxy, a closed port). */
export function kubeConfigWithServer(kubeconfigPath: string, server: string): KubeConfig {
  const base = loadKubeConfig(kubeconfigPath);
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: base.clusters.map((c) => ({ ...c, server })),
    users: base.users,
    contexts: base.contexts,
    currentContext: base.currentContext,
  });
  return kc;
}

/** A port that nothing listens on (bound, then released). */
export async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

export type ProxyMode = 'pass' | 'down' | 'blackhole';

export interface TcpProxy {
  port: number;
  url: string;
  /** pass: forward; down: reset every connection, new ones too; blackhole: accept but forward nothing */
  setMode(mode: ProxyMode): void;
  /** The connections open now are reset (RST) when their client next sends: a kept-alive socket the server dropped. */
  resetIdleOnNextRequest(): void;
  /** connections accepted, and connections reset by resetIdleOnNextRequest */
  stats(): { accepted: number; reset: number };
  close(): Promise<void>;
}

/** A TCP proxy to 127.0.0.1:target (TLS passes through: the certificate names 127.0.0.1). */
export async function startProxy(target: number): Promise<TcpProxy> {
  let mode: ProxyMode = 'pass';
  const sockets = new Set<net.Socket>();
  const clients = new Set<net.Socket>();
  const doomed = new WeakSet<net.Socket>();
  const counts = { accepted: 0, reset: 0 };
  const server = net.createServer((client) => {
    counts.accepted++;
    clients.add(client);
    client.on('close', () => clients.delete(client));
    if (mode === 'down') {
      client.destroy();
      return;
    }
    const upstream = net.connect(target, '127.0.0.1');
    sockets.add(client);
    sockets.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on('data', (d) => {
      if (doomed.has(client)) {
        counts.reset++;
        client.resetAndDestroy();
        upstream.destroy();
        return;
      }
      if (mode === 'pass') upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (mode === 'pass') client.write(d);
    });
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', end);
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    url: `https://127.0.0.1:${port}`,
    resetIdleOnNextRequest() {
      for (const c of clients) doomed.add(c);
    },
    stats: () => ({ ...counts }),
    setMode(m) {
      mode = m;
      if (m === 'down') for (const s of sockets) s.destroy();
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

export interface LogEntry {
  level: 'info' | 'warn' | 'error';
  obj: Record<string, unknown>;
  msg: string;
}

/** A Pick<Logger, 'info' | 'warn' | 'error'> that keeps what it is given; ADMITLB_TEST_LOG=1 also prints it. */
export function recordingLogger(): Pick<Logger, 'info' | 'warn' | 'error'> & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const at = (level: LogEntry['level']) => (obj: object, msg: string) => {
    entries.push({ level, obj: obj as Record<string, unknown>, msg });
    if (process.env.ADMITLB_TEST_LOG) console.error(level, msg, JSON.stringify(obj));
  };
  return { entries, info: at('info'), warn: at('warn'), error: at('error') };
}

export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 5000, everyMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
