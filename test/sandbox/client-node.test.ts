// @kubernetes/client-node 1.4 against the double: typed CRUD (bodies without apiVersion/kind, default
// json-patch PATCH, DELETE without body), ApiException codes, /status, events in both API groups.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ApiException, CoreV1Api, EventsV1Api, KubeConfig, PatchStrategy, V1MicroTime, setHeaderOptions } from '@kubernetes/client-node';
import { removeDir, startSandbox, type Sandbox } from './helpers.ts';

let sb: Sandbox;
let core: CoreV1Api;
let events: EventsV1Api;

before(async () => {
  sb = await startSandbox('client-node');
  const kc = new KubeConfig();
  kc.loadFromFile(sb.api.kubeconfigPath);
  core = kc.makeApiClient(CoreV1Api);
  events = kc.makeApiClient(EventsV1Api);
});
after(async () => {
  await sb.close();
  removeDir(sb.dataDir);
});

describe('client-node', () => {
  it('creates, reads, patches (json-patch and merge), replaces and deletes a Service', async () => {
    const created = await core.createNamespacedService({ namespace: 'default', body: { metadata: { name: 'cn' }, spec: { type: 'LoadBalancer', ports: [{ port: 80 }] } } });
    assert.equal(created.kind, 'Service');
    assert.equal(created.apiVersion, 'v1');
    assert.ok(created.spec?.clusterIP);
    const patched = await core.patchNamespacedService({ namespace: 'default', name: 'cn', body: [{ op: 'add', path: '/metadata/labels', value: { via: 'jsonpatch' } }] });
    assert.equal(patched.metadata?.labels?.via, 'jsonpatch');
    const merged = await core.patchNamespacedService({ namespace: 'default', name: 'cn', body: { metadata: { annotations: { a: 'b' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    assert.equal(merged.metadata?.annotations?.a, 'b');
    const st = await core.replaceNamespacedServiceStatus({ namespace: 'default', name: 'cn', body: { ...merged, status: { loadBalancer: { ingress: [{ ip: '192.0.2.44' }] } } } });
    assert.equal(st.status?.loadBalancer?.ingress?.[0]?.ip, '192.0.2.44');
    const replaced = await core.replaceNamespacedService({ namespace: 'default', name: 'cn', body: { ...st, metadata: { ...st.metadata, labels: { via: 'put' } }, status: {} } });
    assert.equal(replaced.metadata?.labels?.via, 'put');
    assert.equal(replaced.status?.loadBalancer?.ingress?.[0]?.ip, '192.0.2.44', 'status survives a main-resource update');
    await assert.rejects(
      core.replaceNamespacedService({ namespace: 'default', name: 'cn', body: { ...st } }),
      (e: unknown) => e instanceof ApiException && e.code === 409,
    );
    const deleted = await core.deleteNamespacedService({ namespace: 'default', name: 'cn' });
    assert.equal(deleted.metadata?.name, 'cn', 'DELETE returns the object');
    await assert.rejects(core.readNamespacedService({ namespace: 'default', name: 'cn' }), (e: unknown) => e instanceof ApiException && e.code === 404);
  });

  it('lists with limit/continue pages and selectors', async () => {
    for (let i = 0; i < 5; i++) await core.createNamespacedConfigMap({ namespace: 'default', body: { metadata: { name: `page-${i}`, labels: { set: i % 2 ? 'odd' : 'even' } } } });
    const p1 = await core.listNamespacedConfigMap({ namespace: 'default', limit: 2, labelSelector: 'set in (odd,even)' });
    assert.equal(p1.items.length, 2);
    assert.ok(p1.metadata?._continue);
    // kube sends remainingItemCount only for unfiltered lists (the count would be a guess otherwise)
    assert.equal(p1.metadata?.remainingItemCount, undefined);
    const unfiltered = await core.listNamespacedConfigMap({ namespace: 'default', limit: 2 });
    assert.ok((unfiltered.metadata?.remainingItemCount ?? 0) >= 3);
    const p2 = await core.listNamespacedConfigMap({ namespace: 'default', limit: 2, _continue: p1.metadata!._continue!, labelSelector: 'set in (odd,even)' });
    const p3 = await core.listNamespacedConfigMap({ namespace: 'default', limit: 2, _continue: p2.metadata!._continue!, labelSelector: 'set in (odd,even)' });
    assert.equal(p3.metadata?._continue, undefined);
    assert.equal(p1.metadata?.resourceVersion, p3.metadata?.resourceVersion, 'pages share one resourceVersion');
    assert.deepEqual([...p1.items, ...p2.items, ...p3.items].map((c) => c.metadata?.name), ['page-0', 'page-1', 'page-2', 'page-3', 'page-4']);
    const odd = await core.listNamespacedConfigMap({ namespace: 'default', labelSelector: 'set=odd' });
    assert.deepEqual(odd.items.map((c) => c.metadata?.name), ['page-1', 'page-3']);
    await assert.rejects(core.listNamespacedConfigMap({ namespace: 'default', fieldSelector: 'spec.nope=1' }), (e: unknown) => e instanceof ApiException && e.code === 400);
  });

  it('events.k8s.io/v1 and core/v1 events are one resource (describe shows them)', async () => {
    const svc = await core.createNamespacedService({ namespace: 'default', body: { metadata: { name: 'evsvc' }, spec: { ports: [{ port: 80 }] } } });
    const body = (eventTime: Date) => ({
      metadata: { name: 'evsvc.1' },
      eventTime,
      reportingController: 'admitlb.io/controller',
      reportingInstance: 'ctrl-0',
      action: 'Allocate',
      reason: 'IPAllocated',
      note: 'assigned 192.0.2.7',
      type: 'Normal',
      regarding: { kind: 'Service', namespace: 'default', name: 'evsvc', uid: svc.metadata!.uid!, apiVersion: 'v1' },
    });
    // MicroTime needs exactly six fractional digits, as kube's decoder does: a plain Date (".123Z") is a 400.
    await assert.rejects(
      events.createNamespacedEvent({ namespace: 'default', body: body(new Date()) }),
      (e: unknown) => e instanceof ApiException && e.code === 400 && /cannot parse "\.\d{3}Z" as "\.000000"$/.test(JSON.parse(e.body as string).message),
    );
    await events.createNamespacedEvent({
      namespace: 'default',
      body: {
        metadata: { name: 'evsvc.1' },
        eventTime: new V1MicroTime(),
        reportingController: 'admitlb.io/controller',
        reportingInstance: 'ctrl-0',
        action: 'Allocate',
        reason: 'IPAllocated',
        note: 'assigned 192.0.2.7',
        type: 'Normal',
        regarding: { kind: 'Service', namespace: 'default', name: 'evsvc', uid: svc.metadata!.uid!, apiVersion: 'v1' },
      },
    });
    const asCore = await core.listNamespacedEvent({ namespace: 'default', fieldSelector: `involvedObject.name=evsvc,involvedObject.kind=Service,involvedObject.uid=${svc.metadata!.uid}` });
    assert.equal(asCore.items.length, 1);
    assert.equal(asCore.items[0]!.message, 'assigned 192.0.2.7');
    assert.equal(asCore.items[0]!.involvedObject.name, 'evsvc');
    const d = await sb.kubectl(['describe', 'svc', 'evsvc']);
    assert.match(d.stdout, /Normal\s+IPAllocated\s+\S+\s+admitlb\.io\/controller\s+assigned 192\.0\.2\.7/);
    const table = await sb.kubectl(['get', 'events']);
    assert.match(table.stdout, /^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE/);
    assert.match(table.stdout, /Normal\s+IPAllocated\s+service\/evsvc\s+assigned 192\.0\.2\.7/);
  });
});
