// doctor's pure parts: the permissions it checks come from the shipped rbac.yaml, and the one-line
// rendering (fix only on warn/fail, "skipped: why" for checks without meaning here).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { renderChecks, requiredPermissions } from '../../src/kubectl/doctor.ts';

describe('doctor', () => {
  it('reads each component\'s permissions from webhook-manifests/rbac.yaml, namespaced Roles with their namespace', () => {
    const perms = requiredPermissions(readFileSync('webhook-manifests/rbac.yaml', 'utf8'));
    assert.deepEqual([...perms.keys()].sort(), ['admitlb', 'admitlb-speaker']);
    const admitlb = perms.get('admitlb')!;
    assert.ok(admitlb.some((r) => r.apiGroups.includes('admitlb.io') && r.resources.includes('ipclaims') && r.verbs.includes('create') && !r.namespace));
    const lease = admitlb.find((r) => r.resourceNames?.includes('admitlb-controller'));
    assert.deepEqual(lease && { verbs: lease.verbs, namespace: lease.namespace }, { verbs: ['get', 'update'], namespace: 'admitlb-system' });
    const speaker = perms.get('admitlb-speaker')!;
    assert.ok(speaker.every((r) => !r.verbs.includes('patch')), 'the speaker writes nothing but Events and Leases');
    assert.ok(speaker.some((r) => r.resources.includes('leases') && r.namespace === 'admitlb-system'));
  });

  it('one line per check: the fix after a failure or warning, skipped checks say why', () => {
    const text = renderChecks([
      { name: 'ca-bundle', result: 'pass', detail: 'ok' },
      { name: 'certificate-expiry', result: 'warn', detail: 'expires in 3 days', fix: 'renew it' },
      { name: 'speakers', result: 'skipped', detail: 'no Nodes' },
      { name: 'clock-skew', result: 'fail', detail: 'off by 9 s', fix: 'synchronise' },
    ]);
    assert.equal(
      text,
      'pass  ca-bundle           ok\n' +
        'warn  certificate-expiry  expires in 3 days; fix: renew it\n' +
        'skip  speakers            skipped: no Nodes\n' +
        'fail  clock-skew          off by 9 s; fix: synchronise\n',
    );
  });
});
