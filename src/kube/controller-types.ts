// The writes the controller makes, as an interface: src/kube/controller-api.ts implements it on
// @kubernetes/client-node, MemoryCluster in memory for the determinism tests.
import type { IPPool } from '../config/schemas.ts';
import type { JsonPatchOp } from './types.ts';
import type { ClaimStore } from './cluster.ts';

export type WriteResult = { ok: true } | { ok: false; reason: 'Conflict' | 'NotFound' | 'Denied' | 'Unavailable'; message: string };

export interface LoadBalancerIngress {
  ip: string;
  ipMode: 'VIP';
}

export interface EventTarget {
  namespace: string;
  name: string;
  uid?: string | undefined;
  resourceVersion?: string | undefined;
}

export interface ControllerApi {
  claims: ClaimStore;
  /** JSON patch of a Service (through admission, like any client write). */
  patchService(namespace: string, name: string, ops: JsonPatchOp[]): Promise<WriteResult>;
  /** Replaces status.loadBalancer.ingress through the /status subresource. */
  writeServiceStatus(namespace: string, name: string, ingress: LoadBalancerIngress[]): Promise<WriteResult>;
  recordEvent(target: EventTarget, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void>;
  writePoolStatus(name: string, status: NonNullable<IPPool['status']>): Promise<WriteResult>;
}
