// IP address and prefix handling. A prefix's identity inside the library is its NLRI encoding
// (length octet + significant address octets) held as a latin1 string: compact, usable as a Map
// key, and copied straight onto the wire without re-encoding.

import { BgpConfigError } from './errors.ts';

export const AFI_IPV4 = 1;
export const AFI_IPV6 = 2;
export const SAFI_UNICAST = 1;
export type Afi = typeof AFI_IPV4 | typeof AFI_IPV6;
export type Family = 'ipv4' | 'ipv6';

export function familyOf(afi: Afi): Family {
  return afi === AFI_IPV4 ? 'ipv4' : 'ipv6';
}

export function parseIpv4(text: string): Buffer | null {
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

export function parseIpv6(text: string): Buffer | null {
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
        const v4 = parseIpv4(item);
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

export function parseIp(text: string): { afi: Afi; bytes: Buffer } | null {
  const v4 = parseIpv4(text);
  if (v4) return { afi: AFI_IPV4, bytes: v4 };
  const v6 = parseIpv6(text);
  if (v6) return { afi: AFI_IPV6, bytes: v6 };
  return null;
}

export function formatIpv4(bytes: Uint8Array, offset = 0): string {
  return `${bytes[offset]}.${bytes[offset + 1]}.${bytes[offset + 2]}.${bytes[offset + 3]}`;
}

/** RFC 5952 canonical text. */
export function formatIpv6(bytes: Uint8Array, offset = 0): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push(((bytes[offset + i * 2] ?? 0) << 8) | (bytes[offset + i * 2 + 1] ?? 0));
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

/** Normalizes "::ffff:198.51.100.1" (dual-stack socket view) to "198.51.100.1". */
export function normalizeAddress(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  const ip = parseIp(address.replace(/%.*$/, ''));
  if (!ip) return address;
  return ip.afi === AFI_IPV4 ? formatIpv4(ip.bytes) : formatIpv6(ip.bytes);
}

export interface ParsedPrefix {
  afi: Afi;
  length: number;
  /** NLRI encoding as a latin1 string: the Map key and the wire bytes. */
  key: string;
  /** Canonical text, e.g. "203.0.113.10/32", "2001:db8::/48". */
  text: string;
}

/** Parses "a.b.c.d/len" or "v6/len"; a bare address means a host route. Host bits must be zero. */
export function parsePrefix(text: string): ParsedPrefix {
  if (typeof text !== 'string') throw new BgpConfigError(`prefix must be a string, got ${typeof text}`);
  const slash = text.indexOf('/');
  const addrText = slash < 0 ? text : text.slice(0, slash);
  const ip = parseIp(addrText);
  if (!ip) throw new BgpConfigError(`invalid prefix "${text}": not an IPv4 or IPv6 address`);
  const maxLen = ip.afi === AFI_IPV4 ? 32 : 128;
  let length = maxLen;
  if (slash >= 0) {
    const lenText = text.slice(slash + 1);
    if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText) || Number(lenText) > maxLen) {
      throw new BgpConfigError(`invalid prefix "${text}": length must be 0..${maxLen}`);
    }
    length = Number(lenText);
  }
  const octets = (length + 7) >> 3;
  for (let bit = length; bit < maxLen; bit++) {
    if (ip.bytes[bit >> 3]! & (0x80 >> (bit & 7))) {
      throw new BgpConfigError(`invalid prefix "${text}": host bits set beyond /${length}`);
    }
  }
  const key = String.fromCharCode(length) + ip.bytes.subarray(0, octets).toString('latin1');
  const canonical = ip.afi === AFI_IPV4 ? formatIpv4(ip.bytes) : formatIpv6(ip.bytes);
  return { afi: ip.afi, length, key, text: `${canonical}/${length}` };
}

/** Text of an NLRI key produced by parsePrefix or decodeNlri. */
export function prefixKeyToText(afi: Afi, key: string): string {
  const length = key.charCodeAt(0);
  const bytes = Buffer.alloc(afi === AFI_IPV4 ? 4 : 16);
  bytes.write(key.slice(1), 0, 'latin1');
  return `${afi === AFI_IPV4 ? formatIpv4(bytes) : formatIpv6(bytes)}/${length}`;
}

/**
 * Decodes a run of NLRI (RFC 4271 §4.3) into canonical prefix texts.
 * Returns null when the field is malformed (length beyond the address size or running past the end).
 * Host bits set in the last octet are masked off, as receivers commonly do.
 */
export function decodeNlri(buf: Buffer, start: number, end: number, afi: Afi): string[] | null {
  const maxLen = afi === AFI_IPV4 ? 32 : 128;
  const out: string[] = [];
  const addr = Buffer.alloc(maxLen / 8);
  let pos = start;
  while (pos < end) {
    const length = buf[pos]!;
    if (length > maxLen) return null;
    const octets = (length + 7) >> 3;
    if (pos + 1 + octets > end) return null;
    addr.fill(0);
    buf.copy(addr, 0, pos + 1, pos + 1 + octets);
    if (length & 7) addr[octets - 1] = addr[octets - 1]! & (0xff << (8 - (length & 7)));
    out.push(`${afi === AFI_IPV4 ? formatIpv4(addr) : formatIpv6(addr)}/${length}`);
    pos += 1 + octets;
  }
  return out;
}
