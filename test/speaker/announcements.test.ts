// NodeAnnouncement status (src/speaker/announcements.ts): the pure status from the data plane's
// state (sorted, `since` kept for what did not change, BGP sessions reduced to Established/Down so
// a retrying session writes nothing), and the writer: writes only on change, coalesces a burst into
// one write, creates the object when the patch finds none, retries failures, deletes on close.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { PeerStatus } from '../../src/bgp/index.ts';
import type { NodeAnnouncementStatus } from '../../src/config/schemas.ts';
import { AnnouncementWriter, MAX_ENTRIES, announcementStatus, collectAnnouncements, type AnnouncementInput, type NodeAnnouncementApi } from '../../src/speaker/announcements.ts';
import type { SpeakerPlan } from '../../src/speaker/plan.ts';

const T0 = new Date('2026-01-01T00:00:00.000Z');
const T1 = new Date('2026-01-01T00:00:10.000Z');

const peerStatus = (state: PeerStatus['state'], extra: Partial<PeerStatus> = {}): PeerStatus =>
  ({ address: '192.0.2.254', state, establishedAt: state === 'Established' ? new Date('2025-12-31T23:59:00.000Z') : null, lastError: null, bfd: null, ...extra }) as PeerStatus;

const input = (over: Partial<AnnouncementInput> = {}): AnnouncementInput => ({
  l2: [
    { address: '192.0.2.201', interface: 'eth0', services: ['default/b'] },
    { address: '192.0.2.200', interface: 'eth0', services: ['default/z', 'default/a'] },
  ],
  bgp: [
    { peer: 'tor-b', routes: [{ prefix: '203.0.113.0/24', addresses: ['203.0.113.5', '203.0.113.4'], services: ['ns/x', 'ns/y'] }] },
    { peer: 'tor-a', routes: [{ prefix: '203.0.113.0/24', addresses: ['203.0.113.4'], services: ['ns/x'] }] },
  ],
  sessions: [
    { peer: 'tor-b', peerAddress: '192.0.2.253', status: peerStatus('Active', { lastError: { direction: 'local', message: 'connect ECONNREFUSED', at: T0 } }) },
    { peer: 'tor-a', peerAddress: '192.0.2.254', status: peerStatus('Established', { bfd: { state: 'Up' } as PeerStatus['bfd'] }) },
  ],
  ...over,
});

describe('NodeAnnouncement status', () => {
  it('lists L2 addresses with interface and Services, BGP addresses with prefix and peers, sessions; sorted', () => {
    const s = announcementStatus(input(), undefined, T0);
    assert.deepEqual(s, {
      addresses: '192.0.2.200,192.0.2.201,203.0.113.4,203.0.113.5',
      sessions: '1/2',
      l2: [
        { address: '192.0.2.200', interface: 'eth0', services: ['default/a', 'default/z'], since: T0.toISOString() },
        { address: '192.0.2.201', interface: 'eth0', services: ['default/b'], since: T0.toISOString() },
      ],
      bgp: [
        { address: '203.0.113.4', prefix: '203.0.113.0/24', services: ['ns/x', 'ns/y'], peers: ['tor-a', 'tor-b'] },
        { address: '203.0.113.5', prefix: '203.0.113.0/24', services: ['ns/x', 'ns/y'], peers: ['tor-b'] },
      ],
      bgpSessions: [
        { peer: 'tor-a', peerAddress: '192.0.2.254', state: 'Established', since: '2025-12-31T23:59:00.000Z', bfd: 'Up' },
        { peer: 'tor-b', peerAddress: '192.0.2.253', state: 'Down', since: T0.toISOString(), lastError: 'connect ECONNREFUSED' },
      ],
    } satisfies NodeAnnouncementStatus);
  });

  it('keeps `since` of what did not change; a moved address or a changed session state gets a new one', () => {
    const first = announcementStatus(input(), undefined, T0);
    const same = announcementStatus(input(), first, T1);
    assert.deepEqual(same, first, 'nothing changed: the same status (no write), whatever the time');
    const moved = announcementStatus(
      input({
        l2: [{ address: '192.0.2.200', interface: 'eth1', services: ['default/a', 'default/z'] }, { address: '192.0.2.201', interface: 'eth0', services: ['default/b'] }],
        sessions: [{ peer: 'tor-b', peerAddress: '192.0.2.253', status: peerStatus('Established', { establishedAt: T1 }) }, { peer: 'tor-a', peerAddress: '192.0.2.254', status: peerStatus('Idle') }],
      }),
      first,
      T1,
    );
    assert.deepEqual(moved.l2!.map((a) => [a.address, a.interface, a.since]), [['192.0.2.200', 'eth1', T1.toISOString()], ['192.0.2.201', 'eth0', T0.toISOString()]]);
    assert.deepEqual(moved.bgpSessions!.map((s) => [s.peer, s.state, s.since]), [['tor-a', 'Down', T1.toISOString()], ['tor-b', 'Established', T1.toISOString()]]);
    assert.equal(moved.sessions, '1/2');
  });

  it('a session retrying (Idle → Connect → Active, same error) gives the same status', () => {
    const first = announcementStatus(input(), undefined, T0);
    for (const state of ['Idle', 'Connect', 'Active', 'OpenSent'] as const) {
      const next = announcementStatus(input({ sessions: [input().sessions[1]!, { peer: 'tor-b', peerAddress: '192.0.2.253', status: peerStatus(state, { lastError: { direction: 'local', message: 'connect ECONNREFUSED', at: T1 } }) }] }), first, T1);
      assert.deepEqual(next.bgpSessions, first.bgpSessions, state);
    }
  });

  it('large nodes: the lists are capped (the rest counted in omitted) and the printer column names 8 addresses', () => {
    const many = Array.from({ length: MAX_ENTRIES + 5 }, (_, i) => `2001:db8::${i.toString(16)}`);
    const s = announcementStatus(input({ l2: many.map((address) => ({ address, interface: 'eth0', services: ['default/a'] })), bgp: [] }), undefined, T0);
    assert.equal(s.l2!.length, MAX_ENTRIES);
    assert.equal(s.omitted, 5);
    assert.equal(s.addresses!.split(',').length, 8);
    assert.match(s.addresses!, / \(\+1997\)$/);
    assert.equal(announcementStatus(input(), undefined, T0).omitted, undefined);
  });

  it('collectAnnouncements: held L2 addresses with the plan\'s Services, routes only of peers that have a session', () => {
    const plan = {
      l2: [{ address: '192.0.2.200', services: ['default/a'], excludeInterfaces: [] }],
      bgp: [
        { name: 'tor-a', spec: { peerAddress: '192.0.2.254' }, routes: [{ prefix: '203.0.113.4/32', addresses: ['203.0.113.4'], services: ['ns/x'], communities: [], largeCommunities: [] }] },
        { name: 'tor-c', spec: { peerAddress: '192.0.2.252' }, routes: [{ prefix: '203.0.113.4/32', addresses: ['203.0.113.4'], services: ['ns/x'], communities: [], largeCommunities: [] }] },
      ],
    } as unknown as SpeakerPlan;
    const got = collectAnnouncements(plan, [{ address: '192.0.2.200', dev: 'eth0', kind: 'announce' }, { address: '198.51.100.1', dev: 'lo', kind: 'local' }], [{ name: 'tor-a', status: undefined }]);
    assert.deepEqual(got, {
      l2: [{ address: '192.0.2.200', interface: 'eth0', services: ['default/a'] }],
      bgp: [{ peer: 'tor-a', routes: [{ prefix: '203.0.113.4/32', addresses: ['203.0.113.4'], services: ['ns/x'] }] }],
      sessions: [{ peer: 'tor-a', peerAddress: '192.0.2.254', status: undefined }],
    });
  });
});

class FakeApi implements NodeAnnouncementApi {
  objects = new Map<string, { uid: string | undefined; status?: NodeAnnouncementStatus }>();
  calls: string[] = [];
  failNext = 0;
  async patchStatus(name: string, status: NodeAnnouncementStatus): Promise<boolean> {
    this.calls.push(`patch ${name}`);
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('HTTP 503');
    }
    const o = this.objects.get(name);
    if (!o) return false;
    o.status = structuredClone(status);
    return true;
  }
  async create(name: string, nodeUid: string | undefined): Promise<void> {
    this.calls.push(`create ${name}`);
    if (!this.objects.has(name)) this.objects.set(name, { uid: nodeUid });
  }
  async delete(name: string): Promise<void> {
    this.calls.push(`delete ${name}`);
    this.objects.delete(name);
  }
}

const quietLogger = { warn: () => {}, debug: () => {} };

describe('AnnouncementWriter', () => {
  it('creates the object once, then writes only on change; a burst of changes is one write', async () => {
    const api = new FakeApi();
    const w = new AnnouncementWriter({ nodeName: 'node-a', api, nodeUid: () => 'uid-a', logger: quietLogger, minIntervalMs: 100, settleMs: 20, clock: () => T0 });
    w.publish(input());
    await w.settled();
    assert.deepEqual(api.calls, ['patch node-a', 'create node-a', 'patch node-a']);
    assert.equal(api.objects.get('node-a')!.uid, 'uid-a', 'owned by its Node');
    assert.equal(api.objects.get('node-a')!.status!.addresses, '192.0.2.200,192.0.2.201,203.0.113.4,203.0.113.5');
    api.calls = [];
    for (let i = 0; i < 50; i++) w.publish(input());
    await w.settled();
    assert.deepEqual(api.calls, [], 'the same state again: no write');
    // Three changes in a row (a failover: withdraw, elect, announce) → one write of the last state.
    w.publish(input({ l2: [] }));
    w.publish(input({ l2: [{ address: '192.0.2.202', interface: 'eth0', services: ['default/c'] }] }));
    w.publish(input({ l2: [{ address: '192.0.2.202', interface: 'eth0', services: ['default/c', 'default/d'] }] }));
    await w.settled();
    assert.deepEqual(api.calls, ['patch node-a']);
    assert.deepEqual(api.objects.get('node-a')!.status!.l2!.map((a) => a.services.join()), ['default/c,default/d']);
    assert.equal(w.writes, 2);
    await w.close({ remove: true });
    assert.equal(api.objects.size, 0, 'graceful shutdown deletes the object');
    w.publish(input());
    await w.settled();
    assert.equal(api.objects.size, 0, 'nothing is written after close');
  });

  it('a failed write is retried until it succeeds, then it stops', async () => {
    const api = new FakeApi();
    api.objects.set('node-a', { uid: undefined });
    api.failNext = 1;
    const results: string[] = [];
    const w = new AnnouncementWriter({ nodeName: 'node-a', api, logger: quietLogger, minIntervalMs: 10, settleMs: 1, clock: () => T0, onWrite: (r) => results.push(r) });
    w.publish(input());
    await w.settled();
    assert.deepEqual(api.calls, ['patch node-a', 'patch node-a']);
    assert.deepEqual(results, ['failed', 'written']);
    assert.ok(api.objects.get('node-a')!.status);
    await w.close();
    assert.equal(api.objects.size, 1, 'close without remove keeps the object');
  });
});
