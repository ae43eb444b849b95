// CEL as kube-apiserver evaluates it, with @bufbuild/cel: matchConditions of webhooks
// (apiserver/pkg/admission/plugin/webhook/matchconditions/matcher.go), CRD validation rules
// (x-kubernetes-validations) and ValidatingAdmissionPolicy expressions. JSON values become CEL values
// the way kube's unstructured → CEL conversion does: objects → maps, arrays → lists, integral numbers
// → int.
//
// Besides CEL's standard library, kube-apiserver 1.34 offers its own libraries (apiserver/pkg/cel/library)
// and cel-go extensions. The double implements the subset admitlb's manifests use: the strings
// extension (replace, split, …) and the IP library (isIP, ip, ip.isCanonical, string(ip), family).
// Expressions using anything else evaluate to an error ("found no matching overload"), where
// kube-apiserver would have refused the expression when the object holding it was written.
import { celEnv, celError, celFunc, celMethod, CelScalar, isCelError, mapType, parse, plan, type CelFunc, type CelInput, type CelMap, type CelResult, type CelValue } from '@bufbuild/cel';
import { strings } from '@bufbuild/cel/ext';
import { AddressError, formatIP, parseIP, type IP } from '../net/address.ts';

export function toCel(v: unknown): CelInput {
  if (Array.isArray(v)) return v.map(toCel) as CelInput;
  if (v !== null && typeof v === 'object') return new Map(Object.entries(v).map(([k, x]) => [k, toCel(x)])) as CelInput;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  return v as CelInput;
}

// ---- the Kubernetes IP library (apiserver/pkg/cel/library/ip.go) ----
// @bufbuild/cel has no opaque types: an IP value is a map holding its canonical text under a key no
// JSON object of the API can carry (map keys of Kubernetes objects are never empty-prefixed like this).
const IP_KEY = '\u0000kubernetes.net.IP';
const IP_TYPE = mapType(CelScalar.STRING, CelScalar.STRING);

class CelIPError extends Error {}

/** netip.ParseAddr plus the library's refusals: zones and IPv4-mapped IPv6 addresses. */
function parseIPAddr(raw: string): IP {
  if (raw.includes('%')) throw new CelIPError(`IP address "${raw}" with zone value is not allowed`);
  let ip: IP;
  try {
    if (raw !== raw.trim()) throw new AddressError('surrounding white space');
    ip = parseIP(raw);
  } catch (err) {
    throw new CelIPError(`IP Address "${raw}" parse error during conversion from string: ${(err as Error).message}`);
  }
  if (ip.family === 6 && ip.value >> 32n === 0xffffn) throw new CelIPError(`IPv4-mapped IPv6 address "${raw}" is not allowed`);
  return ip;
}

function ipValue(m: CelMap): IP {
  const text = m.get(IP_KEY);
  if (typeof text !== 'string') throw new CelIPError('found no matching overload for IP function');
  return parseIP(text);
}

const ipLibrary: CelFunc[] = [
  celFunc('isIP', [CelScalar.STRING], CelScalar.BOOL, (s) => {
    try {
      parseIPAddr(s);
      return true;
    } catch {
      return false;
    }
  }),
  celFunc('ip', [CelScalar.STRING], IP_TYPE, (s) => new Map([[IP_KEY, formatIP(parseIPAddr(s))]])),
  celFunc('ip.isCanonical', [CelScalar.STRING], CelScalar.BOOL, (s) => formatIP(parseIPAddr(s)) === s),
  celFunc('string', [IP_TYPE], CelScalar.STRING, (m) => formatIP(ipValue(m))),
  celMethod('family', IP_TYPE, [], CelScalar.INT, function () {
    return BigInt(ipValue(this).family);
  }),
];

export const KUBE_CEL_FUNCS: CelFunc[] = [...strings, ...ipLibrary];

export type CelOutcome = { value: CelValue } | { error: string };

/** Variables (plain JSON) as CEL values; convert once, evaluate many expressions. */
export function celBindings(vars: Record<string, unknown>): Record<string, CelInput> {
  const bindings: Record<string, CelInput> = {};
  for (const [k, v] of Object.entries(vars)) bindings[k] = toCel(v);
  return bindings;
}

const MAX_PROGRAMS = 512;

// Building the environment and parsing cost milliseconds; the same few expressions (manifests,
// CRD rules) run on every request, so their plans are kept (bounded: expressions come from stored
// objects, which clients may vary at will).
// `matches` with JavaScript's RegExp (u flag), compiled once per pattern, as the double's CRD `pattern`
// checks do: @bufbuild/cel's own RE2 port recompiles on every call (about 0.5 ms). RE2-only syntax
// fails to compile here (an evaluation error) where kube-apiserver would accept it.
const regexps = new Map<string, RegExp>();
const re2 = {
  compile(pattern: string) {
    let r = regexps.get(pattern);
    if (!r) {
      r = new RegExp(pattern, 'u');
      if (regexps.size >= MAX_PROGRAMS) regexps.delete(regexps.keys().next().value!);
      regexps.set(pattern, r);
    }
    const compiled = r;
    return { test: (text: string) => compiled.test(text) };
  },
};
const ENV = celEnv({ funcs: KUBE_CEL_FUNCS, re2 });
type Program = (bindings: Record<string, CelInput>) => CelResult;
const programs = new Map<string, Program>();

function program(expression: string): Program {
  let p = programs.get(expression);
  if (!p) {
    try {
      p = plan(ENV, parse(expression)) as Program;
    } catch (e) {
      const err = celError(e);
      p = () => err;
    }
    if (programs.size >= MAX_PROGRAMS) programs.delete(programs.keys().next().value!);
    programs.set(expression, p);
  }
  return p;
}

/** Evaluates one expression. Never throws. */
export function evaluate(expression: string, bindings: Record<string, CelInput>): CelOutcome {
  try {
    const result = program(expression)(bindings);
    if (isCelError(result)) return { error: result.message };
    return { value: result };
  } catch (err) {
    // A library function's refusal (ip('x')) is an evaluation error, as in cel-go.
    return { error: (err as Error).message };
  }
}

// ---- webhook matchConditions ----

export interface MatchCondition {
  name: string;
  expression: string;
}

export type MatchResult = { matches: true } | { matches: false; error?: string };

/** All conditions true → match; any false → no match (even if others error); otherwise errors are reported. */
export function evaluateMatchConditions(conditions: MatchCondition[], vars: { object: unknown; oldObject: unknown; request: unknown; [k: string]: unknown }): MatchResult {
  const bindings = celBindings(vars);
  const errors: string[] = [];
  for (const c of conditions) {
    const result = evaluate(c.expression, bindings);
    if ('error' in result) {
      errors.push(`expression '${c.name}' resulted in error: ${result.error}`);
      continue;
    }
    if (typeof result.value !== 'boolean') {
      errors.push(`expression '${c.name}' resulted in error: no such overload`);
      continue;
    }
    if (!result.value) return { matches: false };
  }
  if (errors.length) return { matches: false, error: errors.join('; ') };
  return { matches: true };
}
