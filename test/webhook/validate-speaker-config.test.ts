// validateSpeakerConfig: the pure cross-object checks of the speaker configuration (plus the schema's
// own rules, reported with the field they name).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { longestPrefix, rangeToCidrs, validateSpeakerConfig, type SpeakerConfigContext } from '../../src/admission/validate-speaker-config.ts';
import { bgpAdvertisementSchema, bgpPeerSchema, type BGPAdvertisement, type BGPPeer } from '../../src/config/schemas.ts';
import { parseRange } from '../../src/allocation/addresses.ts';
import { model } from '../helpers/state.ts';

const bgpPeer = (name: string, spec: Record<string, unknown> = {}): BGPPeer =>
  bgpPeerSchema.parse({ metadata: { name }, spec: { peerAddress: '192.0.2.1', peerASN: 64501, myASN: 64500, ...spec } });
const bgpAd = (name: string, spec: Record<string, unknown> = {}): BGPAdvertisement => bgpAdvertisementSchema.parse({ metadata: { name }, spec });
const raw = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'admitlb.io/v1alpha1', metadata: { name }, spec });

const pools = [
  model('small', { addresses: ['203.0.113.0/28', '2001:db8:1::/120'] }),
  model('wide', { addresses: ['198.51.100.0/24'] }),
  model('ranged', { addresses: ['192.0.2.10-192.0.2.20'] }),
];
const poolLabels: Record<string, Record<string, string>> = { small: { tier: 'edge' }, wide: { tier: 'core' }, ranged: {} };
const ctx = (extra: Partial<SpeakerConfigContext> = {}): SpeakerConfigContext => ({
  pools,
  peers: [bgpPeer('tor-a'), bgpPeer('tor-b', { peerAddress: '192.0.2.2' })],
  advertisements: [],
  poolLabels: (name) => poolLabels[name],
  ...extra,
});
const fields = (problems: { field: string; message: string }[]) => problems.map((p) => p.field);
const one = (problems: { field: string; message: string }[], field: string, message: RegExp) => {
  assert.equal(problems.length, 1, JSON.stringify(problems));
  assert.equal(problems[0]!.field, field);
  assert.match(problems[0]!.message, message);
};

describe('validateSpeakerConfig: each object on its own (schema rules, with fields)', () => {
  it('valid objects of every kind have no problems', () => {
    assert.deepEqual(validateSpeakerConfig('L2Advertisement', raw('l2', {}), ctx()), []);
    assert.deepEqual(validateSpeakerConfig('L2Advertisement', raw('l2', { ipPools: ['small'], interfaces: ['eth*'] }), ctx()), []);
    assert.deepEqual(validateSpeakerConfig('BGPPeer', raw('r', { peerAddress: '2001:db8::1', sourceAddress: '2001:db8::2', peerASN: 1, myASN: 2, routerID: '10.0.0.1' }), ctx()), []);
    assert.deepEqual(validateSpeakerConfig('BGPAdvertisement', raw('a', { ipPools: ['wide'], peers: ['tor-a'], aggregationLength: 24, localPref: 200 }), ctx()), []);
  });

  it('bad addresses name peerAddress, sourceAddress and routerID', () => {
    one(validateSpeakerConfig('BGPPeer', raw('r', { peerAddress: '300.1.1.1', peerASN: 1, myASN: 2 }), ctx()), 'spec.peerAddress', /not a valid IP address/);
    one(validateSpeakerConfig('BGPPeer', raw('r', { peerAddress: '192.0.2.1', sourceAddress: 'eth0', peerASN: 1, myASN: 2 }), ctx()), 'spec.sourceAddress', /not a valid IP address/);
    one(validateSpeakerConfig('BGPPeer', raw('r', { peerAddress: '192.0.2.1', routerID: 'fe80::1', peerASN: 1, myASN: 2 }), ctx()), 'spec.routerID', /not an IPv4 address/);
  });

  it('hold 1–2 s, keepalive above hold and mixed families are reported with their field', () => {
    one(validateSpeakerConfig('BGPPeer', raw('r', { peerAddress: '192.0.2.1', peerASN: 1, myASN: 2, holdTime: 2 }), ctx()), 'spec.holdTime', /at least 3 seconds \(RFC 4271/);
    one(validateSpeakerConfig('BGPPeer', raw('r', { peerAddress: '192.0.2.1', peerASN: 1, myASN: 2, holdTime: 30, keepaliveTime: 31 }), ctx()), 'spec.keepaliveTime', /31 is above holdTime \(30\)/);
    one(validateSpeakerConfig('BGPPeer', raw('r', { peerAddress: '192.0.2.1', sourceAddress: '2001:db8::1', peerASN: 1, myASN: 2 }), ctx()), 'spec.sourceAddress', /is IPv6 but peerAddress "192.0.2.1" is IPv4/);
  });

  it('a plaintext password is refused; passwordSecretRef outside admitlb-system and bad BFD timers are reported with their field', () => {
    one(validateSpeakerConfig('BGPPeer', raw('r', { peerAddress: '192.0.2.1', peerASN: 1, myASN: 2, password: 'x' }), ctx()), 'spec.password', /plaintext TCP MD5 password is not accepted/);
    one(validateSpeakerConfig('BGPPeer', raw('r', { peerAddress: '192.0.2.1', peerASN: 1, myASN: 2, passwordSecretRef: { name: 's', namespace: 'kube-system' } }), ctx()), 'spec.passwordSecretRef.namespace', /must be admitlb-system/);
    one(validateSpeakerConfig('BGPPeer', raw('r', { peerAddress: '192.0.2.1', peerASN: 1, myASN: 2, bfd: { multiplier: 0 } }), ctx()), 'spec.bfd.multiplier', /.+/);
    assert.deepEqual(validateSpeakerConfig('BGPPeer', raw('r', { peerAddress: '192.0.2.1', peerASN: 1, myASN: 2, passwordSecretRef: { name: 's' }, bfd: { minRxMs: 100, minTxMs: 100, multiplier: 3 } }), ctx()), []);
  });

  it('array entries are named with brackets, like IPPool problems', () => {
    one(validateSpeakerConfig('BGPAdvertisement', raw('a', { communities: ['1:2', '70000:1'] }), ctx()), 'spec.communities[1]', /0\.\.65535/);
    one(validateSpeakerConfig('L2Advertisement', raw('l2', { interfaces: ['eth0', 'bad name'] }), ctx()), 'spec.interfaces[1]', /glob pattern/);
    assert.deepEqual(fields(validateSpeakerConfig('L2Advertisement', { metadata: { name: 'x' } }, ctx())), ['spec']);
  });
});

describe('validateSpeakerConfig: references', () => {
  it('ipPools names that do not exist, for both advertisement kinds', () => {
    one(validateSpeakerConfig('L2Advertisement', raw('l2', { ipPools: ['small', 'nope'] }), ctx()), 'spec.ipPools[1]', /IPPool "nope" does not exist/);
    one(validateSpeakerConfig('BGPAdvertisement', raw('a', { ipPools: ['ghost'] }), ctx()), 'spec.ipPools[0]', /IPPool "ghost" does not exist/);
    one(validateSpeakerConfig('L2Advertisement', raw('l2', { ipPools: ['small'] }), ctx({ pools: [] })), 'spec.ipPools[0]', /does not exist/);
  });

  it('peers names that do not exist', () => {
    one(validateSpeakerConfig('BGPAdvertisement', raw('a', { peers: ['tor-a', 'tor-c'] }), ctx()), 'spec.peers[1]', /BGPPeer "tor-c" does not exist/);
    one(validateSpeakerConfig('BGPAdvertisement', raw('a', { peers: ['tor-a'] }), ctx({ peers: [] })), 'spec.peers[0]', /does not exist/);
  });

  it('selectors are not references: a selector that matches nothing is fine', () => {
    assert.deepEqual(validateSpeakerConfig('BGPAdvertisement', raw('a', { ipPoolSelectors: [{ matchLabels: { tier: 'none' } }] }), ctx()), []);
  });
});

describe('validateSpeakerConfig: aggregation length vs. the selected pools', () => {
  it('a /28 pool with aggregationLength 24 is invalid (it would announce addresses outside the pool)', () => {
    one(
      validateSpeakerConfig('BGPAdvertisement', raw('a', { ipPools: ['small'], aggregationLength: 24 }), ctx()),
      'spec.aggregationLength',
      /24 is shorter than the \/28 of 203\.0\.113\.0\/28 in IPPool "small".*outside the pool \(use at least 28\)/,
    );
    assert.deepEqual(validateSpeakerConfig('BGPAdvertisement', raw('a', { ipPools: ['small'], aggregationLength: 28 }), ctx()), []);
    assert.deepEqual(validateSpeakerConfig('BGPAdvertisement', raw('a', { ipPools: ['wide'], aggregationLength: 24 }), ctx()), []);
  });

  it('IPv6 uses aggregationLengthV6, and each family is checked against its own length', () => {
    one(validateSpeakerConfig('BGPAdvertisement', raw('a', { ipPools: ['small'], aggregationLengthV6: 64 }), ctx()), 'spec.aggregationLengthV6', /64 is shorter than the \/120 of 2001:db8:1::\/120/);
    assert.deepEqual(validateSpeakerConfig('BGPAdvertisement', raw('a', { ipPools: ['small'], aggregationLength: 28, aggregationLengthV6: 120 }), ctx()), []);
    // wide has no IPv6 entry: a short V6 length does not matter for it.
    assert.deepEqual(validateSpeakerConfig('BGPAdvertisement', raw('a', { ipPools: ['wide'], aggregationLengthV6: 0 }), ctx()), []);
  });

  it('a range counts as its exact CIDR decomposition: 192.0.2.10-192.0.2.20 needs /32', () => {
    one(validateSpeakerConfig('BGPAdvertisement', raw('a', { ipPools: ['ranged'], aggregationLength: 31 }), ctx()), 'spec.aggregationLength', /\/32 of 192\.0\.2\.10-192\.0\.2\.20 in IPPool "ranged"/);
    const aligned = model('aligned', { addresses: ['192.0.2.0-192.0.2.127'] });
    assert.deepEqual(validateSpeakerConfig('BGPAdvertisement', raw('a', { ipPools: ['aligned'], aggregationLength: 25 }), ctx({ pools: [aligned] })), []);
  });

  it('entries are checked one by one: two adjacent /25s do not make a /24 aggregate valid', () => {
    const halves = model('halves', { addresses: ['198.51.100.0/25', '198.51.100.128/25'] });
    const problems = validateSpeakerConfig('BGPAdvertisement', raw('a', { ipPools: ['halves'], aggregationLength: 24 }), ctx({ pools: [halves] }));
    assert.deepEqual(fields(problems), ['spec.aggregationLength', 'spec.aggregationLength']);
  });

  it('no pools named or selected means every pool', () => {
    const problems = validateSpeakerConfig('BGPAdvertisement', raw('a', { aggregationLength: 24 }), ctx());
    assert.deepEqual(problems.map((p) => p.message.match(/IPPool "(\w+)"/)?.[1]), ['small', 'ranged']);
  });

  it('pools selected by label are checked when labels are known, and not otherwise', () => {
    const ad = raw('a', { ipPoolSelectors: [{ matchLabels: { tier: 'edge' } }], aggregationLength: 24 });
    one(validateSpeakerConfig('BGPAdvertisement', ad, ctx()), 'spec.aggregationLength', /IPPool "small"/);
    assert.deepEqual(validateSpeakerConfig('BGPAdvertisement', ad, ctx({ poolLabels: undefined })), []);
    const core = raw('a', { ipPoolSelectors: [{ matchExpressions: [{ key: 'tier', operator: 'In', values: ['core'] }] }], aggregationLength: 24 });
    assert.deepEqual(validateSpeakerConfig('BGPAdvertisement', core, ctx()), []);
  });

  it('rangeToCidrs is the exact, minimal decomposition (property)', () => {
    assert.deepEqual(rangeToCidrs(parseRange('192.0.2.10-192.0.2.20')).map((c) => c.prefix), [31, 30, 30, 32]);
    assert.equal(longestPrefix(parseRange('0.0.0.0/0')), 0);
    assert.equal(longestPrefix(parseRange('::/0')), 0);
    assert.equal(longestPrefix(parseRange('2001:db8::/64')), 64);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 0, max: 5000 }), (start, len) => {
        const first = BigInt(start);
        const last = first + BigInt(len) > 2n ** 32n - 1n ? 2n ** 32n - 1n : first + BigInt(len);
        const blocks = rangeToCidrs({ family: 4, first, last });
        let next = first;
        for (const b of blocks) {
          const size = 1n << BigInt(32 - b.prefix);
          if (b.first !== next || b.first % size !== 0n) return false; // contiguous and aligned
          next = b.first + size;
        }
        if (next !== last + 1n) return false;
        // Minimal: no two neighbours could merge into one aligned block.
        for (let i = 1; i < blocks.length; i++) {
          const a = blocks[i - 1]!;
          const b = blocks[i]!;
          if (a.prefix === b.prefix && a.first % (1n << BigInt(33 - a.prefix)) === 0n) return false;
        }
        return true;
      }),
    );
  });
});

describe('validateSpeakerConfig: conflicting local preferences', () => {
  const existing = bgpAd('first', { ipPools: ['wide'], peers: ['tor-a'], localPref: 100 });

  it('same pool and same peer with a different localPref is a conflict naming both', () => {
    one(
      validateSpeakerConfig('BGPAdvertisement', raw('second', { ipPools: ['wide'], peers: ['tor-a', 'tor-b'], localPref: 200 }), ctx({ advertisements: [existing] })),
      'spec.localPref',
      /200 conflicts with localPref 100 of BGPAdvertisement "first", which also selects IPPool "wide" for BGPPeer "tor-a"/,
    );
  });

  it('every pool / every peer overlaps with anything', () => {
    one(validateSpeakerConfig('BGPAdvertisement', raw('second', { localPref: 200 }), ctx({ advertisements: [existing] })), 'spec.localPref', /IPPool "wide" for BGPPeer "tor-a"/);
    const everything = bgpAd('all', { localPref: 50 });
    one(validateSpeakerConfig('BGPAdvertisement', raw('second', { localPref: 200 }), ctx({ advertisements: [everything] })), 'spec.localPref', /every pool for every peer/);
  });

  it('pools selected by label count', () => {
    const byLabel = bgpAd('by-label', { ipPoolSelectors: [{ matchLabels: { tier: 'core' } }], localPref: 300 });
    one(validateSpeakerConfig('BGPAdvertisement', raw('second', { ipPools: ['wide'], localPref: 200 }), ctx({ advertisements: [byLabel] })), 'spec.localPref', /"by-label"/);
  });

  it('no conflict: equal values, an unset value, another pool, another peer, or the object itself', () => {
    const ok = (spec: Record<string, unknown>, advertisements = [existing]) =>
      assert.deepEqual(validateSpeakerConfig('BGPAdvertisement', raw('second', spec), ctx({ advertisements })), [], JSON.stringify(spec));
    ok({ ipPools: ['wide'], peers: ['tor-a'], localPref: 100 });
    ok({ ipPools: ['wide'], peers: ['tor-a'] });
    ok({ ipPools: ['small'], peers: ['tor-a'], localPref: 200 });
    ok({ ipPools: ['wide'], peers: ['tor-b'], localPref: 200 });
    ok({ localPref: 200 }, [bgpAd('unset', { ipPools: ['wide'] })]);
    // An UPDATE of "first" itself changes its own value.
    assert.deepEqual(validateSpeakerConfig('BGPAdvertisement', raw('first', { ipPools: ['wide'], peers: ['tor-a'], localPref: 500 }), ctx({ advertisements: [existing] })), []);
  });

  it('every problem of one object is reported at once', () => {
    const problems = validateSpeakerConfig('BGPAdvertisement', raw('second', { ipPools: ['wide', 'ghost'], peers: ['tor-x'], aggregationLength: 16, localPref: 1 }), ctx({ advertisements: [existing] }));
    assert.deepEqual(fields(problems), ['spec.ipPools[1]', 'spec.peers[0]', 'spec.aggregationLength']);
    // "first" selects tor-a only, "second" tor-x: no shared peer, so no localPref conflict.
  });
});
