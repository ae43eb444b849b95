// OPEN capabilities (RFC 5492): multiprotocol (RFC 4760), route refresh (RFC 2918),
// graceful restart (RFC 4724) and 4-octet AS numbers (RFC 6793). Unknown ones are kept opaque.

import { AFI_IPV4, AFI_IPV6, SAFI_UNICAST, type Afi } from './prefix.ts';

export const CapabilityCode = {
  Multiprotocol: 1,
  RouteRefresh: 2,
  GracefulRestart: 64,
  FourOctetAs: 65,
} as const;

export interface AfiSafi {
  afi: number;
  safi: number;
}

export interface GracefulRestartFamily extends AfiSafi {
  /** F bit: forwarding state was preserved across the restart. */
  forwardingPreserved: boolean;
}

export type Capability =
  | { code: 1; afi: number; safi: number }
  | { code: 2 }
  | { code: 64; restarting: boolean; notification: boolean; restartTime: number; families: GracefulRestartFamily[] }
  | { code: 65; asn: number }
  | { code: number; unknown: true; value: Buffer };

export function encodeCapability(cap: Capability): Buffer {
  let value: Buffer;
  if ('unknown' in cap) {
    value = cap.value;
  } else if (cap.code === CapabilityCode.Multiprotocol) {
    const c = cap as { afi: number; safi: number };
    value = Buffer.from([c.afi >> 8, c.afi & 0xff, 0, c.safi]);
  } else if (cap.code === CapabilityCode.RouteRefresh) {
    value = Buffer.alloc(0);
  } else if (cap.code === CapabilityCode.GracefulRestart) {
    const c = cap as Extract<Capability, { code: 64 }>;
    value = Buffer.alloc(2 + 4 * c.families.length);
    const flags = (c.restarting ? 0x8 : 0) | (c.notification ? 0x4 : 0);
    value.writeUInt16BE((flags << 12) | (c.restartTime & 0xfff), 0);
    c.families.forEach((f, i) => {
      value.writeUInt16BE(f.afi, 2 + i * 4);
      value[4 + i * 4] = f.safi;
      value[5 + i * 4] = f.forwardingPreserved ? 0x80 : 0;
    });
  } else {
    const c = cap as { asn: number };
    value = Buffer.alloc(4);
    value.writeUInt32BE(c.asn >>> 0, 0);
  }
  if (value.length > 255) throw new RangeError('capability value too long');
  return Buffer.concat([Buffer.from([cap.code, value.length]), value]);
}

/** Decodes a capabilities optional parameter's value. Returns a reason string when malformed. */
export function decodeCapabilities(buf: Buffer): Capability[] | string {
  const caps: Capability[] = [];
  let pos = 0;
  while (pos < buf.length) {
    if (pos + 2 > buf.length) return 'truncated capability header';
    const code = buf[pos]!;
    const len = buf[pos + 1]!;
    if (pos + 2 + len > buf.length) return `capability ${code} overruns its parameter`;
    const value = buf.subarray(pos + 2, pos + 2 + len);
    pos += 2 + len;
    switch (code) {
      case CapabilityCode.Multiprotocol:
        if (len !== 4) return `multiprotocol capability length ${len}, expected 4`;
        caps.push({ code: 1, afi: value.readUInt16BE(0), safi: value[3]! });
        break;
      case CapabilityCode.RouteRefresh:
        if (len !== 0) return `route refresh capability length ${len}, expected 0`;
        caps.push({ code: 2 });
        break;
      case CapabilityCode.GracefulRestart: {
        if (len < 2 || (len - 2) % 4 !== 0) return `graceful restart capability length ${len}`;
        const word = value.readUInt16BE(0);
        const families: GracefulRestartFamily[] = [];
        for (let i = 2; i < len; i += 4) {
          families.push({ afi: value.readUInt16BE(i), safi: value[i + 2]!, forwardingPreserved: (value[i + 3]! & 0x80) !== 0 });
        }
        caps.push({ code: 64, restarting: (word & 0x8000) !== 0, notification: (word & 0x4000) !== 0, restartTime: word & 0xfff, families });
        break;
      }
      case CapabilityCode.FourOctetAs:
        if (len !== 4) return `4-octet AS capability length ${len}, expected 4`;
        caps.push({ code: 65, asn: value.readUInt32BE(0) });
        break;
      default:
        caps.push({ code, unknown: true, value: Buffer.from(value) });
    }
  }
  return caps;
}

/** What the two OPENs agreed on. */
export interface NegotiatedCapabilities {
  as4: boolean;
  routeRefresh: boolean;
  ipv4: boolean;
  ipv6: boolean;
  /** The peer's graceful restart capability, if it sent one. */
  peerGracefulRestart: Extract<Capability, { code: 64 }> | null;
}

export function hasFamily(caps: Capability[], afi: Afi, safi = SAFI_UNICAST): boolean {
  return caps.some((c) => c.code === CapabilityCode.Multiprotocol && 'afi' in c && c.afi === afi && c.safi === safi);
}

export function negotiate(ours: Capability[], theirs: Capability[]): NegotiatedCapabilities {
  // RFC 4760 §8: a peer that sends no multiprotocol capability at all speaks IPv4 unicast only.
  const theirsHasMp = theirs.some((c) => c.code === CapabilityCode.Multiprotocol);
  const theyHave = (afi: Afi) => (theirsHasMp ? hasFamily(theirs, afi) : afi === AFI_IPV4);
  const gr = theirs.find((c): c is Extract<Capability, { code: 64 }> => c.code === CapabilityCode.GracefulRestart && 'families' in c);
  return {
    as4: ours.some((c) => c.code === CapabilityCode.FourOctetAs) && theirs.some((c) => c.code === CapabilityCode.FourOctetAs),
    routeRefresh: theirs.some((c) => c.code === CapabilityCode.RouteRefresh),
    ipv4: hasFamily(ours, AFI_IPV4) && theyHave(AFI_IPV4),
    ipv6: hasFamily(ours, AFI_IPV6) && theyHave(AFI_IPV6),
    peerGracefulRestart: gr ?? null,
  };
}
