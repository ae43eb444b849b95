// Webhook throughput over HTTPS as a ratio to a bare fastify HTTPS route that answers with a canned
// AdmissionReview of the webhook's own response size. Goal (allocation at admission): ratio ≥ 0.8.
//
// Three processes (bench/webhook-bench-child.ts): admitlb's webhook on an in-memory cluster (every
// request is a distinct Service, so every one allocates from a /8, writes an IPClaim and signs), the
// bare fastify route, and autocannon. The server under test never shares its event loop with the load
// generator. The two variants run alternately, BENCH_ROUNDS rounds of BENCH_SECONDS each, with the same
// certificate, client settings and request bodies; the summary is the median of the rounds. Each
// server's CPU use during its runs is printed too: a server near 1.0 core is the bottleneck, a load
// generator near 1.0 means the number measures autocannon instead.
//
// Run: npm run bench (or node --import tsx bench/webhook.bench.ts). Environment: BENCH_SECONDS (5),
// BENCH_ROUNDS (3), BENCH_CONNECTIONS (16), BENCH_WARMUP seconds (2), BENCH_PROFILE=<dir> writes a
// --cpu-prof of each server process to <dir>/webhook and <dir>/baseline, BENCH_BREAKDOWN=0 skips the
// in-process cost breakdown printed at the end (µs per part of an admission).
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateSigningKey, generateWebhookCertificates, writeCertificates, writeSigningKey } from '../src/certs/generate.ts';
import type { CpuReport, RunCommand, RunResult } from './webhook-bench-child.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 16);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);
const BREAKDOWN = process.env.BENCH_BREAKDOWN !== '0';
const PROFILE = process.env.BENCH_PROFILE ? resolve(process.env.BENCH_PROFILE) : undefined;
const NAME_MARK = '@@NAME@@';
const CHILD = fileURLToPath(new URL('./webhook-bench-child.ts', import.meta.url));

// The fixture with the Service's name (request.name, object name, uid suffix) left open.
const review = JSON.parse(readFileSync(new URL('../test/fixtures/admission/create-loadbalancer.json', import.meta.url), 'utf8'));
review.request.uid = `3b4a2f7e-9d1c-4e55-8f0a-${NAME_MARK}`;
review.request.name = NAME_MARK;
review.request.object.metadata.name = NAME_MARK;
const template = JSON.stringify(review);

interface Child {
  proc: ChildProcess;
  ask<T>(message: object, answer: string): Promise<T>;
  ready: Promise<{ url?: string }>;
}

function spawnChild(role: string, args: string[], execArgv: string[] = []): Child {
  const proc = fork(CHILD, [role, ...args], { execArgv: ['--import', 'tsx', ...execArgv], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting = new Map<string, (m: unknown) => void>();
  let onReady: (m: { url?: string }) => void;
  const ready = new Promise<{ url?: string }>((res, rej) => {
    onReady = res;
    proc.once('exit', (code) => rej(new Error(`bench ${role} process exited with ${code}`)));
  });
  proc.on('message', (m: { ready?: boolean; cmd?: string; url?: string }) => {
    if (m.ready) return onReady(m);
    const w = waiting.get(m.cmd!);
    waiting.delete(m.cmd!);
    w?.(m);
  });
  return {
    proc,
    ready,
    ask: <T>(message: object, answer: string) =>
      new Promise<T>((res) => {
        waiting.set(answer, res as (m: unknown) => void);
        proc.send(message);
      }),
  };
}

type Run = RunResult & { server: number; usPerReq: number };
const exited = (c: Child) => new Promise<void>((res) => (c.proc.exitCode !== null ? res() : c.proc.once('exit', () => res())));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const dir = mkdtempSync(join(tmpdir(), 'admitlb-bench-'));
const children: Child[] = [];
try {
  const certs = await generateWebhookCertificates({ dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'] });
  await writeCertificates(dir, certs);
  await writeSigningKey(join(dir, 'signing'), await generateSigningKey());

  const profile = (name: string) => (PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${join(PROFILE, name)}`] : []);
  const webhook = spawnChild('webhook', [dir], profile('webhook'));
  children.push(webhook);
  const webhookUrl = (await webhook.ready).url!;
  // The baseline answers with what the webhook answers (same size, a real signed patch).
  const canned = await post(`${webhookUrl}/mutate/services`, template.split(NAME_MARK).join('sample-0000000'));
  const baseline = spawnChild('baseline', [dir, canned], profile('baseline'));
  children.push(baseline);
  const load = spawnChild('load', []);
  children.push(load);
  const baselineUrl = (await baseline.ready).url!;
  await load.ready;

  const variants = { baseline: { child: baseline, url: baselineUrl, runs: [] as Run[] }, webhook: { child: webhook, url: webhookUrl, runs: [] as Run[] } };
  const run = async (name: keyof typeof variants, round: number, seconds: number) => {
    const v = variants[name];
    await v.child.ask({ cmd: 'mark' }, 'marked');
    const cmd: RunCommand = { cmd: 'run', url: v.url, seconds, connections: CONNECTIONS, prefix: `${name[0]}${String(round).padStart(2, '0')}`, template, mark: NAME_MARK };
    const r = await load.ask<RunResult>(cmd, 'result');
    const server = await v.child.ask<CpuReport>({ cmd: 'report' }, 'report');
    return { ...r, server: server.cpu, usPerReq: server.cpuMicros / Math.max(1, r.requests) };
  };

  console.log(`webhook over HTTPS: ${ROUNDS} rounds × ${SECONDS}s per variant, alternating, ${CONNECTIONS} connections; server, baseline and autocannon in separate processes`);
  if (WARMUP > 0) {
    await run('baseline', 99, WARMUP);
    await run('webhook', 99, WARMUP);
  }
  const fmt = (r: Run) =>
    `${r.rps.toFixed(0).padStart(6)} req/s  p50 ${String(r.p50).padStart(3)} ms  p99 ${String(r.p99).padStart(3)} ms  server ${r.usPerReq.toFixed(0).padStart(4)} µs CPU/req  cpu server ${r.server.toFixed(2)} autocannon ${r.cpu.toFixed(2)}  errors ${r.errors}`;
  for (let round = 0; round < ROUNDS; round++) {
    // Alternate which goes first, so a drift of the machine's load does not favour one side.
    const order: (keyof typeof variants)[] = round % 2 === 0 ? ['baseline', 'webhook'] : ['webhook', 'baseline'];
    for (const name of order) {
      const r = await run(name, round, SECONDS);
      variants[name].runs.push(r);
      console.log(`  round ${round + 1} ${name.padEnd(8)} ${fmt(r)}`);
    }
  }
  const summary = (runs: Run[]) => ({
    rps: median(runs.map((r) => r.rps)),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    server: median(runs.map((r) => r.server)),
    usPerReq: median(runs.map((r) => r.usPerReq)),
    cpu: median(runs.map((r) => r.cpu)),
    errors: runs.reduce((n, r) => n + r.errors, 0),
  });
  const b = summary(variants.baseline.runs);
  const w = summary(variants.webhook.runs);
  const claims = (await webhook.ask<CpuReport>({ cmd: 'report' }, 'report')).claims;
  const line = (s: typeof b) =>
    `${s.rps.toFixed(0).padStart(6)} req/s  p50 ${s.p50} ms  p99 ${s.p99} ms  server ${s.usPerReq.toFixed(0)} µs CPU/req  cpu server ${s.server.toFixed(2)} autocannon ${s.cpu.toFixed(2)}  errors ${s.errors}`;
  console.log(`medians of ${ROUNDS}:`);
  console.log(`  bare fastify (canned review): ${line(b)}`);
  console.log(`  admitlb webhook (allocating): ${line(w)}  claims ${claims}`);
  const perRound = variants.webhook.runs.map((r, i) => (r.rps / variants.baseline.runs[i]!.rps).toFixed(2)).join(' ');
  console.log(`ratio webhook/baseline: ${(w.rps / b.rps).toFixed(2)} (per round ${perRound}; goal ≥ 0.8)`);
  // On a shared machine throughput moves with the neighbours; CPU per request moves much less.
  console.log(`ratio of server CPU per request, baseline/webhook: ${(b.usPerReq / w.usPerReq).toFixed(2)} (the throughput ratio when both are CPU-bound)`);
  if (b.errors + w.errors > 0) process.exitCode = 1;

  for (const c of [load, baseline, webhook]) c.proc.send({ cmd: 'close' });
  await Promise.all([load, baseline, webhook].map(exited));
  if (PROFILE) console.log(`cpu profiles of the server processes in ${PROFILE}/{webhook,baseline}`);
  if (BREAKDOWN) {
    // Alone, after the servers are gone: where the webhook's extra time per admission goes.
    const breakdown = fork(CHILD, ['breakdown', template, NAME_MARK], { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
    await new Promise((res) => breakdown.once('exit', res));
  }
} finally {
  for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill();
  rmSync(dir, { recursive: true, force: true });
}

function post(url: string, body: string): Promise<string> {
  return new Promise((resolvePost, reject) => {
    const r = request(url, { method: 'POST', rejectUnauthorized: false, headers: { 'content-type': 'application/json' } }, (res) => {
      let data = '';
      res.on('data', (c) => (data += c));
      res.on('end', () => (res.statusCode === 200 ? resolvePost(data) : reject(new Error(`sample request: ${res.statusCode} ${data}`))));
    });
    r.on('error', reject);
    r.end(body);
  });
}
