// Wiring of the controller: the client-node writes, leader election on the `admitlb-controller`
// Lease, and the reconcile loop. `admitlb webhook` starts it beside the webhook (sharing caches and
// the allocation state); `admitlb controller` runs it alone.
import type { Logger } from '../log.ts';
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import { closeOnSignal, startHealthServer } from './health-server.ts';
import type pino from 'pino';
import { componentLogger, rootLogger } from '../log.ts';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { ConfigError, controllerCommandConfigSchema, describeConfigError, type AdmissionConfig, type ControllerCommandConfig, type ControllerConfig } from '../config/webhook-config.ts';
import { LiveAllocationState } from '../kube/allocation-state.ts';
import { KubeCluster, loadKubeConfig } from '../kube/client.ts';
import { loadKeySet } from '../signing/assignment.ts';
import { KubeControllerApi } from '../kube/controller-api.ts';
import { LeaderElector } from '../kube/leader-election.ts';
import type { KeySet } from '../signing/assignment.ts';
import { Controller } from '../controller/controller.ts';
import { createControllerMetrics } from '../controller/metrics.ts';

export interface RunningController {
  controller: Controller;
  identity: string;
  isLeader(): boolean;
  close(): Promise<void>;
}

export interface StartControllerOptions {
  kc: KubeConfig;
  cluster: KubeCluster;
  state: LiveAllocationState;
  keys: KeySet;
  admission: AdmissionConfig;
  controller: ControllerConfig;
  logger: Logger & { child?(bindings: Record<string, unknown>): Logger; bindings?(): Record<string, unknown> };
  registry: Registry;
}

export function startController(opts: StartControllerOptions): RunningController {
  const cfg = opts.controller;
  const identity = cfg.identity ?? `${process.env.POD_NAME || process.env.HOSTNAME || hostname()}_${randomBytes(4).toString('hex')}`;
  const logger = componentLogger(opts.logger, 'controller');
  const controller = new Controller({
    cache: opts.cluster,
    api: new KubeControllerApi(opts.kc, opts.cluster, identity),
    state: opts.state,
    keys: opts.keys,
    config: opts.admission,
    logger,
    metrics: createControllerMetrics(opts.registry),
    orphanGraceMs: cfg.orphanGraceSeconds * 1000,
    resyncMs: cfg.resyncSeconds * 1000,
  });
  controller.start();
  const elector = new LeaderElector({
    kc: opts.kc,
    namespace: cfg.leaseNamespace,
    name: cfg.leaseName,
    identity,
    leaseDurationSeconds: cfg.leaseDurationSeconds,
    renewDeadlineSeconds: cfg.renewDeadlineSeconds,
    retryPeriodSeconds: cfg.retryPeriodSeconds,
    logger,
    onStartedLeading: () => {
      logger.info({ identity, lease: `${cfg.leaseNamespace}/${cfg.leaseName}` }, 'elected: controller active');
      controller.setLeading(true);
    },
    onStoppedLeading: () => {
      logger.info({ identity }, 'lost the lease: controller on standby');
      controller.setLeading(false);
    },
  });
  void elector.start();
  return {
    controller,
    identity,
    isLeader: () => controller.isLeading(),
    async close() {
      controller.setLeading(false);
      await controller.stop();
      await elector.stop();
    },
  };
}

export function parseControllerCommandConfig(input: unknown): ControllerCommandConfig {
  const parsed = controllerCommandConfigSchema.safeParse(input);
  if (!parsed.success) throw new ConfigError(`invalid configuration:\n${describeConfigError(parsed.error)}`);
  return parsed.data;
}

export interface RunningControllerProcess {
  url: string;
  controller: RunningController;
  close(): Promise<void>;
}

/** `admitlb controller`: caches, allocation state, the elected controller and a health endpoint. */
export async function startControllerProcess(config: ControllerCommandConfig, opts: { logger?: pino.Logger } = {}): Promise<RunningControllerProcess> {
  const logger = componentLogger(opts.logger ?? rootLogger(config.logLevel), 'controller');
  const keys = await loadKeySet(config.signingKeysDir);
  const kc = loadKubeConfig(config.kubeconfig);
  const cluster = new KubeCluster(kc, logger, { watchServices: true });
  await cluster.start();
  const state = new LiveAllocationState(cluster.cache, logger);
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const running = startController({ kc, cluster, state, keys, admission: config.admission, controller: { ...config.controller, enabled: true }, logger, registry });
  const { app, url } = await startHealthServer({
    host: config.host,
    port: config.port,
    registry,
    readiness: () => {
      const synced = cluster.synced();
      return { ok: synced, leader: running.isLeader(), reasons: synced ? [] : ['caches not synced'] };
    },
  });
  logger.info({ address: url, identity: running.identity }, 'admitlb controller running');
  return {
    url,
    controller: running,
    async close() {
      await running.close();
      await app.close();
      state.close();
      await cluster.stop();
    },
  };
}

export async function runControllerCommand(config: ControllerCommandConfig): Promise<void> {
  closeOnSignal(await startControllerProcess(config));
}
