// Thin async wrappers around iproute2's `ip -j` (and the helper tools the announcer spawns).
// Commands are run with execFile, never through a shell, by an injectable CommandRunner: the
// speaker uses the plain runner in the node's namespace; tests prefix every command with
// `ip netns exec <ns>` so that the same code runs inside a lab namespace.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { parseIP } from '../net/address.ts';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  timeoutMs?: number;
  input?: string;
  /** Kills the command (SIGKILL) when aborted; it then resolves with a non-zero code. */
  signal?: AbortSignal;
}

/** Runs one program with arguments (no shell); resolves on any exit, never rejects on a non-zero code. */
export type CommandRunner = (cmd: string, args: string[], opts?: RunOptions) => Promise<CommandResult>;

/** A command that failed, with everything needed to understand why. */
export class CommandError extends Error {
  constructor(
    readonly command: string[],
    readonly code: number,
    readonly stderr: string,
  ) {
    super(`\`${command.join(' ')}\` failed (exit ${code}): ${stderr.trim() || '(no output)'}`);
    this.name = 'CommandError';
  }
}

/**
 * The default runner: execFile with a timeout (SIGKILL when it expires). `prefix` is prepended to
 * every command, e.g. ['ip', 'netns', 'exec', 'lab1-node-a'].
 */
export function execRunner(prefix: string[] = [], defaultTimeoutMs = 10_000): CommandRunner {
  return (cmd, args, opts = {}) =>
    new Promise((resolve) => {
      const argv = [...prefix, cmd, ...args];
      const child = execFile(
        argv[0]!,
        argv.slice(1),
        { timeout: opts.timeoutMs ?? defaultTimeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 * 1024 * 1024, ...(opts.signal ? { signal: opts.signal } : {}) },
        (err, stdout, stderr) => {
          let code = 0;
          let errText = String(stderr);
          if (err) {
            const e = err as NodeJS.ErrnoException & { code?: unknown; killed?: boolean; signal?: string | null };
            code = typeof e.code === 'number' ? e.code : 127;
            if (e.name === 'AbortError') errText += '\n(aborted)';
            else if (e.killed || e.signal) errText += `\n(killed by ${e.signal ?? 'signal'} after ${opts.timeoutMs ?? defaultTimeoutMs} ms)`;
            else if (typeof e.code === 'string') errText += `\n${e.message}`;
          }
          resolve({ code, stdout: String(stdout), stderr: errText });
        },
      );
      child.stdin?.on('error', () => {});
      if (opts.input !== undefined) child.stdin?.end(opts.input);
      else child.stdin?.end();
    });
}

/** Runs and throws a CommandError on a non-zero exit. */
export async function runChecked(runner: CommandRunner, cmd: string, args: string[], opts?: RunOptions): Promise<string> {
  const r = await runner(cmd, args, opts);
  if (r.code !== 0) throw new CommandError([cmd, ...args], r.code, r.stderr || r.stdout);
  return r.stdout;
}

/** Absolute path of a program in PATH or the sbin directories, or null. */
export function findProgram(name: string): string | null {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin', '/bin'];
  for (const d of dirs) if (existsSync(`${d}/${name}`)) return `${d}/${name}`;
  return null;
}

// ---------------------------------------------------------------------------------------------
// `ip -j addr` / `ip -j route` as data

export interface IpAddr {
  family: 4 | 6;
  local: string;
  prefixlen: number;
  /** IFA_RT_PRIORITY: admitlb's ownership tag (see OWNER_TAG in announcer.ts). */
  metric?: number;
  scope: string;
  label?: string;
  noprefixroute: boolean;
  nodad: boolean;
  deprecated: boolean;
  tentative: boolean;
  /** Seconds; 4294967295 is "forever". */
  validLft: number;
  preferredLft: number;
}

export interface IpLink {
  ifindex: number;
  ifname: string;
  /** IFF_* flags as ip prints them: UP, LOWER_UP, LOOPBACK, NOARP, ... */
  flags: string[];
  operstate: string;
  /** "ether", "loopback", "none", ... */
  linkType: string;
  /** MAC address, when the link has one. */
  mac?: string;
  addrs: IpAddr[];
}

export const FOREVER = 4294967295;

interface RawAddrInfo {
  family?: string;
  local?: string;
  prefixlen?: number;
  metric?: number;
  scope?: string;
  label?: string;
  noprefixroute?: boolean;
  nodad?: boolean;
  deprecated?: boolean;
  tentative?: boolean;
  valid_life_time?: number;
  preferred_life_time?: number;
}

interface RawLink {
  ifindex?: number;
  ifname?: string;
  flags?: string[];
  operstate?: string;
  link_type?: string;
  address?: string;
  addr_info?: RawAddrInfo[];
}

/** Parses `ip -j addr show` output (pure; exported for tests). */
export function parseIpAddrJson(json: string): IpLink[] {
  const raw = JSON.parse(json || '[]') as RawLink[];
  return raw
    .filter((l) => typeof l.ifname === 'string' && typeof l.ifindex === 'number')
    .map((l) => ({
      ifindex: l.ifindex!,
      ifname: l.ifname!,
      flags: l.flags ?? [],
      operstate: l.operstate ?? 'UNKNOWN',
      linkType: l.link_type ?? 'none',
      ...(l.address && /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/i.test(l.address) ? { mac: l.address.toLowerCase() } : {}),
      addrs: (l.addr_info ?? [])
        .filter((a) => (a.family === 'inet' || a.family === 'inet6') && typeof a.local === 'string')
        .map((a) => ({
          family: a.family === 'inet' ? (4 as const) : (6 as const),
          local: a.local!,
          prefixlen: a.prefixlen ?? (a.family === 'inet' ? 32 : 128),
          ...(typeof a.metric === 'number' ? { metric: a.metric } : {}),
          scope: a.scope ?? 'global',
          ...(a.label ? { label: a.label } : {}),
          noprefixroute: !!a.noprefixroute,
          nodad: !!a.nodad,
          deprecated: !!a.deprecated,
          tentative: !!a.tentative,
          validLft: a.valid_life_time ?? FOREVER,
          preferredLft: a.preferred_life_time ?? FOREVER,
        })),
    }));
}

/** Every link with its addresses (`ip -j addr show`). */
export async function listLinks(runner: CommandRunner): Promise<IpLink[]> {
  return parseIpAddrJson(await runChecked(runner, 'ip', ['-j', 'addr', 'show']));
}

export interface DefaultRoutes {
  /** Output interfaces of the default routes, best (lowest metric) first. */
  v4: string[];
  v6: string[];
}

/** Parses `ip -j route show default` output into output interfaces, lowest metric first (pure). */
export function parseDefaultRoutes(json: string): string[] {
  const raw = JSON.parse(json || '[]') as Array<{ dst?: string; dev?: string; metric?: number; nexthops?: Array<{ dev?: string }> }>;
  return raw
    .filter((r) => r.dst === 'default')
    .sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0))
    .flatMap((r) => (r.dev ? [r.dev] : (r.nexthops ?? []).map((n) => n.dev).filter((d): d is string => !!d)));
}

export async function defaultRoutes(runner: CommandRunner): Promise<DefaultRoutes> {
  const [v4, v6] = await Promise.all([
    runChecked(runner, 'ip', ['-j', '-4', 'route', 'show', 'default']),
    runChecked(runner, 'ip', ['-j', '-6', 'route', 'show', 'default']),
  ]);
  return { v4: parseDefaultRoutes(v4), v6: parseDefaultRoutes(v6) };
}

// ---------------------------------------------------------------------------------------------
// Addresses


export interface HostAddressSpec {
  address: string;
  dev: string;
  /** Ownership tag, stored in the kernel as the address's metric (IFA_RT_PRIORITY). */
  tag: number;
  /** Valid lifetime in seconds; 0 = forever. */
  lifetimeSeconds: number;
}

/**
 * The `ip addr` arguments for one admitlb host address (after `add`/`change`/`del`):
 *  - a host prefix (/32, /128): never a subnet's primary address, never a source of connected routes;
 *  - `noprefixroute`: the kernel adds no route for it (only the local-table entry that makes it
 *    local), so the tag stored in `metric` is never applied to any route;
 *  - IPv6 `nodad`: usable (answers NS) at once, no 1 s DAD wait; `preferred_lft 0` (deprecated):
 *    the kernel still answers NS for it and accepts traffic to it, but never picks it as the
 *    source of the node's own connections (RFC 6724 rule 3), which would break when it moves;
 *  - a finite valid lifetime, renewed by the announcer, is a dead man's switch: if the speaker
 *    dies and is not restarted, the kernel removes its addresses by itself.
 */
export function hostAddressArgs(spec: HostAddressSpec, op: 'add' | 'change'): string[] {
  const fam = parseIP(spec.address).family;
  const args = ['addr', op, `${spec.address}/${fam === 4 ? 32 : 128}`, 'dev', spec.dev, 'metric', String(spec.tag), 'noprefixroute'];
  const valid = spec.lifetimeSeconds > 0 ? String(spec.lifetimeSeconds) : 'forever';
  if (fam === 6) args.push('nodad', 'valid_lft', valid, 'preferred_lft', '0');
  else args.push('valid_lft', valid, 'preferred_lft', valid);
  return args;
}

/** Adds a host address; throws CommandError (e.g. "File exists") on failure. */
export async function addHostAddress(runner: CommandRunner, spec: HostAddressSpec): Promise<void> {
  await runChecked(runner, 'ip', hostAddressArgs(spec, 'add'));
}

/** Removes an address; resolves false when it was not there. */
export async function deleteAddress(runner: CommandRunner, address: string, prefixlen: number, dev: string): Promise<boolean> {
  const r = await runner('ip', ['addr', 'del', `${address}/${prefixlen}`, 'dev', dev]);
  if (r.code === 0) return true;
  if (/Cannot assign requested address|address not found|Cannot find device|does not exist/i.test(r.stderr)) return false;
  throw new CommandError(['ip', 'addr', 'del', `${address}/${prefixlen}`, 'dev', dev], r.code, r.stderr);
}

/** Runs `ip -batch -` with `-force` (continues past failing lines); returns the failures' stderr. */
export async function ipBatch(runner: CommandRunner, lines: string[][]): Promise<CommandResult> {
  if (lines.length === 0) return { code: 0, stdout: '', stderr: '' };
  return runner('ip', ['-force', '-batch', '-'], { input: `${lines.map((l) => l.join(' ')).join('\n')}\n` });
}

// ---------------------------------------------------------------------------------------------
// Links

/**
 * Makes sure a dummy interface `name` exists and is up. Throws CommandError when the kernel has
 * no dummy driver ("Unknown device type") or the name is taken by a link of another kind.
 * Returns whether it was created by this call.
 */
export async function ensureDummy(runner: CommandRunner, name: string): Promise<boolean> {
  const show = await runner('ip', ['-j', '-d', 'link', 'show', 'dev', name]);
  let created = false;
  if (show.code === 0) {
    const [link] = JSON.parse(show.stdout || '[]') as Array<{ linkinfo?: { info_kind?: string } }>;
    const kind = link?.linkinfo?.info_kind;
    if (kind !== 'dummy') throw new CommandError(['ip', '-d', 'link', 'show', 'dev', name], 1, `${name} exists and is not a dummy interface (kind ${kind ?? 'none'}); refusing to use it`);
  } else {
    await runChecked(runner, 'ip', ['link', 'add', name, 'type', 'dummy']);
    created = true;
  }
  await runChecked(runner, 'ip', ['link', 'set', name, 'up']);
  return created;
}

export async function deleteLink(runner: CommandRunner, name: string): Promise<boolean> {
  const r = await runner('ip', ['link', 'del', name]);
  if (r.code === 0) return true;
  if (/Cannot find device|does not exist/i.test(r.stderr)) return false;
  throw new CommandError(['ip', 'link', 'del', name], r.code, r.stderr);
}
