// The admission policies (IPClaim writers, the CRD rules), on the target of this run (E2E_TARGET=sandbox|real|both):
//   - the IPClaim CRD's CEL rule refuses a claim whose name is not the claim name of its address;
//   - the ValidatingAdmissionPolicy admitlb-ipclaim-writers lets only admitlb's ServiceAccount (and
//     system:masters, the documented break-glass) create, update or delete IPClaims;
//   - the validating webhook services-status.admitlb.io refuses a services/status write that puts an
//     admitlb pool's address into another Service's ingress (CVE-2020-8554, second vector);
//   - admitlb's own flows (claim at admission, status from the controller) are unaffected.
// Identities come from impersonation by the admin (kubectl --as). On the real control plane RBAC
// applies first, so the accounts that must reach admission get exactly the rights they need here; the
// double has no authorization, and admission sees the impersonated user all the same.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { apiRequest, type ApiResponse } from '../../src/sandbox/api-client.ts';
import { e2eTarget, namespace, pool, service, startCluster, type E2eCluster } from './cluster-helpers.ts';

let c: E2eCluster;
const real = e2eTarget() === 'real';

const POOL = 'vap';
// Documentation addresses (RFC 5737), away from the default pool (203.0.113.0/24): one CIDR and one range.
const POOL_ADDRESSES = ['198.51.100.0/28', '198.51.100.100-198.51.100.120'];
const OPS = 'ops-bot'; // a user with write rights on IPClaims through RBAC, not admitlb
const OTHER_LB = 'system:serviceaccount:other-lb:controller'; // another load balancer's controller
const TENANT = 'system:serviceaccount:tenant-a:dev'; // the `edit` role in tenant-a

const CLAIMS = '/apis/admitlb.io/v1alpha1/ipclaims';
const VAP_DENIAL = (name: string, user: string) =>
  `ipclaims.admitlb.io "${name}" is forbidden: ValidatingAdmissionPolicy 'admitlb-ipclaim-writers' with binding 'admitlb-ipclaim-writers' denied request: IPClaims are written by admitlb only (ServiceAccount admitlb-system/admitlb), not by ${user}`;

function as(user: string, groups: string[] = []) {
  const headers: Record<string, string | string[]> = { 'Impersonate-User': user, ...(groups.length ? { 'Impersonate-Group': groups } : {}) };
  return (method: string, path: string, body?: unknown, contentType?: string): Promise<ApiResponse> =>
    apiRequest(c.sandbox.api, method, path, body, undefined, contentType ? { ...headers, 'Content-Type': contentType } : headers);
}

const claim = (name: string, address: string, holder = { namespace: 'default', name: 'nobody' }) => ({
  apiVersion: 'admitlb.io/v1alpha1',
  kind: 'IPClaim',
  metadata: { name },
  spec: { address, pool: POOL, holders: [{ ...holder, use: 'LoadBalancer', ports: [], backend: '' }] },
});

/** RBAC for the identities that must get past authorization on the real API server (the double has none). */
async function grantRbac(): Promise<void> {
  const objects = [
    namespace('tenant-a'),
    namespace('other-lb'),
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'dev', namespace: 'tenant-a' } },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'controller', namespace: 'other-lb' } },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'dev-edit', namespace: 'tenant-a' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' }, subjects: [{ kind: 'ServiceAccount', name: 'dev', namespace: 'tenant-a' }] },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'ipclaim-editor' }, rules: [{ apiGroups: ['admitlb.io'], resources: ['ipclaims'], verbs: ['get', 'list', 'create', 'update', 'patch', 'delete'] }] },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'ipclaim-editor' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'ipclaim-editor' }, subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: OPS }] },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'other-lb' }, rules: [{ apiGroups: [''], resources: ['services'], verbs: ['get', 'list', 'watch'] }, { apiGroups: [''], resources: ['services/status'], verbs: ['update', 'patch'] }] },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'other-lb' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'other-lb' }, subjects: [{ kind: 'ServiceAccount', name: 'controller', namespace: 'other-lb' }] },
  ];
  const r = await c.apply(...objects);
  assert.equal(r.code, 0, r.stderr);
}

/** The response's JSON body, untyped: these tests read kube-apiserver's Status and object shapes loosely. */
const json = (r: { body: unknown }): any => r.body;

/** An RBAC refusal: on the real API server a fresh binding takes effect a moment after it is written. */
const rbacRefusal = (r: ApiResponse) => r.status === 403 && /cannot (create|patch|update|delete) resource/.test(json(r)?.message ?? '');

/** Policies and bindings take effect once kube-apiserver's informers have them: retry a probe until it is refused. */
async function until<T>(probe: () => Promise<T>, done: (r: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const r = await probe();
    if (done(r) || Date.now() > deadline) return r;
    await new Promise((res) => setTimeout(res, 200));
  }
}

before(async () => {
  c = await startCluster('vap');
  if (real) await grantRbac();
  else {
    const r = await c.apply(namespace('tenant-a'), namespace('other-lb'));
    assert.equal(r.code, 0, r.stderr);
  }
  const r = await c.apply(pool(POOL, { addresses: POOL_ADDRESSES }));
  assert.equal(r.code, 0, r.stderr);
  await c.waitForPool(POOL);
});
after(async () => {
  await c?.close();
});

describe(`IPClaims at the API (${e2eTarget()})`, () => {
  it('a claim whose name is not the claim name of its canonical address is refused by the CRD rule', async () => {
    const cases: [string, string][] = [
      ['198.51.100.9', '198.51.100.8'], // another address's name
      ['shadow', '198.51.100.8'], // not an address at all
      ['2001-0db8-0000-0000-0000-0000-0000-0001', '2001:DB8::1'], // address not canonical
      ['2001-0db8-0000-0000-0000-0000-0000-0002', '2001:db8::1'],
      ['2001:db8::1', '2001:db8::1'], // the address as name (IPv6 names are expanded; ':' is no object name)
      ['198.51.100.8', '198.51.100.08'], // leading zero
    ];
    for (const [name, address] of cases) {
      const r = await c.request('POST', CLAIMS, claim(name, address));
      assert.equal(r.status, 422, `${name} / ${address}: ${JSON.stringify(json(r))}`);
      if (json(r)?.details?.causes?.[0]?.field === 'metadata.name') continue; // ':' is no valid object name: refused before the rule
      assert.equal(json(r).reason, 'Invalid');
      assert.match(json(r).message, new RegExp(`^IPClaim\\.admitlb\\.io "${name.replaceAll('.', '\\.')}" is invalid: spec\\.address: Invalid value: "object": spec\\.address must be an IP address in canonical form and metadata\\.name its claim name`), `${name} / ${address}`);
      assert.deepEqual(json(r).details.causes.map((x: { field: string }) => x.field), ['spec.address']);
    }
    const list = await c.request('GET', CLAIMS);
    assert.deepEqual(json(list).items.filter((x: any) => x.spec.pool === POOL && x.spec.holders[0].name === 'nobody'), []);
  });

  it('well-formed claims pass the rule (system:masters is the policy\'s break-glass)', async () => {
    for (const [name, address] of [['198.51.100.11', '198.51.100.11'], ['2001-0db8-0000-0000-0000-0000-0000-0001', '2001:db8::1']] as const) {
      const r = await c.request('POST', CLAIMS, claim(name, address));
      assert.equal(r.status, 201, `${name}: ${JSON.stringify(json(r))}`);
      const d = await c.request('DELETE', `${CLAIMS}/${name}`);
      assert.ok(d.status === 200 || d.status === 404, JSON.stringify(json(d)));
    }
  });

  it('an account with RBAC rights on IPClaims that is not admitlb cannot create, update or delete one', async () => {
    const ops = as(OPS);
    const r = await until(() => ops('POST', CLAIMS, claim('198.51.100.12', '198.51.100.12')), (x) => x.status !== 201 && !rbacRefusal(x));
    assert.equal(r.status, 403, JSON.stringify(json(r)));
    assert.equal(json(r).reason, 'Forbidden');
    assert.equal(json(r).message, VAP_DENIAL('198.51.100.12', OPS));

    // A claim admitlb made for a real Service: re-pointing or deleting it is refused the same way.
    const svc = await c.request('POST', '/api/v1/namespaces/default/services', service('claimed', { annotations: { 'admitlb.io/pool': POOL } }));
    assert.equal(svc.status, 201, JSON.stringify(json(svc)));
    const claims = json(await c.request('GET', CLAIMS)).items.filter((x: any) => x.spec.holders.some((h: any) => h.name === 'claimed'));
    assert.equal(claims.length, 1, "admitlb claimed the Service's address");
    const held = claims[0];
    // The controller may update the claim meanwhile (the holder's uid): a stale resourceVersion is a
    // 409 before admission runs, so read the claim again until the write reaches the policy.
    const upd = await until(
      async () => {
        const live = json(await c.request('GET', `${CLAIMS}/${held.metadata.name}`));
        return ops('PUT', `${CLAIMS}/${held.metadata.name}`, { ...live, spec: { ...live.spec, holders: [{ namespace: 'tenant-a', name: 'thief', use: 'LoadBalancer', ports: [], backend: '' }] } });
      },
      (x) => x.status !== 409,
    );
    assert.equal(upd.status, 403, JSON.stringify(json(upd)));
    assert.equal(json(upd).message, VAP_DENIAL(held.metadata.name, OPS));
    const patch = await ops('PATCH', `${CLAIMS}/${held.metadata.name}`, { spec: { sharingKey: 'x' } }, 'application/merge-patch+json');
    assert.equal(patch.status, 403, JSON.stringify(json(patch)));
    const del = await ops('DELETE', `${CLAIMS}/${held.metadata.name}`);
    assert.equal(del.status, 403, JSON.stringify(json(del)));
    assert.equal(json(del).message, VAP_DENIAL(held.metadata.name, OPS));
    // (the controller may have added the holder's uid meanwhile: that is admitlb writing)
    const after = await c.request('GET', `${CLAIMS}/${held.metadata.name}`);
    const gist = (spec: any) => ({ address: spec.address, pool: spec.pool, sharingKey: spec.sharingKey, holders: spec.holders.map((h: any) => `${h.namespace}/${h.name}`) });
    assert.deepEqual(gist(json(after).spec), gist(held.spec), 'the claim is unchanged');
  });

  it('a tenant with the edit role cannot write IPClaims (RBAC on a cluster, the policy on both)', async () => {
    const tenant = as(TENANT);
    const r = await tenant('POST', CLAIMS, claim('198.51.100.13', '198.51.100.13', { namespace: 'tenant-a', name: 'web' }));
    assert.equal(r.status, 403, JSON.stringify(json(r)));
    if (!real) assert.equal(json(r).message, VAP_DENIAL('198.51.100.13', TENANT));
    assert.equal((await c.request('GET', `${CLAIMS}/198.51.100.13`)).status, 404);
  });
});

describe(`services/status writes with admitlb pool addresses (${e2eTarget()})`, () => {
  const STATUS = '/api/v1/namespaces/other-lb/services/foreign/status';
  const ingress = (...ips: string[]) => ({ status: { loadBalancer: { ingress: ips.map((ip) => ({ ip })) } } });
  const otherLb = () => as(OTHER_LB);

  before(async () => {
    const r = await c.request('POST', '/api/v1/namespaces/other-lb/services', service('foreign', { spec: { loadBalancerClass: 'example.com/other-lb' } }));
    assert.equal(r.status, 201, JSON.stringify(json(r)));
  });

  it("another load balancer's controller cannot put an address of an admitlb pool into its Service's status", async () => {
    for (const ip of ['198.51.100.5', '198.51.100.110']) {
      const r = await until(() => otherLb()('PATCH', STATUS, ingress(ip), 'application/merge-patch+json'), (x) => !rbacRefusal(x));
      assert.equal(r.status, 403, `${ip}: ${JSON.stringify(json(r))}`);
      assert.equal(
        json(r).message,
        `admission webhook "services-status.admitlb.io" denied the request: status.loadBalancer.ingress of Service other-lb/foreign: ${ip} belongs to IPPool "${POOL}"; only admitlb (ServiceAccount admitlb-system/admitlb) puts addresses of its pools into a Service's status, not ${OTHER_LB}`,
      );
    }
    // A legacy spelling that kube-proxy reads as a pool address is refused too (by the API or the webhook).
    const sloppy = await otherLb()('PATCH', STATUS, ingress('198.51.100.005'), 'application/merge-patch+json');
    assert.ok(sloppy.status === 403 || sloppy.status === 422, JSON.stringify(json(sloppy)));
    const svc = await c.request('GET', '/api/v1/namespaces/other-lb/services/foreign');
    assert.deepEqual(json(svc).status.loadBalancer, {}, 'nothing was written');
  });

  it('addresses outside admitlb pools and writes without ingress IPs go through; an address already present stays', async () => {
    const ok = await otherLb()('PATCH', STATUS, ingress('192.0.2.50'), 'application/merge-patch+json');
    assert.equal(ok.status, 200, JSON.stringify(json(ok)));
    const host = await otherLb()('PATCH', STATUS, { status: { loadBalancer: { ingress: [{ hostname: 'lb.example.test' }] } } }, 'application/merge-patch+json');
    assert.equal(host.status, 200, JSON.stringify(json(host)));
    // Adding a pool address next to an allowed one is still refused.
    const mixed = await otherLb()('PATCH', STATUS, ingress('192.0.2.50', '198.51.100.6'), 'application/merge-patch+json');
    assert.equal(mixed.status, 403, JSON.stringify(json(mixed)));
  });

  it("admitlb's own flow: the controller writes the assigned pool address into its Service's status", async () => {
    const r = await c.request('POST', '/api/v1/namespaces/default/services', service('own', { annotations: { 'admitlb.io/pool': POOL } }));
    assert.equal(r.status, 201, JSON.stringify(json(r)));
    const deadline = Date.now() + 15_000;
    let ips: string[] = [];
    while (Date.now() < deadline) {
      const s = await c.request('GET', '/api/v1/namespaces/default/services/own');
      ips = (json(s).status?.loadBalancer?.ingress ?? []).map((i: { ip?: string }) => i.ip);
      if (ips.length) break;
      await new Promise((res) => setTimeout(res, 100));
    }
    assert.equal(ips.length, 1, 'the controller set status.loadBalancer.ingress');
    assert.match(ips[0]!, /^198\.51\.100\./);
  });
});

// The generic machinery the double implements for the manifests above, checked against the same
// expectations on both targets: CRD rules (fieldPath, reason, messageExpression, transition rules,
// blocking schema errors) and policies (namespaceSelector, matchConditions, variables, reasons,
// messageExpression, Warn, failurePolicy on evaluation errors).
describe(`CEL machinery (${e2eTarget()})`, () => {
  const WIDGETS = '/apis/vap.example.test/v1/widgets';
  const CM = '/api/v1/namespaces/vap-test/configmaps';
  const widget = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'vap.example.test/v1', kind: 'Widget', metadata: { name }, spec });
  const cm = (name: string, data: Record<string, string>) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data });

  before(async () => {
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'widgets.vap.example.test' },
      spec: {
        group: 'vap.example.test',
        scope: 'Cluster',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: {
                  spec: {
                    type: 'object',
                    'x-kubernetes-validations': [
                      { rule: 'self.min <= self.max', message: 'min must not exceed max', fieldPath: '.min', reason: 'FieldValueForbidden' },
                      // (string(self.max) would exceed kube-apiserver's estimated cost budget: the double does not estimate)
                      { rule: 'self.max < 100', messageExpression: "self.max >= 1000 ? 'max is far too large' : 'max is too large'" },
                    ],
                    properties: {
                      min: { type: 'integer' },
                      max: { type: 'integer' },
                      name: { type: 'string', maxLength: 20, 'x-kubernetes-validations': [{ rule: 'self == oldSelf', message: 'is immutable' }] },
                    },
                  },
                },
              },
            },
          },
        ],
      },
    };
    const policies = [
      namespace('vap-test', { vap: 'test' }),
      {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'ValidatingAdmissionPolicy',
        metadata: { name: 'vap-test-cm' },
        spec: {
          matchConstraints: {
            resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['configmaps'] }],
            namespaceSelector: { matchLabels: { vap: 'test' } },
          },
          matchConditions: [{ name: 'has-data', expression: 'has(object.data)' }],
          variables: [{ name: 'keys', expression: 'size(object.data)' }],
          validations: [
            { expression: 'variables.keys <= 2', message: 'at most 2 keys' },
            { expression: "!('bad' in object.data)", messageExpression: "'key bad is not allowed in ' + object.metadata.name", reason: 'Forbidden' },
          ],
        },
      },
      { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingAdmissionPolicyBinding', metadata: { name: 'vap-test-cm' }, spec: { policyName: 'vap-test-cm', validationActions: ['Deny'] } },
      {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'ValidatingAdmissionPolicy',
        metadata: { name: 'vap-test-warn' },
        spec: {
          failurePolicy: 'Ignore',
          matchConstraints: { resourceRules: [{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['configmaps'] }], namespaceSelector: { matchLabels: { vap: 'test' } } },
          validations: [
            { expression: "!has(object.data) || !('warn' in object.data)", message: 'warned' },
            { expression: "object.data['missing'] == 'x'" }, // an evaluation error, ignored under Ignore
          ],
        },
      },
      { apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingAdmissionPolicyBinding', metadata: { name: 'vap-test-warn' }, spec: { policyName: 'vap-test-warn', validationActions: ['Warn'] } },
    ];
    const r = await c.apply(crd, ...policies);
    assert.equal(r.code, 0, r.stderr);
    await until(() => c.request('GET', WIDGETS), (x) => x.status === 200);
  });

  it('CRD rules: fieldPath and reason, messageExpression, transition rules, blocking schema errors', async () => {
    const bad = await c.request('POST', WIDGETS, widget('w1', { min: 200, max: 150, name: 'a' }));
    assert.equal(bad.status, 422, JSON.stringify(json(bad)));
    assert.equal(json(bad).message, 'Widget.vap.example.test "w1" is invalid: [spec.min: Forbidden: min must not exceed max, spec: Invalid value: "object": max is too large]');
    const ok = await c.request('POST', WIDGETS, widget('w1', { min: 1, max: 5, name: 'a' }));
    assert.equal(ok.status, 201, JSON.stringify(json(ok)));
    const renamed = await c.request('PUT', `${WIDGETS}/w1`, { ...json(ok), spec: { ...json(ok).spec, name: 'b' } });
    assert.equal(renamed.status, 422, JSON.stringify(json(renamed)));
    assert.equal(json(renamed).message, 'Widget.vap.example.test "w1" is invalid: spec.name: Invalid value: "string": is immutable');
    const typed = await c.request('POST', WIDGETS, widget('w2', { min: 'x', max: 5 }));
    assert.equal(typed.status, 422, JSON.stringify(json(typed)));
    assert.equal(json(typed).message, 'Widget.vap.example.test "w2" is invalid: [spec.min: Invalid value: "string": spec.min in body must be of type integer: "string", <nil>: Invalid value: null: some validation rules were not checked because the object was invalid; correct the existing errors to complete validation]');
  });

  it('policies: variables and the default reason, messageExpression with reason Forbidden, selectors and matchConditions', async () => {
    const many = await until(() => c.request('POST', CM, cm('many', { a: '1', b: '2', c: '3' })), (x) => x.status !== 201);
    assert.equal(many.status, 422, JSON.stringify(json(many)));
    assert.equal(json(many).reason, 'Invalid');
    assert.equal(json(many).message, `configmaps "many" is forbidden: ValidatingAdmissionPolicy 'vap-test-cm' with binding 'vap-test-cm' denied request: at most 2 keys`);
    assert.deepEqual(json(many).details, { name: 'many', kind: 'configmaps', causes: [{ message: `ValidatingAdmissionPolicy 'vap-test-cm' with binding 'vap-test-cm' denied request: at most 2 keys` }] });
    const bad = await c.request('POST', CM, cm('badkey', { bad: '1' }));
    assert.equal(bad.status, 403, JSON.stringify(json(bad)));
    assert.equal(json(bad).reason, 'Forbidden');
    assert.equal(json(bad).message, `configmaps "badkey" is forbidden: ValidatingAdmissionPolicy 'vap-test-cm' with binding 'vap-test-cm' denied request: key bad is not allowed in badkey`);
    const noData = await c.request('POST', CM, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'nodata' } });
    assert.equal(noData.status, 201, 'matchConditions false: the policy does not apply');
    const elsewhere = await c.request('POST', '/api/v1/namespaces/default/configmaps', cm('elsewhere', { a: '1', b: '2', c: '3' }));
    assert.equal(elsewhere.status, 201, 'namespaceSelector: default is not selected');
  });

  it('a Warn binding adds a warning header; an evaluation error under Ignore lets the request through', async () => {
    const r = await until(
      () => rawWithWarnings('POST', CM, cm(`warned-${Date.now()}`, { warn: '1' })),
      (x) => x.warnings.length > 0,
    );
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(r.warnings, [`299 - "Validation failed for ValidatingAdmissionPolicy 'vap-test-warn' with binding 'vap-test-warn': warned"`]);
  });

  async function rawWithWarnings(method: string, path: string, body: unknown): Promise<{ status: number; text: string; warnings: string[] }> {
    const https = await import('node:https');
    const api = c.sandbox.api;
    return new Promise((resolve, reject) => {
      const u = new URL(path, api.url);
      const payload = JSON.stringify(body);
      const req = https.request({ method, hostname: u.hostname, port: u.port, path: u.pathname, ca: api.caPem, headers: { Authorization: `Bearer ${api.token}`, 'Content-Type': 'application/json', Accept: 'application/json' } }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => {
          const w = res.headers.warning;
          resolve({ status: res.statusCode ?? 0, text, warnings: w === undefined ? [] : Array.isArray(w) ? w : [w] });
        });
      });
      req.on('error', reject);
      req.end(payload);
    });
  }
});
