// services/status writes (the validating webhook, CVE-2020-8554's second vector): only admitlb puts
// an address of an admitlb pool into a Service's status.loadBalancer.ingress. Another load balancer
// implementation (another loadBalancerClass) or anyone else with services/status access who writes
// such an address is refused, because kube-proxy would capture that address's traffic for their
// Service. The webhook configuration's matchConditions send only writes that add an ingress IP and do
// not come from admitlb's ServiceAccount (or system:masters); this decision repeats the "adds"
// part so that it stands on its own.
//
// Why a webhook and not a ValidatingAdmissionPolicy with IPPools as params: pool entries may be
// ranges (`first-last`), and the CEL IP and CIDR libraries test CIDR membership but have no ordering
// of addresses, so range membership would need a second implementation of address arithmetic in
// string functions (or a CIDR copy of every pool, written late). Here the check is poolContains over
// the pools the webhook already holds, the same code allocation uses.
import { ERRORS } from '../errors.ts';
import type { PoolModel } from '../allocation/pools.ts';
import { poolContains } from '../allocation/pools.ts';
import { formatIP, parseIP, tryParseIP, type IP } from '../allocation/addresses.ts';
import { denial, type AdmissionOutcome, type AdmissionRequest } from './review.ts';

/**
 * An address as kube-proxy reads it (netutils.ParseIPSloppy): IPv4 octets with leading zeros are
 * decimal, and an IPv4-mapped IPv6 address is its IPv4 address. The API accepts such legacy forms in
 * status, so the check must see through them.
 */
export function parseIPSloppy(text: string): IP | undefined {
  const strict = tryParseIP(text);
  if (strict) return strict.family === 6 && strict.value >> 32n === 0xffffn ? { family: 4, value: strict.value & 0xffffffffn } : strict;
  const m = /^(?:::ffff:)?(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/i.exec(text);
  if (!m) return undefined;
  const octets = m.slice(1).map((o) => Number.parseInt(o, 10));
  if (octets.some((o) => o > 255)) return undefined;
  return parseIP(octets.join('.'));
}

type Ingress = { ip?: unknown }[];

function ingressIPs(obj: Record<string, unknown> | null | undefined): string[] {
  const ingress = ((obj?.status as { loadBalancer?: { ingress?: Ingress } } | undefined)?.loadBalancer?.ingress ?? []) as Ingress;
  return Array.isArray(ingress) ? ingress.map((i) => i?.ip).filter((ip): ip is string => typeof ip === 'string' && ip !== '') : [];
}

/** Refuses a status write that adds an address of an admitlb pool (the caller is not admitlb). */
export function validateServiceStatus(pools: readonly PoolModel[], request: AdmissionRequest): AdmissionOutcome {
  if (request.operation !== 'UPDATE') return { allowed: true };
  const before = new Set(ingressIPs(request.oldObject).map((t) => (parseIPSloppy(t) ? formatIP(parseIPSloppy(t)!) : t)));
  const problems: string[] = [];
  for (const text of ingressIPs(request.object)) {
    const ip = parseIPSloppy(text);
    if (!ip || before.has(formatIP(ip))) continue;
    const pool = pools.find((p) => poolContains(p, ip));
    if (pool) problems.push(`${text} belongs to IPPool "${pool.name}"`);
  }
  if (!problems.length) return { allowed: true };
  const who = request.userInfo?.username ?? 'this user';
  const name = `${request.namespace ?? ''}/${request.name ?? ''}`;
  return denial(
    ERRORS.STATUS_NOT_OURS,
    `status.loadBalancer.ingress of Service ${name}: ${problems.join('; ')}; only admitlb (ServiceAccount admitlb-system/admitlb) puts addresses of its pools into a Service's status, not ${who}`,
  );
}
