// BGPPeer TTL options against BIRD 2 two hops away: spk — mid (a router namespace, forwarding) —
// rtr, on documentation addresses. The session is the one the product opens for a BGPPeer spec
// (defaultBgpFactory, in an agent inside spk), so what is tested is the spec → socket mapping:
//  - ebgpMultiHop: TTL 255 → Established over IPv4 and IPv6 transport, routes arrive;
//  - eBGP without it: TTL 1 → the router in between answers Time Exceeded, the connect fails with
//    EHOSTUNREACH and the status says why; never Established;
//  - gtsm (RFC 5082) with BIRD's `ttl security on`: hops 2 → Established (both directions);
//    hops 1 → the peer's segments arrive with TTL 254 < 255 and the kernel drops them
//    (TcpExtTCPMinTTLDrop), never Established.
// Needs root, bird2 and koffi; skipped with a reason outside CI, a failure under CI=true.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Topo, labNamespaces, sweepStale, type LabNode } from './lab/topo.ts';
import { BirdPeer, peerBinaries } from './lab/peers.ts';
import { SpeakerAgent } from './lab/speaker.ts';
import { missingRequirements, run, sleep, waitFor } from './lab/sys.ts';
import { nativeUnavailable } from '../../src/bgp/native.ts';

const missing = missingRequirements([...peerBinaries.bird, 'ss', 'nstat']);
const noKoffi = nativeUnavailable();
if (noKoffi) missing.push(noKoffi);
const inCI = process.env.CI === 'true';
const skip = missing.length > 0 && !inCI ? `multihop lab unavailable (needs ${missing.join(', ')}); set CI=true to make this a failure` : false;
if (skip) console.log(`# skipping multihop lab: ${skip}`);

const SPEAKER_ASN = 64513;
const PEER_ASN = 64512;
const V4 = '203.0.113.40/32';
const V6 = '2001:db8:ff::40/128';

interface Lab {
  spk: LabNode;
  mid: LabNode;
  rtr: LabNode;
  bird: BirdPeer;
  agent: SpeakerAgent;
  peerAddress: string;
}

const disposers = new Set<() => Promise<void>>();

/**
 * A chain with BIRD on rtr configured `multihop 2` (plus `ttl security on` when asked) and our
 * session from `spec` in spk. `weConnect`: BIRD is passive; otherwise BIRD connects to our listener.
 */
async function lab(o: { spec: Record<string, unknown>; ttlSecurity?: boolean; v6?: boolean; weConnect?: boolean }): Promise<Lab> {
  const topo = await Topo.create({ nodes: ['spk', 'mid', 'rtr'], routed: true });
  const [spk, mid, rtr] = [topo.node('spk'), topo.node('mid'), topo.node('rtr')];
  const weConnect = o.weConnect ?? true;
  const ours = o.v6 ? spk.ipv6 : spk.ipv4;
  const peerAddress = o.v6 ? rtr.ipv6 : rtr.ipv4;
  const bird = new BirdPeer({
    node: rtr,
    asn: PEER_ASN,
    neighbor: { address: ours, asn: SPEAKER_ASN, passive: weConnect, holdTime: 9 },
    multihop: { hops: 2, via: o.v6 ? '2001:db8:2::1' : '192.0.2.1' },
    ...(o.ttlSecurity ? { ttlSecurity: true } : {}),
  });
  const agent = await SpeakerAgent.spawn(spk);
  const dispose = async () => {
    disposers.delete(dispose);
    await agent.stop().catch(() => {});
    await bird.destroy().catch(() => {});
    await topo.destroy();
  };
  disposers.add(dispose);
  try {
    await bird.start();
    await agent.startFromSpec({ peerAddress, peerASN: PEER_ASN, myASN: SPEAKER_ASN, holdTime: 9, passive: !weConnect, ...(weConnect ? {} : { sourceAddress: ours }), ...o.spec }, spk.ipv4);
    await agent.announce(o.v6 ? [[V6]] : [[V4]]);
  } catch (err) {
    await dispose();
    throw err;
  }
  after(dispose);
  return { spk, mid, rtr, bird, agent, peerAddress };
}

/** A kernel counter of a namespace (absolute value; the history file is neither read nor written). */
async function counter(ns: string, name: string): Promise<number> {
  const out = (await run('ip', ['netns', 'exec', ns, 'nstat', '-asz', name])).stdout;
  return Number(new RegExp(`^${name}\\s+(\\d+)`, 'm').exec(out)?.[1] ?? 0);
}

describe('BGPPeer TTL options, BIRD two hops away', { skip, concurrency: 3 }, () => {
  before(async () => {
    await sweepStale();
  });
  after(async () => {
    for (const d of [...disposers]) await d();
    assert.deepEqual(await labNamespaces(), [], 'no lab namespace left behind');
  });

  it('ebgpMultiHop over IPv4: Established, and the route arrives with our next hop', async () => {
    const l = await lab({ spec: { ebgpMultiHop: true } });
    await l.agent.waitForState(l.peerAddress, 'Established');
    const v4 = await waitFor('v4 route at BIRD', () => l.bird.route(V4));
    assert.deepEqual(v4.nextHops, [l.spk.ipv4]);
    assert.deepEqual(v4.asPath, [SPEAKER_ASN]);
  });

  it('ebgpMultiHop over IPv6 transport (hop limit): Established, the route arrives', async () => {
    const l = await lab({ spec: { ebgpMultiHop: true }, v6: true });
    await l.agent.waitForState(l.peerAddress, 'Established');
    await waitFor('v6 route at BIRD', () => l.bird.has(V6));
  });

  it('eBGP without ebgpMultiHop: TTL 1 expires at the router in between; never Established, and the status says why', async () => {
    const l = await lab({ spec: {} });
    const st = await waitFor('the connect to fail', async () => {
      const s = await l.agent.peerStatus(l.peerAddress);
      return s?.lastError && /EHOSTUNREACH/.test(s.lastError.message) ? s : undefined;
    });
    assert.match(st.lastError!.message, /TTL 1: a peer that is not directly connected needs a multihop TTL/);
    assert.ok((await counter(l.mid.ns, 'IcmpOutTimeExcds')) >= 1, 'the router in between sent ICMP Time Exceeded');
    assert.equal(await l.bird.established(), false);
    assert.equal(l.agent.events.some((e) => e.event === 'state' && e.to === 'Established'), false);
  });

  it('gtsm hops 2 (BIRD: multihop 2, ttl security on): Established, the route arrives', async () => {
    const l = await lab({ spec: { gtsm: { hops: 2 } }, ttlSecurity: true });
    await l.agent.waitForState(l.peerAddress, 'Established');
    await waitFor('v4 route at BIRD', () => l.bird.has(V4));
  });

  it('gtsm hops 2, passive (BIRD connects to our listener): Established', async () => {
    const l = await lab({ spec: { gtsm: { hops: 2 } }, ttlSecurity: true, weConnect: false });
    await l.agent.waitForState(l.peerAddress, 'Established');
    await waitFor('v4 route at BIRD', () => l.bird.has(V4));
  });

  for (const weConnect of [true, false]) {
    it(`gtsm hops 1 with the peer two hops away (${weConnect ? 'we connect' : 'passive'}): its segments arrive with TTL 254 and the kernel drops them; never Established`, async () => {
      const l = await lab({ spec: { gtsm: { hops: 1 } }, ttlSecurity: true, weConnect });
      await waitFor('a segment dropped below the minimum TTL', async () => (await counter(l.spk.ns, 'TcpExtTCPMinTTLDrop')) > 0);
      await sleep(1500); // BIRD retries every second when it connects; nothing may get through meanwhile.
      assert.equal(await l.bird.established(), false);
      assert.equal(l.agent.events.some((e) => e.event === 'state' && e.to === 'Established'), false);
    });
  }
});
