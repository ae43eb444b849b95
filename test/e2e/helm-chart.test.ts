// charts/admitlb installed with the real Helm (built from helm.sh/helm/v4), and `admitlb certs
// --in-cluster` (what the chart's hook Job runs) as a process with a kubeconfig: the test control
// planes have no kubelets, so Jobs never run there, and `helm install --no-hooks` leaves the hooks to
// the test. On the real target: helm install onto kube-apiserver, the objects, the caBundle,
// idempotent reruns, a helm upgrade keeping the caBundle, and the Job's RBAC being enough. On the API
// double, which serves neither ServiceAccounts, RBAC, PodDisruptionBudgets nor DaemonSets (nor
// client-go's watch-list, which Helm 4 uses to wait for CRDs), helm install cannot run: there the
// chart's webhook configurations and CRDs, rendered by `helm template`, are applied with kubectl and
// the in-cluster mode is checked against them.
import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments, stringify } from 'yaml';
import { CHART_DIR, CHART_NAMESPACE } from '../../scripts/chart-source.ts';
import { generateWebhookCertificates } from '../../src/certs/generate.ts';
import { RENEW_BEFORE_DAYS, type InClusterCertsResult } from '../../src/certs/in-cluster.ts';
import { objectBody, apiRequest } from '../../src/sandbox/api-client.ts';
import { startApiServer, type ApiServer } from '../../src/sandbox/apiserver.ts';
import { PROJECT_ROOT } from '../../src/cmd/sandbox.ts';
import { serviceAccountKubeconfig } from '../../src/sandbox/kustomize-install.ts';
import { startRealControlPlane } from '../../src/sandbox/real-control-plane.ts';
import { TOOLS_BUILD_HINT, toolBinary } from '../../src/sandbox/tool-binaries.ts';
import { runKubectl, tempDir, type KubectlResult } from '../sandbox/helpers.ts';
import { e2eTarget } from './cluster-helpers.ts';

const helm = toolBinary('helm');
const inCI = process.env.CI === 'true';
const skip = !helm && !inCI ? `helm is not built: ${TOOLS_BUILD_HINT}` : false;
if (skip) console.log(`# skipping the helm install tests: ${skip}`);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe(`helm install of charts/admitlb and admitlb certs --in-cluster (${e2eTarget()})`, { skip, concurrency: false, timeout: 300_000 }, () => {
  let api: ApiServer;
  let dataDir: string;
  let cacheDir: string;
  let kubectl: (args: string[], input?: string) => Promise<KubectlResult>;
  const helmHome = tempDir('helm-home');
  const runHelm = (args: string[]) =>
    run(helm!, [...args, '--kubeconfig', api.kubeconfigPath], { HELM_CACHE_HOME: join(helmHome, 'cache'), HELM_CONFIG_HOME: join(helmHome, 'config'), HELM_DATA_HOME: join(helmHome, 'data') });
  const certsInCluster = async (kubeconfig: string, extra: string[] = []): Promise<InClusterCertsResult> => {
    const r = await run(process.execPath, [join(PROJECT_ROOT, 'bin/admitlb.js'), 'certs', '--in-cluster', '--kubeconfig', kubeconfig, ...extra]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as InClusterCertsResult;
  };
  const get = async (path: string) => {
    const r = await apiRequest(api, 'GET', path);
    assert.equal(r.status, 200, `GET ${path}: ${JSON.stringify(r.body)}`);
    return objectBody(r);
  };
  const secretData = async (name: string) => {
    const data = (await get(`/api/v1/namespaces/${CHART_NAMESPACE}/secrets/${name}`)).data as Record<string, string>;
    return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
  };
  const crdsEstablished = async () => {
    const crds = ['ippools', 'ipclaims', 'l2advertisements', 'bgppeers', 'bgpadvertisements'].map((r) => `crd/${r}.admitlb.io`);
    const r = await kubectl(['wait', '--for=condition=Established', '--timeout=60s', ...crds]);
    assert.equal(r.code, 0, r.stderr);
  };
  const caBundles = async () => {
    const out: string[] = [];
    for (const kind of ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations']) {
      for (const w of (await get(`/apis/admissionregistration.k8s.io/v1/${kind}/admitlb`)).webhooks) out.push(w.clientConfig.caBundle ?? '');
    }
    return out;
  };

  before(async () => {
    dataDir = tempDir('e2e-helm');
    cacheDir = tempDir('e2e-helm-kubecache');
    api = e2eTarget() === 'real' ? await startRealControlPlane({ dataDir }) : await startApiServer({ dataDir, host: '127.0.0.1', port: 0 });
    kubectl = (args, input) => runKubectl(api.kubeconfigPath, cacheDir, args, input);
    // What the README has the admin do before helm install: the namespace with its Pod Security level.
    const ns = await kubectl(['create', 'namespace', CHART_NAMESPACE]);
    assert.equal(ns.code, 0, ns.stderr);
  });
  after(async () => {
    await api?.close();
    for (const d of [dataDir, cacheDir, helmHome]) if (d) rmSync(d, { recursive: true, force: true });
  });

  it('before the install, certs --in-cluster creates the Secrets and ConfigMaps and reports the configurations as missing', async () => {
    const r = await certsInCluster(api.kubeconfigPath);
    assert.deepEqual(
      [...r.written].sort(),
      [
        'ConfigMap/admitlb-signing-public-keys',
        'ConfigMap/admitlb-webhook-client-ca',
        'Secret/admitlb-apiserver-client',
        'Secret/admitlb-signing-keys',
        'Secret/admitlb-speaker-heartbeat',
        'Secret/admitlb-webhook-ca',
        'Secret/admitlb-webhook-tls',
      ],
    );
    assert.deepEqual(r.missingConfigurations, ['MutatingWebhookConfiguration/admitlb', 'ValidatingWebhookConfiguration/admitlb']);
    assert.deepEqual(r.patchedWebhooks, []);
  });

  if (e2eTarget() === 'real') {
    it('helm install --no-hooks creates the release: CRDs established, workloads, webhook configurations', async () => {
      const r = await runHelm(['install', 'admitlb', CHART_DIR, '--namespace', CHART_NAMESPACE, '--no-hooks']);
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      await crdsEstablished();
      const deployment = await get(`/apis/apps/v1/namespaces/${CHART_NAMESPACE}/deployments/admitlb-webhook`);
      assert.equal(deployment.spec.replicas, 2);
      assert.equal(deployment.metadata.labels['app.kubernetes.io/managed-by'], 'Helm');
      await get(`/apis/apps/v1/namespaces/${CHART_NAMESPACE}/daemonsets/admitlb-speaker`);
      await get('/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies/admitlb-ipclaim-writers');
      assert.ok((await caBundles()).every((b) => b === ''), 'no caBundle before the post-install run');
      const status = await runHelm(['status', 'admitlb', '--namespace', CHART_NAMESPACE]);
      assert.match(status.stdout, /STATUS: deployed/);
    });
  } else {
    it("the chart's CRDs and webhook configurations (helm template) applied with kubectl", async () => {
      const r = await runHelm(['template', 'admitlb', CHART_DIR, '--namespace', CHART_NAMESPACE, '--include-crds']);
      assert.equal(r.code, 0, r.stderr);
      const served = new Set(['CustomResourceDefinition', 'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']);
      const objects = parseAllDocuments(r.stdout)
        .map((d) => d.toJS() as { kind: string } | null)
        .filter((o): o is { kind: string } => o !== null && served.has(o.kind));
      // Every CRD of the base and the two webhook configurations.
      const crds = parseAllDocuments(readFileSync('webhook-manifests/crds.yaml', 'utf8')).filter((d) => (d.toJS() as { kind?: string } | null)?.kind === 'CustomResourceDefinition').length;
      assert.equal(objects.length, crds + 2);
      const applied = await kubectl(['apply', '-f', '-'], objects.map((o) => stringify(o)).join('---\n'));
      assert.equal(applied.code, 0, applied.stderr);
      await crdsEstablished();
      assert.ok((await caBundles()).every((b) => b === ''));
    });
  }

  it('after the install, certs --in-cluster sets the CA as the caBundle of every webhook and rewrites nothing', async () => {
    const r = await certsInCluster(api.kubeconfigPath);
    assert.deepEqual(r.written, []);
    assert.deepEqual(r.missingConfigurations, []);
    const bundles = await caBundles();
    assert.equal(r.patchedWebhooks.length, bundles.length);
    const ca = await secretData('admitlb-webhook-ca');
    for (const b of bundles) assert.equal(Buffer.from(b, 'base64').toString('utf8'), ca['tls.crt']);
    const tls = await secretData('admitlb-webhook-tls');
    assert.equal(tls['ca.crt'], ca['tls.crt']);
    const serving = new X509Certificate(tls['tls.crt']!);
    assert.ok(serving.verify(new X509Certificate(ca['tls.crt']!).publicKey), 'the serving certificate is signed by the CA');
    assert.ok(serving.checkHost('admitlb-webhook.admitlb-system.svc'));
    // The speakers' ConfigMap: the signing keys' public halves, the same active kid.
    const signing = await secretData('admitlb-signing-keys');
    const publicKeys = (await get(`/api/v1/namespaces/${CHART_NAMESPACE}/configmaps/admitlb-signing-public-keys`)).data as Record<string, string>;
    assert.deepEqual(Object.keys(publicKeys).sort(), Object.keys(signing).sort());
    assert.equal(publicKeys.active, signing.active);
    for (const [k, v] of Object.entries(publicKeys)) if (k !== 'active') assert.equal(JSON.parse(v).d, undefined, k);
    const clientCa = (await get(`/api/v1/namespaces/${CHART_NAMESPACE}/configmaps/admitlb-webhook-client-ca`)).data as Record<string, string>;
    assert.equal(clientCa['ca.crt'], (await secretData('admitlb-apiserver-client'))['ca.crt']);
    assert.match((await secretData('admitlb-apiserver-client'))['admission-configuration.yaml']!, /kubeConfigFile: \/etc\/kubernetes\/admitlb\/webhook-client\.kubeconfig/);
    const again = await certsInCluster(api.kubeconfigPath);
    assert.deepEqual([again.written, again.patchedWebhooks], [[], []], 'a rerun changes nothing');
  });

  it('reissues a serving certificate that another CA signed or that ends within 30 days, keeping the CA and caBundle', async () => {
    const bundles = await caBundles();
    const ca = await secretData('admitlb-webhook-ca');
    const replaceServing = async (certs: { certPem: string; keyPem: string; caCertPem: string }) => {
      const current = await get(`/api/v1/namespaces/${CHART_NAMESPACE}/secrets/admitlb-webhook-tls`);
      const data = { 'tls.crt': certs.certPem, 'tls.key': certs.keyPem, 'ca.crt': certs.caCertPem };
      current.data = Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
      const r = await apiRequest(api, 'PUT', `/api/v1/namespaces/${CHART_NAMESPACE}/secrets/admitlb-webhook-tls`, current);
      assert.equal(r.status, 200, JSON.stringify(r.body));
    };
    const foreign = await generateWebhookCertificates();
    const ending = await generateWebhookCertificates({ days: RENEW_BEFORE_DAYS - 1, ca: { certPem: ca['tls.crt']!, keyPem: ca['tls.key']! } });
    for (const [what, certs] of [['signed by another CA', foreign], ['ending within 30 days', ending]] as const) {
      await replaceServing(certs);
      const r = await certsInCluster(api.kubeconfigPath);
      assert.deepEqual(r.written, ['Secret/admitlb-webhook-tls'], what);
      const tls = await secretData('admitlb-webhook-tls');
      assert.notEqual(tls['tls.crt'], certs.certPem, what);
      const serving = new X509Certificate(tls['tls.crt']!);
      assert.ok(serving.verify(new X509Certificate(ca['tls.crt']!).publicKey), what);
      assert.ok(Date.parse(serving.validTo) - Date.now() > 300 * 86_400_000, what);
      assert.deepEqual(await caBundles(), bundles, what);
    }
  });

  // helm upgrade needs the release (real target only); the double authorizes every request, so only
  // kube-apiserver can show the Job's RBAC is enough.
  if (e2eTarget() === 'real') {
    it('helm upgrade keeps the caBundle the Job set and applies new values', async () => {
      const before = await caBundles();
      const r = await runHelm(['upgrade', 'admitlb', CHART_DIR, '--namespace', CHART_NAMESPACE, '--no-hooks', '--set', 'replicas=3,failurePolicy=Ignore']);
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      assert.equal((await get(`/apis/apps/v1/namespaces/${CHART_NAMESPACE}/deployments/admitlb-webhook`)).spec.replicas, 3);
      const mutating = await get('/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/admitlb');
      assert.equal(mutating.webhooks[0].failurePolicy, 'Ignore');
      assert.deepEqual(await caBundles(), before);
    });

    it("as the Job's ServiceAccount (the chart's hook RBAC): renews a missing serving certificate under the same CA", async () => {
      const rendered = await runHelm(['template', 'admitlb', CHART_DIR, '--namespace', CHART_NAMESPACE, '--show-only', 'templates/certs-job.yaml']);
      assert.equal(rendered.code, 0, rendered.stderr);
      const rbac = parseAllDocuments(rendered.stdout)
        .map((d) => d.toJS() as { kind: string } | null)
        .filter((o): o is { kind: string } => o !== null && o.kind !== 'Job');
      assert.deepEqual(rbac.map((o) => o.kind).sort(), ['ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'ServiceAccount']);
      const applied = await kubectl(['apply', '-f', '-'], rbac.map((o) => stringify(o)).join('---\n'));
      assert.equal(applied.code, 0, applied.stderr);
      const asJob = await serviceAccountKubeconfig(api, dataDir, { namespace: CHART_NAMESPACE, name: 'admitlb-certs' });
      const bundles = await caBundles();
      const oldServing = (await secretData('admitlb-webhook-tls'))['tls.crt'];
      const del = await kubectl(['-n', CHART_NAMESPACE, 'delete', 'secret', 'admitlb-webhook-tls']);
      assert.equal(del.code, 0, del.stderr);
      const r = await certsInCluster(asJob);
      assert.deepEqual(r.written, ['Secret/admitlb-webhook-tls']);
      assert.notEqual((await secretData('admitlb-webhook-tls'))['tls.crt'], oldServing);
      assert.deepEqual(await caBundles(), bundles, 'same CA, so the caBundle stays');
      // And nothing beyond its own objects: another Secret of the namespace is out of its reach.
      const other = await run('kubectl', ['--kubeconfig', asJob, '-n', CHART_NAMESPACE, 'get', 'secret', 'sh.helm.release.v1.admitlb.v1', '-o', 'name']);
      assert.notEqual(other.code, 0);
      assert.match(other.stderr, /forbidden/i);
    });
  }
});
