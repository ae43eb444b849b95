// RBAC on the real control plane: the webhook and controller run as the ServiceAccount `admitlb`, the
// speakers as `admitlb-speaker`, installed from webhook-manifests/ with `kubectl apply -k`. A scenario
// drives every path that touches the API (admission, claims, status, Events, back-stop, orphan release,
// pool changes, leader election; the speakers' informers, Leases, Events and graceful shutdown), and
// kube-apiserver's audit log records what each account did. Two properties:
//   - sufficient: no request of either account was forbidden (403);
//   - least: every rule of rbac.yaml was used by at least one request (no grant that no code path uses).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { objectBody } from '../../src/sandbox/api-client.ts';
import { MANIFESTS_DIR } from '../../src/sandbox/paths.ts';
import { readAuditLog, type AuditEvent } from '../../src/sandbox/real-control-plane.ts';
import { missingRequirements } from '../bgp/lab/sys.ts';
import { pool, service, until } from '../e2e/cluster-helpers.ts';
import { SpeakerLab, labNamespaces, sleep, waitFor } from '../speaker/lab.ts';

const missing = missingRequirements(['arping', 'ping', 'kubectl', 'tcpdump']);
const skip = missing.length > 0 && process.env.CI !== 'true' ? `needs ${missing.join(', ')} and root` : false;

interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
  /** where the rule comes from, for messages */
  from: string;
  namespace?: string;
}

/** The rules rbac.yaml grants to a ServiceAccount, through its RoleBindings and ClusterRoleBindings. */
function grantedRules(account: { namespace: string; name: string }): Rule[] {
  const docs = parseAllDocuments(readFileSync(join(MANIFESTS_DIR, 'rbac.yaml'), 'utf8')).map((d) => d.toJS() as any).filter(Boolean);
  const roles = new Map(docs.filter((d) => d.kind === 'Role' || d.kind === 'ClusterRole').map((d) => [`${d.kind}/${d.metadata.name}`, d]));
  const out: Rule[] = [];
  for (const b of docs.filter((d) => d.kind === 'RoleBinding' || d.kind === 'ClusterRoleBinding')) {
    if (!b.subjects.some((s: any) => s.kind === 'ServiceAccount' && s.name === account.name && s.namespace === account.namespace)) continue;
    const role = roles.get(`${b.roleRef.kind}/${b.roleRef.name}`);
    assert.ok(role, `${b.kind} ${b.metadata.name} refers to a missing ${b.roleRef.kind} ${b.roleRef.name}`);
    for (const r of role.rules) out.push({ ...r, from: `${role.kind} ${role.metadata.name}`, ...(b.kind === 'RoleBinding' ? { namespace: b.metadata.namespace ?? 'admitlb-system' } : {}) });
  }
  return out;
}

const resourceOf = (e: AuditEvent) => (e.subresource ? `${e.resource}/${e.subresource}` : e.resource);

function matches(rule: Rule, e: AuditEvent): boolean {
  return (
    rule.verbs.includes(e.verb) &&
    rule.apiGroups.includes(e.apiGroup) &&
    rule.resources.includes(resourceOf(e)) &&
    (!rule.namespace || rule.namespace === e.namespace) &&
    (!rule.resourceNames || rule.resourceNames.includes(e.name))
  );
}

/** Each (rule, verb, resource) that no request used: grants that no code path needs. */
function unused(rules: Rule[], events: AuditEvent[]): string[] {
  const out: string[] = [];
  for (const rule of rules) {
    for (const verb of rule.verbs) {
      for (const resource of rule.resources) {
        for (const group of rule.apiGroups) {
          const narrowed = { ...rule, verbs: [verb], resources: [resource], apiGroups: [group] };
          if (!events.some((e) => matches(narrowed, e))) out.push(`${rule.from}: ${verb} ${group || 'core'}/${resource}${rule.resourceNames ? ` (${rule.resourceNames.join(',')})` : ''}`);
        }
      }
    }
  }
  return out;
}

const WEBHOOK_USER = 'system:serviceaccount:admitlb-system:admitlb';
const SPEAKER_USER = 'system:serviceaccount:admitlb-system:admitlb-speaker';

describe('RBAC of webhook-manifests/rbac.yaml on the real control plane', { skip, concurrency: 1, timeout: 300_000 }, () => {
  let lab: SpeakerLab | undefined;
  let events: AuditEvent[] = [];

  before(async () => {
    assert.equal(process.env.E2E_TARGET, 'real', 'test/real/ runs against the real control plane only');
    lab = await SpeakerLab.create({ nodes: ['node-a', 'node-b'], extra: ['client'], controller: { orphanGraceSeconds: 1 } });
    const c = lab.cluster;
    await lab.apply(pool('lab', { addresses: ['192.0.2.200-192.0.2.209'] }), pool('spare', { addresses: ['198.51.100.10-198.51.100.19'], autoAssign: false }));
    await c.waitForPool('lab');
    await c.waitForPool('spare');
    await lab.apply({ apiVersion: 'admitlb.io/v1alpha1', kind: 'L2Advertisement', metadata: { name: 'lab' }, spec: { ipPools: ['lab'] } });
    await Promise.all(['node-a', 'node-b'].map((n) => lab!.startSpeaker(n)));

    // Admission and the controller: a claim, a status, Events; the speakers announce it.
    await lab.kubectlOk(['create', 'service', 'loadbalancer', 'web', '--tcp=80:80']);
    await lab.apply(lab.endpointSlice('web', ['node-b']));
    const ip = await waitFor('web assigned', async () => (await lab!.kubectlOk(['get', 'svc', 'web', '-o', 'jsonpath={.status.loadBalancer.ingress[0].ip}'])).trim());
    await waitFor('web announced', async () => (await lab!.holders(ip)).length === 1, { timeoutMs: 15_000 });
    // A forged status is put back through services/status.
    await lab.kubectlOk(['patch', 'svc', 'web', '--subresource=status', '--type=merge', '-p', '{"status":{"loadBalancer":{"ingress":[{"ip":"192.0.2.209"}]}}}']);
    await waitFor('status restored', async () => (await lab!.kubectlOk(['get', 'svc', 'web', '-o', 'jsonpath={.status.loadBalancer.ingress[0].ip}'])).trim() === ip);
    // Another pool: the claim moves (a claim created, the old one released).
    await lab.kubectlOk(['annotate', 'svc', 'web', '--overwrite', 'admitlb.io/pool=spare']);
    await waitFor('web moved', async () => (await lab!.kubectlOk(['get', 'svc', 'web', '-o', 'jsonpath={.status.loadBalancer.ingress[0].ip}'])).trim().startsWith('198.51.100.'));
    // A create the API server rejects after admission leaves a claim that the controller releases.
    const bogus = service('bogus', { spec: { sessionAffinity: 'Bogus' } });
    const r = await c.request('POST', '/api/v1/namespaces/default/services', bogus);
    assert.equal(r.status, 422, JSON.stringify(r.body));
    // The back-stop: a Service created while the webhook configuration is away.
    const hook = await c.request('GET', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/admitlb');
    assert.equal(hook.status, 200);
    assert.equal((await c.request('DELETE', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/admitlb')).status, 200);
    await sleep(500);
    assert.equal((await c.request('POST', '/api/v1/namespaces/default/services', service('bypass'))).status, 201);
    await waitFor('bypass back-stopped', async () => (await lab!.kubectlOk(['get', 'svc', 'bypass', '-o', 'jsonpath={.status.loadBalancer.ingress[0].ip}'])).trim());
    const { resourceVersion: _rv, uid: _uid, creationTimestamp: _ct, managedFields: _mf, generation: _g, ...meta } = objectBody(hook).metadata;
    assert.equal((await c.request('POST', '/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations', { ...objectBody(hook), metadata: meta })).status, 201);
    // A forced shrink of the pool moves its holder.
    await lab.kubectlOk(['annotate', 'ippool', 'lab', 'admitlb.io/force=true']);
    await lab.apply(pool('lab', { addresses: ['192.0.2.208-192.0.2.209'] }));
    await waitFor('bypass moved into the shrunk pool', async () => ['192.0.2.208', '192.0.2.209'].includes((await lab!.kubectlOk(['get', 'svc', 'bypass', '-o', 'jsonpath={.status.loadBalancer.ingress[0].ip}'])).trim()), { timeoutMs: 20_000 });
    // Deletion frees the claim; the orphan of the rejected create is gone after its grace.
    await lab.kubectlOk(['delete', 'svc', 'web']);
    await until('claims settle', async () => {
      const claims = objectBody(await c.request('GET', '/apis/admitlb.io/v1alpha1/ipclaims')).items as any[];
      return claims.length === 1 && claims[0].spec.heldBy === 'default/bypass' ? true : undefined;
    }, 30_000);
    // A speaker killed and restarted finds its Lease still there (create → AlreadyExists → read → update).
    await lab.kill(lab.speakers.get('node-b')!, 'SIGKILL');
    await lab.startSpeaker('node-b');
    // A speaker's graceful shutdown deletes its Lease.
    await lab.kill(lab.speakers.get('node-a')!, 'SIGTERM');
    await waitFor('node-a Lease deleted', async () => (await c.request('GET', '/apis/coordination.k8s.io/v1/namespaces/admitlb-system/leases/admitlb-speaker-node-a')).status === 404, { timeoutMs: 10_000 });
    await sleep(1000);
    events = readAuditLog(lab.cluster.dataDir);
  });

  after(async () => {
    await lab?.destroy();
    assert.deepEqual(await labNamespaces(), [], 'lab namespaces left behind');
  });

  for (const [component, user, account] of [
    ['webhook and controller', WEBHOOK_USER, { namespace: 'admitlb-system', name: 'admitlb' }],
    ['speaker', SPEAKER_USER, { namespace: 'admitlb-system', name: 'admitlb-speaker' }],
  ] as const) {
    it(`${component} (${account.name}): every request allowed, every rule used`, () => {
      const mine = events.filter((e) => e.user === user);
      assert.ok(mine.length > 50, `the audit log has ${mine.length} requests of ${user}`);
      const forbidden = mine.filter((e) => e.code === 403).map((e) => `${e.verb} ${e.uri}`);
      assert.deepEqual([...new Set(forbidden)], [], 'requests RBAC refused');
      const used = [...new Set(mine.map((e) => `${e.verb} ${e.apiGroup || 'core'}/${resourceOf(e)}`))].sort();
      console.log(`# ${account.name} used: ${used.join(', ')}`);
      assert.deepEqual(unused(grantedRules(account), mine), [], 'granted but never used');
    });
  }
});
