// The controller's writes on @kubernetes/client-node 1.4: JSON patches of Services (through
// admission, with a resourceVersion test), status.loadBalancer through /status, core v1 Events
// (what `kubectl describe` lists), and IPPool status through its status subresource.
import { createServiceEvent } from './events.ts';
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import type { IPPool } from '../config/schemas.ts';
import { API_GROUP, API_VERSION } from '../config/schemas.ts';
import type { JsonPatchOp } from './types.ts';
import type { ControllerApi, EventTarget, LoadBalancerIngress, WriteResult } from './controller-types.ts';
import type { ClaimStore } from './cluster.ts';

const COMPONENT = 'admitlb-controller';

function failure(err: unknown): WriteResult {
  const e = err as { code?: unknown; body?: unknown; message?: string };
  const code = typeof e?.code === 'number' ? e.code : undefined;
  let message = e?.message ?? String(err);
  try {
    const body = typeof e.body === 'string' ? JSON.parse(e.body) : e.body;
    if (body && typeof body === 'object' && typeof (body as { message?: unknown }).message === 'string') message = (body as { message: string }).message;
  } catch {
    // not JSON: keep the exception's message
  }
  if (code === 404) return { ok: false, reason: 'NotFound', message };
  if (code === 409) return { ok: false, reason: 'Conflict', message };
  if (code !== undefined && code >= 400 && code < 500) return { ok: false, reason: 'Denied', message };
  return { ok: false, reason: 'Unavailable', message };
}

export class KubeControllerApi implements ControllerApi {
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;

  constructor(kc: KubeConfig, readonly claims: ClaimStore, private readonly host = process.env.HOSTNAME ?? '') {
    this.core = kc.makeApiClient(CoreV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
  }

  async patchService(namespace: string, name: string, ops: JsonPatchOp[]): Promise<WriteResult> {
    try {
      await this.core.patchNamespacedService({ name, namespace, body: ops, fieldManager: COMPONENT }, setHeaderOptions('Content-Type', PatchStrategy.JsonPatch));
      return { ok: true };
    } catch (err) {
      const f = failure(err);
      // A failed `test` of metadata.resourceVersion is the patch's optimistic-concurrency check.
      if (!f.ok && f.reason === 'Denied' && /test operation|testing value|resourceVersion/i.test(f.message) && !/admission webhook/.test(f.message)) {
        return { ok: false, reason: 'Conflict', message: f.message };
      }
      return f;
    }
  }

  async writeServiceStatus(namespace: string, name: string, ingress: LoadBalancerIngress[]): Promise<WriteResult> {
    // A merge patch replaces the whole ingress list; null removes it.
    const body = { status: { loadBalancer: { ingress: ingress.length > 0 ? ingress : null } } };
    try {
      await this.core.patchNamespacedServiceStatus({ name, namespace, body, fieldManager: COMPONENT }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
      return { ok: true };
    } catch (err) {
      return failure(err);
    }
  }

  async recordEvent(target: EventTarget, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    await createServiceEvent(this.core, { component: COMPONENT, host: this.host, instance: this.host || COMPONENT }, target, type, reason, message);
  }

  async writePoolStatus(name: string, status: NonNullable<IPPool['status']>): Promise<WriteResult> {
    try {
      await this.custom.patchClusterCustomObjectStatus(
        { group: API_GROUP, version: API_VERSION, plural: 'ippools', name, body: { status } },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
      return { ok: true };
    } catch (err) {
      return failure(err);
    }
  }
}
