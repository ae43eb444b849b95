// `kubectl admitlb doctor`: one line per check of an installation, pass or fail with the fix.
// The checks read, except two that write nothing by construction: a server-side dry-run create
// (dryRun=All: admission runs, nothing is stored) and SubjectAccessReviews (answers, not objects).
// A check that has no meaning on this cluster (the sandbox double has no DaemonSets and no
// authorizer; a control plane without kubelets has no Nodes) is reported `skipped: <why>`.
// Exit status: 1 when a check fails; warnings and skips do not fail the run.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { parseAllDocuments } from 'yaml';
import { SERVICE_NAME, SERVICE_NAMESPACE } from '../certs/generate.ts';
import { TLS_SECRET_NAME } from '../certs/command.ts';
import { ANN_ASSIGNED_IPS } from '../config/annotations.ts';
import { matchesSelector } from '../allocation/pools.ts';
import { KUBE_FLAGS_USAGE, parseCommandArgs, structured } from './common.ts';
import type { PluginIO } from './io.ts';
import { kubeApi, loadKubeConfig, type ApiJson, type KubeApi } from './kube.ts';

export const DOCTOR_USAGE = `usage: kubectl admitlb doctor [-n NAMESPACE] [-o yaml|json]

Checks an admitlb installation, one line per check (pass, warn, fail with the fix, or skipped with
why): webhook configurations and their endpoints, the caBundle against the serving certificate and
its expiry, that the API server reaches the webhook (a server-side dry-run create), each component's
RBAC (SubjectAccessReview against webhook-manifests/rbac.yaml), a speaker on every eligible node,
and clock skew with the API server. Exit status 1 when a check fails.

  -n, --namespace NS     where the dry-run probe Service is "created" (default: default)
  -o, --output FORMAT    yaml or json (default: one line per check)
${KUBE_FLAGS_USAGE}`;

export type CheckResult = 'pass' | 'warn' | 'fail' | 'skipped';

export interface Check {
  name: string;
  result: CheckResult;
  detail: string;
  fix?: string;
}

const WEBHOOK_CONFIG = 'admitlb';
const SPEAKER_DAEMONSET = 'admitlb-speaker';
const EXPIRY_WARN_DAYS = 30;
const SKEW_LIMIT_MS = 5_000;
const COMPONENTS = ['admitlb', 'admitlb-speaker'] as const;

interface Endpoint {
  webhook: string;
  configuration: string;
  url?: string;
  service?: { name: string; namespace: string; port: number; path?: string };
  caBundle?: string;
}

const check = (name: string, result: CheckResult, detail: string, fix?: string): Check => ({ name, result, detail, ...(fix && result !== 'pass' && result !== 'skipped' ? { fix } : {}) });

async function webhookEndpoints(api: KubeApi): Promise<{ checks: Check[]; endpoints: Endpoint[] }> {
  const endpoints: Endpoint[] = [];
  const missing: string[] = [];
  for (const kind of ['mutatingwebhookconfigurations', 'validatingwebhookconfigurations']) {
    const cfg = await api.get(`/apis/admissionregistration.k8s.io/v1/${kind}/${WEBHOOK_CONFIG}`);
    if (!cfg) {
      missing.push(kind.replace('configurations', 'configuration'));
      continue;
    }
    for (const w of cfg.webhooks ?? []) {
      const cc = w.clientConfig ?? {};
      endpoints.push({ webhook: w.name, configuration: `${kind}/${WEBHOOK_CONFIG}`, ...(cc.url ? { url: cc.url } : {}), ...(cc.service ? { service: { port: 443, ...cc.service } } : {}), ...(cc.caBundle ? { caBundle: cc.caBundle } : {}) });
    }
  }
  const checks = [
    missing.length
      ? check('webhook-configurations', 'fail', `missing: ${missing.join(', ')} "${WEBHOOK_CONFIG}"`, 'kubectl apply -k webhook-manifests/ (README, Install)')
      : check('webhook-configurations', 'pass', `${endpoints.length} webhooks: ${endpoints.map((e) => e.webhook).join(', ')}`),
  ];
  return { checks, endpoints };
}

/** Connects to a URL endpoint and returns its certificate chain's leaf (server verification off: this is what we check). */
function fetchCertificate(url: URL, timeoutMs = 3000): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const socket = tls.connect({ host, port: Number(url.port || 443), rejectUnauthorized: false, ...(net.isIP(host) ? {} : { servername: host }) });
    const timer = setTimeout(() => socket.destroy(new Error(`no TLS handshake within ${timeoutMs} ms`)), timeoutMs);
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const cert = socket.getPeerX509Certificate();
      socket.destroy();
      if (cert) resolve(cert);
      else reject(new Error('the endpoint presented no certificate'));
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

const splitPem = (pem: string) => pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];

async function endpointChecks(api: KubeApi, endpoints: Endpoint[], now: number): Promise<Check[]> {
  const checks: Check[] = [];
  // One target per distinct URL or Service: the webhooks of admitlb share one server.
  const targets = new Map<string, Endpoint>();
  for (const e of endpoints) targets.set(e.url ?? `${e.service?.namespace}/${e.service?.name}:${e.service?.port}`, e);
  let certificate: { cert: X509Certificate; from: string; names: string[] } | undefined;
  const reachable: string[] = [];
  const unreachable: string[] = [];
  for (const [key, e] of targets) {
    if (e.url) {
      const url = new URL(e.url);
      try {
        const cert = await fetchCertificate(url);
        reachable.push(key);
        certificate ??= { cert, from: `a TLS handshake with ${url.host}`, names: [url.hostname.replace(/^\[|\]$/g, '')] };
      } catch (err) {
        unreachable.push(`${key} (${(err as Error).message})`);
      }
    } else if (e.service) {
      const slices = await api.list(`/apis/discovery.k8s.io/v1/namespaces/${e.service.namespace}/endpointslices?labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${e.service.name}`)}`);
      const ready = slices.flatMap((s: ApiJson) => s.endpoints ?? []).filter((ep: ApiJson) => ep.conditions?.ready !== false);
      if (ready.length > 0) reachable.push(`${key} (${ready.length} ready endpoint(s))`);
      else unreachable.push(`${key} (no ready endpoint)`);
    }
  }
  checks.push(
    unreachable.length
      ? check('webhook-endpoints', 'fail', `unreachable: ${unreachable.join('; ')}`, `start the webhook (kubectl -n ${SERVICE_NAMESPACE} get pods; kubectl -n ${SERVICE_NAMESPACE} logs deploy/admitlb-webhook) or correct clientConfig in the webhook configurations`)
      : check('webhook-endpoints', 'pass', `ready: ${reachable.join('; ')}`),
  );

  // The serving certificate: from the endpoint when a handshake worked, else the Secret it is mounted from.
  if (!certificate) {
    const secret = await api.get(`/api/v1/namespaces/${SERVICE_NAMESPACE}/secrets/${TLS_SECRET_NAME}`).catch(() => undefined);
    const crt = secret?.data?.['tls.crt'];
    if (crt) {
      const pem = splitPem(Buffer.from(crt, 'base64').toString('utf8'))[0];
      if (pem) certificate = { cert: new X509Certificate(pem), from: `Secret ${SERVICE_NAMESPACE}/${TLS_SECRET_NAME}`, names: [`${SERVICE_NAME}.${SERVICE_NAMESPACE}.svc`] };
    }
  }
  const bundles = [...new Set(endpoints.map((e) => e.caBundle ?? ''))];
  if (!certificate) {
    checks.push(check('ca-bundle', 'fail', `no serving certificate to check: no endpoint answered a TLS handshake and Secret ${SERVICE_NAMESPACE}/${TLS_SECRET_NAME} is not readable`, 'make the webhook reachable, or check with a kubeconfig that may read the Secret'));
    checks.push(check('certificate-expiry', 'fail', 'no serving certificate to check', 'see ca-bundle'));
    return checks;
  }
  const { cert, from } = certificate;
  if (bundles.includes('')) {
    checks.push(check('ca-bundle', 'fail', `a webhook has no caBundle (${endpoints.filter((e) => !e.caBundle).map((e) => e.webhook).join(', ')})`, 'npx admitlb certs, then kubectl apply -k webhook-manifests/ (or install the cert-manager component)'));
  } else {
    const problems: string[] = [];
    for (const b of bundles) {
      const cas = splitPem(Buffer.from(b, 'base64').toString('utf8')).map((p) => new X509Certificate(p));
      if (!cas.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey))) problems.push(`the serving certificate (${from}, issuer ${cert.issuer.replace(/\n/g, ', ')}) does not verify with the caBundle (${cas.map((c) => c.subject.replace(/\n/g, ', ')).join('; ') || 'no certificate in it'})`);
    }
    const names = certificate.names.filter((n) => !(net.isIP(n) ? cert.checkIP(n) : cert.checkHost(n)));
    if (names.length) problems.push(`the serving certificate does not name ${names.join(', ')} (its names: ${cert.subjectAltName ?? 'none'})`);
    checks.push(
      problems.length
        ? check('ca-bundle', 'fail', problems.join('; '), 'regenerate and rewire: npx admitlb certs, then kubectl apply -k webhook-manifests/ and restart the webhook')
        : check('ca-bundle', 'pass', `the serving certificate (${from}) verifies with the caBundle of every webhook and names ${certificate.names.join(', ')}`),
    );
  }
  const days = Math.floor((Date.parse(cert.validTo) - now) / 86_400_000);
  checks.push(
    days < 0
      ? check('certificate-expiry', 'fail', `the serving certificate expired on ${cert.validTo}`, 'npx admitlb certs (or renew through cert-manager), then restart the webhook')
      : days < EXPIRY_WARN_DAYS
        ? check('certificate-expiry', 'warn', `the serving certificate expires in ${days} days (${cert.validTo})`, 'renew it soon: npx admitlb certs, or let cert-manager renew it')
        : check('certificate-expiry', 'pass', `the serving certificate is valid for ${days} more days (until ${cert.validTo})`),
  );
  return checks;
}

/** A server-side dry-run create of a LoadBalancer Service: only the webhook can put the assigned-ips annotation on it. */
async function apiServerReachesWebhook(api: KubeApi, namespace: string): Promise<Check> {
  const probe = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'admitlb-doctor-probe', namespace },
    spec: { type: 'LoadBalancer', ports: [{ name: 'probe', port: 65535, protocol: 'TCP', targetPort: 65535 }] },
  };
  const r = await api.request('POST', `/api/v1/namespaces/${encodeURIComponent(namespace)}/services?dryRun=All`, probe);
  const message: string = r.body?.message ?? '';
  if (r.status === 201 || r.status === 200) {
    const ips = r.body?.metadata?.annotations?.[ANN_ASSIGNED_IPS];
    if (ips) return check('api-server-reaches-webhook', 'pass', `a dry-run create in namespace ${namespace} was answered by the webhook (it would assign ${ips})`);
    return check('api-server-reaches-webhook', 'fail', `a dry-run create in namespace ${namespace} passed without the webhook's answer (no ${ANN_ASSIGNED_IPS}): the API server did not call it, or ignored its failure (failurePolicy Ignore)`, 'check the MutatingWebhookConfiguration (rules, namespaceSelector, matchConditions) and the API server log for "failed calling webhook"');
  }
  if (/admission webhook "[^"]*admitlb\.io" denied the request/.test(message)) {
    return check('api-server-reaches-webhook', 'pass', `a dry-run create in namespace ${namespace} was answered by the webhook (a denial: ${message.replace(/^.*denied the request: /, '')})`);
  }
  if (/failed calling webhook/.test(message)) {
    return check('api-server-reaches-webhook', 'fail', `the API server cannot call the webhook: ${message}`, 'the API server must reach clientConfig (Service endpoints or url) and trust its certificate with caBundle; see webhook-endpoints and ca-bundle');
  }
  return check('api-server-reaches-webhook', 'fail', `a dry-run create in namespace ${namespace} failed (${r.status}): ${message}`, r.status === 404 ? `pass -n with an existing namespace` : 'see the message');
}

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
  namespace?: string;
}

/** The permissions each component needs: webhook-manifests/rbac.yaml, the manifests the project ships (one source). */
export function requiredPermissions(rbacYaml: string): Map<string, Rule[]> {
  const docs = parseAllDocuments(rbacYaml).map((d) => d.toJS() as ApiJson).filter(Boolean);
  const out = new Map<string, Rule[]>();
  for (const binding of docs.filter((d) => d.kind === 'ClusterRoleBinding' || d.kind === 'RoleBinding')) {
    const role = docs.find((d) => d.kind === binding.roleRef?.kind && d.metadata?.name === binding.roleRef?.name && (d.kind === 'ClusterRole' || d.metadata?.namespace === binding.metadata?.namespace));
    for (const subject of binding.subjects ?? []) {
      if (subject.kind !== 'ServiceAccount') continue;
      const rules: Rule[] = (role?.rules ?? []).map((r: Rule) => ({ ...r, ...(binding.kind === 'RoleBinding' ? { namespace: binding.metadata.namespace } : {}) }));
      out.set(subject.name, [...(out.get(subject.name) ?? []), ...rules]);
    }
  }
  return out;
}

async function rbacChecks(api: KubeApi): Promise<Check[]> {
  const rbacPath = new URL('../../webhook-manifests/rbac.yaml', import.meta.url);
  const needed = requiredPermissions(readFileSync(rbacPath, 'utf8'));
  const checks: Check[] = [];
  for (const account of COMPONENTS) {
    const name = `rbac-${account}`;
    const user = `system:serviceaccount:${SERVICE_NAMESPACE}:${account}`;
    const denied: string[] = [];
    let total = 0;
    for (const rule of needed.get(account) ?? []) {
      for (const group of rule.apiGroups) {
        for (const resource of rule.resources) {
          const [res, sub] = resource.split('/');
          for (const verb of rule.verbs) {
            for (const resourceName of rule.resourceNames ?? [undefined]) {
              total++;
              const r = await api.request('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
                apiVersion: 'authorization.k8s.io/v1',
                kind: 'SubjectAccessReview',
                spec: {
                  user,
                  groups: ['system:serviceaccounts', `system:serviceaccounts:${SERVICE_NAMESPACE}`, 'system:authenticated'],
                  resourceAttributes: { group, resource: res, ...(sub ? { subresource: sub } : {}), verb, ...(resourceName ? { name: resourceName } : {}), ...(rule.namespace ? { namespace: rule.namespace } : {}) },
                },
              });
              if (r.status === 404) return [check('rbac', 'skipped', 'the API server does not serve SubjectAccessReviews (no authorizer: the sandbox double grants every request)')];
              if (r.status === 403) return [check('rbac', 'skipped', `this kubeconfig may not create SubjectAccessReviews (${r.body?.message ?? 'forbidden'}); run doctor as a cluster admin`)];
              if (r.status >= 300) return [check(name, 'fail', `SubjectAccessReview failed (${r.status}): ${r.body?.message ?? ''}`)];
              if (!r.body?.status?.allowed) denied.push(`${verb} ${group ? `${group}/` : ''}${resource}${resourceName ? `/${resourceName}` : ''}${rule.namespace ? ` in ${rule.namespace}` : ''}`);
            }
          }
        }
      }
    }
    checks.push(
      denied.length
        ? check(name, 'fail', `${user} may not: ${denied.join(', ')}`, 'kubectl apply -k webhook-manifests/ (rbac.yaml grants exactly these)')
        : check(name, 'pass', `${user} has all ${total} permissions rbac.yaml grants`),
    );
  }
  return checks;
}

interface Toleration {
  key?: string;
  operator?: string;
  value?: string;
  effect?: string;
}

const tolerates = (tolerations: Toleration[], taint: { key: string; value?: string; effect: string }) =>
  tolerations.some(
    (t) => (!t.effect || t.effect === taint.effect) && (t.operator === 'Exists' ? !t.key || t.key === taint.key : t.key === taint.key && (t.value ?? '') === (taint.value ?? '')),
  );

async function speakerCheck(api: KubeApi): Promise<Check> {
  const r = await api.request('GET', `/apis/apps/v1/namespaces/${SERVICE_NAMESPACE}/daemonsets/${SPEAKER_DAEMONSET}`);
  if (r.status === 404 && !(await api.get('/apis/apps/v1'))) return check('speakers', 'skipped', 'the API server serves no apps/v1 DaemonSets (the sandbox double): there are no speaker pods to count');
  const nodes = await api.list('/api/v1/nodes');
  if (r.status === 404) {
    return nodes.length === 0
      ? check('speakers', 'skipped', 'no Nodes and no speaker DaemonSet: nothing announces on this cluster')
      : check('speakers', 'fail', `DaemonSet ${SERVICE_NAMESPACE}/${SPEAKER_DAEMONSET} does not exist`, 'kubectl apply -k webhook-manifests/');
  }
  if (nodes.length === 0) return check('speakers', 'skipped', 'the cluster has no Nodes (a control plane without kubelets): no node can run a speaker');
  const ds = r.body;
  const template = ds.spec?.template?.spec ?? {};
  const eligible = nodes.filter(
    (n: ApiJson) =>
      matchesSelector(n.metadata?.labels, { matchLabels: template.nodeSelector ?? {} }) &&
      // The DaemonSet controller adds the not-ready/unreachable/pressure tolerations itself.
      (n.spec?.taints ?? []).every((t: ApiJson) => t.effect === 'PreferNoSchedule' || t.key?.startsWith('node.kubernetes.io/') || tolerates(template.tolerations ?? [], t)),
  );
  const selector = Object.entries(ds.spec?.selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
  const pods = await api.list(`/api/v1/namespaces/${SERVICE_NAMESPACE}/pods?labelSelector=${encodeURIComponent(selector)}`);
  const readyOn = new Set(pods.filter((p: ApiJson) => (p.status?.conditions ?? []).some((c: ApiJson) => c.type === 'Ready' && c.status === 'True')).map((p: ApiJson) => p.spec?.nodeName));
  const without = eligible.filter((n: ApiJson) => !readyOn.has(n.metadata?.name)).map((n: ApiJson) => n.metadata?.name);
  if (without.length) return check('speakers', 'fail', `no ready speaker on ${without.length} of ${eligible.length} eligible node(s): ${without.join(', ')}`, `kubectl -n ${SERVICE_NAMESPACE} describe ds ${SPEAKER_DAEMONSET}; kubectl -n ${SERVICE_NAMESPACE} get pods -o wide`);
  return check('speakers', 'pass', `a ready speaker on each of the ${eligible.length} eligible node(s)`);
}

async function clockCheck(api: KubeApi): Promise<Check> {
  const sent = Date.now();
  const r = await api.request('GET', '/version');
  const received = Date.now();
  const date = r.headers.date;
  if (!date) return check('clock-skew', 'skipped', 'the API server sent no Date header');
  // The Date header has one-second resolution: allow for it and for the round trip.
  const skew = Date.parse(date) + 500 - (sent + received) / 2;
  const slack = 500 + (received - sent) / 2;
  const detail = `this machine and the API server differ by ${(Math.abs(skew) / 1000).toFixed(1)} s (±${(slack / 1000).toFixed(1)} s)`;
  return Math.abs(skew) - slack > SKEW_LIMIT_MS
    ? check('clock-skew', 'fail', `${detail}, over ${SKEW_LIMIT_MS / 1000} s: leases and certificate validity depend on agreeing clocks`, 'synchronise the clocks (chrony or systemd-timesyncd) on this machine and the control plane')
    : check('clock-skew', 'pass', detail);
}

export async function runChecks(api: KubeApi, namespace: string, now = Date.now()): Promise<Check[]> {
  const { checks, endpoints } = await webhookEndpoints(api);
  if (endpoints.length) checks.push(...(await endpointChecks(api, endpoints, now)));
  checks.push(await apiServerReachesWebhook(api, namespace));
  checks.push(...(await rbacChecks(api)));
  checks.push(await speakerCheck(api));
  checks.push(await clockCheck(api));
  return checks;
}

export function renderChecks(checks: Check[]): string {
  const width = Math.max(...checks.map((c) => c.name.length));
  return checks
    .map((c) => {
      const head = `${c.result === 'skipped' ? 'skip' : c.result.padEnd(4)}  ${c.name.padEnd(width)}  `;
      return c.result === 'skipped' ? `${head}skipped: ${c.detail}\n` : `${head}${c.detail}${c.fix ? `; fix: ${c.fix}` : ''}\n`;
    })
    .join('');
}

export async function runDoctorCommand(args: string[], io: PluginIO): Promise<number> {
  const { common, values } = parseCommandArgs(args, DOCTOR_USAGE, { namespace: { type: 'string', short: 'n' } });
  if (common.help) {
    io.stdout(`${DOCTOR_USAGE}\n`);
    return 0;
  }
  const api = kubeApi(loadKubeConfig(common));
  const checks = await runChecks(api, (values.namespace as string | undefined) ?? 'default');
  const failed = checks.filter((c) => c.result === 'fail').length;
  io.stdout(common.output === 'table' ? renderChecks(checks) : structured({ checks, failed }, common.output));
  return failed > 0 ? 1 : 0;
}
