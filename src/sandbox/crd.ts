// CustomResourceDefinitions: turning a CRD into served resources, and the structural-schema pipeline for
// custom resources: pruning (apiextensions-apiserver/pkg/apiserver/schema/pruning), defaulting
// (schema/defaulting), OpenAPI validation (kube-openapi validate, messages like "in body must be of type")
// and CEL validation rules (x-kubernetes-validations).
import { celBindings, evaluate } from './cel.ts';
import { fieldErr, type FieldError } from './errors.ts';
import { standardVerbs, type ResourceDef } from './resources.ts';
import type { KubeObject } from './store.ts';

type Schema = KubeObject;

/** SetDefaults for CustomResourceDefinition v1 (names, conversion). */
export function defaultCrd(crd: KubeObject): void {
  const spec = (crd.spec ??= {});
  const names = (spec.names ??= {});
  if (names.kind && !names.singular) names.singular = String(names.kind).toLowerCase();
  if (names.kind && !names.listKind) names.listKind = `${names.kind}List`;
  spec.conversion ??= { strategy: 'None' };
}

export function validateCrd(crd: KubeObject): FieldError[] {
  const errs: FieldError[] = [];
  const spec = crd.spec ?? {};
  const names = spec.names ?? {};
  if (!spec.group) errs.push(fieldErr.required('spec.group'));
  if (!names.plural) errs.push(fieldErr.required('spec.names.plural'));
  if (!names.kind) errs.push(fieldErr.required('spec.names.kind'));
  if (!['Namespaced', 'Cluster'].includes(spec.scope)) errs.push(fieldErr.notSupported('spec.scope', spec.scope ?? '', ['Cluster', 'Namespaced']));
  const expected = `${names.plural}.${spec.group}`;
  if (crd.metadata?.name !== expected) errs.push(fieldErr.invalid('metadata.name', crd.metadata?.name ?? '', `must be spec.names.plural+"."+spec.group`));
  const versions = (spec.versions ?? []) as KubeObject[];
  if (versions.length === 0) errs.push(fieldErr.required('spec.versions', 'must have exactly one version marked as storage version'));
  if (versions.filter((v) => v.storage).length !== 1) errs.push(fieldErr.invalid('spec.versions', versions.map((v) => v.name), 'must have exactly one version marked as storage version'));
  versions.forEach((v, i) => {
    if (!v.schema?.openAPIV3Schema) errs.push(fieldErr.required(`spec.versions[${i}].schema.openAPIV3Schema`, 'schemas are required'));
    else if (v.schema.openAPIV3Schema.type !== 'object') errs.push(fieldErr.invalid(`spec.versions[${i}].schema.openAPIV3Schema.type`, v.schema.openAPIV3Schema.type ?? '', 'must be object at the root'));
  });
  return errs;
}

/** Status written by the apiextensions controllers (naming, establishing) immediately. */
export function crdStatusFor(crd: KubeObject, now: string): KubeObject {
  const names = crd.spec?.names ?? {};
  return {
    conditions: [
      { type: 'NamesAccepted', status: 'True', lastTransitionTime: now, reason: 'NoConflicts', message: 'no conflicts found' },
      { type: 'Established', status: 'True', lastTransitionTime: now, reason: 'InitialNamesAccepted', message: 'the initial names have been accepted' },
    ],
    acceptedNames: { ...names },
    storedVersions: ((crd.spec?.versions ?? []) as KubeObject[]).filter((v) => v.storage).map((v) => v.name),
  };
}

export function crdToResourceDefs(crd: KubeObject): ResourceDef[] {
  const spec = crd.spec;
  const names = spec.names;
  return ((spec.versions ?? []) as KubeObject[])
    .filter((v) => v.served)
    .map((v) => ({
      group: spec.group,
      version: v.name,
      resource: names.plural,
      kind: names.kind,
      singular: names.singular ?? String(names.kind).toLowerCase(),
      namespaced: spec.scope === 'Namespaced',
      shortNames: names.shortNames ?? [],
      categories: names.categories ?? [],
      subresources: v.subresources?.status !== undefined ? ['status'] : [],
      verbs: standardVerbs,
      allowCreateOnUpdate: false,
      allowUnconditionalUpdate: false,
      tracksGeneration: true,
      statusSubresource: v.subresources?.status !== undefined,
      storageGr: `${spec.group}/${names.plural}`,
      crd: {
        schema: v.schema?.openAPIV3Schema,
        printerColumns: v.additionalPrinterColumns ?? [],
        crdName: crd.metadata.name,
      },
    }));
}

// ---- structural schema ----

function isObj(v: unknown): v is KubeObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const metaKeys = new Set(['apiVersion', 'kind', 'metadata']);

/** Removes fields not declared in the schema; returns their paths (for fieldValidation=Strict/Warn). */
export function prune(obj: unknown, schema: Schema | undefined, path: string, unknown: string[], root = false): void {
  if (!schema || schema['x-kubernetes-preserve-unknown-fields'] === true && !schema.properties) return;
  if (isObj(obj)) {
    const props = schema.properties as Record<string, Schema> | undefined;
    const addl = schema.additionalProperties;
    for (const key of Object.keys(obj)) {
      if (root && metaKeys.has(key)) continue;
      const child = props?.[key] ?? (isObj(addl) ? addl : undefined);
      const p = path ? `${path}.${key}` : key;
      if (child) prune(obj[key], child, p, unknown);
      else if (addl === true || schema['x-kubernetes-preserve-unknown-fields'] === true) continue;
      else {
        unknown.push(p);
        delete obj[key];
      }
    }
  } else if (Array.isArray(obj) && schema.items) {
    obj.forEach((item, i) => prune(item, schema.items, `${path}[${i}]`, unknown));
  }
}

/** Applies `default` values for absent properties, recursively (defaulting happens after pruning). */
export function applyDefaults(obj: unknown, schema: Schema | undefined): void {
  if (!schema) return;
  if (isObj(obj)) {
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    for (const [key, child] of Object.entries(props)) {
      if (obj[key] === undefined && child.default !== undefined) obj[key] = JSON.parse(JSON.stringify(child.default));
      if (obj[key] !== undefined) applyDefaults(obj[key], child);
    }
    if (isObj(schema.additionalProperties)) for (const k of Object.keys(obj)) if (!props[k]) applyDefaults(obj[k], schema.additionalProperties);
  } else if (Array.isArray(obj) && schema.items) {
    for (const item of obj) applyDefaults(item, schema.items);
  }
}

function typeName(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** OpenAPI schema validation with kube-openapi's messages. */
export function validateAgainstSchema(obj: unknown, schema: Schema | undefined, path: string, errs: FieldError[], root = false): void {
  if (!schema) return;
  if (obj === null) {
    if (!schema.nullable && schema.type) errs.push(fieldErr.invalid(path, null, `${path} in body must be of type ${schema.type}: "null"`));
    return;
  }
  const t = typeName(obj);
  if (schema['x-kubernetes-int-or-string']) {
    if (t !== 'integer' && t !== 'string') errs.push(fieldErr.invalid(path, obj, `${path} in body must be of type integer,string: "${t}"`));
    return;
  }
  if (schema.type) {
    const ok = schema.type === t || (schema.type === 'number' && t === 'integer');
    if (!ok) {
      // kube-openapi reports the type it found as the value
      errs.push(fieldErr.typeInvalid(path, t, `${path} in body must be of type ${schema.type}: "${t}"`));
      return;
    }
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((e: unknown) => JSON.stringify(e) === JSON.stringify(obj))) {
    errs.push(fieldErr.notSupported(path, obj, schema.enum.map((e: unknown) => String(e))));
  }
  if (typeof obj === 'number') {
    if (typeof schema.minimum === 'number' && (schema.exclusiveMinimum ? obj <= schema.minimum : obj < schema.minimum)) {
      errs.push(fieldErr.invalid(path, obj, `${path} in body should be greater than ${schema.exclusiveMinimum ? '' : 'or equal to '}${schema.minimum}`));
    }
    if (typeof schema.maximum === 'number' && (schema.exclusiveMaximum ? obj >= schema.maximum : obj > schema.maximum)) {
      errs.push(fieldErr.invalid(path, obj, `${path} in body should be less than ${schema.exclusiveMaximum ? '' : 'or equal to '}${schema.maximum}`));
    }
  }
  if (typeof obj === 'string') {
    if (typeof schema.maxLength === 'number' && [...obj].length > schema.maxLength) errs.push({ type: 'FieldValueTooLong', field: path, body: `Too long: may not be more than ${schema.maxLength} bytes` });
    if (typeof schema.minLength === 'number' && [...obj].length < schema.minLength) errs.push(fieldErr.invalid(path, obj, `${path} in body should be at least ${schema.minLength} chars long`));
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(obj)) errs.push(fieldErr.invalid(path, obj, `${path} in body should match '${schema.pattern}'`));
  }
  if (Array.isArray(obj)) {
    if (typeof schema.maxItems === 'number' && obj.length > schema.maxItems) errs.push({ type: 'FieldValueTooLong', field: path, body: `Too many: ${obj.length}: must have at most ${schema.maxItems} items` });
    if (typeof schema.minItems === 'number' && obj.length < schema.minItems) errs.push(fieldErr.invalid(path, obj.length, `${path} in body should have at least ${schema.minItems} items`));
    obj.forEach((item, i) => validateAgainstSchema(item, schema.items, `${path}[${i}]`, errs));
  }
  if (isObj(obj)) {
    for (const req of (schema.required ?? []) as string[]) {
      if (obj[req] === undefined) errs.push(fieldErr.required(path ? `${path}.${req}` : req));
    }
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    for (const [k, v] of Object.entries(obj)) {
      if (root && metaKeys.has(k)) continue;
      const child = props[k] ?? (isObj(schema.additionalProperties) ? schema.additionalProperties : undefined);
      if (child) validateAgainstSchema(v, child, path ? `${path}.${k}` : k, errs);
    }
  }
}

// ---- x-kubernetes-validations (apiextensions-apiserver/pkg/apiserver/schema/cel/validation.go) ----

/** hasBlockingErr (registry/customresource/strategy.go): CEL rules are skipped after these. */
const BLOCKING: ReadonlySet<FieldError['type']> = new Set(['FieldValueNotSupported', 'FieldValueRequired', 'FieldValueTooLong', 'FieldValueTypeInvalid']);

interface ValidationRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

const usesOldSelf = (rule: string) => /\boldSelf\b/.test(rule);
const ruleText = (r: ValidationRule) => (r.message?.trim() || r.rule.trim());
const joinPath = (base: string, child: string) => (base ? `${base}.${child}` : child);

function ruleError(path: string, type: string, detail: string, reason: ValidationRule['reason']): FieldError {
  switch (reason) {
    case 'FieldValueForbidden':
      return fieldErr.forbidden(path, detail);
    case 'FieldValueRequired':
      return fieldErr.required(path, detail);
    case 'FieldValueDuplicate':
      return fieldErr.duplicate(path, type);
    default:
      return fieldErr.invalid(path, type, detail);
  }
}

/**
 * Evaluates the CEL rules of a custom resource after schema validation, like the customresource
 * strategy: skipped (with kube's one-line error) when schema validation found a blocking error.
 * At the root, `self.metadata` holds only name and generateName. Transition rules (those naming
 * oldSelf) run on updates only, with oldSelf correlated through object properties (not through
 * lists). Not modelled: the cost budget, validation ratcheting (an unchanged invalid value is
 * still an error here), optionalOldSelf.
 */
export function validateCelRules(obj: KubeObject, old: KubeObject | undefined, schema: Schema | undefined, errs: FieldError[]): void {
  // kube builds no CEL validator for a schema without rules, so only such a schema reports skipping.
  if (!schema || !hasRules(schema)) return;
  if (errs.some((e) => BLOCKING.has(e.type))) {
    errs.push(fieldErr.invalid('<nil>', null, 'some validation rules were not checked because the object was invalid; correct the existing errors to complete validation'));
    return;
  }
  const rootView = (o: KubeObject | undefined) => {
    if (!o) return undefined;
    const meta: KubeObject = {};
    if (o.metadata?.name !== undefined) meta.name = o.metadata.name;
    if (o.metadata?.generateName !== undefined) meta.generateName = o.metadata.generateName;
    return { ...o, metadata: meta };
  };
  walkRules(rootView(obj), rootView(old), schema, '', errs);
}

/** Whether any level of the schema carries x-kubernetes-validations. */
function hasRules(schema: unknown): boolean {
  if (Array.isArray(schema)) return schema.some(hasRules);
  if (schema === null || typeof schema !== 'object') return false;
  return Object.entries(schema).some(([k, v]) => (k === 'x-kubernetes-validations' && Array.isArray(v) && v.length > 0) || hasRules(v));
}

function walkRules(value: unknown, old: unknown, schema: Schema | undefined, path: string, errs: FieldError[]): void {
  if (!schema || value === undefined || value === null) return;
  const rules = (schema['x-kubernetes-validations'] ?? []) as ValidationRule[];
  if (rules.length) {
    const bindings = celBindings(old === undefined ? { self: value } : { self: value, oldSelf: old });
    for (const r of rules) {
      if (usesOldSelf(r.rule) && old === undefined) continue;
      const out = evaluate(r.rule, bindings);
      const at = r.fieldPath ? joinPath(path, r.fieldPath.replace(/^\./, '')) : path;
      if ('error' in out) errs.push(fieldErr.invalid(path, schema.type, `${out.error} evaluating rule: ${ruleText(r)}`));
      else if (out.value !== true) {
        let detail = r.message?.trim() || `failed rule: ${r.rule.trim()}`;
        if (r.messageExpression) {
          const m = evaluate(r.messageExpression, bindings);
          if (!('error' in m) && typeof m.value === 'string' && m.value.trim() && !m.value.includes('\n')) detail = m.value.trim();
        }
        errs.push(ruleError(at, schema.type, detail, r.reason));
      }
    }
  }
  if (isObj(value)) {
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    const oldObj = isObj(old) ? old : undefined;
    for (const [k, v] of Object.entries(value)) {
      const child = props[k] ?? (isObj(schema.additionalProperties) ? schema.additionalProperties : undefined);
      if (child) walkRules(v, oldObj?.[k], child, joinPath(path, k), errs);
    }
  } else if (Array.isArray(value) && schema.items) {
    value.forEach((item, i) => walkRules(item, undefined, schema.items, `${path}[${i}]`, errs));
  }
}
