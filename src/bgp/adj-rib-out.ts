// The routes the speaker originates (one table per family, keyed by NLRI), the interned attribute
// sets they point at, and the per-peer sending side: attribute encoding for one session, packing of
// prefixes into UPDATEs up to 4096 octets, and a batching writer that honours socket backpressure.

import type { Socket } from 'node:net';
import { AttrFlag, AttrType, encodeAttributes, ipv4Bytes, ipv6Bytes, type Origin, type PathAttributes } from './attributes.ts';
import { BgpConfigError } from './errors.ts';
import { MAX_MESSAGE_LENGTH, MessageType, writeHeader } from './messages.ts';
import { AFI_IPV4, AFI_IPV6, SAFI_UNICAST, parseIpv4, parseIpv6, type Afi } from './prefix.ts';

/** Attributes given to announce(). */
export interface RouteAttributes {
  origin?: Origin;
  /** MULTI_EXIT_DISC. */
  med?: number | undefined;
  /** LOCAL_PREF, sent on iBGP sessions only (default 100 there). */
  localPref?: number | undefined;
  /** "65000:100", a 32-bit number, or a well-known name: NO_EXPORT, NO_ADVERTISE, NO_EXPORT_SUBCONFED, NOPEER, BLACKHOLE, GRACEFUL_SHUTDOWN. */
  communities?: Array<string | number>;
  /** "64512:1:2" or [global, local1, local2]. */
  largeCommunities?: Array<string | [number, number, number]>;
  /** Next hop for this route; defaults to the peer's configured next hop or the session's local address. */
  nextHop?: string;
}

export const wellKnownCommunities: Record<string, number> = {
  GRACEFUL_SHUTDOWN: 0xffff0000,
  BLACKHOLE: 0xffff029a,
  NO_EXPORT: 0xffffff01,
  NO_ADVERTISE: 0xffffff02,
  NO_EXPORT_SUBCONFED: 0xffffff03,
  NOPEER: 0xffffff04,
};

const MAX_COMMUNITIES = 256;
const MAX_LARGE_COMMUNITIES = 128;

/** An interned, immutable attribute set: routes with identical attributes share one object. */
export interface AttrSet {
  readonly id: number;
  readonly origin: Origin;
  readonly med: number | undefined;
  readonly localPref: number | undefined;
  readonly communities: readonly number[];
  readonly largeCommunities: ReadonlyArray<readonly [number, number, number]>;
  readonly nextHop: string | undefined;
  readonly key: string;
  refs: number;
}

function isU32(n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n <= 0xffffffff;
}

function parseCommunity(c: string | number): number {
  if (typeof c === 'number') {
    if (!isU32(c)) throw new BgpConfigError(`community ${c} is not a 32-bit unsigned integer`);
    return c;
  }
  const named = wellKnownCommunities[c.toUpperCase().replace(/-/g, '_')];
  if (named !== undefined) return named;
  const m = /^(\d{1,5}):(\d{1,5})$/.exec(c);
  if (!m || Number(m[1]) > 0xffff || Number(m[2]) > 0xffff) throw new BgpConfigError(`invalid community "${c}" (expected "asn:value" with 16-bit parts or a well-known name)`);
  return ((Number(m[1]) << 16) | Number(m[2])) >>> 0;
}

function parseLargeCommunity(c: string | [number, number, number]): [number, number, number] {
  const parts = typeof c === 'string' ? c.split(':').map((p) => (/^\d{1,10}$/.test(p) ? Number(p) : NaN)) : c;
  if (!Array.isArray(parts) || parts.length !== 3 || !parts.every(isU32)) {
    throw new BgpConfigError(`invalid large community "${String(c)}" (expected "global:local1:local2" with 32-bit parts)`);
  }
  return [parts[0]!, parts[1]!, parts[2]!];
}

/** Validates announce() attributes and interns them. Throws BgpConfigError on bad input. */
export class AttrSetTable {
  private readonly byKey = new Map<string, AttrSet>();
  private nextId = 1;

  intern(afi: Afi, input: RouteAttributes = {}): AttrSet {
    const origin = input.origin ?? 'igp';
    if (origin !== 'igp' && origin !== 'egp' && origin !== 'incomplete') throw new BgpConfigError(`invalid origin "${String(origin)}"`);
    if (input.med !== undefined && !isU32(input.med)) throw new BgpConfigError(`med must be a 32-bit unsigned integer`);
    if (input.localPref !== undefined && !isU32(input.localPref)) throw new BgpConfigError(`localPref must be a 32-bit unsigned integer`);
    const communities = [...new Set((input.communities ?? []).map(parseCommunity))];
    const large = (input.largeCommunities ?? []).map(parseLargeCommunity);
    const largeUnique = [...new Map(large.map((l) => [l.join(':'), l] as const)).values()];
    if (communities.length > MAX_COMMUNITIES) throw new BgpConfigError(`at most ${MAX_COMMUNITIES} communities per route`);
    if (largeUnique.length > MAX_LARGE_COMMUNITIES) throw new BgpConfigError(`at most ${MAX_LARGE_COMMUNITIES} large communities per route`);
    let nextHop: string | undefined;
    if (input.nextHop !== undefined) {
      const ok = afi === AFI_IPV4 ? parseIpv4(input.nextHop) : parseIpv6(input.nextHop);
      if (!ok) throw new BgpConfigError(`nextHop "${input.nextHop}" is not an ${afi === AFI_IPV4 ? 'IPv4' : 'IPv6'} address`);
      nextHop = input.nextHop;
    }
    const key = JSON.stringify([origin, input.med, input.localPref, communities, largeUnique, nextHop]);
    let set = this.byKey.get(key);
    if (!set) {
      set = { id: this.nextId++, origin, med: input.med, localPref: input.localPref, communities, largeCommunities: largeUnique, nextHop, key, refs: 0 };
      this.byKey.set(key, set);
    }
    return set;
  }

  retain(set: AttrSet): void {
    set.refs++;
  }

  release(set: AttrSet): void {
    if (--set.refs <= 0 && this.byKey.get(set.key) === set) this.byKey.delete(set.key);
  }

  get size(): number {
    return this.byKey.size;
  }
}

/** What one session needs to turn an AttrSet into wire attributes. */
export interface SessionEncodingContext {
  ibgp: boolean;
  as4: boolean;
  localAsn: number;
  nextHopIpv4: string | undefined;
  nextHopIpv6: string | undefined;
  linkLocalIpv6: string | undefined;
}

export interface EncodedIpv4Attrs {
  afi: 1;
  block: Buffer;
}

export interface EncodedIpv6Attrs {
  afi: 2;
  /** Attributes with type codes below MP_REACH_NLRI. */
  before: Buffer;
  /** Attributes with type codes above it. */
  after: Buffer;
  nextHop: Buffer;
}

export type EncodedAttrs = EncodedIpv4Attrs | EncodedIpv6Attrs;

/** Per-session cache of encoded attribute blocks. Returns null when no next hop is known. */
export class SessionEncoder {
  private readonly cache = [new Map<AttrSet, EncodedAttrs | null>(), new Map<AttrSet, EncodedAttrs | null>()];

  constructor(readonly ctx: SessionEncodingContext) {}

  encode(afi: Afi, set: AttrSet): EncodedAttrs | null {
    const cache = this.cache[afi - 1]!;
    let enc = cache.get(set);
    if (enc === undefined) {
      enc = this.build(afi, set);
      cache.set(set, enc);
    }
    return enc;
  }

  pathAttributes(afi: Afi, set: AttrSet): PathAttributes {
    const { ctx } = this;
    const attrs: PathAttributes = {
      origin: set.origin,
      asPath: ctx.ibgp ? [] : [{ type: 'sequence', asns: [ctx.localAsn] }],
    };
    const nextHop = set.nextHop ?? ctx.nextHopIpv4;
    if (afi === AFI_IPV4 && nextHop !== undefined) attrs.nextHop = nextHop;
    if (set.med !== undefined) attrs.med = set.med;
    if (ctx.ibgp) attrs.localPref = set.localPref ?? 100;
    if (set.communities.length) attrs.communities = [...set.communities];
    if (set.largeCommunities.length) attrs.largeCommunities = set.largeCommunities.map((l) => [l[0], l[1], l[2]]);
    return attrs;
  }

  private build(afi: Afi, set: AttrSet): EncodedAttrs | null {
    const attrs = this.pathAttributes(afi, set);
    if (afi === AFI_IPV4) {
      if (!attrs.nextHop) return null;
      return { afi: AFI_IPV4, block: encodeAttributes(attrs, { as4: this.ctx.as4 }) };
    }
    const global = set.nextHop ?? this.ctx.nextHopIpv6;
    if (!global) return null;
    const nextHop = this.ctx.linkLocalIpv6 ? Buffer.concat([ipv6Bytes(global), ipv6Bytes(this.ctx.linkLocalIpv6)]) : ipv6Bytes(global);
    const block = encodeAttributes(attrs, { as4: this.ctx.as4 });
    const split = splitAtType(block, AttrType.MpReachNlri);
    return { afi: AFI_IPV6, before: block.subarray(0, split), after: block.subarray(split), nextHop };
  }
}

/** Offset of the first attribute whose type code is above `type` (attributes are in ascending order). */
function splitAtType(block: Buffer, type: number): number {
  let pos = 0;
  while (pos < block.length) {
    if (block[pos + 1]! > type) return pos;
    const ext = (block[pos]! & AttrFlag.ExtendedLength) !== 0;
    pos += ext ? 4 + block.readUInt16BE(pos + 2) : 3 + block[pos + 2]!;
  }
  return pos;
}

/** Batches whole messages into large socket writes and waits for 'drain' when the socket is full. */
export class MessageWriter {
  private buf: Buffer;
  private pos = 0;
  messages = 0;
  bytes = 0;

  constructor(
    private readonly socket: Socket,
    private readonly chunkSize = 256 * 1024,
  ) {
    this.buf = Buffer.allocUnsafe(chunkSize);
  }

  /** Returns the buffer and offset at which `length` octets may be written, flushing first if needed. */
  async reserve(length: number): Promise<{ buf: Buffer; offset: number }> {
    if (this.pos + length > this.buf.length) await this.flush();
    return { buf: this.buf, offset: this.pos };
  }

  commit(length: number): void {
    this.pos += length;
    this.messages++;
    this.bytes += length;
  }

  async flush(): Promise<void> {
    if (this.pos === 0) return;
    const out = this.buf.subarray(0, this.pos);
    // The socket keeps a reference to `out`, so the next batch goes into a fresh buffer.
    this.buf = Buffer.allocUnsafe(this.chunkSize);
    this.pos = 0;
    if (this.socket.destroyed) return;
    if (!this.socket.write(out)) await waitForDrain(this.socket);
  }
}

function waitForDrain(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      socket.off('drain', done);
      socket.off('close', done);
      resolve();
    };
    socket.on('drain', done);
    socket.on('close', done);
  });
}

function copyKey(buf: Buffer, offset: number, key: string): number {
  for (let j = 0; j < key.length; j++) buf[offset + j] = key.charCodeAt(j);
  return offset + key.length;
}

/** How many keys from `start` fit into `room` octets. */
function fit(keys: readonly string[], start: number, room: number): { count: number; bytes: number } {
  let bytes = 0;
  let i = start;
  while (i < keys.length && bytes + keys[i]!.length <= room) bytes += keys[i++]!.length;
  return { count: i - start, bytes };
}

/** Writes announcements of `keys` sharing one attribute block, packed into as few UPDATEs as fit. */
export async function writeAnnouncements(w: MessageWriter, enc: EncodedAttrs, keys: readonly string[]): Promise<void> {
  if (enc.afi === AFI_IPV4) {
    const fixed = 23 + enc.block.length;
    let i = 0;
    while (i < keys.length) {
      const { count, bytes } = fit(keys, i, MAX_MESSAGE_LENGTH - fixed);
      if (count === 0) throw new RangeError('attributes leave no room for NLRI');
      const length = fixed + bytes;
      const { buf, offset } = await w.reserve(length);
      writeHeader(buf, offset, length, MessageType.Update);
      buf.writeUInt16BE(0, offset + 19);
      buf.writeUInt16BE(enc.block.length, offset + 21);
      enc.block.copy(buf, offset + 23);
      let p = offset + fixed;
      for (let k = i; k < i + count; k++) p = copyKey(buf, p, keys[k]!);
      w.commit(length);
      i += count;
    }
    return;
  }
  // MP_REACH_NLRI: flags, type, 2-octet length, AFI, SAFI, next hop length, next hop, reserved, NLRI.
  const mpFixed = 4 + 4 + enc.nextHop.length + 1;
  const attrFixed = enc.before.length + mpFixed + enc.after.length;
  const fixed = 23 + attrFixed;
  let i = 0;
  while (i < keys.length) {
    const { count, bytes } = fit(keys, i, MAX_MESSAGE_LENGTH - fixed);
    if (count === 0) throw new RangeError('attributes leave no room for NLRI');
    const length = fixed + bytes;
    const { buf, offset } = await w.reserve(length);
    writeHeader(buf, offset, length, MessageType.Update);
    buf.writeUInt16BE(0, offset + 19);
    buf.writeUInt16BE(attrFixed + bytes, offset + 21);
    let p = offset + 23;
    p += enc.before.copy(buf, p);
    buf[p] = AttrFlag.Optional | AttrFlag.ExtendedLength;
    buf[p + 1] = AttrType.MpReachNlri;
    buf.writeUInt16BE(mpFixed - 4 + bytes, p + 2);
    buf.writeUInt16BE(AFI_IPV6, p + 4);
    buf[p + 6] = SAFI_UNICAST;
    buf[p + 7] = enc.nextHop.length;
    p += 8;
    p += enc.nextHop.copy(buf, p);
    buf[p++] = 0;
    for (let k = i; k < i + count; k++) p = copyKey(buf, p, keys[k]!);
    p += enc.after.copy(buf, p);
    w.commit(length);
    i += count;
  }
}

/** Writes withdrawals: the withdrawn-routes field for IPv4, MP_UNREACH_NLRI for IPv6. */
export async function writeWithdrawals(w: MessageWriter, afi: Afi, keys: readonly string[]): Promise<void> {
  const fixed = afi === AFI_IPV4 ? 23 : 23 + 4 + 3;
  let i = 0;
  while (i < keys.length) {
    const { count, bytes } = fit(keys, i, MAX_MESSAGE_LENGTH - fixed);
    const length = fixed + bytes;
    const { buf, offset } = await w.reserve(length);
    writeHeader(buf, offset, length, MessageType.Update);
    if (afi === AFI_IPV4) {
      buf.writeUInt16BE(bytes, offset + 19);
      let p = offset + 21;
      for (let k = i; k < i + count; k++) p = copyKey(buf, p, keys[k]!);
      buf.writeUInt16BE(0, p);
    } else {
      buf.writeUInt16BE(0, offset + 19);
      buf.writeUInt16BE(7 + bytes, offset + 21);
      const p0 = offset + 23;
      buf[p0] = AttrFlag.Optional | AttrFlag.ExtendedLength;
      buf[p0 + 1] = AttrType.MpUnreachNlri;
      buf.writeUInt16BE(3 + bytes, p0 + 2);
      buf.writeUInt16BE(AFI_IPV6, p0 + 4);
      buf[p0 + 6] = SAFI_UNICAST;
      let p = p0 + 7;
      for (let k = i; k < i + count; k++) p = copyKey(buf, p, keys[k]!);
    }
    w.commit(length);
    i += count;
  }
}

export { ipv4Bytes };
