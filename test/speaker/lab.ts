// A shared end-to-end lab for the speaker (tests in test/speaker/*-e2e*.test.ts and
// bench/failover.bench.ts): the sandbox API double (webhook + controller) in this process, N
// `admitlb speaker` CHILD PROCESSES each inside its own "node" network namespace, plus extra
// namespaces (client, routers) on one bridge (test/bgp/lab/topo.ts), documentation addresses only.
//
// Reaching the API from a node namespace without touching the main namespace: the API listens on
// 127.0.0.1:<port> here; this process listens on one Unix socket PER NODE (the filesystem is shared
// across network namespaces) that forwards to it, and in each node namespace a tiny forwarder
// (`ip netns exec NS node fwd.mjs`) listens on 127.0.0.1:<port> and forwards to that node's socket.
// The speakers use the sandbox's own kubeconfig unchanged. Because each node has its own socket,
// this process knows which node every API request came from (the API double's onRequest hook sees
// the bridge's upstream port), and killing a node's forwarder cuts that node off the API.
//
// Routers: MultiBird (BIRD 2, one `protocol bgp` per node, a kernel protocol with `merge paths` so
// the router namespace's own FIB shows the ECMP route) and MultiFrr (bgpd without zebra,
// `maximum-paths`), each in its own namespace, listening on its own address.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as stringifyYaml } from 'yaml';
import { Topo, labNamespaces, sweepStale, type LabNode } from '../bgp/lab/topo.ts';
import { run, runOk, sleep, waitFor, which } from '../bgp/lab/sys.ts';
import { PROJECT_ROOT } from '../../src/cmd/sandbox.ts';
import { startCluster, type E2eCluster } from '../e2e/cluster-helpers.ts';
import type { SandboxOptions } from '../../src/cmd/sandbox.ts';

export { labNamespaces, run, runOk, sleep, sweepStale, waitFor, which, type LabNode };

/** Runs in a node namespace: 127.0.0.1:<port> there → the Unix socket that reaches the API. */
export const FORWARDER = `
import net from 'node:net';
const [port, sock] = process.argv.slice(2);
const srv = net.createServer((c) => {
  const u = net.connect(sock);
  c.pipe(u); u.pipe(c);
  c.on('error', () => u.destroy()); u.on('error', () => c.destroy());
  c.on('close', () => u.destroy()); u.on('close', () => c.destroy());
});
srv.listen(Number(port), '127.0.0.1', () => process.stdout.write('ready\\n'));
`;

export const LAB_CRD_KINDS = [
  ['L2Advertisement', 'l2advertisements'],
  ['BGPPeer', 'bgppeers'],
  ['BGPAdvertisement', 'bgpadvertisements'],
] as const;

export interface Child {
  name: string;
  child: ChildProcess;
  out: () => string;
  exited: Promise<void>;
}

export interface ApiRequestRecord {
  at: number;
  node: string;
  method: string;
  url: string;
}

export interface SpeakerLabOptions {
  /** speaker nodes, e.g. ['node-a', 'node-b', 'node-c'] */
  nodes: string[];
  /** other namespaces on the segment, e.g. ['client', 'router'] */
  extra: string[];
  ipv4Prefix?: string;
  ipv6Prefix?: string;
  leaseSeconds?: number;
  renewMs?: number;
  /**
   * Speaker heartbeats (default on, as installed): a key in the lab's work folder, port 7473 bound
   * to 0.0.0.0 in each node namespace. Off: liveness from node Leases (1.5 s renewed every 375 ms).
   */
  heartbeat?: boolean | { intervalMs?: number; missed?: number };
  logLevel?: string;
  /** the in-process controller's settings (orphan grace...) */
  controller?: SandboxOptions['controller'];
}

export class SpeakerLab {
  topo!: Topo;
  cluster!: E2eCluster;
  readonly nodes: Record<string, LabNode> = {};
  readonly macs: Record<string, string> = {};
  readonly speakers = new Map<string, Child>();
  readonly forwarders = new Map<string, Child>();
  readonly children = new Set<Child>();
  readonly leaseSeconds: number;
  readonly renewMs: number;
  /** bytes through each node's API bridge: up (speaker → API) and down (API → speaker, incl. watch events) */
  readonly bytes: Record<string, { up: number; down: number }> = {};
  /** API requests per node while `recording` (see startRecording) */
  requests: ApiRequestRecord[] = [];
  private recording = false;
  private readonly upstreamPorts = new Map<number, string>();
  private readonly bridges: net.Server[] = [];
  private readonly bridgeSockets = new Map<string, Set<net.Socket>>();
  private workDir = '';
  private apiPort = 0;
  private fwdScript = '';
  private readonly closers: (() => Promise<void>)[] = [];

  readonly heartbeat: { intervalMs: number; missed: number } | undefined;
  /** the heartbeat key directory (the Secret's files: `key`, `previous`) */
  heartbeatKeysDir = '';

  private constructor(readonly opts: SpeakerLabOptions) {
    const hb = opts.heartbeat ?? true;
    this.heartbeat = hb === false ? undefined : { intervalMs: (hb === true ? undefined : hb.intervalMs) ?? 100, missed: (hb === true ? undefined : hb.missed) ?? 3 };
    // The speaker's own defaults for each mode.
    this.leaseSeconds = opts.leaseSeconds ?? (this.heartbeat ? 40 : 1.5);
    this.renewMs = opts.renewMs ?? (this.heartbeat ? 10_000 : 375);
  }

  static async create(opts: SpeakerLabOptions): Promise<SpeakerLab> {
    const lab = new SpeakerLab(opts);
    try {
      await lab.build();
    } catch (err) {
      await lab.destroy().catch(() => {});
      throw err;
    }
    return lab;
  }

  node(name: string): LabNode {
    return this.topo.node(name);
  }

  /** Adds a cleanup step run by destroy() (routers, ...), last added first. */
  onDestroy(fn: () => Promise<void>): void {
    this.closers.push(fn);
  }

  private async build(): Promise<void> {
    await sweepStale();
    this.workDir = mkdtempSync(join(tmpdir(), `admitlb-spk-lab-${process.pid}-`));
    this.topo = await Topo.create({ nodes: [...this.opts.nodes, ...this.opts.extra], ipv4Prefix: this.opts.ipv4Prefix ?? '192.0.2.', ipv6Prefix: this.opts.ipv6Prefix ?? '2001:db8:2::' });
    for (const n of this.opts.nodes) {
      this.nodes[n] = this.topo.node(n);
      this.macs[n] = await this.topo.mac(n);
    }
    this.cluster = await startCluster('speaker-lab', {
      defaultPool: false,
      ...(this.opts.controller ? { controller: this.opts.controller } : {}),
      apiServer: { onRequest: (req) => this.observe(req) },
    });
    this.apiPort = Number(new URL(this.cluster.sandbox.api.url).port);
    this.fwdScript = join(this.workDir, 'fwd.mjs');
    writeFileSync(this.fwdScript, FORWARDER);
    this.heartbeatKeysDir = join(this.workDir, 'heartbeat');
    mkdirSync(this.heartbeatKeysDir, { mode: 0o700 });
    writeFileSync(join(this.heartbeatKeysDir, 'key'), `${randomBytes(32).toString('base64')}\n`, { mode: 0o600 });
    for (const n of this.opts.nodes) {
      await this.startBridge(n);
      await this.startForwarder(n);
    }
    await this.ensureCrds();
    for (const name of this.opts.nodes) {
      const n = this.nodes[name]!;
      await this.cluster.apply({ apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name } } });
      await this.kubectlOk(['patch', 'node', name, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'lab' }], addresses: [{ type: 'InternalIP', address: n.ipv4 }, { type: 'InternalIP', address: n.ipv6 }] } })]);
    }
  }

  /** every request the API double received (any client), for "wait until the cluster is quiet" */
  totalRequests = 0;

  private observe(req: IncomingMessage): void {
    this.totalRequests++;
    if (!this.recording) return;
    const node = this.upstreamPorts.get(req.socket.remotePort ?? -1);
    if (!node) return;
    this.requests.push({ at: performance.now(), node, method: req.method ?? '', url: req.url ?? '' });
  }

  /** Waits until the API double receives fewer than `maxPerSecond` requests per second (bounded). */
  async quiet(maxPerSecond = 20, timeoutMs = 120_000): Promise<number> {
    const t0 = performance.now();
    for (;;) {
      const before = this.totalRequests;
      await sleep(1000);
      if (this.totalRequests - before < maxPerSecond) return performance.now() - t0;
      if (performance.now() - t0 > timeoutMs) throw new Error(`the API did not settle within ${timeoutMs} ms`);
    }
  }

  startRecording(): void {
    this.requests = [];
    this.recording = true;
  }

  stopRecording(): ApiRequestRecord[] {
    this.recording = false;
    return this.requests;
  }

  private async startBridge(node: string): Promise<void> {
    const sock = join(this.workDir, `api-${node}.sock`);
    const sockets = new Set<net.Socket>();
    this.bridgeSockets.set(node, sockets);
    const server = net.createServer((c) => {
      const u = net.connect(this.apiPort, '127.0.0.1');
      let port: number | undefined;
      u.once('connect', () => this.upstreamPorts.set((port = u.localPort!), node));
      // Keyed by the captured port: localPort is gone once the socket is destroyed, and a stale entry
      // would attribute a later in-process client's requests (same ephemeral port) to this node.
      u.once('close', () => port !== undefined && this.upstreamPorts.get(port) === node && this.upstreamPorts.delete(port));
      sockets.add(c);
      const count = (this.bytes[node] ??= { up: 0, down: 0 });
      c.on('data', (d: Buffer) => (count.up += d.length));
      u.on('data', (d: Buffer) => (count.down += d.length));
      c.pipe(u);
      u.pipe(c);
      for (const [a, b] of [[c, u], [u, c]] as const) {
        a.on('error', () => b.destroy());
        a.on('close', () => b.destroy());
      }
      c.on('close', () => sockets.delete(c));
    });
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    this.bridges.push(server);
  }

  /** Starts the node's forwarder (its path to the API). */
  async startForwarder(node: string): Promise<void> {
    const sock = join(this.workDir, `api-${node}.sock`);
    const c = this.spawnIn(`fwd-${node}`, this.nodes[node]!.ns, [process.execPath, this.fwdScript, String(this.apiPort), sock]);
    this.forwarders.set(node, c);
    await waitFor(`forwarder in ${node}`, () => {
      if (c.child.exitCode !== null) throw new Error(`forwarder exited: ${c.out()}`);
      return c.out().includes('ready');
    }, { timeoutMs: 10_000, intervalMs: 20 });
  }

  /** Cuts the node off the API: kills its forwarder and every connection that went through it. */
  async stopForwarder(node: string): Promise<void> {
    const c = this.forwarders.get(node);
    if (c) await this.kill(c);
    this.forwarders.delete(node);
    for (const s of this.bridgeSockets.get(node) ?? []) s.destroy();
  }

  private async ensureCrds(): Promise<void> {
    // The config kinds: served from webhook-manifests/crds.yaml once they land there; a permissive
    // stand-in CRD otherwise, so the lab does not depend on the order of merges.
    for (const [kind, plural] of LAB_CRD_KINDS) {
      const r = await this.cluster.request('GET', `/apis/admitlb.io/v1alpha1/${plural}`);
      if (r.status === 200) continue;
      await this.cluster.apply({
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: { name: `${plural}.admitlb.io` },
        spec: {
          group: 'admitlb.io',
          names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
          scope: 'Cluster',
          versions: [{ name: 'v1alpha1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
        },
      });
      await waitFor(`${plural} served`, async () => (await this.cluster.request('GET', `/apis/admitlb.io/v1alpha1/${plural}`)).status === 200, { timeoutMs: 10_000 });
    }
  }

  spawnIn(name: string, ns: string, argv: string[]): Child {
    return spawnInNamespace(this.children, name, ns, argv);
  }

  async kill(c: Child, signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill(signal);
    await Promise.race([c.exited, sleep(5000)]);
  }

  /** Starts the node's speaker and waits until it serves /metrics and logged that it runs. */
  async startSpeaker(node: string, opts: { wait?: boolean } = {}): Promise<Child> {
    const c = this.spawnIn(`speaker-${node}`, this.nodes[node]!.ns, [
      process.execPath,
      join(PROJECT_ROOT, 'bin/admitlb.js'),
      'speaker',
      '--node-name', node,
      '--signing-keys-dir', this.cluster.sandbox.files.signingKeysDir,
      // The speaker's own ServiceAccount on the real control plane (RBAC applies); the admin's on the double.
      '--kubeconfig', await this.cluster.sandbox.identity('speaker'),
      '--namespace', 'admitlb-system',
      '--host', '127.0.0.1',
      '--port', '7472',
      '--lease-duration-seconds', String(this.leaseSeconds),
      '--lease-renew-ms', String(this.renewMs),
      ...(this.heartbeat ? ['--heartbeat-keys-dir', this.heartbeatKeysDir, '--heartbeat-port', '7473', '--heartbeat-interval-ms', String(this.heartbeat.intervalMs), '--heartbeat-missed', String(this.heartbeat.missed)] : []),
      '--log-level', this.opts.logLevel ?? 'info',
    ]);
    this.speakers.set(node, c);
    if (opts.wait !== false) {
      await waitFor(`speaker ${node} ready`, async () => {
        if (c.child.exitCode !== null) throw new Error(`speaker ${node} exited: ${c.out()}`);
        return c.out().includes('admitlb speaker running');
      }, { timeoutMs: 90_000, intervalMs: 50 }); // tsx compiles the speaker at start: slow on a loaded machine
    }
    return c;
  }

  async killSpeaker(node: string): Promise<void> {
    const c = this.speakers.get(node);
    if (c) await this.kill(c);
    this.speakers.delete(node);
  }

  /** The speaker's /metrics, fetched from inside its namespace. */
  async metrics(node: string): Promise<string> {
    const r = await run('ip', ['netns', 'exec', this.nodes[node]!.ns, process.execPath, '-e', "fetch('http://127.0.0.1:7472/metrics').then(r=>r.text()).then(t=>process.stdout.write(t)).catch(()=>process.exit(1))"], { timeoutMs: 10_000 });
    return r.code === 0 ? r.stdout : '';
  }

  /** Where each speaker node holds `address` (device names), from `ip -j addr` in its namespace. */
  async bindings(address: string): Promise<Record<string, string[]>> {
    const out: Record<string, string[]> = {};
    await Promise.all(
      Object.entries(this.nodes).map(async ([name, n]) => {
        const links = JSON.parse(await runOk('ip', ['-n', n.ns, '-j', 'addr', 'show'])) as { ifname: string; addr_info?: { local: string }[] }[];
        const devs = links.filter((l) => l.addr_info?.some((a) => a.local === address)).map((l) => l.ifname);
        if (devs.length) out[name] = devs;
      }),
    );
    return out;
  }

  /** Nodes holding `address` on their lab interface (L2 announcements). */
  async holders(address: string): Promise<string[]> {
    const b = await this.bindings(address);
    return Object.keys(b)
      .filter((n) => b[n]!.includes(this.nodes[n]!.ifname))
      .sort();
  }

  /** The neighbour entry of `address` in namespace `from` (lladdr or null). */
  async neigh(from: LabNode, address: string): Promise<string | null> {
    const out = await runOk('ip', ['-n', from.ns, '-j', 'neigh', 'show', address, 'dev', from.ifname]);
    const [e] = JSON.parse(out || '[]') as { lladdr?: string; state?: string[] }[];
    if (!e || e.state?.includes('FAILED') || e.state?.includes('INCOMPLETE')) return null;
    return e.lladdr?.toLowerCase() ?? null;
  }

  /** arping from `from`: the MAC that answered, or null. */
  async arp(from: LabNode, address: string): Promise<string | null> {
    const r = await run('ip', ['netns', 'exec', from.ns, 'arping', '-f', '-c1', '-w1', '-I', from.ifname, address], { timeoutMs: 5000 });
    const m = /\[([0-9a-f:]{17})\]/i.exec(r.stdout);
    return r.code === 0 && m ? m[1]!.toLowerCase() : null;
  }

  /** ndisc6 (one NS) from `from`: the MAC in the NA, or null. */
  async ndisc(from: LabNode, address: string): Promise<string | null> {
    const r = await run('ip', ['netns', 'exec', from.ns, 'ndisc6', '-1', '-r1', '-w', '1000', address, from.ifname], { timeoutMs: 5000 });
    const m = /Target link-layer address:\s*([0-9a-f:]{17})/i.exec(r.stdout);
    return r.code === 0 && m ? m[1]!.toLowerCase() : null;
  }

  async ping(from: LabNode, address: string): Promise<boolean> {
    return (await run('ip', ['netns', 'exec', from.ns, 'ping', address.includes(':') ? '-6' : '-4', '-c1', '-W1', address], { timeoutMs: 5000 })).code === 0;
  }

  async kubectlOk(args: string[], input?: string): Promise<string> {
    const r = await this.cluster.kubectl(args, input);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  async apply(...objects: object[]): Promise<void> {
    const r = await this.cluster.kubectl(['apply', '-f', '-'], objects.map((o) => stringifyYaml(o)).join('---\n'));
    if (r.code !== 0) throw new Error(`kubectl apply: ${r.stderr}`);
  }

  /** An EndpointSlice for `service` with one ready endpoint per node in `onNodes` (replaces the slice). */
  endpointSlice(service: string, onNodes: string[], opts: { namespace?: string; family?: 4 | 6; suffix?: string } = {}): Record<string, unknown> {
    const fam = opts.family ?? 4;
    return {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${service}-${opts.suffix ?? 'lab'}`, namespace: opts.namespace ?? 'default', labels: { 'kubernetes.io/service-name': service } },
      addressType: fam === 4 ? 'IPv4' : 'IPv6',
      endpoints: onNodes.map((n, i) => ({ addresses: [fam === 4 ? `10.244.${i + 1}.5` : `fd00:10:244:${i + 1}::5`], nodeName: n, conditions: { ready: true } })),
      ports: [{ name: 'p0-80', port: 80, protocol: 'TCP' }],
    };
  }

  /** Where the failure happened, for assertion messages: the tail of every speaker's log. */
  logs(lines = 15): string {
    return [...this.speakers].map(([n, c]) => `--- ${n}\n${c.out().trim().split('\n').slice(-lines).join('\n')}`).join('\n');
  }

  async destroy(): Promise<void> {
    for (const c of [...this.children]) await this.kill(c);
    for (const fn of this.closers.reverse()) await fn().catch(() => {});
    for (const b of this.bridges) await new Promise<void>((resolve) => b.close(() => resolve()));
    for (const set of this.bridgeSockets.values()) for (const s of set) s.destroy();
    await this.topo?.destroy();
    await this.cluster?.close().catch(() => {});
    if (this.workDir) rmSync(this.workDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Routers with one session per node.

export interface RouterNeighbor {
  name: string;
  address: string;
  asn: number;
}

export interface RouterPath {
  /** the neighbour (node name) the path came from */
  from: string;
  nextHop: string;
  asPath: number[];
  communities: string[];
  largeCommunities: string[];
}

abstract class MultiRouter {
  protected child: Child | undefined;
  readonly dir: string;

  constructor(
    protected readonly lab: SpeakerLab,
    readonly node: LabNode,
    readonly asn: number,
    readonly neighbors: RouterNeighbor[],
    readonly holdTime: number,
  ) {
    this.dir = join(mkdtempSync(join(tmpdir(), `admitlb-spk-rtr-${process.pid}-`)));
    mkdirSync(this.dir, { recursive: true });
    lab.onDestroy(async () => {
      if (this.child) await lab.kill(this.child);
      rmSync(this.dir, { recursive: true, force: true });
    });
  }

  protected abstract config(): void;
  protected abstract argv(): string[];
  protected abstract controlReady(): Promise<boolean>;
  /** Paths the router holds for `prefix`, one per neighbour. */
  abstract paths(prefix: string): Promise<RouterPath[]>;

  async start(): Promise<void> {
    this.config();
    this.child = this.lab.spawnIn(`router-${this.node.name}`, this.node.ns, this.argv());
    await waitFor(`router in ${this.node.ns}`, async () => {
      if (this.child!.child.exitCode !== null) throw new Error(`router exited: ${this.child!.out()}`);
      if (!(await this.controlReady())) return false;
      return (await run('ip', ['netns', 'exec', this.node.ns, 'ss', '-Hltn', 'sport = :179'])).stdout.trim().length > 0;
    }, { timeoutMs: 15_000, intervalMs: 20 });
  }

  /** The neighbours whose paths the router holds for `prefix`, sorted. */
  async from(prefix: string): Promise<string[]> {
    return (await this.paths(prefix)).map((p) => p.from).sort();
  }

  /** Gateways of the route in the router namespace's own FIB (multipath: several). */
  async fib(prefix: string): Promise<string[]> {
    const out = await runOk('ip', ['-n', this.node.ns, '-j', prefix.includes(':') ? '-6' : '-4', 'route', 'show', prefix]);
    const routes = JSON.parse(out || '[]') as { gateway?: string; nexthops?: { gateway: string }[] }[];
    return routes.flatMap((r) => (r.nexthops ? r.nexthops.map((h) => h.gateway) : r.gateway ? [r.gateway] : [])).sort();
  }
}

export class MultiBird extends MultiRouter {
  protected config(): void {
    const sessions = this.neighbors
      .map(
        (n) => `protocol bgp ${n.name.replace(/[^a-z0-9]/gi, '_')} {
  local ${this.node.ipv4} as ${this.asn};
  neighbor ${n.address} as ${n.asn};
  passive on;
  hold time ${this.holdTime};
  keepalive time ${Math.max(1, Math.floor(this.holdTime / 3))};
  error wait time 1, 2;
  ipv4 { import all; export none; };
  ipv6 { import all; export none; };
}`,
      )
      .join('\n');
    writeFileSync(
      join(this.dir, 'bird.conf'),
      `router id ${this.node.ipv4};
log "${join(this.dir, 'bird.log')}" all;
protocol device {}
protocol kernel k4 { ipv4 { export all; }; merge paths on limit 16; }
protocol kernel k6 { ipv6 { export all; }; merge paths on limit 16; }
${sessions}
`,
    );
  }

  protected argv(): string[] {
    return ['bird', '-f', '-c', join(this.dir, 'bird.conf'), '-s', join(this.dir, 'bird.ctl'), '-P', join(this.dir, 'bird.pid')];
  }

  async birdc(command: string): Promise<string> {
    return (await run('birdc', ['-s', join(this.dir, 'bird.ctl'), command], { timeoutMs: 5000 })).stdout;
  }

  protected async controlReady(): Promise<boolean> {
    return /BIRD .* ready/.test(await this.birdc('show status'));
  }

  async paths(prefix: string): Promise<RouterPath[]> {
    const out = await this.birdc(`show route all ${prefix}`);
    const protoToNode = new Map(this.neighbors.map((n) => [n.name.replace(/[^a-z0-9]/gi, '_'), n.name]));
    const paths: RouterPath[] = [];
    let cur: RouterPath | undefined;
    for (const line of out.split('\n')) {
      const head = /^(?:\S+\/\d+)?\s+unicast \[(\S+) /.exec(line);
      if (head) {
        cur = { from: protoToNode.get(head[1]!) ?? head[1]!, nextHop: '', asPath: [], communities: [], largeCommunities: [] };
        paths.push(cur);
        continue;
      }
      const attr = /^\s+BGP\.(\w+):\s*(.*)$/.exec(line);
      if (!attr || !cur) continue;
      const [, name, value] = attr;
      if (name === 'next_hop') cur.nextHop = value!.split(/\s+/)[0]!;
      else if (name === 'as_path') cur.asPath = value!.split(/\s+/).filter(Boolean).map(Number);
      else if (name === 'community') cur.communities = [...value!.matchAll(/\((\d+),(\d+)\)/g)].map((m) => `${m[1]}:${m[2]}`);
      else if (name === 'large_community') cur.largeCommunities = [...value!.matchAll(/\((\d+), (\d+), (\d+)\)/g)].map((m) => `${m[1]}:${m[2]}:${m[3]}`);
    }
    return paths.filter((p) => this.neighbors.some((n) => n.name === p.from));
  }

  async established(): Promise<string[]> {
    const out = await this.birdc('show protocols');
    return this.neighbors.filter((n) => new RegExp(`^${n.name.replace(/[^a-z0-9]/gi, '_')}\\s.*Established`, 'm').test(out)).map((n) => n.name);
  }
}

export class MultiFrr extends MultiRouter {
  protected config(): void {
    const hold = this.holdTime;
    const per = (f: (a: string) => string) => this.neighbors.map((n) => f(n.address)).join('\n');
    writeFileSync(
      join(this.dir, 'bgpd.conf'),
      `frr defaults traditional
log file ${join(this.dir, 'bgpd.log')}
router bgp ${this.asn}
 bgp router-id ${this.node.ipv4}
 no bgp ebgp-requires-policy
${per((a) => ` neighbor ${a} remote-as ${this.neighbors.find((n) => n.address === a)!.asn}\n neighbor ${a} passive\n neighbor ${a} timers ${Math.max(1, Math.floor(hold / 3))} ${hold}\n neighbor ${a} advertisement-interval 0`)}
 address-family ipv4 unicast
  maximum-paths 16
 exit-address-family
 address-family ipv6 unicast
  maximum-paths 16
${per((a) => `  neighbor ${a} activate`)}
 exit-address-family
`,
    );
    writeFileSync(join(this.dir, 'vtysh.conf'), '');
  }

  protected argv(): string[] {
    return [which('bgpd') ?? '/usr/lib/frr/bgpd', '-Z', '-S', '-u', 'root', '-g', 'root', '-f', join(this.dir, 'bgpd.conf'), '-i', join(this.dir, 'bgpd.pid'), '--vty_socket', this.dir, '-P', '0', '-l', this.node.ipv4, '--log', `file:${join(this.dir, 'bgpd.log')}`];
  }

  async vtysh(command: string): Promise<string> {
    return (await run('vtysh', ['--vty_socket', this.dir, '--config_dir', this.dir, '-d', 'bgpd', '-c', command], { timeoutMs: 10_000 })).stdout;
  }

  protected async controlReady(): Promise<boolean> {
    return (await this.vtysh('show bgp summary json')).includes('{');
  }

  /** Paths, plus whether FRR selected each as best or multipath. */
  async paths(prefix: string): Promise<(RouterPath & { selected: boolean })[]> {
    const out = await this.vtysh(`show bgp ${prefix.includes(':') ? 'ipv6' : 'ipv4'} unicast ${prefix} json`);
    if (!out.trim().startsWith('{')) return [];
    const parsed = JSON.parse(out) as { prefix?: string; paths?: Record<string, any>[] };
    if (parsed.prefix !== prefix) return [];
    return (parsed.paths ?? []).map((p) => ({
      from: this.neighbors.find((n) => n.address === p.peer?.peerId)?.name ?? String(p.peer?.peerId),
      nextHop: (p.nexthops as { ip: string }[] | undefined)?.[0]?.ip ?? '',
      asPath: ((p.aspath?.segments as { list: number[] }[] | undefined) ?? []).flatMap((s) => s.list),
      communities: (p.community?.list as string[] | undefined) ?? [],
      largeCommunities: (p.largeCommunity?.list as string[] | undefined) ?? [],
      selected: p.multipath === true || p.bestpath?.overall === true,
    }));
  }
}

/** A child process in network namespace `ns`, killed with its parent, tracked in `children` while it runs. */
export function spawnInNamespace(children: Set<Child>, name: string, ns: string, argv: string[]): Child {
  const child = spawn('ip', ['netns', 'exec', ns, 'setpriv', '--pdeathsig', 'KILL', '--', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const collect = (d: Buffer) => (out = (out + d.toString()).slice(-400_000));
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const c: Child = { name, child, out: () => out, exited };
  children.add(c);
  void exited.then(() => children.delete(c));
  return c;
}
