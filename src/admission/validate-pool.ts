// IPPool validation (the validating webhook): a pool must parse, must not overlap another pool, and a
// shrink or delete must not strand allocated addresses unless forced with the admitlb.io/force
// annotation. Every problem names its field.
import { ERRORS } from '../errors.ts';
import { ANN_FORCE } from '../config/annotations.ts';
import type { IPPool } from '../config/schemas.ts';
import { isBuggyIP } from '../allocation/addresses.ts';
import type { ClaimIndex } from '../allocation/claim-index.ts';
import { compilePool, overlapsWith, poolContains, PoolInvalidError, type FieldProblem, type PoolModel } from '../allocation/pools.ts';
import { denial, type AdmissionOutcome, type AdmissionRequest } from './review.ts';

export interface PoolValidationDeps {
  pools: PoolModel[];
  claims: ClaimIndex;
}

const forced = (pool: IPPool | undefined | null) => pool?.metadata?.annotations?.[ANN_FORCE] === 'true';

function invalid(name: string, problems: FieldProblem[]): AdmissionOutcome {
  const message = `IPPool "${name}" is invalid: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`;
  return denial(ERRORS.INVALID, message);
}

export function validatePool(deps: PoolValidationDeps, request: AdmissionRequest): AdmissionOutcome {
  const oldPool = request.oldObject as unknown as IPPool | null | undefined;
  if (request.operation === 'DELETE') {
    const name = request.name || oldPool?.metadata?.name || '';
    const held = [...deps.claims.all()].filter((c) => c.pool === name);
    if (held.length > 0 && !forced(oldPool)) {
      return denial(ERRORS.POOL_IN_USE, `IPPool "${name}" still has ${held.length} allocated address(es) (e.g. ${held[0]!.address}); annotate it ${ANN_FORCE}=true to delete it anyway`);
    }
    return { allowed: true };
  }
  if (request.operation !== 'CREATE' && request.operation !== 'UPDATE') return { allowed: true };
  const pool = request.object as unknown as IPPool;
  const name = pool?.metadata?.name || request.name || '';
  let model: PoolModel;
  try {
    model = compilePool(pool);
  } catch (err) {
    if (err instanceof PoolInvalidError) return invalid(name, err.problems);
    throw err;
  }
  const overlaps = overlapsWith(model, deps.pools, pool.spec.addresses);
  if (overlaps.length) return invalid(name, overlaps);

  if (request.operation === 'UPDATE' && !forced(pool)) {
    const stranded: string[] = [];
    const problems: FieldProblem[] = [];
    for (const claim of deps.claims.all()) {
      if (claim.pool !== name) continue;
      if (!poolContains(model, claim.ip)) stranded.push(claim.address);
      else if (model.avoidBuggyIPs && isBuggyIP(claim.ip)) problems.push({ field: 'spec.avoidBuggyIPs', message: `${claim.address} is allocated and ends in .0 or .255` });
      else if (!claim.holders.every((h) => model.usage.has(h.use))) problems.push({ field: 'spec.usage', message: `${claim.address} is allocated as ${claim.holders[0]!.use}` });
    }
    if (stranded.length) {
      problems.unshift({ field: 'spec.addresses', message: `${stranded.length} allocated address(es) would fall outside the pool (e.g. ${stranded.sort()[0]}); annotate the pool ${ANN_FORCE}=true to shrink it anyway` });
    }
    if (problems.length) return denial(ERRORS.POOL_IN_USE, `IPPool "${name}" cannot change: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`);
  }
  return { allowed: true };
}
