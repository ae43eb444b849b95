// A scripted BGP peer for unit tests: raw TCP plus the library's codec, so a test can send exactly
// the bytes it wants and assert on every message the speaker sends back.
import net from 'node:net';
import { FrameReader, decodeMessage, encodeKeepalive, encodeOpen, type BgpMessage } from '../../src/bgp/messages.ts';
import type { Capability } from '../../src/bgp/capabilities.ts';

export type Received = BgpMessage | { type: 'closed' } | { type: 'bad-frame'; code: number; subcode: number };

export const fullCapabilities = (asn: number): Capability[] => [
  { code: 1, afi: 1, safi: 1 },
  { code: 1, afi: 2, safi: 1 },
  { code: 2 },
  { code: 65, asn },
];

export interface RawListener {
  port: number;
  accepted: Promise<RawPeer>;
  server: net.Server;
  nextConnection(): Promise<RawPeer>;
  close(): Promise<void>;
}

export class RawPeer {
  private readonly reader = new FrameReader();
  private readonly queue: Received[] = [];
  private waiters: Array<() => void> = [];
  closed = false;

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.reader.push(chunk);
      for (let i = 0; i < 100_000; i++) {
        const f = this.reader.next();
        if (f === null) break;
        if (!Buffer.isBuffer(f)) {
          this.push({ type: 'bad-frame', code: f.code, subcode: f.subcode });
          break;
        }
        const r = decodeMessage(f, { as4: true });
        this.push(r.ok ? r.message : { type: 'bad-frame', code: r.error.code, subcode: r.error.subcode });
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      this.closed = true;
      this.push({ type: 'closed' });
    });
  }

  private push(m: Received): void {
    this.queue.push(m);
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  static wrap(socket: net.Socket): RawPeer {
    return new RawPeer(socket);
  }

  /**
   * Listens on host:0. Every accepted connection becomes a RawPeer (so none is left unread);
   * `accepted` is the first, `nextConnection()` waits for a later one, `close()` ends them all.
   */
  static async listen(host: string): Promise<RawListener> {
    const server = net.createServer();
    const peers: RawPeer[] = [];
    let waiting: Array<(p: RawPeer) => void> = [];
    let taken = 0;
    server.on('connection', (sock) => {
      const peer = new RawPeer(sock);
      peers.push(peer);
      const w = waiting;
      waiting = [];
      w.forEach((f) => f(peer));
    });
    const nextConnection = (): Promise<RawPeer> => {
      const index = taken++;
      if (peers[index]) return Promise.resolve(peers[index]);
      return new Promise((resolve) => {
        const check = () => (peers[index] ? resolve(peers[index]) : waiting.push(check));
        waiting.push(check);
      });
    };
    await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
    const accepted = nextConnection();
    return {
      port: (server.address() as net.AddressInfo).port,
      accepted,
      server,
      nextConnection,
      close: () => {
        peers.forEach((p) => p.close());
        return new Promise<void>((resolve) => server.close(() => resolve()));
      },
    };
  }

  static connect(host: string, port: number, localAddress: string): Promise<RawPeer> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ host, port, localAddress }, () => resolve(new RawPeer(s)));
      s.once('error', reject);
    });
  }

  send(buf: Buffer): void {
    if (!this.socket.destroyed) this.socket.write(buf);
  }

  sendOpen(asn: number, routerId: string, holdTime = 90, capabilities: Capability[] = fullCapabilities(asn)): void {
    this.send(encodeOpen({ asn, holdTime, routerId, capabilities }));
  }

  sendKeepalive(): void {
    this.send(encodeKeepalive());
  }

  /** Next received message (including 'closed'); rejects after timeoutMs. */
  async next(timeoutMs = 5000): Promise<Received> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no message within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.queue.shift()!;
  }

  /** Skips KEEPALIVEs and returns the next other message. */
  async nextNonKeepalive(timeoutMs = 5000): Promise<Received> {
    for (let i = 0; i < 1000; i++) {
      const m = await this.next(timeoutMs);
      if (m.type !== 'keepalive') return m;
    }
    throw new Error('only keepalives');
  }

  /** Resolves with whatever arrives within ms (for "nothing is sent" checks). */
  async drain(ms: number): Promise<Received[]> {
    await new Promise((r) => setTimeout(r, ms));
    return this.queue.splice(0);
  }

  close(): void {
    this.socket.destroy();
  }
}
