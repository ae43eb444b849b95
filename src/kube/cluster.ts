// The adapter between admitlb's pure core and Kubernetes: read caches (informers) for pools, claims
// and namespaces, and the few writes the webhook makes (IPClaims). The webhook and its tests depend
// only on this interface; memory.ts implements it for unit tests and benchmarks, client.ts on
// @kubernetes/client-node for real clusters and the sandbox.
import type { IPClaim, IPPool } from '../config/schemas.ts';
import type { Namespace, Service } from './types.ts';

export type ClaimCreateResult = { ok: true; claim: IPClaim } | { ok: false; reason: 'AlreadyExists'; current: IPClaim | undefined };
export type ClaimUpdateResult = { ok: true; claim: IPClaim } | { ok: false; reason: 'Conflict' | 'NotFound' };

/** Raised when the API server cannot be reached or answers with an unexpected error. */
export class ApiUnavailableError extends Error {
  constructor(message: string, override readonly cause?: unknown) {
    super(message);
  }
}

/**
 * Raised when the API server refuses a write for what it contains (a 4xx other than the conflicts
 * the caller handles: validation, admission, authorization). Retrying the same write cannot help,
 * so callers answer with the API's own message rather than call the API unreachable.
 */
export class ApiRejectedError extends Error {
  constructor(
    message: string,
    /** HTTP status of the API's answer. */
    readonly status: number,
    /** The Status reason (`Invalid`, `Forbidden`...), '' when the API gave none. */
    readonly reason: string,
    /** The Status message, as the API worded it. */
    readonly apiMessage: string,
    override readonly cause?: unknown,
  ) {
    super(message);
  }
}

export interface ClaimStore {
  create(claim: IPClaim): Promise<ClaimCreateResult>;
  /** Compare-and-swap on metadata.resourceVersion. */
  update(claim: IPClaim): Promise<ClaimUpdateResult>;
  delete(name: string, resourceVersion?: string): Promise<boolean>;
  get(name: string): Promise<IPClaim | undefined>;
}

export type CacheEvent =
  | { kind: 'claim'; type: 'upsert' | 'delete'; claim: IPClaim }
  | { kind: 'pool'; type: 'upsert' | 'delete'; pool: IPPool }
  | { kind: 'namespace'; type: 'upsert' | 'delete'; namespace: Namespace }
  | { kind: 'service'; type: 'upsert' | 'delete'; service: Service }
  | { kind: 'speakerConfig'; type: 'upsert' | 'delete'; object: { kind?: string; metadata?: { name?: string } } };

export interface ClusterCache {
  listPools(): readonly IPPool[];
  listClaims(): readonly IPClaim[];
  namespace(name: string): Namespace | undefined;
  listServices?(): readonly Service[];
  /** True once every informer has listed; /readyz waits for it. */
  synced(): boolean;
  onEvent(listener: (event: CacheEvent) => void): () => void;
}

export interface Cluster {
  cache: ClusterCache;
  claims: ClaimStore;
  start(): Promise<void>;
  stop(): Promise<void>;
}
