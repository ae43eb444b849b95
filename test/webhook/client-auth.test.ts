// Only the API server may post AdmissionReviews: a forged review from a pod (no client certificate,
// a certificate from another CA, a wrong token) is refused before it is read and changes nothing;
// health and metrics stay open for probes.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { generateSigningKey, generateWebhookCertificates, writeCertificates, writeSigningKey } from '../../src/certs/generate.ts';
import { MemoryCluster } from '../../src/kube/memory.ts';
import { createCertificateAuthority, ensureWebhookClientPki, issueClientCert } from '../../src/sandbox/certs.ts';
import { parseServerConfig, startWebhook, type RunningWebhook } from '../../src/webhook/main.ts';
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
    for (const path of ['/mutate/services', '/validate/ippools', '/validate/speaker-config']) {
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
