// Test-side handle on a speaker agent running inside a lab namespace.
import { EventEmitter } from 'node:events';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { PeerOptions, PeerStatus, SessionState, SpeakerOptions } from '../../../src/bgp/index.ts';
import type { RouteAttributes } from '../../../src/bgp/adj-rib-out.ts';
import type { CloseOptions } from '../../../src/bgp/speaker.ts';
import type { LabNode } from './topo.ts';
import { sleep } from './sys.ts';

const AGENT = fileURLToPath(new URL('./speaker-agent.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../../', import.meta.url));

export interface AgentEvent {
  event: string;
  peer?: string;
  from?: SessionState;
  to?: SessionState;
  direction?: 'sent' | 'received';
  code?: number;
  subcode?: number;
  message?: string;
  [key: string]: unknown;
}

export class SpeakerAgent extends EventEmitter {
  readonly events: AgentEvent[] = [];
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  exited = false;

  private constructor(
    readonly node: LabNode,
    private readonly child: ChildProcess,
  ) {
    super();
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if (typeof msg.id === 'number') {
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (msg.ok) p?.resolve(msg.result);
        else p?.reject(new Error(String(msg.error)));
      } else if (typeof msg.event === 'string') {
        this.events.push(msg as AgentEvent);
        this.emit('event', msg);
      }
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    child.on('exit', (code, signal) => {
      this.exited = true;
      for (const p of this.pending.values()) p.reject(new Error(`speaker agent exited (${code ?? signal}): ${stderr.trim()}`));
      this.pending.clear();
      this.emit('exit');
    });
  }

  /** Spawns the agent in the node's namespace (dies with the test process via pdeathsig). */
  static async spawn(node: LabNode, extraNodeArgs: string[] = []): Promise<SpeakerAgent> {
    const child = spawn('ip', ['netns', 'exec', node.ns, 'setpriv', '--pdeathsig', 'KILL', '--', process.execPath, ...extraNodeArgs, '--import', 'tsx', AGENT], {
      cwd: REPO,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, NODE_OPTIONS: '' },
    });
    const agent = new SpeakerAgent(node, child);
    await agent.waitForEvent('agent ready', (e) => e.event === 'ready', 15_000);
    return agent;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  call<T = unknown>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    if (this.exited) return Promise.reject(new Error('speaker agent has exited'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.child.stdin!.write(`${JSON.stringify({ id, op, args })}\n`);
    });
  }

  start(options: SpeakerOptions): Promise<{ listenPort: number | null }> {
    return this.call('start', options as unknown as Record<string, unknown>);
  }

  /** The session the product opens for a BGPPeer spec (defaultBgpFactory). */
  startFromSpec(spec: Record<string, unknown>, routerId: string): Promise<{ listenPort: number | null }> {
    return this.call('startFromSpec', { spec, routerId });
  }

  addPeer(options: PeerOptions): Promise<boolean> {
    return this.call('addPeer', options as unknown as Record<string, unknown>);
  }

  removePeer(address: string): Promise<boolean> {
    return this.call('removePeer', { address });
  }

  announce(routes: Array<[string, RouteAttributes?]>): Promise<number> {
    return this.call('announce', { routes });
  }

  withdraw(prefixes: string[]): Promise<boolean[]> {
    return this.call('withdraw', { prefixes });
  }

  async peerStatus(address: string): Promise<PeerStatus | undefined> {
    const all = await this.call<PeerStatus[]>('status');
    return all.find((s) => s.address === address);
  }

  close(options: CloseOptions = {}): Promise<boolean> {
    return this.call('close', options as Record<string, unknown>);
  }

  /** Resolves with the first event (already seen or future) matching pred. */
  waitForEvent(what: string, pred: (e: AgentEvent) => boolean, timeoutMs = 15_000, sinceIndex = 0): Promise<AgentEvent> {
    const seen = this.events.slice(sinceIndex).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const onEvent = (e: AgentEvent) => {
        if (!pred(e)) return;
        cleanup();
        resolve(e);
      };
      const onExit = () => {
        cleanup();
        reject(new Error(`speaker agent exited while waiting for ${what}`));
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; events: ${JSON.stringify(this.events.slice(-8))}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.off('event', onEvent);
        this.off('exit', onExit);
      };
      this.on('event', onEvent);
      this.on('exit', onExit);
    });
  }

  /** Waits for the peer to reach `state` (counting only events after `sinceIndex`). */
  waitForState(peer: string, state: SessionState, timeoutMs = 15_000, sinceIndex = 0): Promise<AgentEvent> {
    return this.waitForEvent(`${peer} ${state}`, (e) => e.event === 'state' && e.peer === peer && e.to === state, timeoutMs, sinceIndex);
  }

  /** SIGKILLs the agent (a crash, as far as peers can tell: no NOTIFICATION). */
  async kill(): Promise<void> {
    if (this.exited) return;
    this.child.kill('SIGKILL');
    for (let i = 0; i < 200 && !this.exited; i++) await sleep(10);
  }

  /** Closes stdin (the agent exits) and waits; SIGKILL after 3 s. */
  async stop(): Promise<void> {
    if (this.exited) return;
    this.child.stdin!.end();
    for (let i = 0; i < 300 && !this.exited; i++) await sleep(10);
    await this.kill();
  }
}
