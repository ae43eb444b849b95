// The speakers' membership and election code driven with N simulated nodes in one process, on a
// fake clock (no sockets, no root): what 1,000 speakers on one segment would cost and how fast they
// agree after one dies. Run alone (`node --import tsx bench/heartbeat-sim.ts`, SIM_NODES=1000) or
// from bench/failover.bench.ts.
//
//   API writes      every node renews its node Lease every renewMs (NodeLease's cadence in heartbeat
//                   mode): writes/s per node and in total, and the watch events the API server fans
//                   out (every speaker watches every Lease).
//   heartbeats      every node sends one packet per interval to every other member: packets/s per
//                   node; CPU per node measured on SAMPLE receivers that authenticate every packet
//                   (decodeHeartbeat: HMAC-SHA256) and feed PeerLiveness, plus the sender's encode;
//                   memory per node = PeerLiveness state for N members.
//   agreement       one node stops sending (killed) at a random phase; every other node's PeerLiveness
//                   (all N, fed with the decoded packets, 0–2 ms delivery jitter) drops it; the time
//                   until the last one has, and whether all then agree on the live set and on the
//                   owners of 1,000 groups (hasQuorum + ownerOf, as plan.ts does).
import { randomBytes } from 'node:crypto';
import { OwnerCache, groupKeyFor, hasQuorum, ownerOf } from '../src/speaker/election.ts';
import { PeerLiveness, decodeHeartbeat, encodeHeartbeat, type Heartbeat } from '../src/speaker/heartbeat.ts';

export interface SimResult {
  lines: string[];
  agreeMs: number;
  writesPerNode: number;
}

export function simulate(opts: { nodes?: number; intervalMs?: number; missed?: number; renewMs?: number; samples?: number; lossRate?: number } = {}): SimResult {
  const N = opts.nodes ?? 1000;
  const interval = opts.intervalMs ?? 100;
  const missed = opts.missed ?? 3;
  const renewMs = opts.renewMs ?? 10_000;
  const samples = Math.min(opts.samples ?? 10, N);
  const loss = opts.lossRate ?? 0;
  const key = randomBytes(32);
  const names = Array.from({ length: N }, (_, i) => `node-${String(i).padStart(4, '0')}`);
  // Deterministic pseudo-random phases and jitter (a small LCG: reproducible runs).
  let rnd = 12345;
  const rand = () => ((rnd = (rnd * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const phase = names.map(() => Math.floor(rand() * interval));

  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  let heapPerNode = NaN;
  const views = names.map((self) => {
    const pl = new PeerLiveness({ self, intervalMs: interval, missed });
    pl.setMembers(names);
    return pl;
  });

  const killed = N - 1;
  const tKill = 4 * interval + Math.floor(rand() * interval);
  const tEnd = tKill + (missed + 2) * interval;
  const seq = new Array<bigint>(N).fill(0n);
  let encodeMs = 0;
  let sampleMs = 0;
  let _sampleOps = 0;
  let falseDeaths = 0;
  let delivered = 0;
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  for (let t = 0; t < tEnd; t++) {
    if (t === tKill - 1) {
      // Every node tracks every member now: the steady-state memory.
      gc?.();
      heapPerNode = (process.memoryUsage().heapUsed - heapBefore) / N;
    }
    for (let i = 0; i < N; i++) {
      if ((t - phase[i]!) % interval !== 0 || t < phase[i]!) continue;
      if (i === killed && t >= tKill) continue;
      seq[i]!++;
      const hb: Heartbeat = { node: names[i]!, incarnation: 1n, seq: seq[i]!, leaving: false };
      const e0 = performance.now();
      const packet = encodeHeartbeat(hb, key);
      encodeMs += performance.now() - e0;
      for (let j = 0; j < N; j++) {
        if (j === i || (loss > 0 && rand() < loss)) continue;
        const at = t + rand() * 2;
        if (j < samples) {
          // The full receive path on the sample nodes: authenticate, then the state machine.
          const s0 = performance.now();
          const d = decodeHeartbeat(packet, [key]);
          if (d.ok) views[j]!.receive(d.heartbeat, at);
          sampleMs += performance.now() - s0;
          _sampleOps++;
        } else {
          views[j]!.receive(hb, at);
        }
        delivered++;
      }
    }
    // False suspicion (loss only): live peers missing from a sample node's heard set before the kill.
    if (loss > 0 && t > missed * interval && t < tKill && t % interval === 0) for (let j = 0; j < samples; j++) falseDeaths += N - views[j]!.heard(t).size;
  }
  const cpu = process.cpuUsage(cpu0);
  const wallMs = performance.now() - wall0;

  // When did each survivor drop the killed node? heard(t) is monotone in t for it after tKill.
  const dropAt = (j: number): number => {
    let lo = tKill;
    let hi = tEnd;
    if (views[j]!.heard(hi).has(names[killed]!)) return Infinity;
    while (hi - lo > 0.5) {
      const mid = (lo + hi) / 2;
      if (views[j]!.heard(mid).has(names[killed]!)) lo = mid;
      else hi = mid;
    }
    return hi;
  };
  const drops = names.map((_, j) => (j === killed ? 0 : dropAt(j) - tKill)).filter((_, j) => j !== killed);
  const agreeMs = Math.max(...drops);
  const firstMs = Math.min(...drops);

  // Agreement on the outcome: every survivor's live set and its owners of 1,000 groups.
  const liveKey = new Set<string>();
  const groups = Array.from({ length: 1000 }, (_, g) => groupKeyFor({ namespace: 'default', name: `s${g}`, addresses: [`2001:db8:3::${g.toString(16)}`] }));
  const known = names;
  const ownersOf = (j: number, cache?: OwnerCache, at = tEnd) => {
    const heard = views[j]!.heard(at);
    if (!hasQuorum(known, heard)) return 'no quorum';
    const cands = known.filter((n) => heard.has(n));
    cache?.setUniverse(names);
    return groups.map((g) => (cache ? cache.ownerOf(g, cands) : ownerOf(g, cands))).join();
  };
  // One node's election pass: without the memo, then with it cold (before the death) and warm
  // (after it: what a failover costs once the speaker has run a pass).
  // CPU time, as above.
  const cpuMs = <T>(f: () => T): [T, number] => {
    const c0 = process.cpuUsage();
    const r = f();
    const c = process.cpuUsage(c0);
    return [r, (c.user + c.system) / 1000];
  };
  const [reference, electionMs] = cpuMs(() => ownersOf(0));
  const cache = new OwnerCache();
  const [, coldMs] = cpuMs(() => ownersOf(0, cache, tKill - 1));
  const [warm, warmMs] = cpuMs(() => ownersOf(0, cache));
  if (warm !== reference) throw new Error('OwnerCache disagrees with ownerOf');
  let disagree = 0;
  for (let j = 0; j < N - 1; j++) {
    liveKey.add([...views[j]!.heard(tEnd)].filter((n) => n !== names[j]).length.toString());
    if (j % 100 === 0 && ownersOf(j) !== reference) disagree++;
  }

  const simSeconds = tEnd / 1000;
  const sendsPerNode = (N - 1) * (1000 / interval);
  // CPU per node from CPU time, not wall time (a shared machine stretches wall time): one second of
  // one node's traffic, authenticated and fed to a fresh PeerLiveness, and its own sends.
  const one = new PeerLiveness({ self: names[0]!, intervalMs: interval, missed });
  one.setMembers(names);
  const second: Buffer[] = [];
  for (let k = 1; k <= 1000 / interval; k++) for (let i = 1; i < N; i++) second.push(encodeHeartbeat({ node: names[i]!, incarnation: 2n, seq: BigInt(k), leaving: false }, key));
  let c0 = process.cpuUsage();
  for (const [k, p] of second.entries()) {
    const d = decodeHeartbeat(p, [key]);
    if (d.ok) one.receive(d.heartbeat, k / (N - 1) * interval);
  }
  let c = process.cpuUsage(c0);
  const perPacketSample = (c.user + c.system) / 1000 / second.length;
  c0 = process.cpuUsage();
  for (let k = 0; k < 1000; k++) encodeHeartbeat({ node: names[0]!, incarnation: 3n, seq: BigInt(k), leaving: false }, key);
  c = process.cpuUsage(c0);
  const encodePerPacket = (c.user + c.system) / 1000 / 1000;
  const cpuPerNodeMs = perPacketSample * sendsPerNode + encodePerPacket * (1000 / interval);
  void sampleMs;
  void encodeMs;
  const writesPerNode = 1000 / renewMs;
  const lines = [
    `simulated ${N} speakers on one segment (heartbeat ${interval} ms × ${missed}, node Lease every ${renewMs / 1000} s), ${simSeconds.toFixed(2)} s of fake time in ${(wallMs / 1000).toFixed(1)} s (${((cpu.user + cpu.system) / 1e6).toFixed(1)} s CPU)`,
    `  API writes: ${writesPerNode.toFixed(2)}/s per node, ${(writesPerNode * N).toFixed(0)}/s in total (independent of Services); watch events fanned out by the API server: ${(writesPerNode * N * N).toFixed(0)}/s`,
    `  heartbeats: ${sendsPerNode.toFixed(0)} packets/s sent and received per node (${(delivered / simSeconds / N).toFixed(0)} delivered/s per node in the run), ${((sendsPerNode * 90 * 8) / 1e6).toFixed(1)} Mbit/s each way per node (≈ 90-byte UDP/IPv4 frames)`,
    `  CPU per node: ${cpuPerNodeMs.toFixed(1)} ms/s (${(cpuPerNodeMs / 10).toFixed(1)} % of a core): authenticate + state machine ${(perPacketSample * 1000).toFixed(2)} µs per packet, encode ${(encodePerPacket * 1000).toFixed(2)} µs per interval (process CPU time, one node's second of traffic; the run itself also authenticated every packet on ${samples} sample nodes)`,
    `  memory per node: ${(heapPerNode / 1024).toFixed(0)} KiB of PeerLiveness state for ${N} members (heap growth / nodes${gc ? ', after GC' : ', no --expose-gc: includes garbage'})`,
    `  node killed at a random phase: first survivor dropped it after ${firstMs.toFixed(0)} ms, all ${N - 1} after ${agreeMs.toFixed(0)} ms (dead interval ${interval * missed} ms, jitter 0–2 ms); live-set sizes after: ${[...liveKey].join('/')} peers; owners of 1,000 groups equal on ${Math.ceil((N - 1) / 100) - disagree} of ${Math.ceil((N - 1) / 100)} sampled nodes`,
    `  one node's election pass over ${N} candidates × 1,000 groups (hasQuorum + ownerOf), CPU time: ${electionMs.toFixed(0)} ms without the memo; with OwnerCache ${coldMs.toFixed(0)} ms on the first pass, ${warmMs.toFixed(1)} ms after the death (same owners)`,
    `  → all ${N - 1} survivors agree on the new owners ≈ ${(agreeMs + warmMs).toFixed(0)} ms after the death (liveness + a warm election pass; apply and gratuitous ARP come on top)`,
    ...(loss > 0 ? [`  loss ${(loss * 100).toFixed(1)} %: ${falseDeaths} false deaths seen by ${samples} sample nodes`] : []),
  ];
  return { lines, agreeMs, writesPerNode };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = simulate({ nodes: Number(process.env.SIM_NODES ?? 1000) });
  for (const l of r.lines) console.log(l);
}
