// What a denial tells a namespace about the others: nothing about how full a pool is, and nothing
// that depends on the sharing key of another namespace's address (no key oracle). A namespace still
// gets the detailed reason about its own Services, which it can read anyway.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { allocateLoadBalancer, checkExternalIP, type AllocationRequest, type AllocatorState } from '../../src/allocation/allocator.ts';
import { parseIP } from '../../src/allocation/addresses.ts';
import type { PoolModel } from '../../src/allocation/pools.ts';
import type { ClaimHolder } from '../../src/config/schemas.ts';
import { claim, index, model } from '../helpers/state.ts';
import { ERRORS } from '../../src/errors.ts';

function req(over: Partial<AllocationRequest> = {}): AllocationRequest {
  return {
    namespace: 'team-b',
    name: 'probe',
    labels: {},
    namespaceLabels: { 'kubernetes.io/metadata.name': over.namespace ?? 'team-b' },
    families: [4],
    policy: 'SingleStack',
    ports: [{ protocol: 'TCP', port: 80 }],
    backend: '',
    ...over,
  };
}
const st = (pools: PoolModel[], claims = index([])): AllocatorState => ({ pools, claims });
const outcome = (r: ReturnType<typeof allocateLoadBalancer>) => (r.ok ? 'allowed' : `${ERRORS[r.denial.error].status} ${ERRORS[r.denial.error].reason} ${r.denial.field}: ${r.denial.message}`);

describe('no pool fill in denials', () => {
  it('an exhausted pool is named without counts', () => {
    const s = st([model('tiny', { addresses: ['203.0.113.10-203.0.113.25'] })], index(Array.from({ length: 16 }, (_, i) => claim(`203.0.113.${10 + i}`, 'tiny', [{ namespace: 'team-a', name: `s${i}` }]))));
    const r = allocateLoadBalancer(s, req());
    assert.equal(outcome(r), '409 Conflict spec.type: cannot allocate an IPv4 address: IPPool "tiny" has no free IPv4 address');
    assert.doesNotMatch(outcome(r), /\d+ of \d+|in use|%/);
  });
});

describe('no sharing-key oracle', () => {
  const holderArb = fc.record({
    ports: fc.uniqueArray(fc.constantFrom(53, 80, 443, 8080), { minLength: 1, maxLength: 3 }),
    backend: fc.constantFrom('', 'app=web'),
    use: fc.constantFrom('LoadBalancer' as const, 'ExternalIP' as const),
    otherPool: fc.boolean(),
    sameNamespaceToo: fc.boolean(),
  });
  const requestArb = fc.record({
    ports: fc.uniqueArray(fc.constantFrom(53, 80, 443, 8080), { minLength: 1, maxLength: 3 }),
    backend: fc.constantFrom('', 'app=web'),
    byPool: fc.boolean(),
  });

  it('another namespace\'s address: the right key and a wrong one get the same answer unless sharing is allowed', () => {
    fc.assert(
      fc.property(holderArb, requestArb, fc.boolean(), fc.string({ minLength: 1, maxLength: 8 }), (holder, request, crossNamespace, wrongKey) => {
        const key = 'secret-key';
        fc.pre(wrongKey !== key);
        const pools = [
          model('p', { addresses: ['203.0.113.7/32'], crossNamespace, usage: ['LoadBalancer', 'ExternalIP'] } as never),
          model('q', { addresses: ['198.51.100.0/24'] }),
        ];
        const holders: Partial<ClaimHolder>[] = [{ namespace: 'team-a', name: 'owner', use: holder.use, ports: holder.ports.map((port) => ({ protocol: 'TCP' as const, port })), backend: holder.backend }];
        // A holder in the requester's own namespace too: the other namespace's part must stay hidden.
        if (holder.sameNamespaceToo) holders.push({ namespace: 'team-b', name: 'mine', use: holder.use, ports: [{ protocol: 'TCP', port: 9999 }], backend: holder.backend });
        const claims = index([claim('203.0.113.7', holder.otherPool ? 'q' : 'p', holders, key)]);
        const s = st(pools, claims);
        const base = req({ ports: request.ports.map((port) => ({ protocol: 'TCP' as const, port })), backend: request.backend });
        const ask = (sharingKey: string | undefined) =>
          request.byPool
            ? outcome(allocateLoadBalancer(s, { ...base, sharingKey, pool: { name: 'p', field: 'metadata.annotations[admitlb.io/pool]' } }))
            : outcome(allocateLoadBalancer(s, { ...base, sharingKey, requested: { ips: [parseIP('203.0.113.7')], field: 'metadata.annotations[admitlb.io/ips]' } }));
        const right = ask(key);
        const wrong = ask(wrongKey);
        const none = ask(undefined);
        assert.equal(wrong, none, 'a wrong key and no key are answered alike');
        if (right !== 'allowed') assert.equal(right, wrong, 'a right key that cannot share is answered like a wrong one');
        else assert.ok(crossNamespace, 'another namespace shares only in a pool that allows it');
        assert.doesNotMatch(wrong, /owner|team-a|port|backend|namespace|another pool|as an? /, 'nothing about the holder');
      }),
      { numRuns: 2000 },
    );
  });

  it('externalIPs: the same', () => {
    const pools = [model('ext', { addresses: ['198.51.100.0/28'], usage: ['ExternalIP'] })];
    const claims = index([claim('198.51.100.4', 'ext', [{ namespace: 'team-a', name: 'owner', use: 'ExternalIP', ports: [{ protocol: 'TCP', port: 80 }] }], 'secret-key')]);
    const ask = (sharingKey?: string) => {
      const r = checkExternalIP(st(pools, claims), { ...req(), sharingKey }, parseIP('198.51.100.4'), 'spec.externalIPs[0]');
      return r.ok ? 'allowed' : `${r.denial.field}: ${r.denial.message}`;
    };
    assert.equal(ask('secret-key'), 'spec.externalIPs[0]: 198.51.100.4 is already held by another Service');
    assert.equal(ask('guess'), ask('secret-key'));
  });

  it('the requester\'s own namespace still gets the detailed reason', () => {
    const pools = [model('p', { addresses: ['203.0.113.0/28'] })];
    const claims = index([claim('203.0.113.7', 'p', [{ namespace: 'team-b', name: 'dns', ports: [{ protocol: 'TCP', port: 80 }] }], 'k')]);
    const r = allocateLoadBalancer(st(pools, claims), req({ sharingKey: 'k', requested: { ips: [parseIP('203.0.113.7')], field: 'f' } }));
    assert.equal(outcome(r), '409 Conflict f: port TCP/80 on 203.0.113.7 is already used by Service "dns"');
  });
});
