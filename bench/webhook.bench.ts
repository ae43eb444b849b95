// Webhook throughput over HTTPS (autocannon, in-memory claim store) as a ratio to a bare fastify
// HTTPS route that returns a canned AdmissionReview of the same size. Both run in this process,
// one after the other, with the same client settings. Goal: ratio ≥ 0.8. Run: npm run bench.
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import Fastify from 'fastify';
import pino from 'pino';
import { generateWebhookCertificates, generateSigningKey, writeCertificates, writeSigningKey } from '../src/certs/generate.ts';
import { parseServerConfig, startWebhook } from '../src/webhook/main.ts';
import { MemoryCluster } from '../src/kube/memory.ts';

const DURATION = Number(process.env.BENCH_SECONDS ?? 5);
const review = JSON.parse(readFileSync(new URL('../test/fixtures/admission/create-loadbalancer.json', import.meta.url), 'utf8'));
const dir = mkdtempSync(join(tmpdir(), 'admitlb-bench-'));

async function load(url: string, unique: boolean) {
  let i = 0;
  const result = await autocannon({
    url,
    method: 'POST',
    connections: 16,
    duration: DURATION,
    headers: { 'content-type': 'application/json' },
    // Each request is a different Service, so every one allocates and claims a fresh address.
    requests: [
      {
        setupRequest: (req: Record<string, unknown>) => {
          const r = structuredClone(review);
          if (unique) {
            const name = `svc-${i++}`;
            r.request.uid = `uid-${name}`;
            r.request.name = name;
            r.request.object.metadata.name = name;
          }
          return { ...req, body: JSON.stringify(r) };
        },
      },
    ],
    // autocannon's TLS client: trust is not the point here, the handshake cost is the same for both.
    ...( { tlsOptions: { rejectUnauthorized: false } } as object),
  } as unknown as autocannon.Options);
  return { rps: result.requests.average, p50: result.latency.p50, p99: result.latency.p99, errors: result.errors + result.non2xx };
}

try {
  const certs = await generateWebhookCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  await writeCertificates(dir, certs);
  await writeSigningKey(join(dir, 'signing'), await generateSigningKey());
  const cluster = new MemoryCluster();
  cluster.setPool({ metadata: { name: 'big' }, spec: { addresses: ['10.0.0.0/8'], autoAssign: true, avoidBuggyIPs: false, usage: ['LoadBalancer'] } });
  const webhook = await startWebhook(
    parseServerConfig({ host: '127.0.0.1', port: 0, tlsCertFile: join(dir, 'tls.crt'), tlsKeyFile: join(dir, 'tls.key'), signingKeysDir: join(dir, 'signing') }),
    { cluster, logger: pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: false })) },
  );

  // The baseline answers with a canned response of the webhook's own size.
  const sample = await fetchOnce(webhook.url);
  const baseline = Fastify({ https: { cert: certs.certPem, key: certs.keyPem, minVersion: 'TLSv1.2' } });
  baseline.post('/mutate/services', async () => sample);
  const baselineUrl = await baseline.listen({ host: '127.0.0.1', port: 0 });

  const b = await load(`${baselineUrl}/mutate/services`, false);
  const w = await load(`${webhook.url}/mutate/services`, true);
  console.log(`webhook over HTTPS, ${DURATION}s each, 16 connections`);
  console.log(`bare fastify (canned review): ${b.rps.toFixed(0)} req/s  p50 ${b.p50} ms  p99 ${b.p99} ms  errors ${b.errors}`);
  console.log(`admitlb webhook (allocating): ${w.rps.toFixed(0)} req/s  p50 ${w.p50} ms  p99 ${w.p99} ms  errors ${w.errors}  claims ${cluster.listClaims().length}`);
  console.log(`ratio webhook/baseline: ${(w.rps / b.rps).toFixed(2)} (goal ≥ 0.8)`);
  await baseline.close();
  await webhook.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

async function fetchOnce(url: string): Promise<unknown> {
  const { request } = await import('node:https');
  return new Promise((resolve, reject) => {
    const r = request(`${url}/mutate/services`, { method: 'POST', rejectUnauthorized: false, headers: { 'content-type': 'application/json' } }, (res) => {
      let data = '';
      res.on('data', (c) => (data += c));
      res.on('end', () => resolve(JSON.parse(data)));
    });
    r.on('error', reject);
    r.end(JSON.stringify({ ...review, request: { ...review.request, uid: 'sample', name: 'sample', object: { ...review.request.object, metadata: { ...review.request.object.metadata, name: 'sample' } } } }));
  });
}
