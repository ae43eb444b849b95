// Impersonation in the double (kubectl --as / --as-group): what admission sees as userInfo, and who may
// impersonate. A validating webhook records the userInfo of each request.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { removeDir, startSandbox, startWebhook, type Sandbox, type TestWebhook } from './helpers.ts';

let sb: Sandbox;
let hook: TestWebhook;

before(async () => {
  sb = await startSandbox('impersonation');
  hook = await startWebhook();
  const r = await sb.request('POST', '/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations', {
    metadata: { name: 'record' },
    webhooks: [
      {
        name: 'record.example.test',
        sideEffects: 'None',
        admissionReviewVersions: ['v1'],
        rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['configmaps'] }],
        clientConfig: { url: hook.url, caBundle: hook.caBundle },
      },
    ],
  });
  assert.equal(r.status, 201, r.text);
});
after(async () => {
  await hook.close();
  await sb.close();
  removeDir(sb.dataDir);
});

describe('impersonation', () => {
  const table: { name: string; args: string[]; user: { username: string; groups: string[] } }[] = [
    { name: 'no impersonation: the token user', args: [], user: { username: 'admin', groups: ['system:masters', 'system:authenticated'] } },
    { name: 'a ServiceAccount without groups gets its groups', args: ['--as=system:serviceaccount:shop:deployer'], user: { username: 'system:serviceaccount:shop:deployer', groups: ['system:serviceaccounts', 'system:serviceaccounts:shop', 'system:authenticated'] } },
    { name: 'a user with groups', args: ['--as=alice', '--as-group=dev', '--as-group=ops'], user: { username: 'alice', groups: ['dev', 'ops', 'system:authenticated'] } },
    { name: 'a user without groups', args: ['--as=bob'], user: { username: 'bob', groups: ['system:authenticated'] } },
  ];
  for (const [i, t] of table.entries()) {
    it(t.name, async () => {
      hook.calls.length = 0;
      const r = await sb.kubectl([...t.args, 'create', 'configmap', `cm-${i}`, '--from-literal=a=b']);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(hook.calls.length, 1);
      const u = hook.calls[0]!.request.userInfo;
      assert.deepEqual({ username: u.username, groups: u.groups }, t.user);
    });
  }

  it('groups without a user are refused', async () => {
    const r = await sb.request('POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: 'x' } }, { 'Impersonate-Group': 'dev' });
    assert.equal(r.status, 500, r.text);
    assert.match(r.json().message, /without impersonating a user/);
  });

  it('only a member of system:masters may impersonate', async () => {
    const other = await startSandbox('impersonation-user', { user: { username: 'carol', groups: ['system:authenticated'] } });
    try {
      const r = await other.request('GET', '/api/v1/namespaces/default/configmaps', undefined, { 'Impersonate-User': 'admin' });
      assert.equal(r.status, 403, r.text);
      assert.equal(r.json().message, 'users "admin" is forbidden: User "carol" cannot impersonate resource "users" in API group "" at the cluster scope');
    } finally {
      await other.close();
      removeDir(other.dataDir);
    }
  });
});
