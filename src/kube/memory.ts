// An in-memory Cluster with the API server's semantics for what admitlb writes: create-uniqueness
// (AlreadyExists), resourceVersion compare-and-swap (Conflict), one monotonic resourceVersion.
// Used by unit tests and benchmarks; the sandbox double covers the real HTTP path.
import type { IPClaim, IPPool } from '../config/schemas.ts';
import type { CacheEvent, ClaimCreateResult, ClaimStore, ClaimUpdateResult, Cluster, ClusterCache } from './cluster.ts';
import { ApiUnavailableError, type ApiRejectedError } from './cluster.ts';
import type { Namespace, Service } from './types.ts';
import type { ControllerApi, EventTarget, LoadBalancerIngress, WriteResult } from './controller-types.ts';
import type { JsonPatchOp } from './types.ts';

const clone = <T>(v: T): T => structuredClone(v);

export interface RecordedEvent extends EventTarget {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export class MemoryCluster implements Cluster, ClusterCache, ClaimStore, ControllerApi {
  private rv = 0;
  private readonly serviceMap = new Map<string, Service>();
  /** Events the controller recorded, in order. */
  readonly events: RecordedEvent[] = [];
  private readonly poolMap = new Map<string, IPPool>();
  private readonly claimMap = new Map<string, IPClaim>();
  private readonly namespaceMap = new Map<string, Namespace>();
  private readonly listeners = new Set<(e: CacheEvent) => void>();
  /** When set, every API call fails as if the API server were unreachable. */
  unavailable = false;
  /** Counts API calls, so tests can assert on round trips. */
  calls = { create: 0, update: 0, delete: 0, get: 0, patchService: 0, status: 0, poolStatus: 0 };

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

  /** Tests: the API's verdict on a claim write (an error to throw, as a validating step would). */
  refuseClaim: ((claim: IPClaim) => ApiRejectedError | undefined) | undefined;

  private check(claim?: IPClaim) {
    if (this.unavailable) throw new ApiUnavailableError('connect ECONNREFUSED (memory cluster marked unavailable)');
    const refused = claim && this.refuseClaim?.(claim);
    if (refused) throw refused;
  }

  async create(claim: IPClaim): Promise<ClaimCreateResult> {
    this.calls.create++;
    this.check(claim);
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
    this.check(claim);
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

  // Services and the controller's writes (ControllerApi). No admission runs here: the sandbox
  // double covers that path.

  listServices(): Service[] {
    return [...this.serviceMap.values()].map(clone);
  }

  service(namespace: string, name: string): Service | undefined {
    const s = this.serviceMap.get(`${namespace}/${name}`);
    return s ? clone(s) : undefined;
  }

  /** Creates or replaces a Service as a client would (uid and creationTimestamp kept on replace). */
  setService(service: Service): Service {
    const key = `${service.metadata.namespace ?? 'default'}/${service.metadata.name}`;
    const existing = this.serviceMap.get(key);
    const stored = clone(service);
    stored.metadata.namespace ??= 'default';
    stored.metadata.resourceVersion = this.nextRV();
    stored.metadata.uid = existing?.metadata.uid ?? service.metadata.uid ?? `svc-uid-${stored.metadata.resourceVersion}`;
    stored.metadata.creationTimestamp = existing?.metadata.creationTimestamp ?? service.metadata.creationTimestamp ?? new Date().toISOString();
    this.serviceMap.set(key, stored);
    this.emit({ kind: 'service', type: 'upsert', service: clone(stored) });
    return clone(stored);
  }

  deleteService(namespace: string, name: string): void {
    const key = `${namespace}/${name}`;
    const existing = this.serviceMap.get(key);
    if (!existing) return;
    this.serviceMap.delete(key);
    this.emit({ kind: 'service', type: 'delete', service: existing });
  }

  async patchService(namespace: string, name: string, ops: JsonPatchOp[]): Promise<WriteResult> {
    this.calls.patchService++;
    this.check();
    const existing = this.serviceMap.get(`${namespace}/${name}`);
    if (!existing) return { ok: false, reason: 'NotFound', message: `services "${name}" not found` };
    const next = clone(existing) as unknown as Record<string, unknown>;
    for (const op of ops) {
      const result = applyOp(next, op);
      if (result) return { ok: false, reason: result === 'test' ? 'Conflict' : 'Denied', message: `patch ${op.op} ${op.path} failed` };
    }
    const stored = next as unknown as Service;
    stored.metadata.resourceVersion = this.nextRV();
    this.serviceMap.set(`${namespace}/${name}`, stored);
    this.emit({ kind: 'service', type: 'upsert', service: clone(stored) });
    return { ok: true };
  }

  async writeServiceStatus(namespace: string, name: string, ingress: LoadBalancerIngress[]): Promise<WriteResult> {
    this.calls.status++;
    this.check();
    const existing = this.serviceMap.get(`${namespace}/${name}`);
    if (!existing) return { ok: false, reason: 'NotFound', message: `services "${name}" not found` };
    const stored = clone(existing);
    stored.status = { ...stored.status, loadBalancer: ingress.length ? { ingress } : {} };
    stored.metadata.resourceVersion = this.nextRV();
    this.serviceMap.set(`${namespace}/${name}`, stored);
    this.emit({ kind: 'service', type: 'upsert', service: clone(stored) });
    return { ok: true };
  }

  async recordEvent(target: EventTarget, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    this.check();
    this.events.push({ ...target, type, reason, message });
  }

  async writePoolStatus(name: string, status: NonNullable<IPPool['status']>): Promise<WriteResult> {
    this.calls.poolStatus++;
    this.check();
    const existing = this.poolMap.get(name);
    if (!existing) return { ok: false, reason: 'NotFound', message: `ippools "${name}" not found` };
    const stored = clone(existing);
    stored.status = clone(status);
    stored.metadata.resourceVersion = this.nextRV();
    this.poolMap.set(name, stored);
    this.emit({ kind: 'pool', type: 'upsert', pool: clone(stored) });
    return { ok: true };
  }
}

/** RFC 6902 on plain JSON for the ops admitlb writes; returns what failed, or undefined. */
function applyOp(doc: Record<string, unknown>, op: JsonPatchOp): 'test' | 'path' | undefined {
  const parts = op.path.split('/').slice(1).map((p) => p.replaceAll('~1', '/').replaceAll('~0', '~'));
  const last = parts.pop();
  if (last === undefined) return 'path';
  let parent: unknown = doc;
  for (const p of parts) {
    parent = (parent as Record<string, unknown> | undefined)?.[p];
    if (typeof parent !== 'object' || parent === null) return 'path';
  }
  const obj = parent as Record<string, unknown>;
  switch (op.op) {
    case 'test':
      return JSON.stringify(obj[last]) === JSON.stringify(op.value) ? undefined : 'test';
    case 'add':
      obj[last] = clone(op.value);
      return undefined;
    case 'replace':
      if (!(last in obj)) return 'path';
      obj[last] = clone(op.value);
      return undefined;
    case 'remove':
      if (!(last in obj)) return 'path';
      delete obj[last];
      return undefined;
  }
}
