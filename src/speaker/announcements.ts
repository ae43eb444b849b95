// What this node announces, published as its NodeAnnouncement (admitlb.io/v1alpha1, cluster-scoped,
// named after the node): L2 addresses with their interface, BGP routes with their peers, and the
// state of each BGP session. Two parts:
//  - announcementStatus: a pure function from what the data plane holds (and the previous status,
//    for the `since` times) to the status; sorted, so that equal states compare equal as JSON;
//  - AnnouncementWriter: writes the status only when it differs from what it last wrote, at most
//    once per minIntervalMs (changes in between are coalesced into one write), so that API writes
//    follow data-plane changes, never time. Nothing in the status moves on its own: no counters, no
//    uptimes, BGP sessions reduced to Established/Down (a session that cannot come up walks the
//    FSM on every retry), errors without their timestamps.
//
// Why one object per node rather than per Service (MetalLB's ServiceL2Status/ServiceBGPStatus): a
// node writes only its own object, so a failover costs one write per node involved whatever the
// number of Services, and the speaker needs no read of other nodes' objects. A dead node cannot
// write: its object stays as it was until its Node is deleted (ownerReference: garbage collected)
// or its speaker starts again; `kubectl admitlb status` ignores objects of nodes whose speaker
// Lease is gone or lapsed, and for an L2 address claimed by several objects trusts the newest
// `since` (the node that took it over).
//
// Limit: the speakers share one ServiceAccount, and RBAC cannot restrict writes to "the object named
// after my node", so a compromised speaker could write other nodes' objects (as it can write their
// Leases). The objects are a report for people, never an input of any decision.
import { CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { API_GROUP, API_GROUP_VERSION, API_VERSION, type NodeAnnouncementStatus } from '../config/schemas.ts';
import type { PeerStatus } from '../bgp/index.ts';
import type { Logger } from '../log.ts';
import type { SpeakerPlan } from './plan.ts';

export const NODE_ANNOUNCEMENT_PLURAL = 'nodeannouncements';
/**
 * Entries kept per list (l2, bgp): an object must stay well under etcd's 1.5 MiB request limit
 * (≈ 150 bytes an entry); what is left out is counted in status.omitted.
 */
export const MAX_ENTRIES = 2000;
/** Addresses named in status.addresses (the printer column); the rest is counted, "(+N)". */
export const SUMMARY_ADDRESSES = 8;

/** What the data plane holds right now, as the runtime knows it. */
export interface AnnouncementInput {
  /** L2 addresses held on an interface, with the Services they are announced for */
  l2: { address: string; interface: string; services: string[] }[];
  /** routes offered per BGP peer that has a session */
  bgp: { peer: string; routes: { prefix: string; addresses: string[]; services: string[] }[] }[];
  sessions: { peer: string; peerAddress: string; status: PeerStatus | undefined }[];
}

const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const sorted = (xs: Iterable<string>) => [...new Set(xs)].sort(byString);

/**
 * The runtime's state as AnnouncementInput: L2 addresses the announcer holds (kind 'announce') with
 * the Services the plan names for them, the plan's routes of every peer that has a session.
 */
export function collectAnnouncements(plan: SpeakerPlan | undefined, held: { address: string; dev: string; kind: string }[], sessions: { name: string; status: PeerStatus | undefined }[]): AnnouncementInput {
  const l2Services = new Map((plan?.l2 ?? []).map((a) => [a.address, a.services]));
  const open = new Set(sessions.map((s) => s.name));
  const peerAddress = new Map((plan?.bgp ?? []).map((p) => [p.name, p.spec.peerAddress]));
  return {
    l2: held.filter((h) => h.kind === 'announce').map((h) => ({ address: h.address, interface: h.dev, services: l2Services.get(h.address) ?? [] })),
    bgp: (plan?.bgp ?? []).filter((p) => open.has(p.name)).map((p) => ({ peer: p.name, routes: p.routes.map((r) => ({ prefix: r.prefix, addresses: r.addresses, services: r.services })) })),
    sessions: sessions.map((s) => ({ peer: s.name, peerAddress: s.status?.address ?? peerAddress.get(s.name) ?? '', status: s.status })),
  };
}

/**
 * The NodeAnnouncement status for `input`. `previous` carries the `since` of what did not change
 * (an L2 address still on the same interface, a session still in the same state); `now` stamps
 * what did. Deterministic: equal inputs give equal JSON.
 */
export function announcementStatus(input: AnnouncementInput, previous: NodeAnnouncementStatus | undefined, now: Date): NodeAnnouncementStatus {
  const stamp = now.toISOString();
  const prevL2 = new Map((previous?.l2 ?? []).map((a) => [a.address, a]));
  const l2 = input.l2
    .map((a) => {
      const before = prevL2.get(a.address);
      return { address: a.address, interface: a.interface, services: sorted(a.services), since: before && before.interface === a.interface ? before.since : stamp };
    })
    .sort((a, b) => byString(a.address, b.address));

  const routes = new Map<string, { address: string; prefix: string; services: Set<string>; peers: Set<string> }>();
  for (const p of input.bgp) {
    for (const r of p.routes) {
      for (const address of r.addresses) {
        const key = `${address}|${r.prefix}`;
        let e = routes.get(key);
        if (!e) routes.set(key, (e = { address, prefix: r.prefix, services: new Set(), peers: new Set() }));
        for (const s of r.services) e.services.add(s);
        e.peers.add(p.peer);
      }
    }
  }
  const bgp = [...routes.values()]
    .map((e) => ({ address: e.address, prefix: e.prefix, services: sorted(e.services), peers: sorted(e.peers) }))
    .sort((a, b) => byString(a.address, b.address) || byString(a.prefix, b.prefix));

  const prevSessions = new Map((previous?.bgpSessions ?? []).map((s) => [s.peer, s]));
  const bgpSessions = input.sessions
    .map((s) => {
      const state: 'Established' | 'Down' = s.status?.state === 'Established' ? 'Established' : 'Down';
      const before = prevSessions.get(s.peer);
      const since = state === 'Established' && s.status?.establishedAt ? s.status.establishedAt.toISOString() : before && before.state === state && before.since ? before.since : stamp;
      const bfd = s.status?.bfd?.state;
      const lastError = s.status?.lastError?.message;
      return { peer: s.peer, peerAddress: s.peerAddress, state, since, ...(bfd ? { bfd } : {}), ...(lastError ? { lastError } : {}) };
    })
    .sort((a, b) => byString(a.peer, b.peer));

  const addresses = sorted([...l2.map((a) => a.address), ...bgp.map((r) => r.address)]);
  const omitted = Math.max(0, l2.length - MAX_ENTRIES) + Math.max(0, bgp.length - MAX_ENTRIES);
  const more = addresses.length - SUMMARY_ADDRESSES;
  return {
    addresses: addresses.slice(0, SUMMARY_ADDRESSES).join(',') + (more > 0 ? ` (+${more})` : ''),
    sessions: `${bgpSessions.filter((s) => s.state === 'Established').length}/${bgpSessions.length}`,
    l2: l2.slice(0, MAX_ENTRIES),
    bgp: bgp.slice(0, MAX_ENTRIES),
    bgpSessions,
    ...(omitted > 0 ? { omitted } : {}),
  };
}

/** The NodeAnnouncement API as the writer needs it (KubeNodeAnnouncements; tests may inject one). */
export interface NodeAnnouncementApi {
  /** merge-patches status; false when the object does not exist */
  patchStatus(name: string, status: NodeAnnouncementStatus): Promise<boolean>;
  /** creates the object (owned by the Node when its uid is known); an existing one counts as created */
  create(name: string, nodeUid: string | undefined): Promise<void>;
  delete(name: string): Promise<void>;
}

const statusCode = (err: unknown) => (err as { code?: unknown })?.code;

export class KubeNodeAnnouncements implements NodeAnnouncementApi {
  private readonly custom: CustomObjectsApi;
  constructor(kc: KubeConfig) {
    this.custom = kc.makeApiClient(CustomObjectsApi);
  }

  async patchStatus(name: string, status: NodeAnnouncementStatus): Promise<boolean> {
    try {
      // A merge patch replaces each list whole; every field is always sent, so nothing stale remains.
      await this.custom.patchClusterCustomObjectStatus({ group: API_GROUP, version: API_VERSION, plural: NODE_ANNOUNCEMENT_PLURAL, name, body: { status } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
      return true;
    } catch (err) {
      if (statusCode(err) === 404) return false;
      throw err;
    }
  }

  async create(name: string, nodeUid: string | undefined): Promise<void> {
    const body = {
      apiVersion: API_GROUP_VERSION,
      kind: 'NodeAnnouncement',
      metadata: {
        name,
        labels: { 'app.kubernetes.io/name': 'admitlb-speaker' },
        // Deleting the Node deletes its report (garbage collector). No blockOwnerDeletion: that would
        // need delete permission on Nodes.
        ...(nodeUid ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name, uid: nodeUid }] } : {}),
      },
      spec: { nodeName: name },
    };
    try {
      await this.custom.createClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural: NODE_ANNOUNCEMENT_PLURAL, body });
    } catch (err) {
      if (statusCode(err) !== 409) throw err;
    }
  }

  async delete(name: string): Promise<void> {
    try {
      await this.custom.deleteClusterCustomObject({ group: API_GROUP, version: API_VERSION, plural: NODE_ANNOUNCEMENT_PLURAL, name });
    } catch (err) {
      if (statusCode(err) !== 404) throw err;
    }
  }
}

export interface AnnouncementWriterOptions {
  nodeName: string;
  api: NodeAnnouncementApi;
  /** the Node's uid (ownerReference), read when the object is created */
  nodeUid?: () => string | undefined;
  logger: Pick<Logger, 'warn' | 'debug'>;
  /** at most one write per this many ms (default 500); changes in between are coalesced */
  minIntervalMs?: number;
  /** wait after the first change before writing, to coalesce a burst (default 50) */
  settleMs?: number;
  /** wall clock for `since` (default new Date()) */
  clock?: () => Date;
  /** told of every status write (a metric) */
  onWrite?: (result: 'written' | 'failed') => void;
}

/** Publishes this node's NodeAnnouncement status, writing only on change (see the file comment). */
export class AnnouncementWriter {
  private desired: NodeAnnouncementStatus | undefined;
  private desiredJson = '';
  private writtenJson = '';
  private lastWriteAt = -Infinity;
  private failures = 0;
  private timer: NodeJS.Timeout | undefined;
  private inflight: Promise<void> | undefined;
  private closed = false;
  /** successful status writes (tests and logs) */
  writes = 0;

  constructor(private readonly opts: AnnouncementWriterOptions) {}

  /** The status last computed (what the object shows once written). */
  current(): NodeAnnouncementStatus | undefined {
    return this.desired;
  }

  /** Recomputes the status from `input`; schedules a write when it differs from the last one written. */
  publish(input: AnnouncementInput): void {
    if (this.closed) return;
    const next = announcementStatus(input, this.desired, (this.opts.clock ?? (() => new Date()))());
    const json = JSON.stringify(next);
    if (json === this.desiredJson) return;
    this.desired = next;
    this.desiredJson = json;
    this.schedule();
  }

  private schedule(): void {
    if (this.closed || this.timer || this.inflight || this.desiredJson === this.writtenJson) return;
    const minInterval = this.opts.minIntervalMs ?? 500;
    const backoff = this.failures > 0 ? Math.min(30_000, 1000 * 2 ** (this.failures - 1)) : 0;
    const delay = Math.max(this.opts.settleMs ?? 50, this.lastWriteAt + minInterval - performance.now(), backoff);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.inflight = this.flush().finally(() => {
        this.inflight = undefined;
        this.schedule();
      });
    }, delay);
    this.timer.unref();
  }

  private async flush(): Promise<void> {
    const status = this.desired;
    const json = this.desiredJson;
    if (!status || json === this.writtenJson) return;
    const name = this.opts.nodeName;
    try {
      if (!(await this.opts.api.patchStatus(name, status))) {
        await this.opts.api.create(name, this.opts.nodeUid?.());
        if (!(await this.opts.api.patchStatus(name, status))) throw new Error('the NodeAnnouncement disappeared right after its creation');
      }
      this.writtenJson = json;
      this.lastWriteAt = performance.now();
      this.writes++;
      this.failures = 0;
      this.opts.onWrite?.('written');
      this.opts.logger.debug({ addresses: status.addresses, sessions: status.sessions }, 'NodeAnnouncement written');
    } catch (err) {
      this.failures++;
      this.lastWriteAt = performance.now();
      this.opts.onWrite?.('failed');
      if (this.failures === 1) this.opts.logger.warn({ err: (err as Error).message }, 'writing the NodeAnnouncement failed (retrying with backoff)');
    }
  }

  /** Resolves once nothing is left to write (or the writer is closed). */
  async settled(): Promise<void> {
    for (let i = 0; i < 10_000 && !this.closed && (this.timer || this.inflight); i++) await (this.inflight ?? new Promise((r) => setTimeout(r, 10)));
  }

  /** Stops writing; `remove` deletes the object (graceful shutdown: this node announces nothing any more). */
  async close(opts: { remove?: boolean } = {}): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.inflight;
    if (opts.remove) await this.opts.api.delete(this.opts.nodeName).catch((err: Error) => this.opts.logger.warn({ err: err.message }, 'deleting the NodeAnnouncement failed'));
  }
}
