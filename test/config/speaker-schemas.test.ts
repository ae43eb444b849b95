// The speaker configuration schemas (L2Advertisement, BGPPeer, BGPAdvertisement): what they accept,
// the defaults they apply, and for each rejected case the field the message names.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { z } from 'zod';
import {
  bgpAdvertisementSchema,
  bgpAdvertisementSpecSchema,
  bgpPeerSchema,
  bgpPeerSpecSchema,
  DEFAULT_EXCLUDED_INTERFACES,
  l2AdvertisementSchema,
  l2AdvertisementSpecSchema,
  speakerConfigSchemas,
  TCP_MD5_UNSUPPORTED,
  WELL_KNOWN_COMMUNITIES,
} from '../../src/config/schemas.ts';

/** The issues of a failed parse as `path: message`. */
function issues(schema: z.ZodType, input: unknown): string[] {
  const r = schema.safeParse(input);
  assert.equal(r.success, false, `expected ${JSON.stringify(input)} to be rejected`);
  return r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

/** Asserts that exactly one issue names `path` and its message matches. */
function rejects(schema: z.ZodType, input: unknown, path: string, message: RegExp) {
  const found = issues(schema, input);
  assert.ok(found.some((f) => f.startsWith(`${path}: `) && message.test(f.slice(path.length + 2))), `no ${path} ~ ${message} in ${JSON.stringify(found)}`);
}

const peer = (extra: Record<string, unknown> = {}) => ({ peerAddress: '192.0.2.1', peerASN: 64501, myASN: 64500, ...extra });

describe('L2Advertisement schema', () => {
  it('an empty spec is valid: every pool, every node, automatic interfaces', () => {
    assert.deepEqual(l2AdvertisementSpecSchema.parse({}), {});
  });

  it('a full example parses unchanged', () => {
    const spec = {
      ipPools: ['default', 'edge'],
      ipPoolSelectors: [{ matchLabels: { announce: 'l2' } }],
      nodeSelectors: [{ matchExpressions: [{ key: 'node-role.kubernetes.io/edge', operator: 'Exists' }] }],
      interfaces: ['eth*', 'bond0', 'en[op]*'],
      excludeInterfaces: ['eth9'],
    };
    assert.deepEqual(l2AdvertisementSpecSchema.parse(spec), spec);
    const obj = l2AdvertisementSchema.parse({ apiVersion: 'admitlb.io/v1alpha1', kind: 'L2Advertisement', metadata: { name: 'l2' }, spec });
    assert.deepEqual(obj.spec, spec);
  });

  it('the built-in exclusions are exported for the speaker', () => {
    assert.deepEqual([...DEFAULT_EXCLUDED_INTERFACES], ['veth*', 'cali*', 'kube-ipvs*', 'lo', 'docker*', 'cni*', 'flannel*', 'vxlan*', 'tunl*']);
  });

  it('rejects bad fields, naming them', () => {
    rejects(l2AdvertisementSpecSchema, { interfaces: ['eth 0'] }, 'interfaces.0', /interface name or glob pattern/);
    rejects(l2AdvertisementSpecSchema, { excludeInterfaces: ['a/b'] }, 'excludeInterfaces.0', /interface name or glob pattern/);
    rejects(l2AdvertisementSpecSchema, { interfaces: [''] }, 'interfaces.0', /too small|at least 1|>=1/i);
    rejects(l2AdvertisementSpecSchema, { ipPools: [''] }, 'ipPools.0', /too small|>=1/i);
    rejects(l2AdvertisementSpecSchema, { ipPools: 'default' }, 'ipPools', /expected array/);
    rejects(l2AdvertisementSpecSchema, { nodeSelectors: [{ matchExpressions: [{ key: 'a', operator: 'Equals' }] }] }, 'nodeSelectors.0.matchExpressions.0.operator', /In|NotIn/);
    rejects(l2AdvertisementSchema, { metadata: { name: 'x' }, kind: 'IPPool', spec: {} }, 'kind', /L2Advertisement/);
  });
});

describe('BGPPeer schema', () => {
  it('applies the defaults: port 179, hold 90, keepalive hold/3, active', () => {
    assert.deepEqual(bgpPeerSpecSchema.parse(peer()), { ...peer(), peerPort: 179, holdTime: 90, keepaliveTime: 30, passive: false, ebgpMultiHop: false });
  });

  it('keepalive defaults to a third of the hold time, rounded down, and to 0 with hold 0', () => {
    assert.equal(bgpPeerSpecSchema.parse(peer({ holdTime: 10 })).keepaliveTime, 3);
    assert.equal(bgpPeerSpecSchema.parse(peer({ holdTime: 3 })).keepaliveTime, 1);
    assert.equal(bgpPeerSpecSchema.parse(peer({ holdTime: 0 })).keepaliveTime, 0);
    assert.equal(bgpPeerSpecSchema.parse(peer({ holdTime: 65535 })).keepaliveTime, 21845);
    assert.equal(bgpPeerSpecSchema.parse(peer({ holdTime: 90, keepaliveTime: 90 })).keepaliveTime, 90);
  });

  it('a full IPv6 example, with graceful restart defaults', () => {
    const spec = bgpPeerSpecSchema.parse({
      peerAddress: '2001:db8::1',
      peerASN: 4200000000,
      myASN: 4294967295,
      peerPort: 1179,
      holdTime: 3,
      keepaliveTime: 1,
      sourceAddress: '2001:db8::2',
      routerID: '10.0.0.1',
      passive: true,
      nodeSelectors: [{ matchLabels: { rack: 'r1' } }],
      gracefulRestart: { enabled: true },
    });
    assert.deepEqual(spec.gracefulRestart, { enabled: true, restartTime: 120 });
    assert.equal(spec.myASN, 4294967295);
    assert.deepEqual(bgpPeerSpecSchema.parse(peer({ gracefulRestart: {} })).gracefulRestart, { enabled: false, restartTime: 120 });
    assert.equal(bgpPeerSpecSchema.parse(peer()).gracefulRestart, undefined);
  });

  it('rejects a plaintext password and points at passwordSecretRef', () => {
    rejects(bgpPeerSpecSchema, peer({ password: 'secret' }), 'password', /plaintext TCP MD5 password is not accepted.*passwordSecretRef/);
    rejects(bgpPeerSpecSchema, peer({ password: '' }), 'password', /TCP MD5/);
    assert.match(TCP_MD5_UNSUPPORTED, /TCP MD5/);
    assert.equal('password' in bgpPeerSpecSchema.parse(peer()), false);
  });

  it('passwordSecretRef: a Secret name, in admitlb-system only', () => {
    assert.deepEqual(bgpPeerSpecSchema.parse(peer({ passwordSecretRef: { name: 'tor-a-md5' } })).passwordSecretRef, { name: 'tor-a-md5' });
    assert.deepEqual(bgpPeerSpecSchema.parse(peer({ passwordSecretRef: { name: 'k', namespace: 'admitlb-system' } })).passwordSecretRef, { name: 'k', namespace: 'admitlb-system' });
    rejects(bgpPeerSpecSchema, peer({ passwordSecretRef: { name: 'k', namespace: 'default' } }), 'passwordSecretRef.namespace', /must be admitlb-system/);
    rejects(bgpPeerSpecSchema, peer({ passwordSecretRef: { name: 'Not_A_Name' } }), 'passwordSecretRef.name', /Secret name/);
    rejects(bgpPeerSpecSchema, peer({ passwordSecretRef: {} }), 'passwordSecretRef.name', /.+/);
  });

  it('bfd: defaults 300 ms × 3, bounded intervals and multiplier', () => {
    assert.deepEqual(bgpPeerSpecSchema.parse(peer({ bfd: {} })).bfd, { minRxMs: 300, minTxMs: 300, multiplier: 3 });
    assert.deepEqual(bgpPeerSpecSchema.parse(peer({ bfd: { minRxMs: 100, minTxMs: 50, multiplier: 5 } })).bfd, { minRxMs: 100, minTxMs: 50, multiplier: 5 });
    assert.equal(bgpPeerSpecSchema.parse(peer()).bfd, undefined);
    rejects(bgpPeerSpecSchema, peer({ bfd: { minRxMs: 5 } }), 'bfd.minRxMs', /10/);
    rejects(bgpPeerSpecSchema, peer({ bfd: { minTxMs: 60001 } }), 'bfd.minTxMs', /60000/);
    rejects(bgpPeerSpecSchema, peer({ bfd: { multiplier: 0 } }), 'bfd.multiplier', /1/);
    rejects(bgpPeerSpecSchema, peer({ bfd: { multiplier: 256 } }), 'bfd.multiplier', /255/);
  });

  it('rejects bad addresses, naming the field', () => {
    rejects(bgpPeerSpecSchema, peer({ peerAddress: '192.0.2.300' }), 'peerAddress', /not a valid IP address/);
    rejects(bgpPeerSpecSchema, peer({ peerAddress: '192.0.2.0/24' }), 'peerAddress', /not a single IP address/);
    rejects(bgpPeerSpecSchema, peer({ peerAddress: 'router.example' }), 'peerAddress', /not a valid IP address/);
    rejects(bgpPeerSpecSchema, peer({ peerAddress: '0.0.0.0' }), 'peerAddress', /unspecified/);
    rejects(bgpPeerSpecSchema, peer({ peerAddress: '2001:db8::g' }), 'peerAddress', /not a valid IPv6 address/);
    rejects(bgpPeerSpecSchema, peer({ sourceAddress: '192.0.2.01' }), 'sourceAddress', /not a valid IP address/);
    rejects(bgpPeerSpecSchema, peer({ routerID: '2001:db8::1' }), 'routerID', /not an IPv4 address/);
    rejects(bgpPeerSpecSchema, peer({ routerID: '1.2.3' }), 'routerID', /not a valid IP address/);
    rejects(bgpPeerSpecSchema, peer({ routerID: '0.0.0.0' }), 'routerID', /unspecified/);
    const { peerAddress: _, ...noAddress } = peer();
    rejects(bgpPeerSpecSchema, noAddress, 'peerAddress', /expected string/);
  });

  it('rejects a source address of the other family', () => {
    rejects(bgpPeerSpecSchema, peer({ sourceAddress: '2001:db8::2' }), 'sourceAddress', /"2001:db8::2" is IPv6 but peerAddress "192.0.2.1" is IPv4/);
    rejects(bgpPeerSpecSchema, peer({ peerAddress: '2001:db8::1', sourceAddress: '192.0.2.2' }), 'sourceAddress', /is IPv4 but peerAddress .* is IPv6/);
  });

  it('rejects ASNs, ports and timers out of range', () => {
    rejects(bgpPeerSpecSchema, peer({ peerASN: 0 }), 'peerASN', />=1/);
    rejects(bgpPeerSpecSchema, peer({ myASN: 4294967296 }), 'myASN', /<=4294967295/);
    rejects(bgpPeerSpecSchema, peer({ myASN: 1.5 }), 'myASN', /expected int/);
    rejects(bgpPeerSpecSchema, peer({ peerPort: 0 }), 'peerPort', />=1/);
    rejects(bgpPeerSpecSchema, peer({ peerPort: 65536 }), 'peerPort', /<=65535/);
    rejects(bgpPeerSpecSchema, peer({ holdTime: 65536 }), 'holdTime', /<=65535/);
    rejects(bgpPeerSpecSchema, peer({ keepaliveTime: 21846, holdTime: 65535 }), 'keepaliveTime', /<=21845/);
    rejects(bgpPeerSpecSchema, peer({ gracefulRestart: { enabled: true, restartTime: 4096 } }), 'gracefulRestart.restartTime', /<=4095/);
    rejects(bgpPeerSpecSchema, peer({ gracefulRestart: { enabled: true, restartTime: 0 } }), 'gracefulRestart.restartTime', />=1/);
    rejects(bgpPeerSpecSchema, peer({ passive: 'yes' }), 'passive', /expected boolean/);
  });

  it('rejects a hold time of 1 or 2 seconds (RFC 4271)', () => {
    for (const holdTime of [1, 2]) rejects(bgpPeerSpecSchema, peer({ holdTime }), 'holdTime', /must be 0 \(no keepalives\) or at least 3 seconds/);
  });

  it('rejects keepalive above hold, and a keepalive with hold 0', () => {
    rejects(bgpPeerSpecSchema, peer({ holdTime: 9, keepaliveTime: 10 }), 'keepaliveTime', /10 is above holdTime \(9\)/);
    rejects(bgpPeerSpecSchema, peer({ keepaliveTime: 91 }), 'keepaliveTime', /above holdTime \(90\)/);
    rejects(bgpPeerSpecSchema, peer({ holdTime: 0, keepaliveTime: 1 }), 'keepaliveTime', /must be 0 when holdTime is 0/);
  });

  it('TTL options: ebgpMultiHop on eBGP only, gtsm hops 1..254 (default 1) and not with ebgpMultiHop', () => {
    assert.equal(bgpPeerSpecSchema.parse(peer({ ebgpMultiHop: true })).ebgpMultiHop, true);
    assert.deepEqual(bgpPeerSpecSchema.parse(peer({ gtsm: {} })).gtsm, { hops: 1 });
    assert.deepEqual(bgpPeerSpecSchema.parse(peer({ gtsm: { hops: 254 } })).gtsm, { hops: 254 });
    rejects(bgpPeerSpecSchema, peer({ myASN: 64501, ebgpMultiHop: true }), 'ebgpMultiHop', /eBGP only/);
    rejects(bgpPeerSpecSchema, peer({ ebgpMultiHop: true, gtsm: { hops: 2 } }), 'gtsm', /drop ebgpMultiHop/);
    rejects(bgpPeerSpecSchema, peer({ gtsm: { hops: 0 } }), 'gtsm.hops', /too small|>=1/i);
    rejects(bgpPeerSpecSchema, peer({ gtsm: { hops: 255 } }), 'gtsm.hops', /too big|<=254/i);
  });

  it('connectTime: whole seconds 1..65535', () => {
    assert.equal(bgpPeerSpecSchema.parse(peer({ connectTime: 10 })).connectTime, 10);
    rejects(bgpPeerSpecSchema, peer({ connectTime: 0 }), 'connectTime', /too small|>=1/i);
    rejects(bgpPeerSpecSchema, peer({ connectTime: 1.5 }), 'connectTime', /int/i);
    rejects(bgpPeerSpecSchema, peer({ connectTime: '10s' }), 'connectTime', /expected number/);
  });

  it('nodeOverrides: exactly one of nodeName and nodeSelector, something to override, addresses of the right family', () => {
    const ok = [{ nodeName: 'n1', sourceAddress: '192.0.2.11', routerID: '192.0.2.11' }, { nodeSelector: { matchLabels: { rack: 'b' } }, routerID: '10.0.0.2' }];
    assert.deepEqual(bgpPeerSpecSchema.parse(peer({ nodeOverrides: ok })).nodeOverrides, ok);
    rejects(bgpPeerSpecSchema, peer({ nodeOverrides: [{ routerID: '10.0.0.1' }] }), 'nodeOverrides.0', /exactly one of nodeName and nodeSelector/);
    rejects(bgpPeerSpecSchema, peer({ nodeOverrides: [{ nodeName: 'n1', nodeSelector: {}, routerID: '10.0.0.1' }] }), 'nodeOverrides.0', /exactly one/);
    rejects(bgpPeerSpecSchema, peer({ nodeOverrides: [{ nodeName: 'n1' }] }), 'nodeOverrides.0', /sourceAddress, routerID or both/);
    rejects(bgpPeerSpecSchema, peer({ nodeOverrides: [{ nodeName: 'n1', sourceAddress: '2001:db8::1' }] }), 'nodeOverrides.0.sourceAddress', /IPv6 but peerAddress/);
    rejects(bgpPeerSpecSchema, peer({ nodeOverrides: [{ nodeName: 'n1', routerID: '2001:db8::1' }] }), 'nodeOverrides.0.routerID', /IPv4/);
  });

  it('the object schema names spec fields under spec', () => {
    rejects(bgpPeerSchema, { metadata: { name: 'r1' }, spec: peer({ holdTime: 2 }) }, 'spec.holdTime', /at least 3/);
    assert.equal(bgpPeerSchema.parse({ metadata: { name: 'r1' }, spec: peer() }).spec.keepaliveTime, 30);
  });
});

describe('BGPAdvertisement schema', () => {
  it('applies the defaults: /32 and /128 aggregation', () => {
    assert.deepEqual(bgpAdvertisementSpecSchema.parse({}), { aggregationLength: 32, aggregationLengthV6: 128 });
  });

  it('a full example parses with its values', () => {
    const spec = {
      ipPools: ['default'],
      ipPoolSelectors: [{ matchLabels: { bgp: 'yes' } }],
      peers: ['tor-a', 'tor-b'],
      nodeSelectors: [{ matchLabels: { rack: 'r1' } }],
      aggregationLength: 24,
      aggregationLengthV6: 64,
      communities: ['65535:65282', '0:0', '64500:100', 'no-export', 'no-advertise', 'no-export-subconfed', 'no-peer'],
      largeCommunities: ['4294967295:0:4294967295', '64500:1:2'],
      localPref: 4294967295,
    };
    assert.deepEqual(bgpAdvertisementSpecSchema.parse(spec), spec);
    assert.equal(bgpAdvertisementSchema.parse({ metadata: { name: 'a' }, spec }).spec.localPref, 4294967295);
    assert.equal(WELL_KNOWN_COMMUNITIES['no-advertise'], '65535:65282');
  });

  it('rejects bad communities, naming the entry', () => {
    rejects(bgpAdvertisementSpecSchema, { communities: ['65536:1'] }, 'communities.0', /each half must be 0\.\.65535/);
    rejects(bgpAdvertisementSpecSchema, { communities: ['1:2', '1:65536'] }, 'communities.1', /0\.\.65535/);
    rejects(bgpAdvertisementSpecSchema, { communities: ['65535'] }, 'communities.0', /must be ASN:VALUE/);
    rejects(bgpAdvertisementSpecSchema, { communities: ['NO-EXPORT'] }, 'communities.0', /no-export/);
    rejects(bgpAdvertisementSpecSchema, { communities: ['1:2:3'] }, 'communities.0', /must be ASN:VALUE/);
    rejects(bgpAdvertisementSpecSchema, { largeCommunities: ['1:2'] }, 'largeCommunities.0', /GLOBAL:LOCAL1:LOCAL2/);
    rejects(bgpAdvertisementSpecSchema, { largeCommunities: ['4294967296:0:0'] }, 'largeCommunities.0', /each part must be 0\.\.4294967295/);
    rejects(bgpAdvertisementSpecSchema, { largeCommunities: ['a:b:c'] }, 'largeCommunities.0', /GLOBAL:LOCAL1:LOCAL2/);
  });

  it('rejects aggregation lengths and local preferences out of range', () => {
    rejects(bgpAdvertisementSpecSchema, { aggregationLength: 33 }, 'aggregationLength', /<=32/);
    rejects(bgpAdvertisementSpecSchema, { aggregationLength: -1 }, 'aggregationLength', />=0/);
    rejects(bgpAdvertisementSpecSchema, { aggregationLengthV6: 129 }, 'aggregationLengthV6', /<=128/);
    rejects(bgpAdvertisementSpecSchema, { localPref: 4294967296 }, 'localPref', /<=4294967295/);
    rejects(bgpAdvertisementSpecSchema, { localPref: -1 }, 'localPref', />=0/);
    rejects(bgpAdvertisementSpecSchema, { peers: [''] }, 'peers.0', />=1/);
  });

  it('nodePreference (BGP and L2): a selector and a weight 1..1000 per entry', () => {
    const pref = [{ nodeSelector: { matchLabels: { tier: 'gold' } }, weight: 100 }];
    assert.deepEqual(bgpAdvertisementSpecSchema.parse({ nodePreference: pref }).nodePreference, pref);
    assert.deepEqual(l2AdvertisementSpecSchema.parse({ nodePreference: pref }).nodePreference, pref);
    for (const schema of [bgpAdvertisementSpecSchema, l2AdvertisementSpecSchema] as z.ZodType[]) {
      rejects(schema, { nodePreference: [{ nodeSelector: {}, weight: 0 }] }, 'nodePreference.0.weight', /too small|>=1/i);
      rejects(schema, { nodePreference: [{ nodeSelector: {}, weight: 1001 }] }, 'nodePreference.0.weight', /too big|<=1000/i);
      rejects(schema, { nodePreference: [{ weight: 5 }] }, 'nodePreference.0.nodeSelector', /expected object/);
    }
  });

  it('speakerConfigSchemas maps each kind to its object schema', () => {
    assert.equal(speakerConfigSchemas.L2Advertisement, l2AdvertisementSchema);
    assert.equal(speakerConfigSchemas.BGPPeer, bgpPeerSchema);
    assert.equal(speakerConfigSchemas.BGPAdvertisement, bgpAdvertisementSchema);
  });
});
