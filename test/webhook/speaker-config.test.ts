// POST /validate/speaker-config: AdmissionReviews for L2Advertisements, BGPPeers and
// BGPAdvertisements through the fastify app (app.inject), with the same review handling, error codes
// and audit line as /validate/ippools.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import pino from 'pino';
import type { FastifyInstance } from 'fastify';
import { buildWebhookApp, type SpeakerConfigDeps } from '../../src/webhook/app.ts';
import { createWebhookMetrics } from '../../src/webhook/metrics.ts';
import { bgpAdvertisementSchema, bgpPeerSchema, type BGPAdvertisement, type BGPPeer } from '../../src/config/schemas.ts';
import { harness, pool, silentLogger } from '../helpers/state.ts';

const RESOURCES = { L2Advertisement: 'l2advertisements', BGPPeer: 'bgppeers', BGPAdvertisement: 'bgpadvertisements' } as const;
type Kind = keyof typeof RESOURCES;

function review(kind: Kind | 'IPPool', operation: string, object: Record<string, any> | null, oldObject: Record<string, any> | null = null) {
  const resource = kind === 'IPPool' ? 'ippools' : RESOURCES[kind];
  return {
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid: `uid-${kind}-${operation}`,
      kind: { group: 'admitlb.io', version: 'v1alpha1', kind },
      resource: { group: 'admitlb.io', version: 'v1alpha1', resource },
      name: object?.metadata?.name ?? oldObject?.metadata?.name,
      operation,
      userInfo: { username: 'admin', groups: ['system:masters'] },
      object,
      oldObject,
    },
  };
}
const obj = (kind: Kind, name: string, spec: Record<string, unknown>) => ({ apiVersion: 'admitlb.io/v1alpha1', kind, metadata: { name }, spec });
const peer = (name: string, spec: Record<string, unknown> = {}): BGPPeer =>
  bgpPeerSchema.parse(obj('BGPPeer', name, { peerAddress: '192.0.2.1', peerASN: 64501, myASN: 64500, ...spec }));
const ad = (name: string, spec: Record<string, unknown>): BGPAdvertisement => bgpAdvertisementSchema.parse(obj('BGPAdvertisement', name, spec));

async function setup(extra: SpeakerConfigDeps = {}, logger = silentLogger()) {
  const h = await harness([pool('default', { addresses: ['203.0.113.0/28'] }), pool('wide', { addresses: ['198.51.100.0/24'] })]);
  const app = buildWebhookApp({
    deps: { ...h.deps, ...extra },
    logger,
    metrics: createWebhookMetrics(h.state),
    readiness: { ready: () => ({ ok: true, reasons: [] }) },
  });
  return { ...h, app };
}

async function post(app: FastifyInstance, body: unknown) {
  const res = await app.inject({ method: 'POST', url: '/validate/speaker-config', payload: body as object });
  return { status: res.statusCode, body: res.json() as { response: any; error?: string; message?: string } };
}

describe('POST /validate/speaker-config', () => {
  it('allows valid objects of the three kinds, echoing the uid', async () => {
    const t = await setup({ listBgpPeers: () => [peer('tor-a')] });
    for (const [kind, spec] of [
      ['L2Advertisement', { ipPools: ['default'], interfaces: ['eth*'] }],
      ['BGPPeer', { peerAddress: '2001:db8::1', peerASN: 64501, myASN: 64500, holdTime: 9, keepaliveTime: 3 }],
      ['BGPAdvertisement', { ipPools: ['default'], peers: ['tor-a'], aggregationLength: 28, communities: ['no-export'] }],
    ] as const) {
      const r = review(kind, 'CREATE', obj(kind, 'x', spec));
      const { status, body } = await post(t.app, r);
      assert.equal(status, 200);
      assert.equal(body.response.uid, r.request.uid);
      assert.equal(body.response.allowed, true, `${kind}: ${JSON.stringify(body.response.status)}`);
      assert.equal(body.response.patch, undefined);
    }
  });

  it('denies a BGPPeer with a 422 naming the kind, the object and every field', async () => {
    const t = await setup();
    const { body } = await post(t.app, review('BGPPeer', 'CREATE', obj('BGPPeer', 'tor-a', { peerAddress: '192.0.2.999', peerASN: 64501, myASN: 64500, holdTime: 2 })));
    assert.equal(body.response.allowed, false);
    assert.equal(body.response.status.code, 422);
    assert.equal(body.response.status.reason, 'Invalid');
    assert.match(body.response.status.message, /^BGPPeer "tor-a" is invalid: /);
    assert.match(body.response.status.message, /spec\.peerAddress: "192\.0\.2\.999" is not a valid IP address/);
    assert.match(body.response.status.message, /spec\.holdTime: must be 0 \(no keepalives\) or at least 3 seconds/);
  });

  it('denies keepalive above hold, mixed families and a password on UPDATE', async () => {
    const t = await setup();
    const old = obj('BGPPeer', 'tor-a', { peerAddress: '192.0.2.1', peerASN: 64501, myASN: 64500 });
    const bad = obj('BGPPeer', 'tor-a', { peerAddress: '192.0.2.1', sourceAddress: '2001:db8::5', peerASN: 64501, myASN: 64500, holdTime: 10, keepaliveTime: 11, password: 'hunter2' });
    const { body } = await post(t.app, review('BGPPeer', 'UPDATE', bad, old));
    assert.equal(body.response.allowed, false);
    const message: string = body.response.status.message;
    assert.match(message, /spec\.keepaliveTime: 11 is above holdTime \(10\)/);
    assert.match(message, /spec\.sourceAddress: "2001:db8::5" is IPv6 but peerAddress "192\.0\.2\.1" is IPv4/);
    assert.match(message, /spec\.password: a plaintext TCP MD5 password is not accepted.*passwordSecretRef/);
    assert.doesNotMatch(message, /hunter2/, 'the password is not echoed');
  });

  it('denies unknown pools and peers (the peers come from listBgpPeers; none without it)', async () => {
    const t = await setup({ listBgpPeers: () => [peer('tor-a')] });
    const { body } = await post(t.app, review('BGPAdvertisement', 'CREATE', obj('BGPAdvertisement', 'adv', { ipPools: ['default', 'nope'], peers: ['tor-a', 'tor-z'] })));
    assert.equal(body.response.allowed, false);
    assert.equal(
      body.response.status.message,
      'BGPAdvertisement "adv" is invalid: spec.ipPools[1]: IPPool "nope" does not exist; spec.peers[1]: BGPPeer "tor-z" does not exist',
    );
    const bare = await setup();
    const r = await post(bare.app, review('BGPAdvertisement', 'CREATE', obj('BGPAdvertisement', 'adv', { peers: ['tor-a'] })));
    assert.match(r.body.response.status.message, /spec\.peers\[0\]: BGPPeer "tor-a" does not exist/);
    const l2 = await post(bare.app, review('L2Advertisement', 'CREATE', obj('L2Advertisement', 'l2', { ipPools: ['ghost'] })));
    assert.equal(l2.body.response.status.message, 'L2Advertisement "l2" is invalid: spec.ipPools[0]: IPPool "ghost" does not exist');
  });

  it('denies an aggregation length shorter than a selected pool prefix (pools from the allocation state)', async () => {
    const t = await setup();
    const { body } = await post(t.app, review('BGPAdvertisement', 'CREATE', obj('BGPAdvertisement', 'agg', { ipPools: ['default'], aggregationLength: 24 })));
    assert.equal(body.response.allowed, false);
    assert.match(body.response.status.message, /spec\.aggregationLength: 24 is shorter than the \/28 of 203\.0\.113\.0\/28 in IPPool "default"/);
    // A pool added to the cluster is seen by the next review.
    t.cluster.setPool(pool('tiny', { addresses: ['192.0.2.0/30'] }));
    const next = await post(t.app, review('BGPAdvertisement', 'CREATE', obj('BGPAdvertisement', 'agg', { ipPools: ['tiny'], aggregationLength: 29 })));
    assert.match(next.body.response.status.message, /\/30 of 192\.0\.2\.0\/30 in IPPool "tiny"/);
  });

  it('ipPoolSelectors use poolLabels when given', async () => {
    const spec = { ipPoolSelectors: [{ matchLabels: { tier: 'edge' } }], aggregationLength: 24 };
    const labelled = await setup({ poolLabels: (name): Record<string, string> => (name === 'default' ? { tier: 'edge' } : {}) });
    const denied = await post(labelled.app, review('BGPAdvertisement', 'CREATE', obj('BGPAdvertisement', 'sel', spec)));
    assert.match(denied.body.response.status.message, /IPPool "default"/);
    const unlabelled = await setup();
    assert.equal((await post(unlabelled.app, review('BGPAdvertisement', 'CREATE', obj('BGPAdvertisement', 'sel', spec)))).body.response.allowed, true);
  });

  it('denies conflicting local preferences against listBgpAdvertisements', async () => {
    const t = await setup({ listBgpPeers: () => [peer('tor-a')], listBgpAdvertisements: () => [ad('first', { ipPools: ['wide'], localPref: 100 })] });
    const { body } = await post(t.app, review('BGPAdvertisement', 'CREATE', obj('BGPAdvertisement', 'second', { ipPools: ['wide'], peers: ['tor-a'], localPref: 150 })));
    assert.equal(body.response.allowed, false);
    assert.match(body.response.status.message, /spec\.localPref: 150 conflicts with localPref 100 of BGPAdvertisement "first", which also selects IPPool "wide" for BGPPeer "tor-a"/);
    const self = await post(t.app, review('BGPAdvertisement', 'UPDATE', obj('BGPAdvertisement', 'first', { ipPools: ['wide'], localPref: 150 }), obj('BGPAdvertisement', 'first', { ipPools: ['wide'], localPref: 100 })));
    assert.equal(self.body.response.allowed, true, 'an advertisement does not conflict with its old self');
  });

  it('DELETE (not registered, but harmless) is allowed and audited as skipped', async () => {
    const lines: any[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (chunk, _e, cb) => {
      lines.push(JSON.parse(String(chunk)));
      cb();
    } }));
    const t = await setup({}, logger);
    const { body } = await post(t.app, review('BGPPeer', 'DELETE', null, obj('BGPPeer', 'tor-a', {})));
    assert.equal(body.response.allowed, true);
    const audit = lines.find((l) => l.audit);
    assert.equal(audit.decision, 'skipped');
    assert.equal(audit.name, 'tor-a');
  });

  it('writes one audit line per decision and counts it in the metrics', async () => {
    const lines: any[] = [];
    const logger = pino({ level: 'info' }, new Writable({ write: (chunk, _e, cb) => {
      lines.push(JSON.parse(String(chunk)));
      cb();
    } }));
    const t = await setup({}, logger);
    await post(t.app, review('L2Advertisement', 'CREATE', obj('L2Advertisement', 'l2', {})));
    await post(t.app, review('L2Advertisement', 'CREATE', obj('L2Advertisement', 'l2b', { ipPools: ['ghost'] })));
    const audits = lines.filter((l) => l.audit);
    assert.equal(audits.length, 2);
    assert.deepEqual(
      audits.map((a) => [a.webhook, a.operation, a.name, a.user, a.decision]),
      [
        ['speaker-config.admitlb.io', 'CREATE', 'l2', 'admin', 'allowed'],
        ['speaker-config.admitlb.io', 'CREATE', 'l2b', 'admin', 'denied'],
      ],
    );
    assert.match(audits[1].reason, /IPPool "ghost" does not exist/);
    assert.deepEqual(audits[0].groups, ['system:masters']);
    assert.equal(typeof audits[0].latencyMs, 'number');
    const metrics = (await t.app.inject('/metrics')).body;
    assert.match(metrics, /admitlb_admission_decisions_total\{webhook="speaker-config.admitlb.io",operation="CREATE",decision="allowed"\} 1/);
    assert.match(metrics, /admitlb_admission_decisions_total\{webhook="speaker-config.admitlb.io",operation="CREATE",decision="denied"\} 1/);
  });

  it('a failing cache hook is an InternalError denial, not a 500', async () => {
    const t = await setup({
      listBgpAdvertisements: () => {
        throw new Error('cache not started');
      },
    });
    const { status, body } = await post(t.app, review('BGPAdvertisement', 'CREATE', obj('BGPAdvertisement', 'a', {})));
    assert.equal(status, 200);
    assert.equal(body.response.allowed, false);
    assert.equal(body.response.status.code, 500);
    assert.match(body.response.status.message, /admitlb could not decide: cache not started/);
    // Counted as an error, not as a policy denial (the webhook error alert reads this).
    const metrics = (await t.app.inject('/metrics')).body;
    assert.match(metrics, /admitlb_admission_decisions_total\{webhook="speaker-config.admitlb.io",operation="CREATE",decision="error"\} 1/);
  });

  it('the same error codes as the other endpoints: wrong resource, malformed review, malformed JSON', async () => {
    const t = await setup();
    const wrong = await post(t.app, review('IPPool', 'CREATE', pool('p', { addresses: ['192.0.2.0/24'] }) as any));
    assert.equal(wrong.status, 400);
    assert.equal(wrong.body.error, 'ADMITLB_WRONG_RESOURCE');
    assert.equal(wrong.body.message, 'this endpoint admits l2advertisements, bgppeers or bgpadvertisements, not ippools');
    const malformed = await post(t.app, { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request: { uid: '' } });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.body.error, 'ADMITLB_MALFORMED_REVIEW');
    const json = await t.app.inject({ method: 'POST', url: '/validate/speaker-config', payload: '{not json', headers: { 'content-type': 'application/json' } });
    assert.equal(json.statusCode, 400);
    assert.equal(json.json().error, 'ADMITLB_MALFORMED_JSON');
    // And /validate/ippools still names its single resource.
    const ippools = await t.app.inject({ method: 'POST', url: '/validate/ippools', payload: review('BGPPeer', 'CREATE', obj('BGPPeer', 'x', {})) });
    assert.equal(ippools.json().message, 'this endpoint admits ippools, not bgppeers');
  });

  it('a spec that is not an object is a denial naming spec', async () => {
    const t = await setup();
    const { body } = await post(t.app, review('BGPAdvertisement', 'CREATE', { apiVersion: 'admitlb.io/v1alpha1', kind: 'BGPAdvertisement', metadata: { name: 'a' }, spec: 'all' }));
    assert.equal(body.response.allowed, false);
    assert.match(body.response.status.message, /^BGPAdvertisement "a" is invalid: spec: /);
  });
});
