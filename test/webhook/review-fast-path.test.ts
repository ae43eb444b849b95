import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { admissionReviewSchema, parseAdmissionReview, serviceShapeSchema, serviceShapeZodSchema } from '../../src/admission/review.ts';

const fixture = (name: string) => JSON.parse(readFileSync(new URL(`../fixtures/admission/${name}.json`, import.meta.url), 'utf8'));

// Paths of the fixture the checks look at, and some next to them.
const PATHS = [
  '', 'apiVersion', 'kind', 'request', 'request.uid', 'request.kind', 'request.kind.group', 'request.kind.kind', 'request.resource',
  'request.resource.resource', 'request.resource.version', 'request.subResource', 'request.name', 'request.namespace', 'request.operation',
  'request.userInfo', 'request.userInfo.username', 'request.userInfo.uid', 'request.userInfo.groups', 'request.userInfo.groups.0',
  'request.object', 'request.oldObject', 'request.dryRun', 'request.options', 'request.object.metadata', 'request.object.metadata.name',
  'request.object.metadata.generateName', 'request.object.metadata.namespace', 'request.object.metadata.labels', 'request.object.metadata.labels.app',
  'request.object.metadata.annotations', 'request.object.spec', 'request.object.spec.type', 'request.object.spec.selector',
  'request.object.spec.selector.app', 'request.object.spec.ports', 'request.object.spec.ports.0', 'request.object.spec.ports.0.port',
  'request.object.spec.ports.0.protocol', 'request.object.spec.externalIPs', 'request.object.spec.loadBalancerIP',
  'request.object.spec.loadBalancerClass', 'request.object.spec.ipFamilies', 'request.object.spec.ipFamilyPolicy',
  'request.object.spec.externalTrafficPolicy',
];
const near = fc.oneof(
  fc.jsonValue(),
  fc.constantFrom(null, '', 'TCP', 'SCTP', 'tcp', 'IPv4', 'IPv6', 'RequireDualStack', 'CREATE', 'PATCH', 80, 80.5, -1, 2 ** 53, true, [], {}, ['IPv4', 'IPv6', 'IPv4'], ['a', 1], { a: 'b' }, { a: 1 })
    // constantFrom hands out the same object every time: a copy, or one edit could nest it in itself.
    .map((v) => structuredClone(v)),
);
const mutation = fc.array(fc.tuple(fc.constantFrom(...PATHS), fc.option(near, { nil: undefined })), { minLength: 1, maxLength: 3 });

function mutate(base: unknown, edits: [string, unknown][]) {
  let r: any = structuredClone(base);
  for (const [path, value] of edits) {
    // Values are copied in: one generated value set at two paths must not become a cycle.
    if (path === '') {
      r = structuredClone(value);
      continue;
    }
    const keys = path.split('.');
    let node = r;
    for (const k of keys.slice(0, -1)) node = node?.[k];
    if (node === null || typeof node !== 'object') continue;
    if (value === undefined) delete node[keys.at(-1)!];
    else node[keys.at(-1)!] = structuredClone(value);
  }
  // What the webhook sees is parsed JSON.
  return r === undefined ? undefined : JSON.parse(JSON.stringify(r));
}

const message = (r: { success: boolean; error?: { message: string } }) => (r.success ? 'ok' : r.error!.message);

describe('AdmissionReview fast path', () => {
  it('decides and words every review as the zod schemas do', () => {
    const bases = ['create-loadbalancer'].map(fixture);
    fc.assert(
      fc.property(fc.constantFrom(...bases), mutation, (base, edits) => {
        const review = mutate(base, edits);
        assert.equal(message(parseAdmissionReview(review)), message(admissionReviewSchema.safeParse(review)), JSON.stringify(edits));
        const object = review?.request?.object;
        assert.equal(message(serviceShapeSchema.safeParse(object)), message(serviceShapeZodSchema.safeParse(object)), JSON.stringify(edits));
      }),
      { numRuns: 5000 },
    );
  });

  it('returns the fixture unchanged for a well-formed review', () => {
    const review = fixture('create-loadbalancer');
    const parsed = parseAdmissionReview(review);
    assert.ok(parsed.success);
    assert.equal(parsed.data, review);
    assert.ok(serviceShapeSchema.safeParse(review.request.object).success);
  });
});
