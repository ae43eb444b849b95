// Keeps the allocator's inputs (compiled pools, claim index) in step with the cluster cache, the way
// MetalLB's k8salloc adapts Kubernetes around its pure allocator.
import type { Logger } from '../log.ts';
import type { IPClaim, IPPool } from '../config/schemas.ts';
import { ClaimIndex } from '../allocation/claim-index.ts';
import { compilePool, PoolInvalidError, type PoolModel } from '../allocation/pools.ts';
import type { AllocatorState } from '../allocation/allocator.ts';
import type { ClusterCache } from './cluster.ts';

export class LiveAllocationState implements AllocatorState {
  readonly claims = new ClaimIndex();
  private poolModels = new Map<string, PoolModel>();
  private sorted: PoolModel[] | undefined;
  /** Pools that failed to compile (forced past validation, or written before admitlb ran). */
  readonly invalidPools = new Map<string, string>();
  private readonly unsubscribe: () => void;

  constructor(cache: ClusterCache, private readonly log?: Pick<Logger, 'warn'>) {
    for (const p of cache.listPools()) this.upsertPool(p);
    for (const c of cache.listClaims()) this.claims.upsert(c);
    this.unsubscribe = cache.onEvent((e) => {
      if (e.kind === 'pool') e.type === 'upsert' ? this.upsertPool(e.pool) : this.deletePool(e.pool.metadata.name ?? '');
      else if (e.kind === 'claim') e.type === 'upsert' ? this.claims.upsert(e.claim) : this.claims.remove(e.claim.metadata.name ?? '');
    });
  }

  get pools(): PoolModel[] {
    this.sorted ??= [...this.poolModels.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
    return this.sorted;
  }

  /** Applies our own write at once, before its watch event arrives (the next request must see it). */
  applyClaim(claim: IPClaim): void {
    this.claims.upsert(claim);
  }

  forgetClaim(name: string): void {
    this.claims.remove(name);
  }

  private upsertPool(pool: IPPool) {
    const name = pool.metadata.name ?? '';
    this.sorted = undefined;
    try {
      this.poolModels.set(name, compilePool(pool));
      this.invalidPools.delete(name);
    } catch (err) {
      this.poolModels.delete(name);
      const message = err instanceof PoolInvalidError ? err.message : String(err);
      this.invalidPools.set(name, message);
      this.log?.warn({ pool: name, reason: message }, 'ignoring invalid IPPool');
    }
  }

  private deletePool(name: string) {
    this.sorted = undefined;
    this.poolModels.delete(name);
    this.invalidPools.delete(name);
  }

  close(): void {
    this.unsubscribe();
  }
}
