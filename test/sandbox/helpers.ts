// Shared helpers for the API server double's tests: a temp dataDir, the real kubectl, a raw HTTPS client,
// and a small HTTPS admission webhook with its own CA.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApiServer, type ApiServer, type ApiServerOptions } from '../../src/sandbox/apiserver.ts';
import { createCertificateAuthority, issueServingCert } from '../../src/sandbox/certs.ts';

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `admitlb-${prefix}-`));
}

export interface Sandbox {
  api: ApiServer;
  dataDir: string;
  cacheDir: string;
  kubectl(args: string[], input?: string): Promise<KubectlResult>;
  request(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<RawResponse>;
  close(): Promise<void>;
}

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  json(): any;
}

export function rawRequest(api: { url: string; caPem: string }, token: string | undefined, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const u = new URL(path, api.url);
    const payload = body === undefined ? undefined : typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
    const req = https.request(
      {
        method,
        hostname: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        ca: api.caPem,
        headers: {
          Accept: 'application/json',
          ...(payload !== undefined ? { 'Content-Type': 'application/json' } : {}),
          ...(token ? { Authorization: `Bearer ${token}` } : {}),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

export function runKubectl(kubeconfig: string, cacheDir: string, args: string[], input?: string): Promise<KubectlResult> {
  return new Promise((resolve) => {
    const child = execFile(
      'kubectl',
      ['--kubeconfig', kubeconfig, ...args],
      { env: { ...process.env, KUBECACHEDIR: cacheDir, KUBECONFIG: kubeconfig }, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? ((err as unknown as { code: number }).code) : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (input !== undefined) child.stdin!.end(input);
  });
}

export async function startSandbox(prefix: string, opts: Partial<ApiServerOptions> = {}, dataDir = tempDir(prefix)): Promise<Sandbox> {
  const api = await startApiServer({ dataDir, host: '127.0.0.1', port: 0, ...opts });
  const cacheDir = tempDir(`${prefix}-kubecache`);
  return {
    api,
    dataDir,
    cacheDir,
    kubectl: (args, input) => runKubectl(api.kubeconfigPath, cacheDir, args, input),
    request: (method, path, body, headers) => rawRequest(api, api.token, method, path, body, headers),
    async close() {
      await api.close();
      rmSync(cacheDir, { recursive: true, force: true });
    },
  };
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

// ---- test webhook ----

export interface AdmissionRequest {
  uid: string;
  operation: string;
  name: string;
  namespace?: string;
  object: any;
  oldObject: any;
  dryRun: boolean;
  options: any;
  userInfo: any;
  kind: any;
  resource: any;
  subResource?: string;
}

export type WebhookHandler = (req: AdmissionRequest, path: string, query: URLSearchParams) => Promise<Record<string, unknown> | undefined> | Record<string, unknown> | undefined;

export interface TestWebhook {
  url: string;
  caBundle: string;
  calls: { path: string; query: URLSearchParams; request: AdmissionRequest }[];
  /** replaces the response logic; return the `response` fields (uid is filled in) */
  handler: WebhookHandler;
  close(): Promise<void>;
}

/** An HTTPS admission webhook server with its own CA, answering AdmissionReview v1. */
export async function startWebhook(handler: WebhookHandler = () => ({ allowed: true })): Promise<TestWebhook> {
  const ca = await createCertificateAuthority('test-webhook-ca');
  const cert = await issueServingCert(ca, ['127.0.0.1', 'localhost']);
  const hook: TestWebhook = {
    url: '',
    caBundle: Buffer.from(ca.certPem).toString('base64'),
    calls: [],
    handler,
    close: async () => {},
  };
  const server = https.createServer({ cert: cert.certPem, key: cert.keyPem }, (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const u = new URL(req.url ?? '/', 'https://x');
      let review: any;
      try {
        review = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        res.writeHead(400).end();
        return;
      }
      hook.calls.push({ path: u.pathname, query: u.searchParams, request: review.request });
      const out = await hook.handler(review.request, u.pathname, u.searchParams);
      if (out === undefined) return; // leave the request hanging (timeout tests)
      if ('rawReview' in out) {
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(out.rawReview));
        return;
      }
      const response = { uid: review.request.uid, ...out };
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  hook.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  hook.close = () =>
    new Promise<void>((r) => {
      server.close(() => r());
      server.closeAllConnections();
    });
  return hook;
}

export function jsonPatch(ops: unknown[]): { patchType: 'JSONPatch'; patch: string } {
  return { patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(ops)).toString('base64') };
}
