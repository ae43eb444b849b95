// An in-memory Cluster with the API server's semantics for what admitlb writes: create-uniqueness
// (AlreadyExists), resourceVersion compare-and-swap (Conflict), one monotonic resourceVersion.
// Used by unit tests and benchmarks; the sandbox double covers the real HTTP path.
import type { IPClaim, IPPool } from '../config/schemas.ts';
import type { CacheEvent, ClaimCreateResult, ClaimStore, ClaimUpdateResult, Cluster, ClusterCache } from './cluster.ts';
import { ApiUnavailableError } from './cluster.ts';
import type { Namespace } from './types.ts';

const clone = <T>(v: T): T => structuredClone(v);

export class MemoryCluster implements Cluster, ClusterCache, ClaimStore {
  private rv = 0;
  private readonly poolMap = new Map<string, IPPool>();
  private readonly claimMap = new Map<string, IPClaim>();
  private readonly namespaceMap = new Map<string, Namespace>();
  private readonly listeners = new Set<(e: CacheEvent) => void>();
  /** When set, every API call fails as if the API server were unreachable. */
  unavailable = false;
  /** Counts API calls, so tests can assert on round trips. */
  calls = { create: 0, update: 0, delete: 0, get: 0 };

  readonly cache: ClusterCache = this;
  readonly claims: ClaimStore = this;

  async start(): Promise<void> {}
  async stop(): Promise<void> {}
  synced(): boolean {
    return true;
  }

  onEvent(listener: (event: CacheEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(e: CacheEvent) {
    for (const l of this.listeners) l(e);
  }

  private nextRV(): string {
    return String(++this.rv);
  }

  listPools(): IPPool[] {
    return [...this.poolMap.values()].map(clone);
  }

  listClaims(): IPClaim[] {
    return [...this.claimMap.values()].map(clone);
  }

  namespace(name: string): Namespace | undefined {
    return this.namespaceMap.get(name);
  }

  setPool(pool: IPPool): void {
    const stored = clone(pool);
    stored.metadata.resourceVersion = this.nextRV();
    this.poolMap.set(stored.metadata.name!, stored);
    this.emit({ kind: 'pool', type: 'upsert', pool: clone(stored) });
  }

  deletePool(name: string): void {
    const pool = this.poolMap.get(name);
    if (!pool) return;
    this.poolMap.delete(name);
    this.emit({ kind: 'pool', type: 'delete', pool });
  }

  setNamespace(name: string, labels: Record<string, string> = {}): void {
    const ns: Namespace = { metadata: { name, labels: { 'kubernetes.io/metadata.name': name, ...labels } } };
    this.namespaceMap.set(name, ns);
    this.emit({ kind: 'namespace', type: 'upsert', namespace: ns });
  }

  private check() {
    if (this.unavailable) throw new ApiUnavailableError('connect ECONNREFUSED (memory cluster marked unavailable)');
  }

  async create(claim: IPClaim): Promise<ClaimCreateResult> {
    this.calls.create++;
    this.check();
    const name = claim.metadata.name!;
    const existing = this.claimMap.get(name);
    if (existing) return { ok: false, reason: 'AlreadyExists', current: clone(existing) };
    const stored = clone(claim);
    stored.metadata.resourceVersion = this.nextRV();
    stored.metadata.uid = `uid-${stored.metadata.resourceVersion}`;
    stored.metadata.creationTimestamp = new Date().toISOString();
    this.claimMap.set(name, stored);
    this.emit({ kind: 'claim', type: 'upsert', claim: clone(stored) });
    return { ok: true, claim: clone(stored) };
  }

  async update(claim: IPClaim): Promise<ClaimUpdateResult> {
    this.calls.update++;
    this.check();
    const name = claim.metadata.name!;
    const existing = this.claimMap.get(name);
    if (!existing) return { ok: false, reason: 'NotFound' };
    if (claim.metadata.resourceVersion !== existing.metadata.resourceVersion) return { ok: false, reason: 'Conflict' };
    const stored = clone(claim);
    stored.metadata = { ...existing.metadata, ...stored.metadata, resourceVersion: this.nextRV() };
    this.claimMap.set(name, stored);
    this.emit({ kind: 'claim', type: 'upsert', claim: clone(stored) });
    return { ok: true, claim: clone(stored) };
  }

  async delete(name: string, resourceVersion?: string): Promise<boolean> {
    this.calls.delete++;
    this.check();
    const existing = this.claimMap.get(name);
    if (!existing) return false;
    if (resourceVersion && existing.metadata.resourceVersion !== resourceVersion) return false;
    this.claimMap.delete(name);
    this.emit({ kind: 'claim', type: 'delete', claim: existing });
    return true;
  }

  async get(name: string): Promise<IPClaim | undefined> {
    this.calls.get++;
    this.check();
    const c = this.claimMap.get(name);
    return c ? clone(c) : undefined;
  }
}

