// The live set for L2 elections: nodes whose speaker Lease is fresh. Freshness is judged like
// client-go's leader election: on the LOCAL monotonic clock, from the moment this process first
// observed the Lease's current version; a Lease that has not changed for leaseDurationSeconds since
// then has lapsed. The remote renewTime is never compared with our clock, so clock skew between
// nodes does not matter. A deleted Lease (graceful shutdown) leaves the set at once.
import { LEASE_PREFIX, type LeaseObject } from '../kube/speaker-cache.ts';

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
    const durationMs = Math.max(1, lease.spec?.leaseDurationSeconds ?? 3) * 1000;
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
