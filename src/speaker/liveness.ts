// The live set for L2 elections: nodes whose speaker Lease is fresh. Freshness is judged like
// client-go's leader election: on the LOCAL monotonic clock, from the moment this process first
// observed the Lease's current version; a Lease that has not changed for leaseDurationSeconds since
// then has lapsed. The remote renewTime is never compared with our clock, so clock skew between
// nodes does not matter. A deleted Lease (graceful shutdown) leaves the set at once.
import { LEASE_DURATION_MS_ANNOTATION, LEASE_PREFIX, type LeaseObject } from '../kube/speaker-cache.ts';

interface Observed {
  node: string;
  version: string;
  at: number;
  durationMs: number;
}

export class LiveSet {
  private readonly byLease = new Map<string, Observed>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Records a Lease add/update; returns whether it is a speaker node Lease. */
  observe(lease: LeaseObject): boolean {
    const name = lease.metadata.name ?? '';
    const node = lease.spec?.holderIdentity ?? '';
    if (!name.startsWith(LEASE_PREFIX) || !node) {
      this.byLease.delete(name);
      return false;
    }
    const renew = lease.spec?.renewTime;
    const version = `${lease.metadata.resourceVersion ?? ''}|${node}|${renew instanceof Date ? renew.toISOString() : (renew ?? '')}`;
    const exact = Number((lease.metadata as { annotations?: Record<string, string> }).annotations?.[LEASE_DURATION_MS_ANNOTATION]);
    const durationMs = Number.isFinite(exact) && exact >= 100 ? exact : Math.max(1, lease.spec?.leaseDurationSeconds ?? 3) * 1000;
    const cur = this.byLease.get(name);
    if (cur && cur.version === version && cur.node === node) return true;
    this.byLease.set(name, { node, version, at: this.now(), durationMs });
    return true;
  }

  forget(lease: LeaseObject): void {
    this.byLease.delete(lease.metadata.name ?? '');
  }

  /** Nodes with a fresh Lease now. */
  live(): Set<string> {
    const now = this.now();
    const out = new Set<string>();
    for (const o of this.byLease.values()) if (now < o.at + o.durationMs) out.add(o.node);
    return out;
  }

  /**
   * Whether `node`'s own Lease was observed (a new version seen through the watch) within half its
   * duration. A speaker renews its Lease every quarter of the duration by default, so while its
   * watch works this always holds; once it stops holding, this process's view of every other Lease
   * is stale too, and their apparent lapses mean nothing (see Speaker.liveNodes).
   */
  observedRecently(node: string): boolean {
    const now = this.now();
    for (const o of this.byLease.values()) if (o.node === node && now - o.at < o.durationMs / 2) return true;
    return false;
  }

  /** The earliest moment (monotonic ms) a currently fresh Lease lapses, or undefined. */
  nextExpiry(): number | undefined {
    const now = this.now();
    let next: number | undefined;
    for (const o of this.byLease.values()) {
      const end = o.at + o.durationMs;
      if (end > now && (next === undefined || end < next)) next = end;
    }
    return next;
  }
}
