// LiveSet: lease freshness judged on the local clock since the last observed change (client-go style).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LiveSet } from '../../src/speaker/liveness.ts';

const lease = (node: string, rv: string, duration = 3, name = `admitlb-speaker-${node}`) => ({
  metadata: { name, resourceVersion: rv },
  spec: { holderIdentity: node, leaseDurationSeconds: duration, renewTime: '2020-01-01T00:00:00.000000Z' },
});

describe('speaker LiveSet', () => {
  it('a lease is fresh for its duration after the last observed change, whatever its renewTime says', () => {
    let now = 1000;
    const live = new LiveSet(() => now);
    live.observe(lease('a', '1'));
    live.observe(lease('b', '1'));
    assert.deepEqual([...live.live()].sort(), ['a', 'b']);
    assert.equal(live.nextExpiry(), 4000);
    now = 3500;
    live.observe(lease('a', '2')); // renewed
    live.observe(lease('b', '1')); // the same version seen again: no renewal
    now = 4000;
    assert.deepEqual([...live.live()], ['a']);
    assert.equal(live.nextExpiry(), 6500);
    now = 6500;
    assert.deepEqual([...live.live()], []);
    assert.equal(live.nextExpiry(), undefined);
  });

  it('deleted leases leave at once; foreign or released leases never count', () => {
    const live = new LiveSet(() => 0);
    live.observe(lease('a', '1'));
    live.forget(lease('a', '1'));
    assert.deepEqual([...live.live()], []);
    assert.equal(live.observe(lease('x', '1', 3, 'admitlb-controller')), false);
    assert.equal(live.observe({ metadata: { name: 'admitlb-speaker-y', resourceVersion: '1' }, spec: { holderIdentity: '' } }), false);
    assert.deepEqual([...live.live()], []);
  });

  it('the exact duration a speaker promised (admitlb.io/lease-duration-ms) beats the whole-second field', () => {
    let now = 0;
    const live = new LiveSet(() => now);
    const l = lease('a', '1', 2);
    live.observe({ ...l, metadata: { ...l.metadata, annotations: { 'admitlb.io/lease-duration-ms': '1500' } } });
    now = 1499;
    assert.deepEqual([...live.live()], ['a']);
    now = 1500;
    assert.deepEqual([...live.live()], []);
    const bad = lease('b', '1', 2);
    live.observe({ ...bad, metadata: { ...bad.metadata, annotations: { 'admitlb.io/lease-duration-ms': 'soon' } } });
    now = 3400;
    assert.deepEqual([...live.live()], ['b'], 'an unreadable annotation falls back to leaseDurationSeconds');
  });
});
