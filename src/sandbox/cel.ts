// matchConditions evaluation (apiserver/pkg/admission/plugin/webhook/matchconditions/matcher.go) with
// @bufbuild/cel. JSON values become CEL values the way kube's unstructured → CEL conversion does:
// objects → maps, arrays → lists, integral numbers → int.
import { isCelError, run, type CelInput } from '@bufbuild/cel';

function toCel(v: unknown): CelInput {
  if (Array.isArray(v)) return v.map(toCel) as CelInput;
  if (v !== null && typeof v === 'object') return new Map(Object.entries(v).map(([k, x]) => [k, toCel(x)])) as CelInput;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  return v as CelInput;
}

export interface MatchCondition {
  name: string;
  expression: string;
}

export type MatchResult = { matches: true } | { matches: false; error?: string };

/** All conditions true → match; any false → no match (even if others error); otherwise errors are reported. */
export function evaluateMatchConditions(conditions: MatchCondition[], vars: { object: unknown; oldObject: unknown; request: unknown }): MatchResult {
  const bindings: Record<string, CelInput> = {
    object: toCel(vars.object),
    oldObject: toCel(vars.oldObject),
    request: toCel(vars.request),
  };
  const errors: string[] = [];
  for (const c of conditions) {
    const result = run(c.expression, bindings);
    if (isCelError(result)) {
      errors.push(`expression '${c.name}' resulted in error: ${result.message}`);
      continue;
    }
    if (typeof result !== 'boolean') {
      errors.push(`expression '${c.name}' resulted in error: no such overload`);
      continue;
    }
    if (!result) return { matches: false };
  }
  if (errors.length) return { matches: false, error: errors.join('; ') };
  return { matches: true };
}
