// ValidatingAdmissionPolicies in the double: what is refused when stored, what the double does not
// implement (paramKind fails per failurePolicy), and the exemption of admissionregistration objects.
// The behaviour shared with kube-apiserver is checked on both targets in test/e2e/admission-policies.test.ts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { removeDir, startSandbox, type Sandbox } from './helpers.ts';

let sb: Sandbox;
const POLICIES = '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies';
const BINDINGS = '/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings';
const CM = '/api/v1/namespaces/default/configmaps';

const policy = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingAdmissionPolicy', metadata: { name }, spec });
const binding = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingAdmissionPolicyBinding', metadata: { name }, spec });
const cmRule = { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['configmaps'] };

before(async () => {
  sb = await startSandbox('policies');
});
after(async () => {
  await sb.close();
  removeDir(sb.dataDir);
});

describe('ValidatingAdmissionPolicy in the double', () => {
  it('defaults failurePolicy and refuses incomplete policies and bindings', async () => {
    const ok = await sb.request('POST', POLICIES, policy('defaults', { matchConstraints: { resourceRules: [cmRule] }, validations: [{ expression: 'true' }] }));
    assert.equal(ok.status, 201, ok.text);
    assert.equal(ok.json().spec.failurePolicy, 'Fail');
    assert.equal(ok.json().spec.matchConstraints.matchPolicy, 'Equivalent');
    const bad = await sb.request('POST', POLICIES, policy('bad', { matchConstraints: { resourceRules: [cmRule] }, validations: [{ expression: 'true', reason: 'Teapot' }] }));
    assert.equal(bad.status, 422, bad.text);
    assert.match(bad.json().message, /spec\.validations\[0\]\.reason: Unsupported value: "Teapot"/);
    const empty = await sb.request('POST', POLICIES, policy('empty', { matchConstraints: { resourceRules: [cmRule] } }));
    assert.equal(empty.status, 422, empty.text);
    const noActions = await sb.request('POST', BINDINGS, binding('no-actions', { policyName: 'defaults' }));
    assert.equal(noActions.status, 422, noActions.text);
    assert.match(noActions.json().message, /spec\.validationActions: Required value/);
  });

  it('a policy with paramKind is not implemented: it fails per its failurePolicy', async () => {
    for (const [name, failurePolicy, want] of [['params-fail', 'Fail', 422], ['params-ignore', 'Ignore', 201]] as const) {
      assert.equal((await sb.request('POST', POLICIES, policy(name, { failurePolicy, paramKind: { apiVersion: 'v1', kind: 'ConfigMap' }, matchConstraints: { resourceRules: [cmRule] }, validations: [{ expression: 'true' }] }))).status, 201);
      assert.equal((await sb.request('POST', BINDINGS, binding(name, { policyName: name, validationActions: ['Deny'], paramRef: { name: 'x', namespace: 'default', parameterNotFoundAction: 'Deny' } }))).status, 201);
      const r = await sb.request('POST', CM, { metadata: { name: `cm-${name}` } });
      assert.equal(r.status, want, r.text);
      if (want === 422) assert.match(r.json().message, /ValidatingAdmissionPolicy 'params-fail' with binding 'params-fail' denied request: the API double does not implement paramKind/);
      assert.equal((await sb.request('DELETE', `${BINDINGS}/${name}`)).status, 200);
    }
  });

  it('policy and binding objects are exempt from policies', async () => {
    const denyAll = { matchConstraints: { resourceRules: [{ apiGroups: ['*'], apiVersions: ['*'], operations: ['*'], resources: ['*'] }] }, validations: [{ expression: 'false', message: 'nothing' }] };
    assert.equal((await sb.request('POST', POLICIES, policy('deny-all', denyAll))).status, 201);
    assert.equal((await sb.request('POST', BINDINGS, binding('deny-all', { policyName: 'deny-all', validationActions: ['Deny'] }))).status, 201);
    const cm = await sb.request('POST', CM, { metadata: { name: 'refused' } });
    assert.equal(cm.status, 422, cm.text);
    // ...but the policy can still be removed, or nobody could ever undo it.
    assert.equal((await sb.request('DELETE', `${BINDINGS}/deny-all`)).status, 200);
    assert.equal((await sb.request('DELETE', `${POLICIES}/deny-all`)).status, 200);
    assert.equal((await sb.request('POST', CM, { metadata: { name: 'refused' } })).status, 201);
  });
});
