// failurePolicy Ignore as a supported choice (webhook-manifests/failure-policy-ignore/): with the
// webhook unreachable, Service creates succeed, and the controller's back-stop gives the LoadBalancer
// Services their addresses, signed and claimed like the webhook's, whether it was running during the
// outage or starts after it. The patch applied is the component's own file.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../../src/cmd/sandbox.ts';
import { objectBody } from '../../src/sandbox/api-client.ts';
import { checkNoAddressHeldTwice, namespace, pool, startCluster, until, type E2eCluster } from './cluster-helpers.ts';

let c: E2eCluster;
const children: ChildProcess[] = [];
/** The bound README states for the back-stop with a running controller (generous for loaded CI machines). */
const BACKSTOP_BOUND_MS = 5_000;

before(async () => {
  // The sandbox's webhook runs without its controller: the controller below is its own process, as
  // in a cluster where the webhook's endpoints are unreachable but a controller replica runs.
  c = await startCluster('ignore', { controller: { enabled: false } });
  const r = await c.apply(namespace('outage'), pool('outage', { addresses: ['198.51.100.32/29'], allocateTo: { namespaces: ['outage'], priority: 0 } }));
  assert.equal(r.code, 0, r.stderr);
  await c.waitForPool('outage');
});
after(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await c?.close();
});

function spawnController(): ChildProcess {
  const child = spawn(
    process.execPath,
    [join(PROJECT_ROOT, 'bin/admitlb.js'), 'controller', '--signing-keys-dir', c.sandbox.files.signingKeysDir, '--kubeconfig', c.kubeconfig, '--host', '127.0.0.1', '--port', '0', '--log-level', process.env.BACKSTOP_LOG ?? 'warn'],
    { stdio: ['ignore', process.env.BACKSTOP_LOG ? 'inherit' : 'ignore', 'inherit'], env: { ...process.env, POD_NAME: `backstop-${children.length}` } },
  );
  children.push(child);
  return child;
}

async function stopController(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

async function webhookOf(): Promise<any> {
  const r = await c.request('GET', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/admitlb');
  assert.equal(r.status, 200);
  return objectBody(r);
}

/** The Service webhook made unreachable: its URL now points at a port nothing listens on. */
async function webhookDown(): Promise<() => Promise<void>> {
  const before = (await webhookOf()).webhooks[0].clientConfig;
  const dead = { url: 'https://127.0.0.1:1/mutate/services', ...(before.caBundle ? { caBundle: before.caBundle } : {}) };
  const r = await c.kubectl(['patch', 'mutatingwebhookconfiguration', 'admitlb', '--type=json', '-p', JSON.stringify([{ op: 'replace', path: '/webhooks/0/clientConfig', value: dead }])]);
  assert.equal(r.code, 0, r.stderr);
  return async () => {
    const back = await c.kubectl(['patch', 'mutatingwebhookconfiguration', 'admitlb', '--type=json', '-p', JSON.stringify([{ op: 'replace', path: '/webhooks/0/clientConfig', value: before }])]);
    assert.equal(back.code, 0, back.stderr);
  };
}

async function assignedAndClaimed(name: string): Promise<string | undefined> {
  const r = await c.request('GET', `/api/v1/namespaces/outage/services/${name}`);
  if (r.status !== 200) return undefined;
  const ips: string = objectBody(r).metadata?.annotations?.['admitlb.io/assigned-ips'] ?? '';
  const status = (objectBody(r).status?.loadBalancer?.ingress ?? []).map((i: any) => i.ip).join(',');
  if (!ips || ips !== status || !objectBody(r).metadata.annotations['admitlb.io/allocation']) return undefined;
  const claims = await c.request('GET', '/apis/admitlb.io/v1alpha1/ipclaims');
  const claim = objectBody(claims).items.find((i: any) => i.spec.address === ips);
  return claim?.spec.holders.some((h: any) => h.namespace === 'outage' && h.name === name) ? ips : undefined;
}

describe('failurePolicy Ignore (the failure-policy-ignore component)', () => {
  it('the component sets Ignore on the Service webhook only', async () => {
    const patch = parse(readFileSync(join(PROJECT_ROOT, 'webhook-manifests/failure-policy-ignore/patch.yaml'), 'utf8'));
    const r = await c.kubectl(['patch', 'mutatingwebhookconfiguration', 'admitlb', '--type=json', '-p', JSON.stringify(patch)]);
    assert.equal(r.code, 0, r.stderr);
    const w = await webhookOf();
    assert.equal(w.webhooks[0].name, 'services.admitlb.io');
    assert.equal(w.webhooks[0].failurePolicy, 'Ignore');
    const v = await c.request('GET', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/admitlb');
    for (const hook of objectBody(v).webhooks) assert.equal(hook.failurePolicy, 'Fail', `${hook.name} keeps Fail`);
  });

  it('webhook unreachable, controller running: creates succeed and get their addresses from the back-stop', async () => {
    const controller = spawnController();
    const restore = await webhookDown();
    try {
      // Under Fail the same create would be refused ("failed calling webhook"): Ignore lets it through.
      const times: number[] = [];
      for (const name of ['a', 'b', 'c']) {
        const created = await c.kubectl(['create', 'service', 'loadbalancer', name, '-n', 'outage', '--tcp=80:80']);
        assert.equal(created.code, 0, created.stderr);
        const t0 = Date.now();
        const ip = await until(`back-stop address for outage/${name}`, () => assignedAndClaimed(name), 30_000);
        times.push(Date.now() - t0);
        assert.match(ip, /^198\.51\.100\.(3[2-9])$/);
      }
      // The first create may wait for the controller to start and sync; the others are steady state.
      for (const ms of times.slice(1)) assert.ok(ms <= BACKSTOP_BOUND_MS, `assigned ${ms} ms after the create (bound ${BACKSTOP_BOUND_MS} ms)`);
      console.log(`# back-stop with the webhook down: assigned ${times.map((t) => `${t} ms`).join(', ')} after each create`);
    } finally {
      await restore();
      await stopController(controller);
    }
  });

  it('webhook and controller both down: creates succeed; the controller assigns them when it starts', async () => {
    const restore = await webhookDown();
    try {
      for (const name of ['d', 'e']) {
        const created = await c.kubectl(['create', 'service', 'loadbalancer', name, '-n', 'outage', '--tcp=80:80']);
        assert.equal(created.code, 0, created.stderr);
      }
      const r = await c.request('GET', '/api/v1/namespaces/outage/services/d');
      assert.equal(objectBody(r).metadata.annotations?.['admitlb.io/assigned-ips'], undefined, 'nobody assigned anything during the outage');
      const controller = spawnController();
      try {
        for (const name of ['d', 'e']) await until(`address for outage/${name} after the controller started`, () => assignedAndClaimed(name), 30_000);
      } finally {
        await stopController(controller);
      }
    } finally {
      await restore();
    }
    const check = await checkNoAddressHeldTwice(c.sandbox.api);
    assert.deepEqual(check.problems, []);
  });

  it('with the webhook back, creates are answered by it again (address in the create response)', async () => {
    const created = await c.kubectl(['create', 'service', 'loadbalancer', 'f', '-n', 'outage', '--tcp=80:80', '-o', 'json']);
    assert.equal(created.code, 0, created.stderr);
    assert.match(JSON.parse(created.stdout).metadata.annotations['admitlb.io/assigned-ips'], /^198\.51\.100\./);
  });
});
