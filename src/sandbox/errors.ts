// metav1.Status errors shaped like k8s.io/apimachinery/pkg/api/errors (errors.go) and field errors
// like k8s.io/apimachinery/pkg/util/validation/field/errors.go.

export interface StatusCause {
  reason: string;
  message: string;
  field: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export class StatusError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details?: StatusDetails,
  ) {
    super(message);
  }

  toStatus(): Record<string, unknown> {
    const status: Record<string, unknown> = {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      code: this.code,
    };
    if (this.details) status.details = this.details;
    if (this.reason === '') delete status.reason;
    return status;
  }
}

/** A GroupResource as kube prints it: "services", "deployments.apps". */
export function qualifiedResource(group: string, resource: string): string {
  return group ? `${resource}.${group}` : resource;
}

function groupDetails(group: string, resource: string, name: string): StatusDetails {
  const d: StatusDetails = { name, kind: resource };
  if (group) d.group = group;
  return d;
}

export function notFound(group: string, resource: string, name: string): StatusError {
  return new StatusError(404, 'NotFound', `${qualifiedResource(group, resource)} "${name}" not found`, groupDetails(group, resource, name));
}

export function alreadyExists(group: string, resource: string, name: string): StatusError {
  return new StatusError(409, 'AlreadyExists', `${qualifiedResource(group, resource)} "${name}" already exists`, groupDetails(group, resource, name));
}

/** registry/generic/registry/store.go: storage.IsConflict → errors.NewConflict(qualifiedResource, name, OptimisticLockErrorMsg). */
export function conflict(group: string, resource: string, name: string, why = 'the object has been modified; please apply your changes to the latest version and try again'): StatusError {
  return new StatusError(409, 'Conflict', `Operation cannot be fulfilled on ${qualifiedResource(group, resource)} "${name}": ${why}`, groupDetails(group, resource, name));
}

export function badRequest(message: string): StatusError {
  return new StatusError(400, 'BadRequest', message);
}

export function internalError(message: string): StatusError {
  return new StatusError(500, 'InternalError', `Internal error occurred: ${message}`, { causes: [{ reason: '', message, field: '' }] });
}

export function forbidden(group: string, resource: string, name: string, why: string, causes?: StatusCause[]): StatusError {
  return new StatusError(403, 'Forbidden', `${qualifiedResource(group, resource)} "${name}" is forbidden: ${why}`, { ...groupDetails(group, resource, name), ...(causes ? { causes } : {}) });
}

/** A plain Go error reaching responsewriters.ErrorNegotiated: 500 with the text and no reason. */
export function plainError(message: string): StatusError {
  return new StatusError(500, '', message);
}

/** errors.NewInvalid for request options (CreateOptions, PatchOptions...): `Kind.meta.k8s.io "" is invalid`. */
export function invalidOptions(kind: string, errs: FieldError[]): StatusError {
  return invalid('meta.k8s.io', kind, '', errs);
}

export function expired(message: string): StatusError {
  return new StatusError(410, 'Expired', message);
}

export function methodNotSupported(group: string, resource: string, action: string): StatusError {
  return new StatusError(405, 'MethodNotAllowed', `${action} is not supported on resources of kind "${qualifiedResource(group, resource)}"`, { group, kind: resource });
}

// ---- field errors ----

export interface FieldError {
  type: 'FieldValueInvalid' | 'FieldValueRequired' | 'FieldValueNotSupported' | 'FieldValueForbidden' | 'FieldValueDuplicate' | 'FieldValueTooLong' | 'FieldValueTypeInvalid';
  field: string;
  body: string;
}

/** field.Error.ErrorBody (apimachinery 0.34): strings quoted, numbers and bools bare, anything else as JSON. */
export function fmtValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'object') return JSON.stringify(value);
  return String(value);
}

export const fieldErr = {
  invalid: (field: string, value: unknown, detail: string): FieldError => ({ type: 'FieldValueInvalid', field, body: `Invalid value: ${fmtValue(value)}${detail ? `: ${detail}` : ''}` }),
  required: (field: string, detail = ''): FieldError => ({ type: 'FieldValueRequired', field, body: `Required value${detail ? `: ${detail}` : ''}` }),
  notSupported: (field: string, value: unknown, supported: string[]): FieldError => ({
    type: 'FieldValueNotSupported',
    field,
    body: `Unsupported value: ${fmtValue(value)}${supported.length ? `: supported values: ${supported.map((s) => JSON.stringify(s)).join(', ')}` : ''}`,
  }),
  forbidden: (field: string, detail: string): FieldError => ({ type: 'FieldValueForbidden', field, body: `Forbidden: ${detail}` }),
  duplicate: (field: string, value: unknown): FieldError => ({ type: 'FieldValueDuplicate', field, body: `Duplicate value: ${fmtValue(value)}` }),
  typeInvalid: (field: string, value: unknown, detail: string): FieldError => ({ type: 'FieldValueTypeInvalid', field, body: `Invalid value: ${fmtValue(value)}: ${detail}` }),
};

/** errors.NewInvalid: `Kind "name" is invalid: <one error>` or `... is invalid: [e1, e2]`. */
export function invalid(group: string, kind: string, name: string, errs: FieldError[]): StatusError {
  const rendered = errs.map((e) => (e.field ? `${e.field}: ${e.body}` : e.body));
  const agg = rendered.length === 1 ? rendered[0]! : `[${rendered.join(', ')}]`;
  const details: StatusDetails = { ...(name ? { name } : {}), kind, causes: errs.map((e) => ({ reason: e.type, message: e.body, field: e.field })) };
  if (group) details.group = group;
  return new StatusError(422, 'Invalid', `${kind}${group ? `.${group}` : ''} "${name}" is invalid: ${agg}`, details);
}
