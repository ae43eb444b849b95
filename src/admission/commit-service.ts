// The second phase of a Service admission (the validating webhook `claims.services.admitlb.io`):
// the API server calls it only once the object has passed its own validation, and the object then
// has its uid. The claims the mutating phase made for it are committed by recording that uid in
// their holders, just after the answer (it always allows). Until then a holder is unconfirmed: the
// mutating phase bounds how many a namespace may have (unconfirmedProblem), and the controller
// releases the ones nobody commits or adopts. Why two phases: the mutating webhook must claim before
// it answers (the claim is the lock), but a create may still be refused after it (sessionAffinity:
// Bogus, an invalid port, ...); only this phase tells a Service that will be stored from one that
// never will (README, Security).
import { ANN_ALLOCATION } from '../config/annotations.ts';
import type { IPClaim, PoolUsage } from '../config/schemas.ts';
import { claimNameFor, ipFromClaimName, parseIP } from '../allocation/addresses.ts';
import type { ClaimRecord } from '../allocation/claim-index.ts';
import { isHolder } from '../allocation/allocator.ts';
import type { Service } from '../kube/types.ts';
import { verifyAssignment } from '../signing/assignment.ts';
import { buildClaim, type AdmissionDeps, type AuditFields } from './admit-service.ts';
import type { AdmissionOutcome, AdmissionRequest } from './review.ts';
import { ApiUnavailableError } from '../kube/cluster.ts';

export type CommitOutcome = AdmissionOutcome & {
  audit: AuditFields;
  /**
   * The commit itself, running after the answer: the API server's request does not wait for the
   * write. The commit only makes a claim confirmed sooner (the controller adopts it from the stored
   * Service otherwise); the claim create made in the mutating phase is what keeps addresses unique.
   */
  committed: Promise<void>;
};

const COMMIT_ATTEMPTS = 4;

export function commitService(deps: Pick<AdmissionDeps, 'state' | 'store' | 'keys'>, request: AdmissionRequest, log: (err: unknown, who: object) => void): Promise<CommitOutcome> {
  const skipped = (reason: string, who: object = {}): Promise<CommitOutcome> => Promise.resolve({ allowed: true, audit: { decision: 'skipped', reason, ...who }, committed: Promise.resolve() });
  if ((request.operation !== 'CREATE' && request.operation !== 'UPDATE') || request.dryRun) return skipped(request.dryRun ? 'dry run' : `operation ${request.operation}`);
  const service = request.object as unknown as Service;
  const namespace = request.namespace || service.metadata?.namespace || '';
  const name = service.metadata?.name || request.name || '';
  const uid = service.metadata?.uid;
  const who = { namespace, name };
  const token = service.metadata?.annotations?.[ANN_ALLOCATION];
  if (!token || typeof uid !== 'string' || !uid) return skipped(token ? 'no uid' : 'no assignment', who);
  return verifyAssignment(deps.keys, token, who).then(
    (a) => {
      const addresses = [...a.ips.map((text) => ({ text, use: 'LoadBalancer' as const })), ...a.externalIPs.map((text) => ({ text, use: 'ExternalIP' as const }))];
      const committed = (async () => {
        for (const { text, use } of addresses) await commitOne(deps, claimNameFor(parseIP(text)), { namespace, name, uid }, use);
      })().catch((err) => log(err, who));
      return { allowed: true, audit: { decision: 'allowed', reason: 'committing', addresses: addresses.map((x) => x.text), ...who }, committed };
    },
    // Not admitlb's answer for this Service (the controller converges it): nothing to commit.
    () => ({ allowed: true, audit: { decision: 'skipped', reason: 'assignment does not verify', ...who }, committed: Promise.resolve() }),
  );
}

/** Records `who.uid` in the claim's holder for this Service: 'done', or 'missing' when no claim lists it. */
async function commitOne(deps: Pick<AdmissionDeps, 'state' | 'store'>, claimName: string, who: { namespace: string; name: string; uid: string }, use: PoolUsage): Promise<'done' | 'missing'> {
  // This replica's cache may lag the mutating phase's write (another replica made it): a claim
  // that does not list the Service here is read from the API before it counts as missing.
  // A record without a resourceVersion is a reservation of an admission in flight here, not the claim.
  const cached = deps.state.claims.getByName(claimName);
  let record: Pick<ClaimRecord, 'pool' | 'sharingKey' | 'holders' | 'resourceVersion'> | undefined = cached?.resourceVersion ? cached : undefined;
  let asked = false;
  for (let attempt = 0; attempt < COMMIT_ATTEMPTS; attempt++) {
    const idx = record ? record.holders.findIndex((h) => h.use === use && isHolder(h, who)) : -1;
    if (idx < 0) {
      if (asked) return 'missing';
      asked = true;
      record = recordOf(await deps.store.get(claimName));
      continue;
    }
    if (record!.holders[idx]!.uid === who.uid) return 'done';
    const updated = buildClaim(claimName, ipFromClaimName(claimName), record!.pool, record!.sharingKey, record!.holders.map((h, i) => (i === idx ? { ...h, uid: who.uid } : h)));
    updated.metadata.resourceVersion = record!.resourceVersion;
    const result = await deps.store.update(updated);
    if (result.ok) {
      deps.state.applyClaim(result.claim);
      return 'done';
    }
    asked = true;
    const fresh = await deps.store.get(claimName);
    if (fresh) deps.state.applyClaim(fresh);
    record = recordOf(fresh);
  }
  throw new ApiUnavailableError(`the claim ${claimName} kept changing while it was committed`);
}

function recordOf(claim: IPClaim | undefined): Pick<ClaimRecord, 'pool' | 'sharingKey' | 'holders' | 'resourceVersion'> | undefined {
  if (!claim) return undefined;
  return { pool: claim.spec.pool, sharingKey: claim.spec.sharingKey || undefined, holders: claim.spec.holders ?? [], resourceVersion: claim.metadata.resourceVersion };
}
