// `admitlb certs --in-cluster`: the per-cluster secrets made inside the cluster, for installs that have
// no Node on the admin's machine (the Helm chart runs it as a hook Job, charts/admitlb/README.md).
// Same material as `admitlb certs`, from the same generators, but stored only as API objects:
//   Secret admitlb-webhook-ca          the webhook CA (tls.crt, tls.key); kept, so the caBundle stays valid
//   Secret admitlb-webhook-tls         serving pair + ca.crt; reissued when missing, not signed by that CA,
//                                      or within RENEW_BEFORE_DAYS of its end
//   Secret admitlb-signing-keys        created once (one Ed25519 key, `active`)
//   ConfigMap admitlb-signing-public-keys   rewritten from that Secret: public halves only
//   Secret admitlb-speaker-heartbeat   created once
//   Secret admitlb-apiserver-client    kube-apiserver's client identity and the two files for
//                                      /etc/kubernetes/admitlb/ (not with --api-server-auth none)
//   ConfigMap admitlb-webhook-client-ca     its CA, which the webhook requires (--client-ca-file)
// and the caBundle of every webhook in the admitlb webhook configurations, when they exist (before a
// first install they do not: the chart runs this once before and once after its objects are created).
// Everything is create-if-absent or derived, so reruns change nothing that is still valid.
import { X509Certificate, randomBytes } from 'node:crypto';
import { AdmissionregistrationV1Api, CoreV1Api, KubeConfig, type V1ConfigMap, type V1Secret } from '@kubernetes/client-node';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { parseArgs } from 'node:util';
import { IN_CLUSTER_WEBHOOK_USERS, admissionConfiguration, webhookClientKubeconfig } from './admission-config.ts';
import {
  API_SERVER_AUTH_MODES,
  CLIENT_CA_CONFIGMAP_NAME,
  CONTROL_PLANE_DIR,
  HEARTBEAT_SECRET_NAME,
  PUBLIC_KEYS_CONFIGMAP_NAME,
  SIGNING_SECRET_NAME,
  TLS_SECRET_NAME,
  publicJwk,
  type ApiServerAuth,
} from './command.ts';
import { ACTIVE_SIGNING_KEY_FILE, SERVICE_NAMESPACE, SIGNING_KEY_SUFFIX, generateApiServerClientCertificates, generateSigningKey, generateWebhookCertificates } from './generate.ts';

export const CA_SECRET_NAME = 'admitlb-webhook-ca';
export const APISERVER_CLIENT_SECRET_NAME = 'admitlb-apiserver-client';
/** The webhook configurations whose caBundle is set (both kinds carry this name). */
export const WEBHOOK_CONFIGURATION_NAME = 'admitlb';
/** A serving certificate closer than this to its end is reissued on the next run (every helm upgrade). */
export const RENEW_BEFORE_DAYS = 30;
const DAY_MS = 86_400_000;

export interface InClusterCertsOptions {
  /** default: the in-cluster ServiceAccount or $KUBECONFIG */
  kubeconfig?: string | undefined;
  namespace?: string | undefined;
  apiServerAuth?: ApiServerAuth;
  /** cert-manager issues the serving certificate and injects the caBundle: no TLS, no patch */
  certManager?: boolean;
  days?: number | undefined;
  dnsNames?: string[];
  ipAddresses?: string[];
  log?: (line: string) => void;
}

export interface InClusterCertsResult {
  /** `<Kind>/<name>` of every object created or replaced */
  written: string[];
  /** `<Kind>/<name>` of every object found valid and left alone */
  kept: string[];
  /** `<Kind>/<configuration>/<webhook>` whose caBundle was set */
  patchedWebhooks: string[];
  /** webhook configurations that do not exist (yet) */
  missingConfigurations: string[];
  activeSigningKid: string;
}

const statusOf = (err: unknown): number | undefined => {
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e?.code === 'number') return e.code;
  return typeof e?.statusCode === 'number' ? e.statusCode : undefined;
};

async function orUndefined<T>(call: Promise<T>): Promise<T | undefined> {
  try {
    return await call;
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}

const b64 = (s: string) => Buffer.from(s).toString('base64');
const unb64 = (s: string | undefined) => (s === undefined ? undefined : Buffer.from(s, 'base64').toString('utf8'));
const LABELS = { 'app.kubernetes.io/name': 'admitlb', 'app.kubernetes.io/part-of': 'admitlb', 'app.kubernetes.io/managed-by': 'admitlb-certs' };

class Objects {
  readonly written: string[] = [];
  readonly kept: string[] = [];
  constructor(
    private readonly core: CoreV1Api,
    readonly namespace: string,
  ) {}

  secret(name: string): Promise<V1Secret | undefined> {
    return orUndefined(this.core.readNamespacedSecret({ name, namespace: this.namespace }));
  }

  /**
   * Creates the Secret; when one appeared meanwhile (two hook runs racing), returns that one
   * instead, so both runs go on with the same material.
   */
  async createSecret(name: string, type: string, data: Record<string, string>): Promise<V1Secret> {
    const body: V1Secret = { metadata: { name, namespace: this.namespace, labels: LABELS }, type, data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])) };
    try {
      const created = await this.core.createNamespacedSecret({ namespace: this.namespace, body });
      this.written.push(`Secret/${name}`);
      return created;
    } catch (err) {
      if (statusOf(err) !== 409) throw err;
      return this.core.readNamespacedSecret({ name, namespace: this.namespace });
    }
  }

  async replaceSecret(current: V1Secret, data: Record<string, string>): Promise<void> {
    const name = current.metadata!.name!;
    const body: V1Secret = { ...current, data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])) };
    await this.core.replaceNamespacedSecret({ name, namespace: this.namespace, body });
    this.written.push(`Secret/${name}`);
  }

  /** The ConfigMap with exactly `data`: created, replaced when it differs, else kept. */
  async applyConfigMap(name: string, data: Record<string, string>): Promise<void> {
    const current = await orUndefined(this.core.readNamespacedConfigMap({ name, namespace: this.namespace }));
    if (!current) {
      const body: V1ConfigMap = { metadata: { name, namespace: this.namespace, labels: LABELS }, data };
      await this.core.createNamespacedConfigMap({ namespace: this.namespace, body });
      this.written.push(`ConfigMap/${name}`);
    } else if (JSON.stringify(Object.entries(current.data ?? {}).sort()) !== JSON.stringify(Object.entries(data).sort())) {
      await this.core.replaceNamespacedConfigMap({ name, namespace: this.namespace, body: { ...current, data } });
      this.written.push(`ConfigMap/${name}`);
    } else this.kept.push(`ConfigMap/${name}`);
  }
}

/** The CA and a serving certificate it signed that is good for more than RENEW_BEFORE_DAYS. */
async function ensureServingCertificate(o: Objects, options: InClusterCertsOptions): Promise<string> {
  const log = options.log ?? (() => {});
  let caSecret = await o.secret(CA_SECRET_NAME);
  let ca: { certPem: string; keyPem: string } | undefined;
  if (caSecret) {
    const certPem = unb64(caSecret.data?.['tls.crt']);
    const keyPem = unb64(caSecret.data?.['tls.key']);
    if (!certPem || !keyPem) throw new Error(`Secret ${o.namespace}/${CA_SECRET_NAME} lacks tls.crt or tls.key; delete it to create a new CA (the caBundle changes with it)`);
    ca = { certPem, keyPem };
  }
  const tlsSecret = await o.secret(TLS_SECRET_NAME);
  if (ca && tlsSecret) {
    const crt = unb64(tlsSecret.data?.['tls.crt']);
    if (crt && tlsSecret.data?.['tls.key'] && servingCertificateValid(crt, ca.certPem)) {
      o.kept.push(`Secret/${CA_SECRET_NAME}`, `Secret/${TLS_SECRET_NAME}`);
      return ca.certPem;
    }
  }
  const certs = await generateWebhookCertificates({ dnsNames: options.dnsNames, ipAddresses: options.ipAddresses, days: options.days, ca });
  if (!caSecret) {
    caSecret = await o.createSecret(CA_SECRET_NAME, 'kubernetes.io/tls', { 'tls.crt': certs.caCertPem, 'tls.key': certs.caKeyPem });
    const stored = unb64(caSecret.data?.['tls.crt']);
    if (stored !== certs.caCertPem) {
      // Another run created the CA first: issue under that one.
      return ensureServingCertificate(o, options);
    }
    log(`created the webhook CA (Secret ${o.namespace}/${CA_SECRET_NAME})`);
  } else o.kept.push(`Secret/${CA_SECRET_NAME}`);
  const data = { 'tls.crt': certs.certPem, 'tls.key': certs.keyPem, 'ca.crt': certs.caCertPem };
  if (tlsSecret) await o.replaceSecret(tlsSecret, data);
  else await o.createSecret(TLS_SECRET_NAME, 'kubernetes.io/tls', data);
  log(`issued the serving certificate (Secret ${o.namespace}/${TLS_SECRET_NAME}), valid until ${new X509Certificate(certs.certPem).validTo}`);
  return certs.caCertPem;
}

function servingCertificateValid(certPem: string, caPem: string): boolean {
  try {
    const cert = new X509Certificate(certPem);
    const ca = new X509Certificate(caPem);
    return cert.verify(ca.publicKey) && Date.parse(cert.validTo) - Date.now() > RENEW_BEFORE_DAYS * DAY_MS;
  } catch {
    return false;
  }
}

/** The signing keys from the Secret (created with one key when absent), checked like loadSigningKeys. */
async function ensureSigningKeys(o: Objects, log: (line: string) => void): Promise<{ activeKid: string; keys: Map<string, JWK> }> {
  let secret = await o.secret(SIGNING_SECRET_NAME);
  if (!secret) {
    const key = await generateSigningKey();
    secret = await o.createSecret(SIGNING_SECRET_NAME, 'Opaque', { [`${key.kid}${SIGNING_KEY_SUFFIX}`]: JSON.stringify(key.privateJwk), [ACTIVE_SIGNING_KEY_FILE]: `${key.kid}\n` });
    log(`signing key ${key.kid} created (Secret ${o.namespace}/${SIGNING_SECRET_NAME})`);
  } else o.kept.push(`Secret/${SIGNING_SECRET_NAME}`);
  const keys = new Map<string, JWK>();
  for (const [file, value] of Object.entries(secret.data ?? {})) {
    if (!file.endsWith(SIGNING_KEY_SUFFIX)) continue;
    const jwk = JSON.parse(unb64(value)!) as JWK;
    const kid = await calculateJwkThumbprint(jwk, 'sha256');
    if (file !== `${kid}${SIGNING_KEY_SUFFIX}`) throw new Error(`Secret ${SIGNING_SECRET_NAME}: ${file} does not match the key's thumbprint ${kid}`);
    keys.set(kid, { ...jwk, kid });
  }
  const activeKid = unb64(secret.data?.[ACTIVE_SIGNING_KEY_FILE])?.trim();
  if (!activeKid || !keys.has(activeKid)) throw new Error(`Secret ${SIGNING_SECRET_NAME}: "${ACTIVE_SIGNING_KEY_FILE}" must name one of its keys`);
  return { activeKid, keys };
}

async function ensureApiServerClient(o: Objects, log: (line: string) => void): Promise<string> {
  let secret = await o.secret(APISERVER_CLIENT_SECRET_NAME);
  if (!secret) {
    const certs = await generateApiServerClientCertificates();
    secret = await o.createSecret(APISERVER_CLIENT_SECRET_NAME, 'Opaque', {
      'ca.crt': certs.caCertPem,
      'ca.key': certs.caKeyPem,
      'client.crt': certs.certPem,
      'client.key': certs.keyPem,
      'admission-configuration.yaml': admissionConfiguration(`${CONTROL_PLANE_DIR}/webhook-client.kubeconfig`),
      'webhook-client.kubeconfig': webhookClientKubeconfig(IN_CLUSTER_WEBHOOK_USERS, { certPem: certs.certPem, keyPem: certs.keyPem }),
    });
    log(
      `created kube-apiserver's webhook client identity (Secret ${o.namespace}/${APISERVER_CLIENT_SECRET_NAME}): copy its admission-configuration.yaml and ` +
        `webhook-client.kubeconfig into ${CONTROL_PLANE_DIR}/ on every control-plane node (README, Install with Helm)`,
    );
  } else o.kept.push(`Secret/${APISERVER_CLIENT_SECRET_NAME}`);
  const caPem = unb64(secret.data?.['ca.crt']);
  if (!caPem) throw new Error(`Secret ${APISERVER_CLIENT_SECRET_NAME} lacks ca.crt; delete it to create a new identity`);
  return caPem;
}

/** Sets caBundle on every webhook of both configurations; a missing configuration is reported, not an error. */
async function patchCaBundles(kc: KubeConfig, caPem: string, result: Pick<InClusterCertsResult, 'patchedWebhooks' | 'missingConfigurations'>): Promise<void> {
  const api = kc.makeApiClient(AdmissionregistrationV1Api);
  const caBundle = b64(caPem);
  await patchOne(WEBHOOK_CONFIGURATION_NAME, 'MutatingWebhookConfiguration', caBundle, result, () => api.readMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION_NAME }), (body) =>
    api.replaceMutatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION_NAME, body }),
  );
  await patchOne(WEBHOOK_CONFIGURATION_NAME, 'ValidatingWebhookConfiguration', caBundle, result, () => api.readValidatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION_NAME }), (body) =>
    api.replaceValidatingWebhookConfiguration({ name: WEBHOOK_CONFIGURATION_NAME, body }),
  );
}

type WebhookConfiguration = { webhooks?: { name: string; clientConfig: { caBundle?: string } }[] };

async function patchOne<T extends WebhookConfiguration>(
  name: string,
  kind: string,
  caBundle: string,
  result: Pick<InClusterCertsResult, 'patchedWebhooks' | 'missingConfigurations'>,
  read: () => Promise<T>,
  replace: (body: T) => Promise<unknown>,
): Promise<void> {
  // Bounded retries on a conflicting write (another writer between our read and replace).
  for (let attempt = 1; ; attempt++) {
    const current = await orUndefined(read());
    if (!current) {
      result.missingConfigurations.push(`${kind}/${name}`);
      return;
    }
    const stale = (current.webhooks ?? []).filter((w) => w.clientConfig.caBundle !== caBundle);
    if (stale.length === 0) return;
    for (const w of stale) w.clientConfig.caBundle = caBundle;
    try {
      await replace(current);
      for (const w of stale) result.patchedWebhooks.push(`${kind}/${name}/${w.name}`);
      return;
    } catch (err) {
      if (statusOf(err) !== 409 || attempt >= 5) throw err;
    }
  }
}

export async function runInClusterCerts(options: InClusterCertsOptions = {}): Promise<InClusterCertsResult> {
  const log = options.log ?? (() => {});
  // A handful of calls: client-node's own KubeConfig (the in-cluster ServiceAccount, $KUBECONFIG or
  // ~/.kube/config), not the programs' kept-alive adapter in src/kube/, which this leaf must not import.
  const kc = new KubeConfig();
  if (options.kubeconfig) kc.loadFromFile(options.kubeconfig);
  else kc.loadFromDefault();
  const namespace = options.namespace ?? SERVICE_NAMESPACE;
  const o = new Objects(kc.makeApiClient(CoreV1Api), namespace);
  const apiServerAuth = options.apiServerAuth ?? 'client-certificate';
  if (!API_SERVER_AUTH_MODES.includes(apiServerAuth)) throw new Error(`apiServerAuth must be one of ${API_SERVER_AUTH_MODES.join(', ')}, got ${String(apiServerAuth)}`);

  const caPem = options.certManager ? undefined : await ensureServingCertificate(o, options);
  const signing = await ensureSigningKeys(o, log);
  const kids = [...signing.keys.keys()].sort();
  const publicData: Record<string, string> = Object.fromEntries(kids.map((kid) => [`${kid}${SIGNING_KEY_SUFFIX}`, `${JSON.stringify(publicJwk(signing.keys.get(kid)!))}\n`]));
  publicData[ACTIVE_SIGNING_KEY_FILE] = `${signing.activeKid}\n`;
  await o.applyConfigMap(PUBLIC_KEYS_CONFIGMAP_NAME, publicData);

  if (await o.secret(HEARTBEAT_SECRET_NAME)) o.kept.push(`Secret/${HEARTBEAT_SECRET_NAME}`);
  else {
    await o.createSecret(HEARTBEAT_SECRET_NAME, 'Opaque', { key: `${randomBytes(32).toString('base64')}\n` });
    log(`heartbeat key created (Secret ${namespace}/${HEARTBEAT_SECRET_NAME})`);
  }

  if (apiServerAuth === 'client-certificate') await o.applyConfigMap(CLIENT_CA_CONFIGMAP_NAME, { 'ca.crt': await ensureApiServerClient(o, log) });
  else log('WARNING: --api-server-auth none: any pod that reaches the webhook Service can post AdmissionReviews (see README, Security)');

  const result: InClusterCertsResult = { written: o.written, kept: o.kept, patchedWebhooks: [], missingConfigurations: [], activeSigningKid: signing.activeKid };
  if (caPem) await patchCaBundles(kc, caPem, result);
  log(
    `written: ${result.written.join(', ') || 'nothing'}; kept: ${result.kept.join(', ') || 'nothing'}; caBundle set on ${result.patchedWebhooks.length} webhook(s)` +
      (result.missingConfigurations.length ? `; not there yet: ${result.missingConfigurations.join(', ')}` : ''),
  );
  return result;
}

/** Flags of `admitlb certs --in-cluster` (everything after the subcommand). */
export function parseInClusterCertsArgs(argv: string[]): InClusterCertsOptions {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      'in-cluster': { type: 'boolean' },
      kubeconfig: { type: 'string' },
      namespace: { type: 'string' },
      'api-server-auth': { type: 'string' },
      'cert-manager': { type: 'boolean' },
      days: { type: 'string' },
      'dns-name': { type: 'string', multiple: true },
      'ip-address': { type: 'string', multiple: true },
    },
  });
  const apiServerAuth = values['api-server-auth'] ?? 'client-certificate';
  if (!(API_SERVER_AUTH_MODES as readonly string[]).includes(apiServerAuth)) throw new Error(`--api-server-auth must be one of ${API_SERVER_AUTH_MODES.join(', ')}, got ${apiServerAuth}`);
  const days = values.days === undefined ? undefined : Number(values.days);
  if (days !== undefined && !(Number.isInteger(days) && days > RENEW_BEFORE_DAYS)) throw new Error(`--days must be an integer above ${RENEW_BEFORE_DAYS}, got ${values.days}`);
  const split = (list: string[] | undefined) => (list ?? []).flatMap((v) => v.split(',')).map((v) => v.trim()).filter(Boolean);
  return {
    kubeconfig: values.kubeconfig,
    namespace: values.namespace,
    apiServerAuth: apiServerAuth as ApiServerAuth,
    certManager: values['cert-manager'] ?? false,
    days,
    dnsNames: split(values['dns-name']),
    ipAddresses: split(values['ip-address']),
  };
}
