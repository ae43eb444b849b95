import { strict as assert } from 'node:assert';
import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CompactSign, calculateJwkThumbprint, compactVerify, importJWK } from 'jose';
import {
  DEFAULT_WEBHOOK_DNS_NAMES,
  generateSigningKey,
  generateWebhookCertificates,
  loadSigningKeys,
  writeCertificates,
  writeSigningKey,
} from '../../src/certs/generate.ts';

const DAY = 86_400_000;
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

describe('generateWebhookCertificates', async () => {
  const certs = await generateWebhookCertificates({ dnsNames: ['webhook.example.test'], ipAddresses: ['192.0.2.10', '2001:db8::10'] });
  const ca = new X509Certificate(certs.caCertPem);
  const leaf = new X509Certificate(certs.certPem);

  it('creates a self-signed ECDSA P-256 CA valid for ten years', () => {
    assert.equal(ca.ca, true);
    assert.ok(ca.checkIssued(ca), 'CA is self-issued');
    assert.ok(ca.verify(ca.publicKey), 'CA is self-signed');
    assert.equal(ca.publicKey.asymmetricKeyType, 'ec');
    assert.equal(ca.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    const years = (Date.parse(ca.validTo) - Date.now()) / (365 * DAY);
    assert.ok(years > 9.9 && years <= 10.01, `CA lifetime ${years} years`);
    assert.ok(ca.checkPrivateKey(createPrivateKey(certs.caKeyPem)), 'CA key matches');
  });

  it('issues a serving certificate that chains to the CA', () => {
    assert.equal(leaf.ca, false);
    assert.ok(leaf.checkIssued(ca), 'issued by the CA');
    assert.ok(leaf.verify(ca.publicKey), 'signature verifies with the CA key');
    const other = new X509Certificate(certs.certPem);
    assert.equal(other.fingerprint256, leaf.fingerprint256);
    assert.ok(leaf.checkPrivateKey(createPrivateKey(certs.keyPem)), 'serving key matches');
    assert.equal(leaf.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
    const days = (Date.parse(leaf.validTo) - Date.now()) / DAY;
    assert.ok(days > 364.9 && days <= 365.01, `serving lifetime ${days} days`);
    assert.ok(Date.parse(leaf.validFrom) < Date.now(), 'already valid (backdated for clock skew)');
  });

  it('carries the Service names plus the extra DNS names and IPs as SANs, and serverAuth EKU', () => {
    const san = leaf.subjectAltName ?? '';
    for (const name of [...DEFAULT_WEBHOOK_DNS_NAMES, 'webhook.example.test']) assert.ok(san.includes(`DNS:${name}`), `${name} in ${san}`);
    assert.ok(san.includes('IP Address:192.0.2.10'), san);
    assert.ok(/IP Address:2001:DB8:(0:){5}10/i.test(san), san);
    assert.equal(leaf.checkHost('admitlb-webhook.admitlb-system.svc'), 'admitlb-webhook.admitlb-system.svc');
    assert.equal(leaf.checkHost('admitlb-webhook.admitlb-system.svc.cluster.local'), 'admitlb-webhook.admitlb-system.svc.cluster.local');
    assert.equal(leaf.checkIP('192.0.2.10'), '192.0.2.10');
    assert.equal(leaf.checkHost('evil.example.test'), undefined);
    assert.deepEqual(leaf.keyUsage, [SERVER_AUTH]);
  });

  it('writes PKCS#8 keys that Node loads', () => {
    assert.match(certs.keyPem, /^-----BEGIN PRIVATE KEY-----/);
    assert.match(certs.caKeyPem, /^-----BEGIN PRIVATE KEY-----/);
    assert.equal(createPrivateKey(certs.keyPem).asymmetricKeyType, 'ec');
  });

  it('reuses a given CA (also from a SEC1 key) and never outlives it', async () => {
    const sec1 = createPrivateKey(certs.caKeyPem).export({ format: 'pem', type: 'sec1' }).toString();
    const again = await generateWebhookCertificates({ ca: { certPem: certs.caCertPem, keyPem: sec1 }, days: 5000 });
    assert.equal(again.caCertPem, certs.caCertPem);
    const leaf2 = new X509Certificate(again.certPem);
    assert.ok(leaf2.verify(ca.publicKey));
    assert.notEqual(leaf2.serialNumber, leaf.serialNumber);
    assert.ok(Date.parse(leaf2.validTo) <= Date.parse(ca.validTo), 'capped at the CA expiry');
  });

  it('rejects a CA whose key does not match, a non-CA, and bad SANs', async () => {
    const other = await generateWebhookCertificates();
    await assert.rejects(generateWebhookCertificates({ ca: { certPem: certs.caCertPem, keyPem: other.caKeyPem } }), /does not match/);
    await assert.rejects(generateWebhookCertificates({ ca: { certPem: certs.certPem, keyPem: certs.keyPem } }), /not a CA/);
    await assert.rejects(generateWebhookCertificates({ ipAddresses: ['not-an-ip'] }), /not an IP/);
    await assert.rejects(generateWebhookCertificates({ dnsNames: ['bad name'] }), /invalid DNS name/);
    await assert.rejects(generateWebhookCertificates({ days: 0 }), /positive/);
  });
});

describe('writeCertificates', () => {
  const dir = mkdtempSync(join(tmpdir(), 'admitlb-write-certs-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes ca.crt, ca.key, tls.crt, tls.key with private keys 0600', async () => {
    const certs = await generateWebhookCertificates();
    await writeCertificates(join(dir, 'out'), certs);
    assert.equal(readFileSync(join(dir, 'out', 'tls.crt'), 'utf8'), certs.certPem);
    assert.equal(readFileSync(join(dir, 'out', 'ca.crt'), 'utf8'), certs.caCertPem);
    assert.equal(readFileSync(join(dir, 'out', 'tls.key'), 'utf8'), certs.keyPem);
    assert.equal(statSync(join(dir, 'out', 'tls.key')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'out', 'ca.key')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dir, 'out', 'tls.crt')).mode & 0o077 & 0o022, 0, 'cert not group/world writable');
  });
});

describe('signing keys', () => {
  const dir = mkdtempSync(join(tmpdir(), 'admitlb-signing-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('generates an Ed25519 JWK whose kid is its RFC 7638 thumbprint and that signs', async () => {
    const key = await generateSigningKey();
    assert.equal(key.privateJwk.kty, 'OKP');
    assert.equal(key.privateJwk.crv, 'Ed25519');
    assert.equal(key.privateJwk.alg, 'EdDSA');
    assert.ok(key.privateJwk.d, 'private part present');
    assert.equal(key.publicJwk.d, undefined);
    assert.equal(key.kid, await calculateJwkThumbprint(key.publicJwk));
    assert.match(key.kid, /^[A-Za-z0-9_-]{43}$/, 'usable as a Secret data key');
    const jws = await new CompactSign(new TextEncoder().encode('hello'))
      .setProtectedHeader({ alg: 'EdDSA', kid: key.kid })
      .sign(await importJWK(key.privateJwk, 'EdDSA'));
    const { payload } = await compactVerify(jws, await importJWK(key.publicJwk, 'EdDSA'));
    assert.equal(new TextDecoder().decode(payload), 'hello');
    // And Node reads the same key material.
    assert.equal(createPublicKey({ key: key.publicJwk as import('node:crypto').JsonWebKey, format: 'jwk' }).asymmetricKeyType, 'ed25519');
  });

  it('writes <kid>.jwk.json (0600) and the active marker; all keys load, active one signs', async () => {
    const k1 = await generateSigningKey();
    const k2 = await generateSigningKey();
    const p1 = await writeSigningKey(dir, k1);
    await writeSigningKey(dir, k2);
    assert.equal(p1, join(dir, `${k1.kid}.jwk.json`));
    assert.equal(statSync(p1).mode & 0o777, 0o600);
    assert.equal(readFileSync(join(dir, 'active'), 'utf8').trim(), k2.kid);
    let set = await loadSigningKeys(dir);
    assert.equal(set.activeKid, k2.kid);
    assert.deepEqual([...set.keys.keys()].sort(), [k1.kid, k2.kid].sort());

    // The marker wins over mtimes.
    writeFileSync(join(dir, 'active'), `${k1.kid}\n`);
    assert.equal((await loadSigningKeys(dir)).activeKid, k1.kid);

    // Without the marker, the newest file by mtime signs.
    rmSync(join(dir, 'active'));
    utimesSync(p1, new Date(), new Date(Date.now() + 60_000));
    set = await loadSigningKeys(dir);
    assert.equal(set.activeKid, k1.kid);
  });

  it('refuses a file whose name is not its thumbprint, and an active marker naming no key', async () => {
    const d2 = join(dir, 'bad');
    const k = await generateSigningKey();
    await writeSigningKey(d2, k);
    writeFileSync(join(d2, 'active'), 'nope\n');
    await assert.rejects(loadSigningKeys(d2), /not among the keys/);
    rmSync(join(d2, 'active'));
    writeFileSync(join(d2, 'AAAA.jwk.json'), JSON.stringify(k.privateJwk));
    await assert.rejects(loadSigningKeys(d2), /does not match the key's thumbprint/);
  });
});
