// Runs a BgpSpeaker inside a network namespace on behalf of a test process. Protocol: one JSON
// command per stdin line ({id, op, args}); replies ({id, ok, result|error}) and events ({event, ...})
// as JSON lines on stdout. Exits when stdin closes, so it never outlives its test.
import { createInterface } from 'node:readline';
import { BgpSpeaker, type PeerOptions, type SpeakerOptions } from '../../../src/bgp/index.ts';
import type { CloseOptions } from '../../../src/bgp/speaker.ts';
import type { RouteAttributes } from '../../../src/bgp/adj-rib-out.ts';

let speaker: BgpSpeaker | null = null;
const out = (obj: unknown) => process.stdout.write(`${JSON.stringify(obj)}\n`);

/** Host routes 198.18.0.0 + i (benchmark range), as text. */
function benchPrefix(i: number): string {
  const n = (198 << 24) + (18 << 16) + i;
  return `${(n >>> 24) & 255}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/32`;
}

type Handler = (args: Record<string, unknown>) => unknown;
const ops: Record<string, Handler> = {
  /** The speaker the product opens for a BGPPeer spec (defaultBgpFactory), one peer. */
  async startFromSpec(args) {
    // Imported here: only these tests need it.
    const { bgpPeerSpecSchema } = await import('../../../src/config/schemas.ts');
    const { defaultBgpFactory } = await import('../../../src/speaker/bgp-factory.ts');
    speaker = defaultBgpFactory(bgpPeerSpecSchema.parse(args.spec), { routerId: String(args.routerId), hooks: {} }) as BgpSpeaker;
    speaker.on('state', (e) => out({ event: 'state', ...e }));
    speaker.on('established', (e) => out({ event: 'established', ...e }));
    speaker.on('down', (e) => out({ event: 'down', ...e }));
    await speaker.start();
    return { listenPort: speaker.listenPort };
  },
  async start(args) {
    speaker = new BgpSpeaker(args as unknown as SpeakerOptions);
    speaker.on('state', (e) => out({ event: 'state', ...e }));
    speaker.on('established', (e) => out({ event: 'established', ...e }));
    speaker.on('down', (e) => out({ event: 'down', ...e }));
    speaker.on('notification', (e) => out({ event: 'notification', ...e }));
    speaker.on('updateError', (e) => out({ event: 'updateError', ...e }));
    speaker.on('bfd', (e) => out({ event: 'bfd', at: Date.now(), ...e }));
    await speaker.start();
    return { listenPort: speaker.listenPort };
  },
  addPeer(args) {
    need().addPeer(args as unknown as PeerOptions);
    return true;
  },
  removePeer(args) {
    return need().removePeer(String(args.address));
  },
  announce(args) {
    const routes = args.routes as Array<[string, RouteAttributes | undefined]>;
    for (const [prefix, attrs] of routes) need().announce(prefix, attrs ?? {});
    return routes.length;
  },
  withdraw(args) {
    const prefixes = args.prefixes as string[];
    return prefixes.map((p) => need().withdraw(p));
  },
  /** Announces `count` /32s from 198.18.0.0 with shared attributes; reports heap growth per route. */
  announceBench(args) {
    const count = Number(args.count);
    global.gc?.();
    const before = process.memoryUsage();
    const t0 = process.hrtime.bigint();
    const attrs = (args.attributes ?? {}) as RouteAttributes;
    for (let i = 0; i < count; i++) need().announce(benchPrefix(i), attrs);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    global.gc?.();
    const after = process.memoryUsage();
    return { count, announceMs: ms, heapBytesPerRoute: (after.heapUsed - before.heapUsed) / count, rssBytesPerRoute: (after.rss - before.rss) / count };
  },
  status() {
    return need().status();
  },
  setPassword(args) {
    return need().setPassword(String(args.address), args.password === undefined ? undefined : String(args.password));
  },
  memory() {
    return process.memoryUsage();
  },
  async close(args) {
    await need().close(args as CloseOptions);
    return true;
  },
};

function need(): BgpSpeaker {
  if (!speaker) throw new Error('speaker not started');
  return speaker;
}

const rl = createInterface({ input: process.stdin });
rl.on('line', async (line) => {
  let id: unknown = null;
  try {
    const msg = JSON.parse(line) as { id: unknown; op: string; args?: Record<string, unknown> };
    id = msg.id;
    const handler = ops[msg.op];
    if (!handler) throw new Error(`unknown op ${msg.op}`);
    out({ id, ok: true, result: await handler(msg.args ?? {}) });
  } catch (err) {
    out({ id, ok: false, error: `${(err as Error).name}: ${(err as Error).message}` });
  }
});
rl.on('close', () => process.exit(0));
out({ event: 'ready', pid: process.pid });
