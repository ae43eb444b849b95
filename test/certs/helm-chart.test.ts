// charts/admitlb: generated from the kustomize base and not stale, `helm lint` clean, `helm template`
// with default values renders the same objects as `kubectl kustomize webhook-manifests/` (after
// `admitlb certs`, minus what differs on purpose: see normalise()), and each value shows in the
// rendered objects. Helm is the real one, built from helm.sh/helm/v4 (test/tools/helm/).
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { CHART_DIR, CHART_NAMESPACE, chartFiles, generatedFilesOnDisk } from '../../scripts/chart-source.ts';
import { runCertsCommand } from '../../src/certs/command.ts';
import { TOOLS_BUILD_HINT, toolBinary } from '../../src/sandbox/tool-binaries.ts';
import { find, kustomize, tempInstall, type K8sObject } from './helpers.ts';

const helm = toolBinary('helm');
const inCI = process.env.CI === 'true';
const skip = !helm && !inCI ? `helm is not built: ${TOOLS_BUILD_HINT}` : false;
if (skip) console.log(`# skipping the helm chart tests: ${skip}`);

const helmHome = mkdtempSync(join(tmpdir(), 'admitlb-helm-home-'));
after(() => rmSync(helmHome, { recursive: true, force: true }));

function runHelm(args: string[]): { code: number; stdout: string; stderr: string } {
  if (!helm) throw new Error(`helm is not built: ${TOOLS_BUILD_HINT}`);
  // HELM_* homes in a temp folder: no repository config or cache of the developer's is read or written.
  const r = spawnSync(helm, args, { encoding: 'utf8', env: { ...process.env, HELM_CACHE_HOME: join(helmHome, 'cache'), HELM_CONFIG_HOME: join(helmHome, 'config'), HELM_DATA_HOME: join(helmHome, 'data') } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** `helm template` into objects (CRDs included), failing the test on a non-zero exit. */
function helmTemplate(setArgs: string[] = [], namespace = CHART_NAMESPACE): K8sObject[] {
  const r = runHelm(['template', 'admitlb', CHART_DIR, '--namespace', namespace, '--include-crds', ...setArgs]);
  assert.equal(r.code, 0, r.stderr);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

const isHook = (o: K8sObject) => o.metadata.annotations?.['helm.sh/hook'] !== undefined;
/** Names kustomize gives a hash suffix (configMapGenerator); the chart's Job writes them under the plain name. */
const HASHED = ['admitlb-signing-public-keys', 'admitlb-webhook-client-ca'];
const unhash = (name: string) => HASHED.find((n) => name.startsWith(`${n}-`) && /^[a-z0-9]{10}$/.test(name.slice(n.length + 1))) ?? name;
const PER_CLUSTER = new Set(['Secret/admitlb-webhook-tls', 'Secret/admitlb-signing-keys', 'Secret/admitlb-speaker-heartbeat', ...HASHED.map((n) => `ConfigMap/${n}`)]);

/**
 * What differs on purpose between `kubectl kustomize` (after `admitlb certs`) and `helm template`:
 * the per-cluster Secrets and ConfigMaps (the chart's hook Job makes them in the cluster), the caBundle
 * (set by that Job), kustomize's hash suffix on two ConfigMap names (fixed names in the chart), the
 * Namespace (Helm's release namespace), Helm's own labels and the hook objects.
 */
function normalise(objects: K8sObject[]): Map<string, K8sObject> {
  const out = new Map<string, K8sObject>();
  for (const original of objects) {
    if (isHook(original) || original.kind === 'Namespace') continue;
    const o = structuredClone(original);
    o.metadata.name = unhash(o.metadata.name);
    if (PER_CLUSTER.has(`${o.kind}/${o.metadata.name}`)) continue;
    const labels = o.metadata.labels ?? {};
    for (const k of ['helm.sh/chart', 'app.kubernetes.io/managed-by', 'app.kubernetes.io/instance']) delete labels[k];
    for (const w of (o as { webhooks?: { clientConfig: { caBundle?: string } }[] }).webhooks ?? []) delete w.clientConfig.caBundle;
    const pod = (o as { spec?: { template?: { spec?: { volumes?: { configMap?: { name: string } }[] } } } }).spec?.template?.spec;
    for (const v of pod?.volumes ?? []) if (v.configMap) v.configMap.name = unhash(v.configMap.name);
    out.set(`${o.kind}/${o.metadata.namespace ?? ''}/${o.metadata.name}`, o);
  }
  return out;
}

const podSpec = (o: K8sObject) => (o.spec as { template: { spec: any } }).template.spec;
const container = (o: K8sObject, name: string) => podSpec(o).containers.find((c: { name: string }) => c.name === name);

describe('charts/admitlb is generated from webhook-manifests/', () => {
  it('the committed generated files are what `npm run gen:chart` writes now', () => {
    const expected = chartFiles();
    assert.deepEqual(generatedFilesOnDisk(), expected.map((f) => f.path).sort(), 'files written by the generator (rerun npm run gen:chart)');
    for (const f of expected) assert.equal(readFileSync(join(CHART_DIR, f.path), 'utf8'), f.content, `${f.path} is stale: run npm run gen:chart`);
  });

  it("takes the image from the kustomization's images: entry and adds monitoring/ behind its switch", () => {
    const inst = tempInstall();
    try {
      const k = join(inst.manifestsDir, 'kustomization.yaml');
      const kustomization = parse(readFileSync(k, 'utf8')) as { images?: object[] };
      kustomization.images = [{ name: 'ghcr.io/admitlb/admitlb', newName: 'registry.example/admitlb', newTag: '9.9.9' }];
      writeFileSync(k, stringify(kustomization));
      const files = new Map(chartFiles(inst.manifestsDir).map((f) => [f.path, f.content]));
      const values = parse(files.get('values.yaml')!) as { image: { repository: string; tag: string; digest: string } };
      assert.deepEqual(values.image, { repository: 'registry.example/admitlb', tag: '9.9.9', digest: '', pullPolicy: 'IfNotPresent' });
      const monitoring = [...files.keys()].filter((f) => f.startsWith('templates/monitoring/')).sort();
      assert.deepEqual(monitoring, [
        'templates/monitoring/configmap-admitlb-grafana-dashboard.yaml',
        'templates/monitoring/podmonitor-admitlb-speaker.yaml',
        'templates/monitoring/prometheusrule-admitlb.yaml',
        'templates/monitoring/servicemonitor-admitlb-webhook.yaml',
      ]);
      for (const f of monitoring) {
        assert.match(files.get(f)!, /^\{\{- if \.Values\.monitoring\.enabled \}\}\n/m, f);
        assert.match(files.get(f)!, /namespace: admitlb-system/, f);
      }
      // The alerts' own templates reach Prometheus as written, not expanded by Helm.
      assert.match(files.get('templates/monitoring/prometheusrule-admitlb.yaml')!, /\{\{ "\{\{" \}\} \$labels\.pool \{\{ "\}\}" \}\}/);
    } finally {
      inst.cleanup();
    }
  });

  it('Chart.yaml carries the package version', () => {
    const version = (JSON.parse(readFileSync(join(CHART_DIR, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
    assert.match(readFileSync(join(CHART_DIR, 'Chart.yaml'), 'utf8'), new RegExp(`^version: ${version.replaceAll('.', '\\.')}$`, 'm'));
  });
});

describe('helm lint and helm template of charts/admitlb', { skip }, () => {
  const inst = tempInstall();
  let kustomized: K8sObject[] = [];
  before(async () => {
    await runCertsCommand({ outDir: inst.certsDir, manifestsDir: inst.manifestsDir });
    kustomized = kustomize(inst.manifestsDir);
  });
  after(() => inst.cleanup());

  it('helm lint --strict passes, with default values and with every switch on', () => {
    for (const sets of [[], ['--set', 'certManager.enabled=true,monitoring.enabled=true,apiServerAuth=none,failurePolicy=Ignore', '--set', 'defaultPool.addresses={203.0.113.0/24}']]) {
      const r = runHelm(['lint', CHART_DIR, '--strict', '--namespace', CHART_NAMESPACE, ...sets]);
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    }
  });

  it('with default values, helm template renders the objects kubectl kustomize renders (see normalise)', () => {
    const fromKustomize = normalise(kustomized);
    const fromHelm = normalise(helmTemplate());
    assert.deepEqual([...fromHelm.keys()].sort(), [...fromKustomize.keys()].sort());
    for (const [key, o] of fromKustomize) assert.deepEqual(fromHelm.get(key), o, key);
    // normalise() must not hide what matters: the objects compared include every workload.
    for (const k of ['Deployment/admitlb-system/admitlb-webhook', 'DaemonSet/admitlb-system/admitlb-speaker', 'MutatingWebhookConfiguration//admitlb', 'CustomResourceDefinition//ippools.admitlb.io']) {
      assert.ok(fromHelm.has(k), k);
    }
  });

  it('the hook Job runs `admitlb certs --in-cluster` with the image and RBAC limited to its own objects', () => {
    const objects = helmTemplate();
    const job = find(objects, 'Job', 'admitlb-certs');
    assert.equal(job.metadata.annotations?.['helm.sh/hook'], 'pre-install,pre-upgrade,post-install,post-upgrade');
    const c = container(job, 'certs');
    assert.equal(c.image, container(find(objects, 'Deployment', 'admitlb-webhook'), 'webhook').image);
    assert.deepEqual(c.args, ['certs', '--in-cluster', '--namespace=admitlb-system', '--api-server-auth=client-certificate']);
    const clusterRole = find(objects, 'ClusterRole', 'admitlb-certs') as K8sObject & { rules: unknown[] };
    assert.deepEqual(clusterRole.rules, [
      { apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations'], resourceNames: ['admitlb'], verbs: ['get', 'update'] },
    ]);
    for (const o of objects.filter(isHook)) assert.match(o.metadata.annotations?.['helm.sh/hook-delete-policy'] ?? '', /hook-succeeded/, `${o.kind}/${o.metadata.name}`);
  });

  it('values: replicas, failurePolicy, externalIPMode, the speaker nodeSelector and the image show in the objects', () => {
    const digest = `sha256:${'ab'.repeat(32)}`;
    const objects = helmTemplate([
      '--set', 'replicas=3,failurePolicy=Ignore,externalIPMode=warn',
      '--set', `image.repository=registry.example/admitlb,image.digest=${digest}`,
      // Helm merges maps with the defaults: null removes the default's key.
      '--set-json', 'speaker.nodeSelector={"kubernetes.io/os":null,"node-role.example/edge":"true"}',
    ]);
    const d = find(objects, 'Deployment', 'admitlb-webhook');
    assert.equal((d.spec as { replicas: number }).replicas, 3);
    const webhook = container(d, 'webhook');
    assert.equal(webhook.image, `registry.example/admitlb@${digest}`);
    assert.ok(webhook.args.includes('--external-ip-mode=warn'), webhook.args.join(' '));
    const speaker = find(objects, 'DaemonSet', 'admitlb-speaker');
    assert.equal(container(speaker, 'speaker').image, `registry.example/admitlb@${digest}`);
    assert.deepEqual(podSpec(speaker).nodeSelector, { 'node-role.example/edge': 'true' });
    const merged = find(helmTemplate(['--set-json', 'speaker.nodeSelector={"node-role.example/edge":"true"}']), 'DaemonSet', 'admitlb-speaker');
    assert.deepEqual(podSpec(merged).nodeSelector, { 'kubernetes.io/os': 'linux', 'node-role.example/edge': 'true' });
    assert.equal(container(find(objects, 'Job', 'admitlb-certs'), 'certs').image, `registry.example/admitlb@${digest}`);
    // Every container and init container of every workload runs the one image.
    const workloads = objects.filter((o) => (o as { spec?: { template?: unknown } }).spec?.template !== undefined);
    assert.ok(workloads.length >= 3, `workloads: ${workloads.map((o) => o.kind).join(', ')}`);
    for (const w of workloads) {
      const spec = (w as unknown as { spec: { template: { spec: { containers?: { image: string }[]; initContainers?: { image: string }[] } } } }).spec.template.spec;
      for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) assert.equal(c.image, `registry.example/admitlb@${digest}`, `${w.kind}/${w.metadata.name}`);
    }
    const webhooks = (find(objects, 'MutatingWebhookConfiguration', 'admitlb') as K8sObject & { webhooks: { name: string; failurePolicy: string }[] }).webhooks;
    assert.deepEqual(webhooks.map((w) => [w.name, w.failurePolicy]), [['services.admitlb.io', 'Ignore']]);
    const validating = (find(objects, 'ValidatingWebhookConfiguration', 'admitlb') as K8sObject & { webhooks: { failurePolicy: string }[] }).webhooks;
    assert.ok(validating.every((w) => w.failurePolicy === 'Fail'), 'the validating webhooks keep Fail');
  });

  it('failurePolicy Ignore gives the same Service webhook as the failure-policy-ignore component', () => {
    const withComponent = tempInstall();
    try {
      const k = join(withComponent.manifestsDir, 'kustomization.yaml');
      const text = readFileSync(k, 'utf8').replace(/components:\n {2}- generated\n?/, 'components:\n  - failure-policy-ignore\n');
      assert.notEqual(text, readFileSync(k, 'utf8'));
      writeFileSync(k, text);
      const fromKustomize = find(kustomize(withComponent.manifestsDir), 'MutatingWebhookConfiguration', 'admitlb') as K8sObject & { webhooks: unknown[] };
      const fromHelm = find(helmTemplate(['--set', 'failurePolicy=Ignore']), 'MutatingWebhookConfiguration', 'admitlb') as K8sObject & { webhooks: unknown[] };
      assert.deepEqual(fromHelm.webhooks, fromKustomize.webhooks);
    } finally {
      withComponent.cleanup();
    }
  });

  it('apiServerAuth none drops the client CA; the default requires it', () => {
    const args = (objects: K8sObject[]) => container(find(objects, 'Deployment', 'admitlb-webhook'), 'webhook').args as string[];
    assert.ok(args(helmTemplate()).includes('--client-ca-file=/var/run/admitlb/client-ca/ca.crt'));
    const none = helmTemplate(['--set', 'apiServerAuth=none']);
    assert.ok(!args(none).some((a) => a.startsWith('--client-ca-file')));
    assert.ok(!podSpec(find(none, 'Deployment', 'admitlb-webhook')).volumes.some((v: { name: string }) => v.name === 'client-ca'));
    assert.ok(container(find(none, 'Job', 'admitlb-certs'), 'certs').args.includes('--api-server-auth=none'));
  });

  it('defaultPool renders an IPPool only when it has addresses', () => {
    assert.equal(helmTemplate().filter((o) => o.kind === 'IPPool').length, 0);
    const pool = find(helmTemplate(['--set', 'defaultPool.name=lan,defaultPool.autoAssign=false', '--set', 'defaultPool.addresses={203.0.113.0/24,2001:db8:100::/64}']), 'IPPool', 'lan');
    assert.deepEqual(pool.spec, { addresses: ['203.0.113.0/24', '2001:db8:100::/64'], autoAssign: false });
  });

  it('certManager.enabled renders the cert-manager component: Issuers, Certificates, inject-ca-from; no caBundle RBAC for the Job', () => {
    const objects = helmTemplate(['--set', 'certManager.enabled=true']);
    find(objects, 'Certificate', 'admitlb-webhook-tls');
    find(objects, 'Issuer', 'admitlb-ca');
    for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
      assert.equal(find(objects, kind, 'admitlb').metadata.annotations?.['cert-manager.io/inject-ca-from'], 'admitlb-system/admitlb-webhook-tls');
    }
    assert.ok(container(find(objects, 'Job', 'admitlb-certs'), 'certs').args.includes('--cert-manager'));
    assert.equal(objects.filter((o) => o.kind === 'ClusterRole' && o.metadata.name === 'admitlb-certs').length, 0);
  });

  it('refuses another namespace and values outside the schema', () => {
    const other = runHelm(['template', 'admitlb', CHART_DIR, '--namespace', 'default']);
    assert.notEqual(other.code, 0);
    assert.match(other.stderr, /admitlb-system only/);
    for (const bad of ['failurePolicy=Sometimes', 'externalIPMode=loud', 'replicas=0']) {
      const r = runHelm(['template', 'admitlb', CHART_DIR, '--namespace', CHART_NAMESPACE, '--set', bad]);
      assert.notEqual(r.code, 0, bad);
    }
  });
});
