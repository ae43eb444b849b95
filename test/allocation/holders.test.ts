// The pure rules of the trust boundary: which Service object a claim holder is (isHolder), that a signed
// assignment keeps only what a claim records for the Service, the one quota rule, and the cap on a
// namespace's unconfirmed claims.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { allocateLoadBalancer, availability, isHolder, quotaProblem, unconfirmedProblem, type AllocationRequest, type AllocatorState } from '../../src/allocation/allocator.ts';
import { formatIP, parseIP } from '../../src/allocation/addresses.ts';
import type { PoolModel } from '../../src/allocation/pools.ts';
import { claim, index, model } from '../helpers/state.ts';

function req(over: Partial<AllocationRequest> = {}): AllocationRequest {
  return { namespace: 'ns', name: 'web', labels: {}, namespaceLabels: {}, families: [4], policy: 'SingleStack', ports: [{ protocol: 'TCP', port: 80 }], backend: '', ...over };
}
const st = (pools: PoolModel[], claims: ReturnType<typeof claim>[] = []): AllocatorState => ({ pools, claims: index(claims) });
const ips = (r: ReturnType<typeof allocateLoadBalancer>) => (r.ok ? { ips: r.ips.map(formatIP), kept: r.kept } : r.denial.message);

describe('isHolder: a holder is one Service object', () => {
  const cases: [string, { uid?: string }, { uid?: string }, boolean][] = [
    ['in flight (no uid), a create of the name', {}, {}, true],
    ['in flight (no uid), an update of the name', {}, { uid: 'u1' }, true],
    ['committed, an update of that object', { uid: 'u1' }, { uid: 'u1' }, true],
    ['committed, a create of the same name (another object)', { uid: 'u1' }, {}, false],
    ['committed, an update of another object of the same name', { uid: 'u1' }, { uid: 'u2' }, false],
  ];
  for (const [what, holder, who, want] of cases) {
    it(what, () => assert.equal(isHolder({ namespace: 'ns', name: 'web', ...holder }, { namespace: 'ns', name: 'web', ...who }), want));
  }
  it('another name or namespace never is', () => {
    assert.equal(isHolder({ namespace: 'ns', name: 'web' }, { namespace: 'ns', name: 'api' }), false);
    assert.equal(isHolder({ namespace: 'ns', name: 'web' }, { namespace: 'other', name: 'web' }), false);
  });
});

describe('a signed assignment keeps only what a claim records for the Service', () => {
  const quota1 = model('q', { addresses: ['198.51.100.0/28'], quota: { perNamespace: 1 } });
  const current = { ips: [parseIP('198.51.100.5')], pool: 'q' };
  const cases: [string, ReturnType<typeof claim>[], Partial<AllocationRequest>, unknown][] = [
    ['its own claim: kept', [claim('198.51.100.5', 'q', [{ namespace: 'ns', name: 'web' }])], {}, { ips: ['198.51.100.5'], kept: true }],
    ['its own committed claim, on an update of that object: kept', [claim('198.51.100.5', 'q', [{ namespace: 'ns', name: 'web', uid: 'u1' }])], { uid: 'u1' }, { ips: ['198.51.100.5'], kept: true }],
    ['no claim (a replayed dry-run answer), quota free: allocated anew, not kept', [], {}, { ips: ['198.51.100.5'], kept: false }],
    [
      'no claim, the namespace at its quota: denied',
      [claim('198.51.100.1', 'q', [{ namespace: 'ns', name: 'first' }])],
      {},
      'cannot allocate an IPv4 address: namespace "ns" already holds 1 of the 1 addresses its quota allows from IPPool "q"',
    ],
    [
      'a claim of another object of the same name (a create): not its own',
      [claim('198.51.100.5', 'q', [{ namespace: 'other', name: 'x', uid: 'o' }]), claim('198.51.100.6', 'q', [{ namespace: 'ns', name: 'web', uid: 'u-old' }])],
      { current: { ips: [parseIP('198.51.100.6')], pool: 'q' } },
      'cannot allocate an IPv4 address: namespace "ns" already holds 1 of the 1 addresses its quota allows from IPPool "q"',
    ],
  ];
  for (const [what, claims, over, want] of cases) {
    it(what, () => assert.deepEqual(ips(allocateLoadBalancer(st([quota1], claims), req({ pool: { name: 'q', field: 'f' }, current, ...over }))), want));
  }
});

describe('availability: another object\'s holder is never "self"', () => {
  const shared = model('x', { addresses: ['198.51.100.64/28'], sharing: { crossNamespace: true } });
  const held = claim('198.51.100.64', 'x', [{ namespace: 'ns', name: 'web', uid: 'u1', ports: [{ protocol: 'TCP', port: 80 }] }], 'k');
  const ip = parseIP('198.51.100.64');
  it('an update of the holder is self; a create of its name is another Service', () => {
    assert.equal(availability(st([shared], [held]), req({ uid: 'u1', sharingKey: 'k' }), shared, ip, 'LoadBalancer').kind, 'self');
    const create = availability(st([shared], [held]), req({ sharingKey: 'other-key', ports: [{ protocol: 'TCP', port: 443 }] }), shared, ip, 'LoadBalancer');
    assert.deepEqual(create, { kind: 'taken', why: '198.51.100.64 is already held by Service "web"' });
  });
});

describe('the quota counts every claim of the namespace, in flight or committed', () => {
  const q = model('q', { addresses: ['198.51.100.0/28'], quota: { perNamespace: 2 } });
  const cases: [string, ReturnType<typeof claim>[], string | undefined][] = [
    ['one committed: room for one more', [claim('198.51.100.1', 'q', [{ namespace: 'ns', name: 'a', uid: 'u' }])], undefined],
    ['one committed and one in flight: full', [claim('198.51.100.1', 'q', [{ namespace: 'ns', name: 'a', uid: 'u' }]), claim('198.51.100.2', 'q', [{ namespace: 'ns', name: 'b' }])], 'namespace "ns" already holds 2 of the 2 addresses its quota allows from IPPool "q"'],
    ['another namespace\'s claims do not count', [claim('198.51.100.1', 'q', [{ namespace: 'other', name: 'a' }]), claim('198.51.100.2', 'q', [{ namespace: 'other', name: 'b' }])], undefined],
  ];
  for (const [what, claims, want] of cases) {
    it(what, () => assert.equal(quotaProblem(st([q], claims), req(), q, [parseIP('198.51.100.9')]), want));
  }
});

describe('the bounds on a namespace\'s unconfirmed claims', () => {
  const four = model('four', { addresses: ['192.0.2.10-192.0.2.13'] });
  const big = model('big', { addresses: ['198.51.100.0/24'] });
  const pending = (n: number, ns = 'ns', p = 'four', base = '192.0.2.1') => Array.from({ length: n }, (_, i) => claim(`${base}${i}`, p, [{ namespace: ns, name: `refused-${i}` }]));
  const cases: [string, ReturnType<typeof claim>[], { ip: string; pool: string }[], RegExp | undefined][] = [
    ['a first claim in a pool of 4', [], [{ ip: '192.0.2.10', pool: 'four' }], undefined],
    ['a second one: one left for the others after it', pending(1), [{ ip: '192.0.2.11', pool: 'four' }], undefined],
    ['a third one would leave fewer free addresses than it has pending', pending(2), [{ ip: '192.0.2.12', pool: 'four' }], /has address claims in IPPool "four" for Services the API server has not accepted \(yet\), and the pool cannot spare more/],
    ['another namespace\'s pending claims do not hold this one back', pending(2, 'other'), [{ ip: '192.0.2.12', pool: 'four' }], undefined],
    ['the last address of a pool, with nothing pending', [claim('192.0.2.10', 'four', [{ namespace: 'x', name: 'a', uid: 'u' }]), claim('192.0.2.11', 'four', [{ namespace: 'x', name: 'b', uid: 'v' }]), claim('192.0.2.12', 'four', [{ namespace: 'x', name: 'c', uid: 'w' }])], [{ ip: '192.0.2.13', pool: 'four' }], undefined],
    ['committed claims do not count', [claim('192.0.2.10', 'four', [{ namespace: 'ns', name: 'a', uid: 'u' }]), claim('192.0.2.11', 'four', [{ namespace: 'ns', name: 'b', uid: 'v' }])], [{ ip: '192.0.2.12', pool: 'four' }], undefined],
    ['in a large pool, the namespace cap (3 here)', pending(3, 'ns', 'big', '198.51.100.1'), [{ ip: '198.51.100.100', pool: 'big' }], /^namespace "ns" has 3 address claims for Services the API server has not accepted \(yet\); at most 3 may wait at once/],
    ['a create that takes back its own claim is not held back by it', [...pending(2, 'ns', 'big', '198.51.100.1'), claim('198.51.100.100', 'big', [{ namespace: 'ns', name: 'web' }])], [{ ip: '198.51.100.100', pool: 'big' }], undefined],
  ];
  for (const [what, claims, wanted, want] of cases) {
    it(what, () => {
      const problem = unconfirmedProblem(st([four, big], claims), { namespace: 'ns', name: 'web' }, 3, wanted.map((w) => ({ ip: parseIP(w.ip), pool: w.pool })));
      if (want) assert.match(problem ?? '', want);
      else assert.equal(problem, undefined);
    });
  }
});
