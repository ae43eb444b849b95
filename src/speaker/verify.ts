// The speaker's signature check, apart from the Speaker's memo and logging so that it can be tested
// on its own: a Service's addresses are announced only when its `admitlb.io/allocation` annotation
// carries an assignment the webhook signed for this very Service (planSpeaker then also demands an
// IPClaim listing it).
import { ANN_ALLOCATION } from '../config/annotations.ts';
import type { Service } from '../kube/types.ts';
import { verifyAssignment, type KeySet, type SignedAssignment } from '../signing/assignment.ts';

/**
 * `assignment` only when the token verifies for the Service's namespace and name; otherwise why not
 * (`reason` is undefined when the Service carries no token at all: nothing to report).
 */
export type AssignmentCheck = { token: string | undefined; assignment: SignedAssignment; reason?: undefined } | { token: string | undefined; assignment: undefined; reason: string | undefined };

export async function checkServiceAssignment(keys: Pick<KeySet, 'verifyKey'>, service: Service, opts: { now?: number } = {}): Promise<AssignmentCheck> {
  const token = service.metadata.annotations?.[ANN_ALLOCATION];
  if (!token) return { token, assignment: undefined, reason: undefined };
  try {
    const assignment = await verifyAssignment(keys, token, { namespace: service.metadata.namespace ?? '', name: service.metadata.name ?? '' }, opts);
    return { token, assignment };
  } catch (err) {
    return { token, assignment: undefined, reason: (err as Error).message };
  }
}
