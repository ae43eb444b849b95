// Per-kind REST strategy hooks (defaulting, PrepareForCreate/Update, Validate/ValidateUpdate), mirroring
// pkg/registry/<group>/<resource>/strategy.go for the kinds the double serves.
import { defaultWebhookConfiguration } from './admission.ts';
import { defaultPolicy, validatePolicy } from './policy.ts';
import { checkBuiltinShape } from './builtin-schemas.ts';
import { applyDefaults, crdStatusFor, defaultCrd, prune, validateAgainstSchema, validateCelRules, validateCrd } from './crd.ts';
import { badRequest, fieldErr, type FieldError } from './errors.ts';
import type { ResourceDef } from './resources.ts';
import { defaultService, dropTypeDependentFields, validateService, validateServiceStatus, validateServiceUpdate } from './services.ts';
import type { KubeObject } from './store.ts';

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const dns1123LabelMsg = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const dns1123SubdomainMsg = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

/** Decoding-time defaulting (SetDefaults_*), and pruning+schema defaults for custom resources. Returns unknown-field paths. */
export function defaultObject(def: ResourceDef, obj: KubeObject): string[] {
  const unknown: string[] = [];
  obj.metadata ??= {};
  // Go's decoder refuses a non-string where map[string]string is declared (a YAML `yes` or `true`
  // label value, say) before anything else runs: a 400, not a validation error.
  requireStringMap(obj.metadata.labels, 'ObjectMeta.metadata.labels');
  requireStringMap(obj.metadata.annotations, 'ObjectMeta.metadata.annotations');
  if (def.storageGr.endsWith('webhookconfigurations')) {
    for (const w of (Array.isArray(obj.webhooks) ? obj.webhooks : []) as KubeObject[]) {
      requireStringMap(w?.objectSelector?.matchLabels, 'LabelSelector.webhooks.objectSelector.matchLabels');
      requireStringMap(w?.namespaceSelector?.matchLabels, 'LabelSelector.webhooks.namespaceSelector.matchLabels');
    }
  }
  if (!def.crd) unknown.push(...checkBuiltinShape(def.storageGr, obj));
  switch (def.storageGr) {
    case '/services':
      defaultService(obj);
      break;
    case '/namespaces':
      // SetDefaults_Namespace: the immutable name label (used by namespaceSelectors)
      if (obj.metadata.name) obj.metadata.labels = { ...(obj.metadata.labels ?? {}), 'kubernetes.io/metadata.name': obj.metadata.name };
      break;
    case '/events':
      // Go's encoder writes the struct-typed fields even when empty: a zero Time is null, a struct {}
      if (def.group === 'events.k8s.io') {
        obj.deprecatedSource ??= {};
        if (obj.deprecatedFirstTimestamp === undefined) obj.deprecatedFirstTimestamp = null;
        if (obj.deprecatedLastTimestamp === undefined) obj.deprecatedLastTimestamp = null;
      } else {
        obj.source ??= {};
        if (obj.firstTimestamp === undefined) obj.firstTimestamp = null;
        if (obj.lastTimestamp === undefined) obj.lastTimestamp = null;
        if (obj.eventTime === undefined) obj.eventTime = null;
      }
      break;
    case '/secrets':
      obj.type ||= 'Opaque';
      if (obj.stringData) {
        obj.data ??= {};
        for (const [k, v] of Object.entries(obj.stringData as Record<string, string>)) obj.data[k] = Buffer.from(v).toString('base64');
        delete obj.stringData;
      }
      break;
    case 'apps/deployments':
      obj.spec ??= {};
      obj.spec.replicas ??= 1;
      obj.spec.revisionHistoryLimit ??= 10;
      obj.spec.progressDeadlineSeconds ??= 600;
      obj.spec.strategy ??= {};
      obj.spec.strategy.type ||= 'RollingUpdate';
      if (obj.spec.strategy.type === 'RollingUpdate') obj.spec.strategy.rollingUpdate = { maxUnavailable: '25%', maxSurge: '25%', ...(obj.spec.strategy.rollingUpdate ?? {}) };
      break;
    case 'admissionregistration.k8s.io/mutatingwebhookconfigurations':
      defaultWebhookConfiguration(obj, true);
      break;
    case 'admissionregistration.k8s.io/validatingwebhookconfigurations':
      defaultWebhookConfiguration(obj, false);
      break;
    case 'apiextensions.k8s.io/customresourcedefinitions':
      defaultCrd(obj);
      break;
    case 'admissionregistration.k8s.io/validatingadmissionpolicies':
      defaultPolicy(obj, false);
      break;
    case 'admissionregistration.k8s.io/validatingadmissionpolicybindings':
      defaultPolicy(obj, true);
      break;
  }
  if (def.crd?.schema) {
    prune(obj, def.crd.schema, '', unknown, true);
    applyDefaults(obj, def.crd.schema);
  }
  return unknown;
}

/** rest.BeforeCreate's strategy.PrepareForCreate. */
export function prepareForCreate(def: ResourceDef, obj: KubeObject, now: string): void {
  if (def.tracksGeneration) obj.metadata.generation = 1;
  switch (def.storageGr) {
    case '/services':
      obj.status = { loadBalancer: {} };
      return;
    case '/pods':
      // podStrategy.PrepareForCreate: a new Pod is Pending until a kubelet reports on it.
      obj.status = { phase: 'Pending' };
      return;
    case '/namespaces':
      obj.spec = { finalizers: ['kubernetes'] };
      obj.status = { phase: 'Active' };
      return;
    case 'apiextensions.k8s.io/customresourcedefinitions':
      obj.status = crdStatusFor(obj, now);
      return;
  }
  if (def.statusSubresource && def.storageGr !== '/nodes') {
    if (def.crd) delete obj.status;
    else obj.status = {};
  }
}

function specLike(def: ResourceDef, obj: KubeObject): string {
  if (def.crd) {
    const { metadata: _m, status: _s, ...rest } = obj;
    return JSON.stringify(rest);
  }
  if (def.storageGr === 'admissionregistration.k8s.io/mutatingwebhookconfigurations' || def.storageGr === 'admissionregistration.k8s.io/validatingwebhookconfigurations') return JSON.stringify(obj.webhooks ?? []);
  return JSON.stringify(obj.spec ?? null);
}

/** rest.BeforeUpdate's strategy.PrepareForUpdate (main resource or the status subresource). */
export function prepareForUpdate(def: ResourceDef, obj: KubeObject, old: KubeObject, subresource: string, now: string): void {
  if (subresource === 'status') {
    // registry/rest: ResetObjectMetaForStatus + statusStrategy keeps the old spec.
    const status = obj.status;
    for (const k of Object.keys(obj)) if (k !== 'metadata' && k !== 'status' && k !== 'apiVersion' && k !== 'kind') delete obj[k];
    for (const [k, v] of Object.entries(old)) if (k !== 'metadata' && k !== 'status') obj[k] = JSON.parse(JSON.stringify(v));
    obj.status = status;
    for (const f of ['labels', 'annotations', 'finalizers', 'ownerReferences', 'deletionTimestamp', 'generation']) {
      if (old.metadata[f] === undefined) delete obj.metadata[f];
      else obj.metadata[f] = old.metadata[f];
    }
    if (def.storageGr === '/services') defaultService(obj);
    return;
  }
  if (def.statusSubresource || def.storageGr === '/namespaces') {
    if (old.status === undefined) delete obj.status;
    else obj.status = JSON.parse(JSON.stringify(old.status));
  }
  if (def.storageGr === '/namespaces') obj.spec = JSON.parse(JSON.stringify(old.spec ?? {}));
  if (def.storageGr === '/services') dropTypeDependentFields(obj, old);
  if (def.storageGr === 'apiextensions.k8s.io/customresourcedefinitions') obj.status = crdStatusFor(obj, old.status?.conditions?.[0]?.lastTransitionTime ?? now);
  if (def.tracksGeneration) {
    obj.metadata.generation = old.metadata.generation ?? 1;
    if (specLike(def, obj) !== specLike(def, old)) obj.metadata.generation += 1;
  }
}

export function validateMetadata(def: ResourceDef, obj: KubeObject): FieldError[] {
  const errs: FieldError[] = [];
  const name: string | undefined = obj.metadata?.name;
  if (!name) {
    errs.push(fieldErr.required('metadata.name', 'name or generateName is required'));
    return errs;
  }
  if (def.storageGr === '/namespaces') {
    if (!dns1123Label.test(name) || name.length > 63) errs.push(fieldErr.invalid('metadata.name', name, dns1123LabelMsg));
  } else if (def.storageGr !== '/services' && (!dns1123Subdomain.test(name) || name.length > 253)) {
    errs.push(fieldErr.invalid('metadata.name', name, dns1123SubdomainMsg));
  }
  for (const [k, v] of Object.entries((obj.metadata.labels ?? {}) as Record<string, unknown>)) {
    if (typeof v !== 'string' || v.length > 63 || !/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(v)) {
      errs.push(fieldErr.invalid(`metadata.labels`, v, "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"));
    }
    if (!/^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(k)) {
      errs.push(fieldErr.invalid('metadata.labels', k, 'name part must consist of alphanumeric characters'));
    }
  }
  return errs;
}

function validateWebhookConfig(obj: KubeObject, mutating: boolean): FieldError[] {
  const errs: FieldError[] = [];
  const names = new Set<string>();
  for (const [i, w] of ((obj.webhooks ?? []) as KubeObject[]).entries()) {
    const f = `webhooks[${i}]`;
    if (!w.name) errs.push(fieldErr.required(`${f}.name`));
    else if (names.has(w.name)) errs.push(fieldErr.duplicate(`${f}.name`, w.name));
    else if (!w.name.includes('.')) errs.push(fieldErr.invalid(`${f}.name`, w.name, 'should be a domain with at least three segments separated by dots'));
    names.add(w.name);
    if (!w.sideEffects) errs.push(fieldErr.required(`${f}.sideEffects`, 'must specify one of None, NoneOnDryRun'));
    else if (!['None', 'NoneOnDryRun'].includes(w.sideEffects)) errs.push(fieldErr.notSupported(`${f}.sideEffects`, w.sideEffects, ['None', 'NoneOnDryRun']));
    if (!w.admissionReviewVersions?.length) errs.push(fieldErr.required(`${f}.admissionReviewVersions`, 'must specify one of v1, v1beta1'));
    if (!w.clientConfig?.url && !w.clientConfig?.service) errs.push(fieldErr.required(`${f}.clientConfig`, 'exactly one of url or service is required'));
    if (typeof w.timeoutSeconds === 'number' && (w.timeoutSeconds < 1 || w.timeoutSeconds > 30)) errs.push(fieldErr.invalid(`${f}.timeoutSeconds`, w.timeoutSeconds, 'the timeout value must be between 1 and 30 seconds'));
    if (!['Fail', 'Ignore'].includes(w.failurePolicy)) errs.push(fieldErr.notSupported(`${f}.failurePolicy`, w.failurePolicy, ['Fail', 'Ignore']));
    if (mutating && !['Never', 'IfNeeded'].includes(w.reinvocationPolicy)) errs.push(fieldErr.notSupported(`${f}.reinvocationPolicy`, w.reinvocationPolicy, ['IfNeeded', 'Never']));
    if ((w.matchConditions ?? []).length > 64) errs.push({ type: 'FieldValueTooLong', field: `${f}.matchConditions`, body: 'Too many: must have at most 64 items' });
  }
  return errs;
}

export function validateObject(def: ResourceDef, obj: KubeObject, old?: KubeObject): FieldError[] {
  const errs = validateMetadata(def, obj);
  switch (def.storageGr) {
    case '/services':
      errs.push(...validateService(obj));
      break;
    case 'apiextensions.k8s.io/customresourcedefinitions':
      errs.push(...validateCrd(obj));
      break;
    case 'admissionregistration.k8s.io/mutatingwebhookconfigurations':
      errs.push(...validateWebhookConfig(obj, true));
      break;
    case 'admissionregistration.k8s.io/validatingwebhookconfigurations':
      errs.push(...validateWebhookConfig(obj, false));
      break;
    case 'admissionregistration.k8s.io/validatingadmissionpolicies':
    case 'admissionregistration.k8s.io/validatingadmissionpolicybindings':
      errs.push(...validatePolicy(obj, def.resource.endsWith('bindings')));
      break;
  }
  if (def.crd?.schema) {
    validateAgainstSchema(obj, def.crd.schema, '', errs, true);
    validateCelRules(obj, old, def.crd.schema, errs);
  }
  return errs;
}

export function validateObjectUpdate(def: ResourceDef, obj: KubeObject, old: KubeObject, subresource = ''): FieldError[] {
  if (def.storageGr === '/services') return [...validateMetadata(def, obj), ...(subresource === 'status' ? validateServiceStatus(obj) : validateServiceUpdate(obj, old))];
  const errs = validateObject(def, obj, old);
  if (def.storageGr === 'apiextensions.k8s.io/customresourcedefinitions') {
    if (obj.spec?.scope !== old.spec?.scope) errs.push(fieldErr.invalid('spec.scope', obj.spec?.scope, 'field is immutable'));
  }
  return errs;
}

function requireStringMap(value: unknown, field: string): void {
  if (value === undefined || value === null) return;
  if (typeof value !== 'object' || Array.isArray(value)) throw badRequest(`json: cannot unmarshal ${goType(value)} into Go struct field ${field} of type map[string]string`);
  for (const v of Object.values(value as Record<string, unknown>)) {
    if (typeof v !== 'string') throw badRequest(`json: cannot unmarshal ${goType(v)} into Go struct field ${field} of type string`);
  }
}

function goType(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (v === null) return 'null';
  return typeof v === 'boolean' ? 'bool' : typeof v === 'number' ? 'number' : typeof v;
}
