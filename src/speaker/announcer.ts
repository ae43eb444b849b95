// The node-local L2 data plane: puts addresses on interfaces, announces them with gratuitous ARP /
// unsolicited NA, keeps them fresh, and takes them away again, touching nothing it did not add.
//
// Mechanism (why a kernel-owned address and helper tools rather than a userspace responder):
//  - Node has no AF_PACKET or raw socket (NETLAB.md §3), so a MetalLB-style responder would need a
//    native addon. A kernel-owned address needs none: the kernel answers ARP and NS for it itself,
//    from the moment `ip addr add` returns, with no process in the data path. A responder that
//    stalls (GC, CPU starvation on a busy node) stops answering; the kernel does not.
//  - Takeover speed is set by how fast the neighbours' caches change, not by who answers: on
//    takeover we send a gratuitous ARP (iputils `arping -U`) or an unsolicited NA with the
//    Override flag (`ndsend` when installed; Debian ships no `ndsend`, so `na6` from
//    ipv6toolkit otherwise), which rewrites existing entries at once, even with the kernel
//    defaults (arp_accept=0, accept_untracked_na=0) on the receivers. One follow-up send covers a
//    lost first packet; periodic sends keep switch FDBs warm (MetalLB #2910). Measured in
//    test/speaker/l2.test.ts: the client's entry moves to the new owner within milliseconds.
//  - The previous owner removes the address, so it stops answering at once; a kernel responder
//    cannot outlive the decision to withdraw.
//  - IPv6: added `nodad` (no 1 s DAD wait, answers NS immediately) and deprecated (preferred_lft 0)
//    so that the node never uses it as the source of its own connections.
//  - Where: an L2 address goes on the announcing interface itself. IPv6 answers NS only for
//    addresses of the receiving interface, and IPv4 does the same with arp_ignore=1 (which
//    kube-proxy's IPVS strictARP sets), so a dummy interface cannot carry L2 addresses. Host
//    prefixes (/32, /128) with `noprefixroute` never become a subnet's primary address or a route.
//  - Addresses that only need to be local (an externalIP announced by BGP, or kube-proxy's
//    requirement that an externalIP be local) go on a dedicated dummy interface (`admitlb0`),
//    falling back to `lo` on kernels without the dummy driver.
//
// Ownership (what is "ours", robust across crashes): every address admitlb adds carries a tag in
// the kernel itself, the address's metric (IFA_RT_PRIORITY) set to OWNER_TAG. With `noprefixroute`
// the kernel creates no route that could use that metric, so the tag has no effect on forwarding.
// The tag lives and dies with the address: no state file to lose or to go stale, a crash leaves
// exactly the tagged addresses behind, and `cleanupLeftovers()` removes exactly those. Addresses
// anyone else added (untagged, or another metric) are never removed, even on admitlb0 or on the
// same interface. (IFA_PROTO would be the cleaner tag, but iproute2 6.1 in Debian 12 cannot set
// it.) A finite valid lifetime, renewed on every refresh, is a dead man's switch: if the speaker
// dies and is not restarted, the kernel itself removes its addresses after `lifetimeSeconds`.
import { EventEmitter } from 'node:events';
import { canonicalIP, parseIP } from '../net/address.ts';
import {
  CommandError,
  addHostAddress,
  deleteAddress,
  deleteLink,
  ensureDummy,
  execRunner,
  findProgram,
  hostAddressArgs,
  ipBatch,
  listLinks,
  type CommandRunner,
  type HostAddressSpec,
} from './ip.ts';

/** The kernel-side ownership tag: the metric of every address admitlb adds ("adm" in ASCII). */
export const OWNER_TAG = 0x61646d;

export type NdTool = 'ndsend' | 'na6';

export interface L2AnnouncerOptions {
  /** How commands run (default: directly; tests prefix `ip netns exec <ns>`). */
  runner?: CommandRunner;
  /** Kernel ownership tag (address metric). Default OWNER_TAG. */
  ownerTag?: number;
  /** Period of gratuitous ARP / unsolicited NA refreshes and lifetime renewals; 0 disables. Default 20 s. */
  refreshIntervalMs?: number;
  /** Valid lifetime of added addresses in seconds, renewed on refresh; 0 = forever. Default 90 s. */
  lifetimeSeconds?: number;
  /** Extra sends after a takeover, in ms after the first one. Default [1000]. */
  repeatDelaysMs?: number[];
  /** At most this many helper processes (arping, na6) at once. Default 16. */
  maxConcurrentSends?: number;
  /** Kill a helper after this long. Default 3000 ms (arping -c1 lingers about 1 s). */
  sendTimeoutMs?: number;
  /** Gratuitous ARP as a request (`arping -U`, default) or a reply (`arping -A`). */
  arpMode?: 'request' | 'reply';
  /** Which tool sends unsolicited NAs; default: ndsend if installed, else na6. */
  ndTool?: NdTool;
  /** Program paths (default: looked up in PATH and the sbin directories). */
  programs?: Partial<Record<'arping' | NdTool, string>>;
  /** The dummy interface for local-only addresses. Default "admitlb0". */
  localInterface?: string;
  /** Used when the kernel cannot create a dummy interface; null to fail instead. Default "lo". */
  localFallback?: string | null;
}

export type HeldKind = 'announce' | 'local';

export interface HeldAddress {
  address: string;
  dev: string;
  kind: HeldKind;
  /** Present before we came (untagged): announced but never removed by us. */
  foreign: boolean;
}

export interface RemovedAddress {
  address: string;
  prefixlen: number;
  dev: string;
}

interface Entry extends HeldAddress {
  timers: Set<NodeJS.Timeout>;
  /** Aborted when the entry goes: queued sends never start, running helpers are killed. */
  abort: AbortController;
}

/** Events: 'sendError' {address, dev, error}, 'warning' {message}, 'restored' {address, dev}. */
export class L2Announcer extends EventEmitter {
  readonly ownerTag: number;
  private readonly runner: CommandRunner;
  private readonly refreshIntervalMs: number;
  private readonly lifetimeSeconds: number;
  private readonly repeatDelaysMs: number[];
  private readonly sendTimeoutMs: number;
  private readonly maxConcurrentSends: number;
  private readonly arpFlag: string;
  private readonly arping: string | null;
  private readonly nd: { tool: NdTool; path: string } | null;
  private readonly localInterface: string;
  private readonly localFallback: string | null;
  private localDev: Promise<string> | null = null;
  private readonly entries = new Map<string, Entry>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly inflight = new Set<Promise<void>>();
  private readonly waiting: Array<() => void> = [];
  private running = 0;
  private refreshTimer: NodeJS.Timeout | null = null;
  private refreshing: Promise<void> | null = null;
  private closed = false;

  constructor(opts: L2AnnouncerOptions = {}) {
    super();
    this.runner = opts.runner ?? execRunner();
    this.ownerTag = opts.ownerTag ?? OWNER_TAG;
    this.refreshIntervalMs = opts.refreshIntervalMs ?? 20_000;
    this.lifetimeSeconds = opts.lifetimeSeconds ?? 90;
    this.repeatDelaysMs = opts.repeatDelaysMs ?? [1000];
    this.sendTimeoutMs = opts.sendTimeoutMs ?? 3000;
    this.maxConcurrentSends = Math.max(1, opts.maxConcurrentSends ?? 16);
    this.arpFlag = opts.arpMode === 'reply' ? '-A' : '-U';
    this.localInterface = opts.localInterface ?? 'admitlb0';
    this.localFallback = opts.localFallback === undefined ? 'lo' : opts.localFallback;
    if (!Number.isInteger(this.ownerTag) || this.ownerTag <= 0 || this.ownerTag > 0xffffffff) throw new RangeError('ownerTag must be an integer in 1..2^32-1');
    if (this.lifetimeSeconds > 0 && (this.refreshIntervalMs <= 0 || this.refreshIntervalMs * 3 > this.lifetimeSeconds * 1000)) {
      throw new RangeError(`refreshIntervalMs (${this.refreshIntervalMs}) must be > 0 and at most a third of lifetimeSeconds (${this.lifetimeSeconds} s), or the kernel expires live addresses`);
    }
    this.arping = opts.programs?.arping ?? findProgram('arping');
    const ndTool = opts.ndTool ?? (opts.programs?.ndsend || findProgram('ndsend') ? 'ndsend' : 'na6');
    const ndPath = opts.programs?.[ndTool] ?? findProgram(ndTool);
    this.nd = ndPath ? { tool: ndTool, path: ndPath } : null;
    if (this.refreshIntervalMs > 0) {
      this.refreshTimer = setInterval(() => void this.refresh().catch((err) => this.warn(`refresh failed: ${(err as Error).message}`)), this.refreshIntervalMs);
      this.refreshTimer.unref();
    }
  }

  /** What is held now. */
  held(): HeldAddress[] {
    return [...this.entries.values()].map(({ address, dev, kind, foreign }) => ({ address, dev, kind, foreign }));
  }

  /**
   * Makes `address` answer on `iface` and tells the segment: adds it (host prefix, tagged) unless
   * it is already there, then sends gratuitous ARP / unsolicited NA now and after repeatDelaysMs.
   * Resolves once the address is configured and the first send has started.
   */
  announce(address: string, iface: string): Promise<void> {
    return this.bind(address, iface, 'announce');
  }

  /** Makes `address` local without announcing it (externalIPs served via BGP): on the dummy interface. */
  async bindLocal(address: string): Promise<string> {
    const dev = await this.ensureLocalDev();
    await this.bind(address, dev, 'local');
    return dev;
  }

  /** Stops answering for `address`: removes it (unless it was foreign). Resolves whether it was held. */
  withdraw(address: string): Promise<boolean> {
    const key = canonicalIP(address);
    return this.locked(key, async () => {
      const e = this.entries.get(key);
      if (!e) return false;
      await this.remove(e);
      return true;
    });
  }

  /**
   * Removes admitlb's addresses left by an earlier run (everything carrying the owner tag, on any
   * interface) except those `keep` accepts, which are adopted as held instead. Never touches an
   * address without the tag. Call once at start, before announcing.
   */
  async cleanupLeftovers(keep?: (a: { address: string; dev: string }) => boolean): Promise<RemovedAddress[]> {
    const links = await listLinks(this.runner);
    const removed: RemovedAddress[] = [];
    for (const link of links) {
      for (const a of link.addrs) {
        if (a.metric !== this.ownerTag) continue;
        const key = canonicalIP(a.local);
        if (this.entries.has(key)) continue;
        if (keep?.({ address: key, dev: link.ifname })) {
          const kind: HeldKind = link.ifname === this.localInterface || link.flags.includes('LOOPBACK') ? 'local' : 'announce';
          this.entries.set(key, { address: key, dev: link.ifname, kind, foreign: false, timers: new Set(), abort: new AbortController() });
          continue;
        }
        if (await deleteAddress(this.runner, a.local, a.prefixlen, link.ifname)) removed.push({ address: key, prefixlen: a.prefixlen, dev: link.ifname });
      }
    }
    return removed;
  }

  /**
   * One refresh: re-adds held addresses that disappeared (someone deleted them), renews lifetimes
   * in one `ip -batch`, and re-sends gratuitous ARP / unsolicited NA for announced addresses.
   * Runs on the timer; exposed for tests and for a caller that wants a refresh now.
   */
  refresh(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    this.refreshing = this.doRefresh().finally(() => (this.refreshing = null));
    return this.refreshing;
  }

  /** Waits until every helper process started so far has exited. */
  async flush(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
  }

  /**
   * Stops the timers and, by default, withdraws everything held (and deletes admitlb0 if we leave
   * it empty). `{ withdraw: false }` leaves the addresses in place (a rolling restart: the next
   * process adopts them with cleanupLeftovers(keep); or a simulated crash in tests).
   */
  async close(opts: { withdraw?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.refreshTimer) clearInterval(this.refreshTimer);
    this.refreshTimer = null;
    for (const e of this.entries.values()) this.cancelRepeats(e);
    await this.refreshing?.catch(() => {});
    if (opts.withdraw !== false) {
      const keys = [...this.entries.keys()];
      const errors: Error[] = [];
      await Promise.all(keys.map((k) => this.withdraw(k).catch((err: Error) => errors.push(err))));
      await this.deleteLocalDevIfEmpty().catch((err: Error) => errors.push(err));
      await this.flush();
      if (errors.length) throw new AggregateError(errors, `closing the announcer: ${errors.map((e) => e.message).join('; ')}`);
    } else {
      this.entries.clear();
      await this.flush();
    }
  }

  // -------------------------------------------------------------------------------------------

  private bind(address: string, dev: string, kind: HeldKind): Promise<void> {
    if (this.closed) return Promise.reject(new Error('announcer is closed'));
    const key = canonicalIP(address);
    return this.locked(key, async () => {
      const cur = this.entries.get(key);
      if (cur && cur.dev === dev && cur.kind === kind) return;
      if (cur) await this.remove(cur);
      const entry: Entry = { address: key, dev, kind, foreign: false, timers: new Set(), abort: new AbortController() };
      try {
        await addHostAddress(this.runner, this.spec(key, dev));
      } catch (err) {
        if (!(err instanceof CommandError) || !/File exists|already assigned/i.test(err.stderr)) throw err;
        // Already there: ours from an earlier life (tagged: adopt and renew), or someone else's.
        const existing = (await listLinks(this.runner)).find((l) => l.ifname === dev)?.addrs.find((a) => a.local === key);
        if (existing?.metric === this.ownerTag) await this.renew([entry]);
        else {
          entry.foreign = true;
          this.warn(`${key} is already configured on ${dev} by someone else; announcing it but never removing it`);
        }
      }
      this.entries.set(key, entry);
      if (kind === 'announce') {
        this.send(entry);
        for (const delay of this.repeatDelaysMs) {
          const t = setTimeout(() => {
            entry.timers.delete(t);
            if (this.entries.get(key) === entry) this.send(entry);
          }, delay);
          t.unref();
          entry.timers.add(t);
        }
      }
    });
  }

  private spec(address: string, dev: string): HostAddressSpec {
    return { address, dev, tag: this.ownerTag, lifetimeSeconds: this.lifetimeSeconds };
  }

  private async remove(e: Entry): Promise<void> {
    this.cancelRepeats(e);
    if (!e.foreign) await deleteAddress(this.runner, e.address, parseIP(e.address).family === 4 ? 32 : 128, e.dev);
    if (this.entries.get(e.address) === e) this.entries.delete(e.address);
  }

  private cancelRepeats(e: Entry): void {
    for (const t of e.timers) clearTimeout(t);
    e.timers.clear();
    e.abort.abort();
  }

  private async renew(entries: Entry[]): Promise<void> {
    if (this.lifetimeSeconds <= 0 || entries.length === 0) return;
    const r = await ipBatch(this.runner, entries.map((e) => hostAddressArgs(this.spec(e.address, e.dev), 'change')));
    if (r.code !== 0) this.warn(`renewing address lifetimes: ${r.stderr.trim()}`);
  }

  private async doRefresh(): Promise<void> {
    if (this.entries.size === 0) return;
    const links = await listLinks(this.runner);
    const present = new Set(links.flatMap((l) => l.addrs.filter((a) => a.metric === this.ownerTag).map((a) => `${l.ifname} ${a.local}`)));
    const renewals: Entry[] = [];
    for (const e of [...this.entries.values()]) {
      if (e.foreign) continue;
      if (present.has(`${e.dev} ${e.address}`)) {
        renewals.push(e);
        continue;
      }
      await this.locked(e.address, async () => {
        if (this.entries.get(e.address) !== e) return;
        try {
          await addHostAddress(this.runner, this.spec(e.address, e.dev));
          this.emit('restored', { address: e.address, dev: e.dev });
        } catch (err) {
          this.warn(`re-adding ${e.address} on ${e.dev}: ${(err as Error).message}`);
        }
      });
    }
    await this.renew(renewals);
    for (const e of this.entries.values()) if (e.kind === 'announce') this.send(e);
  }

  /** Starts one gratuitous ARP / unsolicited NA for an entry, within the concurrency limit. */
  private send(e: Entry): void {
    const fam = parseIP(e.address).family;
    let argv: string[] | null = null;
    if (fam === 4 && this.arping) argv = [this.arping, this.arpFlag, '-c', '1', '-I', e.dev, '-s', e.address, e.address];
    else if (fam === 6 && this.nd?.tool === 'ndsend') argv = [this.nd.path, e.address, e.dev];
    else if (fam === 6 && this.nd?.tool === 'na6') argv = [this.nd.path, '-i', e.dev, '-s', e.address, '-d', 'ff02::1', '-t', e.address, '-o', '-e'];
    if (!argv) {
      this.emit('sendError', { address: e.address, dev: e.dev, error: new Error(fam === 4 ? 'arping is not installed (iputils-arping)' : 'neither ndsend nor na6 (ipv6toolkit) is installed') });
      return;
    }
    const cmd = argv;
    const signal = e.abort.signal;
    const p = (async () => {
      await this.acquire();
      try {
        if (signal.aborted) return; // withdrawn while queued: never advertise it
        const r = await this.runner(cmd[0]!, cmd.slice(1), { timeoutMs: this.sendTimeoutMs, signal });
        if (r.code !== 0 && !signal.aborted) this.emit('sendError', { address: e.address, dev: e.dev, error: new CommandError(cmd, r.code, r.stderr || r.stdout) });
      } finally {
        this.release();
      }
    })();
    this.inflight.add(p);
    void p.finally(() => this.inflight.delete(p));
  }

  private acquire(): Promise<void> {
    if (this.running < this.maxConcurrentSends) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }

  private locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const tail = run.catch(() => {});
    this.locks.set(key, tail);
    void tail.then(() => {
      if (this.locks.get(key) === tail) this.locks.delete(key);
    });
    return run;
  }

  private ensureLocalDev(): Promise<string> {
    this.localDev ??= (async () => {
      try {
        await ensureDummy(this.runner, this.localInterface);
        return this.localInterface;
      } catch (err) {
        const noDriver = err instanceof CommandError && /Unknown device type|not supported|No such file/i.test(err.stderr);
        if (!noDriver || this.localFallback === null) throw err;
        this.warn(`cannot create dummy interface ${this.localInterface} (${err.stderr.trim()}); binding local addresses on ${this.localFallback}`);
        return this.localFallback;
      }
    })();
    this.localDev.catch(() => (this.localDev = null));
    return this.localDev;
  }

  private async deleteLocalDevIfEmpty(): Promise<void> {
    if (!this.localDev) return;
    const dev = await this.localDev.catch(() => null);
    if (dev !== this.localInterface) return;
    const link = (await listLinks(this.runner)).find((l) => l.ifname === dev);
    if (link?.addrs.every((a) => a.scope !== 'global')) await deleteLink(this.runner, dev);
  }

  private warn(message: string): void {
    this.emit('warning', { message });
  }
}
