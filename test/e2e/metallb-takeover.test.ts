// Taking over from MetalLB without renumbering: 200 LoadBalancer Services get their addresses the way
// MetalLB's controller gives them (a status write through services/status, some with MetalLB's
// annotations, shared pairs and dual-stack ones among them) while admitlb is not installed. Then
// admitlb's webhooks are installed and its controller started: every Service keeps exactly its
// address, each with an IPClaim, and new Services with MetalLB's annotations get what those ask.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { apiRequest, objectBody } from '../../src/sandbox/api-client.ts';
import { createOrReplace, PROJECT_ROOT, webhookConfigurations } from '../../src/cmd/sandbox.ts';
import { checkNoAddressHeldTwice, e2eTarget, namespace, pool, service, sleep, startCluster, until, type E2eCluster } from './cluster-helpers.ts';

const COUNT = 200;
const NAMESPACES = ['shop', 'blog'];
let c: E2eCluster;
let controller: ChildProcess | undefined;

interface Planned {
  ns: string;
  name: string;
  /** the addresses MetalLB's controller wrote into the status */
  status: string[];
  annotations?: Record<string, string>;
  ports?: number[];
  spec?: Record<string, unknown>;
}

/**
 * MetalLB's picture: addresses handed out from the top of its pool down (so a fresh allocation
 * from the lowest free address would renumber every Service), every tenth Service from the manual
 * pool it names, one in ten asking for its address, pairs sharing one by key, some dual-stack.
 */
function plan(): Planned[] {
  const out: Planned[] = [];
  let next = 250;
  let manual = 60;
  for (let i = 0; out.length < COUNT; i++) {
    const ns = NAMESPACES[i % 2]!;
    const name = `svc-${String(i).padStart(3, '0')}`;
    const kind = i % 10;
    if (kind === 1) out.push({ ns, name, status: [`203.0.113.${manual--}`], annotations: { 'metallb.universe.tf/address-pool': 'manual' } });
    else if (kind === 2) {
      const ip = `198.51.100.${next--}`;
      out.push({ ns, name, status: [ip], annotations: { 'metallb.io/loadBalancerIPs': ip } });
    } else if (kind === 3 && out.length + 2 <= COUNT) {
      // Two Services of one namespace share one address on different ports (allow-shared-ip).
      const ip = `198.51.100.${next--}`;
      const key = `pair-${i}`;
      out.push({ ns, name, status: [ip], ports: [80], annotations: { 'metallb.io/allow-shared-ip': key } });
      out.push({ ns, name: `${name}-tls`, status: [ip], ports: [443], annotations: { 'metallb.io/allow-shared-ip': key } });
    } else if (kind === 5) {
      out.push({ ns, name, status: [`198.51.100.${next--}`, `2001:db8:100::${(0xff - i).toString(16)}`], spec: { ipFamilies: ['IPv4', 'IPv6'], ipFamilyPolicy: 'RequireDualStack' } });
    } else out.push({ ns, name, status: [`198.51.100.${next--}`] });
  }
  return out;
}
const planned = plan();

const ingress = (s: any): string[] => (s?.status?.loadBalancer?.ingress ?? []).map((i: any) => i.ip);
const assignedIPs = (s: any): string[] => (s?.metadata?.annotations?.['admitlb.io/assigned-ips'] ?? '').split(',').filter(Boolean);
const same = (a: string[], b: string[]) => [...a].sort().join() === [...b].sort().join();

async function services(): Promise<Map<string, any>> {
  const r = await c.request('GET', '/api/v1/services');
  assert.equal(r.status, 200);
  return new Map(objectBody(r).items.map((s: any) => [`${s.metadata.namespace}/${s.metadata.name}`, s]));
}

async function getService(ns: string, name: string): Promise<any> {
  const r = await c.request('GET', `/api/v1/namespaces/${ns}/services/${name}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return objectBody(r);
}

/** Runs `fn` over `items` with at most `width` at once. */
async function inParallel<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (i < items.length) await fn(items[i++]!);
  }));
}

/** Whether a dry-run create of a LoadBalancer Service comes back with an admitlb assignment. */
async function webhookAssigns(): Promise<boolean> {
  const r = await c.request('POST', '/api/v1/namespaces/default/services?dryRun=All', service('probe'));
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return assignedIPs(objectBody(r)).length > 0;
}

async function statusWrite(ns: string, name: string, ips: string[]): Promise<void> {
  const path = `/api/v1/namespaces/${ns}/services/${name}/status`;
  const body = { status: { loadBalancer: { ingress: ips.map((ip) => ({ ip, ipMode: 'VIP' })) } } };
  const r = await apiRequest(c.sandbox.api, 'PATCH', path, body, undefined, { 'Content-Type': 'application/merge-patch+json' });
  assert.equal(r.status, 200, `${ns}/${name}: ${JSON.stringify(r.body)}`);
}

before(async () => {
  // The sandbox's webhook runs without its controller: the controller is started below, as its own
  // process, when admitlb is "installed".
  c = await startCluster('metallb-takeover', { controller: { enabled: false }, defaultPool: false });
  const r = await c.apply(
    ...NAMESPACES.map((n) => namespace(n)),
    // What `kubectl admitlb migrate` makes of MetalLB's IPAddressPools: the auto-assigned one and one
    // that serves only Services naming it.
    pool('default', { addresses: ['198.51.100.0/24', '2001:db8:100::/120'] }),
    pool('manual', { addresses: ['203.0.113.0/26'], autoAssign: false }),
  );
  assert.equal(r.code, 0, r.stderr);
  await c.waitForPool('default');
  await c.waitForPool('manual');
  // admitlb not installed yet: neither its Service webhook nor its services-status webhook.
  for (const kind of ['mutatingwebhookconfiguration', 'validatingwebhookconfiguration']) {
    const del = await c.kubectl(['delete', kind, 'admitlb']);
    assert.equal(del.code, 0, del.stderr);
  }
  await until('the API server to stop calling the webhook', async () => ((await webhookAssigns()) ? undefined : true), 30_000);
});

after(async () => {
  if (controller && controller.exitCode === null && controller.signalCode === null) {
    const exited = new Promise((resolve) => controller!.once('exit', resolve));
    controller.kill('SIGTERM');
    const timer = setTimeout(() => controller!.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
  await c?.close();
});

describe(`taking over from MetalLB (${e2eTarget()})`, () => {
  it(`${COUNT} Services with MetalLB's addresses keep them when admitlb is installed: zero renumbered`, async () => {
    // MetalLB's era: Services created without admitlb, their status written by "MetalLB's controller".
    await inParallel(planned, 16, async (p) => {
      const body = service(p.name, { namespace: p.ns, ...(p.annotations ? { annotations: p.annotations } : {}), ...(p.ports ? { ports: p.ports } : {}), ...(p.spec ? { spec: p.spec } : {}) });
      const r = await c.request('POST', `/api/v1/namespaces/${p.ns}/services`, body);
      assert.equal(r.status, 201, `${p.ns}/${p.name}: ${JSON.stringify(r.body)}`);
      assert.deepEqual(assignedIPs(objectBody(r)), [], 'admitlb is not installed');
      await statusWrite(p.ns, p.name, p.status);
    });
    // One more whose status names an address outside every pool: it is not adopted.
    const stray = await c.request('POST', '/api/v1/namespaces/shop/services', service('stray', { namespace: 'shop' }));
    assert.equal(stray.status, 201, JSON.stringify(stray.body));
    await statusWrite('shop', 'stray', ['192.0.2.77']);
    // Two that show one unshared address (a forged write before admitlb, or a MetalLB bug): the
    // older keeps it whatever the names say (creationTimestamp has whole seconds).
    const dupIP = '198.51.100.3';
    for (const name of ['dup-z', 'dup-a']) {
      const r = await c.request('POST', '/api/v1/namespaces/blog/services', service(name, { namespace: 'blog' }));
      assert.equal(r.status, 201, JSON.stringify(r.body));
      await statusWrite('blog', name, [dupIP]);
      if (name === 'dup-z') await sleep(1100);
    }

    // Installing admitlb: its webhooks first (the Service webhook and the services-status webhook).
    const url = `https://127.0.0.1:${new URL(c.sandbox.webhook.url).port}`;
    for (const obj of await webhookConfigurations(url, c.sandbox.files.caPem)) await createOrReplace(c.sandbox.api, obj);
    await until('the API server to call the webhook', async () => ((await webhookAssigns()) ? true : undefined), 30_000);

    // A label change before the controller ran: the webhook keeps the status address.
    const first = planned[0]!;
    const label = await c.kubectl(['label', 'service', first.name, '-n', first.ns, 'tier=front']);
    assert.equal(label.code, 0, label.stderr);
    assert.deepEqual(assignedIPs(await getService(first.ns, first.name)), first.status, 'the webhook kept the address the status shows');

    // The controller.
    const t0 = Date.now();
    controller = spawn(
      process.execPath,
      [join(PROJECT_ROOT, 'bin/admitlb.js'), 'controller', '--signing-keys-dir', c.sandbox.files.signingKeysDir, '--kubeconfig', await c.sandbox.identity('controller'), '--host', '127.0.0.1', '--port', '0', '--log-level', process.env.TAKEOVER_LOG ? 'info' : 'warn'],
      { stdio: ['ignore', process.env.TAKEOVER_LOG ? openSync(process.env.TAKEOVER_LOG, 'w') : 'ignore', 'inherit'], env: { ...process.env, POD_NAME: 'takeover-0' } },
    );
    const all = await until(
      `all ${COUNT} Services to be claimed`,
      async () => {
        const byKey = await services();
        // Claimed: the assignment is written and the status shows it (the controller's last step).
        const claimed = (s: any) => assignedIPs(s).length > 0 && same(assignedIPs(s), ingress(s));
        const done = planned.every((p) => claimed(byKey.get(`${p.ns}/${p.name}`))) && ['shop/stray', 'blog/dup-z', 'blog/dup-a'].every((k) => claimed(byKey.get(k)));
        return done ? byKey : undefined;
      },
      // A bound, not a speed assert: a loaded machine (other test runs) can slow the pass many times.
      300_000,
    );
    const elapsed = Date.now() - t0;
    console.log(`# ${e2eTarget()}: ${COUNT} Services adopted ${elapsed} ms after the controller started (process start included)`);

    const renumbered = planned.filter((p) => {
      const s = all.get(`${p.ns}/${p.name}`);
      return !same(assignedIPs(s), p.status) || !same(ingress(s), p.status);
    });
    assert.deepEqual(
      renumbered.map((p) => `${p.ns}/${p.name}: had ${p.status}, now ${assignedIPs(all.get(`${p.ns}/${p.name}`))} (status ${ingress(all.get(`${p.ns}/${p.name}`))})`),
      [],
      'no Service renumbered',
    );

    // An IPClaim lists every Service at exactly its address (shared pairs: both in one claim).
    const claims = new Map<string, any>(objectBody(await c.request('GET', '/apis/admitlb.io/v1alpha1/ipclaims')).items.map((i: any) => [i.spec.address, i]));
    for (const p of planned) {
      for (const ip of p.status) {
        const holders = (claims.get(ip)?.spec.holders ?? []).map((h: any) => `${h.namespace}/${h.name}/${h.uid ?? ''}`);
        const uid = all.get(`${p.ns}/${p.name}`).metadata.uid;
        assert.ok(holders.includes(`${p.ns}/${p.name}/${uid}`), `IPClaim ${ip} lists ${holders.join(',') || 'nobody'}, not ${p.ns}/${p.name}`);
      }
    }
    const check = await checkNoAddressHeldTwice(c.sandbox.api);
    // The shared pairs are reported as one address assigned twice; that is what sharing is.
    const shared = new Set(planned.filter((p) => p.annotations?.['metallb.io/allow-shared-ip']).flatMap((p) => p.status));
    assert.deepEqual(check.problems.filter((x) => ![...shared].some((ip) => x.startsWith(`${ip} is assigned to both`) || x.startsWith(`the IPClaim for ${ip} is held by`))), []);

    // The stray Service got an address of the pool, and an Event that says why its own was not kept.
    const strayNow = all.get('shop/stray');
    assert.ok(assignedIPs(strayNow)[0]?.startsWith('198.51.100.'), JSON.stringify(strayNow.metadata.annotations));
    const describe = await c.kubectl(['describe', 'service', 'stray', '-n', 'shop']);
    assert.equal(describe.code, 0, describe.stderr);
    assert.match(describe.stdout, /StatusNotAdopted.*192\.0\.2\.77: outside the IPPools that assign addresses to this Service/s);
    // The older of the two keeps the address; the younger gets another and is told why.
    assert.deepEqual(assignedIPs(all.get('blog/dup-z')), [dupIP]);
    const younger = assignedIPs(all.get('blog/dup-a'));
    assert.equal(younger.length, 1);
    assert.notEqual(younger[0], dupIP);
    assert.deepEqual((claims.get(dupIP)?.spec.holders ?? []).map((h: any) => `${h.namespace}/${h.name}`), ['blog/dup-z']);
    const dupEvents = await c.kubectl(['describe', 'service', 'dup-a', '-n', 'blog']);
    assert.match(dupEvents.stdout, /StatusNotAdopted.*198\.51\.100\.3 is already held by Service "dup-z"/s);
  });

  it("after the takeover, MetalLB's annotations keep working for new Services", async () => {
    const taken = new Set(planned.flatMap((p) => p.status));
    const pair = planned.find((p) => p.annotations?.['metallb.io/allow-shared-ip'])!;
    const free = Array.from({ length: 40 }, (_, i) => `198.51.100.${10 + i}`).find((ip) => !taken.has(ip))!;
    const r = await c.apply(
      service('new-ips', { namespace: 'shop', annotations: { 'metallb.io/loadBalancerIPs': free } }),
      service('new-pool', { namespace: 'shop', annotations: { 'metallb.universe.tf/address-pool': 'manual' } }),
      service('new-shared', { namespace: pair.ns, ports: [8080], annotations: { 'metallb.io/allow-shared-ip': pair.annotations!['metallb.io/allow-shared-ip']! } }),
    );
    assert.equal(r.code, 0, r.stderr);
    const got = async (ns: string, name: string) => {
      const s = await until(`${ns}/${name}'s status`, async () => {
        const s = await getService(ns, name);
        return ingress(s).length > 0 ? s : undefined;
      });
      assert.deepEqual(ingress(s), assignedIPs(s));
      return assignedIPs(s);
    };
    assert.deepEqual(await got('shop', 'new-ips'), [free]);
    const fromManual = await got('shop', 'new-pool');
    assert.match(fromManual[0]!, /^203\.0\.113\.(\d|[1-5]\d|6[0-3])$/);
    assert.ok(!taken.has(fromManual[0]!), `${fromManual[0]} was held by a MetalLB Service`);
    assert.deepEqual(await got(pair.ns, 'new-shared'), pair.status);
  });
});
