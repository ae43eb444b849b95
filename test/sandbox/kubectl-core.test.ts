// The double driven by the real kubectl: auth, discovery, protobuf creates, Table output, apply/patch,
// delete, expose, validation and conflict messages.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { rawRequest, removeDir, startSandbox, type Sandbox } from './helpers.ts';

let sb: Sandbox;

before(async () => {
  sb = await startSandbox('core');
});
after(async () => {
  await sb.close();
  removeDir(sb.dataDir);
});

describe('authentication and kubeconfig', () => {
  it('rejects requests without or with a wrong bearer token with a 401 Status', async () => {
    const none = await rawRequest(sb.api, undefined, 'GET', '/api/v1/namespaces');
    assert.equal(none.status, 401);
    assert.deepEqual({ kind: none.json().kind, reason: none.json().reason, code: none.json().code }, { kind: 'Status', reason: 'Unauthorized', code: 401 });
    const wrong = await rawRequest(sb.api, 'not-the-token', 'GET', '/api/v1/namespaces');
    assert.equal(wrong.status, 401);
  });

  it('kubectl with a bad token prints the Unauthorized error', async () => {
    const { writeFileSync } = await import('node:fs');
    const bad = `${sb.dataDir}/bad-kubeconfig`;
    writeFileSync(bad, readFileSync(sb.api.kubeconfigPath, 'utf8').replace(sb.api.token, 'wrong'));
    const { runKubectl } = await import('./helpers.ts');
    const r = await runKubectl(bad, sb.cacheDir, ['get', 'ns']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /You must be logged in to the server/);
  });

  it('writes a kubeconfig with the server URL, CA and token', () => {
    const kc = readFileSync(sb.api.kubeconfigPath, 'utf8');
    assert.match(kc, new RegExp(`server: ${sb.api.url}`));
    assert.match(kc, new RegExp(`token: ${sb.api.token}`));
    assert.match(kc, new RegExp(Buffer.from(sb.api.caPem).toString('base64')));
  });
});

describe('version and discovery', () => {
  it('serves /version with minor "32"', async () => {
    const r = await sb.request('GET', '/version');
    assert.equal(r.json().minor, '32');
    assert.equal(r.json().gitVersion, 'v1.32.4');
  });

  it('answers aggregated discovery with the exact content type, and plain lists otherwise', async () => {
    const accept = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json';
    const agg = await sb.request('GET', '/api', undefined, { Accept: accept });
    assert.equal(agg.headers['content-type'], 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList');
    const core = agg.json().items[0];
    assert.equal(core.metadata.name, '');
    const svc = core.versions[0].resources.find((r: any) => r.resource === 'services');
    assert.deepEqual(svc.shortNames, ['svc']);
    assert.equal(svc.subresources[0].subresource, 'status');
    assert.equal(core.versions[0].freshness, 'Current');
    const apis = await sb.request('GET', '/apis', undefined, { Accept: accept });
    assert.ok(apis.json().items.some((g: any) => g.metadata.name === 'apiextensions.k8s.io'));
    const plain = await sb.request('GET', '/api');
    assert.equal(plain.json().kind, 'APIVersions');
    const list = await sb.request('GET', '/api/v1');
    assert.equal(list.json().kind, 'APIResourceList');
    assert.ok(list.json().resources.some((r: any) => r.name === 'services/status'));
    const groups = await sb.request('GET', '/apis');
    assert.equal(groups.json().kind, 'APIGroupList');
  });

  it('resolves short names through discovery (kubectl get svc)', async () => {
    const r = await sb.kubectl(['get', 'svc', '-A']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^NAMESPACE\s+NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE/);
    assert.match(r.stdout, /default\s+kubernetes\s+ClusterIP\s+10\.96\.0\.1\s+<none>\s+443\/TCP/);
  });
});

describe('namespaces and services through kubectl', () => {
  it('kubectl create ns (protobuf body) and get ns with Table columns', async () => {
    const c = await sb.kubectl(['create', 'ns', 'team-a']);
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.stdout.trim(), 'namespace/team-a created');
    const g = await sb.kubectl(['get', 'ns']);
    assert.match(g.stdout, /^NAME\s+STATUS\s+AGE/);
    assert.match(g.stdout, /team-a\s+Active\s+\d+s/);
    const ns = JSON.parse((await sb.kubectl(['get', 'ns', 'team-a', '-o', 'json'])).stdout);
    assert.equal(ns.metadata.labels['kubernetes.io/metadata.name'], 'team-a');
    assert.deepEqual(ns.spec.finalizers, ['kubernetes']);
  });

  it('kubectl create service loadbalancer (protobuf) is defaulted and allocated; Table shows <pending>', async () => {
    const c = await sb.kubectl(['create', 'service', 'loadbalancer', 'web', '--tcp=80:8080']);
    assert.equal(c.code, 0, c.stderr);
    const svc = JSON.parse((await sb.kubectl(['get', 'svc', 'web', '-o', 'json'])).stdout);
    assert.equal(svc.spec.type, 'LoadBalancer');
    assert.equal(svc.spec.sessionAffinity, 'None');
    assert.equal(svc.spec.externalTrafficPolicy, 'Cluster');
    assert.equal(svc.spec.internalTrafficPolicy, 'Cluster');
    assert.equal(svc.spec.allocateLoadBalancerNodePorts, true);
    assert.equal(svc.spec.ports[0].protocol, 'TCP');
    assert.equal(svc.spec.ports[0].targetPort, 8080);
    assert.ok(svc.spec.ports[0].nodePort >= 30000 && svc.spec.ports[0].nodePort <= 32767, `nodePort ${svc.spec.ports[0].nodePort} in 30000-32767`);
    assert.match(svc.spec.clusterIP, /^10\.96\.\d+\.\d+$/);
    assert.deepEqual(svc.spec.clusterIPs, [svc.spec.clusterIP]);
    assert.deepEqual(svc.spec.ipFamilies, ['IPv4']);
    assert.equal(svc.spec.ipFamilyPolicy, 'SingleStack');
    assert.deepEqual(svc.status, { loadBalancer: {} });
    assert.ok(svc.metadata.uid, 'uid set');
    assert.ok(svc.metadata.creationTimestamp, 'creationTimestamp set');
    assert.ok(svc.metadata.resourceVersion, 'resourceVersion set');
    const t = await sb.kubectl(['get', 'svc', 'web']);
    assert.match(t.stdout, new RegExp(`web\\s+LoadBalancer\\s+${svc.spec.clusterIP.replace(/\./g, '\\.')}\\s+<pending>\\s+80:${svc.spec.ports[0].nodePort}/TCP`));
    const dup = await sb.kubectl(['create', 'service', 'loadbalancer', 'web', '--tcp=80:80']);
    assert.match(dup.stderr, /error: failed to create LoadBalancer service: services "web" already exists/);
  });

  it('kubectl create -f, apply twice, apply --server-side, describe, patch and label', async () => {
    const manifest = JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'api', labels: { tier: 'be' } }, spec: { selector: { app: 'api' }, ports: [{ port: 443, targetPort: 8443 }] } });
    const a1 = await sb.kubectl(['apply', '-f', '-'], manifest);
    assert.equal(a1.stdout.trim(), 'service/api created', a1.stderr);
    const a2 = await sb.kubectl(['apply', '-f', '-'], manifest);
    assert.equal(a2.stdout.trim(), 'service/api unchanged', a2.stderr);
    const changed = manifest.replace('"port":443', '"port":444');
    const a3 = await sb.kubectl(['apply', '-f', '-'], changed);
    assert.equal(a3.stdout.trim(), 'service/api configured', a3.stderr);
    const after3 = JSON.parse((await sb.kubectl(['get', 'svc', 'api', '-o', 'json'])).stdout);
    assert.deepEqual(after3.spec.ports.map((p: any) => p.port), [444]);
    const d = await sb.kubectl(['describe', 'svc', 'api']);
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stdout, /Name:\s+api/);
    assert.match(d.stdout, /Type:\s+ClusterIP/);
    const p = await sb.kubectl(['patch', 'svc', 'api', '-p', '{"spec":{"ports":[{"port":444,"name":"https"}]}}']);
    assert.equal(p.code, 0, p.stderr);
    const afterPatch = JSON.parse((await sb.kubectl(['get', 'svc', 'api', '-o', 'json'])).stdout);
    assert.equal(afterPatch.spec.ports.length, 1, 'strategic merge keyed by port merges the entry');
    assert.equal(afterPatch.spec.ports[0].name, 'https');
    assert.equal(afterPatch.spec.ports[0].targetPort, 8443);
    const jp = await sb.kubectl(['patch', 'svc', 'api', '--type=json', '-p', '[{"op":"add","path":"/metadata/annotations/x","value":"y"}]']);
    assert.equal(jp.code, 0, jp.stderr);
    const l = await sb.kubectl(['label', 'svc', 'api', 'env=prod']);
    assert.equal(l.code, 0, l.stderr);
    const sel = await sb.kubectl(['get', 'svc', '-l', 'env=prod,tier=be', '-o', 'name']);
    assert.equal(sel.stdout.trim(), 'service/api');
    const ssa = JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'ssa' }, spec: { ports: [{ port: 53, protocol: 'UDP' }] } });
    const s1 = await sb.kubectl(['apply', '--server-side', '-f', '-'], ssa);
    assert.equal(s1.stdout.trim(), 'service/ssa serverside-applied', s1.stderr);
    const s2 = await sb.kubectl(['apply', '--server-side', '-f', '-'], ssa.replace('"port":53', '"port":53,"name":"dns"'));
    assert.equal(s2.code, 0, s2.stderr);
    const ssaObj = JSON.parse((await sb.kubectl(['get', 'svc', 'ssa', '-o', 'json', '--show-managed-fields'])).stdout);
    assert.equal(ssaObj.spec.ports[0].name, 'dns');
    assert.ok(ssaObj.metadata.managedFields.some((m: any) => m.manager === 'kubectl' && m.operation === 'Apply'), `a kubectl Apply manager in ${JSON.stringify(ssaObj.metadata.managedFields.map((m: any) => [m.manager, m.operation]))}`);
  });

  it('kubectl create deployment, then expose it as a LoadBalancer', async () => {
    const c = await sb.kubectl(['create', 'deployment', 'nginx', '--image=nginx']);
    assert.equal(c.stdout.trim(), 'deployment.apps/nginx created', c.stderr);
    const e = await sb.kubectl(['expose', 'deployment', 'nginx', '--type', 'LoadBalancer', '--port', '80']);
    assert.equal(e.stdout.trim(), 'service/nginx exposed', e.stderr);
    const svc = JSON.parse((await sb.kubectl(['get', 'svc', 'nginx', '-o', 'json'])).stdout);
    assert.deepEqual(svc.spec.selector, { app: 'nginx' });
    assert.equal(svc.spec.type, 'LoadBalancer');
    const wide = await sb.kubectl(['get', 'svc', 'nginx', '-o', 'wide']);
    assert.match(wide.stdout, /SELECTOR/);
    assert.match(wide.stdout, /app=nginx/);
  });

  it('renders 422 validation errors the way kubectl prints them', async () => {
    const bad = JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'bad' }, spec: { type: 'Foo', ports: [{ port: 0 }] } });
    const r = await sb.kubectl(['create', '-f', '-'], bad);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /The Service "bad" is invalid:/);
    assert.match(r.stderr, /spec\.type: Unsupported value: "Foo": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"/);
    assert.match(r.stderr, /spec\.ports\[0\]\.port: Invalid value: 0: must be between 1 and 65535, inclusive/);
    const np = JSON.stringify({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'bad2' }, spec: { ports: [{ port: 80, nodePort: 30001 }] } });
    const r2 = await sb.kubectl(['create', '-f', '-'], np);
    assert.match(r2.stderr, /spec\.ports\[0\]\.nodePort: Forbidden: may not be used when `type` is 'ClusterIP'/);
  });

  it('a stale resourceVersion gets kube\'s 409 Conflict message', async () => {
    const svc = JSON.parse((await sb.kubectl(['get', 'svc', 'web', '-o', 'json'])).stdout);
    await sb.kubectl(['label', 'svc', 'web', 'bump=1']);
    svc.metadata.labels = { ...svc.metadata.labels, stale: 'yes' };
    const r = await sb.kubectl(['replace', '-f', '-'], JSON.stringify(svc));
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /Error from server \(Conflict\): error when replacing "STDIN": Operation cannot be fulfilled on services "web": the object has been modified; please apply your changes to the latest version and try again/);
  });

  it('dryRun=All runs the pipeline but stores nothing', async () => {
    const before = (await sb.request('GET', '/api/v1/namespaces/default/services')).json().metadata.resourceVersion;
    const r = await sb.kubectl(['create', 'service', 'clusterip', 'dry', '--tcp=80:80', '--dry-run=server', '-o', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.match(out.spec.clusterIP, /^10\.96\./, 'allocation is computed for the reply');
    const get = await sb.kubectl(['get', 'svc', 'dry']);
    assert.match(get.stderr, /services "dry" not found/);
    const afterRv = (await sb.request('GET', '/api/v1/namespaces/default/services')).json().metadata.resourceVersion;
    assert.equal(afterRv, before, 'no write happened');
  });

  it('kubectl delete returns after the object is gone; finalizers hold deletion until removed', async () => {
    await sb.kubectl(['create', 'service', 'clusterip', 'gone', '--tcp=80:80']);
    const d = await sb.kubectl(['delete', 'svc', 'gone']);
    assert.equal(d.stdout.trim(), 'service "gone" deleted');
    const fin = JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'held', finalizers: ['example.com/hold'] }, data: { a: 'b' } });
    await sb.kubectl(['create', '-f', '-'], fin);
    const del = await sb.request('DELETE', '/api/v1/namespaces/default/configmaps/held');
    // handlers/delete.go: 200 with the object while finalizers hold it (202 only for orphanDependents=false)
    assert.equal(del.status, 200);
    assert.ok(del.json().metadata.deletionTimestamp);
    const still = await sb.request('GET', '/api/v1/namespaces/default/configmaps/held');
    assert.equal(still.status, 200);
    const p = await sb.kubectl(['patch', 'configmap', 'held', '--type=merge', '-p', '{"metadata":{"finalizers":null}}']);
    assert.equal(p.code, 0, p.stderr);
    const gone = await sb.request('GET', '/api/v1/namespaces/default/configmaps/held');
    assert.equal(gone.status, 404);
  });

  it('generateName: the name is generated after admission; create-uniqueness gives AlreadyExists', async () => {
    const r = await sb.request('POST', '/api/v1/namespaces/default/configmaps', { metadata: { generateName: 'gen-' } });
    assert.equal(r.status, 201);
    assert.match(r.json().metadata.name, /^gen-[a-z0-9]{5}$/);
    const again = await sb.request('POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: r.json().metadata.name } });
    assert.equal(again.status, 409);
    assert.equal(again.json().reason, 'AlreadyExists');
    assert.equal(again.json().message, `configmaps "${r.json().metadata.name}" already exists`);
  });

  it('deleting a namespace removes its contents, then the namespace', async () => {
    await sb.kubectl(['create', 'ns', 'doomed']);
    await sb.kubectl(['-n', 'doomed', 'create', 'configmap', 'c1']);
    const d = await sb.kubectl(['delete', 'ns', 'doomed']);
    assert.equal(d.code, 0, d.stderr);
    assert.equal((await sb.request('GET', '/api/v1/namespaces/doomed')).status, 404);
    assert.equal((await sb.request('GET', '/api/v1/namespaces/doomed/configmaps/c1')).status, 404);
    const intoMissing = await sb.kubectl(['-n', 'doomed', 'create', 'configmap', 'c2']);
    assert.match(intoMissing.stderr, /namespaces "doomed" not found/);
  });
});

describe('decoding like kube-apiserver', () => {
  it('a label value that is not a string (YAML `yes`) is a 400 decode error, as Go decoding refuses it', async () => {
    const ns = await sb.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'typed', labels: { team: true } } });
    assert.equal(ns.status, 400);
    assert.match(ns.json().message, /cannot unmarshal bool into Go struct field ObjectMeta\.metadata\.labels of type string/);
    const hook = await sb.kubectl(
      ['apply', '-f', '-'],
      [
        'apiVersion: admissionregistration.k8s.io/v1',
        'kind: ValidatingWebhookConfiguration',
        'metadata: {name: typed}',
        'webhooks:',
        '- name: typed.example.com',
        '  admissionReviewVersions: [v1]',
        '  sideEffects: None',
        '  clientConfig: {url: "https://127.0.0.1:1/x"}',
        '  objectSelector: {matchLabels: {reject: yes}}',
        '  rules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [services]}]',
      ].join('\n'),
    );
    assert.notEqual(hook.code, 0, hook.stdout);
    assert.match(hook.stderr, /cannot unmarshal bool into Go struct field LabelSelector\.webhooks\.objectSelector\.matchLabels of type string/);
  });
});
