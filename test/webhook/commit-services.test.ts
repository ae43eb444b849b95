// The two phases of a Service admission through the webhook app: /mutate/services claims and signs,
// /validate/services (called once the API server validated the object) commits the claim by recording
// the Service's uid, just after it answers. Plus what the mutating phase refuses to hand out: unknown namespaces,
// signatures on dry runs, more unconfirmed claims than the cap, another object's claim.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { buildWebhookApp } from '../../src/webhook/app.ts';
import { createWebhookMetrics } from '../../src/webhook/metrics.ts';
import { ClaimIndex } from '../../src/allocation/claim-index.ts';
import type { AdmissionDeps } from '../../src/admission/admit-service.ts';
import type { AdmissionConfig } from '../../src/config/webhook-config.ts';
import { harness, pool, silentLogger, type Harness } from '../helpers/state.ts';

type Review = { apiVersion: string; kind: string; request: Record<string, any> };
const fixture = (): Review => JSON.parse(readFileSync(new URL('../fixtures/admission/create-loadbalancer.json', import.meta.url), 'utf8'));

const appFor = (deps: AdmissionDeps, h: Harness): FastifyInstance =>
  buildWebhookApp({ deps, logger: silentLogger(), metrics: createWebhookMetrics(h.state), readiness: { ready: () => ({ ok: true, reasons: [] }) } });

async function setup(config: Partial<AdmissionConfig> = {}, addresses = ['192.0.2.10-192.0.2.13']) {
  const h = await harness([pool('four', { addresses })], config);
  return { ...h, app: appFor(h.deps, h) };
}

/** A create review for `name` (as the mutating phase sees it: no uid). */
function create(name: string, extra: Record<string, unknown> = {}, namespace = 'default'): Review {
  const r = fixture();
  r.request.uid = `uid-of-review-${name}`;
  r.request.name = name;
  r.request.namespace = namespace;
  r.request.object.metadata.name = name;
  r.request.object.metadata.namespace = namespace;
  Object.assign(r.request, extra);
  return r;
}

async function post(app: FastifyInstance, review: Review, url = '/mutate/services') {
  const res = await app.inject({ method: 'POST', url, payload: review as object });
  assert.equal(res.statusCode, 200, res.body);
  return res.json().response;
}

/** The object after the mutating answer's patch (only annotation ops are used here). */
function patched(review: Review, response: any): any {
  const obj = structuredClone(review.request.object);
  const ops = JSON.parse(Buffer.from(response.patch ?? 'W10=', 'base64').toString()) as { op: string; path: string; value: any }[];
  for (const op of ops) {
    if (op.path === '/metadata/annotations') obj.metadata.annotations = op.value;
    else if (op.path.startsWith('/metadata/annotations/')) (obj.metadata.annotations ??= {})[op.path.split('/').pop()!.replace('~1', '/')] = op.value;
  }
  return obj;
}

/** The validating phase's review of the stored object (uid set, as the API server sends it). */
function validation(review: Review, object: any, uid: string, extra: Record<string, unknown> = {}): Review {
  const r = structuredClone(review);
  r.request.object = { ...object, metadata: { ...object.metadata, uid } };
  Object.assign(r.request, extra);
  return r;
}

/** Polls until `check` passes (the commit is written just after the answer). */
async function eventually(check: () => void | Promise<void>, ms = 2000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

const holdersOf = (h: Harness, ns = 'default') => [...h.state.claims.all()].flatMap((r) => r.holders.filter((x) => x.namespace === ns).map((x) => ({ address: r.address, name: x.name, uid: x.uid })));

describe('the commit phase (/validate/services)', () => {
  it('records the Service\'s uid in its claim; a second call changes nothing', async () => {
    const h = await setup();
    const review = create('web');
    const mutated = await post(h.app, review);
    assert.equal(mutated.allowed, true);
    assert.deepEqual(holdersOf(h), [{ address: '192.0.2.10', name: 'web', uid: undefined }]);
    const object = patched(review, mutated);
    for (let i = 0; i < 2; i++) {
      const committed = await post(h.app, validation(review, object, 'u-web'), '/validate/services');
      assert.equal(committed.allowed, true);
      await eventually(() => assert.deepEqual(holdersOf(h), [{ address: '192.0.2.10', name: 'web', uid: 'u-web' }]));
    }
  });

  it('writes nothing on a dry run, and nothing for a Service without an assignment', async () => {
    const h = await setup();
    const review = create('web');
    const object = patched(review, await post(h.app, review));
    const dry = await post(h.app, validation(review, object, 'u-web', { dryRun: true }), '/validate/services');
    assert.equal(dry.allowed, true);
    const bare = await post(h.app, validation(review, review.request.object, 'u-other'), '/validate/services');
    assert.equal(bare.allowed, true);
    assert.deepEqual(holdersOf(h), [{ address: '192.0.2.10', name: 'web', uid: undefined }]);
  });

  it('a create whose claim was released before validation goes on, and nothing is written (the controller converges it)', async () => {
    const h = await setup();
    const review = create('web');
    const object = patched(review, await post(h.app, review));
    assert.ok(await h.cluster.claims.delete('192.0.2.10'));
    const r = await post(h.app, validation(review, object, 'u-web'), '/validate/services');
    assert.equal(r.allowed, true);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(h.state.claims.size, 0);
  });

  it('reads the claim from the API when this replica\'s cache has not seen it yet', async () => {
    const h = await setup();
    const review = create('web');
    const object = patched(review, await post(h.app, review));
    // Another replica: its index never heard of the claim the first one wrote.
    const lagging = new ClaimIndex();
    const other = appFor({ ...h.deps, state: { pools: h.state.pools, claims: lagging, applyClaim: (c) => void lagging.upsert(c) } }, h);
    const committed = await post(other, validation(review, object, 'u-web'), '/validate/services');
    assert.equal(committed.allowed, true);
    await eventually(async () => assert.equal((await h.cluster.claims.get('192.0.2.10'))?.spec.holders[0]?.uid, 'u-web'));
  });
});

describe('what the mutating phase hands out', () => {
  it('a namespace that does not exist: 404, nothing claimed', async () => {
    const h = await setup();
    const r = await post(h.app, create('web', {}, 'ghost'));
    assert.equal(r.allowed, false);
    assert.equal(r.status.code, 404);
    assert.equal(r.status.message, 'metadata.namespace: namespace "ghost" does not exist');
    assert.equal(h.state.claims.size, 0);
  });

  it('a dry run shows the address but carries no signature; the real create is signed', async () => {
    const h = await setup();
    const dry = patched(create('web'), await post(h.app, create('web', { dryRun: true })));
    assert.equal(dry.metadata.annotations['admitlb.io/assigned-ips'], '192.0.2.10');
    assert.equal(dry.metadata.annotations['admitlb.io/allocation'], undefined);
    const real = patched(create('web'), await post(h.app, create('web')));
    assert.match(real.metadata.annotations['admitlb.io/allocation'], /^[\w-]+\.[\w-]+\.[\w-]+$/);
  });

  it('at most maxUnconfirmedClaims claims of a namespace wait for validation; a commit makes room; a retried create takes back its own', async () => {
    const h = await setup({ maxUnconfirmedClaims: 2 }, ['198.51.100.0/24']);
    const a = create('a');
    const objA = patched(a, await post(h.app, a));
    assert.equal((await post(h.app, create('b'))).allowed, true);
    const started = Date.now();
    const c = await post(h.app, create('c'));
    assert.ok(Date.now() - started >= 1900, 'it waited for room before refusing');
    assert.equal(c.allowed, false);
    assert.equal(c.status.code, 429);
    assert.match(c.status.message, /^spec: namespace "default" has 2 address claims for Services the API server has not accepted \(yet\); at most 2 may wait at once/);
    assert.equal((await post(h.app, create('other', {}, 'team-a'))).allowed, true, 'other namespaces are not held back');
    const again = await post(h.app, create('b'));
    assert.equal(again.allowed, true, 'a retried create of b takes back its claim');
    assert.deepEqual(holdersOf(h).map((x) => x.name).sort(), ['a', 'b']);
    await post(h.app, validation(a, objA, 'u-a'), '/validate/services');
    await eventually(() => assert.equal(holdersOf(h).find((x) => x.name === 'a')?.uid, 'u-a'));
    assert.equal((await post(h.app, create('c'))).allowed, true, 'a committed claim no longer counts');
  });

  it('refused creates of one namespace never take the last addresses of a pool of 4', async () => {
    const h = await setup();
    for (const name of ['r1', 'r2']) assert.equal((await post(h.app, create(name))).allowed, true);
    const third = await post(h.app, create('r3'));
    assert.equal(third.allowed, false);
    assert.equal(third.status.code, 429);
    assert.match(third.status.message, /IPPool "four" for Services the API server has not accepted \(yet\), and the pool cannot spare more/);
    for (const name of ['fair-1', 'fair-2']) {
      const review = create(name, {}, 'team-a');
      const r = await post(h.app, review);
      assert.equal(r.allowed, true, `${name} in another namespace`);
      await post(h.app, validation(review, patched(review, r), `u-${name}`), '/validate/services');
      await eventually(() => assert.equal(holdersOf(h, 'team-a').find((x) => x.name === name)?.uid, `u-${name}`));
    }
  });

  it('an update naming another object of the same name (wrong uid) neither keeps nor changes its claim', async () => {
    const h = await setup();
    const review = create('web');
    const object = patched(review, await post(h.app, review));
    await post(h.app, validation(review, object, 'u-web'), '/validate/services');
    await eventually(() => assert.equal(holdersOf(h)[0]?.uid, 'u-web'));
    const before = structuredClone([...h.state.claims.all()]);
    const forged = validation(review, { ...object, spec: { ...object.spec, ports: [{ name: 'x', port: 443, protocol: 'TCP', targetPort: 443 }] } }, 'u-forged', { operation: 'UPDATE', oldObject: { ...object, metadata: { ...object.metadata, uid: 'u-forged' } } });
    const r = await post(h.app, forged);
    assert.notEqual(patched(forged, r).metadata.annotations?.['admitlb.io/assigned-ips'], '192.0.2.10');
    assert.deepEqual([...h.state.claims.all()].find((x) => x.address === '192.0.2.10'), before.find((x) => x.address === '192.0.2.10'));
  });
});
