// Only the API server may post AdmissionReviews: a forged review from a pod (no client certificate,
// a certificate from another CA, a wrong token) is refused before it is read and changes nothing;
// health and metrics stay open for probes.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { parse } from 'yaml';
import { parseCertsArgs, runCertsCommand } from '../../src/certs/command.ts';
import { generateApiServerClientCertificates, generateSigningKey, generateWebhookCertificates, writeCertificates, writeSigningKey } from '../../src/certs/generate.ts';
import { MemoryCluster } from '../../src/kube/memory.ts';
import { createCertificateAuthority, ensureWebhookClientPki, issueClientCert } from '../../src/sandbox/certs.ts';
import { parseServerConfig, startWebhook, type RunningWebhook } from '../../src/cmd/webhook.ts';
import { kustomize, tempInstall } from '../certs/helpers.ts';
import { pool } from '../helpers/state.ts';

interface Reply {
  status: number;
  json: any;
}

function post(url: string, ca: string, body: unknown, opts: { cert?: string; key?: string; token?: string } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { 'content-type': 'application/json', ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}) };
    const req = request(url, { method: body === undefined ? 'GET' : 'POST', ca, headers, ...(opts.cert ? { cert: opts.cert, key: opts.key } : {}), agent: false }, (res) => {
      let data = '';
      res.on('data', (c) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode!, json: data.startsWith('{') ? JSON.parse(data) : data }));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

const review = () => JSON.parse(readFileSync(new URL('../fixtures/admission/create-loadbalancer.json', import.meta.url), 'utf8'));

describe('admission endpoints answer the API server only', () => {
  let dir: string;
  let ca: string;
  let apiServer: { cert: string; key: string };
  let stranger: { cert: string; key: string };
  let cluster: MemoryCluster;
  let byCert: RunningWebhook;
  let byToken: RunningWebhook;
  const TOKEN = 'the-api-servers-token-0123456789';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'admitlb-client-auth-'));
    await writeCertificates(dir, await generateWebhookCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] }));
    await writeSigningKey(join(dir, 'signing'), await generateSigningKey());
    ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
    const client = await ensureWebhookClientPki(join(dir, 'client'));
    apiServer = { cert: readFileSync(client.certFile, 'utf8'), key: readFileSync(client.keyFile, 'utf8') };
    const other = await issueClientCert(await createCertificateAuthority('someone-else'), 'kube-apiserver-webhook-client');
    stranger = { cert: other.certPem, key: other.keyPem };
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
    cluster = new MemoryCluster();
    cluster.setPool(pool('default', { addresses: ['203.0.113.0/24'] }));
    cluster.setNamespace('default'); // reviews for unknown namespaces are denied
    const base = { host: '127.0.0.1', port: 0, tlsCertFile: join(dir, 'tls.crt'), tlsKeyFile: join(dir, 'tls.key'), signingKeysDir: join(dir, 'signing') };
    byCert = await startWebhook(parseServerConfig({ ...base, clientCaFile: client.caFile }), { cluster, logger: pino({ level: 'silent' }) });
    byToken = await startWebhook(parseServerConfig({ ...base, clientTokenFile: join(dir, 'token') }), { cluster, logger: pino({ level: 'silent' }) });
  });
  after(async () => {
    await byCert?.close();
    await byToken?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('--client-ca-file: no certificate or a stranger\'s is a 401 and claims nothing; the API server\'s certificate is answered', async () => {
    for (const path of ['/mutate/services', '/validate/ippools', '/validate/speaker-config', '/validate/services-status']) {
      const none = await post(`${byCert.url}${path}`, ca, review());
      assert.equal(none.status, 401, path);
      assert.equal(none.json.error, 'ADMITLB_UNAUTHENTICATED');
      assert.match(none.json.message, /^admission endpoints answer the API server only: no client certificate$/);
    }
    const wrong = await post(`${byCert.url}/mutate/services`, ca, review(), stranger);
    assert.equal(wrong.status, 401);
    assert.match(wrong.json.message, /the client certificate is not signed by the client CA/);
    const token = await post(`${byCert.url}/mutate/services`, ca, review(), { token: TOKEN });
    assert.equal(token.status, 401, 'a token is not accepted where a certificate is configured');
    assert.equal(cluster.listClaims().length, 0, 'refused reviews claim nothing');

    const ok = await post(`${byCert.url}/mutate/services`, ca, review(), apiServer);
    assert.equal(ok.status, 200);
    assert.equal(ok.json.response.allowed, true);
    assert.equal(cluster.listClaims().length, 1);
  });

  it('--client-token-file: the token is required, compared whole', async () => {
    const before = cluster.listClaims().length;
    for (const token of [undefined, 'wrong', `${TOKEN}x`, TOKEN.slice(0, -1)]) {
      const r = await post(`${byToken.url}/mutate/services`, ca, review(), token ? { token } : {});
      assert.equal(r.status, 401, String(token));
    }
    assert.equal(cluster.listClaims().length, before);
    const ok = await post(`${byToken.url}/mutate/services`, ca, { ...review(), request: { ...review().request, uid: 'u2', name: 'other' } }, { token: TOKEN });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.response.allowed, true);
  });

  it('health, readiness and metrics need no credential (kubelet probes, scrapers)', async () => {
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      const r = await post(`${byCert.url}${path}`, ca, undefined);
      assert.equal(r.status, 200, path);
    }
  });
});

// The install path: `admitlb certs` writes kube-apiserver's identity (a CA and a client certificate,
// the key inside the kubeconfig the AdmissionConfiguration names) and wires the CA into the webhook
// Deployment as --client-ca-file. What the kubeconfig carries must be what the webhook accepts.
describe('the API server identity written by `admitlb certs`', () => {
  let inst: ReturnType<typeof tempInstall>;
  let cluster: MemoryCluster;
  let webhook: RunningWebhook;
  let ca: string;
  const logs: string[] = [];

  before(async () => {
    inst = tempInstall();
    await runCertsCommand({ outDir: inst.certsDir, manifestsDir: inst.manifestsDir, dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], log: (l) => logs.push(l) });
    ca = readFileSync(join(inst.certsDir, 'ca.crt'), 'utf8');
    cluster = new MemoryCluster();
    cluster.setPool(pool('default', { addresses: ['203.0.113.0/24'] }));
    cluster.setNamespace('default'); // reviews for unknown namespaces are denied
    webhook = await startWebhook(
      parseServerConfig({
        host: '127.0.0.1',
        port: 0,
        tlsCertFile: join(inst.certsDir, 'tls.crt'),
        tlsKeyFile: join(inst.certsDir, 'tls.key'),
        signingKeysDir: join(inst.certsDir, 'signing'),
        // The Deployment's --client-ca-file is this file, through the ConfigMap admitlb-webhook-client-ca.
        clientCaFile: join(inst.certsDir, 'apiserver-client', 'ca.crt'),
      }),
      { cluster, logger: pino({ level: 'silent' }) },
    );
  });
  after(async () => {
    await webhook?.close();
    inst?.cleanup();
  });

  const dir = () => join(inst.certsDir, 'apiserver-client');

  it('writes an AdmissionConfiguration whose kubeconfig names the webhook Service and carries a certificate the webhook accepts', async () => {
    const admission = parse(readFileSync(join(dir(), 'admission-configuration.yaml'), 'utf8')) as {
      kind: string;
      plugins: { name: string; configuration: { kind: string; kubeConfigFile: string } }[];
    };
    assert.equal(admission.kind, 'AdmissionConfiguration');
    assert.deepEqual(admission.plugins.map((p) => p.name).sort(), ['MutatingAdmissionWebhook', 'ValidatingAdmissionWebhook']);
    for (const p of admission.plugins) assert.equal(p.configuration.kubeConfigFile, '/etc/kubernetes/admitlb/webhook-client.kubeconfig');

    const kubeconfigPath = join(dir(), 'webhook-client.kubeconfig');
    assert.equal(statSync(kubeconfigPath).mode & 0o777, 0o600, 'the kubeconfig holds the private key');
    assert.equal(statSync(join(dir(), 'ca.key')).mode & 0o777, 0o600);
    const kubeconfig = parse(readFileSync(kubeconfigPath, 'utf8')) as { users: { name: string; user: Record<string, string> }[] };
    assert.deepEqual(kubeconfig.users.map((u) => u.name), ['admitlb-webhook.admitlb-system.svc', 'admitlb-webhook.admitlb-system.svc:443']);
    const user = kubeconfig.users[0]!.user;
    const cert = Buffer.from(user['client-certificate-data']!, 'base64').toString();
    const key = Buffer.from(user['client-key-data']!, 'base64').toString();
    assert.equal(cert, readFileSync(join(dir(), 'client.crt'), 'utf8'));
    const x = new X509Certificate(cert);
    assert.ok(x.verify(new X509Certificate(readFileSync(join(dir(), 'ca.crt'), 'utf8')).publicKey));
    assert.equal(x.keyUsage?.includes('1.3.6.1.5.5.7.3.2'), true, 'extended key usage clientAuth');
    assert.ok(logs.some((l) => l.includes('--admission-control-config-file=/etc/kubernetes/admitlb/admission-configuration.yaml')), logs.join('\n'));

    const ok = await post(`${webhook.url}/mutate/services`, ca, review(), { cert, key });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.response.allowed, true);
    // Another identity made the same way (another cluster's, say) is not this cluster's API server.
    const other = await generateApiServerClientCertificates();
    const refused = await post(`${webhook.url}/mutate/services`, ca, { ...review(), request: { ...review().request, uid: 'u3', name: 'other' } }, { cert: other.certPem, key: other.keyPem });
    assert.equal(refused.status, 401);
    assert.equal(cluster.listClaims().length, 1);
  });

  it('a rerun keeps the identity the control plane already holds', async () => {
    const files = ['ca.crt', 'ca.key', 'client.crt', 'client.key'].map((f) => readFileSync(join(dir(), f), 'utf8'));
    const again = await runCertsCommand({ outDir: inst.certsDir, manifestsDir: inst.manifestsDir });
    assert.equal(again.apiServerClient?.caReused, true);
    assert.deepEqual(['ca.crt', 'ca.key', 'client.crt', 'client.key'].map((f) => readFileSync(join(dir(), f), 'utf8')), files);
  });

  it('refuses a half-deleted identity instead of replacing what the control plane holds', async () => {
    const broken = tempInstall();
    try {
      await runCertsCommand({ outDir: broken.certsDir, manifestsDir: broken.manifestsDir });
      rmSync(join(broken.certsDir, 'apiserver-client', 'client.key'));
      await assert.rejects(runCertsCommand({ outDir: broken.certsDir, manifestsDir: broken.manifestsDir }), /apiserver-client is incomplete/);
    } finally {
      broken.cleanup();
    }
  });

  it('--api-server-auth none: no identity, no --client-ca-file in the Deployment, and a warning', async () => {
    const open = tempInstall();
    try {
      const warned: string[] = [];
      const r = await runCertsCommand({ outDir: open.certsDir, manifestsDir: open.manifestsDir, apiServerAuth: 'none', log: (l) => warned.push(l) });
      assert.equal(r.apiServerClient, undefined);
      assert.ok(!existsSync(join(open.certsDir, 'apiserver-client')));
      assert.ok(warned.some((l) => /WARNING: --api-server-auth none/.test(l)));
      const objects = kustomize(open.manifestsDir);
      const d = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'admitlb-webhook') as unknown as { spec: { template: { spec: { containers: { args: string[] }[] } } } };
      assert.ok(!d.spec.template.spec.containers[0]!.args.some((a) => a.startsWith('--client-ca-file')));
      assert.ok(!objects.some((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('admitlb-webhook-client-ca')), 'no client CA ConfigMap without --client-ca-file');
    } finally {
      open.cleanup();
    }
  });

  it('parseCertsArgs: --api-server-auth takes client-certificate or none', () => {
    assert.equal(parseCertsArgs([]).apiServerAuth, 'client-certificate');
    assert.equal(parseCertsArgs(['--api-server-auth', 'none']).apiServerAuth, 'none');
    assert.throws(() => parseCertsArgs(['--api-server-auth', 'token']), /--api-server-auth must be one of client-certificate, none, got token/);
  });
});
