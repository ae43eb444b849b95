// `status` as a pure report: pool counts from the claims, conditions as the controller wrote them,
// announcements and BGP sessions from the speakers' NodeAnnouncements (only nodes whose speaker
// Lease is fresh; an L2 address listed by several nodes goes to the newest `since`; every BGP node
// listed), and the table rendering.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buildStatus, renderStatus, type KubeEvent } from '../../src/kubectl/status.ts';
import { renderTable } from '../../src/kubectl/common.ts';
import { claim, pool } from '../helpers/state.ts';
import type { NodeAnnouncement, NodeAnnouncementStatus } from '../../src/config/schemas.ts';

const NOW = new Date('2026-01-01T00:01:00.000Z');
const nodeAnnouncement = (node: string, status: NodeAnnouncementStatus): NodeAnnouncement => ({ metadata: { name: node }, spec: { nodeName: node }, status });
/** A speaker Lease renewed `ageMs` before NOW, lasting `durationMs` (the exact duration rides in an annotation). */
const lease = (node: string, ageMs: number, durationMs = 40_000) => ({
  metadata: { name: `admitlb-speaker-${node}`, namespace: 'admitlb-system', annotations: { 'admitlb.io/lease-duration-ms': String(durationMs) } },
  spec: { holderIdentity: node, leaseDurationSeconds: Math.ceil(durationMs / 1000), renewTime: new Date(NOW.getTime() - ageMs).toISOString() },
});

const announced = (ns: string, name: string, message: string, at: string, reason = 'nodeAssigned'): KubeEvent => ({
  involvedObject: { kind: 'Service', namespace: ns, name },
  reason,
  message,
  lastTimestamp: at,
});

const web = pool('web', { addresses: ['203.0.113.0/30', '2001:db8::/126'] });
const bad = pool('bad', { addresses: ['not-an-address'] });
const claims = [
  claim('203.0.113.1', 'web', [{ namespace: 'default', name: 'a', ports: [{ protocol: 'TCP', port: 80 }] }]),
  claim('203.0.113.2', 'web', [
    { namespace: 'default', name: 'b', ports: [{ protocol: 'TCP', port: 80 }] },
    { namespace: 'default', name: 'c', ports: [{ protocol: 'TCP', port: 443 }] },
  ], 'shared'),
];

describe('status report', () => {
  const report = buildStatus({
    pools: [web, { ...bad, status: { conditions: [] } }],
    claims,
    peers: [{ metadata: { name: 'tor' }, spec: { peerAddress: '192.0.2.254', peerASN: 64500, myASN: 64501 } }],
    events: [announced('default', 'b', 'BGP session to 192.0.2.254 (BGPPeer tor) not established: TCP MD5 signature missing', '2026-01-01T00:00:04Z', 'announceFailed')],
    nodeAnnouncements: [
      // n1 was killed: its Lease is still fresh, but n2 took 203.0.113.1 over after it (newer since).
      nodeAnnouncement('n1', {
        l2: [{ address: '203.0.113.1', interface: 'eth0', services: ['default/a'], since: '2026-01-01T00:00:01.000Z' }],
        bgp: [{ address: '203.0.113.2', prefix: '203.0.113.2/32', services: ['default/b', 'default/c'], peers: ['tor'] }],
        bgpSessions: [{ peer: 'tor', peerAddress: '192.0.2.254', state: 'Established', since: '2026-01-01T00:00:00.000Z', bfd: 'Up' }],
      }),
      nodeAnnouncement('n2', { l2: [{ address: '203.0.113.1', interface: 'eth1', services: ['default/a'], since: '2026-01-01T00:00:05.000Z' }], bgp: [], bgpSessions: [] }),
      nodeAnnouncement('n3', {
        bgp: [{ address: '203.0.113.2', prefix: '203.0.113.2/32', services: ['default/b'], peers: ['tor'] }],
        bgpSessions: [{ peer: 'tor', peerAddress: '192.0.2.254', state: 'Down', since: '2026-01-01T00:00:03.000Z', lastError: 'TCP MD5 signature missing' }],
      }),
      // n4's speaker is gone (Lease lapsed) and n5 never had one: their reports are ignored.
      nodeAnnouncement('n4', { l2: [{ address: '203.0.113.3', interface: 'eth0', services: ['default/gone'], since: '2026-01-01T00:00:30.000Z' }] }),
      nodeAnnouncement('n5', { l2: [{ address: '203.0.113.1', interface: 'eth0', services: ['default/a'], since: '2026-01-01T00:00:50.000Z' }] }),
    ],
    leases: [lease('n1', 20_000), lease('n2', 1000), lease('n3', 9000), lease('n4', 1600, 1500)],
    now: NOW,
  });

  it('counts use per family from the claims; an invalid pool says why', () => {
    const w = report.pools.find((p) => p.name === 'web')!;
    assert.deepEqual(w.capacity, { ipv4: '4', ipv6: '4' });
    assert.deepEqual(w.inUse, { ipv4: '2', ipv6: '0' });
    const b = report.pools.find((p) => p.name === 'bad')!;
    assert.ok(b.invalid, 'an uncompilable pool is reported invalid');
    assert.deepEqual(b.capacity, {});
  });

  it('claims list every holder; announcements: newest L2 node, every BGP node, nodes without a fresh speaker Lease ignored', () => {
    assert.deepEqual(report.claims.map((c) => [c.address, c.holders.map((h) => h.service).join(), c.sharingKey]), [
      ['203.0.113.1', 'default/a', undefined],
      ['203.0.113.2', 'default/b,default/c', 'shared'],
    ]);
    assert.deepEqual(
      report.announcements.items.map((a) => [a.address, a.node, a.protocol, a.via, a.services.join()]),
      [
        ['203.0.113.1', 'n2', 'L2', 'eth1', 'default/a'],
        ['203.0.113.2', 'n1', 'BGP', '203.0.113.2/32 to tor', 'default/b,default/c'],
        ['203.0.113.2', 'n3', 'BGP', '203.0.113.2/32 to tor', 'default/b'],
      ],
    );
    assert.deepEqual(report.announcements.notLive, ['n4', 'n5']);
    assert.equal(report.bgp.problems.length, 1);
    assert.deepEqual(report.bgp.sessions.map((s) => [s.node, s.peer, s.state, s.bfd, s.lastError]), [
      ['n1', 'tor', 'Established', 'Up', undefined],
      ['n3', 'tor', 'Down', undefined, 'TCP MD5 signature missing'],
    ]);
  });

  it('renders tables with the source of the announcements named', () => {
    const text = renderStatus(report);
    assert.match(text, /^POOLS\nNAME +ADDRESSES +AUTO +IPV4 USED\/CAP +IPV6 USED\/CAP +CONDITIONS\n/);
    assert.match(text, /\nweb +203\.0\.113\.0\/30,2001:db8::\/126 +yes +2\/4 +0\/4 +\(none yet\)\n/);
    assert.match(text, /\n203\.0\.113\.2 +web +default\/b \(LoadBalancer 80\/TCP\), default\/c \(LoadBalancer 443\/TCP\) \[sharing key shared\]\n/);
    assert.match(text, /ANNOUNCEMENTS \(from the speakers' NodeAnnouncements/);
    assert.match(text, /\n203\.0\.113\.1 +n2 +L2 +eth1 +default\/a +2026-01-01T00:00:05\.000Z\n/);
    assert.match(text, /\n203\.0\.113\.2 +n3 +BGP +203\.0\.113\.2\/32 to tor +default\/b\n/);
    assert.match(text, /ignored \(no fresh speaker Lease\): n4, n5\n/);
    assert.match(text, /\nBGP SESSIONS \(per node\)\nNODE +PEER +PEER ADDRESS +STATE +SINCE +BFD +LAST ERROR\nn1 +tor +192\.0\.2\.254 +Established +2026-01-01T00:00:00\.000Z +Up\nn3 +tor +192\.0\.2\.254 +Down +2026-01-01T00:00:03\.000Z +TCP MD5 signature missing\n/);
    assert.match(text, /\ntor +192\.0\.2\.254 +64500 +64501\n/);
    assert.match(text, /TCP MD5 signature missing/);
  });

  it('an empty cluster says what is missing rather than printing empty tables', () => {
    const text = renderStatus(buildStatus({ pools: [], claims: [], events: [], peers: [] }));
    assert.match(text, /no IPPools: Services of type LoadBalancer are denied until one exists/);
    assert.match(text, /no IPClaims/);
    assert.match(text, /no BGPPeers configured/);
  });
});

describe('status: Services without an address', () => {
  it('lists admitlb LoadBalancer Services with no assigned address, with the newest AllocationFailed Event', () => {
    const svc = (name: string, o: { cls?: string; type?: string; ips?: string } = {}) => ({
      metadata: { name, namespace: 'default', ...(o.ips ? { annotations: { 'admitlb.io/assigned-ips': o.ips } } : {}) },
      spec: { type: (o.type ?? 'LoadBalancer') as 'LoadBalancer', ...(o.cls ? { loadBalancerClass: o.cls } : {}) },
    });
    const report = buildStatus({
      pools: [web],
      claims,
      peers: [],
      services: [svc('a', { ips: '203.0.113.1' }), svc('waiting'), svc('quiet'), svc('other', { cls: 'example.com/lb' }), svc('plain', { type: 'ClusterIP' })],
      events: [
        announced('default', 'waiting', 'No address assigned: old', '2026-01-01T00:00:01Z', 'AllocationFailed'),
        announced('default', 'waiting', 'No address assigned: spec.type: cannot allocate an IPv4 address: IPPool "web" has no free IPv4 address', '2026-01-01T00:00:09Z', 'AllocationFailed'),
      ],
    });
    assert.deepEqual(report.pending, [
      { service: 'default/quiet', reason: 'no AllocationFailed Event (the controller has not looked yet, or its Event expired)' },
      { service: 'default/waiting', reason: 'No address assigned: spec.type: cannot allocate an IPv4 address: IPPool "web" has no free IPv4 address' },
    ]);
    assert.match(renderStatus(report), /\nPENDING \(LoadBalancer Services without an address; kubectl admitlb explain svc\/NAME -n NS says why\)\nSERVICE +LAST ALLOCATIONFAILED EVENT\ndefault\/quiet +no AllocationFailed/);
  });
});

describe('renderTable', () => {
  it('pads every column but the last, three spaces apart, no trailing blanks', () => {
    assert.equal(renderTable(['A', 'LONGER'], [['xxxx', 'y'], ['z', '']]), 'A      LONGER\nxxxx   y\nz\n');
  });
});
