// The public entry point: a BGP speaker that originates routes to a set of peers.

import { EventEmitter } from 'node:events';
import net from 'node:net';
import { AttrSetTable, type AttrSet, type RouteAttributes } from './adj-rib-out.ts';
import { BgpConfigError, CeaseSubcode } from './errors.ts';
import { shutdownCommunication } from './messages.ts';
import { familyOf, normalizeAddress, parseIp, parseIpv4, parsePrefix, prefixKeyToText, type Afi, type Family } from './prefix.ts';
import { BfdTransport, describeDiag, resolveBfdOptions, type BfdOptions, type BfdSession } from './bfd.ts';
import { TCP_MD5SIG_MAXKEYLEN, nativeUnavailable, setHopOptions, setTcpMd5Key, type NativeResult } from './native.ts';
import { PeerSession, type SessionConfig, type SessionHost } from './session.ts';
import { silentLogger, type BgpHooks, type ConnectRetryOptions, type Logger, type PeerOptions, type PeerStatus, type SpeakerEvents, type SpeakerOptions } from './types.ts';

const MAX_ASN = 0xffffffff;

function checkAsn(asn: unknown, what: string): number {
  if (typeof asn !== 'number' || !Number.isInteger(asn) || asn < 1 || asn > MAX_ASN) {
    throw new BgpConfigError(`${what} must be an integer in 1..4294967295, got ${String(asn)}`);
  }
  return asn;
}

function checkHoldTime(hold: unknown, what: string): number {
  if (typeof hold !== 'number' || !Number.isInteger(hold) || hold < 0 || hold > 65535 || hold === 1 || hold === 2) {
    throw new BgpConfigError(`${what} must be 0 or 3..65535 seconds, got ${String(hold)}`);
  }
  return hold;
}

function checkFamilies(families: unknown, what: string): Family[] {
  if (!Array.isArray(families) || families.length === 0 || !families.every((f) => f === 'ipv4' || f === 'ipv6')) {
    throw new BgpConfigError(`${what} must be a non-empty list of "ipv4" / "ipv6"`);
  }
  return [...new Set(families as Family[])];
}

export interface CloseOptions {
  /**
   * true: drop the TCP sessions without a NOTIFICATION, so that peers which negotiated graceful
   * restart keep our routes (marked stale) until we reconnect and send End-of-RIB. Use for a
   * rolling restart. false (default): Cease / Administrative Shutdown, peers withdraw our routes.
   */
  gracefulRestart?: boolean;
  /** RFC 8203 shutdown communication sent with the Cease. */
  message?: string;
}

export interface AnnouncedRoute {
  prefix: string;
  family: Family;
  attributes: Omit<AttrSet, 'id' | 'refs' | 'key'>;
}

export class BgpSpeaker extends EventEmitter<SpeakerEvents> {
  readonly asn: number;
  readonly routerId: string;
  private readonly holdTime: number;
  private readonly families: Family[];
  private readonly listenOptions: false | { port: number; address: string | undefined };
  private readonly logger: Logger;
  private readonly host: SessionHost;
  private readonly attrSets = new AttrSetTable();
  private readonly ribs: [Map<string, AttrSet>, Map<string, AttrSet>] = [new Map(), new Map()];
  private readonly peers = new Map<string, PeerSession>();
  private server: net.Server | null = null;
  private bfdTransport: BfdTransport | null = null;
  private readonly bfdOptions = new Map<string, Required<BfdOptions>>();
  private readonly bfdSessions = new Map<string, BfdSession>();
  private started = false;
  private closed = false;
  private listenerHopsSet = false;

  constructor(options: SpeakerOptions) {
    super();
    this.asn = checkAsn(options.asn, 'asn');
    const id = parseIpv4(options.routerId);
    if (!id || id.readUInt32BE(0) === 0) throw new BgpConfigError(`routerId must be a non-zero IPv4 address, got "${options.routerId}"`);
    this.routerId = options.routerId;
    this.holdTime = checkHoldTime(options.holdTime ?? 90, 'holdTime');
    this.families = checkFamilies(options.families ?? ['ipv4', 'ipv6'], 'families');
    const listen = options.listen ?? {};
    this.listenOptions = listen === false ? false : { port: listen.port ?? 179, address: listen.address };
    this.logger = options.logger ?? silentLogger;
    const gr = options.gracefulRestart ?? {};
    const restartTime = gr === false ? 0 : (gr.restartTime ?? 120);
    if (!Number.isInteger(restartTime) || restartTime < 0 || restartTime > 4095) throw new BgpConfigError('gracefulRestart.restartTime must be 0..4095 seconds');
    const { initialMs, maxMs } = checkConnectRetry(options.connectRetry ?? {}, 'connectRetry');
    const hooks: BgpHooks = options.hooks ?? {};
    this.host = {
      localAsn: this.asn,
      routerId: this.routerId,
      gracefulRestart: gr === false ? null : { restartTime, restarting: gr.restarting ?? false },
      connectRetry: { initialMs, maxMs },
      logger: this.logger,
      hooks,
      ribs: this.ribs,
    };
  }

  /** Starts listening (unless disabled) and starts every configured peer. */
  async start(): Promise<void> {
    if (this.closed) throw new BgpConfigError('speaker is closed');
    if (this.started) return;
    this.started = true;
    if (this.listenOptions) {
      const { port, address } = this.listenOptions;
      const server = net.createServer((socket) => this.onIncoming(socket));
      server.on('error', (err) => this.logger.error({ err: err.message }, 'BGP listener error'));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ port, host: address ?? '::', ipv6Only: false }, () => {
          server.off('error', reject);
          resolve();
        });
      }).catch(async (err: NodeJS.ErrnoException) => {
        // No IPv6 in this network namespace: fall back to IPv4 only.
        if (address !== undefined || (err.code !== 'EAFNOSUPPORT' && err.code !== 'EADDRNOTAVAIL')) throw err;
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ port, host: '0.0.0.0' }, () => resolve());
        });
      });
      this.server = server;
      this.logger.info({ address: server.address() }, 'BGP listening');
      for (const [address, session] of this.peers) {
        if (session.config.password === undefined) continue;
        const keyed = this.setListenerKey(address, session.config.password);
        if (!keyed.ok) {
          await this.close();
          throw new BgpConfigError(`TCP MD5 key for ${address} on the listener: ${keyed.error}`);
        }
      }
    }
    this.applyListenerHops();
    for (const session of this.peers.values()) session.start();
    for (const address of this.bfdOptions.keys()) await this.startBfd(address);
  }

  private async startBfd(address: string): Promise<void> {
    const options = this.bfdOptions.get(address);
    const peer = this.peers.get(address);
    if (!options || !peer || this.closed || this.bfdSessions.has(address)) return;
    this.bfdTransport ??= BfdTransport.acquire(this.logger);
    const bfd = await this.bfdTransport.add(address, peer.config.localAddress, options);
    if (this.closed || this.peers.get(address) !== peer) {
      this.bfdTransport?.remove(bfd);
      return;
    }
    this.bfdSessions.set(address, bfd);
    if (bfd.lastError) this.logger.warn({ peer: address, err: bfd.lastError }, 'BFD session not started');
    bfd.on('state', ({ from, to, diag }) => {
      const text = describeDiag(diag);
      this.logger[to === 'Down' && from === 'Up' ? 'warn' : 'info']({ peer: address, from, to, diag: text }, 'BFD state change');
      try {
        this.host.hooks.bfdStateChange?.(address, from, to);
      } catch (err) {
        this.logger.error({ peer: address, err: (err as Error).message }, 'BFD metrics hook threw');
      }
      this.emit('bfd', { peer: address, from, to, diag: text });
      // RFC 5882 §3.2: a peer that signals AdminDown is not a failure; anything else that takes an
      // Up session down is, and the BGP session goes with it at once.
      if (from === 'Up' && to === 'Down' && bfd.status().remoteState !== 'AdminDown') peer.bfdDown(`BFD session down: ${text}`);
    });
  }

  private stopBfd(address: string): void {
    this.bfdOptions.delete(address);
    const bfd = this.bfdSessions.get(address);
    if (!bfd) return;
    this.bfdSessions.delete(address);
    bfd.removeAllListeners();
    this.bfdTransport?.remove(bfd);
  }

  /**
   * Sets (or with null removes) a peer's TCP MD5 key on the listening socket; keys apply from the
   * next SYN, and an accepted connection inherits the key. The descriptor of a listening net.Server
   * is only reachable through its internal handle (`_handle.fd`, present on Linux): read here only.
   * A dual-stack "::" listener sees IPv4 peers as ::ffff:a.b.c.d, so they are keyed that way.
   */
  private setListenerKey(address: string, password: string | null): NativeResult<void> {
    const a = this.server?.address();
    const fd = (this.server as unknown as { _handle?: { fd?: number } } | null)?._handle?.fd;
    if (!a || typeof a !== 'object' || typeof fd !== 'number' || fd < 0) return { ok: false, error: 'the listener has no file descriptor' };
    return setTcpMd5Key(fd, a.family === 'IPv6' ? 6 : 4, address, password);
  }

  /**
   * TTL options on the listener, shared by every peer: the SYN-ACK leaves with the listener's TTL,
   * so it gets the largest TTL any peer asks for (when above the kernel's default of 64: a GTSM or
   * multihop peer must receive it); and incoming SYNs are held to the smallest minimum TTL of all
   * peers (0, i.e. none, as soon as one peer has no GTSM). Each accepted connection then takes its
   * peer's own options (PeerSession.acceptIncoming).
   */
  private applyListenerHops(): void {
    const fd = (this.server as unknown as { _handle?: { fd?: number } } | null)?._handle?.fd;
    const a = this.server?.address();
    if (typeof fd !== 'number' || fd < 0 || !a || typeof a !== 'object') return;
    const sessions = [...this.peers.values()];
    // Nothing to do until a peer asks for TTL options; once set, the minimum is kept up to date (a
    // raised TTL stays: a larger SYN-ACK TTL than needed harms nobody).
    if (!this.listenerHopsSet && !sessions.some((s) => s.config.ttl !== undefined || s.config.minTtl !== undefined)) return;
    this.listenerHopsSet = true;
    const ttls = sessions.map((s) => s.config.ttl).filter((t) => t !== undefined);
    const ttl = ttls.length && Math.max(...ttls) > 64 ? Math.max(...ttls) : undefined;
    const minTtl = sessions.length ? Math.min(...sessions.map((s) => s.config.minTtl ?? 0)) : 0;
    // A dual-stack listener takes both levels: IPv4 peers arrive as IPv4-mapped addresses.
    const probes = a.family === 'IPv6' ? ['::1', '127.0.0.1'] : ['127.0.0.1'];
    for (const probe of probes) {
      const r = setHopOptions(fd, probe, { ttl, minTtl });
      if (!r.ok) this.logger.warn({ err: r.error }, 'TTL options on the BGP listener not set');
    }
  }

  /** The port the listener is bound to (useful with listen.port 0), or null. */
  get listenPort(): number | null {
    const a = this.server?.address();
    return a && typeof a === 'object' ? a.port : null;
  }

  private onIncoming(socket: net.Socket): void {
    const remote = normalizeAddress(socket.remoteAddress ?? '');
    const session = this.peers.get(remote);
    if (!session) {
      this.logger.warn({ remote }, 'BGP connection from an unconfigured address refused');
      socket.destroy();
      return;
    }
    session.acceptIncoming(socket);
  }

  addPeer(options: PeerOptions): void {
    if (this.closed) throw new BgpConfigError('speaker is closed');
    const password = checkPassword(options.password);
    const ip = parseIp(options.address);
    if (!ip) throw new BgpConfigError(`peer address "${options.address}" is not an IP address`);
    const address = normalizeAddress(options.address);
    if (this.peers.has(address)) throw new BgpConfigError(`peer ${address} already exists`);
    const port = options.port ?? 179;
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new BgpConfigError(`peer port must be 1..65535`);
    if (options.localAddress !== undefined && !parseIp(options.localAddress)) throw new BgpConfigError(`localAddress "${options.localAddress}" is not an IP address`);
    if (options.nextHopIpv4 !== undefined && !parseIpv4(options.nextHopIpv4)) throw new BgpConfigError(`nextHopIpv4 "${options.nextHopIpv4}" is not an IPv4 address`);
    if (options.nextHopIpv6 !== undefined && parseIp(options.nextHopIpv6)?.afi !== 2) throw new BgpConfigError(`nextHopIpv6 "${options.nextHopIpv6}" is not an IPv6 address`);
    const ll = options.linkLocalNextHop;
    if (typeof ll === 'string' && !/^fe80:/i.test(normalizeAddress(ll))) throw new BgpConfigError(`linkLocalNextHop "${ll}" is not an IPv6 link-local address`);
    const config: SessionConfig = {
      address,
      asn: checkAsn(options.asn, 'peer asn'),
      port,
      localAddress: options.localAddress,
      passive: options.passive ?? false,
      holdTime: checkHoldTime(options.holdTime ?? this.holdTime, 'peer holdTime'),
      keepaliveTime: checkKeepalive(options.keepaliveTime),
      families: options.families ? checkFamilies(options.families, 'peer families').filter((f) => this.families.includes(f)) : this.families,
      nextHopIpv4: options.nextHopIpv4,
      nextHopIpv6: options.nextHopIpv6 !== undefined ? normalizeAddress(options.nextHopIpv6) : undefined,
      linkLocalNextHop: typeof ll === 'string' ? normalizeAddress(ll) : ll,
      description: options.description,
      password,
      ttl: checkTtl(options.ttl, 'peer ttl'),
      minTtl: checkTtl(options.minTtl, 'peer minTtl'),
      connectRetry: options.connectRetry ? checkConnectRetry(options.connectRetry, 'peer connectRetry') : undefined,
    };
    if ((config.ttl !== undefined || config.minTtl !== undefined) && nativeUnavailable()) {
      throw new BgpConfigError(`peer ttl / minTtl need koffi to set IP_TTL / IP_MINTTL: ${nativeUnavailable()}`);
    }
    if (config.families.length === 0) throw new BgpConfigError(`peer ${address} has no family in common with the speaker`);
    const session = new PeerSession(config, this.host);
    session.on('state', (from, to) => this.emit('state', { peer: address, from, to }));
    session.on('established', () => this.emit('established', { peer: address }));
    session.on('down', (reason: string) => this.emit('down', { peer: address, reason }));
    session.on('notification', (n) => this.emit('notification', { peer: address, ...n }));
    session.on('updateError', (e) => this.emit('updateError', { peer: address, ...e }));
    if (password !== undefined && this.server) {
      const keyed = this.setListenerKey(address, password);
      if (!keyed.ok) throw new BgpConfigError(`TCP MD5 key for ${address} on the listener: ${keyed.error}`);
    }
    const bfd = options.bfd !== undefined ? checkBfd(options.bfd) : undefined;
    this.peers.set(address, session);
    if (this.server) this.applyListenerHops();
    if (bfd) this.bfdOptions.set(address, bfd);
    if (this.started) {
      session.start();
      if (bfd) void this.startBfd(address);
    }
  }

  /** Stops the session with Cease / Peer De-configured and forgets the peer. */
  async removePeer(address: string): Promise<boolean> {
    const key = normalizeAddress(address);
    const session = this.peers.get(key);
    if (!session) return false;
    this.peers.delete(key);
    this.stopBfd(key);
    await session.stop(CeaseSubcode.PeerDeconfigured);
    if (session.config.password !== undefined && this.server) this.setListenerKey(key, null);
    if (this.server) this.applyListenerHops();
    session.removeAllListeners();
    return true;
  }

  /** Announces (or replaces) a route to every peer of its family. Throws BgpConfigError on bad input. */
  announce(prefix: string, attributes: RouteAttributes = {}): void {
    if (this.closed) throw new BgpConfigError('speaker is closed');
    const p = parsePrefix(prefix);
    const set = this.attrSets.intern(p.afi, attributes);
    const rib = this.ribs[p.afi - 1]!;
    const old = rib.get(p.key);
    if (old === set) return;
    this.attrSets.retain(set);
    rib.set(p.key, set);
    if (old) this.attrSets.release(old);
    this.changed(p.afi, p.key);
  }

  /** Withdraws a route; returns false if it was not announced. */
  withdraw(prefix: string): boolean {
    const p = parsePrefix(prefix);
    const rib = this.ribs[p.afi - 1]!;
    const old = rib.get(p.key);
    if (!old) return false;
    rib.delete(p.key);
    this.attrSets.release(old);
    this.changed(p.afi, p.key);
    return true;
  }

  private changed(afi: Afi, key: string): void {
    for (const session of this.peers.values()) {
      if (session.config.families.includes(familyOf(afi))) session.markDirty(afi, key);
    }
  }

  /** Routes currently announced. */
  routes(): AnnouncedRoute[] {
    const out: AnnouncedRoute[] = [];
    for (const afi of [1, 2] as const) {
      for (const [key, set] of this.ribs[afi - 1]!) {
        const { id: _id, refs: _refs, key: _key, ...attributes } = set;
        out.push({ prefix: prefixKeyToText(afi, key), family: familyOf(afi), attributes });
      }
    }
    return out;
  }

  get routeCount(): { ipv4: number; ipv6: number } {
    return { ipv4: this.ribs[0].size, ipv6: this.ribs[1].size };
  }

  peerStatus(address: string): PeerStatus | undefined {
    const key = normalizeAddress(address);
    const s = this.peers.get(key)?.status();
    return s && { ...s, bfd: this.bfdSessions.get(key)?.status() ?? null };
  }

  status(): PeerStatus[] {
    return [...this.peers.keys()].map((a) => this.peerStatus(a)!);
  }

  /**
   * Changes a peer's TCP MD5 key in place: on the listener, on the open connections and for the
   * next connect. The kernel checks every segment against the key set now, so an established
   * session survives only if the peer switches to the same key before the hold timer expires.
   * Returns the errors of setting it (empty on success).
   */
  setPassword(address: string, password: string | undefined): string[] {
    const key = normalizeAddress(address);
    const session = this.peers.get(key);
    if (!session) return [`no peer ${key}`];
    const checked = checkPassword(password);
    const errors = session.setPassword(checked);
    if (this.server) {
      const r = this.setListenerKey(key, checked ?? null);
      if (!r.ok) errors.push(r.error);
    }
    return errors;
  }

  /** Stops every session (Cease, or silently for a graceful restart) and the listener. */
  async close(options: CloseOptions = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const server = this.server;
    this.server = null;
    const serverClosed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    const data = options.message !== undefined ? shutdownCommunication(options.message) : undefined;
    await Promise.all(
      [...this.peers.values()].map((s) => (options.gracefulRestart ? s.abandon() : s.stop(CeaseSubcode.AdministrativeShutdown, data))),
    );
    await serverClosed;
    for (const address of [...this.bfdSessions.keys()]) this.stopBfd(address);
    if (this.bfdTransport) BfdTransport.release();
    this.bfdTransport = null;
    for (const s of this.peers.values()) s.removeAllListeners();
  }
}

function checkBfd(o: BfdOptions): Required<BfdOptions> {
  const r = resolveBfdOptions(o);
  // RFC 5880 intervals are 32-bit microseconds; BFD is pointless slower than about a minute.
  for (const k of ['minRxMs', 'minTxMs'] as const) {
    if (!Number.isInteger(r[k]) || r[k] < 10 || r[k] > 60_000) throw new BgpConfigError(`bfd.${k} must be an integer 10..60000 ms, got ${String(r[k])}`);
  }
  if (!Number.isInteger(r.multiplier) || r.multiplier < 1 || r.multiplier > 255) throw new BgpConfigError(`bfd.multiplier must be 1..255, got ${String(r.multiplier)}`);
  return r;
}

function checkPassword(password: unknown): string | undefined {
  if (password === undefined) return undefined;
  if (typeof password !== 'string' || password.length === 0) throw new BgpConfigError('password must be a non-empty string');
  if (Buffer.byteLength(password, 'utf8') > TCP_MD5SIG_MAXKEYLEN) throw new BgpConfigError(`password must be at most ${TCP_MD5SIG_MAXKEYLEN} bytes (the kernel's TCP MD5 key limit)`);
  // Never fall back to an unauthenticated session when the key cannot be set.
  const why = nativeUnavailable();
  if (why) throw new BgpConfigError(`TCP MD5 signatures (RFC 2385) need koffi to set TCP_MD5SIG: ${why}`);
  return password;
}

function checkConnectRetry(o: ConnectRetryOptions, what: string): { initialMs: number; maxMs: number } {
  const initialMs = o.initialMs ?? 1000;
  const maxMs = o.maxMs ?? Math.max(120_000, initialMs);
  if (!(initialMs > 0) || !(maxMs >= initialMs)) throw new BgpConfigError(`${what} needs 0 < initialMs <= maxMs`);
  return { initialMs, maxMs };
}

function checkTtl(v: number | undefined, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < 1 || v > 255) throw new BgpConfigError(`${what} must be an integer 1..255, got ${String(v)}`);
  return v;
}

function checkKeepalive(v: number | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < 0 || v > 21845) throw new BgpConfigError('peer keepaliveTime must be an integer 0..21845');
  return v;
}
