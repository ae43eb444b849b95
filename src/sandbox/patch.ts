// Patch formats accepted by kube-apiserver (endpoints/handlers/patch.go): RFC 6902 JSON patch (evanphx/json-patch
// semantics: "add" needs an existing parent), RFC 7386 merge patch, and strategic merge patch for the list
// fields the double's kinds use (patchMergeKey from the Go types; other lists are replaced).
import type { KubeObject } from './store.ts';

export class PatchError extends Error {}

function isObj(v: unknown): v is KubeObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function clone<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

function unescapePointerToken(token: string): string {
  return token.replace(/~1/g, '/').replace(/~0/g, '~');
}

function parsePointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw new PatchError(`invalid JSON pointer: ${path}`);
  return path.slice(1).split('/').map(unescapePointerToken);
}

interface JsonPatchOp {
  op: string;
  path: string;
  from?: string;
  value?: unknown;
}

function getAt(doc: unknown, tokens: string[]): unknown {
  let cur: unknown = doc;
  for (const t of tokens) {
    if (Array.isArray(cur)) cur = cur[Number(t)];
    else if (isObj(cur)) cur = cur[t];
    else return undefined;
  }
  return cur;
}

export function applyJsonPatch(doc: KubeObject, ops: unknown): KubeObject {
  if (!Array.isArray(ops)) throw new PatchError('json: cannot unmarshal object into Go value of type jsonpatch.Patch');
  let root: unknown = clone(doc);
  for (const raw of ops as JsonPatchOp[]) {
    const tokens = parsePointer(raw.path);
    const parentTokens = tokens.slice(0, -1);
    const last = tokens[tokens.length - 1];
    const parent = tokens.length ? getAt(root, parentTokens) : undefined;
    const missing = (what: string) => new PatchError(`${what} operation does not apply: doc is missing path: ${raw.path}`);
    const setValue = (value: unknown, op: string) => {
      if (last === undefined) {
        root = value;
        return;
      }
      if (Array.isArray(parent)) {
        const idx = last === '-' ? parent.length : Number(last);
        if (!Number.isInteger(idx) || idx < 0 || idx > parent.length) throw new PatchError(`Unable to access invalid index: ${last}`);
        if (op === 'replace') {
          if (idx >= parent.length) throw missing(op);
          parent[idx] = value;
        } else parent.splice(idx, 0, value);
      } else if (isObj(parent)) {
        if (op === 'replace' && !(last in parent)) throw missing(op);
        parent[last] = value;
      } else throw missing(op);
    };
    const remove = (op: string) => {
      if (Array.isArray(parent)) {
        const idx = Number(last);
        if (!Number.isInteger(idx) || idx < 0 || idx >= parent.length) throw missing(op);
        return parent.splice(idx, 1)[0];
      }
      if (isObj(parent) && last !== undefined && last in parent) {
        const v = parent[last];
        delete parent[last];
        return v;
      }
      throw missing(op);
    };
    switch (raw.op) {
      case 'add':
        setValue(clone(raw.value), 'add');
        break;
      case 'replace':
        setValue(clone(raw.value), 'replace');
        break;
      case 'remove':
        remove('remove');
        break;
      case 'test': {
        const cur = getAt(root, tokens);
        if (JSON.stringify(cur) !== JSON.stringify(raw.value)) throw new PatchError(`testing value ${raw.path} failed: test failed`);
        break;
      }
      case 'move':
      case 'copy': {
        const fromTokens = parsePointer(raw.from ?? '');
        const value = getAt(root, fromTokens);
        if (value === undefined) throw new PatchError(`${raw.op} operation does not apply: doc is missing from path: ${raw.from}`);
        if (raw.op === 'move') {
          const fp = getAt(root, fromTokens.slice(0, -1));
          const fl = fromTokens[fromTokens.length - 1]!;
          if (Array.isArray(fp)) fp.splice(Number(fl), 1);
          else if (isObj(fp)) delete fp[fl];
        }
        const p2 = tokens.length ? getAt(root, parentTokens) : undefined;
        if (last === undefined) root = clone(value);
        else if (Array.isArray(p2)) p2.splice(last === '-' ? p2.length : Number(last), 0, clone(value));
        else if (isObj(p2)) p2[last] = clone(value);
        else throw missing(raw.op);
        break;
      }
      default:
        throw new PatchError(`Unexpected kind: ${raw.op}`);
    }
  }
  return root as KubeObject;
}

/** The result of a merge patch as an object: a patch that replaces the whole document by a scalar or a list leaves nothing to store. */
export function patchedObject(doc: unknown): KubeObject {
  if (!isObj(doc)) throw new PatchError('the patched document is not a JSON object');
  return doc;
}

export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return clone(patch);
  const result: KubeObject = isObj(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete result[k];
    else result[k] = applyMergePatch(result[k], v);
  }
  return result;
}

/** patchMergeKey per field name, from the Go struct tags of the kinds served here. */
function mergeKeyFor(field: string, items: unknown[]): string | 'primitive' | undefined {
  switch (field) {
    case 'ports':
      return items.some((i) => isObj(i) && 'containerPort' in i) ? 'containerPort' : 'port';
    case 'containers':
    case 'initContainers':
    case 'ephemeralContainers':
    case 'env':
    case 'volumes':
    case 'imagePullSecrets':
      return 'name';
    case 'volumeMounts':
      return 'mountPath';
    case 'conditions':
    case 'taints':
      return field === 'taints' ? 'key' : 'type';
    case 'ownerReferences':
      return 'uid';
    case 'finalizers':
      return 'primitive';
    default:
      return undefined;
  }
}

function mergeList(target: unknown[], patch: unknown[], key: string | 'primitive'): unknown[] {
  if (key === 'primitive') {
    const out = [...target];
    for (const v of patch) if (!out.includes(v)) out.push(v);
    return out;
  }
  const out = clone(target);
  for (const item of patch) {
    if (!isObj(item)) continue;
    const idx = out.findIndex((o) => isObj(o) && o[key] === item[key]);
    if (item.$patch === 'delete') {
      if (idx >= 0) out.splice(idx, 1);
      continue;
    }
    if (idx >= 0) out[idx] = strategicMerge(out[idx], item);
    else out.push(strategicMerge(undefined, item));
  }
  return out;
}

/** Strategic merge patch (apimachinery/pkg/util/strategicpatch), for the directives kubectl emits. */
export function strategicMerge(target: unknown, patch: unknown): unknown {
  if (!isObj(patch)) return clone(patch);
  if (patch.$patch === 'replace') {
    const { $patch: _, ...rest } = patch;
    return clone(rest);
  }
  const result: KubeObject = isObj(target) ? clone(target) : {};
  let retainKeys: string[] | undefined;
  for (const [k, v] of Object.entries(patch)) {
    if (k === '$patch') continue;
    if (k.startsWith('$setElementOrder/')) continue;
    if (k === '$retainKeys') {
      retainKeys = v as string[];
      continue;
    }
    if (k.startsWith('$deleteFromPrimitiveList/')) {
      const field = k.slice('$deleteFromPrimitiveList/'.length);
      if (Array.isArray(result[field])) result[field] = (result[field] as unknown[]).filter((x) => !(v as unknown[]).includes(x));
      continue;
    }
    if (v === null) {
      delete result[k];
    } else if (Array.isArray(v)) {
      const key = mergeKeyFor(k, v);
      result[k] = key && Array.isArray(result[k]) ? mergeList(result[k] as unknown[], v, key) : clone(v).map((i: unknown) => (isObj(i) ? strategicMerge(undefined, i) : i));
    } else if (isObj(v)) {
      if (v.$patch === 'delete') delete result[k];
      else result[k] = strategicMerge(result[k], v);
    } else {
      result[k] = v;
    }
  }
  if (retainKeys) for (const k of Object.keys(result)) if (!retainKeys.includes(k)) delete result[k];
  return result;
}
