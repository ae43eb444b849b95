// Wiring of the controller: the client-node writes, leader election on the `admitlb-controller`
// Lease, and the reconcile loop. `admitlb webhook` starts it beside the webhook (sharing caches and
// the allocation state); `admitlb controller` runs it alone.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Registry } from 'prom-client';
import type { AdmissionConfig, ControllerConfig } from '../config/webhook-config.ts';
import type { LiveAllocationState } from '../kube/allocation-state.ts';
import type { KubeCluster } from '../kube/client.ts';
import { KubeControllerApi } from '../kube/controller-api.ts';
import { LeaderElector } from '../kube/leader-election.ts';
import type { KeySet } from '../signing/assignment.ts';
import { Controller, type ControllerLogger } from './controller.ts';
import { createControllerMetrics } from './metrics.ts';

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
  logger: ControllerLogger & { child?(bindings: object): ControllerLogger };
  registry: Registry;
}

export function startController(opts: StartControllerOptions): RunningController {
  const cfg = opts.controller;
  const identity = cfg.identity ?? `${process.env.POD_NAME || process.env.HOSTNAME || hostname()}_${randomBytes(4).toString('hex')}`;
  const logger = opts.logger.child?.({ component: 'controller' }) ?? opts.logger;
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
