// Protobuf request decoding against hand-encoded messages (field numbers from k8s.io/api core/v1
// generated.proto), including gogo's habit of writing zero values of non-pointer fields.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeKubeProtobuf, ProtobufError } from '../../src/sandbox/protobuf.ts';

function varint(n: number | bigint): number[] {
  let v = BigInt.asUintN(64, BigInt(n));
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
}
const tag = (field: number, wire: number) => varint((field << 3) | wire);
const str = (field: number, s: string) => [...tag(field, 2), ...varint(Buffer.byteLength(s)), ...Buffer.from(s)];
const msg = (field: number, body: number[]) => [...tag(field, 2), ...varint(body.length), ...body];
const int = (field: number, n: number) => [...tag(field, 0), ...varint(n)];
const mapEntry = (field: number, k: string, v: string) => msg(field, [...str(1, k), ...str(2, v)]);

function envelope(apiVersion: string, kind: string, raw: number[]): Buffer {
  const typeMeta = [...str(1, apiVersion), ...str(2, kind)];
  return Buffer.from([0x6b, 0x38, 0x73, 0x00, ...msg(1, typeMeta), ...msg(2, raw), ...str(3, ''), ...str(4, '')]);
}

describe('protobuf decoding', () => {
  it('decodes a Service with ports, selector, external IPs and pointer fields', () => {
    const meta = [...str(1, 'web'), ...str(2, ''), ...str(3, 'default'), ...mapEntry(11, 'app', 'web'), ...mapEntry(12, 'note', 'x'), ...msg(8, [])];
    const port = [...str(1, 'http'), ...str(2, 'TCP'), ...int(3, 80), ...msg(4, [...int(1, 0), ...int(2, 8080)]), ...int(5, 0)];
    const namedPort = [...str(1, 'dns'), ...str(2, 'UDP'), ...int(3, 53), ...msg(4, [...int(1, 1), ...str(3, 'dns')]), ...int(5, 0)];
    const spec = [
      ...msg(1, port),
      ...msg(1, namedPort),
      ...mapEntry(2, 'app', 'web'),
      ...str(3, ''),
      ...str(4, 'LoadBalancer'),
      ...str(5, '192.0.2.1'),
      ...str(5, '192.0.2.2'),
      ...str(7, ''),
      ...str(8, '192.0.2.9'),
      ...str(11, 'Local'),
      ...int(12, 0),
      ...int(13, 0),
      ...str(17, 'PreferDualStack'),
      ...str(19, 'IPv4'),
      ...int(20, 0),
      ...str(21, 'admitlb.io/lb'),
    ];
    const status = msg(1, []);
    const obj = decodeKubeProtobuf(envelope('v1', 'Service', [...msg(1, meta), ...msg(2, spec), ...msg(3, status)])) as any;
    assert.equal(obj.kind, 'Service');
    assert.equal(obj.apiVersion, 'v1');
    assert.deepEqual(obj.metadata, { name: 'web', namespace: 'default', labels: { app: 'web' }, annotations: { note: 'x' } });
    assert.deepEqual(obj.spec.ports, [
      { name: 'http', protocol: 'TCP', port: 80, targetPort: 8080 },
      { name: 'dns', protocol: 'UDP', port: 53, targetPort: 'dns' },
    ]);
    assert.deepEqual(obj.spec.selector, { app: 'web' });
    assert.equal(obj.spec.clusterIP, undefined, 'empty non-pointer string is omitted');
    assert.equal(obj.spec.type, 'LoadBalancer');
    assert.deepEqual(obj.spec.externalIPs, ['192.0.2.1', '192.0.2.2']);
    assert.equal(obj.spec.loadBalancerIP, '192.0.2.9');
    assert.equal(obj.spec.externalTrafficPolicy, 'Local');
    assert.equal(obj.spec.healthCheckNodePort, undefined);
    assert.equal(obj.spec.ipFamilyPolicy, 'PreferDualStack');
    assert.deepEqual(obj.spec.ipFamilies, ['IPv4']);
    assert.equal(obj.spec.allocateLoadBalancerNodePorts, false, 'a pointer bool keeps an explicit false');
    assert.equal(obj.spec.loadBalancerClass, 'admitlb.io/lb');
    assert.deepEqual(obj.status, { loadBalancer: {} });
  });

  it('decodes a Namespace and rejects bodies without the k8s magic or of unknown kinds', () => {
    const ns = decodeKubeProtobuf(envelope('v1', 'Namespace', [...msg(1, [...str(1, 'team-a')]), ...msg(2, []), ...msg(3, [])])) as any;
    assert.deepEqual(ns, { kind: 'Namespace', apiVersion: 'v1', metadata: { name: 'team-a' }, spec: {}, status: {} });
    assert.throws(() => decodeKubeProtobuf(Buffer.from('{"kind":"Namespace"}')), ProtobufError);
    assert.throws(() => decodeKubeProtobuf(envelope('v1', 'Pod', [])), /not supported/);
  });
});
