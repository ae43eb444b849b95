// admitlb on the real control plane (etcd + kube-apiserver + kube-controller-manager, `npm run
// cluster:build`): what admission at create time costs a client, against the same creates that no
// webhook sees. Two `admitlb webhook` processes (each running the leader-elected controller too, as
// the Deployment does) behind a round-robin proxy, installed with `kubectl apply -k` and running as
// their ServiceAccount.
//
//   with admitlb   LoadBalancer Services: the webhook decides, claims and signs; the controller then
//                  writes status (its writes compete with the clients' creates, as in a cluster)
//   baseline       ClusterIP Services: the matchConditions keep the webhook out of the call
//
// Rounds alternate baseline and admitlb (BENCH_ROUNDS, default 3) so that a noisy neighbour hits
// both; each round creates BENCH_TOTAL Services (default 500) from BENCH_CLIENTS (50) clients.
// Printed per round, then the medians of the rounds' p50/p99 and rates, and their ratios.
//
//   npm run bench:real      (also runs bench/controller.bench.ts on the real control plane)
import os from 'node:os';
import { apiRequest } from '../src/cmd/sandbox.ts';
import { checkNoAddressHeldTwice, createServicesInParallel, namespace, percentile, pool, startMultiWebhookCluster } from '../test/e2e/cluster-helpers.ts';

if (process.env.E2E_TARGET !== 'real') {
  console.error('bench/real.bench.ts runs on the real control plane: E2E_TARGET=real (npm run bench:real sets it)');
  process.exit(2);
}
const TOTAL = Number(process.env.BENCH_TOTAL ?? 500);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 50);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const NAMESPACES = ['bench-a', 'bench-b', 'bench-c', 'bench-d', 'bench-e'];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (v: number) => `${v.toFixed(1)} ms`.padStart(10);

interface Round {
  p50: number;
  p99: number;
  rate: number;
}

const cluster = await startMultiWebhookCluster('bench-real', {
  count: 2,
  // IPv6: room for every round's Services in one pool.
  pools: [pool('bench', { addresses: ['2001:db8:100::/112'] })],
});
try {
  for (const ns of NAMESPACES) await apiRequest(cluster.api, 'POST', '/api/v1/namespaces', namespace(ns));
  console.log(`admitlb on the real control plane: ${TOTAL} Services per round from ${CLIENTS} clients, 2 webhook processes, ${ROUNDS} rounds, node ${process.version}, ${os.availableParallelism()} CPUs`);
  console.log('create = the client\'s POST as it sees it (admission + validation + etcd)\n');
  console.log(`${'round'.padEnd(26)} ${'svcs'.padStart(5)} ${'rate'.padStart(10)} ${'p50'.padStart(10)} ${'p99'.padStart(10)} failed`);
  // The IPv6 pool is the only one: LoadBalancer Services ask for IPv6.
  const results: Record<'admitlb' | 'baseline', Round[]> = { admitlb: [], baseline: [] };
  await createServicesInParallel(cluster.api, { total: 50, clients: 5, namespaces: NAMESPACES, prefix: 'warm', type: 'ClusterIP' });
  for (let round = 0; round < ROUNDS; round++) {
    for (const kind of ['baseline', 'admitlb'] as const) {
      const r = await createServicesInParallel(cluster.api, {
        total: TOTAL,
        clients: CLIENTS,
        namespaces: NAMESPACES,
        prefix: `${kind}-${round}`,
        type: kind === 'admitlb' ? 'LoadBalancer' : 'ClusterIP',
        // The same family for both, so that the only difference is admitlb.
        spec: { ipFamilies: ['IPv6'], ipFamilyPolicy: 'SingleStack' },
      });
      const rate = r.created.length / (r.elapsedMs / 1000);
      const row = { p50: percentile(r.latenciesMs, 50), p99: percentile(r.latenciesMs, 99), rate };
      results[kind].push(row);
      console.log(`${`${kind} ${round + 1}`.padEnd(26)} ${String(r.created.length).padStart(5)} ${rate.toFixed(1).padStart(8)}/s ${ms(row.p50)} ${ms(row.p99)} ${String(r.failed.length).padStart(6)}`);
      for (const f of r.failed.slice(0, 3)) console.log(`  failed: ${f.name}: ${f.status} ${f.message}`);
    }
  }
  const m = (kind: 'admitlb' | 'baseline', k: keyof Round) => median(results[kind].map((x) => x[k]));
  console.log(`\nmedians          ${'p50'.padStart(10)} ${'p99'.padStart(10)} ${'rate'.padStart(10)}`);
  for (const kind of ['admitlb', 'baseline'] as const) console.log(`${kind.padEnd(16)} ${ms(m(kind, 'p50'))} ${ms(m(kind, 'p99'))} ${m(kind, 'rate').toFixed(1).padStart(8)}/s`);
  console.log(`ratio admitlb / baseline: p50 ${(m('admitlb', 'p50') / m('baseline', 'p50')).toFixed(2)}x (goal <= 1.5), p99 ${(m('admitlb', 'p99') / m('baseline', 'p99')).toFixed(2)}x (goal <= 2), rate ${(m('admitlb', 'rate') / m('baseline', 'rate')).toFixed(2)}x`);
  const end = await checkNoAddressHeldTwice(cluster.api);
  console.log(end.problems.length === 0 ? `end state: ${end.services} LoadBalancer Services, ${end.claims} IPClaims, no address held twice` : `end state: ${end.problems.length} problems, first: ${end.problems.slice(0, 5).join('; ')}`);
  if (end.problems.length) process.exitCode = 1;
} finally {
  await cluster.close();
}
