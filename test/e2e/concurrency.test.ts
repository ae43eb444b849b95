// Two `admitlb webhook` processes behind one URL (a round-robin TCP proxy, as a Service spreads
// connections over replicas), 50 parallel clients creating 500 Services: no address ends up held twice,
// and the IPClaims are exactly the assigned addresses. The two processes share nothing but the API
// server: the IPClaim create is the only lock.
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { checkNoAddressHeldTwice, createServicesInParallel, namespace, percentile, pool, startMultiWebhookCluster, type MultiWebhookCluster } from './cluster-helpers.ts';
import { apiRequest } from '../../src/cmd/sandbox.ts';

const TOTAL = 500;
const CLIENTS = 50;
const NAMESPACES = ['load-a', 'load-b', 'load-c', 'load-d', 'load-e'];

let cluster: MultiWebhookCluster;

before(async () => {
  cluster = await startMultiWebhookCluster('concurrency', {
    count: 2,
    // 768 IPv4 addresses in one pool: enough for 500 with the allocator fighting over the low end.
    pools: [pool('load', { addresses: ['192.0.2.0/24', '198.51.100.0/24', '203.0.113.0/24'] })],
  });
  for (const ns of NAMESPACES) {
    const r = await apiRequest(cluster.api, 'POST', '/api/v1/namespaces', namespace(ns));
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
});
after(async () => {
  await cluster?.close();
});

it(`${TOTAL} Services from ${CLIENTS} parallel clients through two webhook processes: no address held twice`, async () => {
  const result = await createServicesInParallel(cluster.api, { total: TOTAL, clients: CLIENTS, namespaces: NAMESPACES });
  assert.deepEqual(result.failed, [], 'every create succeeds (retryable claim races are retried by the client)');
  assert.equal(result.created.length, TOTAL);
  const assigned = result.created.map((c) => c.assigned);
  assert.ok(assigned.every((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a)), 'one IPv4 address each, returned in the create response');
  assert.equal(new Set(assigned).size, TOTAL, 'no address handed out twice');

  const end = await checkNoAddressHeldTwice(cluster.api);
  assert.deepEqual(end.problems, [], `client retries: ${JSON.stringify(result.retried, null, 1)}`);
  assert.equal(end.services, TOTAL);
  // A webhook call that timed out after its claim was written leaves that claim without a Service (the
  // create failed; the client's retry got another address): an orphan by design, which the controller
  // releases after a grace period. Only those are tolerated, and only for Services whose create was
  // retried after such a failure; on an unloaded machine there are none.
  const timedOut = new Set(result.retried.filter((r) => r.status >= 500).map((r) => r.name));
  const unexplained = end.orphans.filter((o) => !timedOut.has(o.match(/\((\S+)\)$/)?.[1] ?? ''));
  assert.deepEqual(unexplained, [], 'every IPClaim backs a Service');
  if (end.orphans.length) console.log(`# ${end.orphans.length} claim(s) orphaned by timed-out webhook calls: ${end.orphans.join('; ')}`);
  assert.equal(end.claims, TOTAL + end.orphans.length, 'one IPClaim per address');

  // Both processes took part.
  assert.ok(cluster.proxy.connections.every((n) => n > 0), `connections per process: ${cluster.proxy.connections}`);
  const decisions = await cluster.decisionsPerProcess();
  assert.ok(decisions.every((n) => n > 0), `decisions per process: ${decisions}`);
  assert.ok(decisions.reduce((a, b) => a + b, 0) >= TOTAL, 'every create was decided by a webhook process');
  // The double reports each webhook call it makes; kube-apiserver does not (only clients' latency then).
  const mutating = cluster.calls?.filter((c) => c.webhook === 'services.admitlb.io' && c.ok);
  if (mutating) assert.ok(mutating.length >= TOTAL);

  const ms = (v: number) => `${v.toFixed(1)} ms`;
  const lat = mutating?.map((c) => c.durationMs);
  console.log(
    `# ${cluster.target}: ${TOTAL} Services, ${CLIENTS} clients, 2 webhook processes: ${(TOTAL / (result.elapsedMs / 1000)).toFixed(0)} Services/s; ` +
      (lat ? `admission p50 ${ms(percentile(lat, 50))} p99 ${ms(percentile(lat, 99))} (seen by the API server); ` : '') +
      `create p50 ${ms(percentile(result.latenciesMs, 50))} p99 ${ms(percentile(result.latenciesMs, 99))} (seen by clients); ` +
      `client retries ${result.retries}; decisions per process ${decisions.join('/')}`,
  );
});
