// L2 election without per-Service leases (DESIGN.md, "Election without per-Service leases").
//
// Every speaker runs the same pure function over the same inputs: the group key of an assignment
// and the set of live, eligible nodes (one Lease per node, so API load grows with nodes, not
// Services). Rendezvous (highest-random-weight) hashing: each node scores sha256(node \0 key) and
// the highest score owns the group. Properties this gives for free:
//  - deterministic across processes, architectures and Node versions (no seeds, no Math.random,
//    no insertion order: the input list is deduplicated and the result does not depend on order);
//  - when a node leaves the live set, only the groups it owned move (every other node's score for
//    a key is unchanged, so the maximum over the remaining nodes is still the same node);
//  - when a node joins, it takes about 1/N of the groups and nothing else moves;
//  - balance follows from the hash: with N nodes each owns ~1/N of the keys.
// sha256 rather than FNV-1a: it costs ~1 µs per (node, key) here, which is nothing next to a
// Service event, and it has no weak low bits that could bias nodes with similar names.
import { createHash } from 'node:crypto';
import { formatIP, tryParseIP } from '../net/address.ts';

/** The score of one node for one key: the first 64 bits of sha256(`${node}\0${key}`). */
export function score(node: string, key: string): bigint {
  return createHash('sha256').update(`${node}\0${key}`).digest().readBigUInt64BE(0);
}

/**
 * The node that owns `groupKey` among `liveNodes`, or undefined when there is none. Ties (64-bit
 * collisions) go to the lexically smaller node name, so the answer is total and order-independent.
 */
export function ownerOf(groupKey: string, liveNodes: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestScore = -1n;
  for (const node of new Set(liveNodes)) {
    if (!node) continue;
    const s = score(node, groupKey);
    if (s > bestScore || (s === bestScore && best !== undefined && node < best)) {
      best = node;
      bestScore = s;
    }
  }
  return best;
}

/** What the speaker knows of one Service's assignment (from its verified annotations / claims). */
export interface Assignment {
  namespace: string;
  name: string;
  /** Every address assigned to the Service (LoadBalancer IPs and externalIPs), any order. */
  addresses: string[];
  /** The sharing key of its claims (admitlb.io/sharing-key or the MetalLB equivalents), if shared. */
  sharingKey?: string | undefined;
}

/**
 * The key an assignment is elected under. Everything that must land on one node hashes to the
 * same key:
 *  - Services sharing an address carry the same sharing key, so the key is the sharing key alone
 *    (without the namespace: a pool may allow sharing across namespaces, and co-location matters
 *    more than spreading unrelated groups that happen to use the same key);
 *  - both families of a dual-stack Service: the key is one address chosen independently of order
 *    and of the Service's primary family (the lowest IPv4 address, else the lowest IPv6 address),
 *    so both addresses follow it.
 * A Service without addresses falls back to its namespace/name (it has nothing to announce, but
 * the key stays total).
 */
export function groupKeyFor(a: Assignment): string {
  if (a.sharingKey) return `sharing:${a.sharingKey}`;
  const parsed = a.addresses.map((t) => tryParseIP(t)).filter((ip) => ip !== undefined);
  const pick = (family: 4 | 6) =>
    parsed
      .filter((ip) => ip.family === family)
      .sort((x, y) => (x.value < y.value ? -1 : x.value > y.value ? 1 : 0))[0];
  const primary = pick(4) ?? pick(6);
  if (primary) return `addr:${formatIP(primary)}`;
  return `svc:${a.namespace}/${a.name}`;
}

/** Whether `self` should announce the assignment's addresses. */
export function isOwner(self: string, a: Assignment, liveNodes: Iterable<string>): boolean {
  return ownerOf(groupKeyFor(a), liveNodes) === self;
}

/**
 * Whether a node may act on its view of one election (heartbeat mode; see the README of
 * src/speaker, "Partitions"). `known` are the candidates the membership knows of (eligible nodes
 * with a node Lease), `heard` those this node hears (itself included). A node acts only when it
 * hears a strict majority of the known candidates, or exactly half of them including the lowest
 * name (so of two halves of a split segment exactly one acts), or when it is the only one.
 *  - a node that hears nobody (its link is down, or it is cut off) is in the minority: it drops its
 *    addresses instead of taking everything;
 *  - the majority side elects among the nodes it hears, which excludes the isolated node: exactly
 *    one owner per address, on the side that can still be reached by most of the segment.
 * The price: in a segment of two candidates, when the one with the lower name dies the other waits
 * until the dead node's Lease lapses (or is deleted at shutdown), because from its side a dead peer
 * and its own dead link look the same.
 */
export function hasQuorum(known: readonly string[], heard: ReadonlySet<string>): boolean {
  const k = new Set(known.filter(Boolean));
  if (k.size === 0) return false;
  let h = 0;
  let lowest: string | undefined;
  for (const n of k) {
    if (heard.has(n)) h++;
    if (lowest === undefined || n < lowest) lowest = n;
  }
  if (2 * h > k.size) return true;
  return 2 * h === k.size && heard.has(lowest!);
}

/**
 * A memo for ownerOf that gives exactly its answers: for each group key, the K best nodes of the
 * universe (all Nodes), ranked as ownerOf ranks them (score, then name). The owner among any
 * candidate subset is the first of them that is a candidate; only when none is (e.g. Local policy
 * with endpoints elsewhere) does it fall back to ownerOf over the candidates. Why: a pass scores
 * every candidate for every group (1,000 nodes × 1,000 Services = 10^6 sha256, seconds of CPU),
 * and a node dying or coming back changes the candidates, not the universe, so after the first pass
 * a failover costs K lookups per group. A changed universe (Node added or removed) starts afresh.
 */
export class OwnerCache {
  private sig = '';
  private universe = new Set<string>();
  private top = new Map<string, string[]>();
  private used = new Set<string>();
  /** the last candidate array seen (callers reuse one array for many groups; never mutated) and its checks */
  private last: { list: readonly string[]; set: Set<string>; known: boolean } | undefined;

  constructor(private readonly k = 4) {}

  /** The names of every Node; call once per pass before ownerOf. */
  setUniverse(nodes: Iterable<string>): void {
    const sorted = [...new Set(nodes)].filter(Boolean).sort();
    const sig = sorted.join('\0');
    if (sig === this.sig) return;
    this.sig = sig;
    this.universe = new Set(sorted);
    this.top.clear();
    this.last = undefined;
  }

  ownerOf(groupKey: string, candidates: readonly string[]): string | undefined {
    this.used.add(groupKey);
    if (candidates.length === 0) return undefined;
    if (this.last?.list !== candidates) this.last = { list: candidates, set: new Set(candidates), known: candidates.every((c) => this.universe.has(c)) };
    const { set: c, known } = this.last;
    if (!known) return ownerOf(groupKey, candidates);
    let top = this.top.get(groupKey);
    if (!top) {
      top = [...this.universe]
        .map((node) => ({ node, s: score(node, groupKey) }))
        .sort((a, b) => (a.s > b.s ? -1 : a.s < b.s ? 1 : a.node < b.node ? -1 : a.node > b.node ? 1 : 0))
        .slice(0, this.k)
        .map((x) => x.node);
      this.top.set(groupKey, top);
    }
    for (const n of top) if (c.has(n)) return n;
    return ownerOf(groupKey, candidates);
  }

  /** Forgets the groups not asked for since the last call (bounded memory as Services go). */
  prune(): void {
    for (const key of [...this.top.keys()]) if (!this.used.has(key)) this.top.delete(key);
    this.used.clear();
  }

  size(): number {
    return this.top.size;
  }
}
