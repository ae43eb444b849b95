// planSpeaker (pure): trust rules, node eligibility, Local traffic policy, L2 election with shared
// and dual-stack addresses, advertisement selection by pools / labels / nodes, BGP attributes and
// aggregation, and determinism over shuffled inputs.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IPClaim, IPPool } from '../../src/config/schemas.ts';
import type { Service } from '../../src/kube/types.ts';
import type { Assignment } from '../../src/signing/assignment.ts';
import type { BGPAdvertisement, BGPPeer, L2Advertisement } from '../../src/kube/speaker-config.ts';
import { groupKeyFor, ownerOf } from '../../src/speaker/election.ts';
import { EXCLUDE_LB_LABEL, aggregatePrefix, planSpeaker, type EndpointSliceObject, type NodeObject, type PlanInput, type ServiceInput } from '../../src/speaker/plan.ts';
import { parseIP } from '../../src/allocation/addresses.ts';

const node = (name: string, o: { ready?: boolean; networkUnavailable?: boolean; labels?: Record<string, string> } = {}): NodeObject => ({
  metadata: { name, labels: { 'kubernetes.io/hostname': name, ...o.labels } },
  status: {
    conditions: [
      { type: 'Ready', status: o.ready === false ? 'False' : 'True' },
      ...(o.networkUnavailable ? [{ type: 'NetworkUnavailable', status: 'True' }] : [{ type: 'NetworkUnavailable', status: 'False' }]),
    ],
  },
});

function svc(name: string, o: { ns?: string; type?: Service['spec'] extends infer S ? (S extends { type?: infer T } ? T : never) : never; local?: boolean; externalIPs?: string[]; uid?: string; deleting?: boolean } = {}): Service {
  return {
    metadata: { name, namespace: o.ns ?? 'default', uid: o.uid ?? `uid-${name}`, ...(o.deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}) },
    spec: { type: o.type ?? 'LoadBalancer', ...(o.local ? { externalTrafficPolicy: 'Local' as const } : {}), ...(o.externalIPs ? { externalIPs: o.externalIPs } : {}) },
  };
}

const assignment = (s: Service, ips: string[], externalIPs: string[] = [], pool = 'p'): Assignment => ({ namespace: s.metadata.namespace!, name: s.metadata.name!, ips, pool, externalIPs });

function claim(address: string, pool: string, holders: { svc: Service; use?: 'LoadBalancer' | 'ExternalIP'; uid?: string }[], sharingKey?: string): IPClaim {
  return {
    metadata: { name: address.replaceAll(':', '-') },
    spec: {
      address,
      pool,
      ...(sharingKey ? { sharingKey } : {}),
      holders: holders.map((h) => ({ namespace: h.svc.metadata.namespace!, name: h.svc.metadata.name!, use: h.use ?? 'LoadBalancer', ports: [], backend: '', ...(h.uid ? { uid: h.uid } : {}) })),
    },
  };
}

const poolObj = (name: string, labels?: Record<string, string>): IPPool => ({ metadata: { name, ...(labels ? { labels } : {}) }, spec: { addresses: ['192.0.2.0/24'], autoAssign: true, avoidBuggyIPs: false, usage: ['LoadBalancer'] } });

const slice = (s: Service, endpoints: { node?: string | undefined; ready?: boolean | null }[]): EndpointSliceObject => ({
  metadata: { name: `${s.metadata.name}-x`, namespace: s.metadata.namespace!, labels: { 'kubernetes.io/service-name': s.metadata.name! } },
  endpoints: endpoints.map((e, i) => ({ addresses: [`10.0.0.${i + 1}`], ...(e.node ? { nodeName: e.node } : {}), conditions: e.ready === null ? {} : { ready: e.ready ?? true } })),
});

const l2 = (name: string, spec: L2Advertisement['spec'] = {}): L2Advertisement => ({ metadata: { name }, spec });
const bgpAdv = (name: string, spec: BGPAdvertisement['spec'] = {}): BGPAdvertisement => ({ metadata: { name }, spec });
const peer = (name: string, spec: Partial<BGPPeer['spec']> = {}): BGPPeer => ({ metadata: { name }, spec: { peerAddress: '198.51.100.254', peerASN: 64512, myASN: 64513, ...spec } });

const NODES = ['n1', 'n2', 'n3'];

/** A world with one Service `web` on 192.0.2.10 from pool p, ready endpoint on n1, all nodes live. */
function world(over: Partial<PlanInput> = {}): PlanInput {
  const web = svc('web');
  return {
    nodeName: 'n1',
    nodes: NODES.map((n) => node(n)),
    liveNodes: new Set(NODES),
    services: [{ service: web, assignment: assignment(web, ['192.0.2.10']) }],
    claims: [claim('192.0.2.10', 'p', [{ svc: web }])],
    endpointSlices: [slice(web, [{ node: 'n1' }])],
    pools: [poolObj('p')],
    l2Advertisements: [l2('all')],
    bgpAdvertisements: [],
    bgpPeers: [],
    ...over,
  };
}

/** The node that announces each address over L2, computing every node's plan. */
function l2Owners(input: PlanInput): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const n of input.nodes.map((x) => x.metadata.name!)) {
    for (const a of planSpeaker({ ...input, nodeName: n }).l2) out.set(a.address, [...(out.get(a.address) ?? []), n]);
  }
  return out;
}

describe('speaker plan: trust', () => {
  it('announces a verified assignment whose claim lists the Service', () => {
    const owners = l2Owners(world());
    assert.equal(owners.get('192.0.2.10')?.length, 1, 'exactly one node');
  });

  it('never announces without a verified assignment, whatever the status says', () => {
    const web = svc('web');
    web.status = { loadBalancer: { ingress: [{ ip: '192.0.2.10' }] } };
    web.metadata.annotations = { 'admitlb.io/allocation': 'forged.jws.token' };
    const input = world({ services: [{ service: web }] });
    assert.equal(l2Owners(input).size, 0);
    assert.match(planSpeaker(input).skipped[0]!.reason, /no signed assignment verifies/);
  });

  it('needs the IPClaim, with the Service as holder for that use and the same uid', () => {
    const web = svc('web');
    const other = svc('other');
    const base = { services: [{ service: web, assignment: assignment(web, ['192.0.2.10']) }] };
    for (const [why, claims] of [
      ['no claim', []],
      ['claim held by another Service', [claim('192.0.2.10', 'p', [{ svc: other }])]],
      ['claim held as ExternalIP only', [claim('192.0.2.10', 'p', [{ svc: web, use: 'ExternalIP' }])]],
      ['claim adopted by a previous Service of that name', [claim('192.0.2.10', 'p', [{ svc: web, uid: 'old-uid' }])]],
    ] as const) {
      const plan = planSpeaker(world({ ...base, claims: [...claims] }));
      assert.deepEqual(plan.l2, [], why);
      assert.equal(plan.skipped.length, 1, why);
    }
    assert.equal(planSpeaker(world({ ...base, claims: [claim('192.0.2.10', 'p', [{ svc: web, uid: 'uid-web' }])] })).skipped.length, 0);
  });

  it('an assignment only covers the addresses it names; an assignment for another Service is refused', () => {
    const web = svc('web');
    const input = world({
      services: [{ service: web, assignment: { ...assignment(web, ['192.0.2.10']), name: 'other' } }],
      claims: [claim('192.0.2.10', 'p', [{ svc: web }]), claim('192.0.2.11', 'p', [{ svc: web }])],
    });
    assert.equal(l2Owners(input).size, 0);
    const ok = world({ claims: [claim('192.0.2.10', 'p', [{ svc: web }]), claim('192.0.2.11', 'p', [{ svc: web }])] });
    assert.deepEqual([...l2Owners(ok).keys()], ['192.0.2.10']);
  });

  it('a Service no longer of type LoadBalancer, or being deleted, is not announced', () => {
    for (const s of [svc('web', { type: 'ClusterIP' }), svc('web', { deleting: true })]) {
      assert.equal(l2Owners(world({ services: [{ service: s, assignment: assignment(s, ['192.0.2.10']) }] })).size, 0);
    }
  });

  it('externalIPs: announced only while in spec.externalIPs and claimed as ExternalIP', () => {
    const s = svc('ext', { type: 'ClusterIP', externalIPs: ['192.0.2.50'] });
    const input = world({
      services: [{ service: s, assignment: assignment(s, [], ['192.0.2.50']) }],
      claims: [claim('192.0.2.50', 'p', [{ svc: s, use: 'ExternalIP' }])],
      endpointSlices: [slice(s, [{ node: 'n2' }])],
    });
    assert.deepEqual([...l2Owners(input).keys()], ['192.0.2.50']);
    const dropped = svc('ext', { type: 'ClusterIP', externalIPs: [] });
    assert.equal(l2Owners({ ...input, services: [{ service: dropped, assignment: assignment(dropped, [], ['192.0.2.50']) }] }).size, 0);
  });
});

describe('speaker plan: who announces', () => {
  it('only live nodes are candidates; the owner is ownerOf(groupKey, live eligible nodes)', () => {
    const input = world();
    const expected = ownerOf(groupKeyFor({ namespace: 'default', name: 'web', addresses: ['192.0.2.10'] }), NODES);
    assert.deepEqual(l2Owners(input).get('192.0.2.10'), [expected]);
    const without = NODES.filter((n) => n !== expected);
    const next = ownerOf(groupKeyFor({ namespace: 'default', name: 'web', addresses: ['192.0.2.10'] }), without);
    assert.deepEqual(l2Owners(world({ liveNodes: new Set(without) })).get('192.0.2.10'), [next], 'the next owner takes over when the lease lapses');
    assert.equal(l2Owners(world({ liveNodes: new Set() })).size, 0);
  });

  for (const [why, n] of [
    ['not Ready', node('n1', { ready: false })],
    ['NetworkUnavailable', node('n1', { networkUnavailable: true })],
    ['excluded by label', node('n1', { labels: { [EXCLUDE_LB_LABEL]: '' } })],
  ] as const) {
    it(`a node that is ${why} never announces and is not a candidate`, () => {
      const input = world({ nodes: [n, node('n2'), node('n3')] });
      const plan = planSpeaker(input);
      assert.ok(plan.nodeProblem);
      assert.ok(!plan.elections[0]!.candidates.includes('n1'));
      assert.equal(l2Owners(input).get('192.0.2.10')?.length, 1);
      assert.notDeepEqual(l2Owners(input).get('192.0.2.10'), ['n1']);
    });
  }

  it('a node missing from the cache is not eligible', () => {
    assert.equal(planSpeaker(world({ nodeName: 'ghost' })).nodeProblem, 'the Node object does not exist');
  });

  it('no ready endpoint anywhere: nobody announces (Cluster and Local)', () => {
    const web = svc('web');
    for (const endpointSlices of [[], [slice(web, [{ node: 'n1', ready: false }])]]) {
      assert.equal(l2Owners(world({ endpointSlices })).size, 0);
    }
    assert.equal(l2Owners(world({ endpointSlices: [slice(web, [{ node: 'n1', ready: null }])] })).size, 1, 'ready unset means ready');
    assert.equal(l2Owners(world({ endpointSlices: [slice(web, [{}])] })).size, 1, 'Cluster: an endpoint without nodeName counts');
  });

  it('externalTrafficPolicy Local: only nodes hosting a ready endpoint are candidates', () => {
    const web = svc('web', { local: true });
    for (const hosts of [['n2'], ['n3'], ['n1', 'n3']]) {
      const input = world({ services: [{ service: web, assignment: assignment(web, ['192.0.2.10']) }], endpointSlices: [slice(web, [...hosts.map((h) => ({ node: h })), { node: 'n2', ready: false }])] });
      const owner = l2Owners(input).get('192.0.2.10');
      assert.equal(owner?.length, 1);
      assert.ok(hosts.includes(owner![0]!), `${owner} hosts no endpoint (${hosts})`);
    }
  });

  it('dual-stack: both families land on one node', () => {
    for (let i = 0; i < 20; i++) {
      const web = svc(`web${i}`);
      const v4 = `192.0.2.${10 + i}`;
      const v6 = `2001:db8::${(10 + i).toString(16)}`;
      const input = world({
        services: [{ service: web, assignment: assignment(web, [v6, v4]) }],
        claims: [claim(v4, 'p', [{ svc: web }]), claim(v6, 'p', [{ svc: web }])],
        endpointSlices: [slice(web, [{ node: 'n1' }])],
      });
      const owners = l2Owners(input);
      assert.deepEqual(owners.get(v4), owners.get(v6), `${v4} / ${v6}`);
    }
  });

  it('a shared address (sharing key) is announced once, by the same node for every holder', () => {
    for (let i = 0; i < 10; i++) {
      const a = svc('a');
      const b = svc('b');
      const address = `192.0.2.${100 + i}`;
      const input = world({
        services: [
          { service: a, assignment: assignment(a, [address]) },
          { service: b, assignment: assignment(b, [address]) },
        ],
        claims: [claim(address, 'p', [{ svc: a }, { svc: b }], `key${i}`)],
        endpointSlices: [slice(a, [{ node: 'n1' }])],
      });
      const owners = l2Owners(input);
      assert.equal(owners.get(address)?.length, 1);
      const plan = planSpeaker({ ...input, nodeName: owners.get(address)![0]! });
      assert.deepEqual(plan.l2[0]!.services, ['default/a', 'default/b']);
      assert.equal(plan.elections[0]!.groupKey, `sharing:key${i}`);
    }
  });

  it('spreads addresses over the live nodes', () => {
    const services: ServiceInput[] = [];
    const claims: IPClaim[] = [];
    const endpointSlices: EndpointSliceObject[] = [];
    for (let i = 0; i < 60; i++) {
      const s = svc(`s${i}`);
      services.push({ service: s, assignment: assignment(s, [`192.0.2.${i + 1}`]) });
      claims.push(claim(`192.0.2.${i + 1}`, 'p', [{ svc: s }]));
      endpointSlices.push(slice(s, [{ node: 'n1' }]));
    }
    const owners = l2Owners(world({ services, claims, endpointSlices }));
    assert.equal(owners.size, 60);
    const counts = NODES.map((n) => [...owners.values()].filter((o) => o[0] === n).length);
    for (const c of counts) assert.ok(c >= 8, `unbalanced: ${counts}`);
  });
});

describe('speaker plan: advertisement selection', () => {
  it('no L2Advertisement selecting the pool: nothing over L2', () => {
    assert.equal(l2Owners(world({ l2Advertisements: [] })).size, 0);
    assert.equal(l2Owners(world({ l2Advertisements: [l2('x', { ipPools: ['other'] })] })).size, 0);
    assert.equal(l2Owners(world({ l2Advertisements: [l2('x', { ipPools: ['p'] })] })).size, 1);
  });

  it('pool label selectors, OR-ed with names', () => {
    const labelled = [poolObj('p', { tier: 'front' })];
    assert.equal(l2Owners(world({ pools: labelled, l2Advertisements: [l2('x', { ipPoolSelectors: [{ matchLabels: { tier: 'front' } }] })] })).size, 1);
    assert.equal(l2Owners(world({ pools: labelled, l2Advertisements: [l2('x', { ipPoolSelectors: [{ matchLabels: { tier: 'back' } }] })] })).size, 0);
    assert.equal(l2Owners(world({ pools: labelled, l2Advertisements: [l2('x', { ipPools: ['p'], ipPoolSelectors: [{ matchLabels: { tier: 'back' } }] })] })).size, 1);
    assert.equal(l2Owners(world({ pools: labelled, l2Advertisements: [l2('x', { ipPoolSelectors: [{ matchExpressions: [{ key: 'tier', operator: 'In', values: ['front', 'x'] }] }] })] })).size, 1);
  });

  it('node selectors restrict the candidates', () => {
    const nodes = [node('n1', { labels: { zone: 'a' } }), node('n2', { labels: { zone: 'b' } }), node('n3', { labels: { zone: 'b' } })];
    for (let i = 0; i < 10; i++) {
      const web = svc(`w${i}`);
      const input = world({
        nodes,
        services: [{ service: web, assignment: assignment(web, [`192.0.2.${i + 1}`]) }],
        claims: [claim(`192.0.2.${i + 1}`, 'p', [{ svc: web }])],
        endpointSlices: [slice(web, [{ node: 'n1' }])],
        l2Advertisements: [l2('b', { nodeSelectors: [{ matchLabels: { zone: 'b' } }] })],
      });
      const owner = l2Owners(input).get(`192.0.2.${i + 1}`)!;
      assert.ok(owner[0] === 'n2' || owner[0] === 'n3', String(owner));
    }
  });

  it('interfaces: any when one selecting advertisement leaves them open; the union otherwise; exclusions add up', () => {
    const plan = (advs: L2Advertisement[]) => {
      const owner = [...l2Owners(world({ l2Advertisements: advs })).values()][0]![0]!;
      return planSpeaker(world({ nodeName: owner, l2Advertisements: advs })).l2[0]!;
    };
    assert.deepEqual(plan([l2('a', { interfaces: ['eth1'] }), l2('b', { interfaces: ['bond*', 'eth1'], excludeInterfaces: ['eth9'] })]), {
      address: '192.0.2.10',
      services: ['default/web'],
      interfaces: ['eth1', 'bond*'],
      excludeInterfaces: ['eth9'],
    });
    const open = plan([l2('a', { interfaces: ['eth1'], excludeInterfaces: ['x*'] }), l2('b', {})]);
    assert.equal(open.interfaces, undefined);
    assert.deepEqual(open.excludeInterfaces, ['x*']);
  });
});

describe('speaker plan: BGP', () => {
  it('every eligible node announces to each selected peer, with the advertisement attributes; LOCAL_PREF on iBGP only', () => {
    const input = world({
      l2Advertisements: [],
      bgpPeers: [peer('ebgp'), peer('ibgp', { peerAddress: '198.51.100.253', peerASN: 64513 })],
      bgpAdvertisements: [bgpAdv('a', { communities: ['65000:1', 'no-export'], largeCommunities: ['64513:1:2'], localPref: 200 })],
    });
    for (const n of NODES) {
      const plan = planSpeaker({ ...input, nodeName: n });
      assert.deepEqual(plan.l2, []);
      assert.deepEqual(
        plan.bgp.map((p) => [p.name, p.routes]),
        [
          ['ebgp', [{ prefix: '192.0.2.10/32', addresses: ['192.0.2.10'], services: ['default/web'], communities: ['65000:1', 'no-export'], largeCommunities: ['64513:1:2'] }]],
          ['ibgp', [{ prefix: '192.0.2.10/32', addresses: ['192.0.2.10'], services: ['default/web'], communities: ['65000:1', 'no-export'], largeCommunities: ['64513:1:2'], localPref: 200 }]],
        ],
        n,
      );
    }
  });

  it('peers of the advertisement, peer node selectors, advertisement node selectors', () => {
    const nodes = [node('n1', { labels: { rack: 'r1' } }), node('n2', { labels: { rack: 'r2' } }), node('n3')];
    const input = world({
      nodes,
      bgpPeers: [peer('tor1', { nodeSelectors: [{ matchLabels: { rack: 'r1' } }] }), peer('tor2', { peerAddress: '198.51.100.253', nodeSelectors: [{ matchLabels: { rack: 'r2' } }] }), peer('core', { peerAddress: '198.51.100.252' })],
      bgpAdvertisements: [bgpAdv('to-core', { peers: ['core'], nodeSelectors: [{ matchExpressions: [{ key: 'rack', operator: 'Exists' }] }] }), bgpAdv('tors', { peers: ['tor1', 'tor2'] })],
    });
    const routes = (n: string) => Object.fromEntries(planSpeaker({ ...input, nodeName: n }).bgp.map((p) => [p.name, p.routes.map((r) => r.prefix)]));
    assert.deepEqual(routes('n1'), { core: ['192.0.2.10/32'], tor1: ['192.0.2.10/32'] });
    assert.deepEqual(routes('n2'), { core: ['192.0.2.10/32'], tor2: ['192.0.2.10/32'] });
    assert.deepEqual(routes('n3'), { core: [] }, 'session to core stays configured, nothing announced');
  });

  it('aggregation: addresses of one aggregate share a route; IPv6 by aggregationLengthV6', () => {
    const a = svc('a');
    const b = svc('b');
    const input = world({
      services: [
        { service: a, assignment: assignment(a, ['192.0.2.10', '2001:db8::10']) },
        { service: b, assignment: assignment(b, ['192.0.2.20']) },
      ],
      claims: [claim('192.0.2.10', 'p', [{ svc: a }]), claim('2001:db8::10', 'p', [{ svc: a }]), claim('192.0.2.20', 'p', [{ svc: b }])],
      endpointSlices: [slice(a, [{ node: 'n2' }]), slice(b, [{ node: 'n3' }])],
      bgpPeers: [peer('r')],
      bgpAdvertisements: [bgpAdv('agg', { aggregationLength: 24, aggregationLengthV6: 64, communities: ['65000:24'] }), bgpAdv('host', { communities: ['65000:32'] })],
    });
    const routes = planSpeaker(input).bgp[0]!.routes;
    assert.deepEqual(
      routes.map((r) => [r.prefix, r.addresses, r.services, r.communities]),
      [
        ['192.0.2.0/24', ['192.0.2.10', '192.0.2.20'], ['default/a', 'default/b'], ['65000:24']],
        ['192.0.2.10/32', ['192.0.2.10'], ['default/a'], ['65000:32']],
        ['192.0.2.20/32', ['192.0.2.20'], ['default/b'], ['65000:32']],
        ['2001:db8::/64', ['2001:db8::10'], ['default/a'], ['65000:24']],
        ['2001:db8::10/128', ['2001:db8::10'], ['default/a'], ['65000:32']],
      ],
    );
    assert.equal(aggregatePrefix(parseIP('203.0.113.77'), 28), '203.0.113.64/28');
    assert.equal(aggregatePrefix(parseIP('203.0.113.77'), 99), '203.0.113.77/32', 'invalid lengths fall back to a host route');
  });

  it('Local policy: only nodes with a ready local endpoint announce; the route goes with the last endpoint', () => {
    const web = svc('web', { local: true });
    const input = world({
      services: [{ service: web, assignment: assignment(web, ['192.0.2.10']) }],
      endpointSlices: [slice(web, [{ node: 'n2' }])],
      l2Advertisements: [],
      bgpPeers: [peer('r')],
      bgpAdvertisements: [bgpAdv('a')],
    });
    const has = (inp: PlanInput, n: string) => planSpeaker({ ...inp, nodeName: n }).bgp[0]!.routes.length > 0;
    assert.deepEqual(NODES.filter((n) => has(input, n)), ['n2']);
    assert.deepEqual(NODES.filter((n) => has({ ...input, endpointSlices: [slice(web, [{ node: 'n2', ready: false }])] }, n)), []);
  });

  it('BGP does not need a live lease, but needs an eligible node', () => {
    const input = world({ liveNodes: new Set(), bgpPeers: [peer('r')], bgpAdvertisements: [bgpAdv('a')], l2Advertisements: [] });
    assert.equal(planSpeaker(input).bgp[0]!.routes.length, 1);
    assert.equal(planSpeaker({ ...input, nodes: [node('n1', { ready: false })] }).bgp[0]!.routes.length, 0);
  });

  it('externalIPs routed by BGP are bound locally; those held on an L2 interface are not', () => {
    const s = svc('ext', { type: 'ClusterIP', externalIPs: ['192.0.2.50'] });
    const input = world({
      services: [{ service: s, assignment: assignment(s, [], ['192.0.2.50']) }],
      claims: [claim('192.0.2.50', 'p', [{ svc: s, use: 'ExternalIP' }])],
      endpointSlices: [slice(s, [{ node: 'n1' }])],
      bgpPeers: [peer('r')],
      bgpAdvertisements: [bgpAdv('a')],
    });
    const l2Owner = l2Owners(input).get('192.0.2.50')![0]!;
    for (const n of NODES) {
      const plan = planSpeaker({ ...input, nodeName: n });
      assert.deepEqual(plan.local.map((b) => b.address), n === l2Owner ? [] : ['192.0.2.50'], n);
    }
    assert.deepEqual(planSpeaker({ ...input, l2Advertisements: [] }).local, [{ address: '192.0.2.50', services: ['default/ext'] }]);
  });
});

describe('speaker plan: determinism', () => {
  it('the same plan whatever the order of the inputs', () => {
    const services: ServiceInput[] = [];
    const claims: IPClaim[] = [];
    const endpointSlices: EndpointSliceObject[] = [];
    for (let i = 0; i < 15; i++) {
      const s = svc(`s${i}`, { local: i % 3 === 0 });
      services.push({ service: s, assignment: assignment(s, [`192.0.2.${i + 1}`, `2001:db8::${i + 1}`]) });
      claims.push(claim(`192.0.2.${i + 1}`, 'p', [{ svc: s }]), claim(`2001:db8::${i + 1}`, 'p', [{ svc: s }]));
      endpointSlices.push(slice(s, [{ node: NODES[i % 3] }]));
    }
    const input = world({ services, claims, endpointSlices, bgpPeers: [peer('r'), peer('q', { peerAddress: '198.51.100.9' })], bgpAdvertisements: [bgpAdv('a'), bgpAdv('b', { aggregationLength: 28 })], l2Advertisements: [l2('x'), l2('y', { interfaces: ['eth0'] })] });
    const shuffle = <T>(xs: T[], seed: number) => xs.map((x, i) => [((i + 1) * 2654435761 * seed) % 1000, x] as const).sort((a, b) => a[0] - b[0]).map((p) => p[1]);
    const ref = JSON.stringify(planSpeaker(input));
    for (let seed = 1; seed < 6; seed++) {
      const shuffled: PlanInput = {
        ...input,
        nodes: shuffle(input.nodes, seed),
        services: shuffle(input.services, seed),
        claims: shuffle(input.claims, seed),
        endpointSlices: shuffle(input.endpointSlices, seed),
        bgpPeers: shuffle(input.bgpPeers, seed),
        bgpAdvertisements: shuffle(input.bgpAdvertisements, seed),
        l2Advertisements: shuffle(input.l2Advertisements, seed),
      };
      assert.equal(JSON.stringify(planSpeaker(shuffled)), ref, `seed ${seed}`);
    }
  });
});

describe('speaker plan: heartbeat mode (membership from the API, live set from heartbeats, quorum per election)', () => {
  // Each node plans from its own view (who it hears); endpoints on every node, so all are candidates.
  function announcers(heard: Record<string, string[]>): string[] | undefined {
    const web = world().services[0]!.service;
    const out: string[] = [];
    for (const [self, h] of Object.entries(heard)) {
      const plan = planSpeaker({ ...world({ endpointSlices: [slice(web, NODES.map((n) => ({ node: n })))] }), nodeName: self, memberNodes: new Set(NODES), liveNodes: new Set(h) });
      assert.deepEqual(plan.elections.find((x) => x.address === '192.0.2.10')!.known, NODES, 'known candidates come from the membership');
      if (plan.l2.some((a) => a.address === '192.0.2.10')) out.push(self);
    }
    return out.length ? out : undefined;
  }
  const owner = ownerOf(groupKeyFor({ namespace: 'default', name: 'web', addresses: ['192.0.2.10'] }), NODES)!;
  const [o1, o2] = NODES.filter((n) => n !== owner) as [string, string];
  const others = [o1, o2];
  const cases: [string, Record<string, string[]>, (o: string[] | undefined) => void][] = [
    ['everybody hears everybody: the hash owner announces', Object.fromEntries(NODES.map((n) => [n, NODES])), (o) => assert.deepEqual(o, [owner])],
    [
      'the owner hears nobody (its link is down): it drops the address and one of the others takes it',
      { [owner]: [owner], [o1]: others, [o2]: others },
      (o) => assert.deepEqual(o, [ownerOf(groupKeyFor({ namespace: 'default', name: 'web', addresses: ['192.0.2.10'] }), others)]),
    ],
    [
      'a non-owner hears nobody: it takes nothing (the others still agree on the owner)',
      { [o1]: [o1], [owner]: [owner, o2], [o2]: [owner, o2] },
      (o) => assert.deepEqual(o, [owner]),
    ],
    ['every node hears nobody (segment down): nobody announces', Object.fromEntries(NODES.map((n) => [n, [n]])), (o) => assert.equal(o, undefined)],
  ];
  for (const [name, heard, check] of cases) {
    it(name, () => check(announcers(heard)));
  }

  it('a member that is not heard is no candidate; a heard node that is not a member neither', () => {
    const plan = planSpeaker({ ...world(), memberNodes: new Set(['n1', 'n2']), liveNodes: new Set(['n1', 'n3']) });
    const e = plan.elections[0]!;
    assert.deepEqual(e.known, ['n1', 'n2']);
    assert.deepEqual(e.candidates, ['n1']);
    assert.equal(e.quorum, true, 'half of two, with the lowest name');
    assert.equal(e.owner, 'n1');
  });
});

describe('speaker plan: node preference', () => {
  // Six nodes: n1, n2 labelled tier=gold (weight 100), n3 tier=silver (weight 10), n4..n6 none (0).
  const NODES6 = ['n1', 'n2', 'n3', 'n4', 'n5', 'n6'];
  const TIERS: Record<string, string> = { n1: 'gold', n2: 'gold', n3: 'silver' };
  const preference = [
    { nodeSelector: { matchLabels: { tier: 'gold' } }, weight: 100 },
    { nodeSelector: { matchLabels: { tier: 'silver' } }, weight: 10 },
  ];
  const key = groupKeyFor({ namespace: 'default', name: 'web', addresses: ['192.0.2.10'] });
  const world6 = (live: string[], over: Partial<PlanInput> = {}) =>
    world({
      nodes: NODES6.map((n) => node(n, { labels: TIERS[n] ? { tier: TIERS[n] } : {} })),
      liveNodes: new Set(live),
      l2Advertisements: [l2('pref', { nodePreference: preference })],
      ...over,
    });
  const l2Owner = (input: PlanInput) => {
    const owners = l2Owners(input).get('192.0.2.10') ?? [];
    assert.ok(owners.length <= 1, `at most one owner, got ${owners.join(',')}`);
    return owners[0];
  };
  const bgpAnnouncers = (input: PlanInput) => NODES6.filter((n) => input.liveNodes.has(n) && planSpeaker({ ...input, nodeName: n }).bgp[0]!.routes.length > 0);

  // Failover chain: the rows are table-driven; `expect` is computed by the hash over the tier that must win.
  const cases: [string, string[], string[]][] = [
    ['every node live: the owner is the hash winner among the gold nodes', NODES6, ['n1', 'n2']],
    ['one gold node dead: the other gold node', NODES6.filter((n) => n !== 'n1'), ['n2']],
    ['the other gold node dead: the first one', NODES6.filter((n) => n !== 'n2'), ['n1']],
    ['both gold nodes dead: the silver node, next preferred', ['n3', 'n4', 'n5', 'n6'], ['n3']],
    ['every preferred node dead: a backup, by the hash among the rest', ['n4', 'n5', 'n6'], ['n4', 'n5', 'n6']],
    ['a gold node comes back: it takes the address again', ['n2', 'n4', 'n5', 'n6'], ['n2']],
  ];
  for (const [name, live, tier] of cases) {
    it(`L2: ${name}`, () => {
      assert.equal(l2Owner(world6(live)), ownerOf(key, tier));
    });
  }

  it('L2: the election records the tier it elected among; without a preference the hash alone decides', () => {
    const e = planSpeaker(world6(NODES6)).elections[0]!;
    assert.deepEqual(e.preferred, ['n1', 'n2']);
    assert.deepEqual(e.candidates, NODES6);
    const plain = world6(NODES6, { l2Advertisements: [l2('plain')] });
    assert.equal(l2Owner(plain), ownerOf(key, NODES6));
    assert.equal(planSpeaker(plain).elections[0]!.preferred, undefined);
  });

  it('L2: preference never makes an ineligible node a candidate (Local policy, node selectors)', () => {
    const web = svc('web', { local: true });
    const local = world6(NODES6, {
      services: [{ service: web, assignment: assignment(web, ['192.0.2.10']) }],
      claims: [claim('192.0.2.10', 'p', [{ svc: web }])],
      endpointSlices: [slice(web, [{ node: 'n3' }, { node: 'n5' }])],
    });
    assert.equal(l2Owner(local), 'n3', 'silver beats no tier among the endpoint nodes');
    const selected = world6(NODES6, { l2Advertisements: [l2('pref', { nodePreference: preference, nodeSelectors: [{ matchExpressions: [{ key: 'tier', operator: 'DoesNotExist' }] }] })] });
    assert.equal(l2Owner(selected), ownerOf(key, ['n4', 'n5', 'n6']));
  });

  it('L2: with two advertisements for the pool a node takes its highest weight among those that select it', () => {
    const input = world6(NODES6, {
      l2Advertisements: [l2('pref', { nodePreference: preference }), l2('boost-n5', { nodeSelectors: [{ matchLabels: { 'kubernetes.io/hostname': 'n5' } }], nodePreference: [{ nodeSelector: { matchLabels: {} }, weight: 500 }] })],
    });
    assert.equal(l2Owner(input), 'n5');
  });

  it('L2: deterministic: every node computes the same owner whatever the input order', () => {
    for (const live of cases.map((c) => c[1])) {
      const input = world6(live);
      const shuffled = { ...input, nodes: [...input.nodes].reverse(), l2Advertisements: [...input.l2Advertisements].reverse() };
      const views = live.map((n) => planSpeaker({ ...(n.endsWith('2') ? shuffled : input), nodeName: n }).elections[0]!.owner);
      assert.equal(new Set(views).size, 1, `views ${views.join(',')}`);
      assert.equal(l2Owner(shuffled), l2Owner(input));
    }
  });

  const bgpWorld = (live: string[], local?: string[]) => {
    const web = svc('web', { local: local !== undefined });
    return world6(live, {
      services: [{ service: web, assignment: assignment(web, ['192.0.2.10']) }],
      claims: [claim('192.0.2.10', 'p', [{ svc: web }])],
      endpointSlices: [slice(web, (local ?? ['n1']).map((n) => ({ node: n })))],
      l2Advertisements: [],
      bgpAdvertisements: [bgpAdv('pref', { nodePreference: preference })],
      bgpPeers: [peer('rtr')],
    });
  };
  const bgpCases: [string, string[], string[]][] = [
    ['every node live: only the gold nodes announce', NODES6, ['n1', 'n2']],
    ['one gold node dead: the other one alone', ['n2', 'n3', 'n4'], ['n2']],
    ['no gold node: the silver node', ['n3', 'n4', 'n5'], ['n3']],
    ['no preferred node: every backup', ['n4', 'n5', 'n6'], ['n4', 'n5', 'n6']],
  ];
  for (const [name, live, expect] of bgpCases) {
    it(`BGP: ${name}`, () => assert.deepEqual(bgpAnnouncers(bgpWorld(live)), expect));
  }

  it('BGP: Local policy: the preference applies among the nodes with a ready endpoint', () => {
    assert.deepEqual(bgpAnnouncers(bgpWorld(NODES6, ['n2', 'n3', 'n4'])), ['n2']);
    assert.deepEqual(bgpAnnouncers(bgpWorld(NODES6, ['n4', 'n5'])), ['n4', 'n5']);
  });
});

describe('speaker plan: BGPPeer nodeOverrides', () => {
  const overrides = [
    { nodeName: 'n2', sourceAddress: '198.51.100.2', routerID: '192.0.2.2' },
    { nodeSelector: { matchLabels: { rack: 'b' } }, routerID: '192.0.2.200' },
    { nodeSelector: { matchLabels: {} }, sourceAddress: '198.51.100.99' },
  ];
  const input = world({
    nodes: [node('n1'), node('n2', { labels: { rack: 'b' } }), node('n3', { labels: { rack: 'b' } })],
    bgpPeers: [peer('rtr', { sourceAddress: '198.51.100.1', routerID: '192.0.2.1', nodeOverrides: overrides })],
  });
  const specOn = (n: string) => planSpeaker({ ...input, nodeName: n }).bgp[0]!.spec;
  it('the first entry that names or selects the node wins; fields it leaves unset keep the spec values', () => {
    assert.deepEqual([specOn('n2').sourceAddress, specOn('n2').routerID], ['198.51.100.2', '192.0.2.2'], 'by name, before the selector');
    assert.deepEqual([specOn('n3').sourceAddress, specOn('n3').routerID], ['198.51.100.1', '192.0.2.200'], 'rack b: router ID only');
    assert.deepEqual([specOn('n1').sourceAddress, specOn('n1').routerID], ['198.51.100.99', '192.0.2.1'], 'the catch-all selector');
  });
  it('the session spec carries no nodeOverrides, so another node entry changing does not reopen it', () => {
    assert.equal('nodeOverrides' in specOn('n1'), false);
    const changed = { ...input, bgpPeers: [peer('rtr', { sourceAddress: '198.51.100.1', routerID: '192.0.2.1', nodeOverrides: [{ ...overrides[0]!, routerID: '192.0.2.22' }, ...overrides.slice(1)] })] };
    assert.deepEqual(planSpeaker({ ...changed, nodeName: 'n3' }).bgp[0]!.spec, specOn('n3'));
  });
});
