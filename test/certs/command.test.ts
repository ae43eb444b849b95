// runCertsCommand against a temp copy of webhook-manifests/, checked through `kubectl kustomize`.
import { strict as assert } from 'node:assert';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { JWK } from 'jose';
import { PUBLIC_KEYS_CONFIGMAP_NAME, parseCertsArgs, runCertsCommand } from '../../src/certs/command.ts';
import { VerificationError, keySetFromJwks, loadKeySet, signAssignment, verifyAssignment, type Assignment } from '../../src/signing/assignment.ts';
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
      'ValidatingWebhookConfiguration/admitlb/claims.services.admitlb.io',
      'ValidatingWebhookConfiguration/admitlb/ippools.admitlb.io',
      'ValidatingWebhookConfiguration/admitlb/speaker-config.admitlb.io',
      'ValidatingWebhookConfiguration/admitlb/services-status.admitlb.io',
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
    assert.equal(Buffer.from(dataOf(signing).active!, 'base64').toString().trim(), kid);
    const jwk = JSON.parse(Buffer.from(dataOf(signing)[`${kid}.jwk.json`]!, 'base64').toString()) as Record<string, string>;
    assert.equal(jwk.kid, kid);
    assert.ok(jwk.d, 'the Secret holds the private key (the webhook signs)');
    const jwks = JSON.parse(readFileSync(join(inst.certsDir, 'jwks.json'), 'utf8')) as { keys: Record<string, string>[] };
    assert.deepEqual(jwks.keys.map((k) => k.kid), [kid]);
    assert.equal(jwks.keys[0]?.d, undefined, 'jwks.json is public');

    const hb = find(objects, 'Secret', 'admitlb-speaker-heartbeat');
    assert.deepEqual(Object.keys(dataOf(hb)), ['key']);
    assert.equal(Buffer.from(unb64(dataOf(hb).key!).trim(), 'base64').length, 32);
    assert.equal(statSync(join(inst.certsDir, 'heartbeat', 'key')).mode & 0o777, 0o600);
  });

  it('the heartbeat key is kept across runs; a rotation keeps the old one as `previous`', async () => {
    const key = () => readFileSync(join(inst.certsDir, 'heartbeat', 'key'), 'utf8');
    const k1 = key();
    await runCertsCommand(opts);
    assert.equal(key(), k1);
    await runCertsCommand({ ...opts, rotateHeartbeatKey: true });
    const hb = find(kustomize(inst.manifestsDir), 'Secret', 'admitlb-speaker-heartbeat');
    assert.notEqual(key(), k1);
    assert.deepEqual(Object.keys(dataOf(hb)).sort(), ['key', 'previous']);
    assert.equal(unb64(dataOf(hb).previous!), k1);
    assert.equal(unb64(dataOf(hb).key!), key());
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
    assert.equal(Buffer.from(dataOf(signing).active!, 'base64').toString().trim(), result.activeSigningKid);
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

describe("the speakers' public keys (ConfigMap admitlb-signing-public-keys)", () => {
  const inst = tempInstall();
  const dirs: string[] = [];
  after(() => {
    inst.cleanup();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
  const opts = { outDir: inst.certsDir, manifestsDir: inst.manifestsDir };
  const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
  const assignment: Assignment = { namespace: 'shop', name: 'web', ips: ['203.0.113.10', '2001:db8:100::10'], pool: 'default', externalIPs: [] };

  /** The ConfigMap the speaker DaemonSet mounts, followed through kustomize's name reference. */
  const mounted = (objects: K8sObject[]) => {
    const pod = (find(objects, 'DaemonSet', 'admitlb-speaker').spec as { template: { spec: { volumes: { name: string; configMap?: { name: string } }[] } } }).template.spec;
    const name = pod.volumes.find((v) => v.name === 'signing-public-keys')?.configMap?.name;
    assert.ok(typeof name === 'string' && name.startsWith(`${PUBLIC_KEYS_CONFIGMAP_NAME}-`), `hash-suffixed name: ${name}`);
    const cm = find(objects, 'ConfigMap', name);
    assert.equal(cm.metadata.namespace, 'admitlb-system');
    // The other ConfigMap is the API server's client CA (for the webhook, not the speakers).
    assert.deepEqual(objects.filter((o) => o.kind === 'ConfigMap' && o.metadata.name !== name).map((o) => o.metadata.name.replace(/-[a-z0-9]+$/, '')), ['admitlb-webhook-client-ca']);
    return { name, data: cm.data as Record<string, string>, cm };
  };
  /** What kubelet does with a ConfigMap volume: one file per key. */
  const materialize = (data: Record<string, string>) => {
    const dir = mkdtempSync(join(tmpdir(), 'admitlb-public-keys-'));
    dirs.push(dir);
    for (const [k, v] of Object.entries(data)) writeFileSync(join(dir, k), v);
    return dir;
  };
  const privateKeys = () => loadKeySet(join(inst.certsDir, 'signing'));

  let firstName = '';
  let firstToken = '';
  it('holds every public key and `active`, and no private key material', async () => {
    const result = await runCertsCommand(opts);
    const kid = result.activeSigningKid;
    const objects = kustomize(inst.manifestsDir);
    const { name, data, cm } = mounted(objects);
    firstName = name;
    assert.deepEqual(Object.keys(data).sort(), [`${kid}.jwk.json`, 'active'].sort());
    assert.equal(data.active?.trim(), kid);
    const jwk = JSON.parse(data[`${kid}.jwk.json`]!) as Record<string, unknown>;
    for (const m of PRIVATE_MEMBERS) assert.equal(jwk[m], undefined, `no "${m}"`);
    assert.deepEqual(Object.keys(jwk).sort(), ['alg', 'crv', 'kid', 'kty', 'use', 'x']);
    // The private scalar appears nowhere in the ConfigMap (nor base64-encoded in binaryData).
    const privateJwk = JSON.parse(readFileSync(join(inst.certsDir, 'signing', `${kid}.jwk.json`), 'utf8')) as { d: string; x: string };
    assert.ok(privateJwk.d);
    assert.equal(jwk.x, privateJwk.x, 'the public half of the signing key');
    assert.ok(!JSON.stringify(cm).includes(privateJwk.d));
    assert.equal(cm.binaryData, undefined);
    // Nor in the files generated/ feeds it from.
    for (const f of readdirSync(join(inst.manifestsDir, 'generated', 'public-keys'))) {
      assert.ok(!readFileSync(join(inst.manifestsDir, 'generated', 'public-keys', f), 'utf8').includes(privateJwk.d), f);
    }
  });

  it('verifies an assignment signed with the private key, and cannot sign one', async () => {
    const { data } = mounted(kustomize(inst.manifestsDir));
    const signer = await privateKeys();
    firstToken = await signAssignment(signer, assignment);
    // As the speaker loads them (mounted directory) and straight from the JWKs.
    const fromDir = await loadKeySet(materialize(data));
    const fromJwks = await keySetFromJwks(
      Object.entries(data)
        .filter(([k]) => k !== 'active')
        .map(([, v]) => ({ jwk: JSON.parse(v) as JWK })),
      data.active?.trim(),
    );
    for (const verifier of [fromDir, fromJwks]) {
      const verified = await verifyAssignment(verifier, firstToken, { namespace: 'shop', name: 'web' });
      assert.deepEqual(verified.ips, assignment.ips);
      assert.equal(verified.kid, signer.signingKid);
      assert.equal(verifier.signingKid, '', 'no signer among public keys');
      await assert.rejects(verifier.sign(new Uint8Array([1])), /no private signing key/);
      await assert.rejects(signAssignment(verifier, assignment), /no private signing key/);
      // A forged payload under the same header does not verify.
      const [h, , sig] = firstToken.split('.');
      const forged = `${h}.${Buffer.from(JSON.stringify({ v: 1, ns: 'shop', n: 'web', ips: ['198.51.100.1'], pool: 'default', eips: [], iat: 1 })).toString('base64url')}.${sig}`;
      await assert.rejects(verifyAssignment(verifier, forged, { namespace: 'shop', name: 'web' }), (e: unknown) => e instanceof VerificationError && e.reason === 'bad-signature');
    }
  });

  it('an unchanged key set keeps the name (no speaker restart); a rotation renames it, so the DaemonSet rolls', async () => {
    await runCertsCommand(opts);
    assert.equal(mounted(kustomize(inst.manifestsDir)).name, firstName);
    const old = (await privateKeys()).signingKid;
    const rotated = await runCertsCommand({ ...opts, rotateSigningKey: true });
    const { name, data } = mounted(kustomize(inst.manifestsDir));
    assert.notEqual(name, firstName);
    assert.deepEqual(Object.keys(data).sort(), [`${old}.jwk.json`, `${rotated.activeSigningKid}.jwk.json`, 'active'].sort());
    assert.equal(data.active?.trim(), rotated.activeSigningKid);
    const verifier = await loadKeySet(materialize(data));
    assert.equal((await verifyAssignment(verifier, firstToken, { namespace: 'shop', name: 'web' })).kid, old, 'old signatures still verify');
    const fresh = await signAssignment(await privateKeys(), assignment);
    assert.equal((await verifyAssignment(verifier, fresh, { namespace: 'shop', name: 'web' })).kid, rotated.activeSigningKid);
  });

  it('is generated in cert-manager mode too', async () => {
    const result = await runCertsCommand({ ...opts, certManager: true });
    const { data } = mounted(kustomize(inst.manifestsDir));
    assert.equal(data.active?.trim(), result.activeSigningKid);
    for (const [k, v] of Object.entries(data)) if (k !== 'active') assert.equal((JSON.parse(v) as JWK).d, undefined, k);
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
      apiServerAuth: 'client-certificate',
      rotateHeartbeatKey: false,
    });
    assert.equal(parseCertsArgs(['--rotate-heartbeat-key']).rotateHeartbeatKey, true);
    assert.throws(() => parseCertsArgs(['--days', 'x']), /positive integer/);
    assert.throws(() => parseCertsArgs(['--bogus']));
  });
});
