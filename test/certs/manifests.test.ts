// Renders webhook-manifests/ (a temp copy, after `admitlb certs`) with the real `kubectl kustomize` and
// checks the contract: Deployment hardening, probes, PDB, webhook configurations and least-privilege RBAC.
import { strict as assert } from 'node:assert';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { runCertsCommand } from '../../src/certs/command.ts';
import { REPO_MANIFESTS, find, kustomize, tempInstall, type K8sObject } from './helpers.ts';

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
}
interface Probe {
  httpGet: { scheme: string; path: string; port: string | number };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args: string[];
  env: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports: { name: string; containerPort: number }[];
  livenessProbe: Probe;
  readinessProbe: Probe;
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext: Record<string, unknown> & { capabilities?: { drop?: string[]; add?: string[] } };
  volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  serviceAccountName: string;
  terminationGracePeriodSeconds?: number;
  securityContext: Record<string, unknown> & { seccompProfile?: { type: string } };
  containers: Container[];
  volumes: { name: string; secret?: { secretName: string } }[];
  topologySpreadConstraints?: { topologyKey: string; labelSelector: { matchLabels: Record<string, string> } }[];
  affinity?: { podAntiAffinity?: { preferredDuringSchedulingIgnoredDuringExecution?: { podAffinityTerm: { topologyKey: string } }[] } };
}
interface Webhook {
  name: string;
  admissionReviewVersions: string[];
  clientConfig: { caBundle?: string; service: { name: string; namespace: string; path: string; port?: number } };
  rules: { operations: string[]; apiGroups: string[]; apiVersions: string[]; resources: string[]; scope: string }[];
  sideEffects: string;
  reinvocationPolicy?: string;
  timeoutSeconds: number;
  failurePolicy: string;
  matchPolicy?: string;
  namespaceSelector?: { matchExpressions?: { key: string; operator: string; values: string[] }[] };
  matchConditions?: { name: string; expression: string }[];
}

describe('webhook-manifests rendered by kubectl kustomize', () => {
  const inst = tempInstall();
  let objects: K8sObject[] = [];
  before(async () => {
    await runCertsCommand({ outDir: inst.certsDir, manifestsDir: inst.manifestsDir });
    objects = kustomize(inst.manifestsDir);
  });
  after(() => inst.cleanup());

  const pod = () => ((find(objects, 'Deployment', 'admitlb-webhook').spec as { template: { spec: PodSpec } }).template.spec);
  const container = () => {
    const c = pod().containers.find((c) => c.name === 'webhook');
    assert.ok(c);
    return c;
  };

  it('references crds.yaml and every manifest from the kustomization', () => {
    const k = parse(readFileSync(join(REPO_MANIFESTS, 'kustomization.yaml'), 'utf8')) as { namespace: string; resources: string[]; components: string[] };
    assert.equal(k.namespace, 'admitlb-system');
    for (const f of ['namespace.yaml', 'crds.yaml', 'rbac.yaml', 'webhook-deployment.yaml', 'pdb.yaml', 'webhook-service.yaml', 'webhook-configurations.yaml']) {
      assert.ok(k.resources.includes(f), f);
    }
    assert.deepEqual(k.components, ['generated']);
  });

  it('labels everything and puts every namespaced object in admitlb-system', () => {
    const clusterScoped = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration', 'CustomResourceDefinition']);
    for (const o of objects) {
      assert.equal(o.metadata.labels?.['app.kubernetes.io/name'], 'admitlb', `${o.kind}/${o.metadata.name}`);
      assert.equal(o.metadata.labels?.['app.kubernetes.io/part-of'], 'admitlb', `${o.kind}/${o.metadata.name}`);
      if (!clusterScoped.has(o.kind)) assert.equal(o.metadata.namespace, 'admitlb-system', `${o.kind}/${o.metadata.name}`);
    }
    find(objects, 'Namespace', 'admitlb-system');
    find(objects, 'ServiceAccount', 'admitlb');
  });

  it('Deployment: 2 replicas, the fixed command line, env, port and volumes', () => {
    const d = find(objects, 'Deployment', 'admitlb-webhook');
    assert.equal((d.spec as { replicas: number }).replicas, 2);
    const c = container();
    assert.equal(c.image, 'ghcr.io/admitlb/admitlb:0.1.0');
    assert.deepEqual([...(c.command ?? []), ...c.args], [
      'admitlb',
      'webhook',
      '--tls-cert-file=/var/run/admitlb/tls/tls.crt',
      '--tls-key-file=/var/run/admitlb/tls/tls.key',
      '--signing-keys-dir=/var/run/admitlb/signing',
    ]);
    assert.deepEqual(c.ports.map((p) => [p.name, p.containerPort]), [['https', 9443]]);
    const env = Object.fromEntries(c.env.map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]));
    assert.equal(env.POD_NAME, 'metadata.name');
    assert.equal(env.POD_NAMESPACE, 'metadata.namespace');
    assert.equal(pod().serviceAccountName, 'admitlb');
    const volumeSecret = (mountPath: string) => {
      const m = c.volumeMounts.find((v) => v.mountPath === mountPath);
      assert.ok(m?.readOnly, `${mountPath} mounted read-only`);
      return pod().volumes.find((v) => v.name === m.name)?.secret?.secretName;
    };
    assert.equal(volumeSecret('/var/run/admitlb/tls'), 'admitlb-webhook-tls');
    assert.equal(volumeSecret('/var/run/admitlb/signing'), 'admitlb-signing-keys');
    assert.ok(c.resources.requests?.cpu && c.resources.requests.memory && c.resources.limits?.memory);
  });

  it('Deployment: restricted security context', () => {
    const p = pod();
    assert.equal(p.securityContext.runAsNonRoot, true);
    assert.equal(p.securityContext.runAsUser, 65532);
    assert.equal(p.securityContext.seccompProfile?.type, 'RuntimeDefault');
    const sc = container().securityContext;
    assert.equal(sc.readOnlyRootFilesystem, true);
    assert.equal(sc.allowPrivilegeEscalation, false);
    assert.equal(sc.runAsNonRoot, true);
    assert.equal(sc.runAsUser, 65532);
    assert.deepEqual(sc.capabilities?.drop, ['ALL']);
    assert.equal(sc.capabilities?.add, undefined);
    assert.notEqual(sc.privileged, true);
  });

  it('Deployment: HTTPS probes on the https port, spread across nodes, graceful termination', () => {
    const c = container();
    assert.deepEqual(c.livenessProbe.httpGet, { scheme: 'HTTPS', path: '/healthz', port: 'https' });
    assert.deepEqual(c.readinessProbe.httpGet, { scheme: 'HTTPS', path: '/readyz', port: 'https' });
    const p = pod();
    assert.ok(p.topologySpreadConstraints?.some((t) => t.topologyKey === 'kubernetes.io/hostname'));
    assert.ok(p.affinity?.podAntiAffinity?.preferredDuringSchedulingIgnoredDuringExecution?.some((t) => t.podAffinityTerm.topologyKey === 'kubernetes.io/hostname'));
    const podLabels = (find(objects, 'Deployment', 'admitlb-webhook').spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
    for (const t of p.topologySpreadConstraints ?? []) for (const [k, v] of Object.entries(t.labelSelector.matchLabels)) assert.equal(podLabels[k], v);
    assert.ok((p.terminationGracePeriodSeconds ?? 0) >= 10);
  });

  it('Service 443 → https and a PDB with minAvailable 1 both select the webhook pods', () => {
    const podLabels = (find(objects, 'Deployment', 'admitlb-webhook').spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
    const svc = find(objects, 'Service', 'admitlb-webhook').spec as { selector: Record<string, string>; ports: { port: number; targetPort: string }[] };
    assert.deepEqual(svc.ports.map((p) => [p.port, p.targetPort]), [[443, 'https']]);
    for (const [k, v] of Object.entries(svc.selector)) assert.equal(podLabels[k], v);
    const pdb = find(objects, 'PodDisruptionBudget', 'admitlb-webhook').spec as { minAvailable: number; selector: { matchLabels: Record<string, string> } };
    assert.equal(pdb.minAvailable, 1);
    for (const [k, v] of Object.entries(pdb.selector.matchLabels)) assert.equal(podLabels[k], v);
  });

  it('MutatingWebhookConfiguration admitlb / services.admitlb.io', () => {
    const webhooks = find(objects, 'MutatingWebhookConfiguration', 'admitlb').webhooks as Webhook[];
    assert.deepEqual(webhooks.map((w) => w.name), ['services.admitlb.io']);
    const w = webhooks[0]!;
    assert.deepEqual(w.clientConfig.service, { name: 'admitlb-webhook', namespace: 'admitlb-system', path: '/mutate/services', port: 443 });
    assert.ok(w.clientConfig.caBundle, 'caBundle patched in');
    assert.deepEqual(w.rules, [{ operations: ['CREATE', 'UPDATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['services'], scope: 'Namespaced' }]);
    assert.deepEqual(w.admissionReviewVersions, ['v1']);
    assert.equal(w.sideEffects, 'NoneOnDryRun');
    assert.equal(w.reinvocationPolicy, 'IfNeeded');
    assert.equal(w.timeoutSeconds, 5);
    assert.equal(w.failurePolicy, 'Fail');
    assert.equal(w.matchPolicy, 'Equivalent');
    const excl = w.namespaceSelector?.matchExpressions?.find((e) => e.key === 'kubernetes.io/metadata.name');
    assert.equal(excl?.operator, 'NotIn');
    assert.deepEqual([...(excl?.values ?? [])].sort(), ['admitlb-system', 'kube-system']);
    assert.ok(w.matchConditions && w.matchConditions.length > 0 && w.matchConditions.length <= 64);
    for (const c of w.matchConditions) assert.ok(c.name && c.expression);
  });

  it('ValidatingWebhookConfiguration admitlb / ippools.admitlb.io', () => {
    const webhooks = find(objects, 'ValidatingWebhookConfiguration', 'admitlb').webhooks as Webhook[];
    const w = webhooks.find((x) => x.name === 'ippools.admitlb.io');
    assert.ok(w);
    assert.deepEqual(w.clientConfig.service, { name: 'admitlb-webhook', namespace: 'admitlb-system', path: '/validate/ippools', port: 443 });
    assert.ok(w.clientConfig.caBundle);
    assert.deepEqual(w.rules, [{ operations: ['CREATE', 'UPDATE', 'DELETE'], apiGroups: ['admitlb.io'], apiVersions: ['v1alpha1'], resources: ['ippools'], scope: 'Cluster' }]);
    assert.equal(w.sideEffects, 'None');
    assert.equal(w.timeoutSeconds, 5);
    assert.equal(w.failurePolicy, 'Fail');
    assert.deepEqual(w.admissionReviewVersions, ['v1']);
  });

  it('ValidatingWebhookConfiguration admitlb / speaker-config.admitlb.io', () => {
    const webhooks = find(objects, 'ValidatingWebhookConfiguration', 'admitlb').webhooks as Webhook[];
    assert.deepEqual(webhooks.map((w) => w.name), ['ippools.admitlb.io', 'speaker-config.admitlb.io']);
    const w = webhooks.find((x) => x.name === 'speaker-config.admitlb.io');
    assert.ok(w);
    assert.deepEqual(w.clientConfig.service, { name: 'admitlb-webhook', namespace: 'admitlb-system', path: '/validate/speaker-config', port: 443 });
    assert.ok(w.clientConfig.caBundle);
    assert.deepEqual(w.rules, [
      { operations: ['CREATE', 'UPDATE'], apiGroups: ['admitlb.io'], apiVersions: ['v1alpha1'], resources: ['l2advertisements', 'bgppeers', 'bgpadvertisements'], scope: 'Cluster' },
    ]);
    assert.equal(w.sideEffects, 'None');
    assert.equal(w.timeoutSeconds, 5);
    assert.equal(w.failurePolicy, 'Fail');
    assert.deepEqual(w.admissionReviewVersions, ['v1']);
  });

  describe('RBAC', () => {
    const roles = () => objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role');
    const rulesOf = (o: K8sObject) => (o.rules as Rule[]) ?? [];
    /** A tiny RBAC authorizer over the rendered rules. */
    const allows = (kind: 'ClusterRole' | 'Role', group: string, resource: string, verb: string, name?: string) =>
      roles()
        .filter((r) => r.kind === kind)
        .some((r) =>
          rulesOf(r).some(
            (rule) =>
              (rule.apiGroups ?? []).includes(group) &&
              (rule.resources ?? []).includes(resource) &&
              rule.verbs.includes(verb) &&
              (!rule.resourceNames || (name !== undefined && rule.resourceNames.includes(name))),
          ),
        );

    it('has no wildcards anywhere', () => {
      for (const r of roles()) {
        for (const rule of rulesOf(r)) {
          for (const v of [...rule.verbs, ...(rule.resources ?? []), ...(rule.apiGroups ?? [])]) assert.ok(!v.includes('*'), `${r.metadata.name}: ${v}`);
        }
      }
    });

    it('never grants Secrets cluster-wide, and in its namespace only get by name', () => {
      for (const r of roles()) {
        for (const rule of rulesOf(r)) {
          if (!(rule.resources ?? []).some((res) => res === 'secrets' || res.startsWith('secrets/'))) continue;
          assert.equal(r.kind, 'Role', `${r.metadata.name} grants secrets`);
          assert.equal(r.metadata.namespace, 'admitlb-system');
          assert.deepEqual(rule.resourceNames, ['admitlb-signing-keys']);
          assert.deepEqual(rule.verbs, ['get']);
        }
      }
      assert.ok(allows('Role', '', 'secrets', 'get', 'admitlb-signing-keys'));
      assert.ok(!allows('Role', '', 'secrets', 'get', 'admitlb-webhook-tls'));
    });

    it('grants what the webhook and controller need', () => {
      for (const v of ['get', 'list', 'watch', 'patch', 'update']) assert.ok(allows('ClusterRole', '', 'services', v), `services ${v}`);
      for (const v of ['patch', 'update']) assert.ok(allows('ClusterRole', '', 'services/status', v));
      for (const res of ['namespaces', 'nodes']) for (const v of ['get', 'list', 'watch']) assert.ok(allows('ClusterRole', '', res, v), `${res} ${v}`);
      for (const v of ['get', 'list', 'watch']) assert.ok(allows('ClusterRole', 'discovery.k8s.io', 'endpointslices', v));
      for (const g of ['', 'events.k8s.io']) for (const v of ['create', 'patch']) assert.ok(allows('ClusterRole', g, 'events', v), `events ${g} ${v}`);
      for (const v of ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete']) assert.ok(allows('ClusterRole', 'admitlb.io', 'ipclaims', v));
      for (const v of ['get', 'list', 'watch']) assert.ok(allows('ClusterRole', 'admitlb.io', 'ippools', v));
      for (const v of ['update', 'patch']) assert.ok(allows('ClusterRole', 'admitlb.io', 'ippools/status', v));
      for (const res of ['l2advertisements', 'bgppeers', 'bgpadvertisements']) for (const v of ['get', 'list', 'watch']) assert.ok(allows('ClusterRole', 'admitlb.io', res, v));
      for (const v of ['get', 'update']) assert.ok(allows('Role', 'coordination.k8s.io', 'leases', v, 'admitlb-controller'));
      assert.ok(allows('Role', 'coordination.k8s.io', 'leases', 'create'));
    });

    it('grants nothing beyond that', () => {
      assert.ok(!allows('ClusterRole', '', 'services', 'create'));
      assert.ok(!allows('ClusterRole', '', 'services', 'delete'));
      assert.ok(!allows('ClusterRole', 'admitlb.io', 'ippools', 'update'), 'pools are user intent');
      assert.ok(!allows('ClusterRole', 'admitlb.io', 'ippools', 'delete'));
      assert.ok(!allows('ClusterRole', 'coordination.k8s.io', 'leases', 'get'), 'no cluster-wide leases');
      assert.ok(!allows('Role', 'coordination.k8s.io', 'leases', 'update', 'someone-else'));
      assert.ok(!allows('ClusterRole', '', 'pods', 'get'));
      for (const o of roles()) for (const rule of rulesOf(o)) for (const v of rule.verbs) assert.ok(!['escalate', 'bind', 'impersonate', 'deletecollection'].includes(v), v);
    });

    it('binds each role to the admitlb ServiceAccount only', () => {
      const bindings = objects.filter((o) => o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding');
      assert.equal(bindings.length, 3);
      for (const b of bindings) {
        assert.deepEqual(b.subjects, [{ kind: 'ServiceAccount', name: 'admitlb', namespace: 'admitlb-system' }]);
        const ref = b.roleRef as { kind: string; name: string };
        find(objects, ref.kind, ref.name);
        if (b.kind === 'RoleBinding') assert.equal(b.metadata.namespace, 'admitlb-system');
      }
    });
  });

  it('the cert-manager component also works from a user overlay on top of a self-managed base', () => {
    const overlay = join(inst.root, 'overlay');
    mkdirSync(overlay);
    writeFileSync(
      join(overlay, 'kustomization.yaml'),
      'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../webhook-manifests]\ncomponents: [../webhook-manifests/cert-manager]\n',
    );
    const rendered = kustomize(overlay);
    assert.equal(rendered.find((o) => o.kind === 'Secret' && o.metadata.name === 'admitlb-webhook-tls'), undefined, 'generated TLS Secret replaced');
    find(rendered, 'Secret', 'admitlb-signing-keys');
    find(rendered, 'Certificate', 'admitlb-webhook-tls');
    for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
      assert.equal(find(rendered, kind, 'admitlb').metadata.annotations?.['cert-manager.io/inject-ca-from'], 'admitlb-system/admitlb-webhook-tls');
    }
  });
});
