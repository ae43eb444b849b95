// Explicitly requested addresses, read from a Service as the webhook reads it (readIntent) and
// allocated by the pure allocator: the per-namespace quota holds for requests too, a sharing key
// does not let one clashing port through a multi-port holder, and RequireDualStack wants both
// families named.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readIntent } from '../../src/admission/service-intent.ts';
import { formatIP } from '../../src/allocation/addresses.ts';
import { allocateLoadBalancer, type AllocatorState } from '../../src/allocation/allocator.ts';
import { ANN_IPS, ANN_SHARING_KEY, IPS_ANNOTATIONS } from '../../src/config/annotations.ts';
import type { ClaimHolder, IPClaim } from '../../src/config/schemas.ts';
import { admissionConfigSchema } from '../../src/config/webhook-config.ts';
import type { Service } from '../../src/kube/types.ts';
import { claim, index, model } from '../helpers/state.ts';
import { ERRORS } from '../../src/errors.ts';

type Port = { protocol: 'TCP' | 'UDP'; port: number };

interface Ask {
  ns?: string;
  name?: string;
  /** Annotation key → value (e.g. admitlb.io/ips). */
  annotations?: Record<string, string>;
  loadBalancerIP?: string;
  ports?: Port[];
  policy?: 'SingleStack' | 'PreferDualStack' | 'RequireDualStack';
  families?: ('IPv4' | 'IPv6')[];
}

function service(a: Ask): Service {
  return {
    metadata: { namespace: a.ns ?? 'default', name: a.name ?? 'new', ...(a.annotations ? { annotations: a.annotations } : {}) },
    spec: {
      type: 'LoadBalancer',
      ports: (a.ports ?? [{ protocol: 'TCP', port: 80 }]).map((p) => ({ ...p })),
      ...(a.loadBalancerIP ? { loadBalancerIP: a.loadBalancerIP } : {}),
      ...(a.policy ? { ipFamilyPolicy: a.policy } : {}),
      ...(a.families ? { ipFamilies: a.families } : {}),
    },
  };
}

/** What the webhook's allocation step answers for the Service: the addresses, or field + message. */
function answer(state: AllocatorState, a: Ask): string {
  const svc = service(a);
  const intent = readIntent(svc, admissionConfigSchema.parse({}));
  if ('error' in intent) return `${ERRORS[intent.error].status} ${intent.field}: ${intent.message}`;
  const r = allocateLoadBalancer(state, {
    namespace: svc.metadata.namespace!,
    name: svc.metadata.name!,
    labels: {},
    namespaceLabels: { 'kubernetes.io/metadata.name': svc.metadata.namespace! },
    ...intent,
  });
  return r.ok ? r.ips.map(formatIP).join(',') : `${ERRORS[r.denial.error].status} ${r.denial.field}: ${r.denial.message}`;
}

const held = (address: string, holder: Partial<ClaimHolder>, sharingKey?: string): IPClaim => claim(address, 'q', [holder], sharingKey);
const ann = (key: string, value: string) => ({ annotations: { [key]: value } });

describe('requested addresses: the per-namespace quota', () => {
  // Pool q allows 2 addresses per namespace; autoAssign is off, so only requests reach it.
  const world = (claims: IPClaim[]): AllocatorState => ({ pools: [model('q', { addresses: ['203.0.113.0/24'], autoAssign: false, quota: { perNamespace: 2 } })], claims: index(claims) });
  const two = [held('203.0.113.1', { name: 'a' }), held('203.0.113.2', { name: 'b' })];
  const one = [held('203.0.113.1', { name: 'a' })];
  const over = (field: string) => `403 ${field}: namespace "default" already holds 2 of the 2 addresses its quota allows from IPPool "q"`;
  const rows: { name: string; claims: IPClaim[]; ask: Ask; want: string }[] = [
    ...IPS_ANNOTATIONS.map((key) => ({ name: `at the quota, by ${key}`, claims: two, ask: ann(key, '203.0.113.50'), want: over(`metadata.annotations[${key}]`) })),
    { name: 'at the quota, by spec.loadBalancerIP', claims: two, ask: { loadBalancerIP: '203.0.113.50' }, want: over('spec.loadBalancerIP') },
    { name: 'one below the quota, by annotation', claims: one, ask: ann(ANN_IPS, '203.0.113.50'), want: '203.0.113.50' },
    { name: 'one below the quota, by spec.loadBalancerIP', claims: one, ask: { loadBalancerIP: '203.0.113.50' }, want: '203.0.113.50' },
    { name: "another namespace's addresses do not count", claims: two, ask: { ns: 'team-b', loadBalancerIP: '203.0.113.50' }, want: '203.0.113.50' },
    {
      name: 'joining an address the namespace already holds (sharing key) adds nothing',
      claims: [held('203.0.113.1', { name: 'a', ports: [{ protocol: 'TCP', port: 80 }] }, 'k'), held('203.0.113.2', { name: 'b' })],
      ask: { annotations: { [ANN_IPS]: '203.0.113.1', [ANN_SHARING_KEY]: 'k' }, ports: [{ protocol: 'TCP', port: 443 }] },
      want: '203.0.113.1',
    },
  ];
  for (const r of rows) {
    it(r.name, () => assert.equal(answer(world(r.claims), r.ask), r.want));
  }
});

describe('requested addresses: sharing with a multi-port holder', () => {
  // Service "web" holds 203.0.113.0 on TCP 80 and TCP 443 under sharing key k.
  const world = (): AllocatorState => ({
    pools: [model('q', { addresses: ['203.0.113.0/24'] })],
    claims: index([held('203.0.113.0', { name: 'web', ports: [{ protocol: 'TCP', port: 80 }, { protocol: 'TCP', port: 443 }] }, 'k')]),
  });
  const tcp = (port: number): Port => ({ protocol: 'TCP', port });
  const udp = (port: number): Port => ({ protocol: 'UDP', port });
  const shared = (ports: Port[], request = true): Ask => ({ annotations: { [ANN_SHARING_KEY]: 'k', ...(request ? { [ANN_IPS]: '203.0.113.0' } : {}) }, ports });
  const clash = (port: string) => `409 metadata.annotations[admitlb.io/ips]: port ${port} on 203.0.113.0 is already used by Service "web"`;
  const rows: { name: string; ask: Ask; want: string }[] = [
    { name: 'TCP 443 + 8080: the second holder port clashes', ask: shared([tcp(443), tcp(8080)]), want: clash('TCP/443') },
    { name: 'TCP 8080 + 443: the clash is not the first port asked for', ask: shared([tcp(8080), tcp(443)]), want: clash('TCP/443') },
    { name: 'TCP 8080 + 80: the first holder port clashes', ask: shared([tcp(8080), tcp(80)]), want: clash('TCP/80') },
    { name: 'UDP 443: same port, other protocol, shares', ask: shared([udp(443)]), want: '203.0.113.0' },
    { name: 'UDP 80 + UDP 443 + TCP 8080: no clash, shares', ask: shared([udp(80), udp(443), tcp(8080)]), want: '203.0.113.0' },
    { name: 'automatic, TCP 443 + 8080: a fresh address instead', ask: shared([tcp(443), tcp(8080)], false), want: '203.0.113.1' },
    { name: 'automatic, UDP 443: shares', ask: shared([udp(443)], false), want: '203.0.113.0' },
  ];
  for (const r of rows) {
    it(r.name, () => assert.equal(answer(world(), r.ask), r.want));
  }
});

describe('requested addresses: dual-stack policies with one address named', () => {
  // A pool with both families; the Service names one address. README: RequireDualStack gets both or
  // a denial; a request is not completed from the pool with an address the user did not name.
  const world = (): AllocatorState => ({ pools: [model('q', { addresses: ['203.0.113.0/24', '2001:db8:1::/64'] })], claims: index([]) });
  const dual: Pick<Ask, 'families'> = { families: ['IPv4', 'IPv6'] };
  const need = (field: string) => `400 ${field}: spec.ipFamilyPolicy is RequireDualStack: request one IPv4 and one IPv6 address`;
  const rows: { name: string; ask: Ask; want: string }[] = [
    { name: 'RequireDualStack, only IPv4 by annotation: denied', ask: { ...dual, policy: 'RequireDualStack', ...ann(ANN_IPS, '203.0.113.5') }, want: need('metadata.annotations[admitlb.io/ips]') },
    { name: 'RequireDualStack, only IPv6 by annotation: denied', ask: { ...dual, policy: 'RequireDualStack', ...ann(ANN_IPS, '2001:db8:1::5') }, want: need('metadata.annotations[admitlb.io/ips]') },
    { name: 'RequireDualStack, only IPv4 by spec.loadBalancerIP: denied', ask: { ...dual, policy: 'RequireDualStack', loadBalancerIP: '203.0.113.5' }, want: need('spec.loadBalancerIP') },
    { name: 'RequireDualStack implied by two ipFamilies: denied', ask: { ...dual, ...ann(ANN_IPS, '203.0.113.5') }, want: need('metadata.annotations[admitlb.io/ips]') },
    { name: 'RequireDualStack, both named: both', ask: { ...dual, policy: 'RequireDualStack', ...ann(ANN_IPS, '2001:db8:1::5,203.0.113.5') }, want: '203.0.113.5,2001:db8:1::5' },
    { name: 'PreferDualStack, only IPv4 named: that one address', ask: { ...dual, policy: 'PreferDualStack', ...ann(ANN_IPS, '203.0.113.5') }, want: '203.0.113.5' },
  ];
  for (const r of rows) {
    it(r.name, () => assert.equal(answer(world(), r.ask), r.want));
  }
});
