// The Cluster adapter on @kubernetes/client-node 1.4: informers for pools, claims and namespaces
// (restarted with backoff on any error, never trusted to recover on their own, watched by a watchdog),
// and the claim writes.
import type { Logger } from '../log.ts';
import http from 'node:http';
import https from 'node:https';
import { CoreV1Api, CustomObjectsApi, KubeConfig, ListWatch, type KubernetesObject, type Watch } from '@kubernetes/client-node';
import type { BGPAdvertisement, BGPPeer, IPClaim, IPPool } from '../config/schemas.ts';
import { API_GROUP, API_VERSION } from '../config/schemas.ts';
import { ApiRejectedError, ApiUnavailableError, type CacheEvent, type ClaimCreateResult, type ClaimStore, type ClaimUpdateResult, type Cluster, type ClusterCache } from './cluster.ts';
import type { Namespace, Service } from './types.ts';


export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return withKeepAlive(kc);
}

/**
 * A kept-alive socket the server closed at the moment it was reused fails before any response: such
 * a call is sent once more on a fresh connection. Safe for claim writes: a create that did land
 * comes back as AlreadyExists with our own claim, which the caller treats as a lost race and
 * re-decides (finding the claim its own); a replace carries a resourceVersion.
 */
export async function retryOnStaleSocket<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (!isStaleSocket(err)) throw err;
    return call();
  }
}

function isStaleSocket(err: unknown): boolean {
  const e = err as { code?: unknown; cause?: { code?: unknown }; message?: unknown };
  const code = String(e?.code ?? e?.cause?.code ?? '');
  return code === 'ECONNRESET' || code === 'EPIPE' || /socket hang up|ECONNRESET|EPIPE/.test(String(e?.message ?? ''));
}

/**
 * client-node 1.4 builds a new https.Agent for every API call, so every claim write, status patch
 * and Event pays a TCP and TLS handshake. One keep-alive agent per TLS identity is shared instead
 * (watches are unaffected: they build their own requests). Idle sockets close after 30 s, well
 * before kube-apiserver's 90 s idle timeout; a Node server's Keep-Alive hint shortens it further.
 */
export function withKeepAlive(kc: KubeConfig): KubeConfig {
  const original = kc.applySecurityAuthentication.bind(kc);
  const agents = new Map<string, https.Agent>();
  kc.applySecurityAuthentication = async (context) => {
    await original(context);
    const agent = context.getAgent();
    if (!agent || agent.constructor !== https.Agent) return; // proxies and plain http: as built
    const o = (agent as https.Agent).options;
    const key = [o.ca, o.cert, o.key, o.pfx, o.rejectUnauthorized, o.servername].map((v) => (v === undefined ? '' : String(v))).join('\0');
    let shared = agents.get(key);
    if (!shared) {
      shared = new https.Agent({ ...o, keepAlive: true, timeout: 30_000, maxSockets: 64, maxFreeSockets: 16, scheduling: 'lifo' });
      agents.set(key, shared);
    }
    context.setAgent(shared);
  };
  return kc;
}

const statusOf = (err: unknown): number | undefined => {
  const e = err as { code?: unknown; statusCode?: unknown; response?: { statusCode?: number } };
  if (typeof e?.code === 'number') return e.code;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return e?.response?.statusCode;
};

/** The Status (reason, message) of a failed API call, parsed from client-node's ApiException body. */
function apiStatusOf(err: unknown): { reason: string; message: string } | undefined {
  let body = (err as { body?: unknown })?.body;
  if (typeof body === 'string') {
    const text = body.trim();
    try {
      body = JSON.parse(text);
    } catch {
      return text ? { reason: '', message: text.slice(0, 500) } : undefined;
    }
  }
  if (typeof body !== 'object' || body === null) return undefined;
  const b = body as { reason?: unknown; message?: unknown };
  return { reason: typeof b.reason === 'string' ? b.reason : '', message: typeof b.message === 'string' ? b.message : '' };
}

/**
 * The error for a failed IPClaim call, worded for people: the API's Status message, never
 * client-node's dump of HTTP code, body and headers. A 4xx (except 408 and 429, which pass with time)
 * is the write's own fault (ApiRejectedError); anything else means the API cannot be used now.
 */
export function claimCallError(action: string, err: unknown): ApiRejectedError | ApiUnavailableError {
  const status = statusOf(err);
  if (status === undefined) return new ApiUnavailableError(`${action}: ${errorText(err)}`, err);
  const s = apiStatusOf(err);
  const detail = s?.message || s?.reason || 'no message';
  if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
    return new ApiRejectedError(`${action}: the API server refused it (HTTP ${status}${s?.reason ? ` ${s.reason}` : ''}): ${detail}`, status, s?.reason ?? '', detail, err);
  }
  return new ApiUnavailableError(`${action}: HTTP ${status}: ${detail}`, err);
}

interface WatchedKind<T extends KubernetesObject> {
  name: string;
  path: string;
  list: () => Promise<{ items: T[]; metadata?: unknown; apiVersion?: string; kind?: string }>;
  emit: (type: 'upsert' | 'delete', obj: T) => CacheEvent;
}

/** Tunables of {@link RestartingInformer}; every field has a production default. */
export interface InformerOptions {
  /** first restart delay (default 250 ms); the n-th consecutive restart waits base·factor^n, capped */
  backoffBaseMs: number;
  /** backoff cap (default 30 s) */
  backoffCapMs: number;
  /** growth per consecutive failure (default 2) */
  backoffFactor: number;
  /** each delay is multiplied by a uniform factor in [1 - jitter, 1 + jitter] (default 0.2), then capped */
  backoffJitter: number;
  /**
   * the backoff resets only after a watch stream has stayed open this long (default 10 s), so a list
   * that succeeds followed by a watch that keeps failing (or a connection that drops at once) still backs off
   */
  healthyAfterMs: number;
  /**
   * watchdog: an informer that received nothing (no list, no watch event, no bookmark, no watch
   * (re)connection) for this long is restarted (default 5 min). Watches ask for bookmarks and a
   * server-side timeout shorter than this, so a healthy but quiet stream is always renewed in time.
   */
  idleTimeoutMs: number;
  /** server-side watch timeout (timeoutSeconds), drawn uniformly from [min, max) (default [150, 300) s) */
  watchTimeoutSeconds: [number, number];
  /** a watch request without response headers after this long is abandoned (default 30 s) */
  connectTimeoutMs: number;
}

export const defaultInformerOptions: InformerOptions = {
  backoffBaseMs: 250,
  backoffCapMs: 30_000,
  backoffFactor: 2,
  backoffJitter: 0.2,
  healthyAfterMs: 10_000,
  idleTimeoutMs: 300_000,
  watchTimeoutSeconds: [150, 300],
  connectTimeoutMs: 30_000,
};

/** What an informer has been through; exposed for tests and metrics. */
export interface InformerStats {
  name: string;
  /** a list has succeeded at least once (stays true across restarts, like client-go's HasSynced) */
  synced: boolean;
  /** a watch stream is open right now */
  watching: boolean;
  /** restarts scheduled so far (errors and watchdog) */
  restarts: number;
  /** restarts caused by the watchdog */
  watchdogRestarts: number;
  /** successful lists (the first sync plus every relist, e.g. after 410 Gone) */
  lists: number;
  /** consecutive failures: the exponent of the next backoff delay */
  attempt: number;
}

/** Rejection of a list that belongs to an attempt that was abandoned meanwhile; never a restart reason. */
class StaleAttempt extends Error {}

type WatchCallback = (phase: string, obj: unknown, watchObj?: unknown) => void;
type DoneCallback = (err: unknown) => void;

/**
 * One informer: client-node's ListWatch for the cache and its add/update/delete diffing, fed by our own
 * watch request (bookmarks, server-side timeout, connect timeout, abortable while connecting), and
 * restarted with capped, jittered exponential backoff after any error it gives up on.
 *
 * client-node 1.4's ListWatch handles 410 Gone itself (relist) and re-watches after a clean close, but on
 * any other error it emits 'error' and stops for good; it also emits 'connect' before listing, so
 * 'connect' says nothing about health. Here:
 * - every start is an "attempt" with a generation number; callbacks of an abandoned attempt (an aborted
 *   watch, a list that answers late) are dropped, so exactly one restart is pending at a time;
 * - the backoff exponent resets only after a watch has stayed open for `healthyAfterMs`;
 * - a watchdog restarts an informer that received nothing for `idleTimeoutMs`;
 * - after stop() nothing is scheduled and the open request is aborted.
 *
 * `synced` follows client-go's HasSynced: false until the first successful list, then true for good,
 * also while the informer is restarting (the cache keeps serving its last state; readiness should not
 * flap with every watch reconnect). `watching` tells whether it is connected right now.
 */
export class RestartingInformer<T extends KubernetesObject> {
  readonly informer: ListWatch<T>;
  synced = false;
  watching = false;
  restarts = 0;
  watchdogRestarts = 0;
  lists = 0;
  private attempt = 0;
  private gen = 0;
  private stopped = true;
  private restartTimer: NodeJS.Timeout | undefined;
  private watchdogTimer: NodeJS.Timeout | undefined;
  private healthyTimer: NodeJS.Timeout | undefined;
  private lastActivity = 0;
  /** the watch request of the current attempt (ListWatch only learns of it once openWatch resolves) */
  private activeWatch: AbortController | undefined;
  private readonly opts: InformerOptions;
  private firstAttempt: { promise: Promise<void>; resolve: () => void } | undefined;

  constructor(
    private readonly kc: KubeConfig,
    private readonly kind: WatchedKind<T>,
    private readonly emit: (e: CacheEvent) => void,
    private readonly log: Pick<Logger, 'info' | 'warn' | 'error'>,
    opts: Partial<InformerOptions> = {},
  ) {
    this.opts = { ...defaultInformerOptions, ...opts };
    const watch = { watch: (path: string, query: Record<string, string | undefined>, cb: WatchCallback, done: DoneCallback) => this.openWatch(path, query, cb, done) };
    this.informer = new ListWatch<T>(kind.path, watch as unknown as Watch, (() => this.list()) as never, false);
    this.informer.on('add', (o) => this.emit(kind.emit('upsert', o)));
    this.informer.on('update', (o) => this.emit(kind.emit('upsert', o)));
    this.informer.on('delete', (o) => this.emit(kind.emit('delete', o)));
    this.informer.on('error', (err) => {
      if (this.stopped || err instanceof StaleAttempt) return;
      this.scheduleRestart('error', err);
    });
  }

  get name(): string {
    return this.kind.name;
  }

  stats(): InformerStats {
    return { name: this.kind.name, synced: this.synced, watching: this.watching, restarts: this.restarts, watchdogRestarts: this.watchdogRestarts, lists: this.lists, attempt: this.attempt };
  }

  /**
   * Starts the informer. Resolves once the first attempt has either synced (list done, watch requested)
   * or failed (a restart is then scheduled); never rejects.
   */
  async start(): Promise<void> {
    if (!this.stopped) return this.firstAttempt?.promise;
    this.stopped = false;
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.firstAttempt = { promise, resolve };
    this.begin();
    return promise;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.gen++;
    this.clearTimers();
    this.abortWatch();
    this.watching = false;
    this.settleFirstAttempt();
    await this.informer.stop();
  }

  private abortWatch(): void {
    this.activeWatch?.abort();
    this.activeWatch = undefined;
  }

  /** The delay before restart number `attempt` (0-based), jittered and capped. */
  static backoffDelay(opts: Pick<InformerOptions, 'backoffBaseMs' | 'backoffCapMs' | 'backoffFactor' | 'backoffJitter'>, attempt: number, random = Math.random()): number {
    const raw = Math.min(opts.backoffCapMs, opts.backoffBaseMs * opts.backoffFactor ** attempt);
    return Math.round(Math.min(opts.backoffCapMs, raw * (1 - opts.backoffJitter + 2 * opts.backoffJitter * random)));
  }

  private begin(): void {
    const gen = ++this.gen;
    this.touch();
    this.armWatchdog();
    this.informer.start().then(
      () => {
        if (gen === this.gen) this.settleFirstAttempt();
      },
      (err: unknown) => {
        if (gen === this.gen && !this.stopped) this.scheduleRestart('error', err);
      },
    );
  }

  private async list() {
    const gen = this.gen;
    let result: Awaited<ReturnType<WatchedKind<T>['list']>>;
    try {
      result = await this.kind.list();
    } catch (err) {
      if (gen !== this.gen) throw new StaleAttempt('superseded');
      throw err;
    }
    if (gen !== this.gen) throw new StaleAttempt('superseded');
    this.lists++;
    this.touch();
    return result;
  }

  /**
   * The Watch that ListWatch calls. Like client-node's Watch.watch, but it asks for bookmarks and a
   * server-side timeout, gives up on a connection without response headers, can be aborted while still
   * connecting, and drops every callback once its attempt has been superseded.
   */
  private async openWatch(path: string, query: Record<string, string | undefined>, callback: WatchCallback, done: DoneCallback): Promise<AbortController> {
    const gen = this.gen;
    const controller = new AbortController();
    if (gen !== this.gen || this.stopped) return controller;
    this.activeWatch = controller;
    // ListWatch requests a watch only after it has applied a successful list (or resumes from an
    // earlier one): from here on the cache holds a complete state.
    if (!this.synced) {
      this.synced = true;
      this.log.info({ informer: this.kind.name }, 'informer synced');
    }
    this.settleFirstAttempt();
    let req: http.ClientRequest | undefined;
    let finished = false;
    let connectTimer: NodeJS.Timeout | undefined;
    const finish = (err: unknown) => {
      if (finished) return;
      finished = true;
      clearTimeout(connectTimer);
      req?.destroy();
      if (gen !== this.gen || this.stopped) return;
      this.watching = false;
      clearTimeout(this.healthyTimer);
      this.healthyTimer = undefined;
      done(err);
    };
    controller.signal.addEventListener('abort', () => {
      finished = true;
      clearTimeout(connectTimer);
      req?.destroy();
    });
    try {
      const cluster = this.kc.getCurrentCluster();
      if (!cluster) throw new Error('No currently active cluster');
      const url = new URL(cluster.server + path);
      url.searchParams.set('watch', 'true');
      url.searchParams.set('allowWatchBookmarks', 'true');
      const [lo, hi] = this.opts.watchTimeoutSeconds;
      url.searchParams.set('timeoutSeconds', String(Math.max(1, Math.floor(lo + Math.random() * Math.max(0, hi - lo)))));
      for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
      const opts: https.RequestOptions = {};
      await this.kc.applyToHTTPSOptions(opts);
      if (finished || gen !== this.gen || this.stopped) {
        finished = true;
        return controller;
      }
      const headers = { ...(opts.headers ?? {}), Accept: 'application/json' };
      const mod = url.protocol === 'http:' ? http : https;
      req = mod.request(url, { method: 'GET', agent: opts.agent, headers, ...(opts.auth ? { auth: opts.auth } : {}) });
      connectTimer = setTimeout(() => req?.destroy(new Error(`watch ${path}: no response within ${this.opts.connectTimeoutMs} ms`)), this.opts.connectTimeoutMs);
      req.on('error', finish);
      req.on('response', (res) => {
        clearTimeout(connectTimer);
        if (res.statusCode !== 200) {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => {
            if (body.length < 4096) body += c;
          });
          res.on('error', finish);
          res.on('close', () => {
            let message = body;
            try {
              message = (JSON.parse(body) as { message?: string }).message ?? body;
            } catch {
              /* not a Status */
            }
            finish(Object.assign(new Error(`watch ${path}: HTTP ${res.statusCode}: ${message}`), { statusCode: res.statusCode }));
          });
          return;
        }
        if (gen !== this.gen || this.stopped) {
          finish(null);
          return;
        }
        this.watching = true;
        this.touch();
        this.armHealthyTimer(gen);
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          if (finished) return;
          buf += chunk;
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (!line) continue;
            let ev: { type?: string; object?: unknown };
            try {
              ev = JSON.parse(line) as { type?: string; object?: unknown };
            } catch {
              continue;
            }
            this.touch();
            if (ev.type === 'ERROR') this.log.warn({ informer: this.kind.name, status: ev.object }, 'watch ERROR event');
            if (ev.type && ev.object) callback(ev.type, ev.object, ev);
            if (finished) return;
          }
        });
        res.on('error', finish);
        res.on('close', () => finish(res.complete ? null : new Error(`watch ${path}: stream closed before its end`)));
      });
      req.end();
    } catch (err) {
      finish(err);
    }
    return controller;
  }

  private touch(): void {
    this.lastActivity = Date.now();
  }

  private settleFirstAttempt(): void {
    this.firstAttempt?.resolve();
  }

  private armWatchdog(): void {
    clearInterval(this.watchdogTimer);
    const every = Math.max(10, Math.min(this.opts.idleTimeoutMs / 4, 30_000));
    this.watchdogTimer = setInterval(() => {
      const idle = Date.now() - this.lastActivity;
      if (idle >= this.opts.idleTimeoutMs && !this.stopped && !this.restartTimer) {
        this.watchdogRestarts++;
        this.scheduleRestart('watchdog', new Error(`no list, watch event or bookmark for ${idle} ms`));
      }
    }, every);
  }

  private armHealthyTimer(gen: number): void {
    clearTimeout(this.healthyTimer);
    this.healthyTimer = setTimeout(() => {
      this.healthyTimer = undefined;
      if (gen !== this.gen || !this.watching) return;
      if (this.attempt > 0) this.log.info({ informer: this.kind.name, after: this.attempt }, 'informer healthy again; backoff reset');
      this.attempt = 0;
    }, this.opts.healthyAfterMs);
  }

  private clearTimers(): void {
    clearTimeout(this.restartTimer);
    clearInterval(this.watchdogTimer);
    clearTimeout(this.healthyTimer);
    this.restartTimer = this.watchdogTimer = this.healthyTimer = undefined;
  }

  /** Abandons the current attempt and starts a new one after the backoff delay; at most one is pending. */
  private scheduleRestart(reason: 'error' | 'watchdog', err: unknown): void {
    if (this.stopped || this.restartTimer) return;
    this.gen++;
    this.clearTimers();
    this.abortWatch();
    this.watching = false;
    this.settleFirstAttempt();
    void this.informer.stop();
    const attempt = this.attempt++;
    const delayMs = RestartingInformer.backoffDelay(this.opts, attempt);
    this.restarts++;
    this.log.warn({ informer: this.kind.name, reason, attempt: attempt + 1, delayMs, restarts: this.restarts, err: errorText(err) }, `informer ${this.kind.name} restarting in ${delayMs} ms`);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.stopped) this.begin();
    }, delayMs);
  }
}

function errorText(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    const cause = (err as { cause?: unknown }).cause;
    return [err.message, code && !err.message.includes(String(code)) ? `(${code})` : '', cause instanceof Error ? `: ${cause.message}` : ''].filter(Boolean).join(' ');
  }
  return String(err);
}

export interface KubeClusterOptions {
  /** also cache Services (the controller needs them; the webhook does not) */
  watchServices?: boolean;
  /** also cache BGPPeers and BGPAdvertisements (the validating webhook's reference checks) */
  watchSpeakerConfig?: boolean;
  /** informer backoff and watchdog tunables */
  informer?: Partial<InformerOptions>;
}

export class KubeCluster implements Cluster, ClusterCache, ClaimStore {
  readonly cache: ClusterCache = this;
  readonly claims: ClaimStore = this;
  private readonly custom: CustomObjectsApi;
  private readonly listeners = new Set<(e: CacheEvent) => void>();
  private readonly pools: RestartingInformer<IPPool & KubernetesObject>;
  private readonly claimInformer: RestartingInformer<IPClaim & KubernetesObject>;
  private readonly namespaces: RestartingInformer<Namespace & KubernetesObject>;
  private readonly services: RestartingInformer<Service & KubernetesObject> | undefined;
  private readonly bgpPeers: RestartingInformer<BGPPeer & KubernetesObject> | undefined;
  private readonly bgpAdvertisements: RestartingInformer<BGPAdvertisement & KubernetesObject> | undefined;

  constructor(kc: KubeConfig, log: Pick<Logger, 'info' | 'warn' | 'error'>, opts: KubeClusterOptions = {}) {
    this.custom = kc.makeApiClient(CustomObjectsApi);
    const core = kc.makeApiClient(CoreV1Api);
    const emit = (e: CacheEvent) => {
      for (const l of this.listeners) l(e);
    };
    const customList = (plural: string) => () => this.custom.listClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural }) as never;
    this.pools = new RestartingInformer(kc, { name: 'ippools', path: `/apis/${API_GROUP}/${API_VERSION}/ippools`, list: customList('ippools'), emit: (type, pool) => ({ kind: 'pool', type, pool }) }, emit, log, opts.informer);
    this.claimInformer = new RestartingInformer(kc, { name: 'ipclaims', path: `/apis/${API_GROUP}/${API_VERSION}/ipclaims`, list: customList('ipclaims'), emit: (type, claim) => ({ kind: 'claim', type, claim }) }, emit, log, opts.informer);
    this.namespaces = new RestartingInformer(kc, { name: 'namespaces', path: '/api/v1/namespaces', list: () => core.listNamespace() as never, emit: (type, namespace) => ({ kind: 'namespace', type, namespace }) }, emit, log, opts.informer);
    this.services = opts.watchServices
      ? new RestartingInformer(kc, { name: 'services', path: '/api/v1/services', list: () => core.listServiceForAllNamespaces() as never, emit: (type, service) => ({ kind: 'service', type, service }) }, emit, log, opts.informer)
      : undefined;
    const config = <T extends KubernetesObject>(plural: string) =>
      new RestartingInformer<T>(kc, { name: plural, path: `/apis/${API_GROUP}/${API_VERSION}/${plural}`, list: customList(plural), emit: (type, object) => ({ kind: 'speakerConfig', type, object }) }, emit, log, opts.informer);
    this.bgpPeers = opts.watchSpeakerConfig ? config<BGPPeer & KubernetesObject>('bgppeers') : undefined;
    this.bgpAdvertisements = opts.watchSpeakerConfig ? config<BGPAdvertisement & KubernetesObject>('bgpadvertisements') : undefined;
  }

  private informers() {
    return [this.pools, this.claimInformer, this.namespaces, this.services, this.bgpPeers, this.bgpAdvertisements].filter((i) => i !== undefined) as unknown as RestartingInformer<KubernetesObject>[];
  }

  /** BGPPeers (with watchSpeakerConfig): the validating webhook checks references against them. */
  listBgpPeers(): readonly BGPPeer[] {
    return this.bgpPeers?.informer.list() ?? [];
  }

  listBgpAdvertisements(): readonly BGPAdvertisement[] {
    return this.bgpAdvertisements?.informer.list() ?? [];
  }

  async start(): Promise<void> {
    await Promise.all(this.informers().map((i) => i.start()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.informers().map((i) => i.stop()));
  }

  /** True once every informer has listed; stays true while they reconnect (client-go's HasSynced). */
  synced(): boolean {
    return this.informers().every((i) => i.synced);
  }

  /** Per-informer counters (restarts, lists, watching) for tests and metrics. */
  informerStats(): InformerStats[] {
    return this.informers().map((i) => i.stats());
  }

  onEvent(listener: (event: CacheEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  listPools(): readonly IPPool[] {
    return this.pools.informer.list();
  }

  listClaims(): readonly IPClaim[] {
    return this.claimInformer.informer.list();
  }

  listServices(): readonly Service[] {
    return this.services?.informer.list() ?? [];
  }

  namespace(name: string): Namespace | undefined {
    return this.namespaces.informer.get(name) as Namespace | undefined;
  }

  async create(claim: IPClaim): Promise<ClaimCreateResult> {
    try {
      const created = (await retryOnStaleSocket(() => this.custom.createClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural: 'ipclaims', body: claim }))) as IPClaim;
      return { ok: true, claim: created };
    } catch (err) {
      if (statusOf(err) === 409) return { ok: false, reason: 'AlreadyExists', current: await this.get(claim.metadata.name!) };
      throw claimCallError(`creating IPClaim ${claim.metadata.name}`, err);
    }
  }

  async update(claim: IPClaim): Promise<ClaimUpdateResult> {
    try {
      const updated = (await retryOnStaleSocket(() => this.custom.replaceClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural: 'ipclaims', name: claim.metadata.name!, body: claim }))) as IPClaim;
      return { ok: true, claim: updated };
    } catch (err) {
      const status = statusOf(err);
      if (status === 409) return { ok: false, reason: 'Conflict' };
      if (status === 404) return { ok: false, reason: 'NotFound' };
      throw claimCallError(`updating IPClaim ${claim.metadata.name}`, err);
    }
  }

  async delete(name: string, resourceVersion?: string): Promise<boolean> {
    try {
      await this.custom.deleteClusterCustomObject({
        group: API_GROUP,
        version: API_VERSION,
        plural: 'ipclaims',
        name,
        ...(resourceVersion ? { body: { preconditions: { resourceVersion } } } : {}),
      });
      return true;
    } catch (err) {
      const status = statusOf(err);
      if (status === 404 || status === 409) return false;
      throw claimCallError(`deleting IPClaim ${name}`, err);
    }
  }

  async get(name: string): Promise<IPClaim | undefined> {
    try {
      return (await retryOnStaleSocket(() => this.custom.getClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural: 'ipclaims', name }))) as IPClaim;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw claimCallError(`reading IPClaim ${name}`, err);
    }
  }
}
