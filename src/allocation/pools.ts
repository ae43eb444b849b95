// Compiles IPPool objects into the allocator's model, and checks them the way the validating
// webhook does: every problem names the field it comes from.
import type { IPPool, LabelSelector, PoolUsage } from '../config/schemas.ts';
import { ipPoolSpecSchema } from '../config/schemas.ts';
import {
  AddressError,
  countBuggy,
  formatIP,
  parseRange,
  rangeSize,
  rangesOverlap,
  type AddressRange,
  type Family,
  type IP,
} from './addresses.ts';

export interface PoolModel {
  name: string;
  /** Sorted by family, then first address; never overlapping. */
  ranges: AddressRange[];
  families: Set<Family>;
  autoAssign: boolean;
  avoidBuggyIPs: boolean;
  usage: Set<PoolUsage>;
  priority: number | undefined;
  namespaces: string[] | undefined;
  namespaceSelectors: LabelSelector[] | undefined;
  serviceSelectors: LabelSelector[] | undefined;
  quotaPerNamespace: number | undefined;
  crossNamespace: boolean;
  deleting: boolean;
}

export interface FieldProblem {
  field: string;
  message: string;
}

export class PoolInvalidError extends Error {
  constructor(readonly problems: FieldProblem[]) {
    super(problems.map((p) => `${p.field}: ${p.message}`).join('; '));
  }
}

const MAPPED_FIRST = 0xffffn << 32n;
const MAPPED_LAST = MAPPED_FIRST | 0xffffffffn;

/** Parses and checks one pool on its own (overlaps with other pools are checked separately). */
export function compilePool(pool: IPPool): PoolModel {
  const problems: FieldProblem[] = [];
  const parsed = ipPoolSpecSchema.safeParse(pool.spec);
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      problems.push({ field: ['spec', ...issue.path].map(String).join('.').replace(/\.(\d+)/g, '[$1]'), message: issue.message });
    }
    throw new PoolInvalidError(problems);
  }
  const spec = parsed.data;
  const ranges: AddressRange[] = [];
  spec.addresses.forEach((text, i) => {
    try {
      const r = parseRange(text);
      // ::ffff:0:0/96 are IPv4 addresses in IPv6 form: not IPs to Kubernetes' CEL IP library, so the
      // IPClaim CRD's name rule refuses claims for them (and kube-proxy would read them as IPv4).
      if (r.family === 6 && r.first <= MAPPED_LAST && MAPPED_FIRST <= r.last) {
        problems.push({ field: `spec.addresses[${i}]`, message: `"${text}" includes IPv4-mapped IPv6 addresses (::ffff:0:0/96); use the IPv4 addresses` });
        return;
      }
      ranges.push(r);
    } catch (err) {
      problems.push({ field: `spec.addresses[${i}]`, message: (err as Error).message });
    }
  });
  ranges.sort((a, b) => a.family - b.family || (a.first < b.first ? -1 : a.first > b.first ? 1 : 0));
  for (let i = 1; i < ranges.length; i++) {
    const prev = ranges[i - 1]!;
    const cur = ranges[i]!;
    if (rangesOverlap(prev, cur)) {
      problems.push({
        field: 'spec.addresses',
        message: `entries overlap at ${formatIP({ family: cur.family, value: cur.first })}`,
      });
    }
  }
  if (problems.length) throw new PoolInvalidError(problems);
  const allocateTo = spec.allocateTo ?? {};
  return {
    name: pool.metadata.name ?? '',
    ranges,
    families: new Set(ranges.map((r) => r.family)),
    autoAssign: spec.autoAssign,
    avoidBuggyIPs: spec.avoidBuggyIPs,
    usage: new Set(spec.usage),
    priority: allocateTo.priority,
    // An empty list means the same as an absent one (MetalLB's semantics).
    namespaces: nonEmpty(allocateTo.namespaces),
    namespaceSelectors: nonEmpty(allocateTo.namespaceSelectors),
    serviceSelectors: nonEmpty(allocateTo.serviceSelectors),
    quotaPerNamespace: spec.quota?.perNamespace,
    crossNamespace: spec.sharing?.crossNamespace ?? false,
    deleting: Boolean(pool.metadata.deletionTimestamp),
  };
}

const nonEmpty = <T>(list: T[] | undefined): T[] | undefined => (list && list.length > 0 ? list : undefined);

/** Pools that overlap `pool`, as field problems naming the entry of `pool` that overlaps. */
export function overlapsWith(pool: PoolModel, others: PoolModel[], addresses: string[]): FieldProblem[] {
  const problems: FieldProblem[] = [];
  addresses.forEach((text, i) => {
    let range: AddressRange;
    try {
      range = parseRange(text);
    } catch {
      return;
    }
    for (const other of others) {
      if (other.name === pool.name) continue;
      if (other.ranges.some((r) => rangesOverlap(r, range))) {
        problems.push({ field: `spec.addresses[${i}]`, message: `${text} overlaps pool "${other.name}"` });
      }
    }
  });
  return problems;
}

export function poolContains(pool: PoolModel, ip: IP): boolean {
  return pool.ranges.some((r) => r.family === ip.family && r.first <= ip.value && ip.value <= r.last);
}

/** Assignable addresses per family (excluding .0/.255 when the pool avoids them). */
export function poolCapacity(pool: PoolModel, family: Family): bigint {
  let total = 0n;
  for (const r of pool.ranges) {
    if (r.family !== family) continue;
    total += rangeSize(r) - (pool.avoidBuggyIPs ? countBuggy(r) : 0n);
  }
  return total;
}

/** Deterministic pool order: by priority (unset last), ties by name. */
export function comparePools(a: PoolModel, b: PoolModel): number {
  const pa = a.priority ?? Number.POSITIVE_INFINITY;
  const pb = b.priority ?? Number.POSITIVE_INFINITY;
  if (pa !== pb) return pa < pb ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export function matchesSelector(labels: Record<string, string> | undefined, selector: LabelSelector): boolean {
  const l = labels ?? {};
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (l[k] !== v) return false;
  for (const req of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(l, req.key);
    const values = req.values ?? [];
    switch (req.operator) {
      case 'In':
        if (!has || !values.includes(l[req.key]!)) return false;
        break;
      case 'NotIn':
        if (has && values.includes(l[req.key]!)) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
    }
  }
  return true;
}

/** MetalLB's semantics: namespaces OR namespaceSelectors (if either is set), AND serviceSelectors. */
export function poolAdmits(
  pool: PoolModel,
  svc: { namespace: string; labels: Record<string, string> | undefined; namespaceLabels: Record<string, string> | undefined },
): boolean {
  if (pool.namespaces !== undefined || pool.namespaceSelectors !== undefined) {
    const listed = pool.namespaces?.includes(svc.namespace) ?? false;
    const selected = (pool.namespaceSelectors ?? []).some((s) => matchesSelector(svc.namespaceLabels, s));
    if (!listed && !selected) return false;
  }
  if (pool.serviceSelectors !== undefined) {
    if (!pool.serviceSelectors.some((s) => matchesSelector(svc.labels, s))) return false;
  }
  return true;
}

export { AddressError };
