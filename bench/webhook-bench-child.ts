// The processes of bench/webhook.bench.ts, forked by it with `--import tsx`: role `webhook` (admitlb's
// webhook over HTTPS on an in-memory cluster), `baseline` (a bare fastify HTTPS route answering with a
// canned AdmissionReview) or `load` (autocannon). Each server runs alone in its process, the load
// generator in another, so neither shares an event loop with what it measures.
//
// Protocol (IPC): a server sends { ready, url } once listening; the parent sends { cmd: 'mark' } before
// a run and { cmd: 'report' } after it, answered with the server's CPU use in between. The load process
// answers { cmd: 'run', ... } with autocannon's numbers and its own CPU use.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';
import Fastify from 'fastify';
import pino from 'pino';

export interface RunCommand {
  cmd: 'run';
  url: string;
  seconds: number;
  connections: number;
  /** Prefix of this run's Service names: every request of the bench is a distinct Service. */
  prefix: string;
  /** The fixture serialized with `mark` where the Service's name (and uid suffix) go. */
  template: string;
  mark: string;
}

export interface RunResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  requests: number;
  /** CPU seconds used by this (load) process per wall second of the run. */
  cpu: number;
}

export interface CpuReport {
  /** CPU seconds used by the server process per wall second since the last mark (1 = one core). */
  cpu: number;
  /** CPU µs used by the server process since the last mark. */
  cpuMicros: number;
  claims?: number | undefined;
}

const role = process.argv[2];
const send = (m: unknown) => process.send!(m);

function cpuMeter() {
  let start = process.cpuUsage();
  let t0 = process.hrtime.bigint();
  return {
    mark() {
      start = process.cpuUsage();
      t0 = process.hrtime.bigint();
    },
    read() {
      const u = process.cpuUsage(start);
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      return (u.user + u.system) / 1e6 / wall;
    },
    micros() {
      const u = process.cpuUsage(start);
      return u.user + u.system;
    },
  };
}

async function serve(listen: () => Promise<{ url: string; close(): Promise<void>; claims?: () => number }>) {
  const meter = cpuMeter();
  const server = await listen();
  process.on('message', async (m: { cmd: string }) => {
    if (m.cmd === 'mark') {
      meter.mark();
      send({ cmd: 'marked' });
    } else if (m.cmd === 'report') {
      send({ cmd: 'report', cpu: meter.read(), cpuMicros: meter.micros(), claims: server.claims?.() } satisfies CpuReport & { cmd: string });
    } else if (m.cmd === 'close') {
      await server.close();
      process.exit(0); // also writes --cpu-prof

    }
  });
  send({ ready: true, url: server.url });
}

if (role === 'webhook') {
  const dir = process.argv[3]!;
  const { MemoryCluster } = await import('../src/kube/memory.ts');
  const { parseServerConfig, startWebhook } = await import('../src/cmd/webhook.ts');
  await serve(async () => {
    const cluster = new MemoryCluster();
    // A /8: the bench never runs out of addresses, so every request allocates and claims one.
    cluster.setPool({ metadata: { name: 'big' }, spec: { addresses: ['10.0.0.0/8'], autoAssign: true, avoidBuggyIPs: false, usage: ['LoadBalancer'] } });
    const webhook = await startWebhook(
      parseServerConfig({ host: '127.0.0.1', port: 0, tlsCertFile: join(dir, 'tls.crt'), tlsKeyFile: join(dir, 'tls.key'), signingKeysDir: join(dir, 'signing') }),
      // The audit line is still produced and serialized; only the destination is cheap (as a log
      // shipper reading stdout asynchronously would be).
      { cluster, logger: pino({ level: 'info' }, pino.destination({ dest: '/dev/null', sync: false })) },
    );
    return { url: webhook.url, close: () => webhook.close(), claims: () => cluster.listClaims().length };
  });
} else if (role === 'baseline') {
  const dir = process.argv[3]!;
  const canned = JSON.parse(process.argv[4]!) as unknown;
  await serve(async () => {
    // Same certificate, key and TLS floor as the webhook (src/webhook/tls.ts), same body limit order
    // of magnitude; fastify parses the JSON body as it does for the webhook, then the canned answer.
    const app = Fastify({ https: { cert: readFileSync(join(dir, 'tls.crt')), key: readFileSync(join(dir, 'tls.key')), minVersion: 'TLSv1.2' } });
    app.post('/mutate/services', async () => canned);
    const url = await app.listen({ host: '127.0.0.1', port: 0 });
    return { url, close: () => app.close() };
  });
} else if (role === 'load') {
  process.on('message', async (m: RunCommand | { cmd: 'close' }) => {
    if (m.cmd === 'close') return process.exit(0);
    const parts = m.template.split(m.mark);
    let i = 0;
    const meter = cpuMeter();
    const result = await autocannon({
      url: `${m.url}/mutate/services`,
      method: 'POST',
      connections: m.connections,
      duration: m.seconds,
      headers: { 'content-type': 'application/json' },
      // A distinct Service per request (fixed-width names: every body has the same size).
      requests: [{ setupRequest: (req: Record<string, unknown>) => ({ ...req, body: parts.join(`${m.prefix}-${String(i++).padStart(7, '0')}`) }) }],
      // autocannon's TLS client does not verify; trust is not what is measured.
      ...({ tlsOptions: { rejectUnauthorized: false } } as object),
    } as unknown as autocannon.Options);
    send({
      cmd: 'result',
      rps: result.requests.average,
      p50: result.latency.p50,
      p99: result.latency.p99,
      errors: result.errors + result.non2xx + result.timeouts,
      requests: result.requests.total,
      cpu: meter.read(),
    } satisfies RunResult & { cmd: string });
  });
  send({ ready: true });
} else if (role === 'breakdown') {
  await breakdown(process.argv[3]!, process.argv[4]!);
  process.exit(0);
} else {
  console.error(`unknown role ${role}`);
  process.exit(2);
}

/**
 * Where an admission's time goes, in this process alone (no HTTP, no TLS): µs per call of each part
 * the webhook adds to what the bare route does (and, for scale, the JSON parse both do), median of 5
 * batches. Prints a table.
 */
async function breakdown(template: string, mark: string) {
  const { MemoryCluster } = await import('../src/kube/memory.ts');
  const { LiveAllocationState } = await import('../src/kube/allocation-state.ts');
  const { admitService, buildClaim } = await import('../src/admission/admit-service.ts');
  const { admissionReviewSchema, parseAdmissionReview, serviceShapeSchema, serviceShapeZodSchema, reviewResponse } = await import('../src/admission/review.ts');
  const { keySetFromJwks, signAssignment } = await import('../src/signing/assignment.ts');
  const { generateSigningKey } = await import('../src/certs/generate.ts');
  const { serverConfigSchema } = await import('../src/config/webhook-config.ts');
  const { createWebhookMetrics } = await import('../src/webhook/metrics.ts');
  const { claimNameFor, parseIP } = await import('../src/allocation/addresses.ts');

  const N = 2000;
  const parts = template.split(mark);
  let n = 0;
  const body = () => parts.join(`x-${String(n++).padStart(7, '0')}`);
  const setup = () => {
    const cluster = new MemoryCluster();
    cluster.setPool({ metadata: { name: 'big' }, spec: { addresses: ['10.0.0.0/8'], autoAssign: true, avoidBuggyIPs: false, usage: ['LoadBalancer'] } });
    return { cluster, state: new LiveAllocationState(cluster.cache) };
  };
  const keys = await keySetFromJwks([{ jwk: (await generateSigningKey()).privateJwk }]);
  const config = serverConfigSchema.parse({ host: '127.0.0.1', port: 0, tlsCertFile: 'unused', tlsKeyFile: 'unused', signingKeysDir: 'unused' });
  const dest = pino.destination({ dest: '/dev/null', sync: false });
  await new Promise((res) => dest.once('ready', res));
  const logger = pino({ level: 'info' }, dest);
  const rows: [string, number, number][] = [];
  async function time(label: string, prepare: (i: number) => unknown, f: (x: any) => unknown) {
    const batches: number[] = [];
    const cpu: number[] = [];
    for (let b = 0; b < 6; b++) {
      const inputs = Array.from({ length: N }, (_, i) => prepare(i));
      const t0 = process.hrtime.bigint();
      const c0 = process.cpuUsage();
      for (let i = 0; i < N; i++) await f(inputs[i]);
      const c = process.cpuUsage(c0);
      if (b === 0) continue; // the first batch warms up
      batches.push(Number(process.hrtime.bigint() - t0) / 1e3 / N);
      cpu.push((c.user + c.system) / N);
    }
    batches.sort((a, b) => a - b);
    cpu.sort((a, b) => a - b);
    rows.push([label, batches[2]!, cpu[2]!]);
  }
  const parsed = () => JSON.parse(body());

  await time('JSON.parse of the request body (both sides)', body, (t: string) => JSON.parse(t));
  await time('review check, zod (before)', parsed, (r) => admissionReviewSchema.safeParse(r));
  await time('review check, fast path (after)', parsed, (r) => parseAdmissionReview(r));
  await time('Service shape check, zod (before)', () => parsed().request.object, (o) => serviceShapeZodSchema.safeParse(o));
  await time('Service shape check, fast path (after)', () => parsed().request.object, (o) => serviceShapeSchema.safeParse(o));
  await time('Ed25519 signed assignment', (i) => ({ namespace: 'default', name: `x-${i}`, ips: [`10.0.${i >> 8 & 255}.${i & 255}`], pool: 'big', externalIPs: [] }), (a) => signAssignment(keys, a));
  {
    const { cluster, state } = setup();
    let ipn = 0;
    await time(
      'IPClaim write (MemoryCluster create + index)',
      () => {
        const ip = parseIP(`11.${(ipn >> 16) & 255}.${(ipn >> 8) & 255}.${ipn++ & 255}`);
        return buildClaim(claimNameFor(ip), ip, 'big', undefined, [{ namespace: 'default', name: `x-${ipn}`, use: 'LoadBalancer', ports: [{ protocol: 'TCP', port: 80 }], backend: 'x' }]);
      },
      async (claim) => {
        state.applyClaim(claim);
        const r = await cluster.claims.create(claim);
        if (r.ok) state.applyClaim(r.claim);
      },
    );
  }
  let outcome: Awaited<ReturnType<typeof admitService>> | undefined;
  {
    const { cluster, state } = setup();
    const deps = { state, store: cluster.claims, keys, config: config.admission, namespaceLabels: () => undefined };
    await time('admitService, whole (allocate + claim + sign + patch)', () => parsed().request, async (req) => (outcome = await admitService(deps, req)));
  }
  const metrics = createWebhookMetrics(setup().state);
  const req = parsed().request;
  await time('audit line (pino) + metrics', () => undefined, () => {
    metrics.admissionSeconds.observe({ webhook: 'services.admitlb.io', operation: 'CREATE' }, 0.001);
    metrics.decisions.inc({ webhook: 'services.admitlb.io', operation: 'CREATE', decision: 'allowed' });
    logger.info({ audit: true, webhook: 'services.admitlb.io', uid: req.uid, operation: req.operation, namespace: 'default', name: req.name, user: req.userInfo.username, groups: req.userInfo.groups, dryRun: false, decision: 'allowed', addresses: ['10.0.0.1'], pool: 'big', reason: 'assigned', latencyMs: 0.123 }, 'admission decision');
  });
  await time('reviewResponse + JSON.stringify', () => undefined, () => JSON.stringify(reviewResponse(req.uid, outcome!)));
  console.log('in-process cost per call (no HTTP/TLS), median of 5 batches of 2000: main-thread time, and process CPU (with GC threads)');
  for (const [label, us, cpuUs] of rows) console.log(`  ${label.padEnd(56)} ${us.toFixed(1).padStart(7)} µs  ${cpuUs.toFixed(1).padStart(7)} µs CPU`);
}
