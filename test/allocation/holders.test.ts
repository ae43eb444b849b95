// Issue 11, the pure rules: which Service object a claim holder is (isHolder), that a signed
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

describe('the cap on a namespace\'s unconfirmed claims', () => {
  const four = model('four', { addresses: ['192.0.2.10-192.0.2.13'] });
  const pending = (n: number, ns = 'ns') => Array.from({ length: n }, (_, i) => claim(`192.0.2.1${i}`, 'four', [{ namespace: ns, name: `refused-${i}` }]));
  const cases: [string, ReturnType<typeof claim>[], string[], boolean][] = [
    ['below the cap', pending(1), [], true],
    ['at the cap', pending(2), [], false],
    ['committed holders do not count', [claim('192.0.2.10', 'four', [{ namespace: 'ns', name: 'a', uid: 'u' }]), claim('192.0.2.11', 'four', [{ namespace: 'ns', name: 'b', uid: 'v' }])], [], true],
    ['another namespace\'s do not count', pending(4, 'other'), [], true],
    ['a create that takes back its own claim is not held back by it', [...pending(1), claim('192.0.2.13', 'four', [{ namespace: 'ns', name: 'web' }])], ['192.0.2.13'], true],
  ];
  for (const [what, claims, keep, ok] of cases) {
    it(what, () => {
      const problem = unconfirmedProblem(st([four], claims).claims, { namespace: 'ns', name: 'web' }, 2, keep.map(parseIP));
      assert.equal(problem === undefined, ok, problem);
      if (problem) assert.match(problem, /^namespace "ns" has 2 address claims for Services the API server has not accepted \(yet\); at most 2 may wait at once/);
    });
  }
});
