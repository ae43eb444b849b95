// Heartbeats on their own thread. The speaker's main thread verifies signatures, plans and runs
// commands; a pass over 1,000 Services on a busy node can hold its event loop for longer than the
// dead interval (300 ms), and heartbeats sent or timestamped from that loop would then make the
// node look dead to its peers (and its peers dead to it): a false failover. Here the socket, the
// send timer and the PeerLiveness state machine run in a worker_thread; the main thread gets the
// heard set pushed to it whenever it changes and sends the membership on every pass.
//
// Messages, main → worker: { type: 'peers', members, addresses } | { type: 'stop', leaving }
//           worker → main: { type: 'started' } | { type: 'error', message } | { type: 'heard', nodes }
//                          | { type: 'log', level, obj, msg } | { type: 'packets', counts } | { type: 'stopped' }
import type { Logger } from '../log.ts';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { HeartbeatTransport, type HeartbeatTransportOptions, type PacketOutcome } from './heartbeat-transport.ts';

/** The transport's own settings (the clock and reload period stay the worker's defaults), plus the thread's callbacks. */
export interface HeartbeatThreadOptions extends Pick<HeartbeatTransportOptions, 'nodeName' | 'address' | 'port' | 'intervalMs' | 'missed' | 'keysDir' | 'logger'> {
  /** the heard set changed (pushed by the worker) */
  onChange?: () => void;
  onPacket?: (outcome: PacketOutcome, count: number) => void;
}

type WorkerConfig = Omit<HeartbeatThreadOptions, 'logger' | 'onChange' | 'onPacket'>;

/** The main thread's side: the same surface as HeartbeatTransport for the Speaker. */
export class HeartbeatThread {
  private worker: Worker | undefined;
  private heardNodes: Set<string>;
  private lastPeers = '';
  private stopped: Promise<void> | undefined;

  constructor(private readonly opts: HeartbeatThreadOptions) {
    this.heardNodes = new Set([opts.nodeName]);
  }

  async start(): Promise<void> {
    const config: WorkerConfig = { nodeName: this.opts.nodeName, address: this.opts.address, port: this.opts.port, intervalMs: this.opts.intervalMs, missed: this.opts.missed, keysDir: this.opts.keysDir };
    const worker = workerFor(new URL(import.meta.url), config);
    this.worker = worker;
    await new Promise<void>((resolve, reject) => {
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'started') resolve();
        else if (m.type === 'error') reject(new Error(m.message));
        else this.onMessage(m);
      });
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`heartbeat worker exited (${code})`)));
    });
    worker.on('error', (err) => this.opts.logger.warn({ err: err.message }, 'heartbeat worker failed'));
  }

  private onMessage(m: WorkerMessage): void {
    if (m.type === 'heard') {
      this.heardNodes = new Set(m.nodes);
      this.opts.onChange?.();
    } else if (m.type === 'log') {
      this.opts.logger[m.level](m.obj, m.msg);
    } else if (m.type === 'packets') {
      for (const [o, n] of Object.entries(m.counts)) this.opts.onPacket?.(o as PacketOutcome, n);
    }
  }

  setPeers(members: Iterable<string>, addresses: Iterable<string>): void {
    const msg = { type: 'peers' as const, members: [...members].sort(), addresses: [...addresses].sort() };
    const key = JSON.stringify(msg);
    if (key === this.lastPeers) return;
    this.lastPeers = key;
    this.worker?.postMessage(msg);
  }

  heard(): Set<string> {
    return new Set(this.heardNodes);
  }

  /** Deaths are found on the worker's clock and pushed; the main thread needs no timer. */
  nextDeath(): number | undefined {
    return undefined;
  }

  stop(opts: { leaving?: boolean } = {}): Promise<void> {
    const worker = this.worker;
    if (!worker) return Promise.resolve();
    return (this.stopped ??= new Promise<void>((resolve) => {
      const done = () => void worker.terminate().then(() => resolve(), () => resolve());
      const timer = setTimeout(done, 1000);
      worker.on('message', (m: WorkerMessage) => {
        if (m.type === 'stopped') {
          clearTimeout(timer);
          done();
        }
      });
      worker.postMessage({ type: 'stop', leaving: !!opts.leaving });
    }));
  }
}

/** TypeScript's loader in a development checkout; built code (dist/) never loads it. */
const TSX_API = 'tsx/esm/api';

/**
 * The thread that runs this module. Built (dist/…/heartbeat-worker.js), Node loads it as it is. As
 * a TypeScript source the worker must register tsx first: the CLI registers it in the main thread only.
 */
function workerFor(self: URL, config: WorkerConfig): Worker {
  if (!self.pathname.endsWith('.ts')) return new Worker(self, { workerData: config });
  const boot = `import(${JSON.stringify(TSX_API)}).then((m) => { m.register(); return import(${JSON.stringify(self.href)}); }).catch((e) => { require('node:worker_threads').parentPort.postMessage({ type: 'error', message: String(e && e.stack || e) }); });`;
  return new Worker(boot, { eval: true, workerData: config });
}

type WorkerMessage =
  | { type: 'started' }
  | { type: 'error'; message: string }
  | { type: 'heard'; nodes: string[] }
  | { type: 'log'; level: 'info' | 'warn'; obj: object; msg: string }
  | { type: 'packets'; counts: Record<string, number> }
  | { type: 'stopped' };

// ---- the worker's side -------------------------------------------------------------------------

async function runWorker(): Promise<void> {
  const port = parentPort!;
  const config = workerData as WorkerConfig;
  const post = (m: WorkerMessage) => port.postMessage(m);
  const logger: Pick<Logger, 'info' | 'warn'> = {
    info: (obj, msg) => post({ type: 'log', level: 'info', obj, msg: msg ?? '' }),
    warn: (obj, msg) => post({ type: 'log', level: 'warn', obj, msg: msg ?? '' }),
  };
  let counts: Record<string, number> = {};
  let lastHeard = '';
  let deathTimer: NodeJS.Timeout | undefined;
  // Pushes the heard set when it changed, and re-arms a timer for the next death by silence.
  const check = () => {
    const heard = [...transport.heard()].sort();
    const key = heard.join(',');
    if (key !== lastHeard) {
      lastHeard = key;
      post({ type: 'heard', nodes: heard });
    }
    clearTimeout(deathTimer);
    const next = transport.nextDeath();
    if (next !== undefined) deathTimer = setTimeout(check, Math.max(0, next - performance.now()) + 1);
  };
  const transport = new HeartbeatTransport({ ...config, logger, onChange: check, onPacket: (o) => (counts[o] = (counts[o] ?? 0) + 1) });
  try {
    await transport.start();
  } catch (err) {
    post({ type: 'error', message: (err as Error).message });
    return;
  }
  // Packet counts in batches (a message per packet would cost more than the packet).
  const flush = setInterval(() => {
    if (Object.keys(counts).length === 0) return;
    post({ type: 'packets', counts });
    counts = {};
  }, 1000);
  port.on('message', (m: { type: 'peers'; members: string[]; addresses: string[] } | { type: 'stop'; leaving: boolean }) => {
    if (m.type === 'peers') {
      transport.setPeers(m.members, m.addresses);
      check();
    } else if (m.type === 'stop') {
      clearInterval(flush);
      clearTimeout(deathTimer);
      void transport.stop({ leaving: m.leaving }).then(() => post({ type: 'stopped' }));
    }
  });
  post({ type: 'started' });
  check();
}

if (!isMainThread && parentPort && (workerData as WorkerConfig | undefined)?.keysDir) void runWorker();
