// BIND 9 (Debian's `named`) as an authoritative server for one zone on 127.0.0.1, for tests that
// publish records with RFC 2136 dynamic updates: a temp folder with named.conf, the zone file and a
// TSIG key that may update and transfer the zone; `named -g` runs as a child and is stopped by PID.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import dgram from 'node:dgram';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, which } from '../bgp/lab/sys.ts';

const PROGRAMS = ['named', 'named-checkconf', 'dig'];

/** The programs startBind9 needs that are not installed (Debian: bind9, bind9-dnsutils). */
export function missingBind9(): string[] {
  return PROGRAMS.filter((p) => !which(p));
}

export interface Bind9Options {
  /** the zone served (default example.test) */
  zone?: string;
  /** the TSIG key's name (default external-dns) */
  keyName?: string;
}

export interface Bind9Server {
  host: '127.0.0.1';
  port: number;
  zone: string;
  tsig: { name: string; algorithm: 'hmac-sha256'; secret: string };
  dir: string;
  /** named's stderr so far (its log with -g) */
  log(): string;
  /** `dig @127.0.0.1 -p PORT <name> <type> +short`: the answers, one a line, none when the name has none */
  query(name: string, type?: string): Promise<string[]>;
  /** SIGTERM, SIGKILL after 5 s, then removes the folder; safe to call twice */
  stop(): Promise<void>;
}

/** An unused port on 127.0.0.1 for both TCP and UDP (named serves both, AXFR goes over TCP). */
async function freeDnsPort(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(0, '127.0.0.1', () => {
        const p = (srv.address() as net.AddressInfo).port;
        srv.close(() => resolve(p));
      });
    });
    const udpFree = await new Promise<boolean>((resolve) => {
      const sock = dgram.createSocket('udp4');
      sock.once('error', () => resolve(false));
      sock.bind(port, '127.0.0.1', () => sock.close(() => resolve(true)));
    });
    if (udpFree) return port;
  }
  throw new Error('no port free for both TCP and UDP on 127.0.0.1 after 20 tries');
}

export async function startBind9(opts: Bind9Options = {}): Promise<Bind9Server> {
  const zone = opts.zone ?? 'example.test';
  const keyName = opts.keyName ?? 'external-dns';
  const secret = randomBytes(32).toString('base64');
  const dir = mkdtempSync(join(tmpdir(), 'admitlb-bind9-'));
  // named drops to no other user (no -u) but may still run as root: the folder must be its own.
  chmodSync(dir, 0o755);
  const port = await freeDnsPort();
  writeFileSync(
    join(dir, 'named.conf'),
    `key "${keyName}" {
  algorithm hmac-sha256;
  secret "${secret}";
};
options {
  directory "${dir}";
  pid-file "${dir}/named.pid";
  session-keyfile "${dir}/session.key";
  managed-keys-directory "${dir}";
  listen-on port ${port} { 127.0.0.1; };
  listen-on-v6 { none; };
  recursion no;
  dnssec-validation no;
  notify no;
  allow-query { 127.0.0.1; };
};
controls { };
zone "${zone}" {
  type primary;
  file "${dir}/${zone}.zone";
  allow-update { key "${keyName}"; };
  allow-transfer { key "${keyName}"; };
};
`,
  );
  writeFileSync(
    join(dir, `${zone}.zone`),
    `$TTL 60
@   IN SOA ns.${zone}. hostmaster.${zone}. ( 1 60 60 600 60 )
    IN NS  ns.${zone}.
ns  IN A   127.0.0.1
`,
  );
  const check = await run(which('named-checkconf') ?? 'named-checkconf', ['-z', join(dir, 'named.conf')]);
  if (check.code !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`named-checkconf: ${check.stdout}${check.stderr}`);
  }

  // -g: foreground, log to stderr; -4: IPv4 only; -n 1: one worker (the machine is shared).
  const child: ChildProcess = spawn(which('named') ?? 'named', ['-g', '-4', '-n', '1', '-c', join(dir, 'named.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  child.stderr!.on('data', (c: Buffer) => (log += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('error', (err) => (log += `spawn error: ${err.message}\n`));
  let stopped: Promise<void> | undefined;
  const stop = () =>
    (stopped ??= (async () => {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    })());

  const query = async (name: string, type = 'A'): Promise<string[]> => {
    const r = await run(which('dig') ?? 'dig', ['@127.0.0.1', '-p', String(port), name, type, '+short', '+time=1', '+tries=1'], { timeoutMs: 5000 });
    if (r.code !== 0) throw new Error(`dig ${name} ${type} on port ${port} failed (${r.code}): ${r.stdout}${r.stderr}`);
    return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
  };

  // Ready when named says so and answers for the zone's SOA.
  const deadline = Date.now() + 20_000;
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`named exited (${child.exitCode ?? child.signalCode}):\n${log}`);
      if (log.includes('running') && (await query(zone, 'SOA').catch(() => [])).length > 0) break;
      if (Date.now() > deadline) throw new Error(`named did not answer for ${zone} on 127.0.0.1:${port} within 20 s:\n${log}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { host: '127.0.0.1', port, zone, tsig: { name: keyName, algorithm: 'hmac-sha256', secret }, dir, log: () => log, query, stop };
}
