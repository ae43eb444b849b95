// BFD (RFC 5880) codec and state machine: two sessions wired back to back in memory, and one
// session driven packet by packet. No sockets.
import { describe, it, after } from 'node:test';
import dgram from 'node:dgram';
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import { BfdDiag, BfdSession, BfdTransport, decodeBfd, encodeBfd, type BfdPacket, type BfdState } from '../../src/bgp/bfd.ts';

const sessions: BfdSession[] = [];
after(() => sessions.forEach((s) => s.stop()));

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function until(what: string, fn: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

function packet(p: Partial<BfdPacket>): BfdPacket {
  return { diag: 0, state: 'Down', poll: false, final: false, cpi: false, auth: false, demand: false, multipoint: false, detectMult: 3, myDisc: 77, yourDisc: 0, desiredMinTxUs: 1_000_000, requiredMinRxUs: 50_000, requiredMinEchoRxUs: 0, ...p };
}

/** A session whose sent packets are collected (decoded). */
function probe(multiplier = 3, ms = 50) {
  const sent: BfdPacket[] = [];
  const s = new BfdSession({ peer: '192.0.2.2', minRxMs: ms, minTxMs: ms, multiplier, localDiscriminator: 1234 }, { send: (b) => sent.push((decodeBfd(b) as { ok: true; packet: BfdPacket }).packet) });
  const states: string[] = [];
  s.on('state', (e) => states.push(`${e.from}>${e.to}/${e.diag}`));
  sessions.push(s);
  return { s, sent, states };
}

describe('BFD control packet codec (RFC 5880 §4.1)', () => {
  it('round-trips every field', () => {
    const p = packet({ diag: BfdDiag.PathDown, state: 'Up', poll: true, detectMult: 5, myDisc: 0xfffffffe, yourDisc: 1, desiredMinTxUs: 300_000, requiredMinRxUs: 100_000, requiredMinEchoRxUs: 7 });
    const b = encodeBfd(p);
    assert.equal(b.length, 24);
    assert.equal(b[0], (1 << 5) | 5);
    assert.equal(b[1], (3 << 6) | 0x20);
    assert.deepEqual(decodeBfd(b), { ok: true, packet: p });
  });

  it('discards what §6.8.6 says to discard', () => {
    const good = encodeBfd(packet({}));
    const bad = (mutate: (b: Buffer) => void) => {
      const b = Buffer.from(good);
      mutate(b);
      return decodeBfd(b);
    };
    assert.match((bad((b) => (b[0] = (2 << 5))) as { error: string }).error, /version 2/);
    assert.match((bad((b) => (b[3] = 20)) as { error: string }).error, /too small/);
    assert.match((bad((b) => (b[3] = 40)) as { error: string }).error, /exceeds/);
    assert.match((bad((b) => (b[2] = 0)) as { error: string }).error, /multiplier 0/);
    assert.match((bad((b) => (b[1] = (b[1]! | 1))) as { error: string }).error, /multipoint/);
    assert.match((bad((b) => b.writeUInt32BE(0, 4)) as { error: string }).error, /my discriminator 0/);
    assert.match((bad((b) => (b[1] = 3 << 6)) as { error: string }).error, /your discriminator 0 in state Up/);
    assert.match((bad((b) => (b[1] = (1 << 6) | 0x30)) as { error: string }).error, /poll and final/);
    assert.equal(decodeBfd(good.subarray(0, 23)).ok, false);
  });
});

describe('BFD state machine (RFC 5880 §6.8)', () => {
  it('Down → Init → Up on the three-way handshake, then the fast rate after a Poll Sequence', async () => {
    const { s, sent, states } = probe();
    s.start();
    await until('first packet', () => sent.length > 0);
    assert.equal(sent[0]!.state, 'Down');
    assert.equal(sent[0]!.desiredMinTxUs, 1_000_000, 'at least 1 s while not Up (§6.8.3)');
    s.receive(packet({ state: 'Down' }));
    assert.equal(s.state, 'Init');
    assert.equal(sent.at(-1)!.state, 'Init');
    assert.equal(sent.at(-1)!.yourDisc, 77);
    s.receive(packet({ state: 'Up', yourDisc: 1234 }));
    assert.equal(s.state, 'Up');
    const up = sent.at(-1)!;
    assert.equal(up.poll, true, 'the rate change is announced with Poll');
    assert.equal(up.desiredMinTxUs, 50_000);
    // The peer answers with Final and its own fast rate; detection = its multiplier × max(our RX, its TX).
    s.receive(packet({ state: 'Up', yourDisc: 1234, final: true, desiredMinTxUs: 50_000, detectMult: 4 }));
    assert.equal(s.status().detectionTimeMs, 200);
    assert.equal(s.status().txIntervalMs, 50);
    const before = sent.length;
    await sleep(170); // under the 200 ms detection time: nothing more is received
    assert.ok(sent.length - before >= 2, `sent ${sent.length - before} packets in 170 ms at 50 ms`);
    assert.ok(sent.slice(before).every((p) => !p.poll), 'no Poll after the Final');
    assert.deepEqual(states, ['Down>Init/0', 'Init>Up/0']);
  });

  it('answers a Poll with a Final at once', () => {
    const { s, sent } = probe();
    s.start();
    s.receive(packet({ state: 'Down' }));
    const n = sent.length;
    s.receive(packet({ state: 'Init', yourDisc: 1234, poll: true }));
    assert.ok(sent.slice(n).some((p) => p.final && !p.poll), 'a Poll is answered with Final (and no Poll)');
  });

  it('the detection time expires: Down with diagnostic 1, and the remote discriminator is forgotten', async () => {
    const { s, states } = probe();
    s.start();
    s.receive(packet({ state: 'Down', desiredMinTxUs: 20_000 }));
    s.receive(packet({ state: 'Up', yourDisc: 1234, final: true, desiredMinTxUs: 20_000 }));
    assert.equal(s.state, 'Up');
    // 3 × max(50 ms, 20 ms) = 150 ms.
    const t0 = Date.now();
    await until('Down', () => s.state === 'Down');
    const took = Date.now() - t0;
    assert.ok(took >= 140 && took < 400, `declared down after ${took} ms`);
    assert.equal(states.at(-1), `Up>Down/${BfdDiag.ControlDetectionTimeExpired}`);
    assert.equal(s.status().remoteDiscriminator, 0);
    assert.equal(s.status().diag, 'control detection time expired');
    assert.equal(s.status().downs, 1);
  });

  it('a neighbour that signals Down or AdminDown takes an Up session down with diagnostic 3', () => {
    for (const remote of ['Down', 'AdminDown'] as BfdState[]) {
      const { s, states } = probe();
      s.start();
      s.receive(packet({ state: 'Init' }));
      assert.equal(s.state, 'Up');
      s.receive(packet({ state: remote, yourDisc: 1234 }));
      assert.equal(s.state, 'Down');
      assert.equal(states.at(-1), `Up>Down/${BfdDiag.NeighborSignaledSessionDown}`);
      assert.equal(s.status().remoteState, remote);
    }
  });

  it('stop() sends AdminDown with diagnostic 7 and RequiredMinRx 0', () => {
    const { s, sent } = probe();
    s.start();
    s.stop();
    const last = sent.at(-1)!;
    assert.equal(last.state, 'AdminDown');
    assert.equal(last.diag, BfdDiag.AdministrativelyDown);
    assert.equal(last.requiredMinRxUs, 0);
  });

  it('a blocked event loop: a packet that arrived in time is read before the detection time is judged', async () => {
    const { s, states } = probe();
    s.start();
    const rx = dgram.createSocket('udp4');
    rx.on('message', (m) => s.receive((decodeBfd(m) as { ok: true; packet: BfdPacket }).packet));
    await new Promise<void>((r) => rx.bind(0, '127.0.0.1', () => r()));
    // Another process sends the next packet 50 ms after it says "ready", while this loop is busy.
    const hex = encodeBfd(packet({ state: 'Up', yourDisc: 1234, desiredMinTxUs: 20_000 })).toString('hex');
    const child = spawn(process.execPath, ['-e', `const s=require('dgram').createSocket('udp4');console.log('ready');setTimeout(()=>s.send(Buffer.from('${hex}','hex'),${rx.address().port},'127.0.0.1',()=>s.close()),50)`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve) =>
        child.stdout!.once('data', () => {
          // Up now (the child took its time to start), with the detection time due in 150 ms.
          s.receive(packet({ state: 'Down', desiredMinTxUs: 20_000 }));
          s.receive(packet({ state: 'Up', yourDisc: 1234, final: true, desiredMinTxUs: 20_000 }));
          assert.equal(s.status().detectionTimeMs, 150);
          const until = performance.now() + 300;
          while (performance.now() < until) {
            /* the loop is blocked past the detection time; the child's packet arrives meanwhile */
          }
          resolve();
        }),
      );
      await sleep(20);
      assert.equal(s.state, 'Up', `states: ${states.join(' ')}`);
    } finally {
      rx.close();
      child.kill();
    }
  });

  it('two sessions back to back come Up and stay Up; when one stops, the other goes Down', async () => {
    const mk = (disc: number, peerOf: () => BfdSession) =>
      new BfdSession({ peer: '192.0.2.9', minRxMs: 20, minTxMs: 20, multiplier: 3, localDiscriminator: disc }, { send: (b) => setImmediate(() => peerOf().receive((decodeBfd(b) as { ok: true; packet: BfdPacket }).packet)) });
    let b: BfdSession;
    const a = mk(1, () => b);
    b = mk(2, () => a);
    sessions.push(a, b);
    a.start();
    b.start();
    await until('both Up', () => a.state === 'Up' && b.state === 'Up', 5000);
    await until('fast rate', () => a.status().txIntervalMs === 20 && b.status().detectionTimeMs === 60);
    await sleep(300);
    assert.equal(a.state, 'Up');
    assert.equal(b.status().downs, 0);
    a.stop();
    await until('b Down', () => b.state === 'Down');
    assert.equal(b.status().remoteState, 'AdminDown');
  });

  it('the transport closes a removed session\'s socket only after its AdminDown packet is out', async () => {
    // The peer listens on 127.0.0.2; the transport's own receive socket cannot bind the same port
    // (an error in the session's status, irrelevant here): only its send path is under test.
    const peer = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => peer.bind(0, '127.0.0.2', resolve));
    const got: BfdPacket[] = [];
    peer.on('message', (m) => {
      const d = decodeBfd(m);
      if (d.ok) got.push(d.packet);
    });
    const silent = { debug() {}, info() {}, warn() {}, error() {} };
    const transport = new BfdTransport(silent as never, peer.address().port);
    try {
      const s = await transport.add('127.0.0.2', undefined, { minRxMs: 1000, minTxMs: 1000, multiplier: 3 });
      await until('a first packet', () => got.length > 0);
      transport.remove(s);
      await until('AdminDown at the peer', () => got.some((p) => p.state === 'AdminDown'), 2000);
      assert.equal(got.at(-1)!.diag, BfdDiag.AdministrativelyDown);
    } finally {
      transport.close();
      peer.close();
    }
  });
});
