// Claim races: concurrent admissions in one replica never race each other for an address (in-flight
// claims are reserved in the replica's index), and after a lost race against another replica the
// allocator starts from a random point (AllocationRequest.spread) instead of the contested low end.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { admitService } from '../../src/admission/admit-service.ts';
import type { AdmissionRequest } from '../../src/admission/review.ts';
import { formatIP, parseIP } from '../../src/allocation/addresses.ts';
import { freeFrom, lowestFree } from '../../src/allocation/allocator.ts';
import { LiveAllocationState } from '../../src/kube/allocation-state.ts';
import type { ClaimStore } from '../../src/kube/cluster.ts';
import { claim, harness, index, model, pool } from '../helpers/state.ts';

const fixture = JSON.parse(readFileSync(new URL('../fixtures/admission/create-loadbalancer.json', import.meta.url), 'utf8'));

function create(name: string): AdmissionRequest {
  const r = structuredClone(fixture.request);
  r.uid = `uid-${name}`;
  r.name = name;
  r.object.metadata.name = name;
  return r;
}

/** The cluster's claim store with a network round trip: every write yields before it lands. */
function slow(store: ClaimStore): ClaimStore {
  const tick = () => new Promise((r) => setTimeout(r, 1));
  return {
    create: async (c) => {
      await tick();
      return store.create(c);
    },
    update: async (c) => {
      await tick();
      return store.update(c);
    },
    delete: async (n, rv) => {
      await tick();
      return store.delete(n, rv);
    },
    get: async (n) => {
      await tick();
      return store.get(n);
    },
  };
}

const assigned = (patch: unknown): string => {
  const ops = patch as { path: string; value: any }[];
  const op = ops.find((o) => o.path === '/metadata/annotations')!;
  return op.value['admitlb.io/assigned-ips'];
};

describe('claim races', () => {
  it('one replica: 40 concurrent creates take the 40 lowest addresses with one claim write each', async () => {
    const h = await harness([pool('p', { addresses: ['203.0.113.0/24'] })]);
    const deps = { ...h.deps, store: slow(h.cluster.claims) };
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => admitService(deps, create(`s${i}`))));
    assert.ok(results.every((r) => r.allowed));
    const ips = results.map((r) => assigned(r.patch)).sort((a, b) => Number(a.split('.')[3]) - Number(b.split('.')[3]));
    assert.deepEqual(ips, Array.from({ length: 40 }, (_, i) => `203.0.113.${i}`));
    assert.equal(h.cluster.calls.create, 40, 'no lost races, no retries');
  });

  it('a failed claim write releases the reservation', async () => {
    const h = await harness([pool('p', { addresses: ['203.0.113.0/24'] })]);
    h.cluster.unavailable = true;
    const denied = await admitService(h.deps, create('down'));
    assert.equal(denied.allowed, false);
    assert.equal(h.state.claims.inUse('p', 4), 0);
    h.cluster.unavailable = false;
    const ok = await admitService(h.deps, create('up'));
    assert.equal(assigned(ok.patch), '203.0.113.0');
  });

  it('two replicas racing: every Service gets a distinct address without running out of retries', async () => {
    const a = await harness([pool('p', { addresses: ['203.0.113.0/24'] })]);
    // Each replica has its own index and its own view of the API; neither sees the other's in-flight claims.
    const stateB = new LiveAllocationState(a.cluster.cache);
    const depsA = { ...a.deps, store: slow(a.cluster.claims) };
    const depsB = { ...a.deps, state: stateB, store: slow(a.cluster.claims) };
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => admitService(i % 2 ? depsB : depsA, create(`s${i}`))));
    assert.ok(results.every((r) => r.allowed), JSON.stringify(results.find((r) => !r.allowed)));
    assert.equal(new Set(results.map((r) => assigned(r.patch))).size, 100);
    assert.equal(a.cluster.listClaims().length, 100);
  });
});

describe('freeFrom (AllocationRequest.spread)', () => {
  const p = model('p', { addresses: ['192.0.2.0/24', '198.51.100.0/25'] });
  it('starts at the given fraction of the pool, across ranges', () => {
    const empty = index([]);
    assert.equal(formatIP(freeFrom(empty, p, 4, 0)!), '192.0.2.0');
    assert.equal(formatIP(freeFrom(empty, p, 4, 0.5)!), '192.0.2.192'); // 384 addresses: offset 192
    assert.equal(formatIP(freeFrom(empty, p, 4, 0.9)!), '198.51.100.89'); // offset 345 = 256 + 89
    assert.equal(formatIP(freeFrom(empty, p, 4, 0.999999)!), '198.51.100.127');
    assert.equal(freeFrom(empty, p, 6, 0.3), undefined);
  });
  it('skips taken addresses, continues into the next range and wraps around to the lowest free', () => {
    const taken = index([claim('198.51.100.127', 'p', [{}]), claim('192.0.2.0', 'p', [{ name: 'y' }])]);
    assert.equal(formatIP(freeFrom(taken, p, 4, 0.999999)!), '192.0.2.1');
    assert.deepEqual(freeFrom(taken, p, 4, 0.999999), lowestFree(taken, p, 4));
    const tail = index(Array.from({ length: 128 }, (_, i) => claim(`198.51.100.${i}`, 'p', [{ name: `t${i}` }])));
    assert.equal(formatIP(freeFrom(tail, p, 4, 0.8)!), '192.0.2.0');
  });
  it('honours avoidBuggyIPs', () => {
    const buggy = model('b', { addresses: ['192.0.2.0/24'], avoidBuggyIPs: true });
    assert.equal(formatIP(freeFrom(index([]), buggy, 4, 0.9999999)!), '192.0.2.1');
    assert.deepEqual(parseIP('192.0.2.1'), freeFrom(index([]), buggy, 4, 0));
  });
});
