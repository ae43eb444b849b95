// The Go shapes of the built-in kinds kubectl and admitlb write most (Service, ConfigMap, Secret,
// Namespace and ObjectMeta), for what kube-apiserver's decoder does before anything else: a value of the
// wrong JSON type is a 400 (`json: cannot unmarshal string into Go struct field ServicePort.spec.ports.port
// of type int32`) whatever fieldValidation says, and a field the type does not have is an unknown field
// (strict decoding error under fieldValidation=Strict, kubectl's default; a warning under Warn). Kinds
// not described here accept anything, as before. Like the decoder, unknown fields and empty maps and
// slices (`omitempty`) are dropped from what is stored.
import { badRequest } from './errors.ts';
import type { KubeObject } from './store.ts';

type Scalar = 'string' | 'int32' | 'int64' | 'bool' | 'intstr' | 'time' | 'any';
interface Struct {
  struct: string;
  fields: Record<string, Shape>;
}
type Shape = Scalar | Struct | { list: Shape } | { map: Shape };

const strings: Shape = { list: 'string' };
const stringMap: Shape = { map: 'string' };
const struct = (name: string, fields: Record<string, Shape>): Struct => ({ struct: name, fields });

const condition = struct('Condition', { type: 'string', status: 'string', observedGeneration: 'int64', lastTransitionTime: 'time', reason: 'string', message: 'string' });

const objectMeta = struct('ObjectMeta', {
  name: 'string',
  generateName: 'string',
  namespace: 'string',
  selfLink: 'string',
  uid: 'string',
  resourceVersion: 'string',
  generation: 'int64',
  creationTimestamp: 'time',
  deletionTimestamp: 'time',
  deletionGracePeriodSeconds: 'int64',
  labels: stringMap,
  annotations: stringMap,
  ownerReferences: { list: struct('OwnerReference', { apiVersion: 'string', kind: 'string', name: 'string', uid: 'string', controller: 'bool', blockOwnerDeletion: 'bool' }) },
  finalizers: strings,
  managedFields: 'any',
});

const top = (kind: string, fields: Record<string, Shape>): Struct => struct(kind, { apiVersion: 'string', kind: 'string', metadata: objectMeta, ...fields });

const SHAPES: Record<string, Struct> = {
  '/services': top('Service', {
    spec: struct('ServiceSpec', {
      ports: { list: struct('ServicePort', { name: 'string', protocol: 'string', appProtocol: 'string', port: 'int32', targetPort: 'intstr', nodePort: 'int32' }) },
      selector: stringMap,
      clusterIP: 'string',
      clusterIPs: strings,
      type: 'string',
      externalIPs: strings,
      sessionAffinity: 'string',
      loadBalancerIP: 'string',
      loadBalancerSourceRanges: strings,
      externalName: 'string',
      externalTrafficPolicy: 'string',
      healthCheckNodePort: 'int32',
      publishNotReadyAddresses: 'bool',
      sessionAffinityConfig: struct('SessionAffinityConfig', { clientIP: struct('ClientIPConfig', { timeoutSeconds: 'int32' }) }),
      ipFamilies: strings,
      ipFamilyPolicy: 'string',
      allocateLoadBalancerNodePorts: 'bool',
      loadBalancerClass: 'string',
      internalTrafficPolicy: 'string',
      trafficDistribution: 'string',
    }),
    status: struct('ServiceStatus', {
      loadBalancer: struct('LoadBalancerStatus', {
        ingress: { list: struct('LoadBalancerIngress', { ip: 'string', hostname: 'string', ipMode: 'string', ports: { list: struct('PortStatus', { port: 'int32', protocol: 'string', error: 'string' }) } }) },
      }),
      conditions: { list: condition },
    }),
  }),
  '/configmaps': top('ConfigMap', { data: stringMap, binaryData: stringMap, immutable: 'bool' }),
  '/secrets': top('Secret', { data: stringMap, stringData: stringMap, type: 'string', immutable: 'bool' }),
  '/namespaces': top('Namespace', {
    spec: struct('NamespaceSpec', { finalizers: strings }),
    status: struct('NamespaceStatus', { phase: 'string', conditions: { list: struct('NamespaceCondition', { type: 'string', status: 'string', lastTransitionTime: 'time', reason: 'string', message: 'string' }) } }),
  }),
};

function jsonType(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'boolean') return 'bool';
  return typeof v === 'object' ? 'object' : typeof v;
}

function goTypeName(s: Shape): string {
  if (typeof s === 'string') return { string: 'string', int32: 'int32', int64: 'int64', bool: 'bool', intstr: 'intstr.IntOrString', time: 'v1.Time', any: 'interface {}' }[s];
  if ('struct' in s) return `v1.${s.struct}`;
  if ('list' in s) return `[]${goTypeName(s.list)}`;
  return `map[string]${goTypeName(s.map)}`;
}

function fits(shape: Scalar, v: unknown): boolean {
  switch (shape) {
    case 'string':
    case 'time':
      return typeof v === 'string';
    case 'int32':
    case 'int64':
      return typeof v === 'number' && Number.isInteger(v);
    case 'bool':
      return typeof v === 'boolean';
    case 'intstr':
      return typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v));
    case 'any':
      return true;
  }
}

/**
 * Checks a built-in object against its Go shape: throws the decoder's 400 for a wrongly typed value,
 * drops unknown fields and empty maps/slices, and returns the unknown fields (`spec.ports[0].bogus`)
 * for the caller's fieldValidation.
 */
export function checkBuiltinShape(storageGr: string, obj: KubeObject): string[] {
  const root = SHAPES[storageGr];
  if (!root) return [];
  const unknown: string[] = [];
  const fail = (v: unknown, owner: string, goPath: string, shape: Shape): never => {
    throw badRequest(`${root.struct} in version "v1" cannot be handled as a ${root.struct}: json: cannot unmarshal ${jsonType(v)} into Go struct field ${owner}.${goPath} of type ${goTypeName(shape)}`);
  };
  const walk = (v: unknown, shape: Shape, path: string, goPath: string, owner: string): void => {
    if (v === null || v === undefined) return; // JSON null decodes to the zero value
    if (typeof shape === 'string') {
      if (!fits(shape, v)) fail(v, owner, goPath, shape);
      return;
    }
    if ('list' in shape) {
      if (!Array.isArray(v)) return fail(v, owner, goPath, shape);
      v.forEach((x, i) => walk(x, shape.list, `${path}[${i}]`, goPath, owner));
      return;
    }
    if (typeof v !== 'object' || Array.isArray(v)) return fail(v, owner, goPath, shape);
    if ('map' in shape) {
      for (const [k, x] of Object.entries(v as KubeObject)) walk(x, shape.map, `${path}.${k}`, goPath, owner);
      return;
    }
    const o = v as KubeObject;
    for (const [k, x] of Object.entries(o)) {
      const field = shape.fields[k];
      const p = path ? `${path}.${k}` : k;
      if (!field) {
        // the decoder drops what the Go type has no field for
        unknown.push(p);
        delete o[k];
        continue;
      }
      walk(x, field, p, goPath ? `${goPath}.${k}` : k, shape.struct);
      // maps and slices are `omitempty` in the API types: an empty one is not stored
      if (typeof field === 'object' && !('struct' in field) && x !== null && typeof x === 'object' && Object.keys(x).length === 0) delete o[k];
    }
  };
  walk(obj, root, '', '', root.struct);
  return unknown;
}
