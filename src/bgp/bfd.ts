// Bidirectional Forwarding Detection for BGP peers: single-hop, asynchronous mode, no
// authentication (RFC 5880, RFC 5881), on node:dgram.
//
// - Codec (§4.1): the 24-octet mandatory section; decodeBfd() never throws.
// - BfdSession: the state machine of §6.8.6 (AdminDown, Down, Init, Up), the transmit timer of
//   §6.8.7 (max(DesiredMinTx, remote RequiredMinRx), jittered to 75–100 %, 75–90 % with a detect
//   multiplier of 1), the detection time of §6.8.4 (remote Detect Mult × max(RequiredMinRx, remote
//   DesiredMinTx)) and the Poll Sequence of §6.5 for every timer change while Up: DesiredMinTx is at
//   least 1 s while the session is not Up (§6.8.3), so reaching Up is itself such a change. The
//   detection timer runs in every state: when it lapses the remote discriminator is forgotten
//   (§6.8.1), so a peer that restarted with a new discriminator is accepted again.
// - BfdTransport (RFC 5881): received on UDP 3784; sent from one source port per session in
//   49152–65535 with TTL / hop limit 255 (§4, §5). Received packets must carry TTL 255 (§5, no
//   authentication here): node:dgram cannot read a datagram's TTL, so the receive socket is created
//   through koffi with a kernel filter that drops everything else (native.ts). Without koffi the
//   sockets are plain dgram ones and the check is not made (status says `ttlChecked: false`).
//   Packets are matched to sessions by Your Discriminator, or by source address when it is zero.
import type { Logger } from '../log.ts';
import dgram from 'node:dgram';
import { EventEmitter } from 'node:events';
import { randomInt } from 'node:crypto';
import { udpSocketTtl255 } from './native.ts';
import { normalizeAddress, parseIp } from './prefix.ts';

export const BFD_PORT = 3784;
export const BFD_SOURCE_PORTS = [49152, 65535] as const;
const BFD_VERSION = 1;
const BFD_LENGTH = 24;
/** DesiredMinTx while the session is not Up (RFC 5880 §6.8.3: not less than one second). */
const SLOW_TX_US = 1_000_000;

export type BfdState = 'AdminDown' | 'Down' | 'Init' | 'Up';
const STATES: BfdState[] = ['AdminDown', 'Down', 'Init', 'Up'];

/** Diagnostic codes (RFC 5880 §4.1). */
export const BfdDiag = {
  None: 0,
  ControlDetectionTimeExpired: 1,
  EchoFunctionFailed: 2,
  NeighborSignaledSessionDown: 3,
  ForwardingPlaneReset: 4,
  PathDown: 5,
  ConcatenatedPathDown: 6,
  AdministrativelyDown: 7,
  ReverseConcatenatedPathDown: 8,
} as const;
const DIAG_TEXT = ['no diagnostic', 'control detection time expired', 'echo function failed', 'neighbor signaled session down', 'forwarding plane reset', 'path down', 'concatenated path down', 'administratively down', 'reverse concatenated path down'];
export const describeDiag = (d: number) => DIAG_TEXT[d] ?? `diagnostic ${d}`;

export interface BfdPacket {
  diag: number;
  state: BfdState;
  poll: boolean;
  final: boolean;
  /** Control Plane Independent. */
  cpi: boolean;
  auth: boolean;
  demand: boolean;
  multipoint: boolean;
  detectMult: number;
  myDisc: number;
  yourDisc: number;
  desiredMinTxUs: number;
  requiredMinRxUs: number;
  requiredMinEchoRxUs: number;
}

export function encodeBfd(p: BfdPacket): Buffer {
  const b = Buffer.alloc(BFD_LENGTH);
  b[0] = (BFD_VERSION << 5) | (p.diag & 0x1f);
  b[1] = (STATES.indexOf(p.state) << 6) | (p.poll ? 0x20 : 0) | (p.final ? 0x10 : 0) | (p.cpi ? 0x08 : 0) | (p.auth ? 0x04 : 0) | (p.demand ? 0x02 : 0) | (p.multipoint ? 0x01 : 0);
  b[2] = p.detectMult;
  b[3] = BFD_LENGTH;
  b.writeUInt32BE(p.myDisc >>> 0, 4);
  b.writeUInt32BE(p.yourDisc >>> 0, 8);
  b.writeUInt32BE(p.desiredMinTxUs >>> 0, 12);
  b.writeUInt32BE(p.requiredMinRxUs >>> 0, 16);
  b.writeUInt32BE(p.requiredMinEchoRxUs >>> 0, 20);
  return b;
}

export type BfdDecodeResult = { ok: true; packet: BfdPacket } | { ok: false; error: string };

/** The packet checks of RFC 5880 §6.8.6 that need no session. */
export function decodeBfd(b: Buffer): BfdDecodeResult {
  if (b.length < BFD_LENGTH) return { ok: false, error: `${b.length} octets, shorter than a control packet` };
  const version = b[0]! >> 5;
  if (version !== BFD_VERSION) return { ok: false, error: `version ${version}` };
  const length = b[3]!;
  const auth = (b[1]! & 0x04) !== 0;
  if (length < (auth ? 26 : BFD_LENGTH)) return { ok: false, error: `length field ${length} too small` };
  if (length > b.length) return { ok: false, error: `length field ${length} exceeds the ${b.length} octets received` };
  const packet: BfdPacket = {
    diag: b[0]! & 0x1f,
    state: STATES[b[1]! >> 6]!,
    poll: (b[1]! & 0x20) !== 0,
    final: (b[1]! & 0x10) !== 0,
    cpi: (b[1]! & 0x08) !== 0,
    auth,
    demand: (b[1]! & 0x02) !== 0,
    multipoint: (b[1]! & 0x01) !== 0,
    detectMult: b[2]!,
    myDisc: b.readUInt32BE(4),
    yourDisc: b.readUInt32BE(8),
    desiredMinTxUs: b.readUInt32BE(12),
    requiredMinRxUs: b.readUInt32BE(16),
    requiredMinEchoRxUs: b.readUInt32BE(20),
  };
  if (packet.detectMult === 0) return { ok: false, error: 'detect multiplier 0' };
  if (packet.multipoint) return { ok: false, error: 'multipoint bit set' };
  if (packet.myDisc === 0) return { ok: false, error: 'my discriminator 0' };
  if (packet.yourDisc === 0 && packet.state !== 'Down' && packet.state !== 'AdminDown') return { ok: false, error: `your discriminator 0 in state ${packet.state}` };
  if (packet.poll && packet.final) return { ok: false, error: 'poll and final both set' };
  return { ok: true, packet };
}

/** Per-peer configuration: what we ask for and offer. */
export interface BfdOptions {
  /** Required Min RX Interval: the fastest we accept packets, ms (default 300). */
  minRxMs?: number;
  /** Desired Min TX Interval once Up, ms (default 300). */
  minTxMs?: number;
  /** Detect Mult sent to the peer: it declares us down after this many of its intervals (default 3). */
  multiplier?: number;
}

export interface BfdStatus {
  state: BfdState;
  remoteState: BfdState;
  /** Our diagnostic: why the session last went down. */
  diag: string;
  /** The peer's diagnostic in its last packet. */
  remoteDiag: string;
  localDiscriminator: number;
  remoteDiscriminator: number;
  /** Interval we send at now, ms. */
  txIntervalMs: number;
  /** Time without a packet after which we declare the peer down, ms (0 before the first packet). */
  detectionTimeMs: number;
  /** Whether received packets are checked for TTL / hop limit 255 (needs koffi). */
  ttlChecked: boolean;
  upSince: Date | null;
  /** Up → Down transitions. */
  downs: number;
  lastError: string | null;
}

/** Events of a BfdSession. */
export interface BfdSessionEvents {
  state: [{ from: BfdState; to: BfdState; diag: number }];
}

interface Sender {
  /** `sent` runs once the datagram has left (or failed): the socket may be closed only then. */
  send(packet: Buffer, sent?: () => void): void;
}

export interface BfdSessionConfig {
  peer: string;
  minRxMs: number;
  minTxMs: number;
  multiplier: number;
  localDiscriminator: number;
}

/** The RFC 5880 state machine and timers of one session; the transport is injected. */
export class BfdSession extends EventEmitter<BfdSessionEvents> {
  state: BfdState = 'Down';
  private remoteState: BfdState = 'Down';
  private localDiag = 0;
  private remoteDiag = 0;
  private remoteDisc = 0;
  private remoteMinRxUs = 1;
  private remoteDesiredTxUs = 0;
  private remoteDetectMult = 0;
  /** DesiredMinTx and RequiredMinRx as sent now; the detection time and transmit interval use the "active" ones until a Poll Sequence ends. */
  private desiredTxUs = SLOW_TX_US;
  private activeTxUs = SLOW_TX_US;
  private readonly requiredRxUs: number;
  private pollActive = false;
  private txTimer: NodeJS.Timeout | null = null;
  private detectTimer: NodeJS.Timeout | null = null;
  private detectImmediate: NodeJS.Immediate | null = null;
  private lastRxAt = 0;
  private upSince: number | null = null;
  private downs = 0;
  private stopped = false;
  lastError: string | null = null;
  ttlChecked = false;

  constructor(
    readonly config: BfdSessionConfig,
    private readonly sender: Sender,
  ) {
    super();
    this.requiredRxUs = config.minRxMs * 1000;
  }

  get localDiscriminator(): number {
    return this.config.localDiscriminator;
  }

  start(): void {
    this.stopped = false;
    this.scheduleTx(0);
  }

  /**
   * AdminDown (§6.8.16): tells the peer not to treat this as a failure, then stops sending.
   * `sent` runs when that last packet is out: a peer that never hears it declares the session down
   * after its detection time and, like BIRD, takes down a BGP session that came up meanwhile.
   */
  stop(sent?: () => void): void {
    if (this.stopped) {
      sent?.();
      return;
    }
    this.setState('AdminDown', BfdDiag.AdministrativelyDown);
    this.transmit(false, sent);
    this.stopped = true;
    this.clearTimers();
  }

  private clearTimers(): void {
    if (this.txTimer) clearTimeout(this.txTimer);
    this.clearDetection();
    this.txTimer = this.detectTimer = null;
  }

  /** The agreed transmit interval (§6.8.7), µs; 0: the peer asked for no packets. */
  private txIntervalUs(): number {
    if (this.remoteMinRxUs === 0) return 0;
    return Math.max(this.activeTxUs, this.remoteMinRxUs);
  }

  /** Detection time (§6.8.4, asynchronous mode), µs. */
  detectionTimeUs(): number {
    if (this.remoteDetectMult === 0) return 0;
    return this.remoteDetectMult * Math.max(this.requiredRxUs, this.remoteDesiredTxUs);
  }

  private scheduleTx(delayMs?: number): void {
    if (this.stopped) return;
    if (this.txTimer) clearTimeout(this.txTimer);
    this.txTimer = null;
    const intervalUs = this.txIntervalUs();
    if (intervalUs === 0 && delayMs === undefined) return;
    const max = this.config.multiplier === 1 ? 0.9 : 1;
    const ms = delayMs ?? (intervalUs / 1000) * (0.75 + Math.random() * (max - 0.75));
    this.txTimer = setTimeout(() => {
      this.txTimer = null;
      this.transmit(false);
      this.scheduleTx();
    }, ms).unref();
  }

  private transmit(final: boolean, sent?: () => void): void {
    const packet = encodeBfd({
      diag: this.localDiag,
      state: this.state,
      poll: this.pollActive && !final,
      final,
      cpi: false,
      auth: false,
      demand: false,
      multipoint: false,
      detectMult: this.config.multiplier,
      myDisc: this.config.localDiscriminator,
      yourDisc: this.remoteDisc,
      desiredMinTxUs: this.desiredTxUs,
      requiredMinRxUs: this.state === 'AdminDown' ? 0 : this.requiredRxUs,
      requiredMinEchoRxUs: 0,
    });
    try {
      this.sender.send(packet, sent);
    } catch (err) {
      this.lastError = `send failed: ${(err as Error).message}`;
      sent?.();
    }
  }

  private clearDetection(): void {
    // The detection timer, or for one turn of the loop the Immediate that confirms it.
    if (this.detectTimer) clearTimeout(this.detectTimer);
    if (this.detectImmediate) clearImmediate(this.detectImmediate);
    this.detectTimer = null;
    this.detectImmediate = null;
  }

  private armDetection(): void {
    this.clearDetection();
    const us = this.detectionTimeUs();
    if (us === 0 || this.stopped) return;
    this.detectTimer = setTimeout(() => this.checkDetection(), us / 1000).unref();
  }

  /**
   * After a blocked event loop, timers run before pending I/O: packets that arrived in time may
   * still be unread when the detection timer fires. setImmediate runs after the poll phase, so any
   * queued packet has been received (and has re-armed the timer) before the session is declared down.
   */
  private checkDetection(): void {
    this.detectTimer = null;
    this.detectImmediate = setImmediate(() => {
      this.detectImmediate = null;
      const us = this.detectionTimeUs();
      const idleMs = performance.now() - this.lastRxAt;
      if (us > 0 && idleMs < us / 1000) {
        this.detectTimer = setTimeout(() => this.checkDetection(), us / 1000 - idleMs).unref();
        return;
      }
      this.onDetectionExpired();
    });
    this.detectImmediate.unref();
  }

  private onDetectionExpired(): void {
    this.detectTimer = null;
    // §6.8.1: forget the peer's discriminator, so that it can come back with a new one.
    this.remoteDisc = 0;
    this.remoteState = 'Down';
    this.remoteDetectMult = 0;
    this.remoteMinRxUs = 1;
    if (this.state === 'Init' || this.state === 'Up') {
      this.setState('Down', BfdDiag.ControlDetectionTimeExpired);
      this.transmit(false);
    }
    this.scheduleTx();
  }

  /** A control packet for this session (already decoded and matched). */
  receive(p: BfdPacket): void {
    if (this.stopped) return;
    if (p.auth) {
      // No authentication is configured: §6.8.6 says discard.
      this.lastError = 'packet with the authentication bit set discarded (authentication not configured)';
      return;
    }
    const txBefore = this.txIntervalUs();
    this.lastRxAt = performance.now();
    this.remoteDisc = p.myDisc;
    this.remoteState = p.state;
    this.remoteDiag = p.diag;
    this.remoteMinRxUs = p.requiredMinRxUs;
    this.remoteDesiredTxUs = p.desiredMinTxUs;
    this.remoteDetectMult = p.detectMult;
    if (p.final && this.pollActive) {
      this.pollActive = false;
      this.activeTxUs = this.desiredTxUs;
    }
    if (this.state !== 'AdminDown') {
      if (p.state === 'AdminDown') {
        if (this.state !== 'Down') this.setState('Down', BfdDiag.NeighborSignaledSessionDown);
      } else if (this.state === 'Down') {
        if (p.state === 'Down') this.setState('Init', BfdDiag.None);
        else if (p.state === 'Init') this.setState('Up', BfdDiag.None);
      } else if (this.state === 'Init') {
        if (p.state === 'Init' || p.state === 'Up') this.setState('Up', BfdDiag.None);
      } else if (p.state === 'Down') {
        this.setState('Down', BfdDiag.NeighborSignaledSessionDown);
      }
    }
    this.armDetection();
    if (p.poll) this.transmit(true);
    if (this.txIntervalUs() !== txBefore || !this.txTimer) this.scheduleTx();
  }

  private setState(to: BfdState, diag: number): void {
    const from = this.state;
    if (from === to) return;
    this.state = to;
    if (to !== 'Up') this.localDiag = diag;
    if (to === 'Up') {
      this.upSince = Date.now();
      // Leaving the slow start rate is a timer change: announce it with a Poll Sequence (§6.8.3);
      // a decrease of our own transmit interval may apply at once.
      this.desiredTxUs = this.config.minTxMs * 1000;
      this.activeTxUs = Math.min(this.activeTxUs, this.desiredTxUs);
      this.pollActive = true;
    } else {
      if (from === 'Up') this.downs++;
      this.upSince = null;
      this.desiredTxUs = this.activeTxUs = SLOW_TX_US;
      this.pollActive = false;
    }
    this.emit('state', { from, to, diag });
    // Tell the peer at once rather than at the next (possibly 1 s) tick.
    if (to !== 'AdminDown') {
      this.transmit(false);
      this.scheduleTx();
    }
  }

  status(): BfdStatus {
    return {
      state: this.state,
      remoteState: this.remoteState,
      diag: describeDiag(this.localDiag),
      remoteDiag: describeDiag(this.remoteDiag),
      localDiscriminator: this.config.localDiscriminator,
      remoteDiscriminator: this.remoteDisc,
      txIntervalMs: this.txIntervalUs() / 1000,
      detectionTimeMs: this.detectionTimeUs() / 1000,
      ttlChecked: this.ttlChecked,
      upSince: this.upSince ? new Date(this.upSince) : null,
      downs: this.downs,
      lastError: this.lastError,
    };
  }

  /** ms since the last packet, or null. */
  get sinceLastPacketMs(): number | null {
    return this.lastRxAt ? performance.now() - this.lastRxAt : null;
  }
}

// ---------------------------------------------------------------------------------------------
// Transport

type BfdLogger = Pick<Logger, 'debug' | 'warn'>;

interface Registered {
  session: BfdSession;
  tx: dgram.Socket;
}

/**
 * The UDP side of every BFD session of a process: one receive socket per family on port 3784
 * (opened with the first session of that family), one transmit socket per session.
 */
export class BfdTransport {
  private readonly rx = new Map<4 | 6, { socket: dgram.Socket; ttlChecked: boolean } | { error: string }>();
  private readonly byDisc = new Map<number, Registered>();
  private readonly byPeer = new Map<string, Registered>();
  /** Why received TTLs are not checked, logged once. */
  private warnedTtl = false;

  constructor(
    private readonly logger: BfdLogger,
    private readonly port = BFD_PORT,
  ) {}

  private static instance: BfdTransport | null = null;
  private static users = 0;
  /** The process-wide transport (port 3784 can be bound once per network namespace). */
  static acquire(logger: BfdLogger): BfdTransport {
    BfdTransport.users++;
    return (BfdTransport.instance ??= new BfdTransport(logger));
  }
  static release(): void {
    if (--BfdTransport.users > 0 || !BfdTransport.instance) return;
    const t = BfdTransport.instance;
    BfdTransport.instance = null;
    t.close();
  }

  private newDiscriminator(): number {
    for (let i = 0; i < 100; i++) {
      const d = randomInt(1, 0xffffffff);
      if (!this.byDisc.has(d)) return d;
    }
    throw new Error('no free BFD discriminator');
  }

  private async openRx(family: 4 | 6): Promise<{ socket: dgram.Socket; ttlChecked: boolean } | { error: string }> {
    const existing = this.rx.get(family);
    if (existing) return existing;
    const type = family === 4 ? 'udp4' : 'udp6';
    const any = family === 4 ? '0.0.0.0' : '::';
    const socket = dgram.createSocket({ type, reuseAddr: true });
    socket.on('message', (msg, rinfo) => this.onMessage(msg, rinfo.address));
    socket.on('error', (err) => this.logger.warn({ err: err.message, family }, 'BFD receive socket error'));
    const filtered = udpSocketTtl255(any, this.port);
    let entry: { socket: dgram.Socket; ttlChecked: boolean } | { error: string };
    try {
      if (filtered.ok) {
        await new Promise<void>((resolve, reject) => {
          socket.once('error', reject);
          socket.bind({ fd: filtered.value } as dgram.BindOptions, () => {
            socket.off('error', reject);
            resolve();
          });
        });
        entry = { socket, ttlChecked: true };
      } else {
        if (!this.warnedTtl) {
          this.warnedTtl = true;
          this.logger.warn({ reason: filtered.error }, 'BFD: received packets are not checked for TTL 255 (RFC 5881 §5)');
        }
        await new Promise<void>((resolve, reject) => {
          socket.once('error', reject);
          socket.bind({ port: this.port, address: any, exclusive: true }, () => {
            socket.off('error', reject);
            resolve();
          });
        });
        entry = { socket, ttlChecked: false };
      }
    } catch (err) {
      socket.close();
      entry = { error: `cannot receive BFD on UDP ${this.port} (IPv${family}): ${(err as Error).message}` };
    }
    this.rx.set(family, entry);
    return entry;
  }

  /** Starts a session to `peer` (sending from `localAddress` when given). Errors are in its status. */
  async add(peer: string, localAddress: string | undefined, options: Required<BfdOptions>): Promise<BfdSession> {
    const key = normalizeAddress(peer);
    if (this.byPeer.has(key)) throw new Error(`BFD session to ${key} exists`);
    const family = parseIp(key)?.afi === 2 ? 6 : 4;
    const tx = dgram.createSocket({ type: family === 4 ? 'udp4' : 'udp6' });
    tx.on('error', (err) => this.logger.debug({ peer: key, err: err.message }, 'BFD send socket error'));
    tx.on('message', () => {}); // replies come to 3784; anything here is ignored
    const session = new BfdSession(
      { peer: key, minRxMs: options.minRxMs, minTxMs: options.minTxMs, multiplier: options.multiplier, localDiscriminator: this.newDiscriminator() },
      { send: (packet, sent) => tx.send(packet, this.port, key, sent && (() => sent())) },
    );
    const reg: Registered = { session, tx };
    this.byPeer.set(key, reg);
    this.byDisc.set(session.localDiscriminator, reg);
    const rx = await this.openRx(family);
    if ('error' in rx) session.lastError = rx.error;
    else session.ttlChecked = rx.ttlChecked;
    const bound = await bindSourcePort(tx, localAddress);
    if (!bound.ok) {
      session.lastError = bound.error;
      return session;
    }
    // RFC 5881 §5: sent with TTL / hop limit 255 (setTTL sets the IPv6 unicast hop limit too).
    tx.setTTL(255);
    if (this.byPeer.get(key) === reg) session.start();
    return session;
  }

  remove(session: BfdSession): void {
    const reg = this.byDisc.get(session.localDiscriminator);
    if (!reg) return;
    this.byDisc.delete(session.localDiscriminator);
    if (this.byPeer.get(session.config.peer) === reg) this.byPeer.delete(session.config.peer);
    // The socket closes once the AdminDown packet is out (closing at once would drop it).
    session.stop(() => {
      try {
        reg.tx.close();
      } catch {
        /* already closed */
      }
    });
  }

  private onMessage(msg: Buffer, from: string): void {
    const decoded = decodeBfd(msg);
    if (!decoded.ok) {
      this.logger.debug({ from, reason: decoded.error }, 'BFD packet discarded');
      return;
    }
    const p = decoded.packet;
    const reg = p.yourDisc !== 0 ? this.byDisc.get(p.yourDisc) : this.byPeer.get(normalizeAddress(from));
    if (!reg || (p.yourDisc !== 0 && reg.session.config.peer !== normalizeAddress(from))) {
      this.logger.debug({ from, yourDisc: p.yourDisc }, 'BFD packet for no session discarded');
      return;
    }
    reg.session.receive(p);
  }

  close(): void {
    for (const reg of [...this.byDisc.values()]) this.remove(reg.session);
    for (const entry of this.rx.values()) if ('socket' in entry) entry.socket.close();
    this.rx.clear();
  }
}

/** Binds a send socket to a random source port in 49152–65535 (RFC 5881 §4), a bounded number of tries. */
async function bindSourcePort(socket: dgram.Socket, address: string | undefined): Promise<{ ok: true } | { ok: false; error: string }> {
  let last = '';
  for (let i = 0; i < 32; i++) {
    const port = randomInt(BFD_SOURCE_PORTS[0], BFD_SOURCE_PORTS[1] + 1);
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('error', reject);
        socket.bind({ port, ...(address ? { address } : {}), exclusive: true }, () => {
          socket.off('error', reject);
          resolve();
        });
      });
      return { ok: true };
    } catch (err) {
      last = (err as Error).message;
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') break;
    }
  }
  return { ok: false, error: `cannot bind a BFD source port${address ? ` on ${address}` : ''}: ${last}` };
}

export function resolveBfdOptions(o: BfdOptions): Required<BfdOptions> {
  return { minRxMs: o.minRxMs ?? 300, minTxMs: o.minTxMs ?? 300, multiplier: o.multiplier ?? 3 };
}
