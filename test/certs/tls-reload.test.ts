// A real HTTPS server (node:https and fastify) picks up replaced certificate files without a restart.
import type { Logger } from '../../src/log.ts';
import { strict as assert } from 'node:assert';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request, createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Fastify from 'fastify';
import { generateWebhookCertificates, writeCertificates, type WebhookCertificates } from '../../src/certs/generate.ts';
import { createTlsReloader, type TlsReloader, type TlsReloadInfo } from '../../src/webhook/tls.ts';
import { waitFor } from './helpers.ts';

const SERVER_NAME = 'admitlb-webhook.admitlb-system.svc';

interface Seen {
  fingerprint256: string;
  body: string;
}

/** One fresh TLS connection (agent: false), verifying the chain against ca and the name against SERVER_NAME. */
function fetchOnce(port: number, ca: string): Promise<Seen> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/healthz', servername: SERVER_NAME, ca, agent: false, timeout: 2000 }, (res) => {
      const fingerprint256 = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().fingerprint256;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ fingerprint256, body }));
    });
    req.on('timeout', () => req.destroy(new Error('request timeout')));
    req.on('error', reject);
    req.end();
  });
}

function fingerprintOf(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

/** Replaces one file atomically, as a careful writer would; the pair as a whole is still inconsistent. */
function replaceFile(path: string, content: string): void {
  writeFileSync(`${path}.tmp`, content);
  renameSync(`${path}.tmp`, path);
}

function memoryLogger() {
  const lines: { level: string; obj: object; msg?: string | undefined }[] = [];
  const logger: Pick<Logger, 'info' | 'warn' | 'error'> = {
    info: (obj, msg) => void lines.push({ level: 'info', obj, msg }),
    warn: (obj, msg) => void lines.push({ level: 'warn', obj, msg }),
    error: (obj, msg) => void lines.push({ level: 'error', obj, msg }),
  };
  return { logger, lines };
}

/** Mimics kubelet's AtomicWriter: files are symlinks through ..data, which is swapped by rename. */
class SecretVolume {
  private gen = 0;
  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
  }
  write(files: Record<string, string>): void {
    const ts = `..2025_01_01_00_00_${String(this.gen++).padStart(2, '0')}.${process.pid}`;
    mkdirSync(join(this.dir, ts));
    for (const [name, content] of Object.entries(files)) writeFileSync(join(this.dir, ts, name), content);
    symlinkSync(ts, join(this.dir, '..data_tmp'));
    let old: string | undefined;
    try {
      old = readlinkSync(join(this.dir, '..data'));
    } catch {
      old = undefined;
    }
    renameSync(join(this.dir, '..data_tmp'), join(this.dir, '..data'));
    for (const name of Object.keys(files)) {
      try {
        symlinkSync(join('..data', name), join(this.dir, name));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
    }
    if (old) rmSync(join(this.dir, old), { recursive: true, force: true });
  }
}

describe('createTlsReloader', () => {
  let root: string;
  let a: WebhookCertificates;
  let b: WebhookCertificates;
  let c: WebhookCertificates;
  const cleanups: (() => unknown)[] = [];

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'admitlb-tls-'));
    a = await generateWebhookCertificates();
    const ca = { certPem: a.caCertPem, keyPem: a.caKeyPem };
    b = await generateWebhookCertificates({ ca });
    c = await generateWebhookCertificates({ ca });
  });
  after(async () => {
    for (const fn of cleanups.reverse()) await fn();
    rmSync(root, { recursive: true, force: true });
  });

  function startHttps(reloader: TlsReloader): Promise<{ server: Server; port: number }> {
    const server = createServer(reloader.secureContextOptions, (_req, res) => res.end('ok'));
    reloader.attach(server);
    cleanups.push(() => new Promise((r) => server.close(r)));
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, port: (server.address() as AddressInfo).port })));
  }

  it('fastify: atomically renamed files are served to new connections, found by fs.watch alone', async () => {
    const dir = join(root, 'rename');
    await writeCertificates(dir, a);
    const { logger } = memoryLogger();
    const reloader = createTlsReloader({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), logger, pollIntervalMs: 0, debounceMs: 20 });
    cleanups.push(() => reloader.close());
    assert.equal(reloader.loaded, true);
    assert.equal(reloader.secureContextOptions.minVersion, 'TLSv1.2');

    const app = Fastify({ https: reloader.secureContextOptions });
    app.get('/healthz', async () => 'ok');
    await app.listen({ port: 0, host: '127.0.0.1' });
    cleanups.push(() => app.close());
    reloader.attach(app.server);
    const server = app.server;
    const port = (server.address() as AddressInfo).port;
    const reloads: TlsReloadInfo[] = [];
    reloader.onReload((info) => reloads.push(info));

    assert.deepEqual(await fetchOnce(port, a.caCertPem), { fingerprint256: fingerprintOf(a.certPem), body: 'ok' });
    await writeCertificates(dir, b);
    await waitFor(async () => (await fetchOnce(port, a.caCertPem)).fingerprint256 === fingerprintOf(b.certPem), 5000, 'the new certificate');
    assert.equal(app.server, server, 'same server object');
    assert.equal((server.address() as AddressInfo).port, port, 'never re-bound');
    assert.equal(reloads.length, 1);
    assert.equal(reloads[0]?.fingerprint256, fingerprintOf(b.certPem));
    assert.ok(reloads[0]?.previousNotAfter instanceof Date);
    assert.equal(reloader.notAfter?.getTime(), Date.parse(new X509Certificate(b.certPem).validTo));
  });

  it('node:https: a kubelet-style ..data symlink swap is picked up, twice', async () => {
    const vol = new SecretVolume(join(root, 'secret-volume'));
    vol.write({ 'tls.crt': a.certPem, 'tls.key': a.keyPem, 'ca.crt': a.caCertPem });
    const { logger } = memoryLogger();
    const reloader = createTlsReloader({
      certFile: join(vol.dir, 'tls.crt'),
      keyFile: join(vol.dir, 'tls.key'),
      caFile: join(vol.dir, 'ca.crt'),
      logger,
      pollIntervalMs: 0,
      debounceMs: 20,
    });
    cleanups.push(() => reloader.close());
    const { port } = await startHttps(reloader);
    assert.equal((await fetchOnce(port, a.caCertPem)).fingerprint256, fingerprintOf(a.certPem));
    for (const next of [b, c]) {
      vol.write({ 'tls.crt': next.certPem, 'tls.key': next.keyPem, 'ca.crt': next.caCertPem });
      await waitFor(async () => (await fetchOnce(port, a.caCertPem)).fingerprint256 === fingerprintOf(next.certPem), 5000, 'swapped certificate');
    }
  });

  it('keeps serving the old pair when the new key does not match, and recovers on a good pair', async () => {
    const dir = join(root, 'mismatch');
    await writeCertificates(dir, a);
    const { logger, lines } = memoryLogger();
    const reloader = createTlsReloader({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), logger, pollIntervalMs: 30, debounceMs: 10, retryMs: 20 });
    cleanups.push(() => reloader.close());
    const errors: Error[] = [];
    reloader.onError((e) => errors.push(e));
    const { port } = await startHttps(reloader);

    replaceFile(join(dir, 'tls.key'), b.keyPem); // cert a + key b
    await waitFor(() => reloader.lastError !== undefined, 5000, 'the rejection');
    assert.match(String(reloader.lastError?.message), /does not match/);
    await new Promise((r) => setTimeout(r, 200)); // several polls and the retry
    assert.equal(errors.length, 1, 'reported once, not once per poll');
    assert.equal(lines.filter((l) => l.level === 'error').length, 1);
    assert.equal((await fetchOnce(port, a.caCertPem)).fingerprint256, fingerprintOf(a.certPem));
    assert.equal(reloader.loaded, true);

    replaceFile(join(dir, 'tls.crt'), b.certPem); // now a matching pair
    await waitFor(async () => (await fetchOnce(port, a.caCertPem)).fingerprint256 === fingerprintOf(b.certPem), 5000, 'recovery');
    assert.equal(reloader.lastError, undefined);

    replaceFile(join(dir, 'tls.crt'), 'not a certificate');
    const lastError = (): Error | undefined => reloader.lastError; // re-read: not narrowed by the assert above
    await waitFor(() => lastError() !== undefined, 5000, 'garbage rejected');
    assert.match(String(lastError()?.message), /not a PEM certificate/);
    assert.equal((await fetchOnce(port, a.caCertPem)).fingerprint256, fingerprintOf(b.certPem));
  });

  it('rejects an expired certificate', async () => {
    const dir = join(root, 'expired');
    await writeCertificates(dir, a);
    let clock = Date.now();
    const { logger } = memoryLogger();
    const reloader = createTlsReloader({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), logger, pollIntervalMs: 0, debounceMs: 10, now: () => clock });
    cleanups.push(() => reloader.close());
    const { port } = await startHttps(reloader);
    const short = await generateWebhookCertificates({ ca: { certPem: a.caCertPem, keyPem: a.caKeyPem }, days: 30 });
    clock += 60 * 86_400_000; // 60 days later, the 30-day certificate is expired
    await writeCertificates(dir, short);
    await waitFor(() => reloader.lastError !== undefined, 5000, 'the rejection');
    assert.match(String(reloader.lastError?.message), /expired/);
    assert.equal((await fetchOnce(port, a.caCertPem)).fingerprint256, fingerprintOf(a.certPem));
  });

  it('starts unloaded when the files are missing and serves once they appear', async () => {
    const dir = join(root, 'late');
    mkdirSync(dir);
    const { logger, lines } = memoryLogger();
    const reloader = createTlsReloader({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), logger, pollIntervalMs: 0, debounceMs: 10 });
    cleanups.push(() => reloader.close());
    assert.equal(reloader.loaded, false);
    assert.equal(reloader.notAfter, undefined);
    assert.equal(reloader.secureContextOptions.cert, undefined);
    assert.ok(lines.some((l) => l.level === 'error'));
    const { port } = await startHttps(reloader);
    await assert.rejects(fetchOnce(port, a.caCertPem)); // no certificate: handshake fails
    await writeCertificates(dir, a);
    await waitFor(() => reloader.loaded, 5000, 'first load');
    assert.equal((await fetchOnce(port, a.caCertPem)).fingerprint256, fingerprintOf(a.certPem));
  });

  it('polling finds a pair whose directory was replaced wholesale', async () => {
    const dir = join(root, 'replaced');
    await writeCertificates(dir, a);
    const { logger } = memoryLogger();
    const reloader = createTlsReloader({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), logger, pollIntervalMs: 50, debounceMs: 10 });
    cleanups.push(() => reloader.close());
    const { port } = await startHttps(reloader);
    const staged = join(root, 'replaced-staged');
    await writeCertificates(staged, b);
    renameSync(dir, join(root, 'replaced-old'));
    renameSync(staged, dir);
    await waitFor(async () => (await fetchOnce(port, a.caCertPem)).fingerprint256 === fingerprintOf(b.certPem), 5000, 'the replaced directory');
  });

  it('stops reacting after close()', async () => {
    const dir = join(root, 'closed');
    await writeCertificates(dir, a);
    const { logger } = memoryLogger();
    const reloader = createTlsReloader({ certFile: join(dir, 'tls.crt'), keyFile: join(dir, 'tls.key'), logger, pollIntervalMs: 20, debounceMs: 10 });
    const { port } = await startHttps(reloader);
    reloader.close();
    await writeCertificates(dir, b);
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(reloader.checkNow(), false);
    assert.equal((await fetchOnce(port, a.caCertPem)).fingerprint256, fingerprintOf(a.certPem));
  });
});
