// Counting the ARP requests and IPv6 neighbour solicitations the kernel answers for this node's L2
// addresses (metric admitlb_speaker_neighbor_requests_answered_total).
//
// The addresses are kernel-owned (announcer.ts), so the kernel answers ARP / NS itself and the
// speaker never sees a request; Node has no AF_PACKET socket to watch them either (NETLAB.md §3).
// So, honestly: while this node holds at least one L2 address on an interface, one long-lived
// `tcpdump` per such interface prints every incoming ARP request and NS there, and a request whose
// target is an address this node holds on that interface at that moment is one the kernel answered.
// - Filter: `(arp and arp[6:2] = 1) or (icmp6 and ip6[40] = 135)` (ARP opcode 1; ICMPv6 type 135,
//   which sits at ip6[40] since an NS carries no extension header). `-p`: no promiscuous mode; the
//   NS for a /128 goes to its solicited-node multicast group, which the kernel joined when the
//   address was added, so it is received without it. `-Q in`: only received packets (our own
//   gratuitous ARP is a request for our own address). `--immediate-mode`: no 1 s batching.
// - A gratuitous ARP (sender = target) is an announcement, not a question, and is not counted.
// - The capture stops when the node holds nothing on the interface; if tcpdump dies it is restarted
//   with backoff (1 s doubling to 30 s); if tcpdump is not installed this is logged once, the metric
//   stays 0, and nothing else depends on it (the kernel answers either way).
import { silentLogger, type Logger } from '../log.ts';
import { spawn as nodeSpawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { canonicalIP } from '../net/address.ts';
import { findProgram } from './ip.ts';

export type NeighborFamily = 'ipv4' | 'ipv6';

export interface NeighborRequest {
  family: NeighborFamily;
  /** the address asked for */
  target: string;
  /** the asker's address (ARP "tell X"; the IPv6 source, `::` for DAD) */
  sender: string;
}

export const CAPTURE_FILTER = '(arp and arp[6:2] = 1) or (icmp6 and ip6[40] = 135)';

const ARP_RE = /\bARP\b.*?Request who-has (\d{1,3}(?:\.\d{1,3}){3})(?: \([^)]*\))? tell (\d{1,3}(?:\.\d{1,3}){3})/;
const NS_RE = /(?:\bIP6 (?:\((?:[^()]|\([^()]*\))*\) )?|ethertype IPv6 \(0x86dd\), length \d+: )([0-9a-fA-F:.]+) > [0-9a-fA-F:.]+: ICMP6, neighbor solicitation, who has ([0-9a-fA-F:.]+)/;

/** One line of `tcpdump -n [-e] [-v]` output → the request, or null for anything else. */
export function parseTcpdumpLine(line: string): NeighborRequest | null {
  const arp = ARP_RE.exec(line);
  if (arp) return { family: 'ipv4', target: arp[1]!, sender: arp[2]! };
  const ns = NS_RE.exec(line);
  if (ns) {
    try {
      return { family: 'ipv6', target: canonicalIP(ns[2]!), sender: canonicalIP(ns[1]!) };
    } catch {
      return null;
    }
  }
  return null;
}


export interface NeighborCaptureOptions {
  /** called for each request the kernel answered (an owned target on that interface) */
  onAnswered: (family: NeighborFamily, target: string, dev: string) => void;
  /** command prefix (tests: `ip netns exec NS`), as for the announcer's runner */
  prefix?: string[];
  /** tcpdump's path; default: looked up; null: not installed */
  tcpdump?: string | null;
  logger?: Pick<Logger, 'info' | 'warn'>;
  /** restart backoff after tcpdump died; default 1000 ms doubling to 30 000 ms */
  backoff?: { initialMs?: number; maxMs?: number };
  /** injectable for tests */
  spawn?: (cmd: string, args: string[]) => ChildProcess;
}

interface Capture {
  dev: string;
  child: ChildProcess | undefined;
  /** true once tcpdump said "listening on" */
  listening: boolean;
  restartTimer: NodeJS.Timeout | undefined;
  failures: number;
  startedAt: number;
  stderr: string;
}


export class NeighborRequestCapture {
  private readonly owned = new Map<string, Set<string>>();
  private readonly captures = new Map<string, Capture>();
  private readonly tcpdump: string | null;
  private readonly logger: Pick<Logger, 'info' | 'warn'>;
  private readonly initialMs: number;
  private readonly maxMs: number;
  private readonly spawnFn: (cmd: string, args: string[]) => ChildProcess;
  private warnedMissing = false;
  private closed = false;

  constructor(private readonly opts: NeighborCaptureOptions) {
    this.tcpdump = opts.tcpdump === undefined ? findProgram('tcpdump') : opts.tcpdump;
    this.logger = opts.logger ?? silentLogger;
    this.initialMs = opts.backoff?.initialMs ?? 1000;
    this.maxMs = opts.backoff?.maxMs ?? 30_000;
    this.spawnFn = opts.spawn ?? ((cmd, args) => nodeSpawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
  }

  /** Whether tcpdump is available (else the metric stays 0). */
  get available(): boolean {
    return this.tcpdump !== null;
  }

  /** Interfaces whose capture is running and listening. */
  listening(): string[] {
    return [...this.captures.values()].filter((c) => c.listening).map((c) => c.dev).sort();
  }

  /** The L2 addresses this node holds now (announcer.held(), kind 'announce'): starts/stops captures. */
  update(held: { address: string; dev: string }[]): void {
    if (this.closed) return;
    this.owned.clear();
    for (const h of held) {
      let set = this.owned.get(h.dev);
      if (!set) this.owned.set(h.dev, (set = new Set()));
      set.add(canonicalIP(h.address));
    }
    for (const dev of [...this.captures.keys()]) if (!this.owned.has(dev)) this.stopCapture(dev);
    if (this.owned.size === 0) return;
    if (!this.tcpdump) {
      if (!this.warnedMissing) {
        this.warnedMissing = true;
        this.logger.warn({}, 'tcpdump is not installed: admitlb_speaker_neighbor_requests_answered_total stays 0 (the kernel answers ARP/NDP regardless)');
      }
      return;
    }
    for (const dev of this.owned.keys()) if (!this.captures.has(dev)) this.startCapture({ dev, child: undefined, listening: false, restartTimer: undefined, failures: 0, startedAt: 0, stderr: '' });
  }

  /** Handles one output line of the capture on `dev` (exposed for tests). */
  handleLine(dev: string, line: string): NeighborRequest | null {
    const req = parseTcpdumpLine(line);
    if (!req || req.target === req.sender) return null;
    if (!this.owned.get(dev)?.has(req.target)) return null;
    this.opts.onAnswered(req.family, req.target, dev);
    return req;
  }

  async close(): Promise<void> {
    this.closed = true;
    const exits = [...this.captures.keys()].map((dev) => this.stopCapture(dev));
    await Promise.all(exits);
  }

  private argv(dev: string): string[] {
    return [...(this.opts.prefix ?? []), this.tcpdump!, '-l', '-n', '-p', '--immediate-mode', '-Q', 'in', '-s', '128', '-i', dev, CAPTURE_FILTER];
  }

  private startCapture(c: Capture): void {
    this.captures.set(c.dev, c);
    const [cmd, ...args] = this.argv(c.dev);
    let child: ChildProcess;
    try {
      child = this.spawnFn(cmd!, args);
    } catch (err) {
      this.onExit(c, undefined, `spawn failed: ${(err as Error).message}`);
      return;
    }
    c.child = child;
    c.listening = false;
    c.stderr = '';
    c.startedAt = performance.now();
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT' && !this.warnedMissing) {
        this.warnedMissing = true;
        this.logger.warn({ cmd }, 'tcpdump could not be run: admitlb_speaker_neighbor_requests_answered_total stays 0');
      }
      c.stderr += `\n${err.message}`;
    });
    if (child.stdout) {
      const rl = createInterface({ input: child.stdout });
      rl.on('line', (line) => this.handleLine(c.dev, line));
    }
    child.stderr?.on('data', (d: Buffer) => {
      c.stderr = (c.stderr + d.toString()).slice(-2000);
      if (!c.listening && /listening on/.test(c.stderr)) {
        c.listening = true;
        this.logger.info({ dev: c.dev }, 'capturing ARP/NS requests (neighbor request metric)');
      }
    });
    child.once('close', (code, signal) => {
      if (c.child === child) this.onExit(c, code ?? signal ?? undefined, c.stderr.trim().split('\n').slice(-3).join(' | '));
    });
  }

  private onExit(c: Capture, code: number | string | undefined, why: string): void {
    c.child = undefined;
    c.listening = false;
    if (this.closed || this.captures.get(c.dev) !== c) return;
    if (!this.owned.has(c.dev)) {
      this.captures.delete(c.dev);
      return;
    }
    // A capture that ran for a while counts as healthy again: start over with the short delay.
    if (c.startedAt && performance.now() - c.startedAt > this.maxMs) c.failures = 0;
    const delay = Math.min(this.maxMs, this.initialMs * 2 ** c.failures);
    c.failures++;
    if (!this.warnedMissing || c.failures <= 1) this.logger.warn({ dev: c.dev, code, stderr: why, retryInMs: delay }, 'neighbor request capture (tcpdump) exited; restarting');
    c.restartTimer = setTimeout(() => {
      c.restartTimer = undefined;
      if (!this.closed && this.captures.get(c.dev) === c && this.owned.has(c.dev)) this.startCapture(c);
    }, delay);
    c.restartTimer.unref();
  }

  private stopCapture(dev: string): Promise<void> {
    const c = this.captures.get(dev);
    this.captures.delete(dev);
    if (!c) return Promise.resolve();
    clearTimeout(c.restartTimer);
    const child = c.child;
    c.child = undefined;
    c.listening = false;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL');
        resolve();
      }, 2000);
      t.unref();
      child.once('close', () => {
        clearTimeout(t);
        resolve();
      });
      child.kill('SIGTERM');
    });
  }
}
