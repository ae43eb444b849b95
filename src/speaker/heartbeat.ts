// Speaker heartbeats, the pure part: the packet codec and the peer liveness state machine. No I/O
// and no clock of its own: the transport (heartbeat-transport.ts) feeds it verified packets and the
// local monotonic time; tests drive it with numbers (test/speaker/heartbeat.test.ts).
//
// Why heartbeats: the L2 election needs to know within a few hundred milliseconds which speakers
// are alive. Learning that from Leases costs an API write per node every few hundred ms (2.67/s per
// node at a 1.5 s Lease), which at 1,000 nodes is more than etcd should take. Speakers that may
// announce the same addresses tell each other directly instead, over UDP; the API carries only
// membership (a node Lease renewed every 10 s, like the kubelet's).
//
// Packet (version 1), all integers big-endian:
//   0  'A' 'L' 'H' 1         magic and version: anything else is dropped unread
//   4  u8 flags              bit 0: leaving (graceful shutdown: count me dead at once)
//   5  u8 n                  length of the node name (1..253, UTF-8)
//   6  node name
//   .  u64 incarnation       chosen at process start (wall-clock ms), only ever compared with the
//                            SAME sender's previous incarnations: a restart is a new incarnation
//   .  u64 sequence          +1 per packet within an incarnation
//   .  32 bytes              HMAC-SHA256 over everything before it, with the shared key
// Authentication: the key is a Secret only speakers can read (mounted as a file; RBAC gives nobody
// a Secret `get` for it). Replay: a packet is accepted only when (incarnation, sequence) is higher
// than the last accepted one of that sender, so a recorded packet replayed later is dropped.
// Timestamps of other nodes are never read: freshness is the LOCAL monotonic time at which the
// packet arrived, so clock skew between nodes cannot make anyone look alive or dead.
import { createHmac, timingSafeEqual } from 'node:crypto';

export const HEARTBEAT_MAGIC = Buffer.from([0x41, 0x4c, 0x48, 0x01]);
const MAC_LEN = 32;
const FLAG_LEAVING = 1;

export interface Heartbeat {
  node: string;
  incarnation: bigint;
  seq: bigint;
  leaving: boolean;
}

export function encodeHeartbeat(hb: Heartbeat, key: Buffer): Buffer {
  const name = Buffer.from(hb.node, 'utf8');
  if (name.length < 1 || name.length > 253) throw new Error(`heartbeat: node name must be 1..253 bytes, got ${name.length}`);
  const body = Buffer.alloc(6 + name.length + 16);
  HEARTBEAT_MAGIC.copy(body, 0);
  body[4] = hb.leaving ? FLAG_LEAVING : 0;
  body[5] = name.length;
  name.copy(body, 6);
  body.writeBigUInt64BE(BigInt.asUintN(64, hb.incarnation), 6 + name.length);
  body.writeBigUInt64BE(BigInt.asUintN(64, hb.seq), 14 + name.length);
  return Buffer.concat([body, createHmac('sha256', key).update(body).digest()]);
}

export type DecodeResult = { ok: true; heartbeat: Heartbeat; keyIndex: number } | { ok: false; reason: 'malformed' | 'version' | 'bad-mac' };

/**
 * Parses and authenticates a packet against each key in turn (current first, then the previous one
 * during a rotation). A packet that fails any check says nothing about its sender.
 */
export function decodeHeartbeat(buf: Buffer, keys: readonly Buffer[]): DecodeResult {
  if (buf.length < 6 + 1 + 16 + MAC_LEN) return { ok: false, reason: 'malformed' };
  if (buf.readUInt32BE(0) >>> 8 !== 0x414c48) return { ok: false, reason: 'malformed' };
  if (buf[3] !== 1) return { ok: false, reason: 'version' };
  const n = buf[5]!;
  if (n < 1 || buf.length !== 6 + n + 16 + MAC_LEN) return { ok: false, reason: 'malformed' };
  const body = buf.subarray(0, buf.length - MAC_LEN);
  const mac = buf.subarray(buf.length - MAC_LEN);
  const keyIndex = keys.findIndex((k) => timingSafeEqual(createHmac('sha256', k).update(body).digest(), mac));
  if (keyIndex < 0) return { ok: false, reason: 'bad-mac' };
  const node = buf.toString('utf8', 6, 6 + n);
  return {
    ok: true,
    keyIndex,
    heartbeat: { node, leaving: (buf[4]! & FLAG_LEAVING) !== 0, incarnation: buf.readBigUInt64BE(6 + n), seq: buf.readBigUInt64BE(14 + n) },
  };
}

export type ReceiveResult = 'joined' | 'accepted' | 'left' | 'replay' | 'not-member' | 'self';

interface PeerState {
  incarnation: bigint;
  seq: bigint;
  /** local monotonic ms of the last accepted packet */
  at: number;
  leaving: boolean;
}

export interface PeerLivenessOptions {
  self: string;
  /** the send interval (ms) */
  intervalMs: number;
  /** a peer is dead after this many intervals without an accepted packet */
  missed: number;
  /**
   * A peer silent this long (ms) is forgotten, replay state included, so that a node whose wall
   * clock went back across a restart (a LOWER incarnation) is heard again. Default 30 s.
   */
  forgetAfterMs?: number;
}

/**
 * Who is alive, as this node hears it. Inputs: the membership (from the API: nodes with a node
 * Lease), authenticated heartbeats with their local arrival time, and the local time of a query.
 * Output: the heard set (this node plus every member heard within `missed` intervals).
 *
 * Memory is bounded by the membership: packets of senders that are not members are counted and
 * dropped without keeping anything, and a node that leaves the membership is forgotten.
 */
export class PeerLiveness {
  readonly deadMs: number;
  private readonly forgetAfterMs: number;
  private readonly peers = new Map<string, PeerState>();
  private members = new Set<string>();

  constructor(readonly opts: PeerLivenessOptions) {
    if (!(opts.intervalMs > 0) || !(opts.missed >= 1)) throw new Error('heartbeat: intervalMs must be > 0 and missed >= 1');
    this.deadMs = opts.intervalMs * opts.missed;
    this.forgetAfterMs = Math.max(opts.forgetAfterMs ?? 30_000, this.deadMs * 2);
  }

  /** The membership from the API; state of nodes that left it is dropped. */
  setMembers(members: Iterable<string>): void {
    this.members = new Set(members);
    for (const n of [...this.peers.keys()]) if (!this.members.has(n)) this.peers.delete(n);
  }

  memberList(): string[] {
    return [...this.members].sort();
  }

  private alive(p: PeerState | undefined, at: number): boolean {
    return !!p && !p.leaving && at < p.at + this.deadMs;
  }

  /** One authenticated heartbeat that arrived at local time `at`. */
  receive(hb: Heartbeat, at: number): ReceiveResult {
    if (hb.node === this.opts.self) return 'self';
    if (!this.members.has(hb.node)) return 'not-member';
    const cur = this.peers.get(hb.node);
    if (cur && at - cur.at >= this.forgetAfterMs) this.peers.delete(hb.node);
    const prev = this.peers.get(hb.node);
    if (prev && (hb.incarnation < prev.incarnation || (hb.incarnation === prev.incarnation && hb.seq <= prev.seq))) return 'replay';
    const wasAlive = this.alive(prev, at);
    this.peers.set(hb.node, { incarnation: hb.incarnation, seq: hb.seq, at, leaving: hb.leaving });
    if (hb.leaving) return wasAlive ? 'left' : 'accepted';
    return wasAlive ? 'accepted' : 'joined';
  }

  /** This node and every member heard within the last `missed` intervals, at local time `at`. */
  heard(at: number): Set<string> {
    const out = new Set<string>([this.opts.self]);
    for (const [n, p] of this.peers) if (this.alive(p, at)) out.add(n);
    return out;
  }

  /** The earliest local time after `at` at which a peer heard now turns dead (without news). */
  nextDeath(at: number): number | undefined {
    let next: number | undefined;
    for (const p of this.peers.values()) {
      if (!this.alive(p, at)) continue;
      const end = p.at + this.deadMs;
      if (next === undefined || end < next) next = end;
    }
    return next;
  }

  /** Tracked peers (bounded by the membership). */
  size(): number {
    return this.peers.size;
  }
}
