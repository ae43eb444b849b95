// Speaker heartbeats over UDP: the thin I/O leaf around heartbeat.ts. One socket bound to
// --heartbeat-address (the node's address on the announcing segment, or 0.0.0.0) and
// --heartbeat-port; every interval one packet (one HMAC) is sent by unicast to every member's
// address, and every packet received is authenticated, checked against replay and fed to the
// PeerLiveness state machine with the local monotonic time.
//
// Keys: a directory with `key` (the current key) and optionally `previous` (the key before a
// rotation), each base64 of at least 32 random bytes: the Secret admitlb-speaker-heartbeat mounted
// into the speaker DaemonSet (`admitlb certs` writes it; only the kubelet reads it, so no RBAC on
// Secrets is needed). Packets are signed with `key` and accepted under `key` or `previous`; the
// files are re-read every few seconds, so a rotation reaches running speakers as the kubelet updates
// the volume (about a minute): rotate by moving key to previous, then later drop previous.
import type { Logger } from '../log.ts';
import dgram from 'node:dgram';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PeerLiveness, decodeHeartbeat, encodeHeartbeat, type ReceiveResult } from './heartbeat.ts';

export const HEARTBEAT_KEY_FILE = 'key';
export const HEARTBEAT_PREVIOUS_KEY_FILE = 'previous';

function parseKey(text: string, file: string): Buffer {
  const t = text.trim();
  const raw = /^[A-Za-z0-9+/=_-]+$/.test(t) ? Buffer.from(t, 'base64') : Buffer.alloc(0);
  if (raw.length < 32) throw new Error(`${file}: a heartbeat key must be base64 of at least 32 bytes`);
  return raw;
}

/** [current, previous?] from the key directory; throws with the file's name when unusable. */
export async function loadHeartbeatKeys(dir: string): Promise<Buffer[]> {
  const cur = join(dir, HEARTBEAT_KEY_FILE);
  let text: string;
  try {
    text = await readFile(cur, 'utf8');
  } catch (err) {
    throw new Error(`${cur}: cannot read the heartbeat key: ${(err as Error).message}`);
  }
  const keys = [parseKey(text, cur)];
  const prev = join(dir, HEARTBEAT_PREVIOUS_KEY_FILE);
  const prevText = await readFile(prev, 'utf8').catch(() => '');
  if (prevText.trim()) keys.push(parseKey(prevText, prev));
  return keys;
}

export type PacketOutcome = ReceiveResult | 'malformed' | 'version' | 'bad-mac';


export interface HeartbeatTransportOptions {
  nodeName: string;
  /** address to bind (IPv4 or IPv6; 0.0.0.0 / :: for any) */
  address: string;
  port: number;
  intervalMs: number;
  missed: number;
  keysDir: string;
  logger: Pick<Logger, 'info' | 'warn'>;
  /** local monotonic clock (default performance.now) */
  now?: () => number;
  keyReloadMs?: number;
  /** a peer joined or left the heard set (not every packet: deaths by silence are found by nextDeath) */
  onChange?: () => void;
  onPacket?: (outcome: PacketOutcome) => void;
}

export class HeartbeatTransport {
  readonly liveness: PeerLiveness;
  readonly family: 4 | 6;
  private socket: dgram.Socket | undefined;
  private keys: Buffer[] = [];
  private keyText = '';
  private targets: string[] = [];
  private member = false;
  private seq = 0n;
  // Wall-clock ms at start: only ever compared with this node's own earlier incarnations.
  private readonly incarnation = BigInt(Date.now());
  private sendTimer: NodeJS.Timeout | undefined;
  private keyTimer: NodeJS.Timeout | undefined;
  private readonly now: () => number;
  /** The last send error per target (absent: the last send succeeded). */
  private readonly lastSendError = new Map<string, string>();
  sent = 0;

  constructor(private readonly opts: HeartbeatTransportOptions) {
    this.now = opts.now ?? (() => performance.now());
    this.liveness = new PeerLiveness({ self: opts.nodeName, intervalMs: opts.intervalMs, missed: opts.missed });
    this.family = opts.address.includes(':') ? 6 : 4;
  }

  async start(): Promise<void> {
    this.keys = await loadHeartbeatKeys(this.opts.keysDir);
    this.keyText = this.keys.map((k) => k.toString('base64')).join(',');
    const socket = dgram.createSocket({ type: this.family === 6 ? 'udp6' : 'udp4' });
    socket.on('message', (msg) => this.onMessage(msg));
    socket.on('error', (err) => this.opts.logger.warn({ err: err.message }, 'heartbeat socket error'));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind({ address: this.opts.address, port: this.opts.port, exclusive: true }, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    this.socket = socket;
    this.sendTimer = setInterval(() => this.send(false), this.opts.intervalMs);
    this.keyTimer = setInterval(() => void this.reloadKeys(), this.opts.keyReloadMs ?? 5000);
    this.keyTimer.unref();
    this.send(false);
  }

  /**
   * The membership (nodes with a node Lease; the runtime keeps the last one while the API is
   * unreachable) and where to send: each member's address of this socket's family.
   */
  setPeers(members: Iterable<string>, addresses: Iterable<string>): void {
    const m = new Set(members);
    this.liveness.setMembers(m);
    // A node that is no member (its Lease lapsed: the others no longer count it) stays silent.
    this.member = m.has(this.opts.nodeName);
    this.targets = [...new Set(addresses)].filter((a) => a.includes(':') === (this.family === 6)).sort();
  }

  heard(): Set<string> {
    return this.liveness.heard(this.now());
  }

  nextDeath(): number | undefined {
    return this.liveness.nextDeath(this.now());
  }

  private onMessage(msg: Buffer): void {
    const d = decodeHeartbeat(msg, this.keys);
    if (!d.ok) {
      this.opts.onPacket?.(d.reason);
      return;
    }
    const r = this.liveness.receive(d.heartbeat, this.now());
    this.opts.onPacket?.(r);
    if (r === 'joined' || r === 'left') this.opts.onChange?.();
  }

  private send(leaving: boolean): void {
    const socket = this.socket;
    if (!socket || !this.member || this.targets.length === 0 || this.keys.length === 0) return;
    this.seq++;
    const packet = encodeHeartbeat({ node: this.opts.nodeName, incarnation: this.incarnation, seq: this.seq, leaving }, this.keys[0]!);
    for (const t of this.targets) {
      socket.send(packet, this.opts.port, t, (err) => {
        // A link that is down makes every send fail: log the change per target, not every packet
        // (one shared "last error" alternated between the targets' messages and logged them all).
        const text = err ? err.message : '';
        if (text !== (this.lastSendError.get(t) ?? '') && text) this.opts.logger.warn({ target: t, err: text }, 'sending heartbeats failed');
        if (text) this.lastSendError.set(t, text);
        else this.lastSendError.delete(t);
      });
      this.sent++;
    }
  }

  private async reloadKeys(): Promise<void> {
    try {
      const keys = await loadHeartbeatKeys(this.opts.keysDir);
      const text = keys.map((k) => k.toString('base64')).join(',');
      if (text === this.keyText) return;
      this.keys = keys;
      this.keyText = text;
      this.opts.logger.info({ keys: keys.length }, 'heartbeat key reloaded');
    } catch (err) {
      // Keep the keys we have: a half-updated volume must not silence this node.
      this.opts.logger.warn({ err: (err as Error).message }, 'reloading the heartbeat key failed; keeping the current one');
    }
  }

  /** Stops; `leaving` first tells the peers (one packet) so they count this node dead at once. */
  async stop(opts: { leaving?: boolean } = {}): Promise<void> {
    clearInterval(this.sendTimer);
    clearInterval(this.keyTimer);
    if (opts.leaving) this.send(true);
    const socket = this.socket;
    this.socket = undefined;
    if (socket) await new Promise<void>((resolve) => setTimeout(() => socket.close(() => resolve()), opts.leaving ? 5 : 0));
  }
}
