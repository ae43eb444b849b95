// Timeouts, connection limits and body limits of every listener: the webhook (HTTPS), the health
// and metrics server, and the sandbox's API server. Slow or unfinished requests are cut off within
// their timeout and what they buffered is freed; connections beyond the limit are refused. All on
// 127.0.0.1, with the timeouts shortened to a second.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import tls from 'node:tls';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import pino from 'pino';
import { Registry } from 'prom-client';
import { generateSigningKey, generateWebhookCertificates, writeCertificates, writeSigningKey } from '../../src/certs/generate.ts';
import { MemoryCluster } from '../../src/kube/memory.ts';
import { SANDBOX_LIMITS, startApiServer, type ApiServer } from '../../src/sandbox/apiserver.ts';
import { startHealthServer } from '../../src/cmd/health-server.ts';
import { HEALTH_LIMITS, WEBHOOK_LIMITS } from '../../src/webhook/limits.ts';
import { parseServerConfig, startWebhook, type RunningWebhook } from '../../src/cmd/webhook.ts';
import { pool } from '../helpers/state.ts';
import { removeDir, tempDir } from '../sandbox/helpers.ts';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const SHORT = { headersTimeoutMs: 1000, requestTimeoutMs: 1000, handshakeTimeoutMs: 1000 };
/** A cut-off may come up to one connections-check interval (1 s) after the timeout. */
const CUT_WITHIN_MS = 1000 + 1000 + 1000;
const MiB = 1024 * 1024;
const CHUNK = Buffer.alloc(256 * 1024, 0x20); // one buffer, written again and again: the client allocates nothing

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Conn {
  socket: net.Socket;
  /** What the server answered so far. */
  text(): string;
  /** Resolves with ms from `since` until the server closed the connection, and what it answered. */
  closed: Promise<{ afterMs: number; response: string }>;
}

function track(socket: net.Socket, since = Date.now()): Conn {
  let response = '';
  socket.on('data', (d: Buffer) => (response += d.toString('latin1')));
  socket.on('error', () => {});
  const closed = new Promise<{ afterMs: number; response: string }>((resolve) => socket.once('close', () => resolve({ afterMs: Date.now() - since, response })));
  return { socket, closed, text: () => response };
}

function connectTls(port: number, ca: string): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const since = Date.now();
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' }, () => resolve(track(socket, since)));
    socket.once('error', reject);
    socket.once('close', () => reject(new Error('closed before the handshake finished')));
  });
}

function connectTcp(port: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => resolve(track(socket)));
    socket.once('error', reject);
  });
}

/** Sends headers declaring `declared` bytes, then `sent` bytes of body, and never the rest. */
async function unfinishedBody(conn: Conn, path: string, declared: number, sent: number): Promise<void> {
  conn.socket.write(`POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${declared}\r\n\r\n`);
  for (let n = 0; n < sent && !conn.socket.destroyed; n += CHUNK.length) {
    if (!conn.socket.write(CHUNK.subarray(0, Math.min(CHUNK.length, sent - n)))) await new Promise((r) => conn.socket.once('drain', r).once('close', r));
  }
}

function arrayBuffersAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().arrayBuffers;
}

describe('webhook listener (HTTPS)', () => {
  let dir: string;
  let ca: string;
  const running: RunningWebhook[] = [];
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'admitlb-limits-'));
    await writeCertificates(dir, await generateWebhookCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] }));
    await writeSigningKey(join(dir, 'signing'), await generateSigningKey());
    ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
  });
  after(async () => {
    for (const r of running.splice(0)) await r.close();
    rmSync(dir, { recursive: true, force: true });
  });
  async function start(limits: NonNullable<Parameters<typeof startWebhook>[1]>['limits']): Promise<number> {
    const cluster = new MemoryCluster();
    cluster.setPool(pool('default', { addresses: ['203.0.113.0/24'] }));
    cluster.setNamespace('default'); // reviews for unknown namespaces are denied
    const config = parseServerConfig({ host: '127.0.0.1', port: 0, tlsCertFile: join(dir, 'tls.crt'), tlsKeyFile: join(dir, 'tls.key'), signingKeysDir: join(dir, 'signing') });
    const r = await startWebhook(config, { cluster, logger: pino({ level: 'silent' }), ...(limits ? { limits } : {}) });
    running.push(r);
    return Number(new URL(r.url).port);
  }
  const review = readFileSync(new URL('../fixtures/admission/create-loadbalancer.json', import.meta.url), 'utf8');
  async function admit(port: number): Promise<string> {
    const c = await connectTls(port, ca);
    c.socket.end(`POST /mutate/services HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(review)}\r\nConnection: close\r\n\r\n${review}`);
    return (await c.closed).response;
  }

  it('the defaults are finite', () => {
    for (const l of [WEBHOOK_LIMITS, HEALTH_LIMITS]) {
      for (const [k, v] of Object.entries(l)) assert.ok(Number.isFinite(v) && v > 0, `${k} = ${v}`);
    }
    assert.ok(WEBHOOK_LIMITS.requestTimeoutMs <= 30_000, 'no longer than the longest webhook timeout kube-apiserver allows');
  });

  it('20 connections that never finish a 6 MiB body are cut off within the timeout, and their memory is freed', async () => {
    const port = await start(SHORT);
    const baseline = arrayBuffersAfterGc();
    for (let round = 0; round < 2; round++) {
      const conns = await Promise.all(Array.from({ length: 20 }, () => connectTls(port, ca)));
      const started = Date.now();
      await Promise.all(conns.map((c) => unfinishedBody(c, '/mutate/services', 6 * MiB, 1 * MiB)));
      const results = await Promise.all(conns.map((c) => c.closed));
      const slowest = Math.max(...results.map(() => Date.now() - started));
      assert.ok(slowest <= CUT_WITHIN_MS + 500, `round ${round}: the last connection was cut after ${slowest} ms`);
      // The body budget (64 MiB) takes 10 of the declared 6 MiB bodies; the others are answered 503 at once.
      assert.ok(results.filter((r) => / 503 /.test(r.response.split('\r\n')[0]!)).length >= 9, results.map((r) => r.response.split('\r\n')[0]).join(' | '));
      const grown = arrayBuffersAfterGc() - baseline;
      assert.ok(grown < 8 * MiB, `round ${round}: ${Math.round(grown / MiB)} MiB still held after the cut-off`);
    }
    assert.match(await admit(port), /^HTTP\/1\.1 200 /, 'the webhook still answers');
  });

  it('a connection that never starts TLS, or never finishes its headers, is closed', async () => {
    const port = await start(SHORT);
    const silent = await connectTcp(port);
    const headers = await connectTls(port, ca);
    headers.socket.write('POST /mutate/services HTTP/1.1\r\nHost: localhost\r\n');
    const [a, b] = await Promise.all([silent.closed, headers.closed]);
    assert.ok(a.afterMs <= CUT_WITHIN_MS, `no TLS handshake: closed after ${a.afterMs} ms`);
    assert.ok(b.afterMs <= CUT_WITHIN_MS, `unfinished headers: closed after ${b.afterMs} ms`);
  });

  it('connections beyond maxConnections are refused; freed slots are used again', async () => {
    const port = await start({ ...SHORT, maxConnections: 4, requestTimeoutMs: 10_000, headersTimeoutMs: 10_000 });
    const held = await Promise.all(Array.from({ length: 4 }, () => connectTls(port, ca)));
    await assert.rejects(connectTls(port, ca), 'a fifth connection is closed before its handshake');
    held[0]!.socket.destroy();
    await held[0]!.closed;
    await sleep(50);
    assert.match(await admit(port), /^HTTP\/1\.1 200 /);
    for (const c of held) c.socket.destroy();
  });

  it('over the body budget: 503 before reading; the budget is given back when the body ends', async () => {
    const port = await start(SHORT);
    // Budget 64 MiB: 10 unfinished 6 MiB bodies take it; the next big one is refused, a small review is not.
    const big = await Promise.all(Array.from({ length: 10 }, () => connectTls(port, ca)));
    await Promise.all(big.map((c) => unfinishedBody(c, '/mutate/services', 6 * MiB, 64 * 1024)));
    await sleep(100);
    const refused = await connectTls(port, ca);
    await unfinishedBody(refused, '/mutate/services', 6 * MiB, 0);
    assert.match((await refused.closed).response, /^HTTP\/1\.1 503 [\s\S]*ADMITLB_BUSY/);
    for (const c of big) c.socket.destroy();
    await Promise.all(big.map((c) => c.closed));
    await sleep(50);
    assert.match(await admit(port), /^HTTP\/1\.1 200 /);
  });
});

describe('health and metrics listener', () => {
  it('slow requests are cut off and extra connections dropped', async () => {
    const registry = new Registry();
    const { app, url } = await startHealthServer({ host: '127.0.0.1', port: 0, registry, readiness: () => ({ ok: true, reasons: [] }), limits: { ...SHORT, maxConnections: 3 } });
    try {
      const port = Number(new URL(url).port);
      const slow = await connectTcp(port);
      await unfinishedBody(slow, '/healthz', 512, 10);
      const cut = await slow.closed;
      assert.ok(cut.afterMs <= CUT_WITHIN_MS, `cut after ${cut.afterMs} ms`);
      assert.match(cut.response, /^HTTP\/1\.1 408 /);

      const held = await Promise.all(Array.from({ length: 3 }, () => connectTcp(port)));
      const extra = await connectTcp(port);
      const dropped = await extra.closed;
      assert.equal(dropped.response, '', 'dropped without an answer');
      for (const c of held) c.socket.destroy();
    } finally {
      await app.close();
    }
  });
});

describe('sandbox API server listener', () => {
  let api: ApiServer;
  let dataDir: string;
  before(async () => {
    dataDir = tempDir('api-limits');
    api = await startApiServer({ dataDir, host: '127.0.0.1', port: 0, limits: { ...SHORT, maxConnections: 6 } });
  });
  after(async () => {
    await api?.close();
    removeDir(dataDir);
  });
  const port = () => Number(new URL(api.url).port);
  const path = '/api/v1/namespaces/default/configmaps';

  it('bodies over 3 MiB are a 413 RequestEntityTooLarge, as kube-apiserver answers', async () => {
    assert.equal(SANDBOX_LIMITS.bodyLimit, 3 * MiB);
    // Declared too large: refused before the body is read.
    const declared = await connectTls(port(), api.caPem);
    declared.socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${api.token}\r\nContent-Type: application/json\r\nContent-Length: ${3 * MiB + 1}\r\n\r\n`);
    for (let i = 0; i < 50 && !declared.text().includes('limit is'); i++) await sleep(20);
    declared.socket.destroy();
    assert.match(declared.text(), /^HTTP\/1\.1 413 /);
    assert.match(declared.text(), /"message":"Request entity too large: limit is 3145728","reason":"RequestEntityTooLarge","code":413/);
    // Chunked, no length: refused once it passes the limit.
    const chunked = await connectTls(port(), api.caPem);
    chunked.socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${api.token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`);
    for (let n = 0; n <= 3 * MiB; n += CHUNK.length) chunked.socket.write(`${CHUNK.length.toString(16)}\r\n${CHUNK.toString('latin1')}\r\n`);
    chunked.socket.end('0\r\n\r\n');
    assert.match((await chunked.closed).response, /^HTTP\/1\.1 413 /);
  });

  it('a body that never finishes is cut off within the timeout', async () => {
    const c = await connectTls(port(), api.caPem);
    c.socket.write(`POST ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${api.token}\r\nContent-Type: application/json\r\nContent-Length: ${2 * MiB}\r\n\r\n{"kind":`);
    const r = await c.closed;
    assert.ok(r.afterMs <= CUT_WITHIN_MS, `cut after ${r.afterMs} ms`);
    assert.match(r.response, /^HTTP\/1\.1 408 /);
  });

  it('connections beyond the limit are refused', async () => {
    const held = await Promise.all(Array.from({ length: 6 }, () => connectTls(port(), api.caPem)));
    await assert.rejects(connectTls(port(), api.caPem));
    for (const c of held) c.socket.destroy();
  });
});
