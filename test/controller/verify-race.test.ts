// The controller verifies assignments asynchronously (WebCrypto on the thread pool). A Service that
// changes while its signature is being verified must keep its verified assignment: found on the real
// control plane, where such updates land inside that window under load, and the controller then
// "converged" valid assignments to other addresses.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import type { KeySet } from '../../src/signing/assignment.ts';
import { claim, pool, testKeys } from '../helpers/state.ts';
import { observed, run, signed, svc } from './harness.ts';

let keys: KeySet;
before(async () => {
  keys = (await testKeys()).keys;
});

/** Keys whose verifyKey, which runs synchronously just before verification awaits, fires `inject` once. */
function racingKeys(): KeySet & { inject: (() => void) | undefined } {
  const k = {
    ...keys,
    inject: undefined as (() => void) | undefined,
    verifyKey: (kid: string) => {
      const fire = k.inject;
      k.inject = undefined;
      fire?.();
      return keys.verifyKey(kid);
    },
  };
  return k;
}

test('an update that arrives while the signature is verified keeps the assignment', async () => {
  const web = pool('web', { addresses: ['203.0.113.0/30'] });
  const held = { namespace: 'default', name: 'a', uid: 'uid-default-a', ports: [{ protocol: 'TCP' as const, port: 80 }] };
  const service = await signed(keys, svc('a'), ['203.0.113.2'], 'web');
  const updated = { ...service, metadata: { ...service.metadata, labels: { team: 'blue' } } };
  // verifyKey runs synchronously inside verification, just before the await: the update lands there.
  const racing = racingKeys();
  const r = await run(racing, { pools: [web], claims: [claim('203.0.113.2', 'web', [held])], services: [] });
  try {
    racing.inject = () => r.cluster.setService(updated);
    r.cluster.setService(service);
    await r.converge();
    assert.equal(racing.inject, undefined, 'the update was injected during verification');
    const o = observed(r.cluster);
    assert.deepEqual(o.services['default/a'], { ips: '203.0.113.2', pool: 'web', status: '203.0.113.2' });
    assert.deepEqual(Object.keys(o.claims), ['203.0.113.2'], 'no second address claimed');
  } finally {
    await r.close();
  }
});

test('a Service added while another signature is verified is not taken for unsigned', async () => {
  const web = pool('web', { addresses: ['203.0.113.0/30'] });
  const holder = (name: string) => ({ namespace: 'default', name, uid: `uid-default-${name}`, ports: [{ protocol: 'TCP' as const, port: 80 }] });
  const a = await signed(keys, svc('a'), ['203.0.113.2'], 'web');
  const b = await signed(keys, svc('b'), ['203.0.113.3'], 'web');
  const racing = racingKeys();
  const r = await run(racing, { pools: [web], claims: [claim('203.0.113.2', 'web', [holder('a')]), claim('203.0.113.3', 'web', [holder('b')])], services: [] });
  try {
    racing.inject = () => r.cluster.setService(b);
    r.cluster.setService(a);
    await r.converge();
    assert.equal(racing.inject, undefined, 'b was added during the verification of a');
    const o = observed(r.cluster);
    assert.deepEqual(o.services['default/a'], { ips: '203.0.113.2', pool: 'web', status: '203.0.113.2' });
    assert.deepEqual(o.services['default/b'], { ips: '203.0.113.3', pool: 'web', status: '203.0.113.3' });
    assert.deepEqual(Object.keys(o.claims).sort(), ['203.0.113.2', '203.0.113.3'], 'no other address claimed');
  } finally {
    await r.close();
  }
});
