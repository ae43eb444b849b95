import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import pino from 'pino';
import { generateWebhookCertificates, writeCertificates, generateSigningKey, writeSigningKey } from '../../src/certs/generate.ts';
import { parseServerConfig, startWebhook } from '../../src/cmd/webhook.ts';
import { MemoryCluster } from '../../src/kube/memory.ts';
import { pool } from '../helpers/state.ts';

function post(url: string, ca: string, body: unknown): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', ca, headers: { 'content-type': 'application/json' }, servername: 'localhost' }, (res) => {
      let data = '';
      res.on('data', (c) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(data) }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

describe('admitlb webhook over HTTPS', () => {
  it('serves admission over TLS with the generated certificates', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'admitlb-server-'));
    try {
      await writeCertificates(dir, await generateWebhookCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] }));
      await writeSigningKey(join(dir, 'signing'), await generateSigningKey());
      const cluster = new MemoryCluster();
      cluster.setPool(pool('default', { addresses: ['203.0.113.0/24'] }));
      cluster.setNamespace('default'); // reviews for unknown namespaces are denied
      const config = parseServerConfig({ host: '127.0.0.1', port: 0, tlsCertFile: join(dir, 'tls.crt'), tlsKeyFile: join(dir, 'tls.key'), signingKeysDir: join(dir, 'signing') });
      const running = await startWebhook(config, { cluster, logger: pino({ level: 'silent' }) });
      try {
        const review = JSON.parse(readFileSync(new URL('../fixtures/admission/create-loadbalancer.json', import.meta.url), 'utf8'));
        const url = running.url.replace('127.0.0.1', 'localhost');
        const res = await post(`${url}/mutate/services`, readFileSync(join(dir, 'ca.crt'), 'utf8'), review);
        assert.equal(res.status, 200);
        assert.equal(res.json.response.allowed, true);
        assert.equal(res.json.response.patchType, 'JSONPatch');
        assert.equal(cluster.listClaims()[0]!.spec.address, '203.0.113.0');
      } finally {
        await running.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('invalid configuration exits non-zero with a message naming the field', () => {
    const res = spawnSync(process.execPath, ['bin/admitlb.js', 'webhook', '--port', '70000', '--tls-cert-file', 'a', '--tls-key-file', 'b', '--signing-keys-dir', 'c'], { encoding: 'utf8' });
    assert.equal(res.status, 2);
    assert.match(res.stderr, /invalid configuration:\n\s+port: Too big/);
  });
});
