// Path attributes (RFC 4271 §4.3/§5, RFC 1997, RFC 4760, RFC 6793, RFC 8092): encoding, and strict
// decoding with the RFC 7606 outcomes (session reset, treat-as-withdraw, attribute discard).

import { ErrorCode, UpdateSubcode, notification, type NotificationSpec } from './errors.ts';
import { BgpConfigError } from './errors.ts';
import { AFI_IPV4, AFI_IPV6, SAFI_UNICAST, decodeNlri, formatIpv4, formatIpv6, parseIpv4, parseIpv6, type Afi } from './prefix.ts';

export const AttrType = {
  Origin: 1,
  AsPath: 2,
  NextHop: 3,
  Med: 4,
  LocalPref: 5,
  AtomicAggregate: 6,
  Aggregator: 7,
  Communities: 8,
  OriginatorId: 9,
  ClusterList: 10,
  MpReachNlri: 14,
  MpUnreachNlri: 15,
  As4Path: 17,
  As4Aggregator: 18,
  LargeCommunities: 32,
} as const;

export const AttrFlag = { Optional: 0x80, Transitive: 0x40, Partial: 0x20, ExtendedLength: 0x10 } as const;

export const AS_TRANS = 23456;

export type Origin = 'igp' | 'egp' | 'incomplete';
export const originCodes: Record<Origin, number> = { igp: 0, egp: 1, incomplete: 2 };
const originNames: Origin[] = ['igp', 'egp', 'incomplete'];

export type AsPathSegmentType = 'set' | 'sequence' | 'confed-sequence' | 'confed-set';
const segmentCodes: Record<AsPathSegmentType, number> = { set: 1, sequence: 2, 'confed-sequence': 3, 'confed-set': 4 };
const segmentNames: AsPathSegmentType[] = ['set', 'sequence', 'confed-sequence', 'confed-set'];

export interface AsPathSegment {
  type: AsPathSegmentType;
  asns: number[];
}

export interface MpReach {
  afi: number;
  safi: number;
  /** Global next hop, plus the link-local one when the peer sent 32 octets. */
  nextHops: string[];
  nlri: string[];
}

export interface MpUnreach {
  afi: number;
  safi: number;
  withdrawn: string[];
}

/** Decoded (or to-be-encoded) path attributes. Communities are 32-bit numbers (high 16 = AS). */
export interface PathAttributes {
  origin?: Origin;
  asPath?: AsPathSegment[];
  nextHop?: string;
  med?: number;
  localPref?: number;
  atomicAggregate?: boolean;
  aggregator?: { asn: number; address: string };
  communities?: number[];
  originatorId?: string;
  clusterList?: string[];
  mpReach?: MpReach;
  mpUnreach?: MpUnreach;
  as4Path?: AsPathSegment[];
  largeCommunities?: Array<[number, number, number]>;
  /** Attributes this library does not interpret (kept for inspection). */
  unknown?: Array<{ flags: number; type: number; value: Buffer }>;
}

/** Frames one attribute, choosing the extended-length form only when needed. */
export function encodeAttribute(flags: number, type: number, value: Buffer): Buffer {
  if (value.length > 255) {
    const out = Buffer.allocUnsafe(4 + value.length);
    out[0] = flags | AttrFlag.ExtendedLength;
    out[1] = type;
    out.writeUInt16BE(value.length, 2);
    value.copy(out, 4);
    return out;
  }
  const out = Buffer.allocUnsafe(3 + value.length);
  out[0] = flags & ~AttrFlag.ExtendedLength;
  out[1] = type;
  out[2] = value.length;
  value.copy(out, 3);
  return out;
}

export function encodeAsPath(segments: AsPathSegment[], fourOctet: boolean): Buffer {
  const parts: Buffer[] = [];
  const width = fourOctet ? 4 : 2;
  for (const seg of segments) {
    // A segment holds at most 255 ASNs; longer paths are split into consecutive segments.
    for (let i = 0; i < seg.asns.length; i += 255) {
      const chunk = seg.asns.slice(i, i + 255);
      const b = Buffer.alloc(2 + chunk.length * width);
      b[0] = segmentCodes[seg.type];
      b[1] = chunk.length;
      chunk.forEach((asn, j) => {
        if (fourOctet) b.writeUInt32BE(asn >>> 0, 2 + j * 4);
        else b.writeUInt16BE(asn > 0xffff ? AS_TRANS : asn, 2 + j * 2);
      });
      parts.push(b);
    }
  }
  return Buffer.concat(parts);
}

export function ipv4Bytes(text: string): Buffer {
  const b = parseIpv4(text);
  if (!b) throw new BgpConfigError(`invalid IPv4 address "${text}"`);
  return b;
}

export function ipv6Bytes(text: string): Buffer {
  const b = parseIpv6(text);
  if (!b) throw new BgpConfigError(`invalid IPv6 address "${text}"`);
  return b;
}

export interface EncodeAttributeOptions {
  /** AS_PATH/AGGREGATOR width: true when both sides sent the 4-octet AS capability. */
  as4: boolean;
}

/**
 * Encodes the attributes in type-code order. mpReach/mpUnreach are encoded from their fields
 * (next hops must be IPv6 texts for AFI 2). With as4 false and a 4-octet ASN in the path,
 * AS_TRANS goes into AS_PATH and the real path into AS4_PATH (RFC 6793 §4.2.2).
 */
export function encodeAttributes(attrs: PathAttributes, opts: EncodeAttributeOptions): Buffer {
  const out: Buffer[] = [];
  const T = AttrFlag.Transitive;
  const O = AttrFlag.Optional;
  if (attrs.origin !== undefined) out.push(encodeAttribute(T, AttrType.Origin, Buffer.from([originCodes[attrs.origin]])));
  if (attrs.asPath !== undefined) out.push(encodeAttribute(T, AttrType.AsPath, encodeAsPath(attrs.asPath, opts.as4)));
  if (attrs.nextHop !== undefined) out.push(encodeAttribute(T, AttrType.NextHop, ipv4Bytes(attrs.nextHop)));
  if (attrs.med !== undefined) out.push(encodeAttribute(O, AttrType.Med, u32(attrs.med)));
  if (attrs.localPref !== undefined) out.push(encodeAttribute(T, AttrType.LocalPref, u32(attrs.localPref)));
  if (attrs.atomicAggregate) out.push(encodeAttribute(T, AttrType.AtomicAggregate, Buffer.alloc(0)));
  if (attrs.aggregator) {
    const v = Buffer.alloc(opts.as4 ? 8 : 6);
    if (opts.as4) v.writeUInt32BE(attrs.aggregator.asn >>> 0, 0);
    else v.writeUInt16BE(attrs.aggregator.asn > 0xffff ? AS_TRANS : attrs.aggregator.asn, 0);
    ipv4Bytes(attrs.aggregator.address).copy(v, opts.as4 ? 4 : 2);
    out.push(encodeAttribute(O | T, AttrType.Aggregator, v));
  }
  if (attrs.communities && attrs.communities.length > 0) {
    const v = Buffer.alloc(attrs.communities.length * 4);
    attrs.communities.forEach((c, i) => v.writeUInt32BE(c >>> 0, i * 4));
    out.push(encodeAttribute(O | T, AttrType.Communities, v));
  }
  if (attrs.originatorId !== undefined) out.push(encodeAttribute(O, AttrType.OriginatorId, ipv4Bytes(attrs.originatorId)));
  if (attrs.clusterList) out.push(encodeAttribute(O, AttrType.ClusterList, Buffer.concat(attrs.clusterList.map(ipv4Bytes))));
  if (attrs.mpReach) out.push(encodeAttribute(O, AttrType.MpReachNlri, encodeMpReachValue(attrs.mpReach)));
  if (attrs.mpUnreach) out.push(encodeAttribute(O, AttrType.MpUnreachNlri, encodeMpUnreachValue(attrs.mpUnreach)));
  const as4Path = attrs.as4Path ?? (!opts.as4 && attrs.asPath?.some((s) => s.asns.some((a) => a > 0xffff)) ? attrs.asPath : undefined);
  if (as4Path && !opts.as4) out.push(encodeAttribute(O | T, AttrType.As4Path, encodeAsPath(as4Path, true)));
  if (attrs.largeCommunities && attrs.largeCommunities.length > 0) {
    const v = Buffer.alloc(attrs.largeCommunities.length * 12);
    attrs.largeCommunities.forEach(([a, b, c], i) => {
      v.writeUInt32BE(a >>> 0, i * 12);
      v.writeUInt32BE(b >>> 0, i * 12 + 4);
      v.writeUInt32BE(c >>> 0, i * 12 + 8);
    });
    out.push(encodeAttribute(O | T, AttrType.LargeCommunities, v));
  }
  for (const u of attrs.unknown ?? []) out.push(encodeAttribute(u.flags, u.type, u.value));
  return Buffer.concat(out);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

export function encodeNlriList(prefixes: string[], afi: number): Buffer {
  const parts: Buffer[] = [];
  for (const p of prefixes) {
    const [addr, lenText] = p.split('/');
    const length = Number(lenText);
    const bytes = afi === AFI_IPV4 ? ipv4Bytes(addr!) : ipv6Bytes(addr!);
    const octets = (length + 7) >> 3;
    parts.push(Buffer.from([length]), bytes.subarray(0, octets));
  }
  return Buffer.concat(parts);
}

function encodeMpReachValue(mp: MpReach): Buffer {
  const nh = Buffer.concat(mp.nextHops.map((h) => (mp.afi === AFI_IPV4 ? ipv4Bytes(h) : ipv6Bytes(h))));
  const head = Buffer.alloc(5);
  head.writeUInt16BE(mp.afi, 0);
  head[2] = mp.safi;
  head[3] = nh.length;
  return Buffer.concat([head.subarray(0, 4), nh, Buffer.from([0]), encodeNlriList(mp.nlri, mp.afi)]);
}

function encodeMpUnreachValue(mp: MpUnreach): Buffer {
  const head = Buffer.alloc(3);
  head.writeUInt16BE(mp.afi, 0);
  head[2] = mp.safi;
  return Buffer.concat([head, encodeNlriList(mp.withdrawn, mp.afi)]);
}

// ---------------------------------------------------------------------------------------------
// Decoding

export interface AttributeDecodeContext {
  as4: boolean;
  ibgp?: boolean | undefined;
  /** Whether the UPDATE's IPv4 NLRI field is non-empty (decides which attributes are mandatory). */
  hasIpv4Nlri: boolean;
}

export interface AttributeDecodeResult {
  attributes: PathAttributes;
  /** RFC 7606 treat-as-withdraw reasons: the UPDATE's NLRI must be handled as withdrawn. */
  treatAsWithdraw: string[];
  /** RFC 7606 attribute-discard reasons: the attribute was dropped, the rest is valid. */
  discarded: string[];
  /** Session reset: the NOTIFICATION to send. */
  error?: NotificationSpec;
}

const expectedFlags: Record<number, number> = {
  [AttrType.Origin]: AttrFlag.Transitive,
  [AttrType.AsPath]: AttrFlag.Transitive,
  [AttrType.NextHop]: AttrFlag.Transitive,
  [AttrType.Med]: AttrFlag.Optional,
  [AttrType.LocalPref]: AttrFlag.Transitive,
  [AttrType.AtomicAggregate]: AttrFlag.Transitive,
  [AttrType.Aggregator]: AttrFlag.Optional | AttrFlag.Transitive,
  [AttrType.Communities]: AttrFlag.Optional | AttrFlag.Transitive,
  [AttrType.OriginatorId]: AttrFlag.Optional,
  [AttrType.ClusterList]: AttrFlag.Optional,
  [AttrType.MpReachNlri]: AttrFlag.Optional,
  [AttrType.MpUnreachNlri]: AttrFlag.Optional,
  [AttrType.As4Path]: AttrFlag.Optional | AttrFlag.Transitive,
  [AttrType.As4Aggregator]: AttrFlag.Optional | AttrFlag.Transitive,
  [AttrType.LargeCommunities]: AttrFlag.Optional | AttrFlag.Transitive,
};

function decodeAsPath(v: Buffer, width: 2 | 4): AsPathSegment[] | null {
  const segments: AsPathSegment[] = [];
  let pos = 0;
  while (pos < v.length) {
    if (pos + 2 > v.length) return null;
    const type = v[pos]!;
    const count = v[pos + 1]!;
    if (type < 1 || type > 4 || count === 0) return null;
    if (pos + 2 + count * width > v.length) return null;
    const asns: number[] = [];
    for (let i = 0; i < count; i++) asns.push(width === 4 ? v.readUInt32BE(pos + 2 + i * 4) : v.readUInt16BE(pos + 2 + i * 2));
    segments.push({ type: segmentNames[type - 1]!, asns });
    pos += 2 + count * width;
  }
  return segments;
}

/** Decodes the path attribute field of an UPDATE (RFC 4271 §6.3 as revised by RFC 7606). */
export function decodePathAttributes(buf: Buffer, ctx: AttributeDecodeContext): AttributeDecodeResult {
  const attributes: PathAttributes = {};
  const treatAsWithdraw: string[] = [];
  const discarded: string[] = [];
  const seen = new Set<number>();
  const reset = (subcode: number, reason: string, data?: Buffer): AttributeDecodeResult => ({
    attributes,
    treatAsWithdraw,
    discarded,
    error: notification(ErrorCode.UpdateMessage, subcode, reason, data),
  });
  let pos = 0;
  while (pos < buf.length) {
    if (pos + 3 > buf.length) {
      // RFC 7606 §4: the attribute cannot be framed; the NLRI field is still locatable.
      treatAsWithdraw.push('truncated attribute header');
      break;
    }
    const flags = buf[pos]!;
    const type = buf[pos + 1]!;
    const extended = (flags & AttrFlag.ExtendedLength) !== 0;
    if (extended && pos + 4 > buf.length) {
      treatAsWithdraw.push('truncated attribute header');
      break;
    }
    const length = extended ? buf.readUInt16BE(pos + 2) : buf[pos + 2]!;
    const valueStart = pos + (extended ? 4 : 3);
    if (valueStart + length > buf.length) {
      if (type === AttrType.MpReachNlri || type === AttrType.MpUnreachNlri) {
        return reset(UpdateSubcode.MalformedAttributeList, `attribute ${type} overruns the path attributes`);
      }
      treatAsWithdraw.push(`attribute ${type} length ${length} overruns the path attributes`);
      break;
    }
    const value = buf.subarray(valueStart, valueStart + length);
    const raw = buf.subarray(pos, valueStart + length);
    pos = valueStart + length;

    if (seen.has(type)) {
      if (type === AttrType.MpReachNlri || type === AttrType.MpUnreachNlri) {
        return reset(UpdateSubcode.MalformedAttributeList, `duplicate attribute ${type}`);
      }
      discarded.push(`duplicate attribute ${type}`); // RFC 7606 §3(g): keep the first
      continue;
    }
    seen.add(type);

    const expected = expectedFlags[type];
    if (expected === undefined) {
      if ((flags & AttrFlag.Optional) === 0) {
        return reset(UpdateSubcode.UnrecognizedWellKnownAttribute, `unrecognized well-known attribute ${type}`, Buffer.from(raw));
      }
      (attributes.unknown ??= []).push({ flags, type, value: Buffer.from(value) });
      continue;
    }
    const flagsOk = (flags & (AttrFlag.Optional | AttrFlag.Transitive)) === expected;

    switch (type) {
      case AttrType.Origin:
        if (!flagsOk || length !== 1 || value[0]! > 2) treatAsWithdraw.push('malformed ORIGIN');
        else attributes.origin = originNames[value[0]!]!;
        break;
      case AttrType.AsPath: {
        const path = flagsOk ? decodeAsPath(value, ctx.as4 ? 4 : 2) : null;
        if (!path) treatAsWithdraw.push('malformed AS_PATH');
        else attributes.asPath = path;
        break;
      }
      case AttrType.NextHop:
        if (!flagsOk || length !== 4) treatAsWithdraw.push('malformed NEXT_HOP');
        else attributes.nextHop = formatIpv4(value);
        break;
      case AttrType.Med:
        if (!flagsOk || length !== 4) treatAsWithdraw.push('malformed MULTI_EXIT_DISC');
        else attributes.med = value.readUInt32BE(0);
        break;
      case AttrType.LocalPref:
        if (!flagsOk || length !== 4) {
          if (ctx.ibgp) treatAsWithdraw.push('malformed LOCAL_PREF');
          else discarded.push('malformed LOCAL_PREF from an external peer');
        } else if (ctx.ibgp === false) {
          discarded.push('LOCAL_PREF from an external peer'); // RFC 4271 §5.1.5: ignore on eBGP
        } else attributes.localPref = value.readUInt32BE(0);
        break;
      case AttrType.AtomicAggregate:
        if (!flagsOk || length !== 0) discarded.push('malformed ATOMIC_AGGREGATE');
        else attributes.atomicAggregate = true;
        break;
      case AttrType.Aggregator: {
        const want = ctx.as4 ? 8 : 6;
        if (!flagsOk || length !== want) discarded.push('malformed AGGREGATOR');
        else
          attributes.aggregator = ctx.as4
            ? { asn: value.readUInt32BE(0), address: formatIpv4(value, 4) }
            : { asn: value.readUInt16BE(0), address: formatIpv4(value, 2) };
        break;
      }
      case AttrType.Communities:
        if (!flagsOk || length === 0 || length % 4 !== 0) treatAsWithdraw.push('malformed COMMUNITIES');
        else {
          const list: number[] = [];
          for (let i = 0; i < length; i += 4) list.push(value.readUInt32BE(i));
          attributes.communities = list;
        }
        break;
      case AttrType.OriginatorId:
        if (!flagsOk || length !== 4) treatAsWithdraw.push('malformed ORIGINATOR_ID');
        else attributes.originatorId = formatIpv4(value);
        break;
      case AttrType.ClusterList:
        if (!flagsOk || length === 0 || length % 4 !== 0) treatAsWithdraw.push('malformed CLUSTER_LIST');
        else {
          const list: string[] = [];
          for (let i = 0; i < length; i += 4) list.push(formatIpv4(value, i));
          attributes.clusterList = list;
        }
        break;
      case AttrType.MpReachNlri: {
        // RFC 7606 §7.11: NLRI that cannot be parsed mean a session reset.
        if (!flagsOk || length < 5) return reset(UpdateSubcode.OptionalAttributeError, 'malformed MP_REACH_NLRI');
        const afi = value.readUInt16BE(0);
        const safi = value[2]!;
        const nhLen = value[3]!;
        if (4 + nhLen + 1 > length) return reset(UpdateSubcode.OptionalAttributeError, 'MP_REACH_NLRI next hop overruns the attribute');
        const known = (afi === AFI_IPV4 || afi === AFI_IPV6) && safi === SAFI_UNICAST;
        if (!known) {
          // An AFI/SAFI we did not negotiate: nothing to interpret (RFC 4760 §7).
          (attributes.unknown ??= []).push({ flags, type, value: Buffer.from(value) });
          break;
        }
        const nlri = decodeNlri(value, 5 + nhLen, length, afi as Afi);
        if (!nlri) return reset(UpdateSubcode.OptionalAttributeError, 'malformed NLRI in MP_REACH_NLRI');
        const nextHops: string[] = [];
        const nh = value.subarray(4, 4 + nhLen);
        if (afi === AFI_IPV6 && (nhLen === 16 || nhLen === 32)) {
          nextHops.push(formatIpv6(nh));
          if (nhLen === 32) nextHops.push(formatIpv6(nh, 16));
        } else if (afi === AFI_IPV4 && nhLen === 4) {
          nextHops.push(formatIpv4(nh));
        } else {
          treatAsWithdraw.push(`MP_REACH_NLRI next hop length ${nhLen} for AFI ${afi}`);
        }
        attributes.mpReach = { afi, safi, nextHops, nlri };
        break;
      }
      case AttrType.MpUnreachNlri: {
        if (!flagsOk || length < 3) return reset(UpdateSubcode.OptionalAttributeError, 'malformed MP_UNREACH_NLRI');
        const afi = value.readUInt16BE(0);
        const safi = value[2]!;
        if (!((afi === AFI_IPV4 || afi === AFI_IPV6) && safi === SAFI_UNICAST)) {
          (attributes.unknown ??= []).push({ flags, type, value: Buffer.from(value) });
          break;
        }
        const withdrawn = decodeNlri(value, 3, length, afi as Afi);
        if (!withdrawn) return reset(UpdateSubcode.OptionalAttributeError, 'malformed NLRI in MP_UNREACH_NLRI');
        attributes.mpUnreach = { afi, safi, withdrawn };
        break;
      }
      case AttrType.As4Path: {
        const path = flagsOk ? decodeAsPath(value, 4) : null;
        if (!path) discarded.push('malformed AS4_PATH'); // RFC 6793 §6
        else attributes.as4Path = path;
        break;
      }
      case AttrType.As4Aggregator:
        if (!flagsOk || length !== 8) discarded.push('malformed AS4_AGGREGATOR');
        break;
      case AttrType.LargeCommunities:
        if (!flagsOk || length === 0 || length % 12 !== 0) treatAsWithdraw.push('malformed LARGE_COMMUNITY');
        else {
          const list: Array<[number, number, number]> = [];
          for (let i = 0; i < length; i += 12) list.push([value.readUInt32BE(i), value.readUInt32BE(i + 4), value.readUInt32BE(i + 8)]);
          attributes.largeCommunities = list;
        }
        break;
    }
  }

  // RFC 7606 §3(d): missing well-known mandatory attributes when there is reachability to carry.
  const announces = ctx.hasIpv4Nlri || (attributes.mpReach?.nlri.length ?? 0) > 0;
  if (announces && treatAsWithdraw.length === 0) {
    if (!seen.has(AttrType.Origin)) treatAsWithdraw.push('missing ORIGIN');
    if (!seen.has(AttrType.AsPath)) treatAsWithdraw.push('missing AS_PATH');
    if (ctx.hasIpv4Nlri && !seen.has(AttrType.NextHop)) treatAsWithdraw.push('missing NEXT_HOP');
  }
  return { attributes, treatAsWithdraw, discarded };
}
