// Admission webhooks called the way kube-apiserver calls them, observed through the real kubectl and a
// small HTTPS webhook with its own CA.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import { runMutating, type AdmissionEnv } from '../../src/sandbox/admission.ts';
import { builtinResources } from '../../src/sandbox/resources.ts';
import { jsonPatch, removeDir, startSandbox, startWebhook, type Sandbox, type TestWebhook } from './helpers.ts';

let sb: Sandbox;
let hook: TestWebhook;
const created: string[] = [];

before(async () => {
  hook = await startWebhook();
  // clientConfig.service is resolved through the resolveService option (there is no cluster network).
  sb = await startSandbox('admission', { resolveService: ({ namespace, name, port }) => (namespace === 'admitlb-system' && name === 'webhook' && port === 443 ? hook.url : undefined) });
  await sb.kubectl(['create', 'ns', 'lb-enabled']);
  await sb.kubectl(['label', 'ns', 'lb-enabled', 'admitlb.io/enabled=true']);
});
after(async () => {
  await hook.close();
  await sb.close();
  removeDir(sb.dataDir);
});
afterEach(async () => {
  for (const path of created.splice(0)) await sb.request('DELETE', path);
  hook.calls.length = 0;
  hook.handler = () => ({ allowed: true });
});

const svcRule = (ops = ['CREATE', 'UPDATE']) => [{ operations: ops, apiGroups: [''], apiVersions: ['v1'], resources: ['services'], scope: 'Namespaced' }];

async function configure(kind: 'mutating' | 'validating', name: string, webhooks: Record<string, unknown>[]): Promise<void> {
  const path = `/apis/admissionregistration.k8s.io/v1/${kind}webhookconfigurations`;
  const body = {
    metadata: { name },
    webhooks: webhooks.map((w) => ({
      sideEffects: 'None',
      admissionReviewVersions: ['v1'],
      rules: svcRule(),
      ...w,
      clientConfig: w.service ? { service: w.service, caBundle: hook.caBundle } : { url: `${hook.url}${(w.path as string | undefined) ?? '/'}`, caBundle: hook.caBundle },
      path: undefined,
      service: undefined,
    })),
  };
  const r = await sb.request('POST', path, body);
  assert.equal(r.status, 201, r.text);
  created.push(`${path}/${name}`);
}

function svcJson(name: string, extra: Record<string, unknown> = {}, ns?: string): string {
  return JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name, ...(ns ? { namespace: ns } : {}), ...extra }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] } });
}

describe('mutating webhooks', () => {
  it('applies the JSON patch, re-defaults, and sends kube\'s AdmissionReview request', async () => {
    hook.handler = (req) =>
      req.operation === 'CREATE'
        ? {
            allowed: true,
            ...jsonPatch([
              { op: 'add', path: '/metadata/annotations', value: { 'admitlb.io/ip': '192.0.2.7' } },
              { op: 'add', path: '/spec/ports/-', value: { name: 'extra', port: 8443 } },
            ]),
          }
        : { allowed: true };
    await configure('mutating', 'assign', [{ name: 'assign.admitlb.io', timeoutSeconds: 5 }]);
    const r = await sb.kubectl(['create', 'service', 'loadbalancer', 'mut', '--tcp=80:80']);
    assert.equal(r.code, 0, r.stderr);
    const svc = JSON.parse((await sb.kubectl(['get', 'svc', 'mut', '-o', 'json'])).stdout);
    assert.equal(svc.metadata.annotations['admitlb.io/ip'], '192.0.2.7');
    const extra = svc.spec.ports.find((p: any) => p.name === 'extra');
    assert.equal(extra.protocol, 'TCP', 'patched object is defaulted again');
    assert.equal(extra.targetPort, 8443);
    assert.ok(extra.nodePort >= 30000, 'allocation happens after mutation');
    assert.equal(hook.calls.length, 1);
    const { request, query } = hook.calls[0]!;
    assert.equal(query.get('timeout'), '5s');
    assert.equal(request.operation, 'CREATE');
    assert.equal(request.name, 'mut');
    assert.equal(request.namespace, 'default');
    assert.deepEqual(request.kind, { group: '', version: 'v1', kind: 'Service' });
    assert.deepEqual(request.resource, { group: '', version: 'v1', resource: 'services' });
    assert.equal(request.oldObject, null);
    assert.equal(request.dryRun, false);
    assert.equal(request.options.kind, 'CreateOptions');
    assert.equal(request.options.fieldManager, 'kubectl-create');
    assert.equal(request.userInfo.username, 'admin');
    assert.equal(request.object.metadata.uid, undefined, 'no uid before mutating admission');
    assert.equal(request.object.metadata.creationTimestamp, undefined);
    assert.equal(request.object.spec.clusterIP, undefined, 'no clusterIP before allocation');
    assert.equal(request.object.spec.type, 'LoadBalancer');
    assert.equal(request.object.spec.externalTrafficPolicy, 'Cluster', 'defaults are applied before admission');
    assert.ok(Array.isArray(request.object.metadata.managedFields));
    await sb.kubectl(['delete', 'svc', 'mut']);
  });

  it('shows an empty name for generateName creates and sends oldObject on update', async () => {
    await configure('mutating', 'observe', [{ name: 'observe.admitlb.io' }]);
    const c = await sb.request('POST', '/api/v1/namespaces/default/services', { metadata: { generateName: 'gen-' }, spec: { ports: [{ port: 80 }] } });
    assert.equal(c.status, 201);
    assert.equal(hook.calls[0]!.request.name, '');
    const name = c.json().metadata.name;
    await sb.kubectl(['label', 'svc', name, 'x=y']);
    const upd = hook.calls[1]!.request;
    assert.equal(upd.operation, 'UPDATE');
    assert.equal(upd.name, name);
    assert.equal(upd.oldObject.metadata.uid, c.json().metadata.uid);
    assert.equal(upd.object.metadata.labels.x, 'y');
    assert.equal(upd.options.kind, 'UpdateOptions');
    await sb.request('DELETE', `/api/v1/namespaces/default/services/${name}`);
  });

  it('reinvokes an earlier IfNeeded webhook once when a later one changed the object', async () => {
    hook.handler = (req, path) => {
      const labels = req.object.metadata.labels ?? {};
      if (path === '/first') return labels.first ? { allowed: true } : { allowed: true, ...jsonPatch([{ op: 'add', path: '/metadata/labels', value: { ...labels, first: 'done' } }]) };
      return labels.second ? { allowed: true } : { allowed: true, ...jsonPatch([{ op: 'add', path: '/metadata/labels', value: { ...labels, second: 'done' } }]) };
    };
    await configure('mutating', 'a-first', [{ name: 'first.admitlb.io', path: '/first', reinvocationPolicy: 'IfNeeded' }]);
    await configure('mutating', 'b-second', [{ name: 'second.admitlb.io', path: '/second', reinvocationPolicy: 'IfNeeded' }]);
    const r = await sb.kubectl(['create', '-f', '-'], svcJson('reinv'));
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(hook.calls.map((c) => c.path), ['/first', '/second', '/first']);
    assert.equal(hook.calls[2]!.request.object.metadata.labels.second, 'done', 'the reinvocation sees the later change');
    const svc = JSON.parse((await sb.kubectl(['get', 'svc', 'reinv', '-o', 'json'])).stdout);
    assert.deepEqual(svc.metadata.labels, { first: 'done', second: 'done' });
    await sb.kubectl(['delete', 'svc', 'reinv']);
  });

  it('does not reinvoke a Never webhook', async () => {
    hook.handler = (req, path) => (path === '/second' && !req.object.metadata.labels?.second ? { allowed: true, ...jsonPatch([{ op: 'add', path: '/metadata/labels', value: { second: 'done' } }]) } : { allowed: true });
    await configure('mutating', 'a-first', [{ name: 'first.admitlb.io', path: '/first', reinvocationPolicy: 'Never' }]);
    await configure('mutating', 'b-second', [{ name: 'second.admitlb.io', path: '/second' }]);
    await sb.kubectl(['create', '-f', '-'], svcJson('noreinv'));
    assert.deepEqual(hook.calls.map((c) => c.path), ['/first', '/second']);
    await sb.kubectl(['delete', 'svc', 'noreinv']);
  });

  it('skips the webhook when a matchCondition is false', async () => {
    await configure('mutating', 'only-lb', [{ name: 'only-lb.admitlb.io', matchConditions: [{ name: 'lb-only', expression: "object.spec.type == 'LoadBalancer'" }] }]);
    await sb.kubectl(['create', 'service', 'clusterip', 'cip', '--tcp=80:80']);
    assert.equal(hook.calls.length, 0);
    await sb.kubectl(['create', 'service', 'loadbalancer', 'withlb', '--tcp=80:80']);
    assert.equal(hook.calls.length, 1);
    await sb.kubectl(['delete', 'svc', 'cip', 'withlb']);
  });

  it('calls a clientConfig.service webhook through resolveService, with its path', async () => {
    await configure('mutating', 'by-service', [{ name: 'svc.admitlb.io', service: { namespace: 'admitlb-system', name: 'webhook', path: '/mutate' } }]);
    const r = await sb.kubectl(['create', '-f', '-'], svcJson('viasvc'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(hook.calls[0]!.path, '/mutate');
    assert.equal(hook.calls[0]!.query.get('timeout'), '10s', 'timeoutSeconds defaults to 10');
    await sb.kubectl(['delete', 'svc', 'viasvc']);
  });

  it('a matchCondition that errors rejects under Fail (403) and skips under Ignore', async () => {
    await configure('mutating', 'bad-cel', [{ name: 'bad-cel.admitlb.io', failurePolicy: 'Fail', matchConditions: [{ name: 'missing-field', expression: "object.spec.nosuchfield == 'x'" }] }]);
    const r = await sb.request('POST', '/api/v1/namespaces/default/services', JSON.parse(svcJson('celfail')));
    assert.equal(r.status, 403);
    assert.equal(r.json().reason, 'Forbidden');
    assert.equal(hook.calls.length, 0);
    const p = await sb.kubectl(['patch', 'mutatingwebhookconfiguration', 'bad-cel', '--type=json', '-p', '[{"op":"replace","path":"/webhooks/0/failurePolicy","value":"Ignore"}]']);
    assert.equal(p.code, 0, p.stderr);
    const ok = await sb.request('POST', '/api/v1/namespaces/default/services', JSON.parse(svcJson('celskip')));
    assert.equal(ok.status, 201);
    assert.equal(hook.calls.length, 0);
    await sb.request('DELETE', '/api/v1/namespaces/default/services/celskip');
  });

  it('honours namespaceSelector and objectSelector', async () => {
    await configure('mutating', 'selectors', [
      { name: 'ns.admitlb.io', path: '/ns', namespaceSelector: { matchLabels: { 'admitlb.io/enabled': 'true' } } },
      { name: 'obj.admitlb.io', path: '/obj', objectSelector: { matchExpressions: [{ key: 'admitlb.io/managed', operator: 'Exists' }] } },
    ]);
    await sb.kubectl(['create', '-f', '-'], svcJson('plain'));
    assert.deepEqual(hook.calls.map((c) => c.path), []);
    await sb.kubectl(['create', '-f', '-'], svcJson('in-ns', {}, 'lb-enabled'));
    assert.deepEqual(hook.calls.map((c) => c.path), ['/ns']);
    await sb.kubectl(['create', '-f', '-'], svcJson('labelled', { labels: { 'admitlb.io/managed': 'yes' } }));
    assert.deepEqual(hook.calls.map((c) => c.path), ['/ns', '/obj']);
    await sb.kubectl(['delete', 'svc', 'plain', 'labelled']);
    await sb.kubectl(['-n', 'lb-enabled', 'delete', 'svc', 'in-ns']);
  });

  it('failurePolicy Fail rejects on timeout with kube\'s message; Ignore lets the request through', async () => {
    hook.handler = () => undefined; // never answers
    await configure('mutating', 'slow', [{ name: 'slow.admitlb.io', timeoutSeconds: 1, failurePolicy: 'Fail' }]);
    const r = await sb.kubectl(['create', '-f', '-'], svcJson('blocked'));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Error from server \(InternalError\): error when creating "STDIN": Internal error occurred: failed calling webhook "slow\.admitlb\.io": failed to call webhook: Post "https:\/\/127\.0\.0\.1:\d+\/\?timeout=1s": context deadline exceeded/);
    const p = await sb.kubectl(['patch', 'mutatingwebhookconfiguration', 'slow', '--type=json', '-p', '[{"op":"replace","path":"/webhooks/0/failurePolicy","value":"Ignore"}]']);
    assert.equal(p.code, 0, p.stderr);
    const ok = await sb.kubectl(['create', '-f', '-'], svcJson('through'));
    assert.equal(ok.code, 0, ok.stderr);
    await sb.kubectl(['delete', 'svc', 'through']);
  });

  it('an invalid response (uid not echoed) is a call failure', async () => {
    hook.handler = (req) => ({ rawReview: { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: `${req.uid}-wrong`, allowed: true } } });
    await configure('mutating', 'broken', [{ name: 'broken.admitlb.io' }]);
    const r = await sb.kubectl(['create', '-f', '-'], svcJson('broken'));
    assert.match(r.stderr, /failed calling webhook "broken\.admitlb\.io": received invalid webhook response: expected response\.uid=/);
  });

  it('dry-run requests reach NoneOnDryRun webhooks with dryRun: true and store nothing', async () => {
    await configure('mutating', 'dry', [{ name: 'dry.admitlb.io', sideEffects: 'NoneOnDryRun' }]);
    const r = await sb.kubectl(['create', '-f', '-', '--dry-run=server'], svcJson('dry'));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(hook.calls[0]!.request.dryRun, true);
    assert.deepEqual(hook.calls[0]!.request.options.dryRun, ['All']);
    assert.equal((await sb.request('GET', '/api/v1/namespaces/default/services/dry')).status, 404);
  });
});

describe('validating webhooks', () => {
  it('a denial reaches kubectl as "admission webhook ... denied the request"', async () => {
    hook.handler = () => ({ allowed: false, status: { code: 403, reason: 'Forbidden', message: 'nope' } });
    await configure('validating', 'deny', [{ name: 'deny.admitlb.io' }]);
    const r = await sb.kubectl(['create', '-f', '-'], svcJson('denied'));
    assert.equal(r.stderr.trim(), 'Error from server (Forbidden): error when creating "STDIN": admission webhook "deny.admitlb.io" denied the request: nope');
    hook.handler = () => ({ allowed: false, status: { code: 200, message: 'low code' } });
    const low = await sb.request('POST', '/api/v1/namespaces/default/services', JSON.parse(svcJson('denied2')));
    assert.equal(low.status, 400, 'codes below 400 become 400');
    assert.equal(low.json().message, 'admission webhook "deny.admitlb.io" denied the request: low code');
    hook.handler = () => ({ allowed: false });
    const bare = await sb.request('POST', '/api/v1/namespaces/default/services', JSON.parse(svcJson('denied3')));
    assert.equal(bare.json().message, 'admission webhook "deny.admitlb.io" denied the request without explanation');
  });

  it('sees the allocated object and prints warnings through kubectl', async () => {
    hook.handler = () => ({ allowed: true, warnings: ['externalIPs are deprecated, use a LoadBalancer'] });
    await configure('validating', 'warn', [{ name: 'warn.admitlb.io' }]);
    const r = await sb.kubectl(['create', '-f', '-'], svcJson('warned'));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^Warning: externalIPs are deprecated, use a LoadBalancer$/m);
    const obj = hook.calls[0]!.request.object;
    assert.ok(obj.metadata.uid && obj.metadata.creationTimestamp, 'validating webhooks see uid/creationTimestamp');
    assert.match(obj.spec.clusterIP, /^10\.96\./);
    assert.deepEqual(obj.status, { loadBalancer: {} });
    await sb.kubectl(['delete', 'svc', 'warned']);
  });

  it('DELETE is admitted with object null, oldObject and DeleteOptions; a denial keeps the object', async () => {
    await sb.kubectl(['create', '-f', '-'], svcJson('keep'));
    hook.handler = (req) => (req.operation === 'DELETE' ? { allowed: false, status: { code: 403, reason: 'Forbidden', message: 'protected' } } : { allowed: true });
    await configure('validating', 'protect', [{ name: 'protect.admitlb.io', rules: svcRule(['DELETE']) }]);
    const r = await sb.kubectl(['delete', 'svc', 'keep']);
    assert.match(r.stderr, /admission webhook "protect\.admitlb\.io" denied the request: protected/);
    const req = hook.calls[0]!.request;
    assert.equal(req.operation, 'DELETE');
    assert.equal(req.object, null);
    assert.equal(req.oldObject.metadata.name, 'keep');
    assert.equal(req.options.kind, 'DeleteOptions');
    assert.equal((await sb.request('GET', '/api/v1/namespaces/default/services/keep')).status, 200);
  });
});

describe('dispatcher rules without HTTP', () => {
  it('a webhook whose sideEffects is not None/NoneOnDryRun fails dry-run requests regardless of failurePolicy', async () => {
    // admissionregistration/v1 validation only admits None/NoneOnDryRun, so such configurations exist only
    // from older API versions; the dispatcher still enforces the rule (webhook/errors.NewDryRunUnsupportedErr).
    const def = builtinResources.find((d) => d.resource === 'services')!;
    const env: AdmissionEnv = {
      listConfigs: (kind) => (kind === 'mutating' ? [{ metadata: { name: 'legacy' }, webhooks: [{ name: 'legacy.admitlb.io', sideEffects: 'Some', failurePolicy: 'Ignore', clientConfig: { url: 'https://127.0.0.1:1/' }, admissionReviewVersions: ['v1'], rules: svcRule() }] }] : []),
      getNamespace: () => ({ metadata: { name: 'default' } }),
      redefault: (_d, o) => o,
    };
    const attrs = { def, subresource: '', operation: 'CREATE' as const, namespace: 'default', name: 'x', object: { metadata: { name: 'x' } }, oldObject: null, dryRun: true, options: {}, userInfo: { username: 'u', groups: [] } };
    await assert.rejects(runMutating(attrs, env), (e: any) => e.code === 400 && e.message === 'admission webhook "legacy.admitlb.io" does not support dry run');
  });
});
