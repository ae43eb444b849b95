// Public configuration, status and observability types.

import type { BfdOptions, BfdState, BfdStatus } from './bfd.ts';
import type { Family } from './prefix.ts';

export type SessionState = 'Idle' | 'Connect' | 'Active' | 'OpenSent' | 'OpenConfirm' | 'Established';

/** Any pino-compatible logger. The default discards everything. */
// The library logs through admitlb's one logger type (a type-only import: no runtime dependency).
import type { Logger } from '../log.ts';
export type { Logger };

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export type NotificationDirection = 'sent' | 'received';

/**
 * Metrics hooks: plain callbacks, so the caller decides how to export them (prom-client counters,
 * OpenTelemetry, ...). Exceptions thrown by a hook are caught and logged.
 */
export interface BgpHooks {
  stateChange?(peer: string, from: SessionState, to: SessionState): void;
  messageSent?(peer: string, type: string, count: number, bytes: number): void;
  messageReceived?(peer: string, type: string, bytes: number): void;
  /** Gauge: prefixes currently in the peer's Adj-RIB-Out for the family. */
  prefixesAdvertised?(peer: string, family: Family, count: number): void;
  notification?(peer: string, direction: NotificationDirection, code: number, subcode: number): void;
  /** The BFD session to the peer changed state. */
  bfdStateChange?(peer: string, from: BfdState, to: BfdState): void;
}

export interface ConnectRetryOptions {
  /** First ConnectRetry/IdleHold delay (default 1000 ms); doubled after each failure. */
  initialMs?: number;
  /** Upper bound of the doubling (default 120000 ms). Each delay is jittered to 75–100 %. */
  maxMs?: number;
}

export interface GracefulRestartOptions {
  /** Restart Time advertised to peers, in seconds (0–4095, default 120). */
  restartTime?: number;
  /** Sets the Restart State (R) bit: this process has just restarted (RFC 4724 §3). */
  restarting?: boolean;
}

export interface SpeakerOptions {
  /** Local AS number, 1–4294967295. */
  asn: number;
  /** BGP identifier, a non-zero IPv4 address. */
  routerId: string;
  /** Hold time offered to peers in seconds: 0 (no keepalives) or 3–65535. Default 90. */
  holdTime?: number;
  /** Where to accept incoming sessions; false disables listening. Default port 179 on all addresses. */
  listen?: false | { port?: number; address?: string };
  /** Families offered to every peer unless a peer narrows them. Default both. */
  families?: Family[];
  /** Graceful restart capability (RFC 4724); false disables. Default { restartTime: 120 }. */
  gracefulRestart?: false | GracefulRestartOptions;
  connectRetry?: ConnectRetryOptions;
  logger?: Logger;
  hooks?: BgpHooks | undefined;
}

export interface PeerOptions {
  /** Peer address (IPv4 or IPv6); also how incoming connections are matched to the peer. */
  address: string;
  /** Expected peer AS; an OPEN with another AS is refused with Bad Peer AS. */
  asn: number;
  /** TCP port of the peer (default 179). */
  port?: number;
  /** Source address for outgoing connections. */
  localAddress?: string;
  /** Only wait for the peer to connect. */
  passive?: boolean;
  /** Hold time offered to this peer (overrides the speaker's). */
  holdTime?: number;
  /**
   * Seconds between KEEPALIVEs (0–21845). Used when shorter than the negotiated hold time;
   * otherwise, and by default, a third of the negotiated hold time (RFC 4271 §10).
   */
  keepaliveTime?: number;
  /** Families for this peer (default: the speaker's). */
  families?: Family[];
  /** IPv4 next hop for routes without their own (default: the session's local IPv4 address). */
  nextHopIpv4?: string;
  /** IPv6 global next hop (default: the session's local IPv6 address). */
  nextHopIpv6?: string;
  /** IPv6 link-local next hop: an address, false to never send one, or (default) detected when the session runs over IPv6. */
  linkLocalNextHop?: string | false;
  /**
   * TCP MD5 signature key (RFC 2385), at most 80 bytes: set on outgoing sockets before connect()
   * and on the listener for this peer's address. Needs koffi (native.ts); without it addPeer throws
   * rather than open an unauthenticated session.
   */
  password?: string;
  /**
   * TTL (IPv4) / hop limit (IPv6) of the session's segments, 1..255; unset: the kernel's default
   * (64). Routers send 1 on single-hop eBGP sessions and 255 with ebgp-multihop. Needs koffi.
   */
  ttl?: number;
  /**
   * GTSM (RFC 5082): the kernel drops the peer's segments that arrive with a TTL / hop limit below
   * this (IP_MINTTL / IPV6_MINHOPCOUNT), so that only a sender within 256 - minTtl hops can reach
   * the session; 255 for a directly connected peer. Pair it with ttl 255 (the peer checks ours the
   * same way). Needs koffi.
   */
  minTtl?: number;
  /** This peer's ConnectRetry timer (default: the speaker's); initialMs = maxMs gives a fixed interval. */
  connectRetry?: ConnectRetryOptions;
  /**
   * Single-hop BFD (RFC 5880/5881) to the peer: when the BFD session goes from Up to Down, the BGP
   * session is closed at once with Cease / BFD Down.
   */
  bfd?: BfdOptions;
  description?: string;
}

export interface PeerError {
  direction: NotificationDirection | 'local';
  code?: number;
  subcode?: number;
  message: string;
  at: Date;
}

export interface PeerStatus {
  address: string;
  port: number;
  asn: number;
  localAsn: number;
  description: string | undefined;
  state: SessionState;
  /** Milliseconds since Established, 0 when not established. */
  uptimeMs: number;
  establishedAt: Date | null;
  peerRouterId: string | null;
  lastError: PeerError | null;
  /** Prefixes currently advertised (Adj-RIB-Out size) per family. */
  prefixesSent: { ipv4: number; ipv6: number };
  /** NLRI the peer announced to us (counted, then ignored). */
  prefixesReceived: number;
  negotiated: null | {
    holdTime: number;
    keepaliveTime: number;
    as4: boolean;
    routeRefresh: boolean;
    families: Family[];
    peerGracefulRestart: { restartTime: number; restarting: boolean } | null;
  };
  messagesSent: number;
  messagesReceived: number;
  updatesSent: number;
  updatesReceived: number;
  /** Times an Established session went down. */
  flaps: number;
  /** The BFD session, when configured. */
  bfd: BfdStatus | null;
}

export interface StateChangeEvent {
  peer: string;
  from: SessionState;
  to: SessionState;
}

export interface NotificationEvent {
  peer: string;
  direction: NotificationDirection;
  code: number;
  subcode: number;
  message: string;
}

export interface UpdateErrorEvent {
  peer: string;
  /** RFC 7606 treat-as-withdraw reasons. */
  treatAsWithdraw: string[];
  /** RFC 7606 attribute-discard reasons. */
  discarded: string[];
}

/** Events emitted by BgpSpeaker. */
export interface SpeakerEvents {
  state: [StateChangeEvent];
  established: [{ peer: string }];
  down: [{ peer: string; reason: string }];
  notification: [NotificationEvent];
  updateError: [UpdateErrorEvent];
  bfd: [BfdStateEvent];
}

export interface BfdStateEvent {
  peer: string;
  from: BfdState;
  to: BfdState;
  /** Our diagnostic, as text. */
  diag: string;
}
