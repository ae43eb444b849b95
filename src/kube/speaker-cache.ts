// The speaker's view of the cluster on @kubernetes/client-node 1.4: restarting informers (the same
// RestartingInformer as KubeCluster: backoff, watchdog, HasSynced semantics) for Nodes,
// EndpointSlices, the speakers' node Leases, Services, IPClaims, IPPools and the three config kinds,
// plus the speaker's writes: its own node Lease and Events on Services.
import type { Logger } from '../log.ts';
import { createServiceEvent } from './events.ts';
import { CoordinationV1Api, CoreV1Api, CustomObjectsApi, DiscoveryV1Api, type KubeConfig, type KubernetesObject, type V1Lease } from '@kubernetes/client-node';
import type { IPClaim, IPPool } from '../config/schemas.ts';
import { API_GROUP, API_VERSION } from '../config/schemas.ts';
import type { BGPAdvertisement, BGPPeer, L2Advertisement } from './speaker-config.ts';
import { SPEAKER_CONFIG_PLURALS } from './speaker-config.ts';
import type { EndpointSliceObject, NodeObject } from './types.ts';
import { RestartingInformer, type InformerOptions, type InformerStats } from './client.ts';
import type { CacheEvent } from './cluster.ts';
import { microTime } from './leader-election.ts';
import type { Service } from './types.ts';

export type SpeakerKind = 'node' | 'endpointslice' | 'lease' | 'service' | 'claim' | 'pool' | 'l2advertisement' | 'bgppeer' | 'bgpadvertisement';

export interface SpeakerCacheEvent {
  kind: SpeakerKind;
  type: 'upsert' | 'delete';
  object: KubernetesObject;
}

/** A node Lease as the speaker reads it. */
export interface LeaseObject {
  metadata: { name?: string; namespace?: string; resourceVersion?: string; labels?: Record<string, string>; [k: string]: unknown };
  spec?: { holderIdentity?: string | null; leaseDurationSeconds?: number | null; renewTime?: string | Date | null; [k: string]: unknown } | null;
}

export const LEASE_PREFIX = 'admitlb-speaker-';
export const LEASE_NODE_LABEL = 'admitlb.io/speaker-node';
export const leaseNameFor = (node: string) => `${LEASE_PREFIX}${node}`;

export interface SpeakerCacheOptions {
  /** the namespace of the speakers' node Leases */
  namespace: string;
  informer?: Partial<InformerOptions>;
}

export class SpeakerCache {
  private readonly listeners = new Set<(e: SpeakerCacheEvent) => void>();
  private readonly informers: Record<SpeakerKind, RestartingInformer<KubernetesObject>>;

  constructor(kc: KubeConfig, log: Pick<Logger, 'info' | 'warn' | 'error'>, opts: SpeakerCacheOptions) {
    const core = kc.makeApiClient(CoreV1Api);
    const discovery = kc.makeApiClient(DiscoveryV1Api);
    const coordination = kc.makeApiClient(CoordinationV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const emit = (e: SpeakerCacheEvent) => {
      for (const l of this.listeners) l(e);
    };
    const make = (kind: SpeakerKind, name: string, path: string, list: () => Promise<unknown>) =>
      new RestartingInformer<KubernetesObject>(
        kc,
        // RestartingInformer is typed on the webhook's CacheEvent; it only passes the value through.
        { name, path, list: list as never, emit: (type, object) => ({ kind, type, object }) as unknown as CacheEvent },
        emit as unknown as (e: CacheEvent) => void,
        log,
        opts.informer,
      );
    const customList = (plural: string) => () => custom.listClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural });
    const base = `/apis/${API_GROUP}/${API_VERSION}`;
    this.informers = {
      node: make('node', 'nodes', '/api/v1/nodes', () => core.listNode()),
      endpointslice: make('endpointslice', 'endpointslices', '/apis/discovery.k8s.io/v1/endpointslices', () => discovery.listEndpointSliceForAllNamespaces()),
      lease: make('lease', 'leases', `/apis/coordination.k8s.io/v1/namespaces/${opts.namespace}/leases`, () => coordination.listNamespacedLease({ namespace: opts.namespace })),
      service: make('service', 'services', '/api/v1/services', () => core.listServiceForAllNamespaces()),
      claim: make('claim', 'ipclaims', `${base}/ipclaims`, customList('ipclaims')),
      pool: make('pool', 'ippools', `${base}/ippools`, customList('ippools')),
      l2advertisement: make('l2advertisement', SPEAKER_CONFIG_PLURALS.l2Advertisements, `${base}/${SPEAKER_CONFIG_PLURALS.l2Advertisements}`, customList(SPEAKER_CONFIG_PLURALS.l2Advertisements)),
      bgppeer: make('bgppeer', SPEAKER_CONFIG_PLURALS.bgpPeers, `${base}/${SPEAKER_CONFIG_PLURALS.bgpPeers}`, customList(SPEAKER_CONFIG_PLURALS.bgpPeers)),
      bgpadvertisement: make('bgpadvertisement', SPEAKER_CONFIG_PLURALS.bgpAdvertisements, `${base}/${SPEAKER_CONFIG_PLURALS.bgpAdvertisements}`, customList(SPEAKER_CONFIG_PLURALS.bgpAdvertisements)),
    };
  }

  private all(): RestartingInformer<KubernetesObject>[] {
    return Object.values(this.informers);
  }

  async start(): Promise<void> {
    await Promise.all(this.all().map((i) => i.start()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.all().map((i) => i.stop()));
  }

  synced(): boolean {
    return this.all().every((i) => i.synced);
  }

  /** Informers that have not listed yet (for /readyz). */
  unsynced(): string[] {
    return this.all().filter((i) => !i.synced).map((i) => i.name);
  }

  informerStats(): InformerStats[] {
    return this.all().map((i) => i.stats());
  }

  onEvent(listener: (e: SpeakerCacheEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private list<T>(kind: SpeakerKind): T[] {
    return this.informers[kind].informer.list() as unknown as T[];
  }

  nodes = () => this.list<NodeObject>('node');
  endpointSlices = () => this.list<EndpointSliceObject>('endpointslice');
  leases = () => this.list<LeaseObject>('lease');
  services = () => this.list<Service>('service');
  claims = () => this.list<IPClaim>('claim');
  pools = () => this.list<IPPool>('pool');
  l2Advertisements = () => this.list<L2Advertisement>('l2advertisement');
  bgpPeers = () => this.list<BGPPeer>('bgppeer');
  bgpAdvertisements = () => this.list<BGPAdvertisement>('bgpadvertisement');
}

const statusOf = (err: unknown): number | undefined => {
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e?.code === 'number') return e.code;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return undefined;
};

const errText = (err: unknown) => {
  const body = (err as { body?: unknown })?.body;
  try {
    const msg = (typeof body === 'string' ? (JSON.parse(body) as { message?: string }) : (body as { message?: string }))?.message;
    if (msg) return `HTTP ${statusOf(err)}: ${msg}`;
  } catch {
    /* not a Status */
  }
  return err instanceof Error ? err.message : String(err);
};

/** The node Lease's exact duration in milliseconds (Lease.spec.leaseDurationSeconds is whole seconds). */
export const LEASE_DURATION_MS_ANNOTATION = 'admitlb.io/lease-duration-ms';

export interface NodeLeaseOptions {
  kc: KubeConfig;
  namespace: string;
  nodeName: string;
  leaseDurationSeconds: number;
  renewIntervalMs: number;
  log: Pick<Logger, 'info' | 'warn' | 'error'>;
  /** monotonic clock (default performance.now) */
  now?: () => number;
}

/**
 * The speaker's own node Lease (`admitlb-speaker-<node>`, holderIdentity = node name), renewed every
 * renewIntervalMs. Creates it when missing, replaces it with the last resourceVersion it saw (a
 * Conflict or NotFound makes it read or create again at the next tick). stop() deletes it, so the
 * other speakers take over at once instead of waiting for it to lapse.
 */
export class NodeLease {
  private readonly api: CoordinationV1Api;
  private readonly now: () => number;
  private current: V1Lease | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> | undefined;
  private stopped = false;
  private acquiredAt = Date.now();
  private lastError = '';
  /** monotonic time of the last successful write (-Infinity: none yet) */
  lastRenewedAt = -Infinity;
  renewals = 0;
  failures = 0;

  constructor(private readonly opts: NodeLeaseOptions) {
    this.api = opts.kc.makeApiClient(CoordinationV1Api);
    this.now = opts.now ?? (() => performance.now());
  }

  get name(): string {
    return leaseNameFor(this.opts.nodeName);
  }

  start(): void {
    this.stopped = false;
    const tick = () => {
      if (this.stopped) return;
      this.inflight = this.renew().finally(() => {
        this.inflight = undefined;
        if (!this.stopped) this.timer = setTimeout(tick, this.opts.renewIntervalMs);
      });
    };
    tick();
  }

  /** Whether the last successful renewal is younger than the lease duration. */
  healthy(): boolean {
    return this.now() < this.healthyUntil();
  }

  /** Monotonic time at which healthy() turns false without another renewal. */
  healthyUntil(): number {
    return this.lastRenewedAt + this.opts.leaseDurationSeconds * 1000;
  }

  private body(resourceVersion?: string): V1Lease {
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: this.name,
        namespace: this.opts.namespace,
        labels: { [LEASE_NODE_LABEL]: this.opts.nodeName, 'app.kubernetes.io/name': 'admitlb-speaker' },
        // Lease durations are whole seconds; the exact one (1.5 s by default) travels with the Lease
        // so that every speaker judges this node's liveness by what this node promised.
        annotations: { [LEASE_DURATION_MS_ANNOTATION]: String(Math.round(this.opts.leaseDurationSeconds * 1000)) },
        ...(resourceVersion ? { resourceVersion } : {}),
      },
      spec: {
        holderIdentity: this.opts.nodeName,
        leaseDurationSeconds: Math.ceil(this.opts.leaseDurationSeconds),
        acquireTime: microTime(this.acquiredAt),
        renewTime: microTime(),
      },
    };
  }

  async renew(): Promise<void> {
    const sentAt = this.now();
    const { namespace } = this.opts;
    try {
      if (!this.current) {
        try {
          this.current = await this.api.createNamespacedLease({ namespace, body: this.body() });
        } catch (err) {
          if (statusOf(err) !== 409) throw err;
          const existing = await this.api.readNamespacedLease({ namespace, name: this.name });
          this.current = await this.api.replaceNamespacedLease({ namespace, name: this.name, body: this.body(existing.metadata?.resourceVersion) });
        }
      } else {
        this.current = await this.api.replaceNamespacedLease({ namespace, name: this.name, body: this.body(this.current.metadata?.resourceVersion) });
      }
      this.lastRenewedAt = sentAt;
      this.renewals++;
      if (this.lastError) this.opts.log.info({ lease: this.name }, 'node lease renewed again');
      this.lastError = '';
    } catch (err) {
      this.failures++;
      const status = statusOf(err);
      if (status === 409 || status === 404) this.current = undefined;
      const text = errText(err);
      if (text !== this.lastError) this.opts.log.warn({ lease: this.name, err: text }, 'renewing the node lease failed');
      this.lastError = text;
    }
  }

  /** Stops renewing; `release` deletes the Lease (graceful shutdown). */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.inflight;
    if (opts.release !== false) {
      try {
        await this.api.deleteNamespacedLease({ namespace: this.opts.namespace, name: this.name });
      } catch (err) {
        if (statusOf(err) !== 404) this.opts.log.warn({ lease: this.name, err: errText(err) }, 'deleting the node lease failed');
      }
    }
  }
}

export interface ServiceRef {
  namespace: string;
  name: string;
  uid?: string | undefined;
  resourceVersion?: string | undefined;
}

const COMPONENT = 'admitlb-speaker';

/** Core v1 Events on Services from the speaker (what `kubectl describe svc` lists). */
export class SpeakerEvents {
  private readonly core: CoreV1Api;
  constructor(
    kc: KubeConfig,
    private readonly nodeName: string,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
  }

  async record(target: ServiceRef, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    await createServiceEvent(this.core, { component: COMPONENT, host: this.nodeName, instance: `${COMPONENT}-${this.nodeName}` }, target, type, reason, message);
  }
}

/**
 * BGPPeer password Secrets (spec.passwordSecretRef), read by name with `get` only: the speaker's
 * RBAC allows no list/watch of Secrets (webhook-manifests/rbac.yaml). Data comes back decoded.
 */
export class SpeakerSecrets {
  private readonly core: CoreV1Api;
  constructor(kc: KubeConfig) {
    this.core = kc.makeApiClient(CoreV1Api);
  }

  async get(namespace: string, name: string): Promise<Record<string, string> | null> {
    try {
      const secret = await this.core.readNamespacedSecret({ namespace, name });
      const data: Record<string, string> = {};
      for (const [k, v] of Object.entries(secret.data ?? {})) data[k] = Buffer.from(v, 'base64').toString('utf8');
      for (const [k, v] of Object.entries(secret.stringData ?? {})) data[k] ??= v;
      return data;
    } catch (err) {
      if ((err as { code?: unknown }).code === 404) return null;
      throw err;
    }
  }
}
