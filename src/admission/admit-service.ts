// The Service admission: read the intent, run the pure allocator, record the decision durably as
// IPClaims (the API server's create-uniqueness is the lock), sign it, and answer with a JSON patch of
// annotations (and spec.externalIPs when assigned from a pool). Idempotent: an object that already
// carries a valid assignment gets no patch, which is what reinvocation needs.
import { ERRORS } from '../errors.ts';
import { randomInt } from 'node:crypto';
import { ANN_ALLOCATION, ANN_ASSIGNED_IPS, ANN_ASSIGNED_POOL, WRITTEN_ANNOTATIONS } from '../config/annotations.ts';
import type { ClaimHolder, IPClaim, PoolUsage } from '../config/schemas.ts';
import { API_GROUP_VERSION } from '../config/schemas.ts';
import type { AdmissionConfig } from '../config/webhook-config.ts';
import { claimNameFor, familyName, formatIP, parseIP, type IP } from '../allocation/addresses.ts';
import {
  allocateExternalIPs,
  allocateLoadBalancer,
  availability,
  checkExternalIP,
  claimedBy,
  isHolder,
  unconfirmedProblem,
  type AllocatorState,
  type Denial,
} from '../allocation/allocator.ts';
import { poolCapacity } from '../allocation/pools.ts';
import { ApiRejectedError, ApiUnavailableError, type ClaimStore } from '../kube/cluster.ts';
import type { Service } from '../kube/types.ts';
import { signAssignment, verifyAssignment, type Assignment, type KeySet } from '../signing/assignment.ts';
import { denial, pointerEscape, serviceShapeSchema, type AdmissionOutcome, type AdmissionRequest, type JsonPatchOp } from './review.ts';
import { readIntent, type ServiceIntent } from './service-intent.ts';
import { adoptableStatus, statusAddresses, type StatusAdoption } from './adopt-status.ts';
import { parseIPSloppy } from './validate-service-status.ts';

export interface AdmissionDeps {
  state: AllocatorState & { applyClaim(claim: IPClaim): void };
  store: ClaimStore;
  keys: KeySet;
  config: AdmissionConfig;
  namespaceLabels(namespace: string): Record<string, string> | undefined;
  /**
   * Whether the namespace exists (the webhook's cache). A real API server never sends a review for
   * a namespace that does not exist (NamespaceLifecycle runs first): such a review is forged or
   * stale and must not allocate. Unset: not checked (the controller converges stored Services).
   */
  namespaceExists?(namespace: string): boolean;
  /**
   * Always the lowest free address, even right after a lost claim race. The controller sets it:
   * its decisions must depend on the cluster state alone (deterministic reconciliation).
   */
  deterministic?: boolean;
}

export interface AuditFields {
  /** error: the webhook could not decide (its own failure or the API's), as opposed to a policy denial. */
  decision: 'allowed' | 'denied' | 'skipped' | 'error';
  addresses?: string[] | undefined;
  pool?: string | undefined;
  reason?: string | undefined;
  /** the catalogue code (src/errors.ts) of a denial */
  error?: string | undefined;
  name?: string | undefined;
  namespace?: string | undefined;
}

/** A pool fuller than `poolWarnPercent` after an allocation: for the operator's log only. */
export interface PoolFill {
  pool: string;
  family: string;
  used: string;
  capacity: string;
  percent: number;
}

export type ServiceAdmission = AdmissionOutcome & {
  audit: AuditFields;
  nearlyFull?: PoolFill[];
  /** Set when an unchanged update was let through without an address: the reason it has none. */
  pending?: string;
  /** Set when the stored status showed addresses and the Service had no assignment: what was kept. */
  adoption?: { kept: string[]; refused: StatusAdoption['refused'] };
};

export class MalformedReviewError extends Error {}

interface Granted {
  lb: { pool: string; ips: IP[] } | undefined;
  /** Status addresses looked at for adoption: those kept (in lb) and those refused, with why. */
  adoption?: { kept: IP[]; refused: StatusAdoption['refused'] } | undefined;
  external: { ip: IP; pool: string }[];
  assignedExternal: boolean;
}

const deniedBy = (d: Denial, audit: Partial<AuditFields> = {}): ServiceAdmission => ({
  ...denial(ERRORS[d.error], `${d.field}: ${d.message}`),
  audit: { decision: 'denied', reason: `${d.field}: ${d.message}`, error: ERRORS[d.error].code, ...audit },
});

/**
 * When this replica last lost a claim race to another writer, per claim store. Replicas whose views
 * lag each other collide on every "lowest free" address under load; for a short while after a lost
 * race, allocation starts from a random point instead. A replica alone never loses a race (its own
 * in-flight claims are reserved in its index), so it keeps handing out the lowest free address.
 */
const lastLostRace = new WeakMap<ClaimStore, number>();
const CONTENDED_MS = 2000;

/** How long a namespace missing from the cache is waited for (an informer follows the API by ms). */
const NAMESPACE_LAG_MS = 1000;
/** How long a create waits for its namespace's unconfirmed claims to drop under the cap. */
const UNCONFIRMED_WAIT_MS = 2000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// kube-apiserver's generateName suffix alphabet (no vowels, no ambiguous characters).
const NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/**
 * `known` (the controller) passes the assignment it already verified, or null for none: the
 * decision then follows without awaiting anything, so decisions started in order are made in order.
 * `reallocate` drops the current assignment (the controller moves a Service over its pool's quota).
 * A Service without an assignment keeps the addresses its stored status shows when it may
 * (adopt-status.ts: taking over from MetalLB); only an update has a stored object, and the controller
 * passes `adoptStatus: false` for a status it did not find there at takeover.
 */
export async function admitService(
  deps: AdmissionDeps,
  request: AdmissionRequest,
  known?: { current: { assignment: Assignment; token: string } | null; reallocate?: boolean; adoptStatus?: boolean },
): Promise<ServiceAdmission> {
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') {
    return { allowed: true, audit: { decision: 'skipped', reason: `operation ${request.operation}` } };
  }
  const shape = serviceShapeSchema.safeParse(request.object);
  if (!shape.success) {
    const issue = shape.error.issues[0]!;
    throw new MalformedReviewError(`request.object is not a Service: ${['object', ...issue.path].join('.')}: ${issue.message}`);
  }
  const service = request.object as unknown as Service;
  const patch: JsonPatchOp[] = [];
  const namespace = request.namespace || service.metadata.namespace || 'default';
  let name = service.metadata.name || request.name || '';
  if (!name) {
    // A generateName create has no name during mutating admission; the assignment must name the
    // Service, so admitlb chooses the name the API server would have (same alphabet and length).
    if (!service.metadata.generateName) return deniedBy({ field: 'metadata.name', message: 'name or generateName is required', error: 'BAD_REQUEST' });
    name = service.metadata.generateName + Array.from({ length: 5 }, () => NAME_ALPHABET[randomInt(NAME_ALPHABET.length)]).join('');
    patch.push({ op: 'add', path: '/metadata/name', value: name });
  }
  const who = { namespace, name };

  if (deps.namespaceExists && !(await waitFor(() => deps.namespaceExists!(namespace), NAMESPACE_LAG_MS))) {
    return deniedBy({ field: 'metadata.namespace', message: `namespace "${namespace}" does not exist`, error: 'NAMESPACE_NOT_FOUND' }, who);
  }

  const intent = readIntent(service, deps.config);
  if ('error' in intent) return deniedBy(intent, who);
  const warnings = [...intent.warnings];

  // Which Service object this is (isHolder): on an update the live object's uid (the request body
  // may lack it); a create has none yet, so it is never an existing holder, whatever name it gives.
  const oldUid = (request.oldObject as unknown as Service | null | undefined)?.metadata?.uid;
  const uid = deps.deterministic ? service.metadata.uid : request.operation === 'UPDATE' ? (oldUid ?? service.metadata.uid) : undefined;
  const verified = known ? (known.current ?? undefined) : await currentAssignment(deps, service, request.oldObject as unknown as Service | null | undefined, who);
  const current = known?.reallocate ? undefined : (verified ?? ownClaims(deps, { ...who, uid }));
  const nsLabels = deps.namespaceLabels(namespace);
  // The controller converges Services that exist: it records their uid in the claim at once. The
  // webhook's holders record none until the validating phase commits them (commit-service.ts).
  const holderUid = deps.deterministic ? service.metadata.uid : undefined;
  const subject: Subject = { ...who, uid, holderUid, labels: service.metadata.labels, namespaceLabels: nsLabels, sharingKey: intent.sharingKey, ports: intent.ports, backend: intent.backend };
  // The stored object's status only: a request body's status is dropped by the API server after
  // admission, so it is whatever the requester wrote.
  const statusIPs = request.operation === 'UPDATE' && !known?.reallocate && known?.adoptStatus !== false ? statusAddresses(request.oldObject as unknown as Service | null | undefined) : [];

  let granted: Granted | undefined;
  for (let attempt = 0; attempt < deps.config.claimRetries && !granted; attempt++) {
    // Right after a lost claim race, start from a random point of the pool (AllocationRequest.spread).
    const contended = !deps.deterministic && (attempt > 0 || Date.now() - (lastLostRace.get(deps.store) ?? -Infinity) < CONTENDED_MS);
    const decided = decide(deps, intent, subject, current, warnings, contended ? Math.random() : undefined, current ? [] : statusIPs);
    if ('error' in decided) {
      // An update that does not change what the Service asks for is never rejected for allocation
      // reasons (a pool shrank, its address was taken while it was unassigned): rejecting it would
      // block every unrelated edit, including the controller's own clean-up. The Service stays
      // without an address (annotations removed) and the warning says why.
      if (request.operation === 'UPDATE' && intentUnchanged(deps, intent, request.oldObject as unknown as Service | null | undefined)) {
        const reason = `${decided.field}: ${decided.message}`;
        return {
          allowed: true,
          patch: [...patch, ...annotationPatch(service.metadata.annotations, { [ANN_ASSIGNED_IPS]: undefined, [ANN_ASSIGNED_POOL]: undefined, [ANN_ALLOCATION]: undefined })],
          warnings: [...warnings, `no address assigned: ${reason}`],
          pending: reason,
          audit: { decision: 'allowed', reason: `pending: ${reason}`, ...who },
        };
      }
      return deniedBy(decided, who);
    }
    if (request.dryRun) {
      granted = decided;
      break;
    }
    if (!deps.deterministic && addsHolder(deps, decided, subject)) {
      const cap = deps.config.maxUnconfirmedClaims;
      const wanted = [...(decided.lb?.ips.map((ip) => ({ ip, pool: decided.lb!.pool })) ?? []), ...decided.external];
      let problem = unconfirmedProblem(deps.state, subject, cap, wanted);
      if (problem && (await waitFor(() => !unconfirmedProblem(deps.state, subject, cap, wanted), UNCONFIRMED_WAIT_MS))) problem = undefined;
      if (problem) {
        return { ...denial(ERRORS.TOO_MANY_UNCONFIRMED, `spec: ${problem}`), audit: { decision: 'denied', reason: problem, error: ERRORS.TOO_MANY_UNCONFIRMED.code, ...who } };
      }
    }
    try {
      if (await claimAll(deps, decided, subject, intent)) granted = decided;
      else lastLostRace.set(deps.store, Date.now());
    } catch (err) {
      if (err instanceof ApiRejectedError) {
        // The claim itself was refused (validation, another admission step, RBAC): the same request
        // would be refused again, so it is a denial with the API's words, not an outage.
        const refused = { ...ERRORS.CLAIM_REFUSED, ...(err.status >= 400 && err.status < 500 ? { status: err.status } : {}), ...(err.reason ? { reason: err.reason } : {}) };
        return {
          ...denial(refused, `admitlb cannot record the address claim: the API server refused it: ${err.apiMessage}`),
          audit: { decision: 'denied', reason: `claim refused by the API: ${err.apiMessage}`, error: refused.code, ...who },
        };
      }
      if (err instanceof ApiUnavailableError) {
        return {
          ...denial(ERRORS.API_UNAVAILABLE, `admitlb cannot record the address claim: the Kubernetes API is unreachable (${err.message}); retry shortly`),
          audit: { decision: 'error', reason: `API unavailable: ${err.message}`, error: ERRORS.API_UNAVAILABLE.code, ...who },
        };
      }
      throw err;
    }
  }
  if (!granted) {
    return deniedBy({ field: 'spec', message: `could not claim an address after ${deps.config.claimRetries} attempts (other Services are being created concurrently); retry`, error: 'CLAIM_CONTENDED' }, who);
  }

  // The signed assignment: reused when nothing changed, so reinvocation yields no patch.
  const assignment: Assignment = {
    ...who,
    ips: granted.lb?.ips.map(formatIP) ?? [],
    pool: granted.lb?.pool ?? '',
    externalIPs: granted.external.map((e) => formatIP(e.ip)),
  };
  const hasAssignment = assignment.ips.length > 0 || assignment.externalIPs.length > 0;
  const annotations = service.metadata.annotations;
  let desired: Record<string, string | undefined> = { [ANN_ASSIGNED_IPS]: undefined, [ANN_ASSIGNED_POOL]: undefined, [ANN_ALLOCATION]: undefined };
  if (hasAssignment) {
    const existing = annotations?.[ANN_ALLOCATION];
    const kept = existing && current?.token === existing && sameAssignment(current.assignment, assignment) ? existing : undefined;
    // A dry run shows the address but signs nothing new: an answer that claimed nothing must not
    // carry a signature that could be replayed on a real create (README, Security).
    const token = kept ?? (request.dryRun ? undefined : await signAssignment(deps.keys, assignment));
    desired = {
      [ANN_ASSIGNED_IPS]: [...assignment.ips, ...assignment.externalIPs].join(','),
      [ANN_ASSIGNED_POOL]: assignment.pool || [...new Set(granted.external.map((e) => e.pool))].join(','),
      [ANN_ALLOCATION]: token,
    };
  }
  patch.push(...annotationPatch(annotations, desired));
  if (granted.assignedExternal) {
    patch.push({ op: service.spec?.externalIPs ? 'replace' : 'add', path: '/spec/externalIPs', value: assignment.externalIPs });
  }
  // Pool fill goes to the operator's log, never into the answer: it would tell any namespace how
  // many addresses the others hold.
  const nearlyFull = request.dryRun ? [] : poolsNearlyFull(deps, granted);
  const adoption = granted.adoption ? { kept: granted.adoption.kept.map(formatIP), refused: granted.adoption.refused } : undefined;
  for (const r of adoption?.refused ?? []) warnings.push(`status.loadBalancer.ingress ${r.address} not kept: ${r.why}`);

  return {
    allowed: true,
    patch,
    warnings,
    ...(nearlyFull.length ? { nearlyFull } : {}),
    ...(adoption ? { adoption } : {}),
    audit: {
      decision: 'allowed',
      addresses: [...assignment.ips, ...assignment.externalIPs],
      pool: desired[ANN_ASSIGNED_POOL],
      reason:
        granted.lb && current && granted.lb.ips.length && sameAssignment(current.assignment, assignment)
          ? 'kept'
          : adoption?.kept.length
            ? `adopted ${adoption.kept.join(',')} from status`
            : hasAssignment
              ? 'assigned'
              : 'nothing to assign',
      ...who,
    },
  };
}

interface CurrentAssignment {
  assignment: Assignment;
  token: string;
}

/** The Service's existing assignment, trusted only when its signature verifies for this Service. */
async function currentAssignment(
  deps: AdmissionDeps,
  service: Service,
  oldService: Service | null | undefined,
  who: { namespace: string; name: string },
): Promise<CurrentAssignment | undefined> {
  // A replace or apply may drop the annotations: the old object's assignment still stands.
  for (const candidate of [service, oldService]) {
    const token = candidate?.metadata?.annotations?.[ANN_ALLOCATION];
    if (!token) continue;
    try {
      const a = await verifyAssignment(deps.keys, token, who);
      return { assignment: a, token };
    } catch {
      // Forged, stale-keyed or foreign: treated as absent; the decision overwrites it.
    }
  }
  return undefined;
}

/**
 * The LoadBalancer addresses whose claims already list this Service object, as an assignment to
 * keep: a create retried after the API refused it (or an object whose annotations were dropped)
 * takes back what it holds instead of claiming more. They count for its namespace already.
 */
function ownClaims(deps: AdmissionDeps, who: { namespace: string; name: string; uid: string | undefined }): CurrentAssignment | undefined {
  const records = deps.state.claims.claimsOfService(who.namespace, who.name).filter((r) => r.holders.some((h) => h.use === 'LoadBalancer' && isHolder(h, who)));
  if (records.length === 0 || records.some((r) => r.pool !== records[0]!.pool)) return undefined;
  return { assignment: { namespace: who.namespace, name: who.name, ips: records.map((r) => r.address), pool: records[0]!.pool, externalIPs: [] }, token: '' };
}

/** Whether the old object asked for exactly what the new one asks for (addresses, pool, ports...). */
function intentUnchanged(deps: AdmissionDeps, intent: ServiceIntent, old: Service | null | undefined): boolean {
  if (!old?.metadata) return false;
  const before = readIntent(old, deps.config);
  if ('error' in before) return false;
  const relevant = (i: ServiceIntent) =>
    JSON.stringify([
      i.isLoadBalancer,
      i.families,
      i.policy,
      i.requested?.ips.map(formatIP) ?? [],
      i.pool?.name ?? '',
      i.sharingKey ?? '',
      i.ports.map((p) => `${p.protocol}/${p.port}`).sort(),
      i.backend,
      i.externalIPs.map((e) => e.text),
    ]);
  return relevant(before) === relevant(intent);
}

const sameIP = (a: IP | undefined, b: IP) => !!a && a.family === b.family && a.value === b.value;

function sameAssignment(a: Assignment, b: Assignment): boolean {
  return a.namespace === b.namespace && a.name === b.name && a.pool === b.pool && a.ips.join() === b.ips.join() && a.externalIPs.join() === b.externalIPs.join();
}

type Subject = { namespace: string; name: string; uid?: string | undefined; holderUid?: string | undefined; labels: Record<string, string> | undefined; namespaceLabels: Record<string, string> | undefined; sharingKey?: string | undefined; ports: ServiceIntent['ports']; backend: string };

function decide(deps: AdmissionDeps, intent: ServiceIntent, subject: Subject, current: CurrentAssignment | undefined, warnings: string[], spread: number | undefined, statusIPs: readonly string[]): Granted | Denial {
  const { state, config } = deps;
  let lb: Granted['lb'];
  let adoption: Granted['adoption'];
  if (intent.isLoadBalancer && statusIPs.length > 0) {
    // Taking over: the status addresses that may be kept are the Service's "current" ones, from
    // their pool; the allocator fills a family the status lacks from that pool. When that fails (a
    // family the pool lacks), the Service is decided as if its status were empty.
    const request = { ...subject, families: intent.families, policy: intent.policy, requested: intent.requested, pool: intent.pool };
    const found = adoptableStatus(state, request, statusIPs);
    adoption = { kept: [], refused: found.refused };
    if (found.keep) {
      const result = allocateLoadBalancer(state, { ...request, pool: { name: found.keep.pool, field: 'status.loadBalancer.ingress' }, current: found.keep });
      if (result.ok) lb = { pool: result.pool, ips: result.ips };
      else {
        adoption.refused = [...adoption.refused, ...found.keep.ips.map((ip) => ({ address: formatIP(ip), why: result.denial.message }))];
      }
    }
  }
  if (intent.isLoadBalancer && !lb) {
    const currentIPs = current?.assignment.ips.map((t) => parseIP(t));
    const result = allocateLoadBalancer(state, {
      ...subject,
      families: intent.families,
      policy: intent.policy,
      requested: intent.requested,
      pool: intent.pool,
      current: currentIPs && currentIPs.length > 0 ? { ips: currentIPs, pool: current!.assignment.pool } : undefined,
      ...(spread !== undefined ? { spread } : {}),
    });
    if (!result.ok) {
      // Why the status addresses were not kept is part of why the Service has none.
      if (!adoption?.refused.length) return result.denial;
      const notKept = adoption.refused.map((r) => `${r.address}: ${r.why}`).join('; ');
      return { ...result.denial, message: `${result.denial.message} (status.loadBalancer.ingress not kept: ${notKept})` };
    }
    lb = { pool: result.pool, ips: result.ips };
  }
  // Kept: the status addresses the Service ends up with (an explicit request that MetalLB honoured
  // is kept through the request itself).
  if (adoption && lb) adoption.kept = lb.ips.filter((ip) => statusIPs.some((t) => sameIP(parseIPSloppy(t), ip)));

  const external: Granted['external'] = [];
  let assignedExternal = false;
  if (config.externalIPMode !== 'off') {
    if (intent.externalIPs.length > 0) {
      for (const { text, field } of intent.externalIPs) {
        let ip: IP;
        try {
          ip = parseIP(text);
        } catch (err) {
          return { field, message: (err as Error).message, error: 'BAD_REQUEST' };
        }
        const check = checkExternalIP(state, subject, ip, field);
        if (check.ok) external.push({ ip, pool: check.pool });
        else if (config.externalIPMode === 'enforce') return check.denial;
        else warnings.push(`${check.denial.field}: ${check.denial.message} (allowed: externalIP mode is warn)`);
      }
    } else if (!intent.isLoadBalancer && intent.pool) {
      const result = allocateExternalIPs(state, { ...subject, families: intent.families, policy: intent.policy, pool: intent.pool });
      if (!result.ok) return result.denial;
      for (const ip of result.ips) external.push({ ip, pool: result.pool });
      assignedExternal = true;
    }
  }
  return { lb, external, assignedExternal, adoption };
}

/**
 * Records every granted address as an IPClaim holder. Returns false when another writer got there
 * first: the index is refreshed from the API's answer and the caller decides again.
 */
async function claimAll(deps: AdmissionDeps, granted: Granted, subject: Subject, intent: ServiceIntent): Promise<boolean> {
  const wanted: { ip: IP; pool: string; use: PoolUsage }[] = [
    ...(granted.lb?.ips.map((ip) => ({ ip, pool: granted.lb!.pool, use: 'LoadBalancer' as const })) ?? []),
    ...granted.external.map((e) => ({ ...e, use: 'ExternalIP' as const })),
  ];
  // Reserve every free address in this replica's index before the first write: concurrent
  // admissions in this process then pick other addresses instead of racing for these (both
  // families of a dual-stack Service included).
  const reserved = new Set<string>();
  for (const w of wanted) {
    if (deps.state.claims.get(w.ip)) continue;
    const name = claimNameFor(w.ip);
    deps.state.applyClaim(buildClaim(name, w.ip, w.pool, subject.sharingKey, [holderFor(subject, w.use, intent)]));
    reserved.add(name);
  }
  try {
    for (const w of wanted) {
      if (!(await claimOne(deps, w, subject, intent, reserved))) return false;
    }
    return true;
  } finally {
    // Reservations that were never written (a lost race, an error) are given back.
    for (const name of reserved) {
      if (deps.state.claims.getByName(name)?.resourceVersion === undefined) deps.state.claims.remove(name);
    }
  }
}

function holderFor(subject: Subject, use: PoolUsage, intent: ServiceIntent): ClaimHolder {
  return { namespace: subject.namespace, name: subject.name, ...(subject.holderUid ? { uid: subject.holderUid } : {}), use, ports: intent.ports, backend: intent.backend };
}

/** Whether recording `granted` adds a holder for this Service that no claim lists yet. */
function addsHolder(deps: AdmissionDeps, granted: Granted, subject: Subject): boolean {
  const wanted = [...(granted.lb?.ips.map((ip) => ({ ip, use: 'LoadBalancer' as const })) ?? []), ...granted.external.map((e) => ({ ip: e.ip, use: 'ExternalIP' as const }))];
  return wanted.some((w) => !claimedBy(deps.state, subject, w.ip, w.use));
}

/** Polls `ok` until it holds or `ms` pass; true when it held. */
async function waitFor(ok: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (ok()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(10);
  }
}

async function claimOne(deps: AdmissionDeps, w: { ip: IP; pool: string; use: PoolUsage }, subject: Subject, intent: ServiceIntent, reserved: Set<string>): Promise<boolean> {
  const { state, store } = deps;
  const holder = holderFor(subject, w.use, intent);
  const name = claimNameFor(w.ip);
  const record = reserved.has(name) ? undefined : state.claims.get(w.ip);
  if (!record) {
    const claim = buildClaim(name, w.ip, w.pool, subject.sharingKey, [holder]);
    const result = await store.create(claim);
    reserved.delete(name);
    if (result.ok) {
      state.applyClaim(result.claim);
      return true;
    }
    if (result.current) state.applyClaim(result.current);
    else state.claims.remove(name);
    return false;
  }
  const pool = state.pools.find((p) => p.name === record.pool);
  const avail = pool ? availability(state, subject, pool, w.ip, w.use) : { kind: 'taken' as const, why: '' };
  if (avail.kind === 'taken') return false;
  // Only this Service object's own entry is replaced; every other holder (another Service, or an
  // older object of the same name) stays exactly as it is, sharing key and ports included.
  const others = record.holders.filter((h) => !isHolder(h, subject));
  const mine = record.holders.find((h) => isHolder(h, subject));
  if (mine && sameHolder(mine, holder) && (record.sharingKey ?? '') === (subject.sharingKey ?? '')) return true;
  const updated = buildClaim(name, w.ip, record.pool, subject.sharingKey ?? record.sharingKey, [...others, { ...holder, uid: holder.uid ?? mine?.uid }]);
  updated.metadata.resourceVersion = record.resourceVersion;
  const result = await store.update(updated);
  if (result.ok) {
    state.applyClaim(result.claim);
    return true;
  }
  const fresh = await store.get(name);
  if (fresh) state.applyClaim(fresh);
  else state.claims.remove(name);
  return false;
}

function sameHolder(a: ClaimHolder, b: ClaimHolder): boolean {
  const ports = (h: ClaimHolder) => h.ports.map((p) => `${p.protocol}/${p.port}`).sort().join();
  return a.use === b.use && a.backend === b.backend && ports(a) === ports(b);
}

export function buildClaim(name: string, ip: IP, pool: string, sharingKey: string | undefined, holders: ClaimHolder[]): IPClaim {
  return {
    apiVersion: API_GROUP_VERSION,
    kind: 'IPClaim',
    metadata: { name, labels: { 'admitlb.io/pool': pool, 'admitlb.io/family': familyName(ip.family) } },
    spec: {
      address: formatIP(ip),
      pool,
      ...(sharingKey ? { sharingKey } : {}),
      holders: holders.map((h) => (h.uid ? h : { namespace: h.namespace, name: h.name, use: h.use, ports: h.ports, backend: h.backend })),
      heldBy: holders.map((h) => `${h.namespace}/${h.name}`).join(','),
    },
  };
}

/** JSON patch ops that make admitlb's annotations equal `desired` (undefined = absent). */
function annotationPatch(annotations: Record<string, string> | undefined, desired: Record<string, string | undefined>): JsonPatchOp[] {
  const wanted = Object.entries(desired).filter(([, v]) => v !== undefined) as [string, string][];
  if (!annotations) {
    // `/metadata/annotations/x` cannot be added when `annotations` is absent: add the whole map.
    return wanted.length ? [{ op: 'add', path: '/metadata/annotations', value: Object.fromEntries(wanted) }] : [];
  }
  const ops: JsonPatchOp[] = [];
  for (const key of WRITTEN_ANNOTATIONS) {
    const want = desired[key];
    const have = annotations[key];
    const path = `/metadata/annotations/${pointerEscape(key)}`;
    if (want === undefined && have !== undefined) ops.push({ op: 'remove', path });
    else if (want !== undefined && have === undefined) ops.push({ op: 'add', path, value: want });
    else if (want !== undefined && have !== want) ops.push({ op: 'replace', path, value: want });
  }
  return ops;
}

function poolsNearlyFull(deps: AdmissionDeps, granted: Granted): PoolFill[] {
  const seen = new Set<string>();
  const out: PoolFill[] = [];
  const entries: { pool: string; ip: IP }[] = [
    ...(granted.lb?.ips.map((ip) => ({ pool: granted.lb!.pool, ip })) ?? []),
    ...granted.external,
  ];
  for (const { pool: poolName, ip } of entries) {
    const key = `${poolName}/${ip.family}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const pool = deps.state.pools.find((p) => p.name === poolName);
    if (!pool) continue;
    const cap = poolCapacity(pool, ip.family);
    const used = BigInt(deps.state.claims.inUse(poolName, ip.family));
    if (cap > 0n && used * 100n > cap * BigInt(deps.config.poolWarnPercent)) {
      out.push({ pool: poolName, family: familyName(ip.family), used: String(used), capacity: String(cap), percent: Number((used * 100n) / cap) });
    }
  }
  return out;
}

