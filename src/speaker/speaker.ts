// The speaker runtime: caches → plan (plan.ts, pure) → data plane (L2Announcer, one BgpSpeaker per
// BGPPeer), with Events and metrics. Level-triggered like the controller: events only mark the
// state dirty, a debounced pass recomputes the whole plan and applies the difference; a timer fires
// at the moment the next node Lease lapses, so a dead node's addresses move as soon as its Lease
// has expired (not at the next resync). Lease renewals that do not change the live set cost no pass.
import type { Logger } from '../log.ts';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { PeerStatus, RouteAttributes } from '../bgp/index.ts';
import { type BgpFactory, type BgpSession, defaultBgpFactory } from './bgp-factory.ts';
import { BGP_PASSWORD_KEY, BGP_PASSWORD_NAMESPACE } from '../config/schemas.ts';
import { ANN_ALLOCATION } from '../config/annotations.ts';
import type { IPClaim, IPPool } from '../config/schemas.ts';
import type { LeaseObject, ServiceRef, SpeakerCacheEvent } from '../kube/speaker-cache.ts';
import type { Service } from '../kube/types.ts';
import type { Assignment, KeySet } from '../signing/assignment.ts';
import type { L2Announcer } from './announcer.ts';
import { collectAnnouncements, type AnnouncementInput } from './announcements.ts';
import type { BGPAdvertisement, BGPPeer, BGPPeerSpec, L2Advertisement } from '../kube/speaker-config.ts';
import { DEFAULT_EXCLUDES, chooseInterface } from './interfaces.ts';
import { defaultRoutes, listLinks, type CommandRunner, type DefaultRoutes, type IpLink } from './ip.ts';
import { OwnerCache } from './election.ts';
import { LiveSet } from './liveness.ts';
import { checkServiceAssignment } from './verify.ts';
import { VerifiedMemo } from '../signing/memo.ts';
import { planSpeaker, type BgpPeerPlan, type EndpointSliceObject, type NodeObject, type ServiceInput, type SpeakerPlan } from './plan.ts';

export interface SpeakerCacheLike {
  synced(): boolean;
  onEvent(listener: (e: SpeakerCacheEvent) => void): () => void;
  nodes(): NodeObject[];
  endpointSlices(): EndpointSliceObject[];
  leases(): LeaseObject[];
  services(): Service[];
  claims(): IPClaim[];
  pools(): IPPool[];
  l2Advertisements(): L2Advertisement[];
  bgpPeers(): BGPPeer[];
  bgpAdvertisements(): BGPAdvertisement[];
}

export interface EventRecorder {
  record(target: ServiceRef, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void>;
}

/**
 * Peer liveness by heartbeats (heartbeat-transport.ts). With it, node Leases carry only the
 * membership and the election's live set is the members this node hears; see the README's
 * "Partitions" for the rules.
 */
export interface HeartbeatSource {
  /** the membership and the members' addresses to send to */
  setPeers(members: Iterable<string>, addresses: Iterable<string>): void;
  /** this node and the members heard within the dead interval */
  heard(): Set<string>;
  /** local monotonic time at which the next heard peer turns dead without news */
  nextDeath(): number | undefined;
}

export interface LeaseHealth {
  /** whether our own Lease was renewed within its duration */
  healthy(): boolean;
  /** when healthy() turns false without another renewal (heartbeat mode leaves the membership then) */
  healthyUntil?(): number;
}

/** Reads a Secret's data (base64-decoded), null when it does not exist. */
export interface SecretReader {
  get(namespace: string, name: string): Promise<Record<string, string> | null>;
}

export { defaultBgpFactory, sessionTtl, type BgpFactory, type BgpSession } from './bgp-factory.ts';

export interface SpeakerMetrics {
  announced: Gauge;
  liveNodes: Gauge;
  elections: Counter;
  gratuitous: Counter;
  announceFailures: Counter;
  bgpSessionUp: Gauge;
  bgpPrefixes: Gauge;
  bfdSessionUp: Gauge;
  bfdSessionState: Gauge;
  reconcileSeconds: Histogram;
  neighborRequests: Counter;
  addressAnnounced: Gauge;
}

export function createSpeakerMetrics(registry: Registry): SpeakerMetrics {
  const registers = [registry];
  const metrics: SpeakerMetrics = {
    announced: new Gauge({ name: 'admitlb_speaker_announced_addresses', help: 'Addresses this node announces, by protocol (l2, bgp, local).', labelNames: ['protocol'], registers }),
    liveNodes: new Gauge({ name: 'admitlb_speaker_live_nodes', help: 'Nodes whose speaker Lease is fresh, as this node sees them.', registers }),
    elections: new Counter({ name: 'admitlb_speaker_elections_total', help: 'L2 owner changes this node computed, by result (won: this node became owner; lost: another node did).', labelNames: ['result'], registers }),
    gratuitous: new Counter({ name: 'admitlb_speaker_gratuitous_messages_total', help: 'Gratuitous ARP / unsolicited NA helper runs, by family.', labelNames: ['family'], registers }),
    announceFailures: new Counter({ name: 'admitlb_speaker_announce_failures_total', help: 'Announcements that failed (no interface, command error, BGP config).', labelNames: ['protocol'], registers }),
    bgpSessionUp: new Gauge({ name: 'admitlb_speaker_bgp_session_up', help: '1 while the BGP session to the peer is Established.', labelNames: ['peer'], registers }),
    bgpPrefixes: new Gauge({ name: 'admitlb_speaker_bgp_prefixes_advertised', help: 'Prefixes in the Adj-RIB-Out of the peer.', labelNames: ['peer'], registers }),
    bfdSessionUp: new Gauge({ name: 'admitlb_speaker_bfd_session_up', help: '1 while the BFD session to the BGP peer is Up (peers with spec.bfd only).', labelNames: ['peer'], registers }),
    bfdSessionState: new Gauge({ name: 'admitlb_speaker_bfd_session_state', help: 'BFD session state of the BGP peer: 1 for the current state (AdminDown, Down, Init, Up), 0 for the others.', labelNames: ['peer', 'state'], registers }),
    neighborRequests: new Counter({ name: 'admitlb_speaker_neighbor_requests_answered_total', help: 'ARP requests / IPv6 neighbour solicitations the kernel answered for an L2 address this node held on the receiving interface, by family (seen by a tcpdump capture; stays 0 without tcpdump).', labelNames: ['family'], registers }),
    addressAnnounced: new Gauge({ name: 'admitlb_speaker_address_announced', help: 'Addresses this node announces: 1 per address held on an L2 interface as its owner (protocol l2), or routed to a BGP peer whose session is Established (protocol bgp).', labelNames: ['address', 'protocol'], registers }),
    reconcileSeconds: new Histogram({ name: 'admitlb_speaker_reconcile_duration_seconds', help: 'Time of one speaker pass, from caches to the last data-plane change.', buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5], registers }),
  };
  // Both series exist from the start (0 when nothing was asked, or tcpdump is missing).
  for (const family of ['ipv4', 'ipv6']) metrics.neighborRequests.inc({ family }, 0);
  return metrics;
}

/** Wraps a runner to count gratuitous ARP / unsolicited NA helper runs. */
export function countingRunner(base: CommandRunner, onSend: (family: 'ipv4' | 'ipv6') => void): CommandRunner {
  return (cmd, args, opts) => {
    const prog = cmd.split('/').pop() ?? cmd;
    if (prog === 'arping') onSend('ipv4');
    else if (prog === 'na6' || prog === 'ndsend') onSend('ipv6');
    return base(cmd, args, opts);
  };
}

export interface SpeakerOptions {
  nodeName: string;
  cache: SpeakerCacheLike;
  keys: Pick<KeySet, 'verifyKey'>;
  announcer: L2Announcer;
  /** runs `ip` for interface discovery (the announcer's runner) */
  runner: CommandRunner;
  lease: LeaseHealth;
  heartbeats?: HeartbeatSource;
  events?: EventRecorder;
  metrics?: SpeakerMetrics;
  logger: Logger;
  bgpFactory?: BgpFactory;
  /** Reads BGPPeer password Secrets (spec.passwordSecretRef); without it such peers are not opened. */
  secrets?: SecretReader;
  /** How long a read password is used before it is read again (rotation), default 30 s. */
  secretTtlMs?: number;
  /** Told which L2 addresses this node holds after every pass (the neighbor request capture). */
  neighborCapture?: { update(held: { address: string; dev: string }[]): void; close(): Promise<void> };
  /** Told what this node announces after every pass and BGP/BFD state change (its NodeAnnouncement, announcements.ts). */
  announcements?: { publish(input: AnnouncementInput): void };
  debounceMs?: number;
  resyncMs?: number;
  /** monotonic clock shared with the LiveSet (default performance.now) */
  now?: () => number;
}

interface PeerRuntime {
  key: string;
  session: BgpSession;
  spec: BGPPeerSpec;
  password: string | undefined;
  /** Cleared when the session is replaced: a closing session's late hooks must not overwrite its successor's metrics. */
  current: { live: boolean };
}

const BFD_STATES = ['AdminDown', 'Down', 'Init', 'Up'] as const;

/** The config's community spellings (no-export, no-peer, ...) as BgpSpeaker accepts them. */
const NAMED_COMMUNITIES: Record<string, string> = { 'no-export': '65535:65281', 'no-advertise': '65535:65282', 'no-export-subconfed': '65535:65283', 'no-peer': '65535:65284' };
export const communityForWire = (c: string) => NAMED_COMMUNITIES[c.toLowerCase()] ?? c;

const svcKey = (s: { metadata?: { namespace?: string | undefined; name?: string | undefined } | undefined }) => `${s.metadata?.namespace ?? ''}/${s.metadata?.name ?? ''}`;

export class Speaker {
  readonly live: LiveSet;
  private readonly verified = new VerifiedMemo<Assignment | undefined>();
  private readonly peers = new Map<string, PeerRuntime>();
  /** Passwords read from Secrets: namespace/name → value (or why there is none) and when it was read. */
  private readonly passwords = new Map<string, { at: number; value: string } | { at: number; error: string }>();
  /** The BGPPeer spec each peer's password was last read for: a changed spec reads its Secret again at once. */
  private readonly passwordSpecs = new Map<string, string>();
  /** (protocol|service|address) for which nodeAssigned was reported */
  private readonly reported = new Set<string>();
  /** (protocol|address|reason) for which announceFailed was reported */
  private readonly failedReported = new Set<string>();
  private readonly lastOwner = new Map<string, string | undefined>();
  private readonly ownerCache = new OwnerCache();
  private lastLive = '';
  /** heartbeat mode: the heard members at the last check */
  private lastHeard = '';
  /** Whether this speaker has seen its own Lease renewed since it started. */
  private inSync = false;
  private frozenLive: Set<string> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private started = false;
  private unsubscribe: (() => void) | undefined;
  private readonly now: () => number;
  private readonly debounceMs: number;
  private readonly bgpFactory: BgpFactory;
  private idleWaiters: (() => void)[] = [];
  lastPlan: SpeakerPlan | undefined;
  passes = 0;

  constructor(private readonly opts: SpeakerOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.live = new LiveSet(this.now);
    this.debounceMs = opts.debounceMs ?? 20;
    this.bgpFactory = opts.bgpFactory ?? defaultBgpFactory;
  }

  /** Removes leftovers of an earlier run, subscribes to the caches and schedules the first pass. */
  async start(): Promise<void> {
    const removed = await this.opts.announcer.cleanupLeftovers();
    if (removed.length > 0) this.opts.logger.info({ removed }, 'removed addresses left by an earlier run');
    for (const l of this.opts.cache.leases()) this.live.observe(l);
    this.unsubscribe = this.opts.cache.onEvent((e) => this.onEvent(e));
    this.resyncTimer = setInterval(() => this.schedule(), this.opts.resyncMs ?? 30_000);
    this.resyncTimer.unref();
    this.started = true;
    this.schedule();
  }

  /** Resolves once a pass has run with nothing left to do. */
  idle(): Promise<void> {
    return new Promise((resolve) => {
      this.idleWaiters.push(resolve);
      this.schedule();
    });
  }

  private onEvent(e: SpeakerCacheEvent): void {
    if (e.kind === 'lease') {
      const lease = e.object as unknown as LeaseObject;
      if (e.type === 'delete') this.live.forget(lease);
      else this.live.observe(lease);
      this.checkLive();
      return;
    }
    if (e.kind === 'service' && e.type === 'delete') this.verified.forget(svcKey(e.object));
    this.schedule();
  }

  /** Heartbeat mode: the members this node hears and whether its own Lease is healthy, comparable. */
  private heardKey(): string {
    const hb = this.opts.heartbeats;
    return hb ? `${this.opts.lease.healthy() ? '+' : '-'}${[...hb.heard()].sort().join(',')}` : '';
  }

  /** Called by the heartbeat transport when a peer joins or leaves the heard set. */
  heartbeatChanged(): void {
    this.checkLive();
  }

  /** Schedules a pass when the live set changed; arms the timer for the next lapse (or heartbeat death). */
  private checkLive(): void {
    const live = [...this.live.live()].sort().join(',');
    if (live !== this.lastLive || this.heardKey() !== this.lastHeard) this.schedule();
    this.armLiveTimer();
  }

  schedule(): void {
    if (this.stopped || !this.started) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.loop().finally(() => (this.running = undefined));
    }, this.debounceMs);
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.pass();
      } catch (err) {
        this.opts.logger.error({ err: (err as Error).message }, 'speaker pass failed');
      }
    } while (this.again && !this.stopped);
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }

  private async verify(service: Service): Promise<Assignment | undefined> {
    const key = svcKey(service);
    const token = service.metadata.annotations?.[ANN_ALLOCATION];
    if (!token) {
      this.verified.forget(key);
      return undefined;
    }
    const cached = this.verified.lookup(key, token);
    if (cached) return cached.value;
    const { assignment, reason } = await checkServiceAssignment(this.opts.keys, service);
    if (reason) this.opts.logger.warn({ service: key, err: reason }, 'assignment does not verify: not announcing');
    this.verified.remember(key, token, assignment, assignment);
    return assignment;
  }

  /**
   * The live set used for elections. While our own Lease cannot be renewed, or our watch no longer
   * shows our own renewals, we cannot tell a dead node from a dead API, so the set is frozen.
   * The second condition matters: cut off the API, this process stops seeing every Lease at once,
   * and another node's Lease (renewed a little earlier than ours) "lapses" here while our own last
   * renewal still counts as healthy; acting on that would make this node take every address the
   * others own (reproduced in test/speaker/speaker-e2e-3nodes.test.ts). Our own Lease is observed
   * at least every renew interval while the watch works, so "not observed for half the lease
   * duration" freezes the set before any other Lease can appear to lapse (renew < duration / 2).
   */
  private liveNodes(): Set<string> {
    const live = this.live.live();
    if (this.opts.lease.healthy() && this.live.observedRecently(this.opts.nodeName)) {
      this.frozenLive = undefined;
      this.inSync = true;
      return live;
    }
    // Freezing protects a view that was once right; a speaker that has not yet seen its own
    // renewal since it started has none, and simply follows what it sees (itself not included).
    if (!this.inSync) return live;
    if (!this.frozenLive) {
      this.frozenLive = new Set(this.lastLive ? this.lastLive.split(',') : []);
      this.opts.logger.warn({ live: [...this.frozenLive] }, 'own node lease is not being renewed or not seen renewed: keeping the last live set');
    }
    return this.frozenLive;
  }

  private async pass(): Promise<void> {
    const cache = this.opts.cache;
    if (!cache.synced()) return;
    const started = this.now();
    this.passes++;
    const services: ServiceInput[] = [];
    const seen = new Set<string>();
    for (const service of cache.services()) {
      seen.add(svcKey(service));
      services.push({ service, assignment: await this.verify(service) });
    }
    this.verified.retain(seen);
    let members = this.liveNodes();
    this.lastLive = [...this.live.live()].sort().join(',');
    let liveNodes = members;
    const hb = this.opts.heartbeats;
    if (hb) {
      // Our own Lease unrenewed for its duration (cut off the API): the others are dropping us from
      // their membership now, and stop sending to us and counting us. We leave first, on our own
      // clock (their lapse is judged from when they saw our last renewal, never earlier), so no
      // two nodes act on different memberships; the transport stops sending while we are no member.
      if (!this.opts.lease.healthy() && members.has(this.opts.nodeName)) members = new Set([...members].filter((n) => n !== this.opts.nodeName));
      // The API says who the members are; the heartbeats say which of them are alive right now.
      hb.setPeers(members, this.memberAddresses(members, cache.nodes()));
      this.lastHeard = this.heardKey();
      const heard = hb.heard();
      liveNodes = new Set([...members].filter((n) => heard.has(n)));
      this.armLiveTimer(); // the peers heard may have changed since the last check
    }
    const plan = planSpeaker({
      nodeName: this.opts.nodeName,
      nodes: cache.nodes(),
      liveNodes,
      ...(hb ? { memberNodes: members } : {}),
      ownerCache: this.ownerCache,
      services,
      claims: cache.claims(),
      endpointSlices: cache.endpointSlices(),
      pools: cache.pools(),
      l2Advertisements: cache.l2Advertisements(),
      bgpAdvertisements: cache.bgpAdvertisements(),
      bgpPeers: cache.bgpPeers(),
    });
    this.lastPlan = plan;
    const serviceRefs = new Map(cache.services().map((s) => [svcKey(s), s]));
    this.countElections(plan);
    await this.applyL2(plan, serviceRefs);
    this.opts.neighborCapture?.update(this.opts.announcer.held().filter((h) => h.kind === 'announce'));
    await this.applyBgp(plan, serviceRefs);
    this.updateMetrics(plan, liveNodes);
    this.publishAnnouncements();
    this.opts.metrics?.reconcileSeconds.observe((this.now() - started) / 1000);
  }

  private armLiveTimer(): void {
    clearTimeout(this.expiryTimer);
    const hb = this.opts.heartbeats;
    const own = hb ? this.opts.lease.healthyUntil?.() : undefined;
    const deaths = [this.live.nextExpiry(), hb?.nextDeath(), own !== undefined && own > this.now() ? own : undefined].filter((x): x is number => x !== undefined);
    if (deaths.length === 0 || this.stopped) return;
    this.expiryTimer = setTimeout(() => this.checkLive(), Math.max(0, Math.min(...deaths) - this.now()) + 1);
    this.expiryTimer.unref();
  }

  /** Where the members' heartbeats go: their Node addresses (InternalIP first), this node excluded. */
  private memberAddresses(members: ReadonlySet<string>, nodes: NodeObject[]): string[] {
    const out: string[] = [];
    for (const n of nodes) {
      const name = n.metadata.name ?? '';
      if (!members.has(name) || name === this.opts.nodeName) continue;
      const addrs = ((n.status as { addresses?: { type: string; address: string }[] } | undefined)?.addresses ?? []).filter((a) => a.type === 'InternalIP' || a.type === 'ExternalIP');
      const v4 = addrs.filter((a) => !a.address.includes(':')).sort((a, b) => (a.type === b.type ? 0 : a.type === 'InternalIP' ? -1 : 1))[0];
      const v6 = addrs.filter((a) => a.address.includes(':') && !/^fe80:/i.test(a.address)).sort((a, b) => (a.type === b.type ? 0 : a.type === 'InternalIP' ? -1 : 1))[0];
      if (v4) out.push(v4.address);
      if (v6) out.push(v6.address);
    }
    return out;
  }

  private countElections(plan: SpeakerPlan): void {
    const self = this.opts.nodeName;
    const current = new Set<string>();
    for (const e of plan.elections) {
      current.add(e.address);
      const before = this.lastOwner.get(e.address);
      if (this.lastOwner.has(e.address) && before === e.owner) continue;
      this.lastOwner.set(e.address, e.owner);
      if (e.owner === undefined) continue;
      this.opts.metrics?.elections.inc({ result: e.owner === self ? 'won' : 'lost' });
      this.opts.logger.info({ address: e.address, owner: e.owner, candidates: e.candidates, services: e.services }, e.owner === self ? 'elected L2 owner' : 'L2 owner is another node');
    }
    for (const a of [...this.lastOwner.keys()]) if (!current.has(a)) this.lastOwner.delete(a);
  }

  private async applyL2(plan: SpeakerPlan, refs: Map<string, Service>): Promise<void> {
    const announcer = this.opts.announcer;
    const self = this.opts.nodeName;
    const desired = new Map(plan.l2.map((a) => [a.address, a]));
    const local = new Map(plan.local.map((b) => [b.address, b]));
    // Withdraw first: what another node now owns must stop answering here.
    for (const h of announcer.held()) {
      const keep = h.kind === 'announce' ? desired.has(h.address) : local.has(h.address);
      if (keep) continue;
      try {
        await announcer.withdraw(h.address);
        this.opts.logger.info({ address: h.address, dev: h.dev, kind: h.kind }, 'withdrawn');
      } catch (err) {
        this.opts.logger.error({ address: h.address, err: (err as Error).message }, 'withdrawing failed');
      }
      for (const k of [...this.reported]) if (k.startsWith(`L2|`) && k.endsWith(`|${h.address}`)) this.reported.delete(k);
    }
    const held = new Map(announcer.held().map((h) => [h.address, h]));
    let links: IpLink[] | undefined;
    let routes: DefaultRoutes | undefined;
    for (const want of plan.l2) {
      const cur = held.get(want.address);
      if (cur && cur.kind === 'announce') {
        this.reportAssigned('L2', want.address, want.services, refs, `announcing ${want.address} from node ${self} (L2, ${cur.dev})`);
        continue;
      }
      try {
        links ??= await listLinks(this.opts.runner);
        routes ??= await defaultRoutes(this.opts.runner);
        const choice = chooseInterface(want.address, links, routes, { interfaces: want.interfaces, exclude: [...DEFAULT_EXCLUDES, ...want.excludeInterfaces], ownerTag: announcer.ownerTag });
        if (!choice.ifname) {
          this.reportFailed('L2', want.address, want.services, refs, `node ${self} cannot announce ${want.address}: ${choice.reason}`);
          continue;
        }
        await announcer.announce(want.address, choice.ifname);
        this.opts.logger.info({ address: want.address, dev: choice.ifname, reason: choice.reason, services: want.services }, 'announcing (L2)');
        this.failedReported.forEach((k) => k.startsWith(`L2|${want.address}|`) && this.failedReported.delete(k));
        this.reportAssigned('L2', want.address, want.services, refs, `announcing ${want.address} from node ${self} (L2, ${choice.ifname})`);
      } catch (err) {
        this.reportFailed('L2', want.address, want.services, refs, `node ${self} failed to announce ${want.address}: ${(err as Error).message}`);
      }
    }
    for (const b of plan.local) {
      const cur = held.get(b.address);
      if (cur && cur.kind === 'local') continue;
      try {
        const dev = await announcer.bindLocal(b.address);
        this.opts.logger.info({ address: b.address, dev, services: b.services }, 'bound locally (externalIP)');
      } catch (err) {
        this.reportFailed('local', b.address, b.services, refs, `node ${self} failed to bind externalIP ${b.address}: ${(err as Error).message}`);
      }
    }
  }

  private routerIdFor(spec: BGPPeerSpec): string | undefined {
    if (spec.routerID) return spec.routerID;
    if (spec.sourceAddress && !spec.sourceAddress.includes(':')) return spec.sourceAddress;
    const node = this.opts.cache.nodes().find((n) => n.metadata.name === this.opts.nodeName);
    const addrs = ((node?.status as { addresses?: { type: string; address: string }[] } | undefined)?.addresses ?? []).filter((a) => !a.address.includes(':'));
    return (addrs.find((a) => a.type === 'InternalIP') ?? addrs[0])?.address;
  }

  /** The node's InternalIP (else first address) of the family the session's transport is not. */
  private crossFamilyNextHop(spec: BGPPeerSpec): string | undefined {
    const wantV6 = !spec.peerAddress.includes(':');
    const node = this.opts.cache.nodes().find((n) => n.metadata.name === this.opts.nodeName);
    const addrs = ((node?.status as { addresses?: { type: string; address: string }[] } | undefined)?.addresses ?? []).filter((a) => a.address.includes(':') === wantV6 && !/^fe80:/i.test(a.address));
    return (addrs.find((a) => a.type === 'InternalIP') ?? addrs[0])?.address;
  }

  /**
   * The TCP MD5 password of a BGPPeer from its Secret (re-read after secretTtlMs, so a rotated
   * Secret reaches the session, or at once when `fresh`); undefined without passwordSecretRef; an error text when the Secret
   * cannot be used (the session is then not opened: never unauthenticated instead).
   */
  private async passwordFor(spec: BGPPeerSpec, fresh: boolean): Promise<{ password: string | undefined } | { error: string }> {
    const ref = spec.passwordSecretRef;
    if (!ref) return { password: undefined };
    const ns = ref.namespace ?? BGP_PASSWORD_NAMESPACE;
    const id = `${ns}/${ref.name}`;
    const cached = this.passwords.get(id);
    if (!cached || fresh || this.now() - cached.at >= (this.opts.secretTtlMs ?? 30_000)) {
      let entry: { at: number; value: string } | { at: number; error: string };
      if (ns !== BGP_PASSWORD_NAMESPACE) entry = { at: this.now(), error: `Secret ${id}: password Secrets must be in ${BGP_PASSWORD_NAMESPACE}` };
      else if (!this.opts.secrets) entry = { at: this.now(), error: `Secret ${id}: this speaker cannot read Secrets` };
      else {
        try {
          const data = await this.opts.secrets.get(ns, ref.name);
          const value = data?.[BGP_PASSWORD_KEY];
          if (!data) entry = { at: this.now(), error: `Secret ${id} not found` };
          else if (!value) entry = { at: this.now(), error: `Secret ${id} has no "${BGP_PASSWORD_KEY}" key` };
          else if (Buffer.byteLength(value) > 80) entry = { at: this.now(), error: `Secret ${id}: the password is ${Buffer.byteLength(value)} bytes, TCP MD5 allows 80` };
          else entry = { at: this.now(), value };
        } catch (err) {
          // Keep using a password read before (an API hiccup is no reason to drop a session).
          if (cached && 'value' in cached) return { password: cached.value };
          entry = { at: this.now(), error: `Secret ${id} cannot be read: ${(err as Error).message}` };
        }
      }
      this.passwords.set(id, entry);
    }
    const e = this.passwords.get(id)!;
    return 'value' in e ? { password: e.value } : { error: e.error };
  }

  private async applyBgp(plan: SpeakerPlan, refs: Map<string, Service>): Promise<void> {
    const wanted = new Map(plan.bgp.map((p) => [p.name, p]));
    const passwords = new Map<string, { password: string | undefined } | { error: string }>();
    // A new or changed BGPPeer reads its Secret now; a running one every secretTtlMs (Secrets are not watched).
    for (const p of plan.bgp) {
      const key = JSON.stringify(p.spec);
      passwords.set(p.name, await this.passwordFor(p.spec, this.passwordSpecs.get(p.name) !== key));
      this.passwordSpecs.set(p.name, key);
    }
    for (const [name, rt] of [...this.peers]) {
      const want = wanted.get(name);
      const pw = passwords.get(name);
      // A changed password reopens the session with the new key at once (see the README: routers
      // such as BIRD and FRR restart their side on a password change anyway, and an in-place key
      // change would leave our old connection to die at the hold time).
      if (want && JSON.stringify(want.spec) === rt.key && pw && 'password' in pw && pw.password === rt.password) continue;
      if (want && rt.password !== undefined && pw && 'password' in pw && pw.password !== rt.password) this.opts.logger.info({ peer: name }, 'BGP password changed: reopening the session with the new key');
      this.peers.delete(name);
      rt.current.live = false;
      await rt.session.close({ gracefulRestart: false }).catch(() => {});
      this.opts.metrics?.bgpSessionUp.remove({ peer: name });
      this.opts.metrics?.bgpPrefixes.remove({ peer: name });
      this.opts.metrics?.bfdSessionUp.remove({ peer: name });
      for (const state of BFD_STATES) this.opts.metrics?.bfdSessionState.remove({ peer: name, state });
      this.opts.logger.info({ peer: name }, 'BGP peer removed');
    }
    for (const p of plan.bgp) {
      let rt = this.peers.get(p.name);
      if (!rt) {
        const pw = passwords.get(p.name)!;
        if ('error' in pw) {
          this.reportFailed('BGP', p.name, p.routes.flatMap((r) => r.services), refs, `BGPPeer ${p.name}: ${pw.error}; the session is not opened`);
          continue;
        }
        const routerId = this.routerIdFor(p.spec);
        if (!routerId) {
          this.reportFailed('BGP', p.name, p.routes.flatMap((r) => r.services), refs, `node ${this.opts.nodeName} has no router ID for BGPPeer ${p.name} (set routerID or sourceAddress)`);
          continue;
        }
        try {
          const crossFamilyNextHop = this.crossFamilyNextHop(p.spec);
          const password = (pw as { password: string | undefined }).password;
          const current = { live: true };
          const session = this.bgpFactory(p.spec, { routerId, hooks: this.hooksFor(p.name, current), ...(crossFamilyNextHop ? { crossFamilyNextHop } : {}), ...(password !== undefined ? { password } : {}) });
          await session.start();
          rt = { key: JSON.stringify(p.spec), session, spec: p.spec, password, current };
          this.peers.set(p.name, rt);
          this.opts.logger.info({ peer: p.name, address: p.spec.peerAddress, asn: p.spec.peerASN }, 'BGP peer configured');
        } catch (err) {
          this.reportFailed('BGP', p.name, p.routes.flatMap((r) => r.services), refs, `BGPPeer ${p.name}: ${(err as Error).message}`);
          continue;
        }
      }
      this.syncRoutes(rt, p, refs);
      this.reportSessionProblem(p, rt, refs);
    }
    const routed = new Set(plan.bgp.flatMap((p) => p.routes.flatMap((r) => r.addresses)));
    for (const k of [...this.reported]) if (k.startsWith('BGP|') && !routed.has(k.slice(k.lastIndexOf('|') + 1))) this.reported.delete(k);
  }

  /** A session that cannot come up for a reason the operator must fix (TCP MD5, GTSM) becomes a Warning on its Services. */
  private reportSessionProblem(p: BgpPeerPlan, rt: PeerRuntime, refs: Map<string, Service>): void {
    const st = rt.session.status()[0];
    if (!st || st.state === 'Established' || !st.lastError || !/TCP MD5|GTSM/.test(st.lastError.message)) return;
    this.reportFailed('BGP', p.name, p.routes.flatMap((r) => r.services), refs, `BGP session to ${p.spec.peerAddress} (BGPPeer ${p.name}) not established: ${st.lastError.message}`);
  }

  private syncRoutes(rt: PeerRuntime, p: BgpPeerPlan, refs: Map<string, Service>): void {
    const want = new Map(p.routes.map((r) => [r.prefix, r]));
    for (const r of rt.session.routes()) if (!want.has(r.prefix)) rt.session.withdraw(r.prefix);
    for (const r of p.routes) {
      const attributes: RouteAttributes = {
        ...(r.communities.length ? { communities: r.communities.map(communityForWire) } : {}),
        ...(r.largeCommunities.length ? { largeCommunities: r.largeCommunities } : {}),
        ...(r.localPref !== undefined ? { localPref: r.localPref } : {}),
      };
      try {
        rt.session.announce(r.prefix, attributes);
        for (const a of r.addresses) this.reportAssigned('BGP', a, r.services, refs, `announcing ${a} from node ${this.opts.nodeName} (BGP, ${r.prefix} to ${p.name})`);
      } catch (err) {
        this.reportFailed('BGP', r.prefix, r.services, refs, `node ${this.opts.nodeName} cannot announce ${r.prefix} to ${p.name}: ${(err as Error).message}`);
      }
    }
  }

  private hooksFor(peer: string, current: { live: boolean }) {
    const m = this.opts.metrics;
    return {
      stateChange: (_addr: string, _from: string, to: string) => {
        if (!current.live) return;
        m?.bgpSessionUp.set({ peer }, to === 'Established' ? 1 : 0);
        this.updateAnnouncedAddresses();
        setImmediate(() => this.publishAnnouncements());
        // A failed connect (Active/Idle) may carry a reason to report (reportSessionProblem).
        if (to === 'Active' || to === 'Idle') this.schedule();
      },
      bfdStateChange: (_addr: string, _from: string, to: string) => {
        if (!current.live) return;
        this.setBfdMetrics(peer, to);
        setImmediate(() => this.publishAnnouncements());
      },
      prefixesAdvertised: () => {
        if (!current.live) return;
        const rt = this.peers.get(peer);
        const s = rt?.session.status()[0];
        if (s) m?.bgpPrefixes.set({ peer }, s.prefixesSent.ipv4 + s.prefixesSent.ipv6);
      },
    };
  }

  private setBfdMetrics(peer: string, state: string | undefined): void {
    const m = this.opts.metrics;
    if (!m || state === undefined) return;
    m.bfdSessionUp.set({ peer }, state === 'Up' ? 1 : 0);
    for (const s of BFD_STATES) m.bfdSessionState.set({ peer, state: s }, s === state ? 1 : 0);
  }

  private reportAssigned(protocol: string, address: string, services: string[], refs: Map<string, Service>, message: string): void {
    for (const key of services) {
      const id = `${protocol}|${key}|${address}`;
      if (this.reported.has(id)) continue;
      this.reported.add(id);
      this.event(refs.get(key), 'Normal', 'nodeAssigned', message);
    }
  }

  private reportFailed(protocol: string, address: string, services: string[], refs: Map<string, Service>, message: string): void {
    this.opts.metrics?.announceFailures.inc({ protocol });
    this.opts.logger.warn({ address, services, protocol }, message);
    for (const key of services) {
      const id = `${protocol}|${address}|${key}|${message}`;
      if (this.failedReported.has(id)) continue;
      this.failedReported.add(id);
      this.event(refs.get(key), 'Warning', 'announceFailed', message);
    }
  }

  private event(svc: Service | undefined, type: 'Normal' | 'Warning', reason: string, message: string): void {
    if (!svc || !this.opts.events) return;
    const ref: ServiceRef = { namespace: svc.metadata.namespace ?? '', name: svc.metadata.name ?? '', uid: svc.metadata.uid, resourceVersion: svc.metadata.resourceVersion };
    this.opts.events.record(ref, type, reason, message).catch((err: Error) => this.opts.logger.warn({ service: `${ref.namespace}/${ref.name}`, reason, err: err.message }, 'recording an Event failed'));
  }

  private updateMetrics(plan: SpeakerPlan, live: Set<string>): void {
    const m = this.opts.metrics;
    if (!m) return;
    m.liveNodes.set(live.size);
    m.announced.set({ protocol: 'l2' }, this.opts.announcer.held().filter((h) => h.kind === 'announce').length);
    m.announced.set({ protocol: 'local' }, this.opts.announcer.held().filter((h) => h.kind === 'local').length);
    m.announced.set({ protocol: 'bgp' }, new Set(plan.bgp.flatMap((p) => p.routes.flatMap((r) => r.addresses))).size);
    for (const [name, rt] of this.peers) {
      const s = rt.session.status()[0];
      m.bgpSessionUp.set({ peer: name }, s?.state === 'Established' ? 1 : 0);
      m.bgpPrefixes.set({ peer: name }, s ? s.prefixesSent.ipv4 + s.prefixesSent.ipv6 : 0);
      if (s?.bfd) this.setBfdMetrics(name, s.bfd.state);
    }
    this.updateAnnouncedAddresses();
  }

  /** Per address: held here as L2 owner, or routed to a peer whose session is up right now. */
  private updateAnnouncedAddresses(): void {
    const m = this.opts.metrics;
    if (!m) return;
    m.addressAnnounced.reset();
    for (const h of this.opts.announcer.held()) if (h.kind === 'announce') m.addressAnnounced.set({ address: h.address, protocol: 'l2' }, 1);
    for (const p of this.lastPlan?.bgp ?? []) {
      if (this.peers.get(p.name)?.session.status()[0]?.state !== 'Established') continue;
      for (const r of p.routes) for (const a of r.addresses) m.addressAnnounced.set({ address: a, protocol: 'bgp' }, 1);
    }
  }

  private publishAnnouncements(): void {
    if (this.opts.announcements && !this.stopped) this.opts.announcements.publish(collectAnnouncements(this.lastPlan, this.opts.announcer.held(), this.bgpStatus()));
  }

  /** BGP status per configured peer (for /readyz details and tests). */
  bgpStatus(): { name: string; status: PeerStatus | undefined }[] {
    return [...this.peers].map(([name, rt]) => ({ name, status: rt.session.status()[0] }));
  }

  /**
   * Stops the loop, then (by default) withdraws everything: L2 addresses and local bindings are
   * removed, BGP sessions closed with Cease, or silently when the peer has graceful restart
   * enabled (the router keeps the routes for the restart time).
   */
  async stop(opts: { withdraw?: boolean } = {}): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    clearTimeout(this.timer);
    clearTimeout(this.expiryTimer);
    clearInterval(this.resyncTimer);
    await this.running;
    const withdraw = opts.withdraw !== false;
    for (const [name, rt] of this.peers) {
      await rt.session.close({ gracefulRestart: !withdraw || !!rt.spec.gracefulRestart?.enabled }).catch((err: Error) => this.opts.logger.warn({ peer: name, err: err.message }, 'closing BGP session failed'));
    }
    this.peers.clear();
    await this.opts.neighborCapture?.close().catch(() => {});
    await this.opts.announcer.close({ withdraw }).catch((err: Error) => this.opts.logger.error({ err: err.message }, 'withdrawing addresses on shutdown failed'));
  }
}
