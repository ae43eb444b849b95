// How the speaker opens a BGP session for a BGPPeer spec: one BgpSpeaker per peer, with the
// spec's timers, TTL options, password and BFD. Kept apart from the runtime (speaker.ts) so that
// tools and tests can open exactly the product's session without loading the runtime.
import { BgpSpeaker, nativeUnavailable, type PeerStatus, type RouteAttributes } from '../bgp/index.ts';
import type { BGPPeerSpec } from '../kube/speaker-config.ts';

/** The BGP side as the runtime needs it (BgpSpeaker; tests may inject a fake). */
export interface BgpSession {
  start(): Promise<void>;
  announce(prefix: string, attributes?: RouteAttributes): void;
  withdraw(prefix: string): boolean;
  routes(): { prefix: string }[];
  status(): PeerStatus[];
  close(options?: { gracefulRestart?: boolean }): Promise<void>;
}

export type BgpFactory = (
  peer: BGPPeerSpec,
  ctx: {
    routerId: string;
    hooks: ConstructorParameters<typeof BgpSpeaker>[0]['hooks'];
    /**
     * Next hop for the family the session's transport is not (the node's InternalIP of that family):
     * the session itself only knows its local address, so without it a dual-stack speaker would
     * silently send no IPv6 routes over an IPv4 session (and no IPv4 routes over an IPv6 one).
     */
    crossFamilyNextHop?: string;
    /** TCP MD5 key, read from spec.passwordSecretRef. */
    password?: string;
  },
) => BgpSession;

export const defaultBgpFactory: BgpFactory = (spec, { routerId, hooks, crossFamilyNextHop, password }) => {
  // The webhook refuses plaintext passwords; never open an unauthenticated session for one that got through.
  if ((spec as { password?: unknown }).password !== undefined) throw new Error('a plaintext password is not accepted (use passwordSecretRef); the session is not opened');
  const gr = spec.gracefulRestart?.enabled ? { restartTime: spec.gracefulRestart.restartTime ?? 120 } : false;
  const speaker = new BgpSpeaker({
    asn: spec.myASN,
    routerId,
    holdTime: spec.holdTime ?? 90,
    // A passive session needs a listener; bound to the source address so several peers can coexist.
    listen: spec.passive ? { port: 179, ...(spec.sourceAddress ? { address: spec.sourceAddress } : {}) } : false,
    gracefulRestart: gr,
    hooks,
  });
  speaker.addPeer({
    address: spec.peerAddress,
    asn: spec.peerASN,
    port: spec.peerPort ?? 179,
    ...(spec.sourceAddress ? { localAddress: spec.sourceAddress } : {}),
    passive: spec.passive ?? false,
    holdTime: spec.holdTime ?? 90,
    ...(spec.keepaliveTime !== undefined ? { keepaliveTime: spec.keepaliveTime } : {}),
    ...(crossFamilyNextHop ? (spec.peerAddress.includes(':') ? { nextHopIpv4: crossFamilyNextHop } : { nextHopIpv6: crossFamilyNextHop }) : {}),
    ...(password !== undefined ? { password } : {}),
    ...(spec.bfd ? { bfd: { minRxMs: spec.bfd.minRxMs ?? 300, minTxMs: spec.bfd.minTxMs ?? 300, multiplier: spec.bfd.multiplier ?? 3 } } : {}),
    ...sessionTtl(spec),
    ...(spec.connectTime !== undefined ? { connectRetry: { initialMs: spec.connectTime * 1000, maxMs: spec.connectTime * 1000 } } : {}),
  });
  return speaker;
};

/**
 * The TTL options of a BGPPeer's session. GTSM (RFC 5082): TTL 255 out, at least 256 - hops in.
 * eBGP: TTL 1 unless ebgpMultiHop (then 255), as routers do, so a peer that is not directly
 * connected fails visibly instead of working by accident. iBGP: the kernel's default (64). Without
 * koffi an eBGP session keeps the kernel's default TTL rather than not opening; GTSM is refused
 * (BgpSpeaker.addPeer throws) because it is a security setting.
 */
export function sessionTtl(spec: BGPPeerSpec): { ttl?: number; minTtl?: number } {
  if (spec.gtsm) return { ttl: 255, minTtl: 256 - (spec.gtsm.hops ?? 1) };
  if (spec.myASN === spec.peerASN || nativeUnavailable()) return {};
  return { ttl: spec.ebgpMultiHop ? 255 : 1 };
}
