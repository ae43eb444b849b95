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
