// Controller metrics, registered in the process's registry (the webhook's when both run together).
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface ControllerMetrics {
  reconcileSeconds: Histogram;
  queueDepth: Gauge;
  statusWrites: Counter;
  claimsCollected: Counter;
  leader: Gauge;
}

export function createControllerMetrics(registry: Registry): ControllerMetrics {
  const registers = [registry];
  return {
    reconcileSeconds: new Histogram({
      name: 'admitlb_controller_reconcile_duration_seconds',
      help: 'Time of one reconcile pass, from caches to the last write.',
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    queueDepth: new Gauge({ name: 'admitlb_controller_queue_depth', help: 'Services examined by the current pass.', registers }),
    statusWrites: new Counter({ name: 'admitlb_controller_status_writes_total', help: 'status.loadBalancer writes.', registers }),
    claimsCollected: new Counter({ name: 'admitlb_controller_claims_collected_total', help: 'Claim holders released (orphans and freed addresses).', registers }),
    leader: new Gauge({ name: 'admitlb_controller_leader', help: '1 while this instance is the elected controller.', registers }),
  };
}
