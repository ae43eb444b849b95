// Prometheus metrics of the webhook, in a registry of its own so that several apps in one process
// (tests, benchmarks) do not collide.
import { Counter, Histogram, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { poolCapacity } from '../allocation/pools.ts';
import type { AllocatorState } from '../allocation/allocator.ts';

export interface WebhookMetrics {
  registry: Registry;
  admissionSeconds: Histogram<'webhook' | 'operation'>;
  decisions: Counter<'webhook' | 'operation' | 'decision'>;
}

export function createWebhookMetrics(state: AllocatorState, opts: { defaultMetrics?: boolean } = {}): WebhookMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry });
  const admissionSeconds = new Histogram({
    name: 'admitlb_admission_duration_seconds',
    help: 'Time to answer an admission review, from body parsed to response ready.',
    labelNames: ['webhook', 'operation'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  const decisions = new Counter({
    name: 'admitlb_admission_decisions_total',
    help: 'Admission decisions by outcome (allowed, denied, skipped, error).',
    labelNames: ['webhook', 'operation', 'decision'] as const,
    registers: [registry],
  });
  new Gauge({
    name: 'admitlb_pool_capacity_addresses',
    help: 'Assignable addresses per pool and family.',
    labelNames: ['pool', 'family'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const pool of state.pools) {
        for (const family of pool.families) this.set({ pool: pool.name, family: `IPv${family}` }, Number(poolCapacity(pool, family)));
      }
    },
  });
  new Gauge({
    name: 'admitlb_pool_addresses_in_use',
    help: 'Addresses held per pool and family.',
    labelNames: ['pool', 'family'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const pool of state.pools) {
        for (const family of pool.families) this.set({ pool: pool.name, family: `IPv${family}` }, state.claims.inUse(pool.name, family));
      }
    },
  });
  // One series per confirmed holder of an address: the speakers' admitlb_speaker_address_announced
  // is its counterpart, so an address no speaker announces is a query (the monitoring rules).
  new Gauge({
    name: 'admitlb_address_assigned',
    help: 'Addresses held by a Service the controller confirmed (IPClaim holder with a uid): 1 per address, Service and use.',
    labelNames: ['address', 'pool', 'service', 'use'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const claim of state.claims.all()) {
        for (const h of claim.holders) {
          if (h.uid) this.set({ address: claim.address, pool: claim.pool, service: `${h.namespace}/${h.name}`, use: h.use }, 1);
        }
      }
    },
  });
  return { registry, admissionSeconds, decisions };
}
