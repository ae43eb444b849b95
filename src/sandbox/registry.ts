// The generic REST pipeline (k8s.io/apiserver endpoints/handlers + registry/generic/registry/store.go):
// create, update (PUT/PATCH/apply), delete with finalizers, get/list; admission is called at the points
// kube-apiserver calls it (KUBE-API-FACTS.md §B1).
import { randomUUID, randomInt } from 'node:crypto';
import { runMutating, runValidating, type AdmissionEnv, type Operation, type UserInfo } from './admission.ts';
import { crdToResourceDefs } from './crd.ts';
import { StatusError, alreadyExists, badRequest, conflict, fieldErr, invalid, notFound, forbidden, plainError } from './errors.ts';
import { presentFields, serverSideApply, sortManagedFields } from './apply.ts';
import { applyJsonPatch, applyMergePatch, patchedObject, strategicMerge, PatchError } from './patch.ts';
import { apiVersionOf, type ResourceDef, type ResourceRegistry } from './resources.ts';
import { type ServiceAllocator, defaultService, type Allocation } from './services.ts';
import { PreconditionFailed, deepCopy, type KubeObject, type Store } from './store.ts';
import { defaultObject, prepareForCreate, prepareForUpdate, validateObject, validateObjectUpdate } from './strategy.ts';

export interface RequestContext {
  user: UserInfo;
  dryRun: boolean;
  fieldManager: string;
  fieldValidation: string;
  warnings: string[];
}

export interface WriteResult {
  object: KubeObject;
  status: number;
  /** DELETE: the object that went (the answer may be a Status naming it) */
  deleted?: KubeObject;
}

function now(): string {
  return new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** names.SimpleNameGenerator: 5 characters from a consonant/digit alphabet. */
function randomSuffix(): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  let s = '';
  for (let i = 0; i < 5; i++) s += alphabet[randomInt(alphabet.length)];
  return s;
}

/** Simplified FieldsV1: the set of fields present in what the manager sent (lists are atomic leaves). */
function fieldsV1(obj: unknown, top = true): KubeObject {
  const out: KubeObject = {};
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) return out;
  for (const [k, v] of Object.entries(obj as KubeObject)) {
    if (top && (k === 'apiVersion' || k === 'kind')) continue;
    if (top && k === 'metadata') {
      const m: KubeObject = {};
      for (const mk of ['generateName', 'labels', 'annotations', 'finalizers', 'ownerReferences']) if ((v as KubeObject)?.[mk] !== undefined) m[`f:${mk}`] = fieldsV1((v as KubeObject)[mk], false);
      if (Object.keys(m).length) out['f:metadata'] = m;
      continue;
    }
    out[`f:${k}`] = typeof v === 'object' && v !== null && !Array.isArray(v) ? fieldsV1(v, false) : {};
  }
  if (!top && Object.keys(out).length === 0 && typeof obj === 'object') return {};
  return out;
}

function setManagedFields(obj: KubeObject, live: KubeObject | undefined, def: ResourceDef, manager: string, operation: 'Update' | 'Apply', subresource: string, sent: KubeObject): void {
  const entries: KubeObject[] = [...(live?.metadata?.managedFields ?? obj.metadata?.managedFields ?? [])];
  // A create's Update entry owns every field of the decoded, defaulted object (as kube's field
  // manager sees it); later writes own what they sent and the object kept.
  const fields = live || operation === 'Apply' ? presentFields(fieldsV1(sent), obj) : fieldsV1(obj);
  const entry: KubeObject = { manager, operation, apiVersion: apiVersionOf(def), time: now(), fieldsType: 'FieldsV1', fieldsV1: fields };
  if (subresource) entry.subresource = subresource;
  const i = entries.findIndex((e: KubeObject) => e.manager === manager && e.operation === operation && (e.subresource ?? '') === subresource);
  // a write that sets no field adds no entry (and leaves the manager's earlier one)
  if (Object.keys(fields).length > 0) {
    if (i >= 0) entries[i] = entry;
    else entries.push(entry);
  }
  if (entries.length) obj.metadata.managedFields = sortManagedFields(entries);
  else delete obj.metadata.managedFields;
}

function comparable(obj: KubeObject): string {
  const c = deepCopy(obj);
  delete c.metadata?.managedFields;
  delete c.metadata?.resourceVersion;
  return JSON.stringify(c);
}

const rfc3339Micro = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$/;

/**
 * metav1.MicroTime decodes with layout RFC3339Micro ("2006-01-02T15:04:05.000000Z07:00"), which requires
 * exactly six fractional digits (Go time.Parse stdFracSecond0), so e.g. a JS Date's ".307Z" is a 400.
 */
function checkMicroTimes(def: ResourceDef, obj: KubeObject): void {
  const micro =
    def.storageGr === '/events'
      ? [obj.eventTime, obj.series?.lastObservedTime]
      : def.storageGr === 'coordination.k8s.io/leases'
        ? [obj.spec?.acquireTime, obj.spec?.renewTime]
        : [];
  for (const value of micro) {
    if (value === undefined || value === null || value === '') continue;
    if (typeof value !== 'string' || !rfc3339Micro.test(value)) {
      const m = typeof value === 'string' ? value.match(/T\d\d:\d\d:\d\d(.*)$/) : null;
      throw badRequest(`${def.kind} in version "${def.version}" cannot be handled as a ${def.kind}: parsing time "${String(value)}" as "2006-01-02T15:04:05.000000Z07:00": cannot parse "${m?.[1] ?? String(value)}" as ".000000"`);
    }
  }
}

/** Namespaces the NamespaceLifecycle admission plugin never lets go. */
const IMMORTAL_NAMESPACES = ['default', 'kube-system', 'kube-public'];

/** Storages with ReturnDeletedObject (pkg/registry/.../storage.go): a DELETE answers with the object. */
const RETURNS_DELETED_OBJECT = new Set(['/services', '/namespaces', '/pods', '/serviceaccounts']);

/** What an immediate DELETE answers: the object, or store.go's Success Status naming it. */
function deletedAnswer(def: ResourceDef, obj: KubeObject): KubeObject {
  if (RETURNS_DELETED_OBJECT.has(def.storageGr)) return obj;
  const details: KubeObject = { name: obj.metadata.name, ...(def.group ? { group: def.group } : {}), kind: def.resource, uid: obj.metadata.uid };
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details };
}

export class Registry {
  readonly allocator: ServiceAllocator;
  readonly admission: AdmissionEnv;
  /** namespaces whose contents are being removed */
  private readonly terminating = new Set<string>();

  constructor(
    readonly store: Store,
    readonly resources: ResourceRegistry,
    allocator: (listServices: () => Iterable<Readonly<KubeObject>>) => ServiceAllocator,
    resolveService?: AdmissionEnv['resolveService'],
  ) {
    // Read-only scan: copying every Service on every create made creates O(n) each.
    this.allocator = allocator(() => this.store.scan('/services'));
    this.admission = {
      listConfigs: (kind) => this.store.list(`admissionregistration.k8s.io/${kind}webhookconfigurations`),
      getNamespace: (name) => this.store.get('/namespaces', '', name),
      listPolicies: () => this.store.list('admissionregistration.k8s.io/validatingadmissionpolicies'),
      listPolicyBindings: () => this.store.list('admissionregistration.k8s.io/validatingadmissionpolicybindings'),
      resolveService,
      redefault: (def, obj) => {
        const copy = deepCopy(obj);
        defaultObject(def, copy);
        return copy;
      },
    };
    this.refreshCrds();
    store.onCommit((ev) => {
      if (ev.gr === 'apiextensions.k8s.io/customresourcedefinitions') this.refreshCrds();
      if (ev.type === 'DELETED' && ev.ns && this.terminating.has(ev.ns)) queueMicrotask(() => this.finishNamespace(ev.ns));
    });
    // Namespaces left terminating by a previous run continue their cleanup.
    for (const ns of this.store.list('/namespaces')) if (ns.metadata.deletionTimestamp) this.startNamespaceCleanup(ns.metadata.name);
  }

  private refreshCrds(): void {
    const defs = this.store.list('apiextensions.k8s.io/customresourcedefinitions').flatMap((crd) => (crd.metadata.deletionTimestamp ? [] : crdToResourceDefs(crd)));
    this.resources.setCrdDefs(defs);
  }

  /** Storage form → this version's form (events.k8s.io ↔ core, CR apiVersion). */
  toExternal(def: ResourceDef, stored: KubeObject): KubeObject {
    let o = def.fromStorage ? def.fromStorage(stored) : stored;
    o = { ...o, apiVersion: apiVersionOf(def), kind: def.kind };
    // apiVersion/kind first, like kube's serializer
    const { apiVersion, kind, ...rest } = o;
    return { apiVersion, kind, ...rest };
  }

  private toStorage(def: ResourceDef, obj: KubeObject): KubeObject {
    return def.toStorage ? def.toStorage(obj) : obj;
  }

  get(def: ResourceDef, ns: string, name: string): KubeObject {
    const o = this.store.get(def.storageGr, def.namespaced ? ns : '', name);
    if (!o) throw notFound(def.group, def.resource, name);
    return this.toExternal(def, o);
  }

  list(def: ResourceDef, ns: string): KubeObject[] {
    return this.store.list(def.storageGr, def.namespaced ? ns : undefined).map((o) => this.toExternal(def, o));
  }

  private checkNamespace(def: ResourceDef, ns: string, name: string, op: Operation): void {
    if (!def.namespaced) return;
    const nsObj = this.store.get('/namespaces', '', ns);
    if (!nsObj) throw notFound('', 'namespaces', ns);
    // plugin/pkg/admission/namespace/lifecycle: no new content in a terminating namespace
    if (op === 'CREATE' && nsObj.metadata.deletionTimestamp) {
      throw forbidden(def.group, def.resource, name, `unable to create new content in namespace ${ns} because it is being terminated`, [
        { reason: 'NamespaceTerminating', message: `namespace ${ns} is being terminated`, field: 'metadata.namespace' },
      ]);
    }
  }

  private normalizeBody(def: ResourceDef, body: KubeObject, ns: string): KubeObject {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf');
    const obj = deepCopy(body);
    const gv = apiVersionOf(def);
    if (obj.kind && obj.kind !== def.kind) {
      // The serializer decodes the kind the body names, then fails to convert it to the URL's kind.
      if (!def.crd && obj.apiVersion === gv) throw badRequest(`${obj.kind} in version "${def.version}" cannot be handled as a ${def.kind}: converting (${def.version}.${obj.kind}) to (${def.group ? def.group.split('.')[0] : 'core'}.${def.kind}): unknown conversion`);
      throw badRequest(`the API version in the data (${obj.apiVersion ?? ''}) does not match the expected API version (${gv})`);
    }
    if (obj.apiVersion && obj.apiVersion !== gv) throw badRequest(`the API version in the data (${obj.apiVersion}) does not match the expected API version (${gv})`);
    obj.apiVersion = gv;
    obj.kind = def.kind;
    obj.metadata ??= {};
    checkMicroTimes(def, obj);
    if (def.namespaced) {
      if (obj.metadata.namespace && obj.metadata.namespace !== ns) throw badRequest('the namespace of the provided object does not match the namespace sent on the request');
      obj.metadata.namespace = ns;
    } else delete obj.metadata.namespace;
    return obj;
  }

  private strictCheck(def: ResourceDef, unknown: string[], ctx: RequestContext): void {
    if (!unknown.length) return;
    if (ctx.fieldValidation === 'Strict') {
      const list = unknown.map((u) => `unknown field "${u}"`).join(', ');
      throw badRequest(`${def.kind} in version "${def.version}" cannot be handled as a ${def.kind}: strict decoding error: ${list}`);
    }
    if (ctx.fieldValidation === 'Warn') for (const u of unknown) ctx.warnings.push(`unknown field "${u}"`);
  }

  private options(kind: 'CreateOptions' | 'UpdateOptions' | 'DeleteOptions', ctx: RequestContext, extra: KubeObject = {}): KubeObject {
    const o: KubeObject = { kind, apiVersion: 'meta.k8s.io/v1', ...extra };
    if (ctx.dryRun) o.dryRun = ['All'];
    if (kind !== 'DeleteOptions' && ctx.fieldManager) o.fieldManager = ctx.fieldManager;
    return o;
  }

  /** POST (and create-on-update). */
  async create(def: ResourceDef, ns: string, body: KubeObject, ctx: RequestContext, subresource = '', managedOp: 'Update' | 'Apply' = 'Update'): Promise<WriteResult> {
    const obj = this.normalizeBody(def, body, ns);
    const rvSent = obj.metadata.resourceVersion;
    const unknown = defaultObject(def, obj);
    this.strictCheck(def, unknown, ctx);
    // rest.FillObjectMetaSystemFields is not applied yet; WipeObjectMetaSystemFields:
    for (const f of ['uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'selfLink']) delete obj.metadata[f];
    setManagedFields(obj, undefined, def, ctx.fieldManager, managedOp, subresource, body);
    const requestName: string = obj.metadata.name ?? '';
    this.checkNamespace(def, ns, requestName, 'CREATE');
    const mutated = await runMutating(
      { def, subresource, operation: 'CREATE', namespace: def.namespaced ? ns : '', name: requestName, object: obj, oldObject: null, dryRun: ctx.dryRun, options: this.options('CreateOptions', ctx), userInfo: ctx.user },
      this.admission,
    );
    ctx.warnings.push(...mutated.warnings);
    const created = mutated.object!;
    // rest.BeforeCreate: name generation, uid, creationTimestamp (after mutating admission).
    if (!created.metadata.name && created.metadata.generateName) created.metadata.name = `${created.metadata.generateName}${randomSuffix()}`;
    created.metadata.uid = randomUUID();
    created.metadata.creationTimestamp = now();
    if (def.namespaced) created.metadata.namespace = ns;
    const name: string = created.metadata.name ?? '';
    let allocation: Allocation | undefined;
    try {
      if (def.storageGr === '/services' && name) {
        const r = this.allocator.allocate(created, undefined);
        if (r.errors.length) throw invalid(def.group, def.kind, name, r.errors);
        allocation = r.allocation;
      }
      prepareForCreate(def, created, now());
      const errs = validateObject(def, created);
      if (errs.length) throw invalid(def.group, def.kind, name, errs);
      const validated = await runValidating(
        { def, subresource, operation: 'CREATE', namespace: def.namespaced ? ns : '', name, object: deepCopy(created), oldObject: null, dryRun: ctx.dryRun, options: this.options('CreateOptions', ctx), userInfo: ctx.user },
        this.admission,
      );
      ctx.warnings.push(...validated.warnings);
      // store.go Create returns a plain error here: a 500 without a reason
      if (rvSent) throw plainError('resourceVersion should not be set on objects to be created');
      if (ctx.dryRun) return { object: created, status: 201 };
      try {
        const stored = this.store.commit(def.storageGr, def.namespaced ? ns : '', name, this.toStorage(def, created), { mustNotExist: true });
        return { object: this.toExternal(def, stored), status: 201 };
      } catch (e) {
        if (e instanceof PreconditionFailed) throw alreadyExists(def.group, def.resource, name);
        throw e;
      }
    } finally {
      if (allocation) this.allocator.release(allocation);
    }
  }

  /**
   * PUT / PATCH / apply. `produce` builds the new object from the live one (called again on a storage
   * conflict, like GuaranteedUpdate's tryUpdate). `userRv` tells whether a resourceVersion precondition
   * came from the client.
   */
  async update(
    def: ResourceDef,
    ns: string,
    name: string,
    subresource: string,
    produce: (live: KubeObject | undefined) => { obj: KubeObject; sent: KubeObject; userRv?: string; managedFields?: KubeObject[] },
    ctx: RequestContext,
    opts: { createIfMissing?: boolean; managedOp?: 'Update' | 'Apply' } = {},
  ): Promise<WriteResult> {
    const nsKey = def.namespaced ? ns : '';
    for (let attempt = 0; ; attempt++) {
      const liveStored = this.store.get(def.storageGr, nsKey, name);
      if (!liveStored) {
        if ((def.allowCreateOnUpdate && !subresource) || opts.createIfMissing) {
          // create-on-update (AllowCreateOnUpdate, or server-side apply) goes down the CREATE path
          const { obj } = produce(undefined);
          if (obj.metadata?.name && obj.metadata.name !== name) throw badRequest(`the name of the object (${obj.metadata.name}) does not match the name on the URL (${name})`);
          obj.metadata = { ...(obj.metadata ?? {}), name };
          return this.create(def, ns, obj, ctx, subresource, opts.managedOp);
        }
        throw notFound(def.group, def.resource, name);
      }
      const live = this.toExternal(def, liveStored);
      const { obj: produced, sent, userRv, managedFields } = produce(deepCopy(live));
      const obj = this.normalizeBody(def, produced, ns);
      if (obj.metadata.name && obj.metadata.name !== name) throw badRequest(`the name of the object (${obj.metadata.name}) does not match the name on the URL (${name})`);
      obj.metadata.name = name;
      const unknown = defaultObject(def, obj);
      this.strictCheck(def, unknown, ctx);
      if (managedFields) obj.metadata.managedFields = sortManagedFields(managedFields.map((e) => (e.time === '' ? { ...e, time: now() } : e)));
      else setManagedFields(obj, live, def, ctx.fieldManager, opts.managedOp ?? 'Update', subresource, sent);
      const mutated = await runMutating(
        { def, subresource, operation: 'UPDATE', namespace: nsKey, name, object: obj, oldObject: live, dryRun: ctx.dryRun, options: this.options('UpdateOptions', ctx), userInfo: ctx.user },
        this.admission,
      );
      ctx.warnings.push(...mutated.warnings);
      const updated = mutated.object!;
      // The RV check happens after mutating admission (store.go GuaranteedUpdate → rest.BeforeUpdate).
      const liveRv: string = live.metadata.resourceVersion;
      const reqRv: string | undefined = userRv ?? (updated.metadata.resourceVersion || undefined);
      if (!reqRv && !def.allowUnconditionalUpdate) {
        // store.go: errors.NewInvalid(qualifiedResource...) — the resource, not the kind, and the int 0
        throw invalid(def.group, def.resource, name, [{ ...fieldErr.invalid('metadata.resourceVersion', 0, 'must be specified for an update') }]);
      }
      if (reqRv && reqRv !== liveRv) throw conflict(def.group, def.resource, name);
      // rest.BeforeUpdate: system fields come from the live object.
      for (const f of ['uid', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'generation']) {
        if (live.metadata[f] === undefined) delete updated.metadata[f];
        else updated.metadata[f] = live.metadata[f];
      }
      if (def.namespaced) updated.metadata.namespace = ns;
      updated.metadata.resourceVersion = liveRv;
      prepareForUpdate(def, updated, live, subresource, now());
      let allocation: Allocation | undefined;
      try {
        if (def.storageGr === '/services' && subresource !== 'status') {
          updated.spec ??= {};
          const r = this.allocator.allocate(updated, live);
          if (r.errors.length) throw invalid(def.group, def.kind, name, r.errors);
          allocation = r.allocation;
        }
        const errs = validateObjectUpdate(def, updated, live, subresource);
        if (errs.length) throw invalid(def.group, def.kind, name, errs);
        const validated = await runValidating(
          { def, subresource, operation: 'UPDATE', namespace: nsKey, name, object: deepCopy(updated), oldObject: live, dryRun: ctx.dryRun, options: this.options('UpdateOptions', ctx), userInfo: ctx.user },
          this.admission,
        );
        ctx.warnings.push(...validated.warnings);
        // store.go: finalizers emptied on an object being deleted → the object goes away.
        const finalize = updated.metadata.deletionTimestamp && !(updated.metadata.finalizers?.length > 0) && !(def.storageGr === '/namespaces');
        if (!finalize && comparable(updated) === comparable(live)) return { object: live, status: 200 };
        if (ctx.dryRun) return { object: updated, status: 200 };
        try {
          const stored = this.store.commit(def.storageGr, nsKey, name, finalize ? null : this.toStorage(def, updated), { expectedRv: liveRv });
          return { object: this.toExternal(def, stored), status: 200 };
        } catch (e) {
          if (e instanceof PreconditionFailed) {
            if (e.kind === 'missing') throw notFound(def.group, def.resource, name);
            if (userRv || attempt >= 5) throw conflict(def.group, def.resource, name);
            continue; // someone wrote in between: retry on the fresh object, as GuaranteedUpdate does
          }
          throw e;
        }
      } finally {
        if (allocation) this.allocator.release(allocation);
      }
    }
  }

  async put(def: ResourceDef, ns: string, name: string, subresource: string, body: KubeObject, ctx: RequestContext): Promise<WriteResult> {
    const userRv: string | undefined = body?.metadata?.resourceVersion || undefined;
    return this.update(def, ns, name, subresource, () => ({ obj: deepCopy(body), sent: body, ...(userRv ? { userRv } : {}) }), ctx);
  }

  async patch(def: ResourceDef, ns: string, name: string, subresource: string, contentType: string, patchDoc: unknown, ctx: RequestContext, force: boolean): Promise<WriteResult> {
    const apply = contentType === 'application/apply-patch+yaml';
    const produce = (live: KubeObject | undefined) => {
      try {
        if (apply) {
          const cfg = patchDoc as KubeObject;
          if (!cfg || typeof cfg !== 'object' || !cfg.apiVersion || !cfg.kind) throw badRequest('invalid object type: /, Kind=');
          if (cfg.apiVersion !== apiVersionOf(def) || cfg.kind !== def.kind) throw badRequest(`invalid object type: ${cfg.apiVersion.includes('/') ? '' : '/'}${cfg.apiVersion}, Kind=${cfg.kind}`);
          // Server-side apply, simplified (apply.ts): the configuration is merged into the live object
          // (strategic merge for built-ins, merge patch for CRs), then ownership decides conflicts and
          // which fields the manager gave up.
          const rv = cfg.metadata?.resourceVersion ? { userRv: cfg.metadata.resourceVersion as string } : {};
          if (!live) return { obj: deepCopy(cfg), sent: cfg, ...rv };
          const merged = (def.crd ? applyMergePatch(live, cfg) : strategicMerge(live, cfg)) as KubeObject;
          const r = serverSideApply(live, merged, cfg, fieldsV1(cfg), ctx.fieldManager, subresource, force);
          return { obj: r.object, sent: cfg, managedFields: r.managedFields, ...rv };
        }
        if (!live) throw notFound(def.group, def.resource, name);
        let out: KubeObject;
        if (contentType === 'application/json-patch+json') out = applyJsonPatch(live, patchDoc);
        else if (contentType === 'application/merge-patch+json') out = patchedObject(applyMergePatch(live, patchDoc));
        else if (contentType === 'application/strategic-merge-patch+json') {
          if (def.crd) throw new StatusError(415, 'UnsupportedMediaType', 'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml');
          out = patchedObject(strategicMerge(live, patchDoc));
        } else throw new StatusError(415, 'UnsupportedMediaType', '415: Unsupported Media Type', {});
        const patchedRv = out.metadata?.resourceVersion;
        return { obj: out, sent: (typeof patchDoc === 'object' && patchDoc && !Array.isArray(patchDoc) ? patchDoc : out) as KubeObject, ...(patchedRv && patchedRv !== live.metadata.resourceVersion ? { userRv: patchedRv as string } : {}) };
      } catch (e) {
        // patch.go: a patch that does not apply becomes errors.NewInvalid with no field errors,
        // whose message is the generic one (the JSON patch library's text is lost).
        if (e instanceof PatchError) throw new StatusError(422, 'Invalid', 'the server rejected our request due to an error in our request', {});
        throw e;
      }
    };
    if (apply) return this.update(def, ns, name, subresource, produce, ctx, { createIfMissing: true, managedOp: 'Apply' });
    return this.update(def, ns, name, subresource, produce, ctx);
  }

  /**
   * DELETE. Without client preconditions a write that lands between the read and the commit (a
   * controller updating status while delete admission runs) is retried on the fresh object, as the
   * etcd store's Delete does; with them it is the client's 409.
   */
  async delete(def: ResourceDef, ns: string, name: string, options: KubeObject, ctx: RequestContext): Promise<WriteResult> {
    const userPreconditions = Boolean(options?.preconditions?.uid || options?.preconditions?.resourceVersion);
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.deleteOnce(def, ns, name, options, ctx);
      } catch (e) {
        if (!(e instanceof PreconditionFailed) || userPreconditions || attempt >= 5) throw e instanceof PreconditionFailed ? conflict(def.group, def.resource, name) : e;
      }
    }
  }

  private async deleteOnce(def: ResourceDef, ns: string, name: string, options: KubeObject, ctx: RequestContext): Promise<WriteResult> {
    const nsKey = def.namespaced ? ns : '';
    const liveStored = this.store.get(def.storageGr, nsKey, name);
    if (!liveStored) throw notFound(def.group, def.resource, name);
    // plugin/pkg/admission/namespace/lifecycle: the immortal namespaces
    if (def.storageGr === '/namespaces' && IMMORTAL_NAMESPACES.includes(name)) throw forbidden('', 'namespaces', name, 'this namespace may not be deleted');
    const live = this.toExternal(def, liveStored);
    const pre = options?.preconditions ?? {};
    // rest/delete.go BeforeDelete checks them early, naming the kind where the resource would go
    if (pre.uid && pre.uid !== live.metadata.uid) {
      throw conflict(def.group, def.kind, name, `the UID in the precondition (${pre.uid}) does not match the UID in record (${live.metadata.uid}). The object might have been deleted and then recreated`);
    }
    if (pre.resourceVersion && pre.resourceVersion !== live.metadata.resourceVersion) {
      throw conflict(def.group, def.kind, name, `the ResourceVersion in the precondition (${pre.resourceVersion}) does not match the ResourceVersion in record (${live.metadata.resourceVersion}). The object might have been modified`);
    }
    const deleteOptions = this.options('DeleteOptions', ctx, Object.fromEntries(Object.entries(options ?? {}).filter(([k]) => k !== 'kind' && k !== 'apiVersion' && k !== 'dryRun')));
    const attrs = { def, subresource: '', operation: 'DELETE' as Operation, namespace: nsKey, name, object: null, oldObject: live, dryRun: ctx.dryRun, options: deleteOptions, userInfo: ctx.user };
    const m = await runMutating(attrs, this.admission);
    ctx.warnings.push(...m.warnings);
    const v = await runValidating(attrs, this.admission);
    ctx.warnings.push(...v.warnings);
    const isNamespace = def.storageGr === '/namespaces';
    const pendingFinalizers = (live.metadata.finalizers?.length ?? 0) > 0 || (isNamespace && (live.spec?.finalizers?.length ?? 0) > 0);
    if (pendingFinalizers) {
      // store.go updateForGracefulDeletionAndFinalizers: set deletionTimestamp, keep the object. The
      // answer is 200 with the object (handlers/delete.go answers 202 only for orphanDependents=false).
      const status = options?.orphanDependents === false ? 202 : 200;
      if (live.metadata.deletionTimestamp) return { object: live, status };
      const marked = deepCopy(live);
      marked.metadata.deletionTimestamp = now();
      // the namespace REST storage sets the timestamp only
      if (!isNamespace) marked.metadata.deletionGracePeriodSeconds = 0;
      if (marked.metadata.generation) marked.metadata.generation += 1;
      if (isNamespace) marked.status = { ...(marked.status ?? {}), phase: 'Terminating' };
      if (ctx.dryRun) return { object: marked, status };
      // PreconditionFailed goes to delete(), which retries or answers 409
      const stored = this.store.commit(def.storageGr, nsKey, name, this.toStorage(def, marked), { expectedRv: live.metadata.resourceVersion });
      if (isNamespace) this.startNamespaceCleanup(name);
      return { object: this.toExternal(def, stored), status };
    }
    if (ctx.dryRun) return { object: deletedAnswer(def, live), status: 200, deleted: live };
    const stored = this.store.commit(def.storageGr, nsKey, name, null, { expectedRv: live.metadata.resourceVersion });
    if (def.storageGr === 'apiextensions.k8s.io/customresourcedefinitions') this.deleteCustomResources(live);
    const gone = this.toExternal(def, stored);
    return { object: deletedAnswer(def, gone), status: 200, deleted: gone };
  }

  /** The CRD finalizer (customresourcecleanup) removes every instance; done at once here. */
  private deleteCustomResources(crd: KubeObject): void {
    const gr = `${crd.spec.group}/${crd.spec.names.plural}`;
    for (const o of this.store.list(gr)) this.store.commit(gr, o.metadata.namespace ?? '', o.metadata.name, null, {});
  }

  /** The namespace controller: delete everything in the namespace, then drop the namespace. */
  private startNamespaceCleanup(ns: string): void {
    this.terminating.add(ns);
    const grs = new Set(this.resources.all().filter((d) => d.namespaced).map((d) => d.storageGr));
    for (const gr of grs) {
      for (const o of this.store.list(gr, ns)) {
        if (o.metadata.finalizers?.length) {
          if (!o.metadata.deletionTimestamp) {
            const marked = deepCopy(o);
            marked.metadata.deletionTimestamp = now();
            marked.metadata.deletionGracePeriodSeconds = 0;
            this.store.commit(gr, ns, o.metadata.name, marked, {});
          }
        } else this.store.commit(gr, ns, o.metadata.name, null, {});
      }
    }
    this.finishNamespace(ns);
  }

  private finishNamespace(ns: string): void {
    if (!this.terminating.has(ns)) return;
    const grs = new Set(this.resources.all().filter((d) => d.namespaced).map((d) => d.storageGr));
    for (const gr of grs) if (this.store.list(gr, ns).length) return;
    this.terminating.delete(ns);
    if (this.store.get('/namespaces', '', ns)) this.store.commit('/namespaces', '', ns, null, {});
  }

  /** Objects every cluster has: the four namespaces and the kubernetes Service. */
  async seed(ctx: RequestContext): Promise<void> {
    const nsDef = this.resources.find('', 'v1', 'namespaces')!;
    for (const ns of ['default', 'kube-system', 'kube-public', 'kube-node-lease']) {
      if (!this.store.get('/namespaces', '', ns)) await this.create(nsDef, '', { metadata: { name: ns } }, ctx);
    }
    const svcDef = this.resources.find('', 'v1', 'services')!;
    if (!this.store.get('/services', 'default', 'kubernetes')) {
      const cidr = this.allocator.network.serviceCidrs[0] ?? '10.96.0.0/16';
      const base = cidr.split('/')[0]!;
      const first = base.includes(':') ? `${base.replace(/::?$/, '::')}1` : base.replace(/\.\d+$/, '.1');
      const svc = { metadata: { name: 'kubernetes', labels: { component: 'apiserver', provider: 'kubernetes' } }, spec: { clusterIP: first, ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: 6443 }] } };
      defaultService(svc as KubeObject);
      await this.create(svcDef, 'default', svc, ctx);
    }
  }
}
