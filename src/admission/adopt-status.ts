// Taking over from another load balancer implementation (MetalLB) without renumbering: a LoadBalancer
// Service that admitlb has not assigned yet keeps the address its status.loadBalancer.ingress already
// shows, when that address is one admitlb could give it and no other Service holds it.
//
// Why the status can be trusted at all: only writers of services/status set it (a tenant with `edit`
// cannot), and once admitlb is installed its services-status webhook refuses anyone else who adds an
// address of an admitlb pool. The callers pass the stored object's status only, never the one of a
// request body: on an update (or create) the API server drops the body's status after admission, so a
// status in a body is whatever the requester typed.
import { familyName, formatIP, isBuggyIP, type Family, type IP } from '../allocation/addresses.ts';
import { availability, quotaProblem, type AllocationRequest, type AllocatorState } from '../allocation/allocator.ts';
import { poolAdmits, poolContains } from '../allocation/pools.ts';
import type { Service } from '../kube/types.ts';
import { parseIPSloppy } from './validate-service-status.ts';

export interface StatusAdoption {
  /** The addresses to keep, at most one per family, all from one pool; undefined: none. */
  keep: { pool: string; ips: IP[] } | undefined;
  /** The status addresses not kept, each with the reason (for the Service's Event and the log). */
  refused: { address: string; why: string }[];
}

/** The ingress IPs of a stored Service (hostnames are not addresses admitlb assigns). */
export function statusAddresses(service: Service | null | undefined): string[] {
  const ingress = service?.status?.loadBalancer?.ingress;
  return Array.isArray(ingress) ? ingress.map((i) => i?.ip).filter((ip): ip is string => typeof ip === 'string' && ip !== '') : [];
}

type Request = Omit<AllocationRequest, 'current' | 'spread'>;

/**
 * Which of `statusIPs` the Service may keep. Each family is judged on its own: an address is kept
 * when it lies in a pool the allocator could give this Service (its named pool, else an autoAssign
 * pool that admits it; in use, not being deleted, not an avoided .0/.255), the Service does not ask
 * for other addresses, and its IPClaim is absent or lists this Service (or could list it beside its
 * holders by sharing key, exactly as a new Service with that key would share it). An address another
 * Service holds is never taken: the first holder wins.
 */
export function adoptableStatus(state: AllocatorState, req: Request, statusIPs: readonly string[]): StatusAdoption {
  const refused: StatusAdoption['refused'] = [];
  const families = new Set<Family>(req.policy === 'SingleStack' ? [req.families[0] ?? 4] : [4, 6]);
  const byFamily = new Map<Family, IP>();
  for (const text of statusIPs) {
    const ip = parseIPSloppy(text);
    if (!ip) {
      refused.push({ address: text, why: 'not an IP address' });
      continue;
    }
    if (byFamily.has(ip.family)) {
      refused.push({ address: text, why: `the status already shows ${formatIP(byFamily.get(ip.family)!)} for ${familyName(ip.family)}` });
      continue;
    }
    if (!families.has(ip.family)) {
      refused.push({ address: text, why: `the Service is single-stack ${familyName(req.families[0] ?? 4)}` });
      continue;
    }
    byFamily.set(ip.family, ip);
  }
  // The Service names its addresses: those are what it gets (MetalLB gave it the same ones).
  if (req.requested && req.requested.ips.length > 0) {
    for (const ip of byFamily.values()) {
      if (!req.requested.ips.some((r) => r.family === ip.family && r.value === ip.value)) refused.push({ address: formatIP(ip), why: `the Service asks for other addresses (${req.requested.field})` });
    }
    return { keep: undefined, refused };
  }
  let keep: { pool: string; ips: IP[] } | undefined;
  const ordered = [...byFamily.values()].sort((a, b) => rank(req, a.family) - rank(req, b.family));
  for (const ip of ordered) {
    const address = formatIP(ip);
    const pool = state.pools.find((p) => poolContains(p, ip));
    const usable =
      pool &&
      !pool.deleting &&
      pool.usage.has('LoadBalancer') &&
      poolAdmits(pool, { namespace: req.namespace, labels: req.labels, namespaceLabels: req.namespaceLabels }) &&
      (req.pool ? req.pool.name === pool.name : pool.autoAssign) &&
      !(pool.avoidBuggyIPs && isBuggyIP(ip));
    if (!usable) {
      const asked = req.pool ? `IPPool "${req.pool.name}" (${req.pool.field})` : 'the IPPools that assign addresses to this Service';
      refused.push({ address, why: `outside ${asked}` });
      continue;
    }
    if (keep && keep.pool !== pool.name) {
      refused.push({ address, why: `in another IPPool than ${formatIP(keep.ips[0]!)}` });
      continue;
    }
    const a = availability(state, req, pool, ip, 'LoadBalancer');
    if (a.kind === 'taken') {
      refused.push({ address, why: a.why });
      continue;
    }
    keep = keep ? { pool: keep.pool, ips: [...keep.ips, ip] } : { pool: pool.name, ips: [ip] };
  }
  if (keep) {
    const pool = state.pools.find((p) => p.name === keep!.pool)!;
    const quota = quotaProblem(state, req, pool, keep.ips);
    if (quota) {
      for (const ip of keep.ips) refused.push({ address: formatIP(ip), why: quota });
      keep = undefined;
    }
  }
  return { keep, refused };
}

function rank(req: Request, f: Family): number {
  const i = req.families.indexOf(f);
  return i < 0 ? 9 : i;
}
