// How fast a router withdraws a dead speaker's routes: with BFD (RFC 5880/5881) and with only the
// BGP hold timer, against BIRD 2 and FRR (zebra + bfdd + bgpd) in network namespaces on
// documentation addresses (test/bgp/lab). Root only.
//
//   hung        the speaker process SIGSTOPped: no BFD packets, no keepalives, no TCP FIN (what a
//               frozen or powered-off node looks like to the router)
//   link cut    the speaker's bridge port set down: the speaker loses carrier, the router does not
//
// Each is timed from the event to the route gone from the router's RIB (polled; one daemon query,
// birdc ~2 ms / vtysh ~40 ms, included). BFD runs at 100 ms × 3, so the bound is 300 ms; the
// hold-time runs use the smallest hold time BGP allows (3 s); the default is 90 s.
//
//   npm run bench:bfd            BENCH_ROUNDS=10 BENCH_PEERS=bird npm run bench:bfd
import { Topo, labNamespaces, sweepStale } from '../test/bgp/lab/topo.ts';
import { createPeer, peerBinaries, type PeerDaemon, type PeerKind } from '../test/bgp/lab/peers.ts';
import { SpeakerAgent } from '../test/bgp/lab/speaker.ts';
import { missingRequirements, run, sleep, waitFor } from '../test/bgp/lab/sys.ts';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const KINDS = (process.env.BENCH_PEERS?.split(',') as PeerKind[] | undefined) ?? ['bird', 'frr'];
const INTERVAL_MS = 100;
const MULT = 3;
const HOLD_S = 3;
const V4 = '203.0.113.50/32';

const missing = missingRequirements([...KINDS.flatMap((k) => peerBinaries[k]), 'zebra', 'bfdd', 'ss']);
if (missing.length) {
  console.error(`bench:bfd needs ${missing.join(', ')}`);
  process.exit(1);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const fmt = (xs: number[]) => (xs.length ? `median ${median(xs).toFixed(0)} ms, worst ${Math.max(...xs).toFixed(0)} ms` : 'n/a');

interface Lab {
  topo: Topo;
  peer: PeerDaemon;
  agent: SpeakerAgent;
}

async function createLab(kind: PeerKind, bfd: boolean): Promise<Lab> {
  const topo = await Topo.create({ nodes: ['spk', 'rtr'], bridge: true });
  const spk = topo.node('spk');
  const rtr = topo.node('rtr');
  const hold = bfd ? 90 : HOLD_S;
  const peer = createPeer(kind, { node: rtr, asn: 64512, neighbor: { address: spk.ipv4, asn: 64513, passive: true, holdTime: hold }, ...(bfd ? { bfd: { intervalMs: INTERVAL_MS, multiplier: MULT } } : {}) });
  const agent = await SpeakerAgent.spawn(spk);
  await agent.start({ asn: 64513, routerId: spk.ipv4, listen: false, holdTime: hold, connectRetry: { initialMs: 200, maxMs: 500 }, gracefulRestart: false });
  await agent.addPeer({ address: rtr.ipv4, asn: 64512, localAddress: spk.ipv4, ...(bfd ? { bfd: { minRxMs: INTERVAL_MS, minTxMs: INTERVAL_MS, multiplier: MULT } } : {}) });
  await agent.announce([[V4]]);
  await peer.start();
  return { topo, peer, agent };
}

async function ready(lab: Lab, bfd: boolean): Promise<void> {
  await waitFor('route at the router', () => lab.peer.has(V4), { timeoutMs: 60_000 });
  if (bfd) {
    await waitFor('BFD at the fast rate', async () => {
      const s = await lab.agent.peerStatus(lab.topo.node('rtr').ipv4);
      return s?.bfd?.state === 'Up' && s.bfd.txIntervalMs === INTERVAL_MS;
    }, { timeoutMs: 30_000 });
  }
  await sleep(500);
}

/** The poll that saw the route gone: when it started (ms after t0) and how long its query took. */
const queries: number[] = [];
async function withdrawnAfter(lab: Lab, t0: number): Promise<number> {
  for (let i = 0; i < 100_000; i++) {
    const at = performance.now();
    if (!(await lab.peer.has(V4))) {
      queries.push(performance.now() - at);
      return at - t0;
    }
    if (at - t0 > 30_000) break;
    await sleep(2);
  }
  throw new Error('the route was not withdrawn within 30 s');
}

async function hung(lab: Lab): Promise<number> {
  const t0 = performance.now();
  process.kill(lab.agent.pid!, 'SIGSTOP');
  try {
    return await withdrawnAfter(lab, t0);
  } finally {
    process.kill(lab.agent.pid!, 'SIGCONT');
  }
}

async function linkCut(lab: Lab): Promise<number> {
  const sw = lab.topo.switchPort('spk');
  const t0 = performance.now();
  await run('ip', ['-n', sw.ns, 'link', 'set', sw.port, 'down']);
  try {
    return await withdrawnAfter(lab, t0);
  } finally {
    await run('ip', ['-n', sw.ns, 'link', 'set', sw.port, 'up']);
  }
}

await sweepStale();
const rows: string[] = [];
let exitCode = 0;
for (const kind of KINDS) {
  const results: Record<string, number[]> = {};
  queries.length = 0;
  for (const bfd of [true, false]) {
    const lab = await createLab(kind, bfd);
    try {
      const rounds = bfd ? ROUNDS : Math.min(ROUNDS, 3);
      for (const [name, fn] of [['hung', hung], ['link cut', linkCut]] as const) {
        const key = `${name} ${bfd ? 'bfd' : 'hold'}`;
        results[key] = [];
        for (let i = 0; i < rounds; i++) {
          await ready(lab, bfd);
          results[key].push(await fn(lab));
        }
      }
    } catch (err) {
      console.error(`${kind} (${bfd ? 'BFD' : 'hold time'}): ${(err as Error).message}`);
      exitCode = 1;
    } finally {
      await lab.agent.stop().catch(() => {});
      await lab.peer.destroy().catch(() => {});
      await lab.topo.destroy();
    }
  }
  rows.push(`${kind}: one router query takes ${fmt(queries)} (included below)`);
  for (const name of ['hung', 'link cut']) {
    rows.push(`${kind.padEnd(5)} ${name.padEnd(9)} BFD ${INTERVAL_MS} ms × ${MULT} (bound ${INTERVAL_MS * MULT} ms): ${fmt(results[`${name} bfd`] ?? [])}   |   hold time ${HOLD_S} s, no BFD: ${fmt(results[`${name} hold`] ?? [])}   |   default hold time 90 s`);
  }
}

console.log(`\nroute withdrawn at the router after the speaker dies (${ROUNDS} rounds with BFD, up to 3 with the hold timer)`);
for (const r of rows) console.log(r);
if ((await labNamespaces()).length) console.error('lab namespaces left behind');
process.exit(exitCode);
