// Renders webhook-manifests/ (a temp copy, after `admitlb certs`) with the real `kubectl kustomize` and
// checks the contract: Deployment and DaemonSet hardening, probes, PDB, webhook configurations and
// least-privilege RBAC per ServiceAccount.
import { strict as assert } from 'node:assert';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { formatReference, readManifestImage } from '../../scripts/image.ts';
import { runCertsCommand } from '../../src/certs/command.ts';
import { REPO_MANIFESTS, find, kustomize, tempInstall, type K8sObject } from './helpers.ts';

// The image the kustomization's images: entry names (test/certs/image.test.ts checks that entry).
const IMAGE = (() => {
  const ref = readManifestImage(join(REPO_MANIFESTS, 'kustomization.yaml'));
  if (ref instanceof Error) throw ref;
  return formatReference(ref);
})();

interface Rule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
}
interface Probe {
  httpGet: { scheme?: string; path: string; port: string | number };
}
interface Container {
  name: string;
  image: string;
  command?: string[];
  args: string[];
  env: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports: { name: string; containerPort: number; protocol?: string }[];
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
  volumes: { name: string; secret?: { secretName: string }; configMap?: { name: string }; emptyDir?: object }[];
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  dnsPolicy?: string;
  priorityClassName?: string;
  tolerations?: { key?: string; operator?: string; value?: string; effect?: string }[];
  nodeSelector?: Record<string, string>;
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
    for (const f of ['namespace.yaml', 'crds.yaml', 'rbac.yaml', 'webhook-deployment.yaml', 'pdb.yaml', 'webhook-service.yaml', 'webhook-configurations.yaml', 'speaker-daemonset.yaml']) {
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
    find(objects, 'ServiceAccount', 'admitlb-speaker');
  });

  it('Namespace: privileged Pod Security (the speaker needs it), restricted audited', () => {
    const labels = find(objects, 'Namespace', 'admitlb-system').metadata.labels ?? {};
    assert.equal(labels['pod-security.kubernetes.io/enforce'], 'privileged');
    assert.equal(labels['pod-security.kubernetes.io/audit'], 'restricted');
  });

  it('Deployment: 2 replicas, the fixed command line, env, port and volumes', () => {
    const d = find(objects, 'Deployment', 'admitlb-webhook');
    assert.equal((d.spec as { replicas: number }).replicas, 2);
    const c = container();
    assert.equal(c.image, IMAGE);
    assert.equal(c.command, undefined, "the image's ENTRYPOINT (node /app/bin/admitlb.js)");
    assert.deepEqual(c.args, [
      'webhook',
      '--tls-cert-file=/var/run/admitlb/tls/tls.crt',
      '--tls-key-file=/var/run/admitlb/tls/tls.key',
      '--signing-keys-dir=/var/run/admitlb/signing',
      // Added by the generated component: only kube-apiserver's client certificate passes.
      '--client-ca-file=/var/run/admitlb/client-ca/ca.crt',
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
    const caMount = c.volumeMounts.find((v) => v.mountPath === '/var/run/admitlb/client-ca');
    assert.ok(caMount?.readOnly, 'client CA mounted read-only');
    const caMap = pod().volumes.find((v) => v.name === caMount.name)?.configMap?.name ?? '';
    assert.match(caMap, /^admitlb-webhook-client-ca-[a-z0-9]+$/, 'hash-suffixed, so a new CA rolls the Deployment');
    const cm = find(objects, 'ConfigMap', caMap);
    assert.equal((cm.data as Record<string, string>)['ca.crt'], readFileSync(join(inst.certsDir, 'apiserver-client', 'ca.crt'), 'utf8'));
    assert.ok(c.resources.requests?.cpu, 'a CPU request');
    assert.ok(c.resources.requests.memory, 'a memory request');
    assert.ok(c.resources.limits?.memory, 'a memory limit');
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
    assert.ok(w.matchConditions && w.matchConditions.length > 0 && w.matchConditions.length <= 64, `1 to 64 matchConditions, got ${w.matchConditions?.length}`);
    for (const c of w.matchConditions) assert.ok(c.name && c.expression, `a matchCondition with a name and an expression: ${JSON.stringify(c)}`);
  });

  it('ValidatingWebhookConfiguration admitlb / claims.services.admitlb.io (the commit phase of a Service admission)', () => {
    const webhooks = find(objects, 'ValidatingWebhookConfiguration', 'admitlb').webhooks as Webhook[];
    const w = webhooks.find((x) => x.name === 'claims.services.admitlb.io');
    assert.ok(w);
    assert.deepEqual(w.clientConfig.service, { name: 'admitlb-webhook', namespace: 'admitlb-system', path: '/validate/services', port: 443 });
    assert.ok(w.clientConfig.caBundle);
    assert.deepEqual(w.rules, [{ operations: ['CREATE', 'UPDATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['services'], scope: 'Namespaced' }]);
    assert.equal(w.sideEffects, 'NoneOnDryRun', 'commits write IPClaims, never on dry runs');
    assert.equal(w.failurePolicy, 'Fail');
    const excl = w.namespaceSelector?.matchExpressions?.find((e) => e.key === 'kubernetes.io/metadata.name');
    assert.deepEqual([...(excl?.values ?? [])].sort(), ['admitlb-system', 'kube-system']);
    assert.equal(w.matchConditions?.length, 1, 'called only for Services that carry an assignment');
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
    assert.deepEqual(webhooks.map((w) => w.name), ['claims.services.admitlb.io', 'ippools.admitlb.io', 'speaker-config.admitlb.io', 'services-status.admitlb.io']);
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

  describe('speaker DaemonSet', () => {
    const ds = () => find(objects, 'DaemonSet', 'admitlb-speaker');
    const spod = () => (ds().spec as { template: { spec: PodSpec } }).template.spec;
    const speaker = () => {
      const c = spod().containers.find((c) => c.name === 'speaker');
      assert.ok(c);
      assert.equal(spod().containers.length, 1);
      return c;
    };

    it('one pod per Linux node on the host network, its own ServiceAccount, system-node-critical', () => {
      const p = spod();
      assert.equal(p.serviceAccountName, 'admitlb-speaker');
      assert.equal(p.hostNetwork, true);
      assert.equal(p.dnsPolicy, 'ClusterFirstWithHostNet', 'cluster DNS despite the host network');
      assert.notEqual(p.hostPID, true);
      assert.notEqual(p.hostIPC, true);
      assert.equal(p.priorityClassName, 'system-node-critical');
      assert.deepEqual(p.nodeSelector, { 'kubernetes.io/os': 'linux' });
      assert.ok((p.terminationGracePeriodSeconds ?? 0) > 10, 'longer than the 10 s the process gives itself');
      const spec = ds().spec as { selector: { matchLabels: Record<string, string> }; template: { metadata: { labels: Record<string, string> } }; updateStrategy: { type: string } };
      for (const [k, v] of Object.entries(spec.selector.matchLabels)) assert.equal(spec.template.metadata.labels[k], v);
      assert.equal(spec.selector.matchLabels['app.kubernetes.io/component'], 'speaker');
      assert.equal(spec.updateStrategy.type, 'RollingUpdate');
      // The webhook's Service and PDB must not select speaker pods.
      const svc = find(objects, 'Service', 'admitlb-webhook').spec as { selector: Record<string, string> };
      assert.ok(Object.entries(svc.selector).some(([k, v]) => spec.template.metadata.labels[k] !== v));
    });

    it('tolerates control-plane nodes, and not every taint', () => {
      const t = spod().tolerations ?? [];
      for (const key of ['node-role.kubernetes.io/control-plane', 'node-role.kubernetes.io/master']) {
        assert.ok(t.some((x) => x.key === key && x.operator === 'Exists' && x.effect === 'NoSchedule'), key);
      }
      assert.ok(!t.some((x) => x.key === undefined && x.operator === 'Exists'), 'no blanket toleration');
    });

    it('command line, NODE_NAME and the namespace from the downward API, monitoring port', () => {
      const c = speaker();
      assert.equal(c.image, IMAGE);
      assert.equal(c.command, undefined, "the image's ENTRYPOINT");
      assert.deepEqual(c.args, ['speaker', '--signing-keys-dir=/var/run/admitlb/signing', '--namespace=$(POD_NAMESPACE)', '--host=$(HOST_IP)', '--port=7472', '--heartbeat-keys-dir=/var/run/admitlb/heartbeat', '--heartbeat-address=$(HOST_IP)', '--heartbeat-port=7473']);
      const env = Object.fromEntries(c.env.map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]));
      assert.deepEqual(env, { NODE_NAME: 'spec.nodeName', POD_NAMESPACE: 'metadata.namespace', HOST_IP: 'status.hostIP' });
      assert.deepEqual(c.ports.map((p) => [p.name, p.containerPort, p.protocol]), [['monitoring', 7472, 'TCP'], ['heartbeat', 7473, 'UDP']]);
      assert.ok(c.resources.requests?.cpu, 'a CPU request');
      assert.ok(c.resources.requests.memory, 'a memory request');
      assert.ok(c.resources.limits?.memory, 'a memory limit');
      assert.equal(c.resources.limits?.cpu, undefined, 'no CPU throttling of ARP/NA and Lease renewals');
    });

    it('HTTP probes: /healthz for liveness, /readyz for readiness, on the monitoring port', () => {
      const c = speaker();
      assert.deepEqual(c.livenessProbe.httpGet, { path: '/healthz', port: 'monitoring' });
      assert.deepEqual(c.readinessProbe.httpGet, { path: '/readyz', port: 'monitoring' });
    });

    it('root with only NET_ADMIN, NET_RAW and NET_BIND_SERVICE; no privilege escalation; read-only root', () => {
      const sc = speaker().securityContext;
      assert.equal(sc.runAsUser, 0, 'exec\'d ip/arping/na6 keep capabilities only as root (no ambient capabilities in Kubernetes)');
      assert.notEqual(sc.privileged, true);
      assert.equal(sc.allowPrivilegeEscalation, false);
      assert.equal(sc.readOnlyRootFilesystem, true);
      assert.deepEqual(sc.capabilities?.drop, ['ALL']);
      assert.deepEqual([...(sc.capabilities?.add ?? [])].sort(), ['NET_ADMIN', 'NET_BIND_SERVICE', 'NET_RAW']);
      assert.equal((sc.seccompProfile as { type: string } | undefined)?.type ?? spod().securityContext.seccompProfile?.type, 'RuntimeDefault');
    });

    it('mounts the public-key ConfigMap, which holds no private key', () => {
      const c = speaker();
      const m = c.volumeMounts.find((v) => v.mountPath === '/var/run/admitlb/signing');
      assert.ok(m?.readOnly);
      const vol = spod().volumes.find((v) => v.name === m.name);
      assert.equal(vol?.secret, undefined, 'no Secret on a node');
      // The only Secret on a node: the heartbeat key, which signs no assignment.
      assert.deepEqual(spod().volumes.filter((v) => v.secret).map((v) => v.secret!.secretName), ['admitlb-speaker-heartbeat']);
      const hb = c.volumeMounts.find((v) => v.mountPath === '/var/run/admitlb/heartbeat');
      assert.ok(hb?.readOnly);
      assert.equal(spod().volumes.find((v) => v.name === hb.name)?.secret?.secretName, 'admitlb-speaker-heartbeat');
      assert.ok(find(objects, 'Secret', 'admitlb-speaker-heartbeat'), 'the heartbeat Secret is rendered (generated/)');
      const cmName = vol?.configMap?.name;
      assert.match(cmName ?? '', /^admitlb-signing-public-keys-[a-z0-9]+$/, 'kustomize put the content hash into the reference');
      const cm = find(objects, 'ConfigMap', cmName!);
      const data = cm.data as Record<string, string>;
      assert.ok(data.active);
      for (const [k, v] of Object.entries(data)) {
        if (k === 'active') continue;
        const jwk = JSON.parse(v) as Record<string, unknown>;
        assert.equal(jwk.d, undefined, k);
        assert.equal(jwk.kty, 'OKP');
      }
      assert.equal(cm.binaryData, undefined);
      assert.ok(c.volumeMounts.every((v) => v.readOnly), 'nothing is writable: the built code compiles nothing at run time');
    });
  });

  describe('RBAC', () => {
    const WEBHOOK_SA = 'admitlb';
    const SPEAKER_SA = 'admitlb-speaker';
    const NS = 'admitlb-system';
    const roles = () => objects.filter((o) => o.kind === 'ClusterRole' || o.kind === 'Role');
    const bindings = () => objects.filter((o) => o.kind === 'ClusterRoleBinding' || o.kind === 'RoleBinding');
    const rulesOf = (o: K8sObject) => (o.rules as Rule[]) ?? [];
    type Subject = { kind: string; name: string; namespace?: string };

    /**
     * Everything a ServiceAccount may do, one string per grant: `<scope>|<group>|<resource>|<verb>|<name>`
     * where scope is `cluster` or `ns:<namespace>` and name is `*` when the rule has no resourceNames.
     */
    const effective = (sa: string): string[] => {
      const out = new Set<string>();
      for (const b of bindings()) {
        if (!(b.subjects as Subject[]).some((s) => s.kind === 'ServiceAccount' && s.name === sa && s.namespace === NS)) continue;
        const ref = b.roleRef as { kind: string; name: string };
        const role = objects.find((o) => o.kind === ref.kind && o.metadata.name === ref.name && (ref.kind === 'ClusterRole' || o.metadata.namespace === b.metadata.namespace));
        assert.ok(role, `${b.kind}/${b.metadata.name} → ${ref.kind}/${ref.name} exists`);
        const scope = b.kind === 'ClusterRoleBinding' ? 'cluster' : `ns:${b.metadata.namespace}`;
        for (const rule of rulesOf(role)) {
          for (const g of rule.apiGroups ?? []) for (const r of rule.resources ?? []) for (const v of rule.verbs) for (const n of rule.resourceNames ?? ['*']) out.add(`${scope}|${g}|${r}|${v}|${n}`);
        }
      }
      return [...out].sort();
    };
    const grants = (scope: string, groups: string[], resources: string[], verbs: string[], names = ['*']) =>
      groups.flatMap((g) => resources.flatMap((r) => verbs.flatMap((v) => names.map((n) => `${scope}|${g}|${r}|${v}|${n}`))));
    /** A tiny RBAC authorizer over the effective grants of one account. */
    const can = (sa: string, scope: string, group: string, resource: string, verb: string, name?: string) => {
      const e = effective(sa);
      const scopes = scope === 'cluster' ? ['cluster'] : ['cluster', scope];
      return scopes.some((sc) => e.includes(`${sc}|${group}|${resource}|${verb}|*`) || (name !== undefined && e.includes(`${sc}|${group}|${resource}|${verb}|${name}`)));
    };
    const READ = ['get', 'list', 'watch'];
    const SPEAKER_CONFIG = ['l2advertisements', 'bgppeers', 'bgpadvertisements'];

    it('has no wildcards anywhere', () => {
      for (const r of roles()) {
        for (const rule of rulesOf(r)) {
          for (const v of [...rule.verbs, ...(rule.resources ?? []), ...(rule.apiGroups ?? []), ...(rule.resourceNames ?? [])]) assert.ok(!v.includes('*'), `${r.metadata.name}: ${v}`);
        }
        assert.equal(r.aggregationRule, undefined, `${r.metadata.name} aggregates nothing`);
      }
    });

    it('binds each role to exactly one of the two ServiceAccounts of admitlb-system', () => {
      const pairs = bindings().map((b) => {
        const subjects = b.subjects as Subject[];
        assert.equal(subjects.length, 1, `${b.kind}/${b.metadata.name}`);
        assert.equal(subjects[0]!.kind, 'ServiceAccount');
        assert.equal(subjects[0]!.namespace, NS);
        const ref = b.roleRef as { kind: string; name: string };
        if (b.kind === 'RoleBinding') {
          assert.equal(b.metadata.namespace, NS);
          assert.equal(ref.kind, 'Role', 'no ClusterRole reused through a RoleBinding');
        }
        return `${b.kind}/${b.metadata.name} → ${ref.kind}/${ref.name} → ${subjects[0]!.name}`;
      });
      assert.deepEqual(pairs.sort(), [
        `ClusterRoleBinding/admitlb → ClusterRole/admitlb → ${WEBHOOK_SA}`,
        `ClusterRoleBinding/admitlb-speaker → ClusterRole/admitlb-speaker → ${SPEAKER_SA}`,
        `RoleBinding/admitlb-leader-election → Role/admitlb-leader-election → ${WEBHOOK_SA}`,
        `RoleBinding/admitlb-speaker-leases → Role/admitlb-speaker-leases → ${SPEAKER_SA}`,
      ].sort());
      for (const sa of [WEBHOOK_SA, SPEAKER_SA]) assert.equal(find(objects, 'ServiceAccount', sa).metadata.namespace, NS);
    });

    it('the webhook + controller account gets exactly what it needs', () => {
      const ns = `ns:${NS}`;
      // Exactly what test/real/rbac.test.ts sees the webhook and controller use on kube-apiserver.
      assert.deepEqual(effective(WEBHOOK_SA), [
        ...grants('cluster', [''], ['services'], ['list', 'watch', 'patch']),
        // status.loadBalancer.ingress
        ...grants('cluster', [''], ['services/status'], ['patch']),
        ...grants('cluster', [''], ['namespaces'], ['list', 'watch']),
        ...grants('cluster', [''], ['events'], ['create']),
        ...grants('cluster', ['admitlb.io'], ['ipclaims'], ['get', 'list', 'watch', 'create', 'update', 'delete']),
        ...grants('cluster', ['admitlb.io'], ['ippools', 'bgppeers', 'bgpadvertisements'], ['list', 'watch']),
        ...grants('cluster', ['admitlb.io'], ['ippools/status'], ['patch']),
        // Leader election: create cannot be limited by name; get/update only the controller's Lease.
        ...grants(ns, ['coordination.k8s.io'], ['leases'], ['create']),
        ...grants(ns, ['coordination.k8s.io'], ['leases'], ['get', 'update'], ['admitlb-controller']),
      ].sort());
      // The same, read as an authorizer would.
      assert.ok(!can(WEBHOOK_SA, ns, '', 'secrets', 'get', 'admitlb-signing-keys'), 'the signing keys arrive as a volume');
      assert.ok(!can(WEBHOOK_SA, ns, '', 'secrets', 'get', 'admitlb-webhook-tls'));
      assert.ok(!can(WEBHOOK_SA, ns, '', 'secrets', 'list'));
      assert.ok(!can(WEBHOOK_SA, ns, 'coordination.k8s.io', 'leases', 'update', 'admitlb-speaker-node-a'), 'not the speakers\' Leases');
      assert.ok(!can(WEBHOOK_SA, 'ns:kube-system', 'coordination.k8s.io', 'leases', 'create'));
      assert.ok(!can(WEBHOOK_SA, 'cluster', 'admitlb.io', 'ippools', 'update'), 'pools are user intent');
      assert.ok(!can(WEBHOOK_SA, 'cluster', '', 'services', 'create'));
      assert.ok(!can(WEBHOOK_SA, 'cluster', '', 'pods', 'get'));
    });

    it('the speaker account gets exactly what it needs: reads, Events, the Leases of admitlb-system (no Secrets unless bgp-passwords is included)', () => {
      const ns = `ns:${NS}`;
      assert.deepEqual(effective(SPEAKER_SA), [
        // Informers only: list and watch.
        ...grants('cluster', [''], ['services', 'nodes'], ['list', 'watch']),
        ...grants('cluster', ['discovery.k8s.io'], ['endpointslices'], ['list', 'watch']),
        ...grants('cluster', ['admitlb.io'], ['ipclaims', 'ippools', ...SPEAKER_CONFIG], ['list', 'watch']),
        ...grants('cluster', [''], ['events'], ['create']),
        // Its NodeAnnouncement: created, status patched on change, deleted on shutdown; never read.
        ...grants('cluster', ['admitlb.io'], ['nodeannouncements'], ['create', 'delete']),
        ...grants('cluster', ['admitlb.io'], ['nodeannouncements/status'], ['patch']),
        // Node Leases admitlb-speaker-<node>: RBAC has no name prefixes, and list/watch/create take no
        // names, so every Lease of admitlb-system, and only there.
        ...grants(ns, ['coordination.k8s.io'], ['leases'], ['get', 'list', 'watch', 'create', 'update', 'delete']),
      ].sort());
      for (const e of effective(SPEAKER_SA)) {
        const [scope, group, resource, verb] = e.split('|');
        if (resource === 'secrets') assert.deepEqual([scope, verb], [ns, 'get'], e);
        assert.ok(!resource!.includes('/') || resource === 'nodeannouncements/status', `no subresources but its report's status: ${e}`);
        if (!(group === 'coordination.k8s.io' || resource === 'events' || resource!.startsWith('nodeannouncements'))) assert.ok(READ.includes(verb!), `read-only: ${e}`);
      }
      assert.ok(!can(SPEAKER_SA, ns, '', 'secrets', 'get', 'admitlb-signing-keys'), 'the speaker can never read the private keys');
      assert.ok(!can(SPEAKER_SA, ns, '', 'secrets', 'get', 'tor-a-bgp-password'), 'BGP passwords only with the bgp-passwords component');
      assert.ok(!can(SPEAKER_SA, ns, '', 'secrets', 'list'));
      assert.ok(!can(SPEAKER_SA, ns, '', 'secrets', 'watch'));
      assert.ok(!can(SPEAKER_SA, 'ns:kube-system', '', 'secrets', 'get', 'x'), 'no Secret outside admitlb-system');
      assert.ok(!can(SPEAKER_SA, 'cluster', '', 'secrets', 'get', 'x'));
      assert.ok(!can(SPEAKER_SA, 'cluster', 'coordination.k8s.io', 'leases', 'get'), 'no Leases outside admitlb-system');
      assert.ok(!can(SPEAKER_SA, 'ns:kube-system', 'coordination.k8s.io', 'leases', 'update', 'kube-controller-manager'));
      assert.ok(!can(SPEAKER_SA, 'cluster', '', 'services', 'patch'));
      assert.ok(!can(SPEAKER_SA, 'cluster', '', 'services/status', 'update'));
      assert.ok(!can(SPEAKER_SA, 'cluster', 'admitlb.io', 'ipclaims', 'create'));
      assert.ok(!can(SPEAKER_SA, 'cluster', '', 'nodes', 'patch'));
      assert.ok(!can(SPEAKER_SA, 'cluster', '', 'configmaps', 'get'), 'the public keys come through the volume');
    });

    it('never grants Secrets cluster-wide', () => {
      for (const r of roles()) {
        for (const rule of rulesOf(r)) {
          if (!(rule.resources ?? []).some((res) => res === 'secrets' || res.startsWith('secrets/'))) continue;
          assert.equal(r.kind, 'Role', `${r.metadata.name} grants secrets`);
          assert.equal(r.metadata.namespace, NS);
        }
      }
    });

    it('no escalation verbs', () => {
      for (const o of roles()) for (const rule of rulesOf(o)) for (const v of rule.verbs) assert.ok(!['escalate', 'bind', 'impersonate', 'deletecollection'].includes(v), v);
    });
  });

  it('network-policy component: only the listed API server addresses reach the webhook port, set from an overlay', () => {
    const overlay = join(inst.root, 'overlay-netpol');
    mkdirSync(overlay);
    writeFileSync(
      join(overlay, 'kustomization.yaml'),
      [
        'apiVersion: kustomize.config.k8s.io/v1beta1',
        'kind: Kustomization',
        'resources: [../webhook-manifests]',
        'components: [../webhook-manifests/network-policy]',
        'patches:',
        '  - target: { kind: NetworkPolicy, name: admitlb-webhook }',
        '    patch: |',
        '      - op: replace',
        '        path: /spec/ingress/0/from',
        '        value: [{ipBlock: {cidr: 198.51.100.10/32}}, {ipBlock: {cidr: 198.51.100.11/32}}]',
        '',
      ].join('\n'),
    );
    const rendered = kustomize(overlay);
    const np = find(rendered, 'NetworkPolicy', 'admitlb-webhook');
    assert.equal(np.metadata.namespace, 'admitlb-system');
    const spec = np.spec as { podSelector: { matchLabels: Record<string, string> }; policyTypes: string[]; ingress: { from: { ipBlock: { cidr: string } }[]; ports: { port: string; protocol: string }[] }[] };
    assert.deepEqual(spec.policyTypes, ['Ingress']);
    // It selects exactly the webhook pods, and the port it opens is the one the webhook listens on.
    const template = (find(rendered, 'Deployment', 'admitlb-webhook').spec as { template: { metadata: { labels: Record<string, string> } } }).template;
    for (const [k, v] of Object.entries(spec.podSelector.matchLabels)) assert.equal(template.metadata.labels[k], v, k);
    const speakerLabels = (find(rendered, 'DaemonSet', 'admitlb-speaker').spec as { template: { metadata: { labels: Record<string, string> } } }).template.metadata.labels;
    assert.ok(Object.entries(spec.podSelector.matchLabels).some(([k, v]) => speakerLabels[k] !== v), 'the speakers are not selected');
    assert.equal(spec.ingress.length, 1);
    assert.deepEqual(spec.ingress[0]!.from.map((f) => f.ipBlock.cidr), ['198.51.100.10/32', '198.51.100.11/32']);
    assert.deepEqual(spec.ingress[0]!.ports, [{ port: 'https', protocol: 'TCP' }]);
    assert.ok(container().ports.some((p) => p.name === 'https'));
    // Without the overlay's patch, the component admits only a documentation address: nothing real.
    const base = join(inst.root, 'overlay-netpol-default');
    mkdirSync(base);
    writeFileSync(join(base, 'kustomization.yaml'), 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../webhook-manifests]\ncomponents: [../webhook-manifests/network-policy]\n');
    const dflt = find(kustomize(base), 'NetworkPolicy', 'admitlb-webhook').spec as typeof spec;
    assert.deepEqual(dflt.ingress[0]!.from, [{ ipBlock: { cidr: '192.0.2.1/32' } }]);
  });

  it('failure-policy-ignore component: Ignore on the Service webhook, Fail everywhere else', () => {
    const overlay = join(inst.root, 'overlay-ignore');
    mkdirSync(overlay);
    writeFileSync(join(overlay, 'kustomization.yaml'), 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../webhook-manifests]\ncomponents: [../webhook-manifests/failure-policy-ignore]\n');
    const rendered = kustomize(overlay);
    const policies = (kind: string) => ((find(rendered, kind, 'admitlb').webhooks as Webhook[]).map((w) => [w.name, w.failurePolicy]));
    assert.deepEqual(policies('MutatingWebhookConfiguration'), [['services.admitlb.io', 'Ignore']]);
    for (const [name, policy] of policies('ValidatingWebhookConfiguration')) assert.equal(policy, 'Fail', String(name));
    // The base keeps Fail.
    assert.equal((find(objects, 'MutatingWebhookConfiguration', 'admitlb').webhooks as Webhook[])[0]?.failurePolicy, 'Fail');
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
