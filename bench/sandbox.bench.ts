// Admission end to end: the API server double, two `admitlb webhook` processes behind one URL (a
// round-robin TCP proxy) and parallel clients creating LoadBalancer Services over HTTPS. Prints the
// admission latency as the API server sees it (its webhook call: connect, TLS, decision, claim write,
// reply), the create latency as clients see it, and Services created per second. A measurement, not
// an assertion; it still checks at the end that no address is held twice.
//
//   npm run bench:sandbox                       500 Services, 50 clients, 2 webhook processes
//   BENCH_TOTAL=1000 BENCH_CLIENTS=100 BENCH_WEBHOOKS=3 npm run bench:sandbox
import os from 'node:os';
import { apiRequest } from '../src/cmd/sandbox.ts';
import {
  checkNoAddressHeldTwice,
  createServicesInParallel,
  namespace,
  percentile,
  pool,
  startMultiWebhookCluster,
  type MultiWebhookCluster,
} from '../test/e2e/cluster-helpers.ts';

const TOTAL = Number(process.env.BENCH_TOTAL ?? 500);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 50);
const WEBHOOKS = Number(process.env.BENCH_WEBHOOKS ?? 2);
const WARMUP = 50;
const NAMESPACES = ['bench-a', 'bench-b', 'bench-c', 'bench-d', 'bench-e'];

const fmt = (v: number) => `${v.toFixed(1)} ms`.padStart(10);

async function phase(c: MultiWebhookCluster, label: string, total: number, clients: number, prefix: string): Promise<void> {
  if (c.calls) c.calls.length = 0;
  const r = await createServicesInParallel(c.api, { total, clients, namespaces: NAMESPACES, prefix });
  const admission = (c.calls ?? []).filter((x) => x.webhook === 'services.admitlb.io' && x.ok).map((x) => x.durationMs);
  const perSecond = r.created.length / (r.elapsedMs / 1000);
  console.log(
    `${label.padEnd(34)} ${String(r.created.length).padStart(5)} ${perSecond.toFixed(1).padStart(8)}/s ` +
      `${fmt(percentile(admission, 50))} ${fmt(percentile(admission, 99))} ${fmt(percentile(r.latenciesMs, 50))} ${fmt(percentile(r.latenciesMs, 99))} ` +
      `${String(r.retries).padStart(7)} ${String(r.failed.length).padStart(6)}`,
  );
  for (const f of r.failed.slice(0, 3)) console.log(`  failed: ${f.name}: ${f.status} ${f.message}`);
}

const cluster = await startMultiWebhookCluster('bench', {
  count: WEBHOOKS,
  pools: [pool('bench', { addresses: ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24', '2001:db8:100::/112'] })],
});
try {
  for (const ns of NAMESPACES) await apiRequest(cluster.api, 'POST', '/api/v1/namespaces', namespace(ns));
  console.log(`admitlb sandbox bench: ${WEBHOOKS} webhook processes behind a round-robin proxy, node ${process.version}, ${os.availableParallelism()} CPUs`);
  console.log('admission = the API server\'s webhook call; create = the client\'s POST (admission + storage)\n');
  console.log(`${'phase'.padEnd(34)} ${'svcs'.padStart(5)} ${'rate'.padStart(10)} ${'adm p50'.padStart(10)} ${'adm p99'.padStart(10)} ${'create p50'.padStart(10)} ${'create p99'.padStart(10)} retries failed`);
  await phase(cluster, `sequential (1 client, warm-up)`, WARMUP, 1, 'seq');
  await phase(cluster, `${CLIENTS} parallel clients`, TOTAL, CLIENTS, 'par');
  const decisions = await cluster.decisionsPerProcess();
  const end = await checkNoAddressHeldTwice(cluster.api);
  console.log(`\ndecisions per webhook process: ${decisions.join(' / ')}; proxy connections: ${cluster.proxy.connections.join(' / ')}`);
  console.log(
    end.problems.length === 0
      ? `end state: ${end.services} LoadBalancer Services, ${end.claims} IPClaims, no address held twice`
      : `end state: ${end.problems.length} problems, first: ${end.problems.slice(0, 5).join('; ')}`,
  );
  // A create whose webhook call timed out after the claim was written leaves an orphaned claim (the
  // controller releases it after a grace period): a sign of overload, not of a double assignment.
  if (end.orphans.length) console.log(`${end.orphans.length} claim(s) orphaned by failed creates (webhook calls over the 5 s timeout): ${end.orphans.slice(0, 5).join('; ')}`);
  if (end.problems.length) process.exitCode = 1;
} finally {
  await cluster.close();
}
