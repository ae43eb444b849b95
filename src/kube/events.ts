// Core v1 Events on Services (what `kubectl describe svc` lists), written by the controller and the
// speaker alike.
import { randomBytes } from 'node:crypto';
import type { CoreV1Api, CoreV1Event } from '@kubernetes/client-node';

export interface ServiceEventTarget {
  namespace: string;
  name: string;
  uid?: string | undefined;
  resourceVersion?: string | undefined;
}

export async function createServiceEvent(
  core: CoreV1Api,
  source: { component: string; host?: string; instance: string },
  target: ServiceEventTarget,
  type: 'Normal' | 'Warning',
  reason: string,
  message: string,
): Promise<void> {
  const now = new Date();
  const body: CoreV1Event = {
    metadata: { name: `${target.name}.${randomBytes(8).toString('hex')}`, namespace: target.namespace },
    involvedObject: {
      apiVersion: 'v1',
      kind: 'Service',
      namespace: target.namespace,
      name: target.name,
      ...(target.uid !== undefined ? { uid: target.uid } : {}),
      ...(target.resourceVersion !== undefined ? { resourceVersion: target.resourceVersion } : {}),
    },
    reason,
    message: message.slice(0, 1024),
    type,
    source: { component: source.component, ...(source.host ? { host: source.host } : {}) },
    reportingComponent: source.component,
    reportingInstance: source.instance,
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
  await core.createNamespacedEvent({ namespace: target.namespace, body });
}
