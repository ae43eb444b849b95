// Session FSM and speaker API against a scripted peer on the loopback interface (no namespaces:
// nothing is configured, only 127.0.0.0/8 sockets are opened).
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import { BgpConfigError, BgpSpeaker, type SpeakerOptions } from '../../src/bgp/index.ts';
import { encodeUpdate, encodeRouteRefresh, type OpenMessage, type UpdateMessage } from '../../src/bgp/messages.ts';
import { jitteredDelay, nextRetryDelay } from '../../src/bgp/session.ts';
import { RawPeer, type Received } from './raw-peer.ts';

const SPEAKER_IP = '127.0.0.1';
const PEER_IP = '127.0.0.2';
const cleanups: Array<() => unknown> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function waitFor<T>(what: string, fn: () => T | undefined | false, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function speaker(opts: Partial<SpeakerOptions> = {}): Promise<BgpSpeaker> {
  const s = new BgpSpeaker({
    asn: 65001,
    routerId: '192.0.2.1',
    listen: { port: 0, address: SPEAKER_IP },
    connectRetry: { initialMs: 100, maxMs: 400 },
    ...opts,
  });
  await s.start();
  cleanups.push(() => s.close());
  return s;
}

/** A speaker with one active peer pointing at a fresh scripted peer; returns after the OPEN arrives. */
async function connected(opts: Partial<SpeakerOptions> = {}, peerAsn = 65002, peerOpts: Record<string, unknown> = {}) {
  const s = await speaker(opts);
  const listener = await RawPeer.listen(PEER_IP);
  cleanups.push(() => listener.close());
  s.addPeer({ address: PEER_IP, asn: peerAsn, port: listener.port, localAddress: SPEAKER_IP, nextHopIpv6: '2001:db8::1', ...peerOpts });
  const peer = await listener.accepted;
  cleanups.push(() => peer.close());
  const open = (await peer.next()) as OpenMessage;
  assert.equal(open.type, 'open');
  return { s, peer, open, listener };
}

async function establish(peer: RawPeer, s: BgpSpeaker, asn = 65002, routerId = '192.0.2.2', hold = 90): Promise<void> {
  peer.sendOpen(asn, routerId, hold);
  peer.sendKeepalive();
  const ka = await peer.next();
  assert.equal(ka.type, 'keepalive');
  await waitFor('Established', () => s.peerStatus(PEER_IP)?.state === 'Established');
}

/** Reads UPDATEs until End-of-RIB for both families; returns announced and withdrawn prefixes. */
async function readUntilEndOfRib(peer: RawPeer) {
  const announced: string[] = [];
  const withdrawn: string[] = [];
  const updates: UpdateMessage[] = [];
  const eor = new Set<number>();
  while (eor.size < 2) {
    const m = await peer.nextNonKeepalive();
    assert.equal(m.type, 'update', `expected UPDATE, got ${m.type}`);
    const u = m as UpdateMessage;
    if (u.endOfRib) {
      eor.add(u.endOfRib.afi);
      continue;
    }
    updates.push(u);
    announced.push(...u.nlri, ...(u.attributes.mpReach?.nlri ?? []));
    withdrawn.push(...u.withdrawn, ...(u.attributes.mpUnreach?.withdrawn ?? []));
  }
  return { announced, withdrawn, updates };
}

async function nextUpdate(peer: RawPeer): Promise<UpdateMessage> {
  const m = await peer.nextNonKeepalive();
  assert.equal(m.type, 'update', `expected UPDATE, got ${JSON.stringify(m)}`);
  return m as UpdateMessage;
}

async function expectNotification(peer: RawPeer, code: number, subcode: number): Promise<void> {
  const m = (await peer.nextNonKeepalive()) as Received;
  assert.equal(m.type, 'notification', `expected NOTIFICATION, got ${JSON.stringify(m)}`);
  if (m.type !== 'notification') return;
  assert.deepEqual([m.code, m.subcode], [code, subcode]);
  assert.equal((await peer.next()).type, 'closed');
}

describe('BGP session (loopback, scripted peer)', { concurrency: 1 }, () => {
  it('sends an OPEN with our capabilities, then the full table and End-of-RIB per family', async () => {
    const s = await speaker({ asn: 4200000001 });
    s.announce('203.0.113.10/32', { communities: ['NO_EXPORT'] });
    s.announce('2001:db8:ff::10/128');
    const listener = await RawPeer.listen(PEER_IP);
    cleanups.push(() => listener.close());
    s.addPeer({ address: PEER_IP, asn: 65002, port: listener.port, localAddress: SPEAKER_IP, nextHopIpv6: '2001:db8::1' });
    const peer = await listener.accepted;
    cleanups.push(() => peer.close());
    const open = (await peer.next()) as OpenMessage;
    assert.equal(open.myAs, 23456);
    assert.equal(open.asn, 4200000001);
    assert.equal(open.holdTime, 90);
    const codes = open.capabilities.map((c) => c.code);
    assert.deepEqual(codes, [1, 1, 2, 64, 65]);
    const gr = open.capabilities.find((c) => c.code === 64);
    assert.ok(gr && 'restartTime' in gr && gr.restartTime === 120 && gr.families.every((f) => f.forwardingPreserved), `graceful restart capability: ${JSON.stringify(gr)}`);
    await establish(peer, s);
    const { announced, updates } = await readUntilEndOfRib(peer);
    assert.deepEqual(announced.sort(), ['2001:db8:ff::10/128', '203.0.113.10/32']);
    const v4 = updates.find((u) => u.nlri.length > 0)!;
    assert.deepEqual(v4.attributes.asPath, [{ type: 'sequence', asns: [4200000001] }]);
    assert.equal(v4.attributes.nextHop, SPEAKER_IP);
    assert.deepEqual(v4.attributes.communities, [0xffffff01]);
    const v6 = updates.find((u) => u.attributes.mpReach)!;
    assert.deepEqual(v6.attributes.mpReach!.nextHops, ['2001:db8::1']);
    const st = s.peerStatus(PEER_IP)!;
    assert.equal(st.state, 'Established');
    assert.deepEqual(st.prefixesSent, { ipv4: 1, ipv6: 1 });
    assert.equal(st.peerRouterId, '192.0.2.2');
    assert.deepEqual(st.negotiated?.families, ['ipv4', 'ipv6']);
  });

  it('sends only changes, and the full set again after a reconnect', async () => {
    const { s, peer } = await connected();
    s.announce('203.0.113.1/32');
    await establish(peer, s);
    assert.deepEqual((await readUntilEndOfRib(peer)).announced, ['203.0.113.1/32']);

    s.announce('203.0.113.2/32');
    s.announce('203.0.113.1/32'); // unchanged: nothing to send
    assert.deepEqual((await nextUpdate(peer)).nlri, ['203.0.113.2/32']);
    s.announce('203.0.113.1/32', { med: 7 });
    const changed = await nextUpdate(peer);
    assert.deepEqual([changed.nlri, changed.attributes.med], [['203.0.113.1/32'], 7]);
    s.withdraw('203.0.113.2/32');
    assert.deepEqual((await nextUpdate(peer)).withdrawn, ['203.0.113.2/32']);
    s.announce('203.0.113.3/32');
    s.withdraw('203.0.113.3/32'); // announced and withdrawn before the flush: nothing on the wire
    assert.deepEqual(await peer.drain(150), []);

    const relisten = await RawPeer.listen(PEER_IP);
    cleanups.push(() => relisten.close());
    // Point the speaker at the new listener by re-adding the peer.
    await s.removePeer(PEER_IP);
    assert.equal((await peer.nextNonKeepalive()).type, 'notification');
    s.addPeer({ address: PEER_IP, asn: 65002, port: relisten.port, localAddress: SPEAKER_IP });
    const peer2 = await relisten.accepted;
    cleanups.push(() => peer2.close());
    assert.equal((await peer2.next()).type, 'open');
    await establish(peer2, s);
    assert.deepEqual((await readUntilEndOfRib(peer2)).announced, ['203.0.113.1/32']);
  });

  it('reconnects after the peer drops the TCP connection and re-sends the full set', async () => {
    const s = await speaker();
    const listener = await RawPeer.listen(PEER_IP);
    cleanups.push(() => listener.close());
    s.announce('203.0.113.5/32');
    s.addPeer({ address: PEER_IP, asn: 65002, port: listener.port, localAddress: SPEAKER_IP });
    const first = await listener.accepted;
    await first.next();
    await establish(first, s);
    await readUntilEndOfRib(first);
    const next = listener.nextConnection();
    first.close();
    await waitFor('not Established', () => s.peerStatus(PEER_IP)!.state !== 'Established');
    const second = await next;
    assert.equal((await second.next()).type, 'open');
    await establish(second, s);
    assert.deepEqual((await readUntilEndOfRib(second)).announced, ['203.0.113.5/32']);
    assert.equal(s.peerStatus(PEER_IP)!.flaps, 1);
  });

  it('answers ROUTE-REFRESH by re-sending the Adj-RIB-Out of that family', async () => {
    const { s, peer } = await connected();
    s.announce('203.0.113.7/32');
    s.announce('2001:db8::7/128');
    await establish(peer, s);
    await readUntilEndOfRib(peer);
    peer.send(encodeRouteRefresh(1, 1));
    const u = await nextUpdate(peer);
    assert.deepEqual(u.nlri, ['203.0.113.7/32']);
    assert.deepEqual(await peer.drain(100), []);
  });

  it('tolerates and ignores routes the peer sends', async () => {
    const { s, peer } = await connected();
    await establish(peer, s);
    await readUntilEndOfRib(peer);
    peer.send(encodeUpdate({ attributes: { origin: 'igp', asPath: [{ type: 'sequence', asns: [65002] }], nextHop: '192.0.2.2' }, nlri: ['198.51.100.0/24'] }, { as4: true }));
    await waitFor('prefix counted', () => s.peerStatus(PEER_IP)!.prefixesReceived === 1);
    assert.equal(s.peerStatus(PEER_IP)!.state, 'Established');
    assert.deepEqual(s.routes(), []);
  });

  it('a malformed attribute is treat-as-withdraw (RFC 7606): event, session stays up', async () => {
    const { s, peer } = await connected();
    const events: unknown[] = [];
    s.on('updateError', (e) => events.push(e));
    await establish(peer, s);
    await readUntilEndOfRib(peer);
    // ORIGIN value 9
    peer.send(Buffer.from('ffffffffffffffffffffffffffffffff002902' + '0000000e' + '40010109' + '400200' + '400304c0000202' + '18c63364', 'hex'));
    await waitFor('updateError event', () => events.length === 1);
    assert.deepEqual(events[0], { peer: PEER_IP, treatAsWithdraw: ['malformed ORIGIN'], discarded: [] });
    assert.equal(s.peerStatus(PEER_IP)!.state, 'Established');
  });

  const refusals: Array<[string, (peer: RawPeer) => void, number, number]> = [
    ['wrong peer AS: 2/2 Bad Peer AS', (p) => p.sendOpen(65099, '192.0.2.2'), 2, 2],
    ['hold time 1: 2/6 Unacceptable Hold Time', (p) => p.sendOpen(65002, '192.0.2.2', 1), 2, 6],
    ['router id 0.0.0.0: 2/3 Bad BGP Identifier', (p) => p.sendOpen(65002, '0.0.0.0'), 2, 3],
    ['BGP version 3: 2/1 Unsupported Version Number', (p) => p.send(Buffer.from('ffffffffffffffffffffffffffffffff001d0103fdea005ac000020200', 'hex')), 2, 1],
    ['garbage marker: 1/1 Connection Not Synchronized', (p) => p.send(Buffer.alloc(40, 0x42)), 1, 1],
    ['length above 4096: 1/2 Bad Message Length', (p) => p.send(Buffer.from('ffffffffffffffffffffffffffffffff200002', 'hex')), 1, 2],
    ['unknown message type: 1/3 Bad Message Type', (p) => p.send(Buffer.from('ffffffffffffffffffffffffffffffff001307', 'hex')), 1, 3],
    ['UPDATE before OPEN: 5/1 FSM error in OpenSent', (p) => p.send(Buffer.from('ffffffffffffffffffffffffffffffff00170200000000', 'hex')), 5, 1],
  ];
  for (const [name, act, code, subcode] of refusals) {
    it(`refuses ${name}`, async () => {
      const { s, peer } = await connected();
      const seen: Array<[string, number, number]> = [];
      s.on('notification', (n) => seen.push([n.direction, n.code, n.subcode]));
      act(peer);
      await expectNotification(peer, code, subcode);
      assert.deepEqual(seen[0], ['sent', code, subcode]);
      const st = s.peerStatus(PEER_IP)!;
      assert.deepEqual([st.lastError?.direction, st.lastError?.code, st.lastError?.subcode], ['sent', code, subcode]);
      assert.notEqual(st.state, 'Established');
    });
  }

  it('refuses an iBGP peer with our own router id (2/3)', async () => {
    const { peer } = await connected({}, 65001);
    peer.sendOpen(65001, '192.0.2.1');
    await expectNotification(peer, 2, 3);
  });

  it('a malformed UPDATE in Established gets 3/1 and the session goes down', async () => {
    const { s, peer } = await connected();
    await establish(peer, s);
    await readUntilEndOfRib(peer);
    peer.send(Buffer.from('ffffffffffffffffffffffffffffffff0017020000ffff', 'hex'));
    await expectNotification(peer, 3, 1);
    await waitFor('down', () => s.peerStatus(PEER_IP)!.state !== 'Established');
  });

  it('negotiates the smaller hold time and sends 4/0 when the peer goes silent', async () => {
    const { s, peer } = await connected();
    const t0 = Date.now();
    await establish(peer, s, 65002, '192.0.2.2', 3);
    const st = s.peerStatus(PEER_IP)!;
    assert.deepEqual([st.negotiated?.holdTime, st.negotiated?.keepaliveTime], [3, 1]);
    // The scripted peer sends nothing more.
    for (let i = 0; i < 20; i++) {
      const m = await peer.next(6000);
      if (m.type === 'notification') {
        assert.deepEqual([m.code, m.subcode], [4, 0]);
        assert.ok(Date.now() - t0 >= 2900, 'not before the hold time');
        return;
      }
      assert.ok(m.type === 'keepalive' || m.type === 'update', `unexpected ${m.type}`);
    }
    assert.fail('no Hold Timer Expired NOTIFICATION');
  });

  it('a configured keepaliveTime shorter than the hold time sets the KEEPALIVE interval', async () => {
    const { s, peer } = await connected({}, 65002, { keepaliveTime: 1 });
    await establish(peer, s, 65002, '192.0.2.2', 9);
    const st = s.peerStatus(PEER_IP)!;
    assert.deepEqual([st.negotiated?.holdTime, st.negotiated?.keepaliveTime], [9, 1]);
    // hold/3 would be 3 s: two KEEPALIVEs within 2.6 s show the configured 1 s.
    const t0 = Date.now();
    let keepalives = 0;
    while (keepalives < 2) {
      const m = await peer.next(3000);
      if (m.type === 'keepalive') keepalives++;
    }
    assert.ok(Date.now() - t0 < 2600, `two KEEPALIVEs took ${Date.now() - t0} ms`);
  });

  it('keepaliveTime at or above the negotiated hold falls back to a third of it; out of range is refused', async () => {
    const { keepaliveSeconds } = await import('../../src/bgp/session.ts');
    assert.equal(keepaliveSeconds(30, 9), 3);
    assert.equal(keepaliveSeconds(undefined, 90), 30);
    assert.equal(keepaliveSeconds(0, 90), 30);
    assert.equal(keepaliveSeconds(10, 90), 10);
    const s = await speaker();
    assert.throws(() => s.addPeer({ address: '127.0.0.9', asn: 65002, keepaliveTime: 21846 }), BgpConfigError);
  });

  it('hold time 0 on either side disables the hold and keepalive timers', async () => {
    const { s, peer } = await connected({ holdTime: 0 });
    await establish(peer, s, 65002, '192.0.2.2', 90);
    const st = s.peerStatus(PEER_IP)!;
    assert.deepEqual([st.negotiated?.holdTime, st.negotiated?.keepaliveTime], [0, 0]);
  });

  it('a passive peer is not connected to, and its incoming connection establishes', async () => {
    const s = await speaker();
    s.addPeer({ address: PEER_IP, asn: 65002, passive: true });
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(s.peerStatus(PEER_IP)!.state, 'Active');
    const peer = await RawPeer.connect(SPEAKER_IP, s.listenPort!, PEER_IP);
    cleanups.push(() => peer.close());
    assert.equal((await peer.next()).type, 'open');
    await establish(peer, s);
  });

  it('refuses connections from unconfigured addresses', async () => {
    const s = await speaker();
    const peer = await RawPeer.connect(SPEAKER_IP, s.listenPort!, '127.0.0.3');
    cleanups.push(() => peer.close());
    assert.equal((await peer.next()).type, 'closed');
  });

  it('connection collision between two speakers: one session survives, the other connection gets 6/7', async () => {
    const a = await speaker({ asn: 65001, routerId: '192.0.2.1', listen: { port: 0, address: '127.0.0.1' } });
    const b = await speaker({ asn: 65002, routerId: '192.0.2.2', listen: { port: 0, address: '127.0.0.2' } });
    const sent: string[] = [];
    a.on('notification', (n) => n.direction === 'sent' && sent.push(`a ${n.code}/${n.subcode}`));
    b.on('notification', (n) => n.direction === 'sent' && sent.push(`b ${n.code}/${n.subcode}`));
    a.addPeer({ address: '127.0.0.2', asn: 65002, port: b.listenPort!, localAddress: '127.0.0.1' });
    b.addPeer({ address: '127.0.0.1', asn: 65001, port: a.listenPort!, localAddress: '127.0.0.2' });
    await waitFor('both Established', () => a.peerStatus('127.0.0.2')!.state === 'Established' && b.peerStatus('127.0.0.1')!.state === 'Established');
    a.announce('203.0.113.9/32');
    await waitFor('route over the surviving connection', () => b.peerStatus('127.0.0.1')!.prefixesReceived === 1);
    assert.ok(sent.length >= 1 && sent.every((x) => x.endsWith('6/7')), `collision notifications: ${sent.join(', ')}`);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(a.peerStatus('127.0.0.2')!.flaps, 0);
    assert.equal(b.peerStatus('127.0.0.1')!.flaps, 0);
  });

  it('removePeer sends Cease/3; close sends Cease/2 with the RFC 8203 message', async () => {
    const one = await connected();
    await establish(one.peer, one.s);
    await readUntilEndOfRib(one.peer);
    assert.equal(await one.s.removePeer(PEER_IP), true);
    await expectNotification(one.peer, 6, 3);
    assert.equal(one.s.peerStatus(PEER_IP), undefined);

    const two = await connected();
    await establish(two.peer, two.s);
    await readUntilEndOfRib(two.peer);
    await two.s.close({ message: 'maintenance' });
    const m = await two.peer.nextNonKeepalive();
    assert.equal(m.type, 'notification');
    if (m.type === 'notification') {
      assert.deepEqual([m.code, m.subcode], [6, 2]);
      assert.equal(m.data.subarray(1).toString(), 'maintenance');
    }
  });

  it('close({ gracefulRestart: true }) drops the session without a NOTIFICATION', async () => {
    const { s, peer } = await connected();
    await establish(peer, s);
    await readUntilEndOfRib(peer);
    await s.close({ gracefulRestart: true });
    assert.equal((await peer.nextNonKeepalive()).type, 'closed');
  });

  it('metrics hooks and a pino logger see the session; a throwing hook does not break it', async () => {
    const states: string[] = [];
    const advertised: number[] = [];
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, new Writable({ write: (chunk, _e, cb) => {
      lines.push(String(chunk));
      cb();
    } }));
    const { s, peer } = await connected({
      logger,
      hooks: {
        stateChange: (_p, from, to) => states.push(`${from}>${to}`),
        prefixesAdvertised: (_p, family, n) => family === 'ipv4' && advertised.push(n),
        messageSent: () => {
          throw new Error('hook failure');
        },
      },
    });
    s.announce('203.0.113.11/32');
    await establish(peer, s);
    await readUntilEndOfRib(peer);
    assert.deepEqual(states.slice(-2), ['OpenSent>OpenConfirm', 'OpenConfirm>Established']);
    assert.deepEqual(advertised, [1]);
    assert.ok(lines.some((l) => l.includes('BGP session established')));
    assert.ok(lines.some((l) => l.includes('BGP metrics hook threw')));
    assert.equal(s.peerStatus(PEER_IP)!.state, 'Established');
  });
});

describe('configuration and API validation', () => {
  it('refuses an empty or too long TCP MD5 password and bad BFD timers with a clear error', () => {
    const s = new BgpSpeaker({ asn: 65001, routerId: '192.0.2.1', listen: false });
    assert.throws(() => s.addPeer({ address: '192.0.2.2', asn: 65002, password: '' }), (e: unknown) => e instanceof BgpConfigError && /non-empty/.test(e.message));
    assert.throws(() => s.addPeer({ address: '192.0.2.2', asn: 65002, password: 'x'.repeat(81) }), (e: unknown) => e instanceof BgpConfigError && /at most 80 bytes/.test(e.message));
    assert.throws(() => s.addPeer({ address: '192.0.2.2', asn: 65002, bfd: { multiplier: 0 } }), /bfd.multiplier/);
    assert.throws(() => s.addPeer({ address: '192.0.2.2', asn: 65002, bfd: { minRxMs: 5 } }), /bfd.minRxMs/);
    s.addPeer({ address: '192.0.2.2', asn: 65002, password: 'x'.repeat(80), bfd: {} });
  });

  it('refuses invalid speaker, peer and route settings', () => {
    assert.throws(() => new BgpSpeaker({ asn: 0, routerId: '192.0.2.1' }), BgpConfigError);
    assert.throws(() => new BgpSpeaker({ asn: 2 ** 32, routerId: '192.0.2.1' }), BgpConfigError);
    assert.throws(() => new BgpSpeaker({ asn: 65001, routerId: '0.0.0.0' }), BgpConfigError);
    assert.throws(() => new BgpSpeaker({ asn: 65001, routerId: '192.0.2.1', holdTime: 2 }), BgpConfigError);
    const s = new BgpSpeaker({ asn: 65001, routerId: '192.0.2.1', listen: false });
    assert.throws(() => s.addPeer({ address: 'nope', asn: 65002 }), BgpConfigError);
    assert.throws(() => s.addPeer({ address: '192.0.2.2', asn: 65002, holdTime: 1 }), BgpConfigError);
    s.addPeer({ address: '192.0.2.2', asn: 65002 });
    assert.throws(() => s.addPeer({ address: '192.0.2.2', asn: 65003 }), /already exists/);
    assert.throws(() => s.announce('203.0.113.0/33'), BgpConfigError);
    assert.throws(() => s.announce('203.0.113.0/24', { communities: ['70000:1'] }), BgpConfigError);
    assert.throws(() => s.announce('203.0.113.0/24', { largeCommunities: ['1:2'] }), BgpConfigError);
    assert.throws(() => s.announce('203.0.113.0/24', { nextHop: '2001:db8::1' }), BgpConfigError);
    assert.throws(() => s.announce('203.0.113.0/24', { med: -1 }), BgpConfigError);
    s.announce('203.0.113.0/24', { communities: ['no-export', 65001], largeCommunities: [[1, 2, 3]] });
    assert.deepEqual(s.routes()[0]?.attributes.communities, [0xffffff01, 65001]);
    assert.equal(s.withdraw('203.0.113.0/24'), true);
    assert.equal(s.withdraw('203.0.113.0/24'), false);
  });

  it('ConnectRetry backoff doubles from the initial delay to the cap, jittered to 75–100 %', () => {
    const seq: number[] = [];
    let d = 1000;
    for (let i = 0; i < 10; i++) {
      seq.push(d);
      d = nextRetryDelay(d, 120_000);
    }
    assert.deepEqual(seq, [1000, 2000, 4000, 8000, 16000, 32000, 64000, 120000, 120000, 120000]);
    assert.equal(jitteredDelay(1000, 0), 750);
    assert.equal(jitteredDelay(1000, 0.999999), 1000);
  });
});
