// The one catalogue of coded errors a user sees. Each entry has a stable `code` (in the webhook's
// audit log lines and HTTP error bodies, for alerts and searches), the HTTP `status` and the
// Kubernetes StatusReason that the API server relays to kubectl. The pure layers (allocation) name an
// entry; the admission and HTTP layers turn it into an answer. README "Errors" lists them.
export interface CodedError {
  code: string;
  status: number;
  reason: string;
}

const e = (code: string, status: number, reason: string): CodedError => ({ code: `ADMITLB_${code}`, status, reason });

export const ERRORS = {
  // Denials of an admission (AdmissionReview response.status): the request itself is at fault.
  /** Fields that contradict each other or this cluster (families, two pools, conflicting annotations). */
  BAD_REQUEST: e('BAD_REQUEST', 400, 'BadRequest'),
  /** A field value no API server would accept either (a port out of range, an invalid pool spec). */
  INVALID: e('INVALID', 422, 'Invalid'),
  /** What the pools allow this Service's namespace does not include the request. */
  NOT_ALLOWED: e('NOT_ALLOWED', 403, 'Forbidden'),
  /** The namespace's quota in the pool is used up. */
  QUOTA_EXCEEDED: e('QUOTA_EXCEEDED', 403, 'Forbidden'),
  /** A named pool does not exist. */
  POOL_NOT_FOUND: e('POOL_NOT_FOUND', 404, 'NotFound'),
  /** A named pool is being deleted. */
  POOL_DELETING: e('POOL_DELETING', 409, 'Conflict'),
  /** The requested address is held by a Service that does not share it. */
  ADDRESS_TAKEN: e('ADDRESS_TAKEN', 409, 'Conflict'),
  /** No address is free in any pool the Service may use. */
  POOL_EXHAUSTED: e('POOL_EXHAUSTED', 409, 'Conflict'),
  /** A pool edit or deletion would strand allocated addresses. */
  POOL_IN_USE: e('POOL_IN_USE', 409, 'Conflict'),
  /** A status write puts addresses of admitlb's pools into a Service, by someone else than admitlb. */
  STATUS_NOT_OURS: e('STATUS_NOT_OURS', 403, 'Forbidden'),
  /** The namespace holds too many claims of admissions not yet confirmed (--max-unconfirmed-claims). */
  TOO_MANY_UNCONFIRMED: e('TOO_MANY_UNCONFIRMED', 429, 'TooManyRequests'),
  /** The Service's namespace does not exist (no claim is made for it). */
  NAMESPACE_NOT_FOUND: e('NAMESPACE_NOT_FOUND', 404, 'NotFound'),
  /** Every attempt to claim lost to concurrent admissions: retrying succeeds once they settle. */
  CLAIM_CONTENDED: e('CLAIM_CONTENDED', 409, 'Conflict'),
  /** The API server refused to record the claim (status and reason are the API server's). */
  CLAIM_REFUSED: e('CLAIM_REFUSED', 400, 'BadRequest'),
  // Answers that are not the request's fault.
  API_UNAVAILABLE: e('API_UNAVAILABLE', 503, 'ServiceUnavailable'),
  INTERNAL: e('INTERNAL', 500, 'InternalError'),
  // HTTP errors of the webhook's endpoints (the body is not an AdmissionReview answer).
  MALFORMED_JSON: e('MALFORMED_JSON', 400, 'BadRequest'),
  MALFORMED_REVIEW: e('MALFORMED_REVIEW', 400, 'BadRequest'),
  WRONG_RESOURCE: e('WRONG_RESOURCE', 400, 'BadRequest'),
  UNSUPPORTED_MEDIA: { code: 'ADMITLB_UNSUPPORTED_MEDIA_TYPE', status: 415, reason: 'UnsupportedMediaType' },
  UNAUTHENTICATED: e('UNAUTHENTICATED', 401, 'Unauthorized'),
  BODY_TOO_LARGE: e('BODY_TOO_LARGE', 413, 'RequestEntityTooLarge'),
  /** The bytes of the bodies being received at once reached the budget (WEBHOOK_BODY_BUDGET_BYTES). */
  BUSY: e('BUSY', 503, 'ServiceUnavailable'),
} as const satisfies Record<string, CodedError>;

export type ErrorName = keyof typeof ERRORS;

/** The entries the allocator may name in a denial. */
export type DenialError = 'BAD_REQUEST' | 'INVALID' | 'NOT_ALLOWED' | 'QUOTA_EXCEEDED' | 'POOL_NOT_FOUND' | 'POOL_DELETING' | 'ADDRESS_TAKEN' | 'POOL_EXHAUSTED';
