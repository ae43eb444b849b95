// Server-side apply on the double's field sets (registry.ts fieldsV1: the fields each manager sent,
// lists as atomic leaves): ownership conflicts with kube's messages (managedfields/internal/conflict.go),
// `force` taking fields over, and fields a manager stops applying removed when nobody else owns them.
// Structured-merge-diff's per-item list ownership (k:{...} keys) is not modelled: a list is one field.
import { StatusError } from './errors.ts';
import type { KubeObject } from './store.ts';

type Path = string[];

/** The leaves of a FieldsV1 set, as paths without the `f:` prefixes. */
export function leaves(fields: unknown, prefix: Path = []): Path[] {
  if (!fields || typeof fields !== 'object') return [];
  const entries = Object.entries(fields as KubeObject).filter(([k]) => k.startsWith('f:'));
  if (entries.length === 0) return prefix.length ? [prefix] : [];
  return entries.flatMap(([k, v]) => leaves(v, [...prefix, k.slice(2)]));
}

function toFields(paths: Path[]): KubeObject {
  const out: KubeObject = {};
  for (const p of paths) {
    let cur = out;
    for (const k of p) cur = cur[`f:${k}`] ??= {};
  }
  return out;
}

const key = (p: Path) => JSON.stringify(p);
const at = (obj: unknown, p: Path): unknown => p.reduce<unknown>((o, k) => (o && typeof o === 'object' ? (o as KubeObject)[k] : undefined), obj);

function remove(obj: KubeObject, p: Path): void {
  const parent = at(obj, p.slice(0, -1));
  if (parent && typeof parent === 'object' && !Array.isArray(parent)) delete (parent as KubeObject)[p[p.length - 1]!];
}

/** fieldpath.Path.String(): `.data.key`. */
const pathString = (p: Path) => p.map((k) => `.${k}`).join('');

/** printManager: Apply managers by name, Update managers with their apiVersion and time. */
function printManager(e: KubeObject): string {
  let s = JSON.stringify(e.manager);
  if (e.subresource) s += ` with subresource ${JSON.stringify(e.subresource)}`;
  if (e.operation === 'Update') s += e.time ? ` using ${e.apiVersion} at ${e.time}` : ` using ${e.apiVersion}`;
  return s;
}

/** managedfields sortEncodedManagedFields: Apply before Update, then by time (seconds), manager, apiVersion, subresource. */
export function sortManagedFields(entries: KubeObject[]): KubeObject[] {
  const seconds = (e: KubeObject) => (e.time ? Math.floor(Date.parse(e.time) / 1000) : 0);
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  return [...entries].sort(
    (p, q) =>
      cmp(p.operation ?? '', q.operation ?? '') ||
      seconds(p) - seconds(q) ||
      cmp(p.manager ?? '', q.manager ?? '') ||
      cmp(p.apiVersion ?? '', q.apiVersion ?? '') ||
      cmp(p.subresource ?? '', q.subresource ?? ''),
  );
}

/** The part of a FieldsV1 set that names fields `obj` has (what the decoder dropped is not managed). */
export function presentFields(fields: KubeObject, obj: unknown): KubeObject {
  const out: KubeObject = {};
  for (const [k, v] of Object.entries(fields)) {
    if (!k.startsWith('f:') || !obj || typeof obj !== 'object' || !(k.slice(2) in (obj as KubeObject))) continue;
    const child = (obj as KubeObject)[k.slice(2)];
    out[k] = v && typeof v === 'object' && Object.keys(v).length && child && typeof child === 'object' && !Array.isArray(child) ? presentFields(v, child) : v;
  }
  return out;
}

export interface ApplyResult {
  /** the merged object with the fields the manager gave up removed */
  object: KubeObject;
  /** managedFields after the apply; the manager's own entry carries `fields` and needs its time */
  managedFields: KubeObject[];
}

/**
 * Applies `sentFields` (the configuration's field set) of `manager` onto `merged` (the live object with
 * the configuration merged in). Throws kube's 409 when another manager owns a field the configuration
 * sets to a different value, unless `force`.
 */
export function serverSideApply(live: KubeObject, merged: KubeObject, cfg: KubeObject, sentFields: KubeObject, manager: string, subresource: string, force: boolean): ApplyResult {
  const sent = leaves(sentFields);
  const sentKeys = new Set(sent.map(key));
  const entries: KubeObject[] = JSON.parse(JSON.stringify(live.metadata?.managedFields ?? []));
  const mine = (e: KubeObject) => e.manager === manager && e.operation === 'Apply' && (e.subresource ?? '') === subresource;
  const others = entries.filter((e) => !mine(e) && (e.subresource ?? '') === subresource);
  const conflicts: { entry: KubeObject; path: Path }[] = [];
  for (const e of others) {
    for (const p of leaves(e.fieldsV1)) {
      if (sentKeys.has(key(p)) && JSON.stringify(at(live, p)) !== JSON.stringify(at(cfg, p))) conflicts.push({ entry: e, path: p });
    }
  }
  if (conflicts.length && !force) throw applyConflict(conflicts);
  // force: the configuration's fields leave their other owners
  for (const e of others) e.fieldsV1 = toFields(leaves(e.fieldsV1).filter((p) => !conflicts.some((c) => c.entry === e && key(c.path) === key(p))));
  const kept = entries.filter((e) => mine(e) || leaves(e.fieldsV1).length > 0);
  // fields this manager applied before and no longer does go, unless someone else owns them
  const previous = entries.find(mine);
  const object = JSON.parse(JSON.stringify(merged)) as KubeObject;
  if (previous) {
    const ownedElsewhere = new Set(kept.filter((e) => !mine(e)).flatMap((e) => leaves(e.fieldsV1).map(key)));
    for (const p of leaves(previous.fieldsV1)) if (!sentKeys.has(key(p)) && !ownedElsewhere.has(key(p))) remove(object, p);
  }
  const own: KubeObject = { manager, operation: 'Apply', apiVersion: cfg.apiVersion, time: '', fieldsType: 'FieldsV1', fieldsV1: toFields(sent), ...(subresource ? { subresource } : {}) };
  const i = kept.findIndex(mine);
  if (i >= 0) kept[i] = own;
  else kept.push(own);
  return { object, managedFields: kept };
}

function applyConflict(conflicts: { entry: KubeObject; path: Path }[]): StatusError {
  const causes = conflicts.map((c) => ({ reason: 'FieldManagerConflict', message: `conflict with ${printManager(c.entry)}`, field: pathString(c.path) }));
  let message: string;
  if (conflicts.length === 1) message = `Apply failed with 1 conflict: conflict with ${printManager(conflicts[0]!.entry)}: ${pathString(conflicts[0]!.path)}`;
  else {
    const byManager = new Map<string, string[]>();
    for (const c of conflicts) byManager.set(printManager(c.entry), [...(byManager.get(printManager(c.entry)) ?? []), pathString(c.path)]);
    const lines = [...byManager.keys()].sort().flatMap((m) => [`conflicts with ${m}:`, ...byManager.get(m)!.map((p) => `- ${p}`)]);
    message = `Apply failed with ${conflicts.length} conflicts: ${lines.join('\n')}`;
  }
  return new StatusError(409, 'Conflict', message, { causes });
}
