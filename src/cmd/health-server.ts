// Plain-HTTP /healthz, /readyz and /metrics for the processes without the webhook's HTTPS app
// (`admitlb controller`, `admitlb speaker`), and the run-until-signal wrapper all commands share.
import closeWithGrace from 'close-with-grace';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Registry } from 'prom-client';
import { applyLimits, fastifyLimitOptions, HEALTH_LIMITS, type ListenerLimits } from '../webhook/limits.ts';

export interface Readiness {
  ok: boolean;
  reasons: string[];
  [detail: string]: unknown;
}

export async function startHealthServer(opts: { host: string; port: number; registry: Registry; readiness: () => Readiness; limits?: Partial<ListenerLimits> }): Promise<{ app: FastifyInstance; url: string }> {
  const limits: ListenerLimits = { ...HEALTH_LIMITS, ...opts.limits };
  const app = Fastify({ logger: false, ...fastifyLimitOptions(limits) });
  applyLimits(app.server, limits);
  app.get('/healthz', async () => ({ ok: true }));
  app.get('/readyz', async (_req, reply) => {
    const r = opts.readiness();
    return reply.code(r.ok ? 200 : 503).send(r);
  });
  app.get('/metrics', async (_req, reply) => reply.type(opts.registry.contentType).send(await opts.registry.metrics()));
  const url = await app.listen({ host: opts.host, port: opts.port });
  return { app, url };
}

/** Runs until SIGINT/SIGTERM, then closes (10 s at most) and exits. */
export function closeOnSignal(running: { close(): Promise<unknown> }): void {
  closeWithGrace({ delay: 10_000 }, async ({ err }) => {
    if (err) console.error(err);
    await running.close();
  });
}
