// Every endpoint of the webhook app answers malformed input with a 4xx and a message, never a 500 or
// a crash: a review that did not come from an API server (null object, wrong metadata types, garbage)
// is a 400; a well-formed review gets a valid AdmissionReview without an internal error.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import type { FastifyInstance } from 'fastify';
import { buildWebhookApp } from '../../src/webhook/app.ts';
import { createWebhookMetrics } from '../../src/webhook/metrics.ts';
import { harness, pool, silentLogger } from '../helpers/state.ts';

type Review = { apiVersion: string; kind: string; request: Record<string, any> };
const serviceReview = (): Review => JSON.parse(readFileSync(new URL('../fixtures/admission/create-loadbalancer.json', import.meta.url), 'utf8'));

function crdReview(kind: string, resource: string, object: Record<string, unknown>): Review {
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `uid-${resource}`,
      kind: { group: 'admitlb.io', version: 'v1alpha1', kind },
      resource: { group: 'admitlb.io', version: 'v1alpha1', resource },
      name: 'x',
      operation: 'CREATE',
      userInfo: { username: 'admin', groups: ['system:masters'] },
      object,
      oldObject: null,
    },
  };
}

/** A services/status UPDATE by another load balancer's controller that adds an ingress IP. */
function statusReview(): Review {
  const svc = JSON.parse(JSON.stringify(serviceReview().request.object));
  const withIngress = { ...svc, status: { loadBalancer: { ingress: [{ ip: '203.0.113.9' }, { hostname: 'lb.example.test' }] } } };
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: 'uid-status',
      kind: { group: '', version: 'v1', kind: 'Service' },
      resource: { group: '', version: 'v1', resource: 'services' },
      subResource: 'status',
      name: svc.metadata?.name ?? 'x',
      namespace: 'default',
      operation: 'UPDATE',
      userInfo: { username: 'system:serviceaccount:other-lb:controller', groups: ['system:serviceaccounts'] },
      object: withIngress,
      oldObject: { ...svc, status: { loadBalancer: {} } },
    },
  };
}

/** Each admission endpoint with a well-formed review it allows or denies (never a 4xx). */
const ENDPOINTS: { url: string; review: () => Review }[] = [
  { url: '/mutate/services', review: serviceReview },
  // The commit phase: a stored object (uid) carrying an assignment annotation.
  {
    url: '/validate/services',
    review: () => {
      const r = serviceReview();
      r.request.object.metadata.uid = 'uid-web';
      r.request.object.metadata.annotations = { 'admitlb.io/allocation': 'eyJhbGciOiJFZERTQSJ9.e30.c2ln' };
      return r;
    },
  },
  { url: '/validate/ippools', review: () => crdReview('IPPool', 'ippools', pool('x', { addresses: ['198.51.100.0/24'] }) as never) },
  { url: '/validate/services-status', review: statusReview },
  { url: '/validate/speaker-config', review: () => crdReview('BGPPeer', 'bgppeers', { apiVersion: 'admitlb.io/v1alpha1', kind: 'BGPPeer', metadata: { name: 'x' }, spec: { peerAddress: '192.0.2.1', peerASN: 64501, myASN: 64500 } }) },
  { url: '/validate/speaker-config', review: () => crdReview('L2Advertisement', 'l2advertisements', { apiVersion: 'admitlb.io/v1alpha1', kind: 'L2Advertisement', metadata: { name: 'x' }, spec: {} }) },
  { url: '/validate/speaker-config', review: () => crdReview('BGPAdvertisement', 'bgpadvertisements', { apiVersion: 'admitlb.io/v1alpha1', kind: 'BGPAdvertisement', metadata: { name: 'x' }, spec: { ipPools: ['default'] } }) },
];

async function setup(): Promise<FastifyInstance> {
  const h = await harness([pool('default', { addresses: ['203.0.113.0/24', '2001:db8:5::/64'] })]);
  return buildWebhookApp({ deps: h.deps, logger: silentLogger(), metrics: createWebhookMetrics(h.state), readiness: { ready: () => ({ ok: true, reasons: [] }) } });
}

async function send(app: FastifyInstance, url: string, payload: string, contentType = 'application/json') {
  return app.inject({ method: 'POST', url, headers: { 'content-type': contentType }, payload });
}

/** A 200 is a valid AdmissionReview without an internal error; anything else is a 4xx with a message. */
function assertSane(res: Awaited<ReturnType<typeof send>>, what: string) {
  if (res.statusCode === 200) {
    const body = res.json();
    assert.equal(body.apiVersion, 'admission.k8s.io/v1', what);
    assert.equal(body.kind, 'AdmissionReview', what);
    assert.equal(typeof body.response.uid, 'string', what);
    assert.equal(typeof body.response.allowed, 'boolean', what);
    assert.notEqual(body.response.status?.code, 500, `internal error for ${what}: ${body.response.status?.message}`);
  } else {
    assert.ok(res.statusCode >= 400 && res.statusCode < 500, `status ${res.statusCode} for ${what}: ${res.body.slice(0, 300)}`);
    assert.equal(typeof res.json().message, 'string', what);
  }
}

const set = (r: Review, path: string, value: unknown): Review => {
  const copy: any = structuredClone(r);
  const keys = path.split('.');
  let node = copy;
  for (const k of keys.slice(0, -1)) {
    if (typeof node[k] !== 'object' || node[k] === null) node[k] = {};
    node = node[k];
  }
  node[keys.at(-1)!] = value;
  return copy;
};

describe('webhook endpoints: malformed reviews are a 400', () => {
  for (const { url, review } of ENDPOINTS) {
    const kind = review().request.kind.kind;
    it(`${url} (${kind}): the well-formed review is answered with 200`, async () => {
      const app = await setup();
      const res = await send(app, url, JSON.stringify(review()));
      assert.equal(res.statusCode, 200, res.body);
      assertSane(res, 'the well-formed review');
    });

    it(`${url} (${kind}): a null or missing object on CREATE and UPDATE is a 400 naming request.object`, async () => {
      const app = await setup();
      for (const operation of ['CREATE', 'UPDATE']) {
        for (const object of [null, undefined]) {
          const r = set(set(review(), 'request.operation', operation), 'request.object', object);
          if (operation === 'UPDATE') r.request.oldObject = review().request.object;
          const res = await send(app, url, JSON.stringify(r));
          assert.equal(res.statusCode, 400, `${operation} with object ${object}: ${res.body}`);
          assert.equal(res.json().error, 'ADMITLB_MALFORMED_REVIEW');
          assert.match(res.json().message, /^request\.object: required for (CREATE|UPDATE)/);
        }
      }
    });

    it(`${url} (${kind}): metadata of the wrong type is a 400 naming the field`, async () => {
      const app = await setup();
      for (const [path, value, field] of [
        ['request.object.metadata', 'x', /^request\.object\.metadata: /],
        ['request.object.metadata', null, /^request\.object\.metadata: /],
        ['request.object.metadata.name', 7, /^request\.object\.metadata\.name: /],
        ['request.object.metadata.annotations', { a: 1 }, /^request\.object\.metadata\.annotations\.a: /],
        ['request.object.metadata.labels', [], /^request\.object\.metadata\.labels: /],
      ] as const) {
        const res = await send(app, url, JSON.stringify(set(review(), path, value)));
        assert.equal(res.statusCode, 400, `${path}=${JSON.stringify(value)}: ${res.body}`);
        assert.match(res.json().message, field);
      }
      const del = set(set(set(review(), 'request.operation', 'DELETE'), 'request.object', null), 'request.oldObject', { metadata: 'x' });
      const res = await send(app, url, JSON.stringify(del));
      assert.equal(res.statusCode, 400, res.body);
      assert.match(res.json().message, /^request\.oldObject\.metadata: /);
    });

    it(`${url} (${kind}): fuzz: every answer is a valid AdmissionReview or a 4xx, never a 500 or a crash`, async () => {
      const app = await setup();
      const base = review();
      const paths = ['request', 'request.object', 'request.oldObject', 'request.operation', 'request.name', 'request.object.metadata', 'request.object.metadata.name', 'request.object.metadata.annotations', 'request.object.spec', 'request.userInfo', 'request.dryRun'];
      const leafPaths = Object.keys(base.request.object.spec ?? {}).map((k) => `request.object.spec.${k}`);
      const operations = fc.constantFrom('CREATE', 'UPDATE', 'DELETE', 'CONNECT');
      const mutated = fc
        .tuple(fc.constantFrom(...paths, ...leafPaths), fc.anything(), operations, fc.boolean())
        .map(([path, value, op, oldToo]) => {
          let r = set(set(base, 'request.operation', op), path, value);
          if (oldToo) r = set(r, 'request.oldObject', structuredClone(base.request.object));
          return JSON.stringify(r);
        });
      const garbage = fc.oneof(
        fc.string(),
        fc.json(),
        mutated,
        mutated,
        fc.jsonValue().map((v) => JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: v })),
      );
      await fc.assert(
        fc.asyncProperty(garbage, async (payload) => {
          assertSane(await send(app, url, payload), payload.slice(0, 300));
        }),
        { numRuns: 1500 },
      );
    });
  }

  it('other content types, methods and paths are 4xx, never 500', async () => {
    const app = await setup();
    const urls = ['/mutate/services', '/validate/services', '/validate/ippools', '/validate/speaker-config', '/validate/services-status', '/healthz', '/readyz', '/metrics', '/nope'];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...urls),
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH'),
        fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', 'multipart/form-data'),
        fc.string({ maxLength: 30 }),
        fc.string(),
        async (url, method, contentType, query, payload) => {
          const res = await app.inject({ method, url: `${url}?${encodeURIComponent(query)}`, headers: { 'content-type': contentType }, ...(method === 'GET' ? {} : { payload }) });
          assert.ok(res.statusCode < 500, `${method} ${url} ${contentType}: ${res.statusCode} ${res.body.slice(0, 200)}`);
        },
      ),
      { numRuns: 500 },
    );
  });
});
