// `admitlb webhook`: wires configuration, the Kubernetes adapter, certificates and the app together,
// then listens. Configuration is validated once here; a bad value exits non-zero with a clear error.
import { closeOnSignal } from './health-server.ts';
import type pino from 'pino';
import { componentLogger, rootLogger } from '../log.ts';
import { ConfigError, serverConfigSchema, describeConfigError, type ServerConfig } from '../config/webhook-config.ts';
import { KubeCluster, loadKubeConfig } from '../kube/client.ts';
import { LiveAllocationState } from '../kube/allocation-state.ts';
import type { Cluster } from '../kube/cluster.ts';
import { loadKeySet } from '../signing/assignment.ts';
import { buildWebhookApp } from '../webhook/app.ts';
import { createWebhookMetrics } from '../webhook/metrics.ts';
import { createClientAuthenticator } from '../webhook/client-auth.ts';
import { createTlsReloader } from '../webhook/tls.ts';
import type { ListenerLimits } from '../webhook/limits.ts';
import { startController, type RunningController } from './controller.ts';

export { ConfigError };

export function parseServerConfig(input: unknown): ServerConfig {
  const parsed = serverConfigSchema.safeParse(input);
  if (!parsed.success) throw new ConfigError(`invalid configuration:\n${describeConfigError(parsed.error)}`);
  return parsed.data;
}

export interface RunningWebhook {
  url: string;
  controller: RunningController | undefined;
  close(): Promise<void>;
}

/** Starts the webhook; `cluster` defaults to the API server named by the kubeconfig. */
export async function startWebhook(config: ServerConfig, opts: { cluster?: Cluster; logger?: pino.Logger; limits?: Partial<ListenerLimits> } = {}): Promise<RunningWebhook> {
  // The controller started beside the webhook binds its own component on the same root.
  const root = opts.logger ?? rootLogger(config.logLevel);
  const logger = componentLogger(root, 'webhook');
  const keys = await loadKeySet(config.signingKeysDir);
  const clientAuth = createClientAuthenticator({ clientCaFile: config.clientCaFile, clientTokenFile: config.clientTokenFile });
  if (!clientAuth.required) logger.warn({}, 'admission endpoints accept any caller: pass --client-ca-file or --client-token-file (see README, Security)');
  const tls = createTlsReloader({ certFile: config.tlsCertFile, keyFile: config.tlsKeyFile, ...(config.clientCaFile ? { caFile: config.clientCaFile } : {}), logger });
  // With an injected cluster (tests) the webhook runs alone; against a real API the controller runs
  // beside it, leader-elected, sharing the caches and the allocation state.
  const kc = opts.cluster ? undefined : loadKubeConfig(config.kubeconfig);
  const withController = !!kc && config.controller.enabled;
  const kubeCluster = kc ? new KubeCluster(kc, logger, { watchServices: withController, watchSpeakerConfig: true }) : undefined;
  const cluster = opts.cluster ?? kubeCluster!;
  await cluster.start();
  const state = new LiveAllocationState(cluster.cache, logger);
  const metrics = createWebhookMetrics(state, { defaultMetrics: true });
  const controller = withController
    ? startController({ kc: kc!, cluster: kubeCluster!, state, keys, admission: config.admission, controller: config.controller, logger: root, registry: metrics.registry })
    : undefined;
  const app = buildWebhookApp({
    deps: {
      state,
      store: cluster.claims,
      keys,
      config: config.admission,
      namespaceLabels: (ns) => cluster.cache.namespace(ns)?.metadata.labels,
      namespaceExists: (ns) => cluster.cache.namespace(ns) !== undefined,
      // References in BGPAdvertisements are checked against the cached speaker configuration.
      listBgpPeers: () => kubeCluster?.listBgpPeers() ?? [],
      listBgpAdvertisements: () => kubeCluster?.listBgpAdvertisements() ?? [],
      poolLabels: (name) => cluster.cache.listPools().find((p) => p.metadata.name === name)?.metadata.labels,
    },
    logger,
    metrics,
    // A client certificate is asked for, not demanded in the handshake: probes and scrapers have none.
    https: config.clientCaFile ? { ...tls.secureContextOptions, requestCert: true, rejectUnauthorized: false } : tls.secureContextOptions,
    clientAuth,
    ...(opts.limits ? { limits: opts.limits } : {}),
    readiness: {
      ready() {
        const reasons: string[] = [];
        if (!tls.loaded) reasons.push('serving certificate not loaded');
        if (!cluster.cache.synced()) reasons.push('caches not synced');
        return { ok: reasons.length === 0, reasons };
      },
    },
  });
  const address = await app.listen({ host: config.host, port: config.port });
  tls.attach(app.server as never);
  logger.info({ address, signingKid: keys.signingKid, kids: keys.kids() }, 'admitlb webhook listening');
  return {
    url: address,
    controller,
    async close() {
      await controller?.close();
      await app.close();
      tls.close();
      state.close();
      await cluster.stop();
    },
  };
}

export async function runWebhookCommand(config: ServerConfig): Promise<void> {
  closeOnSignal(await startWebhook(config));
}
