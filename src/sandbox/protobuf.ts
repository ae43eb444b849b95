// Decoding of kube's protobuf request bodies (application/vnd.kubernetes.protobuf): the "k8s\0" magic,
// a runtime.Unknown envelope (apimachinery/pkg/runtime/generated.proto), and the typed message, with field
// numbers from k8s.io/api/core/v1/generated.proto and apimachinery/pkg/apis/meta/v1/generated.proto.
// Only the kinds kubectl's typed commands create are decoded (Namespace, Service, ConfigMap, Secret).
// Go's gogo-protobuf writes non-pointer fields even when zero, so zero values of non-pointer fields are
// dropped (JSON omitempty); pointer fields (ptr) keep their presence.

type Kind = 'string' | 'int' | 'bool' | 'msg' | 'map' | 'time' | 'intorstr' | 'bytes' | 'bytesmap';

interface FieldSpec {
  name: string;
  kind: Kind;
  repeated?: boolean;
  ptr?: boolean;
  msg?: () => MsgSpec;
}
type MsgSpec = Record<number, FieldSpec>;

const ownerReference: MsgSpec = {
  1: { name: 'kind', kind: 'string' },
  3: { name: 'name', kind: 'string' },
  4: { name: 'uid', kind: 'string' },
  5: { name: 'apiVersion', kind: 'string' },
  6: { name: 'controller', kind: 'bool', ptr: true },
  7: { name: 'blockOwnerDeletion', kind: 'bool', ptr: true },
};

const objectMeta: MsgSpec = {
  1: { name: 'name', kind: 'string' },
  2: { name: 'generateName', kind: 'string' },
  3: { name: 'namespace', kind: 'string' },
  4: { name: 'selfLink', kind: 'string' },
  5: { name: 'uid', kind: 'string' },
  6: { name: 'resourceVersion', kind: 'string' },
  7: { name: 'generation', kind: 'int' },
  8: { name: 'creationTimestamp', kind: 'time' },
  9: { name: 'deletionTimestamp', kind: 'time' },
  10: { name: 'deletionGracePeriodSeconds', kind: 'int', ptr: true },
  11: { name: 'labels', kind: 'map' },
  12: { name: 'annotations', kind: 'map' },
  13: { name: 'ownerReferences', kind: 'msg', repeated: true, msg: () => ownerReference },
  14: { name: 'finalizers', kind: 'string', repeated: true },
};

const namespaceSpec: MsgSpec = { 1: { name: 'finalizers', kind: 'string', repeated: true } };
const namespaceStatus: MsgSpec = { 1: { name: 'phase', kind: 'string' } };

const servicePort: MsgSpec = {
  1: { name: 'name', kind: 'string' },
  2: { name: 'protocol', kind: 'string' },
  3: { name: 'port', kind: 'int' },
  4: { name: 'targetPort', kind: 'intorstr' },
  5: { name: 'nodePort', kind: 'int' },
  6: { name: 'appProtocol', kind: 'string', ptr: true },
};

const clientIPConfig: MsgSpec = { 1: { name: 'timeoutSeconds', kind: 'int', ptr: true } };
const sessionAffinityConfig: MsgSpec = { 1: { name: 'clientIP', kind: 'msg', ptr: true, msg: () => clientIPConfig } };

const serviceSpec: MsgSpec = {
  1: { name: 'ports', kind: 'msg', repeated: true, msg: () => servicePort },
  2: { name: 'selector', kind: 'map' },
  3: { name: 'clusterIP', kind: 'string' },
  4: { name: 'type', kind: 'string' },
  5: { name: 'externalIPs', kind: 'string', repeated: true },
  7: { name: 'sessionAffinity', kind: 'string' },
  8: { name: 'loadBalancerIP', kind: 'string' },
  9: { name: 'loadBalancerSourceRanges', kind: 'string', repeated: true },
  10: { name: 'externalName', kind: 'string' },
  11: { name: 'externalTrafficPolicy', kind: 'string' },
  12: { name: 'healthCheckNodePort', kind: 'int' },
  13: { name: 'publishNotReadyAddresses', kind: 'bool' },
  14: { name: 'sessionAffinityConfig', kind: 'msg', ptr: true, msg: () => sessionAffinityConfig },
  17: { name: 'ipFamilyPolicy', kind: 'string', ptr: true },
  18: { name: 'clusterIPs', kind: 'string', repeated: true },
  19: { name: 'ipFamilies', kind: 'string', repeated: true },
  20: { name: 'allocateLoadBalancerNodePorts', kind: 'bool', ptr: true },
  21: { name: 'loadBalancerClass', kind: 'string', ptr: true },
  22: { name: 'internalTrafficPolicy', kind: 'string', ptr: true },
  23: { name: 'trafficDistribution', kind: 'string', ptr: true },
};

const portStatus: MsgSpec = {
  1: { name: 'port', kind: 'int' },
  2: { name: 'protocol', kind: 'string' },
  3: { name: 'error', kind: 'string', ptr: true },
};
const loadBalancerIngress: MsgSpec = {
  1: { name: 'ip', kind: 'string' },
  2: { name: 'hostname', kind: 'string' },
  3: { name: 'ipMode', kind: 'string', ptr: true },
  4: { name: 'ports', kind: 'msg', repeated: true, msg: () => portStatus },
};
const loadBalancerStatus: MsgSpec = { 1: { name: 'ingress', kind: 'msg', repeated: true, msg: () => loadBalancerIngress } };
const serviceStatus: MsgSpec = { 1: { name: 'loadBalancer', kind: 'msg', msg: () => loadBalancerStatus } };

// apps/v1 Deployment (k8s.io/api/apps/v1/generated.proto) with the PodTemplate fields kubectl create deployment sets.
const labelSelectorRequirement: MsgSpec = {
  1: { name: 'key', kind: 'string' },
  2: { name: 'operator', kind: 'string' },
  3: { name: 'values', kind: 'string', repeated: true },
};
const labelSelector: MsgSpec = {
  1: { name: 'matchLabels', kind: 'map' },
  2: { name: 'matchExpressions', kind: 'msg', repeated: true, msg: () => labelSelectorRequirement },
};
const containerPort: MsgSpec = {
  1: { name: 'name', kind: 'string' },
  2: { name: 'hostPort', kind: 'int' },
  3: { name: 'containerPort', kind: 'int' },
  4: { name: 'protocol', kind: 'string' },
  5: { name: 'hostIP', kind: 'string' },
};
const envVar: MsgSpec = { 1: { name: 'name', kind: 'string' }, 2: { name: 'value', kind: 'string' } };
const container: MsgSpec = {
  1: { name: 'name', kind: 'string' },
  2: { name: 'image', kind: 'string' },
  3: { name: 'command', kind: 'string', repeated: true },
  4: { name: 'args', kind: 'string', repeated: true },
  5: { name: 'workingDir', kind: 'string' },
  6: { name: 'ports', kind: 'msg', repeated: true, msg: () => containerPort },
  7: { name: 'env', kind: 'msg', repeated: true, msg: () => envVar },
  8: { name: 'resources', kind: 'msg', msg: () => ({}) },
  13: { name: 'terminationMessagePath', kind: 'string' },
  14: { name: 'imagePullPolicy', kind: 'string' },
};
const podSpec: MsgSpec = {
  2: { name: 'containers', kind: 'msg', repeated: true, msg: () => container },
  3: { name: 'restartPolicy', kind: 'string' },
  6: { name: 'dnsPolicy', kind: 'string' },
  7: { name: 'nodeSelector', kind: 'map' },
  8: { name: 'serviceAccountName', kind: 'string' },
};
const podTemplateSpec: MsgSpec = {
  1: { name: 'metadata', kind: 'msg', msg: () => objectMeta },
  2: { name: 'spec', kind: 'msg', msg: () => podSpec },
};
const deploymentStrategy: MsgSpec = { 1: { name: 'type', kind: 'string' } };
const deploymentSpec: MsgSpec = {
  1: { name: 'replicas', kind: 'int', ptr: true },
  2: { name: 'selector', kind: 'msg', ptr: true, msg: () => labelSelector },
  3: { name: 'template', kind: 'msg', msg: () => podTemplateSpec },
  4: { name: 'strategy', kind: 'msg', msg: () => deploymentStrategy },
  5: { name: 'minReadySeconds', kind: 'int' },
  6: { name: 'revisionHistoryLimit', kind: 'int', ptr: true },
  7: { name: 'paused', kind: 'bool' },
  9: { name: 'progressDeadlineSeconds', kind: 'int', ptr: true },
};

const typedObjects: Record<string, MsgSpec> = {
  Deployment: {
    1: { name: 'metadata', kind: 'msg', msg: () => objectMeta },
    2: { name: 'spec', kind: 'msg', msg: () => deploymentSpec },
    3: { name: 'status', kind: 'msg', msg: () => ({}) },
  },
  Namespace: {
    1: { name: 'metadata', kind: 'msg', msg: () => objectMeta },
    2: { name: 'spec', kind: 'msg', msg: () => namespaceSpec },
    3: { name: 'status', kind: 'msg', msg: () => namespaceStatus },
  },
  Service: {
    1: { name: 'metadata', kind: 'msg', msg: () => objectMeta },
    2: { name: 'spec', kind: 'msg', msg: () => serviceSpec },
    3: { name: 'status', kind: 'msg', msg: () => serviceStatus },
  },
  ConfigMap: {
    1: { name: 'metadata', kind: 'msg', msg: () => objectMeta },
    2: { name: 'data', kind: 'map' },
    3: { name: 'binaryData', kind: 'bytesmap' },
    4: { name: 'immutable', kind: 'bool', ptr: true },
  },
  Secret: {
    1: { name: 'metadata', kind: 'msg', msg: () => objectMeta },
    2: { name: 'data', kind: 'bytesmap' },
    3: { name: 'type', kind: 'string' },
    4: { name: 'stringData', kind: 'map' },
    5: { name: 'immutable', kind: 'bool', ptr: true },
  },
};

export class ProtobufError extends Error {}

class Reader {
  pos = 0;
  constructor(readonly buf: Uint8Array) {}
  eof(): boolean {
    return this.pos >= this.buf.length;
  }
  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (this.pos >= this.buf.length) throw new ProtobufError('truncated varint');
      const b = this.buf[this.pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 70n) throw new ProtobufError('varint overflow');
    }
  }
  bytes(): Uint8Array {
    const len = Number(this.varint());
    if (this.pos + len > this.buf.length) throw new ProtobufError('truncated length-delimited field');
    const out = this.buf.subarray(this.pos, this.pos + len);
    this.pos += len;
    return out;
  }
  skip(wireType: number): void {
    if (wireType === 0) this.varint();
    else if (wireType === 1) this.pos += 8;
    else if (wireType === 2) this.bytes();
    else if (wireType === 5) this.pos += 4;
    else throw new ProtobufError(`unsupported wire type ${wireType}`);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function toInt64(v: bigint): number {
  return Number(BigInt.asIntN(64, v));
}

function decodeTime(buf: Uint8Array): string | undefined {
  const r = new Reader(buf);
  let seconds = 0;
  while (!r.eof()) {
    const tag = Number(r.varint());
    if (tag >> 3 === 1 && (tag & 7) === 0) seconds = toInt64(r.varint());
    else r.skip(tag & 7);
  }
  // The zero time.Time (year 1) marshals as seconds=-62135596800 and means "unset" (JSON null).
  if (seconds <= -62135596800 || seconds === 0) return undefined;
  return new Date(seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function decodeMapEntry(buf: Uint8Array, valueIsBytes: boolean): [string, string] {
  const r = new Reader(buf);
  let key = '';
  let value = '';
  while (!r.eof()) {
    const tag = Number(r.varint());
    const field = tag >> 3;
    if (field === 1 && (tag & 7) === 2) key = utf8.decode(r.bytes());
    else if (field === 2 && (tag & 7) === 2) {
      const b = r.bytes();
      value = valueIsBytes ? Buffer.from(b).toString('base64') : utf8.decode(b);
    } else r.skip(tag & 7);
  }
  return [key, value];
}

function decodeIntOrString(buf: Uint8Array): number | string | undefined {
  const r = new Reader(buf);
  let type = 0;
  let intVal = 0;
  let strVal = '';
  while (!r.eof()) {
    const tag = Number(r.varint());
    const field = tag >> 3;
    if (field === 1) type = toInt64(r.varint());
    else if (field === 2) intVal = toInt64(r.varint());
    else if (field === 3) strVal = utf8.decode(r.bytes());
    else r.skip(tag & 7);
  }
  if (type === 1) return strVal === '' ? undefined : strVal;
  return intVal === 0 ? undefined : intVal;
}

function decodeMessage(buf: Uint8Array, spec: MsgSpec): Record<string, unknown> {
  const r = new Reader(buf);
  const out: Record<string, unknown> = {};
  while (!r.eof()) {
    const tag = Number(r.varint());
    const fieldNo = tag >> 3;
    const wire = tag & 7;
    const f = spec[fieldNo];
    if (!f) {
      r.skip(wire);
      continue;
    }
    let value: unknown;
    switch (f.kind) {
      case 'string':
        value = utf8.decode(r.bytes());
        break;
      case 'int':
        value = toInt64(r.varint());
        break;
      case 'bool':
        value = r.varint() !== 0n;
        break;
      case 'time':
        value = decodeTime(r.bytes());
        break;
      case 'intorstr':
        value = decodeIntOrString(r.bytes());
        break;
      case 'bytes':
        value = Buffer.from(r.bytes()).toString('base64');
        break;
      case 'map':
      case 'bytesmap': {
        const [k, v] = decodeMapEntry(r.bytes(), f.kind === 'bytesmap');
        const m = (out[f.name] ??= {}) as Record<string, string>;
        m[k] = v;
        continue;
      }
      case 'msg':
        value = decodeMessage(r.bytes(), f.msg!());
        break;
    }
    if (f.repeated) {
      ((out[f.name] ??= []) as unknown[]).push(value);
      continue;
    }
    if (value === undefined) continue;
    const isZero = value === '' || value === 0 || value === false;
    if (isZero && !f.ptr) continue;
    out[f.name] = value;
  }
  return out;
}

export interface DecodedUnknown {
  apiVersion: string;
  kind: string;
  raw: Uint8Array;
}

/** Parses the `k8s\0` + runtime.Unknown envelope (runtime/serializer/protobuf/protobuf.go). */
export function decodeEnvelope(body: Uint8Array): DecodedUnknown {
  const magic = [0x6b, 0x38, 0x73, 0x00];
  if (body.length < 4 || magic.some((b, i) => body[i] !== b)) throw new ProtobufError('provided object is not a protobuf-encoded Kubernetes object (missing k8s\\0 prefix)');
  const r = new Reader(body.subarray(4));
  const out: DecodedUnknown = { apiVersion: '', kind: '', raw: new Uint8Array() };
  while (!r.eof()) {
    const tag = Number(r.varint());
    const field = tag >> 3;
    if (field === 1 && (tag & 7) === 2) {
      const tm = new Reader(r.bytes());
      while (!tm.eof()) {
        const t2 = Number(tm.varint());
        if (t2 >> 3 === 1) out.apiVersion = utf8.decode(tm.bytes());
        else if (t2 >> 3 === 2) out.kind = utf8.decode(tm.bytes());
        else tm.skip(t2 & 7);
      }
    } else if (field === 2 && (tag & 7) === 2) out.raw = r.bytes();
    else r.skip(tag & 7);
  }
  return out;
}

/** Decodes a protobuf request body into the JSON form kube would produce for it. */
export function decodeKubeProtobuf(body: Uint8Array): Record<string, unknown> {
  const env = decodeEnvelope(body);
  const spec = typedObjects[env.kind];
  if (!spec) throw new ProtobufError(`protobuf decoding of kind ${JSON.stringify(env.kind)} is not supported by this test double`);
  const obj = decodeMessage(env.raw, spec);
  // Go structs (metadata/spec/status) are always present in JSON output of typed clients.
  return { kind: env.kind, apiVersion: env.apiVersion, ...obj };
}

export function isProtobufDecodable(kind: string): boolean {
  return kind in typedObjects;
}
