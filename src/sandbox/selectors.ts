// Label selectors (k8s.io/apimachinery/pkg/labels/selector.go grammar) and field selectors
// (pkg/fields/selector.go) with the per-resource field sets of kube's GetAttrs functions.
import { badRequest } from './errors.ts';
import type { KubeObject } from './store.ts';

type LabelReq =
  | { op: 'exists' | 'notexists'; key: string }
  | { op: 'in' | 'notin'; key: string; values: string[] }
  | { op: '=' | '!='; key: string; value: string };

export type LabelSelector = LabelReq[];

/** Splits on commas that are not inside parentheses. */
function splitTopLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of s) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out.map((x) => x.trim()).filter((x) => x !== '');
}

export function parseLabelSelector(s: string | null | undefined): LabelSelector {
  if (!s) return [];
  const reqs: LabelReq[] = [];
  for (const part of splitTopLevel(s)) {
    let m: RegExpMatchArray | null;
    if ((m = part.match(/^([^\s!=()]+)\s+(in|notin)\s*\(([^)]*)\)$/))) {
      reqs.push({ op: m[2] as 'in' | 'notin', key: m[1]!, values: m[3]!.split(',').map((v) => v.trim()) });
    } else if ((m = part.match(/^([^\s!=()]+)\s*(==|=|!=)\s*([^\s!=(),]*)$/))) {
      reqs.push({ op: m[2] === '!=' ? '!=' : '=', key: m[1]!, value: m[3]! });
    } else if ((m = part.match(/^!\s*([^\s!=()]+)$/))) {
      reqs.push({ op: 'notexists', key: m[1]! });
    } else if ((m = part.match(/^([^\s!=()]+)$/))) {
      reqs.push({ op: 'exists', key: m[1]! });
    } else {
      throw badRequest(`unable to parse requirement: found '${part}', expected: in, notin, =, ==, !=, gt, lt`);
    }
  }
  return reqs;
}

export function matchLabels(sel: LabelSelector, labels: Record<string, string> | undefined): boolean {
  const l = labels ?? {};
  return sel.every((r) => {
    const has = Object.hasOwn(l, r.key);
    switch (r.op) {
      case 'exists':
        return has;
      case 'notexists':
        return !has;
      case '=':
        return has && l[r.key] === r.value;
      case '!=':
        return !has || l[r.key] !== r.value;
      case 'in':
        return has && r.values.includes(l[r.key]!);
      case 'notin':
        return !has || !r.values.includes(l[r.key]!);
    }
  });
}

/** metav1.LabelSelector (matchLabels + matchExpressions) as used by webhook namespaceSelector/objectSelector. */
export function matchLabelSelectorObject(sel: KubeObject | undefined | null, labels: Record<string, string> | undefined): boolean {
  if (!sel) return true;
  const reqs: LabelReq[] = [];
  for (const [k, v] of Object.entries((sel.matchLabels ?? {}) as Record<string, string>)) reqs.push({ op: '=', key: k, value: v });
  for (const e of (sel.matchExpressions ?? []) as { key: string; operator: string; values?: string[] }[]) {
    if (e.operator === 'In') reqs.push({ op: 'in', key: e.key, values: e.values ?? [] });
    else if (e.operator === 'NotIn') reqs.push({ op: 'notin', key: e.key, values: e.values ?? [] });
    else if (e.operator === 'Exists') reqs.push({ op: 'exists', key: e.key });
    else if (e.operator === 'DoesNotExist') reqs.push({ op: 'notexists', key: e.key });
  }
  return matchLabels(reqs, labels);
}

export interface FieldReq {
  key: string;
  op: '=' | '!=';
  value: string;
}

export function parseFieldSelector(s: string | null | undefined): FieldReq[] {
  if (!s) return [];
  return s
    .split(',')
    .filter((p) => p !== '')
    .map((part) => {
      const m = part.match(/^([^!=]+)(==|=|!=)(.*)$/);
      if (!m) throw badRequest(`invalid selector: '${s}'; can't understand '${part}'`);
      return { key: m[1]!, op: m[2] === '!=' ? '!=' : '=', value: m[3]! } as FieldReq;
    });
}

function get(obj: KubeObject, path: string): string {
  let cur: unknown = obj;
  for (const p of path.split('.')) cur = typeof cur === 'object' && cur !== null ? (cur as Record<string, unknown>)[p] : undefined;
  return cur === undefined || cur === null ? '' : String(cur);
}

/** Field sets per resource: pkg/registry/<resource>/strategy.go GetAttrs / SelectableFields. */
const fieldSets: Record<string, string[]> = {
  '/services': ['spec.type', 'spec.clusterIP'],
  '/namespaces': ['status.phase'],
  '/events': [
    'involvedObject.kind',
    'involvedObject.namespace',
    'involvedObject.name',
    'involvedObject.uid',
    'involvedObject.apiVersion',
    'involvedObject.resourceVersion',
    'involvedObject.fieldPath',
    'reason',
    'reportingComponent',
    'source',
    'type',
  ],
  '/secrets': ['type'],
  '/nodes': ['spec.unschedulable'],
  '/pods': ['spec.nodeName', 'spec.restartPolicy', 'spec.schedulerName', 'spec.serviceAccountName', 'spec.hostNetwork', 'status.phase', 'status.podIP', 'status.nominatedNodeName'],
};

export function fieldValue(storageGr: string, obj: KubeObject, key: string): string {
  if (key === 'source' && storageGr === '/events') return get(obj, 'source.component');
  if (storageGr === '/pods' && key === 'spec.hostNetwork') return String(obj.spec?.hostNetwork === true);
  if (storageGr === '/pods' && key === 'status.podIP') return get(obj, 'status.podIPs.0.ip');
  return get(obj, key);
}

export function validateFieldSelector(storageGr: string, reqs: FieldReq[]): void {
  const allowed = ['metadata.name', 'metadata.namespace', ...(fieldSets[storageGr] ?? [])];
  for (const r of reqs) {
    if (!allowed.includes(r.key)) {
      throw badRequest(`field label not supported: ${r.key}`);
    }
  }
}

export function matchFields(storageGr: string, reqs: FieldReq[], obj: KubeObject): boolean {
  return reqs.every((r) => {
    const v = fieldValue(storageGr, obj, r.key);
    return r.op === '=' ? v === r.value : v !== r.value;
  });
}
