// End to end: the real kubectl against `admitlb sandbox` (API double + admitlb's own manifests + the
// webhook), as a user would type it. Addresses come back at create time or the create fails with the
// field and the reason.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { namespace, pool, service, startCluster, type E2eCluster } from './cluster-helpers.ts';

let c: E2eCluster;

const DENIED = 'admission webhook "services.admitlb.io" denied the request: ';
const V4_DEFAULT = /^203\.0\.113\.\d{1,3}$/;
const V6_DEFAULT = /^2001:db8:100::[0-9a-f]{0,4}$/;

before(async () => {
  c = await startCluster('services');
  // Pools for the cases below: disjoint ranges, none auto-assigned, so Services without a pool
  // annotation always get the default pool (203.0.113.0/24, 2001:db8:100::/120).
  const r = await c.apply(
    namespace('team-a'),
    namespace('team-b'),
    pool('blue', { addresses: ['198.51.100.0/28'], autoAssign: false }),
    pool('tiny', { addresses: ['198.51.100.20-198.51.100.20'], autoAssign: false }),
    pool('team-a-only', { addresses: ['192.0.2.0/28'], autoAssign: false, allocateTo: { namespaces: ['team-a'] } }),
    pool('shared', { addresses: ['198.51.100.64/28'], autoAssign: false, sharing: { crossNamespace: true } }),
    pool('externals', { addresses: ['198.51.100.128/28'], autoAssign: false, usage: ['ExternalIP'] }),
  );
  assert.equal(r.code, 0, r.stderr);
  for (const name of ['blue', 'tiny', 'team-a-only', 'shared', 'externals']) await c.waitForPool(name);
});
after(async () => {
  await c?.close();
});

async function annotations(name: string, ns = 'default'): Promise<Record<string, string>> {
  const r = await c.kubectl(['get', 'svc', name, '-n', ns, '-o', 'json']);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout).metadata.annotations ?? {};
}

async function claims(): Promise<Map<string, { pool: string; heldBy: string; holders: any[] }>> {
  const r = await c.kubectl(['get', 'ipclaims', '-o', 'json']);
  assert.equal(r.code, 0, r.stderr);
  return new Map(JSON.parse(r.stdout).items.map((i: any) => [i.spec.address, { pool: i.spec.pool, heldBy: i.spec.heldBy, holders: i.spec.holders }]));
}

describe('a LoadBalancer Service gets its address while kubectl create waits', () => {
  it('create, get, describe, list claims, delete', async () => {
    const created = await c.kubectl(['create', 'service', 'loadbalancer', 'web', '--tcp=80:80']);
    assert.equal(created.code, 0, created.stderr);
    assert.equal(created.stdout.trim(), 'service/web created');

    const ann = await annotations('web');
    assert.match(ann['admitlb.io/assigned-ips']!, V4_DEFAULT);
    assert.equal(ann['admitlb.io/assigned-pool'], 'default');
    assert.match(ann['admitlb.io/allocation']!, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a compact JWS');
    const ip = ann['admitlb.io/assigned-ips']!;
    assert.notEqual(ip, '203.0.113.0', 'the default pool avoids .0 and .255');

    const jsonpath = await c.kubectl(['get', 'svc', 'web', '-o', 'jsonpath={.metadata.annotations.admitlb\\.io/assigned-ips}']);
    assert.equal(jsonpath.stdout, ip);

    const describe = await c.kubectl(['describe', 'svc', 'web']);
    assert.equal(describe.code, 0, describe.stderr);
    assert.match(describe.stdout, new RegExp(`admitlb\\.io/assigned-ips: ${ip.replace(/\./g, '\\.')}`));
    assert.match(describe.stdout, /admitlb\.io\/assigned-pool: default/);
    assert.match(describe.stdout, /Type:\s+LoadBalancer/);

    const table = await c.kubectl(['get', 'ipclaims']);
    assert.match(table.stdout, /^NAME\s+ADDRESS\s+POOL\s+HELD BY\s+AGE/);
    assert.match(table.stdout, new RegExp(`${ip.replace(/\./g, '\\.')}\\s+${ip.replace(/\./g, '\\.')}\\s+default\\s+default/web\\s`));
    const claim = (await claims()).get(ip)!;
    assert.deepEqual(claim.holders.map((h) => [h.namespace, h.name, h.use, h.ports]), [['default', 'web', 'LoadBalancer', [{ protocol: 'TCP', port: 80 }]]]);

    const deleted = await c.kubectl(['delete', 'svc', 'web']);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.match(deleted.stdout, /service "web" deleted/);
    const gone = await c.kubectl(['get', 'svc', 'web']);
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /Error from server \(NotFound\): services "web" not found/);
  });

  it('the seed walkthrough: kubectl expose deployment nginx --type LoadBalancer', async () => {
    const dep = await c.kubectl(['create', 'deployment', 'nginx', '--image=nginx']);
    assert.equal(dep.code, 0, dep.stderr);
    const exposed = await c.kubectl(['expose', 'deployment', 'nginx', '--type', 'LoadBalancer', '--port', '80']);
    assert.equal(exposed.code, 0, exposed.stderr);
    assert.equal(exposed.stdout.trim(), 'service/nginx exposed');
    const ann = await annotations('nginx');
    assert.match(ann['admitlb.io/assigned-ips']!, V4_DEFAULT);
    assert.equal((await claims()).get(ann['admitlb.io/assigned-ips']!)?.heldBy, 'default/nginx');
    // The controller copies the signed assignment to status: `kubectl get svc` shows it, not <pending>.
    const deadline = Date.now() + 5000;
    let get = await c.kubectl(['get', 'svc', 'nginx']);
    while (!get.stdout.includes(ann['admitlb.io/assigned-ips']!) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      get = await c.kubectl(['get', 'svc', 'nginx']);
    }
    assert.match(get.stdout, new RegExp(`nginx\\s+LoadBalancer\\s+\\S+\\s+${ann['admitlb.io/assigned-ips']!.replaceAll('.', '\\.')}\\s`), get.stdout);
    assert.ok(!get.stdout.includes('<pending>'), get.stdout);
  });

  it('two Services never get the same address', async () => {
    for (const name of ['one', 'two']) {
      const r = await c.kubectl(['create', 'service', 'loadbalancer', name, '--tcp=80:80']);
      assert.equal(r.code, 0, r.stderr);
    }
    const [a, b] = [await annotations('one'), await annotations('two')];
    assert.notEqual(a['admitlb.io/assigned-ips'], b['admitlb.io/assigned-ips']);
  });

  it('a ClusterIP Service is left alone', async () => {
    const r = await c.kubectl(['create', 'service', 'clusterip', 'plain', '--tcp=80:80']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await annotations('plain'))['admitlb.io/assigned-ips'], undefined);
  });
});

describe('requested addresses and named pools', () => {
  it('admitlb.io/ips gets exactly the requested address', async () => {
    const r = await c.apply(service('req-ann', { annotations: { 'admitlb.io/ips': '198.51.100.5' } }));
    assert.equal(r.code, 0, r.stderr);
    const ann = await annotations('req-ann');
    assert.equal(ann['admitlb.io/assigned-ips'], '198.51.100.5');
    assert.equal(ann['admitlb.io/assigned-pool'], 'blue');
    assert.equal((await claims()).get('198.51.100.5')?.heldBy, 'default/req-ann');
  });

  it('spec.loadBalancerIP works too, with a deprecation warning on stderr', async () => {
    const r = await c.apply(service('req-spec', { spec: { loadBalancerIP: '198.51.100.6' } }));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^Warning: spec\.loadBalancerIP is deprecated; use the admitlb\.io\/ips annotation$/m);
    assert.equal((await annotations('req-spec'))['admitlb.io/assigned-ips'], '198.51.100.6');
  });

  it('admitlb.io/pool allocates from the named pool', async () => {
    const r = await c.apply(service('named', { annotations: { 'admitlb.io/pool': 'blue' } }));
    assert.equal(r.code, 0, r.stderr);
    const ann = await annotations('named');
    assert.equal(ann['admitlb.io/assigned-pool'], 'blue');
    assert.match(ann['admitlb.io/assigned-ips']!, /^198\.51\.100\.(\d|1[0-5])$/);
  });

  it('the MetalLB annotation means the same', async () => {
    const r = await c.apply(service('metallb', { annotations: { 'metallb.io/address-pool': 'blue' } }));
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await annotations('metallb'))['admitlb.io/assigned-pool'], 'blue');
  });
});

describe('denials name the field and the reason', () => {
  it('exhausted pool: kubectl create fails and names the pool', async () => {
    const first = await c.apply(service('tiny-1', { annotations: { 'admitlb.io/pool': 'tiny' } }));
    assert.equal(first.code, 0, first.stderr);
    assert.equal((await annotations('tiny-1'))['admitlb.io/assigned-ips'], '198.51.100.20');
    const second = await c.apply(service('tiny-2', { annotations: { 'admitlb.io/pool': 'tiny' } }));
    assert.notEqual(second.code, 0);
    assert.match(
      second.stderr,
      /^Error from server \(Conflict\): error when creating "STDIN": admission webhook "services\.admitlb\.io" denied the request: metadata\.annotations\[admitlb\.io\/pool\]: cannot allocate an IPv4 address: IPPool "tiny" has no free IPv4 address$/m,
    );
    const get = await c.kubectl(['get', 'svc', 'tiny-2']);
    assert.match(get.stderr, /NotFound/);
  });

  it('a namespace\'s own pool comes first (priority), then the default pool', async () => {
    const ns = await c.apply(pool('team-b-pool', { addresses: ['192.0.2.100-192.0.2.100'], allocateTo: { namespaces: ['team-b'], priority: 1 } }));
    assert.equal(ns.code, 0, ns.stderr);
    await c.waitForPool('team-b-pool');
    const ok = await c.kubectl(['create', 'service', 'loadbalancer', 'web', '-n', 'team-b', '--tcp=80:80']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((await annotations('web', 'team-b'))['admitlb.io/assigned-ips'], '192.0.2.100');
    // The next one falls through to the default pool (priority: team-b-pool first, then default).
    const next = await c.kubectl(['create', 'service', 'loadbalancer', 'web2', '-n', 'team-b', '--tcp=80:80']);
    assert.equal(next.code, 0, next.stderr);
    assert.match((await annotations('web2', 'team-b'))['admitlb.io/assigned-ips']!, V4_DEFAULT);
  });

  it('a requested address that is taken', async () => {
    const r = await c.apply(service('thief', { annotations: { 'admitlb.io/ips': '198.51.100.5' } }));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Error from server \(Conflict\): error when creating "STDIN": /);
    assert.ok(r.stderr.includes(`${DENIED}metadata.annotations[admitlb.io/ips]: 198.51.100.5 is already held by Service "req-ann"`), r.stderr);
  });

  it('a requested address in a pool the namespace may not use, or in no pool at all', async () => {
    const denied = await c.apply(service('wrong-ns', { annotations: { 'admitlb.io/ips': '192.0.2.5' } }));
    assert.notEqual(denied.code, 0);
    assert.ok(denied.stderr.includes(`${DENIED}metadata.annotations[admitlb.io/ips]: 192.0.2.5 is in IPPool "team-a-only", which is not available to this Service in namespace "default"`), denied.stderr);
    assert.match(denied.stderr, /Error from server \(Forbidden\)/);

    const allowed = await c.apply(service('right-ns', { namespace: 'team-a', annotations: { 'admitlb.io/ips': '192.0.2.5' } }));
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.equal((await annotations('right-ns', 'team-a'))['admitlb.io/assigned-ips'], '192.0.2.5');

    const byPool = await c.apply(service('wrong-pool', { annotations: { 'admitlb.io/pool': 'team-a-only' } }));
    assert.ok(byPool.stderr.includes(`${DENIED}metadata.annotations[admitlb.io/pool]: IPPool "team-a-only" is not available to this Service in namespace "default"`), byPool.stderr);

    const nowhere = await c.apply(service('nowhere', { spec: { loadBalancerIP: '10.11.12.13' } }));
    assert.notEqual(nowhere.code, 0);
    assert.ok(nowhere.stderr.includes(`${DENIED}spec.loadBalancerIP: 10.11.12.13 is outside the IPPools that serve LoadBalancer addresses`), nowhere.stderr);

    const missing = await c.apply(service('no-such-pool', { annotations: { 'admitlb.io/pool': 'nope' } }));
    assert.ok(missing.stderr.includes(`Error from server (NotFound): error when creating "STDIN": ${DENIED}metadata.annotations[admitlb.io/pool]: IPPool "nope" does not exist`), missing.stderr);
  });
});

describe('sharing an address', () => {
  it('the same sharing key and disjoint ports share one address', async () => {
    const r = await c.apply(
      service('share-http', { annotations: { 'admitlb.io/sharing-key': 'k1' }, ports: [80] }),
    );
    assert.equal(r.code, 0, r.stderr);
    const r2 = await c.apply(service('share-tls', { annotations: { 'admitlb.io/sharing-key': 'k1' }, ports: [443] }));
    assert.equal(r2.code, 0, r2.stderr);
    const [a, b] = [await annotations('share-http'), await annotations('share-tls')];
    assert.match(a['admitlb.io/assigned-ips']!, V4_DEFAULT);
    assert.equal(b['admitlb.io/assigned-ips'], a['admitlb.io/assigned-ips']);
    const claim = (await claims()).get(a['admitlb.io/assigned-ips']!)!;
    assert.equal(claim.heldBy, 'default/share-http,default/share-tls');
  });

  it('a port clash on the shared address is denied', async () => {
    const ip = (await annotations('share-http'))['admitlb.io/assigned-ips']!;
    const r = await c.apply(service('share-clash', { annotations: { 'admitlb.io/sharing-key': 'k1', 'admitlb.io/ips': ip }, ports: [80] }));
    assert.notEqual(r.code, 0);
    assert.ok(r.stderr.includes(`${DENIED}metadata.annotations[admitlb.io/ips]: port TCP/80 on ${ip} is already used by Service "share-http"`), r.stderr);
  });

  it('sharing across namespaces is denied unless the pool allows it', async () => {
    const ip = (await annotations('share-http'))['admitlb.io/assigned-ips']!;
    const denied = await c.apply(service('share-x', { namespace: 'team-a', annotations: { 'admitlb.io/sharing-key': 'k1', 'admitlb.io/ips': ip }, ports: [8080] }));
    assert.notEqual(denied.code, 0);
    // The same answer as for a wrong key: another namespace learns nothing about the key or the holder.
    const message = `${DENIED}metadata.annotations[admitlb.io/ips]: ${ip} is already held by another Service`;
    assert.ok(denied.stderr.includes(message), denied.stderr);
    const wrongKey = await c.apply(service('share-y', { namespace: 'team-a', annotations: { 'admitlb.io/sharing-key': 'not-k1', 'admitlb.io/ips': ip }, ports: [8080] }));
    assert.notEqual(wrongKey.code, 0);
    assert.equal(wrongKey.stderr.replace('share-y', 'share-x'), denied.stderr);

    const first = await c.apply(service('xs-a', { annotations: { 'admitlb.io/sharing-key': 'k2', 'admitlb.io/pool': 'shared' }, ports: [80] }));
    assert.equal(first.code, 0, first.stderr);
    const second = await c.apply(service('xs-b', { namespace: 'team-a', annotations: { 'admitlb.io/sharing-key': 'k2', 'admitlb.io/pool': 'shared' }, ports: [443] }));
    assert.equal(second.code, 0, second.stderr);
    const [a, b] = [await annotations('xs-a'), await annotations('xs-b', 'team-a')];
    assert.match(a['admitlb.io/assigned-ips']!, /^198\.51\.100\.(6[4-9]|7\d)$/);
    assert.equal(b['admitlb.io/assigned-ips'], a['admitlb.io/assigned-ips']);
    assert.equal((await claims()).get(a['admitlb.io/assigned-ips']!)?.heldBy, 'default/xs-a,team-a/xs-b');
  });
});

describe('dual-stack', () => {
  it('RequireDualStack gets an IPv4 and an IPv6 address from one pool', async () => {
    const r = await c.apply(service('ds-require', { spec: { ipFamilyPolicy: 'RequireDualStack' } }));
    assert.equal(r.code, 0, r.stderr);
    const [v4, v6, extra] = (await annotations('ds-require'))['admitlb.io/assigned-ips']!.split(',');
    assert.match(v4!, V4_DEFAULT);
    assert.match(v6!, V6_DEFAULT);
    assert.equal(extra, undefined);
    const all = await claims();
    assert.equal(all.get(v4!)?.heldBy, 'default/ds-require');
    assert.equal(all.get(v6!)?.heldBy, 'default/ds-require');
    const svc = JSON.parse((await c.kubectl(['get', 'svc', 'ds-require', '-o', 'json'])).stdout);
    assert.deepEqual(svc.spec.ipFamilies, ['IPv4', 'IPv6']);
  });

  it('PreferDualStack with IPv6 first gets both, IPv6 first', async () => {
    const r = await c.apply(service('ds-prefer', { spec: { ipFamilyPolicy: 'PreferDualStack', ipFamilies: ['IPv6', 'IPv4'] } }));
    assert.equal(r.code, 0, r.stderr);
    const [first, second] = (await annotations('ds-prefer'))['admitlb.io/assigned-ips']!.split(',');
    assert.match(first!, V6_DEFAULT);
    assert.match(second!, V4_DEFAULT);
  });

  it('PreferDualStack from an IPv4-only pool gets IPv4; RequireDualStack is denied', async () => {
    const prefer = await c.apply(service('ds-v4only', { annotations: { 'admitlb.io/pool': 'blue' }, spec: { ipFamilyPolicy: 'PreferDualStack' } }));
    assert.equal(prefer.code, 0, prefer.stderr);
    assert.match((await annotations('ds-v4only'))['admitlb.io/assigned-ips']!, /^198\.51\.100\.\d+$/);
    const require = await c.apply(service('ds-denied', { annotations: { 'admitlb.io/pool': 'blue' }, spec: { ipFamilyPolicy: 'RequireDualStack' } }));
    assert.notEqual(require.code, 0);
    assert.ok(require.stderr.includes(`${DENIED}metadata.annotations[admitlb.io/pool]: cannot allocate an IPv4 and an IPv6 address: IPPool "blue" has no IPv6 addresses`), require.stderr);
  });
});

describe('dry run', () => {
  it('kubectl create --dry-run=server shows the address that would be assigned and claims nothing', async () => {
    const before = await claims();
    const r = await c.kubectl(['create', 'service', 'loadbalancer', 'dry', '--tcp=80:80', '--dry-run=server', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const shown = JSON.parse(r.stdout);
    assert.match(shown.metadata.annotations['admitlb.io/assigned-ips'], V4_DEFAULT);
    assert.ok(!before.has(shown.metadata.annotations['admitlb.io/assigned-ips']), 'a free address');
    const after = await claims();
    assert.deepEqual([...after.keys()].sort(), [...before.keys()].sort());
    assert.match((await c.kubectl(['get', 'svc', 'dry'])).stderr, /NotFound/);

    const applied = await c.kubectl(['apply', '--dry-run=server', '-f', '-'], JSON.stringify(service('dry-apply', { annotations: { 'admitlb.io/pool': 'blue' } })));
    assert.equal(applied.code, 0, applied.stderr);
    assert.match(applied.stdout, /service\/dry-apply created \(server dry run\)/);
    assert.deepEqual([...(await claims()).keys()].sort(), [...before.keys()].sort());
  });
});

describe('externalIPs (CVE-2020-8554)', () => {
  it('an externalIP outside every ExternalIP pool is denied (enforce is the default)', async () => {
    const r = await c.apply(service('ext-bad', { type: 'ClusterIP', spec: { externalIPs: ['192.0.2.200'] } }));
    assert.notEqual(r.code, 0);
    assert.ok(r.stderr.includes(`Error from server (Forbidden): error when creating "STDIN": ${DENIED}spec.externalIPs[0]: 192.0.2.200 is outside the IPPools that serve externalIPs`), r.stderr);
  });

  it('an externalIP from an ExternalIP pool is allowed and claimed', async () => {
    const r = await c.apply(service('ext-ok', { type: 'ClusterIP', spec: { externalIPs: ['198.51.100.130'] } }));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Warning: spec\.externalIPs is deprecated upstream/);
    const claim = (await claims()).get('198.51.100.130')!;
    assert.equal(claim.pool, 'externals');
    assert.deepEqual(claim.holders.map((h) => [h.namespace, h.name, h.use]), [['default', 'ext-ok', 'ExternalIP']]);
    const taken = await c.apply(service('ext-taken', { type: 'ClusterIP', spec: { externalIPs: ['198.51.100.130'] } }));
    assert.ok(taken.stderr.includes(`${DENIED}spec.externalIPs[0]: 198.51.100.130 is already held by Service "ext-ok"`), taken.stderr);
  });

  it('a ClusterIP Service naming an ExternalIP pool gets spec.externalIPs assigned', async () => {
    const r = await c.apply(service('ext-pool', { type: 'ClusterIP', annotations: { 'admitlb.io/pool': 'externals' } }));
    assert.equal(r.code, 0, r.stderr);
    const svc = JSON.parse((await c.kubectl(['get', 'svc', 'ext-pool', '-o', 'json'])).stdout);
    assert.equal(svc.spec.externalIPs.length, 1);
    assert.match(svc.spec.externalIPs[0], /^198\.51\.100\.(12[89]|1[34]\d)$/);
    assert.equal(svc.metadata.annotations['admitlb.io/assigned-ips'], svc.spec.externalIPs[0]);
  });

  it('a LoadBalancer Service cannot take an ExternalIP-only pool', async () => {
    const r = await c.apply(service('lb-ext-pool', { annotations: { 'admitlb.io/pool': 'externals' } }));
    assert.ok(r.stderr.includes(`${DENIED}metadata.annotations[admitlb.io/pool]: IPPool "externals" does not serve LoadBalancer addresses`), r.stderr);
  });
});

describe('pools are validated too', () => {
  it('an overlapping pool is rejected by the validating webhook', async () => {
    const r = await c.apply(pool('overlap', { addresses: ['198.51.100.8/29'] }));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /admission webhook "ippools\.admitlb\.io" denied the request: .*overlap/i);
  });
});

describe('only the API server may call the webhook', () => {
  it('a review posted straight to the webhook (as any pod could) is refused and claims nothing; the API server\'s own calls pass', async () => {
    const { request } = await import('node:https');
    const before = (await claims()).size;
    const forged = {
      apiVersion: 'admission.k8s.io/v1',
      kind: 'AdmissionReview',
      request: {
        uid: 'forged', kind: { group: '', version: 'v1', kind: 'Service' }, resource: { group: '', version: 'v1', resource: 'services' },
        namespace: 'no-such-namespace', name: 'grab', operation: 'CREATE', userInfo: { username: 'mallory' },
        object: service('grab', { namespace: 'no-such-namespace' }), oldObject: null, dryRun: false,
      },
    };
    const reply = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${c.sandbox.webhook.url.replace('0.0.0.0', '127.0.0.1')}/mutate/services`, { method: 'POST', ca: c.sandbox.files.caPem, headers: { 'content-type': 'application/json' }, agent: false }, (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
      req.end(JSON.stringify(forged));
    });
    assert.equal(reply.status, 401, reply.body);
    assert.match(reply.body, /admission endpoints answer the API server only/);
    assert.equal((await claims()).size, before);
    const created = await c.kubectl(['create', 'service', 'loadbalancer', 'authentic', '--tcp=80:80']);
    assert.equal(created.code, 0, created.stderr);
    assert.match((await annotations('authentic'))['admitlb.io/assigned-ips'] ?? '', V4_DEFAULT);
  });
});
