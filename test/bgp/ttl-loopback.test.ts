// Per-peer TTL options of the BGP library between two speakers on the loopback interface (no
// namespaces: only 127.0.0.0/8 sockets). On loopback a segment arrives with the TTL it was sent
// with, so a minimum TTL of 255 (GTSM, RFC 5082) passes TTL 255 and drops the kernel's default 64:
// this checks that `ttl` reaches the SYN and the data segments, and `minTtl` the connecting socket,
// the listener and the accepted socket, without a router in between (test/bgp/multihop.test.ts
// has one).
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BgpConfigError, BgpSpeaker, type PeerOptions } from '../../src/bgp/index.ts';
import { nativeUnavailable } from '../../src/bgp/native.ts';

const A = '127.0.0.1';
const B = '127.0.0.2';
const noKoffi = nativeUnavailable();
const skip = noKoffi && process.env.CI !== 'true' ? `koffi unavailable: ${noKoffi}` : false;

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** B listens (passive for A), A connects; each side's peer options as given. */
async function pair(aOpts: Partial<PeerOptions>, bOpts: Partial<PeerOptions>) {
  const b = new BgpSpeaker({ asn: 65002, routerId: '192.0.2.2', listen: { port: 0, address: B }, connectRetry: { initialMs: 200, maxMs: 400 } });
  await b.start();
  cleanups.push(() => b.close());
  b.addPeer({ address: A, asn: 65001, passive: true, ...bOpts });
  const a = new BgpSpeaker({ asn: 65001, routerId: '192.0.2.1', listen: false, connectRetry: { initialMs: 200, maxMs: 400 } });
  a.addPeer({ address: B, asn: 65002, port: b.listenPort!, localAddress: A, ...aOpts });
  await a.start();
  cleanups.push(() => a.close());
  return { a, b };
}

async function established(s: BgpSpeaker, peer: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (s.peerStatus(peer)?.state === 'Established') return true;
    await sleep(20);
  }
  return false;
}

describe('BGP per-peer TTL and GTSM (loopback)', { skip, concurrency: 1 }, () => {
  it('both sides GTSM (ttl 255, minTtl 255): Established, and routes flow', async () => {
    const { a, b } = await pair({ ttl: 255, minTtl: 255 }, { ttl: 255, minTtl: 255 });
    assert.ok(await established(a, B, 5000), 'A established');
    assert.ok(await established(b, A, 5000), 'B established');
    a.announce('203.0.113.50/32');
    const deadline = Date.now() + 5000;
    while (b.peerStatus(A)!.prefixesReceived < 1 && Date.now() < deadline) await sleep(20);
    assert.equal(b.peerStatus(A)!.prefixesReceived, 1);
  });

  it('the listener drops a SYN below its minimum TTL: A sends the default TTL (64), B wants 255', async () => {
    const { a, b } = await pair({}, { ttl: 255, minTtl: 255 });
    assert.equal(await established(a, B, 1500), false);
    assert.equal(b.peerStatus(A)!.state === 'Established', false);
    assert.equal(a.peerStatus(B)!.state, 'Connect', 'the SYN goes unanswered: still connecting');
  });

  it('the connecting socket drops a SYN-ACK below its minimum TTL: B answers with the default TTL (64)', async () => {
    const { a } = await pair({ ttl: 255, minTtl: 255 }, {});
    assert.equal(await established(a, B, 1500), false);
    assert.equal(a.peerStatus(B)!.state, 'Connect');
  });

  it('the listener minimum follows the peers: removing the only GTSM peer lifts it for the next one', async () => {
    const b = new BgpSpeaker({ asn: 65002, routerId: '192.0.2.2', listen: { port: 0, address: B }, connectRetry: { initialMs: 200, maxMs: 400 } });
    await b.start();
    cleanups.push(() => b.close());
    b.addPeer({ address: '127.0.0.3', asn: 65003, passive: true, ttl: 255, minTtl: 255 });
    await b.removePeer('127.0.0.3');
    b.addPeer({ address: A, asn: 65001, passive: true });
    const a = new BgpSpeaker({ asn: 65001, routerId: '192.0.2.1', listen: false, connectRetry: { initialMs: 200, maxMs: 400 } });
    a.addPeer({ address: B, asn: 65002, port: b.listenPort!, localAddress: A });
    await a.start();
    cleanups.push(() => a.close());
    assert.ok(await established(a, B, 5000), 'a default-TTL SYN is accepted again');
  });

  it('IPv6 (hop limit, IPV6_MINHOPCOUNT): ::1 to ::1, GTSM passes hop limit 255 and drops the default 64', async () => {
    const gtsm = { ttl: 255, minTtl: 255 };
    for (const [aOpts, want] of [[gtsm, true], [{}, false]] as const) {
      const b = new BgpSpeaker({ asn: 65002, routerId: '192.0.2.2', listen: { port: 0, address: '::1' }, connectRetry: { initialMs: 200, maxMs: 400 } });
      await b.start();
      cleanups.push(() => b.close());
      b.addPeer({ address: '::1', asn: 65001, passive: true, ...gtsm });
      const a = new BgpSpeaker({ asn: 65001, routerId: '192.0.2.1', listen: false, connectRetry: { initialMs: 200, maxMs: 400 } });
      a.addPeer({ address: '::1', asn: 65002, port: b.listenPort!, localAddress: '::1', ...aOpts });
      await a.start();
      cleanups.push(() => a.close());
      assert.equal(await established(a, '::1', want ? 5000 : 1500), want, JSON.stringify(aOpts));
    }
  });

  it('ttl 1 on loopback still connects (nothing decrements it)', async () => {
    const { a } = await pair({ ttl: 1 }, { ttl: 1 });
    assert.ok(await established(a, B, 5000));
  });

  it('refuses a TTL or minimum TTL outside 1..255 and a connectRetry with maxMs below initialMs', () => {
    const s = new BgpSpeaker({ asn: 65001, routerId: '192.0.2.1', listen: false });
    for (const bad of [{ ttl: 0 }, { ttl: 256 }, { minTtl: 0 }, { minTtl: 1.5 }, { connectRetry: { initialMs: 500, maxMs: 100 } }]) {
      assert.throws(() => s.addPeer({ address: '192.0.2.9', asn: 65002, ...bad }), BgpConfigError, JSON.stringify(bad));
    }
  });
});
