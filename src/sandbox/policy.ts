// ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1), evaluated in-process like
// k8s.io/apiserver/pkg/admission/plugin/policy/validating: after the mutating webhooks and before the
// validating webhooks (the admission plugin order of kube-apiserver). A policy applies through each
// of its bindings; matchConstraints and the binding's matchResources select the request,
// matchConditions narrow it, variables are computed, then every validation runs. Denials from all
// policies are collected and the first is reported (dispatcher.go):
//   <resource> "<name>" is forbidden: ValidatingAdmissionPolicy '<policy>' with binding '<binding>' denied request: <message>
// with the validation's reason (default Invalid) and its code (Invalid 422, Forbidden 403,
// Unauthorized 401, RequestEntityTooLarge 413).
//
// Not implemented: paramKind/paramRef (a binding of a policy with paramKind is a configuration error,
// handled by the failurePolicy), auditAnnotations (there is no audit log), the Audit action, the
// `authorizer` variable, type checking (status.typeChecking), matchPolicy Equivalent across versions.
import { celBindings, evaluate, evaluateMatchConditions } from './cel.ts';
import { StatusError, fieldErr, qualifiedResource, type FieldError } from './errors.ts';
import { ruleMatches } from './rules.ts';
import { matchLabelSelectorObject } from './selectors.ts';
import type { AdmissionAttributes } from './admission.ts';
import type { KubeObject } from './store.ts';
import type { CelInput } from '@bufbuild/cel';

export interface PolicyEnv {
  /** stored ValidatingAdmissionPolicies and their bindings, read at admission time (none if absent) */
  listPolicies?(): KubeObject[];
  listPolicyBindings?(): KubeObject[];
  getNamespace(name: string): KubeObject | undefined;
}

const REASON_CODES: Record<string, number> = { Forbidden: 403, Unauthorized: 401, RequestEntityTooLarge: 413, Invalid: 422 };

/** admissionregistration/v1 defaults (SetDefaults_ValidatingAdmissionPolicy / ...Binding). */
export function defaultPolicy(obj: KubeObject, binding: boolean): void {
  const spec = (obj.spec ??= {});
  const defaultMatch = (m: KubeObject | undefined) => {
    if (!m) return;
    m.matchPolicy ??= 'Equivalent';
    m.namespaceSelector ??= {};
    m.objectSelector ??= {};
    for (const r of [...(m.resourceRules ?? []), ...(m.excludeResourceRules ?? [])] as KubeObject[]) r.scope ??= '*';
  };
  if (binding) defaultMatch(spec.matchResources);
  else {
    spec.failurePolicy ??= 'Fail';
    defaultMatch(spec.matchConstraints);
  }
}

/** The few structural checks kube's validation makes that a hand-written manifest could miss. */
export function validatePolicy(obj: KubeObject, binding: boolean): FieldError[] {
  const spec = obj.spec ?? {};
  const errs: FieldError[] = [];
  if (binding) {
    if (!spec.policyName) errs.push(fieldErr.required('spec.policyName'));
    if (!Array.isArray(spec.validationActions) || spec.validationActions.length === 0) errs.push(fieldErr.required('spec.validationActions', 'at least one validation action is required'));
  } else {
    if (!spec.matchConstraints?.resourceRules?.length) errs.push(fieldErr.required('spec.matchConstraints.resourceRules'));
    if (!['Fail', 'Ignore'].includes(spec.failurePolicy)) errs.push(fieldErr.notSupported('spec.failurePolicy', spec.failurePolicy, ['Fail', 'Ignore']));
    if (!spec.validations?.length && !spec.auditAnnotations?.length) errs.push(fieldErr.required('spec.validations', 'validations or auditAnnotations must contain at least one item'));
    for (const [i, v] of ((spec.validations ?? []) as KubeObject[]).entries()) {
      if (!v.expression) errs.push(fieldErr.required(`spec.validations[${i}].expression`));
      if (v.reason !== undefined && !(v.reason in REASON_CODES)) errs.push(fieldErr.notSupported(`spec.validations[${i}].reason`, v.reason, ['Forbidden', 'Invalid', 'RequestEntityTooLarge', 'Unauthorized']));
    }
  }
  return errs;
}

const emptySelector = (s: KubeObject | undefined) => !s || (!s.matchLabels && !(s.matchExpressions?.length > 0));

/** matching/matching.go: resource rules, exclusions, namespace and object selectors. */
function resourcesMatch(m: KubeObject | undefined, a: AdmissionAttributes, env: PolicyEnv, required: boolean): boolean {
  if (!m) return !required;
  const rules = (m.resourceRules ?? []) as KubeObject[];
  if (rules.length && !rules.some((r) => ruleMatches(r, a))) return false;
  if (!rules.length && required) return false;
  if (((m.excludeResourceRules ?? []) as KubeObject[]).some((r) => ruleMatches(r, a))) return false;
  if (!emptySelector(m.namespaceSelector) && (a.def.namespaced || (a.def.group === '' && a.def.resource === 'namespaces'))) {
    const labels = a.def.resource === 'namespaces' && a.def.group === '' ? (a.object ?? a.oldObject)?.metadata?.labels : env.getNamespace(a.namespace)?.metadata?.labels;
    if (!matchLabelSelectorObject(m.namespaceSelector, labels)) return false;
  }
  if (!emptySelector(m.objectSelector)) {
    const one = (o: KubeObject | null) => (o ? matchLabelSelectorObject(m.objectSelector, o.metadata?.labels) : false);
    if (!one(a.object) && !one(a.oldObject)) return false;
  }
  return true;
}

/** Policy and binding objects are exempt, like webhook configurations (IsExemptAdmissionConfigurationResource). */
function isExempt(a: AdmissionAttributes): boolean {
  return a.def.group === 'admissionregistration.k8s.io';
}

interface Decision {
  policy: string;
  binding: string;
  message: string;
  reason: string;
}

/** The request as CEL sees it (`request`): the AdmissionRequest of the webhooks, without uid. */
export type RequestView = KubeObject;

function decide(policy: KubeObject, a: AdmissionAttributes, request: RequestView, env: PolicyEnv): { message: string; reason: string }[] {
  const spec = policy.spec ?? {};
  const onError = (message: string) => (spec.failurePolicy === 'Ignore' ? [] : [{ message, reason: 'Invalid' }]);
  if (spec.paramKind) return onError(`the API double does not implement paramKind (policy ${policy.metadata.name})`);
  const namespaceObject = a.namespace ? (env.getNamespace(a.namespace) ?? null) : null;
  const vars = { object: a.object, oldObject: a.oldObject, request, params: null, namespaceObject };
  if (spec.matchConditions?.length) {
    const m = evaluateMatchConditions(spec.matchConditions, vars);
    if (!m.matches) return m.error ? onError(m.error) : [];
  }
  const bindings: Record<string, CelInput> = celBindings(vars);
  const variables = new Map<string, CelInput>();
  bindings.variables = variables as unknown as CelInput;
  for (const v of (spec.variables ?? []) as KubeObject[]) {
    const out = evaluate(v.expression, bindings);
    // A failed variable is left out: an expression that reads it fails with "no such key".
    if (!('error' in out)) variables.set(v.name, out.value as CelInput);
  }
  const denials: { message: string; reason: string }[] = [];
  for (const v of (spec.validations ?? []) as KubeObject[]) {
    const out = evaluate(v.expression, bindings);
    if ('error' in out) {
      denials.push(...onError(out.error));
      continue;
    }
    if (out.value === true) continue;
    let message = '';
    if (v.messageExpression) {
      const m = evaluate(v.messageExpression, bindings);
      if (!('error' in m) && typeof m.value === 'string' && !m.value.includes('\n')) message = m.value.trim();
    }
    if (!message && v.message) message = String(v.message).trim();
    if (!message) message = `failed expression: ${String(v.expression).trim()}`;
    denials.push({ message, reason: v.reason ?? 'Invalid' });
  }
  return denials;
}

/**
 * Runs every ValidatingAdmissionPolicy bound to the request. Throws the first denial (actions Deny);
 * returns the warnings of Warn bindings.
 */
export function runPolicies(a: AdmissionAttributes, request: RequestView, env: PolicyEnv): { warnings: string[] } {
  const warnings: string[] = [];
  if (isExempt(a)) return { warnings };
  const policies = env.listPolicies?.() ?? [];
  if (!policies.length) return { warnings };
  const bindings = env.listPolicyBindings?.() ?? [];
  const denied: Decision[] = [];
  for (const policy of policies) {
    if (!resourcesMatch(policy.spec?.matchConstraints, a, env, true)) continue;
    for (const binding of bindings) {
      if (binding.spec?.policyName !== policy.metadata.name) continue;
      if (!resourcesMatch(binding.spec?.matchResources, a, env, false)) continue;
      const actions: string[] = binding.spec?.validationActions ?? [];
      for (const d of decide(policy, a, request, env)) {
        if (actions.includes('Deny')) denied.push({ policy: policy.metadata.name, binding: binding.metadata.name, ...d });
        if (actions.includes('Warn')) warnings.push(`Validation failed for ValidatingAdmissionPolicy '${policy.metadata.name}' with binding '${binding.metadata.name}': ${d.message}`);
      }
    }
  }
  const first = denied[0];
  if (first) {
    const message = `ValidatingAdmissionPolicy '${first.policy}' with binding '${first.binding}' denied request: ${first.message}`;
    // admission.NewForbidden (extractResourceName): the resource without subresource; the object's name
    // (or generateName) when the request has none.
    const name = a.name || a.object?.metadata?.name || a.object?.metadata?.generateName || 'Unknown';
    const details: KubeObject = { name, kind: a.def.resource, causes: [{ message }] };
    if (a.def.group) details.group = a.def.group;
    throw new StatusError(REASON_CODES[first.reason] ?? 422, first.reason, `${qualifiedResource(a.def.group, a.def.resource)} "${name}" is forbidden: ${message}`, details as never);
  }
  return { warnings };
}
