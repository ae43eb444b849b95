// A request's own fault is a denial with a reason, never reported as an outage: invalid ports are
// refused in admission with kube-apiserver's wording (before anything is claimed), a claim the API
// server refuses (4xx) becomes a denial carrying the API's message, and no answer ever shows
// client-node's HTTP dump (HTTP-Code, Body, Headers).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { ApiException } from '@kubernetes/client-node';
import type { FastifyInstance } from 'fastify';
import type { IPClaim } from '../../src/config/schemas.ts';
import { ApiRejectedError, ApiUnavailableError } from '../../src/kube/cluster.ts';
import { KubeCluster, claimCallError, loadKubeConfig } from '../../src/kube/client.ts';
import { buildWebhookApp } from '../../src/webhook/app.ts';
import { createWebhookMetrics } from '../../src/webhook/metrics.ts';
import { harness, pool, silentLogger, type Harness } from '../helpers/state.ts';
import { recordingLogger, startAdmitlbSandbox, type Sandbox } from '../kube/helpers.ts';
import { service, startCluster, type E2eCluster } from '../e2e/cluster-helpers.ts';

type Review = { apiVersion: string; kind: string; request: Record<string, any> };
const fixture = (): Review => JSON.parse(readFileSync(new URL('../fixtures/admission/create-loadbalancer.json', import.meta.url), 'utf8'));

async function setup(): Promise<Harness & { app: FastifyInstance }> {
  const h = await harness([pool('default', { addresses: ['203.0.113.0/24'] })]);
  const app = buildWebhookApp({ deps: h.deps, logger: silentLogger(), metrics: createWebhookMetrics(h.state), readiness: { ready: () => ({ ok: true, reasons: [] }) } });
  return { ...h, app };
}

async function admit(app: FastifyInstance, review: Review) {
  const res = await app.inject({ method: 'POST', url: '/mutate/services', payload: review as object });
  assert.equal(res.statusCode, 200, res.body);
  return res.json().response as { allowed: boolean; status?: { code: number; reason: string; message: string } };
}

const NO_DUMP = /HTTP-Code|Headers|Body:|unreachable/;

describe('ports are validated in admission, with the field and kube-apiserver\'s wording', () => {
  for (const [ports, index, value] of [
    [[70000], 0, 70000],
    [[80, 0], 1, 0],
    [[443, 80, -1], 2, -1],
  ] as const) {
    it(`ports ${JSON.stringify(ports)}: spec.ports[${index}].port is invalid, and nothing is claimed`, async () => {
      const t = await setup();
      const r = fixture();
      r.request.object.spec.ports = ports.map((port) => ({ name: `p${port}`, protocol: 'TCP', port, targetPort: 80 }));
      const response = await admit(t.app, r);
      assert.equal(response.allowed, false);
      assert.deepEqual(response.status, { code: 422, reason: 'Invalid', message: `spec.ports[${index}].port: Invalid value: ${value}: must be between 1 and 65535, inclusive` });
      assert.equal(t.cluster.listClaims().length, 0);
      assert.equal(t.cluster.calls.create, 0, 'no claim write was attempted');
    });
  }

  it('ports 1 and 65535 are valid', async () => {
    const t = await setup();
    const r = fixture();
    r.request.object.spec.ports = [1, 65535].map((port) => ({ name: `p${port}`, protocol: 'TCP', port, targetPort: 80 }));
    assert.equal((await admit(t.app, r)).allowed, true);
  });
});

describe('a claim the API server refuses is a denial with the API\'s message', () => {
  it('a 422 from the claim write: denied with 422 and the API\'s message, not "unreachable"', async () => {
    const t = await setup();
    const apiMessage = 'IPClaim.admitlb.io "203.0.113.0" is invalid: spec.sharingKey: Too long: may not be more than 63 bytes';
    t.cluster.refuseClaim = () => new ApiRejectedError(`creating IPClaim: ${apiMessage}`, 422, 'Invalid', apiMessage);
    const response = await admit(t.app, fixture());
    assert.equal(response.allowed, false);
    assert.equal(response.status?.code, 422);
    assert.equal(response.status?.reason, 'Invalid');
    assert.equal(response.status?.message, `admitlb cannot record the address claim: the API server refused it: ${apiMessage}`);
    assert.doesNotMatch(response.status!.message, NO_DUMP);
    assert.equal(t.cluster.listClaims().length, 0);
  });

  it('a 403 (e.g. a ValidatingAdmissionPolicy) keeps its code and reason', async () => {
    const t = await setup();
    t.cluster.refuseClaim = () => new ApiRejectedError('x', 403, 'Forbidden', 'ipclaims.admitlb.io "203.0.113.0" is forbidden: denied by policy');
    const response = await admit(t.app, fixture());
    assert.deepEqual([response.allowed, response.status?.code, response.status?.reason], [false, 403, 'Forbidden']);
    assert.match(response.status!.message, /the API server refused it: ipclaims\.admitlb\.io "203\.0\.113\.0" is forbidden: denied by policy$/);
  });
});

describe('claimCallError: client-node errors worded for people', () => {
  const status = (code: number, reason: string, message: string) => JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message });
  const headers = { 'content-type': 'application/json', 'audit-id': 'a1b2' };

  it('a 4xx is an ApiRejectedError with the Status message and no HTTP dump', () => {
    const err = claimCallError('creating IPClaim 203.0.113.7', new ApiException(422, 'Unknown API Status Code!', status(422, 'Invalid', 'spec.holders[0].ports[0].port: Invalid value: 70000'), headers));
    assert.ok(err instanceof ApiRejectedError);
    assert.deepEqual([err.status, err.reason, err.apiMessage], [422, 'Invalid', 'spec.holders[0].ports[0].port: Invalid value: 70000']);
    assert.equal(err.message, 'creating IPClaim 203.0.113.7: the API server refused it (HTTP 422 Invalid): spec.holders[0].ports[0].port: Invalid value: 70000');
    assert.doesNotMatch(err.message, /HTTP-Code|Headers|audit-id/);
  });

  it('5xx, 408, 429 and network errors are ApiUnavailableError, also without the dump', () => {
    for (const code of [500, 503, 429, 408]) {
      const err = claimCallError('creating IPClaim x', new ApiException(code, 'Unknown API Status Code!', status(code, 'InternalError', 'etcdserver: request timed out'), headers));
      assert.ok(err instanceof ApiUnavailableError, String(code));
      assert.equal(err.message, `creating IPClaim x: HTTP ${code}: etcdserver: request timed out`);
    }
    const refused = Object.assign(new Error('request to https://127.0.0.1:1/apis failed, reason: connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    const err = claimCallError('creating IPClaim x', refused);
    assert.ok(err instanceof ApiUnavailableError);
    assert.match(err.message, /^creating IPClaim x: request to .* failed, reason: connect ECONNREFUSED/);
  });
});

describe('against the API server double', () => {
  let sb: Sandbox;
  let cluster: E2eCluster;
  before(async () => {
    sb = await startAdmitlbSandbox('api-errors');
    cluster = await startCluster('api-errors');
  });
  after(async () => {
    await cluster?.close();
    await sb?.close();
  });

  it('KubeCluster.create of a claim the CRD schema refuses throws ApiRejectedError with the API\'s message', async () => {
    const kc = new KubeCluster(loadKubeConfig(sb.api.kubeconfigPath), recordingLogger());
    const claim: IPClaim = {
      apiVersion: 'admitlb.io/v1alpha1',
      kind: 'IPClaim',
      metadata: { name: '192.0.2.1' },
      spec: { address: '192.0.2.1', pool: 'default', holders: [{ namespace: 'default', name: 'web', use: 'LoadBalancer', ports: [{ protocol: 'TCP', port: 70000 }], backend: '' }] },
    };
    await assert.rejects(kc.create(claim), (err: unknown) => {
      assert.ok(err instanceof ApiRejectedError, String(err));
      assert.equal(err.status, 422);
      assert.equal(err.reason, 'Invalid');
      assert.match(err.apiMessage, /spec\.holders\[0\]\.ports\[0\]\.port/);
      assert.doesNotMatch(err.message, /HTTP-Code|Headers/);
      return true;
    });
  });

  it('a Service with port 70000 is denied naming spec.ports[0].port, as kube-apiserver words it', async () => {
    const r = await cluster.apply(service('bad-port', { ports: [70000] }));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /denied the request: spec\.ports\[0\]\.port: Invalid value: 70000: must be between 1 and 65535, inclusive/);
    assert.doesNotMatch(r.stderr, NO_DUMP);
    const claims = await cluster.kubectl(['get', 'ipclaims', '-o', 'name']);
    assert.equal(claims.stdout.trim(), '', 'nothing was claimed');
  });
});
