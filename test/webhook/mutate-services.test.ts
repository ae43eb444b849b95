import { describe, it } from 'node:test';
import { Writable } from 'node:stream';
import pino from 'pino';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import jsonpatch from 'fast-json-patch';
import type { FastifyInstance } from 'fastify';
import { buildWebhookApp, BODY_LIMIT } from '../../src/webhook/app.ts';
import { createWebhookMetrics } from '../../src/webhook/metrics.ts';
import { verifyAssignment } from '../../src/signing/assignment.ts';
import { LiveAllocationState } from '../../src/kube/allocation-state.ts';
import type { IPPool } from '../../src/config/schemas.ts';
import type { AdmissionConfig } from '../../src/config/webhook-config.ts';
import { claim, harness, pool, silentLogger, testKeys, type Harness } from '../helpers/state.ts';

type Review = { apiVersion: string; kind: string; request: Record<string, any> };
const fixture = (name: string): Review => JSON.parse(readFileSync(new URL(`../fixtures/admission/${name}.json`, import.meta.url), 'utf8'));

function appFor(h: Harness): FastifyInstance {
  return buildWebhookApp({
    deps: h.deps,
    logger: silentLogger(),
    metrics: createWebhookMetrics(h.state),
    readiness: { ready: () => ({ ok: true, reasons: [] }) },
  });
}

async function setup(pools: IPPool[] = [pool('default', { addresses: ['203.0.113.0/24', '2001:db8:5::/64'] })], config: Partial<AdmissionConfig> = {}) {
  const h = await harness(pools, config);
  return { ...h, app: appFor(h) };
}

async function post(app: FastifyInstance, review: unknown, url = '/mutate/services') {
  const res = await app.inject({ method: 'POST', url, payload: review as object });
  return { status: res.statusCode, body: res.json() as { response: any; error?: string; message?: string } };
}

function decodePatch(response: any): jsonpatch.Operation[] {
  if (!response.patch) return [];
  assert.equal(response.patchType, 'JSONPatch');
  return JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8'));
}

/** Applies the webhook's patch as kube-apiserver would: strictly, failing on any invalid operation. */
function applyPatch(object: any, response: any) {
  const ops = decodePatch(response);
  const errors = jsonpatch.validate(ops, object);
  assert.equal(errors, undefined, `patch does not apply: ${errors?.message}`);
  return jsonpatch.applyPatch(structuredClone(object), ops, true, false).newDocument;
}

/**
 * A create as the API server runs it: the mutating call, then (the object validated, its uid set)
 * the commit phase, which confirms the claim (test/webhook/commit-services.test.ts).
 */
async function createAndCommit(app: FastifyInstance, review: Review, uid: string) {
  const res = await post(app, review);
  if (res.body.response?.allowed) {
    const stored = applyPatch(review.request.object, res.body.response);
    await post(app, { ...review, request: { ...review.request, object: { ...stored, metadata: { ...stored.metadata, uid } } } }, '/validate/services');
  }
  return res;
}

function withObject(review: Review, mutate: (obj: any) => void, extra: Record<string, unknown> = {}): Review {
  const r = structuredClone(review);
  mutate(r.request.object);
  Object.assign(r.request, extra);
  return r;
}

describe('webhook: Service create, reinvocation, update, dry-run, delete', () => {
  it('CREATE assigns the lowest free address with a signed assignment, and the patch applies cleanly', async () => {
    const t = await setup();
    const review = fixture('create-loadbalancer');
    const { status, body } = await post(t.app, review);
    assert.equal(status, 200);
    assert.equal(body.response.uid, review.request.uid);
    assert.equal(body.response.allowed, true);
    const patched = applyPatch(review.request.object, body.response);
    const ann = patched.metadata.annotations;
    assert.equal(ann['admitlb.io/assigned-ips'], '203.0.113.0');
    assert.equal(ann['admitlb.io/assigned-pool'], 'default');
    const signed = await verifyAssignment(t.keys, ann['admitlb.io/allocation'], { namespace: 'default', name: 'web' });
    assert.deepEqual(signed.ips, ['203.0.113.0']);
    const claims = t.cluster.listClaims();
    assert.equal(claims.length, 1);
    assert.equal(claims[0]!.metadata.name, '203.0.113.0');
    assert.deepEqual(claims[0]!.spec.holders.map((h) => `${h.namespace}/${h.name}`), ['default/web']);
    assert.equal(claims[0]!.spec.heldBy, 'default/web');
  });

  it('reinvocation with the patched object yields no patch and no new claim', async () => {
    const t = await setup();
    const review = fixture('create-loadbalancer');
    const first = await post(t.app, review);
    const patched = applyPatch(review.request.object, first.body.response);
    const again = await post(t.app, withObject(review, (o) => Object.assign(o, patched)));
    assert.equal(again.body.response.allowed, true);
    assert.equal(again.body.response.patch, undefined, 'an object that already carries a valid assignment gets no patch');
    assert.equal(t.cluster.calls.create, 1);
  });

  it('dry-run answers with the would-be address and writes nothing', async () => {
    const t = await setup();
    const { body } = await post(t.app, withObject(fixture('create-loadbalancer'), () => {}, { dryRun: true }));
    const patched = applyPatch(fixture('create-loadbalancer').request.object, body.response);
    assert.equal(patched.metadata.annotations['admitlb.io/assigned-ips'], '203.0.113.0');
    assert.equal(t.cluster.calls.create + t.cluster.calls.update, 0);
    assert.equal(t.cluster.listClaims().length, 0);
  });

  it('UPDATE that drops the annotations (replace) keeps the address and records the new ports', async () => {
    const t = await setup();
    const create = fixture('create-loadbalancer');
    const first = await post(t.app, create);
    const created = applyPatch(create.request.object, first.body.response);
    const update = fixture('update-loadbalancer-ports');
    update.request.oldObject!.metadata.annotations = created.metadata.annotations;
    const { body } = await post(t.app, update);
    assert.equal(body.response.allowed, true);
    const patched = applyPatch(update.request.object, body.response);
    assert.equal(patched.metadata.annotations['admitlb.io/assigned-ips'], '203.0.113.0');
    const holder = t.cluster.listClaims()[0]!.spec.holders[0]!;
    assert.deepEqual(holder.ports.map((p) => p.port).sort(), [443, 80]);
  });

  it('UPDATE that asks for nothing new is allowed without an address when none is free (warning says why)', async () => {
    const t = await setup([pool('full', { addresses: ['203.0.113.9-203.0.113.9'] })]);
    await t.cluster.create(claim('203.0.113.9', 'full', [{ namespace: 'default', name: 'other' }]));
    const update = fixture('update-loadbalancer-ports');
    delete update.request.oldObject!.metadata.annotations; // the fixture's placeholder: no assignment before
    update.request.oldObject!.spec = structuredClone(update.request.object!.spec);
    update.request.object!.metadata.labels = { app: 'web', edited: 'yes' };
    const { body } = await post(t.app, update);
    assert.equal(body.response.allowed, true);
    assert.ok(body.response.warnings.some((w: string) => /no address assigned: .*IPPool "full"|no address assigned: .*203\.0\.113/.test(w)), body.response.warnings.join('; '));
    assert.equal(t.cluster.listClaims().length, 1);
  });

  it('UPDATE that changes what the Service asks for is denied when it cannot be served', async () => {
    const t = await setup([pool('full', { addresses: ['203.0.113.9-203.0.113.9'] })]);
    await t.cluster.create(claim('203.0.113.9', 'full', [{ namespace: 'default', name: 'other' }]));
    const update = fixture('update-loadbalancer-ports');
    delete update.request.oldObject!.metadata.annotations; // the fixture's placeholder: no assignment before
    update.request.oldObject!.spec = { ...structuredClone(update.request.object!.spec), type: 'ClusterIP' };
    const { body } = await post(t.app, update);
    assert.equal(body.response.allowed, false);
    assert.match(body.response.status.message, /IPPool "full"/);
  });

  it('DELETE is allowed without a patch', async () => {
    const t = await setup();
    const { body } = await post(t.app, fixture('delete-service'));
    assert.equal(body.response.allowed, true);
    assert.equal(body.response.patch, undefined);
  });

  it('a forged assignment annotation is not trusted: the Service gets a real, signed one', async () => {
    const t = await setup();
    const other = await testKeys();
    const { signAssignment } = await import('../../src/signing/assignment.ts');
    const forged = await signAssignment(other.keys, { namespace: 'default', name: 'web', ips: ['203.0.113.200'], pool: 'default', externalIPs: [] });
    const review = withObject(fixture('create-loadbalancer'), (o) => {
      o.metadata.annotations = { 'admitlb.io/assigned-ips': '203.0.113.200', 'admitlb.io/allocation': forged };
    });
    const { body } = await post(t.app, review);
    const patched = applyPatch(review.request.object, body.response);
    assert.equal(patched.metadata.annotations['admitlb.io/assigned-ips'], '203.0.113.0');
    await verifyAssignment(t.keys, patched.metadata.annotations['admitlb.io/allocation'], { namespace: 'default', name: 'web' });
  });

  it('generateName creates get a name chosen by the webhook, so the assignment can name the Service', async () => {
    const t = await setup();
    const review = withObject(fixture('create-loadbalancer'), (o) => {
      delete o.metadata.name;
      o.metadata.generateName = 'web-';
    }, { name: '' });
    const { body } = await post(t.app, review);
    const patched = applyPatch(review.request.object, body.response);
    assert.match(patched.metadata.name, /^web-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    await verifyAssignment(t.keys, patched.metadata.annotations['admitlb.io/allocation'], { namespace: 'default', name: patched.metadata.name });
  });
});

describe('webhook: requests, denials and warnings', () => {
  it('honours admitlb.io/ips and dual-stack families', async () => {
    const t = await setup();
    const review = withObject(fixture('create-loadbalancer'), (o) => {
      o.metadata.annotations = { 'admitlb.io/ips': '2001:db8:5::10, 203.0.113.10' };
      o.spec.ipFamilyPolicy = 'RequireDualStack';
      o.spec.ipFamilies = ['IPv6', 'IPv4'];
    });
    const { body } = await post(t.app, review);
    const patched = applyPatch(review.request.object, body.response);
    assert.equal(patched.metadata.annotations['admitlb.io/assigned-ips'], '2001:db8:5::10,203.0.113.10');
  });

  it('MetalLB annotations mean the same; metallb.universe.tf forms warn', async () => {
    const t = await setup([pool('default', { addresses: ['203.0.113.0/24'] }), pool('other', { addresses: ['198.51.100.0/24'] })]);
    const review = withObject(fixture('create-loadbalancer'), (o) => {
      o.metadata.annotations = { 'metallb.universe.tf/address-pool': 'other' };
    });
    const { body } = await post(t.app, review);
    assert.equal(body.response.allowed, true);
    const patched = applyPatch(review.request.object, body.response);
    assert.equal(patched.metadata.annotations['admitlb.io/assigned-pool'], 'other');
    assert.ok(body.response.warnings.some((w: string) => /metallb\.universe\.tf\/address-pool is deprecated/.test(w)));
  });

  it('spec.loadBalancerIP is honoured with a deprecation warning', async () => {
    const t = await setup();
    const review = withObject(fixture('create-loadbalancer'), (o) => (o.spec.loadBalancerIP = '203.0.113.77'));
    const { body } = await post(t.app, review);
    assert.equal(applyPatch(review.request.object, body.response).metadata.annotations['admitlb.io/assigned-ips'], '203.0.113.77');
    assert.ok(body.response.warnings.some((w: string) => /loadBalancerIP is deprecated/.test(w)));
  });

  it('a taken address is denied with the field and reason in the status', async () => {
    const t = await setup();
    await post(t.app, withObject(fixture('create-loadbalancer'), (o) => (o.metadata.annotations = { 'admitlb.io/ips': '203.0.113.7' })));
    const second = withObject(fixture('create-loadbalancer'), (o) => {
      o.metadata.name = 'web2';
      o.metadata.annotations = { 'admitlb.io/ips': '203.0.113.7' };
    }, { name: 'web2' });
    const { body } = await post(t.app, second);
    assert.equal(body.response.allowed, false);
    assert.equal(body.response.status.code, 409);
    assert.equal(body.response.status.message, 'metadata.annotations[admitlb.io/ips]: 203.0.113.7 is already held by Service "web"');
  });

  it('an exhausted pool is denied and names the pool', async () => {
    const t = await setup([pool('tiny', { addresses: ['203.0.113.1/32'] })]);
    await post(t.app, fixture('create-loadbalancer'));
    const { body } = await post(t.app, withObject(fixture('create-loadbalancer'), (o) => (o.metadata.name = 'web2'), { name: 'web2' }));
    assert.equal(body.response.allowed, false);
    assert.match(body.response.status.message, /^spec\.type: cannot allocate an IPv4 address: IPPool "tiny" has no free IPv4 address$/);
  });

  it('a pool above 90 % used is logged for the operator, never told in the answer', async () => {
    const h = await harness([pool('small', { addresses: ['203.0.113.0/30'] })]);
    const lines: any[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (c, _e, cb) => {
      lines.push(JSON.parse(c.toString()));
      cb();
    } }));
    const app = buildWebhookApp({ deps: h.deps, logger, metrics: createWebhookMetrics(h.state), readiness: { ready: () => ({ ok: true, reasons: [] }) } });
    const bodies: any[] = [];
    for (const n of ['a', 'b', 'c', 'd']) bodies.push((await createAndCommit(app, withObject(fixture('create-loadbalancer'), (o) => (o.metadata.name = n), { name: n }), `uid-${n}`)).body);
    for (const b of bodies) assert.ok(!(b.response.warnings ?? []).some((w: string) => /used|in use|of \d+/.test(w)), JSON.stringify(b.response.warnings));
    const fill = lines.filter((l) => l.msg === 'IPPool "small" is 100% used');
    assert.equal(fill.length, 1, 'only the allocation that crossed 90 % (4 of 4) is logged');
    assert.deepEqual([fill[0].level, fill[0].pool, fill[0].family, fill[0].used, fill[0].capacity], [40, 'small', 'IPv4', '4', '4']);
  });

  it('denies with 503 rather than guess when the API is unreachable', async () => {
    const t = await setup();
    t.cluster.unavailable = true;
    const { body } = await post(t.app, fixture('create-loadbalancer'));
    assert.equal(body.response.allowed, false);
    assert.equal(body.response.status.code, 503);
    assert.match(body.response.status.message, /Kubernetes API is unreachable/);
    // An outage is counted as an error, not as a policy denial (the webhook error alert reads this).
    const metrics = (await t.app.inject('/metrics')).body;
    assert.match(metrics, /admitlb_admission_decisions_total\{webhook="services.admitlb.io",operation="CREATE",decision="error"\} 1/);
    assert.doesNotMatch(metrics, /decision="denied"/);
  });

  it('ignores Services of another loadBalancerClass', async () => {
    const t = await setup();
    const review = withObject(fixture('create-loadbalancer'), (o) => (o.spec.loadBalancerClass = 'example.com/other'));
    const { body } = await post(t.app, review);
    assert.equal(body.response.allowed, true);
    assert.equal(body.response.patch, undefined);
  });
});

describe('webhook: externalIPs (CVE-2020-8554)', () => {
  const pools = () => [pool('lb', { addresses: ['203.0.113.0/24'] }), pool('ext', { addresses: ['198.51.100.0/24'], usage: ['ExternalIP'], allocateTo: { namespaces: ['default'] } })];
  const clusterIPService = (o: any) => {
    o.spec.type = 'ClusterIP';
    delete o.spec.externalTrafficPolicy;
    delete o.spec.allocateLoadBalancerNodePorts;
  };
  it('an externalIP outside the ExternalIP pools is denied in enforce mode', async () => {
    const t = await setup(pools());
    const review = withObject(fixture('create-loadbalancer'), (o) => { clusterIPService(o); o.spec.externalIPs = ['198.51.100.4', '192.0.2.66']; });
    const { body } = await post(t.app, review);
    assert.equal(body.response.allowed, false);
    assert.equal(body.response.status.message, 'spec.externalIPs[1]: 192.0.2.66 is outside the IPPools that serve externalIPs');
  });
  it('warn mode allows with a warning and claims only what is allowed', async () => {
    const t = await setup(pools(), { externalIPMode: 'warn' });
    const review = withObject(fixture('create-loadbalancer'), (o) => { clusterIPService(o); o.spec.externalIPs = ['198.51.100.4', '192.0.2.66']; });
    const { body } = await post(t.app, review);
    assert.equal(body.response.allowed, true);
    assert.ok(body.response.warnings.some((w: string) => /spec\.externalIPs\[1\].*warn/.test(w)));
    assert.deepEqual(t.cluster.listClaims().map((c) => c.spec.address), ['198.51.100.4']);
  });
  it('an externalIP held by another Service is denied', async () => {
    const t = await setup(pools());
    await post(t.app, withObject(fixture('create-loadbalancer'), (o) => { clusterIPService(o); o.spec.externalIPs = ['198.51.100.4']; }));
    const { body } = await post(t.app, withObject(fixture('create-loadbalancer'), (o) => { clusterIPService(o); o.metadata.name = 'other'; o.spec.externalIPs = ['198.51.100.4']; }, { name: 'other' }));
    assert.equal(body.response.allowed, false);
    assert.match(body.response.status.message, /spec\.externalIPs\[0\]: 198\.51\.100\.4 is already held by Service "web"/);
  });
  it('naming an ExternalIP pool assigns spec.externalIPs', async () => {
    const t = await setup(pools());
    const review = withObject(fixture('create-loadbalancer'), (o) => { clusterIPService(o); o.metadata.annotations = { 'admitlb.io/pool': 'ext' }; });
    const { body } = await post(t.app, review);
    const patched = applyPatch(review.request.object, body.response);
    assert.deepEqual(patched.spec.externalIPs, ['198.51.100.0']);
    const signed = await verifyAssignment(t.keys, patched.metadata.annotations['admitlb.io/allocation'], { namespace: 'default', name: 'web' });
    assert.deepEqual(signed.externalIPs, ['198.51.100.0']);
  });
});

describe('webhook: replicas and concurrency', () => {
  it('two replicas with separate caches never hand out one address twice', async () => {
    const a = await harness([pool('p', { addresses: ['203.0.113.0/26'] })]);
    // Replica B shares the API (the claim store) but keeps its own, independently lagging cache.
    const stateB = new LiveAllocationState(a.cluster.cache);
    const appA = appFor(a);
    const appB = appFor({ ...a, state: stateB, deps: { ...a.deps, state: stateB } });
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) => createAndCommit(i % 2 ? appB : appA, withObject(fixture('create-loadbalancer'), (o) => (o.metadata.name = `s${i}`), { name: `s${i}`, uid: `u${i}` }), `uid-s${i}`)),
    );
    const allowed = results.filter((r) => r.body.response.allowed);
    assert.equal(allowed.length, 60);
    const claims = a.cluster.listClaims();
    assert.equal(claims.length, 60);
    assert.ok(claims.every((c) => c.spec.holders.length === 1));
  });
});

describe('webhook: malformed input', () => {
  it('malformed JSON is a 400 with a clear error', async () => {
    const t = await setup();
    const res = await t.app.inject({ method: 'POST', url: '/mutate/services', headers: { 'content-type': 'application/json' }, payload: '{"apiVersion": "admission.k8s.io/v1",' });
    assert.equal(res.statusCode, 400);
    assert.equal(res.json().error, 'ADMITLB_MALFORMED_JSON');
  });
  it('a review of the wrong shape is a 400 naming the field', async () => {
    const t = await setup();
    const bad = fixture('create-loadbalancer') as any;
    delete bad.request.uid;
    const { status, body } = await post(t.app, bad);
    assert.equal(status, 400);
    assert.match(body.message!, /request\.uid/);
  });
  it('a body over the limit is a 413', async () => {
    const t = await setup();
    const res = await t.app.inject({ method: 'POST', url: '/mutate/services', headers: { 'content-type': 'application/json' }, payload: `"${'x'.repeat(BODY_LIMIT + 10)}"` });
    assert.equal(res.statusCode, 413);
  });
  it('fuzz: every answer is a valid AdmissionReview or a 4xx, never a 500 or a crash', async () => {
    const t = await setup();
    const base = fixture('create-loadbalancer');
    const mutated = fc.tuple(fc.constantFrom('request', 'request.object', 'request.object.metadata', 'request.object.spec', 'request.object.spec.ports'), fc.anything()).map(([path, value]) => {
      const r: any = structuredClone(base);
      const keys = path.split('.');
      let node = r;
      for (const k of keys.slice(0, -1)) node = node[k];
      node[keys.at(-1)!] = value;
      return JSON.stringify(r);
    });
    const garbage = fc.oneof(fc.string(), fc.json(), mutated, fc.jsonValue().map((v) => JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: v })));
    await fc.assert(
      fc.asyncProperty(garbage, async (payload) => {
        const res = await t.app.inject({ method: 'POST', url: '/mutate/services', headers: { 'content-type': 'application/json' }, payload });
        if (res.statusCode === 200) {
          const body = res.json();
          assert.equal(body.apiVersion, 'admission.k8s.io/v1');
          assert.equal(body.kind, 'AdmissionReview');
          assert.equal(typeof body.response.uid, 'string');
          assert.equal(typeof body.response.allowed, 'boolean');
          assert.notEqual(body.response.status?.code, 500, `internal error for ${payload.slice(0, 200)}: ${body.response.status?.message}`);
        } else {
          assert.ok(res.statusCode >= 400 && res.statusCode < 500, `status ${res.statusCode} for ${payload.slice(0, 200)}`);
          assert.equal(typeof res.json().message, 'string');
        }
      }),
      { numRuns: 3000 },
    );
  });
});

describe('webhook: IPPool validation', () => {
  const review = (operation: string, object: unknown, oldObject: unknown = null) => ({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'v-1',
      kind: { group: 'admitlb.io', version: 'v1alpha1', kind: 'IPPool' },
      resource: { group: 'admitlb.io', version: 'v1alpha1', resource: 'ippools' },
      name: (object as any)?.metadata?.name ?? (oldObject as any)?.metadata?.name,
      operation,
      userInfo: { username: 'admin' },
      object,
      oldObject,
    },
  });
  it('rejects invalid addresses naming the entry', async () => {
    const t = await setup();
    const { body } = await post(t.app, review('CREATE', pool('bad', { addresses: ['203.0.113.0/24', '198.51.100.7/24'] })), '/validate/ippools');
    assert.equal(body.response.allowed, false);
    assert.match(body.response.status.message, /spec\.addresses\[1\]: "198\.51\.100\.7\/24" has host bits set/);
  });
  it('rejects IPv4-mapped IPv6 addresses (no claim can be named after them)', async () => {
    const t = await setup();
    for (const entry of ['::ffff:c633:6400/120', '::fffe:ffff:ffff-::ffff:0:1']) {
      const { body } = await post(t.app, review('CREATE', pool('mapped', { addresses: ['2001:db8:7::/120', entry] })), '/validate/ippools');
      assert.equal(body.response.allowed, false, entry);
      assert.match(body.response.status.message, /spec\.addresses\[1\]: ".*" includes IPv4-mapped IPv6 addresses \(::ffff:0:0\/96\); use the IPv4 addresses/, entry);
    }
  });
  it('rejects a pool that overlaps another', async () => {
    const t = await setup();
    const { body } = await post(t.app, review('CREATE', pool('dup', { addresses: ['203.0.113.128/25'] })), '/validate/ippools');
    assert.equal(body.response.allowed, false);
    assert.match(body.response.status.message, /spec\.addresses\[0\]: 203\.0\.113\.128\/25 overlaps pool "default"/);
  });
  it('rejects a shrink that strands allocated addresses unless forced', async () => {
    const t = await setup([pool('p', { addresses: ['203.0.113.0/24'] })]);
    await post(t.app, withObject(fixture('create-loadbalancer'), (o) => (o.metadata.annotations = { 'admitlb.io/ips': '203.0.113.200' })));
    const shrunk = pool('p', { addresses: ['203.0.113.0/25'] });
    const denied = await post(t.app, review('UPDATE', shrunk, pool('p', { addresses: ['203.0.113.0/24'] })), '/validate/ippools');
    assert.equal(denied.body.response.allowed, false);
    assert.match(denied.body.response.status.message, /spec\.addresses: 1 allocated address\(es\) would fall outside the pool \(e\.g\. 203\.0\.113\.200\)/);
    const forced = await post(t.app, review('UPDATE', pool('p', { addresses: ['203.0.113.0/25'] }, { 'admitlb.io/force': 'true' })), '/validate/ippools');
    assert.equal(forced.body.response.allowed, true);
  });
  it('rejects deleting a pool with allocations unless forced', async () => {
    const t = await setup([pool('p', { addresses: ['203.0.113.0/24'] })]);
    await post(t.app, fixture('create-loadbalancer'));
    const denied = await post(t.app, review('DELETE', null, pool('p', { addresses: ['203.0.113.0/24'] })), '/validate/ippools');
    assert.equal(denied.body.response.allowed, false);
    assert.match(denied.body.response.status.message, /still has 1 allocated address/);
    const forced = await post(t.app, review('DELETE', null, pool('p', { addresses: ['203.0.113.0/24'] }, { 'admitlb.io/force': 'true' })), '/validate/ippools');
    assert.equal(forced.body.response.allowed, true);
  });
});

describe('webhook: health and metrics', () => {
  it('serves /healthz, /readyz and /metrics with decision counters', async () => {
    const t = await setup();
    await post(t.app, fixture('create-loadbalancer'));
    assert.equal((await t.app.inject('/healthz')).statusCode, 200);
    assert.equal((await t.app.inject('/readyz')).statusCode, 200);
    const metrics = (await t.app.inject('/metrics')).body;
    assert.match(metrics, /admitlb_admission_decisions_total\{webhook="services.admitlb.io",operation="CREATE",decision="allowed"\} 1/);
    assert.match(metrics, /admitlb_pool_addresses_in_use\{pool="default",family="IPv4"\} 1/);
    assert.match(metrics, /admitlb_admission_duration_seconds_bucket/);
  });
  it('/readyz is 503 with reasons until ready', async () => {
    const h = await harness([]);
    const app = buildWebhookApp({ deps: h.deps, logger: silentLogger(), metrics: createWebhookMetrics(h.state), readiness: { ready: () => ({ ok: false, reasons: ['caches not synced'] }) } });
    const res = await app.inject('/readyz');
    assert.equal(res.statusCode, 503);
    assert.deepEqual(res.json().reasons, ['caches not synced']);
  });
});
