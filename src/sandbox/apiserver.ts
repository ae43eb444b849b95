// A kube-apiserver test double that the real kubectl and @kubernetes/client-node talk to over HTTPS.
// See README.md in this folder for what is faithful and what is simplified.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { UserInfo, WebhookCallObserver } from './admission.ts';
import { ensureWebhookClientPki, loadOrCreateServerPki } from './certs.ts';
import { aggregatedDiscovery, aggregatedV2, aggregatedV2beta1, apiGroupDoc, apiGroupList, apiResourceList, apiVersions, negotiateAggregated } from './discovery.ts';
import { StatusError, badRequest, expired, fieldErr, internalError, invalidOptions, methodNotSupported, plainError, type FieldError } from './errors.ts';
import { Journal } from './journal.ts';
import { OpenApiV3 } from './openapi.ts';
import { decodeKubeProtobuf, ProtobufError } from './protobuf.ts';
import { Registry, type RequestContext } from './registry.ts';
import { ResourceRegistry, apiVersionOf, type ResourceDef } from './resources.ts';
import { matchFields, matchLabels, parseFieldSelector, parseLabelSelector, validateFieldSelector, type FieldReq, type LabelSelector } from './selectors.ts';
import { ServiceAllocator, defaultServiceNetwork, type ServiceNetwork } from './services.ts';
import { Store, type KubeObject, type StoreEvent } from './store.ts';
import { toTable } from './table.ts';
import { applyLimits, type ListenerLimits } from '../webhook/limits.ts';

export interface ApiServerOptions {
  /** directory for the CA, the token, the journal and the kubeconfig; created if missing */
  dataDir: string;
  /** listen address (default 127.0.0.1) */
  host?: string;
  /** listen port (default 0: any free port) */
  port?: number;
  /** bearer token; default: a random token persisted in dataDir/token */
  token?: string;
  /** watch history length in events (default 1000); older resourceVersions get 410 Expired */
  watchHistorySize?: number;
  /** how often a watch with allowWatchBookmarks=true receives a BOOKMARK (default 1000 ms) */
  bookmarkIntervalMs?: number;
  /** kube-apiserver --min-request-timeout (default 1800): a watch without timeoutSeconds ends after [min, 2*min) s */
  minRequestTimeoutSeconds?: number;
  /** service CIDRs (primary first) and node port range */
  serviceNetwork?: ServiceNetwork;
  /** resolves a webhook clientConfig.service to a base URL, e.g. "https://127.0.0.1:8443" */
  resolveService?: (ref: { namespace: string; name: string; port: number }) => string | undefined;
  /** identity of the token's user (default admin in system:masters) */
  user?: UserInfo;
  /** observes each admission webhook call (duration, outcome) without changing it; for benchmarks */
  onWebhookCall?: WebhookCallObserver;
  /** observes each request as it arrives (method, URL, the client's socket) without changing it; for benchmarks */
  onRequest?: (req: IncomingMessage) => void;
  /** timeouts, connection and body limits (default SANDBOX_LIMITS; tests shorten them) */
  limits?: Partial<ListenerLimits>;
}

/**
 * kube-apiserver refuses request bodies over 3 MiB (its MaxRequestBodyBytes) with 413
 * RequestEntityTooLarge; so does the double. Headers must arrive within 10 s and a whole request
 * within 60 s (kube-apiserver's default --request-timeout); a watch is a long response, not a long
 * request, so it is not cut. Sockets have no idle timeout: a watch may see no event for minutes.
 * 1024 connections: kubectl, informers, the webhook's and speakers' clients, with room for the
 * 50-client end-to-end load.
 */
export const SANDBOX_LIMITS: ListenerLimits = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  keepAliveTimeoutMs: 5_000,
  idleTimeoutMs: 0,
  handshakeTimeoutMs: 10_000,
  maxConnections: 1024,
  bodyLimit: 3 * 1024 * 1024,
};

export interface ApiServer {
  /** https://host:port */
  url: string;
  /** <dataDir>/kubeconfig */
  kubeconfigPath: string;
  token: string;
  /** PEM of the CA that signed the serving certificate */
  caPem: string;
  /** CA of the client certificate this server presents to admission webhooks (their --client-ca-file) */
  webhookClientCaFile: string;
  close(): Promise<void>;
}

const versionInfo = {
  major: '1',
  minor: '32',
  gitVersion: 'v1.32.4',
  gitCommit: '59526cd4867447956156ae3a602fcbac10a2c335',
  gitTreeState: 'clean',
  buildDate: '2025-04-22T16:02:27Z',
  goVersion: 'go1.23.6',
  compiler: 'gc',
  platform: 'linux/amd64',
};

interface ParsedPath {
  def: ResourceDef;
  namespace: string;
  name?: string;
  subresource: string;
}

function statusOf(err: unknown): StatusError {
  if (err instanceof StatusError) return err;
  return internalError((err as Error)?.message ?? String(err));
}

/** endpoints/filters/warning.go: `299 - "text"`, deduplicated, quotes and backslashes escaped. */
function warningHeaders(warnings: string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const w of warnings) {
    if (seen.has(w)) continue;
    seen.add(w);
    out.push(`299 - "${w.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`);
  }
  return out;
}

function wantsTable(accept: string | undefined): boolean {
  return (accept ?? '').split(',').some((p) => p.replace(/\s+/g, '').includes('as=Table') && p.includes('g=meta.k8s.io'));
}

const tooLarge = (limit: number) => new StatusError(413, 'RequestEntityTooLarge', `Request entity too large: limit is ${limit}`);

/** The body, up to `limit` bytes (kube-apiserver's limitedReadBody); over it, a 413 and the rest is discarded. */
async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  if (Number(req.headers['content-length'] ?? 0) > limit) {
    req.resume();
    throw tooLarge(limit);
  }
  // Events, not for await: leaving a for-await loop early destroys the request, and with it the
  // chance to answer.
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (c: Buffer) => {
      size += c.length;
      if (size <= limit) return void chunks.push(c);
      chunks.length = 0;
      req.off('data', onData);
      req.resume(); // the rest is read and dropped while the 413 is sent
      reject(tooLarge(limit));
    };
    req.on('data', onData);
    req.once('end', () => size <= limit && resolve(Buffer.concat(chunks)));
    req.once('error', reject);
    req.once('close', () => !req.complete && reject(Object.assign(new Error('aborted'), { code: 'ECONNRESET' })));
  });
}

function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
}

function decodeBody(raw: Buffer, type: string): unknown {
  if (raw.length === 0) return undefined;
  if (type === 'application/vnd.kubernetes.protobuf') {
    try {
      return decodeKubeProtobuf(raw);
    } catch (e) {
      if (e instanceof ProtobufError) throw new StatusError(415, 'UnsupportedMediaType', e.message);
      throw e;
    }
  }
  const text = raw.toString('utf8');
  try {
    if (type === 'application/yaml' || type === 'application/apply-patch+yaml') return parseYaml(text);
    return JSON.parse(text);
  } catch (e) {
    throw badRequest(`couldn't get version/kind; json parse error: ${(e as Error).message}`);
  }
}

interface ListSnapshot {
  rv: string;
  items: KubeObject[];
  expires: number;
}

export async function startApiServer(options: ApiServerOptions): Promise<ApiServer> {
  const dataDir = options.dataDir;
  const limits: ListenerLimits = { ...SANDBOX_LIMITS, ...options.limits };
  mkdirSync(dataDir, { recursive: true });
  const host = options.host ?? '127.0.0.1';
  const tokenPath = join(dataDir, 'token');
  let token = options.token;
  if (!token) {
    if (existsSync(tokenPath)) token = readFileSync(tokenPath, 'utf8').trim();
    else {
      token = randomBytes(24).toString('base64url');
      writeFileSync(tokenPath, `${token}\n`, { mode: 0o600 });
    }
  }
  // A wildcard listener is reached through any local address (speakers in network namespaces dial the
  // host end of their veth): the serving certificate names them all.
  const wildcard = host === '0.0.0.0' || host === '::';
  const local = wildcard ? Object.values(networkInterfaces()).flatMap((list) => (list ?? []).filter((i) => !i.address.startsWith('fe80:')).map((i) => i.address)) : [host];
  const hosts = [...new Set(['localhost', '127.0.0.1', '::1', ...local])];
  const { ca, serving } = await loadOrCreateServerPki(dataDir, hosts);
  const { journal, state } = Journal.open(dataDir);
  const store = new Store(journal, state, options.watchHistorySize ?? 1000);
  const resources = new ResourceRegistry();
  const network = options.serviceNetwork ?? defaultServiceNetwork;
  const registry = new Registry(store, resources, (list) => new ServiceAllocator(network, list), options.resolveService);
  if (options.onWebhookCall) registry.admission.onWebhookCall = options.onWebhookCall;
  // Like kube-apiserver with an AdmissionConfiguration: every webhook call presents this certificate.
  const webhookClient = await ensureWebhookClientPki(join(dataDir, 'pki'));
  registry.admission.clientCert = { cert: readFileSync(webhookClient.certFile, 'utf8'), key: readFileSync(webhookClient.keyFile, 'utf8') };
  const openapi = new OpenApiV3(resources);
  const user: UserInfo = options.user ?? { username: 'admin', uid: 'admin', groups: ['system:masters', 'system:authenticated'] };
  const bookmarkIntervalMs = options.bookmarkIntervalMs ?? 1000;
  const tokenBuf = Buffer.from(token);
  const snapshots = new Map<string, ListSnapshot>();
  const openWatches = new Set<() => void>();

  await registry.seed({ user: { username: 'system:apiserver', groups: ['system:masters'] }, dryRun: false, fieldManager: 'kube-apiserver', fieldValidation: 'Ignore', warnings: [] });

  function authenticated(req: IncomingMessage): boolean | 'invalid' {
    const h = req.headers.authorization;
    if (!h) return false;
    const m = h.match(/^Bearer\s+(.+)$/i);
    if (!m) return 'invalid';
    const given = Buffer.from(m[1]!.trim());
    return given.length === tokenBuf.length && timingSafeEqual(given, tokenBuf) ? true : 'invalid';
  }

  function send(res: ServerResponse, code: number, body: unknown, contentType = 'application/json', warnings: string[] = []): void {
    const text = JSON.stringify(body);
    const headers: Record<string, string | string[]> = { 'Content-Type': contentType, 'Cache-Control': 'no-cache, private' };
    const w = warningHeaders(warnings);
    if (w.length) headers.Warning = w;
    res.writeHead(code, headers);
    res.end(text);
  }

  function sendError(res: ServerResponse, err: unknown, warnings: string[] = []): void {
    const s = statusOf(err);
    if (!(err instanceof StatusError)) console.error('[apiserver double] internal error', err);
    send(res, s.code, s.toStatus(), 'application/json', warnings);
  }

  function parseResourcePath(segs: string[]): ParsedPath | undefined {
    let group: string;
    let version: string;
    let rest: string[];
    if (segs[0] === 'api') {
      group = '';
      version = segs[1]!;
      rest = segs.slice(2);
    } else {
      group = segs[1]!;
      version = segs[2]!;
      rest = segs.slice(3);
    }
    if (!rest.length) return undefined;
    if (rest[0] === 'namespaces' && rest.length >= 3) {
      const def = resources.find(group, version, rest[2]!);
      if (def?.namespaced) return { def, namespace: rest[1]!, ...(rest[3] !== undefined ? { name: rest[3] } : {}), subresource: rest[4] ?? '' };
    }
    const def = resources.find(group, version, rest[0]!);
    if (!def) throw new StatusError(404, 'NotFound', 'the server could not find the requested resource', {});
    return { def, namespace: '', ...(rest[1] !== undefined ? { name: rest[1] } : {}), subresource: rest[2] ?? '' };
  }

  function listObjects(def: ResourceDef, ns: string, labelSel: LabelSelector, fieldSel: FieldReq[]): KubeObject[] {
    return registry.list(def, ns).filter((o) => matchLabels(labelSel, o.metadata?.labels) && matchFields(def.storageGr, fieldSel, o));
  }

  function handleList(req: IncomingMessage, res: ServerResponse, p: ParsedPath, q: URLSearchParams): void {
    const labelSel = parseLabelSelector(q.get('labelSelector'));
    const fieldSel = parseFieldSelector(q.get('fieldSelector'));
    validateFieldSelector(p.def.storageGr, fieldSel);
    if (q.get('sendInitialEvents') !== null) throw invalidOptions('ListOptions', [fieldErr.forbidden('sendInitialEvents', 'sendInitialEvents is forbidden for list')]);
    const limit = Number(q.get('limit') ?? 0);
    const cont = q.get('continue');
    let snap: ListSnapshot;
    let offset = 0;
    if (cont) {
      let id = '';
      try {
        const t = JSON.parse(Buffer.from(cont, 'base64url').toString('utf8')) as { id: string; offset: number };
        id = t.id;
        offset = t.offset;
      } catch {
        throw badRequest('continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)');
      }
      const s = snapshots.get(id);
      if (!s || s.expires < Date.now()) {
        throw expired('The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.');
      }
      snap = s;
    } else {
      snap = { rv: String(store.currentRv()), items: listObjects(p.def, p.namespace, labelSel, fieldSel), expires: Date.now() + 5 * 60_000 };
    }
    const page = limit > 0 ? snap.items.slice(offset, offset + limit) : snap.items.slice(offset);
    const next = offset + page.length;
    const meta: KubeObject = { resourceVersion: snap.rv };
    if (limit > 0 && next < snap.items.length) {
      const id = randomBytes(8).toString('hex');
      snapshots.set(id, snap);
      meta.continue = Buffer.from(JSON.stringify({ id, offset: next })).toString('base64url');
      // store.go: the count is exact only when no selector filtered the list, so kube omits it then
      if (!q.get('labelSelector') && !q.get('fieldSelector')) meta.remainingItemCount = snap.items.length - next;
    }
    for (const [k, s] of snapshots) if (s.expires < Date.now()) snapshots.delete(k);
    if (wantsTable(req.headers.accept)) {
      send(res, 200, toTable(p.def, page, meta, q.get('includeObject') ?? 'Metadata'), 'application/json');
      return;
    }
    // Typed lists carry no TypeMeta on items; custom resources (unstructured) do.
    const items = p.def.crd ? page : page.map(({ apiVersion: _a, kind: _k, ...rest }) => rest);
    send(res, 200, { kind: `${p.def.kind}List`, apiVersion: apiVersionOf(p.def), metadata: meta, items });
  }

  function handleWatch(req: IncomingMessage, res: ServerResponse, p: ParsedPath, q: URLSearchParams): void {
    const labelSel = parseLabelSelector(q.get('labelSelector'));
    const fieldSel = parseFieldSelector(q.get('fieldSelector'));
    validateFieldSelector(p.def.storageGr, fieldSel);
    const table = wantsTable(req.headers.accept);
    const includeObject = q.get('includeObject') ?? 'Metadata';
    const bookmarks = q.get('allowWatchBookmarks') === 'true' || q.get('allowWatchBookmarks') === '1';
    const timeoutParam = q.get('timeoutSeconds');
    // Without timeoutSeconds kube picks a random time in [minRequestTimeout, 2*minRequestTimeout) (1800 s).
    const minTimeout = options.minRequestTimeoutSeconds ?? 1800;
    const timeoutMs = timeoutParam ? Number(timeoutParam) * 1000 : (minTimeout + Math.random() * minTimeout) * 1000;
    const rvParam = q.get('resourceVersion') ?? '';
    // Streaming lists (WatchList, on by default since 1.34; client-go 1.35's informers use it): the
    // current objects as ADDED, then a BOOKMARK annotated k8s.io/initial-events-end, then changes.
    const sendInitialEvents = boolParam(q.get('sendInitialEvents'));
    validateWatchListOptions(sendInitialEvents, q.get('resourceVersionMatch') ?? '', q.get('continue') ?? '');
    const ns = p.def.namespaced ? p.namespace : '';
    const matches = (o: KubeObject | undefined) => !!o && matchLabels(labelSel, o.metadata?.labels) && matchFields(p.def.storageGr, fieldSel, o);
    let firstTable = true;
    const write = (type: string, obj: KubeObject) => {
      let payload = obj;
      if (table && type !== 'ERROR' && type !== 'BOOKMARK') {
        payload = toTable(p.def, [obj], { resourceVersion: obj.metadata?.resourceVersion }, includeObject, firstTable);
        firstTable = false;
      }
      res.write(`${JSON.stringify({ type, object: payload })}\n`);
    };
    // The double's state is always the newest, so a streaming list (NotOlderThan any version) starts now.
    const fromRv = rvParam === '' || rvParam === '0' || sendInitialEvents === true ? store.currentRv() : Number(rvParam);
    // the storage layer's strconv.ParseUint error reaches the client as a plain 500
    if (!Number.isFinite(fromRv)) throw plainError(`resourceVersion: Invalid value: ${JSON.stringify(rvParam)}: strconv.ParseUint: parsing ${JSON.stringify(rvParam)}: invalid syntax`);
    const queue: StoreEvent[] = [];
    let ready = false;
    const onEvent = (ev: StoreEvent) => {
      if (!ready) queue.push(ev);
      else emit(ev);
    };
    const emit = (ev: StoreEvent) => {
      const cur = registry.toExternal(p.def, ev.object);
      const prev = ev.prev ? registry.toExternal(p.def, ev.prev) : undefined;
      if (ev.type === 'ADDED') {
        if (matches(cur)) write('ADDED', cur);
      } else if (ev.type === 'DELETED') {
        if (matches(prev ?? cur)) write('DELETED', cur);
      } else {
        // cacher.go: an object that stops/starts matching the selector is DELETED/ADDED for this watcher.
        const was = matches(prev);
        const is = matches(cur);
        if (was && is) write('MODIFIED', cur);
        else if (was) write('DELETED', prev!);
        else if (is) write('ADDED', cur);
      }
    };
    let sub: { replay: StoreEvent[]; cancel: () => void };
    try {
      sub = store.watch({ gr: p.def.storageGr, ...(ns ? { ns } : {}), onEvent }, fromRv);
    } catch (e) {
      if (e instanceof RangeError) {
        // watch_cache.go: too old resource version → an ERROR event with a 410 Expired Status.
        res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private' });
        const st = expired(`too old resource version: ${fromRv} (${store.oldestWatchableRv()})`).toStatus();
        res.end(`${JSON.stringify({ type: 'ERROR', object: st })}\n`);
        return;
      }
      throw e;
    }
    res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache, private', 'Transfer-Encoding': 'chunked' });
    // watch.go serveWatch flushes the headers at once: a client (client-node's informer) awaits them
    // before its first event, and a watch from a list's resourceVersion may have none for a long time.
    res.flushHeaders();
    // Without sendInitialEvents, a watch from "" or "0" starts with the current state (legacy); with
    // it, exactly when it is true.
    if (sendInitialEvents ?? (rvParam === '' || rvParam === '0')) {
      for (const o of registry.list(p.def, ns)) if (matches(o)) write('ADDED', o);
    }
    if (sendInitialEvents === true && bookmarks) {
      write('BOOKMARK', { kind: p.def.kind, apiVersion: apiVersionOf(p.def), metadata: { resourceVersion: String(fromRv), annotations: { 'k8s.io/initial-events-end': 'true' } } });
    }
    for (const ev of sub.replay) emit(ev);
    ready = true;
    for (const ev of queue.splice(0)) emit(ev);
    let closed = false;
    const finish = () => {
      if (closed) return;
      closed = true;
      sub.cancel();
      clearTimeout(timer);
      clearInterval(bm);
      openWatches.delete(finish);
      res.end();
    };
    openWatches.add(finish);
    const timer = setTimeout(finish, timeoutMs);
    const bm = setInterval(() => {
      if (bookmarks) write('BOOKMARK', { kind: p.def.kind, apiVersion: apiVersionOf(p.def), metadata: { resourceVersion: String(store.currentRv()) } });
    }, bookmarkIntervalMs);
    req.on('close', finish);
    res.on('error', finish);
  }

  /**
   * Impersonation headers (endpoints/filters/impersonation.go): the token's user, in system:masters,
   * may act as anyone (kubectl --as / --as-group, a kubeconfig's `as`). A ServiceAccount named
   * without groups gets its ServiceAccount groups; everyone gets system:authenticated. There is
   * still no authorization: the impersonated user may do everything, but admission (policies,
   * webhooks' userInfo) sees that user.
   */
  function effectiveUser(req: IncomingMessage): UserInfo {
    const asUser = req.headers['impersonate-user'];
    const rawGroups = req.headers['impersonate-group'];
    const asGroups = rawGroups === undefined ? [] : Array.isArray(rawGroups) ? rawGroups : rawGroups.split(',').map((g) => g.trim());
    if (typeof asUser !== 'string' || asUser === '') {
      if (asGroups.length) throw new StatusError(500, 'InternalError', `Internal error occurred: requested [${asGroups.map((g) => `{Group  ${g}  authentication.k8s.io/v1  }`).join(' ')}] without impersonating a user`);
      return user;
    }
    if (!user.groups.includes('system:masters')) throw new StatusError(403, 'Forbidden', `users "${asUser}" is forbidden: User "${user.username}" cannot impersonate resource "users" in API group "" at the cluster scope`, { name: asUser, kind: 'users' });
    const groups = [...asGroups];
    const sa = /^system:serviceaccount:([^:]+):([^:]+)$/.exec(asUser);
    if (sa && !groups.length) groups.push('system:serviceaccounts', `system:serviceaccounts:${sa[1]}`);
    if (!groups.includes('system:authenticated')) groups.push('system:authenticated');
    const uid = req.headers['impersonate-uid'];
    return { username: asUser, groups, ...(typeof uid === 'string' ? { uid } : {}) };
  }

  function requestContext(q: URLSearchParams, req: IncomingMessage, dryRunFromBody?: unknown): RequestContext {
    const dryRun = q.getAll('dryRun');
    if (dryRun.some((d) => d !== 'All')) {
      const kind = req.method === 'POST' ? 'CreateOptions' : req.method === 'DELETE' ? 'DeleteOptions' : req.method === 'PATCH' ? 'PatchOptions' : 'UpdateOptions';
      throw invalidOptions(kind, [fieldErr.notSupported('dryRun', dryRun, ['All'])]);
    }
    const ua = req.headers['user-agent'] ?? '';
    return {
      user: effectiveUser(req),
      dryRun: dryRun.includes('All') || (Array.isArray(dryRunFromBody) && dryRunFromBody.includes('All')),
      fieldManager: q.get('fieldManager') ?? (ua.split('/')[0] || 'unknown'),
      fieldValidation: q.get('fieldValidation') ?? 'Warn',
      warnings: [],
    };
  }

  async function handleResource(req: IncomingMessage, res: ServerResponse, p: ParsedPath, q: URLSearchParams): Promise<void> {
    const method = req.method ?? 'GET';
    const { def } = p;
    if (p.subresource && !def.subresources.includes(p.subresource)) throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    if (def.namespaced && p.namespace === '' && method !== 'GET') throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    if (!p.name) {
      if (method === 'GET') {
        if (q.get('watch') === 'true' || q.get('watch') === '1') return handleWatch(req, res, p, q);
        return handleList(req, res, p, q);
      }
      if (method === 'POST') {
        const raw = await readBody(req, limits.bodyLimit);
        const body = decodeBody(raw, mediaType(req)) as KubeObject;
        const ctx = requestContext(q, req);
        try {
          const r = await registry.create(def, p.namespace, body, ctx);
          return send(res, r.status, r.object, 'application/json', ctx.warnings);
        } catch (e) {
          return sendError(res, e, ctx.warnings);
        }
      }
      if (method === 'DELETE') {
        // deletecollection: each matching object through the normal delete path
        const ctx = requestContext(q, req);
        const labelSel = parseLabelSelector(q.get('labelSelector'));
        const fieldSel = parseFieldSelector(q.get('fieldSelector'));
        const deleted: KubeObject[] = [];
        for (const o of listObjects(def, p.namespace, labelSel, fieldSel)) {
          const r = await registry.delete(def, o.metadata.namespace ?? '', o.metadata.name, {}, ctx);
          deleted.push(r.deleted ?? r.object);
        }
        return send(res, 200, { kind: `${def.kind}List`, apiVersion: apiVersionOf(def), metadata: { resourceVersion: String(store.currentRv()) }, items: deleted }, 'application/json', ctx.warnings);
      }
      throw methodNotSupported(def.group, def.resource, method);
    }
    const name = p.name;
    const ctx = requestContext(q, req);
    try {
      switch (method) {
        case 'GET': {
          const obj = registry.get(def, p.namespace, name);
          if (p.subresource === '' && wantsTable(req.headers.accept)) return send(res, 200, toTable(def, [obj], { resourceVersion: obj.metadata.resourceVersion }, q.get('includeObject') ?? 'Metadata'));
          return send(res, 200, obj);
        }
        case 'PUT': {
          const body = decodeBody(await readBody(req, limits.bodyLimit), mediaType(req)) as KubeObject;
          const r = await registry.put(def, p.namespace, name, p.subresource, body, ctx);
          return send(res, r.status, r.object, 'application/json', ctx.warnings);
        }
        case 'PATCH': {
          const type = mediaType(req);
          if (type === 'application/apply-patch+yaml' && !q.get('fieldManager')) throw invalidOptions('PatchOptions', [fieldErr.required('fieldManager', 'is required for apply patch')]);
          const doc = decodeBody(await readBody(req, limits.bodyLimit), type === 'application/apply-patch+yaml' ? 'application/yaml' : 'application/json');
          const r = await registry.patch(def, p.namespace, name, p.subresource, type, doc, ctx, q.get('force') === 'true');
          return send(res, r.status, r.object, 'application/json', ctx.warnings);
        }
        case 'DELETE': {
          const raw = await readBody(req, limits.bodyLimit);
          const opts = (raw.length ? decodeBody(raw, mediaType(req) || 'application/json') : {}) as KubeObject;
          const dctx = requestContext(q, req, opts?.dryRun);
          dctx.warnings = ctx.warnings;
          const r = await registry.delete(def, p.namespace, name, opts ?? {}, dctx);
          return send(res, r.status, r.object, 'application/json', ctx.warnings);
        }
        default:
          throw methodNotSupported(def.group, def.resource, method);
      }
    } catch (e) {
      return sendError(res, e, ctx.warnings);
    }
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://localhost');
    const q = url.searchParams;
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const publicPath = path === '/version' || path === '/healthz' || path === '/readyz' || path === '/livez';
    const auth = authenticated(req);
    if (auth === 'invalid' || (!auth && !publicPath)) {
      send(res, 401, new StatusError(401, 'Unauthorized', 'Unauthorized').toStatus());
      return;
    }
    if (path === '/version') return send(res, 200, versionInfo);
    if (publicPath) {
      res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end('ok');
      return;
    }
    // The impersonation filter runs before every handler (reads and discovery too).
    effectiveUser(req);
    const segs = path.split('/').filter(Boolean).map(decodeURIComponent);
    if (path === '/api' || path === '/apis') {
      const agg = negotiateAggregated(req.headers.accept);
      if (agg) return send(res, 200, aggregatedDiscovery(resources, path === '/api', agg), agg === 'v2' ? aggregatedV2 : aggregatedV2beta1);
      if (path === '/api') return send(res, 200, apiVersions(`${req.socket.localAddress}:${req.socket.localPort}`));
      return send(res, 200, apiGroupList(resources));
    }
    if (path === '/openapi/v3') return send(res, 200, openapi.root());
    if (path.startsWith('/openapi/v3/')) {
      const doc = openapi.groupVersion(path.slice('/openapi/v3/'.length));
      if (doc) return send(res, 200, doc);
      throw new StatusError(404, 'NotFound', 'the server could not find the requested resource');
    }
    if (segs[0] === 'apis' && segs.length === 2) {
      const g = apiGroupDoc(resources, segs[1]!);
      if (g) return send(res, 200, g);
    }
    if ((segs[0] === 'api' && segs.length === 2) || (segs[0] === 'apis' && segs.length === 3)) {
      const list = segs[0] === 'api' ? apiResourceList(resources, '', segs[1]!) : apiResourceList(resources, segs[1]!, segs[2]!);
      if (list) return send(res, 200, list);
    }
    if ((segs[0] === 'api' && segs.length >= 3) || (segs[0] === 'apis' && segs.length >= 4)) {
      const p = parseResourcePath(segs);
      if (p) return handleResource(req, res, p, q);
    }
    throw new StatusError(404, 'NotFound', 'the server could not find the requested resource', {});
  }

  const server = https.createServer({ cert: serving.certPem, key: serving.keyPem, handshakeTimeout: limits.handshakeTimeoutMs }, (req, res) => {
    options.onRequest?.(req);
    // ADMITLB_APISERVER_DEBUG=1 logs each request (method, URL, status, content types) to stderr.
    if (process.env.ADMITLB_APISERVER_DEBUG) {
      res.on('finish', () => console.error(`[apiserver] ${req.method} ${req.url} ${res.statusCode} ct=${req.headers['content-type'] ?? ''} accept=${req.headers.accept ?? ''}`));
    }
    handle(req, res).catch((err) => {
      // The client went away (or was cut off) while its body was read: nobody to answer.
      if ((err as { code?: string }).code === 'ECONNRESET' && !req.complete) return;
      if (res.headersSent) {
        res.end();
        return;
      }
      sendError(res, err);
    });
  });
  applyLimits(server, limits);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  const hostForUrl = host.includes(':') ? `[${host}]` : host === '0.0.0.0' ? '127.0.0.1' : host;
  const url = `https://${hostForUrl}:${addr.port}`;
  const kubeconfigPath = join(dataDir, 'kubeconfig');
  writeFileSync(kubeconfigPath, kubeconfigYaml(url, ca.certPem, token), { mode: 0o600 });

  return {
    url,
    kubeconfigPath,
    token,
    caPem: ca.certPem,
    webhookClientCaFile: webhookClient.caFile,
    async close() {
      for (const f of [...openWatches]) f();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      store.close();
    },
  };
}

export function kubeconfigYaml(server: string, caPem: string, token: string): string {
  const caData = Buffer.from(caPem).toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- name: admitlb-sandbox',
    '  cluster:',
    `    server: ${server}`,
    `    certificate-authority-data: ${caData}`,
    'users:',
    '- name: admitlb-sandbox-admin',
    '  user:',
    `    token: ${token}`,
    'contexts:',
    '- name: admitlb-sandbox',
    '  context:',
    '    cluster: admitlb-sandbox',
    '    user: admitlb-sandbox-admin',
    '    namespace: default',
    'current-context: admitlb-sandbox',
    '',
  ].join('\n');
}

/** A *bool query parameter as apimachinery's conversion reads it (absent: undefined). */
function boolParam(v: string | null): boolean | undefined {
  if (v === null) return undefined;
  return v === 'true' || v === '1';
}

/** validateWatchOptions of apimachinery's meta/internalversion/validation (WatchList enabled, as in 1.34). */
function validateWatchListOptions(sendInitialEvents: boolean | undefined, match: string, cont: string): void {
  const errs: FieldError[] = [];
  if (sendInitialEvents !== undefined && match !== 'NotOlderThan') errs.push(fieldErr.forbidden('resourceVersionMatch', 'sendInitialEvents requires setting resourceVersionMatch to NotOlderThan'));
  if (match) {
    if (sendInitialEvents === undefined) errs.push(fieldErr.forbidden('resourceVersionMatch', 'resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided'));
    if (match !== 'NotOlderThan') errs.push(fieldErr.notSupported('resourceVersionMatch', match, ['NotOlderThan']));
    if (cont) errs.push(fieldErr.forbidden('resourceVersionMatch', 'resourceVersionMatch is forbidden when continue is provided'));
  }
  if (errs.length) throw invalidOptions('ListOptions', errs);
}
