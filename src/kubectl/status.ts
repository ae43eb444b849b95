// `kubectl admitlb status`: pools (capacity, use per family, conditions), claims (address, pool,
// holders), LoadBalancer Services still without an address, who announces what and the BGP peers. The report is a pure function of what the API
// holds (buildStatus); runStatusCommand reads it and prints tables or -o yaml|json.
//
// Announcements: the speakers publish them only as Events on the Service today (reason
// nodeAssigned, "announcing ADDR from node N (L2, dev)" / "(BGP, prefix to peer)"), so the report
// reads those Events: the newest L2 Event of an address names its announcing node; BGP lists every
// node that reported the address. Events expire (kube-apiserver keeps them 1 h by default), and a
// withdrawal writes none, so this is "last reported", not a live view; the report says so.
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

export const STATUS_USAGE = `usage: kubectl admitlb status [-o yaml|json] [--kubeconfig FILE] [--context NAME]

Shows admitlb's pools (capacity, addresses in use per family, conditions), its claims (address,
pool, holders), its LoadBalancer Services that have no address (with the controller's last
AllocationFailed Event), which node announces which address (from the speakers' nodeAssigned Events), and
the BGP peers. Reads only.

  -o, --output FORMAT    yaml or json (default: tables)
${KUBE_FLAGS_USAGE}`;

export const ANNOUNCEMENT_SOURCE =
  "the speakers' nodeAssigned Events: last reported; Events expire and a withdrawal writes none";
export const BGP_SESSION_SOURCE =
  'BGP session state is not in the API yet: each speaker exports it as the metric admitlb_speaker_bgp_session_up; failures to establish appear below as announceFailed Events';

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
  via: string;
  reportedAt: string;
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
  announcements: { source: string; items: AnnouncementRow[] };
  bgp: { source: string; peers: PeerRow[]; problems: { service: string; message: string; reportedAt: string }[] };
}

const familyKey = (f: Family) => (f === 4 ? 'ipv4' : 'ipv6');
const eventTime = (e: KubeEvent) => e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? e.metadata?.creationTimestamp ?? '';
const ANNOUNCING = /^announcing (\S+) from node (\S+) \((L2|BGP), (.*)\)$/;

export function buildStatus(input: { pools: IPPool[]; claims: IPClaim[]; events: KubeEvent[]; peers: ApiJson[]; services?: Service[]; config?: AdmissionConfig }): StatusReport {
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

  // Newest report first; an address no claim holds any more is no longer announced by a healthy speaker.
  const claimed = new Set(claims.map((c) => c.address));
  const reports = input.events
    .filter((e) => e.reason === 'nodeAssigned' && e.involvedObject?.kind === 'Service')
    .map((e) => ({ e, m: ANNOUNCING.exec(e.message ?? '') }))
    .filter((x): x is { e: KubeEvent; m: RegExpExecArray } => !!x.m && claimed.has(x.m[1]!))
    .sort((a, b) => (eventTime(a.e) < eventTime(b.e) ? 1 : eventTime(a.e) > eventTime(b.e) ? -1 : 0));
  const items = new Map<string, AnnouncementRow>();
  for (const { e, m } of reports) {
    const [, address, node, protocol, via] = m as unknown as [string, string, string, 'L2' | 'BGP', string];
    // L2: one node answers for an address, the newest report wins. BGP: every node that reported it.
    const key = protocol === 'L2' ? `L2|${address}` : `BGP|${address}|${node}`;
    const service = `${e.involvedObject?.namespace}/${e.involvedObject?.name}`;
    const row = items.get(key);
    if (row) {
      if (row.node === node && !row.services.includes(service)) row.services.push(service);
      continue;
    }
    items.set(key, { address, services: [service], node, protocol, via, reportedAt: eventTime(e) });
  }
  const announcements = [...items.values()].sort((a, b) => (a.address === b.address ? (a.node < b.node ? -1 : 1) : a.address < b.address ? -1 : 1));
  for (const a of announcements) a.services.sort();

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

  return { pools, claims, pending, announcements: { source: ANNOUNCEMENT_SOURCE, items: announcements }, bgp: { source: BGP_SESSION_SOURCE, peers, problems } };
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
      ? '  none reported: no speaker has announced a claimed address (or its Events expired)\n'
      : renderTable(
          ['ADDRESS', 'NODE', 'PROTOCOL', 'VIA', 'SERVICES', 'REPORTED'],
          r.announcements.items.map((a) => [a.address, a.node, a.protocol, a.via, a.services.join(','), a.reportedAt]),
        ),
  );
  out.push('BGP PEERS');
  out.push(`  ${r.bgp.source}\n`);
  if (r.bgp.peers.length === 0) out.push('  no BGPPeers configured\n');
  else out.push(renderTable(['NAME', 'PEER ADDRESS', 'PEER ASN', 'MY ASN'], r.bgp.peers.map((p) => [p.name, p.peerAddress, String(p.peerASN ?? ''), String(p.myASN ?? '')])));
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
  const [world, events, peers] = await Promise.all([readWorld(api), api.list('/api/v1/events'), api.list(`/apis/${API_GROUP_VERSION}/bgppeers`)]);
  const { pools, claims } = world;
  if (pools.length === 0 && claims.length === 0) {
    // Either nothing is configured yet or the CRDs are missing: tell which.
    const crd = await api.get(`/apis/apiextensions.k8s.io/v1/customresourcedefinitions/ippools.admitlb.io`).catch(() => 'unknown');
    if (crd === undefined) throw new CommandError(`admitlb is not installed on ${api.server}: the IPPool CRD (ippools.admitlb.io) does not exist`);
  }
  const report = buildStatus({ pools, claims, events, peers, services: world.services, config: world.config });
  io.stdout(common.output === 'table' ? renderStatus(report) : structured(report, common.output));
  return 0;
}
