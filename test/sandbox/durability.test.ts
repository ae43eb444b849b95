// Durable state across restarts, atomic create/update under concurrency, admission calls that do not
// serialize unrelated writes, and Service allocation (dual-stack, explicit IPs).
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { jsonPatch, removeDir, startSandbox, startWebhook, tempDir } from './helpers.ts';

describe('durability', () => {
  it('keeps objects, token, CA and a monotonic resourceVersion across restarts', async () => {
    const dataDir = tempDir('durable');
    let sb = await startSandbox('durable', {}, dataDir);
    try {
      assert.equal((await sb.kubectl(['create', 'ns', 'persist'])).code, 0);
      await sb.kubectl(['-n', 'persist', 'create', 'service', 'loadbalancer', 'keep', '--tcp=80:80']);
      await sb.kubectl(['-n', 'persist', 'create', 'configmap', 'gone']);
      await sb.kubectl(['-n', 'persist', 'delete', 'configmap', 'gone']);
      const before = JSON.parse((await sb.kubectl(['-n', 'persist', 'get', 'svc', 'keep', '-o', 'json'])).stdout);
      const lastRv = Number((await sb.request('GET', '/api/v1/namespaces/persist/configmaps')).json().metadata.resourceVersion);
      const token = sb.api.token;
      const ca = sb.api.caPem;
      await sb.close();
      // a torn final line (crash during append) is ignored on replay
      appendFileSync(join(dataDir, 'journal.jsonl'), '{"rv":99999,"gr":"/configmaps","ns":"persist","na');
      sb = await startSandbox('durable', {}, dataDir);
      assert.equal(sb.api.token, token);
      assert.equal(sb.api.caPem, ca);
      const after = JSON.parse((await sb.kubectl(['-n', 'persist', 'get', 'svc', 'keep', '-o', 'json'])).stdout);
      assert.deepEqual(after, before);
      assert.equal((await sb.request('GET', '/api/v1/namespaces/persist/configmaps/gone')).status, 404);
      const c = await sb.request('POST', '/api/v1/namespaces/persist/configmaps', { metadata: { name: 'new' } });
      assert.ok(Number(c.json().metadata.resourceVersion) > lastRv, 'resourceVersion continues after restart');
      // the journal is compacted on start: one line per live object plus the RV marker
      const lines = readFileSync(join(dataDir, 'journal.jsonl'), 'utf8').trim().split('\n');
      assert.ok(!lines.some((l) => l.includes('"name":"gone"')));
      // a watch from before the restart is too old
      const w = await sb.request('GET', `/api/v1/namespaces/persist/configmaps?watch=true&resourceVersion=${lastRv - 1}`);
      assert.equal(JSON.parse(w.text.trim()).object.code, 410);
    } finally {
      await sb.close();
      removeDir(dataDir);
    }
  });
});

describe('concurrency', () => {
  it('parallel creates of one name: exactly one wins, the rest get AlreadyExists', async () => {
    const sb = await startSandbox('conc');
    try {
      const results = await Promise.all(Array.from({ length: 12 }, () => sb.request('POST', '/api/v1/namespaces/default/services', { metadata: { name: 'race' }, spec: { ports: [{ port: 80 }] } })));
      assert.equal(results.filter((r) => r.status === 201).length, 1);
      assert.equal(results.filter((r) => r.status === 409 && r.json().reason === 'AlreadyExists').length, 11);
      const many = await Promise.all(Array.from({ length: 20 }, (_, i) => sb.request('POST', '/api/v1/namespaces/default/services', { metadata: { name: `s${i}` }, spec: { type: 'NodePort', ports: [{ port: 80 }] } })));
      assert.ok(many.every((r) => r.status === 201));
      const ips = many.map((r) => r.json().spec.clusterIP);
      const ports = many.map((r) => r.json().spec.ports[0].nodePort);
      assert.equal(new Set(ips).size, 20, 'cluster IPs are unique');
      assert.equal(new Set(ports).size, 20, 'node ports are unique');
      const live = (await sb.request('GET', '/api/v1/namespaces/default/services/race')).json();
      const updates = await Promise.all(
        Array.from({ length: 8 }, (_, i) => sb.request('PUT', '/api/v1/namespaces/default/services/race', { ...live, metadata: { ...live.metadata, labels: { n: String(i) } } })),
      );
      assert.equal(updates.filter((r) => r.status === 200).length, 1, 'one update wins the resourceVersion');
      assert.deepEqual(
        updates.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.json().reason}`),
        Array.from({ length: 7 }, () => '409 Conflict'),
        'every losing update is a Conflict',
      );
    } finally {
      await sb.close();
      removeDir(sb.dataDir);
    }
  });

  it('a slow webhook call does not hold up unrelated writes; uniqueness is still checked at commit', async () => {
    const sb = await startSandbox('slowhook');
    const hook = await startWebhook(async (req) => {
      if (req.object?.metadata?.labels?.slow) await new Promise((r) => setTimeout(r, 1500));
      return { allowed: true, ...jsonPatch([{ op: 'add', path: '/metadata/annotations', value: { seen: 'yes' } }]) };
    });
    try {
      const cfg = {
        metadata: { name: 'slow' },
        webhooks: [{ name: 'slow.admitlb.io', sideEffects: 'None', admissionReviewVersions: ['v1'], timeoutSeconds: 5, clientConfig: { url: hook.url, caBundle: hook.caBundle }, rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['configmaps'] }] }],
      };
      assert.equal((await sb.request('POST', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', cfg)).status, 201);
      const slow = sb.request('POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: 'dup', labels: { slow: '1' } } });
      await new Promise((r) => setTimeout(r, 100));
      const started = Date.now();
      const fast = await sb.request('POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: 'fast' } });
      assert.equal(fast.status, 201);
      assert.ok(Date.now() - started < 1000, 'the unrelated create finished while the slow call was pending');
      const sameName = await sb.request('POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: 'dup' } });
      assert.equal(sameName.status, 201);
      const slowResult = await slow;
      assert.equal(slowResult.status, 409, 'the slower create of the same name loses at commit time');
      assert.equal(slowResult.json().reason, 'AlreadyExists');
    } finally {
      await hook.close();
      await sb.close();
      removeDir(sb.dataDir);
    }
  });
});

describe('service allocation', () => {
  it('allocates dual-stack clusterIPs, honours requested IPs and rejects taken ones', async () => {
    const sb = await startSandbox('alloc', { serviceNetwork: { serviceCidrs: ['10.96.0.0/16', 'fd00:10:96::/112'], nodePortRange: [30000, 32767] } });
    try {
      const ds = await sb.request('POST', '/api/v1/namespaces/default/services', { metadata: { name: 'ds' }, spec: { ipFamilyPolicy: 'PreferDualStack', ports: [{ port: 80 }] } });
      assert.equal(ds.status, 201, ds.text);
      assert.deepEqual(ds.json().spec.ipFamilies, ['IPv4', 'IPv6']);
      assert.match(ds.json().spec.clusterIPs[0], /^10\.96\./);
      assert.match(ds.json().spec.clusterIPs[1], /^fd00:10:96::/);
      const fixed = await sb.request('POST', '/api/v1/namespaces/default/services', { metadata: { name: 'fixed' }, spec: { type: 'LoadBalancer', clusterIP: '10.96.5.5', ports: [{ port: 80 }] } });
      assert.equal(fixed.json().spec.clusterIP, '10.96.5.5');
      const taken = await sb.request('POST', '/api/v1/namespaces/default/services', { metadata: { name: 'taken' }, spec: { clusterIP: '10.96.5.5', ports: [{ port: 80 }] } });
      assert.equal(taken.status, 422);
      assert.match(taken.json().message, /failed to allocate IP 10\.96\.5\.5: provided IP is already allocated/);
      const v6 = await sb.request('POST', '/api/v1/namespaces/default/services', { metadata: { name: 'v6' }, spec: { ipFamilies: ['IPv6'], ports: [{ port: 80 }] } });
      assert.match(v6.json().spec.clusterIP, /^fd00:10:96::/);
      assert.equal(v6.json().spec.ipFamilyPolicy, 'SingleStack');
      const ext = await sb.request('POST', '/api/v1/namespaces/default/services', { metadata: { name: 'ext' }, spec: { type: 'ExternalName', externalName: 'example.com' } });
      assert.equal(ext.status, 201, ext.text);
      assert.equal(ext.json().spec.clusterIP, undefined);
      // update keeps allocated values the client omitted (patchAllocatedValues) and status (PrepareForUpdate)
      const st = await sb.request('PATCH', '/api/v1/namespaces/default/services/fixed/status', { status: { loadBalancer: { ingress: [{ ip: '192.0.2.1' }] } } }, { 'Content-Type': 'application/merge-patch+json' });
      assert.equal(st.status, 200, st.text);
      const live = (await sb.request('GET', '/api/v1/namespaces/default/services/fixed')).json();
      delete live.spec.clusterIP;
      delete live.spec.clusterIPs;
      live.status = {};
      const put = await sb.request('PUT', '/api/v1/namespaces/default/services/fixed', live);
      assert.equal(put.status, 200, put.text);
      assert.equal(put.json().spec.clusterIP, '10.96.5.5');
      assert.equal(put.json().status.loadBalancer.ingress[0].ip, '192.0.2.1');
      // a create never keeps a client-sent status
      const withStatus = await sb.request('POST', '/api/v1/namespaces/default/services', { metadata: { name: 'st' }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] }, status: { loadBalancer: { ingress: [{ ip: '203.0.113.9' }] } } });
      assert.deepEqual(withStatus.json().status, { loadBalancer: {} });
    } finally {
      await sb.close();
      removeDir(sb.dataDir);
    }
  });
});
