// AdmissionReview v1: the request shape admitlb relies on (checked strictly: a malformed review is a
// 400, never a guess) and the response builders (uid echoed, patch only when there are operations).
//
// Hot path: every admission checks the review and the Service's shape. A hand-written check accepts
// what the API server sends (a subset of what the zod schemas accept); anything it does not accept
// goes through zod, which decides and words the error. So the answers (and 400 messages) are zod's,
// at a fraction of its cost for the well-formed reviews that make up the traffic.
import type { JsonPatchOp } from '../kube/types.ts';
import type { CodedError } from '../errors.ts';
import { z } from 'zod';

export const admissionRequestSchema = z.object({
  uid: z.string().min(1),
  kind: z.object({ group: z.string(), version: z.string(), kind: z.string() }),
  resource: z.object({ group: z.string(), version: z.string(), resource: z.string() }),
  subResource: z.string().optional(),
  name: z.string().optional(),
  namespace: z.string().optional(),
  operation: z.enum(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']),
  userInfo: z
    .object({ username: z.string().optional(), uid: z.string().optional(), groups: z.array(z.string()).optional() })
    .loose()
    .optional(),
  object: z.record(z.string(), z.unknown()).nullable().optional(),
  oldObject: z.record(z.string(), z.unknown()).nullable().optional(),
  dryRun: z.boolean().optional(),
  options: z.unknown().optional(),
});
export type AdmissionRequest = z.infer<typeof admissionRequestSchema>;

export const admissionReviewSchema = z.object({
  apiVersion: z.literal('admission.k8s.io/v1'),
  kind: z.literal('AdmissionReview'),
  request: admissionRequestSchema,
});
export type AdmissionReview = z.infer<typeof admissionReviewSchema>;

// The building blocks of the fast checks. Each accepts only values its zod counterpart accepts.
type Json = Record<string, unknown>;
const isPlain = (v: unknown): v is Json => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};
const isStr = (v: unknown): v is string => typeof v === 'string';
const optStr = (v: unknown) => v === undefined || typeof v === 'string';
const nullishStr = (v: unknown) => v === undefined || v === null || typeof v === 'string';
const isGVK = (v: unknown, last: 'kind' | 'resource') => isPlain(v) && isStr(v.group) && isStr(v.version) && isStr(v[last]);
const OPERATIONS = new Set(['CREATE', 'UPDATE', 'DELETE', 'CONNECT']);

function fastRequest(r: unknown): boolean {
  if (!isPlain(r)) return false;
  if (!isStr(r.uid) || r.uid.length < 1) return false;
  if (!isGVK(r.kind, 'kind') || !isGVK(r.resource, 'resource')) return false;
  if (!optStr(r.subResource) || !optStr(r.name) || !optStr(r.namespace)) return false;
  if (!isStr(r.operation) || !OPERATIONS.has(r.operation)) return false;
  const u = r.userInfo;
  if (u !== undefined) {
    if (!isPlain(u) || !optStr(u.username) || !optStr(u.uid)) return false;
    if (u.groups !== undefined && !(Array.isArray(u.groups) && u.groups.every(isStr))) return false;
  }
  if (r.object !== undefined && r.object !== null && !isPlain(r.object)) return false;
  if (r.oldObject !== undefined && r.oldObject !== null && !isPlain(r.oldObject)) return false;
  return r.dryRun === undefined || typeof r.dryRun === 'boolean';
}

/**
 * `admissionReviewSchema.safeParse`, fast for well-formed reviews. The data of a review accepted by
 * the fast check is the body itself (fields admitlb does not know are left in place, not stripped).
 */
export function parseAdmissionReview(body: unknown): z.ZodSafeParseResult<AdmissionReview> {
  if (isPlain(body) && body.apiVersion === 'admission.k8s.io/v1' && body.kind === 'AdmissionReview' && fastRequest(body.request)) {
    return { success: true, data: body as AdmissionReview };
  }
  return admissionReviewSchema.safeParse(body);
}

/**
 * The fields of a Service that admitlb reads, typed as the API server guarantees them. Anything else
 * passes through untouched; a review whose Service breaks these types did not come from an API server.
 */
const stringMap = z.record(z.string(), z.string());
export const serviceShapeZodSchema = z
  .object({
    metadata: z
      .object({
        name: z.string().optional(),
        generateName: z.string().optional(),
        namespace: z.string().optional(),
        labels: stringMap.optional().nullable(),
        annotations: stringMap.optional().nullable(),
      })
      .loose(),
    spec: z
      .object({
        type: z.string().optional(),
        selector: stringMap.optional().nullable(),
        ports: z
          .array(z.object({ port: z.number().int(), protocol: z.enum(['TCP', 'UDP', 'SCTP']).optional() }).loose())
          .optional()
          .nullable(),
        externalIPs: z.array(z.string()).optional().nullable(),
        loadBalancerIP: z.string().optional().nullable(),
        loadBalancerClass: z.string().optional().nullable(),
        ipFamilies: z.array(z.enum(['IPv4', 'IPv6'])).max(2).optional().nullable(),
        ipFamilyPolicy: z.enum(['SingleStack', 'PreferDualStack', 'RequireDualStack']).optional().nullable(),
        externalTrafficPolicy: z.string().optional().nullable(),
      })
      .loose()
      .optional()
      .nullable(),
  })
  .loose();
export type ServiceShape = z.infer<typeof serviceShapeZodSchema>;

const nullishStringMap = (v: unknown) => {
  if (v === undefined || v === null) return true;
  if (!isPlain(v)) return false;
  for (const k in v) if (typeof v[k] !== 'string') return false;
  return true;
};
const nullishArray = (v: unknown, item: (x: unknown) => boolean, max = Infinity) => v === undefined || v === null || (Array.isArray(v) && v.length <= max && v.every(item));
const PROTOCOLS = new Set(['TCP', 'UDP', 'SCTP']);
const FAMILIES = new Set(['IPv4', 'IPv6']);
const POLICIES = new Set(['SingleStack', 'PreferDualStack', 'RequireDualStack']);
const isPort = (p: unknown) => isPlain(p) && Number.isSafeInteger(p.port) && (p.protocol === undefined || (isStr(p.protocol) && PROTOCOLS.has(p.protocol)));

function fastService(o: unknown): boolean {
  if (!isPlain(o)) return false;
  const m = o.metadata;
  if (!isPlain(m) || !optStr(m.name) || !optStr(m.generateName) || !optStr(m.namespace)) return false;
  if (!nullishStringMap(m.labels) || !nullishStringMap(m.annotations)) return false;
  const s = o.spec;
  if (s === undefined || s === null) return true;
  if (!isPlain(s) || !optStr(s.type) || !nullishStringMap(s.selector)) return false;
  if (!nullishArray(s.ports, isPort) || !nullishArray(s.externalIPs, isStr)) return false;
  if (!nullishStr(s.loadBalancerIP) || !nullishStr(s.loadBalancerClass) || !nullishStr(s.externalTrafficPolicy)) return false;
  if (!nullishArray(s.ipFamilies, (f) => isStr(f) && FAMILIES.has(f), 2)) return false;
  return s.ipFamilyPolicy === undefined || s.ipFamilyPolicy === null || (isStr(s.ipFamilyPolicy) && POLICIES.has(s.ipFamilyPolicy));
}

/**
 * The fields of a Service that admitlb reads (serviceShapeZodSchema), checked fast for well-formed
 * Services; zod decides and explains the rest. The data of an accepted Service is the input itself.
 */
export const serviceShapeSchema = {
  safeParse(input: unknown): z.ZodSafeParseResult<ServiceShape> {
    return fastService(input) ? { success: true, data: input as ServiceShape } : serviceShapeZodSchema.safeParse(input);
  },
};

export type { JsonPatchOp };

export interface AdmissionStatus {
  code: number;
  message: string;
  reason?: string;
}

export interface AdmissionOutcome {
  allowed: boolean;
  patch?: JsonPatchOp[];
  warnings?: string[];
  status?: AdmissionStatus;
}

export function reviewResponse(uid: string, outcome: AdmissionOutcome) {
  const response: Record<string, unknown> = { uid, allowed: outcome.allowed };
  if (outcome.allowed && outcome.patch && outcome.patch.length > 0) {
    response.patchType = 'JSONPatch';
    response.patch = Buffer.from(JSON.stringify(outcome.patch)).toString('base64');
  }
  if (outcome.status) response.status = outcome.status;
  if (outcome.warnings && outcome.warnings.length > 0) response.warnings = outcome.warnings;
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response };
}

/** JSON Pointer escaping (RFC 6901): `~` is `~0`, `/` is `~1`. */
export const pointerEscape = (s: string) => s.replaceAll('~', '~0').replaceAll('/', '~1');

/** A denied admission: the catalogue entry (src/errors.ts) gives the HTTP status and the StatusReason. */
export const denial = (error: CodedError, message: string): AdmissionOutcome => ({
  allowed: false,
  status: { code: error.status, reason: error.reason, message },
});
