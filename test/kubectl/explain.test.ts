// `explain` over small worlds: the verdict and its reason come from the webhook's and the
// controller's decision code (admitService, assignmentProblem), with nothing written to the world.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { JWK } from 'jose';
import { admissionConfigSchema } from '../../src/config/webhook-config.ts';
import type { IPClaim, IPPool } from '../../src/config/schemas.ts';
import type { Service } from '../../src/kube/types.ts';
import { signAssignment, type KeySet } from '../../src/signing/assignment.ts';
import { explainService, renderExplain } from '../../src/kubectl/explain.ts';
import { admissionConfigFromArgs, type World } from '../../src/kubectl/world.ts';
import { claim, pool, testKeys } from '../helpers/state.ts';

let keys: KeySet;
let publicJwk: JWK;
before(async () => {
  const k = await testKeys();
  keys = k.keys;
  const { d: _d, ...pub } = k.jwk;
  publicJwk = pub;
});

function svc(name: string, o: { namespace?: string; type?: string; annotations?: Record<string, string>; port?: number } = {}): Service {
  return {
    metadata: { name, namespace: o.namespace ?? 'default', uid: `uid-${name}`, creationTimestamp: '2026-01-01T00:00:00Z', ...(o.annotations ? { annotations: o.annotations } : {}) },
    spec: { type: (o.type ?? 'LoadBalancer') as 'LoadBalancer', ports: [{ port: o.port ?? 80, protocol: 'TCP' }], selector: { app: name } },
  };
}

/** A Service that holds `ip` from `poolName`, with a signed assignment and its claim. */
async function holding(name: string, ip: string, poolName: string, namespace = 'default'): Promise<{ service: Service; claim: IPClaim }> {
  const token = await signAssignment(keys, { namespace, name, ips: [ip], pool: poolName, externalIPs: [] });
  const service = svc(name, { namespace, annotations: { 'admitlb.io/assigned-ips': ip, 'admitlb.io/assigned-pool': poolName, 'admitlb.io/allocation': token } });
  return { service, claim: claim(ip, poolName, [{ namespace, name, uid: `uid-${name}`, ports: [{ protocol: 'TCP', port: 80 }] }]) };
}

function world(pools: IPPool[], held: { service: Service; claim: IPClaim }[], extra: Service[] = []): World {
  return {
    pools,
    claims: held.map((h) => h.claim),
    namespaces: [{ metadata: { name: 'default' } }, { metadata: { name: 'team-a', labels: { team: 'a' } } }],
    services: [...held.map((h) => h.service), ...extra],
    config: admissionConfigSchema.parse({}),
    publicKeys: [publicJwk],
  };
}

const two = pool('two', { addresses: ['203.0.113.10-203.0.113.11'] });

describe('explain', () => {
  it('an allocated Service: kept, by the automatic rule, signature verified', async () => {
    const a = await holding('a', '203.0.113.10', 'two');
    const r = await explainService(world([two], [a]), a.service, true);
    assert.equal(r.verdict, 'kept');
    assert.deepEqual(r.addresses, ['203.0.113.10']);
    assert.equal(r.pool, 'two');
    assert.equal(r.decidedBy, 'controller (assignment check)');
    assert.match(r.reason, /^automatic assignment: IPPool "two" is an autoAssign pool/);
    assert.equal(r.recorded?.signature, 'verified');
    assert.match(renderExplain(r), /^Service: +default\/a\nVerdict: +has 203\.0\.113\.10 from IPPool "two"\n/);
  });

  it('a create into an exhausted pool: the webhook denial, word for word', async () => {
    const w = world([two], [await holding('a', '203.0.113.10', 'two'), await holding('b', '203.0.113.11', 'two')]);
    const r = await explainService(w, svc('c'), false);
    assert.equal(r.verdict, 'denied');
    assert.equal(r.decidedBy, 'webhook (CREATE, dry run)');
    assert.equal(r.reason, 'spec.type: cannot allocate an IPv4 address: IPPool "two" has no free IPv4 address');
    assert.deepEqual(r.pools.map((p) => [p.name, p.free.IPv4]), [['two', '0']]);
    // Nothing was written to the world the report was computed from.
    assert.equal(w.claims.length, 2);
  });

  it('a create over the namespace quota: denied, naming the quota', async () => {
    const quota = pool('q', { addresses: ['203.0.113.0/28'], quota: { perNamespace: 1 } });
    const r = await explainService(world([quota], [await holding('a', '203.0.113.1', 'q')]), svc('b'), false);
    assert.equal(r.verdict, 'denied');
    assert.match(r.reason, /namespace "default" already holds 1 of the 1 addresses its quota allows from IPPool "q"/);
    assert.deepEqual(r.pools[0]!.quota, { perNamespace: 1, heldByNamespace: 1 });
  });

  it('a create that fits: the address the webhook would assign (lowest free)', async () => {
    const r = await explainService(world([two], [await holding('a', '203.0.113.10', 'two')]), svc('b'), false);
    assert.equal(r.verdict, 'assigned');
    assert.deepEqual(r.addresses, ['203.0.113.11']);
  });

  it('a Service whose address left its shrunk pool, with no room: pending, with the problem', async () => {
    const shrunk = pool('two', { addresses: ['203.0.113.10-203.0.113.10'] });
    const a = await holding('a', '203.0.113.10', 'two');
    const b = await holding('b', '203.0.113.11', 'two');
    const r = await explainService(world([shrunk], [a, b]), b.service, true);
    assert.equal(r.verdict, 'pending');
    assert.equal(r.decidedBy, 'controller (back-stop, as an UPDATE)');
    assert.match(r.problem ?? '', /assignment 203\.0\.113\.11 from IPPool "two" no longer fits/);
    assert.match(r.reason, /no address can be assigned: spec\.type: cannot allocate an IPv4 address: IPPool "two" has no free IPv4 address/);
  });

  it('the same with room elsewhere in the pool: moved, to the address the controller picks', async () => {
    const moved = pool('two', { addresses: ['203.0.113.10-203.0.113.10', '203.0.113.20-203.0.113.21'] });
    const a = await holding('a', '203.0.113.10', 'two');
    const b = await holding('b', '203.0.113.11', 'two');
    const r = await explainService(world([moved], [a, b]), b.service, true);
    assert.equal(r.verdict, 'moved');
    assert.deepEqual(r.addresses, ['203.0.113.20']);
  });

  it('a forged assignment is not trusted: the Service is re-decided as the controller would', async () => {
    const a = await holding('a', '203.0.113.10', 'two');
    const forged: Service = { ...a.service, metadata: { ...a.service.metadata, name: 'b', uid: 'uid-b' } };
    const r = await explainService(world([two], [a], [forged]), forged, true);
    assert.match(r.recorded?.signature ?? '', /^invalid: assignment was issued for default\/a/);
    assert.equal(r.verdict, 'assigned');
    assert.deepEqual(r.addresses, ['203.0.113.11']);
  });

  it('not admitlb\'s: a ClusterIP Service, or another load balancer class', async () => {
    const w = world([two], []);
    assert.equal((await explainService(w, svc('c', { type: 'ClusterIP' }), false)).verdict, 'not-managed');
    const other = svc('d');
    other.spec!.loadBalancerClass = 'example.com/other';
    const r = await explainService(w, other, false);
    assert.equal(r.verdict, 'not-managed');
    assert.match(r.reason, /another load balancer implementation serves it/);
  });

  it('a named pool that does not admit the namespace: denied, and the pool table says no', async () => {
    const teamA = pool('team-a-only', { addresses: ['198.51.100.0/30'], allocateTo: { namespaces: ['team-a'] } } as never);
    const r = await explainService(world([teamA], []), svc('e', { annotations: { 'admitlb.io/pool': 'team-a-only' } }), false);
    assert.equal(r.verdict, 'denied');
    assert.match(r.reason, /IPPool "team-a-only" is not available to this Service in namespace "default"/);
    assert.equal(r.pools[0]!.admits, false);
  });

  it('without readable public keys the assignment is decoded and reported unverified; the decision is the same', async () => {
    const a = await holding('a', '203.0.113.10', 'two');
    const r = await explainService({ ...world([two], [a]), publicKeys: [] }, a.service, true);
    assert.equal(r.verdict, 'kept');
    assert.match(r.recorded?.signature ?? '', /^unverified: no public keys readable \(ConfigMap admitlb-system\/admitlb-signing-public-keys\)/);
  });

  it("the webhook's admission flags come from its Deployment's arguments, defaults otherwise", () => {
    const c = admissionConfigFromArgs(['--tls-cert-file=/x', '--load-balancer-class=example.com/lb', '--external-ip-mode', 'warn']);
    assert.equal(c.loadBalancerClass, 'example.com/lb');
    assert.equal(c.externalIPMode, 'warn');
    assert.equal(c.defaultFamily, 'IPv4');
    assert.equal(admissionConfigFromArgs(['--external-ip-mode=bogus']).externalIPMode, 'enforce');
  });
});
