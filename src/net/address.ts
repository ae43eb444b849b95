// IP addresses, the one place they are parsed and formatted. The edge parses text once, strictly
// (no zones, no prefixes, no leading zeros in IPv4 octets: octal in some tools); inside, an address
// is an `IP` (family + bigint, for arithmetic on pools) or its network-order bytes (for the wire).
// Text out is canonical: dotted quad, or RFC 5952 (lowercase, longest zero run compressed).

export type Family = 4 | 6;
export type FamilyName = 'IPv4' | 'IPv6';

export const familyName = (f: Family): FamilyName => (f === 4 ? 'IPv4' : 'IPv6');
export const familyFromName = (n: FamilyName): Family => (n === 'IPv4' ? 4 : 6);

export interface IP {
  family: Family;
  value: bigint;
}

export class AddressError extends Error {}

/** Network-order bytes of a dotted quad, or null. */
export function parseIPv4Bytes(text: string): Buffer | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  const out = Buffer.alloc(4);
  for (let i = 0; i < 4; i++) {
    const part = parts[i]!;
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part)) return null;
    const value = Number(part);
    if (value > 255) return null;
    out[i] = value;
  }
  return out;
}

/** Network-order bytes of an IPv6 address in any RFC 4291 §2.2 text form, or null. */
export function parseIPv6Bytes(text: string): Buffer | null {
  if (text.length < 2 || text.length > 45) return null;
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const groups = (s: string): number[] | null => {
    if (s === '') return [];
    const out: number[] = [];
    const items = s.split(':');
    for (let i = 0; i < items.length; i++) {
      const item = items[i]!;
      if (i === items.length - 1 && item.includes('.')) {
        const v4 = parseIPv4Bytes(item);
        if (!v4) return null;
        out.push((v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(item)) return null;
        out.push(parseInt(item, 16));
      }
    }
    return out;
  };
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  if (!head || !tail) return null;
  let all: number[];
  if (halves.length === 2) {
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return null;
    all = [...head, ...new Array<number>(missing).fill(0), ...tail];
  } else {
    all = head;
  }
  if (all.length !== 8) return null;
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  return out;
}

export function formatIPv4Bytes(bytes: Uint8Array, offset = 0): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

/** RFC 5952 §4 canonical text of 16 network-order bytes. */
export function formatIPv6Bytes(bytes: Uint8Array, offset = 0): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(((bytes[offset + i * 2] ?? 0) << 8) | (bytes[offset + i * 2 + 1] ?? 0));
  // §4.2.2: a single 0 group is not shortened; §4.2.3: the longest run, the first of equal ones.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

export function ipToBytes(ip: IP): Buffer {
  const out = Buffer.alloc(ip.family === 4 ? 4 : 16);
  let v = ip.value;
  for (let i = out.length - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

export function ipFromBytes(bytes: Uint8Array): IP {
  let value = 0n;
  for (const b of bytes) value = (value << 8n) | BigInt(b);
  return { family: bytes.length === 4 ? 4 : 6, value };
}

/** Parses one address; rejects zones, prefixes and leading zeros (ambiguous: octal in some tools). */
export function parseIP(text: string): IP {
  const s = text.trim();
  if (s.includes('/') || s.includes('%')) throw new AddressError(`"${text}" is not a single IP address`);
  if (s.includes(':')) {
    const b = parseIPv6Bytes(s);
    if (!b) throw new AddressError(`"${text}" is not a valid IPv6 address`);
    return ipFromBytes(b);
  }
  const b = parseIPv4Bytes(s);
  if (!b) throw new AddressError(`"${text}" is not a valid IP address`);
  return ipFromBytes(b);
}

export function tryParseIP(text: string): IP | undefined {
  try {
    return parseIP(text);
  } catch {
    return undefined;
  }
}

/** Canonical text: dotted quad, or RFC 5952 compressed lowercase IPv6. */
export function formatIP(ip: IP): string {
  const b = ipToBytes(ip);
  return ip.family === 4 ? formatIPv4Bytes(b) : formatIPv6Bytes(b);
}

export function canonicalIP(text: string): string {
  return formatIP(parseIP(text));
}

/** The family of an address text, or undefined when it is not one address. */
export function familyOf(text: string): Family | undefined {
  return tryParseIP(text)?.family;
}
