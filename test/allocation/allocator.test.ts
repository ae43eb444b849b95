import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { allocateLoadBalancer, checkExternalIP, type AllocationRequest, type AllocationResult, type AllocatorState, type Denial, type ExternalIPCheck } from '../../src/allocation/allocator.ts';
import { formatIP, parseIP, type IP } from '../../src/allocation/addresses.ts';
import { ClaimIndex } from '../../src/allocation/claim-index.ts';
import type { PoolModel } from '../../src/allocation/pools.ts';
import { buildClaim } from '../../src/admission/admit-service.ts';
import { claim, index, model } from '../helpers/state.ts';

function req(over: Partial<AllocationRequest> = {}): AllocationRequest {
  return {
    namespace: 'default',
    name: 'web',
    labels: {},
    namespaceLabels: { 'kubernetes.io/metadata.name': over.namespace ?? 'default' },
    families: [4],
    policy: 'SingleStack',
    ports: [{ protocol: 'TCP', port: 80 }],
    backend: '',
    ...over,
  };
}

const st = (pools: PoolModel[], claims = new ClaimIndex()): AllocatorState => ({ pools, claims });
const ips = (r: ReturnType<typeof allocateLoadBalancer>) => (r.ok ? r.ips.map(formatIP) : r.denial);
const granted = (r: AllocationResult | ExternalIPCheck) => (r.ok ? `${'ips' in r ? r.ips.map(formatIP).join(',') : formatIP(r.ip)} from ${r.pool}` : '');
/** The pool granted, or the denial: what a failing assertion then prints. */
const poolOf = (r: AllocationResult | ExternalIPCheck) => (r.ok ? r.pool : `denied: ${r.denial.message}`);
const keptOf = (r: AllocationResult) => (r.ok ? r.kept : `denied: ${r.denial.message}`);
function denial(r: AllocationResult | ExternalIPCheck): Denial {
  if (r.ok) assert.fail(`expected a denial, got ${granted(r)}`);
  return r.denial;
}

describe('allocator: automatic assignment', () => {
  it('gives the lowest free address of the pool', () => {
    const s = st([model('a', { addresses: ['203.0.113.0/30'] })], index([claim('203.0.113.0', 'a', [{ name: 'other' }])]));
    assert.deepEqual(ips(allocateLoadBalancer(s, req())), ['203.0.113.1']);
  });

  it('skips .0 and .255 when avoidBuggyIPs is set', () => {
    const s = st([model('a', { addresses: ['198.51.100.255-198.51.101.1'], avoidBuggyIPs: true })]);
    assert.deepEqual(ips(allocateLoadBalancer(s, req())), ['198.51.101.1']);
  });

  it('avoidBuggyIPs skips over long runs of claims broken only by .255/.0', () => {
    const claims: ReturnType<typeof claim>[] = [];
    for (let v = parseIP('10.0.0.1').value; v <= parseIP('10.0.3.254').value; v++) {
      const ip: IP = { family: 4, value: v };
      if ((v & 255n) === 0n || (v & 255n) === 255n) continue;
      claims.push(claim(formatIP(ip), 'a', [{ name: `s${v}` }]));
    }
    const s = st([model('a', { addresses: ['10.0.0.0/16'], avoidBuggyIPs: true })], index(claims));
    assert.deepEqual(ips(allocateLoadBalancer(s, req())), ['10.0.4.1']);
  });

  it('orders pools by priority, unset last, ties by name', () => {
    const pools = [
      model('z-unset', { addresses: ['192.0.2.0/24'] }),
      model('b-prio1', { addresses: ['198.51.100.0/24'], allocateTo: { priority: 1 } }),
      model('a-prio1', { addresses: ['203.0.113.0/24'], allocateTo: { priority: 1 } }),
      model('c-prio0', { addresses: ['203.0.113.0/24'].map(() => '2001:db8::/64'), allocateTo: { priority: 0 } }),
    ];
    const r = allocateLoadBalancer(st(pools), req());
    assert.equal(poolOf(r), 'a-prio1', 'the IPv6-only pool with priority 0 cannot serve IPv4, so the next priority wins by name');
  });

  it('never auto-assigns from an autoAssign: false pool', () => {
    const s = st([model('manual', { addresses: ['203.0.113.0/24'], autoAssign: false })]);
    const r = allocateLoadBalancer(s, req());
    assert.equal(r.ok, false);
    assert.match(!r.ok ? r.denial.message : '', /no IPPool with autoAssign/);
  });

  it('ignores ExternalIP-only pools for LoadBalancer Services', () => {
    const s = st([model('ext', { addresses: ['203.0.113.0/24'], usage: ['ExternalIP'] }), model('lb', { addresses: ['198.51.100.0/24'] })]);
    const r = allocateLoadBalancer(s, req());
    assert.equal(poolOf(r), 'lb');
  });

  it('denies with the pool and the reason when every pool is exhausted', () => {
    const s = st([model('tiny', { addresses: ['203.0.113.10/32'] })], index([claim('203.0.113.10', 'tiny', [{ name: 'first' }])]));
    const r = allocateLoadBalancer(s, req({ name: 'second' }));
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.denial.field, 'spec.type');
      assert.match(r.denial.message, /IPPool "tiny" has no free IPv4 address$/);
      assert.equal(r.denial.error, 'POOL_EXHAUSTED');
    }
  });

  it('is sticky: a valid current assignment is kept even when a lower address is free', () => {
    const s = st([model('a', { addresses: ['203.0.113.0/24'] })], index([claim('203.0.113.9', 'a', [{ name: 'web' }])]));
    const r = allocateLoadBalancer(s, req({ current: { ips: [parseIP('203.0.113.9')], pool: 'a' } }));
    assert.equal(keptOf(r), true, 'kept');
    assert.deepEqual(ips(r), ['203.0.113.9']);
  });

  it('replaces a current assignment that left its pool', () => {
    const s = st([model('a', { addresses: ['203.0.113.0/28'] })]);
    const r = allocateLoadBalancer(s, req({ current: { ips: [parseIP('198.51.100.9')], pool: 'a' } }));
    assert.equal(keptOf(r), false, 'replaced');
    assert.deepEqual(ips(r), ['203.0.113.0']);
  });
});

describe('allocator: selectors and quotas', () => {
  const pools = () => [
    model('team-a-only', { addresses: ['203.0.113.0/28'], allocateTo: { priority: 0, namespaces: ['team-a'] } }),
    model('by-label', { addresses: ['198.51.100.0/28'], allocateTo: { priority: 1, namespaceSelectors: [{ matchLabels: { tier: 'gold' } }] } }),
    model('svc-sel', { addresses: ['192.0.2.0/28'], allocateTo: { priority: 2, serviceSelectors: [{ matchExpressions: [{ key: 'app', operator: 'In', values: ['db'] }] }] } }),
    model('everyone', { addresses: ['192.0.2.128/28'] }),
  ];
  it('a namespace listed in namespaces gets that pool', () => {
    assert.equal(poolOf(allocateLoadBalancer(st(pools()), req({ namespace: 'team-a' }))), 'team-a-only');
  });
  it('namespaceSelectors match namespace labels', () => {
    const r = allocateLoadBalancer(st(pools()), req({ namespace: 'x', namespaceLabels: { tier: 'gold' } }));
    assert.equal(poolOf(r), 'by-label');
  });
  it('serviceSelectors match Service labels', () => {
    const r = allocateLoadBalancer(st(pools()), req({ labels: { app: 'db' } }));
    assert.equal(poolOf(r), 'svc-sel');
  });
  it('Services admitted by no restricted pool fall to the open pool', () => {
    const r = allocateLoadBalancer(st(pools()), req({ namespace: 'other' }));
    assert.equal(poolOf(r), 'everyone');
  });
  it('a requested address in a pool the namespace may not use is denied, naming the field', () => {
    const r = allocateLoadBalancer(st(pools()), req({ namespace: 'other', requested: { ips: [parseIP('203.0.113.5')], field: 'metadata.annotations[admitlb.io/ips]' } }));
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.denial.field, 'metadata.annotations[admitlb.io/ips]');
      assert.match(r.denial.message, /203\.0\.113\.5 is in IPPool "team-a-only", which is not available/);
      assert.equal(r.denial.error, 'NOT_ALLOWED');
    }
  });
  it('a named pool that does not admit the Service is denied', () => {
    const r = allocateLoadBalancer(st(pools()), req({ pool: { name: 'team-a-only', field: 'metadata.annotations[admitlb.io/pool]' } }));
    assert.equal(denial(r).error, 'NOT_ALLOWED');
    assert.match(denial(r).message, /not available/);
  });
  it('a named pool that does not exist is a 404 denial', () => {
    const r = allocateLoadBalancer(st(pools()), req({ pool: { name: 'nope', field: 'metadata.annotations[admitlb.io/pool]' } }));
    assert.equal(denial(r).error, 'POOL_NOT_FOUND');
    assert.match(denial(r).message, /IPPool "nope" does not exist/);
  });
  it('a namespace at its perNamespace quota is denied; other namespaces are not', () => {
    const p = [model('q', { addresses: ['203.0.113.0/24'], quota: { perNamespace: 2 } })];
    const claims = index([claim('203.0.113.0', 'q', [{ name: 'a' }]), claim('203.0.113.1', 'q', [{ name: 'b' }])]);
    const r = allocateLoadBalancer(st(p, claims), req({ name: 'c' }));
    assert.equal(denial(r).error, 'QUOTA_EXCEEDED');
    assert.match(denial(r).message, /already holds 2 of the 2 addresses its quota allows from IPPool "q"/);
    const other = allocateLoadBalancer(st(p, claims), req({ name: 'c', namespace: 'team-b' }));
    assert.equal(poolOf(other), 'q', 'another namespace is under the quota');
  });
  it('an automatic allocation moves on to the next pool when the first is over quota', () => {
    const p = [model('q', { addresses: ['203.0.113.0/24'], quota: { perNamespace: 1 }, allocateTo: { priority: 0 } }), model('r', { addresses: ['198.51.100.0/24'] })];
    const r = allocateLoadBalancer(st(p, index([claim('203.0.113.0', 'q', [{ name: 'a' }])])), req({ name: 'c' }));
    assert.equal(poolOf(r), 'r');
  });
});

describe('allocator: requested addresses', () => {
  const p = () => [model('a', { addresses: ['203.0.113.0/24', '2001:db8:1::/64'], autoAssign: false }), model('b', { addresses: ['198.51.100.0/24'], avoidBuggyIPs: true })];
  const field = 'metadata.annotations[admitlb.io/ips]';
  it('an explicit request may use an autoAssign: false pool', () => {
    const r = allocateLoadBalancer(st(p()), req({ requested: { ips: [parseIP('203.0.113.77')], field } }));
    assert.deepEqual(ips(r), ['203.0.113.77']);
  });
  it('a taken address is denied and names the field', () => {
    const r = allocateLoadBalancer(st(p(), index([claim('203.0.113.7', 'a', [{ name: 'web2' }])])), req({ requested: { ips: [parseIP('203.0.113.7')], field } }));
    assert.equal(`${denial(r).field}: ${denial(r).message}`, 'metadata.annotations[admitlb.io/ips]: 203.0.113.7 is already held by Service "web2"');
  });
  it('never names a Service of another namespace', () => {
    const r = allocateLoadBalancer(st(p(), index([claim('203.0.113.7', 'a', [{ namespace: 'secret-ns', name: 'hidden' }])])), req({ requested: { ips: [parseIP('203.0.113.7')], field } }));
    assert.match(denial(r).message, /already held by another Service/);
    assert.doesNotMatch(denial(r).message, /hidden|secret-ns/);
  });
  it('an address outside every pool is denied', () => {
    const r = allocateLoadBalancer(st(p()), req({ requested: { ips: [parseIP('192.0.2.1')], field } }));
    assert.match(denial(r).message, /outside the IPPools/);
  });
  it('a .255 request in an avoidBuggyIPs pool is denied', () => {
    const r = allocateLoadBalancer(st(p()), req({ requested: { ips: [parseIP('198.51.100.255')], field } }));
    assert.match(denial(r).message, /avoidBuggyIPs/);
  });
  it('two addresses of one family are denied', () => {
    const r = allocateLoadBalancer(st(p()), req({ policy: 'RequireDualStack', families: [4, 6], requested: { ips: [parseIP('203.0.113.1'), parseIP('203.0.113.2')], field } }));
    assert.match(denial(r).message, /at most one IPv4/);
  });
  it('a dual-stack request from one pool works with RequireDualStack', () => {
    const r = allocateLoadBalancer(st(p()), req({ policy: 'RequireDualStack', families: [6, 4], requested: { ips: [parseIP('203.0.113.1'), parseIP('2001:db8:1::5')], field } }));
    assert.deepEqual(ips(r), ['2001:db8:1::5', '203.0.113.1']);
  });
  it('a request combined with a named pool must lie in that pool', () => {
    const r = allocateLoadBalancer(st(p()), req({ pool: { name: 'b', field: 'metadata.annotations[admitlb.io/pool]' }, requested: { ips: [parseIP('203.0.113.1')], field } }));
    assert.match(denial(r).message, /is not in IPPool "b"/);
  });
  it('a request of the wrong family for a SingleStack Service is denied', () => {
    const r = allocateLoadBalancer(st(p()), req({ requested: { ips: [parseIP('2001:db8:1::1')], field } }));
    assert.match(denial(r).message, /is IPv6 but the Service is IPv4/);
  });
});

describe('allocator: families', () => {
  const dual = () => [model('dual', { addresses: ['203.0.113.0/24', '2001:db8:2::/64'] })];
  it('IPv6 SingleStack gets an IPv6 address', () => {
    assert.deepEqual(ips(allocateLoadBalancer(st(dual()), req({ families: [6] }))), ['2001:db8:2::']);
  });
  it('RequireDualStack gets both, primary family first', () => {
    assert.deepEqual(ips(allocateLoadBalancer(st(dual()), req({ families: [6, 4], policy: 'RequireDualStack' }))), ['2001:db8:2::', '203.0.113.0']);
  });
  it('PreferDualStack gets both from a dual pool', () => {
    assert.deepEqual(ips(allocateLoadBalancer(st(dual()), req({ families: [4], policy: 'PreferDualStack' }))), ['203.0.113.0', '2001:db8:2::']);
  });
  it('PreferDualStack falls back to the primary family from a single-family pool', () => {
    assert.deepEqual(ips(allocateLoadBalancer(st([model('v4', { addresses: ['203.0.113.0/24'] })]), req({ policy: 'PreferDualStack' }))), ['203.0.113.0']);
  });
  it('RequireDualStack is denied when no pool has both families', () => {
    const r = allocateLoadBalancer(st([model('v4', { addresses: ['203.0.113.0/24'] }), model('v6', { addresses: ['2001:db8::/64'] })]), req({ policy: 'RequireDualStack', families: [4, 6] }));
    assert.match(denial(r).message, /an IPv4 and an IPv6 address/);
  });
  it('a /48 IPv6 pool hands out addresses without enumerating it', () => {
    const r = allocateLoadBalancer(st([model('big6', { addresses: ['2001:db8:100::/48'] })]), req({ families: [6] }));
    assert.deepEqual(ips(r), ['2001:db8:100::']);
  });
});

describe('allocator: sharing', () => {
  const p = (crossNamespace = false) => [model('a', { addresses: ['203.0.113.0/24'], sharing: { crossNamespace } })];
  const held = (over: Partial<Parameters<typeof claim>[2][number]> = {}, key = 'k') =>
    index([claim('203.0.113.0', 'a', [{ name: 'dns-tcp', ports: [{ protocol: 'TCP', port: 53 }], ...over }], key)]);
  const dnsUdp = (over: Partial<AllocationRequest> = {}) => req({ name: 'dns-udp', sharingKey: 'k', ports: [{ protocol: 'UDP', port: 53 }], ...over });
  it('same key, disjoint ports: shares the address automatically', () => {
    assert.deepEqual(ips(allocateLoadBalancer(st(p(), held()), dnsUdp())), ['203.0.113.0']);
  });
  it('a port clash is denied when the shared address is requested', () => {
    const r = allocateLoadBalancer(st(p(), held()), dnsUdp({ ports: [{ protocol: 'TCP', port: 53 }], requested: { ips: [parseIP('203.0.113.0')], field: 'f' } }));
    assert.match(denial(r).message, /port TCP\/53 on 203\.0\.113\.0 is already used by Service "dns-tcp"/);
  });
  it('a port clash in automatic mode takes a fresh address instead', () => {
    assert.deepEqual(ips(allocateLoadBalancer(st(p(), held()), dnsUdp({ ports: [{ protocol: 'TCP', port: 53 }] }))), ['203.0.113.1']);
  });
  it('a different key does not share', () => {
    assert.deepEqual(ips(allocateLoadBalancer(st(p(), held()), dnsUdp({ sharingKey: 'other' }))), ['203.0.113.1']);
  });
  it('different backends under externalTrafficPolicy Local do not share', () => {
    const r = allocateLoadBalancer(st(p(), held({ backend: 'local:[["app","a"]]' })), dnsUdp({ backend: 'local:[["app","b"]]', requested: { ips: [parseIP('203.0.113.0')], field: 'f' } }));
    assert.match(denial(r).message, /different backend/);
  });
  it('another namespace does not share unless the pool allows it', () => {
    const denied = allocateLoadBalancer(st(p(false), held()), dnsUdp({ namespace: 'team-b', requested: { ips: [parseIP('203.0.113.0')], field: 'f' } }));
    // The answer a wrong key would get: another namespace learns nothing about the key.
    assert.equal(denial(denied).message, '203.0.113.0 is already held by another Service');
    assert.deepEqual(ips(allocateLoadBalancer(st(p(true), held()), dnsUdp({ namespace: 'team-b' }))), ['203.0.113.0']);
  });
});

describe('allocator: externalIPs', () => {
  const pools = () => [model('ext', { addresses: ['198.51.100.0/24'], usage: ['ExternalIP'], allocateTo: { namespaces: ['team-a'] } }), model('lb', { addresses: ['203.0.113.0/24'] })];
  const er = (namespace = 'team-a') => ({ namespace, name: 's', labels: {}, namespaceLabels: {}, ports: [], backend: '' });
  it('an externalIP inside an ExternalIP pool the namespace may use is accepted', () => {
    const r = checkExternalIP(st(pools()), er(), parseIP('198.51.100.9'), 'spec.externalIPs[0]');
    assert.equal(poolOf(r), 'ext');
  });
  it('an externalIP in a LoadBalancer-only pool is denied (CVE-2020-8554)', () => {
    const r = checkExternalIP(st(pools()), er(), parseIP('203.0.113.9'), 'spec.externalIPs[0]');
    assert.equal(denial(r).field, 'spec.externalIPs[0]');
    assert.match(denial(r).message, /outside the IPPools that serve externalIPs/);
  });
  it('an externalIP of a pool the namespace may not use is denied', () => {
    const r = checkExternalIP(st(pools()), er('team-b'), parseIP('198.51.100.9'), 'spec.externalIPs[1]');
    assert.equal(denial(r).field, 'spec.externalIPs[1]');
  });
});

describe('allocator: properties', () => {
  const poolArb = fc.record({
    base: fc.integer({ min: 0, max: 3 }),
    size: fc.integer({ min: 1, max: 12 }),
    avoid: fc.boolean(),
    cross: fc.boolean(),
  });
  const svcArb = fc.record({
    ns: fc.constantFrom('a', 'b'),
    key: fc.option(fc.constantFrom('k1', 'k2'), { nil: undefined }),
    port: fc.constantFrom(53, 80, 443),
    proto: fc.constantFrom('TCP' as const, 'UDP' as const),
    request: fc.option(fc.integer({ min: 0, max: 40 }), { nil: undefined }),
  });

  function run(poolSpecs: { base: number; size: number; avoid: boolean; cross: boolean }[], svcs: { ns: string; key?: string | undefined; port: number; proto: 'TCP' | 'UDP'; request?: number | undefined }[]) {
    const pools = poolSpecs.map((p, i) =>
      model(`p${i}`, { addresses: [`10.${i}.${p.base}.250-10.${i}.${p.base}.${250 + Math.min(p.size, 5)}`, `10.${i}.${p.base + 1}.0-10.${i}.${p.base + 1}.${p.size}`], avoidBuggyIPs: p.avoid, sharing: { crossNamespace: p.cross } }),
    );
    const claims = new ClaimIndex();
    const state = st(pools, claims);
    const results: string[] = [];
    svcs.forEach((s, i) => {
      const request = s.request !== undefined ? { ips: [parseIP(`10.0.${Math.floor(s.request / 8)}.${s.request}`)], field: 'f' } : undefined;
      const r = allocateLoadBalancer(state, req({ namespace: s.ns, name: `s${i}`, sharingKey: s.key, ports: [{ protocol: s.proto, port: s.port }], requested: request }));
      results.push(r.ok ? `${r.pool}:${r.ips.map(formatIP)}` : `deny:${r.denial.message}`);
      if (!r.ok) return;
      for (const ip of r.ips) {
        const existing = claims.get(ip);
        const holder = { namespace: s.ns, name: `s${i}`, use: 'LoadBalancer' as const, ports: [{ protocol: s.proto, port: s.port }], backend: '' };
        const holders = existing ? [...existing.holders, holder] : [holder];
        claims.upsert(buildClaim(claimNameFor(ip), ip, r.pool, s.key, holders));
      }
    });
    return { claims, pools, results };
  }

  it('never gives one address to two Services that may not share it', () => {
    fc.assert(
      fc.property(fc.array(poolArb, { minLength: 1, maxLength: 3 }), fc.array(svcArb, { minLength: 1, maxLength: 40 }), (poolSpecs, svcs) => {
        const { claims, pools } = run(poolSpecs, svcs);
        for (const record of claims.all()) {
          const pool = pools.find((p) => p.name === record.pool)!;
          if (pool.avoidBuggyIPs) assert.ok(!['0', '255'].includes(record.address.split('.')[3]!), 'buggy address handed out');
          if (record.holders.length < 2) continue;
          const svcsOf = record.holders.map((h) => svcs[Number(h.name.slice(1))]!);
          assert.ok(svcsOf.every((s) => s.key !== undefined && s.key === svcsOf[0]!.key), `${record.address} shared without a common key: ${svcsOf.map((s) => s.key).join(', ')}`);
          const ports = svcsOf.map((s) => `${s.proto}/${s.port}`);
          assert.equal(new Set(ports).size, ports.length, 'shared with clashing ports');
          if (!pool.crossNamespace) assert.equal(new Set(svcsOf.map((s) => s.ns)).size, 1, 'shared across namespaces');
        }
      }),
      { numRuns: 300 },
    );
  });

  it('gives the same result for the same inputs', () => {
    fc.assert(
      fc.property(fc.array(poolArb, { minLength: 1, maxLength: 3 }), fc.array(svcArb, { minLength: 1, maxLength: 30 }), (poolSpecs, svcs) => {
        assert.deepEqual(run(poolSpecs, svcs).results, run(poolSpecs, svcs).results);
      }),
      { numRuns: 150 },
    );
  });
});

import { claimNameFor } from '../../src/allocation/addresses.ts';
