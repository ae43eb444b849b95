// Command execution and environment checks for the network lab.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command with a timeout; never throws on a non-zero exit (read `code`). */
export function run(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { timeout: opts.timeoutMs ?? 10_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Like run() but throws with the command's stderr when it fails. */
export async function runOk(cmd: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): Promise<string> {
  const r = await run(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

const binCache = new Map<string, string | null>();
/** Absolute path of a program, looked up in PATH plus the sbin and FRR directories. */
export function which(name: string): string | null {
  if (binCache.has(name)) return binCache.get(name)!;
  const dirs = [...(process.env.PATH ?? '').split(':'), '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/lib/frr'];
  const found = dirs.map((d) => `${d}/${name}`).find((p) => existsSync(p)) ?? null;
  binCache.set(name, found);
  return found;
}

/**
 * Whether the lab can run here. Outside CI a missing requirement means "skip with this reason";
 * with CI=true the caller must fail instead (see labGate in topo.ts).
 */
export function missingRequirements(binaries: string[]): string[] {
  const missing: string[] = [];
  if (!isRoot()) missing.push('root (network namespaces need CAP_NET_ADMIN)');
  for (const b of ['ip', 'setpriv', ...binaries]) if (!which(b)) missing.push(`the ${b} binary`);
  return missing;
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls until fn returns a truthy value; throws after timeoutMs (default 15 s) with the last value seen. */
export async function waitFor<T>(what: string, fn: () => Promise<T> | T, opts: { timeoutMs?: number; intervalMs?: number } = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  let last: unknown;
  for (let i = 0; ; i++) {
    try {
      last = await fn();
      if (last) return last as NonNullable<T>;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await sleep(opts.intervalMs ?? Math.min(20 + i * 10, 200));
  }
}

export { execFileSync, spawn, type ChildProcess };
