// The allocator: a pure function of (pools, claims, the Service's request). No I/O, no clock, no
// randomness: the same inputs always give the same answer, which is what lets any number of webhook
// replicas and the controller's back-stop agree.
import type { DenialError, ErrorName } from '../errors.ts';
import type { ClaimHolder, PoolUsage, ServicePortRef } from '../config/schemas.ts';
import { familyName, formatIP, isBuggyIP, type Family, type IP } from './addresses.ts';
import { compareIP, type ClaimIndex, type ClaimRecord } from './claim-index.ts';
import { comparePools, poolAdmits, poolCapacity, poolContains, type PoolModel } from './pools.ts';

export type FamilyPolicy = 'SingleStack' | 'PreferDualStack' | 'RequireDualStack';

export interface AllocationRequest {
  namespace: string;
  name: string;
  /**
   * The uid of the Service object the request is about: the live object's on an update, none on a
   * create (the API server sets it after mutating admission). See isHolder.
   */
  uid?: string | undefined;
  labels: Record<string, string> | undefined;
  namespaceLabels: Record<string, string> | undefined;
  /** Primary family first; a second entry only matters for dual-stack policies. */
  families: Family[];
  policy: FamilyPolicy;
  /** Explicitly requested addresses (annotation or spec.loadBalancerIP), with the field they came from. */
  requested?: { ips: IP[]; field: string } | undefined;
  /** An explicitly named pool, with the field it came from. */
  pool?: { name: string; field: string } | undefined;
  sharingKey?: string | undefined;
  ports: ServicePortRef[];
  /** '' for externalTrafficPolicy Cluster; the canonical selector for Local. */
  backend: string;
  /** What the Service already holds (from its annotations), kept while still valid. */
  current?: { ips: IP[]; pool: string } | undefined;
  /**
   * Where in the pool to start looking for a free address, as a fraction in [0, 1); unset: the
   * lowest free address. A replica that lost a claim race passes a random value, so that replicas
   * whose views lag each other stop colliding on the same "lowest free" address.
   */
  spread?: number;
}

export interface Denial {
  field: string;
  message: string;
  /** Which catalogue entry (src/errors.ts) this is: the admission layer turns it into an HTTP answer. */
  error: ErrorName;
}

export type AllocationResult =
  | { ok: true; pool: string; ips: IP[]; kept: boolean }
  | { ok: false; denial: Denial };

export interface AllocatorState {
  pools: PoolModel[];
  claims: ClaimIndex;
}

/**
 * Whether a claim holder is the Service object a request is about. Once a holder records a uid (the
 * object passed validation, or the controller adopted it), only that object is it: a create (no uid
 * yet) or another object of the same name is another Service, whose claim, sharing key and ports
 * are not its to change and whose address does not count as its own. A holder without a uid is an
 * admission in flight and belongs to whatever request names it.
 */
export function isHolder(h: Pick<ClaimHolder, 'namespace' | 'name' | 'uid'>, who: { namespace: string; name: string; uid?: string | undefined }): boolean {
  return h.namespace === who.namespace && h.name === who.name && (h.uid === undefined || h.uid === who.uid);
}

type Availability = { kind: 'free' } | { kind: 'self' } | { kind: 'shareable'; record: ClaimRecord } | { kind: 'taken'; why: string };

const deny = (field: string, message: string, error: DenialError): AllocationResult => ({
  ok: false,
  denial: { field, message, error },
});

/** Chooses LoadBalancer addresses for a Service (rules 1–7 of the allocation semantics). */
export function allocateLoadBalancer(state: AllocatorState, req: AllocationRequest): AllocationResult {
  const use: PoolUsage = 'LoadBalancer';
  const byName = new Map(state.pools.map((p) => [p.name, p]));

  // 1. Keep a valid assignment (idempotent under reinvocation, sticky on update).
  if (req.current && keepable(state, req, byName.get(req.current.pool), use)) {
    return { ok: true, pool: req.current.pool, ips: sortByFamilies(req.current.ips, req.families), kept: true };
  }

  // 2. Explicitly requested addresses.
  if (req.requested && req.requested.ips.length > 0) return allocateRequested(state, req, use);

  // 3. A named pool.
  if (req.pool) {
    const pool = byName.get(req.pool.name);
    const problem = namedPoolProblem(pool, req, use);
    if (problem) return problem;
    return allocateFromPools(state, req, [pool!], use, true);
  }

  // 4. Automatic: autoAssign pools that admit this Service, by priority then name.
  const candidates = state.pools
    .filter((p) => p.autoAssign && !p.deleting && p.usage.has(use) && poolAdmits(p, subjectOf(req)))
    .sort(comparePools);
  if (candidates.length === 0) {
    return deny('spec.type', `no IPPool with autoAssign serves ${use} addresses to Services in namespace "${req.namespace}"`, 'NOT_ALLOWED');
  }
  return allocateFromPools(state, req, candidates, use, false);
}

function subjectOf(req: AllocationRequest) {
  return { namespace: req.namespace, labels: req.labels, namespaceLabels: req.namespaceLabels };
}

function namedPoolProblem(pool: PoolModel | undefined, req: AllocationRequest, use: PoolUsage): AllocationResult | undefined {
  const field = req.pool!.field;
  if (!pool) return deny(field, `IPPool "${req.pool!.name}" does not exist`, 'POOL_NOT_FOUND');
  if (pool.deleting) return deny(field, `IPPool "${pool.name}" is being deleted`, 'POOL_DELETING');
  if (!pool.usage.has(use)) return deny(field, `IPPool "${pool.name}" does not serve ${use} addresses`, 'NOT_ALLOWED');
  if (!poolAdmits(pool, subjectOf(req))) {
    return deny(field, `IPPool "${pool.name}" is not available to this Service in namespace "${req.namespace}"`, 'NOT_ALLOWED');
  }
  return undefined;
}

/** The family shapes a policy accepts, most preferred first. */
function shapesFor(req: AllocationRequest, pool: PoolModel): Family[][] {
  const [primary, secondary] = [req.families[0] ?? 4, req.families[1] ?? otherFamily(req.families[0] ?? 4)];
  switch (req.policy) {
    case 'SingleStack':
      return [[primary]];
    case 'RequireDualStack':
      return [[primary, secondary]];
    case 'PreferDualStack':
      return pool.families.has(primary) && pool.families.has(secondary) ? [[primary, secondary], [primary]] : [[primary]];
  }
}

const otherFamily = (f: Family): Family => (f === 4 ? 6 : 4);

function keepable(state: AllocatorState, req: AllocationRequest, pool: PoolModel | undefined, use: PoolUsage): boolean {
  const current = req.current!;
  if (!pool || pool.deleting || !pool.usage.has(use) || !poolAdmits(pool, subjectOf(req))) return false;
  if (req.pool && req.pool.name !== pool.name) return false;
  if (req.requested && req.requested.ips.length > 0 && !sameIPs(req.requested.ips, current.ips)) return false;
  const families = current.ips.map((ip) => ip.family);
  if (new Set(families).size !== families.length) return false;
  const fitsShape = shapesFor(req, pool).some((shape) => shape.length === families.length && shape.every((f) => families.includes(f)));
  if (!fitsShape) return false;
  return current.ips.every((ip) => {
    if (!poolContains(pool, ip) || (pool.avoidBuggyIPs && isBuggyIP(ip))) return false;
    // A signature alone keeps nothing: only an address whose IPClaim lists this Service is its own
    // (a replayed dry-run answer or a stale annotation names addresses nobody recorded for it).
    if (!claimedBy(state, req, ip, use)) return false;
    const a = availability(state, req, pool, ip, use);
    return a.kind !== 'taken';
  });
}

/** Whether the IPClaim of `ip` lists the Service (isHolder) for this use. */
export function claimedBy(state: AllocatorState, who: { namespace: string; name: string; uid?: string | undefined }, ip: IP, use: PoolUsage): boolean {
  return !!state.claims.get(ip)?.holders.some((h) => h.use === use && isHolder(h, who));
}

function sameIPs(a: IP[], b: IP[]): boolean {
  return a.length === b.length && a.every((x) => b.some((y) => compareIP(x, y) === 0));
}

function sortByFamilies(ips: IP[], families: Family[]): IP[] {
  const rank = (f: Family) => {
    const i = families.indexOf(f);
    return i < 0 ? 9 : i;
  };
  return [...ips].sort((a, b) => rank(a.family) - rank(b.family));
}

/** Whether the holders of `record` (all of them, any namespace) may share it with `req`. */
function shareableWith(record: ClaimRecord, others: ClaimRecord['holders'], pool: PoolModel, req: Pick<AllocationRequest, 'ports' | 'backend'>, use: PoolUsage): boolean {
  if (record.pool !== pool.name || others.some((h) => h.use !== use || h.backend !== req.backend)) return false;
  return !others.some((h) => req.ports.some((p) => h.ports.some((q) => q.protocol === p.protocol && q.port === p.port)));
}

/** Whether `ip` is free for this Service, already its own, shareable with it, or taken (and why). */
export function availability(state: AllocatorState, req: Pick<AllocationRequest, 'namespace' | 'name' | 'uid' | 'sharingKey' | 'ports' | 'backend'>, pool: PoolModel, ip: IP, use: PoolUsage): Availability {
  const record = state.claims.get(ip);
  if (!record) return { kind: 'free' };
  const others = record.holders.filter((h) => !isHolder(h, req));
  if (others.length === 0) return { kind: 'self' };
  const heldBy = others.some((h) => h.namespace === req.namespace)
    ? `Service "${others.find((h) => h.namespace === req.namespace)!.name}"`
    : 'another Service';
  const addr = formatIP(ip);
  const held: Availability = { kind: 'taken', why: `${addr} is already held by ${heldBy}` };
  if (!req.sharingKey || record.sharingKey !== req.sharingKey) return held;
  // The key matched. Any reason given from here on would tell the requester that it guessed the
  // sharing key right (a key oracle) and describe other Services: that is only told to a namespace
  // about its own Services, which it can read anyway. With a holder in another namespace the answer
  // is the same as for a wrong key, whatever keeps the address from being shared.
  const foreign = others.some((h) => h.namespace !== req.namespace);
  if (foreign && !(pool.crossNamespace && shareableWith(record, others, pool, req, use))) return held;
  if (record.pool !== pool.name) return { kind: 'taken', why: `${addr} is already held by ${heldBy} from another pool` };
  if (others.some((h) => h.use !== use)) return { kind: 'taken', why: `${addr} is already held by ${heldBy} as ${use === 'LoadBalancer' ? 'an externalIP' : 'a LoadBalancer IP'}` };
  if (others.some((h) => h.backend !== req.backend)) {
    return { kind: 'taken', why: `${addr} is shared by ${heldBy} with a different backend (externalTrafficPolicy Local needs the same selector)` };
  }
  for (const h of others) {
    for (const p of req.ports) {
      if (h.ports.some((q) => q.protocol === p.protocol && q.port === p.port)) {
        return { kind: 'taken', why: `port ${p.protocol}/${p.port} on ${addr} is already used by ${heldBy}` };
      }
    }
  }
  return { kind: 'shareable', record };
}

function allocateRequested(state: AllocatorState, req: AllocationRequest, use: PoolUsage): AllocationResult {
  const { ips, field } = req.requested!;
  const seen = new Set<Family>();
  for (const ip of ips) {
    if (seen.has(ip.family)) return deny(field, `at most one ${familyName(ip.family)} address may be requested`, 'BAD_REQUEST');
    seen.add(ip.family);
  }
  const primary = req.families[0] ?? 4;
  if (req.policy === 'SingleStack' && ips.length > 1) {
    return deny(field, 'two addresses are requested but spec.ipFamilyPolicy is SingleStack', 'BAD_REQUEST');
  }
  if (req.policy === 'SingleStack' && ips[0]!.family !== primary) {
    return deny(field, `${formatIP(ips[0]!)} is ${familyName(ips[0]!.family)} but the Service is ${familyName(primary)} (spec.ipFamilies)`, 'BAD_REQUEST');
  }
  if (req.policy === 'RequireDualStack' && ips.length < 2) {
    return deny(field, 'spec.ipFamilyPolicy is RequireDualStack: request one IPv4 and one IPv6 address', 'BAD_REQUEST');
  }
  let pool: PoolModel | undefined;
  for (const ip of ips) {
    const addr = formatIP(ip);
    const containing = state.pools.find((p) => poolContains(p, ip));
    if (req.pool && (!containing || containing.name !== req.pool.name)) {
      const named = state.pools.find((p) => p.name === req.pool!.name);
      if (!named) return namedPoolProblem(undefined, req, use)!;
      return deny(field, `${addr} is not in IPPool "${req.pool.name}" (${req.pool.field})`, 'NOT_ALLOWED');
    }
    if (!containing?.usage.has(use)) {
      return deny(field, `${addr} is outside the IPPools that serve ${use} addresses`, 'NOT_ALLOWED');
    }
    if (!poolAdmits(containing, subjectOf(req)) || containing.deleting) {
      return deny(field, `${addr} is in IPPool "${containing.name}", which is not available to this Service in namespace "${req.namespace}"`, 'NOT_ALLOWED');
    }
    if (pool && pool.name !== containing.name) {
      return deny(field, `the requested addresses come from different pools ("${pool.name}", "${containing.name}"); both must come from one`, 'BAD_REQUEST');
    }
    pool = containing;
    if (pool.avoidBuggyIPs && isBuggyIP(ip)) {
      return deny(field, `${addr} ends in .0 or .255, which IPPool "${pool.name}" avoids (avoidBuggyIPs)`, 'NOT_ALLOWED');
    }
    const a = availability(state, req, pool, ip, use);
    if (a.kind === 'taken') return deny(field, a.why, 'ADDRESS_TAKEN');
  }
  const quota = quotaProblem(state, req, pool!, ips);
  if (quota) return deny(field, quota, 'QUOTA_EXCEEDED');
  return { ok: true, pool: pool!.name, ips: sortByFamilies(ips, req.families), kept: false };
}

/**
 * Returns a reason when taking `ips` would put the namespace over the pool's per-namespace quota.
 * The one quota rule (the controller's overQuota counts the same way): every IPClaim of the pool
 * with a holder in the namespace counts, adopted or still in flight (chargedNamespaces).
 */
export function quotaProblem(state: AllocatorState, req: Pick<AllocationRequest, 'namespace' | 'name' | 'uid'>, pool: PoolModel, ips: IP[]): string | undefined {
  const cap = pool.quotaPerNamespace;
  if (cap === undefined) return undefined;
  const held = state.claims.heldByNamespace(pool.name, req.namespace);
  // Addresses only this Service holds in the pool are about to be replaced, so they do not count.
  const replaced = state.claims
    .claimsOfService(req.namespace, req.name)
    .filter((r) => r.pool === pool.name && r.holders.some((h) => isHolder(h, req)) && r.holders.every((h) => h.namespace !== req.namespace || isHolder(h, req)))
    .filter((r) => !ips.some((ip) => compareIP(ip, r.ip) === 0)).length;
  const added = ips.filter((ip) => {
    const r = state.claims.get(ip);
    return !r?.holders.some((h) => h.namespace === req.namespace);
  }).length;
  if (added === 0 || held - replaced + added <= cap) return undefined;
  return `namespace "${req.namespace}" already holds ${held} of the ${cap} addresses its quota allows from IPPool "${pool.name}"`;
}

/**
 * Returns a reason when recording `wanted` would give the namespace more unconfirmed claims than it
 * may hold: claims made for creates that the API server has not accepted (yet). Creates refused after
 * admission (a field validation error, AlreadyExists, a ResourceQuota) leave such claims behind until
 * they are released. Two bounds (README, Security): at most `cap` in the namespace, and never more in
 * a pool than that pool would have left free for everyone else, so refused creates of one namespace
 * can never take a pool's last addresses. Claims this Service already holds are taken back, not added.
 */
export function unconfirmedProblem(state: AllocatorState, who: { namespace: string; name: string; uid?: string | undefined }, cap: number, wanted: { ip: IP; pool: string }[]): string | undefined {
  const { claims } = state;
  const ownOn = (ip: IP) => claims.get(ip)?.holders.filter((h) => !h.uid && isHolder(h, who)).length ?? 0;
  const waiting = claims.unconfirmed(who.namespace) - wanted.reduce((n, w) => n + ownOn(w.ip), 0);
  if (waiting >= cap) {
    return `namespace "${who.namespace}" has ${waiting} address claims for Services the API server has not accepted (yet); at most ${cap} may wait at once (refused ones are released within a minute): retry shortly`;
  }
  for (const w of wanted) {
    if (claims.get(w.ip)) continue; // joining or keeping a claim takes no address
    const pool = state.pools.find((p) => p.name === w.pool);
    if (!pool) continue;
    const pending = BigInt(claims.unconfirmed(who.namespace, w.pool));
    const freeAfter = poolCapacity(pool, w.ip.family) - BigInt(claims.inUse(w.pool, w.ip.family)) - 1n;
    if (pending > freeAfter) {
      return `namespace "${who.namespace}" has address claims in IPPool "${w.pool}" for Services the API server has not accepted (yet), and the pool cannot spare more until they are (refused ones are released within a minute): retry shortly`;
    }
  }
  return undefined;
}

function allocateFromPools(state: AllocatorState, req: AllocationRequest, pools: PoolModel[], use: PoolUsage, named: boolean): AllocationResult {
  const reasons: string[] = [];
  for (const pool of pools) {
    let quotaReason: string | undefined;
    let missing: Family | undefined;
    for (const shape of shapesFor(req, pool)) {
      const ips: IP[] = [];
      missing = undefined;
      for (const family of shape) {
        const ip = pickAddress(state, req, pool, family, use);
        if (!ip) {
          missing = family;
          break;
        }
        ips.push(ip);
      }
      if (missing !== undefined) continue;
      quotaReason = quotaProblem(state, req, pool, ips);
      if (quotaReason) continue;
      return { ok: true, pool: pool.name, ips, kept: false };
    }
    if (quotaReason) reasons.push(`${quotaReason}`);
    else {
      const fam = missing ?? req.families[0] ?? 4;
      if (!pool.families.has(fam)) reasons.push(`IPPool "${pool.name}" has no ${familyName(fam)} addresses`);
      else {
        // No counts: how full a pool is tells one namespace about the others' Services.
        reasons.push(`IPPool "${pool.name}" has no free ${familyName(fam)} address`);
      }
    }
  }
  const field = named ? req.pool!.field : 'spec.type';
  const what = req.policy === 'RequireDualStack' ? 'an IPv4 and an IPv6 address' : `an ${familyName(req.families[0] ?? 4)} address`;
  const quotaOnly = reasons.every((r) => r.startsWith('namespace '));
  return deny(field, `cannot allocate ${what}: ${reasons.join('; ')}`, quotaOnly ? 'QUOTA_EXCEEDED' : 'POOL_EXHAUSTED');
}

/** This Service's own address of the family, an address shareable by key, or the lowest free one. */
function pickAddress(state: AllocatorState, req: AllocationRequest, pool: PoolModel, family: Family, use: PoolUsage): IP | undefined {
  for (const ip of req.current?.ips ?? []) {
    if (ip.family !== family || !poolContains(pool, ip) || (pool.avoidBuggyIPs && isBuggyIP(ip))) continue;
    if (availability(state, req, pool, ip, use).kind !== 'taken') return ip;
  }
  if (req.sharingKey) {
    for (const record of state.claims.claimsWithSharingKey(req.sharingKey)) {
      if (record.pool !== pool.name || record.ip.family !== family) continue;
      if (!poolContains(pool, record.ip)) continue;
      if (availability(state, req, pool, record.ip, use).kind === 'shareable') return record.ip;
    }
  }
  return req.spread === undefined ? lowestFree(state.claims, pool, family) : freeFrom(state.claims, pool, family, req.spread);
}

/** The first free address at or after `fraction` of the pool's addresses of `family`, wrapping around. */
export function freeFrom(claims: ClaimIndex, pool: PoolModel, family: Family, fraction: number): IP | undefined {
  const ranges = pool.ranges.filter((r) => r.family === family);
  const total = ranges.reduce((n, r) => n + (r.last - r.first + 1n), 0n);
  if (total === 0n) return undefined;
  let offset = (BigInt(Math.floor(Math.min(Math.max(fraction, 0), 1 - 2 ** -32) * 2 ** 32)) * total) >> 32n;
  for (const [i, r] of ranges.entries()) {
    const size = r.last - r.first + 1n;
    if (offset >= size) {
      offset -= size;
      continue;
    }
    for (const q of ranges.slice(i)) {
      const v = claims.nextFree(family, q === r ? r.first + offset : q.first, pool.avoidBuggyIPs);
      if (v <= q.last) return { family, value: v };
    }
    break;
  }
  return lowestFree(claims, pool, family);
}

export function lowestFree(claims: ClaimIndex, pool: PoolModel, family: Family): IP | undefined {
  for (const r of pool.ranges) {
    if (r.family !== family) continue;
    const v = claims.nextFree(family, r.first, pool.avoidBuggyIPs);
    if (v <= r.last) return { family, value: v };
  }
  return undefined;
}

export interface ExternalIPRequest {
  namespace: string;
  name: string;
  uid?: string | undefined;
  labels: Record<string, string> | undefined;
  namespaceLabels: Record<string, string> | undefined;
  sharingKey?: string | undefined;
  ports: ServicePortRef[];
  backend: string;
}

export type ExternalIPCheck = { ok: true; ip: IP; pool: string } | { ok: false; denial: Denial };

/** Checks one requested externalIP: inside an ExternalIP pool this Service may use, and not taken. */
export function checkExternalIP(state: AllocatorState, req: ExternalIPRequest, ip: IP, field: string): ExternalIPCheck {
  const use: PoolUsage = 'ExternalIP';
  const addr = formatIP(ip);
  const pool = state.pools.find((p) => poolContains(p, ip) && p.usage.has(use));
  const fail = (message: string, error: DenialError): ExternalIPCheck => ({
    ok: false,
    denial: { field, message, error },
  });
  if (!pool) return fail(`${addr} is outside the IPPools that serve externalIPs`, 'NOT_ALLOWED');
  if (pool.deleting || !poolAdmits(pool, { namespace: req.namespace, labels: req.labels, namespaceLabels: req.namespaceLabels })) {
    return fail(`${addr} is in IPPool "${pool.name}", which is not available to this Service in namespace "${req.namespace}"`, 'NOT_ALLOWED');
  }
  if (pool.avoidBuggyIPs && isBuggyIP(ip)) return fail(`${addr} ends in .0 or .255, which IPPool "${pool.name}" avoids (avoidBuggyIPs)`, 'NOT_ALLOWED');
  const a = availability(state, req, pool, ip, use);
  if (a.kind === 'taken') return fail(a.why, 'ADDRESS_TAKEN');
  return { ok: true, ip, pool: pool.name };
}

/** Picks externalIPs from a named ExternalIP pool for a Service that asked for one by pool. */
export function allocateExternalIPs(
  state: AllocatorState,
  req: ExternalIPRequest & { families: Family[]; policy: FamilyPolicy; pool: { name: string; field: string } },
): AllocationResult {
  const use: PoolUsage = 'ExternalIP';
  const pool = state.pools.find((p) => p.name === req.pool.name);
  const asLb: AllocationRequest = { ...req };
  const problem = namedPoolProblem(pool, asLb, use);
  if (problem) return problem;
  return allocateFromPools(state, asLb, [pool!], use, true);
}
