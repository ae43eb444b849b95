// Certificate generation for the API server double and for test webhook servers.
// ECDSA P-256 keeps generation fast (RSA-2048 takes ~100 ms per key).
import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { webcrypto } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';

x509.cryptoProvider.set(webcrypto as unknown as Crypto);

const ecAlg = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface CertificateAuthority {
  certPem: string;
  keyPem: string;
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
}

export interface ServingCert {
  certPem: string;
  keyPem: string;
}

function keyToPem(pkcs8: ArrayBuffer): string {
  return x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
}

function randomSerial(): string {
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(8))).toString('hex').replace(/^[89a-f]/, '1');
}

export async function createCertificateAuthority(commonName: string): Promise<CertificateAuthority> {
  const keys = (await webcrypto.subtle.generateKey(ecAlg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${commonName}`,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 10 * 365 * 86400_000),
    signingAlgorithm: ecAlg,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  const keyPem = keyToPem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return { certPem: cert.toString('pem'), keyPem, cert, keys };
}

async function importCertificateAuthority(certPem: string, keyPem: string): Promise<CertificateAuthority> {
  const cert = new x509.X509Certificate(certPem);
  const der = x509.PemConverter.decodeFirst(keyPem);
  const privateKey = await webcrypto.subtle.importKey('pkcs8', der, ecAlg, true, ['sign']);
  const publicKey = await cert.publicKey.export(ecAlg, ['verify']);
  return { certPem, keyPem, cert, keys: { privateKey, publicKey } as CryptoKeyPair };
}

/** A leaf certificate signed by `ca`: the parts serving and client certificates share. */
async function issueLeaf(ca: CertificateAuthority, subject: string, usage: x509.ExtendedKeyUsage, extra: x509.Extension[]): Promise<ServingCert> {
  const keys = (await webcrypto.subtle.generateKey(ecAlg, true, ['sign', 'verify'])) as CryptoKeyPair;
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject,
    issuer: ca.cert.subject,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 5 * 365 * 86400_000),
    signingAlgorithm: ecAlg,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension([usage], false),
      ...extra,
      await x509.AuthorityKeyIdentifierExtension.create(ca.keys.publicKey),
    ],
  });
  const keyPem = keyToPem(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  return { certPem: cert.toString('pem'), keyPem };
}

/** Issues a serving certificate for the given DNS names and IP addresses, signed by `ca`. */
export async function issueServingCert(ca: CertificateAuthority, hosts: string[]): Promise<ServingCert> {
  const san = hosts.map((h) => (/^[\d.]+$|:/.test(h) ? { type: 'ip' as const, value: h } : { type: 'dns' as const, value: h }));
  return issueLeaf(ca, `CN=${hosts[0] ?? 'localhost'}`, x509.ExtendedKeyUsage.serverAuth, [new x509.SubjectAlternativeNameExtension(san, false)]);
}

/** Issues a client certificate (CN = user, O = groups, as kube-apiserver reads them), signed by `ca`. */
export async function issueClientCert(ca: CertificateAuthority, commonName: string, organizations: string[] = []): Promise<ServingCert> {
  return issueLeaf(ca, [`CN=${commonName}`, ...organizations.map((o) => `O=${o}`)].join(', '), x509.ExtendedKeyUsage.clientAuth, []);
}

/** Loads the CA and serving certificate from dataDir, generating and persisting them on first use. */
export async function loadOrCreateServerPki(dataDir: string, hosts: string[]): Promise<{ ca: CertificateAuthority; serving: ServingCert }> {
  const pkiDir = join(dataDir, 'pki');
  mkdirSync(pkiDir, { recursive: true });
  const caCrt = join(pkiDir, 'ca.crt');
  const caKey = join(pkiDir, 'ca.key');
  let ca: CertificateAuthority;
  if (existsSync(caCrt) && existsSync(caKey)) {
    ca = await importCertificateAuthority(readFileSync(caCrt, 'utf8'), readFileSync(caKey, 'utf8'));
  } else {
    ca = await createCertificateAuthority('admitlb-sandbox-ca');
    writeFileSync(caKey, ca.keyPem, { mode: 0o600 });
    writeFileSync(caCrt, ca.certPem);
  }
  // The serving cert is reissued per start: the host/port may change, the CA (what clients trust) does not.
  const serving = await issueServingCert(ca, hosts);
  writeFileSync(join(pkiDir, 'apiserver.crt'), serving.certPem);
  writeFileSync(join(pkiDir, 'apiserver.key'), serving.keyPem, { mode: 0o600 });
  return { ca, serving };
}

export interface WebhookClientPki {
  /** the CA admitlb's webhook trusts for callers (--client-ca-file) */
  caFile: string;
  certFile: string;
  keyFile: string;
}

/**
 * The identity an API server presents to admission webhooks: a client certificate from a CA of its
 * own, so that a webhook's --client-ca-file trusts exactly the API server and not every holder of a
 * certificate from the cluster CA. Created once in <pkiDir>, kept across restarts. Both the double and
 * the real control plane use it.
 */
export async function ensureWebhookClientPki(pkiDir: string): Promise<WebhookClientPki> {
  mkdirSync(pkiDir, { recursive: true });
  const out = { caFile: join(pkiDir, 'webhook-client-ca.crt'), certFile: join(pkiDir, 'webhook-client.crt'), keyFile: join(pkiDir, 'webhook-client.key') };
  if (!existsSync(out.caFile) || !existsSync(out.certFile) || !existsSync(out.keyFile)) {
    const clientCa = await createCertificateAuthority('admitlb-sandbox-webhook-client-ca');
    const client = await issueClientCert(clientCa, 'kube-apiserver-webhook-client');
    writeFileSync(join(pkiDir, 'webhook-client-ca.key'), clientCa.keyPem, { mode: 0o600 });
    writeFileSync(out.caFile, clientCa.certPem);
    writeFileSync(out.keyFile, client.keyPem, { mode: 0o600 });
    writeFileSync(out.certFile, client.certPem);
  }
  return out;
}
