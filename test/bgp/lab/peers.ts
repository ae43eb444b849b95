// Adapters for real BGP daemons (BIRD 2, FRR bgpd, GoBGP) running in a lab namespace, each in its
// own directory with its own control socket, started in the foreground under
// `setpriv --pdeathsig KILL` so they die with the test process. Each exposes the same accessors:
// route(prefix) (normalized from the daemon's own JSON/CLI output), has(prefix), established().
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LabNode } from './topo.ts';
import { run, sleep, waitFor, which } from './sys.ts';

export type PeerKind = 'bird' | 'frr' | 'gobgp';

export interface PeerDaemonOptions {
  /** Where the daemon runs; it listens on node.ipv4:179. */
  node: LabNode;
  asn: number;
  routerId?: string;
  /** Our speaker, as the daemon sees it. */
  neighbor: {
    address: string;
    asn: number;
    /** Daemon waits for us to connect (true) or connects itself (false). */
    passive: boolean;
    holdTime?: number | undefined;
  };
  /** Graceful restart helper with this restart time (seconds); default 120. */
  restartTime?: number;
  /** TCP MD5 password for the session (BIRD, FRR). */
  password?: string | undefined;
  /** BFD for the session (BIRD: protocol bfd; FRR: zebra + bfdd + bgpd). */
  bfd?: { intervalMs: number; multiplier: number };
  /**
   * BIRD only: the speaker is this many hops away (`multihop N`; the daemon sends TTL N), reached
   * through `via` (a static route in the BGP tables, which BIRD resolves next hops through).
   */
  multihop?: { hops: number; via: string };
  /** BIRD only: GTSM (`ttl security on`): TTL 255 out, at least 256 - hops (multihop) or 255 in. */
  ttlSecurity?: boolean;
}

/** A route as the peer holds it, normalized across daemons. */
export interface PeerRoute {
  prefix: string;
  nextHops: string[];
  asPath: number[];
  /** "asn:value" with numbers only (well-known names mapped to 65535:xxxxx). */
  communities: string[];
  largeCommunities: string[];
  med: number | undefined;
  localPref: number | undefined;
  origin: string;
  stale: boolean;
}

const wellKnownNames: Record<string, string> = {
  noexport: '65535:65281',
  'no-export': '65535:65281',
  noadvertise: '65535:65282',
  'no-advertise': '65535:65282',
  localas: '65535:65283',
  'local-as': '65535:65283',
  nopeer: '65535:65284',
  blackhole: '65535:666',
  gshut: '65535:0',
  'graceful-shutdown': '65535:0',
};
function normalizeCommunity(c: string | number): string {
  if (typeof c === 'number') return `${c >>> 16}:${c & 0xffff}`;
  return wellKnownNames[c.toLowerCase()] ?? c;
}

let dirCounter = 0;

export abstract class PeerDaemon {
  abstract readonly kind: PeerKind;
  protected child: ChildProcess | null = null;
  protected readonly baseDir: string;
  /** A fresh directory per start (FRR leaves pid and vty files behind). */
  protected dir = '';
  protected stderr = '';
  private exitWaiters: Array<() => void> = [];
  /** Helper daemons started before the main one (FRR's zebra and bfdd), stopped after it. */
  protected extras: ChildProcess[] = [];
  /** Every daemon PID this adapter started (FRR leaves /var/tmp/frr/<daemon>.<pid> behind). */
  protected readonly pids: number[] = [];
  frozen = false;

  constructor(readonly opts: PeerDaemonOptions) {
    this.baseDir = mkdtempSync(join(tmpdir(), `admitlb-lab-${process.pid}-${++dirCounter}-`));
  }

  get routerId(): string {
    return this.opts.routerId ?? this.opts.node.ipv4;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  protected abstract writeConfig(): void;
  protected abstract command(): string[];
  /** The control socket answers. */
  protected abstract controlReady(): Promise<boolean>;
  abstract route(prefix: string): Promise<PeerRoute | null>;
  abstract established(): Promise<boolean>;
  /** Text of the daemon's view of the last session error (for NOTIFICATION assertions). */
  abstract lastError(): Promise<string>;

  async has(prefix: string): Promise<boolean> {
    return (await this.route(prefix)) !== null;
  }

  /** Runs before the main daemon (after writeConfig): start helper daemons here. */
  protected async beforeStart(): Promise<void> {}

  /** Spawns a helper daemon in the node's namespace and waits until `ready`. */
  protected async spawnExtra(name: string, argv: string[], ready: () => Promise<boolean> | boolean): Promise<void> {
    const child = spawn('ip', ['netns', 'exec', this.opts.node.ns, 'setpriv', '--pdeathsig', 'KILL', '--', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.extras.push(child);
    if (child.pid) this.pids.push(child.pid);
    let out = '';
    const collect = (d: Buffer) => (out = (out + d.toString()).slice(-8192));
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    await waitFor(`${name} ready in ${this.opts.node.ns}`, async () => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${name} exited during startup: ${out.trim()}`);
      return ready();
    });
  }

  private async stopExtras(): Promise<void> {
    const extras = this.extras.reverse();
    this.extras = [];
    for (const c of extras) {
      if (c.exitCode !== null || c.signalCode !== null) continue;
      const exited = new Promise<void>((r) => c.once('exit', () => r()));
      c.kill('SIGKILL');
      await exited;
    }
  }

  async start(): Promise<void> {
    if (this.child) throw new Error(`${this.kind} already running`);
    this.dir = join(this.baseDir, `run${Date.now()}-${Math.random().toString(36).slice(2, 6)}`);
    rmSync(this.dir, { recursive: true, force: true });
    mkdirSync(this.dir, { recursive: true });
    this.writeConfig();
    await this.beforeStart();
    const argv = this.command();
    const child = spawn('ip', ['netns', 'exec', this.opts.node.ns, 'setpriv', '--pdeathsig', 'KILL', '--', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    if (child.pid) this.pids.push(child.pid);
    this.stderr = '';
    const collect = (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-262144));
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    child.on('exit', () => {
      if (this.child === child) this.child = null;
      const w = this.exitWaiters;
      this.exitWaiters = [];
      w.forEach((f) => f());
    });
    await waitFor(`${this.kind} ready in ${this.opts.node.ns}`, async () => {
      if (!this.child) throw new Error(`${this.kind} exited during startup: ${this.stderr.trim()}`);
      return (await this.controlReady()) && (await this.listening());
    });
  }

  private async listening(): Promise<boolean> {
    const r = await run('ip', ['netns', 'exec', this.opts.node.ns, 'ss', '-Hltn', 'sport = :179']);
    return r.stdout.trim().length > 0;
  }

  /** SIGTERM, then SIGKILL after 3 s. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child) return this.stopExtras();
    if (this.frozen) this.thaw();
    const exited = new Promise<void>((r) => this.exitWaiters.push(r));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
    await this.stopExtras();
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.start();
  }

  /** SIGSTOP: the daemon stays connected but sends nothing (hold-timer tests). */
  freeze(): void {
    this.child?.kill('SIGSTOP');
    this.frozen = true;
  }

  thaw(): void {
    this.child?.kill('SIGCONT');
    this.frozen = false;
  }

  async destroy(): Promise<void> {
    await this.stop('SIGKILL');
    rmSync(this.baseDir, { recursive: true, force: true });
    for (const pid of this.pids) for (const d of ['bgpd', 'zebra', 'bfdd']) rmSync(`/var/tmp/frr/${d}.${pid}`, { recursive: true, force: true });
  }

  protected logText(file: string): string {
    try {
      return readFileSync(join(this.dir, file), 'utf8');
    } catch {
      return '';
    }
  }
}

// ---------------------------------------------------------------------------------------------

export class BirdPeer extends PeerDaemon {
  readonly kind = 'bird' as const;

  protected writeConfig(): void {
    const { asn, neighbor, node } = this.opts;
    // iBGP is multihop with recursive next hops by default; the lab has no IGP, so declare the
    // neighbour directly connected.
    const multihop = this.opts.multihop;
    const direct = multihop ? `multihop ${multihop.hops};` : asn === neighbor.asn ? 'direct;' : '';
    const v6 = neighbor.address.includes(':');
    const statics = multihop
      ? `protocol static { ${v6 ? 'ipv6 { table bgp6; }' : 'ipv4 { table bgp4; }'}; route ${v6 ? '2001:db8:1::/64' : '198.51.100.0/24'} via ${multihop.via}; }`
      : '';
    const bfd = this.opts.bfd;
    const local = neighbor.address.includes(':') ? node.ipv6 : node.ipv4;
    writeFileSync(
      join(this.dir, 'bird.conf'),
      `router id ${this.routerId};
log "${join(this.dir, 'bird.log')}" all;
protocol device {}
ipv4 table bgp4;
ipv6 table bgp6;
${statics}
${bfd ? `protocol bfd { interface "*" { min rx interval ${bfd.intervalMs} ms; min tx interval ${bfd.intervalMs} ms; idle tx interval 1000 ms; multiplier ${bfd.multiplier}; }; }` : ''}
protocol bgp spk {
  local ${local} as ${asn};
  ${this.opts.password !== undefined ? `password "${this.opts.password}";` : ''}
  ${bfd ? 'bfd on;' : ''}
  neighbor ${neighbor.address} as ${neighbor.asn};
  ${neighbor.passive ? 'passive on;' : 'connect delay time 1; connect retry time 1;'}
  error wait time 1, 2;
  hold time ${neighbor.holdTime ?? 90};
  graceful restart on;
  graceful restart time ${this.opts.restartTime ?? 120};
  ${direct}
  ${this.opts.ttlSecurity ? 'ttl security on;' : ''}
  ipv4 { table bgp4; import all; export none; };
  ipv6 { table bgp6; import all; export none; };
}
`,
    );
  }

  protected command(): string[] {
    return ['bird', '-f', '-c', join(this.dir, 'bird.conf'), '-s', join(this.dir, 'bird.ctl'), '-P', join(this.dir, 'bird.pid')];
  }

  /** birdc output (it exits non-zero on "Network not found": read stdout anyway, NETLAB P2). */
  async birdc(command: string): Promise<string> {
    return (await run('birdc', ['-s', join(this.dir, 'bird.ctl'), command], { timeoutMs: 5000 })).stdout;
  }

  protected async controlReady(): Promise<boolean> {
    return /BIRD .* ready/.test(await this.birdc('show status'));
  }

  async route(prefix: string): Promise<PeerRoute | null> {
    const table = prefix.includes(':') ? 'bgp6' : 'bgp4';
    const out = await this.birdc(`show route all ${prefix} table ${table}`);
    const lines = out.split('\n');
    const head = lines.findIndex((l) => l.startsWith(prefix));
    if (head < 0) return null;
    const attr = (name: string) => lines.find((l) => l.trim().startsWith(`BGP.${name}:`))?.split(': ').slice(1).join(': ').trim();
    const nh = attr('next_hop');
    const communities = [...(attr('community') ?? '').matchAll(/\((\d+),(\d+)\)/g)].map((m) => `${m[1]}:${m[2]}`);
    const large = [...(attr('large_community') ?? '').matchAll(/\((\d+), (\d+), (\d+)\)/g)].map((m) => `${m[1]}:${m[2]}:${m[3]}`);
    const med = attr('med');
    const lp = attr('local_pref');
    return {
      prefix,
      nextHops: nh ? nh.split(/\s+/) : [],
      asPath: (attr('as_path') ?? '').split(/\s+/).filter(Boolean).map(Number),
      communities,
      largeCommunities: large,
      med: med === undefined ? undefined : Number(med),
      localPref: lp === undefined ? undefined : Number(lp),
      origin: (attr('origin') ?? '').toLowerCase(),
      // BIRD 2 marks stale routes only under long-lived GR; during an ordinary graceful restart the
      // stale state is the protocol's ("Neighbor graceful restart active" until End-of-RIB).
      stale:
        /\bstale\b/i.test(lines[head] ?? '') ||
        lines.some((l) => /BGP\.community:.*\(65535,6\)/.test(l)) ||
        /Neighbor graceful restart active/i.test(await this.birdc('show protocols all spk')),
    };
  }

  async established(): Promise<boolean> {
    return /BGP state:\s+Established/.test(await this.birdc('show protocols all spk'));
  }

  /** A new TCP MD5 password, applied with `birdc configure` (BIRD restarts the session). */
  async setPassword(password: string | undefined): Promise<string> {
    this.opts.password = password;
    this.writeConfig();
    return this.birdc('configure');
  }

  async lastError(): Promise<string> {
    const out = await this.birdc('show protocols all spk');
    return `${/Last error:\s*(.*)/.exec(out)?.[1] ?? ''}\n${this.logText('bird.log')}`;
  }
}

// ---------------------------------------------------------------------------------------------

export class GobgpPeer extends PeerDaemon {
  readonly kind = 'gobgp' as const;

  protected writeConfig(): void {
    const { asn, neighbor, node } = this.opts;
    const hold = neighbor.holdTime ?? 90;
    const families = ['ipv4-unicast', 'ipv6-unicast']
      .map(
        (f) => `  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "${f}"
    [neighbors.afi-safis.mp-graceful-restart.config]
      enabled = true`,
      )
      .join('\n');
    writeFileSync(
      join(this.dir, 'gobgpd.toml'),
      `[global.config]
  as = ${asn}
  router-id = "${this.routerId}"
  local-address-list = ["${node.ipv4}"]
[[neighbors]]
  [neighbors.config]
    neighbor-address = "${neighbor.address}"
    peer-as = ${neighbor.asn}
  [neighbors.transport.config]
    passive-mode = ${neighbor.passive}
    local-address = "${node.ipv4}"
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = ${hold}
    keepalive-interval = ${Math.max(1, Math.floor(hold / 3))}
    idle-hold-time-after-reset = 1
  [neighbors.graceful-restart.config]
    enabled = true
    restart-time = ${this.opts.restartTime ?? 120}
    helper-only = true
${families}
`,
    );
  }

  protected command(): string[] {
    return ['gobgpd', '-f', join(this.dir, 'gobgpd.toml'), '-p', '--pprof-disable', '--api-hosts', `unix://${join(this.dir, 'api.sock')}`, '-l', 'debug'];
  }

  async gobgp(args: string[], timeoutMs = 10_000): Promise<string> {
    return (await run('gobgp', ['--target', `unix://${join(this.dir, 'api.sock')}`, ...args], { timeoutMs })).stdout;
  }

  protected async controlReady(): Promise<boolean> {
    // NETLAB P3: calling gobgp before the socket exists costs a 1 s gRPC backoff.
    if (!existsSync(join(this.dir, 'api.sock'))) return false;
    return (await this.gobgp(['global', '-j'])).includes('"asn"');
  }

  async route(prefix: string): Promise<PeerRoute | null> {
    const family = prefix.includes(':') ? 'ipv6' : 'ipv4';
    const out = await this.gobgp(['global', 'rib', '-a', family, prefix, '-j']);
    if (!out.trim().startsWith('{')) return null;
    const parsed = JSON.parse(out) as Record<string, Array<{ attrs: Array<Record<string, unknown>>; stale?: boolean }>>;
    const path = parsed[prefix]?.[0];
    if (!path) return null;
    const byType = (t: number) => path.attrs.find((a) => a.type === t);
    const asPath = ((byType(2)?.as_paths as Array<{ asns: number[] }> | undefined) ?? []).flatMap((s) => s.asns);
    const nextHops = family === 'ipv4' ? [String(byType(3)?.nexthop ?? '')] : [String(byType(14)?.nexthop ?? '')];
    const ll = byType(14)?.linklocal_nexthop;
    if (ll) nextHops.push(String(ll));
    return {
      prefix,
      nextHops: nextHops.filter(Boolean),
      asPath,
      communities: ((byType(8)?.communities as number[] | undefined) ?? []).map(normalizeCommunity),
      largeCommunities: ((byType(32)?.value as Array<{ ASN: number; LocalData1: number; LocalData2: number }> | undefined) ?? []).map((l) => `${l.ASN}:${l.LocalData1}:${l.LocalData2}`),
      med: byType(4)?.metric as number | undefined,
      localPref: byType(5)?.value as number | undefined,
      origin: ['igp', 'egp', 'incomplete'][Number(byType(1)?.value ?? 0)] ?? '?',
      stale: path.stale === true,
    };
  }

  async neighbor(): Promise<Record<string, unknown> | null> {
    const out = await this.gobgp(['neighbor', this.opts.neighbor.address, '-j']);
    return out.trim().startsWith('{') ? (JSON.parse(out) as Record<string, unknown>) : null;
  }

  async established(): Promise<boolean> {
    const n = await this.neighbor();
    return (n?.state as { session_state?: number } | undefined)?.session_state === 6;
  }

  /**
   * GoBGP does not log the code of a NOTIFICATION received in OpenConfirm (it treats it as an
   * invalid message), so report its NOTIFICATION counter too.
   */
  async lastError(): Promise<string> {
    const n = await this.neighbor();
    const received = (n?.state as { messages?: { received?: { notification?: number } } } | undefined)?.messages?.received?.notification ?? 0;
    return `notifications received: ${received}\n${this.stderr}`;
  }
}

// ---------------------------------------------------------------------------------------------

export class FrrPeer extends PeerDaemon {
  readonly kind = 'frr' as const;

  protected writeConfig(): void {
    const { asn, neighbor } = this.opts;
    const hold = neighbor.holdTime ?? 90;
    const n = neighbor.address;
    const bfd = this.opts.bfd;
    writeFileSync(
      join(this.dir, 'bgpd.conf'),
      `frr defaults traditional
log file ${join(this.dir, 'bgpd.log')} debugging
debug bgp neighbor-events
router bgp ${asn}
 bgp router-id ${this.routerId}
 no bgp ebgp-requires-policy
 bgp graceful-restart
 bgp graceful-restart restart-time ${this.opts.restartTime ?? 120}
 neighbor ${n} remote-as ${neighbor.asn}
 ${neighbor.passive ? `neighbor ${n} passive` : `neighbor ${n} timers connect 1`}
 neighbor ${n} timers ${Math.max(1, Math.floor(hold / 3))} ${hold}
 neighbor ${n} advertisement-interval 0
 ${this.opts.password !== undefined ? `neighbor ${n} password ${this.opts.password}` : ''}
 ${bfd ? `neighbor ${n} bfd profile fast` : ''}
 address-family ipv6 unicast
  neighbor ${n} activate
 exit-address-family
`,
    );
    if (bfd) {
      // bgpd asks bfdd for the session through zebra, so BFD needs all three daemons.
      writeFileSync(join(this.dir, 'zebra.conf'), `log file ${join(this.dir, 'zebra.log')}\n`);
      writeFileSync(
        join(this.dir, 'bfdd.conf'),
        `log file ${join(this.dir, 'bfdd.log')} debugging
bfd
 profile fast
  receive-interval ${bfd.intervalMs}
  transmit-interval ${bfd.intervalMs}
  detect-multiplier ${bfd.multiplier}
 !
!
`,
      );
    }
    writeFileSync(join(this.dir, 'vtysh.conf'), '');
  }

  /** zebra and bfdd have no --skip_runas and refuse root (not in frrvty): they run as frr (NETLAB). */
  private common(daemon: string): string[] {
    const user = daemon === 'bgpd' ? 'root' : 'frr';
    return ['-u', user, '-g', user, '-f', join(this.dir, `${daemon}.conf`), '-i', join(this.dir, `${daemon}.pid`), '--vty_socket', this.dir, '-P', '0', '--log', `file:${join(this.dir, `${daemon}.log`)}`];
  }

  protected override async beforeStart(): Promise<void> {
    if (!this.opts.bfd) return;
    chmodSync(this.baseDir, 0o755);
    chownSync(this.dir, frrIds().uid, frrIds().gid);
    const zserv = join(this.dir, 'zserv.api');
    await this.spawnExtra('zebra', [which('zebra') ?? '/usr/lib/frr/zebra', ...this.common('zebra'), '-z', zserv], () => existsSync(zserv));
    const ctl = join(this.dir, 'bfdd.sock');
    await this.spawnExtra('bfdd', [which('bfdd') ?? '/usr/lib/frr/bfdd', ...this.common('bfdd'), '-z', zserv, '--bfdctl', ctl], () => existsSync(ctl));
  }

  protected command(): string[] {
    const zebra = this.opts.bfd ? ['-z', join(this.dir, 'zserv.api')] : ['-Z'];
    return [which('bgpd') ?? '/usr/lib/frr/bgpd', ...zebra, '-S', ...this.common('bgpd'), '-l', this.opts.node.ipv4];
  }

  /** `show bfd peers json` from bfdd (BFD labs only). */
  async bfdPeers(): Promise<Array<Record<string, unknown>>> {
    const out = (await run('vtysh', ['--vty_socket', this.dir, '--config_dir', this.dir, '-d', 'bfdd', '-c', 'show bfd peers json'], { timeoutMs: 10_000 })).stdout;
    return out.trim().startsWith('[') ? (JSON.parse(out) as Array<Record<string, unknown>>) : [];
  }

  async vtysh(command: string): Promise<string> {
    return (await run('vtysh', ['--vty_socket', this.dir, '--config_dir', this.dir, '-d', 'bgpd', '-c', command], { timeoutMs: 10_000 })).stdout;
  }

  protected async controlReady(): Promise<boolean> {
    return (await this.vtysh('show bgp summary json')).includes('{');
  }

  async route(prefix: string): Promise<PeerRoute | null> {
    const family = prefix.includes(':') ? 'ipv6' : 'ipv4';
    const out = await this.vtysh(`show bgp ${family} unicast ${prefix} json`);
    if (!out.trim().startsWith('{')) return null;
    const parsed = JSON.parse(out) as { prefix?: string; paths?: Array<Record<string, unknown>> };
    // FRR answers a longest-prefix match: insist on the exact prefix.
    if (parsed.prefix !== prefix) return null;
    const path = parsed.paths?.find((p) => (p.peer as { peerId?: string } | undefined)?.peerId === this.opts.neighbor.address);
    if (!path) return null;
    const aspath = path.aspath as { segments?: Array<{ list: number[] }> } | undefined;
    return {
      prefix,
      nextHops: ((path.nexthops as Array<{ ip: string }> | undefined) ?? []).map((h) => h.ip),
      asPath: (aspath?.segments ?? []).flatMap((s) => s.list),
      communities: ((path.community as { list?: string[] } | undefined)?.list ?? []).map(normalizeCommunity),
      largeCommunities: (path.largeCommunity as { list?: string[] } | undefined)?.list ?? [],
      med: path.metric as number | undefined,
      localPref: path.locPrf as number | undefined,
      origin: String(path.origin ?? '').toLowerCase(),
      stale: path.stale === true,
    };
  }

  async neighbor(): Promise<Record<string, unknown> | null> {
    const out = await this.vtysh(`show bgp neighbors ${this.opts.neighbor.address} json`);
    if (!out.trim().startsWith('{')) return null;
    return (JSON.parse(out) as Record<string, Record<string, unknown>>)[this.opts.neighbor.address] ?? null;
  }

  async established(): Promise<boolean> {
    return (await this.neighbor())?.bgpState === 'Established';
  }

  async lastError(): Promise<string> {
    const n = await this.neighbor();
    return `${JSON.stringify({ lastNotificationReason: n?.lastNotificationReason, lastResetDueTo: n?.lastResetDueTo, lastErrorCodeSubcode: n?.lastErrorCodeSubcode })}\n${this.logText('bgpd.log')}`;
  }
}

function frrIds(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'frr'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

export function createPeer(kind: PeerKind, opts: PeerDaemonOptions): PeerDaemon {
  return kind === 'bird' ? new BirdPeer(opts) : kind === 'frr' ? new FrrPeer(opts) : new GobgpPeer(opts);
}

/** Binaries each adapter needs. */
export const peerBinaries: Record<PeerKind, string[]> = {
  bird: ['bird', 'birdc'],
  frr: ['bgpd', 'vtysh'],
  gobgp: ['gobgpd', 'gobgp'],
};

export { sleep };
