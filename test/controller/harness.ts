// A controller over the in-memory cluster: the pure decisions and the runtime's write loop, without
// HTTP. The sandbox tests (test/e2e) cover the same controller against the API double.
import { ANN_ALLOCATION, ANN_ASSIGNED_IPS, ANN_ASSIGNED_POOL } from '../../src/config/annotations.ts';
import type { IPClaim, IPPool } from '../../src/config/schemas.ts';
import { admissionConfigSchema, type AdmissionConfig } from '../../src/config/webhook-config.ts';
import { Controller } from '../../src/controller/controller.ts';
import { LiveAllocationState } from '../../src/kube/allocation-state.ts';
import { MemoryCluster } from '../../src/kube/memory.ts';
import type { Service } from '../../src/kube/types.ts';
import { signAssignment, type KeySet } from '../../src/signing/assignment.ts';
import { silentLogger } from '../helpers/state.ts';

export interface Scenario {
  namespaces?: Record<string, Record<string, string>>;
  pools: IPPool[];
  claims?: IPClaim[];
  services: Service[];
  config?: Partial<AdmissionConfig>;
}

export interface Running {
  cluster: MemoryCluster;
  state: LiveAllocationState;
  controller: Controller;
  clock: { now: number };
  converge(): Promise<void>;
  close(): Promise<void>;
}

let seq = 0;
/** A Service; `at` orders creation (canonical order is oldest first). */
export function svc(name: string, opts: { ns?: string; at?: number; type?: 'LoadBalancer' | 'ClusterIP' | 'NodePort'; annotations?: Record<string, string>; ports?: number[]; spec?: Record<string, unknown>; status?: string[]; labels?: Record<string, string> } = {}): Service {
  const ns = opts.ns ?? 'default';
  const at = opts.at ?? seq++;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name,
      namespace: ns,
      uid: `uid-${ns}-${name}`,
      creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, at)).toISOString(),
      ...(opts.annotations ? { annotations: opts.annotations } : {}),
      ...(opts.labels ? { labels: opts.labels } : {}),
    },
    spec: { type: opts.type ?? 'LoadBalancer', ports: (opts.ports ?? [80]).map((port) => ({ protocol: 'TCP', port })), ...opts.spec },
    ...(opts.status ? { status: { loadBalancer: { ingress: opts.status.map((ip) => ({ ip })) } } } : {}),
  };
}

/** The annotations the webhook would have written for this assignment. */
export async function signed(keys: KeySet, service: Service, ips: string[], pool: string, externalIPs: string[] = []): Promise<Service> {
  const token = await signAssignment(keys, { namespace: service.metadata.namespace!, name: service.metadata.name!, ips, pool, externalIPs });
  return {
    ...service,
    metadata: {
      ...service.metadata,
      annotations: { ...service.metadata.annotations, [ANN_ASSIGNED_IPS]: [...ips, ...externalIPs].join(','), [ANN_ASSIGNED_POOL]: pool, [ANN_ALLOCATION]: token },
    },
  };
}

function shuffled<T>(items: T[], random: () => number): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** mulberry32: a seeded generator, so a failing order can be replayed. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function run(keys: KeySet, scenario: Scenario, opts: { random?: () => number; graceMs?: number; now?: number; poolStatusIntervalMs?: number } = {}): Promise<Running> {
  const random = opts.random ?? (() => 0.5);
  const order = <T>(xs: T[]) => (opts.random ? shuffled(xs, random) : xs);
  const cluster = new MemoryCluster();
  const nsNames = new Set(['default', ...Object.keys(scenario.namespaces ?? {}), ...scenario.services.map((s) => s.metadata.namespace ?? 'default')]);
  for (const ns of order([...nsNames])) cluster.setNamespace(ns, scenario.namespaces?.[ns] ?? {});
  for (const p of order(scenario.pools)) cluster.setPool(p);
  for (const c of order(scenario.claims ?? [])) await cluster.create(c);
  for (const s of order(scenario.services)) cluster.setService(s);
  const state = new LiveAllocationState(cluster);
  const clock = { now: opts.now ?? Date.UTC(2026, 0, 1, 1) };
  const controller = new Controller({
    cache: cluster,
    api: cluster,
    state,
    keys,
    config: admissionConfigSchema.parse(scenario.config ?? {}),
    logger: silentLogger(),
    orphanGraceMs: opts.graceMs ?? 60_000,
    settleMs: 0,
    debounceMs: 0,
    // The fake clock does not move by itself: every status change is written at once.
    poolStatusIntervalMs: opts.poolStatusIntervalMs ?? 0,
    now: () => clock.now,
  });
  controller.start();
  controller.setLeading(true);
  const converge = async () => {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      controller.idle(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('controller did not converge within 10 s')), 10_000);
      }),
    ]).finally(() => clearTimeout(timer));
  };
  await converge();
  return {
    cluster,
    state,
    controller,
    clock,
    converge,
    async close() {
      await controller.stop();
      state.close();
    },
  };
}

/** What a user would look at: addresses, pools, status, claims and their holders, event reasons. */
export function observed(cluster: MemoryCluster) {
  const services = Object.fromEntries(
    cluster
      .listServices()
      .map((s): [string, { ips: string; pool: string; status: string }] => [
        `${s.metadata.namespace}/${s.metadata.name}`,
        {
          ips: s.metadata.annotations?.[ANN_ASSIGNED_IPS] ?? '',
          pool: s.metadata.annotations?.[ANN_ASSIGNED_POOL] ?? '',
          status: (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip).join(','),
        },
      ])
      .sort(([a], [b]) => (a < b ? -1 : 1)),
  );
  const claims = Object.fromEntries(
    cluster
      .listClaims()
      .map((c): [string, { pool: string; holders: string[] }] => [c.metadata.name!, { pool: c.spec.pool, holders: c.spec.holders.map((h) => `${h.namespace}/${h.name}/${h.use}/${h.uid ?? ''}`).sort() }])
      .sort(([a], [b]) => (a < b ? -1 : 1)),
  );
  const events = [...new Set(cluster.events.map((e) => `${e.namespace}/${e.name}:${e.reason}`))].sort();
  return { services, claims, events };
}
