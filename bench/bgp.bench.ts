// BGP bulk-transfer benchmark: N /32 routes (198.18.0.0/15) to a BIRD 2 receiver, from our speaker
// and from gobgpd, each loaded before the session opens. Time = BIRD's own clock, from the
// protocol going Established to the last route's import timestamp. Prints the median of RUNS runs
// and our time as a ratio to GoBGP's. Runs inside throwaway network namespaces; needs root, bird2,
// gobgpd. Usage: npm run bench:bgp [-- --runs 3 --sizes 10000,100000]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Topo, sweepStale, type LabNode } from '../test/bgp/lab/topo.ts';
import { SpeakerAgent } from '../test/bgp/lab/speaker.ts';
import { missingRequirements, run, sleep, waitFor } from '../test/bgp/lab/sys.ts';

const args = process.argv.slice(2);
const argValue = (name: string) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const RUNS = Number(argValue('--runs') ?? 3);
const SIZES = (argValue('--sizes') ?? '10000,100000').split(',').map(Number);
const SENDER_AS = 64513;
const RECEIVER_AS = 64512;

const missing = missingRequirements(['bird', 'birdc', 'gobgpd', 'gobgp', 'ss']);
if (missing.length) {
  console.log(`bench:bgp needs ${missing.join(', ')}; not run.`);
  process.exit(process.env.CI === 'true' ? 1 : 0);
}

function prefixOf(i: number): [number, number, number, number] {
  const n = (198 << 24) + (18 << 16) + i;
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
}

/** MRT TABLE_DUMP_V2 (RFC 6396): a PEER_INDEX_TABLE, then one RIB_IPV4_UNICAST record per route. */
function writeMrt(file: string, count: number, nextHop: string): void {
  const now = Math.floor(Date.now() / 1000);
  const record = (subtype: number, body: Buffer) => {
    const h = Buffer.alloc(12);
    h.writeUInt32BE(now, 0);
    h.writeUInt16BE(13, 4);
    h.writeUInt16BE(subtype, 6);
    h.writeUInt32BE(body.length, 8);
    return Buffer.concat([h, body]);
  };
  const nh = nextHop.split('.').map(Number);
  const peerIndex = Buffer.from([...[198, 51, 100, 1], 0, 0, 0, 1, 0x02, ...[198, 51, 100, 1], ...nh, 0, 0, SENDER_AS >> 8, SENDER_AS & 255]);
  // ORIGIN IGP, empty AS_PATH (gobgpd prepends its AS on eBGP), NEXT_HOP.
  const attrs = Buffer.from([0x40, 1, 1, 0, 0x40, 2, 0, 0x40, 3, 4, ...nh]);
  const chunks: Buffer[] = [record(1, peerIndex)];
  const rib = (seq: number, i: number) => {
    const b = Buffer.alloc(4 + 1 + 4 + 2 + 2 + 4 + 2 + attrs.length);
    b.writeUInt32BE(seq, 0);
    b[4] = 32;
    Buffer.from(prefixOf(i)).copy(b, 5);
    b.writeUInt16BE(1, 9);
    b.writeUInt16BE(0, 11);
    b.writeUInt32BE(now, 13);
    b.writeUInt16BE(attrs.length, 17);
    attrs.copy(b, 19);
    return record(2, b);
  };
  for (let i = 0; i < count; i++) chunks.push(rib(i, i));
  // NETLAB §7: `gobgp mrt inject` drops the last few hundred records; pad with duplicates of route 0.
  for (let i = 0; i < 3000; i++) chunks.push(rib(count + i, 0));
  writeFileSync(file, Buffer.concat(chunks));
}

interface Bird {
  child: ChildProcess;
  ctl: string;
}

async function startBird(node: LabNode, dir: string, neighbor: string): Promise<Bird> {
  const conf = join(dir, 'bird.conf');
  const ctl = join(dir, 'bird.ctl');
  writeFileSync(
    conf,
    `router id ${node.ipv4};
timeformat protocol iso long ms;
timeformat route iso long ms;
protocol device {}
ipv4 table bgp4;
protocol bgp spk {
  local ${node.ipv4} as ${RECEIVER_AS};
  neighbor ${neighbor} as ${SENDER_AS};
  connect delay time 1;
  hold time 90;
  ipv4 { table bgp4; import all; export none; };
}
`,
  );
  const child = spawn('ip', ['netns', 'exec', node.ns, 'setpriv', '--pdeathsig', 'KILL', '--', 'bird', '-f', '-c', conf, '-s', ctl, '-P', join(dir, 'bird.pid')], { stdio: 'ignore' });
  await waitFor('bird control socket', async () => /ready/.test((await run('birdc', ['-s', ctl, 'show status'])).stdout));
  return { child, ctl };
}

const birdc = async (b: Bird, cmd: string, timeoutMs = 30_000) => (await run('birdc', ['-s', b.ctl, cmd], { timeoutMs })).stdout;
const parseTs = (s: string) => Date.parse(`${s.replace(' ', 'T')}Z`);

/** Waits for N imported routes, then reads Established and last-import times from BIRD. */
async function measure(b: Bird, count: number): Promise<number> {
  await waitFor(
    `${count} routes in BIRD`,
    async () => {
      const m = /Routes:\s+(\d+) imported/.exec(await birdc(b, 'show protocols all spk'));
      return m !== null && Number(m[1]) >= count;
    },
    { timeoutMs: 120_000, intervalMs: 20 },
  );
  const proto = await birdc(b, 'show protocols spk');
  const since = /spk\s+BGP\s+\S+\s+up\s+(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)/.exec(proto);
  if (!since) throw new Error(`cannot read the Established time from: ${proto}`);
  const table = await birdc(b, 'show route table bgp4', 60_000);
  let last = 0;
  for (const m of table.matchAll(/\[spk (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)/g)) last = Math.max(last, parseTs(m[1]!));
  return (last - parseTs(since[1]!)) / 1000;
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

function rssOf(pid: number | undefined): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

interface RunResult {
  seconds: number;
  senderRss: number;
  heapPerRoute?: number;
}

async function runOurs(count: number): Promise<RunResult> {
  const topo = await Topo.create({ nodes: ['spk', 'rtr'] });
  const dir = mkdtempSync(join(tmpdir(), 'admitlb-bench-'));
  let bird: Bird | null = null;
  const agent = await SpeakerAgent.spawn(topo.node('spk'), ['--expose-gc']);
  try {
    const spk = topo.node('spk');
    const rtr = topo.node('rtr');
    await agent.start({ asn: SENDER_AS, routerId: spk.ipv4, listen: { port: 179 }, families: ['ipv4'], gracefulRestart: false });
    const loaded = await agent.call<{ heapBytesPerRoute: number }>('announceBench', { count });
    await agent.addPeer({ address: rtr.ipv4, asn: RECEIVER_AS, passive: true });
    bird = await startBird(rtr, dir, spk.ipv4);
    const seconds = await measure(bird, count);
    const mem = await agent.call<{ rss: number }>('memory');
    return { seconds, senderRss: mem.rss, heapPerRoute: loaded.heapBytesPerRoute };
  } finally {
    await agent.stop();
    if (bird) await stopChild(bird.child);
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runGobgp(count: number): Promise<RunResult> {
  const topo = await Topo.create({ nodes: ['spk', 'rtr'] });
  const dir = mkdtempSync(join(tmpdir(), 'admitlb-bench-'));
  let bird: Bird | null = null;
  let gobgpd: ChildProcess | null = null;
  try {
    const spk = topo.node('spk');
    const rtr = topo.node('rtr');
    writeFileSync(
      join(dir, 'gobgpd.toml'),
      `[global.config]
  as = ${SENDER_AS}
  router-id = "${spk.ipv4}"
  local-address-list = ["${spk.ipv4}"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "${rtr.ipv4}"
    peer-as = ${RECEIVER_AS}
  [neighbors.transport.config]
    passive-mode = true
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
`,
    );
    const sock = join(dir, 'api.sock');
    gobgpd = spawn('ip', ['netns', 'exec', spk.ns, 'setpriv', '--pdeathsig', 'KILL', '--', 'gobgpd', '-f', join(dir, 'gobgpd.toml'), '-p', '--pprof-disable', '--api-hosts', `unix://${sock}`], { stdio: 'ignore' });
    const gobgp = (a: string[], timeoutMs = 120_000) => run('gobgp', ['--target', `unix://${sock}`, ...a], { timeoutMs });
    await waitFor('gobgpd api', async () => (await gobgp(['global', '-j'], 5000)).stdout.includes('"asn"'));
    const mrt = join(dir, 'routes.mrt');
    writeMrt(mrt, count, spk.ipv4);
    await gobgp(['mrt', 'inject', 'global', mrt]);
    await waitFor(`gobgpd holds ${count} routes`, async () => {
      const m = /Destination:\s+(\d+)/.exec((await gobgp(['global', 'rib', 'summary', '-a', 'ipv4'], 10_000)).stdout);
      return m !== null && Number(m[1]) === count;
    });
    bird = await startBird(rtr, dir, spk.ipv4);
    const seconds = await measure(bird, count);
    return { seconds, senderRss: rssOf(gobgpd.pid) };
  } finally {
    if (gobgpd) await stopChild(gobgpd);
    if (bird) await stopChild(bird.child);
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mb = (n: number) => `${(n / 1048576).toFixed(0)} MB`;

await sweepStale();
console.log(`BGP bulk transfer to BIRD 2 (Established → all routes imported, BIRD's clock), median of ${RUNS} runs`);
for (const count of SIZES) {
  const ours: RunResult[] = [];
  const theirs: RunResult[] = [];
  for (let i = 0; i < RUNS; i++) {
    ours.push(await runOurs(count));
    theirs.push(await runGobgp(count));
    await sleep(100);
  }
  const o = median(ours.map((r) => r.seconds));
  const g = median(theirs.map((r) => r.seconds));
  console.log(
    `${String(count).padStart(7)} routes: admitlb ${o.toFixed(3)} s [${ours.map((r) => r.seconds.toFixed(3)).join(', ')}], ` +
      `gobgpd ${g.toFixed(3)} s [${theirs.map((r) => r.seconds.toFixed(3)).join(', ')}], ratio ${(o / g).toFixed(2)} (goal <= 1.0)`,
  );
  console.log(
    `${' '.repeat(15)}memory: admitlb ${median(ours.map((r) => r.heapPerRoute ?? 0)).toFixed(0)} B heap per announced route, ` +
      `sender RSS admitlb ${mb(median(ours.map((r) => r.senderRss)))}, gobgpd ${mb(median(theirs.map((r) => r.senderRss)))}`,
  );
}
