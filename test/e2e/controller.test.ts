// End to end: the controller on the sandbox, seen through the real kubectl. Status appears right
// after create, freed addresses go to waiting Services, orphans are collected after the grace, forged
// status is put back, the back-stop serves Services that bypassed the webhook, shrinking a pool
// moves its holders, and restarting everything changes nothing that was valid.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createOrReplace, objectBody, webhookConfigurations } from '../../src/cmd/sandbox.ts';
import { checkNoAddressHeldTwice, namespace, pool, service, startCluster, type E2eCluster } from './cluster-helpers.ts';
import { sleep, until } from './cluster-helpers.ts';

let c: E2eCluster;
const GRACE_S = 2;

before(async () => {
  c = await startCluster('controller', { controller: { orphanGraceSeconds: GRACE_S } });
  const r = await c.apply(
    namespace('tiny'),
    namespace('shrink'),
    namespace('bypass'),
    pool('tiny', { addresses: ['198.51.100.7-198.51.100.7'], allocateTo: { namespaces: ['tiny'], priority: 0 } }),
    pool('shrink', { addresses: ['198.51.100.16/29'], allocateTo: { namespaces: ['shrink'], priority: 0 } }),
  );
  assert.equal(r.code, 0, r.stderr);
  await c.waitForPool('tiny');
  await c.waitForPool('shrink');
});
after(async () => {
  await c?.close();
});


async function svcJson(name: string, ns = 'default'): Promise<any> {
  const r = await c.request('GET', `/api/v1/namespaces/${ns}/services/${name}`);
  return r.status === 200 ? r.body : undefined;
}

const statusIPs = (s: any): string => (s?.status?.loadBalancer?.ingress ?? []).map((i: any) => i.ip).join(',');
const assigned = (s: any): string => s?.metadata?.annotations?.['admitlb.io/assigned-ips'] ?? '';

async function claimAddresses(): Promise<Map<string, string[]>> {
  const r = await c.request('GET', '/apis/admitlb.io/v1alpha1/ipclaims');
  return new Map(objectBody(r).items.map((i: any) => [i.spec.address, i.spec.holders.map((h: any) => `${h.namespace}/${h.name}`)]));
}

async function events(name: string, ns = 'default'): Promise<string> {
  const r = await c.kubectl(['describe', 'svc', name, '-n', ns]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

/** Removes admitlb's mutating webhook configuration, as if the webhook were down with failurePolicy Ignore. */
async function withoutWebhook<T>(fn: () => Promise<T>): Promise<T> {
  const del = await c.kubectl(['delete', 'mutatingwebhookconfiguration', 'admitlb']);
  assert.equal(del.code, 0, del.stderr);
  try {
    return await fn();
  } finally {
    const url = `https://127.0.0.1:${new URL(c.sandbox.webhook.url).port}`;
    for (const obj of await webhookConfigurations(url, c.sandbox.files.caPem)) await createOrReplace(c.sandbox.api, obj);
  }
}

describe('controller on the sandbox', () => {
  it('status.loadBalancer.ingress appears within a second of create; kubectl get svc shows the address', async () => {
    const created = await c.kubectl(['create', 'service', 'loadbalancer', 'web', '--tcp=80:80']);
    assert.equal(created.code, 0, created.stderr);
    const t0 = Date.now();
    const s = await until('status', async () => {
      const s = await svcJson('web');
      return statusIPs(s) ? s : undefined;
    });
    const elapsed = Date.now() - t0;
    console.log(`# status written ${elapsed} ms after kubectl create returned`);
    assert.ok(elapsed < 1000, `status took ${elapsed} ms`);
    assert.equal(statusIPs(s), assigned(s));
    assert.equal(s.status.loadBalancer.ingress[0].ipMode, 'VIP');
    const get = await c.kubectl(['get', 'svc', 'web']);
    assert.equal(get.code, 0, get.stderr);
    assert.ok(get.stdout.includes(assigned(s)), get.stdout);
    assert.ok(!get.stdout.includes('<pending>'), get.stdout);
    assert.match(await events('web'), /IPAllocated\s+.*Assigned 203\.0\.113\.\d+ from IPPool "default"/);
  });

  it('a forged status is restored, with a StatusRestored event', async () => {
    const before = await svcJson('web');
    const forged = await c.kubectl(['patch', 'svc', 'web', '--subresource=status', '--type=merge', '-p', '{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.66"}]}}}']);
    assert.equal(forged.code, 0, forged.stderr);
    await until('restored status', async () => (statusIPs(await svcJson('web')) === assigned(before) ? true : undefined), 5000);
    assert.match(await events('web'), /StatusRestored.*192\.0\.2\.66/s);
  });

  it('a Service created while the webhook is down gets an address from the back-stop', async () => {
    await withoutWebhook(async () => {
      const created = await c.kubectl(['create', 'service', 'loadbalancer', 'late', '-n', 'bypass', '--tcp=80:80']);
      assert.equal(created.code, 0, created.stderr);
      const s = await until('back-stop assignment and status', async () => {
        const s = await svcJson('late', 'bypass');
        return assigned(s) && statusIPs(s) === assigned(s) ? s : undefined;
      });
      assert.match(assigned(s), /^203\.0\.113\.\d+$/);
      assert.ok(s.metadata.annotations['admitlb.io/allocation'], 'signed like the webhook signs');
      assert.deepEqual((await claimAddresses()).get(assigned(s)), ['bypass/late']);
    });
  });

  it('deleting a Service frees its claim and a waiting Service takes the address', async () => {
    // Both name the one-address pool: the default pool would otherwise serve the second.
    assert.equal((await c.apply(service('first', { namespace: 'tiny', annotations: { 'admitlb.io/pool': 'tiny' } }))).code, 0);
    const first = await until('first assigned', async () => (assigned(await svcJson('first', 'tiny')) === '198.51.100.7' ? true : undefined));
    assert.ok(first);
    // The pool is full: only a Service that bypassed the webhook can exist without an address.
    await withoutWebhook(async () => {
      assert.equal((await c.apply(service('second', { namespace: 'tiny', annotations: { 'admitlb.io/pool': 'tiny' } }))).code, 0);
      await until('AllocationFailed event', async () => (/AllocationFailed/.test(await events('second', 'tiny')) ? true : undefined));
    });
    assert.equal(assigned(await svcJson('second', 'tiny')), '');
    assert.equal((await c.kubectl(['delete', 'svc', 'first', '-n', 'tiny'])).code, 0);
    const s = await until('second takes the address', async () => {
      const s = await svcJson('second', 'tiny');
      return assigned(s) === '198.51.100.7' && statusIPs(s) === '198.51.100.7' ? s : undefined;
    });
    assert.ok(s);
    assert.deepEqual((await claimAddresses()).get('198.51.100.7'), ['tiny/second']);
  });

  it('a claim left by an admission that was rejected later disappears after the grace', async () => {
    // A later validating webhook that cannot be reached (failurePolicy Fail) rejects the create
    // after admitlb's mutating webhook has claimed the address.
    const reject = {
      apiVersion: 'admissionregistration.k8s.io/v1',
      kind: 'ValidatingWebhookConfiguration',
      metadata: { name: 'zz-reject-labelled' },
      webhooks: [
        {
          name: 'reject.example.com',
          admissionReviewVersions: ['v1'],
          sideEffects: 'None',
          failurePolicy: 'Fail',
          timeoutSeconds: 1,
          clientConfig: { url: 'https://127.0.0.1:1/reject' },
          objectSelector: { matchLabels: { reject: 'doomed' } },
          rules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['services'], scope: '*' }],
        },
      ],
    };
    assert.equal((await c.apply(reject)).code, 0);
    try {
      const before = await claimAddresses();
      const r = await c.kubectl(['apply', '-f', '-'], JSON.stringify(service('doomed', { labels: { reject: 'doomed' } })));
      assert.notEqual(r.code, 0, `the create is rejected: ${r.stdout} ${r.stderr}`);
      assert.match(r.stderr, /reject\.example\.com/);
      const after = await claimAddresses();
      const orphan = [...after.keys()].find((a) => !before.has(a));
      assert.ok(orphan, 'admitlb claimed an address before the later rejection');
      assert.deepEqual(after.get(orphan), ['default/doomed']);
      const t0 = Date.now();
      await until('orphan collected', async () => (!(await claimAddresses()).has(orphan) ? true : undefined), (GRACE_S + 10) * 1000);
      const waited = Date.now() - t0;
      assert.ok(waited >= (GRACE_S - 1) * 1000, `collected after ${waited} ms, before the ${GRACE_S} s grace`);
    } finally {
      await c.kubectl(['delete', 'validatingwebhookconfiguration', 'zz-reject-labelled']);
    }
  });

  it('shrinking a pool (forced) moves its holders into what is left', async () => {
    for (const n of ['s1', 's2', 's3', 's4']) {
      assert.equal((await c.kubectl(['create', 'service', 'loadbalancer', n, '-n', 'shrink', '--tcp=80:80'])).code, 0);
    }
    const beforeIPs = await Promise.all(['s1', 's2', 's3', 's4'].map(async (n) => assigned(await svcJson(n, 'shrink'))));
    assert.deepEqual(beforeIPs, ['198.51.100.16', '198.51.100.17', '198.51.100.18', '198.51.100.19']);
    const shrunk = pool('shrink', { addresses: ['198.51.100.18/31', '198.51.100.20/31'], allocateTo: { namespaces: ['shrink'], priority: 0 } });
    shrunk.metadata.annotations = { 'admitlb.io/force': 'true' };
    const r = await c.apply(shrunk);
    assert.equal(r.code, 0, r.stderr);
    const after = await until('holders moved', async () => {
      const ips = await Promise.all(['s1', 's2', 's3', 's4'].map(async (n) => {
        const s = await svcJson(n, 'shrink');
        return statusIPs(s) === assigned(s) ? assigned(s) : '?';
      }));
      return ips.every((ip) => ['198.51.100.18', '198.51.100.19', '198.51.100.20', '198.51.100.21'].includes(ip)) ? ips : undefined;
    });
    assert.equal(after[2], '198.51.100.18', 'holders inside the new ranges keep their address');
    assert.equal(after[3], '198.51.100.19');
    assert.equal(new Set(after).size, 4);
    // The old claims go once the move has settled (5 s: a lagging cache must not free an address).
    await until('the old claims are released', async () => {
      const claims = await claimAddresses();
      return !claims.has('198.51.100.16') && !claims.has('198.51.100.17') ? true : undefined;
    });
    assert.match(await events('s1', 'shrink'), /IPAllocated/);
  });

  it('restarting everything leaves every valid assignment untouched', async () => {
    const snapshot = async () => {
      const r = await c.request('GET', '/api/v1/services');
      return new Map<string, string>(
        objectBody(r).items.map((s: any) => [`${s.metadata.namespace}/${s.metadata.name}`, `${s.metadata.resourceVersion} ${assigned(s)} ${statusIPs(s)}`]),
      );
    };
    await sleep(300);
    const before = await snapshot();
    const dataDir = c.dataDir;
    await c.close({ keepData: true });
    c = await startCluster('controller', { dataDir, controller: { orphanGraceSeconds: GRACE_S } });
    // Let the new controller get elected (the old lease was released on close) and converge.
    await until('leader', async () => (c.sandbox.webhook.controller?.isLeader() ? true : undefined), 15_000);
    await c.sandbox.webhook.controller!.controller.idle();
    assert.deepEqual(await snapshot(), before);
    const check = await checkNoAddressHeldTwice(c.sandbox.api);
    assert.deepEqual(check.problems, []);
  });
});
