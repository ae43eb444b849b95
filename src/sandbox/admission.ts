// Admission webhooks, dispatched like k8s.io/apiserver/pkg/admission/plugin/webhook:
// configuration order (configuration/mutating_webhook_manager.go), rule/selector matching (predicates/rules,
// predicates/namespace, predicates/object), matchConditions (CEL), the mutating dispatcher with one
// reinvocation round (mutating/dispatcher.go, mutating/reinvocationcontext.go), the parallel validating
// dispatcher (validating/dispatcher.go), AdmissionReview v1 (request/admissionreview.go) and denials
// (errors/statuserror.go ToStatusErr).
import { randomUUID } from 'node:crypto';
import https from 'node:https';
import { isIP } from 'node:net';
import { evaluateMatchConditions } from './cel.ts';
import { StatusError, badRequest, internalError, notFound, forbidden } from './errors.ts';
import { applyJsonPatch } from './patch.ts';
import { runPolicies, type PolicyEnv } from './policy.ts';
import { ruleMatches } from './rules.ts';
import { matchLabelSelectorObject } from './selectors.ts';
import type { ResourceDef } from './resources.ts';
import type { KubeObject } from './store.ts';

export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT';

export interface UserInfo {
  username: string;
  uid?: string;
  groups: string[];
  extra?: Record<string, string[]>;
}

export interface AdmissionAttributes {
  def: ResourceDef;
  subresource: string;
  operation: Operation;
  namespace: string;
  name: string;
  object: KubeObject | null;
  oldObject: KubeObject | null;
  dryRun: boolean;
  options: KubeObject;
  userInfo: UserInfo;
}

export interface AdmissionEnv extends PolicyEnv {
  /** webhook configurations, read at call time */
  listConfigs(kind: 'mutating' | 'validating'): KubeObject[];
  /** namespace object lookup for namespaceSelector */
  getNamespace(name: string): KubeObject | undefined;
  /** maps clientConfig.service to a base URL (scheme://host:port) */
  resolveService?: ((ref: { namespace: string; name: string; port: number }) => string | undefined) | undefined;
  /** re-applies the kind's defaulting after a webhook patch (mutating/dispatcher.go decodes with defaulting) */
  redefault(def: ResourceDef, obj: KubeObject): KubeObject;
  /** observes every webhook call (benchmarks, tests); never changes the outcome */
  onWebhookCall?: WebhookCallObserver;
  /** the client certificate presented to every webhook (kube-apiserver's AdmissionConfiguration kubeConfigFile) */
  clientCert?: { cert: string; key: string };
}

/** One webhook call as the API server saw it: the HTTPS round trip, from connect to the parsed reply. */
export interface WebhookCall {
  webhook: string;
  mutating: boolean;
  operation: Operation;
  resource: string;
  durationMs: number;
  /** false when the call failed (timeout, connection error, non-2xx); a denial is a successful call */
  ok: boolean;
}
export type WebhookCallObserver = (call: WebhookCall) => void;

interface Webhook {
  name: string;
  configName: string;
  clientConfig: KubeObject;
  rules: KubeObject[];
  failurePolicy: 'Fail' | 'Ignore';
  matchPolicy: string;
  namespaceSelector: KubeObject;
  objectSelector: KubeObject;
  sideEffects: string;
  timeoutSeconds: number;
  admissionReviewVersions: string[];
  reinvocationPolicy: 'Never' | 'IfNeeded';
  matchConditions: { name: string; expression: string }[];
  key: string;
}

/** Defaults from admissionregistration/v1 defaults.go (applied when the configuration is stored). */
export function defaultWebhookConfiguration(cfg: KubeObject, mutating: boolean): void {
  for (const w of (cfg.webhooks ?? []) as KubeObject[]) {
    w.failurePolicy ??= 'Fail';
    w.matchPolicy ??= 'Equivalent';
    w.namespaceSelector ??= {};
    w.objectSelector ??= {};
    w.timeoutSeconds ??= 10;
    if (mutating) w.reinvocationPolicy ??= 'Never';
    for (const r of (w.rules ?? []) as KubeObject[]) r.scope ??= '*';
    if (w.clientConfig?.service) w.clientConfig.service.port ??= 443;
  }
}

function webhooksOf(configs: KubeObject[]): Webhook[] {
  const sorted = [...configs].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0));
  const out: Webhook[] = [];
  for (const cfg of sorted) {
    for (const [i, w] of ((cfg.webhooks ?? []) as KubeObject[]).entries()) {
      out.push({
        name: w.name,
        configName: cfg.metadata.name,
        clientConfig: w.clientConfig ?? {},
        rules: w.rules ?? [],
        failurePolicy: w.failurePolicy ?? 'Fail',
        matchPolicy: w.matchPolicy ?? 'Equivalent',
        namespaceSelector: w.namespaceSelector ?? {},
        objectSelector: w.objectSelector ?? {},
        sideEffects: w.sideEffects ?? '',
        timeoutSeconds: w.timeoutSeconds ?? 10,
        admissionReviewVersions: w.admissionReviewVersions ?? ['v1'],
        reinvocationPolicy: w.reinvocationPolicy ?? 'Never',
        matchConditions: w.matchConditions ?? [],
        key: `${cfg.metadata.name}/${i}/${w.name}`,
      });
    }
  }
  return out;
}

/** Returns false when the namespaceSelector excludes the request (predicates/namespace/matcher.go). */
function namespaceMatches(w: Webhook, a: AdmissionAttributes, env: AdmissionEnv): boolean {
  const sel = w.namespaceSelector;
  const empty = !sel.matchLabels && !(sel.matchExpressions?.length > 0);
  const isNamespaceResource = a.def.group === '' && a.def.resource === 'namespaces';
  if (!a.def.namespaced && !isNamespaceResource) return true;
  if (empty) return true;
  let labels: Record<string, string> | undefined;
  if (isNamespaceResource) {
    labels = (a.object ?? a.oldObject)?.metadata?.labels;
  } else {
    const ns = env.getNamespace(a.namespace);
    if (!ns) throw notFound('', 'namespaces', a.namespace);
    labels = ns.metadata?.labels;
  }
  return matchLabelSelectorObject(sel, labels);
}

/** predicates/object/matcher.go: matches when object OR oldObject labels match; a null object never matches. */
function objectMatches(w: Webhook, a: AdmissionAttributes): boolean {
  const sel = w.objectSelector;
  const empty = !sel.matchLabels && !(sel.matchExpressions?.length > 0);
  if (empty) return true;
  const matchOne = (o: KubeObject | null) => (o ? matchLabelSelectorObject(sel, o.metadata?.labels) : false);
  return matchOne(a.object) || matchOne(a.oldObject);
}

function isWebhookConfigResource(def: ResourceDef): boolean {
  return def.group === 'admissionregistration.k8s.io' && (def.resource === 'mutatingwebhookconfigurations' || def.resource === 'validatingwebhookconfigurations');
}

function buildRequest(a: AdmissionAttributes, uid: string, nameOverride?: string): KubeObject {
  const gvk = { group: a.def.group, version: a.def.version, kind: a.def.kind };
  const gvr = { group: a.def.group, version: a.def.version, resource: a.def.resource };
  const req: KubeObject = {
    uid,
    kind: gvk,
    resource: gvr,
    requestKind: gvk,
    requestResource: gvr,
    name: nameOverride ?? a.name,
    namespace: a.def.group === '' && a.def.resource === 'namespaces' ? (nameOverride ?? a.name) : a.namespace,
    operation: a.operation,
    userInfo: a.userInfo,
    object: a.object,
    oldObject: a.oldObject,
    dryRun: a.dryRun,
    options: a.options,
  };
  if (a.subresource) {
    req.subResource = a.subresource;
    req.requestSubResource = a.subresource;
  }
  if (!req.namespace) delete req.namespace;
  return req;
}

class CallFailure extends Error {}

function webhookUrl(w: Webhook, env: AdmissionEnv): string {
  const cc = w.clientConfig;
  let base: string;
  if (cc.url) base = cc.url;
  else if (cc.service) {
    const svc = cc.service;
    const resolved = env.resolveService?.({ namespace: svc.namespace, name: svc.name, port: svc.port ?? 443 });
    if (!resolved) throw new CallFailure(`failed to call webhook: service "${svc.namespace}/${svc.name}" is not resolvable by the API server double (pass resolveService)`);
    base = resolved.replace(/\/$/, '') + (svc.path ?? '');
  } else throw new CallFailure('failed to call webhook: no clientConfig url or service');
  const u = new URL(base);
  u.searchParams.set('timeout', `${w.timeoutSeconds}s`);
  return u.toString();
}

function post(url: string, body: string, caPem: string | undefined, timeoutMs: number, clientCert: { cert: string; key: string } | undefined): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const shownUrl = url;
    const req = https.request(
      {
        method: 'POST',
        hostname: u.hostname.replace(/^\[|\]$/g, ''),
        port: u.port || 443,
        path: u.pathname + u.search,
        headers: { 'Content-Type': 'application/json', Accept: 'application/json, */*', 'Content-Length': Buffer.byteLength(body) },
        ...(caPem ? { ca: caPem } : {}),
        ...(clientCert ?? {}),
        // SNI carries DNS names only (RFC 6066); IP hosts are verified against the certificate's IP SANs.
        ...(isIP(u.hostname.replace(/^\[|\]$/g, '')) ? {} : { servername: u.hostname }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', (e) => reject(new CallFailure(`failed to call webhook: Post "${shownUrl}": ${e.message}`)));
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      reject(new CallFailure(`failed to call webhook: Post "${shownUrl}": context deadline exceeded`));
    }, timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(new CallFailure(`failed to call webhook: Post "${shownUrl}": ${e.message}`));
    });
    req.end(body);
  });
}

interface CallResult {
  allowed: boolean;
  status?: KubeObject;
  patch?: unknown[] | undefined;
  warnings: string[];
}

async function callWebhook(w: Webhook, a: AdmissionAttributes, env: AdmissionEnv, mutating: boolean, nameOverride?: string): Promise<CallResult> {
  if (!w.admissionReviewVersions.includes('v1')) throw new CallFailure(`webhook does not accept known AdmissionReview versions ${JSON.stringify(w.admissionReviewVersions)}`);
  const uid = randomUUID();
  const review = { kind: 'AdmissionReview', apiVersion: 'admission.k8s.io/v1', request: buildRequest(a, uid, nameOverride) };
  const url = webhookUrl(w, env);
  const ca = w.clientConfig.caBundle ? Buffer.from(w.clientConfig.caBundle, 'base64').toString('utf8') : undefined;
  const started = performance.now();
  let res: { status: number; body: string };
  try {
    res = await post(url, JSON.stringify(review), ca, w.timeoutSeconds * 1000, env.clientCert);
  } catch (err) {
    observe(env, w, a, mutating, started, false);
    throw err;
  }
  observe(env, w, a, mutating, started, res.status >= 200 && res.status < 300);
  if (res.status < 200 || res.status >= 300) {
    throw new CallFailure(`failed to call webhook: an error on the server (${JSON.stringify(res.body.slice(0, 200))}) has prevented the request from succeeding`);
  }
  let parsed: KubeObject;
  try {
    parsed = JSON.parse(res.body) as KubeObject;
  } catch (e) {
    throw new CallFailure(`received invalid webhook response: ${(e as Error).message}`);
  }
  // request/admissionreview.go VerifyAdmissionResponse
  if (parsed.apiVersion !== 'admission.k8s.io/v1' || parsed.kind !== 'AdmissionReview') {
    throw new CallFailure(`received invalid webhook response: expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got ${parsed.apiVersion ?? ''}, Kind=${parsed.kind ?? ''}`);
  }
  const r = parsed.response as KubeObject | undefined;
  if (!r) throw new CallFailure('received invalid webhook response: webhook response was absent');
  if (r.uid !== uid) throw new CallFailure(`received invalid webhook response: expected response.uid="${uid}", got "${r.uid ?? ''}"`);
  let patch: unknown[] | undefined;
  if (r.patch) {
    if (!mutating) throw new CallFailure('received invalid webhook response: validating webhooks may not return patches');
    if (!r.patchType) throw new CallFailure('received invalid webhook response: webhook returned response.patch but not response.patchType');
    if (r.patchType !== 'JSONPatch') throw new CallFailure(`received invalid webhook response: webhook returned invalid response.patchType of "${r.patchType}"`);
    try {
      patch = JSON.parse(Buffer.from(r.patch, 'base64').toString('utf8')) as unknown[];
    } catch (e) {
      throw internalError((e as Error).message);
    }
  } else if (r.patchType && mutating) {
    throw new CallFailure('received invalid webhook response: webhook returned response.patchType but not response.patch');
  }
  return { allowed: r.allowed === true, status: r.status, patch, warnings: Array.isArray(r.warnings) ? r.warnings : [] };
}

function observe(env: AdmissionEnv, w: Webhook, a: AdmissionAttributes, mutating: boolean, started: number, ok: boolean): void {
  if (!env.onWebhookCall) return;
  try {
    env.onWebhookCall({ webhook: w.name, mutating, operation: a.operation, resource: a.def.resource, durationMs: performance.now() - started, ok });
  } catch {
    // an observer must not change admission
  }
}

/** errors/statuserror.go ToStatusErr (1.32). */
function toStatusErr(name: string, result: KubeObject | undefined): StatusError {
  const deniedBy = `admission webhook "${name}" denied the request`;
  const r = result ?? {};
  const code = typeof r.code === 'number' && r.code >= 400 ? r.code : 400;
  const msg = r.message ? `${deniedBy}: ${r.message}` : r.reason ? `${deniedBy}: ${r.reason}` : `${deniedBy} without explanation`;
  return new StatusError(code, r.reason ?? '', msg, r.details);
}

export interface AdmissionOutcome {
  object: KubeObject | null;
  warnings: string[];
}

/** Selects the webhooks that apply, evaluates matchConditions, enforces the dry-run rule. */
function selectHooks(kind: 'mutating' | 'validating', a: AdmissionAttributes, env: AdmissionEnv): Webhook[] {
  if (isWebhookConfigResource(a.def)) return [];
  return webhooksOf(env.listConfigs(kind)).filter((w) => w.rules.some((r) => ruleMatches(r, a)));
}

function shouldCall(w: Webhook, a: AdmissionAttributes, env: AdmissionEnv, nameOverride?: string): boolean {
  if (!namespaceMatches(w, a, env)) return false;
  if (!objectMatches(w, a)) return false;
  if (w.matchConditions.length) {
    const res = evaluateMatchConditions(w.matchConditions, { object: a.object, oldObject: a.oldObject, request: buildRequest(a, '', nameOverride) });
    if (!res.matches) {
      if (res.error && w.failurePolicy === 'Fail') {
        throw forbidden(a.def.group, a.def.resource, a.name, `failed to evaluate match conditions for webhook "${w.name}": ${res.error}`);
      }
      return false;
    }
  }
  if (a.dryRun && w.sideEffects !== 'None' && w.sideEffects !== 'NoneOnDryRun') {
    throw badRequest(`admission webhook "${w.name}" does not support dry run`);
  }
  return true;
}

function callFailure(w: Webhook, err: unknown): StatusError | undefined {
  if (err instanceof StatusError) return err;
  const msg = `failed calling webhook "${w.name}": ${(err as Error).message}`;
  if (w.failurePolicy === 'Ignore') return undefined;
  return internalError(msg);
}

/**
 * Mutating admission. `nameOverride` is the name webhooks see (empty for generateName creates).
 * Round 0 calls every matching webhook in order; a patch that changes the object marks the earlier
 * IfNeeded webhooks for one reinvocation round.
 */
export async function runMutating(a: AdmissionAttributes, env: AdmissionEnv, nameOverride?: string): Promise<AdmissionOutcome> {
  const hooks = selectHooks('mutating', a, env);
  const warnings: string[] = [];
  if (!hooks.length) return { object: a.object, warnings };
  const previouslyInvoked = new Set<string>();
  const toReinvoke = new Set<string>();
  const calledInRound0 = new Set<string>();
  let attrs = a;
  for (let round = 0; round < 2; round++) {
    if (round === 1 && toReinvoke.size === 0) break;
    for (const w of hooks) {
      if (round === 1 && !toReinvoke.has(w.key)) continue;
      if (round === 1 && !calledInRound0.has(w.key)) continue;
      if (!shouldCall(w, attrs, env, nameOverride)) continue;
      if (round === 0) calledInRound0.add(w.key);
      let result: CallResult;
      try {
        result = await callWebhook(w, attrs, env, true, nameOverride);
      } catch (err) {
        const e = callFailure(w, err);
        if (e) throw e;
        continue;
      }
      warnings.push(...result.warnings);
      if (!result.allowed) throw toStatusErr(w.name, result.status);
      if (result.patch && attrs.object) {
        let patched: KubeObject;
        try {
          patched = applyJsonPatch(attrs.object, result.patch);
        } catch (e) {
          throw internalError((e as Error).message);
        }
        patched = env.redefault(a.def, patched);
        const changed = JSON.stringify(patched) !== JSON.stringify(attrs.object);
        attrs = { ...attrs, object: patched };
        if (changed) {
          // reinvocationcontext.go: RequireReinvokingPreviouslyInvokedPlugins
          for (const k of previouslyInvoked) if (k !== w.key) toReinvoke.add(k);
        }
      }
      if (round === 0 && w.reinvocationPolicy === 'IfNeeded') previouslyInvoked.add(w.key);
      if (round === 1) toReinvoke.delete(w.key);
    }
  }
  return { object: attrs.object, warnings };
}

/**
 * Validating admission: ValidatingAdmissionPolicies first (in-process, policy.ts), then all matching
 * webhooks in parallel; the first error to arrive wins.
 */
export async function runValidating(a: AdmissionAttributes, env: AdmissionEnv): Promise<{ warnings: string[] }> {
  const { uid: _uid, ...request } = buildRequest(a, '');
  const warnings: string[] = [...runPolicies(a, request, env).warnings];
  const hooks = selectHooks('validating', a, env).filter((w) => shouldCall(w, a, env));
  if (!hooks.length) return { warnings };
  await new Promise<void>((resolve, reject) => {
    let pending = hooks.length;
    let done = false;
    for (const w of hooks) {
      callWebhook(w, a, env, false).then(
        (result) => {
          warnings.push(...result.warnings);
          if (!result.allowed && !done) {
            done = true;
            reject(toStatusErr(w.name, result.status));
          }
          if (--pending === 0 && !done) resolve();
        },
        (err) => {
          const e = callFailure(w, err);
          if (e && !done) {
            done = true;
            reject(e);
          }
          if (--pending === 0 && !done) resolve();
        },
      );
    }
  });
  return { warnings };
}

