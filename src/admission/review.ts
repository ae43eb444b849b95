// AdmissionReview v1: the request shape admitlb relies on (checked strictly: a malformed review is a
// 400, never a guess) and the response builders (uid echoed, patch only when there are operations).
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

/**
 * The fields of a Service that admitlb reads, typed as the API server guarantees them. Anything else
 * passes through untouched; a review whose Service breaks these types did not come from an API server.
 */
const stringMap = z.record(z.string(), z.string());
export const serviceShapeSchema = z
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

export interface JsonPatchOp {
  op: 'add' | 'replace' | 'remove' | 'test';
  path: string;
  value?: unknown;
}

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

export const denial = (code: number, reason: string, message: string): AdmissionOutcome => ({
  allowed: false,
  status: { code, reason, message },
});
