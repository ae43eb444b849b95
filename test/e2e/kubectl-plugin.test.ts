// The kubectl plugin against a cluster (the API double or the real kube-apiserver, E2E_TARGET),
// run as kubectl runs it: the plugin binary as a child process with the cluster's kubeconfig.
// status after creating Services; explain for an allocated, a denied (pool exhausted, quota) and a
// pending Service; plan for a shrinking pool; doctor.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { namespace, pool, service, startCluster, type E2eCluster } from './cluster-helpers.ts';

const PLUGIN = 'bin/kubectl-admitlb.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function plugin(args: string[], env: Record<string, string> = {}, stdin = ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [PLUGIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin);
  });
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let c: E2eCluster;
let env: Record<string, string>;
let dir: string;
const file = (name: string, obj: object) => {
  const path = join(dir, name);
  writeFileSync(path, stringify(obj));
  return path;
};
const assignedIPs = async (name: string, ns = 'default') =>
  (await c.kubectl(['-n', ns, 'get', 'svc', name, '-o', 'jsonpath={.metadata.annotations.admitlb\\.io/assigned-ips}'])).stdout;

before(async () => {
  c = await startCluster('plugin', { defaultPool: false });
  env = { KUBECONFIG: c.kubeconfig };
  dir = c.dataDir;
  const r = await c.apply(
    pool('small', { addresses: ['203.0.113.10-203.0.113.11'] }),
    namespace('team-q'),
    pool('quota', { addresses: ['198.51.100.0/29'], autoAssign: false, quota: { perNamespace: 1 } }),
  );
  assert.equal(r.code, 0, r.stderr);
  await c.waitForPool('small');
  await c.waitForPool('quota');
  for (const name of ['web', 'web2']) {
    const s = await c.apply(service(name));
    assert.equal(s.code, 0, s.stderr);
  }
  const q = await c.apply(service('q1', { namespace: 'team-q', annotations: { 'admitlb.io/pool': 'quota' } }));
  assert.equal(q.code, 0, q.stderr);
  assert.equal(await assignedIPs('web'), '203.0.113.10');
  assert.equal(await assignedIPs('web2'), '203.0.113.11');
  assert.equal(await assignedIPs('q1', 'team-q'), '198.51.100.0');
});
after(() => c?.close());

describe(`kubectl admitlb against the cluster (${process.env.E2E_TARGET ?? 'sandbox'})`, () => {
  it('status: pools with use per family, claims with holders, an announcement from a NodeAnnouncement of a live speaker', async () => {
    // What a speaker writes (src/speaker/announcements.ts, main.ts): its node Lease, its NodeAnnouncement.
    const renewTime = new Date().toISOString().replace('Z', '000Z');
    for (const node of ['node-a', 'node-b']) {
      const lease = await c.request('POST', '/apis/coordination.k8s.io/v1/namespaces/admitlb-system/leases', {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name: `admitlb-speaker-${node}`, namespace: 'admitlb-system' },
        // node-b's Lease lapsed long ago: its report must not count.
        spec: { holderIdentity: node, leaseDurationSeconds: 600, renewTime: node === 'node-a' ? renewTime : '2020-01-01T00:00:00.000000Z' },
      });
      assert.ok(lease.status < 300, JSON.stringify(lease.body));
      const created = await c.request('POST', '/apis/admitlb.io/v1alpha1/nodeannouncements', { apiVersion: 'admitlb.io/v1alpha1', kind: 'NodeAnnouncement', metadata: { name: node }, spec: { nodeName: node } });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const status = { addresses: '203.0.113.10', sessions: '0/0', l2: [{ address: '203.0.113.10', interface: node === 'node-a' ? 'eth0' : 'eth9', services: ['default/web'], since: new Date().toISOString() }], bgp: [], bgpSessions: [] };
      const patched = await c.kubectl(['patch', 'nodeannouncement', node, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]);
      assert.equal(patched.code, 0, patched.stderr);
    }
    const wrongName = await c.request('POST', '/apis/admitlb.io/v1alpha1/nodeannouncements', { apiVersion: 'admitlb.io/v1alpha1', kind: 'NodeAnnouncement', metadata: { name: 'node-x' }, spec: { nodeName: 'node-y' } });
    assert.equal(wrongName.status, 422, 'a NodeAnnouncement is named after its node');

    const r = await plugin(['status'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /\nsmall +203\.0\.113\.10-203\.0\.113\.11 +yes +2\/2 +- /);
    assert.match(r.stdout, /\nquota +198\.51\.100\.0\/29 +no +1\/8 +- /);
    assert.match(r.stdout, /\n203\.0\.113\.10 +small +default\/web \(LoadBalancer 80\/TCP\)\n/);
    assert.match(r.stdout, /\n198\.51\.100\.0 +quota +team-q\/q1 \(LoadBalancer 80\/TCP\)\n/);
    assert.match(r.stdout, /\n203\.0\.113\.10 +node-a +L2 +eth0 +default\/web +/);
    assert.doesNotMatch(r.stdout, /eth9/, 'the report of a node whose speaker Lease lapsed is ignored');
    assert.match(r.stdout, /ignored \(no fresh speaker Lease\): node-b\n/);

    // -o json with --kubeconfig instead of KUBECONFIG: the same report, structured.
    const j = await plugin(['status', '-o', 'json', '--kubeconfig', c.kubeconfig], { KUBECONFIG: '/nonexistent' });
    assert.equal(j.code, 0, j.stderr);
    const report = JSON.parse(j.stdout);
    assert.deepEqual(report.pools.find((p: any) => p.name === 'small').inUse, { ipv4: '2' });
    assert.deepEqual(report.claims.map((x: any) => x.address).sort(), ['198.51.100.0', '203.0.113.10', '203.0.113.11']);
    assert.equal(report.announcements.items[0].node, 'node-a');

    // The controller writes the pool's conditions: Exhausted once both addresses are held.
    await until('Exhausted=True on pool small', async () => {
      const s = await plugin(['status', '-o', 'yaml'], env);
      return /name: small[\s\S]*?type: Exhausted\n\s+status: "True"/.test(s.stdout) ? true : undefined;
    });
  });

  it('status: a context the kubeconfig does not have, or an unreachable server, is one error line and exit 1', async () => {
    const r = await plugin(['status', '--context', 'nope'], env);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'error: context "nope" is not in the kubeconfig\n');
    assert.equal(r.stdout, '');
    const bad = await plugin(['status', '-o', 'xml'], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^error: --output: expected yaml or json, got "xml"\n\nusage: kubectl admitlb status/);
  });

  it('explain: an allocated Service, by the rule that chose its address', async () => {
    const r = await plugin(['explain', 'svc/web'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Service: +default\/web\nVerdict: +has 203\.0\.113\.10 from IPPool "small"\nWhy: +automatic assignment: IPPool "small"/);
    assert.match(r.stdout, /\nDecided by: controller \(assignment check\)\n/);
    const j = JSON.parse((await plugin(['explain', 'svc/q1', '-n', 'team-q', '-o', 'json'], env)).stdout);
    assert.equal(j.verdict, 'kept');
    assert.match(j.reason, /^IPPool "quota" is named \(metadata\.annotations\[admitlb\.io\/pool\]\)/);
  });

  it('explain -f: a create into the exhausted pool, and one over the namespace quota, are denied with the webhook\'s words', async () => {
    const path = file('web3.yaml', service('web3'));
    const r = await plugin(['explain', '-f', path, '-o', 'json'], env);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.verdict, 'denied');
    // The very message the webhook gives the real create.
    const real = await c.kubectl(['apply', '-f', path]);
    assert.notEqual(real.code, 0);
    assert.ok(real.stderr.includes(j.reason), `${real.stderr} does not include ${j.reason}`);
    assert.equal(j.reason, 'spec.type: cannot allocate an IPv4 address: IPPool "small" has no free IPv4 address');

    const q2 = file('q2.yaml', service('q2', { namespace: 'team-q', annotations: { 'admitlb.io/pool': 'quota' } }));
    const text = await plugin(['explain', '-f', q2], env);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /\nVerdict: +denied: the create would be rejected\n/);
    assert.match(text.stdout, /namespace "team-q" already holds 1 of the 1 addresses its quota allows from IPPool "quota"/);
    assert.match(text.stdout, /\n {2}quota +LoadBalancer +no +- +yes +IPv4 7 +1\/1\n/);
    const create = await c.kubectl(['apply', '-f', q2]);
    assert.match(create.stderr, /namespace "team-q" already holds 1 of the 1 addresses its quota allows/);

    const gone = await plugin(['explain', 'svc/web3'], env);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /^error: service "web3" not found in namespace "default" \(a create that was denied leaves no Service: explain its manifest with -f\)\n$/);
  });

  it('plan -f: shrinking the pool keeps the older holder and strands the other; the webhook would refuse it unforced', async () => {
    const path = file('shrunk.yaml', pool('small', { addresses: ['203.0.113.10-203.0.113.10'] }));
    const r = await plugin(['plan', '-f', path], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^IPPool small \(update\): the webhook would refuse the change: IPPool "small" cannot change: spec\.addresses: 1 allocated address\(es\) would fall outside the pool \(e\.g\. 203\.0\.113\.11\)/);
    assert.match(r.stdout, /\ndefault\/web +kept +203\.0\.113\.10 \(small\) +203\.0\.113\.10 \(small\) /);
    assert.match(r.stdout, /\ndefault\/web2 +stranded +203\.0\.113\.11 \(small\) +- +assignment 203\.0\.113\.11 from IPPool "small" no longer fits/);
    assert.match(r.stdout, /\n1 kept, 0 moved, 1 stranded, 0 newly assigned\n$/);
    // The refusal is the webhook's own: the real apply is refused with the same words; nothing changed.
    const apply = await c.kubectl(['apply', '-f', path]);
    assert.notEqual(apply.code, 0);
    assert.match(apply.stderr, /1 allocated address\(es\) would fall outside the pool \(e\.g\. 203\.0\.113\.11\)/);
    assert.equal(await assignedIPs('web2'), '203.0.113.11');
    const moved = file('moved.yaml', pool('small', { addresses: ['203.0.113.10-203.0.113.10', '203.0.113.20-203.0.113.20'] }));
    const j = JSON.parse((await plugin(['plan', '-f', moved, '-o', 'json'], env)).stdout);
    assert.deepEqual(j.services.map((s: any) => [s.service, s.outcome, s.to.join()]), [['default/web', 'kept', '203.0.113.10'], ['default/web2', 'moved', '203.0.113.20']]);
  });

  it('explain: a Service left pending after its pool shrank, as the controller sees it', async () => {
    const shrunk = pool('small', { addresses: ['203.0.113.10-203.0.113.10'] });
    shrunk.metadata.annotations = { 'admitlb.io/force': 'true' };
    const r = await c.apply(shrunk);
    assert.equal(r.code, 0, r.stderr);
    await until('web2 to lose its address', async () => ((await assignedIPs('web2')) === '' ? true : undefined));
    const e = await plugin(['explain', 'svc/web2', '-o', 'json'], env);
    assert.equal(e.code, 0, e.stderr);
    const j = JSON.parse(e.stdout);
    assert.equal(j.verdict, 'pending');
    assert.equal(j.decidedBy, 'controller (back-stop, as an UPDATE)');
    assert.equal(j.reason, 'no address can be assigned: spec.type: cannot allocate an IPv4 address: IPPool "small" has no free IPv4 address');
    assert.ok(j.events.some((ev: any) => ev.reason === 'AllocationFailed'), JSON.stringify(j.events));
    // web keeps its address; status lists web2 as waiting, with the controller's Event.
    assert.equal(JSON.parse((await plugin(['explain', 'svc/web', '-o', 'json'], env)).stdout).verdict, 'kept');
    const status = await plugin(['status'], env);
    assert.match(status.stdout, /\nPENDING \(LoadBalancer Services without an address; .*\)\nSERVICE +LAST ALLOCATIONFAILED EVENT\ndefault\/web2 +No address assigned: spec\.type: cannot allocate an IPv4 address: IPPool "small" has no free IPv4 address\n/);
  });
});

describe(`kubectl admitlb doctor (${process.env.E2E_TARGET ?? 'sandbox'})`, () => {
  const lineOf = (out: string, name: string) => out.split('\n').find((l) => new RegExp(`^\\S+ +${name} `).test(l)) ?? '';

  it('a healthy installation: every check passes or says why it is skipped; exit 0', async () => {
    const r = await plugin(['doctor'], env);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    for (const name of ['webhook-configurations', 'webhook-endpoints', 'ca-bundle', 'certificate-expiry', 'api-server-reaches-webhook', 'clock-skew']) {
      assert.match(lineOf(r.stdout, name), /^pass /, `${name}: ${r.stdout}`);
    }
    assert.match(lineOf(r.stdout, 'api-server-reaches-webhook'), /answered by the webhook/);
    if (process.env.E2E_TARGET === 'real') {
      // A real authorizer: both components' permissions are checked against rbac.yaml.
      assert.match(lineOf(r.stdout, 'rbac-admitlb'), /^pass +rbac-admitlb +system:serviceaccount:admitlb-system:admitlb has all \d+ permissions rbac\.yaml grants$/);
      assert.match(lineOf(r.stdout, 'rbac-admitlb-speaker'), /^pass /);
      assert.match(lineOf(r.stdout, 'speakers'), /^skip +speakers +skipped: the cluster has no Nodes/);
    } else {
      assert.match(lineOf(r.stdout, 'rbac'), /^skip +rbac +skipped: the API server does not serve SubjectAccessReviews/);
      assert.match(lineOf(r.stdout, 'speakers'), /^skip +speakers +skipped: /);
    }
    const j = JSON.parse((await plugin(['doctor', '-o', 'json'], env)).stdout);
    assert.equal(j.failed, 0);
  });

  it('the mutating webhook pointed at a dead URL: its checks fail with the fix, exit 1', async () => {
    const path = '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/admitlb';
    const before = (await c.request('GET', path)).body as any;
    const dead = structuredClone(before);
    dead.webhooks[0].clientConfig = { url: 'https://127.0.0.1:1/mutate/services', caBundle: before.webhooks[0].clientConfig.caBundle };
    const put = await c.request('PUT', path, dead);
    assert.equal(put.status, 200, JSON.stringify(put.body));
    try {
      // The API server picks the configuration change up within a moment.
      const r = await until('the API server to call the dead URL', async () => {
        const d = await plugin(['doctor'], env);
        return /^fail +api-server-reaches-webhook /m.test(d.stdout) ? d : undefined;
      });
      assert.equal(r.code, 1);
      assert.match(lineOf(r.stdout, 'webhook-endpoints'), /^fail +webhook-endpoints +unreachable: https:\/\/127\.0\.0\.1:1\/mutate\/services \(.*ECONNREFUSED.*\); fix: /);
      assert.match(lineOf(r.stdout, 'api-server-reaches-webhook'), /^fail +api-server-reaches-webhook +the API server cannot call the webhook: .*failed calling webhook.*; fix: /);
      // The other webhooks still answer: the certificate is still checked through them.
      assert.match(lineOf(r.stdout, 'ca-bundle'), /^pass /);
    } finally {
      const now = (await c.request('GET', path)).body as any;
      const restore = await c.request('PUT', path, { ...before, metadata: { ...before.metadata, resourceVersion: now.metadata.resourceVersion } });
      assert.equal(restore.status, 200, JSON.stringify(restore.body));
    }
  });
});
