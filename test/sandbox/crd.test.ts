// CustomResourceDefinitions and custom resources through kubectl: discovery (shortNames, categories),
// printer columns, schema defaulting/validation/pruning, the status subresource, scope.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { removeDir, startSandbox, type Sandbox } from './helpers.ts';

let sb: Sandbox;

const crd = (scope: 'Cluster' | 'Namespaced', plural: string, kind: string, shortNames: string[]) => ({
  apiVersion: 'apiextensions.k8s.io/v1',
  kind: 'CustomResourceDefinition',
  metadata: { name: `${plural}.admitlb.io` },
  spec: {
    group: 'admitlb.io',
    scope,
    names: { plural, singular: kind.toLowerCase(), kind, shortNames, categories: ['netstuff'] },
    versions: [
      {
        name: 'v1alpha1',
        served: true,
        storage: true,
        subresources: { status: {} },
        additionalPrinterColumns: [
          { name: 'IP', type: 'string', jsonPath: '.spec.ip' },
          { name: 'Pool', type: 'string', jsonPath: '.spec.pool' },
          { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
          { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
        ],
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: {
              spec: {
                type: 'object',
                required: ['ip'],
                properties: {
                  ip: { type: 'string', pattern: '^[0-9.]+$' },
                  pool: { type: 'string', default: 'default-pool' },
                  weight: { type: 'integer', minimum: 1, maximum: 5 },
                  extra: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
                },
              },
              status: { type: 'object', properties: { phase: { type: 'string', enum: ['Bound', 'Released'] } } },
            },
          },
        },
      },
    ],
  },
});

before(async () => {
  sb = await startSandbox('crd');
  const r = await sb.kubectl(['apply', '-f', '-'], [crd('Cluster', 'ipclaims', 'IPClaim', ['ipc']), crd('Namespaced', 'pools', 'Pool', ['lbpool'])].map((c) => stringify(c)).join('---\n'));
  assert.equal(r.code, 0, r.stderr);
});
after(async () => {
  await sb.close();
  removeDir(sb.dataDir);
});

describe('custom resources', () => {
  it('the CRD becomes Established and the kind is served by short name and category', async () => {
    const w = await sb.kubectl(['wait', '--for=condition=Established', 'crd/ipclaims.admitlb.io', '--timeout=10s']);
    assert.equal(w.code, 0, w.stderr);
    const c = await sb.kubectl(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'admitlb.io/v1alpha1', kind: 'IPClaim', metadata: { name: 'ip-192-0-2-1' }, spec: { ip: '192.0.2.1' } }));
    assert.equal(c.stdout.trim(), 'ipclaim.admitlb.io/ip-192-0-2-1 created', c.stderr);
    const byShort = await sb.kubectl(['get', 'ipc']);
    assert.match(byShort.stdout, /^NAME\s+IP\s+POOL\s+PHASE\s+AGE/);
    assert.match(byShort.stdout, /ip-192-0-2-1\s+192\.0\.2\.1\s+default-pool\s+\d+s/);
    const byCategory = await sb.kubectl(['get', 'netstuff']);
    assert.match(byCategory.stdout, /ipclaim\.admitlb\.io\/ip-192-0-2-1/);
  });

  it('defaults from the schema, sets generation, prunes unknown fields (Strict rejects them)', async () => {
    const obj = JSON.parse((await sb.kubectl(['get', 'ipc', 'ip-192-0-2-1', '-o', 'json'])).stdout);
    assert.equal(obj.spec.pool, 'default-pool');
    assert.equal(obj.metadata.generation, 1);
    const strict = await sb.kubectl(['create', '-f', '-'], JSON.stringify({ apiVersion: 'admitlb.io/v1alpha1', kind: 'IPClaim', metadata: { name: 'x' }, spec: { ip: '1.1.1.1', bogus: 1 } }));
    assert.match(strict.stderr, /IPClaim in version "v1alpha1" cannot be handled as a IPClaim: strict decoding error: unknown field "spec.bogus"/);
    const lenient = await sb.kubectl(['create', '--validate=false', '-f', '-'], JSON.stringify({ apiVersion: 'admitlb.io/v1alpha1', kind: 'IPClaim', metadata: { name: 'pruned' }, spec: { ip: '1.1.1.2', bogus: 1, extra: { kept: true } } }));
    assert.equal(lenient.code, 0, lenient.stderr);
    const pruned = JSON.parse((await sb.kubectl(['get', 'ipc', 'pruned', '-o', 'json'])).stdout);
    assert.equal(pruned.spec.bogus, undefined);
    assert.deepEqual(pruned.spec.extra, { kept: true });
  });

  it('validates against openAPIV3Schema with kube\'s messages', async () => {
    const r = await sb.kubectl(['create', '-f', '-'], JSON.stringify({ apiVersion: 'admitlb.io/v1alpha1', kind: 'IPClaim', metadata: { name: 'bad' }, spec: { ip: 'not-an-ip', weight: 9 } }));
    assert.match(r.stderr, /The IPClaim "bad" is invalid:/);
    assert.match(r.stderr, /spec\.ip: Invalid value: "not-an-ip": spec\.ip in body should match '\^\[0-9\.\]\+\$'/);
    assert.match(r.stderr, /spec\.weight: Invalid value: 9: spec\.weight in body should be less than or equal to 5/);
    const missing = await sb.kubectl(['create', '-f', '-'], JSON.stringify({ apiVersion: 'admitlb.io/v1alpha1', kind: 'IPClaim', metadata: { name: 'bad2' }, spec: {} }));
    assert.match(missing.stderr, /spec\.ip: Required value/);
  });

  it('status is only written through /status; spec changes bump generation', async () => {
    const s = await sb.kubectl(['patch', 'ipc', 'ip-192-0-2-1', '--subresource=status', '--type=merge', '-p', '{"status":{"phase":"Bound"},"spec":{"pool":"ignored"}}']);
    assert.equal(s.code, 0, s.stderr);
    let obj = JSON.parse((await sb.kubectl(['get', 'ipc', 'ip-192-0-2-1', '-o', 'json'])).stdout);
    assert.equal(obj.status.phase, 'Bound');
    assert.equal(obj.spec.pool, 'default-pool', '/status keeps the spec');
    assert.equal(obj.metadata.generation, 1);
    const m = await sb.kubectl(['patch', 'ipc', 'ip-192-0-2-1', '--type=merge', '-p', '{"status":{"phase":"Released"},"spec":{"pool":"p2"}}']);
    assert.equal(m.code, 0, m.stderr);
    obj = JSON.parse((await sb.kubectl(['get', 'ipc', 'ip-192-0-2-1', '-o', 'json'])).stdout);
    assert.equal(obj.status.phase, 'Bound', 'the main resource keeps the status');
    assert.equal(obj.spec.pool, 'p2');
    assert.equal(obj.metadata.generation, 2);
    const badStatus = await sb.kubectl(['patch', 'ipc', 'ip-192-0-2-1', '--subresource=status', '--type=merge', '-p', '{"status":{"phase":"Nope"}}']);
    assert.match(badStatus.stderr, /status\.phase: Unsupported value: "Nope": supported values: "Bound", "Released"/);
  });

  it('namespaced custom resources live in their namespace; update without resourceVersion is rejected', async () => {
    const c = await sb.kubectl(['-n', 'kube-system', 'create', '-f', '-'], JSON.stringify({ apiVersion: 'admitlb.io/v1alpha1', kind: 'Pool', metadata: { name: 'p1' }, spec: { ip: '10.0.0.0' } }));
    assert.equal(c.code, 0, c.stderr);
    assert.match((await sb.kubectl(['get', 'lbpool', '-A'])).stdout, /kube-system\s+p1/);
    assert.equal((await sb.request('GET', '/apis/admitlb.io/v1alpha1/namespaces/default/pools/p1')).status, 404);
    const put = await sb.request('PUT', '/apis/admitlb.io/v1alpha1/namespaces/kube-system/pools/p1', { apiVersion: 'admitlb.io/v1alpha1', kind: 'Pool', metadata: { name: 'p1' }, spec: { ip: '10.0.0.1' } });
    assert.equal(put.status, 422);
    // 1.34 renders the int as 0 (field.Error ErrorBody), and names the resource: pools.admitlb.io "p1" is invalid
    assert.match(put.json().message, /^pools\.admitlb\.io "p1" is invalid: metadata\.resourceVersion: Invalid value: 0: must be specified for an update$/);
  });

  it('deleting the CRD removes its instances and stops serving the kind', async () => {
    const d = await sb.kubectl(['delete', 'crd', 'ipclaims.admitlb.io']);
    assert.equal(d.code, 0, d.stderr);
    assert.equal((await sb.request('GET', '/apis/admitlb.io/v1alpha1/ipclaims')).status, 404);
  });
});
