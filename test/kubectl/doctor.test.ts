// doctor's pure parts: the permissions it checks come from the shipped rbac.yaml, and the one-line
// rendering (fix only on warn/fail, "skipped: why" for checks without meaning here).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { generateWebhookCertificates } from '../../src/certs/generate.ts';
import { renderChecks, requiredPermissions, runChecks, type Check } from '../../src/kubectl/doctor.ts';
import type { ApiAnswer, KubeApi } from '../../src/kubectl/kube.ts';

/**
 * An installed cluster as a table of API answers (a Service-backed webhook, its Secret, a DaemonSet,
 * Nodes and Pods, an authorizer): the paths a kubelet-less test cluster cannot show.
 */
function fakeApi(routes: Record<string, (body?: any) => { status: number; body?: any }>): KubeApi {
  const request = async (method: string, path: string, body?: unknown): Promise<ApiAnswer> => {
    const route = routes[`${method} ${path}`] ?? routes[`${method} ${path.split('?')[0]}`];
    const r = route ? route(body) : { status: 404, body: { message: 'not found' } };
    return { status: r.status, body: r.body, headers: { date: new Date().toUTCString() } };
  };
  return {
    server: 'https://fake',
    request,
    get: async (p) => {
      const r = await request('GET', p);
      return r.status === 200 ? r.body : undefined;
    },
    list: async (p) => {
      const r = await request('GET', p);
      return r.status === 200 ? r.body.items : [];
    },
  };
}

const b64 = (s: string) => Buffer.from(s).toString('base64');
const ok = (body: any) => () => ({ status: 200, body });

async function installed(o: { caBundleFrom?: string; days?: number; readyPods?: string[]; allowed?: (spec: any) => boolean } = {}) {
  const certs = await generateWebhookCertificates({ days: o.days ?? 365 });
  const other = await generateWebhookCertificates();
  const caBundle = b64(o.caBundleFrom === 'other' ? other.caCertPem : certs.caCertPem);
  const clientConfig = { service: { name: 'admitlb-webhook', namespace: 'admitlb-system', path: '/mutate/services' }, caBundle };
  const node = (name: string, extra: any = {}) => ({ metadata: { name, labels: { 'kubernetes.io/os': 'linux', ...extra.labels } }, spec: extra.spec ?? {} });
  return fakeApi({
    'GET /apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/admitlb': ok({ webhooks: [{ name: 'services.admitlb.io', clientConfig }] }),
    'GET /apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/admitlb': ok({ webhooks: [{ name: 'ippools.admitlb.io', clientConfig }] }),
    'GET /apis/discovery.k8s.io/v1/namespaces/admitlb-system/endpointslices': ok({ items: [{ endpoints: [{ addresses: ['10.0.0.5'], conditions: { ready: true } }] }] }),
    'GET /api/v1/namespaces/admitlb-system/secrets/admitlb-webhook-tls': ok({ data: { 'tls.crt': b64(certs.certPem) } }),
    'POST /api/v1/namespaces/default/services': () => ({ status: 201, body: { metadata: { annotations: { 'admitlb.io/assigned-ips': '203.0.113.7' } } } }),
    'POST /apis/authorization.k8s.io/v1/subjectaccessreviews': (body) => ({ status: 201, body: { status: { allowed: o.allowed ? o.allowed(body.spec) : true } } }),
    'GET /apis/apps/v1/namespaces/admitlb-system/daemonsets/admitlb-speaker': ok({
      spec: {
        selector: { matchLabels: { 'app.kubernetes.io/component': 'speaker' } },
        template: { spec: { nodeSelector: { 'kubernetes.io/os': 'linux' }, tolerations: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'Exists', effect: 'NoSchedule' }] } },
      },
    }),
    'GET /api/v1/nodes': ok({
      items: [
        node('n1'),
        node('cp', { spec: { taints: [{ key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' }] } }),
        node('gpu', { spec: { taints: [{ key: 'gpu', value: 'true', effect: 'NoSchedule' }] } }),
        node('win', { labels: { 'kubernetes.io/os': 'windows' } }),
      ],
    }),
    'GET /api/v1/namespaces/admitlb-system/pods': ok({
      items: (o.readyPods ?? ['n1', 'cp']).map((n) => ({ spec: { nodeName: n }, status: { conditions: [{ type: 'Ready', status: 'True' }] } })),
    }),
    'GET /version': ok({}),
  });
}

const byName = (checks: Check[]) => Object.fromEntries(checks.map((c) => [c.name, c]));

describe('doctor', () => {
  it('reads each component\'s permissions from webhook-manifests/rbac.yaml, namespaced Roles with their namespace', () => {
    const perms = requiredPermissions(readFileSync('webhook-manifests/rbac.yaml', 'utf8'));
    assert.deepEqual([...perms.keys()].sort(), ['admitlb', 'admitlb-speaker']);
    const admitlb = perms.get('admitlb')!;
    assert.ok(admitlb.some((r) => r.apiGroups.includes('admitlb.io') && r.resources.includes('ipclaims') && r.verbs.includes('create') && !r.namespace), 'admitlb may create ipclaims cluster-wide');
    const lease = admitlb.find((r) => r.resourceNames?.includes('admitlb-controller'));
    assert.deepEqual(lease && { verbs: lease.verbs, namespace: lease.namespace }, { verbs: ['get', 'update'], namespace: 'admitlb-system' });
    const speaker = perms.get('admitlb-speaker')!;
    const writes = speaker.filter((r) => r.verbs.some((v) => ['create', 'update', 'patch', 'delete'].includes(v)));
    assert.deepEqual([...new Set(writes.flatMap((r) => r.resources))].sort(), ['events', 'leases', 'nodeannouncements', 'nodeannouncements/status'], 'the speaker writes nothing but Events, Leases and its NodeAnnouncement');
    assert.ok(speaker.some((r) => r.resources.includes('leases') && r.namespace === 'admitlb-system'), 'the speaker has a Lease rule in admitlb-system');
  });

  it('one line per check: the fix after a failure or warning, skipped checks say why', () => {
    const text = renderChecks([
      { name: 'ca-bundle', result: 'pass', detail: 'ok' },
      { name: 'certificate-expiry', result: 'warn', detail: 'expires in 3 days', fix: 'renew it' },
      { name: 'speakers', result: 'skipped', detail: 'no Nodes' },
      { name: 'clock-skew', result: 'fail', detail: 'off by 9 s', fix: 'synchronise' },
    ]);
    assert.equal(
      text,
      'pass  ca-bundle           ok\n' +
        'warn  certificate-expiry  expires in 3 days; fix: renew it\n' +
        'skip  speakers            skipped: no Nodes\n' +
        'fail  clock-skew          off by 9 s; fix: synchronise\n',
    );
  });

  it('a Service-backed webhook: endpoints from EndpointSlices, the certificate from the Secret; speakers on eligible nodes only', async () => {
    const checks = byName(await runChecks(await installed(), 'default'));
    assert.deepEqual(
      Object.fromEntries(Object.entries(checks).map(([k, c]) => [k, c.result])),
      {
        'webhook-configurations': 'pass',
        'webhook-endpoints': 'pass',
        'ca-bundle': 'pass',
        'certificate-expiry': 'pass',
        'api-server-reaches-webhook': 'pass',
        'rbac-admitlb': 'pass',
        'rbac-admitlb-speaker': 'pass',
        speakers: 'pass',
        'clock-skew': 'pass',
      },
    );
    assert.match(checks['ca-bundle']!.detail, /Secret admitlb-system\/admitlb-webhook-tls.*names admitlb-webhook\.admitlb-system\.svc/);
    // n1 and the tolerated control-plane node; not the tainted gpu node nor the windows one.
    assert.equal(checks.speakers!.detail, 'a ready speaker on each of the 2 eligible node(s)');
  });

  it('failures name what is wrong and the fix: a foreign caBundle, a certificate about to expire, a missing speaker, a missing permission', async () => {
    const checks = byName(
      await runChecks(
        await installed({ caBundleFrom: 'other', days: 10, readyPods: ['n1'], allowed: (spec) => !(spec.user.endsWith(':admitlb') && spec.resourceAttributes.resource === 'ipclaims' && spec.resourceAttributes.verb === 'delete') }),
        'default',
      ),
    );
    assert.equal(checks['ca-bundle']!.result, 'fail');
    assert.match(checks['ca-bundle']!.detail, /does not verify with the caBundle/);
    assert.match(checks['ca-bundle']!.fix ?? '', /npx admitlb certs/);
    assert.equal(checks['certificate-expiry']!.result, 'warn');
    assert.match(checks['certificate-expiry']!.detail, /expires in (9|10) days/);
    assert.equal(checks.speakers!.result, 'fail');
    assert.match(checks.speakers!.detail, /no ready speaker on 1 of 2 eligible node\(s\): cp/);
    assert.equal(checks['rbac-admitlb']!.result, 'fail');
    assert.equal(checks['rbac-admitlb']!.detail, 'system:serviceaccount:admitlb-system:admitlb may not: delete admitlb.io/ipclaims');
    assert.equal(checks['rbac-admitlb-speaker']!.result, 'pass');
  });
});
