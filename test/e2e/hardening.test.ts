// The attacks found when admitlb was tried as an attacker (forged reviews, replayed dry-runs, rejected creates) against a whole cluster, as a tenant with `edit` would try
// them: forged AdmissionReviews posted straight to the webhook (authenticated as the API server,
// i.e. a caller that got past client authentication), dry-run answers replayed on real creates, and
// creates the API server refuses after the webhook claimed. Each case fails on the code before the
// fix.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify as stringifyYaml } from 'yaml';
import { objectBody } from '../../src/sandbox/api-client.ts';
import { namespace, pool, service, sleep, startCluster, until, type E2eCluster } from './cluster-helpers.ts';

let c: E2eCluster;
let apiServerCert: { cert: string; key: string };

const DENIED = 'admission webhook "services.admitlb.io" denied the request: ';

before(async () => {
  c = await startCluster('hardening');
  const r = await c.apply(
    namespace('team-a'),
    namespace('team-b'),
    namespace('team-c'),
    pool('xshare', { addresses: ['198.51.100.64/28'], autoAssign: false, sharing: { crossNamespace: true } }),
    pool('quota1', { addresses: ['198.51.100.0/28'], autoAssign: false, quota: { perNamespace: 1 } }),
    pool('four', { addresses: ['192.0.2.10-192.0.2.13'], autoAssign: false }),
  );
  assert.equal(r.code, 0, r.stderr);
  for (const name of ['xshare', 'quota1', 'four']) await c.waitForPool(name);
  // The client certificate the API server presents to webhooks (both targets keep it beside its CA).
  const pki = dirname(c.sandbox.api.webhookClientCaFile);
  apiServerCert = { cert: readFileSync(join(pki, 'webhook-client.crt'), 'utf8'), key: readFileSync(join(pki, 'webhook-client.key'), 'utf8') };
});
after(async () => {
  await c?.close();
});

interface Claim {
  address: string;
  pool: string;
  sharingKey?: string;
  holders: { namespace: string; name: string; uid?: string; use: string; ports: { protocol: string; port: number }[] }[];
}

async function claims(): Promise<Claim[]> {
  const r = await c.request('GET', '/apis/admitlb.io/v1alpha1/ipclaims');
  assert.equal(r.status, 200);
  return (objectBody(r).items as { spec: Claim }[]).map((i) => i.spec);
}

async function getService(ns: string, name: string): Promise<any> {
  const r = await c.request('GET', `/api/v1/namespaces/${ns}/services/${name}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

/** Posts an AdmissionReview straight to the webhook with the API server's client certificate. */
async function forge(path: string, req: Record<string, unknown>): Promise<any> {
  const body = JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: { uid: `forged-${Math.random()}`, kind: { group: '', version: 'v1', kind: 'Service' }, resource: { group: '', version: 'v1', resource: 'services' }, userInfo: { username: 'mallory' }, dryRun: false, oldObject: null, ...req },
  });
  const url = `${c.sandbox.webhook.url.replace('0.0.0.0', '127.0.0.1')}${path}`;
  const reply = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const r = request(url, { method: 'POST', ca: c.sandbox.files.caPem, ...apiServerCert, headers: { 'content-type': 'application/json' }, agent: false }, (res) => {
      let data = '';
      res.on('data', (d) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
    });
    r.on('error', reject);
    r.end(body);
  });
  assert.equal(reply.status, 200, `the webhook answers the API server's certificate: ${reply.body}`);
  return JSON.parse(reply.body).response;
}

/** The addresses an admission answer assigns (from its JSON patch), '' when none. */
function assignedBy(response: any): string {
  if (!response.patch) return '';
  const ops = JSON.parse(Buffer.from(response.patch, 'base64').toString('utf8')) as { path: string; value: any }[];
  for (const op of ops) {
    if (op.path === '/metadata/annotations') return op.value?.['admitlb.io/assigned-ips'] ?? '';
    if (op.path === '/metadata/annotations/admitlb.io~1assigned-ips') return op.value;
  }
  return '';
}

describe('item 1: a forged review changes nothing that belongs to another Service', () => {
  it('a namespace that does not exist gets no address, however often it asks', async () => {
    const before = (await claims()).length;
    for (let i = 0; i < 5; i++) {
      const ns = `ghost-${i}`;
      const response = await forge('/mutate/services', { namespace: ns, name: 'grab', operation: 'CREATE', object: service('grab', { namespace: ns, annotations: { 'admitlb.io/pool': 'four' } }) });
      assert.equal(response.allowed, false, JSON.stringify(response));
      assert.equal(response.status.code, 404);
      assert.equal(response.status.message, `metadata.namespace: namespace "${ns}" does not exist`);
    }
    assert.equal((await claims()).length, before, 'no claim was made');
  });

  it('neither a forged create nor a forged update rewrites another Service\'s claim; another tenant cannot join its address', async () => {
    const created = await c.apply(service('victim', { namespace: 'team-a', annotations: { 'admitlb.io/pool': 'xshare', 'admitlb.io/sharing-key': 'k-secret' }, ports: [80] }));
    assert.equal(created.code, 0, created.stderr);
    const victim = await getService('team-a', 'victim');
    const address: string = victim.metadata.annotations['admitlb.io/assigned-ips'];
    assert.match(address, /^198\.51\.100\.(6[4-9]|7\d)$/);
    // The validating phase commits the claim: its holder records the Service's uid.
    const claimOf = async () => (await claims()).find((x) => x.address === address)!;
    await until('the victim\'s claim records its uid', async () => ((await claimOf()).holders[0]?.uid === victim.metadata.uid ? true : undefined), 5000);
    const original = await claimOf();

    // A forged create naming the victim, with its signed annotations, another key and more ports.
    const forgedObject = { ...victim, metadata: { ...victim.metadata, uid: undefined, resourceVersion: undefined, annotations: { ...victim.metadata.annotations, 'admitlb.io/sharing-key': 'k-evil' } }, spec: { ...victim.spec, ports: [{ name: 'p0', port: 80, protocol: 'TCP', targetPort: 80 }, { name: 'p1', port: 443, protocol: 'TCP', targetPort: 443 }] }, status: {} };
    const create = await forge('/mutate/services', { namespace: 'team-a', name: 'victim', operation: 'CREATE', object: forgedObject });
    assert.notEqual(assignedBy(create), address, 'a create is never the existing Service: it does not get its address');
    // A forged update naming the victim but not its uid (the uid is readable only where the Service is).
    const update = await forge('/mutate/services', { namespace: 'team-a', name: 'victim', operation: 'UPDATE', object: { ...forgedObject, metadata: { ...forgedObject.metadata, uid: 'forged-uid' } }, oldObject: { ...victim, metadata: { ...victim.metadata, uid: 'forged-uid' } } });
    assert.notEqual(assignedBy(update), address);
    assert.deepEqual(await claimOf(), original, 'the victim\'s claim, sharing key and ports are untouched');

    // Another tenant with the forged key cannot take the victim's address.
    const thief = await c.apply(service('thief', { namespace: 'team-b', annotations: { 'admitlb.io/pool': 'xshare', 'admitlb.io/sharing-key': 'k-evil', 'admitlb.io/ips': address }, ports: [8443] }));
    assert.notEqual(thief.code, 0);
    assert.ok(thief.stderr.includes(`${DENIED}metadata.annotations[admitlb.io/ips]: ${address} is already held by another Service`), thief.stderr);
    assert.ok(!(await claims()).some((x) => x.address === address && x.holders.some((h) => h.namespace === 'team-b')), `no team-b holder on ${address}`);
  });
});

describe('item 2: dry-run answers replayed on real creates', () => {
  it('hand out nothing that counts: the quota of 1 holds on create and in the controller', async () => {
    const answers: any[] = [];
    for (let i = 1; i <= 3; i++) {
      const obj = service(`replay-${i}`, { namespace: 'team-b', annotations: { 'admitlb.io/pool': 'quota1', 'admitlb.io/ips': `198.51.100.${i}` } });
      const r = await c.kubectl(['create', '--dry-run=server', '-o', 'json', '-f', '-'], stringifyYaml(obj));
      assert.equal(r.code, 0, r.stderr);
      const shown = JSON.parse(r.stdout);
      assert.equal(shown.metadata.annotations['admitlb.io/assigned-ips'], `198.51.100.${i}`, 'a dry run shows the address');
      assert.equal(shown.metadata.annotations['admitlb.io/allocation'], undefined, 'but carries no signature');
      answers.push(shown);
    }
    assert.ok(!(await claims()).some((x) => x.pool === 'quota1'), 'dry runs claim nothing');

    const outcomes: { code: number; stderr: string }[] = [];
    for (const shown of answers) {
      const { uid: _u, creationTimestamp: _c, resourceVersion: _r, managedFields: _m, ...metadata } = shown.metadata;
      // What the API allocated in the dry run (cluster IP, node ports) is not replayable; the annotations are.
      const { clusterIP: _ip, clusterIPs: _ips, healthCheckNodePort: _h, ...spec } = shown.spec;
      spec.ports = spec.ports.map(({ nodePort: _n, ...p }: any) => p);
      outcomes.push(await c.kubectl(['create', '-f', '-'], stringifyYaml({ ...shown, metadata, spec, status: undefined })));
    }
    assert.equal(outcomes[0]!.code, 0, outcomes[0]!.stderr);
    for (const o of outcomes.slice(1)) {
      assert.notEqual(o.code, 0);
      assert.match(o.stderr, /Error from server \(Forbidden\).*namespace "team-b" already holds 1 of the 1 addresses its quota allows from IPPool "quota1"/);
    }
    const held = async () => (await claims()).filter((x) => x.pool === 'quota1' && x.holders.some((h) => h.namespace === 'team-b'));
    assert.equal((await held()).length, 1);
    // The controller keeps exactly that one (it counts the way the webhook does).
    await sleep(1500);
    assert.deepEqual((await held()).map((x) => x.address), ['198.51.100.1']);
    assert.equal((await getService('team-b', 'replay-1')).metadata.annotations['admitlb.io/assigned-ips'], '198.51.100.1');
  });
});

describe('item 2: a real signature replayed without its claim', () => {
  it('a deleted Service\'s signed annotations, replayed on a new create of its name, do not get past the quota', async () => {
    const first = await c.apply(service('old', { namespace: 'team-c', annotations: { 'admitlb.io/pool': 'quota1', 'admitlb.io/ips': '198.51.100.9' } }));
    assert.equal(first.code, 0, first.stderr);
    const signed = (await getService('team-c', 'old')).metadata.annotations;
    assert.match(signed['admitlb.io/allocation'], /^[\w-]+\.[\w-]+\.[\w-]+$/);
    assert.equal((await c.kubectl(['delete', 'svc', 'old', '-n', 'team-c'])).code, 0);
    await until('the controller releases the deleted Service\'s claim', async () => ((await claims()).some((x) => x.address === '198.51.100.9') ? undefined : true));
    const keeper = await c.apply(service('keeper', { namespace: 'team-c', annotations: { 'admitlb.io/pool': 'quota1' } }));
    assert.equal(keeper.code, 0, keeper.stderr);

    const { 'admitlb.io/ips': _requested, ...replayed } = signed;
    const replay = await c.apply(service('old', { namespace: 'team-c', annotations: replayed }));
    assert.notEqual(replay.code, 0, 'the signature alone is not an address');
    assert.match(replay.stderr, /namespace "team-c" already holds 1 of the 1 addresses its quota allows from IPPool "quota1"/);
    assert.equal((await claims()).filter((x) => x.pool === 'quota1' && x.holders.some((h) => h.namespace === 'team-c')).length, 1);
  });
});

describe('item 3: creates the API server refuses after the webhook claimed', () => {
  it('eight refused creates in one namespace do not starve a pool of 4 for the others', async () => {
    const bogus = (i: number) => service(`bogus-${i}`, { namespace: 'team-c', annotations: { 'admitlb.io/pool': 'four' }, spec: { sessionAffinity: 'Bogus' } });
    for (let i = 1; i <= 8; i++) {
      const r = await c.kubectl(['create', '-f', '-'], stringifyYaml(bogus(i)));
      assert.notEqual(r.code, 0, `bogus-${i} is refused`);
      assert.match(r.stderr, /spec\.sessionAffinity: Unsupported value: "Bogus"|has address claims in IPPool "four" for Services the API server has not accepted/, r.stderr);
    }
    // (team-c is the only namespace of this file with no other unconfirmed claims.)
    const teamC = (await claims()).filter((x) => x.pool === 'four' && x.holders.some((h) => h.namespace === 'team-c'));
    assert.equal(teamC.length, 2, 'team-c holds no more addresses for refused creates than the pool has left for the others (2 of 4)');
    assert.ok(teamC.every((x) => x.holders.every((h) => h.uid === undefined)), 'none of them was committed');

    // Another namespace still gets addresses from the pool, at once.
    for (const name of ['fair-1', 'fair-2']) {
      const r = await c.apply(service(name, { namespace: 'team-b', annotations: { 'admitlb.io/pool': 'four' } }));
      assert.equal(r.code, 0, r.stderr);
      assert.match((await getService('team-b', name)).metadata.annotations['admitlb.io/assigned-ips'], /^192\.0\.2\.1[0-3]$/);
    }
    // The refused Service, corrected, takes back the address it already holds.
    const fixed = await c.apply(service('bogus-1', { namespace: 'team-c', annotations: { 'admitlb.io/pool': 'four' } }));
    assert.equal(fixed.code, 0, fixed.stderr);
    const ip = (await getService('team-c', 'bogus-1')).metadata.annotations['admitlb.io/assigned-ips'];
    assert.ok(teamC.some((x) => x.address === ip && x.holders.some((h) => h.name === 'bogus-1')), `bogus-1 got ${ip}, the address it held`);
  });
});
