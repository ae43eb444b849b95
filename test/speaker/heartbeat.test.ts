// Heartbeats: the packet codec, the PeerLiveness state machine on a fake clock (table-driven), the
// quorum rule, and the UDP transport between two sockets on loopback addresses.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PeerLiveness, decodeHeartbeat, encodeHeartbeat, type Heartbeat, type ReceiveResult } from '../../src/speaker/heartbeat.ts';
import { HeartbeatTransport, loadHeartbeatKeys } from '../../src/speaker/heartbeat-transport.ts';
import { HeartbeatThread } from '../../src/speaker/heartbeat-worker.ts';
import { hasQuorum } from '../../src/speaker/election.ts';

const K1 = randomBytes(32);
const K2 = randomBytes(32);
const hb = (node: string, incarnation: number, seq: number, leaving = false): Heartbeat => ({ node, incarnation: BigInt(incarnation), seq: BigInt(seq), leaving });

describe('heartbeat packet', () => {
  it('round-trips under the current key and under the previous one (rotation); reports which', () => {
    const p = encodeHeartbeat(hb('node-a', 1700000000000, 42, true), K1);
    const d = decodeHeartbeat(p, [K1]);
    assert.ok(d.ok);
    assert.deepEqual(d.heartbeat, hb('node-a', 1700000000000, 42, true));
    const rotated = decodeHeartbeat(p, [K2, K1]);
    assert.ok(rotated.ok, 'verifies with the old key after a rotation');
    assert.equal(rotated.keyIndex, 1, 'the second key verified it');
  });

  const good = encodeHeartbeat(hb('node-b', 5, 6), K1);
  const flip = (i: number) => {
    const b = Buffer.from(good);
    b[i] = b[i]! ^ 1;
    return b;
  };
  const cases: [string, Buffer, Buffer[], string][] = [
    ['wrong key', good, [K2], 'bad-mac'],
    ['name altered', flip(7), [K1], 'bad-mac'],
    ['sequence altered', flip(good.length - 33), [K1], 'bad-mac'],
    ['mac altered', flip(good.length - 1), [K1], 'bad-mac'],
    ['version 2', (() => { const b = Buffer.from(good); b[3] = 2; return b; })(), [K1], 'version'],
    ['not ours', Buffer.from('GET / HTTP/1.1\r\n\r\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'), [K1], 'malformed'],
    ['truncated', good.subarray(0, good.length - 1), [K1], 'malformed'],
    ['trailing byte', Buffer.concat([good, Buffer.from([0])]), [K1], 'malformed'],
    ['empty', Buffer.alloc(0), [K1], 'malformed'],
  ];
  for (const [name, buf, keys, reason] of cases) {
    it(`rejects: ${name} → ${reason}`, () => {
      const d = decodeHeartbeat(buf, keys);
      assert.equal(d.ok, false);
      assert.equal(!d.ok && d.reason, reason);
    });
  }

  it('refuses to encode an empty or oversized node name', () => {
    assert.throws(() => encodeHeartbeat(hb('', 1, 1), K1), /1\.\.253/);
    assert.throws(() => encodeHeartbeat(hb('x'.repeat(254), 1, 1), K1), /1\.\.253/);
  });
});

describe('PeerLiveness (fake clock)', () => {
  type Step = { at: number; rx?: Heartbeat; want?: ReceiveResult; members?: string[]; heard?: string[]; nextDeath?: number | undefined };
  const table: { name: string; steps: Step[] }[] = [
    {
      name: 'a member is heard for missed × interval after its last packet, judged on the local clock only',
      steps: [
        { at: 0, members: ['a', 'b', 'c'], heard: ['a'] },
        { at: 10, rx: hb('b', 1, 1), want: 'joined', heard: ['a', 'b'], nextDeath: 310 },
        { at: 110, rx: hb('b', 1, 2), want: 'accepted', nextDeath: 410 },
        { at: 409, heard: ['a', 'b'] },
        { at: 410, heard: ['a'], nextDeath: undefined },
        { at: 500, rx: hb('b', 1, 3), want: 'joined', heard: ['a', 'b'] },
      ],
    },
    {
      name: 'replays and reordered packets are rejected; a later incarnation (restart) resets the sequence',
      steps: [
        { at: 0, members: ['a', 'b'] },
        { at: 0, rx: hb('b', 100, 7), want: 'joined' },
        { at: 50, rx: hb('b', 100, 7), want: 'replay' },
        { at: 60, rx: hb('b', 100, 6), want: 'replay' },
        { at: 70, rx: hb('b', 99, 1000), want: 'replay' },
        { at: 80, rx: hb('b', 101, 1), want: 'accepted', heard: ['a', 'b'] },
        { at: 90, rx: hb('b', 100, 8), want: 'replay' },
        // A replay never refreshes: b goes dead 300 ms after its last REAL packet.
        { at: 379, rx: hb('b', 101, 1), want: 'replay', heard: ['a', 'b'] },
        { at: 380, heard: ['a'] },
      ],
    },
    {
      name: 'packets of non-members keep no state (bounded memory); own name ignored',
      steps: [
        { at: 0, members: ['a', 'b'] },
        { at: 1, rx: hb('stranger', 1, 1), want: 'not-member', heard: ['a'] },
        { at: 2, rx: hb('a', 1, 1), want: 'self', heard: ['a'] },
      ],
    },
    {
      name: 'a node that leaves the membership is forgotten at once; a leaving packet counts it dead at once',
      steps: [
        { at: 0, members: ['a', 'b', 'c'] },
        { at: 0, rx: hb('b', 1, 1), want: 'joined' },
        { at: 0, rx: hb('c', 1, 1), want: 'joined', heard: ['a', 'b', 'c'] },
        { at: 50, members: ['a', 'c'], heard: ['a', 'c'] },
        { at: 60, rx: hb('c', 1, 2, true), want: 'left', heard: ['a'] },
        { at: 70, rx: hb('c', 1, 2), want: 'replay', heard: ['a'] },
      ],
    },
    {
      name: 'after a long silence the replay state is forgotten, so a restart with a clock set back is heard again',
      steps: [
        { at: 0, members: ['a', 'b'] },
        { at: 0, rx: hb('b', 5000, 9), want: 'joined' },
        { at: 10_000, rx: hb('b', 4000, 1), want: 'replay' },
        { at: 30_001, rx: hb('b', 4000, 2), want: 'joined', heard: ['a', 'b'] },
      ],
    },
  ];
  for (const { name, steps } of table) {
    it(name, () => {
      const pl = new PeerLiveness({ self: 'a', intervalMs: 100, missed: 3 });
      for (const [i, s] of steps.entries()) {
        if (s.members) pl.setMembers(s.members);
        if (s.rx) assert.equal(pl.receive(s.rx, s.at), s.want, `step ${i}: receive`);
        if (s.heard) assert.deepEqual([...pl.heard(s.at)].sort(), s.heard, `step ${i}: heard`);
        if ('nextDeath' in s) assert.equal(pl.nextDeath(s.at), s.nextDeath, `step ${i}: nextDeath`);
      }
      assert.ok(pl.size() <= pl.memberList().length);
    });
  }

  it('rejects a nonsensical configuration', () => {
    assert.throws(() => new PeerLiveness({ self: 'a', intervalMs: 0, missed: 3 }));
    assert.throws(() => new PeerLiveness({ self: 'a', intervalMs: 100, missed: 0 }));
  });
});

describe('hasQuorum: who may act on its view of an election', () => {
  const cases: [string, string[], string[], boolean][] = [
    ['3 known, hears all', ['a', 'b', 'c'], ['a', 'b', 'c'], true],
    ['3 known, hears one peer (a peer died)', ['a', 'b', 'c'], ['b', 'c'], true],
    ['3 known, hears nobody (own link down / isolated)', ['a', 'b', 'c'], ['c'], false],
    ['4 known, split 2|2: the half with the lowest name acts', ['a', 'b', 'c', 'd'], ['a', 'd'], true],
    ['4 known, split 2|2: the other half does not', ['a', 'b', 'c', 'd'], ['b', 'c'], false],
    ['2 known, the lowest alone acts (peer dead or unreachable)', ['a', 'b'], ['a'], true],
    ['2 known, the other alone waits for the membership', ['a', 'b'], ['b'], false],
    ['the only member acts', ['a'], ['a'], true],
    ['5 known, 3 heard', ['a', 'b', 'c', 'd', 'e'], ['c', 'd', 'e'], true],
    ['5 known, 2 heard (with the lowest)', ['a', 'b', 'c', 'd', 'e'], ['a', 'b'], false],
    ['nobody known', [], ['a'], false],
  ];
  for (const [name, known, heard, want] of cases) it(name, () => assert.equal(hasQuorum(known, new Set(heard)), want));
});

describe('HeartbeatTransport (UDP between two loopback addresses)', () => {
  it('two speakers hear each other; a wrong key is rejected; rotation with the previous key keeps them heard; a leaving packet counts at once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'admitlb-hb-'));
    const port = 20000 + Math.floor(Math.random() * 20000);
    const keyDir = (name: string, key: Buffer, prev?: Buffer) => {
      const d = join(dir, name);
      mkdirSync(d, { recursive: true });
      writeFileSync(join(d, 'key'), `${key.toString('base64')}\n`);
      if (prev) writeFileSync(join(d, 'previous'), prev.toString('base64'));
      return d;
    };
    const outcomes: Record<string, string[]> = { a: [], b: [] };
    const logger = { info: () => {}, warn: () => {} };
    // 20 ms × 25: a loaded machine stalls the event loop for tens of ms; only "leaving" must be at once.
    const mk = (node: string, address: string, keysDir: string) =>
      new HeartbeatTransport({ nodeName: node, address, port, intervalMs: 20, missed: 25, keysDir, logger, keyReloadMs: 30, onPacket: (o) => outcomes[node === 'node-a' ? 'a' : 'b']!.push(o) });
    const dA = keyDir('a', K1);
    const dB = keyDir('b', K2);
    const a = mk('node-a', '127.0.0.2', dA);
    const b = mk('node-b', '127.0.0.3', dB);
    try {
      await a.start();
      await b.start();
      a.setPeers(['node-a', 'node-b'], ['127.0.0.3']);
      b.setPeers(['node-a', 'node-b'], ['127.0.0.2']);
      await until(() => outcomes.a!.includes('bad-mac'));
      assert.deepEqual([...a.heard()], ['node-a'], 'different keys: not heard');
      // b rotates to K1 with K2 as previous; a learns K2 as its new key with K1 as previous.
      writeFileSync(join(dB, 'key'), K1.toString('base64'));
      writeFileSync(join(dB, 'previous'), K2.toString('base64'));
      await until(() => a.heard().size === 2 && b.heard().size === 2);
      writeFileSync(join(dA, 'key'), K2.toString('base64'));
      writeFileSync(join(dA, 'previous'), K1.toString('base64'));
      const n = outcomes.b!.length;
      await until(() => outcomes.b!.length > n + 10);
      assert.deepEqual([...b.heard()].sort(), ['node-a', 'node-b'], 'accepted under the previous key during the rotation');
      assert.ok(!outcomes.b!.slice(n).includes('bad-mac'));
      // A bad key file is refused; the running key stays.
      writeFileSync(join(dA, 'key'), 'short');
      await sleep(100);
      assert.deepEqual([...b.heard()].sort(), ['node-a', 'node-b']);
      await b.stop({ leaving: true });
      await until(() => outcomes.a!.includes('left'));
      assert.deepEqual([...a.heard()], ['node-a'], 'leaving: dead at once');
    } finally {
      await a.stop();
      await b.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('on their own threads (what the speaker runs): the heard set is pushed to the main thread; counts batched; leaving at once; a bad key fails start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'admitlb-hb-'));
    const port = 20000 + Math.floor(Math.random() * 20000);
    writeFileSync(join(dir, 'key'), K1.toString('base64'));
    const logger = { info: () => {}, warn: () => {} };
    const changes = { a: 0 };
    const packets: Record<string, number> = {};
    const a = new HeartbeatThread({ nodeName: 'node-a', address: '127.0.0.2', port, intervalMs: 20, missed: 25, keysDir: dir, logger, onChange: () => changes.a++, onPacket: (o, n) => (packets[o] = (packets[o] ?? 0) + n) });
    const b = new HeartbeatThread({ nodeName: 'node-b', address: '127.0.0.3', port, intervalMs: 20, missed: 25, keysDir: dir, logger });
    try {
      await a.start();
      await b.start();
      a.setPeers(['node-a', 'node-b'], ['127.0.0.3']);
      b.setPeers(['node-a', 'node-b'], ['127.0.0.2']);
      await until(() => a.heard().size === 2 && b.heard().size === 2);
      assert.ok(changes.a >= 1);
      // Blocking the main thread does not stop the heartbeats (they live on the worker).
      const end = Date.now() + 700;
      while (Date.now() < end);
      await sleep(50);
      assert.deepEqual([...b.heard()].sort(), ['node-a', 'node-b'], 'a busy main thread still sends');
      await until(() => (packets.joined ?? 0) + (packets.accepted ?? 0) > 5, 5000);
      await b.stop({ leaving: true });
      await until(() => a.heard().size === 1);
      const bad = new HeartbeatThread({ nodeName: 'node-c', address: '127.0.0.4', port, intervalMs: 20, missed: 3, keysDir: join(dir, 'missing'), logger });
      await assert.rejects(bad.start(), /cannot read the heartbeat key/);
      await bad.stop();
    } finally {
      await a.stop();
      await b.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a missing or short key is a clear error at start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'admitlb-hb-'));
    try {
      await assert.rejects(loadHeartbeatKeys(dir), /key: cannot read the heartbeat key/);
      writeFileSync(join(dir, 'key'), Buffer.alloc(16).toString('base64'));
      await assert.rejects(loadHeartbeatKeys(dir), /at least 32 bytes/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  for (const end = performance.now() + timeoutMs; !cond(); await sleep(10)) if (performance.now() > end) throw new Error(`timed out: ${cond}`);
}
