// What this node's speaker should announce, as a pure function of the caches: (node name, Nodes, the
// live set from node Leases, Services with their verified assignments, IPClaims, EndpointSlices,
// IPPools, L2Advertisements, BGPAdvertisements, BGPPeers) → L2 announcements of this node with their
// interface selection, local bindings, and BGP routes per peer with attributes. No I/O and no clock:
// the runtime (speaker.ts) verifies signatures, judges lease freshness and applies the difference.
//
// Rules (the "Trust" and "Who announces"):
//  - Trust: an address is announced only when the Service's signed assignment verified (the runtime
//    passes `assignment` only then) AND names the address AND the IPClaim for the address lists the
//    Service as a holder for that use (uid, once recorded, must match). LoadBalancer addresses need
//    a Service of type LoadBalancer; externalIPs must still be in spec.externalIPs. Service status
//    and the written annotations are never read: a forged status.loadBalancer.ingress is inert.
//  - Eligibility of a node: Ready=True, NetworkUnavailable not True, no
//    node.kubernetes.io/exclude-from-external-load-balancers label, selected by an advertisement
//    (its nodeSelectors) that selects the address's pool (the claim's pool; ipPools OR
//    ipPoolSelectors, neither = every pool). A Service with no ready endpoint anywhere is not
//    announced; with externalTrafficPolicy Local only nodes hosting a ready endpoint announce it.
//  - L2: the owner of an address is ownerOf(groupKey, candidates) over the nodes that are live
//    (heard by heartbeats, or a fresh Lease without them) and eligible for that address; with
//    heartbeats, only when this node hears a quorum of the address's known candidates
//    (election.ts hasQuorum: a node cut off from its segment announces nothing); the group key is the claim's sharing key for
//    shared addresses, else groupKeyFor(all trusted addresses of the Service), so both families of a
//    dual-stack Service and all Services of a sharing key land on one node whenever their candidate
//    sets agree. Only the owner announces.
//  - BGP: every eligible node announces, to every BGPPeer selected for it (peer nodeSelectors) and
//    named by the advertisement (peers unset = all), the address aggregated to aggregationLength
//    (IPv4, default 32) / aggregationLengthV6 (default 128), with the advertisement's communities,
//    large communities and LOCAL_PREF (iBGP sessions only: myASN = peerASN).
//  - Node preference (nodePreference of the advertisements): a node's weight is the highest weight
//    of the entries that select it (0 for none). L2: the owner is elected by the hash among the live
//    candidates of the highest weight present, so the others are backups in hash order. BGP: a node
//    announces only when no live eligible node of that advertisement has a higher weight.
//  - BGPPeer nodeOverrides: the first entry that names or selects this node replaces sourceAddress
//    and routerID in the spec the runtime opens the session with.
//  - externalIPs: where this node announces one by BGP without holding it on an L2 interface, it is
//    bound locally (kube-proxy needs the address to be local); an L2-announced address is local already.
import { formatIP, tryParseIP, type IP } from '../net/address.ts';
import { matchesSelector } from '../allocation/pools.ts';
import type { IPClaim, IPPool, PoolUsage } from '../config/schemas.ts';
import type { EndpointSliceObject, NodeObject, ObjectMeta, Service } from '../kube/types.ts';
import type { Assignment as SignedAssignmentFields } from '../signing/assignment.ts';
import type { BGPAdvertisement, BGPPeer, BGPPeerSpec, L2Advertisement, LabelSelector } from '../kube/speaker-config.ts';
import { type OwnerCache, groupKeyFor, hasQuorum, ownerOf } from './election.ts';

export const EXCLUDE_LB_LABEL = 'node.kubernetes.io/exclude-from-external-load-balancers';
export const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

export type { EndpointSliceObject, NodeObject };

export interface ServiceInput {
  service: Service;
  /** The Service's signed assignment, present only when its signature verified for this Service. */
  assignment?: SignedAssignmentFields | undefined;
}

export interface PlanInput {
  nodeName: string;
  nodes: NodeObject[];
  /**
   * Nodes whose speaker is alive as this node sees it: with heartbeats, the members this node hears
   * (itself included); without, nodes whose speaker Lease is fresh (judged on the runtime's clock).
   */
  liveNodes: ReadonlySet<string>;
  /**
   * Heartbeat mode: the membership (nodes with a speaker Lease, from the API). An L2 election is
   * then decided only when this node hears a quorum of the election's known candidates
   * (election.ts hasQuorum); otherwise this node computes no owner and announces nothing for it.
   * Unset: the live set is trusted as it is (Lease mode).
   */
  memberNodes?: ReadonlySet<string>;
  /** A memo of the election over passes (same answers as ownerOf, far fewer hashes); optional. */
  ownerCache?: OwnerCache;
  services: ServiceInput[];
  claims: IPClaim[];
  endpointSlices: EndpointSliceObject[];
  pools: IPPool[];
  l2Advertisements: L2Advertisement[];
  bgpAdvertisements: BGPAdvertisement[];
  bgpPeers: BGPPeer[];
}

export interface L2Announcement {
  address: string;
  /** namespace/name of every Service this address is announced for */
  services: string[];
  /** interfaces allowed (names/globs, in preference order); undefined = any */
  interfaces?: string[];
  /** extra exclusions (on top of the defaults) */
  excludeInterfaces: string[];
}

export interface L2Election {
  address: string;
  groupKey: string;
  owner: string | undefined;
  candidates: string[];
  services: string[];
  /** heartbeat mode: the candidates known from the membership, and whether this node heard a quorum of them */
  known?: string[];
  quorum?: boolean;
  /** with nodePreference: the candidates of the highest weight, among whom the owner was elected */
  preferred?: string[];
}

export interface LocalBinding {
  address: string;
  services: string[];
}

export interface BgpRoute {
  prefix: string;
  addresses: string[];
  services: string[];
  communities: string[];
  largeCommunities: string[];
  /** set on iBGP sessions only */
  localPref?: number;
}

export interface BgpPeerPlan {
  name: string;
  spec: BGPPeerSpec;
  routes: BgpRoute[];
}

export interface Skipped {
  service: string;
  address?: string;
  reason: string;
}

export interface SpeakerPlan {
  /** Why this node announces nothing at all (undefined: it is eligible). */
  nodeProblem: string | undefined;
  l2: L2Announcement[];
  /** Every L2 election this node computed (also those it does not win), for metrics and logs. */
  elections: L2Election[];
  local: LocalBinding[];
  /** One entry per BGPPeer selected for this node, routes possibly empty (the session stays up). */
  bgp: BgpPeerPlan[];
  /** Addresses (or Services) not announced for trust reasons, for logs and Events. */
  skipped: Skipped[];
}

const keyOf = (ns: string, name: string) => `${ns}/${name}`;
const byString = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const sortedUnique = (xs: Iterable<string>) => [...new Set(xs)].sort(byString);
const byName = <T extends { metadata: ObjectMeta }>(a: T, b: T) => byString(a.metadata.name ?? '', b.metadata.name ?? '');

/** Why a node may not announce anything (undefined: it may). */
export function nodeProblem(node: NodeObject | undefined): string | undefined {
  if (!node) return 'the Node object does not exist';
  if (node.metadata.deletionTimestamp) return 'the Node is being deleted';
  if (node.metadata.labels?.[EXCLUDE_LB_LABEL] !== undefined) return `the Node is labelled ${EXCLUDE_LB_LABEL}`;
  const conditions = node.status?.conditions ?? [];
  if (conditions.find((c) => c.type === 'Ready')?.status !== 'True') return 'the Node is not Ready';
  if (conditions.find((c) => c.type === 'NetworkUnavailable')?.status === 'True') return 'the Node has NetworkUnavailable';
  return undefined;
}

/** Empty or unset selectors select everything; otherwise any one must match (MetalLB's semantics). */
export function selectsNode(selectors: LabelSelector[] | undefined, labels: Record<string, string> | undefined): boolean {
  return !selectors || selectors.length === 0 || selectors.some((s) => matchesSelector(labels, s));
}

/** ipPools OR ipPoolSelectors; neither set = every pool. */
export function selectsPool(spec: { ipPools?: string[] | undefined; ipPoolSelectors?: LabelSelector[] | undefined }, poolName: string, poolLabels: Record<string, string> | undefined): boolean {
  const names = spec.ipPools ?? [];
  const selectors = spec.ipPoolSelectors ?? [];
  if (names.length === 0 && selectors.length === 0) return true;
  if (names.includes(poolName)) return true;
  return poolLabels !== undefined && selectors.some((s) => matchesSelector(poolLabels, s));
}

type NodePreference = { nodeSelector: LabelSelector; weight: number }[] | undefined;

/** A node's weight under one nodePreference list: the highest weight of the entries that select it, 0 for none. */
export function preferenceWeight(preference: NodePreference, labels: Record<string, string> | undefined): number {
  let best = 0;
  for (const p of preference ?? []) if (p.weight > best && matchesSelector(labels, p.nodeSelector)) best = p.weight;
  return best;
}

/** The nodes of the highest weight among `nodes` (order kept). */
export function preferredTier(nodes: readonly string[], weightOf: (node: string) => number): string[] {
  const weights = nodes.map(weightOf);
  const top = Math.max(0, ...weights);
  return nodes.filter((_, i) => weights[i] === top);
}

/**
 * The spec a node opens its session with: the first nodeOverrides entry that names (nodeName) or
 * selects (nodeSelector) the node replaces sourceAddress and routerID; nodeOverrides itself is
 * dropped, so that a change to another node's entry does not reopen this node's session.
 */
export function effectivePeerSpec(spec: BGPPeerSpec, nodeName: string, labels: Record<string, string> | undefined): BGPPeerSpec {
  const { nodeOverrides, ...rest } = spec;
  const o = nodeOverrides?.find((e) => (e.nodeName !== undefined ? e.nodeName === nodeName : e.nodeSelector !== undefined && matchesSelector(labels, e.nodeSelector)));
  if (!o) return rest;
  return { ...rest, ...(o.sourceAddress !== undefined ? { sourceAddress: o.sourceAddress } : {}), ...(o.routerID !== undefined ? { routerID: o.routerID } : {}) };
}

/** The prefix that announces `ip` aggregated to `length` bits (the host bits cleared). */
export function aggregatePrefix(ip: IP, length: number): string {
  const bits = ip.family === 4 ? 32 : 128;
  const len = Number.isInteger(length) && length >= 0 && length <= bits ? length : bits;
  const shift = BigInt(bits - len);
  const value = (ip.value >> shift) << shift;
  return `${formatIP({ family: ip.family, value })}/${len}`;
}

const endpointReady = (c: { ready?: boolean | null } | null | undefined) => c?.ready !== false; // nil = unknown: ready (discovery/v1)

interface EndpointIndex {
  /** Services with at least one ready endpoint */
  anyReady: Set<string>;
  /** service key → nodes hosting a ready endpoint */
  readyNodes: Map<string, Set<string>>;
}

export function indexEndpoints(slices: EndpointSliceObject[]): EndpointIndex {
  const anyReady = new Set<string>();
  const readyNodes = new Map<string, Set<string>>();
  for (const slice of slices) {
    const svc = slice.metadata.labels?.[SERVICE_NAME_LABEL];
    const ns = slice.metadata.namespace;
    if (!svc || !ns || slice.metadata.deletionTimestamp) continue;
    const key = keyOf(ns, svc);
    for (const ep of slice.endpoints ?? []) {
      if (!endpointReady(ep.conditions)) continue;
      anyReady.add(key);
      if (ep.nodeName) {
        let s = readyNodes.get(key);
        if (!s) readyNodes.set(key, (s = new Set()));
        s.add(ep.nodeName);
      }
    }
  }
  return { anyReady, readyNodes };
}

/** A Service's addresses that pass the trust rules, each with its claim. */
export interface TrustedService {
  key: string;
  service: Service;
  local: boolean;
  addresses: { address: string; ip: IP; use: PoolUsage; claim: IPClaim }[];
  groupKey: string;
}

function claimHolds(claim: IPClaim | undefined, svc: Service, use: PoolUsage): boolean {
  const uid = svc.metadata.uid;
  return !!claim?.spec?.holders?.some((h) => h.namespace === svc.metadata.namespace && h.name === svc.metadata.name && h.use === use && (!h.uid || !uid || h.uid === uid));
}

/** Applies the trust rules to every Service (pure; exported for tests). */
export function trustedServices(services: ServiceInput[], claims: IPClaim[], skipped: Skipped[] = []): TrustedService[] {
  const claimByAddress = new Map<string, IPClaim>();
  for (const c of claims) {
    const ip = tryParseIP(c.spec?.address ?? '');
    if (ip) claimByAddress.set(formatIP(ip), c);
  }
  const out: TrustedService[] = [];
  for (const { service, assignment } of services) {
    const ns = service.metadata.namespace ?? '';
    const name = service.metadata.name ?? '';
    const key = keyOf(ns, name);
    if (service.metadata.deletionTimestamp) continue;
    if (!assignment) {
      // Only worth a note when something claims to be assigned (status or annotations).
      if ((service.status?.loadBalancer?.ingress?.length ?? 0) > 0 || service.metadata.annotations?.['admitlb.io/allocation'] !== undefined) {
        skipped.push({ service: key, reason: 'no signed assignment verifies for this Service' });
      }
      continue;
    }
    if (assignment.namespace !== ns || assignment.name !== name) {
      skipped.push({ service: key, reason: `assignment names ${assignment.namespace}/${assignment.name}` });
      continue;
    }
    const addresses: TrustedService['addresses'] = [];
    const seen = new Set<string>();
    const consider = (text: string, use: PoolUsage) => {
      const ip = tryParseIP(text);
      if (!ip) {
        skipped.push({ service: key, address: text, reason: 'not an IP address' });
        return;
      }
      const address = formatIP(ip);
      if (seen.has(address)) return;
      if (use === 'LoadBalancer' && service.spec?.type !== 'LoadBalancer') {
        skipped.push({ service: key, address, reason: 'the Service is not of type LoadBalancer' });
        return;
      }
      if (use === 'ExternalIP' && !(service.spec?.externalIPs ?? []).some((t) => tryParseIP(t) && formatIP(tryParseIP(t)!) === address)) {
        skipped.push({ service: key, address, reason: 'the externalIP is no longer in spec.externalIPs' });
        return;
      }
      const claim = claimByAddress.get(address);
      if (!claimHolds(claim, service, use)) {
        skipped.push({ service: key, address, reason: claim ? `IPClaim ${claim.metadata.name} does not list this Service as a ${use} holder` : 'no IPClaim exists for the address' });
        return;
      }
      seen.add(address);
      addresses.push({ address, ip, use, claim: claim! });
    };
    for (const t of assignment.ips) consider(t, 'LoadBalancer');
    for (const t of assignment.externalIPs) consider(t, 'ExternalIP');
    if (addresses.length === 0) continue;
    const sharingKey = addresses.find((a) => a.claim.spec.sharingKey)?.claim.spec.sharingKey;
    out.push({
      key,
      service,
      local: service.spec?.externalTrafficPolicy === 'Local',
      addresses,
      groupKey: groupKeyFor({ namespace: ns, name, addresses: addresses.map((a) => a.address), sharingKey }),
    });
  }
  return out.sort((a, b) => byString(a.key, b.key));
}

/** Computes the speaker plan of `input.nodeName`. Deterministic: the order of every input list is irrelevant. */
export function planSpeaker(input: PlanInput): SpeakerPlan {
  const self = input.nodeName;
  const skipped: Skipped[] = [];
  const nodes = new Map(input.nodes.map((n) => [n.metadata.name ?? '', n]));
  const selfNode = nodes.get(self);
  const selfProblem = nodeProblem(selfNode);
  const pools = new Map(input.pools.map((p) => [p.metadata.name ?? '', p]));
  const poolLabels = (name: string) => pools.get(name)?.metadata.labels;
  const l2Advs = [...input.l2Advertisements].filter((a) => !a.metadata.deletionTimestamp && a.spec).sort(byName);
  const bgpAdvs = [...input.bgpAdvertisements].filter((a) => !a.metadata.deletionTimestamp && a.spec).sort(byName);
  const endpoints = indexEndpoints(input.endpointSlices);
  const services = trustedServices(input.services, input.claims, skipped);

  // Nodes that may announce anything at all and whose speaker is a member (heartbeat mode) or alive
  // (Lease mode); the live ones among them.
  const members = input.memberNodes ?? input.liveNodes;
  const cache = input.ownerCache;
  cache?.setUniverse(nodes.keys());
  const elect = (key: string, candidates: string[]) => (cache ? cache.ownerOf(key, candidates) : ownerOf(key, candidates));
  const eligibleMembers = [...nodes.keys()].filter((n) => n && nodeProblem(nodes.get(n)) === undefined && members.has(n)).sort(byString);

  const endpointOK = (svc: TrustedService, node: string) => (svc.local ? !!endpoints.readyNodes.get(svc.key)?.has(node) : endpoints.anyReady.has(svc.key));

  // ---- L2: group the holders by address ----
  const holdersByAddress = new Map<string, { svc: TrustedService; entry: TrustedService['addresses'][number] }[]>();
  for (const svc of services) {
    for (const entry of svc.addresses) {
      let list = holdersByAddress.get(entry.address);
      if (!list) holdersByAddress.set(entry.address, (list = []));
      list.push({ svc, entry });
    }
  }

  const l2: L2Announcement[] = [];
  const elections: L2Election[] = [];
  const announcedL2 = new Set<string>();
  for (const [address, holders] of [...holdersByAddress].sort((a, b) => byString(a[0], b[0]))) {
    const claim = holders[0]!.entry.claim;
    const pool = claim.spec.pool;
    const advsForPool = l2Advs.filter((a) => selectsPool(a.spec, pool, poolLabels(pool)));
    if (advsForPool.length === 0) continue;
    const serviceKeys = sortedUnique(holders.map((h) => h.svc.key));
    const groupKey = claim.spec.sharingKey ? groupKeyFor({ namespace: '', name: '', addresses: [], sharingKey: claim.spec.sharingKey }) : holders[0]!.svc.groupKey;
    const known = eligibleMembers.filter((n) => {
      const labels = nodes.get(n)?.metadata.labels;
      return advsForPool.some((a) => selectsNode(a.spec.nodeSelectors, labels)) && holders.some((h) => endpointOK(h.svc, n));
    });
    const candidates = known.filter((n) => input.liveNodes.has(n));
    // With a preference the hash elects among the candidates of the highest weight only.
    const weighted = advsForPool.some((a) => a.spec.nodePreference?.length);
    const weightOf = (n: string) => {
      const labels = nodes.get(n)?.metadata.labels;
      return Math.max(0, ...advsForPool.filter((a) => selectsNode(a.spec.nodeSelectors, labels)).map((a) => preferenceWeight(a.spec.nodePreference, labels)));
    };
    const preferred = weighted ? preferredTier(candidates, weightOf) : candidates;
    const pref = weighted ? { preferred } : {};
    if (input.memberNodes) {
      // Heartbeat mode: without a quorum this node's view is not trusted (it may be the one cut off).
      const quorum = hasQuorum(known, input.liveNodes);
      const owner = quorum ? elect(groupKey, preferred) : undefined;
      elections.push({ address, groupKey, owner, candidates, services: serviceKeys, known, quorum, ...pref });
      if (owner !== self || selfProblem !== undefined) continue;
    } else {
      const owner = elect(groupKey, preferred);
      elections.push({ address, groupKey, owner, candidates, services: serviceKeys, ...pref });
      if (owner !== self || selfProblem !== undefined) continue;
    }
    const mine = advsForPool.filter((a) => selectsNode(a.spec.nodeSelectors, selfNode?.metadata.labels));
    const unrestricted = mine.some((a) => !a.spec.interfaces || a.spec.interfaces.length === 0);
    const interfaces = unrestricted ? undefined : [...new Set(mine.flatMap((a) => a.spec.interfaces ?? []))];
    const excludeInterfaces = sortedUnique(mine.flatMap((a) => a.spec.excludeInterfaces ?? []));
    l2.push({ address, services: serviceKeys, ...(interfaces ? { interfaces } : {}), excludeInterfaces });
    announcedL2.add(address);
  }

  // ---- BGP ----
  const peers = [...input.bgpPeers].filter((p) => !p.metadata.deletionTimestamp && p.spec && selectsNode(p.spec.nodeSelectors, selfNode?.metadata.labels)).sort(byName);
  const routesByPeer = new Map<string, Map<string, BgpRoute>>(peers.map((p) => [p.metadata.name ?? '', new Map()]));
  const bgpExternal = new Map<string, Set<string>>();
  const weightIn = (adv: BGPAdvertisement, n: string) => preferenceWeight(adv.spec.nodePreference, nodes.get(n)?.metadata.labels);
  // Whether a live node this advertisement would also have announce the Service outweighs this one.
  // Without externalTrafficPolicy Local the answer depends on the advertisement only: memoized.
  const outrankedMemo = new Map<BGPAdvertisement, boolean>();
  const outranked = (adv: BGPAdvertisement, svc: TrustedService) => {
    if (!svc.local && outrankedMemo.has(adv)) return outrankedMemo.get(adv)!;
    const own = weightIn(adv, self);
    const r = eligibleMembers.some((n) => n !== self && input.liveNodes.has(n) && selectsNode(adv.spec.nodeSelectors, nodes.get(n)?.metadata.labels) && endpointOK(svc, n) && weightIn(adv, n) > own);
    if (!svc.local) outrankedMemo.set(adv, r);
    return r;
  };
  if (selfProblem === undefined && peers.length > 0) {
    for (const svc of services) {
      if (!endpointOK(svc, self)) continue;
      for (const entry of svc.addresses) {
        const pool = entry.claim.spec.pool;
        for (const adv of bgpAdvs) {
          if (!selectsPool(adv.spec, pool, poolLabels(pool)) || !selectsNode(adv.spec.nodeSelectors, selfNode?.metadata.labels)) continue;
          if (adv.spec.nodePreference?.length && outranked(adv, svc)) continue;
          const length = entry.ip.family === 4 ? (adv.spec.aggregationLength ?? 32) : (adv.spec.aggregationLengthV6 ?? 128);
          const prefix = aggregatePrefix(entry.ip, length);
          const targets = adv.spec.peers && adv.spec.peers.length > 0 ? peers.filter((p) => adv.spec.peers!.includes(p.metadata.name ?? '')) : peers;
          for (const peer of targets) {
            const table = routesByPeer.get(peer.metadata.name ?? '')!;
            const ibgp = peer.spec.myASN === peer.spec.peerASN;
            const cur = table.get(prefix);
            const localPref = ibgp ? adv.spec.localPref : undefined;
            if (!cur) {
              table.set(prefix, {
                prefix,
                addresses: [entry.address],
                services: [svc.key],
                communities: sortedUnique(adv.spec.communities ?? []),
                largeCommunities: sortedUnique(adv.spec.largeCommunities ?? []),
                ...(localPref !== undefined ? { localPref } : {}),
              });
            } else {
              cur.addresses = sortedUnique([...cur.addresses, entry.address]);
              cur.services = sortedUnique([...cur.services, svc.key]);
              cur.communities = sortedUnique([...cur.communities, ...(adv.spec.communities ?? [])]);
              cur.largeCommunities = sortedUnique([...cur.largeCommunities, ...(adv.spec.largeCommunities ?? [])]);
              if (localPref !== undefined) cur.localPref = Math.max(cur.localPref ?? localPref, localPref);
            }
            if (entry.use === 'ExternalIP') {
              let s = bgpExternal.get(entry.address);
              if (!s) bgpExternal.set(entry.address, (s = new Set()));
              s.add(svc.key);
            }
          }
        }
      }
    }
  }
  const bgp: BgpPeerPlan[] = peers.map((p) => ({
    name: p.metadata.name ?? '',
    spec: effectivePeerSpec(p.spec, self, selfNode?.metadata.labels),
    routes: [...routesByPeer.get(p.metadata.name ?? '')!.values()].sort((a, b) => byString(a.prefix, b.prefix)),
  }));

  // ---- local bindings: externalIPs this node routes by BGP but does not hold on an L2 interface ----
  const local: LocalBinding[] = [...bgpExternal]
    .filter(([address]) => !announcedL2.has(address))
    .map(([address, svcs]) => ({ address, services: sortedUnique(svcs) }))
    .sort((a, b) => byString(a.address, b.address));

  cache?.prune();
  return { nodeProblem: selfProblem, l2, elections, local, bgp, skipped };
}
