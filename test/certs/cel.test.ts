// The mutating webhook's matchConditions, evaluated by a real CEL implementation (@bufbuild/cel)
// over Service objects shaped as kube-apiserver passes them (oldObject is null on CREATE).
import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type { CelInput } from '@bufbuild/cel';
import { parseAllDocuments } from 'yaml';
import { REPO_MANIFESTS } from './helpers.ts';

interface MatchCondition {
  name: string;
  expression: string;
}

function matchConditions(): MatchCondition[] {
  const docs = parseAllDocuments(readFileSync(join(REPO_MANIFESTS, 'webhook-configurations.yaml'), 'utf8')).map((d) => d.toJS() as Record<string, unknown>);
  const mwc = docs.find((d) => d.kind === 'MutatingWebhookConfiguration') as { webhooks: { name: string; matchConditions?: MatchCondition[] }[] };
  const wh = mwc.webhooks.find((w) => w.name === 'services.admitlb.io');
  assert.ok(wh?.matchConditions?.length, 'matchConditions present');
  return wh.matchConditions;
}

type Obj = Record<string, unknown> | null;
const svc = (spec: Record<string, unknown> | undefined, annotations?: Record<string, string>): Obj => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 's', namespace: 'default', ...(annotations ? { annotations } : {}) },
  ...(spec ? { spec } : {}),
});

const lb = svc({ type: 'LoadBalancer', ports: [{ port: 80 }] });
const clusterIP = svc({ type: 'ClusterIP', ports: [{ port: 80 }] });

const table: { name: string; object: Obj; oldObject: Obj; want: boolean }[] = [
  { name: 'CREATE LoadBalancer', object: lb, oldObject: null, want: true },
  { name: 'CREATE ClusterIP', object: clusterIP, oldObject: null, want: false },
  { name: 'CREATE NodePort', object: svc({ type: 'NodePort' }), oldObject: null, want: false },
  { name: 'CREATE ExternalName', object: svc({ type: 'ExternalName', externalName: 'example.test' }), oldObject: null, want: false },
  { name: 'CREATE ClusterIP with externalIPs', object: svc({ type: 'ClusterIP', externalIPs: ['192.0.2.1'] }), oldObject: null, want: true },
  { name: 'CREATE ClusterIP with empty externalIPs', object: svc({ type: 'ClusterIP', externalIPs: [] }), oldObject: null, want: false },
  { name: 'CREATE admitlb.io annotation', object: svc({ type: 'ClusterIP' }, { 'admitlb.io/pool': 'a' }), oldObject: null, want: true },
  { name: 'CREATE metallb.io annotation', object: svc({ type: 'ClusterIP' }, { 'metallb.io/loadBalancerIPs': '192.0.2.2' }), oldObject: null, want: true },
  { name: 'CREATE metallb.universe.tf annotation', object: svc({ type: 'ClusterIP' }, { 'metallb.universe.tf/address-pool': 'p' }), oldObject: null, want: true },
  { name: 'CREATE unrelated annotations', object: svc({ type: 'ClusterIP' }, { 'example.com/x': 'y', 'admitlb.iox/y': 'z', 'x.admitlb.io/y': 'z' }), oldObject: null, want: false },
  { name: 'CREATE without spec (no error)', object: svc(undefined), oldObject: null, want: false },
  { name: 'CREATE spec without type (no error)', object: svc({}), oldObject: null, want: false },
  { name: 'UPDATE LoadBalancer → LoadBalancer', object: lb, oldObject: lb, want: true },
  { name: 'UPDATE ClusterIP → LoadBalancer', object: lb, oldObject: clusterIP, want: true },
  { name: 'UPDATE LoadBalancer → ClusterIP (release must be seen)', object: clusterIP, oldObject: lb, want: true },
  { name: 'UPDATE externalIPs removed', object: clusterIP, oldObject: svc({ type: 'ClusterIP', externalIPs: ['192.0.2.1'] }), want: true },
  { name: 'UPDATE admitlb annotation removed', object: clusterIP, oldObject: svc({ type: 'ClusterIP' }, { 'admitlb.io/ips': '192.0.2.3' }), want: true },
  { name: 'UPDATE ClusterIP → ClusterIP', object: clusterIP, oldObject: clusterIP, want: false },
  { name: 'UPDATE old without spec', object: clusterIP, oldObject: svc(undefined), want: false },
];

describe('mutating webhook matchConditions (CEL)', async () => {
  let cel: typeof import('@bufbuild/cel') | undefined;
  try {
    cel = await import('@bufbuild/cel');
  } catch {
    cel = undefined;
  }
  const conditions = matchConditions();

  it('every condition has a qualified name and parses', { skip: cel ? false : '@bufbuild/cel is not installed' }, () => {
    for (const c of conditions) {
      assert.match(c.name, /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'name is a Kubernetes qualified name');
      assert.doesNotThrow(() => cel!.parse(c.expression), c.name);
    }
  });

  for (const row of table) {
    it(`${row.name} → ${row.want ? 'call' : 'skip'}`, { skip: cel ? false : '@bufbuild/cel is not installed' }, () => {
      // kube-apiserver calls the webhook only when every condition is true; an error would reject the
      // request (failurePolicy Fail), so every result must be a boolean.
      const results = conditions.map((c) => {
        const out = cel!.run(c.expression, { object: row.object as CelInput, oldObject: row.oldObject as CelInput });
        assert.equal(typeof out, 'boolean', `${c.name} evaluated to ${String(out)}`);
        return out as boolean;
      });
      assert.equal(results.every(Boolean), row.want);
    });
  }
});
