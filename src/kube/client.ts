// The Cluster adapter on @kubernetes/client-node 1.4: informers for pools, claims and namespaces
// (restarted with backoff on any error, never trusted to recover on their own), and the claim writes.
import { CoreV1Api, CustomObjectsApi, KubeConfig, makeInformer, type Informer, type KubernetesObject, type ObjectCache } from '@kubernetes/client-node';
import type { IPClaim, IPPool } from '../config/schemas.ts';
import { API_GROUP, API_VERSION } from '../config/schemas.ts';
import { ApiUnavailableError, type CacheEvent, type ClaimCreateResult, type ClaimStore, type ClaimUpdateResult, type Cluster, type ClusterCache } from './cluster.ts';
import type { Namespace, Service } from './types.ts';

export interface KubeLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export function loadKubeConfig(path?: string): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return kc;
}

const statusOf = (err: unknown): number | undefined => {
  const e = err as { code?: unknown; statusCode?: unknown; response?: { statusCode?: number } };
  if (typeof e?.code === 'number') return e.code;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return e?.response?.statusCode;
};

interface WatchedKind<T extends KubernetesObject> {
  name: string;
  path: string;
  list: () => Promise<{ items: T[]; metadata?: unknown; apiVersion?: string; kind?: string }>;
  emit: (type: 'upsert' | 'delete', obj: T) => CacheEvent;
}

/** One informer, restarted with capped exponential backoff after any error (410 included). */
class RestartingInformer<T extends KubernetesObject> {
  informer: Informer<T> & ObjectCache<T>;
  synced = false;
  private attempt = 0;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(private readonly kc: KubeConfig, private readonly kind: WatchedKind<T>, private readonly emit: (e: CacheEvent) => void, private readonly log: KubeLogger) {
    this.informer = makeInformer<T>(kc, kind.path, kind.list as never);
    this.informer.on('add', (o) => this.emit(kind.emit('upsert', o)));
    this.informer.on('update', (o) => this.emit(kind.emit('upsert', o)));
    this.informer.on('delete', (o) => this.emit(kind.emit('delete', o)));
    this.informer.on('connect', () => {
      this.attempt = 0;
    });
    this.informer.on('error', (err) => {
      this.log.warn({ informer: kind.name, err: String(err) }, 'informer stopped; restarting');
      this.scheduleRestart();
    });
  }

  async start(): Promise<void> {
    try {
      await this.informer.start();
      this.synced = true;
    } catch (err) {
      this.log.warn({ informer: this.kind.name, err: String(err) }, 'informer failed to start; retrying');
      this.scheduleRestart();
    }
  }

  private scheduleRestart() {
    if (this.stopped || this.timer) return;
    const delay = Math.min(30_000, 250 * 2 ** this.attempt++) * (0.8 + Math.random() * 0.4);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.start();
    }, delay);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.informer.stop();
  }
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

  constructor(kc: KubeConfig, log: KubeLogger, opts: { watchServices?: boolean } = {}) {
    this.custom = kc.makeApiClient(CustomObjectsApi);
    const core = kc.makeApiClient(CoreV1Api);
    const emit = (e: CacheEvent) => {
      for (const l of this.listeners) l(e);
    };
    const customList = (plural: string) => () => this.custom.listClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural }) as never;
    this.pools = new RestartingInformer(kc, { name: 'ippools', path: `/apis/${API_GROUP}/${API_VERSION}/ippools`, list: customList('ippools'), emit: (type, pool) => ({ kind: 'pool', type, pool }) }, emit, log);
    this.claimInformer = new RestartingInformer(kc, { name: 'ipclaims', path: `/apis/${API_GROUP}/${API_VERSION}/ipclaims`, list: customList('ipclaims'), emit: (type, claim) => ({ kind: 'claim', type, claim }) }, emit, log);
    this.namespaces = new RestartingInformer(kc, { name: 'namespaces', path: '/api/v1/namespaces', list: () => core.listNamespace() as never, emit: (type, namespace) => ({ kind: 'namespace', type, namespace }) }, emit, log);
    this.services = opts.watchServices
      ? new RestartingInformer(kc, { name: 'services', path: '/api/v1/services', list: () => core.listServiceForAllNamespaces() as never, emit: (type, service) => ({ kind: 'service', type, service }) }, emit, log)
      : undefined;
  }

  private informers() {
    return [this.pools, this.claimInformer, this.namespaces, ...(this.services ? [this.services] : [])];
  }

  async start(): Promise<void> {
    await Promise.all(this.informers().map((i) => i.start()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.informers().map((i) => i.stop()));
  }

  synced(): boolean {
    return this.informers().every((i) => i.synced);
  }

  onEvent(listener: (event: CacheEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  listPools(): IPPool[] {
    return this.pools.informer.list() as IPPool[];
  }

  listClaims(): IPClaim[] {
    return this.claimInformer.informer.list() as IPClaim[];
  }

  listServices(): Service[] {
    return (this.services?.informer.list() ?? []) as Service[];
  }

  namespace(name: string): Namespace | undefined {
    return this.namespaces.informer.get(name) as Namespace | undefined;
  }

  async create(claim: IPClaim): Promise<ClaimCreateResult> {
    try {
      const created = (await this.custom.createClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural: 'ipclaims', body: claim })) as IPClaim;
      return { ok: true, claim: created };
    } catch (err) {
      if (statusOf(err) === 409) return { ok: false, reason: 'AlreadyExists', current: await this.get(claim.metadata.name!) };
      throw new ApiUnavailableError(`creating IPClaim ${claim.metadata.name}: ${String((err as Error).message ?? err)}`, err);
    }
  }

  async update(claim: IPClaim): Promise<ClaimUpdateResult> {
    try {
      const updated = (await this.custom.replaceClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural: 'ipclaims', name: claim.metadata.name!, body: claim })) as IPClaim;
      return { ok: true, claim: updated };
    } catch (err) {
      const status = statusOf(err);
      if (status === 409) return { ok: false, reason: 'Conflict' };
      if (status === 404) return { ok: false, reason: 'NotFound' };
      throw new ApiUnavailableError(`updating IPClaim ${claim.metadata.name}: ${String((err as Error).message ?? err)}`, err);
    }
  }

  async delete(name: string, resourceVersion?: string): Promise<boolean> {
    try {
      await this.custom.deleteClusterCustomObject({
        group: API_GROUP,
        version: API_VERSION,
        plural: 'ipclaims',
        name,
        body: resourceVersion ? { preconditions: { resourceVersion } } : undefined,
      });
      return true;
    } catch (err) {
      const status = statusOf(err);
      if (status === 404 || status === 409) return false;
      throw new ApiUnavailableError(`deleting IPClaim ${name}: ${String((err as Error).message ?? err)}`, err);
    }
  }

  async get(name: string): Promise<IPClaim | undefined> {
    try {
      return (await this.custom.getClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural: 'ipclaims', name })) as IPClaim;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw new ApiUnavailableError(`reading IPClaim ${name}: ${String((err as Error).message ?? err)}`, err);
    }
  }
}
