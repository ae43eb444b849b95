// The controller's claim decisions around the commit phase and the one quota rule:
// a holder committed by the validating webhook whose Service is not in the cache yet waits the grace
// instead of going at once; a holder of another object of the same name is not adopted; the controller counts a
// namespace's addresses exactly as the webhook does, in-flight claims ranked last.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { overQuota, planClaims, type ServiceView } from '../../src/controller/plan.ts';
import { claim, index, model } from '../helpers/state.ts';

function view(name: string, o: { uid?: string; ips?: string[]; pool?: string; at?: number; ns?: string } = {}): ServiceView {
  const ns = o.ns ?? 'default';
  return {
    key: `${ns}/${name}`,
    namespace: ns,
    name,
    service: { metadata: { name, namespace: ns, uid: o.uid ?? `uid-${name}`, creationTimestamp: new Date((o.at ?? 0) * 1000).toISOString() }, spec: { type: 'LoadBalancer' } },
    ...(o.ips ? { assignment: { namespace: ns, name, ips: o.ips, pool: o.pool ?? 'p', externalIPs: [] } } : {}),
  };
}
const views = (...v: ServiceView[]) => new Map(v.map((x) => [x.key, x]));
const plan = (claims: ReturnType<typeof claim>[], services: Map<string, ServiceView>, o: { now?: number; since?: Map<string, number>; deleted?: string[] } = {}) =>
  planClaims(index(claims).all(), services, o.since ?? new Map(), o.now ?? 0, 60_000, 5_000, new Set(o.deleted ?? [])).actions.map((a) => (a.kind === 'adopt' ? `adopt ${a.name} ${a.uid}` : `release ${a.name}: ${a.why}`));

describe('planClaims', () => {
  const committed = claim('192.0.2.1', 'p', [{ name: 'web', uid: 'u1' }]);
  it('a committed holder whose Service is not in the cache (not stored yet, or a cache far behind) waits the grace, then goes', () => {
    const since = new Map<string, number>();
    assert.deepEqual(plan([committed], views(), { since, now: 0 }), []);
    assert.deepEqual(plan([committed], views(), { since, now: 59_999 }), []);
    assert.deepEqual(plan([committed], views(), { since, now: 60_000 }), ['release web: Service default/web was not stored']);
  });
  it('a holder whose Service the controller saw deleted goes at once', () => {
    assert.deepEqual(plan([committed], views(), { deleted: ['u1'] }), ['release web: Service default/web was deleted']);
  });
  it('the assignment of another object of the same name does not adopt the holder: it was replaced, released after the settle time', () => {
    const since = new Map<string, number>();
    const services = views(view('web', { uid: 'u2', ips: ['192.0.2.1'] }));
    assert.deepEqual(plan([committed], services, { since, now: 0 }), [], 'the cache may still show the object a delete-and-create replaced');
    assert.deepEqual(plan([committed], services, { since, now: 5_000 }), ['release web: Service default/web was replaced']);
  });
  it('an unconfirmed holder is adopted by the object whose assignment names the address', () => {
    assert.deepEqual(plan([claim('192.0.2.1', 'p', [{ name: 'web' }])], views(view('web', { uid: 'u2', ips: ['192.0.2.1'] }))), ['adopt web u2']);
  });
});

describe('overQuota counts as the webhook does', () => {
  const q = model('p', { addresses: ['192.0.2.0/28'], quota: { perNamespace: 1 } });
  const state = (claims: ReturnType<typeof claim>[]) => ({ pools: [q], claims: index(claims) });
  const cases: [string, ReturnType<typeof claim>[], Map<string, ServiceView>, string[]][] = [
    [
      'two stored Services over a quota of 1: the younger moves',
      [claim('192.0.2.1', 'p', [{ name: 'old', uid: 'uid-old' }]), claim('192.0.2.2', 'p', [{ name: 'young', uid: 'uid-young' }])],
      views(view('old', { at: 1, ips: ['192.0.2.1'] }), view('young', { at: 2, ips: ['192.0.2.2'] })),
      ['default/young'],
    ],
    [
      'a create in flight (no Service yet) never moves a stored Service',
      [claim('192.0.2.1', 'p', [{ name: 'stored', uid: 'uid-stored' }]), claim('192.0.2.0', 'p', [{ name: 'in-flight' }])],
      views(view('stored', { at: 1, ips: ['192.0.2.1'] })),
      [],
    ],
    [
      'a claim that lists a Service only by name (a replayed signature, another object) counts but does not rank it',
      [claim('192.0.2.1', 'p', [{ name: 'a', uid: 'uid-a' }]), claim('192.0.2.2', 'p', [{ name: 'b', uid: 'uid-gone' }])],
      views(view('a', { at: 2, ips: ['192.0.2.1'] }), view('b', { at: 1, ips: ['192.0.2.2'] })),
      [],
    ],
    ['another namespace is counted apart', [claim('192.0.2.1', 'p', [{ name: 'a', uid: 'uid-a' }]), claim('192.0.2.2', 'p', [{ namespace: 'other', name: 'a', uid: 'uid-a2' }])], views(view('a', { ips: ['192.0.2.1'] }), view('a', { ns: 'other', uid: 'uid-a2', ips: ['192.0.2.2'] })), []],
  ];
  for (const [what, claims, services, want] of cases) {
    it(what, () => assert.deepEqual([...overQuota(state(claims), services).keys()].sort(), want));
  }
});
