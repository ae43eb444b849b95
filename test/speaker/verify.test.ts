// The speaker's signature check (checkServiceAssignment, what Speaker.verify runs before a pass):
// only an assignment the webhook signed for this very Service reaches planSpeaker, and each way a
// token can fail says why (the reason the speaker logs with "assignment does not verify").
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ANN_ALLOCATION } from '../../src/config/annotations.ts';
import type { IPClaim, IPPool } from '../../src/config/schemas.ts';
import type { Service } from '../../src/kube/types.ts';
import { signAssignment, type Assignment, type KeySet } from '../../src/signing/assignment.ts';
import { planSpeaker, type NodeObject, type PlanInput } from '../../src/speaker/plan.ts';
import { checkServiceAssignment } from '../../src/speaker/verify.ts';
import { testKeys } from '../helpers/state.ts';

const ADDRESS = '192.0.2.10';

const node = (name: string): NodeObject => ({
  metadata: { name, labels: { 'kubernetes.io/hostname': name } },
  status: { conditions: [{ type: 'Ready', status: 'True' }, { type: 'NetworkUnavailable', status: 'False' }] },
});

const service = (token: string | undefined, o: { ns?: string; name?: string } = {}): Service => ({
  metadata: { name: o.name ?? 'web', namespace: o.ns ?? 'default', uid: 'uid-web', ...(token !== undefined ? { annotations: { [ANN_ALLOCATION]: token } } : {}) },
  spec: { type: 'LoadBalancer' },
  status: { loadBalancer: { ingress: [{ ip: ADDRESS }] } },
});

const signed = (a: Partial<Assignment> = {}): Assignment => ({ namespace: 'default', name: 'web', ips: [ADDRESS], pool: 'p', externalIPs: [], ...a });

/** A one-node world in which `svc`, when its assignment verifies, is announced over L2 by n1. */
function world(svc: Service, assignment: Assignment | undefined): PlanInput {
  const claim: IPClaim = { metadata: { name: ADDRESS }, spec: { address: ADDRESS, pool: 'p', holders: [{ namespace: 'default', name: 'web', use: 'LoadBalancer', ports: [], backend: '' }] } };
  const pool: IPPool = { metadata: { name: 'p' }, spec: { addresses: ['192.0.2.0/24'], autoAssign: true, avoidBuggyIPs: false, usage: ['LoadBalancer'] } };
  return {
    nodeName: 'n1',
    nodes: [node('n1')],
    liveNodes: new Set(['n1']),
    services: [{ service: svc, assignment }],
    claims: [claim],
    endpointSlices: [
      { metadata: { name: 'web-x', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } }, endpoints: [{ addresses: ['10.0.0.1'], nodeName: 'n1', conditions: { ready: true } }] },
    ],
    pools: [pool],
    l2Advertisements: [{ metadata: { name: 'all' }, spec: {} }],
    bgpAdvertisements: [],
    bgpPeers: [],
  };
}

/** Replaces the payload of a compact JWS, keeping header and signature (what a forger can do). */
function tamper(token: string, edit: (payload: Record<string, unknown>) => void): string {
  const [header, payload, signature] = token.split('.');
  const body = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as Record<string, unknown>;
  edit(body);
  return [header, Buffer.from(JSON.stringify(body)).toString('base64url'), signature].join('.');
}

describe('speaker: signature check before announcing', async () => {
  const { keys } = await testKeys();
  const { keys: strangerKeys } = await testKeys();
  const sign = (a: Partial<Assignment> = {}, k: KeySet = keys, opts: { now?: number; ttlSeconds?: number } = {}) => signAssignment(k, signed(a), opts);

  const cases: { name: string; svc: () => Promise<Service>; reason: RegExp | undefined }[] = [
    { name: 'a valid signature for this Service', svc: async () => service(await sign()), reason: undefined },
    { name: 'no token at all', svc: async () => service(undefined), reason: undefined },
    {
      name: 'tampered ips',
      svc: async () => service(tamper(await sign({ ips: ['192.0.2.99'] }), (p) => { p.ips = [ADDRESS]; })),
      reason: /signature does not verify/,
    },
    { name: 'signed for another name', svc: async () => service(await sign({ name: 'other' })), reason: /issued for default\/other, not default\/web/ },
    { name: 'signed for another namespace', svc: async () => service(await sign({ namespace: 'team-b' })), reason: /issued for team-b\/web, not default\/web/ },
    { name: 'tampered namespace', svc: async () => service(tamper(await sign({ namespace: 'team-b' }), (p) => { p.ns = 'default'; })), reason: /signature does not verify/ },
    { name: 'an unknown kid', svc: async () => service(await sign({}, strangerKeys)), reason: /unknown key/ },
    { name: 'expired', svc: async () => service(await sign({}, keys, { now: Date.now() - 120_000, ttlSeconds: 60 })), reason: /expired/ },
    { name: 'not a JWS', svc: async () => service('not-a-token'), reason: /not a valid JWS/ },
  ];

  for (const c of cases) {
    const valid = c.name.startsWith('a valid');
    it(`${c.name}: ${valid ? 'announced' : 'not announced'}`, async () => {
      const svc = await c.svc();
      const check = await checkServiceAssignment(keys, svc);
      if (c.reason) assert.match(check.reason ?? '(no reason)', c.reason, 'the reason the speaker logs');
      else assert.equal(check.reason, undefined, 'no reason to log');
      assert.equal(check.assignment !== undefined, valid, valid ? 'the assignment verifies' : 'the assignment must not verify');
      const plan = planSpeaker(world(svc, check.assignment));
      assert.deepEqual(plan.l2.map((a) => a.address), valid ? [ADDRESS] : [], 'what n1 announces');
      if (!valid) {
        assert.deepEqual(plan.skipped, [{ service: 'default/web', reason: 'no signed assignment verifies for this Service' }], 'planSpeaker says why it skipped the Service');
      }
    });
  }
});
