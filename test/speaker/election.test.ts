import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { OwnerCache, groupKeyFor, ownerOf, score } from '../../src/speaker/election.ts';

const NODES = ['node-a', 'node-b', 'node-c', 'node-d', 'node-e'];
const keys = Array.from({ length: 1000 }, (_, i) => `addr:203.0.113.${i % 256}-${Math.floor(i / 256)}`);

describe('rendezvous election', () => {
  it('is deterministic, independent of node order and duplicates, and stable across processes', () => {
    const a = keys.map((k) => ownerOf(k, NODES));
    const b = keys.map((k) => ownerOf(k, [...NODES].reverse().concat(['node-c', ''])));
    assert.deepEqual(a, b);
    // A fresh process (no shared state, no seeds) computes the same owners.
    const script = `import { ownerOf } from './src/speaker/election.ts';
      const keys = Array.from({ length: 1000 }, (_, i) => \`addr:203.0.113.\${i % 256}-\${Math.floor(i / 256)}\`);
      console.log(JSON.stringify(keys.map((k) => ownerOf(k, ${JSON.stringify(NODES)}))));`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
    assert.deepEqual(JSON.parse(out), a);
    // Pinned values: the hash must never change between releases, or a rolling upgrade moves addresses.
    // (= the first 16 hex digits of `printf 'node-a\0addr:192.0.2.100' | sha256sum`)
    assert.equal(score('node-a', 'addr:192.0.2.100').toString(16), 'fb9ac471f9c15916');
    assert.equal(ownerOf('addr:192.0.2.100', NODES), 'node-a');
    assert.equal(ownerOf('k', []), undefined);
    assert.equal(ownerOf('k', ['only']), 'only');
  });

  it('balances 1000 keys over 5 nodes', () => {
    const counts = new Map<string, number>();
    for (const k of keys) counts.set(ownerOf(k, NODES)!, (counts.get(ownerOf(k, NODES)!) ?? 0) + 1);
    assert.equal(counts.size, 5);
    for (const [node, n] of counts) assert.ok(n >= 140 && n <= 260, `${node} owns ${n} of 1000 (expected about 200)`);
  });

  it('moves only the departed node\'s keys when a node leaves, and only keys to the new node when one joins', () => {
    const before = new Map(keys.map((k) => [k, ownerOf(k, NODES)!]));
    const live = NODES.filter((n) => n !== 'node-c');
    let moved = 0;
    for (const k of keys) {
      const now = ownerOf(k, live)!;
      if (before.get(k) === 'node-c') {
        assert.notEqual(now, 'node-c');
        moved++;
      } else assert.equal(now, before.get(k), `${k} moved although its owner stayed`);
    }
    assert.ok(moved > 100 && moved < 300, `node-c owned ${moved}`);
    const grown = [...NODES, 'node-f'];
    for (const k of keys) {
      const now = ownerOf(k, grown)!;
      assert.ok(now === before.get(k) || now === 'node-f', `${k} moved from ${before.get(k)} to ${now}, not to the new node`);
    }
  });

  it('puts shared addresses and both families of a dual-stack Service on one node', () => {
    // Dual-stack: the key does not depend on order or primary family.
    const v4first = groupKeyFor({ namespace: 'ns', name: 'web', addresses: ['192.0.2.10', '2001:db8::10'] });
    const v6first = groupKeyFor({ namespace: 'ns', name: 'web', addresses: ['2001:db8::10', '192.0.2.10'] });
    assert.equal(v4first, v6first);
    assert.equal(v4first, 'addr:192.0.2.10');
    assert.equal(groupKeyFor({ namespace: 'ns', name: 'v6', addresses: ['2001:DB8:0::20', '2001:db8::1f'] }), 'addr:2001:db8::1f');
    // Sharing: every holder of a shared address carries the same sharing key, whatever else it holds.
    const a = groupKeyFor({ namespace: 'ns', name: 'dns-tcp', addresses: ['192.0.2.53'], sharingKey: 'dns' });
    const b = groupKeyFor({ namespace: 'other', name: 'dns-udp', addresses: ['2001:db8::53', '192.0.2.53'], sharingKey: 'dns' });
    assert.equal(a, b);
    for (const live of [NODES, NODES.slice(1), NODES.slice(2)]) assert.equal(ownerOf(a, live), ownerOf(b, live));
    assert.equal(groupKeyFor({ namespace: 'ns', name: 'none', addresses: [] }), 'svc:ns/none');
  });
});

describe('OwnerCache', () => {
  it('gives exactly ownerOf’s answer for any candidate subset, universe change, unknown candidate, or empty set', () => {
    const universe = Array.from({ length: 40 }, (_, i) => `node-${i}`);
    const keys = Array.from({ length: 30 }, (_, i) => `addr:192.0.2.${i}`);
    const cache = new OwnerCache(3);
    cache.setUniverse(universe);
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (let round = 0; round < 200; round++) {
      if (round === 100) cache.setUniverse(universe.slice(5)); // Nodes removed: starts afresh
      const size = Math.floor(rand() * 6);
      const cands = [...new Set(Array.from({ length: size }, () => universe[Math.floor(rand() * universe.length)]!))];
      if (round % 17 === 0) cands.push('stranger');
      for (const k of keys) assert.equal(cache.ownerOf(k, cands), ownerOf(k, cands), `round ${round} ${k} ${cands}`);
    }
    // Candidates that avoid the cached best nodes fall back to the full computation.
    for (const k of keys) {
      const full = [...universe.slice(5)].sort((a, b) => (score(b, k) > score(a, k) ? 1 : score(b, k) < score(a, k) ? -1 : a < b ? -1 : 1));
      const tail = full.slice(3);
      assert.equal(cache.ownerOf(k, tail), ownerOf(k, tail));
      assert.equal(cache.ownerOf(k, full), full[0]);
    }
    assert.equal(cache.ownerOf('addr:x', []), undefined);
    cache.prune();
    cache.ownerOf(keys[0]!, universe);
    cache.prune();
    assert.equal(cache.size(), 1, 'groups not asked for in a pass are forgotten');
  });
});
