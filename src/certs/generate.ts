// Key material for an admitlb install: the webhook's CA and serving certificate (the API server dials the
// webhook over TLS and trusts only the caBundle) and the Ed25519 keys that sign IP assignments.
// ECDSA P-256 everywhere: fast to generate, accepted by Go's crypto/tls (kube-apiserver) and Node.
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { X509Certificate as NodeX509, createPrivateKey, webcrypto } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { join } from 'node:path';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ecAlg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
/** Backdating absorbs clock skew between this machine and the API server / nodes. */
const BACKDATE_MS = 3_600_000;

export const SERVICE_NAME = 'admitlb-webhook';
export const SERVICE_NAMESPACE = 'admitlb-system';

/** The four names under which in-cluster clients (kube-apiserver) reach the webhook Service. */
export const DEFAULT_WEBHOOK_DNS_NAMES: readonly string[] = [
  SERVICE_NAME,
  `${SERVICE_NAME}.${SERVICE_NAMESPACE}`,
  `${SERVICE_NAME}.${SERVICE_NAMESPACE}.svc`,
  `${SERVICE_NAME}.${SERVICE_NAMESPACE}.svc.cluster.local`,
];

export const CA_DAYS = 3650;
export const SERVING_DAYS = 365;

export interface WebhookCertificates {
  caCertPem: string;
  caKeyPem: string;
  certPem: string;
  keyPem: string;
}

export interface GenerateWebhookCertificatesOptions {
  /** Extra DNS SANs, added after the four Service names. */
  dnsNames?: readonly string[] | undefined;
  /** Extra IP SANs (IPv4 or IPv6). */
  ipAddresses?: readonly string[] | undefined;
  /** Validity of the serving certificate in days (default 365). */
  days?: number | undefined;
  /** Reuse this CA instead of creating one (so the caBundle already in the cluster stays valid). */
  ca?: { certPem: string; keyPem: string } | undefined;
}

function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] ?? 0) & 0x7f; // positive INTEGER without a leading zero byte
  if (bytes[0] === 0) bytes[0] = 1;
  return Buffer.from(bytes).toString('hex');
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  return `${x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY')}\n`;
}

function generateEcKeys(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(ecAlg, true, ['sign', 'verify']) as Promise<CryptoKeyPair>;
}

/** Imports a CA from PEM. Accepts PKCS#8 and SEC1 ("EC PRIVATE KEY") keys; the key must match the cert. */
async function importCa(certPem: string, keyPem: string): Promise<{ cert: x509.X509Certificate; keys: CryptoKeyPair }> {
  const nodeCert = new NodeX509(certPem);
  const nodeKey = createPrivateKey(keyPem);
  if (!nodeCert.ca) throw new Error('existing CA certificate is not a CA (basicConstraints cA=false)');
  if (!nodeCert.checkPrivateKey(nodeKey)) throw new Error('existing CA key does not match the CA certificate');
  if (Date.parse(nodeCert.validTo) <= Date.now()) throw new Error(`existing CA expired on ${nodeCert.validTo}`);
  const pkcs8 = nodeKey.export({ format: 'der', type: 'pkcs8' });
  const privateKey = await webcrypto.subtle.importKey('pkcs8', pkcs8, ecAlg, true, ['sign']);
  const cert = new x509.X509Certificate(certPem);
  const publicKey = await cert.publicKey.export(ecAlg, ['verify']);
  return { cert, keys: { privateKey, publicKey } as CryptoKeyPair };
}

async function createCa(commonName = 'admitlb-webhook-ca'): Promise<{ cert: x509.X509Certificate; keys: CryptoKeyPair }> {
  const keys = await generateEcKeys();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${commonName}, O=admitlb`,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + CA_DAYS * DAY_MS),
    signingAlgorithm: ecAlg,
    keys,
    extensions: [
      // pathLen 0: this CA signs leaf certificates only, never another CA.
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { cert, keys };
}

/**
 * Creates (or reuses) the webhook CA and issues a fresh serving certificate for the webhook Service.
 * The serving certificate never outlives its CA.
 */
export async function generateWebhookCertificates(options: GenerateWebhookCertificatesOptions = {}): Promise<WebhookCertificates> {
  const days = options.days ?? SERVING_DAYS;
  if (!Number.isFinite(days) || days <= 0) throw new Error(`days must be a positive number, got ${days}`);
  const ips = [...new Set(options.ipAddresses ?? [])];
  for (const ip of ips) if (isIP(ip) === 0) throw new Error(`not an IP address: ${ip}`);
  const dnsNames = [...new Set([...DEFAULT_WEBHOOK_DNS_NAMES, ...(options.dnsNames ?? [])])];
  for (const name of dnsNames) {
    if (isIP(name) !== 0) throw new Error(`${name} is an IP address; pass it in ipAddresses`);
    if (!/^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/i.test(name)) throw new Error(`invalid DNS name: ${name}`);
  }

  const ca = options.ca ? await importCa(options.ca.certPem, options.ca.keyPem) : await createCa();
  return issueLeaf(ca, options.ca, {
    subject: `CN=${SERVICE_NAME}.${SERVICE_NAMESPACE}.svc, O=admitlb`,
    notAfter: new Date(Math.min(Date.now() + days * DAY_MS, ca.cert.notAfter.getTime())),
    usage: x509.ExtendedKeyUsage.serverAuth,
    extra: [
      new x509.SubjectAlternativeNameExtension(
        [...dnsNames.map((value) => ({ type: 'dns' as const, value })), ...ips.map((value) => ({ type: 'ip' as const, value }))],
        false,
      ),
    ],
  });
}

type Ca = { cert: x509.X509Certificate; keys: CryptoKeyPair };

/**
 * A fresh ECDSA leaf signed by `ca`, returned with the CA in the shape the callers write out. ECDSA
 * keys sign the handshake, so the key usage is digitalSignature only (keyEncipherment is RSA's).
 */
async function issueLeaf(
  ca: Ca,
  given: { certPem: string } | undefined,
  leaf: { subject: string; notAfter: Date; usage: x509.ExtendedKeyUsage; extra: x509.Extension[] },
): Promise<WebhookCertificates> {
  const leafKeys = await generateEcKeys();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: leaf.subject,
    issuer: ca.cert.subject,
    notBefore: new Date(Date.now() - BACKDATE_MS),
    notAfter: leaf.notAfter,
    signingAlgorithm: ecAlg,
    publicKey: leafKeys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([leaf.usage], false),
      ...leaf.extra,
      await x509.SubjectKeyIdentifierExtension.create(leafKeys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey),
    ],
  });
  return {
    caCertPem: given ? normalizePem(given.certPem) : `${ca.cert.toString('pem')}\n`,
    caKeyPem: await privateKeyPem(ca.keys.privateKey), // always PKCS#8, even when the input was SEC1
    certPem: `${cert.toString('pem')}\n`,
    keyPem: await privateKeyPem(leafKeys.privateKey),
  };
}

/** Subject of the client certificate kube-apiserver presents to admitlb's webhook. */
export const APISERVER_CLIENT_SUBJECT = 'CN=kube-apiserver-admitlb-webhook-client, O=admitlb';

/**
 * The identity kube-apiserver presents to the webhook (`--client-ca-file` on the webhook side): a CA
 * of its own that signs nothing else, so holding some other certificate of the cluster never passes,
 * and one client certificate. The client certificate lives as long as its CA (ten years): replacing it
 * means copying files onto every control-plane node, which nobody should have to do yearly, and the
 * key never leaves the control plane. Reuses `ca` when given, so a rerun keeps what the control plane
 * already has.
 */
export async function generateApiServerClientCertificates(options: { ca?: { certPem: string; keyPem: string } } = {}): Promise<WebhookCertificates> {
  const ca = options.ca ? await importCa(options.ca.certPem, options.ca.keyPem) : await createCa('admitlb-apiserver-client-ca');
  return issueLeaf(ca, options.ca, { subject: APISERVER_CLIENT_SUBJECT, notAfter: ca.cert.notAfter, usage: x509.ExtendedKeyUsage.clientAuth, extra: [] });
}

function normalizePem(pem: string): string {
  return pem.endsWith('\n') ? pem : `${pem}\n`;
}

/** Writes content atomically (temp file + rename) so a watcher never sees a half-written file. */
async function writeAtomic(path: string, content: string, mode: number): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  await writeFile(tmp, content.endsWith('\n') ? content : `${content}\n`, { mode });
  await chmod(tmp, mode); // writeFile's mode is filtered by the umask
  await rename(tmp, path);
}

/** Writes ca.crt, ca.key, tls.crt, tls.key into dir (created if needed); private keys get mode 0600. */
export async function writeCertificates(dir: string, certs: WebhookCertificates): Promise<void> {
  await mkdir(dir, { recursive: true });
  // Keys first: a reloader watching dir then sees the new key before the cert that needs it.
  await writeAtomic(join(dir, 'ca.key'), certs.caKeyPem, 0o600);
  await writeAtomic(join(dir, 'ca.crt'), certs.caCertPem, 0o644);
  await writeAtomic(join(dir, 'tls.key'), certs.keyPem, 0o600);
  await writeAtomic(join(dir, 'tls.crt'), certs.certPem, 0o644);
}

// ---- Assignment signing keys ----------------------------------------------------------------------

/** Name of the marker file (and Secret key) that holds the kid of the key that signs. */
export const ACTIVE_SIGNING_KEY_FILE = 'active';
export const SIGNING_KEY_SUFFIX = '.jwk.json';

export interface SigningKey {
  /** RFC 7638 thumbprint (SHA-256, base64url) of the public key; also the file name stem. */
  kid: string;
  /** Private JWK: kty OKP, crv Ed25519, x, d, plus kid, alg EdDSA, use sig. */
  privateJwk: JWK;
  /** The same without `d`, for verifiers. */
  publicJwk: JWK;
}

/** Generates an Ed25519 key pair for signing assignments. */
export async function generateSigningKey(): Promise<SigningKey> {
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  const privateJwk: JWK = { ...jwk, kid, alg: 'EdDSA', use: 'sig' };
  const { d: _d, ...publicJwk } = privateJwk;
  return { kid, privateJwk, publicJwk };
}

/** Writes `<kid>.jwk.json` (mode 0600) into dir and, unless `activate` is false, points `active` at it. */
export async function writeSigningKey(dir: string, key: SigningKey, activate = true): Promise<string> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = join(dir, `${key.kid}${SIGNING_KEY_SUFFIX}`);
  await writeAtomic(path, JSON.stringify(key.privateJwk), 0o600);
  if (activate) await writeAtomic(join(dir, ACTIVE_SIGNING_KEY_FILE), key.kid, 0o600);
  return path;
}

export interface SigningKeySet {
  /** kid of the key that signs new assignments. */
  activeKid: string;
  /** Every valid key (all of them verify), keyed by kid. */
  keys: Map<string, JWK>;
}

/**
 * Reads a signing key directory (certs/signing locally, the mounted Secret in the pod) following the
 * convention in certs/README.md: every `<kid>.jwk.json` verifies; `active` names the signer; without
 * `active`, the newest file by mtime signs (ties: greatest kid), which only holds for local directories
 * since kubelet writes every Secret file at once. Kubernetes' `..`-prefixed bookkeeping entries are skipped.
 */
export async function loadSigningKeys(dir: string): Promise<SigningKeySet> {
  const keys = new Map<string, JWK>();
  const mtimes = new Map<string, number>();
  for (const entry of (await readdir(dir)).sort()) {
    if (entry.startsWith('..') || !entry.endsWith(SIGNING_KEY_SUFFIX)) continue;
    const path = join(dir, entry);
    const jwk = JSON.parse(await readFile(path, 'utf8')) as JWK;
    const kid = await calculateJwkThumbprint(jwk, 'sha256');
    if (entry !== `${kid}${SIGNING_KEY_SUFFIX}`) throw new Error(`${path}: file name does not match the key's thumbprint ${kid}`);
    if (jwk.kty !== 'OKP' || jwk.crv !== 'Ed25519') throw new Error(`${path}: not an Ed25519 JWK`);
    keys.set(kid, { ...jwk, kid });
    mtimes.set(kid, (await stat(path)).mtimeMs);
  }
  if (keys.size === 0) throw new Error(`no signing keys (*${SIGNING_KEY_SUFFIX}) in ${dir}`);
  let activeKid: string | undefined;
  try {
    activeKid = (await readFile(join(dir, ACTIVE_SIGNING_KEY_FILE), 'utf8')).trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (activeKid !== undefined) {
    if (!keys.has(activeKid)) throw new Error(`${dir}/${ACTIVE_SIGNING_KEY_FILE} names ${activeKid}, which is not among the keys`);
  } else {
    activeKid = [...mtimes.entries()].sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0])).at(-1)![0];
  }
  return { activeKid, keys };
}
