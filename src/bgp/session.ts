// One peer's BGP session: the RFC 4271 §8 finite state machine over node:net, connection collision
// resolution (§6.8), hold/keepalive timers, ConnectRetry backoff, and the sending side of the
// Adj-RIB-Out (only changes are sent; a new session gets the full table and End-of-RIB).

import { EventEmitter } from 'node:events';
import net from 'node:net';
import os from 'node:os';
import {
  MessageWriter,
  SessionEncoder,
  writeAnnouncements,
  writeWithdrawals,
  type AttrSet,
  type EncodedAttrs,
} from './adj-rib-out.ts';
import { CapabilityCode, negotiate, type Capability, type NegotiatedCapabilities } from './capabilities.ts';
import {
  CeaseSubcode,
  ErrorCode,
  FsmSubcode,
  OpenSubcode,
  describeNotification,
  notification,
  type NotificationSpec,
} from './errors.ts';
import {
  FrameReader,
  decodeMessage,
  encodeEndOfRib,
  encodeKeepalive,
  encodeNotification,
  encodeOpen,
  messageTypeName,
  type BgpMessage,
  type OpenMessage,
  type UpdateMessage,
} from './messages.ts';
import { closeFd, setHopOptions, setTcpMd5Key, tcpSocketFor } from './native.ts';
import { AFI_IPV4, AFI_IPV6, SAFI_UNICAST, familyOf, normalizeAddress, parseIp, parseIpv4, type Afi, type Family } from './prefix.ts';
import type { BgpHooks, Logger, PeerError, PeerStatus, SessionState } from './types.ts';

/** Hold timer while waiting for the peer's OPEN (RFC 4271 §8.2.2 suggests 4 minutes). */
const OPEN_HOLD_TIME_S = 240;
/** How long a NOTIFICATION gets to drain before the socket is destroyed. */
const CLOSE_GRACE_MS = 1000;
const CONNECT_TIMEOUT_MS = 10_000;

/** Resolved per-peer settings. */
export interface SessionConfig {
  address: string;
  asn: number;
  port: number;
  localAddress: string | undefined;
  passive: boolean;
  holdTime: number;
  keepaliveTime: number | undefined;
  families: Family[];
  nextHopIpv4: string | undefined;
  nextHopIpv6: string | undefined;
  linkLocalNextHop: string | false | undefined;
  description: string | undefined;
  /** TCP MD5 key (RFC 2385), set on outgoing sockets before connect(). */
  password: string | undefined;
  /** TTL / hop limit of our segments (undefined: the kernel's default, 64 on Linux). */
  ttl: number | undefined;
  /** GTSM (RFC 5082): the kernel drops segments from the peer that arrive with a lower TTL. */
  minTtl: number | undefined;
  /** This peer's ConnectRetry timer (undefined: the speaker's). */
  connectRetry: { initialMs: number; maxMs: number } | undefined;
}

/** What a session needs from its speaker. */
export interface SessionHost {
  readonly localAsn: number;
  readonly routerId: string;
  readonly gracefulRestart: { restartTime: number; restarting: boolean } | null;
  readonly connectRetry: { initialMs: number; maxMs: number };
  readonly logger: Logger;
  readonly hooks: BgpHooks;
  /** The speaker's routes, per AFI (index AFI-1), keyed by NLRI. */
  readonly ribs: readonly [Map<string, AttrSet>, Map<string, AttrSet>];
}

class Connection {
  state: 'OpenSent' | 'OpenConfirm' | 'Established' = 'OpenSent';
  readonly reader = new FrameReader();
  open: OpenMessage | null = null;
  negotiated: NegotiatedCapabilities | null = null;
  holdTimeS = OPEN_HOLD_TIME_S;
  lastReceived = Date.now();
  holdTimer: NodeJS.Timeout | null = null;
  keepaliveTimer: NodeJS.Timeout | null = null;
  closed = false;
  constructor(
    readonly socket: net.Socket,
    readonly direction: 'in' | 'out',
  ) {}
}

/** RFC 4271 §10: timers are jittered to 75–100 % of their value. `random` is in [0, 1). */
export function jitteredDelay(baseMs: number, random: number): number {
  return Math.round(baseMs * (0.75 + random * 0.25));
}

/** ConnectRetry/IdleHold backoff: doubles up to the maximum. */
export function nextRetryDelay(currentMs: number, maxMs: number): number {
  return Math.min(currentMs * 2, maxMs);
}

function ipToUint32(ip: string): number {
  const b = parseIpv4(ip);
  return b ? b.readUInt32BE(0) : 0;
}

function onceClosed(socket: net.Socket, timeoutMs: number): Promise<void> {
  if (socket.closed) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(resolve, timeoutMs).unref();
    socket.once('close', () => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** The IPv6 link-local address on the interface that carries `address`, if any. */
function linkLocalFor(address: string): string | undefined {
  for (const entries of Object.values(os.networkInterfaces())) {
    if (!entries?.some((e) => normalizeAddress(e.address) === address)) continue;
    const ll = entries.find((e) => e.family === 'IPv6' && e.address.toLowerCase().startsWith('fe80:'));
    if (ll) return ll.address.replace(/%.*$/, '');
  }
  return undefined;
}

export class PeerSession extends EventEmitter {
  state: SessionState = 'Idle';
  private running = false;
  private idleHold = false;
  private readonly connections = new Set<Connection>();
  private established: Connection | null = null;
  private connecting: net.Socket | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelayMs: number;

  private readonly adjRibOut: [Map<string, AttrSet>, Map<string, AttrSet>] = [new Map(), new Map()];
  private pending: [Set<string>, Set<string>] = [new Set(), new Set()];
  private readonly fullSendNeeded = [false, false];
  private readonly endOfRibNeeded = [false, false];
  private pumping = false;
  private pumpScheduled = false;
  private encoder: SessionEncoder | null = null;
  private writer: MessageWriter | null = null;
  private readonly unsendable = new Set<AttrSet>();

  private establishedAt: number | null = null;
  private lastError: PeerError | null = null;
  private counters = { messagesSent: 0, messagesReceived: 0, updatesSent: 0, updatesReceived: 0, prefixesReceived: 0, flaps: 0 };

  constructor(
    readonly config: SessionConfig,
    private readonly host: SessionHost,
  ) {
    super();
    this.retryDelayMs = this.retryTimes.initialMs;
  }

  private get retryTimes(): { initialMs: number; maxMs: number } {
    return this.config.connectRetry ?? this.host.connectRetry;
  }

  // -------------------------------------------------------------------------------------------
  // Start / stop

  /** ManualStart (or ManualStart_with_PassiveTcpEstablishment for passive peers). */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.idleHold = false;
    this.retryDelayMs = this.retryTimes.initialMs;
    this.connect();
    this.updateState();
  }

  /** ManualStop: Cease NOTIFICATION on every connection, then Idle. */
  async stop(subcode: number = CeaseSubcode.AdministrativeShutdown, data?: Buffer): Promise<void> {
    this.running = false;
    this.clearRetry();
    this.connecting?.destroy();
    this.connecting = null;
    const closing: Promise<void>[] = [];
    for (const c of [...this.connections]) {
      closing.push(onceClosed(c.socket, CLOSE_GRACE_MS + 200));
      this.closeConnection(c, notification(ErrorCode.Cease, subcode, describeNotification(ErrorCode.Cease, subcode), data), 'stopped');
    }
    this.updateState();
    await Promise.all(closing);
  }

  /** Drops every connection without a NOTIFICATION, so that graceful-restart peers keep our routes. */
  async abandon(): Promise<void> {
    this.running = false;
    this.clearRetry();
    this.connecting?.destroy();
    this.connecting = null;
    const closing: Promise<void>[] = [];
    for (const c of [...this.connections]) {
      closing.push(onceClosed(c.socket, CLOSE_GRACE_MS));
      this.closeConnection(c, null, 'abandoned for graceful restart');
    }
    this.updateState();
    await Promise.all(closing);
  }

  /**
   * The BFD session to the peer went down (RFC 5882 §4.3): every connection is closed at once with
   * Cease / BFD Down (RFC 9384) and the session starts over after IdleHold.
   */
  bfdDown(reason: string): void {
    for (const c of [...this.connections]) this.fail(c, notification(ErrorCode.Cease, CeaseSubcode.BfdDown, reason));
  }

  /**
   * Replaces the TCP MD5 key on the open connections (outgoing sockets and those accepted from the
   * listener) and for the next connect. The kernel checks the key per segment, so the session
   * survives only if the peer changes to the same key before the hold timer runs out.
   */
  setPassword(password: string | undefined): string[] {
    this.config.password = password;
    const errors: string[] = [];
    for (const c of this.connections) {
      const fd = (c.socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
      if (typeof fd !== 'number' || fd < 0) continue;
      const family = c.socket.localFamily === 'IPv6' ? 6 : 4;
      const r = setTcpMd5Key(fd, family, this.config.address, password ?? null);
      if (!r.ok) errors.push(r.error);
    }
    return errors;
  }

  /** An incoming TCP connection from this peer's address. */
  acceptIncoming(socket: net.Socket): void {
    if (!this.running) {
      socket.destroy();
      return;
    }
    // The listener carries the speaker-wide hop options; this peer's own apply from our OPEN on.
    if (this.config.ttl !== undefined || this.config.minTtl !== undefined) {
      const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
      const r = typeof fd === 'number' && fd >= 0 ? setHopOptions(fd, this.config.address, { ttl: this.config.ttl, minTtl: this.config.minTtl }) : { ok: false as const, error: 'the accepted socket has no file descriptor' };
      if (!r.ok) {
        this.setLastError({ direction: 'local', message: `TTL options on the accepted connection: ${r.error}` });
        socket.destroy();
        return;
      }
    }
    this.attach(socket, 'in');
  }

  private clearRetry(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  private connect(): void {
    if (!this.running || this.config.passive || this.connecting || this.retryTimer) return;
    if (this.established || [...this.connections].some((c) => c.direction === 'out')) return;
    const socket = this.newSocket();
    if (!socket) {
      this.scheduleRetry(false);
      this.updateState();
      return;
    }
    this.connecting = socket;
    // A peer with another TCP MD5 key (or none) drops our SYNs without an answer, and so does a
    // keyed closed port: a timeout is all we ever see, so say what it may mean.
    // GTSM fails as silently: the kernel drops a SYN-ACK that arrives below the minimum TTL.
    const hints = [
      ...(this.config.password !== undefined ? ['TCP MD5: the peer may have a different password or none; it drops mismatched segments silently'] : []),
      ...(this.config.minTtl !== undefined ? [`GTSM: segments from the peer must arrive with TTL >= ${this.config.minTtl}; with more hops on the way the kernel drops them silently`] : []),
    ];
    const timedOut = hints.length ? `connect timed out (${hints.join('; ')})` : 'connect timed out';
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => socket.destroy(new Error(timedOut)));
    const onFail = (err?: Error) => {
      if (this.connecting !== socket) return;
      this.connecting = null;
      // A router that drops a SYN whose TTL ran out answers ICMP Time Exceeded, which fails the connect with EHOSTUNREACH.
      const ttlHint = this.config.ttl === 1 && (err as NodeJS.ErrnoException | undefined)?.code === 'EHOSTUNREACH' ? ' (sent with TTL 1: a peer that is not directly connected needs a multihop TTL)' : '';
      this.setLastError({ direction: 'local', message: `connect to ${this.config.address}:${this.config.port} failed: ${err?.message ?? 'closed'}${ttlHint}` });
      this.scheduleRetry(false);
      this.updateState();
    };
    socket.once('error', onFail);
    socket.once('close', () => onFail());
    socket.once('connect', () => {
      socket.setTimeout(0);
      socket.off('error', onFail);
      if (this.connecting !== socket) {
        socket.destroy();
        return;
      }
      this.connecting = null;
      this.attach(socket, 'out');
    });
    this.updateState();
  }

  /**
   * A connecting socket. A TCP MD5 key (and the TTL of the SYN) must be on the socket before the SYN
   * is sent, and net.connect() creates and connects its socket in one step, so with a password or
   * TTL options the socket is created through libc (native.ts), configured, and wrapped with
   * net.Socket({ fd }). `manualStart` (an internal option of net.Socket) keeps Node from reading
   * before the socket is connected (read ENOTCONN); connect() must follow in the same tick, which
   * it does here.
   */
  private newSocket(): net.Socket | null {
    const options = { host: this.config.address, port: this.config.port, localAddress: this.config.localAddress };
    const { password, ttl, minTtl } = this.config;
    if (password === undefined && ttl === undefined && minTtl === undefined) return net.connect(options);
    const what = password !== undefined ? 'TCP MD5' : 'TTL options';
    const fd = tcpSocketFor(this.config.address);
    if (!fd.ok) {
      this.setLastError({ direction: 'local', message: `${what}: cannot create a socket for ${this.config.address}: ${fd.error}` });
      return null;
    }
    const keyed = password !== undefined ? setTcpMd5Key(fd.value, parseIp(this.config.address)?.afi === AFI_IPV6 ? 6 : 4, this.config.address, password) : { ok: true as const };
    const hops = keyed.ok ? setHopOptions(fd.value, this.config.address, { ttl, minTtl }) : keyed;
    if (!hops.ok) {
      closeFd(fd.value);
      this.setLastError({ direction: 'local', message: `${keyed.ok ? 'TTL options' : 'TCP MD5'}: ${hops.error}` });
      return null;
    }
    const socket = new net.Socket({ fd: fd.value, manualStart: true } as net.SocketConstructorOpts);
    return socket.connect(options);
  }

  /** Waits ConnectRetry (after a TCP failure: Active) or IdleHold (after an error: Idle), doubling up to the maximum. */
  private scheduleRetry(idle: boolean): void {
    if (!this.running || this.retryTimer) return;
    this.idleHold = idle;
    const delay = jitteredDelay(this.retryDelayMs, Math.random());
    this.retryDelayMs = nextRetryDelay(this.retryDelayMs, this.retryTimes.maxMs);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.idleHold = false;
      this.connect();
      this.updateState();
    }, delay).unref();
  }

  // -------------------------------------------------------------------------------------------
  // Connections

  private ourCapabilities(): Capability[] {
    const caps: Capability[] = [];
    for (const f of this.config.families) caps.push({ code: 1, afi: f === 'ipv4' ? AFI_IPV4 : AFI_IPV6, safi: SAFI_UNICAST });
    caps.push({ code: 2 });
    const gr = this.host.gracefulRestart;
    if (gr) {
      caps.push({
        code: 64,
        restarting: gr.restarting,
        notification: false,
        restartTime: gr.restartTime,
        families: this.config.families.map((f) => ({ afi: f === 'ipv4' ? AFI_IPV4 : AFI_IPV6, safi: SAFI_UNICAST, forwardingPreserved: true })),
      });
    }
    caps.push({ code: 65, asn: this.host.localAsn });
    return caps;
  }

  private attach(socket: net.Socket, direction: 'in' | 'out'): void {
    const c = new Connection(socket, direction);
    this.connections.add(c);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(c, chunk));
    socket.on('error', (err) => this.host.logger.debug({ peer: this.config.address, err: err.message }, 'BGP socket error'));
    socket.on('close', () => {
      if (!c.closed) {
        this.setLastError({ direction: 'local', message: `TCP connection closed by peer in ${c.state}` });
        this.closeConnection(c, null, 'TCP connection closed');
      }
    });
    this.send(c, encodeOpen({ asn: this.host.localAsn, holdTime: this.config.holdTime, routerId: this.host.routerId, capabilities: this.ourCapabilities() }), 'OPEN');
    this.armHoldTimer(c);
    this.host.logger.debug({ peer: this.config.address, direction }, 'BGP connection opened, OPEN sent');
    this.updateState();
  }

  private send(c: Connection, message: Buffer, type: string): void {
    if (c.socket.destroyed) return;
    c.socket.write(message);
    this.counters.messagesSent++;
    this.hook('messageSent', type, 1, message.length);
  }

  private onData(c: Connection, chunk: Buffer): void {
    if (c.closed) return;
    c.reader.push(chunk);
    // Bounded: a 64 KiB chunk holds at most ~3500 minimal messages.
    for (let i = 0; i < 1_000_000 && !c.closed; i++) {
      const frame = c.reader.next();
      if (frame === null) return;
      if (!Buffer.isBuffer(frame)) {
        this.fail(c, frame);
        return;
      }
      this.onFrame(c, frame);
    }
  }

  private onFrame(c: Connection, frame: Buffer): void {
    c.lastReceived = Date.now();
    this.counters.messagesReceived++;
    const result = decodeMessage(frame, { as4: c.negotiated?.as4 ?? true, ibgp: this.ibgp });
    this.hook('messageReceived', messageTypeName(frame[18]!), frame.length);
    if (!result.ok) {
      this.fail(c, result.error);
      return;
    }
    this.onMessage(c, result.message);
  }

  private get ibgp(): boolean {
    return this.config.asn === this.host.localAsn;
  }

  private onMessage(c: Connection, m: BgpMessage): void {
    switch (m.type) {
      case 'notification': {
        const message = describeNotification(m.code, m.subcode) + shutdownText(m);
        this.setLastError({ direction: 'received', code: m.code, subcode: m.subcode, message });
        this.emitNotification('received', m.code, m.subcode, message);
        this.closeConnection(c, null, `NOTIFICATION received: ${message}`);
        return;
      }
      case 'open':
        if (c.state !== 'OpenSent') return this.fsmError(c, 'OPEN');
        return this.onOpen(c, m);
      case 'keepalive':
        if (c.state === 'OpenSent') return this.fsmError(c, 'KEEPALIVE');
        if (c.state === 'OpenConfirm') this.onEstablished(c);
        return;
      case 'update':
        if (c.state !== 'Established') return this.fsmError(c, 'UPDATE');
        return this.onUpdate(m);
      case 'route-refresh': {
        if (c.state !== 'Established') return this.fsmError(c, 'ROUTE-REFRESH');
        const neg = c.negotiated!;
        const afi = m.afi === AFI_IPV4 && neg.ipv4 ? 0 : m.afi === AFI_IPV6 && neg.ipv6 ? 1 : -1;
        // RFC 2918 §4: a refresh for a family we did not negotiate is ignored.
        if (afi < 0 || m.safi !== SAFI_UNICAST) return;
        this.host.logger.info({ peer: this.config.address, afi: m.afi }, 'BGP route refresh: re-sending Adj-RIB-Out');
        this.fullSendNeeded[afi] = true;
        this.schedulePump();
        return;
      }
    }
  }

  private fsmError(c: Connection, what: string): void {
    const subcode =
      c.state === 'OpenSent'
        ? FsmSubcode.UnexpectedMessageInOpenSent
        : c.state === 'OpenConfirm'
          ? FsmSubcode.UnexpectedMessageInOpenConfirm
          : FsmSubcode.UnexpectedMessageInEstablished;
    this.fail(c, notification(ErrorCode.FsmError, subcode, `unexpected ${what} in ${c.state}`));
  }

  /** Semantic OPEN checks against this peer's configuration (RFC 4271 §6.2, RFC 6286, RFC 6793). */
  private validateOpen(open: OpenMessage): NotificationSpec | null {
    if (open.asn !== this.config.asn) {
      return notification(ErrorCode.OpenMessage, OpenSubcode.BadPeerAs, `peer AS ${open.asn}, expected ${this.config.asn}`);
    }
    if (open.routerId === '0.0.0.0' || (this.ibgp && open.routerId === this.host.routerId)) {
      return notification(ErrorCode.OpenMessage, OpenSubcode.BadBgpIdentifier, `bad BGP identifier ${open.routerId}`);
    }
    if (open.holdTime === 1 || open.holdTime === 2) {
      return notification(ErrorCode.OpenMessage, OpenSubcode.UnacceptableHoldTime, `unacceptable hold time ${open.holdTime}`);
    }
    return null;
  }

  private onOpen(c: Connection, open: OpenMessage): void {
    const err = this.validateOpen(open);
    if (err) {
      this.fail(c, err);
      return;
    }
    c.open = open;
    c.negotiated = negotiate(this.ourCapabilities(), open.capabilities);
    for (const other of [...this.connections]) {
      if (other === c || other.closed) continue;
      if (other.state === 'Established') {
        // RFC 4724 §4.2: a new OPEN from a graceful-restart peer means it restarted; the old session is gone.
        if (c.direction === 'in' && other.negotiated?.peerGracefulRestart) {
          this.setLastError({ direction: 'local', message: 'peer reconnected while established: treating as a restart' });
          this.closeConnection(other, null, 'peer restarted');
          continue;
        }
        this.fail(c, notification(ErrorCode.Cease, CeaseSubcode.ConnectionCollisionResolution, 'a session is already established'));
        return;
      }
      const winner = this.collisionWinner(c, other, open);
      const loser = winner === c ? other : c;
      this.host.logger.info({ peer: this.config.address, kept: winner.direction }, 'BGP connection collision resolved');
      this.fail(loser, notification(ErrorCode.Cease, CeaseSubcode.ConnectionCollisionResolution, 'connection collision resolution'));
      if (loser === c) return;
    }
    c.holdTimeS = Math.min(this.config.holdTime, open.holdTime);
    this.send(c, encodeKeepalive(), 'KEEPALIVE');
    c.state = 'OpenConfirm';
    this.armHoldTimer(c);
    this.armKeepalive(c);
    this.updateState();
  }

  /** RFC 4271 §6.8 / RFC 6286 §2.3: the connection opened by the side with the higher identifier (or, if equal, AS) survives. */
  private collisionWinner(c: Connection, other: Connection, open: OpenMessage): Connection {
    if (c.direction === other.direction) return c;
    const local = ipToUint32(this.host.routerId);
    const remote = ipToUint32(open.routerId);
    const localWins = local !== remote ? local > remote : this.host.localAsn > open.asn;
    const keep = localWins ? 'out' : 'in';
    return c.direction === keep ? c : other;
  }

  private onEstablished(c: Connection): void {
    c.state = 'Established';
    this.established = c;
    this.establishedAt = Date.now();
    this.retryDelayMs = this.retryTimes.initialMs;
    // Any other connection still opening loses (RFC 4271 §6.8).
    for (const other of [...this.connections]) {
      if (other !== c) this.fail(other, notification(ErrorCode.Cease, CeaseSubcode.ConnectionCollisionResolution, 'session established on another connection'));
    }
    const neg = c.negotiated!;
    const local = normalizeAddress(c.socket.localAddress ?? '');
    const localAfi = parseIp(local)?.afi;
    const ll = this.config.linkLocalNextHop;
    this.encoder = new SessionEncoder({
      ibgp: this.ibgp,
      as4: neg.as4,
      localAsn: this.host.localAsn,
      nextHopIpv4: this.config.nextHopIpv4 ?? (localAfi === AFI_IPV4 ? local : undefined),
      nextHopIpv6: this.config.nextHopIpv6 ?? (localAfi === AFI_IPV6 && !local.startsWith('fe80:') ? local : undefined),
      linkLocalIpv6: ll === false ? undefined : (ll ?? (localAfi === AFI_IPV6 ? linkLocalFor(local) : undefined)),
    });
    this.writer = new MessageWriter(c.socket);
    this.unsendable.clear();
    this.adjRibOut[0].clear();
    this.adjRibOut[1].clear();
    this.pending = [new Set(), new Set()];
    this.fullSendNeeded[0] = this.endOfRibNeeded[0] = neg.ipv4;
    this.fullSendNeeded[1] = this.endOfRibNeeded[1] = neg.ipv6;
    this.host.logger.info(
      { peer: this.config.address, holdTime: c.holdTimeS, as4: neg.as4, ipv4: neg.ipv4, ipv6: neg.ipv6, peerRouterId: c.open?.routerId },
      'BGP session established',
    );
    this.updateState();
    this.emit('established');
    this.schedulePump();
  }

  private onUpdate(m: UpdateMessage): void {
    this.counters.updatesReceived++;
    // Routes from peers are tolerated and ignored: this speaker only originates.
    this.counters.prefixesReceived += m.nlri.length + (m.attributes.mpReach?.nlri.length ?? 0);
    if (m.treatAsWithdraw.length > 0 || m.discarded.length > 0) {
      this.host.logger.warn({ peer: this.config.address, treatAsWithdraw: m.treatAsWithdraw, discarded: m.discarded }, 'BGP malformed UPDATE handled per RFC 7606');
      this.emit('updateError', { treatAsWithdraw: m.treatAsWithdraw, discarded: m.discarded });
    }
  }

  /** Sends a NOTIFICATION for `spec` and closes the connection. */
  private fail(c: Connection, spec: NotificationSpec): void {
    const message = `${describeNotification(spec.code, spec.subcode)}: ${spec.reason}`;
    const collision = spec.code === ErrorCode.Cease && spec.subcode === CeaseSubcode.ConnectionCollisionResolution;
    if (!collision) this.setLastError({ direction: 'sent', code: spec.code, subcode: spec.subcode, message });
    this.host.logger[collision ? 'debug' : 'warn']({ peer: this.config.address, code: spec.code, subcode: spec.subcode, reason: spec.reason }, 'BGP NOTIFICATION sent');
    this.emitNotification('sent', spec.code, spec.subcode, message);
    this.closeConnection(c, spec, message);
  }

  private closeConnection(c: Connection, spec: NotificationSpec | null, reason: string): void {
    if (c.closed) return;
    c.closed = true;
    if (c.holdTimer) clearTimeout(c.holdTimer);
    if (c.keepaliveTimer) clearInterval(c.keepaliveTimer);
    if (spec && !c.socket.destroyed) {
      this.send(c, encodeNotification(spec.code, spec.subcode, spec.data), 'NOTIFICATION');
      c.socket.end();
      const t = setTimeout(() => c.socket.destroy(), CLOSE_GRACE_MS).unref();
      c.socket.once('close', () => clearTimeout(t));
    } else {
      c.socket.destroy();
    }
    this.connections.delete(c);
    if (this.established === c) {
      this.established = null;
      this.establishedAt = null;
      this.counters.flaps++;
      this.encoder = null;
      this.writer = null;
      this.adjRibOut[0].clear();
      this.adjRibOut[1].clear();
      this.pending = [new Set(), new Set()];
      this.hook('prefixesAdvertised', 'ipv4', 0);
      this.hook('prefixesAdvertised', 'ipv6', 0);
      this.host.logger.info({ peer: this.config.address, reason }, 'BGP session down');
      this.emit('down', reason);
    }
    if (this.running && this.connections.size === 0 && !this.connecting) this.scheduleRetry(true);
    this.updateState();
  }

  // -------------------------------------------------------------------------------------------
  // Timers

  private armHoldTimer(c: Connection): void {
    if (c.holdTimer) clearTimeout(c.holdTimer);
    c.holdTimer = null;
    if (c.holdTimeS === 0 || c.closed) return;
    const holdMs = c.holdTimeS * 1000;
    // One timer per hold period, re-armed for the remainder: no timer churn per received message.
    const check = () => {
      c.holdTimer = null;
      if (c.closed) return;
      const idle = Date.now() - c.lastReceived;
      if (idle >= holdMs) {
        this.fail(c, notification(ErrorCode.HoldTimerExpired, 0, `no message for ${c.holdTimeS} s`));
        return;
      }
      c.holdTimer = setTimeout(check, holdMs - idle).unref();
    };
    c.lastReceived = Date.now();
    c.holdTimer = setTimeout(check, holdMs).unref();
  }

  private armKeepalive(c: Connection): void {
    if (c.keepaliveTimer) clearInterval(c.keepaliveTimer);
    c.keepaliveTimer = null;
    if (c.holdTimeS === 0) return;
    const interval = keepaliveSeconds(this.config.keepaliveTime, c.holdTimeS) * 1000;
    c.keepaliveTimer = setInterval(() => {
      if (!c.closed) this.send(c, encodeKeepalive(), 'KEEPALIVE');
    }, interval).unref();
  }

  // -------------------------------------------------------------------------------------------
  // Adj-RIB-Out

  /** The speaker's route for `key` changed. */
  markDirty(afi: Afi, key: string): void {
    if (!this.established || this.fullSendNeeded[afi - 1]) return;
    this.pending[afi - 1]!.add(key);
    this.schedulePump();
  }

  private schedulePump(): void {
    if (this.pumpScheduled) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      void this.pump();
    });
  }

  /** Serializes all UPDATE output for the current session. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    const c = this.established;
    const writer = this.writer;
    if (!c || !writer) return;
    this.pumping = true;
    try {
      for (let round = 0; round < 1_000_000 && this.established === c; round++) {
        let worked = false;
        for (const afi of [AFI_IPV4, AFI_IPV6] as const) {
          if (this.fullSendNeeded[afi - 1]) {
            this.fullSendNeeded[afi - 1] = false;
            await this.sendTable(c, writer, afi);
            worked = true;
          }
          if (this.established !== c) return;
          if (this.endOfRibNeeded[afi - 1] && !this.fullSendNeeded[afi - 1]) {
            this.endOfRibNeeded[afi - 1] = false;
            const eor = encodeEndOfRib(afi);
            const { buf, offset } = await writer.reserve(eor.length);
            eor.copy(buf, offset);
            writer.commit(eor.length);
            worked = true;
          }
          if (this.pending[afi - 1]!.size > 0) {
            await this.sendChanges(c, writer, afi);
            worked = true;
          }
          if (this.established !== c) return;
        }
        await writer.flush();
        if (!worked) break;
      }
    } catch (err) {
      this.host.logger.error({ peer: this.config.address, err: (err as Error).message }, 'BGP UPDATE encoding failed');
      if (this.established === c) this.fail(c, notification(ErrorCode.Cease, CeaseSubcode.OutOfResources, `encoding failed: ${(err as Error).message}`));
    } finally {
      this.pumping = false;
      const sent = writer.messages;
      if (sent > 0) {
        this.counters.messagesSent += sent;
        this.counters.updatesSent += sent;
        this.hook('messageSent', 'UPDATE', sent, writer.bytes);
        writer.messages = 0;
        writer.bytes = 0;
      }
      if (this.established === c && (this.pending[0].size > 0 || this.pending[1].size > 0 || this.fullSendNeeded.some(Boolean))) this.schedulePump();
    }
  }

  private encodable(afi: Afi, set: AttrSet): EncodedAttrs | null {
    const enc = this.encoder!.encode(afi, set);
    if (!enc && !this.unsendable.has(set)) {
      this.unsendable.add(set);
      this.host.logger.warn({ peer: this.config.address, family: familyOf(afi) }, 'BGP route not sent: no next hop for this family on this session (set nextHopIpv4/nextHopIpv6)');
    }
    return enc;
  }

  /** Sends the whole table for a family (new session or route refresh). */
  private async sendTable(c: Connection, writer: MessageWriter, afi: Afi): Promise<void> {
    const rib = this.host.ribs[afi - 1]!;
    const adj = this.adjRibOut[afi - 1]!;
    this.pending[afi - 1] = new Set();
    const withdrawals: string[] = [];
    for (const key of adj.keys()) if (!rib.has(key)) withdrawals.push(key);
    adj.clear();
    const groups = new Map<AttrSet, string[]>();
    for (const [key, set] of rib) {
      if (!this.encodable(afi, set)) continue;
      adj.set(key, set);
      let keys = groups.get(set);
      if (!keys) groups.set(set, (keys = []));
      keys.push(key);
    }
    await this.writeGroups(c, writer, afi, withdrawals, groups);
  }

  private async sendChanges(c: Connection, writer: MessageWriter, afi: Afi): Promise<void> {
    const rib = this.host.ribs[afi - 1]!;
    const adj = this.adjRibOut[afi - 1]!;
    const keys = this.pending[afi - 1]!;
    this.pending[afi - 1] = new Set();
    const withdrawals: string[] = [];
    const groups = new Map<AttrSet, string[]>();
    for (const key of keys) {
      let desired = rib.get(key);
      if (desired && !this.encodable(afi, desired)) desired = undefined;
      const sent = adj.get(key);
      if (desired === sent) continue;
      if (desired) {
        adj.set(key, desired);
        let list = groups.get(desired);
        if (!list) groups.set(desired, (list = []));
        list.push(key);
      } else {
        adj.delete(key);
        withdrawals.push(key);
      }
    }
    await this.writeGroups(c, writer, afi, withdrawals, groups);
  }

  private async writeGroups(c: Connection, writer: MessageWriter, afi: Afi, withdrawals: string[], groups: Map<AttrSet, string[]>): Promise<void> {
    if (withdrawals.length > 0) await writeWithdrawals(writer, afi, withdrawals);
    for (const [set, keys] of groups) {
      if (this.established !== c) return;
      const enc = this.encoder?.encode(afi, set);
      if (enc) await writeAnnouncements(writer, enc, keys);
    }
    if (withdrawals.length > 0 || groups.size > 0) this.hook('prefixesAdvertised', familyOf(afi), this.adjRibOut[afi - 1]!.size);
  }

  // -------------------------------------------------------------------------------------------
  // State, status, events

  private computeState(): SessionState {
    if (this.established) return 'Established';
    const states = [...this.connections].map((c) => c.state);
    if (states.includes('OpenConfirm')) return 'OpenConfirm';
    if (states.includes('OpenSent')) return 'OpenSent';
    if (this.connecting) return 'Connect';
    if (!this.running || this.idleHold) return 'Idle';
    return 'Active';
  }

  private updateState(): void {
    const next = this.computeState();
    if (next === this.state) return;
    const from = this.state;
    this.state = next;
    this.host.logger.debug({ peer: this.config.address, from, to: next }, 'BGP state change');
    this.hook('stateChange', from, next);
    this.emit('state', from, next);
  }

  private setLastError(e: Omit<PeerError, 'at'>): void {
    this.lastError = { ...e, at: new Date() };
  }

  private emitNotification(direction: 'sent' | 'received', code: number, subcode: number, message: string): void {
    this.hook('notification', direction, code, subcode);
    this.emit('notification', { direction, code, subcode, message });
  }

  private hook<K extends keyof BgpHooks>(name: K, ...args: Parameters<NonNullable<BgpHooks[K]>> extends [string, ...infer R] ? R : never): void {
    const fn = this.host.hooks[name] as ((peer: string, ...rest: unknown[]) => void) | undefined;
    if (!fn) return;
    try {
      fn(this.config.address, ...args);
    } catch (err) {
      this.host.logger.error({ peer: this.config.address, hook: name, err: (err as Error).message }, 'BGP metrics hook threw');
    }
  }

  status(): PeerStatus {
    const c = this.established;
    const neg = c?.negotiated;
    const gr = neg?.peerGracefulRestart;
    return {
      address: this.config.address,
      port: this.config.port,
      asn: this.config.asn,
      localAsn: this.host.localAsn,
      description: this.config.description,
      state: this.state,
      uptimeMs: this.establishedAt ? Date.now() - this.establishedAt : 0,
      establishedAt: this.establishedAt ? new Date(this.establishedAt) : null,
      peerRouterId: c?.open?.routerId ?? null,
      lastError: this.lastError,
      prefixesSent: { ipv4: this.adjRibOut[0].size, ipv6: this.adjRibOut[1].size },
      prefixesReceived: this.counters.prefixesReceived,
      negotiated:
        c && neg
          ? {
              holdTime: c.holdTimeS,
              keepaliveTime: c.holdTimeS === 0 ? 0 : keepaliveSeconds(this.config.keepaliveTime, c.holdTimeS),
              as4: neg.as4,
              routeRefresh: neg.routeRefresh,
              families: [...(neg.ipv4 ? (['ipv4'] as const) : []), ...(neg.ipv6 ? (['ipv6'] as const) : [])],
              peerGracefulRestart: gr ? { restartTime: gr.restartTime, restarting: gr.restarting } : null,
            }
          : null,
      messagesSent: this.counters.messagesSent,
      messagesReceived: this.counters.messagesReceived,
      updatesSent: this.counters.updatesSent,
      updatesReceived: this.counters.updatesReceived,
      flaps: this.counters.flaps,
      bfd: null,
    };
  }
}

function shutdownText(m: { code: number; subcode: number; data: Buffer }): string {
  // RFC 8203: Administrative Shutdown/Reset may carry a length-prefixed UTF-8 message.
  if (m.code !== ErrorCode.Cease || (m.subcode !== CeaseSubcode.AdministrativeShutdown && m.subcode !== CeaseSubcode.AdministrativeReset)) return '';
  const len = m.data[0];
  if (len === undefined || len === 0 || len + 1 > m.data.length) return '';
  return `: "${m.data.subarray(1, 1 + len).toString('utf8')}"`;
}

export { CapabilityCode };

/** The KEEPALIVE interval: the configured one when it is shorter than the negotiated hold, else hold/3. */
export function keepaliveSeconds(configured: number | undefined, holdS: number): number {
  if (configured !== undefined && configured > 0 && configured < holdS) return configured;
  return Math.max(1, Math.floor(holdS / 3));
}
