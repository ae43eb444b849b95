// Network-namespace topologies for interop tests. Everything is created inside namespaces named
// lab<runner pid>-<n>-<node>; veth ends are created directly inside them, so the main namespace's
// interfaces, addresses and routes are never touched. Cleanup runs in layers: Topo.destroy() (from
// after() hooks), a synchronous process-exit handler, and sweepStale() for namespaces left by dead
// runners.
import { execFileSync } from 'node:child_process';
import { pidAlive, run, runOk, sleep, which } from './sys.ts';

export interface LabNode {
  /** Logical name, e.g. "spk" or "rtr". */
  name: string;
  /** Network namespace name. */
  ns: string;
  /** Interface inside the namespace. */
  ifname: string;
  ipv4: string;
  ipv6: string;
}

const PREFIX = `lab${process.pid}-`;
const liveNamespaces = new Set<string>();
let counter = 0;
let exitHandlerInstalled = false;

function killNamespacePidsSync(ns: string): void {
  try {
    const out = execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 5000 });
    for (const pid of out.split(/\s+/).filter(Boolean).map(Number)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
  } catch {
    /* namespace gone */
  }
}

function deleteNamespaceSync(ns: string): void {
  killNamespacePidsSync(ns);
  try {
    execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore', timeout: 5000 });
  } catch {
    /* already gone */
  }
}

function installExitHandler(): void {
  if (exitHandlerInstalled) return;
  exitHandlerInstalled = true;
  const cleanup = () => {
    for (const ns of liveNamespaces) deleteNamespaceSync(ns);
    liveNamespaces.clear();
  };
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      cleanup();
      process.exit(128 + (sig === 'SIGINT' ? 2 : sig === 'SIGTERM' ? 15 : 1));
    });
  }
}

/** Removes lab namespaces whose runner process is dead (after a SIGKILLed run). */
export async function sweepStale(): Promise<string[]> {
  const r = await run('ip', ['netns', 'list']);
  const removed: string[] = [];
  for (const line of r.stdout.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = /^lab(\d+)-/.exec(name);
    if (!m || Number(m[1]) === process.pid || pidAlive(Number(m[1]))) continue;
    deleteNamespaceSync(name);
    removed.push(name);
  }
  return removed;
}

export interface TopoOptions {
  /** Node names; two nodes get a veth pair, more get a bridge in an extra "sw" namespace. */
  nodes: string[];
  /** Node i gets <ipv4Prefix><i+1>/24 and <ipv6Prefix><i+1>/64; default "198.51.100." and "2001:db8:1::". */
  ipv4Prefix?: string;
  ipv6Prefix?: string;
  /** Put two nodes on a bridge too, so that one node's link can be cut without the other losing carrier. */
  bridge?: boolean;
  /**
   * Three nodes in a line, the middle one a router (forwarding on): node 0 and the middle share
   * 198.51.100.0/24 and 2001:db8:1::/64 (.1 / .2), the middle and node 2 share 192.0.2.0/24 and
   * 2001:db8:2::/64 (.1 / .2); the ends route the other subnet through the middle. Node 2's
   * ipv4/ipv6 are its 192.0.2.2 / 2001:db8:2::2, two hops from node 0.
   */
  routed?: boolean;
}

export class Topo {
  readonly nodes: LabNode[];
  private readonly namespaces: string[] = [];
  private destroyed = false;

  private readonly bridged: boolean;

  private constructor(readonly id: number, nodeNames: string[], ipv4Prefix = '198.51.100.', ipv6Prefix = '2001:db8:1::', bridge = false, private readonly routed = false) {
    this.bridged = !routed && (bridge || nodeNames.length > 2);
    this.nodes = nodeNames.map((name, i) => ({
      name,
      ns: `${PREFIX}${id}-${name}`,
      ifname: routed ? (i === 2 ? 'v-right' : 'v-left') : !this.bridged ? `v-${name}`.slice(0, 15) : 'eth0',
      ipv4: routed && i === 2 ? '192.0.2.2' : `${ipv4Prefix}${i + 1}`,
      ipv6: routed && i === 2 ? '2001:db8:2::2' : `${ipv6Prefix}${i + 1}`,
    }));
  }

  /** The MAC address of a node's lab interface. */
  async mac(name: string): Promise<string> {
    const n = this.node(name);
    const [link] = JSON.parse(await runOk('ip', ['-n', n.ns, '-j', 'link', 'show', 'dev', n.ifname])) as Array<{ address: string }>;
    return link!.address.toLowerCase();
  }

  node(name: string): LabNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  static async create(opts: TopoOptions): Promise<Topo> {
    if (opts.nodes.length < 2) throw new Error('a topology needs at least two nodes');
    installExitHandler();
    if (opts.routed && (opts.nodes.length !== 3 || opts.ipv4Prefix || opts.ipv6Prefix)) throw new Error('a routed topology has exactly three nodes and fixed addresses');
    const topo = new Topo(++counter, opts.nodes, opts.ipv4Prefix, opts.ipv6Prefix, opts.bridge, opts.routed);
    try {
      await topo.build();
    } catch (err) {
      await topo.destroy();
      throw err;
    }
    return topo;
  }

  private async addNamespace(ns: string): Promise<void> {
    liveNamespaces.add(ns);
    this.namespaces.push(ns);
    await runOk('ip', ['netns', 'add', ns]);
    await runOk('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  }

  private async build(): Promise<void> {
    for (const n of this.nodes) await this.addNamespace(n.ns);
    if (this.routed) return this.buildRouted();
    if (!this.bridged) {
      const [a, b] = this.nodes as [LabNode, LabNode];
      // Created inside a's namespace with the peer end moved straight into b's.
      await runOk('ip', ['-n', a.ns, 'link', 'add', a.ifname, 'type', 'veth', 'peer', 'name', b.ifname, 'netns', b.ns]);
    } else {
      const sw = `${PREFIX}${this.id}-sw`;
      await this.addNamespace(sw);
      await runOk('ip', ['-n', sw, 'link', 'add', 'br0', 'type', 'bridge']);
      await runOk('ip', ['-n', sw, 'link', 'set', 'br0', 'up']);
      for (const [i, n] of this.nodes.entries()) {
        await runOk('ip', ['-n', n.ns, 'link', 'add', n.ifname, 'type', 'veth', 'peer', 'name', `p${i}`, 'netns', sw]);
        await runOk('ip', ['-n', sw, 'link', 'set', `p${i}`, 'master', 'br0', 'up']);
      }
    }
    for (const n of this.nodes) {
      await runOk('ip', ['-n', n.ns, '-batch', '-'], {
        input: [`addr add ${n.ipv4}/24 dev ${n.ifname}`, `addr add ${n.ipv6}/64 dev ${n.ifname} nodad`, `link set ${n.ifname} up`, ''].join('\n'),
      });
    }
    // NETLAB P1: wait until every end is operationally UP, or the first neighbour discovery is lost.
    for (const n of this.nodes) {
      for (let i = 0; ; i++) {
        const out = await runOk('ip', ['-n', n.ns, '-o', 'link', 'show', n.ifname]);
        if (/state UP/.test(out)) break;
        if (i > 500) throw new Error(`${n.ns}/${n.ifname} did not come up`);
        await sleep(5);
      }
    }
  }

  /** left — mid — right: two veth pairs, forwarding in mid, routes at the ends (sysctls are per namespace). */
  private async buildRouted(): Promise<void> {
    const [left, mid, right] = this.nodes as [LabNode, LabNode, LabNode];
    await runOk('ip', ['-n', left.ns, 'link', 'add', 'v-left', 'type', 'veth', 'peer', 'name', 'v-left', 'netns', mid.ns]);
    await runOk('ip', ['-n', right.ns, 'link', 'add', 'v-right', 'type', 'veth', 'peer', 'name', 'v-right', 'netns', mid.ns]);
    const batch = (ns: string, lines: string[]) => runOk('ip', ['-n', ns, '-batch', '-'], { input: [...lines, ''].join('\n') });
    await batch(left.ns, [`addr add ${left.ipv4}/24 dev v-left`, `addr add ${left.ipv6}/64 dev v-left nodad`, 'link set v-left up', 'route add 192.0.2.0/24 via 198.51.100.2', 'route add 2001:db8:2::/64 via 2001:db8:1::2']);
    await batch(mid.ns, [
      'addr add 198.51.100.2/24 dev v-left',
      'addr add 2001:db8:1::2/64 dev v-left nodad',
      'addr add 192.0.2.1/24 dev v-right',
      'addr add 2001:db8:2::1/64 dev v-right nodad',
      'link set v-left up',
      'link set v-right up',
    ]);
    await batch(right.ns, [`addr add ${right.ipv4}/24 dev v-right`, `addr add ${right.ipv6}/64 dev v-right nodad`, 'link set v-right up', 'route add 198.51.100.0/24 via 192.0.2.1', 'route add 2001:db8:1::/64 via 2001:db8:2::1']);
    await runOk('ip', ['netns', 'exec', mid.ns, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    for (const [ns, dev] of [[left.ns, 'v-left'], [mid.ns, 'v-left'], [mid.ns, 'v-right'], [right.ns, 'v-right']] as const) {
      for (let i = 0; ; i++) {
        if (/state UP/.test(await runOk('ip', ['-n', ns, '-o', 'link', 'show', dev]))) break;
        if (i > 500) throw new Error(`${ns}/${dev} did not come up`);
        await sleep(5);
      }
    }
  }

  /** The bridge namespace ("sw") of a bridged topology, and the bridge port of a node (p<index>). */
  switchPort(name: string): { ns: string; port: string } {
    if (!this.bridged) throw new Error('not a bridged topology');
    return { ns: `${PREFIX}${this.id}-sw`, port: `p${this.nodes.findIndex((n) => n.name === name)}` };
  }

  /** Kills whatever still runs in the namespaces and deletes them. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const ns of this.namespaces) {
      const r = await run('ip', ['netns', 'pids', ns]);
      for (const pid of r.stdout.split(/\s+/).filter(Boolean).map(Number)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      await run('ip', ['netns', 'del', ns]);
      liveNamespaces.delete(ns);
    }
  }
}

/** Lab namespaces currently present (for the "nothing left behind" check). */
export async function labNamespaces(all = false): Promise<string[]> {
  const r = await run('ip', ['netns', 'list']);
  return r.stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => (all ? /^lab\d+-/.test(n) : n.startsWith(PREFIX)));
}

export { which };
