// Address arithmetic on bigints. Pools are lists of inclusive [first, last] ranges, so what they cost
// in memory and time depends on how many ranges they list, never on how many addresses they hold.
import { AddressError, formatIP, parseIP, tryParseIP, type Family, type IP } from '../net/address.ts';

// The address type and its text forms live in the leaf src/net/address.ts; pools and claims use them.
export { AddressError, canonicalIP, familyFromName, familyName, formatIP, parseIP, tryParseIP, type Family, type FamilyName, type IP } from '../net/address.ts';

export interface AddressRange {
  family: Family;
  first: bigint;
  last: bigint;
}

const V4_MAX = (1n << 32n) - 1n;
const V6_MAX = (1n << 128n) - 1n;
const maxOf = (f: Family) => (f === 4 ? V4_MAX : V6_MAX);

/**
 * Parses a pool entry: a CIDR (host bits must be zero, as Kubernetes requires of CIDRs) or an
 * inclusive range `first-last` of one family.
 */
export function parseRange(text: string): AddressRange {
  const s = text.trim();
  const dash = s.indexOf('-');
  if (dash > 0 && !s.includes('/')) {
    const first = parseIP(s.slice(0, dash));
    const last = parseIP(s.slice(dash + 1));
    if (first.family !== last.family) throw new AddressError(`range "${text}" mixes IPv4 and IPv6`);
    if (first.value > last.value) throw new AddressError(`range "${text}" ends before it starts`);
    return { family: first.family, first: first.value, last: last.value };
  }
  const slash = s.indexOf('/');
  if (slash < 0) throw new AddressError(`"${text}" is neither a CIDR nor a range (a single address is written as a /32 or /128)`);
  const base = parseIP(s.slice(0, slash));
  const lenText = s.slice(slash + 1);
  const bits = base.family === 4 ? 32 : 128;
  if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > bits) throw new AddressError(`"${text}" has an invalid prefix length`);
  const len = BigInt(lenText);
  const hostBits = BigInt(bits) - len;
  const hostMask = (1n << hostBits) - 1n;
  if ((base.value & hostMask) !== 0n) {
    const network = formatIP({ family: base.family, value: base.value & ~hostMask & maxOf(base.family) });
    throw new AddressError(`"${text}" has host bits set (did you mean ${network}/${lenText}?)`);
  }
  return { family: base.family, first: base.value, last: base.value | hostMask };
}

export function rangeSize(r: AddressRange): bigint {
  return r.last - r.first + 1n;
}

export function rangesOverlap(a: AddressRange, b: AddressRange): boolean {
  return a.family === b.family && a.first <= b.last && b.first <= a.last;
}

export function rangeContains(r: AddressRange, ip: IP): boolean {
  return r.family === ip.family && r.first <= ip.value && ip.value <= r.last;
}

/** IPv4 addresses ending in .0 or .255: some clients and middleboxes mishandle them. */
export function isBuggyIP(ip: IP): boolean {
  if (ip.family !== 4) return false;
  const last = ip.value & 255n;
  return last === 0n || last === 255n;
}

/** Counts the .0 and .255 addresses in an IPv4 range, in constant time. */
export function countBuggy(r: AddressRange): bigint {
  if (r.family !== 4) return 0n;
  // Numbers ≤ x congruent to k mod 256, for k in {0, 255}.
  const upTo = (x: bigint, k: bigint) => (x < k ? 0n : (x - k) / 256n + 1n);
  const inRange = (k: bigint) => upTo(r.last, k) - (r.first === 0n ? 0n : upTo(r.first - 1n, k));
  return inRange(0n) + inRange(255n);
}

/**
 * Object name for an address, reversible and a valid DNS-1123 subdomain for every address:
 * IPv4 keeps its dotted form; IPv6 is written fully expanded with '-' for ':' (`::` becomes
 * 0000-0000-0000-0000-0000-0000-0000-0000), so names sort and compare like the addresses.
 */
export function claimNameFor(ip: IP): string {
  if (ip.family === 4) return formatIP(ip);
  const hex = ip.value.toString(16).padStart(32, '0');
  return hex.match(/.{4}/g)!.join('-');
}

export function ipFromClaimName(name: string): IP {
  if (/^[0-9a-f]{4}(-[0-9a-f]{4}){7}$/.test(name)) return { family: 6, value: BigInt(`0x${name.replaceAll('-', '')}`) };
  const ip = tryParseIP(name);
  if (ip?.family === 4 && formatIP(ip) === name) return ip;
  throw new AddressError(`"${name}" is not an IPClaim name`);
}
