// services/status writes: which ones reach the webhook (the shipped matchConditions, evaluated by the
// double's CEL) and what the webhook decides (validateServiceStatus, pure).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { parseIPSloppy, validateServiceStatus } from '../../src/admission/validate-service-status.ts';
import { formatIP } from '../../src/allocation/addresses.ts';
import { evaluateMatchConditions } from '../../src/sandbox/cel.ts';
import type { AdmissionRequest } from '../../src/admission/review.ts';
import { model } from '../helpers/state.ts';

const pools = [model('cidr', { addresses: ['203.0.113.0/28', '2001:db8:1::/120'] }), model('ranged', { addresses: ['192.0.2.10-192.0.2.20'] })];
const ADMITLB = 'system:serviceaccount:admitlb-system:admitlb';
const OTHER = 'system:serviceaccount:other-lb:controller';

const svc = (ingress?: Record<string, unknown>[]) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'web', namespace: 'shop' },
  spec: { type: 'LoadBalancer', loadBalancerClass: 'example.com/other' },
  status: ingress ? { loadBalancer: { ingress } } : { loadBalancer: {} },
});
const ips = (...list: string[]) => list.map((ip) => ({ ip }));

function request(object: object, oldObject: object | null, username = OTHER, groups: string[] = ['system:serviceaccounts', 'system:authenticated']): AdmissionRequest {
  return {
    uid: 'u',
    kind: { group: '', version: 'v1', kind: 'Service' },
    resource: { group: '', version: 'v1', resource: 'services' },
    subResource: 'status',
    name: 'web',
    namespace: 'shop',
    operation: 'UPDATE',
    userInfo: { username, groups },
    object: object as Record<string, unknown>,
    oldObject: oldObject as Record<string, unknown> | null,
  };
}

const webhook = () => {
  const docs = parseAllDocuments(readFileSync(new URL('../../webhook-manifests/webhook-configurations.yaml', import.meta.url), 'utf8')).map((d) => d.toJS());
  const w = docs.find((d) => d.kind === 'ValidatingWebhookConfiguration').webhooks.find((x: { name: string }) => x.name === 'services-status.admitlb.io');
  assert.ok(w);
  return w as { rules: unknown[]; matchConditions: { name: string; expression: string }[]; failurePolicy: string };
};

describe('services-status.admitlb.io: the shipped configuration', () => {
  it('intercepts UPDATE of services/status only, failing closed', () => {
    const w = webhook();
    assert.deepEqual(w.rules, [{ operations: ['UPDATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['services/status'], scope: 'Namespaced' }]);
    assert.equal(w.failurePolicy, 'Fail');
  });

  const table: { name: string; object: object; old: object | null; user?: string | undefined; groups?: string[] | undefined; calls: boolean }[] = [
    { name: 'another controller adds an IP', object: svc(ips('203.0.113.5')), old: svc(), calls: true },
    { name: 'another controller adds a second IP', object: svc(ips('192.0.2.1', '203.0.113.5')), old: svc(ips('192.0.2.1')), calls: true },
    { name: 'IPs unchanged (conditions, ports)', object: svc(ips('203.0.113.5')), old: svc(ips('203.0.113.5')), calls: false },
    { name: 'IPs removed', object: svc(), old: svc(ips('203.0.113.5')), calls: false },
    { name: 'hostname only', object: svc([{ hostname: 'lb.example.test' }]), old: svc(), calls: false },
    { name: 'no status at all', object: { metadata: { name: 'web' } }, old: svc(), calls: false },
    { name: 'admitlb itself', object: svc(ips('203.0.113.5')), old: svc(), user: ADMITLB, calls: false },
    { name: 'system:masters (break-glass)', object: svc(ips('203.0.113.5')), old: svc(), user: 'admin', groups: ['system:masters', 'system:authenticated'], calls: false },
    { name: 'a user without groups', object: svc(ips('203.0.113.5')), old: svc(), user: 'someone', groups: undefined, calls: true },
  ];
  for (const t of table) {
    it(`matchConditions: ${t.name} → ${t.calls ? 'called' : 'not called'}`, () => {
      const userInfo = t.groups === undefined && t.user === 'someone' ? { username: 'someone' } : { username: t.user ?? OTHER, groups: t.groups ?? ['system:serviceaccounts'] };
      const r = evaluateMatchConditions(webhook().matchConditions, { object: t.object, oldObject: t.old, request: { operation: 'UPDATE', subResource: 'status', userInfo } });
      assert.equal(r.matches, t.calls, JSON.stringify(r));
      assert.equal('error' in r ? r.error : undefined, undefined);
    });
  }
});

describe('validateServiceStatus', () => {
  const table: { name: string; object: object; old: object | null; denied?: RegExp }[] = [
    { name: 'a CIDR pool address', object: svc(ips('203.0.113.5')), old: svc(), denied: /203\.0\.113\.5 belongs to IPPool "cidr"/ },
    { name: 'a range pool address', object: svc(ips('192.0.2.15')), old: svc(), denied: /192\.0\.2\.15 belongs to IPPool "ranged"/ },
    { name: 'an IPv6 pool address in another spelling', object: svc(ips('2001:DB8:1:0::7')), old: svc(), denied: /2001:DB8:1:0::7 belongs to IPPool "cidr"/ },
    { name: 'leading zeros (kube-proxy reads decimal)', object: svc(ips('203.0.113.05')), old: svc(), denied: /203\.0\.113\.05 belongs to IPPool "cidr"/ },
    { name: 'IPv4-mapped IPv6', object: svc(ips('::ffff:192.0.2.11')), old: svc(), denied: /belongs to IPPool "ranged"/ },
    { name: 'just outside the range', object: svc(ips('192.0.2.21')), old: svc() },
    { name: 'outside every pool', object: svc(ips('198.51.100.1')), old: svc() },
    { name: 'already there before (kept, not added)', object: svc(ips('203.0.113.5', '198.51.100.1')), old: svc(ips('203.0.113.5')) },
    { name: 'kept under another spelling', object: svc(ips('203.0.113.05')), old: svc(ips('203.0.113.5')) },
    { name: 'not an address', object: svc(ips('lb.example.test')), old: svc() },
  ];
  for (const t of table) {
    it(`${t.name} → ${t.denied ? 'denied' : 'allowed'}`, () => {
      const out = validateServiceStatus(pools, request(t.object, t.old));
      assert.equal(out.allowed, !t.denied, JSON.stringify(out));
      if (t.denied) {
        assert.equal(out.status?.code, 403);
        assert.equal(out.status?.reason, 'Forbidden');
        assert.match(out.status!.message!, t.denied);
        assert.match(out.status!.message!, /^status\.loadBalancer\.ingress of Service shop\/web: .*; only admitlb \(ServiceAccount admitlb-system\/admitlb\) puts addresses of its pools into a Service's status, not system:serviceaccount:other-lb:controller$/);
      }
    });
  }

  it('parseIPSloppy reads what kube-proxy reads', () => {
    const cases: [string, string | undefined][] = [
      ['192.0.2.1', '192.0.2.1'],
      ['192.000.002.001', '192.0.2.1'],
      ['::ffff:192.0.2.1', '192.0.2.1'],
      ['2001:db8::1', '2001:db8::1'],
      ['192.0.2.256', undefined],
      ['lb.example.test', undefined],
    ];
    for (const [text, want] of cases) {
      const ip = parseIPSloppy(text);
      assert.equal(ip && formatIP(ip), want, text);
    }
  });
});
