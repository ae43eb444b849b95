// The API double measured against the real thing: one scenario of kubectl, @kubernetes/client-node and
// raw HTTP requests runs against `admitlb sandbox` on the double and on etcd + kube-apiserver +
// kube-controller-manager (both with admitlb installed, its webhook serving). Each answer is
// normalised (uids, timestamps, resourceVersions, allocated ClusterIPs / nodePorts, generated name
// suffixes, ages) and compared. The run prints `N/M requests answered identically` and every
// difference; it fails on a difference that ALLOWED (below) does not list with its reason, so the figure
// cannot regress silently. Fix the double (src/sandbox/), never the comparison, unless it is wrong.
import assert from 'node:assert/strict';
import https from 'node:https';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { stringify as stringifyYaml } from 'yaml';
import { pool, service, startCluster, until, type E2eCluster } from '../e2e/cluster-helpers.ts';

// ---- the targets ------------------------------------------------------------------------------------

interface Answer {
  [k: string]: unknown;
}

interface Target {
  name: 'sandbox' | 'real';
  cluster: E2eCluster;
  /** values one step leaves for a later one (resourceVersions, names) */
  ctx: Record<string, any>;
}

const MERGE = 'application/merge-patch+json';
const STRATEGIC = 'application/strategic-merge-patch+json';
const JSONPATCH = 'application/json-patch+json';
const APPLY = 'application/apply-patch+yaml';
const TABLE = 'application/json;as=Table;v=v1;g=meta.k8s.io';
const AGGREGATED = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList';

/** One request on its own connection (a DELETE with a body must carry Content-Length, not chunks). */
function request(t: Target, method: string, path: string, body: unknown, headers: Record<string, string>): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string }> {
  const api = t.cluster.sandbox.api;
  const u = new URL(path, api.url);
  const payload = body === undefined ? undefined : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        method,
        hostname: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        ca: api.caPem,
        agent: false,
        headers: {
          Accept: 'application/json',
          Authorization: `Bearer ${api.token}`,
          ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': String(payload.length) } : {}),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** A raw request; the answer is the status, the Warning headers and the (JSON) body. */
async function raw(t: Target, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer & { status: number; body: any }> {
  const r = await request(t, method, path, body, headers);
  let parsed: unknown = r.text;
  try {
    parsed = r.text ? JSON.parse(r.text) : undefined;
  } catch {
    // a watch stream (JSON lines) or text
  }
  const warning = r.headers.warning;
  return { status: r.status, ...(warning ? { warnings: ([] as string[]).concat(warning) } : {}), body: parsed };
}

/** A watch that the server ends after `timeoutSeconds`: the events it sent, as type + object. */
/** The events of a watch; BOOKMARKs (periodic, timing-dependent) only with `initialEventsEnd`, and then only the one ending a streaming list's initial events. */
async function watchEvents(t: Target, path: string, opts: { initialEventsEnd?: boolean } = {}): Promise<Answer> {
  const r = await raw(t, 'GET', path);
  if (typeof r.body !== 'string' && r.status !== 200) return r;
  const text = typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
  const initialEnd = (e: any) => e.type === 'BOOKMARK' && e.object?.metadata?.annotations?.['k8s.io/initial-events-end'] === 'true';
  const events = text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .filter((e) => e.type !== 'BOOKMARK' || (opts.initialEventsEnd && initialEnd(e)))
    .map((e) =>
      e.type === 'ERROR' ? e : e.type === 'BOOKMARK' ? { type: e.type, kind: e.object.kind, apiVersion: e.object.apiVersion, annotations: e.object.metadata.annotations, resourceVersion: /^\d+$/.test(e.object.metadata.resourceVersion) } : { type: e.type, name: e.object?.metadata?.name, labels: e.object?.metadata?.labels, data: e.object?.data },
    );
  return { status: r.status, events };
}

async function kubectl(t: Target, args: string[], input?: string): Promise<Answer> {
  const r = await t.cluster.kubectl(args, input);
  return { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

const yaml = (...objects: object[]) => objects.map((o) => stringifyYaml(o)).join('---\n');
const cm = (name: string, data: Record<string, string>, metadata: Record<string, unknown> = {}) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, ...metadata }, data });
const NS = 'diff';
const cms = `/api/v1/namespaces/${NS}/configmaps`;
const svcs = `/api/v1/namespaces/${NS}/services`;
const pools = '/apis/admitlb.io/v1alpha1/ippools';
const leases = `/apis/coordination.k8s.io/v1/namespaces/${NS}/leases`;

/** Only what a list says about its items, for the selector steps. */
const names = (r: Answer & { body: any }): Answer => (r.status === 200 ? { status: r.status, names: (r.body.items ?? []).map((i: any) => i.metadata.name).sort() } : r);

// ---- the scenario -----------------------------------------------------------------------------------

interface Step {
  name: string;
  run(t: Target): Promise<Answer>;
}

const STEPS: Step[] = [
  // create
  { name: 'kubectl create namespace', run: (t) => kubectl(t, ['create', 'namespace', NS]) },
  { name: 'POST configmap', run: async (t) => { const r = await raw(t, 'POST', cms, cm('cm1', { a: '1' }, { labels: { app: 'a' } })); t.ctx.cm1rv = r.body?.metadata?.resourceVersion; return r; } },
  { name: 'POST configmap (second, label app=b)', run: (t) => raw(t, 'POST', cms, cm('cm2', { b: '1' }, { labels: { app: 'b', tier: 'x' } })) },
  { name: 'POST configmap with generateName', run: (t) => raw(t, 'POST', cms, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { generateName: 'diff-gen-' } }) },
  { name: 'POST configmap that exists (409 AlreadyExists)', run: (t) => raw(t, 'POST', cms, cm('cm1', {})) },
  { name: 'POST configmap with resourceVersion set', run: (t) => raw(t, 'POST', cms, cm('cm-rv', {}, { resourceVersion: '5' })) },
  { name: 'POST configmap with an invalid name (422)', run: (t) => raw(t, 'POST', cms, cm('Bad_Name', {})) },
  { name: 'POST configmap, kind does not match the resource', run: (t) => raw(t, 'POST', cms, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'wrong-kind' } }) },
  { name: 'POST configmap into a namespace that does not exist', run: (t) => raw(t, 'POST', '/api/v1/namespaces/nowhere/configmaps', cm('x', {})) },
  { name: 'GET configmap that does not exist', run: (t) => raw(t, 'GET', `${cms}/nope`) },
  // update
  { name: 'PUT configmap with its resourceVersion', run: async (t) => { const cur = (await raw(t, 'GET', `${cms}/cm1`)).body; cur.data.a = '2'; return raw(t, 'PUT', `${cms}/cm1`, cur); } },
  { name: 'PUT configmap with a stale resourceVersion (409)', run: (t) => raw(t, 'PUT', `${cms}/cm1`, cm('cm1', { a: '3' }, { labels: { app: 'a' }, resourceVersion: t.ctx.cm1rv })) },
  { name: 'PUT configmap without resourceVersion (unconditional)', run: (t) => raw(t, 'PUT', `${cms}/cm1`, cm('cm1', { a: '4' }, { labels: { app: 'a' } })) },
  { name: 'PUT configmap, name in body differs from the URL', run: (t) => raw(t, 'PUT', `${cms}/cm1`, cm('other', { a: '4' })) },
  { name: 'PUT configmap that does not exist (404)', run: (t) => raw(t, 'PUT', `${cms}/absent`, cm('absent', {}, { resourceVersion: '1' })) },
  // the four patch types
  { name: 'PATCH json-patch', run: (t) => raw(t, 'PATCH', `${cms}/cm1`, [{ op: 'add', path: '/data/j', value: 'x' }], { 'Content-Type': JSONPATCH }) },
  { name: 'PATCH json-patch whose test fails', run: (t) => raw(t, 'PATCH', `${cms}/cm1`, [{ op: 'test', path: '/data/a', value: 'no' }], { 'Content-Type': JSONPATCH }) },
  { name: 'PATCH json-patch removing a missing path', run: (t) => raw(t, 'PATCH', `${cms}/cm1`, [{ op: 'remove', path: '/data/missing' }], { 'Content-Type': JSONPATCH }) },
  { name: 'PATCH merge-patch', run: (t) => raw(t, 'PATCH', `${cms}/cm1`, { data: { m: 'y', j: null }, metadata: { labels: { merged: 'yes' } } }, { 'Content-Type': MERGE }) },
  { name: 'PATCH merge-patch that is not JSON', run: (t) => raw(t, 'PATCH', `${cms}/cm1`, '{not json', { 'Content-Type': MERGE }) },
  { name: 'PATCH strategic-merge (configmap)', run: (t) => raw(t, 'PATCH', `${cms}/cm1`, { metadata: { labels: { merged: null } }, data: { s: 'z' } }, { 'Content-Type': STRATEGIC }) },
  { name: 'PATCH with an unsupported content type (415)', run: (t) => raw(t, 'PATCH', `${cms}/cm1`, { data: {} }, { 'Content-Type': 'text/plain' }) },
  { name: 'PATCH of an object that does not exist', run: (t) => raw(t, 'PATCH', `${cms}/absent`, { data: {} }, { 'Content-Type': MERGE }) },
  // server-side apply
  { name: 'APPLY creates (fieldManager alice)', run: (t) => raw(t, 'PATCH', `${cms}/ssa?fieldManager=alice`, yaml(cm('ssa', { owned: 'alice', other: 'alice' })), { 'Content-Type': APPLY }) },
  { name: 'APPLY without fieldManager (400)', run: (t) => raw(t, 'PATCH', `${cms}/ssa`, yaml(cm('ssa', { owned: 'x' })), { 'Content-Type': APPLY }) },
  { name: 'APPLY conflict (fieldManager bob, 409 with causes)', run: (t) => raw(t, 'PATCH', `${cms}/ssa?fieldManager=bob`, yaml(cm('ssa', { owned: 'bob' })), { 'Content-Type': APPLY }) },
  { name: 'APPLY force=true takes the field', run: (t) => raw(t, 'PATCH', `${cms}/ssa?fieldManager=bob&force=true`, yaml(cm('ssa', { owned: 'bob' })), { 'Content-Type': APPLY }) },
  { name: 'APPLY by alice without a field she owned removes it', run: (t) => raw(t, 'PATCH', `${cms}/ssa?fieldManager=alice`, yaml(cm('ssa', { mine: 'alice' })), { 'Content-Type': APPLY }) },
  { name: 'APPLY managedFields (manager, operation, fields)', run: async (t) => { const r = await raw(t, 'GET', `${cms}/ssa`); return { status: r.status, managedFields: r.body.metadata.managedFields.map((m: any) => ({ manager: m.manager, operation: m.operation, fields: m.fieldsV1 })) }; } },
  { name: 'APPLY with a kind mismatch', run: (t) => raw(t, 'PATCH', `${cms}/ssa?fieldManager=alice`, yaml({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'ssa' } }), { 'Content-Type': APPLY }) },
  { name: 'kubectl apply --server-side', run: (t) => kubectl(t, ['apply', '--server-side', '-n', NS, '-f', '-'], yaml(cm('ssa-kubectl', { k: 'v' }))) },
  { name: 'kubectl apply --server-side conflict', run: (t) => kubectl(t, ['apply', '--server-side', '--field-manager', 'other', '-n', NS, '-f', '-'], yaml(cm('ssa-kubectl', { k: 'w' }))) },
  // strict field validation
  { name: 'POST configmap with an unknown field, fieldValidation=Strict', run: (t) => raw(t, 'POST', `${cms}?fieldValidation=Strict`, { ...cm('strict', {}), spec: { x: 1 } }) },
  { name: 'POST configmap with an unknown field, fieldValidation=Warn', run: (t) => raw(t, 'POST', `${cms}?fieldValidation=Warn`, { ...cm('warned', {}), bogus: 1 }) },
  { name: 'POST service with an unknown nested field, fieldValidation=Strict', run: (t) => raw(t, 'POST', `${svcs}?fieldValidation=Strict`, { ...service('strict-svc', { type: 'ClusterIP' }), spec: { ports: [{ port: 80, bogus: true }] } }) },
  { name: 'POST service with a duplicate field, fieldValidation=Strict', run: (t) => raw(t, 'POST', `${svcs}?fieldValidation=Strict&dryRun=All`, '{"apiVersion":"v1","kind":"Service","metadata":{"name":"dup","name":"dup"},"spec":{"ports":[{"port":80}]}}') },
  { name: 'kubectl apply with an unknown field', run: (t) => kubectl(t, ['apply', '-n', NS, '-f', '-'], yaml({ ...service('unknown-field', { type: 'ClusterIP' }), spec: { type: 'ClusterIP', ports: [{ port: 80 }], colour: 'red' } })) },
  { name: 'kubectl create with a wrongly typed field', run: (t) => kubectl(t, ['create', '-n', NS, '-f', '-'], yaml({ ...service('bad-type', { type: 'ClusterIP' }), spec: { ports: [{ port: 'eighty' }] } })) },
  // Services: validation, allocation, /status
  { name: 'POST service without ports (422 with causes)', run: (t) => raw(t, 'POST', svcs, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'noports' }, spec: { type: 'ClusterIP' } }) },
  { name: 'POST service with bad ports (422, several causes)', run: (t) => raw(t, 'POST', svcs, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'badports' }, spec: { type: 'NodePort', ports: [{ port: 0 }, { port: 80, nodePort: 80 }, { port: 80, protocol: 'XTP' }] } }) },
  { name: 'POST service with a bad clusterIP', run: (t) => raw(t, 'POST', svcs, { ...service('badip', { type: 'ClusterIP' }), spec: { ports: [{ port: 80 }], clusterIP: '10.0.0.1' } }) },
  { name: 'POST ClusterIP service', run: (t) => raw(t, 'POST', svcs, service('cip', { type: 'ClusterIP', labels: { app: 'a' } })) },
  { name: 'POST NodePort service', run: (t) => raw(t, 'POST', svcs, service('np', { type: 'NodePort', ports: [80, 443] })) },
  { name: 'POST LoadBalancer service (admitlb assigns)', run: (t) => raw(t, 'POST', svcs, service('lb', { ports: [80] })) },
  { name: 'POST headless service', run: (t) => raw(t, 'POST', svcs, { ...service('headless', { type: 'ClusterIP' }), spec: { clusterIP: 'None', selector: { app: 'h' }, ports: [{ port: 80 }] } }) },
  { name: 'POST ExternalName service', run: (t) => raw(t, 'POST', svcs, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'ext' }, spec: { type: 'ExternalName', externalName: 'example.com' } }) },
  { name: 'PATCH strategic-merge service ports (merge key port)', run: (t) => raw(t, 'PATCH', `${svcs}/np`, { spec: { ports: [{ port: 443, name: 'renamed', targetPort: 8443 }] } }, { 'Content-Type': STRATEGIC }) },
  { name: 'PATCH merge service ports (list replaced)', run: (t) => raw(t, 'PATCH', `${svcs}/np`, { spec: { ports: [{ port: 8080, name: 'only' }] } }, { 'Content-Type': MERGE }) },
  { name: 'PATCH service type ClusterIP -> LoadBalancer', run: (t) => raw(t, 'PATCH', `${svcs}/cip`, { spec: { type: 'LoadBalancer' } }, { 'Content-Type': STRATEGIC }) },
  { name: 'PATCH service spec.clusterIP (immutable, 422)', run: (t) => raw(t, 'PATCH', `${svcs}/np`, { spec: { clusterIP: '10.96.0.77', clusterIPs: ['10.96.0.77'] } }, { 'Content-Type': MERGE }) },
  { name: 'PUT /status loadBalancer.ingress on a NodePort service (Forbidden)', run: async (t) => { const cur = (await raw(t, 'GET', `${svcs}/np`)).body; cur.status = { loadBalancer: { ingress: [{ ip: '192.0.2.10' }] } }; return raw(t, 'PUT', `${svcs}/np/status`, cur); } },
  { name: 'PATCH /status loadBalancer.ingress on a NodePort service (Forbidden)', run: (t) => raw(t, 'PATCH', `${svcs}/np/status`, { status: { loadBalancer: { ingress: [{ ip: '192.0.2.10' }] } } }, { 'Content-Type': MERGE }) },
  { name: 'PATCH /status conditions; spec in the same patch is ignored', run: (t) => raw(t, 'PATCH', `${svcs}/headless/status`, { spec: { selector: { app: 'changed' } }, status: { conditions: [{ type: 'Tested', status: 'True', reason: 'Diff', message: 'set by the differential suite', lastTransitionTime: '2026-01-01T00:00:00Z' }] } }, { 'Content-Type': MERGE }) },
  { name: 'PATCH /status with an invalid condition (422)', run: (t) => raw(t, 'PATCH', `${svcs}/headless/status`, { status: { conditions: [{ type: 'Bad', status: 'Maybe', reason: 'Diff', message: 'm', lastTransitionTime: '2026-01-01T00:00:00Z' }] } }, { 'Content-Type': MERGE }) },
  { name: 'PUT service: status in the body is ignored', run: async (t) => { const cur = (await raw(t, 'GET', `${svcs}/headless`)).body; cur.status = {}; cur.metadata.labels = { changed: 'yes' }; return raw(t, 'PUT', `${svcs}/headless`, cur); } },
  // dry run
  { name: 'POST service dryRun=All', run: (t) => raw(t, 'POST', `${svcs}?dryRun=All`, service('dry', { type: 'ClusterIP' })) },
  { name: 'GET the dry-run service (404)', run: (t) => raw(t, 'GET', `${svcs}/dry`) },
  { name: 'POST dryRun with a bad value', run: (t) => raw(t, 'POST', `${svcs}?dryRun=Some`, service('dry2', { type: 'ClusterIP' })) },
  { name: 'kubectl create configmap --dry-run=server -o yaml', run: (t) => kubectl(t, ['create', 'configmap', 'dry-cm', '-n', NS, '--from-literal=k=v', '--dry-run=server', '-o', 'yaml']) },
  { name: 'kubectl delete --dry-run=server', run: (t) => kubectl(t, ['delete', 'configmap', 'cm2', '-n', NS, '--dry-run=server']) },
  { name: 'kubectl get after delete --dry-run=server', run: (t) => kubectl(t, ['get', 'configmap', 'cm2', '-n', NS, '-o', 'name']) },
  // label and field selectors
  { name: 'list labelSelector app=a', run: async (t) => names(await raw(t, 'GET', `${cms}?labelSelector=app%3Da`)) },
  { name: 'list labelSelector app in (a,b)', run: async (t) => names(await raw(t, 'GET', `${cms}?labelSelector=${encodeURIComponent('app in (a,b)')}`)) },
  { name: 'list labelSelector !app and exists', run: async (t) => names(await raw(t, 'GET', `${cms}?labelSelector=${encodeURIComponent('tier,app!=a')}`)) },
  { name: 'list labelSelector that does not parse', run: (t) => raw(t, 'GET', `${cms}?labelSelector=${encodeURIComponent('app in (a')}`) },
  { name: 'list fieldSelector metadata.name', run: async (t) => names(await raw(t, 'GET', `${cms}?fieldSelector=metadata.name%3Dcm2`)) },
  { name: 'list fieldSelector metadata.name!=', run: async (t) => names(await raw(t, 'GET', `${svcs}?fieldSelector=${encodeURIComponent('metadata.name!=np')}`)) },
  { name: 'list fieldSelector metadata.namespace= across namespaces', run: async (t) => names(await raw(t, 'GET', `/api/v1/services?fieldSelector=${encodeURIComponent(`metadata.namespace=${NS}`)}`)) },
  { name: 'list fieldSelector spec.type (unsupported label)', run: (t) => raw(t, 'GET', `${svcs}?fieldSelector=spec.type%3DClusterIP`) },
  // Pods: external-dns's service source lists and watches them (none in this namespace on either target)
  { name: 'list pods', run: (t) => raw(t, 'GET', `/api/v1/namespaces/${NS}/pods`) },
  { name: 'list pods fieldSelector status.phase', run: (t) => raw(t, 'GET', `/api/v1/namespaces/${NS}/pods?fieldSelector=status.phase%3DRunning`) },
  { name: 'list pods fieldSelector spec.hostname (unsupported label)', run: (t) => raw(t, 'GET', `/api/v1/namespaces/${NS}/pods?fieldSelector=spec.hostname%3Dx`) },
  { name: 'list with limit and continue', run: async (t) => { const r = await raw(t, 'GET', `${cms}?limit=1&labelSelector=app`); return { status: r.status, items: r.body.items.length, hasContinue: Boolean(r.body.metadata.continue), remainingItemCount: r.body.metadata.remainingItemCount }; } },
  { name: 'kubectl get -l', run: (t) => kubectl(t, ['get', 'configmaps', '-n', NS, '-l', 'app', '-o', 'name']) },
  { name: 'kubectl get --field-selector', run: (t) => kubectl(t, ['get', 'services', '-n', NS, '--field-selector', 'metadata.name=np', '-o', 'name']) },
  // watch
  {
    name: 'watch from a resourceVersion (ADDED, MODIFIED, DELETED)',
    run: async (t) => {
      const rv = (await raw(t, 'GET', cms)).body.metadata.resourceVersion;
      await raw(t, 'POST', cms, cm('w1', { v: '1' }, { labels: { watch: 'yes' } }));
      await raw(t, 'PATCH', `${cms}/w1`, { data: { v: '2' } }, { 'Content-Type': MERGE });
      await raw(t, 'DELETE', `${cms}/w1`);
      return watchEvents(t, `${cms}?watch=true&resourceVersion=${rv}&timeoutSeconds=1&labelSelector=watch`);
    },
  },
  {
    name: 'watch with a label selector: leaving the selector is DELETED, entering it ADDED',
    run: async (t) => {
      const rv = (await raw(t, 'GET', cms)).body.metadata.resourceVersion;
      await raw(t, 'POST', cms, cm('w2', { v: '1' }, { labels: { sel: 'in' } }));
      await raw(t, 'PATCH', `${cms}/w2`, { metadata: { labels: { sel: 'out' } } }, { 'Content-Type': MERGE });
      await raw(t, 'PATCH', `${cms}/w2`, { metadata: { labels: { sel: 'in' } } }, { 'Content-Type': MERGE });
      return watchEvents(t, `${cms}?watch=true&resourceVersion=${rv}&timeoutSeconds=1&labelSelector=sel%3Din`);
    },
  },
  { name: 'watch with resourceVersion=0 (synthetic ADDED)', run: (t) => watchEvents(t, `${cms}?watch=true&resourceVersion=0&timeoutSeconds=1&fieldSelector=metadata.name%3Dcm2`) },
  // streaming lists (WatchList): how client-go 1.35's informers (external-dns's) list
  { name: 'watch with sendInitialEvents (ADDED, then the initial-events-end BOOKMARK)', run: (t) => watchEvents(t, `${cms}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1&fieldSelector=metadata.name%3Dcm2`, { initialEventsEnd: true }) },
  { name: 'watch with sendInitialEvents without resourceVersionMatch (422)', run: (t) => raw(t, 'GET', `${cms}?watch=true&sendInitialEvents=true&timeoutSeconds=1`) },
  { name: 'list with sendInitialEvents (422)', run: (t) => raw(t, 'GET', `${cms}?sendInitialEvents=true`) },
  // kube-apiserver serves a watch from any version etcd has not compacted (every 5 minutes), so the 410
  // of a compacted version cannot be provoked here; both answer from history.
  { name: 'watch from resourceVersion=1 (still in history)', run: (t) => watchEvents(t, `${cms}?watch=true&resourceVersion=1&timeoutSeconds=1&labelSelector=app`) },
  { name: 'list with resourceVersionMatch=Exact of a too old version', run: (t) => raw(t, 'GET', `${cms}?resourceVersion=1&resourceVersionMatch=Exact`) },
  { name: 'watch with a bad resourceVersion', run: (t) => watchEvents(t, `${cms}?watch=true&resourceVersion=abc&timeoutSeconds=1`) },
  // Table output
  { name: 'Table of services', run: (t) => raw(t, 'GET', svcs, undefined, { Accept: TABLE }) },
  { name: 'Table of configmaps (labelSelector)', run: (t) => raw(t, 'GET', `${cms}?labelSelector=app`, undefined, { Accept: TABLE }) },
  { name: 'Table of one namespace', run: (t) => raw(t, 'GET', `/api/v1/namespaces/${NS}`, undefined, { Accept: TABLE }) },
  { name: 'Table of ippools', run: (t) => raw(t, 'GET', '/apis/admitlb.io/v1alpha1/ippools', undefined, { Accept: TABLE }) },
  { name: 'Table with includeObject=Metadata', run: async (t) => { const r = await raw(t, 'GET', `${svcs}/np?includeObject=Metadata`, undefined, { Accept: TABLE }); return { status: r.status, object: r.body?.rows?.[0]?.object }; } },
  { name: 'kubectl get services', run: (t) => kubectl(t, ['get', 'services', '-n', NS]) },
  { name: 'kubectl get services -o wide', run: (t) => kubectl(t, ['get', 'services', '-n', NS, '-o', 'wide']) },
  { name: 'kubectl get configmaps', run: (t) => kubectl(t, ['get', 'configmaps', '-n', NS]) },
  { name: 'kubectl get namespace', run: (t) => kubectl(t, ['get', 'namespace', NS, 'default']) },
  { name: 'kubectl get service that does not exist', run: (t) => kubectl(t, ['get', 'service', 'nope', '-n', NS]) },
  { name: 'kubectl describe service', run: (t) => kubectl(t, ['describe', 'service', 'np', '-n', NS]) },
  // discovery and OpenAPI
  { name: 'GET /api', run: async (t) => { const r = await raw(t, 'GET', '/api'); return { status: r.status, kind: r.body.kind, versions: r.body.versions }; } },
  { name: 'GET /apis (groups admitlb and kubectl use)', run: async (t) => { const r = await raw(t, 'GET', '/apis'); return { status: r.status, kind: r.body.kind, groups: byName(r.body.groups.filter((g: any) => USED_GROUPS.includes(g.name)), 'name').map((g: any) => ({ name: g.name, versions: g.versions, preferredVersion: g.preferredVersion })) }; } },
  { name: 'GET /api/v1 (resources admitlb and kubectl use)', run: async (t) => { const r = await raw(t, 'GET', '/api/v1'); return { status: r.status, kind: r.body.kind, groupVersion: r.body.groupVersion, resources: byName(r.body.resources.filter((x: any) => USED_CORE.includes(x.name.split('/')[0])), 'name').map(discoveryResource) }; } },
  { name: 'GET /apis/admitlb.io/v1alpha1', run: async (t) => { const r = await raw(t, 'GET', '/apis/admitlb.io/v1alpha1'); return { status: r.status, kind: r.body.kind, resources: byName(r.body.resources, 'name').map(discoveryResource) }; } },
  { name: 'aggregated discovery /api', run: async (t) => aggregated(await raw(t, 'GET', '/api', undefined, { Accept: AGGREGATED })) },
  { name: 'aggregated discovery /apis', run: async (t) => aggregated(await raw(t, 'GET', '/apis', undefined, { Accept: AGGREGATED })) },
  { name: 'GET /version (major only)', run: async (t) => { const r = await raw(t, 'GET', '/version'); return { status: r.status, major: r.body.major, keys: Object.keys(r.body).sort() }; } },
  { name: 'GET /openapi/v3 (paths admitlb and kubectl use)', run: async (t) => { const r = await raw(t, 'GET', '/openapi/v3'); return { status: r.status, paths: Object.keys(r.body.paths).filter((p) => USED_OPENAPI.includes(p)).sort(), urls: Object.values(r.body.paths).every((v: any) => /^\/openapi\/v3\/.+\?hash=[0-9A-F]+$/.test(v.serverRelativeURL)) }; } },
  { name: 'OpenAPI v3 api/v1: the Service PATCH operation kubectl checks for fieldValidation', run: (t) => openapiPatch(t, 'api/v1', '/api/v1/namespaces/{namespace}/services/{name}') },
  { name: 'OpenAPI v3 admitlb.io: the IPPool PATCH operation', run: (t) => openapiPatch(t, 'apis/admitlb.io/v1alpha1', '/apis/admitlb.io/v1alpha1/ippools/{name}') },
  { name: 'kubectl explain ippool.spec.addresses', run: (t) => kubectl(t, ['explain', 'ippool.spec.addresses']) },
  { name: 'kubectl api-resources --api-group=admitlb.io', run: (t) => kubectl(t, ['api-resources', '--api-group=admitlb.io']) },
  // admitlb's own kinds
  { name: 'kubectl apply IPPool', run: (t) => kubectl(t, ['apply', '-f', '-'], yaml(pool('diff-pool', { addresses: ['198.51.100.0/28'], autoAssign: false }))) },
  { name: 'kubectl apply an overlapping IPPool (webhook denial)', run: (t) => kubectl(t, ['apply', '-f', '-'], yaml(pool('diff-overlap', { addresses: ['198.51.100.8/29'] }))) },
  { name: 'POST IPPool with a schema error (422)', run: (t) => raw(t, 'POST', '/apis/admitlb.io/v1alpha1/ippools', pool('diff-bad', { addresses: 'not-a-list' })) },
  { name: 'POST IPPool with an unknown field, fieldValidation=Strict', run: (t) => raw(t, 'POST', '/apis/admitlb.io/v1alpha1/ippools?fieldValidation=Strict', pool('diff-unknown', { addresses: ['198.51.100.200/32'], colour: 'red' })) },
  { name: 'kubectl create LoadBalancer service from the pool', run: async (t) => { await t.cluster.waitForPool('diff-pool'); return kubectl(t, ['apply', '-n', NS, '-f', '-'], yaml(service('from-pool', { annotations: { 'admitlb.io/pool': 'diff-pool' } }))); } },
  { name: 'GET the service from the pool (admitlb annotations)', run: async (t) => { const r = await raw(t, 'GET', `${svcs}/from-pool`); return { status: r.status, annotations: r.body.metadata.annotations }; } },
  { name: 'kubectl create service naming a pool that does not exist (webhook denial)', run: (t) => kubectl(t, ['apply', '-n', NS, '-f', '-'], yaml(service('no-pool', { annotations: { 'admitlb.io/pool': 'nope' } }))) },
  { name: 'POST service naming a pool that does not exist (webhook denial)', run: (t) => raw(t, 'POST', svcs, service('no-pool', { annotations: { 'admitlb.io/pool': 'nope' } })) },
  { name: 'GET IPClaim of the assigned address', run: async (t) => { const ip = (await raw(t, 'GET', `${svcs}/from-pool`)).body.metadata.annotations['admitlb.io/assigned-ips']; return raw(t, 'GET', `/apis/admitlb.io/v1alpha1/ipclaims/${ip}`); } },
  { name: 'kubectl get ipclaims (claims of diff-pool)', run: async (t) => { const r = await kubectl(t, ['get', 'ipclaims']); return { ...r, stdout: String(r.stdout).split('\n').filter((l) => l.startsWith('NAME') || l.includes('diff-pool')).join('\n') }; } },
  { name: 'kubectl get ippool diff-pool', run: (t) => kubectl(t, ['get', 'ippool', 'diff-pool']) },
  { name: 'wait for the controller: status.loadBalancer of the pool service', run: async (t) => { const s = await until('status.loadBalancer', async () => { const r = await raw(t, 'GET', `${svcs}/from-pool`); return r.body.status?.loadBalancer?.ingress ? r.body.status : undefined; }); return { status: s }; } },
  { name: 'kubectl delete IPPool diff-pool', run: (t) => kubectl(t, ['delete', 'ippool', 'diff-pool', '--wait=false']) },
  // the other API calls admitlb makes: custom resources without unconditional update, status of a
  // pool, Leases for leader election, events.k8s.io Events
  { name: 'POST IPPool (raw)', run: (t) => raw(t, 'POST', `${pools}`, pool('diff-raw', { addresses: ['198.51.100.32/30'], autoAssign: false })) },
  { name: 'PUT IPPool without resourceVersion (422)', run: (t) => raw(t, 'PUT', `${pools}/diff-raw`, pool('diff-raw', { addresses: ['198.51.100.32/30'], autoAssign: true })) },
  { name: 'PUT IPPool with a stale resourceVersion (409)', run: (t) => raw(t, 'PUT', `${pools}/diff-raw`, { ...pool('diff-raw', { addresses: ['198.51.100.32/30'] }), metadata: { name: 'diff-raw', resourceVersion: '1' } }) },
  // admitlb's controller writes the pool's status at its own pace: only spec and generation are compared
  { name: 'PATCH IPPool merge (generation bump)', run: async (t) => { const r = await raw(t, 'PATCH', `${pools}/diff-raw`, { spec: { autoAssign: true } }, { 'Content-Type': MERGE }); return { status: r.status, spec: r.body?.spec, generation: r.body?.metadata?.generation }; } },
  { name: 'PATCH IPPool strategic-merge (415 for custom resources)', run: (t) => raw(t, 'PATCH', `${pools}/diff-raw`, { spec: { autoAssign: false } }, { 'Content-Type': STRATEGIC }) },
  { name: 'PATCH IPPool /status ignores spec', run: async (t) => { const r = await raw(t, 'PATCH', `${pools}/diff-raw/status`, { spec: { autoAssign: false }, status: { conditions: [] } }, { 'Content-Type': MERGE }); return { status: r.status, spec: r.body?.spec, generation: r.body?.metadata?.generation }; } },
  { name: 'DELETE IPPool (what it returns)', run: (t) => raw(t, 'DELETE', `${pools}/diff-raw`) },
  { name: 'POST Lease', run: (t) => raw(t, 'POST', leases, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'diff-lease' }, spec: { holderIdentity: 'a', leaseDurationSeconds: 15, acquireTime: '2026-01-01T00:00:00.000000Z', renewTime: '2026-01-01T00:00:00.000000Z', leaseTransitions: 0 } }) },
  { name: 'PUT Lease with a stale resourceVersion (409)', run: (t) => raw(t, 'PUT', `${leases}/diff-lease`, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'diff-lease', resourceVersion: '1' }, spec: { holderIdentity: 'b' } }) },
  { name: 'PUT Lease with a renewTime without microseconds', run: async (t) => { const cur = (await raw(t, 'GET', `${leases}/diff-lease`)).body; cur.spec.renewTime = '2026-01-01T00:00:01Z'; return raw(t, 'PUT', `${leases}/diff-lease`, cur); } },
  { name: 'POST events.k8s.io Event', run: (t) => raw(t, 'POST', `/apis/events.k8s.io/v1/namespaces/${NS}/events`, { apiVersion: 'events.k8s.io/v1', kind: 'Event', metadata: { name: 'diff-ev' }, eventTime: '2026-01-01T00:00:00.000000Z', reportingController: 'admitlb.io/controller', reportingInstance: 'x', action: 'Allocate', reason: 'IPAllocated', type: 'Normal', note: 'n', regarding: { kind: 'Service', namespace: NS, name: 'lb', apiVersion: 'v1' } }) },
  { name: 'POST events.k8s.io Event with a millisecond eventTime (400)', run: (t) => raw(t, 'POST', `/apis/events.k8s.io/v1/namespaces/${NS}/events`, { apiVersion: 'events.k8s.io/v1', kind: 'Event', metadata: { name: 'diff-ev2' }, eventTime: '2026-01-01T00:00:00.123Z', reportingController: 'c', reportingInstance: 'x', action: 'A', reason: 'R', type: 'Normal' }) },
  { name: 'GET the Event through core/v1', run: (t) => raw(t, 'GET', `/api/v1/namespaces/${NS}/events/diff-ev`) },
  { name: 'kubectl apply (client-side) twice', run: async (t) => { const m = yaml(service('csa', { type: 'ClusterIP' })); await kubectl(t, ['apply', '-n', NS, '-f', '-'], m); return kubectl(t, ['apply', '-n', NS, '-f', '-'], yaml(service('csa', { type: 'ClusterIP', ports: [80, 443] }))); } },
  { name: 'the client-side applied service', run: async (t) => { const r = await raw(t, 'GET', `${svcs}/csa`); return { status: r.status, ports: r.body.spec.ports, annotations: Object.keys(r.body.metadata.annotations ?? {}) }; } },
  { name: 'kubectl patch --subresource=status on a LoadBalancer service', run: (t) => kubectl(t, ['patch', 'svc', 'csa', '-n', NS, '--subresource=status', '--type=merge', '-p', '{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.9"}]}}}']) },
  // client-node
  { name: 'client-node createNamespacedConfigMap', run: (t) => clientNode(t, (core) => core.createNamespacedConfigMap({ namespace: NS, body: cm('from-client', { k: 'v' }) as never })) },
  { name: 'client-node createNamespacedConfigMap conflict', run: (t) => clientNode(t, (core) => core.createNamespacedConfigMap({ namespace: NS, body: cm('from-client', { k: 'v' }) as never })) },
  { name: 'client-node listNamespacedConfigMap labelSelector', run: async (t) => clientNode(t, async (core) => ((await core.listNamespacedConfigMap({ namespace: NS, labelSelector: 'app=b' })).items.map((i) => i.metadata?.name))) },
  { name: 'client-node readNamespacedService 404', run: (t) => clientNode(t, (core) => core.readNamespacedService({ namespace: NS, name: 'nope' })) },
  // delete
  { name: 'DELETE configmap (what it returns)', run: (t) => raw(t, 'DELETE', `${cms}/cm1`) },
  { name: 'DELETE service (what it returns)', run: (t) => raw(t, 'DELETE', `${svcs}/headless`) },
  { name: 'DELETE with a uid precondition that fails (409)', run: (t) => raw(t, 'DELETE', `${cms}/cm2`, { kind: 'DeleteOptions', apiVersion: 'v1', preconditions: { uid: '00000000-0000-0000-0000-000000000000' } }) },
  { name: 'DELETE that does not exist (404)', run: (t) => raw(t, 'DELETE', `${cms}/cm1`) },
  { name: 'DELETE with a finalizer: 200 with deletionTimestamp, then gone', run: async (t) => { await raw(t, 'POST', cms, cm('fin', {}, { finalizers: ['example.com/hold'] })); const r = await raw(t, 'DELETE', `${cms}/fin`); await raw(t, 'PATCH', `${cms}/fin`, { metadata: { finalizers: null } }, { 'Content-Type': MERGE }); const gone = await raw(t, 'GET', `${cms}/fin`); return { delete: r, afterFinalizer: gone.status }; } },
  { name: 'DELETE collection with a label selector', run: async (t) => { const r = await raw(t, 'DELETE', `${cms}?labelSelector=app%3Db`); return { status: r.status, kind: r.body?.kind, names: (r.body?.items ?? []).map((i: any) => i.metadata.name) }; } },
  { name: 'kubectl delete service', run: (t) => kubectl(t, ['delete', 'service', 'np', '-n', NS]) },
  // namespace deletion
  { name: 'DELETE namespace default (Forbidden)', run: (t) => raw(t, 'DELETE', '/api/v1/namespaces/default') },
  { name: 'DELETE namespace kube-system (Forbidden)', run: (t) => raw(t, 'DELETE', '/api/v1/namespaces/kube-system') },
  { name: 'DELETE namespace (Terminating)', run: async (t) => { await raw(t, 'POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'diff-term' } }); await raw(t, 'POST', '/api/v1/namespaces/diff-term/configmaps', cm('held', {}, { finalizers: ['example.com/hold'] })); return raw(t, 'DELETE', '/api/v1/namespaces/diff-term'); } },
  { name: 'GET the terminating namespace', run: async (t) => { const r = await raw(t, 'GET', '/api/v1/namespaces/diff-term'); return { status: r.status, phase: r.body.status?.phase, deleting: Boolean(r.body.metadata?.deletionTimestamp), finalizers: r.body.spec?.finalizers }; } },
  { name: 'POST into the terminating namespace (Forbidden)', run: (t) => raw(t, 'POST', '/api/v1/namespaces/diff-term/configmaps', cm('late', {})) },
  { name: 'DELETE the terminating namespace again', run: async (t) => { const r = await raw(t, 'DELETE', '/api/v1/namespaces/diff-term'); return { status: r.status, kind: r.body?.kind, phase: r.body?.status?.phase }; } },
  { name: 'the held object gets a deletionTimestamp', run: async (t) => { const r = await until('deletionTimestamp on the held object', async () => { const g = await raw(t, 'GET', '/api/v1/namespaces/diff-term/configmaps/held'); return g.body?.metadata?.deletionTimestamp ? g : undefined; }, 30_000); return { status: r.status, deleting: true }; } },
  { name: 'namespace gone once the last finalizer is removed', run: async (t) => { await raw(t, 'PATCH', '/api/v1/namespaces/diff-term/configmaps/held', { metadata: { finalizers: null } }, { 'Content-Type': MERGE }); const status = await until('namespace gone', async () => { const g = await raw(t, 'GET', '/api/v1/namespaces/diff-term'); return g.status === 404 ? g.status : undefined; }, 60_000); return { status }; } },
  { name: 'kubectl delete namespace', run: (t) => kubectl(t, ['delete', 'namespace', NS, '--wait=false']) },
];

const USED_GROUPS = ['admissionregistration.k8s.io', 'apiextensions.k8s.io', 'apps', 'coordination.k8s.io', 'discovery.k8s.io', 'events.k8s.io', 'admitlb.io'];
const USED_CORE = ['namespaces', 'services', 'configmaps', 'secrets', 'events', 'nodes', 'endpoints', 'serviceaccounts'];
const USED_OPENAPI = ['api/v1', 'apis/admitlb.io/v1alpha1', 'apis/apps/v1', 'apis/coordination.k8s.io/v1', 'apis/discovery.k8s.io/v1', 'apis/events.k8s.io/v1', 'apis/admissionregistration.k8s.io/v1', 'apis/apiextensions.k8s.io/v1'];

// Discovery lists groups in registration order and verbs in handler order; clients (kubectl's
// RESTMapper, client-node) read them as sets, so they are compared sorted.
const byName = (list: any[], key: string) => [...list].sort((a, b) => String(a[key]).localeCompare(String(b[key])));
const discoveryResource = ({ storageVersionHash: _, ...x }: any) => ({ ...x, verbs: [...(x.verbs ?? [])].sort() });

/** Aggregated discovery, restricted to the groups and core resources admitlb and kubectl use. */
function aggregated(r: Answer & { body: any }): Answer {
  if (r.status !== 200) return r;
  const items = byName(
    (r.body.items ?? []).filter((g: any) => (g.metadata?.name ?? '') === '' || USED_GROUPS.includes(g.metadata.name)),
    'metadata',
  )
    .map((g: any) => ({
      name: g.metadata?.name ?? '',
      versions: g.versions.map((v: any) => ({
        version: v.version,
        freshness: v.freshness,
        resources: byName(v.resources.filter((x: any) => g.metadata?.name || USED_CORE.includes(x.resource)), 'resource').map((x: any) => ({ ...x, verbs: [...x.verbs].sort() })),
      })),
    }))
    .sort((a: any, b: any) => a.name.localeCompare(b.name));
  return { status: r.status, kind: r.body.kind, apiVersion: r.body.apiVersion, items };
}

/** What kubectl reads from one OpenAPI v3 PATCH operation (query_param_verifier_v3.go) and its schema's GVK. */
async function openapiPatch(t: Target, gv: string, path: string): Promise<Answer> {
  const root = (await raw(t, 'GET', '/openapi/v3')).body;
  const url = root.paths[gv]?.serverRelativeURL;
  if (!url) return { missing: gv };
  const r = await raw(t, 'GET', url);
  const op = r.body.paths?.[path]?.patch;
  const params = [...(r.body.paths?.[path]?.parameters ?? []), ...(op?.parameters ?? [])].map((p: any) => p.name ?? p.$ref).sort();
  return { status: r.status, gvk: op?.['x-kubernetes-group-version-kind'], action: op?.['x-kubernetes-action'], params };
}

/** A client-node call: the value, or the ApiException's code and body. */
async function clientNode(t: Target, call: (core: CoreV1Api) => Promise<unknown>): Promise<Answer> {
  const kc = new KubeConfig();
  kc.loadFromFile(t.cluster.kubeconfig);
  try {
    return { ok: await call(kc.makeApiClient(CoreV1Api)) };
  } catch (err: any) {
    let body = err.body;
    try {
      body = JSON.parse(body);
    } catch {
      // keep the text
    }
    return { code: err.code, body };
  }
}

// ---- normalisation ----------------------------------------------------------------------------------

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g;
const TIME = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)/g;
const CLUSTER_IP = /\b10\.96\.\d{1,3}\.\d{1,3}\b|\bfd00:10:96::[0-9a-f]{0,4}\b/g;
const GENERATED = /\bdiff-gen-[a-z0-9]{5}\b/g;

function normaliseText(s: string): string {
  return s
    .replace(UUID, '<uid>')
    .replace(TIME, '<time>')
    .replace(CLUSTER_IP, '<clusterIP>')
    .replace(GENERATED, 'diff-gen-<suffix>')
    .replace(/too old resource version: \d+ \(\d+\)/g, 'too old resource version: <rv> (<rv>)')
    .replace(/(\d+):3\d{4}\/(TCP|UDP|SCTP)/g, '$1:<nodePort>/$2')
    .replace(/^(NodePort|HealthCheck NodePort):(\s+)(\S+)\s+3\d{4}\/(TCP|UDP|SCTP)$/gm, '$1:$2$3 <nodePort>/$4');
}

/** kubectl's human tables align columns to the widest cell: compare cells, not padding. */
function normaliseKubectlOutput(s: string): string {
  return normaliseText(s)
    .split('\n')
    .map((line) => (/\S {2,}\S/.test(line) ? line.trim().split(/ {2,}/).map((c) => (/^(\d+(\.\d+)?[smhd])+$|^<invalid>$/.test(c) ? '<age>' : c)).join(' | ') : line.replace(/\s+$/, '')))
    .join('\n');
}

const VOLATILE_KEYS: Record<string, string> = {
  uid: '<uid>',
  resourceVersion: '<rv>',
  creationTimestamp: '<time>',
  deletionTimestamp: '<time>',
  time: '<time>',
  lastTransitionTime: '<time>',
  continue: '<continue>',
  nodePort: '<nodePort>',
  healthCheckNodePort: '<nodePort>',
  clusterIP: '<clusterIP>',
  'admitlb.io/allocation': '<jws>',
  // The double records the fields each manager sent, not structured-merge-diff's exact sets (README:
  // "Server-side apply"); the SSA steps compare them under another key.
  fieldsV1: '<fieldsV1>',
};

function normalise(v: unknown, key = '', parent?: any): unknown {
  if (key === 'fieldsV1' && v && typeof v === 'object') return VOLATILE_KEYS.fieldsV1;
  if (typeof v === 'string') {
    if (key in VOLATILE_KEYS && v !== '' && !(key === 'clusterIP' && v === 'None')) return VOLATILE_KEYS[key];
    if (key === 'stdout' || key === 'stderr') return normaliseKubectlOutput(v);
    return normaliseText(v);
  }
  if (typeof v === 'number' && (key === 'nodePort' || key === 'healthCheckNodePort')) return '<nodePort>';
  // managedFields are sorted by the second each write happened in: compare them as a set
  if (key === 'managedFields' && Array.isArray(v)) return v.map((x) => normalise(x)).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  if (Array.isArray(v)) {
    // Table cells: the age column and the Service columns with allocations
    if (key === 'cells' && parent) return v.map((c) => (typeof c === 'string' && /^(\d+[smhd])+$|^<invalid>$/.test(c) ? '<age>' : normalise(c)));
    return v.map((x) => normalise(x, key === 'clusterIPs' ? 'clusterIP' : '', v));
  }
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = normalise(x, k, v);
    return out;
  }
  return v;
}

// ---- comparison -------------------------------------------------------------------------------------

interface Difference {
  step: string;
  path: string;
  sandbox: unknown;
  real: unknown;
}

function compare(step: string, a: unknown, b: unknown, path = ''): Difference[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  const objA = a && typeof a === 'object';
  const objB = b && typeof b === 'object';
  if (objA && objB && Array.isArray(a) === Array.isArray(b)) {
    if (Array.isArray(a) && Array.isArray(b) && a.length !== b.length) {
      // lists of named things (resources, groups, items) are compared name by name, so an extra item
      // on one side does not hide a difference in the items both have
      const keyed = (l: unknown[]) => l.every((x) => itemKey(x) !== undefined);
      if (!keyed(a) || !keyed(b)) return [{ step, path: `${path}.length`, sandbox: a, real: b }];
      const byKey = (l: unknown[]) => Object.fromEntries(l.map((x) => [itemKey(x)!, x]));
      const ma = byKey(a);
      const mb = byKey(b);
      return [...new Set([...Object.keys(ma), ...Object.keys(mb)])].sort().flatMap((k) => compare(step, ma[k], mb[k], `${path}[${k}]`));
    }
    const keys = [...new Set([...Object.keys(a as object), ...Object.keys(b as object)])].sort();
    return keys.flatMap((k) => compare(step, (a as any)[k], (b as any)[k], Array.isArray(a) ? `${path}[${k}]` : `${path}.${k}`));
  }
  if (typeof a === 'string' && typeof b === 'string' && (a.includes('\n') || b.includes('\n'))) {
    // multi-line output: the lines that differ
    const la = a.split('\n');
    const lb = b.split('\n');
    const out: Difference[] = [];
    for (let i = 0; i < Math.max(la.length, lb.length); i++) if (la[i] !== lb[i]) out.push({ step, path: `${path}:${i + 1}`, sandbox: la[i], real: lb[i] });
    return out;
  }
  return [{ step, path, sandbox: a, real: b }];
}

function itemKey(x: unknown): string | undefined {
  if (!x || typeof x !== 'object') return undefined;
  const o = x as Record<string, any>;
  const k = o.name ?? o.resource ?? o.subresource ?? o.metadata?.name;
  return typeof k === 'string' ? k : undefined;
}

// ---- known differences ------------------------------------------------------------------------------

/**
 * Differences the double keeps on purpose, each with its reason (also listed in src/sandbox/README.md).
 * `step` names a step exactly; `path` matches the difference's path (a regex). An entry no run uses is
 * reported, so the list shrinks when the double improves.
 */
const ALLOWED: { step: string | RegExp; path: RegExp; reason: string; onlyMissingInSandbox?: boolean }[] = [
  {
    step: 'PATCH merge-patch that is not JSON',
    path: /^\.body\.message$/,
    reason: "Go's encoding/json error text is not reproduced; status, reason and code are the same (kubectl always sends valid JSON)",
  },
  {
    step: 'list labelSelector that does not parse',
    path: /^\.body\.message$/,
    reason: "the selector parser's error text differs; status, reason and code are the same",
  },
  {
    step: 'POST service with a duplicate field, fieldValidation=Strict',
    path: /./,
    reason: 'JSON.parse keeps the last of two equal keys, so the double cannot report `duplicate field` (kubectl refuses duplicate YAML keys itself)',
  },
  {
    step: 'list with resourceVersionMatch=Exact of a too old version',
    path: /./,
    reason: 'lists always serve the latest state; there is no MVCC history to read an old version from',
  },
  {
    step: 'kubectl get configmaps',
    path: /^\.stdout:\d+$/,
    reason: "kube-controller-manager's root-ca-cert-publisher writes kube-root-ca.crt into every namespace; the double runs no controllers",
  },
  {
    step: /^(GET \/api\/v1 |aggregated discovery)/,
    path: /resources\[[^\]]+\]$/,
    onlyMissingInSandbox: true,
    reason: 'the double serves only the kinds admitlb and its tests use (no endpoints, serviceaccounts, other apps kinds; no proxy, finalize or scale subresources)',
  },
  {
    step: 'GET /version (major only)',
    path: /^\.keys/,
    reason: 'the double answers as v1.32.4, the kubectl it is tested with; the emulation/compatibility fields came later',
  },
];

// ---- the run ----------------------------------------------------------------------------------------

const show = (v: unknown) => {
  const s = v === undefined ? '(absent)' : JSON.stringify(v);
  return s.length > 240 ? `${s.slice(0, 240)}…` : s;
};

describe('the API double answers like kube-apiserver', { concurrency: 1, timeout: 600_000 }, () => {
  let sandbox: E2eCluster | undefined;
  let real: E2eCluster | undefined;
  before(async () => {
    [sandbox, real] = await Promise.all([startCluster('diff-sandbox', { controlPlane: 'sandbox' }), startCluster('diff-real', { controlPlane: 'real' })]);
  });
  after(async () => {
    await Promise.all([sandbox?.close(), real?.close()]);
  });

  it('the same requests get the same answers, or a documented difference', async () => {
    const targets: Target[] = [
      { name: 'sandbox', cluster: sandbox!, ctx: {} },
      { name: 'real', cluster: real!, ctx: {} },
    ];
    const answers = await Promise.all(
      targets.map(async (t) => {
        const out: unknown[] = [];
        for (const step of STEPS) {
          try {
            out.push(normalise(await step.run(t)));
          } catch (err) {
            out.push({ threw: (err as Error).message });
          }
        }
        return out;
      }),
    );
    const differences: Difference[] = [];
    let identical = 0;
    STEPS.forEach((step, i) => {
      const d = compare(step.name, answers[0]![i], answers[1]![i]);
      if (d.length === 0) identical++;
      differences.push(...d);
    });
    const allowedBy = (d: Difference) =>
      ALLOWED.find((a) => (typeof a.step === 'string' ? a.step === d.step : a.step.test(d.step)) && a.path.test(d.path) && (!a.onlyMissingInSandbox || d.sandbox === undefined));
    const unexpected = differences.filter((d) => !allowedBy(d));
    const lines = [`${identical}/${STEPS.length} requests answered identically`];
    let last = '';
    for (const d of differences) {
      if (d.step !== last) lines.push(`- ${d.step}`);
      last = d.step;
      const a = allowedBy(d);
      lines.push(`    ${a ? '(known) ' : ''}${d.path || '(answer)'}: sandbox ${show(d.sandbox)} | real ${show(d.real)}`);
    }
    const unused = ALLOWED.filter((a) => !differences.some((d) => allowedBy(d) === a));
    for (const a of unused) lines.push(`# allow-list entry no longer needed: ${a.step} ${a.path} (${a.reason})`);
    console.log(lines.join('\n'));
    if (process.env.ADMITLB_DIFF_DUMP) {
      const { writeFileSync } = await import('node:fs');
      writeFileSync(process.env.ADMITLB_DIFF_DUMP, JSON.stringify(STEPS.map((s, i) => ({ step: s.name, sandbox: answers[0]![i], real: answers[1]![i] })), null, 1));
    }
    assert.equal(unexpected.length, 0, `${unexpected.length} undocumented difference(s):\n${unexpected.map((d) => `${d.step} ${d.path}: sandbox ${show(d.sandbox)} | real ${show(d.real)}`).join('\n')}`);
  });
});

