// IPPool status: capacity and in-use counts per family (decimal strings: an IPv6 pool exceeds
// 2^53) and two conditions, Valid and Exhausted. Pure; the controller writes it when it changes.
import type { IPPool } from '../config/schemas.ts';
import type { Family } from '../allocation/addresses.ts';
import type { ClaimIndex } from '../allocation/claim-index.ts';
import { poolCapacity, type PoolModel } from '../allocation/pools.ts';

type PoolStatus = NonNullable<IPPool['status']>;
type Condition = NonNullable<PoolStatus['conditions']>[number];

const familyKey = (f: Family) => (f === 4 ? 'ipv4' : 'ipv6');

export function computePoolStatus(pool: IPPool, model: PoolModel | undefined, invalidReason: string | undefined, claims: ClaimIndex, now: string): PoolStatus {
  const capacity: Record<string, string> = {};
  const inUse: Record<string, string> = {};
  let exhausted = !!model && model.families.size > 0;
  if (model) {
    for (const f of [4, 6] as Family[]) {
      if (!model.families.has(f)) continue;
      const cap = poolCapacity(model, f);
      const used = BigInt(claims.inUse(model.name, f));
      capacity[familyKey(f)] = String(cap);
      inUse[familyKey(f)] = String(used);
      if (used < cap) exhausted = false;
    }
  }
  const previous = pool.status?.conditions ?? [];
  const condition = (type: string, status: Condition['status'], reason: string, message: string): Condition => {
    const before = previous.find((c) => c.type === type);
    const lastTransitionTime = before && before.status === status && before.lastTransitionTime ? before.lastTransitionTime : now;
    return { type, status, reason, message, lastTransitionTime, ...(pool.metadata.generation !== undefined ? { observedGeneration: pool.metadata.generation } : {}) };
  };
  const conditions = [
    invalidReason
      ? condition('Valid', 'False', 'Invalid', invalidReason)
      : condition('Valid', 'True', 'Valid', 'the pool compiled; its addresses are assignable'),
    exhausted
      ? condition('Exhausted', 'True', 'NoFreeAddresses', 'every address of the pool is held')
      : condition('Exhausted', 'False', 'FreeAddresses', model ? 'the pool has free addresses' : 'the pool is not in use'),
  ];
  return { capacity, inUse, conditions };
}

/** Equality that ignores nothing but key order, so an unchanged status is not rewritten. */
/** Whether only the counts differ: the conditions' statuses and reasons are the same. */
export function sameConditions(a: PoolStatus | undefined, b: PoolStatus): boolean {
  const norm = (s: PoolStatus | undefined) => JSON.stringify((s?.conditions ?? []).map((c) => [c.type, c.status, c.reason]));
  return norm(a) === norm(b);
}

export function sameStatus(a: PoolStatus | undefined, b: PoolStatus): boolean {
  const norm = (s: PoolStatus | undefined) =>
    JSON.stringify({
      capacity: { ipv4: s?.capacity?.ipv4, ipv6: s?.capacity?.ipv6 },
      inUse: { ipv4: s?.inUse?.ipv4, ipv6: s?.inUse?.ipv6 },
      conditions: (s?.conditions ?? []).map((c) => [c.type, c.status, c.reason, c.message, c.lastTransitionTime, c.observedGeneration]),
    });
  return norm(a) === norm(b);
}
