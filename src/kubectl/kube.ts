// The plugin's view of a cluster: the kubeconfig kubectl would use (--kubeconfig, then KUBECONFIG,
// then ~/.kube/config; --context picks a context) and plain JSON requests over it. Reads only, with
// two exceptions that write nothing: doctor's server-side dry-run create and its access reviews.
import http from 'node:http';
import https from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { CommandError } from './io.ts';

export interface KubeFlags {
  kubeconfig?: string;
  context?: string;
}

/**
 * JSON as the API server sends it. The plugin reads many kinds it has no schema for (Nodes, Pods,
 * DaemonSets, webhook configurations...) and reads each field with optional chaining, so a loose
 * type here is the honest one.
 */
// biome-ignore lint/suspicious/noExplicitAny: see above; the one loose type of the plugin
export type ApiJson = any;

export interface ApiAnswer {
  status: number;
  body: ApiJson;
  headers: http.IncomingHttpHeaders;
}

export interface KubeApi {
  /** The API server's URL (the current context's cluster). */
  server: string;
  request(method: string, path: string, body?: unknown): Promise<ApiAnswer>;
  /** GET that must succeed: a 404 gives undefined, another failure a CommandError. */
  get(path: string): Promise<ApiJson | undefined>;
  /** The items of a list; a resource the server does not know (its CRD is not installed) gives []. */
  list(path: string): Promise<ApiJson[]>;
}

export function loadKubeConfig(flags: KubeFlags): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (flags.kubeconfig) kc.loadFromFile(flags.kubeconfig);
    else kc.loadFromDefault();
  } catch (err) {
    throw new CommandError(`cannot load the kubeconfig${flags.kubeconfig ? ` ${flags.kubeconfig}` : ''}: ${(err as Error).message}`);
  }
  if (flags.context) {
    if (!kc.getContextObject(flags.context)) throw new CommandError(`context "${flags.context}" is not in the kubeconfig`);
    kc.setCurrentContext(flags.context);
  }
  if (!kc.getCurrentCluster()) throw new CommandError('the kubeconfig names no current cluster (set one, or pass --kubeconfig / --context)');
  return kc;
}

export function kubeApi(kc: KubeConfig, timeoutMs = 15_000): KubeApi {
  const server = kc.getCurrentCluster()!.server.replace(/\/$/, '');
  const request = async (method: string, path: string, body?: unknown): Promise<ApiAnswer> => {
    const opts: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(opts);
    const url = new URL(server + path);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: http.OutgoingHttpHeaders = { ...((opts.headers ?? {}) as http.OutgoingHttpHeaders), Accept: 'application/json' };
    if (payload) {
      headers['Content-Type'] = 'application/json';
      headers['Content-Length'] = payload.length;
    }
    const mod = url.protocol === 'http:' ? http : https;
    return new Promise((resolve, reject) => {
      const req = mod.request(url, { method, headers, ...(url.protocol === 'https:' ? { agent: opts.agent } : {}), ...(opts.auth ? { auth: opts.auth } : {}), timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            // not JSON (a proxy's error page): kept as text
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, headers: res.headers });
        });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      req.on('error', (err) => reject(new CommandError(`cannot reach the API server ${server}: ${(err as Error).message}`)));
      req.end(payload);
    });
  };
  const failure = (path: string, r: ApiAnswer) =>
    new CommandError(`GET ${path}: the API server answered ${r.status}${r.body?.message ? `: ${r.body.message}` : ''}`);
  return {
    server,
    request,
    async get(path) {
      const r = await request('GET', path);
      if (r.status === 404) return undefined;
      if (r.status !== 200) throw failure(path, r);
      return r.body;
    },
    async list(path) {
      const r = await request('GET', path);
      if (r.status === 404) return [];
      if (r.status !== 200) throw failure(path, r);
      return (r.body?.items as ApiJson[]) ?? [];
    },
  };
}
