// An in-memory index over IPClaims: who holds which address, the lowest free address at or after
// any point, per-namespace counts for quotas, and claims by sharing key. It is a cache, never the
// lock: the API server's create-uniqueness and resourceVersion checks are what keep replicas
// consistent; the index only makes the first guess right almost every time.
import type { ClaimHolder, IPClaim } from '../config/schemas.ts';
import { claimNameFor, formatIP, ipFromClaimName, isBuggyIP, tryParseIP, type Family, type IP } from './addresses.ts';
import { IntervalSet } from './interval-set.ts';

export interface ClaimRecord {
  name: string;
  ip: IP;
  address: string;
  pool: string;
  sharingKey: string | undefined;
  holders: ClaimHolder[];
  resourceVersion: string | undefined;
  creationTimestamp: string | undefined;
}

// avoidBuggyIPs searches run in a compressed IPv4 space without the .0/.255 addresses, so that a
// run of claims broken only by never-assignable addresses is still one interval.
const compress = (v: bigint) => (v >> 8n) * 254n + (v & 255n) - 1n;
const decompress = (c: bigint) => (c / 254n) * 256n + (c % 254n) + 1n;

export const serviceKey = (namespace: string, name: string) => `${namespace}/${name}`;

export class ClaimIndex {
  private readonly byName = new Map<string, ClaimRecord>();
  private readonly taken: Record<Family, IntervalSet> = { 4: new IntervalSet(), 6: new IntervalSet() };
  private readonly takenNoBuggy = new IntervalSet();
  private readonly byService = new Map<string, Set<string>>();
  private readonly bySharingKey = new Map<string, Set<string>>();
  private readonly perPoolNamespace = new Map<string, number>();
  private readonly perPoolFamily = new Map<string, number>();
  private readonly unconfirmedPerNamespace = new Map<string, number>();
  private readonly unconfirmedPerPoolNamespace = new Map<string, number>();

  get size(): number {
    return this.byName.size;
  }

  /** Adds or replaces a claim; claims whose name and address disagree are ignored (not ours). */
  upsert(claim: IPClaim): ClaimRecord | undefined {
    const name = claim.metadata.name;
    if (!name) return undefined;
    let ip: IP;
    try {
      ip = ipFromClaimName(name);
    } catch {
      return undefined;
    }
    const stated = tryParseIP(claim.spec?.address ?? '');
    if (!stated || stated.family !== ip.family || stated.value !== ip.value) return undefined;
    this.remove(name);
    const record: ClaimRecord = {
      name,
      ip,
      address: formatIP(ip),
      pool: claim.spec.pool,
      sharingKey: claim.spec.sharingKey || undefined,
      holders: (claim.spec.holders ?? []).map((h) => ({ ...h, ports: h.ports ?? [], backend: h.backend ?? '' })),
      resourceVersion: claim.metadata.resourceVersion,
      creationTimestamp: claim.metadata.creationTimestamp ?? undefined,
    };
    this.byName.set(name, record);
    this.taken[ip.family].add(ip.value);
    if (ip.family === 4 && !isBuggyIP(ip)) this.takenNoBuggy.add(compress(ip.value));
    for (const h of record.holders) addTo(this.byService, serviceKey(h.namespace, h.name), name);
    if (record.sharingKey) addTo(this.bySharingKey, record.sharingKey, name);
    for (const ns of chargedNamespaces(record)) bump(this.perPoolNamespace, `${record.pool}\0${ns}`, 1);
    bump(this.perPoolFamily, `${record.pool}\0${ip.family}`, 1);
    for (const h of record.holders) if (!h.uid) this.bumpUnconfirmed(record.pool, h.namespace, 1);
    return record;
  }

  remove(name: string): boolean {
    const record = this.byName.get(name);
    if (!record) return false;
    this.byName.delete(name);
    const { ip } = record;
    this.taken[ip.family].delete(ip.value);
    if (ip.family === 4 && !isBuggyIP(ip)) this.takenNoBuggy.delete(compress(ip.value));
    for (const h of record.holders) removeFrom(this.byService, serviceKey(h.namespace, h.name), name);
    if (record.sharingKey) removeFrom(this.bySharingKey, record.sharingKey, name);
    for (const ns of chargedNamespaces(record)) bump(this.perPoolNamespace, `${record.pool}\0${ns}`, -1);
    bump(this.perPoolFamily, `${record.pool}\0${ip.family}`, -1);
    for (const h of record.holders) if (!h.uid) this.bumpUnconfirmed(record.pool, h.namespace, -1);
    return true;
  }

  get(ip: IP): ClaimRecord | undefined {
    return this.byName.get(claimNameFor(ip));
  }

  getByName(name: string): ClaimRecord | undefined {
    return this.byName.get(name);
  }

  all(): IterableIterator<ClaimRecord> {
    return this.byName.values();
  }

  /** The smallest address ≥ from that no claim holds (skipping .0/.255 when avoidBuggy). */
  nextFree(family: Family, from: bigint, avoidBuggy: boolean): bigint {
    if (family === 6 || !avoidBuggy) return this.taken[family].nextAbsent(from);
    let v = from;
    while (isBuggyIP({ family: 4, value: v })) v += 1n; // at most two steps
    return decompress(this.takenNoBuggy.nextAbsent(compress(v)));
  }

  claimsOfService(namespace: string, name: string): ClaimRecord[] {
    const names = this.byService.get(serviceKey(namespace, name));
    return names ? [...names].map((n) => this.byName.get(n)!).filter(Boolean) : [];
  }

  claimsWithSharingKey(key: string): ClaimRecord[] {
    const names = this.bySharingKey.get(key);
    if (!names) return [];
    return [...names].map((n) => this.byName.get(n)!).sort((a, b) => compareIP(a.ip, b.ip));
  }

  /** Addresses of `pool` held (at least partly) by Services of `namespace`. */
  heldByNamespace(pool: string, namespace: string): number {
    return this.perPoolNamespace.get(`${pool}\0${namespace}`) ?? 0;
  }

  /**
   * Holders of `namespace` that record no uid: admissions whose Service has not passed validation
   * (yet), in flight or rejected after the webhook claimed.
   */
  unconfirmed(namespace: string, pool?: string): number {
    return (pool === undefined ? this.unconfirmedPerNamespace.get(namespace) : this.unconfirmedPerPoolNamespace.get(`${pool}\0${namespace}`)) ?? 0;
  }

  private bumpUnconfirmed(pool: string, namespace: string, delta: number) {
    bump(this.unconfirmedPerNamespace, namespace, delta);
    bump(this.unconfirmedPerPoolNamespace, `${pool}\0${namespace}`, delta);
  }

  inUse(pool: string, family: Family): number {
    return this.perPoolFamily.get(`${pool}\0${family}`) ?? 0;
  }

  /** Bytes-free structural stats for benchmarks and metrics. */
  stats(): { claims: number; v4Intervals: number; v6Intervals: number } {
    return { claims: this.byName.size, v4Intervals: this.taken[4].intervals, v6Intervals: this.taken[6].intervals };
  }
}

export function compareIP(a: IP, b: IP): number {
  if (a.family !== b.family) return a.family - b.family;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

/** The namespaces whose quota a claim counts against: every namespace with a holder in it. */
export function chargedNamespaces(record: Pick<ClaimRecord, 'holders'>): Set<string> {
  return new Set(record.holders.map((h) => h.namespace));
}

function addTo(map: Map<string, Set<string>>, key: string, value: string) {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(value);
}

function removeFrom(map: Map<string, Set<string>>, key: string, value: string) {
  const set = map.get(key);
  if (!set) return;
  set.delete(value);
  if (set.size === 0) map.delete(key);
}

function bump(map: Map<string, number>, key: string, delta: number) {
  const next = (map.get(key) ?? 0) + delta;
  if (next <= 0) map.delete(key);
  else map.set(key, next);
}
