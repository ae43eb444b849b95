// What the differential suite (test/real/differential.test.ts) found the double answering differently
// from kube-apiserver 1.34, pinned here so it holds without the real binaries: each case is one request
// and the parts of kube's answer that matter (status, reason, message, causes).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { stringify as stringifyYaml } from 'yaml';
import { removeDir, startSandbox, type Sandbox } from './helpers.ts';

let sb: Sandbox;
const cms = '/api/v1/namespaces/default/configmaps';
const svcs = '/api/v1/namespaces/default/services';
const MERGE = { 'Content-Type': 'application/merge-patch+json' };
const APPLY = { 'Content-Type': 'application/apply-patch+yaml' };
const cm = (name: string, data: Record<string, string>, extra: Record<string, unknown> = {}) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data, ...extra });
const svc = (name: string, type: string, extra: Record<string, unknown> = {}) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { type, ports: [{ port: 80 }], ...extra } });

before(async () => {
  sb = await startSandbox('fidelity');
});
after(async () => {
  await sb.close();
  removeDir(sb.dataDir);
});

interface Case {
  name: string;
  setup?: [string, string, unknown?, Record<string, string>?][];
  request: [string, string, unknown?, Record<string, string>?];
  status: number;
  /** a subset of the answer's body */
  body?: Record<string, unknown>;
  /** what the answer's body must not have */
  absent?: string[];
}

const CASES: Case[] = [
  {
    name: 'status.loadBalancer.ingress on a ClusterIP Service is Forbidden (1.29+)',
    setup: [['POST', svcs, svc('cip', 'ClusterIP')]],
    request: ['PATCH', `${svcs}/cip/status`, { status: { loadBalancer: { ingress: [{ ip: '192.0.2.1' }] } } }, MERGE],
    status: 422,
    body: { reason: 'Invalid', message: 'Service "cip" is invalid: status.loadBalancer.ingress: Forbidden: may only be used when `spec.type` is \'LoadBalancer\'' },
  },
  {
    name: 'an unknown field of a built-in kind under fieldValidation=Strict',
    request: ['POST', `${svcs}?fieldValidation=Strict`, { ...svc('strict', 'ClusterIP'), spec: { ports: [{ port: 80, bogus: 1 }] } }],
    status: 400,
    body: { reason: 'BadRequest', message: 'Service in version "v1" cannot be handled as a Service: strict decoding error: unknown field "spec.ports[0].bogus"' },
  },
  {
    name: 'an unknown field under Warn is a warning and is not stored; an empty map is not stored',
    request: ['POST', `${cms}?fieldValidation=Warn`, { ...cm('warned', {}), bogus: 1 }],
    status: 201,
    absent: ['bogus', 'data', 'managedFields'],
  },
  {
    name: 'a wrongly typed value is the decoder\'s 400 whatever fieldValidation says',
    request: ['POST', `${svcs}?fieldValidation=Ignore`, { ...svc('typed', 'ClusterIP'), spec: { ports: [{ port: 'eighty' }] } }],
    status: 400,
    body: { message: 'Service in version "v1" cannot be handled as a Service: json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port of type int32' },
  },
  {
    name: 'DELETE of a ConfigMap answers with a Success Status naming it',
    setup: [['POST', cms, cm('gone', { a: '1' })]],
    request: ['DELETE', `${cms}/gone`],
    status: 200,
    body: { kind: 'Status', status: 'Success' },
  },
  {
    name: 'the default namespace may not be deleted',
    request: ['DELETE', '/api/v1/namespaces/default'],
    status: 403,
    body: { reason: 'Forbidden', message: 'namespaces "default" is forbidden: this namespace may not be deleted' },
  },
  {
    name: 'apply without fieldManager is invalid PatchOptions',
    request: ['PATCH', `${cms}/ssa`, stringifyYaml(cm('ssa', { k: 'v' })), APPLY],
    status: 422,
    body: { reason: 'Invalid', message: 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch' },
  },
  {
    name: 'apply of a field another manager owns with another value is a conflict',
    setup: [['PATCH', `${cms}/ssa?fieldManager=alice`, stringifyYaml(cm('ssa', { owned: 'alice' })), APPLY]],
    request: ['PATCH', `${cms}/ssa?fieldManager=bob`, stringifyYaml(cm('ssa', { owned: 'bob' })), APPLY],
    status: 409,
    body: { reason: 'Conflict', message: 'Apply failed with 1 conflict: conflict with "alice": .data.owned', details: { causes: [{ reason: 'FieldManagerConflict', message: 'conflict with "alice"', field: '.data.owned' }] } },
  },
  {
    name: 'apply with force takes the field; a field the first manager stops applying goes',
    setup: [
      ['PATCH', `${cms}/ssa2?fieldManager=alice`, stringifyYaml(cm('ssa2', { owned: 'alice', other: 'alice' })), APPLY],
      ['PATCH', `${cms}/ssa2?fieldManager=bob&force=true`, stringifyYaml(cm('ssa2', { owned: 'bob' })), APPLY],
    ],
    request: ['PATCH', `${cms}/ssa2?fieldManager=alice`, stringifyYaml(cm('ssa2', { mine: 'alice' })), APPLY],
    status: 200,
    body: { data: { owned: 'bob', mine: 'alice' } },
  },
  {
    name: 'a JSON patch whose test fails: 422 with the generic message',
    setup: [['POST', cms, cm('jp', { a: '1' })]],
    request: ['PATCH', `${cms}/jp`, [{ op: 'test', path: '/data/a', value: '2' }], { 'Content-Type': 'application/json-patch+json' }],
    status: 422,
    body: { reason: 'Invalid', message: 'the server rejected our request due to an error in our request' },
  },
  {
    name: 'a uid precondition that fails names the kind',
    setup: [['POST', cms, cm('pre', {})]],
    // Node's client sends a DELETE body unframed unless told its length
    request: ['DELETE', `${cms}/pre`, JSON.stringify({ preconditions: { uid: 'x' } }), { 'Content-Length': String(JSON.stringify({ preconditions: { uid: 'x' } }).length) }],
    status: 409,
    body: { details: { name: 'pre', kind: 'ConfigMap' } },
  },
  {
    name: 'a Lease renewTime is a MicroTime: six fractional digits or a 400',
    request: ['POST', '/apis/coordination.k8s.io/v1/namespaces/default/leases', { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'l' }, spec: { holderIdentity: 'a', renewTime: '2026-01-01T00:00:01Z' } }],
    status: 400,
    body: { message: 'Lease in version "v1" cannot be handled as a Lease: parsing time "2026-01-01T00:00:01Z" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "Z" as ".000000"' },
  },
  {
    name: 'an Event carries the empty struct-typed fields Go writes',
    request: ['POST', '/api/v1/namespaces/default/events', { apiVersion: 'v1', kind: 'Event', metadata: { name: 'e' }, involvedObject: { kind: 'Service', name: 'x' }, reason: 'R', message: 'm', type: 'Normal' }],
    status: 201,
    body: { source: {}, firstTimestamp: null, lastTimestamp: null, eventTime: null },
  },
];

describe('answers as kube-apiserver 1.34 gives them', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      for (const [method, path, body, headers] of c.setup ?? []) {
        const r = await sb.request(method, path, body, headers);
        assert.ok(r.status < 300, `setup ${method} ${path}: ${r.status} ${r.text}`);
      }
      const [method, path, body, headers] = c.request;
      const r = await sb.request(method, path, body, headers);
      assert.equal(r.status, c.status, `${r.status} ${r.text}`);
      const got = r.json();
      if (c.body) assertSubset(got, c.body);
      for (const k of c.absent ?? []) assert.equal(got[k] ?? got.metadata?.[k], undefined, `${k} in ${r.text}`);
    });
  }
});

function assertSubset(got: unknown, want: unknown, path = ''): void {
  if (want && typeof want === 'object') {
    for (const [k, v] of Object.entries(want)) assertSubset((got as Record<string, unknown> | undefined)?.[k], v, `${path}.${k}`);
    return;
  }
  assert.equal(got, want, path);
}
