// A minimal JSON client for the API server (the double or the real one): tests, the sandbox's own
// installation steps and benchmarks use it where kubectl would be too slow.
import https from 'node:https';
import type { ApiServer } from './apiserver.ts';
import type { KubeObject } from './store.ts';

export interface ApiResponse {
  status: number;
  /** The parsed JSON; the text when the server sent something else; undefined when it sent nothing. */
  body: unknown;
}

/** The body as an object (a Kubernetes object, a list, a Status); {} when it is none of these. */
export function objectBody(res: ApiResponse): KubeObject {
  return typeof res.body === 'object' && res.body !== null && !Array.isArray(res.body) ? (res.body as KubeObject) : {};
}

/**
 * One JSON request to the API server with its CA and bearer token. `headers` adds or overrides
 * headers: a patch's Content-Type, impersonation (Impersonate-User, Impersonate-Group as a list).
 */
export function apiRequest(api: Pick<ApiServer, 'url' | 'caPem' | 'token'>, method: string, path: string, body?: unknown, agent?: https.Agent, headers?: Record<string, string | string[]>): Promise<ApiResponse> {
  return new Promise((resolvePromise, reject) => {
    const u = new URL(path, api.url);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = https.request(
      {
        method,
        hostname: u.hostname.replace(/^\[|\]$/g, ''),
        port: u.port,
        path: u.pathname + u.search,
        ca: api.caPem,
        ...(agent ? { agent } : {}),
        headers: {
          Accept: 'application/json',
          Authorization: `Bearer ${api.token}`,
          ...(payload !== undefined ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) } : {}),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            // not JSON: keep the text
          }
          resolvePromise({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

