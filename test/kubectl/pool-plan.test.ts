// `plan` over small worlds: the validating webhook's verdict and the controller's pass as if the
// pool change were applied (kept, moved, stranded, newly assigned), oldest Service first.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { JWK } from 'jose';
import { admissionConfigSchema } from '../../src/config/webhook-config.ts';
import type { IPClaim, IPPool } from '../../src/config/schemas.ts';
import type { Service } from '../../src/kube/types.ts';
import { signAssignment, type KeySet } from '../../src/signing/assignment.ts';
import { planPoolChange, renderPlan } from '../../src/kubectl/pool-plan.ts';
import type { World } from '../../src/kubectl/world.ts';
import { claim, pool, testKeys } from '../helpers/state.ts';

let keys: KeySet;
let publicJwk: JWK;
before(async () => {
  const k = await testKeys();
  keys = k.keys;
  const { d: _d, ...pub } = k.jwk;
  publicJwk = pub;
});

const svc = (name: string, created: string, annotations?: Record<string, string>): Service => ({
  metadata: { name, namespace: 'default', uid: `uid-${name}`, creationTimestamp: created, ...(annotations ? { annotations } : {}) },
  spec: { type: 'LoadBalancer', ports: [{ port: 80, protocol: 'TCP' }], selector: { app: name } },
});

async function holding(name: string, ip: string, poolName: string, created: string): Promise<{ service: Service; claim: IPClaim }> {
  const token = await signAssignment(keys, { namespace: 'default', name, ips: [ip], pool: poolName, externalIPs: [] });
  return {
    service: svc(name, created, { 'admitlb.io/assigned-ips': ip, 'admitlb.io/assigned-pool': poolName, 'admitlb.io/allocation': token }),
    claim: claim(ip, poolName, [{ namespace: 'default', name, uid: `uid-${name}`, ports: [{ protocol: 'TCP', port: 80 }] }]),
  };
}

function world(pools: IPPool[], held: { service: Service; claim: IPClaim }[], extra: Service[] = []): World {
  return {
    pools,
    claims: held.map((h) => h.claim),
    namespaces: [{ metadata: { name: 'default' } }],
    services: [...held.map((h) => h.service), ...extra],
    config: admissionConfigSchema.parse({}),
    publicKeys: [publicJwk],
  };
}

const web = pool('web', { addresses: ['203.0.113.10-203.0.113.12'] });
const outcomes = (r: Awaited<ReturnType<typeof planPoolChange>>) => r.services.map((s) => [s.service, s.outcome, s.to.join()]);

describe('plan', () => {
  it('a shrink that strands one holder: refused without force; kept and stranded', async () => {
    const held = [await holding('a', '203.0.113.10', 'web', '2026-01-01T00:00:01Z'), await holding('b', '203.0.113.12', 'web', '2026-01-01T00:00:02Z')];
    const r = await planPoolChange(world([web], held), [pool('web', { addresses: ['203.0.113.10-203.0.113.10'] })]);
    assert.equal(r.pools[0]!.admission.allowed, false);
    assert.match(r.pools[0]!.admission.message ?? '', /1 allocated address\(es\) would fall outside the pool \(e\.g\. 203\.0\.113\.12\); annotate the pool admitlb\.io\/force=true/);
    assert.deepEqual(outcomes(r), [
      ['default/a', 'kept', '203.0.113.10'],
      ['default/b', 'stranded', ''],
    ]);
    assert.match(r.services[1]!.reason, /no longer fits the pools or the Service; no address can replace it: spec\.type: cannot allocate an IPv4 address: IPPool "web" has no free IPv4 address/);
    assert.deepEqual(r.summary, { kept: 1, moved: 0, stranded: 1, assigned: 0 });
  });

  it('a renumbering with room: holders move to the lowest free addresses, oldest first', async () => {
    const held = [await holding('young', '203.0.113.11', 'web', '2026-01-01T00:00:09Z'), await holding('old', '203.0.113.12', 'web', '2026-01-01T00:00:01Z')];
    const r = await planPoolChange(world([web], held), [pool('web', { addresses: ['198.51.100.1-198.51.100.1', '203.0.113.12-203.0.113.12'], ...{} })]);
    // old keeps .12; young moves to the one free address.
    assert.deepEqual(outcomes(r), [
      ['default/old', 'kept', '203.0.113.12'],
      ['default/young', 'moved', '198.51.100.1'],
    ]);
    assert.match(renderPlan(r), /\ndefault\/young +moved +203\.0\.113\.11 \(web\) +198\.51\.100\.1 \(web\) +assignment 203\.0\.113\.11 from IPPool "web" no longer fits/);
    assert.match(renderPlan(r), /\n1 kept, 1 moved, 0 stranded, 0 newly assigned\n$/);
  });

  it('two holders, one free address: the older one gets it, the younger is stranded', async () => {
    const held = [await holding('young', '203.0.113.11', 'web', '2026-01-01T00:00:09Z'), await holding('old', '203.0.113.12', 'web', '2026-01-01T00:00:01Z')];
    const r = await planPoolChange(world([web], held), [pool('web', { addresses: ['198.51.100.1-198.51.100.1'] })]);
    assert.deepEqual(outcomes(r), [
      ['default/old', 'moved', '198.51.100.1'],
      ['default/young', 'stranded', ''],
    ]);
  });

  it('a grown pool gives a waiting Service its address; an unrelated pool\'s holders are not listed', async () => {
    const other = pool('other', { addresses: ['192.0.2.0/30'] });
    const full = pool('web', { addresses: ['203.0.113.10-203.0.113.10'] });
    const held = [await holding('a', '203.0.113.10', 'web', '2026-01-01T00:00:01Z'), await holding('x', '192.0.2.0', 'other', '2026-01-01T00:00:01Z')];
    const waiting = svc('w', '2026-01-01T00:00:05Z');
    const r = await planPoolChange(world([full, other], held, [waiting]), [pool('web', { addresses: ['203.0.113.10-203.0.113.11'] })]);
    assert.equal(r.pools[0]!.admission.allowed, true);
    // w would first try "other" (autoAssign pools by name: other < web) and get 192.0.2.1 there:
    // that is not the changed pool, so it is not the change's doing and is not listed.
    assert.deepEqual(outcomes(r), [['default/a', 'kept', '203.0.113.10']]);
    const only = await planPoolChange(world([full], [held[0]!], [waiting]), [pool('web', { addresses: ['203.0.113.10-203.0.113.11'] })]);
    assert.deepEqual(outcomes(only), [
      ['default/a', 'kept', '203.0.113.10'],
      ['default/w', 'assigned', '203.0.113.11'],
    ]);
  });

  it('a new pool that overlaps another: the webhook would refuse it', async () => {
    const r = await planPoolChange(world([web], []), [pool('new', { addresses: ['203.0.113.12/30'] })]);
    assert.equal(r.pools[0]!.change, 'create');
    assert.equal(r.pools[0]!.admission.allowed, false);
    assert.match(r.pools[0]!.admission.message ?? '', /overlap/);
  });
});
