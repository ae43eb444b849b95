// The speaker's failover and election cost, end to end in network namespaces (test/speaker/lab.ts:
// the sandbox API double in this process, three `admitlb speaker` child processes in node
// namespaces with heartbeats on (the installed configuration: 100 ms × 3, node Lease renewed every
// 10 s), a client and a BIRD router on one segment, documentation addresses only). Root only.
//
//   L2 failover     the owner's speaker SIGKILLed → the client's neighbour entry for the address
//                   points at the new owner (polled every 5 ms); the killed speaker is restarted
//                   and takes the address back between rounds. Median and worst of BENCH_ROUNDS.
//   election cost   API requests and writes per second (and bytes per second through each node's
//                   API path) from the three speakers, idle, with 10 and with 1,000 Services.
//   create → RIB    `kubectl create` of a LoadBalancer Service (its EndpointSlice already there)
//                   returning → the /32 in BIRD's RIB (first path, then all three).
//   1,000 nodes     the same membership and election code with 1,000 simulated speakers in this
//                   process (bench/heartbeat-sim.ts): writes/s, CPU and memory per node, time for
//                   all to agree after one dies.
//
//   npm run bench:failover            BENCH_ROUNDS=20 BENCH_SERVICES=1000 npm run bench:failover
import https from 'node:https';
import { stringify as stringifyYaml } from 'yaml';
import { pool } from '../test/e2e/cluster-helpers.ts';
import { missingRequirements } from '../test/bgp/lab/sys.ts';
import { MultiBird, SpeakerLab, labNamespaces, sleep, waitFor } from '../test/speaker/lab.ts';
import { apiRequest, objectBody } from '../src/cmd/sandbox.ts';
import { simulate } from './heartbeat-sim.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const SERVICES = Number(process.env.BENCH_SERVICES ?? 1000);
// Long enough for every node to renew its Lease (every 10 s) at least twice.
const WINDOW_MS = Number(process.env.BENCH_WINDOW_MS ?? 30_000);
const NODES = ['node-a', 'node-b', 'node-c'];

const missing = missingRequirements(['arping', 'ping', 'kubectl', 'bird', 'birdc', 'ss']);
if (missing.length) {
  console.error(`bench:failover needs ${missing.join(', ')}`);
  process.exit(1);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmt = (xs: number[]) => `median ${median(xs).toFixed(0)} ms, worst ${Math.max(...xs).toFixed(0)} ms, best ${Math.min(...xs).toFixed(0)} ms  [${xs.map((x) => x.toFixed(0)).join(', ')}]`;

const lab = await SpeakerLab.create({ nodes: NODES, extra: ['client', 'router'] });
let exitCode = 0;
try {
  const client = lab.node('client');
  const rtr = lab.node('router');
  const bird = new MultiBird(lab, rtr, 64512, NODES.map((n) => ({ name: n, address: lab.nodes[n]!.ipv4, asn: 64513 })), 9);
  await bird.start();
  await lab.apply(
    pool('lab', { addresses: ['192.0.2.200-192.0.2.239'] }),
    // 1,024 addresses for the election-cost Services (IPv6: the documentation IPv4 ranges are too small).
    pool('bulk', { addresses: ['2001:db8:3::/118'], autoAssign: false }),
  );
  await lab.cluster.waitForPool('lab');
  await lab.cluster.waitForPool('bulk');
  await lab.apply(
    { apiVersion: 'admitlb.io/v1alpha1', kind: 'L2Advertisement', metadata: { name: 'lab' }, spec: { ipPools: ['lab', 'bulk'] } },
    { apiVersion: 'admitlb.io/v1alpha1', kind: 'BGPPeer', metadata: { name: 'bird' }, spec: { peerAddress: rtr.ipv4, peerASN: 64512, myASN: 64513, holdTime: 9 } },
    { apiVersion: 'admitlb.io/v1alpha1', kind: 'BGPAdvertisement', metadata: { name: 'lab' }, spec: { ipPools: ['lab', 'bulk'], communities: ['65000:42'] } },
  );
  await Promise.all(NODES.map((n) => lab.startSpeaker(n)));
  await waitFor('three BGP sessions', async () => (await bird.established()).length === 3, { timeoutMs: 20_000, intervalMs: 100 });
  console.log(`lab: ${NODES.length} speakers (heartbeats every ${lab.heartbeat?.intervalMs} ms, dead after ${lab.heartbeat?.missed} missed; node Lease ${lab.leaseSeconds} s renewed every ${lab.renewMs} ms: the speaker's defaults), client, BIRD; ${ROUNDS} rounds`);

  // ---- L2 failover ----
  await lab.kubectlOk(['create', 'service', 'loadbalancer', 'web', '--tcp=80:80']);
  const vip = (await waitFor('web assigned', async () => (await lab.kubectlOk(['get', 'svc', 'web', '-o', 'jsonpath={.metadata.annotations.admitlb\\.io/assigned-ips}'])).trim()));
  await lab.apply(lab.endpointSlice('web', ['node-a']));
  const owners = async () => {
    const h = await lab.holders(vip);
    return h.length === 1 ? h[0]! : null;
  };
  const failovers: number[] = [];
  const path: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const owner = await waitFor('one owner', owners, { timeoutMs: 20_000, intervalMs: 50 });
    await waitFor('client neighbour on the owner', async () => (await lab.ping(client, vip)) && (await lab.neigh(client, vip)) === lab.macs[owner], { timeoutMs: 10_000, intervalMs: 50 });
    const t0 = performance.now();
    await lab.killSpeaker(owner);
    let t = 0;
    let to = '';
    for (const deadline = t0 + 15_000; ; ) {
      const mac = await lab.neigh(client, vip);
      to = Object.keys(lab.macs).find((k) => lab.macs[k] === mac && k !== owner) ?? '';
      if (to) {
        t = performance.now() - t0;
        break;
      }
      if (performance.now() > deadline) throw new Error(`round ${round}: no takeover from ${owner}\n${lab.logs()}`);
      await sleep(5);
    }
    failovers.push(t);
    path.push(`${owner}→${to}`);
    // Restart the killed speaker; it comes back live and (rendezvous hashing) takes the address back.
    await lab.startSpeaker(owner);
    await waitFor('the restarted owner holds it again', async () => (await owners()) === owner, { timeoutMs: 20_000, intervalMs: 50 }).catch(async (err: Error) => {
      throw new Error(`round ${round}: ${err.message}; holders ${await lab.holders(vip)}\n${lab.logs(40)}`);
    });
  }
  console.log(`\nL2 failover, owner's speaker SIGKILLed → client's neighbour entry on the new owner (${ROUNDS} rounds):`);
  console.log(`  ${fmt(failovers)}`);
  console.log(`  moves: ${path.join(' ')}`);
  console.log(`  goal ≤ 500 ms median: ${median(failovers) <= 500 ? 'met' : 'NOT met'}`);

  // ---- election cost ----
  const agent = new https.Agent({ keepAlive: true, maxSockets: 20 });
  const api = lab.cluster.sandbox.api;
  let created = 1; // web
  async function createBulk(total: number): Promise<void> {
    let next = created;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        for (let i = next++; i < total; i = next++) {
          const body = { apiVersion: 'v1', kind: 'Service', metadata: { name: `bulk-${i}`, annotations: { 'admitlb.io/pool': 'bulk' } }, spec: { type: 'LoadBalancer', allocateLoadBalancerNodePorts: false, ipFamilies: ['IPv6'], ipFamilyPolicy: 'SingleStack', selector: { app: `b${i}` }, ports: [{ port: 80, protocol: 'TCP' }] } };
          for (let attempt = 0; ; attempt++) {
            const r = await apiRequest(api, 'POST', '/api/v1/namespaces/default/services', body, agent);
            if (r.status === 201) break;
            if (attempt >= 5) throw new Error(`creating bulk-${i}: ${r.status} ${JSON.stringify(objectBody(r).message ?? r.body)}`);
          }
        }
      }),
    );
    console.log(`  (created ${total - created} Services in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
    created = total;
  }
  async function measure(label: string): Promise<number> {
    const settled = await lab.quiet(); // the controller has finished the Services (status, claims)
    await sleep(2000);
    const before = Object.fromEntries(NODES.map((n) => [n, { ...lab.bytes[n]! }]));
    lab.startRecording();
    const t0 = performance.now();
    await sleep(WINDOW_MS);
    const reqs = lab.stopRecording();
    const secs = (performance.now() - t0) / 1000;
    const byKind = new Map<string, number>();
    for (const r of reqs) {
      const path = r.url.split('?')[0]!.replace(/\/(leases|events)\/[^/]+$/, '/$1/NAME');
      const k = `${r.method} ${path}${r.url.includes('watch=') ? ' (watch)' : ''}`;
      byKind.set(k, (byKind.get(k) ?? 0) + 1);
    }
    const rate = reqs.length / secs;
    // Writes per node from the gaps between its own writes (a window counts 2 or 3 renewals by phase).
    const writeRates = NODES.map((n) => {
      const at = reqs.filter((r) => r.node === n && r.method !== 'GET').map((r) => r.at);
      return at.length >= 2 ? ((at.length - 1) * 1000) / (at[at.length - 1]! - at[0]!) : at.length / secs;
    });
    const writesPerNode = writeRates.reduce((a, b) => a + b, 0) / NODES.length;
    const down = NODES.reduce((s, n) => s + lab.bytes[n]!.down - before[n]!.down, 0) / secs;
    const up = NODES.reduce((s, n) => s + lab.bytes[n]!.up - before[n]!.up, 0) / secs;
    console.log(`${label} (cluster quiet after ${(settled / 1000).toFixed(0)} s): ${rate.toFixed(2)} API requests/s from ${NODES.length} speakers (${(rate / NODES.length).toFixed(2)} per node); API writes ${writesPerNode.toFixed(3)}/s per node (goal ≤ 0.1: ${writesPerNode <= 0.1 ? 'met' : 'NOT met'}); ${(down / 1024).toFixed(1)} KiB/s API→speakers, ${(up / 1024).toFixed(1)} KiB/s speakers→API (TLS bytes)`);
    for (const [k, v] of [...byKind].sort((a, b) => b[1] - a[1])) console.log(`    ${(v / secs).toFixed(2)}/s  ${k}`);
    return rate;
  }
  console.log(`\nElection cost (idle, ${WINDOW_MS / 1000} s windows; Services without endpoints are verified and planned, not announced):`);
  await createBulk(10);
  const r10 = await measure('  10 Services');
  await createBulk(SERVICES);
  const rN = await measure(`  ${SERVICES} Services`);
  console.log(`  ratio ${SERVICES} / 10 Services: ${(rN / r10).toFixed(2)} (expected 1: only the Lease renewals, ${NODES.length} × 1000/${lab.renewMs} per second, and watch re-establishments)`);
  agent.destroy();

  // ---- create → route in BIRD ----
  const firstPath: number[] = [];
  const allPaths: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const name = `rib-${i}`;
    await lab.apply(lab.endpointSlice(name, ['node-b']));
    const manifest = { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec: { type: 'LoadBalancer', selector: { app: name }, ports: [{ name: 'p0-80', port: 80, protocol: 'TCP', targetPort: 80 }] } };
    const r = await lab.cluster.kubectl(['create', '-f', '-', '-o', 'jsonpath={.metadata.annotations.admitlb\\.io/assigned-ips}'], stringifyYaml(manifest));
    const t0 = performance.now();
    if (r.code !== 0) throw new Error(`kubectl create ${name}: ${r.stderr}`);
    const prefix = `${r.stdout.trim()}/32`;
    let first = 0;
    for (const deadline = t0 + 10_000; ; ) {
      const n = (await bird.paths(prefix)).length;
      if (n > 0 && !first) first = performance.now() - t0;
      if (n === NODES.length) break;
      if (performance.now() > deadline) throw new Error(`${prefix} not in BIRD (${n} paths)\n${lab.logs()}`);
      await sleep(2);
    }
    firstPath.push(first);
    allPaths.push(performance.now() - t0);
    await lab.kubectlOk(['delete', 'svc', name, '--wait=false']);
    await waitFor(`${prefix} withdrawn`, async () => (await bird.paths(prefix)).length === 0, { timeoutMs: 10_000, intervalMs: 20 });
  }
  console.log(`\nkubectl create returned → /32 in BIRD's RIB (${ROUNDS} rounds; ${SERVICES} Services in the cluster):`);
  console.log(`  first path:  ${fmt(firstPath)}`);
  console.log(`  all 3 paths: ${fmt(allPaths)}`);
  console.log(`  goal < 1000 ms median: ${median(firstPath) < 1000 ? 'met' : 'NOT met'}`);

  // ---- the same code with 1,000 simulated nodes (after the lab work: it would load the machine) ----
  console.log('');
  for (const l of simulate({ nodes: Number(process.env.SIM_NODES ?? 1000) }).lines) console.log(l);
} catch (err) {
  console.error(err);
  exitCode = 1;
} finally {
  await lab.destroy();
  const left = await labNamespaces();
  if (left.length) {
    console.error(`lab namespaces left behind: ${left.join(', ')}`);
    exitCode = 1;
  }
}
process.exit(exitCode);
