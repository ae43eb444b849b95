// runCertsCommand against a temp copy of webhook-manifests/, checked through `kubectl kustomize`.
import { strict as assert } from 'node:assert';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parseCertsArgs, runCertsCommand } from '../../src/certs/command.ts';
import { find, kustomize, tempInstall, type K8sObject } from './helpers.ts';

type Webhook = { name: string; clientConfig: { caBundle?: string; service?: { name: string; namespace: string; path: string } } };
const webhooksOf = (o: K8sObject) => o.webhooks as Webhook[];
const dataOf = (o: K8sObject) => o.data as Record<string, string>;
const b64 = (s: string) => Buffer.from(s).toString('base64');
/** kustomize may wrap long base64 values; compare what the API server decodes. */
const unb64 = (s: string | undefined) => Buffer.from(s ?? '', 'base64').toString();

describe('runCertsCommand', () => {
  const inst = tempInstall();
  after(() => inst.cleanup());
  const opts = { outDir: inst.certsDir, manifestsDir: inst.manifestsDir };

  it('without a run, kustomize refuses to render (no half-configured install)', () => {
    assert.throws(() => kustomize(inst.manifestsDir));
  });

  let firstCa = '';
  it('writes certs/ and a generated component that kustomize renders into both configurations and two Secrets', async () => {
    const logs: string[] = [];
    const result = await runCertsCommand({ ...opts, dnsNames: ['admitlb.example.test'], ipAddresses: ['192.0.2.7'], log: (l) => logs.push(l) });
    assert.equal(result.tls?.caReused, false);
    assert.equal(result.signingKeyCreated, true);
    assert.deepEqual(result.patchedWebhooks, [
      'MutatingWebhookConfiguration/admitlb/services.admitlb.io',
      'ValidatingWebhookConfiguration/admitlb/ippools.admitlb.io',
      'ValidatingWebhookConfiguration/admitlb/speaker-config.admitlb.io',
    ]);
    assert.ok(logs.length >= 3);
    for (const f of ['ca.crt', 'ca.key', 'tls.crt', 'tls.key', 'jwks.json']) statSync(join(inst.certsDir, f));
    for (const f of ['ca.key', 'tls.key']) assert.equal(statSync(join(inst.certsDir, f)).mode & 0o777, 0o600, f);
    assert.equal(statSync(join(inst.manifestsDir, 'generated', 'tls.key')).mode & 0o777, 0o600);
    const kid = result.activeSigningKid;
    assert.equal(statSync(join(inst.certsDir, 'signing', `${kid}.jwk.json`)).mode & 0o777, 0o600);

    const caPem = readFileSync(join(inst.certsDir, 'ca.crt'), 'utf8');
    const tlsPem = readFileSync(join(inst.certsDir, 'tls.crt'), 'utf8');
    firstCa = caPem;
    assert.equal(result.tls?.caBundle, b64(caPem));
    const leaf = new X509Certificate(tlsPem);
    assert.ok(leaf.verify(new X509Certificate(caPem).publicKey));
    assert.match(leaf.subjectAltName ?? '', /DNS:admitlb\.example\.test/);
    assert.match(leaf.subjectAltName ?? '', /IP Address:192\.0\.2\.7/);

    const objects = kustomize(inst.manifestsDir);
    for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
      const cfg = find(objects, kind, 'admitlb');
      for (const w of webhooksOf(cfg)) {
        assert.equal(w.clientConfig.caBundle, b64(caPem), `${kind} ${w.name} caBundle`);
        assert.equal(w.clientConfig.service?.name, 'admitlb-webhook', 'patch merged, service kept');
      }
    }
    const tls = find(objects, 'Secret', 'admitlb-webhook-tls');
    assert.equal(tls.type, 'kubernetes.io/tls');
    assert.equal(tls.metadata.namespace, 'admitlb-system');
    assert.equal(unb64(dataOf(tls)['tls.crt']), tlsPem);
    assert.equal(unb64(dataOf(tls)['tls.key']), readFileSync(join(inst.certsDir, 'tls.key'), 'utf8'));
    assert.equal(unb64(dataOf(tls)['ca.crt']), caPem);

    const signing = find(objects, 'Secret', 'admitlb-signing-keys');
    assert.equal(signing.metadata.namespace, 'admitlb-system');
    assert.deepEqual(Object.keys(dataOf(signing)).sort(), [`${kid}.jwk.json`, 'active'].sort());
    assert.equal(Buffer.from(dataOf(signing)['active']!, 'base64').toString().trim(), kid);
    const jwk = JSON.parse(Buffer.from(dataOf(signing)[`${kid}.jwk.json`]!, 'base64').toString()) as Record<string, string>;
    assert.equal(jwk.kid, kid);
    assert.ok(jwk.d, 'the Secret holds the private key (the webhook signs)');
    const jwks = JSON.parse(readFileSync(join(inst.certsDir, 'jwks.json'), 'utf8')) as { keys: Record<string, string>[] };
    assert.deepEqual(jwks.keys.map((k) => k.kid), [kid]);
    assert.equal(jwks.keys[0]?.d, undefined, 'jwks.json is public');
  });

  it('a second run reuses the CA (caBundle unchanged) but issues a new serving certificate', async () => {
    const before = readFileSync(join(inst.certsDir, 'tls.crt'), 'utf8');
    const result = await runCertsCommand(opts);
    assert.equal(result.tls?.caReused, true);
    assert.equal(result.signingKeyCreated, false);
    assert.equal(readFileSync(join(inst.certsDir, 'ca.crt'), 'utf8'), firstCa);
    assert.notEqual(readFileSync(join(inst.certsDir, 'tls.crt'), 'utf8'), before);
    const cfg = find(kustomize(inst.manifestsDir), 'MutatingWebhookConfiguration', 'admitlb');
    assert.equal(webhooksOf(cfg)[0]?.clientConfig.caBundle, b64(firstCa));
  });

  it('rotating the signing key keeps the old one for verification and activates the new one', async () => {
    const old = (await runCertsCommand(opts)).activeSigningKid;
    const result = await runCertsCommand({ ...opts, rotateSigningKey: true });
    assert.notEqual(result.activeSigningKid, old);
    assert.deepEqual(result.signingKids, [old, result.activeSigningKid].sort());
    const signing = find(kustomize(inst.manifestsDir), 'Secret', 'admitlb-signing-keys');
    assert.deepEqual(Object.keys(dataOf(signing)).sort(), [`${old}.jwk.json`, `${result.activeSigningKid}.jwk.json`, 'active'].sort());
    assert.equal(Buffer.from(dataOf(signing)['active']!, 'base64').toString().trim(), result.activeSigningKid);
  });

  it('--force creates a new CA and the caBundle follows', async () => {
    const result = await runCertsCommand({ ...opts, force: true });
    assert.equal(result.tls?.caReused, false);
    const caPem = readFileSync(join(inst.certsDir, 'ca.crt'), 'utf8');
    assert.notEqual(caPem, firstCa);
    const cfg = find(kustomize(inst.manifestsDir), 'ValidatingWebhookConfiguration', 'admitlb');
    assert.equal(webhooksOf(cfg)[0]?.clientConfig.caBundle, b64(caPem));
  });

  it('cert-manager mode: no TLS Secret, no static caBundle, Issuers + Certificate + inject-ca-from, signing keys kept', async () => {
    const result = await runCertsCommand({ ...opts, certManager: true });
    assert.equal(result.tls, undefined);
    const objects = kustomize(inst.manifestsDir);
    assert.equal(objects.find((o) => o.kind === 'Secret' && o.metadata.name === 'admitlb-webhook-tls'), undefined);
    find(objects, 'Secret', 'admitlb-signing-keys');
    for (const kind of ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration']) {
      const cfg = find(objects, kind, 'admitlb');
      assert.equal(cfg.metadata.annotations?.['cert-manager.io/inject-ca-from'], 'admitlb-system/admitlb-webhook-tls');
      for (const w of webhooksOf(cfg)) assert.equal(w.clientConfig.caBundle, undefined);
    }
    const cert = find(objects, 'Certificate', 'admitlb-webhook-tls');
    const spec = cert.spec as { secretName: string; dnsNames: string[]; issuerRef: { name: string } };
    assert.equal(spec.secretName, 'admitlb-webhook-tls');
    assert.deepEqual(spec.dnsNames, [
      'admitlb-webhook',
      'admitlb-webhook.admitlb-system',
      'admitlb-webhook.admitlb-system.svc',
      'admitlb-webhook.admitlb-system.svc.cluster.local',
    ]);
    const issuer = find(objects, 'Issuer', spec.issuerRef.name);
    assert.ok((issuer.spec as { ca?: { secretName: string } }).ca, 'serving cert comes from a CA issuer');
    const caCert = find(objects, 'Certificate', (issuer.spec as { ca: { secretName: string } }).ca.secretName);
    assert.equal((caCert.spec as { isCA: boolean }).isCA, true);
    find(objects, 'Issuer', 'admitlb-selfsigned');
    for (const o of objects.filter((o) => o.apiVersion.startsWith('cert-manager.io/'))) assert.equal(o.metadata.namespace, 'admitlb-system');
    // Back to self-managed works too.
    await runCertsCommand(opts);
    find(kustomize(inst.manifestsDir), 'Secret', 'admitlb-webhook-tls');
  });

  it('refuses to overwrite a generated/ directory it did not write', async () => {
    const other = tempInstall();
    try {
      mkdirSync(join(other.manifestsDir, 'generated'));
      writeFileSync(join(other.manifestsDir, 'generated', 'kustomization.yaml'), 'kind: Component\n');
      await assert.rejects(runCertsCommand({ outDir: other.certsDir, manifestsDir: other.manifestsDir }), /not written by admitlb certs/);
      assert.deepEqual(readdirSync(join(other.manifestsDir, 'generated')), ['kustomization.yaml']);
    } finally {
      other.cleanup();
    }
  });

  it('refuses a CA it cannot reuse instead of silently replacing it', async () => {
    const other = tempInstall();
    try {
      await runCertsCommand({ outDir: other.certsDir, manifestsDir: other.manifestsDir });
      writeFileSync(join(other.certsDir, 'ca.key'), readFileSync(join(inst.certsDir, 'ca.key')));
      await assert.rejects(runCertsCommand({ outDir: other.certsDir, manifestsDir: other.manifestsDir }), /cannot reuse the CA.*--force/);
    } finally {
      other.cleanup();
    }
  });
});

describe('parseCertsArgs', () => {
  it('maps flags to options', () => {
    assert.deepEqual(parseCertsArgs(['--dns-name=a.example.test,b.example.test', '--ip-address', '192.0.2.1', '--force', '--days', '90']), {
      outDir: undefined,
      manifestsDir: undefined,
      dnsNames: ['a.example.test', 'b.example.test'],
      ipAddresses: ['192.0.2.1'],
      days: 90,
      force: true,
      certManager: false,
      rotateSigningKey: false,
    });
    assert.throws(() => parseCertsArgs(['--days', 'x']), /positive integer/);
    assert.throws(() => parseCertsArgs(['--bogus']));
  });
});
