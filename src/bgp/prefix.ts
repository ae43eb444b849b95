// IP address and prefix handling. A prefix's identity inside the library is its NLRI encoding
// (length octet + significant address octets) held as a latin1 string: compact, usable as a Map
// key, and copied straight onto the wire without re-encoding.

import { formatIPv4Bytes as formatIpv4, formatIPv6Bytes as formatIpv6, parseIPv4Bytes, parseIPv6Bytes } from '../net/address.ts';
import { BgpConfigError } from './errors.ts';

export const AFI_IPV4 = 1;
export const AFI_IPV6 = 2;
export const SAFI_UNICAST = 1;
export type Afi = typeof AFI_IPV4 | typeof AFI_IPV6;
export type Family = 'ipv4' | 'ipv6';

export function familyOf(afi: Afi): Family {
  return afi === AFI_IPV4 ? 'ipv4' : 'ipv6';
}

// Address text ⇄ network-order bytes: admitlb's one parser and formatter (src/net/address.ts).
export {
  formatIPv4Bytes as formatIpv4,
  formatIPv6Bytes as formatIpv6,
  parseIPv4Bytes as parseIpv4,
  parseIPv6Bytes as parseIpv6,
} from '../net/address.ts';

export function parseIp(text: string): { afi: Afi; bytes: Buffer } | null {
  const v4 = parseIPv4Bytes(text);
  if (v4) return { afi: AFI_IPV4, bytes: v4 };
  const v6 = parseIPv6Bytes(text);
  if (v6) return { afi: AFI_IPV6, bytes: v6 };
  return null;
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
