// The speaker's configuration kinds through kubectl: the validating webhook checks each object and
// its references to pools and peers (the webhook's caches follow the API).
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { pool, startCluster, until, type E2eCluster } from './cluster-helpers.ts';

let c: E2eCluster;
before(async () => {
  c = await startCluster('speaker-config');
  assert.equal((await c.apply(pool('edge', { addresses: ['198.51.100.0/28'] }))).code, 0);
  await c.waitForPool('edge');
});
after(async () => {
  await c?.close();
});

const peer = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'admitlb.io/v1alpha1', kind: 'BGPPeer', metadata: { name }, spec });
const adv = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'admitlb.io/v1alpha1', kind: 'BGPAdvertisement', metadata: { name }, spec });

it('a BGPAdvertisement may name existing pools and peers; unknown ones and bad timers are denied', async () => {
  const ok = await c.apply(peer('tor', { peerAddress: '192.0.2.1', peerASN: 64512, myASN: 64513 }));
  assert.equal(ok.code, 0, ok.stderr);
  // The webhook's informer sees the new peer a few milliseconds later.
  const applied = await until('the webhook knows BGPPeer tor', async () => {
    const r = await c.apply(adv('edge', { ipPools: ['edge'], peers: ['tor'], aggregationLength: 32, communities: ['64512:100'] }));
    return r.code === 0 ? r : undefined;
  });
  assert.match(applied.stdout, /bgpadvertisement\.admitlb\.io\/edge created/);
  const unknown = await c.apply(adv('bad', { ipPools: ['nope'], peers: ['tor'] }));
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /speaker-config\.admitlb\.io.*spec\.ipPools\[0\].*IPPool "nope"/s);
  const hold = await c.apply(peer('fast', { peerAddress: '192.0.2.2', peerASN: 64512, myASN: 64513, holdTime: 2 }));
  assert.notEqual(hold.code, 0);
  assert.match(hold.stderr, /spec\.holdTime/);
  const aggregation = await c.apply(adv('wide', { ipPools: ['edge'], aggregationLength: 24 }));
  assert.notEqual(aggregation.code, 0);
  assert.match(aggregation.stderr, /aggregationLength/);
  const list = await c.kubectl(['get', 'bgppeers']);
  assert.match(list.stdout, /tor\s+192\.0\.2\.1\s+64512\s+64513/);
});
