// The metric that makes "an address nobody announces" computable on the webhook/controller side:
// admitlb_address_assigned lists confirmed holders only (its speaker counterpart,
// admitlb_speaker_address_announced, is asserted in the speaker lab tests).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createWebhookMetrics } from '../../src/webhook/metrics.ts';
import { parseIP } from '../../src/allocation/addresses.ts';
import { claim, index, model } from '../helpers/state.ts';

describe('admitlb_address_assigned', () => {
  it('one series per confirmed holder; unconfirmed holders and removed claims are not listed', async () => {
    const claims = index([
      claim('203.0.113.10', 'web', [{ namespace: 'shop', name: 'front', uid: 'u1' }]),
      // A shared address: two confirmed holders.
      claim('203.0.113.11', 'web', [{ namespace: 'shop', name: 'a', uid: 'u2' }, { namespace: 'shop', name: 'b', uid: 'u3' }], 'k'),
      // An admission in flight (no uid yet): not an assignment.
      claim('203.0.113.12', 'web', [{ namespace: 'shop', name: 'pending' }]),
      claim('2001:db8::10', 'web', [{ namespace: 'shop', name: 'ext', uid: 'u4', use: 'ExternalIP' }]),
    ]);
    const m = createWebhookMetrics({ pools: [model('web', { addresses: ['203.0.113.0/24', '2001:db8::/64'] })], claims });
    const text = await m.registry.metrics();
    const series = text.split('\n').filter((l) => l.startsWith('admitlb_address_assigned{')).sort();
    assert.deepEqual(series, [
      'admitlb_address_assigned{address="2001:db8::10",pool="web",service="shop/ext",use="ExternalIP"} 1',
      'admitlb_address_assigned{address="203.0.113.10",pool="web",service="shop/front",use="LoadBalancer"} 1',
      'admitlb_address_assigned{address="203.0.113.11",pool="web",service="shop/a",use="LoadBalancer"} 1',
      'admitlb_address_assigned{address="203.0.113.11",pool="web",service="shop/b",use="LoadBalancer"} 1',
    ]);
    // Collected at scrape time: a released claim disappears from the next scrape.
    claims.remove(claims.get(parseIP('203.0.113.10'))!.name);
    assert.doesNotMatch(await m.registry.metrics(), /address="203\.0\.113\.10"/);
  });
});
