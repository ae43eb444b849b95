// The controller's decisions as pure functions of (Services with their verified assignments,
// claims, pools, clock). No I/O: the runtime (controller.ts) turns the answers into API writes, and
// the determinism tests run them over shuffled inputs.
import { WRITTEN_ANNOTATIONS } from '../config/annotations.ts';
import type { PoolUsage } from '../config/schemas.ts';
import type { AdmissionConfig } from '../config/webhook-config.ts';
import { formatIP, parseIP, type IP } from '../allocation/addresses.ts';
import { allocateLoadBalancer, checkExternalIP, isHolder, type AllocatorState } from '../allocation/allocator.ts';
import { chargedNamespaces, type ClaimRecord } from '../allocation/claim-index.ts';
import { readIntent, type ServiceIntent } from '../admission/service-intent.ts';
import type { Service } from '../kube/types.ts';
import type { Assignment } from '../signing/assignment.ts';

export interface ServiceView {
  key: string;
  namespace: string;
  name: string;
  service: Service;
  /** The Service's signed assignment, present only when its signature verifies for this Service. */
  assignment?: Assignment | undefined;
}

export const keyOf = (namespace: string, name: string) => `${namespace}/${name}`;

/** Oldest first, then by name: who wins when two Services compete for the last address. */
export function canonicalOrder(a: ServiceView, b: ServiceView): number {
  const ta = a.service.metadata.creationTimestamp ?? '';
  const tb = b.service.metadata.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

export interface PlanContext {
  state: AllocatorState;
  config: AdmissionConfig;
  namespaceLabels(namespace: string): Record<string, string> | undefined;
}

/** Whether admitlb manages the Service's LoadBalancer status (type LoadBalancer, our class or none). */
export function isOurLoadBalancer(service: Service, config: AdmissionConfig): boolean {
  const cls = service.spec?.loadBalancerClass;
  return service.spec?.type === 'LoadBalancer' && (cls === undefined || cls === null || cls === config.loadBalancerClass);
}

const hasWrittenAnnotations = (s: Service) => WRITTEN_ANNOTATIONS.some((k) => s.metadata.annotations?.[k] !== undefined);

/** Whether the claim lists this Service object (isHolder: the same uid once one is recorded). */
const holds = (record: ClaimRecord | undefined, view: ServiceView, use: PoolUsage) =>
  !!record?.holders.some((h) => h.use === use && isHolder(h, identityOf(view)));

const identityOf = (view: ServiceView) => ({ namespace: view.namespace, name: view.name, uid: view.service.metadata.uid });

const sameSet = (a: string[], b: string[]) => a.length === b.length && [...a].sort().join() === [...b].sort().join();

/**
 * Why the Service's recorded assignment does not stand as it is (undefined: it does). Anything
 * returned here makes the runtime converge the Service through the same decision the webhook makes.
 */
export function assignmentProblem(ctx: PlanContext, view: ServiceView): string | undefined {
  const { service, assignment: a } = view;
  if (service.metadata.deletionTimestamp) return undefined;
  const intent = readIntent(service, ctx.config);
  if ('error' in intent) return `${intent.field}: ${intent.message}`;
  const subject = subjectOf(ctx, view, intent);

  if (intent.isLoadBalancer) {
    if (!a || a.ips.length === 0) return hasWrittenAnnotations(service) && !a ? 'assignment does not verify' : 'no address assigned';
    let current: IP[];
    try {
      current = a.ips.map((t) => parseIP(t));
    } catch {
      return 'assignment names an invalid address';
    }
    // A signature counts only with the claim that lists the Service (a replayed answer has none).
    for (const ip of current) {
      if (!holds(ctx.state.claims.get(ip), view, 'LoadBalancer')) return `no IPClaim records ${formatIP(ip)} for this Service`;
    }
    const kept = allocateLoadBalancer(ctx.state, { ...subject, families: intent.families, policy: intent.policy, requested: intent.requested, pool: intent.pool, current: { ips: current, pool: a.pool } });
    if (!kept.ok || !kept.kept) return `assignment ${a.ips.join(',')} from IPPool "${a.pool}" no longer fits the pools or the Service`;
  } else if (a && a.ips.length > 0) {
    return 'the Service is no longer an admitlb LoadBalancer';
  } else if (!a && hasWrittenAnnotations(service)) {
    return 'assignment does not verify';
  }

  if (ctx.config.externalIPMode !== 'off') {
    const granted: string[] = [];
    for (const { text, field } of intent.externalIPs) {
      let ip: IP;
      try {
        ip = parseIP(text);
      } catch {
        return `${field}: not an IP address`;
      }
      const check = checkExternalIP(ctx.state, subject, ip, field);
      if (check.ok) granted.push(formatIP(ip));
      else if (ctx.config.externalIPMode === 'enforce') return `${check.denial.field}: ${check.denial.message}`;
    }
    if (!sameSet(granted, a?.externalIPs ?? [])) return 'externalIPs differ from the assignment';
    for (const text of granted) {
      if (!holds(ctx.state.claims.get(parseIP(text)), view, 'ExternalIP')) return `no IPClaim records externalIP ${text} for this Service`;
    }
  }
  return undefined;
}

function subjectOf(ctx: PlanContext, view: ServiceView, intent: ServiceIntent) {
  return {
    namespace: view.namespace,
    name: view.name,
    uid: view.service.metadata.uid,
    labels: view.service.metadata.labels,
    namespaceLabels: ctx.namespaceLabels(view.namespace),
    sharingKey: intent.sharingKey,
    ports: intent.ports,
    backend: intent.backend,
  };
}

/**
 * The status.loadBalancer.ingress addresses the Service should show, or undefined when the
 * controller must leave its status alone (not ours, or still converging).
 */
export function desiredIngress(ctx: PlanContext, view: ServiceView, problem: string | undefined, pending: boolean): string[] | undefined {
  const { service, assignment } = view;
  if (service.metadata.deletionTimestamp) return undefined;
  const current = currentIngress(service);
  if (!isOurLoadBalancer(service, ctx.config)) {
    // Another load balancer's Service keeps its status; a Service that stopped being a
    // LoadBalancer loses an address admitlb wrote.
    if (service.spec?.type === 'LoadBalancer' || current.length === 0) return undefined;
    return [];
  }
  if (problem === undefined) return assignment?.ips ?? [];
  if (pending) return [];
  return undefined;
}

export function currentIngress(service: Service): string[] {
  return (service.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? i.hostname ?? '');
}

export type ClaimAction =
  | { kind: 'adopt'; claim: string; namespace: string; name: string; uid: string }
  | { kind: 'release'; claim: string; address: string; namespace: string; name: string; why: string; serviceExists: boolean };

export interface ClaimPlan {
  actions: ClaimAction[];
  /** The earliest time an orphan's grace ends, to schedule the next look. */
  nextDeadline: number | undefined;
}

/**
 * Adoption and release of claim holders. A holder is kept while the verified assignment of the
 * Service object it records (isHolder) names the address; adopted (uid recorded) when that is so;
 * released at once when the controller saw that Service deleted; after `settleMs` when the Service in
 * the cache stopped using the address or is another object of the name; after `graceMs` when no
 * Service of the name is in the cache (an admission refused after the webhook claimed, or a crash
 * between the two, or a cache far behind).
 * `orphanSince` remembers when each unaccounted holder was first seen (updated in place).
 */
export function planClaims(
  records: Iterable<ClaimRecord>,
  services: ReadonlyMap<string, ServiceView>,
  orphanSince: Map<string, number>,
  now: number,
  graceMs: number,
  settleMs = 5_000,
  /** uids of Services whose deletion the controller saw: their holders go at once. */
  deletedUids: ReadonlySet<string> = new Set(),
): ClaimPlan {
  const actions: ClaimAction[] = [];
  let nextDeadline: number | undefined;
  const seen = new Set<string>();
  const sorted = [...records].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const record of sorted) {
    for (const h of record.holders) {
      const view = services.get(keyOf(h.namespace, h.name));
      const a = view?.assignment;
      const list = h.use === 'LoadBalancer' ? a?.ips : a?.externalIPs;
      // The assignment names the address and the holder is this very object (a holder that
      // recorded another uid belongs to a deleted or replaced Service of the same name).
      const held = !!list?.some((t) => sameAddress(t, record.ip)) && (!h.uid || h.uid === view!.service.metadata.uid);
      const orphanKey = `${record.name}|${h.namespace}/${h.name}`;
      if (held) {
        orphanSince.delete(orphanKey);
        const uid = view!.service.metadata.uid;
        if (uid && h.uid !== uid) actions.push({ kind: 'adopt', claim: record.name, namespace: h.namespace, name: h.name, uid });
        continue;
      }
      seen.add(orphanKey);
      const release = (why: string) =>
        actions.push({ kind: 'release', claim: record.name, address: record.address, namespace: h.namespace, name: h.name, why, serviceExists: !!view });
      if (h.uid && !view && deletedUids.has(h.uid)) {
        release(`Service ${h.namespace}/${h.name} was deleted`);
        continue;
      }
      const viewUid = view?.service.metadata.uid;
      if (h.uid && viewUid === h.uid && view!.service.metadata.deletionTimestamp) continue;
      // Not (yet) in the Service's assignment: an admission whose object is not stored yet, or a
      // cache that lags a write, looks the same for a moment. A holder whose Service is in the
      // cache waits `settleMs`: it was adopted and the Service stopped naming the address, or it
      // records another uid (the Service was replaced, or a create of an existing name was
      // refused after the validating phase committed it; the cache may also still show the object
      // a delete-and-create replaced). A holder whose Service is not in the cache waits the full
      // grace, committed or not: a create refused after validation (a ResourceQuota) and a Service
      // cache seconds behind under load look the same.
      const wait = h.uid && view ? settleMs : graceMs;
      const since = orphanSince.get(orphanKey) ?? now;
      orphanSince.set(orphanKey, since);
      if (now - since >= wait) {
        if (!h.uid) release(view ? `Service ${h.namespace}/${h.name} never recorded ${record.address}` : `Service ${h.namespace}/${h.name} never appeared`);
        else if (!view) release(`Service ${h.namespace}/${h.name} was not stored`);
        else if (viewUid && viewUid !== h.uid) release(`Service ${h.namespace}/${h.name} was replaced`);
        else release(`Service ${h.namespace}/${h.name} no longer uses ${record.address}`);
      } else {
        nextDeadline = Math.min(nextDeadline ?? Infinity, since + wait);
      }
    }
  }
  for (const k of orphanSince.keys()) if (!seen.has(k)) orphanSince.delete(k);
  return { actions, nextDeadline };
}

function sameAddress(text: string, ip: IP): boolean {
  try {
    const other = parseIP(text);
    return other.family === ip.family && other.value === ip.value;
  } catch {
    return false;
  }
}

/**
 * Services holding addresses beyond their namespace's quota in a pool (the quota was lowered, or
 * replicas raced): per (pool, namespace), the claims counted are exactly the webhook's
 * (quotaProblem: every claim with a holder in the namespace, chargedNamespaces). The oldest holders'
 * addresses stay within the quota; claims whose Service is not stored (yet) rank last, so a create in
 * flight never moves a stored Service; the holders of the others must move. Keys of those Services,
 * with the pool to name in the reason.
 */
export function overQuota(state: AllocatorState, services: ReadonlyMap<string, ServiceView>): Map<string, string> {
  const capped = new Map(state.pools.filter((p) => p.quotaPerNamespace !== undefined).map((p) => [p.name, p.quotaPerNamespace!]));
  const out = new Map<string, string>();
  if (capped.size === 0) return out;
  const groups = new Map<string, { record: ClaimRecord; holders: ServiceView[] }[]>();
  for (const record of state.claims.all()) {
    if (!capped.has(record.pool)) continue;
    for (const ns of chargedNamespaces(record)) {
      const holders = record.holders
        .filter((h) => h.namespace === ns)
        .map((h) => services.get(keyOf(h.namespace, h.name)))
        .filter((v): v is ServiceView => v !== undefined && holds(record, v, record.holders.find((h) => h.namespace === v.namespace && h.name === v.name)!.use))
        .sort(canonicalOrder);
      const g = `${record.pool}\0${ns}`;
      groups.set(g, [...(groups.get(g) ?? []), { record, holders }]);
    }
  }
  for (const [g, entries] of groups) {
    const pool = g.split('\0')[0]!;
    const cap = capped.get(pool)!;
    if (entries.length <= cap) continue;
    entries.sort((a, b) => {
      if (!a.holders.length || !b.holders.length) return (a.holders.length ? 0 : 1) - (b.holders.length ? 0 : 1) || (a.record.name < b.record.name ? -1 : 1);
      return canonicalOrder(a.holders[0]!, b.holders[0]!) || (a.record.name < b.record.name ? -1 : 1);
    });
    for (const e of entries.slice(cap)) for (const v of e.holders) out.set(v.key, pool);
  }
  return out;
}
