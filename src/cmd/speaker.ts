// `admitlb speaker`: one per node (DaemonSet, hostNetwork). Caches, the node Lease, the reconcile
// loop (speaker.ts), and /healthz, /readyz (caches synced) and /metrics on plain HTTP.
import { closeOnSignal, startHealthServer } from './health-server.ts';
import type pino from 'pino';
import { rootLogger } from '../log.ts';
import { Counter, collectDefaultMetrics, Registry } from 'prom-client';
import { z } from 'zod';
import { ConfigError, describeConfigError } from '../config/webhook-config.ts';
import { loadKubeConfig } from '../kube/client.ts';
import { NodeLease, SpeakerCache, SpeakerEvents, SpeakerSecrets } from '../kube/speaker-cache.ts';
import { loadKeySet } from '../signing/assignment.ts';
import { L2Announcer } from '../speaker/announcer.ts';
import { HeartbeatThread } from '../speaker/heartbeat-worker.ts';
import { execRunner } from '../speaker/ip.ts';
import { NeighborRequestCapture } from '../speaker/neighbor-capture.ts';
import { Speaker, countingRunner, createSpeakerMetrics } from '../speaker/speaker.ts';
import { AnnouncementWriter, KubeNodeAnnouncements } from '../speaker/announcements.ts';

export const speakerConfigSchema = z.object({
  nodeName: z.string().min(1, 'required (or the NODE_NAME environment variable)'),
  signingKeysDir: z.string().min(1),
  kubeconfig: z.string().optional(),
  namespace: z.string().min(1).default('admitlb-system'),
  host: z.string().default('0.0.0.0'),
  port: z.number().int().min(0).max(65535).default(7472),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
  // Defaults depend on the mode (parseSpeakerConfig). With heartbeats the Lease is membership only:
  // 40 s renewed every 10 s, the kubelet's own rate (0.1 writes/s per node). Without them the Lease
  // is the liveness: 1.5 s renewed every 375 ms (a dead node's addresses move in about 1.4 s).
  leaseDurationSeconds: z.number().min(0.5).max(3600).optional(),
  leaseRenewMs: z.number().int().min(50).optional(),
  /** directory with `key` (and `previous` during a rotation): enables heartbeats (README "Heartbeats") */
  heartbeatKeysDir: z.string().min(1).optional(),
  /** address the heartbeat socket binds: the node's address on the announcing segment, or 0.0.0.0 / :: */
  heartbeatAddress: z.string().min(1).default('0.0.0.0'),
  heartbeatPort: z.number().int().min(1).max(65535).default(7473),
  heartbeatIntervalMs: z.number().int().min(10).max(10_000).default(100),
  /** a peer is dead after this many intervals without a valid heartbeat */
  heartbeatMissed: z.number().int().min(2).max(100).default(3),
  /** runs every ip/arping/na6 command through this prefix (tests: `ip netns exec NS`) */
  commandPrefix: z.array(z.string()).default([]),
  /** gratuitous ARP / NA refresh period and address lifetime */
  refreshSeconds: z.number().min(1).default(20),
  lifetimeSeconds: z.number().int().min(0).default(90),
});
export type SpeakerConfig = Omit<z.infer<typeof speakerConfigSchema>, 'leaseDurationSeconds' | 'leaseRenewMs'> & { leaseDurationSeconds: number; leaseRenewMs: number };

export function parseSpeakerConfig(input: unknown): SpeakerConfig {
  const parsed = speakerConfigSchema.safeParse(input);
  if (!parsed.success) throw new ConfigError(`invalid configuration:\n${describeConfigError(parsed.error)}`);
  const hb = parsed.data.heartbeatKeysDir !== undefined;
  const c = { ...parsed.data, leaseDurationSeconds: parsed.data.leaseDurationSeconds ?? (hb ? 40 : 1.5), leaseRenewMs: parsed.data.leaseRenewMs ?? (hb ? 10_000 : 375) };
  // Under half: a speaker that no longer sees its own renewals freezes its view after half the duration (speaker.ts liveNodes).
  if (c.leaseRenewMs * 2 >= c.leaseDurationSeconds * 1000) throw new ConfigError(`invalid configuration:\n  leaseRenewMs: must be shorter than half the lease duration (${c.leaseDurationSeconds} s)`);
  return c;
}

export interface RunningSpeaker {
  url: string;
  speaker: Speaker;
  close(opts?: { withdraw?: boolean }): Promise<void>;
}

export async function startSpeakerProcess(config: SpeakerConfig, opts: { logger?: pino.Logger } = {}): Promise<RunningSpeaker> {
  const logger = opts.logger ?? rootLogger(config.logLevel).child({ component: 'speaker', node: config.nodeName });
  const keys = await loadKeySet(config.signingKeysDir);
  const kc = loadKubeConfig(config.kubeconfig);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const metrics = createSpeakerMetrics(registry);
  const runner = countingRunner(execRunner(config.commandPrefix), (family) => metrics.gratuitous.inc({ family }));
  const announcer = new L2Announcer({ runner, refreshIntervalMs: config.refreshSeconds * 1000, lifetimeSeconds: config.lifetimeSeconds });
  announcer.on('warning', (w: { message: string }) => logger.warn({}, w.message));
  announcer.on('sendError', (e: { address: string; dev: string; error: Error }) => logger.warn({ address: e.address, dev: e.dev, err: e.error.message }, 'gratuitous ARP / unsolicited NA failed'));
  const cache = new SpeakerCache(kc, logger, { namespace: config.namespace });
  const lease = new NodeLease({ kc, namespace: config.namespace, nodeName: config.nodeName, leaseDurationSeconds: config.leaseDurationSeconds, renewIntervalMs: config.leaseRenewMs, log: logger });
  // The kernel answers ARP/NS for our addresses; tcpdump lets us count what it answered (optional).
  const neighborCapture = new NeighborRequestCapture({ prefix: config.commandPrefix, logger, onAnswered: (family) => metrics.neighborRequests.inc({ family }) });
  const heartbeatCounter = new Counter({ name: 'admitlb_speaker_heartbeats_received_total', help: 'Heartbeat packets received, by outcome (joined, accepted, left, replay, not-member, self, malformed, version, bad-mac).', labelNames: ['outcome'], registers: [registry] });
  let speakerRef: Speaker | undefined;
  const heartbeats = config.heartbeatKeysDir
    ? new HeartbeatThread({
        nodeName: config.nodeName,
        address: config.heartbeatAddress,
        port: config.heartbeatPort,
        intervalMs: config.heartbeatIntervalMs,
        missed: config.heartbeatMissed,
        keysDir: config.heartbeatKeysDir,
        logger,
        onChange: () => speakerRef?.heartbeatChanged(),
        onPacket: (outcome, count) => heartbeatCounter.inc({ outcome }, count),
      })
    : undefined;
  if (!heartbeats) logger.warn({}, `no --heartbeat-keys-dir: liveness comes from node Leases renewed every ${config.leaseRenewMs} ms (API writes in the failover loop)`);
  // This node's NodeAnnouncement (what it announces, its BGP sessions), written only on change.
  const announcementWrites = new Counter({ name: 'admitlb_speaker_announcement_writes_total', help: "Writes of this node's NodeAnnouncement status, by result (written, failed): they follow changes of what the node announces, not time.", labelNames: ['result'], registers: [registry] });
  for (const result of ['written', 'failed']) announcementWrites.inc({ result }, 0);
  const announcements = new AnnouncementWriter({
    nodeName: config.nodeName,
    api: new KubeNodeAnnouncements(kc),
    nodeUid: () => cache.nodes().find((n) => n.metadata.name === config.nodeName)?.metadata.uid,
    logger,
    onWrite: (result) => announcementWrites.inc({ result }),
  });
  const speaker = new Speaker({ nodeName: config.nodeName, cache, keys, announcer, runner, lease, ...(heartbeats ? { heartbeats } : {}), events: new SpeakerEvents(kc, config.nodeName), secrets: new SpeakerSecrets(kc), metrics, logger, neighborCapture, announcements });

  speakerRef = speaker;
  // Bind before anything else runs: a bad key or a busy port is a clear error at start.
  await heartbeats?.start();

  const { app, url } = await startHealthServer({
    host: config.host,
    port: config.port,
    registry,
    readiness: () => {
      const synced = cache.synced();
      return { ok: synced, lease: lease.healthy(), reasons: synced ? [] : cache.unsynced().map((n) => `informer ${n} not synced`) };
    },
  });

  // The Lease first: other speakers count this node as live as soon as it renews, and this node
  // only acts once every cache has listed (the loop waits for synced()).
  lease.start();
  await cache.start();
  await speaker.start();
  logger.info({ address: url, namespace: config.namespace }, 'admitlb speaker running');
  let closed: Promise<void> | undefined;
  return {
    url,
    speaker,
    close: (o = {}) =>
      (closed ??= (async () => {
        // Tell the peers (one "leaving" heartbeat) and release the Lease first so that the next
        // owner takes over at once, then withdraw.
        await heartbeats?.stop({ leaving: o.withdraw !== false });
        await lease.stop({ release: o.withdraw !== false });
        await speaker.stop(o);
        // Withdrawn: the node announces nothing, so its report goes (kept when the data plane is kept).
        await announcements.close({ remove: o.withdraw !== false });
        await app.close();
        await cache.stop();
      })()),
  };
}

export async function runSpeakerCommand(config: SpeakerConfig): Promise<void> {
  closeOnSignal(await startSpeakerProcess(config));
}
