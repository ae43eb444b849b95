// Taking over from MetalLB: which status addresses a Service without an admitlb assignment keeps
// (the pure decision, adoptableStatus), and what the controller makes of a cluster of such Services
// (each case also replayed in shuffled orders: the first holder wins deterministically).
import { before, describe, it, test } from 'node:test';
import assert from 'node:assert/strict';
import { adoptableStatus } from '../../src/admission/adopt-status.ts';
import { admitService } from '../../src/admission/admit-service.ts';
import type { AdmissionRequest } from '../../src/admission/review.ts';
import { formatIP, parseIP } from '../../src/allocation/addresses.ts';
import type { AllocationRequest } from '../../src/allocation/allocator.ts';
import type { KeySet } from '../../src/signing/assignment.ts';
import { claim, harness, index, model, pool, testKeys } from '../helpers/state.ts';
import { observed, run, seeded, signed, svc, type Scenario } from './harness.ts';

describe('adoptableStatus', () => {
  const web = model('web', { addresses: ['203.0.113.0/28'] });
  const dual = model('dual', { addresses: ['198.51.100.0/29', '2001:db8:1::/125'] });
  const teamOnly = model('team', { addresses: ['192.0.2.0/28'], allocateTo: { namespaces: ['team-a'] } });
  const manual = model('manual', { addresses: ['192.0.2.64/28'], autoAssign: false });
  const buggy = model('buggy', { addresses: ['192.0.2.128/25'], avoidBuggyIPs: true });
  const quota = model('quota', { addresses: ['198.51.100.64/28'], quota: { perNamespace: 1 } });
  const pools = [web, dual, teamOnly, manual, buggy, quota];
  const other = { namespace: 'default', name: 'other', uid: 'uid-other', ports: [{ protocol: 'TCP' as const, port: 80 }] };
  const req = (o: Partial<AllocationRequest> = {}): AllocationRequest => ({
    namespace: 'default',
    name: 'web',
    uid: 'uid-web',
    labels: undefined,
    namespaceLabels: undefined,
    families: [4],
    policy: 'SingleStack',
    ports: [{ protocol: 'TCP', port: 80 }],
    backend: '',
    ...o,
  });
  const show = (r: ReturnType<typeof adoptableStatus>) => ({
    keep: r.keep ? `${r.keep.pool}:${r.keep.ips.map(formatIP).join(',')}` : '',
    refused: r.refused.map((x) => `${x.address}: ${x.why}`),
  });
  const cases: { what: string; claims?: ReturnType<typeof claim>[]; req?: Partial<AllocationRequest>; status: string[]; keep: string; refused?: RegExp[] }[] = [
    { what: 'fits an autoAssign pool and is free: kept', status: ['203.0.113.9'], keep: 'web:203.0.113.9' },
    { what: 'a legacy form (leading zeros) is read as kube-proxy reads it', status: ['203.0.113.09'], keep: 'web:203.0.113.9' },
    { what: 'held by another Service: not kept (the first holder wins)', claims: [claim('203.0.113.9', 'web', [other])], status: ['203.0.113.9'], keep: '', refused: [/203\.0\.113\.9: 203\.0\.113\.9 is already held by Service "other"/] },
    { what: 'already this Service\'s own claim: kept', claims: [claim('203.0.113.9', 'web', [{ ...other, name: 'web', uid: 'uid-web' }])], status: ['203.0.113.9'], keep: 'web:203.0.113.9' },
    {
      what: 'held by another object of the same name (another uid): not kept',
      claims: [claim('203.0.113.9', 'web', [{ ...other, name: 'web', uid: 'uid-old-web' }])],
      status: ['203.0.113.9'],
      keep: '',
      refused: [/already held/],
    },
    {
      what: 'shared by key with another Service on other ports: kept, as a new Service with that key would get it',
      claims: [claim('203.0.113.9', 'web', [{ ...other, ports: [{ protocol: 'TCP', port: 443 }] }], 'k')],
      req: { sharingKey: 'k' },
      status: ['203.0.113.9'],
      keep: 'web:203.0.113.9',
    },
    {
      what: 'shared by key but the same port: not kept',
      claims: [claim('203.0.113.9', 'web', [other], 'k')],
      req: { sharingKey: 'k' },
      status: ['203.0.113.9'],
      keep: '',
      refused: [/port TCP\/80/],
    },
    { what: 'outside every pool: not kept', status: ['192.0.2.30'], keep: '', refused: [/192\.0\.2\.30: outside the IPPools that assign addresses to this Service/] },
    { what: 'in a pool of another namespace: not kept', status: ['192.0.2.3'], keep: '', refused: [/outside the IPPools/] },
    { what: 'in a pool of its own namespace: kept', req: { namespace: 'team-a' }, status: ['192.0.2.3'], keep: 'team:192.0.2.3' },
    { what: 'in a pool without autoAssign that the Service does not name: not kept', status: ['192.0.2.70'], keep: '', refused: [/outside the IPPools/] },
    { what: 'in a pool without autoAssign that the Service names: kept', req: { pool: { name: 'manual', field: 'metadata.annotations[metallb.universe.tf/address-pool]' } }, status: ['192.0.2.70'], keep: 'manual:192.0.2.70' },
    { what: 'outside the pool the Service names: not kept', req: { pool: { name: 'manual', field: 'metadata.annotations[admitlb.io/pool]' } }, status: ['203.0.113.9'], keep: '', refused: [/outside IPPool "manual"/] },
    { what: 'an address the pool avoids (.255): not kept', status: ['192.0.2.255'], keep: '', refused: [/outside the IPPools/] },
    { what: 'the Service asks for exactly that address: left to the request', req: { requested: { ips: [parseIP('203.0.113.9')], field: 'x' } }, status: ['203.0.113.9'], keep: '' },
    { what: 'the Service asks for another address: not kept', req: { requested: { ips: [parseIP('203.0.113.4')], field: 'metadata.annotations[metallb.io/loadBalancerIPs]' } }, status: ['203.0.113.9'], keep: '', refused: [/asks for other addresses \(metadata\.annotations\[metallb\.io\/loadBalancerIPs\]\)/] },
    { what: 'over the namespace quota of the pool: not kept', claims: [claim('198.51.100.65', 'quota', [other])], status: ['198.51.100.66'], keep: '', refused: [/quota allows/] },
    { what: 'single-stack IPv4: an IPv6 address is not kept', status: ['203.0.113.9', '2001:db8:1::3'], keep: 'web:203.0.113.9', refused: [/2001:db8:1::3: the Service is single-stack IPv4/] },
    { what: 'dual-stack: both families from one pool, kept', req: { families: [4, 6], policy: 'RequireDualStack' }, status: ['2001:db8:1::3', '198.51.100.2'], keep: 'dual:198.51.100.2,2001:db8:1::3' },
    {
      what: 'dual-stack: each family on its own (IPv6 taken, IPv4 kept)',
      claims: [claim('2001:db8:1::3', 'dual', [other])],
      req: { families: [4, 6], policy: 'RequireDualStack' },
      status: ['198.51.100.2', '2001:db8:1::3'],
      keep: 'dual:198.51.100.2',
      refused: [/2001:db8:1::3: .*already held/],
    },
    { what: 'dual-stack: two pools, the primary family\'s pool is kept', req: { families: [4, 6], policy: 'PreferDualStack' }, status: ['2001:db8:1::3', '203.0.113.9'], keep: 'web:203.0.113.9', refused: [/2001:db8:1::3: in another IPPool than 203\.0\.113\.9/] },
    { what: 'two addresses of one family: the first is kept', status: ['203.0.113.9', '203.0.113.10'], keep: 'web:203.0.113.9', refused: [/203\.0\.113\.10: the status already shows 203\.0\.113\.9/] },
    { what: 'a hostname is not an address', status: ['lb.example.com'], keep: '', refused: [/not an IP address/] },
  ];
  for (const c of cases) {
    it(c.what, () => {
      const got = show(adoptableStatus({ pools, claims: index(c.claims ?? []) }, req(c.req), c.status));
      assert.equal(got.keep, c.keep);
      assert.equal(got.refused.length, c.refused?.length ?? 0, got.refused.join('; '));
      for (const [i, re] of (c.refused ?? []).entries()) assert.match(got.refused[i]!, re);
    });
  }
});

let keys: KeySet;
before(async () => {
  keys = (await testKeys()).keys;
});

const web = pool('web', { addresses: ['203.0.113.0/29'] });
const dual = pool('dual', { addresses: ['198.51.100.0/29', '2001:db8:1::/125'], allocateTo: { namespaces: ['dual'] } });
const held = (name: string) => ({ namespace: 'default', name, uid: `uid-default-${name}`, ports: [{ protocol: 'TCP' as const, port: 80 }] });
type Observed = ReturnType<typeof observed>;

const controllerCases: { name: string; scenario: () => Promise<Scenario>; expect: (o: Observed) => void }[] = [
  {
    name: 'a free status address in a pool is adopted: same address, a claim with the uid, no new status',
    scenario: async () => ({ pools: [web], services: [svc('a', { status: ['203.0.113.5'] })] }),
    expect: (o) => {
      assert.deepEqual(o.services['default/a'], { ips: '203.0.113.5', pool: 'web', status: '203.0.113.5' });
      assert.deepEqual(o.claims['203.0.113.5']?.holders, ['default/a/LoadBalancer/uid-default-a']);
      assert.ok(o.events.includes('default/a:IPAdopted'));
      assert.ok(!o.events.includes('default/a:IPAllocated'));
    },
  },
  {
    name: 'an address another Service holds is not adopted: the Service gets another, with a StatusNotAdopted event',
    scenario: async () => ({
      pools: [web],
      claims: [claim('203.0.113.5', 'web', [held('owner')])],
      services: [await signed(keys, svc('owner', { at: 50, status: ['203.0.113.5'] }), ['203.0.113.5'], 'web'), svc('thief', { at: 1, status: ['203.0.113.5'] })],
    }),
    expect: (o) => {
      assert.equal(o.services['default/owner']?.ips, '203.0.113.5');
      assert.deepEqual(o.services['default/thief'], { ips: '203.0.113.0', pool: 'web', status: '203.0.113.0' });
      assert.deepEqual(o.claims['203.0.113.5']?.holders, ['default/owner/LoadBalancer/uid-default-owner']);
      assert.ok(o.events.includes('default/thief:StatusNotAdopted'));
    },
  },
  {
    name: 'a status address outside every pool is not adopted: handled as today, with the reason',
    scenario: async () => ({ pools: [web], services: [svc('a', { status: ['192.0.2.66'] })] }),
    expect: (o) => {
      assert.deepEqual(o.services['default/a'], { ips: '203.0.113.0', pool: 'web', status: '203.0.113.0' });
      assert.ok(o.events.includes('default/a:StatusNotAdopted'));
    },
  },
  {
    name: 'two Services showing one address: the older keeps it, the younger moves',
    scenario: async () => ({ pools: [web], services: [svc('young', { at: 20, status: ['203.0.113.3'] }), svc('old', { at: 10, status: ['203.0.113.3'] })] }),
    expect: (o) => {
      assert.equal(o.services['default/old']?.ips, '203.0.113.3');
      assert.deepEqual(o.services['default/young'], { ips: '203.0.113.0', pool: 'web', status: '203.0.113.0' });
      assert.deepEqual(o.claims['203.0.113.3']?.holders, ['default/old/LoadBalancer/uid-default-old']);
    },
  },
  {
    name: 'two Services showing one address, created at the same second: namespace/name decides',
    scenario: async () => ({ pools: [web], services: [svc('b', { at: 7, status: ['203.0.113.3'] }), svc('a', { at: 7, status: ['203.0.113.3'] })] }),
    expect: (o) => {
      assert.equal(o.services['default/a']?.ips, '203.0.113.3');
      assert.equal(o.services['default/b']?.ips, '203.0.113.0');
    },
  },
  {
    name: 'adoption comes first: an older Service without status does not take the lowest address a younger one shows',
    scenario: async () => ({ pools: [web], services: [svc('new', { at: 1 }), svc('metallb', { at: 2, status: ['203.0.113.0'] })] }),
    expect: (o) => {
      assert.equal(o.services['default/metallb']?.ips, '203.0.113.0');
      assert.deepEqual(o.services['default/new'], { ips: '203.0.113.1', pool: 'web', status: '203.0.113.1' });
    },
  },
  {
    name: 'dual-stack: each family on its own (IPv6 held by another Service: a new IPv6, the IPv4 kept)',
    scenario: async () => ({
      pools: [dual],
      claims: [claim('2001:db8:1::3', 'dual', [{ ...held('owner'), namespace: 'dual', uid: 'uid-dual-owner' }])],
      services: [
        await signed(keys, svc('owner', { ns: 'dual', at: 1, spec: { ipFamilies: ['IPv6'], ipFamilyPolicy: 'SingleStack' } }), ['2001:db8:1::3'], 'dual'),
        svc('ds', { ns: 'dual', at: 2, spec: { ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack' }, status: ['198.51.100.4', '2001:db8:1::3'] }),
      ],
    }),
    expect: (o) => {
      assert.deepEqual(o.services['dual/ds'], { ips: '198.51.100.4,2001:db8:1::', pool: 'dual', status: '198.51.100.4,2001:db8:1::' });
      assert.ok(o.events.includes('dual/ds:StatusNotAdopted'));
    },
  },
  {
    name: 'MetalLB sharing: two Services with one allow-shared-ip key and one status address both keep it',
    scenario: async () => ({
      pools: [web],
      services: [
        svc('http', { at: 1, ports: [80], annotations: { 'metallb.io/allow-shared-ip': 'front' }, status: ['203.0.113.6'] }),
        svc('https', { at: 2, ports: [443], annotations: { 'metallb.io/allow-shared-ip': 'front' }, status: ['203.0.113.6'] }),
      ],
    }),
    expect: (o) => {
      assert.equal(o.services['default/http']?.ips, '203.0.113.6');
      assert.equal(o.services['default/https']?.ips, '203.0.113.6');
      assert.deepEqual(o.claims['203.0.113.6']?.holders, ['default/http/LoadBalancer/uid-default-http', 'default/https/LoadBalancer/uid-default-https']);
    },
  },
  {
    name: 'MetalLB pool annotation: the status address in the named pool is kept',
    scenario: async () => ({
      pools: [web, pool('manual', { addresses: ['192.0.2.64/28'], autoAssign: false })],
      services: [svc('a', { annotations: { 'metallb.universe.tf/address-pool': 'manual' }, status: ['192.0.2.70'] })],
    }),
    expect: (o) => assert.deepEqual(o.services['default/a'], { ips: '192.0.2.70', pool: 'manual', status: '192.0.2.70' }),
  },
  {
    name: 'another load balancer class is never adopted',
    scenario: async () => ({ pools: [web], services: [svc('a', { spec: { loadBalancerClass: 'example.com/other' }, status: ['203.0.113.5'] })] }),
    expect: (o) => {
      assert.deepEqual(o.services['default/a'], { ips: '', pool: '', status: '203.0.113.5' });
      assert.deepEqual(o.claims, {});
    },
  },
];

for (const c of controllerCases) {
  test(`controller: ${c.name}`, async () => {
    const r = await run(keys, await c.scenario());
    try {
      c.expect(observed(r.cluster));
    } finally {
      await r.close();
    }
  });
}

test('controller: every adoption case converges to the same result in 30 shuffled orders', async () => {
  for (const c of controllerCases) {
    const scenario = await c.scenario();
    const base = await run(keys, scenario);
    const expected = observed(base.cluster);
    await base.close();
    for (let seed = 1; seed <= 30; seed++) {
      const r = await run(keys, scenario, { random: seeded(seed) });
      try {
        assert.deepEqual(observed(r.cluster), expected, `${c.name} (seed ${seed})`);
      } finally {
        await r.close();
      }
    }
  }
});

describe('the webhook on an update of a Service admitlb has not assigned', () => {
  const stored = (status?: string[]) => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'default', uid: 'uid-web', labels: { app: 'web' } },
    spec: { type: 'LoadBalancer', ports: [{ name: 'http', protocol: 'TCP', port: 80, targetPort: 80 }] },
    ...(status ? { status: { loadBalancer: { ingress: status.map((ip) => ({ ip })) } } } : {}),
  });
  const review = (operation: 'CREATE' | 'UPDATE', object: object, oldObject: object | null): AdmissionRequest => ({
    uid: 'r1',
    kind: { group: '', version: 'v1', kind: 'Service' },
    resource: { group: '', version: 'v1', resource: 'services' },
    operation,
    namespace: 'default',
    name: 'web',
    object: object as Record<string, unknown>,
    oldObject: oldObject as Record<string, unknown> | null,
    dryRun: false,
  });
  const assignedIPs = (patch: unknown): string => {
    for (const op of (patch ?? []) as { path: string; value: any }[]) {
      if (op.path === '/metadata/annotations') return op.value['admitlb.io/assigned-ips'];
      if (op.path === '/metadata/annotations/admitlb.io~1assigned-ips') return op.value;
    }
    return '';
  };
  const pools = [pool('web', { addresses: ['203.0.113.0/28'] })];

  it('a label change keeps the address the stored status shows (the decision the controller makes)', async () => {
    const h = await harness(pools);
    const old = stored(['203.0.113.9']);
    const next = { ...old, metadata: { ...old.metadata, labels: { app: 'web', tier: 'front' } } };
    const r = await admitService(h.deps, review('UPDATE', next, old));
    assert.equal(r.allowed, true);
    assert.equal(assignedIPs(r.patch), '203.0.113.9');
    assert.deepEqual(r.adoption, { kept: ['203.0.113.9'], refused: [] });
    assert.deepEqual(h.cluster.listClaims().map((c) => c.spec.address), ['203.0.113.9']);
  });

  it('a status in the request body is not trusted: only the stored object counts', async () => {
    const h = await harness(pools);
    const r = await admitService(h.deps, review('UPDATE', stored(['203.0.113.9']), stored()));
    assert.equal(assignedIPs(r.patch), '203.0.113.0');
    const created = await admitService(h.deps, review('CREATE', { ...stored(['203.0.113.10']), metadata: { name: 'web2', namespace: 'default' } }, null));
    assert.equal(assignedIPs(created.patch), '203.0.113.1');
  });

  it('an address another Service holds is not kept: a warning says why', async () => {
    const h = await harness(pools);
    await h.cluster.claims.create(claim('203.0.113.9', 'web', [{ name: 'other', uid: 'uid-other' }]));
    h.state.applyClaim((await h.cluster.claims.get(claim('203.0.113.9', 'web', []).metadata.name!))!);
    const r = await admitService(h.deps, review('UPDATE', stored(['203.0.113.9']), stored(['203.0.113.9'])));
    assert.equal(assignedIPs(r.patch), '203.0.113.0');
    assert.ok(r.warnings?.some((w) => /203\.0\.113\.9 not kept: 203\.0\.113\.9 is already held by Service "other"/.test(w)), JSON.stringify(r.warnings));
  });
});

test('controller: a status written after the controller wrote the Service\'s own is put back, not adopted', async () => {
  // "waiting" has no address (the only pool is full): the controller leaves its status empty.
  const r = await run(keys, {
    pools: [pool('one', { addresses: ['203.0.113.10-203.0.113.10'] })],
    claims: [claim('203.0.113.10', 'one', [held('owner')])],
    services: [await signed(keys, svc('owner', { at: 1 }), ['203.0.113.10'], 'one'), svc('waiting', { at: 2 })],
  });
  try {
    assert.equal(observed(r.cluster).services['default/waiting']?.status, '');
    // Someone writes an address into its status, then a pool with that address appears.
    await r.cluster.writeServiceStatus('default', 'waiting', [{ ip: '192.0.2.5', ipMode: 'VIP' }]);
    r.cluster.setPool(pool('late', { addresses: ['192.0.2.0/29'] }));
    await r.converge();
    const o = observed(r.cluster);
    assert.deepEqual(o.services['default/waiting'], { ips: '192.0.2.0', pool: 'late', status: '192.0.2.0' });
    assert.equal(o.claims['192.0.2.5'], undefined);
    assert.ok(!o.events.includes('default/waiting:IPAdopted'));
  } finally {
    await r.close();
  }
});

test('controller: after a restart, a Service the new controller has not written keeps its status address', async () => {
  // The same picture seen by a controller that starts on it (a takeover): the address is adopted.
  const r = await run(keys, {
    pools: [pool('one', { addresses: ['203.0.113.10-203.0.113.10'] }), pool('late', { addresses: ['192.0.2.0/29'] })],
    claims: [claim('203.0.113.10', 'one', [held('owner')])],
    services: [await signed(keys, svc('owner', { at: 1 }), ['203.0.113.10'], 'one'), svc('waiting', { at: 2, status: ['192.0.2.5'] })],
  });
  try {
    assert.deepEqual(observed(r.cluster).services['default/waiting'], { ips: '192.0.2.5', pool: 'late', status: '192.0.2.5' });
  } finally {
    await r.close();
  }
});

test('controller: a Service whose status address is not kept and that gets no other says both in its AllocationFailed event', async () => {
  const r = await run(keys, {
    pools: [pool('one', { addresses: ['203.0.113.10-203.0.113.10'] })],
    claims: [claim('203.0.113.10', 'one', [held('owner')])],
    services: [await signed(keys, svc('owner', { at: 1 }), ['203.0.113.10'], 'one'), svc('waiting', { at: 2, status: ['192.0.2.66'] })],
  });
  try {
    assert.deepEqual(observed(r.cluster).services['default/waiting'], { ips: '', pool: '', status: '' });
    const messages = r.cluster.events.filter((e) => e.name === 'waiting' && e.reason === 'AllocationFailed').map((e) => e.message);
    // The first says why the status address was not kept; the status is then cleared (no address).
    assert.match(messages[0] ?? '', /no free IPv4 address.*\(status\.loadBalancer\.ingress not kept: 192\.0\.2\.66: outside the IPPools that assign addresses to this Service\)/);
  } finally {
    await r.close();
  }
});
