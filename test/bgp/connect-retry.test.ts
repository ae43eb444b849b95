// The ConnectRetry timer of one peer (BGPPeer spec.connectTime) on a fake clock: the session's
// timers are node:test mock timers, the TCP connects are real (to a closed port on 127.0.0.1, so
// each attempt is refused at once). What is checked: the interval between attempts, its jitter
// bounds (RFC 4271 §10: 75–100 %), and that a fixed connectTime does not double like the default.
import { describe, it, mock, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { BgpSpeaker } from '../../src/bgp/index.ts';
import { bgpPeerSpecSchema } from '../../src/config/schemas.ts';
import { defaultBgpFactory } from '../../src/speaker/bgp-factory.ts';

/** A TCP port on 127.0.0.1 that nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Lets real I/O (the refused connect) run; setImmediate is not mocked. */
async function settle(until: () => boolean, rounds = 2000): Promise<void> {
  for (let i = 0; i < rounds && !until(); i++) await new Promise((r) => setImmediate(r));
}

async function session(connectTime: number | undefined) {
  const port = await closedPort();
  const spec = bgpPeerSpecSchema.parse({ peerAddress: '127.0.0.1', peerPort: port, peerASN: 64512, myASN: 64513, ...(connectTime !== undefined ? { connectTime } : {}) });
  const speaker = defaultBgpFactory(spec, { routerId: '192.0.2.1', hooks: {} }) as BgpSpeaker;
  let attempts = 0;
  speaker.on('state', (e) => {
    if (e.to === 'Connect') attempts++;
  });
  await speaker.start();
  const refused = async () => settle(() => speaker.status()[0]?.state === 'Active' && /ECONNREFUSED/.test(speaker.status()[0]?.lastError?.message ?? ''));
  return { speaker, attempts: () => attempts, refused };
}

describe('ConnectRetry timer per peer (connectTime), fake clock', () => {
  afterEach(() => mock.timers.reset());

  it('connectTime 5: every retry comes 3.75–5 s after the refused attempt, without doubling', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const s = await session(5);
    try {
      await settle(() => s.attempts() === 1);
      for (let retry = 1; retry <= 5; retry++) {
        await s.refused();
        const before = s.attempts();
        mock.timers.tick(3749);
        await settle(() => false, 50);
        assert.equal(s.attempts(), before, `retry ${retry}: no attempt before 75 % of 5 s`);
        mock.timers.tick(1251);
        await settle(() => s.attempts() > before);
        assert.equal(s.attempts(), before + 1, `retry ${retry}: one attempt by 5 s`);
      }
    } finally {
      await s.speaker.close();
    }
  });

  it('unset: the default backoff doubles (1 s, 2 s, 4 s, ...), so a 5 s tick no longer suffices by the fourth retry', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const s = await session(undefined);
    try {
      await settle(() => s.attempts() === 1);
      const waits: number[] = [];
      for (let retry = 1; retry <= 4; retry++) {
        await s.refused();
        const before = s.attempts();
        let waited = 0;
        // Advance in 250 ms steps until the retry happens (bounded: 40 s).
        while (s.attempts() === before && waited < 40_000) {
          mock.timers.tick(250);
          waited += 250;
          await settle(() => s.attempts() > before, 20);
        }
        waits.push(waited);
      }
      // Delays 1, 2, 4, 8 s jittered to 75–100 %, observed to the next 250 ms step.
      const bounds = [1000, 2000, 4000, 8000];
      waits.forEach((w, i) => assert.ok(w >= bounds[i]! * 0.75 && w <= bounds[i]! + 250, `wait ${i + 1} was ${w} ms, expected about ${bounds[i]} ms`));
    } finally {
      await s.speaker.close();
    }
  });
});
