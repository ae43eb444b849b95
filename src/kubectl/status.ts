// `kubectl admitlb status`: pools (capacity, use per family, conditions), claims (address, pool,
// holders), LoadBalancer Services still without an address, who announces what and the BGP
// sessions per node. The report is a pure function of what the API holds (buildStatus);
// runStatusCommand reads it and prints tables or -o yaml|json.
//
// Announcements come from the speakers' NodeAnnouncements (one per node, written by its speaker on
// change: src/speaker/announcements.ts). A dead node cannot update its own, so an object counts
// only while its node's speaker Lease (admitlb-speaker-<node>) is held and fresh; and since a
// killed node's Lease stays fresh for its duration, an L2 address that several objects list is
// shown on the node that announced it last (the newest `since`: the one that took it over).
import type { IPClaim, IPPool } from '../config/schemas.ts';
import type { Family } from '../net/address.ts';
import { ClaimIndex } from '../allocation/claim-index.ts';
import { compilePool, poolCapacity, type PoolModel } from '../allocation/pools.ts';
import { CommandError, type PluginIO } from './io.ts';
import { KUBE_FLAGS_USAGE, parseCommandArgs, renderTable, structured } from './common.ts';
import { kubeApi, loadKubeConfig, type ApiJson } from './kube.ts';
import { API_GROUP_VERSION } from '../config/schemas.ts';
import { ANN_ASSIGNED_IPS } from '../config/annotations.ts';
import { admissionConfigSchema, type AdmissionConfig } from '../config/webhook-config.ts';
import { isOurLoadBalancer } from '../controller/plan.ts';
import type { Service } from '../kube/types.ts';
import { readWorld } from './world.ts';
import { LEASE_DURATION_MS_ANNOTATION, leaseNameFor, type LeaseObject } from '../kube/speaker-cache.ts';
import type { NodeAnnouncement } from '../config/schemas.ts';

/** Where the speakers keep their node Leases (the speaker's --namespace default). */
export const SPEAKER_NAMESPACE = 'admitlb-system';

export const STATUS_USAGE = `usage: kubectl admitlb status [-o yaml|json] [--kubeconfig FILE] [--context NAME]

Shows admitlb's pools (capacity, addresses in use per family, conditions), its claims (address,
pool, holders), its LoadBalancer Services that have no address (with the controller's last
AllocationFailed Event), which node announces which address and the BGP sessions of each node (from
the speakers' NodeAnnouncements, nodes whose speaker Lease is fresh), and the BGP peers. Reads only.

  -o, --output FORMAT    yaml or json (default: tables)
${KUBE_FLAGS_USAGE}`;

export const ANNOUNCEMENT_SOURCE = "the speakers' NodeAnnouncements, nodes whose speaker Lease is fresh";

export interface KubeEvent {
  metadata?: { name?: string; namespace?: string; creationTimestamp?: string };
  involvedObject?: { kind?: string; namespace?: string; name?: string };
  reason?: string;
  message?: string;
  type?: string;
  lastTimestamp?: string | null;
  eventTime?: string | null;
  firstTimestamp?: string | null;
}

export interface PoolRow {
  name: string;
  addresses: string[];
  autoAssign: boolean;
  priority: number | undefined;
  capacity: { ipv4?: string | undefined; ipv6?: string | undefined };
  inUse: { ipv4?: string | undefined; ipv6?: string | undefined };
  conditions: { type: string; status: string; reason?: string | undefined; message?: string | undefined }[];
  /** Why the pool is unusable (it did not compile), if it is. */
  invalid?: string | undefined;
}

export interface ClaimRow {
  address: string;
  pool: string;
  sharingKey?: string;
  holders: { service: string; use: string; ports: string }[];
}

export interface AnnouncementRow {
  address: string;
  services: string[];
  node: string;
  protocol: 'L2' | 'BGP';
  /** L2: the interface; BGP: "PREFIX to PEER,PEER" */
  via: string;
  interface?: string;
  prefix?: string;
  peers?: string[];
  /** L2: when the node started announcing it */
  since?: string;
}

export interface SessionRow {
  node: string;
  peer: string;
  peerAddress: string;
  state: string;
  since?: string | undefined;
  bfd?: string | undefined;
  lastError?: string | undefined;
}

export interface PeerRow {
  name: string;
  peerAddress: string;
  peerASN: number | undefined;
  myASN: number | undefined;
}

export interface PendingRow {
  service: string;
  /** The newest AllocationFailed Event's message, if one is left. */
  reason: string;
}

export interface StatusReport {
  pools: PoolRow[];
  claims: ClaimRow[];
  /** admitlb's LoadBalancer Services without an address. */
  pending: PendingRow[];
  /** notLive: nodes with a NodeAnnouncement but no fresh speaker Lease (ignored) */
  announcements: { source: string; items: AnnouncementRow[]; notLive: string[] };
  bgp: { peers: PeerRow[]; sessions: SessionRow[]; problems: { service: string; message: string; reportedAt: string }[] };
}

const familyKey = (f: Family) => (f === 4 ? 'ipv4' : 'ipv6');
const eventTime = (e: KubeEvent) => e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp ?? '';

/** Whether the node's speaker Lease is held and was renewed within its duration (as of `now`). */
export function speakerLive(node: string, leases: LeaseObject[], now: Date): boolean {
  const lease = leases.find((l) => l.metadata.name === leaseNameFor(node));
  if (!lease?.spec?.holderIdentity || !lease.spec.renewTime) return false;
  const ms = Number(lease.metadata.annotations && (lease.metadata.annotations as Record<string, string>)[LEASE_DURATION_MS_ANNOTATION]) || (lease.spec.leaseDurationSeconds ?? 0) * 1000;
  return new Date(lease.spec.renewTime).getTime() + ms > now.getTime();
}

/** Who announces what and the BGP sessions, from the NodeAnnouncements of nodes whose speaker is live. */
export function announcementsOf(objects: NodeAnnouncement[], leases: LeaseObject[], now: Date): { items: AnnouncementRow[]; sessions: SessionRow[]; notLive: string[] } {
  const live = objects.filter((o) => speakerLive(o.metadata.name ?? '', leases, now));
  const notLive = objects.filter((o) => !live.includes(o)).map((o) => o.metadata.name ?? '').sort();
  const l2 = new Map<string, AnnouncementRow>();
  const rows: AnnouncementRow[] = [];
  const sessions: SessionRow[] = [];
  for (const o of live) {
    const node = o.metadata.name ?? '';
    for (const a of o.status?.l2 ?? []) {
      // One node answers ARP/NDP for an address; a killed node's report lingers until its Lease lapses.
      const cur = l2.get(a.address);
      if (cur && (cur.since ?? '') >= a.since) continue;
      l2.set(a.address, { address: a.address, services: a.services, node, protocol: 'L2', via: a.interface, interface: a.interface, since: a.since });
    }
    for (const r of o.status?.bgp ?? []) rows.push({ address: r.address, services: r.services, node, protocol: 'BGP', via: `${r.prefix} to ${r.peers.join(',')}`, prefix: r.prefix, peers: r.peers });
    for (const s of o.status?.bgpSessions ?? []) sessions.push({ node, ...s });
  }
  const items = [...l2.values(), ...rows].sort((a, b) => (a.address === b.address ? (a.node < b.node ? -1 : a.node > b.node ? 1 : 0) : a.address < b.address ? -1 : 1));
  sessions.sort((a, b) => (a.node === b.node ? (a.peer < b.peer ? -1 : 1) : a.node < b.node ? -1 : 1));
  return { items, sessions, notLive };
}

export function buildStatus(input: {
  pools: IPPool[];
  claims: IPClaim[];
  events: KubeEvent[];
  peers: ApiJson[];
  services?: Service[];
  config?: AdmissionConfig;
  nodeAnnouncements?: NodeAnnouncement[];
  leases?: LeaseObject[];
  now?: Date;
}): StatusReport {
  const index = new ClaimIndex();
  for (const c of input.claims) index.upsert(c);

  const pools: PoolRow[] = [...input.pools]
    .sort((a, b) => ((a.metadata.name ?? '') < (b.metadata.name ?? '') ? -1 : 1))
    .map((p) => {
      let model: PoolModel | undefined;
      let invalid: string | undefined;
      try {
        model = compilePool(p);
      } catch (err) {
        invalid = (err as Error).message;
      }
      const capacity: PoolRow['capacity'] = {};
      const inUse: PoolRow['inUse'] = {};
      for (const f of [4, 6] as Family[]) {
        if (!model?.families.has(f)) continue;
        capacity[familyKey(f)] = String(poolCapacity(model, f));
        inUse[familyKey(f)] = String(index.inUse(model.name, f));
      }
      return {
        name: p.metadata.name ?? '',
        addresses: p.spec?.addresses ?? [],
        autoAssign: p.spec?.autoAssign ?? true,
        priority: (p.spec as { allocateTo?: { priority?: number } } | undefined)?.allocateTo?.priority,
        capacity,
        inUse,
        conditions: (p.status?.conditions ?? []).map((c) => ({ type: c.type, status: c.status, reason: c.reason, message: c.message })),
        ...(invalid ? { invalid } : {}),
      };
    });

  const claims: ClaimRow[] = [...index.all()]
    .sort((a, b) => (a.pool === b.pool ? (a.ip.family - b.ip.family || (a.ip.value < b.ip.value ? -1 : 1)) : a.pool < b.pool ? -1 : 1))
    .map((r) => ({
      address: r.address,
      pool: r.pool,
      ...(r.sharingKey ? { sharingKey: r.sharingKey } : {}),
      holders: r.holders.map((h) => ({ service: `${h.namespace}/${h.name}`, use: h.use, ports: h.ports.map((p) => `${p.port}/${p.protocol}`).join(',') })),
    }));

  const announced = announcementsOf(input.nodeAnnouncements ?? [], input.leases ?? [], input.now ?? new Date());

  const peers: PeerRow[] = input.peers
    .map((p) => ({ name: p.metadata?.name ?? '', peerAddress: p.spec?.peerAddress ?? '', peerASN: p.spec?.peerASN, myASN: p.spec?.myASN }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  const problems = input.events
    .filter((e) => e.reason === 'announceFailed' && /^BGP session to /.test(e.message ?? ''))
    .sort((a, b) => (eventTime(a) < eventTime(b) ? 1 : -1))
    .map((e) => ({ service: `${e.involvedObject?.namespace}/${e.involvedObject?.name}`, message: e.message ?? '', reportedAt: eventTime(e) }));

  const config = input.config ?? admissionConfigSchema.parse({});
  const pending: PendingRow[] = (input.services ?? [])
    .filter((svc) => isOurLoadBalancer(svc, config) && !svc.metadata.deletionTimestamp && !svc.metadata.annotations?.[ANN_ASSIGNED_IPS])
    .map((svc) => {
      const ns = svc.metadata.namespace ?? 'default';
      const failed = input.events
        .filter((e) => e.reason === 'AllocationFailed' && e.involvedObject?.namespace === ns && e.involvedObject?.name === svc.metadata.name)
        .sort((a, b) => (eventTime(a) < eventTime(b) ? 1 : -1))[0];
      return { service: `${ns}/${svc.metadata.name}`, reason: failed?.message ?? 'no AllocationFailed Event (the controller has not looked yet, or its Event expired)' };
    })
    .sort((a, b) => (a.service < b.service ? -1 : 1));

  return {
    pools,
    claims,
    pending,
    announcements: { source: ANNOUNCEMENT_SOURCE, items: announced.items, notLive: announced.notLive },
    bgp: { peers, sessions: announced.sessions, problems },
  };
}

const perFamily = (v: { ipv4?: string | undefined; ipv6?: string | undefined }) => [v.ipv4 ?? '-', v.ipv6 ?? '-'];

export function renderStatus(r: StatusReport): string {
  const out: string[] = [];
  out.push('POOLS');
  out.push(
    r.pools.length === 0
      ? '  no IPPools: Services of type LoadBalancer are denied until one exists\n'
      : renderTable(
          ['NAME', 'ADDRESSES', 'AUTO', 'IPV4 USED/CAP', 'IPV6 USED/CAP', 'CONDITIONS'],
          r.pools.map((p) => {
            const [u4, u6] = perFamily(p.inUse);
            const [c4, c6] = perFamily(p.capacity);
            const conditions = p.invalid ? `Invalid: ${p.invalid}` : p.conditions.map((c) => `${c.type}=${c.status}`).join(',') || '(none yet)';
            return [p.name, p.addresses.join(','), p.autoAssign ? 'yes' : 'no', c4 === '-' ? '-' : `${u4}/${c4}`, c6 === '-' ? '-' : `${u6}/${c6}`, conditions];
          }),
        ),
  );
  out.push('CLAIMS');
  out.push(
    r.claims.length === 0
      ? '  no IPClaims: no address is held\n'
      : renderTable(
          ['ADDRESS', 'POOL', 'HOLDERS'],
          r.claims.map((c) => [c.address, c.pool, c.holders.map((h) => `${h.service} (${h.use}${h.ports ? ` ${h.ports}` : ''})`).join(', ') + (c.sharingKey ? ` [sharing key ${c.sharingKey}]` : '')]),
        ),
  );
  if (r.pending.length) {
    out.push('PENDING (LoadBalancer Services without an address; kubectl admitlb explain svc/NAME -n NS says why)');
    out.push(renderTable(['SERVICE', 'LAST ALLOCATIONFAILED EVENT'], r.pending.map((p) => [p.service, p.reason])));
  }
  out.push(`ANNOUNCEMENTS (from ${r.announcements.source})`);
  out.push(
    r.announcements.items.length === 0
      ? '  none: no live speaker announces an address\n'
      : renderTable(
          ['ADDRESS', 'NODE', 'PROTOCOL', 'VIA', 'SERVICES', 'SINCE'],
          r.announcements.items.map((a) => [a.address, a.node, a.protocol, a.via, a.services.join(','), a.since ?? '']),
        ),
  );
  if (r.announcements.notLive.length) out.push(`  ignored (no fresh speaker Lease): ${r.announcements.notLive.join(', ')}\n`);
  out.push('BGP PEERS');
  if (r.bgp.peers.length === 0) out.push('  no BGPPeers configured\n');
  else out.push(renderTable(['NAME', 'PEER ADDRESS', 'PEER ASN', 'MY ASN'], r.bgp.peers.map((p) => [p.name, p.peerAddress, String(p.peerASN ?? ''), String(p.myASN ?? '')])));
  if (r.bgp.sessions.length) {
    out.push('BGP SESSIONS (per node)');
    out.push(renderTable(['NODE', 'PEER', 'PEER ADDRESS', 'STATE', 'SINCE', 'BFD', 'LAST ERROR'], r.bgp.sessions.map((x) => [x.node, x.peer, x.peerAddress, x.state, x.since ?? '', x.bfd ?? '', x.lastError ?? ''])));
  }
  for (const p of r.bgp.problems) out.push(`  ${p.reportedAt} ${p.service}: ${p.message}\n`);
  return out.join('\n').replace(/\n{3,}/g, '\n\n');
}

export async function runStatusCommand(args: string[], io: PluginIO): Promise<number> {
  const { common } = parseCommandArgs(args, STATUS_USAGE);
  if (common.help) {
    io.stdout(`${STATUS_USAGE}\n`);
    return 0;
  }
  const api = kubeApi(loadKubeConfig(common));
  const [world, events, peers, nodeAnnouncements, leases] = await Promise.all([
    readWorld(api),
    api.list('/api/v1/events'),
    api.list(`/apis/${API_GROUP_VERSION}/bgppeers`),
    // Absent before the NodeAnnouncement CRD is installed: no announcements then.
    api.list(`/apis/${API_GROUP_VERSION}/nodeannouncements`).catch(() => []),
    api.list(`/apis/coordination.k8s.io/v1/namespaces/${SPEAKER_NAMESPACE}/leases`).catch(() => []),
  ]);
  const { pools, claims } = world;
  if (pools.length === 0 && claims.length === 0) {
    // Either nothing is configured yet or the CRDs are missing: tell which.
    const crd = await api.get(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/ippools.admitlb.io`).catch(() => 'unknown');
    if (crd === undefined) throw new CommandError(`admitlb is not installed on ${api.server}: the IPPool CRD (ippools.admitlb.io) does not exist`);
  }
  const report = buildStatus({ pools, claims, events, peers, services: world.services, config: world.config, nodeAnnouncements, leases, now: new Date() });
  io.stdout(common.output === 'table' ? renderStatus(report) : structured(report, common.output));
  return 0;
}
