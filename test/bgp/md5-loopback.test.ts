// TCP MD5 (RFC 2385) between two of our own speakers on the loopback interface: keys set through
// koffi on the connecting socket and on the listener, a wrong key, and key rotation on an
// established session. Only 127.0.0.0/8 sockets; needs koffi (skipped without it outside CI).
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { BgpSpeaker } from '../../src/bgp/index.ts';
import { nativeUnavailable } from '../../src/bgp/native.ts';

const noKoffi = nativeUnavailable();
const skip = noKoffi && process.env.CI !== 'true' ? `koffi unavailable: ${noKoffi}` : false;

const A = '127.0.0.1';
const B = '127.0.0.2';
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
});

async function until(what: string, fn: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A listens (B is its passive peer), B connects to A; each with its own password. */
async function pair(passwordA: string | undefined, passwordB: string | undefined, holdTime = 90) {
  const a = new BgpSpeaker({ asn: 65001, routerId: '192.0.2.1', holdTime, listen: { port: 0, address: A }, gracefulRestart: false });
  a.addPeer({ address: B, asn: 65002, passive: true, ...(passwordA ? { password: passwordA } : {}) });
  await a.start();
  const b = new BgpSpeaker({ asn: 65002, routerId: '192.0.2.2', holdTime, listen: false, gracefulRestart: false, connectRetry: { initialMs: 100, maxMs: 200 } });
  b.addPeer({ address: A, asn: 65001, port: a.listenPort!, localAddress: B, ...(passwordB ? { password: passwordB } : {}) });
  await b.start();
  cleanups.push(async () => {
    await b.close();
    await a.close();
  });
  return { a, b };
}

describe('TCP MD5 between two speakers on loopback', { skip }, () => {
  it('the same password on both sides: Established, routes exchanged', async () => {
    const { a, b } = await pair('s3cret', 's3cret');
    b.announce('203.0.113.40/32');
    await until('Established', () => a.peerStatus(B)?.state === 'Established' && b.peerStatus(A)?.state === 'Established');
    await until('route received', () => (a.peerStatus(B)?.prefixesReceived ?? 0) > 0);
  });

  it('different passwords: SYNs are dropped, no session', async () => {
    const { a, b } = await pair('one', 'two');
    await new Promise((r) => setTimeout(r, 1500));
    assert.notEqual(a.peerStatus(B)?.state, 'Established');
    assert.equal(b.peerStatus(A)?.state, 'Connect', 'still waiting for an answer to its SYN');
  });

  it('a password on one side only: no session', async () => {
    const { a, b } = await pair(undefined, 'only-b');
    await new Promise((r) => setTimeout(r, 1000));
    assert.notEqual(a.peerStatus(B)?.state, 'Established');
    assert.notEqual(b.peerStatus(A)?.state, 'Established');
  });

  it('key rotation: both sides change within the hold time, the session survives; one side alone, it expires', async () => {
    const { a, b } = await pair('old-key', 'old-key', 3);
    await until('Established', () => a.peerStatus(B)?.state === 'Established' && b.peerStatus(A)?.state === 'Established');
    assert.deepEqual(a.setPassword(B, 'new-key'), []);
    await new Promise((r) => setTimeout(r, 1200)); // one keepalive interval with mismatched keys
    assert.deepEqual(b.setPassword(A, 'new-key'), []);
    await new Promise((r) => setTimeout(r, 4000)); // past the 3 s hold time
    assert.equal(a.peerStatus(B)?.state, 'Established');
    assert.equal(b.peerStatus(A)?.flaps, 0, 'the session never went down');
    assert.equal(a.peerStatus(B)?.flaps, 0);
    // Now only A changes: B's keepalives no longer verify at A, A's hold timer expires.
    assert.deepEqual(a.setPassword(B, 'newer-key'), []);
    await until('hold timer expired', () => (a.peerStatus(B)?.flaps ?? 0) > 0, 8000);
    assert.match(a.peerStatus(B)?.lastError?.message ?? '', /Hold Timer Expired|TCP connection closed/);
  });
});
