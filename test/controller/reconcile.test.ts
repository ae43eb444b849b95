// The controller's cases on the in-memory cluster, each also replayed 100 times with the cluster's
// objects listed in shuffled orders: the result must not depend on the order (MetalLB runs its
// controller cases the same way).
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { claim, pool, testKeys } from '../helpers/state.ts';
import type { KeySet } from '../../src/signing/assignment.ts';
import { observed, run, seeded, signed, svc, type Scenario } from './harness.ts';

let keys: KeySet;
let otherKeys: KeySet;
before(async () => {
  keys = (await testKeys()).keys;
  otherKeys = (await testKeys()).keys;
});

const web = pool('web', { addresses: ['203.0.113.0/30'] });
const one = pool('one', { addresses: ['203.0.113.10-203.0.113.10'] });
const dual = pool('dual', { addresses: ['198.51.100.0/29', '2001:db8:1::/125'] });
const held = (ns: string, name: string, extra: object = {}) => ({ namespace: ns, name, uid: `uid-${ns}-${name}`, ports: [{ protocol: 'TCP' as const, port: 80 }], ...extra });

type Observed = ReturnType<typeof observed>;
interface Case {
  name: string;
  scenario: () => Promise<Scenario>;
  expect: (o: Observed) => void;
}

const cases: Case[] = [
  {
    name: 'back-stop: a Service that bypassed the webhook gets the lowest free address, a claim and a status',
    scenario: async () => ({ pools: [web], services: [svc('a')] }),
    expect: (o) => {
      assert.deepEqual(o.services['default/a'], { ips: '203.0.113.0', pool: 'web', status: '203.0.113.0' });
      assert.deepEqual(o.claims['203.0.113.0']?.holders, ['default/a/LoadBalancer/uid-default-a']);
      assert.ok(o.events.includes('default/a:IPAllocated'));
    },
  },
  {
    name: 'back-stop: the oldest Service wins the last address; the other waits with an AllocationFailed event',
    scenario: async () => ({ pools: [one], services: [svc('young', { at: 20 }), svc('old', { at: 10 })] }),
    expect: (o) => {
      assert.equal(o.services['default/old']?.ips, '203.0.113.10');
      assert.equal(o.services['default/young']?.ips, '');
      assert.equal(o.services['default/young']?.status, '');
      assert.ok(o.events.includes('default/young:AllocationFailed'));
    },
  },
  {
    name: 'back-stop: equal creation times are ordered by namespace/name',
    scenario: async () => ({ pools: [one], services: [svc('b', { at: 5 }), svc('a', { at: 5 })] }),
    expect: (o) => {
      assert.equal(o.services['default/a']?.ips, '203.0.113.10');
      assert.equal(o.services['default/b']?.ips, '');
    },
  },
  {
    name: 'status: a valid assignment with no status gets status.loadBalancer.ingress',
    scenario: async () => ({ pools: [web], claims: [claim('203.0.113.2', 'web', [held('default', 'a')])], services: [await signed(keys, svc('a'), ['203.0.113.2'], 'web')] }),
    expect: (o) => assert.deepEqual(o.services['default/a'], { ips: '203.0.113.2', pool: 'web', status: '203.0.113.2' }),
  },
  {
    name: 'status: a forged ingress is replaced by the signed assignment',
    scenario: async () => ({
      pools: [web],
      claims: [claim('203.0.113.2', 'web', [held('default', 'a')])],
      services: [await signed(keys, svc('a', { status: ['192.0.2.66'] }), ['203.0.113.2'], 'web')],
    }),
    expect: (o) => assert.equal(o.services['default/a']?.status, '203.0.113.2'),
  },
  {
    name: 'status: a forged ingress on a Service with no assignment is cleared',
    scenario: async () => ({ pools: [], services: [svc('a', { status: ['192.0.2.66'] })] }),
    expect: (o) => {
      assert.equal(o.services['default/a']?.status, '');
      assert.ok(o.events.includes('default/a:AllocationFailed'));
    },
  },
  {
    name: 'status: another load balancer class is left alone',
    scenario: async () => ({ pools: [web], services: [svc('a', { spec: { loadBalancerClass: 'example.com/other' }, status: ['192.0.2.9'] })] }),
    expect: (o) => {
      assert.deepEqual(o.services['default/a'], { ips: '', pool: '', status: '192.0.2.9' });
      assert.deepEqual(o.claims, {});
    },
  },
  {
    name: 'trust: an assignment signed by an unknown key is replaced by a real one',
    scenario: async () => ({ pools: [web], services: [await signed(otherKeys, svc('a'), ['203.0.113.3'], 'web')] }),
    expect: (o) => assert.deepEqual(o.services['default/a'], { ips: '203.0.113.0', pool: 'web', status: '203.0.113.0' }),
  },
  {
    name: 'claims: a missing claim for a valid assignment is recreated (same address)',
    scenario: async () => ({ pools: [web], services: [await signed(keys, svc('a'), ['203.0.113.3'], 'web')] }),
    expect: (o) => {
      assert.equal(o.services['default/a']?.ips, '203.0.113.3');
      assert.deepEqual(o.claims['203.0.113.3']?.holders, ['default/a/LoadBalancer/uid-default-a']);
    },
  },
  {
    name: 'claims: a holder without uid is adopted once its Service exists',
    scenario: async () => ({
      pools: [web],
      claims: [claim('203.0.113.1', 'web', [{ namespace: 'default', name: 'a', ports: [{ protocol: 'TCP', port: 80 }] }])],
      services: [await signed(keys, svc('a'), ['203.0.113.1'], 'web')],
    }),
    expect: (o) => assert.deepEqual(o.claims['203.0.113.1']?.holders, ['default/a/LoadBalancer/uid-default-a']),
  },
  {
    // Committed by the validating phase, or adopted before a restart: without the Service in the
    // cache (it may not be stored yet) it waits the grace (claims-plan.test.ts shows the release).
    name: 'claims: an adopted holder whose Service is not in the cache is kept within the grace',
    scenario: async () => ({ pools: [web], claims: [claim('203.0.113.1', 'web', [held('default', 'gone')])], services: [] }),
    expect: (o) => assert.deepEqual(o.claims['203.0.113.1']?.holders, ['default/gone/LoadBalancer/uid-default-gone']),
  },
  {
    name: 'claims: a holder adopted by an older Service of the same name is released and re-claimed for the new one',
    scenario: async () => ({
      pools: [web],
      claims: [claim('203.0.113.1', 'web', [held('default', 'a', { uid: 'uid-of-deleted-a' })])],
      services: [svc('a')],
    }),
    expect: (o) => {
      assert.equal(o.services['default/a']?.status, o.services['default/a']?.ips);
      assert.ok(o.services['default/a']?.ips);
      for (const c of Object.values(o.claims)) assert.ok(!c.holders.some((h) => h.endsWith('uid-of-deleted-a')));
    },
  },
  {
    name: 'claims: a never-adopted holder without a Service is kept during the grace period',
    scenario: async () => ({ pools: [web], claims: [claim('203.0.113.1', 'web', [{ namespace: 'default', name: 'rejected' }])], services: [] }),
    expect: (o) => assert.deepEqual(o.claims['203.0.113.1']?.holders, ['default/rejected/LoadBalancer/']),
  },
  {
    name: 'claims: a shared claim keeps the holders that still exist (and, within the grace, one whose Service is not in the cache)',
    scenario: async () => ({
      pools: [web],
      claims: [claim('203.0.113.1', 'web', [held('default', 'a'), held('default', 'gone', { ports: [{ protocol: 'TCP', port: 443 }] })], 'k')],
      services: [await signed(keys, svc('a', { annotations: { 'admitlb.io/sharing-key': 'k' } }), ['203.0.113.1'], 'web')],
    }),
    expect: (o) => assert.deepEqual(o.claims['203.0.113.1']?.holders, ['default/a/LoadBalancer/uid-default-a', 'default/gone/LoadBalancer/uid-default-gone']),
  },
  {
    name: 'sharing: two Services with one key and different ports keep one address',
    scenario: async () => ({
      pools: [web],
      claims: [claim('203.0.113.1', 'web', [held('default', 'a'), held('default', 'b', { ports: [{ protocol: 'TCP', port: 443 }] })], 'k')],
      services: [
        await signed(keys, svc('a', { annotations: { 'admitlb.io/sharing-key': 'k' } }), ['203.0.113.1'], 'web'),
        await signed(keys, svc('b', { ports: [443], annotations: { 'admitlb.io/sharing-key': 'k' } }), ['203.0.113.1'], 'web'),
      ],
    }),
    expect: (o) => {
      assert.equal(o.services['default/a']?.status, '203.0.113.1');
      assert.equal(o.services['default/b']?.status, '203.0.113.1');
      assert.equal(Object.keys(o.claims).length, 1);
    },
  },
  {
    name: 'sharing: a back-stopped Service with a sharing key joins the shared address',
    scenario: async () => ({
      pools: [web],
      claims: [claim('203.0.113.1', 'web', [held('default', 'a')], 'k')],
      services: [
        await signed(keys, svc('a', { annotations: { 'admitlb.io/sharing-key': 'k' } }), ['203.0.113.1'], 'web'),
        svc('b', { ports: [443], annotations: { 'admitlb.io/ips': '203.0.113.1', 'admitlb.io/sharing-key': 'k' } }),
      ],
    }),
    expect: (o) => {
      assert.equal(o.services['default/b']?.ips, '203.0.113.1');
      assert.equal(o.claims['203.0.113.1']?.holders.length, 2);
    },
  },
  {
    name: 'pool deleted: holders move to another pool that admits them',
    scenario: async () => ({
      pools: [web],
      claims: [claim('192.0.2.5', 'old', [held('default', 'a')])],
      services: [await signed(keys, svc('a', { status: ['192.0.2.5'] }), ['192.0.2.5'], 'old')],
    }),
    expect: (o) => {
      assert.deepEqual(o.services['default/a'], { ips: '203.0.113.0', pool: 'web', status: '203.0.113.0' });
      assert.equal(o.claims['192.0.2.5'], undefined);
    },
  },
  {
    name: 'pool deleted with nowhere to go: the Service is left without an address, and an Event says why',
    scenario: async () => ({
      pools: [],
      claims: [claim('192.0.2.5', 'old', [held('default', 'a')])],
      services: [await signed(keys, svc('a', { status: ['192.0.2.5'] }), ['192.0.2.5'], 'old')],
    }),
    expect: (o) => {
      assert.deepEqual(o.services['default/a'], { ips: '', pool: '', status: '' });
      assert.deepEqual(o.claims, {});
      assert.ok(o.events.includes('default/a:AllocationFailed'));
    },
  },
  {
    name: 'pool shrunk: only the holders outside the new ranges move, oldest first',
    scenario: async () => ({
      pools: [pool('web', { addresses: ['203.0.113.0/31', '203.0.113.8/31'] })],
      claims: [
        claim('203.0.113.0', 'web', [held('default', 'stay')]),
        claim('203.0.113.2', 'web', [held('default', 'm1')]),
        claim('203.0.113.3', 'web', [held('default', 'm2')]),
      ],
      services: [
        await signed(keys, svc('stay', { at: 1 }), ['203.0.113.0'], 'web'),
        await signed(keys, svc('m2', { at: 2 }), ['203.0.113.3'], 'web'),
        await signed(keys, svc('m1', { at: 3 }), ['203.0.113.2'], 'web'),
      ],
    }),
    expect: (o) => {
      assert.equal(o.services['default/stay']?.ips, '203.0.113.0');
      assert.equal(o.services['default/m2']?.ips, '203.0.113.1');
      assert.equal(o.services['default/m1']?.ips, '203.0.113.8');
      assert.deepEqual(Object.keys(o.claims).sort(), ['203.0.113.0', '203.0.113.1', '203.0.113.8']);
    },
  },
  {
    name: 'avoidBuggyIPs turned on: a holder of .0 moves',
    scenario: async () => ({
      pools: [pool('web', { addresses: ['203.0.113.0/30'], avoidBuggyIPs: true })],
      claims: [claim('203.0.113.0', 'web', [held('default', 'a')])],
      services: [await signed(keys, svc('a'), ['203.0.113.0'], 'web')],
    }),
    expect: (o) => assert.equal(o.services['default/a']?.ips, '203.0.113.1'),
  },
  {
    name: 'namespaces narrowed: a holder whose namespace is no longer allowed moves to a pool it may use',
    scenario: async () => ({
      pools: [pool('team', { addresses: ['198.51.100.0/30'], allocateTo: { namespaces: ['other'], priority: 1 } }), web],
      claims: [claim('198.51.100.1', 'team', [held('default', 'a')])],
      services: [await signed(keys, svc('a'), ['198.51.100.1'], 'team')],
    }),
    expect: (o) => assert.deepEqual(o.services['default/a'], { ips: '203.0.113.0', pool: 'web', status: '203.0.113.0' }),
  },
  {
    name: 'namespace selector: a pool for labelled namespaces serves them first',
    scenario: async () => ({
      namespaces: { prod: { tier: 'prod' } },
      pools: [pool('prod', { addresses: ['198.51.100.0/30'], allocateTo: { priority: 1, namespaceSelectors: [{ matchLabels: { tier: 'prod' } }] } }), web],
      services: [svc('a', { ns: 'prod' }), svc('b')],
    }),
    expect: (o) => {
      assert.equal(o.services['prod/a']?.pool, 'prod');
      assert.equal(o.services['default/b']?.pool, 'web');
    },
  },
  {
    name: 'quota lowered: the oldest holders stay within it, the others move to a pool they may use',
    scenario: async () => ({
      pools: [pool('q', { addresses: ['198.51.100.0/29'], quota: { perNamespace: 1 }, allocateTo: { priority: 1 } }), web],
      claims: [claim('198.51.100.1', 'q', [held('default', 'young')]), claim('198.51.100.2', 'q', [held('default', 'old')])],
      services: [await signed(keys, svc('young', { at: 9 }), ['198.51.100.1'], 'q'), await signed(keys, svc('old', { at: 1 }), ['198.51.100.2'], 'q')],
    }),
    expect: (o) => {
      assert.deepEqual(o.services['default/old'], { ips: '198.51.100.2', pool: 'q', status: '198.51.100.2' });
      assert.deepEqual(o.services['default/young'], { ips: '203.0.113.0', pool: 'web', status: '203.0.113.0' });
      assert.deepEqual(Object.keys(o.claims).sort(), ['198.51.100.2', '203.0.113.0']);
    },
  },
  {
    name: 'dual-stack back-stop for many Services: both families reserved at once, no address twice',
    scenario: async () => ({ pools: [dual], services: Array.from({ length: 6 }, (_, i) => svc(`d${i}`, { at: i, spec: { ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv4', 'IPv6'] } })) }),
    expect: (o) => {
      const ips = Object.values(o.services).flatMap((s) => s.ips.split(',')).filter(Boolean);
      assert.equal(ips.length, 12);
      assert.equal(new Set(ips).size, 12);
      assert.equal(o.services['default/d0']?.ips, '198.51.100.0,2001:db8:1::');
      assert.equal(o.services['default/d5']?.ips, '198.51.100.5,2001:db8:1::5');
    },
  },
  {
    name: 'type changed to ClusterIP: the assignment, the claim and the status go',
    scenario: async () => ({
      pools: [web],
      claims: [claim('203.0.113.1', 'web', [held('default', 'a')])],
      services: [await signed(keys, svc('a', { type: 'ClusterIP', status: ['203.0.113.1'] }), ['203.0.113.1'], 'web')],
    }),
    expect: (o) => {
      assert.deepEqual(o.services['default/a'], { ips: '', pool: '', status: '' });
      assert.deepEqual(o.claims, {});
    },
  },
  {
    name: 'requested address: a back-stopped Service gets the address it asks for',
    scenario: async () => ({ pools: [web], services: [svc('a', { annotations: { 'admitlb.io/ips': '203.0.113.2' } })] }),
    expect: (o) => assert.equal(o.services['default/a']?.ips, '203.0.113.2'),
  },
  {
    name: 'requested address taken: the back-stop leaves it pending with the reason',
    scenario: async () => ({
      pools: [web],
      claims: [claim('203.0.113.2', 'web', [held('default', 'a')])],
      services: [await signed(keys, svc('a', { at: 1 }), ['203.0.113.2'], 'web'), svc('b', { at: 2, annotations: { 'admitlb.io/ips': '203.0.113.2' } })],
    }),
    expect: (o) => {
      assert.equal(o.services['default/a']?.ips, '203.0.113.2');
      assert.equal(o.services['default/b']?.ips, '');
      assert.ok(o.events.includes('default/b:AllocationFailed'));
    },
  },
  {
    name: 'named pool: a back-stopped Service uses the pool it names',
    scenario: async () => ({ pools: [web, pool('named', { addresses: ['198.51.100.64/30'], autoAssign: false })], services: [svc('a', { annotations: { 'admitlb.io/pool': 'named' } })] }),
    expect: (o) => assert.deepEqual(o.services['default/a'], { ips: '198.51.100.64', pool: 'named', status: '198.51.100.64' }),
  },
  {
    name: 'dual-stack: a RequireDualStack Service gets one address per family, primary first',
    scenario: async () => ({ pools: [dual], services: [svc('a', { spec: { ipFamilyPolicy: 'RequireDualStack', ipFamilies: ['IPv6', 'IPv4'] } })] }),
    expect: (o) => assert.deepEqual(o.services['default/a'], { ips: '2001:db8:1::,198.51.100.0', pool: 'dual', status: '2001:db8:1::,198.51.100.0' }),
  },
  {
    name: 'externalIPs: an admissible externalIP set while the webhook was down is claimed and signed',
    scenario: async () => ({
      pools: [pool('ext', { addresses: ['192.0.2.0/28'], usage: ['ExternalIP'] })],
      services: [svc('a', { type: 'ClusterIP', spec: { externalIPs: ['192.0.2.4'] } })],
    }),
    expect: (o) => {
      assert.deepEqual(o.services['default/a'], { ips: '192.0.2.4', pool: 'ext', status: '' });
      assert.deepEqual(o.claims['192.0.2.4']?.holders, ['default/a/ExternalIP/uid-default-a']);
    },
  },
  {
    name: 'externalIPs: one outside every ExternalIP pool gets an AllocationFailed event and no claim',
    scenario: async () => ({ pools: [web], services: [svc('a', { type: 'ClusterIP', spec: { externalIPs: ['192.0.2.4'] } })] }),
    expect: (o) => {
      assert.deepEqual(o.claims, {});
      assert.ok(o.events.includes('default/a:AllocationFailed'));
    },
  },
  {
    name: 'a pool that fails to compile is ignored; its holders move',
    scenario: async () => ({
      pools: [web, pool('broken', { addresses: ['not-an-address'] })],
      claims: [claim('192.0.2.1', 'broken', [held('default', 'a')])],
      services: [await signed(keys, svc('a'), ['192.0.2.1'], 'broken')],
    }),
    expect: (o) => assert.equal(o.services['default/a']?.pool, 'web'),
  },
  {
    name: 'many Services, few addresses: exactly the capacity is assigned, no address twice',
    scenario: async () => ({ pools: [web], services: Array.from({ length: 7 }, (_, i) => svc(`s${i}`, { at: 100 - i })) }),
    expect: (o) => {
      const ips = Object.values(o.services).map((s) => s.ips).filter(Boolean);
      assert.equal(ips.length, 4);
      assert.equal(new Set(ips).size, 4);
      assert.deepEqual(['s6', 's5', 's4', 's3'].map((n) => o.services[`default/${n}`]?.ips), ['203.0.113.0', '203.0.113.1', '203.0.113.2', '203.0.113.3']);
    },
  },
];

for (const c of cases) {
  test(c.name, async () => {
    const r = await run(keys, await c.scenario());
    try {
      c.expect(observed(r.cluster));
    } finally {
      await r.close();
    }
  });
}

test('every case converges to the same result in 100 shuffled orders', async () => {
  for (const c of cases) {
    const scenario = await c.scenario();
    const base = await run(keys, scenario);
    const expected = observed(base.cluster);
    await base.close();
    for (let seed = 1; seed <= 100; seed++) {
      const r = await run(keys, scenario, { random: seeded(seed) });
      try {
        assert.deepEqual(observed(r.cluster), expected, `${c.name} (seed ${seed})`);
      } finally {
        await r.close();
      }
    }
  }
});

test('restart safety: a second controller on a converged cluster writes nothing', async () => {
  for (const c of cases) {
    const r = await run(keys, await c.scenario());
    const before = observed(r.cluster);
    await r.close();
    const calls = { ...r.cluster.calls };
    // Same cluster, new controller and allocation state.
    const { Controller } = await import('../../src/controller/controller.ts');
    const { LiveAllocationState } = await import('../../src/kube/allocation-state.ts');
    const { admissionConfigSchema } = await import('../../src/config/webhook-config.ts');
    const { silentLogger } = await import('../helpers/state.ts');
    const state = new LiveAllocationState(r.cluster);
    const ctrl = new Controller({ cache: r.cluster, api: r.cluster, state, keys, config: admissionConfigSchema.parse((await c.scenario()).config ?? {}), logger: silentLogger(), debounceMs: 0, settleMs: 0, now: () => r.clock.now });
    ctrl.start();
    ctrl.setLeading(true);
    await ctrl.idle();
    await ctrl.stop();
    state.close();
    assert.deepEqual(observed(r.cluster), before, c.name);
    assert.deepEqual({ create: r.cluster.calls.create, update: r.cluster.calls.update, delete: r.cluster.calls.delete, patchService: r.cluster.calls.patchService, status: r.cluster.calls.status }, { create: calls.create, update: calls.update, delete: calls.delete, patchService: calls.patchService, status: calls.status }, `${c.name}: writes after restart`);
  }
});

test('an orphan claim is released once the grace period has passed, and a pending Service takes the address', async () => {
  const r = await run(keys, { pools: [one], claims: [claim('203.0.113.10', 'one', [{ namespace: 'default', name: 'rejected' }])], services: [svc('waiting')] });
  try {
    assert.equal(observed(r.cluster).services['default/waiting']?.ips, '');
    r.clock.now += 59_000;
    r.cluster.setNamespace('poke'); // any event: a pass runs
    await r.converge();
    assert.ok(observed(r.cluster).claims['203.0.113.10'], 'kept inside the grace');
    r.clock.now += 2_000;
    r.cluster.setNamespace('poke2');
    await r.converge();
    const o = observed(r.cluster);
    assert.equal(o.services['default/waiting']?.ips, '203.0.113.10');
    assert.deepEqual(o.claims['203.0.113.10']?.holders, ['default/waiting/LoadBalancer/uid-default-waiting']);
  } finally {
    await r.close();
  }
});

test('deleting a Service frees its claim and a pending Service takes the address', async () => {
  const r = await run(keys, { pools: [one], services: [svc('first', { at: 1 }), svc('second', { at: 2 })] });
  try {
    assert.equal(observed(r.cluster).services['default/first']?.ips, '203.0.113.10');
    assert.equal(observed(r.cluster).services['default/second']?.ips, '');
    r.cluster.deleteService('default', 'first');
    await r.converge();
    const o = observed(r.cluster);
    assert.deepEqual(o.services['default/second'], { ips: '203.0.113.10', pool: 'one', status: '203.0.113.10' });
    assert.deepEqual(o.claims['203.0.113.10']?.holders, ['default/second/LoadBalancer/uid-default-second']);
  } finally {
    await r.close();
  }
});

test('a status forged after convergence is restored with a StatusRestored event', async () => {
  const r = await run(keys, { pools: [web], services: [svc('a')] });
  try {
    await r.cluster.writeServiceStatus('default', 'a', [{ ip: '192.0.2.99', ipMode: 'VIP' }]);
    await r.converge();
    assert.equal(observed(r.cluster).services['default/a']?.status, '203.0.113.0');
    assert.ok(r.cluster.events.some((e) => e.reason === 'StatusRestored' && e.name === 'a' && e.message.includes('192.0.2.99')), `a StatusRestored Event for a naming 192.0.2.99 in ${JSON.stringify(r.cluster.events.map((e) => [e.reason, e.name]))}`);
  } finally {
    await r.close();
  }
});

test('pool status shows capacity, in-use and conditions per family', async () => {
  const r = await run(keys, { pools: [one, dual], services: [svc('a', { annotations: { 'admitlb.io/pool': 'one' } })] });
  try {
    const pools = Object.fromEntries(r.cluster.listPools().map((p): [string, typeof p.status] => [p.metadata.name!, p.status]));
    assert.deepEqual(pools.one?.capacity, { ipv4: '1' });
    assert.deepEqual(pools.one?.inUse, { ipv4: '1' });
    assert.equal(pools.one?.conditions?.find((c) => c.type === 'Exhausted')?.status, 'True');
    assert.deepEqual(pools.dual?.capacity, { ipv4: '8', ipv6: '8' });
    assert.deepEqual(pools.dual?.inUse, { ipv4: '0', ipv6: '0' });
    assert.equal(pools.dual?.conditions?.find((c) => c.type === 'Valid')?.status, 'True');
  } finally {
    await r.close();
  }
});

test('pool status: counts are written at most once per window, condition changes at once', async () => {
  const r = await run(keys, { pools: [web], services: [svc('a')] }, { poolStatusIntervalMs: 400 });
  try {
    const status = () => r.cluster.listPools().find((p) => p.metadata.name === 'web')?.status;
    const exhausted = () => status()?.conditions?.find((c) => c.type === 'Exhausted')?.status;
    assert.deepEqual(status()?.inUse, { ipv4: '1' }, 'the first status is written at once');
    // Within the window (the fake clock has not moved): a count change waits...
    r.cluster.setService(svc('b'));
    await r.converge();
    assert.equal(observed(r.cluster).services['default/b']?.status, '203.0.113.1');
    assert.deepEqual(status()?.inUse, { ipv4: '1' }, 'a count change inside the window waits');
    // ...but the pool filling up flips Exhausted, which is written at once, with the counts of now.
    r.cluster.setService(svc('c'));
    r.cluster.setService(svc('d'));
    await r.converge();
    assert.equal(exhausted(), 'True');
    assert.deepEqual(status()?.inUse, { ipv4: '4' });
    // Freeing one flips Exhausted back: at once again.
    r.cluster.deleteService('default', 'd');
    await r.converge();
    assert.deepEqual(status()?.inUse, { ipv4: '3' });
    assert.equal(exhausted(), 'False');
    // A count change after that waits for the window, then is written without any other event.
    r.cluster.deleteService('default', 'c');
    await r.converge();
    assert.deepEqual(status()?.inUse, { ipv4: '3' });
    r.clock.now += 400;
    const deadline = Date.now() + 5000;
    while (status()?.inUse?.ipv4 !== '2' && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
    assert.deepEqual(status()?.inUse, { ipv4: '2' }, 'written when the window ended');
    assert.equal(exhausted(), 'False');
  } finally {
    await r.close();
  }
});

test('a standby controller writes nothing; it acts once it leads', async () => {
  const r = await run(keys, { pools: [web], services: [] });
  try {
    r.controller.setLeading(false);
    r.cluster.setService(svc('late'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(observed(r.cluster).services['default/late']?.ips, '');
    r.controller.setLeading(true);
    await r.converge();
    assert.equal(observed(r.cluster).services['default/late']?.ips, '203.0.113.0');
  } finally {
    await r.close();
  }
});

test('a holder whose Service stopped naming the address is released only after the settle time', async () => {
  const { Controller } = await import('../../src/controller/controller.ts');
  const { LiveAllocationState } = await import('../../src/kube/allocation-state.ts');
  const { admissionConfigSchema } = await import('../../src/config/webhook-config.ts');
  const { silentLogger } = await import('../helpers/state.ts');
  const { MemoryCluster } = await import('../../src/kube/memory.ts');
  const cluster = new MemoryCluster();
  cluster.setNamespace('default');
  cluster.setPool(web);
  await cluster.create(claim('203.0.113.1', 'web', [held('default', 'a')]));
  // The Service exists with the holder's uid, but (as a cache lagging its own write would show) has
  // no assignment naming 203.0.113.1: the claim must survive the settle time.
  cluster.setService(await signed(keys, svc('a', { type: 'ClusterIP' }), [], ''));
  const clock = { now: Date.UTC(2026, 0, 1) };
  const state = new LiveAllocationState(cluster);
  const ctrl = new Controller({ cache: cluster, api: cluster, state, keys, config: admissionConfigSchema.parse({}), logger: silentLogger(), debounceMs: 0, settleMs: 5_000, now: () => clock.now });
  try {
    ctrl.start();
    ctrl.setLeading(true);
    await ctrl.idle();
    assert.ok(observed(cluster).claims['203.0.113.1'], 'kept while settling');
    clock.now += 5_000;
    cluster.setNamespace('poke');
    await ctrl.idle();
    assert.equal(observed(cluster).claims['203.0.113.1'], undefined, 'released after settling');
  } finally {
    await ctrl.stop();
    state.close();
  }
});
