// `migrate`: MetalLB configuration of each generation (fixtures taken from MetalLB's documented
// examples) to admitlb objects, checked object by object and field by field; the notes on stderr;
// every emitted object parsed with admitlb's own schemas; input it cannot read.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { migrateMetalLB, MigrateError, parseGoDuration, toObjectName, type KubeObject, type MigrateResult } from '../../src/migrate/metallb.ts';
import { assertValid } from './helpers.ts';
import { toYaml } from '../../src/kubectl/migrate.ts';

const FIXTURES = 'test/fixtures/migrate';
const fixture = (name: string) => ({ name, text: readFileSync(join(FIXTURES, name), 'utf8') });
const admitlb = (kind: string, name: string, spec: Record<string, unknown>, labels?: Record<string, string>): KubeObject => ({
  apiVersion: 'admitlb.io/v1alpha1',
  kind,
  metadata: labels ? { name, labels } : { name },
  spec,
});
const find = (r: MigrateResult, kind: string, name: string) => {
  const o = r.objects.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(o, `${kind} ${name} not emitted; got ${r.objects.map((x) => `${x.kind}/${String(x.metadata.name)}`).join(' ')}`);
  return o;
};
const kinds = (r: MigrateResult) => r.objects.map((o) => `${o.kind}/${String(o.metadata.name)}`);

function rejects(sources: { name: string; text: string }[], message: RegExp) {
  assert.throws(
    () => migrateMetalLB(sources),
    (err: unknown) => {
      assert.ok(err instanceof MigrateError, `not a MigrateError: ${String(err)}`);
      assert.match(err.message, message);
      return true;
    },
  );
}
const doc = (text: string, name = 'in.yaml') => [{ name, text }];
const configMap = (config: string) =>
  `apiVersion: v1\nkind: ConfigMap\nmetadata: {namespace: metallb-system, name: config}\ndata:\n  config: |\n${config
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n')}\n`;

describe('migrate: MetalLB 0.2 ConfigMap (BGP only)', () => {
  const r = migrateMetalLB([fixture('metallb-0.2.yaml')]);

  it('every object validates against admitlb schemas', () => assertValid(r));

  it('pools: cidr → addresses, avoid-buggy-ips → avoidBuggyIPs', () => {
    assert.deepEqual(find(r, 'IPPool', 'my-ip-space'), admitlb('IPPool', 'my-ip-space', { addresses: ['198.51.100.0/24', '192.168.0.0/16'], avoidBuggyIPs: true }));
    assert.deepEqual(find(r, 'IPPool', 'default'), admitlb('IPPool', 'default', { addresses: ['203.0.113.0/24'] }));
  });

  it('peers: one BGPPeer each, named after the address; hold-time in seconds', () => {
    assert.deepEqual(find(r, 'BGPPeer', 'peer-10-0-0-1'), admitlb('BGPPeer', 'peer-10-0-0-1', { peerAddress: '10.0.0.1', peerASN: 64512, myASN: 64512, peerPort: 179, holdTime: 120 }));
    assert.deepEqual(find(r, 'BGPPeer', 'peer-10-0-0-2'), admitlb('BGPPeer', 'peer-10-0-0-2', { peerAddress: '10.0.0.2', peerASN: 64513, myASN: 64512 }));
  });

  it('advertisements: aggregation-length, localpref, communities with the `communities` aliases resolved', () => {
    const ad = find(r, 'BGPAdvertisement', 'my-ip-space');
    assert.deepEqual(ad.spec, { ipPools: ['my-ip-space'], aggregationLength: 32, localPref: 100, communities: ['64512:1', '65535:65281'] });
  });

  it('a pool without advertisements is announced as MetalLB did: one advertisement with the defaults', () => {
    assert.deepEqual(find(r, 'BGPAdvertisement', 'default').spec, { ipPools: ['default'] });
  });

  it('nothing is lost, so nothing is noted', () => {
    assert.deepEqual(r.notes, []);
    assert.equal(r.objects.length, 6);
  });
});

describe('migrate: MetalLB 0.3–0.12 ConfigMap', () => {
  const r = migrateMetalLB([fixture('metallb-0.12.yaml')]);

  it('every object validates against admitlb schemas', () => assertValid(r));

  it('emits pools, the password Secret, peers and advertisements in apply order', () => {
    assert.deepEqual(kinds(r), [
      'IPPool/default',
      'IPPool/bgp-public',
      'IPPool/expensive',
      'Secret/peer-10-0-0-1-bgp-password',
      'BGPPeer/peer-10-0-0-1',
      'BGPPeer/peer-2001-db8-1',
      'L2Advertisement/default',
      'BGPAdvertisement/bgp-public-1',
      'BGPAdvertisement/bgp-public-2',
      'BGPAdvertisement/expensive',
    ]);
  });

  it('pools: addresses (ranges and both families), auto-assign, avoid-buggy-ips', () => {
    assert.deepEqual(find(r, 'IPPool', 'default').spec, { addresses: ['192.168.1.240-192.168.1.250'] });
    assert.deepEqual(find(r, 'IPPool', 'bgp-public').spec, { addresses: ['198.51.100.0/24', '2001:db8:100::/120'], avoidBuggyIPs: true });
    assert.deepEqual(find(r, 'IPPool', 'expensive').spec, { addresses: ['42.176.25.64/30'], autoAssign: false });
  });

  it('protocol: layer2 → an L2Advertisement of the pool', () => {
    assert.deepEqual(find(r, 'L2Advertisement', 'default'), admitlb('L2Advertisement', 'default', { ipPools: ['default'] }));
  });

  it('protocol: bgp → one BGPAdvertisement per bgp-advertisements entry, bgp-communities resolved', () => {
    assert.deepEqual(find(r, 'BGPAdvertisement', 'bgp-public-1').spec, {
      ipPools: ['bgp-public'],
      aggregationLength: 32,
      aggregationLengthV6: 128,
      localPref: 100,
      communities: ['65535:65282', '64500:10'],
    });
    assert.deepEqual(find(r, 'BGPAdvertisement', 'bgp-public-2').spec, { ipPools: ['bgp-public'], aggregationLength: 24, aggregationLengthV6: 120 });
    assert.deepEqual(find(r, 'BGPAdvertisement', 'expensive').spec, { ipPools: ['expensive'] });
  });

  it('peers: port, timers, router-id, source-address, node-selectors as label selectors', () => {
    assert.deepEqual(find(r, 'BGPPeer', 'peer-10-0-0-1').spec, {
      peerAddress: '10.0.0.1',
      peerASN: 64501,
      myASN: 64500,
      peerPort: 1179,
      holdTime: 120,
      sourceAddress: '10.0.0.10',
      routerID: '10.0.0.100',
      nodeSelectors: [
        { matchLabels: { rack: 'frontend' }, matchExpressions: [{ key: 'network-speed', operator: 'NotIn', values: ['slow'] }] },
        { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['hostA', 'hostB'] }] },
      ],
      passwordSecretRef: { name: 'peer-10-0-0-1-bgp-password', namespace: 'admitlb-system' },
    });
    assert.deepEqual(find(r, 'BGPPeer', 'peer-2001-db8-1').spec, {
      peerAddress: '2001:db8::1',
      peerASN: 64502,
      myASN: 64500,
      holdTime: 90,
      keepaliveTime: 10,
      bfd: { minRxMs: 179, minTxMs: 180 },
      ebgpMultiHop: true,
    });
  });

  it('password → a Secret in admitlb-system with key "password", referenced by passwordSecretRef', () => {
    assert.deepEqual(find(r, 'Secret', 'peer-10-0-0-1-bgp-password'), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'peer-10-0-0-1-bgp-password', namespace: 'admitlb-system' },
      type: 'kubernetes.io/basic-auth',
      stringData: { password: 'yourPassword' },
    });
  });

  it('notes: the password move is announced (BFD profiles carry over: no note)', () => {
    assert.deepEqual(r.notes, [
      'metallb-0.12.yaml: peer 10.0.0.1: password moved to Secret admitlb-system/peer-10-0-0-1-bgp-password (spec.passwordSecretRef); the output holds it in clear text',
    ]);
  });

  it('bfd-profiles: intervals and multiplier become the peer\'s spec.bfd; echo and passive mode are noted; an undefined profile drops BFD with a note', () => {
    const m = migrateMetalLB([
      {
        name: 'bfd.yaml',
        text: `apiVersion: v1
kind: ConfigMap
metadata: { name: config, namespace: metallb-system }
data:
  config: |
    peers:
    - { peer-address: 192.0.2.1, peer-asn: 64501, my-asn: 64500, bfd-profile: fast }
    - { peer-address: 192.0.2.2, peer-asn: 64501, my-asn: 64500, bfd-profile: missing }
    bfd-profiles:
    - { name: fast, receive-interval: 100, transmit-interval: 120, detect-multiplier: 5, echo-mode: true, passive-mode: false }
    address-pools:
    - { name: p, protocol: bgp, addresses: [198.51.100.0/24] }
`,
      },
    ]);
    assert.deepEqual((find(m, 'BGPPeer', 'peer-192-0-2-1').spec as { bfd?: unknown }).bfd, { minRxMs: 100, minTxMs: 120, multiplier: 5 });
    assert.equal((find(m, 'BGPPeer', 'peer-192-0-2-2').spec as { bfd?: unknown }).bfd, undefined);
    assert.deepEqual(m.notes, [
      'bfd.yaml: bfd-profile "fast": echo-mode true has no admitlb equivalent (single-hop asynchronous BFD, TTL 255 checked); dropped',
      'bfd.yaml: peer 192.0.2.2: bfd-profile "missing" is not defined in the input; BFD dropped',
    ]);
    assertValid(m);
  });

  it('the content of the config key alone reads the same as the ConfigMap', () => {
    const cm = readFileSync(join(FIXTURES, 'metallb-0.12.yaml'), 'utf8');
    const config = (cm.split('config: |\n')[1] ?? '').replace(/^ {4}/gm, '');
    const bare = migrateMetalLB([{ name: 'metallb-0.12.yaml', text: config }]);
    assert.deepEqual(bare.objects, r.objects);
    assert.deepEqual(bare.notes, r.notes);
  });

  it('MetalLB 0.3 spellings: protocol arp is layer2, cidr is addresses; arp-network is noted', () => {
    const m = migrateMetalLB(doc(configMap('address-pools:\n- name: lan\n  protocol: arp\n  cidr: [192.168.1.0/28]\n  arp-network: 192.168.1.0/24')));
    assert.deepEqual(kinds(m), ['IPPool/lan', 'L2Advertisement/lan']);
    assert.deepEqual(find(m, 'IPPool', 'lan').spec, { addresses: ['192.168.1.0/28'] });
    assert.equal(m.notes.length, 1);
    assert.match(m.notes[0]!, /^in\.yaml: address pool "lan": arp-network "192\.168\.1\.0\/24" has no admitlb equivalent/);
  });
});

describe('migrate: MetalLB 0.13+ CRDs', () => {
  const r = migrateMetalLB([fixture('metallb-0.13.yaml')]);

  it('every object validates against admitlb schemas', () => assertValid(r));

  it('emits every object in apply order', () => {
    assert.deepEqual(kinds(r), [
      'IPPool/ippool-ns-service-alloc-sample',
      'IPPool/bgp-with-advertisement',
      'Secret/secretname',
      'Secret/peer-bgp-password',
      'BGPPeer/peer-with-secret',
      'BGPPeer/peer',
      'BGPPeer/peerv6',
      'L2Advertisement/example',
      'BGPAdvertisement/advertisement',
      'BGPAdvertisement/empty',
    ]);
  });

  it('IPAddressPool: serviceAllocation → allocateTo; labels kept (pool selectors use them); namespace dropped', () => {
    assert.deepEqual(
      find(r, 'IPPool', 'ippool-ns-service-alloc-sample'),
      admitlb('IPPool', 'ippool-ns-service-alloc-sample', {
        addresses: ['192.168.20.0/24'],
        avoidBuggyIPs: true,
        allocateTo: {
          priority: 50,
          namespaces: ['namespace-a', 'namespace-b'],
          namespaceSelectors: [{ matchLabels: { foo: 'bar' } }],
          serviceSelectors: [{ matchExpressions: [{ key: 'app', operator: 'In', values: ['bar'] }] }],
        },
      }),
    );
    assert.deepEqual(
      find(r, 'IPPool', 'bgp-with-advertisement'),
      admitlb('IPPool', 'bgp-with-advertisement', { addresses: ['192.168.10.0/24', 'fc00:f853:0ccd:e799::/124'], autoAssign: false }, { test: 'bgp-with-advertisement' }),
    );
  });

  it('L2Advertisement: ipAddressPools → ipPools, nodeSelectors, interfaces', () => {
    assert.deepEqual(find(r, 'L2Advertisement', 'example').spec, {
      ipPools: ['ippool-ns-service-alloc-sample'],
      nodeSelectors: [{ matchLabels: { 'kubernetes.io/hostname': 'kind-control-plane' } }],
      interfaces: ['eth0'],
    });
  });

  it('BGPAdvertisement: selectors, peers, aggregation, localPref; Community aliases resolved, large: → largeCommunities', () => {
    assert.deepEqual(find(r, 'BGPAdvertisement', 'advertisement').spec, {
      ipPoolSelectors: [{ matchLabels: { test: 'bgp-with-advertisement' } }],
      peers: ['peer-with-secret'],
      aggregationLength: 32,
      aggregationLengthV6: 124,
      localPref: 150,
      communities: ['65535:65282', '65000:300'],
      largeCommunities: ['4200000000:1:2'],
    });
    assert.deepEqual(find(r, 'BGPAdvertisement', 'empty').spec, {}); // every pool, every peer, as in MetalLB
  });

  it('BGPPeer: Go durations in seconds; passwordSecret → passwordSecretRef and the Secret copied to admitlb-system', () => {
    assert.deepEqual(find(r, 'BGPPeer', 'peer-with-secret').spec, {
      peerAddress: '172.30.0.3',
      peerASN: 64512,
      myASN: 64512,
      peerPort: 179,
      holdTime: 540,
      keepaliveTime: 0,
      passwordSecretRef: { name: 'secretname', namespace: 'admitlb-system' },
    });
    assert.deepEqual(find(r, 'Secret', 'secretname'), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'secretname', namespace: 'admitlb-system' },
      type: 'kubernetes.io/basic-auth',
      stringData: { password: '9oz2!kf8' },
    });
  });

  it('BGPPeer: sourceAddress, routerID, ebgpMultiHop, connectTime (seconds), nodeSelectors, enableGracefulRestart → gracefulRestart, password → Secret', () => {
    assert.deepEqual(find(r, 'BGPPeer', 'peer').spec, {
      peerAddress: '172.30.0.4',
      peerASN: 64513,
      myASN: 64512,
      sourceAddress: '172.30.0.1',
      routerID: '10.10.10.10',
      bfd: { minRxMs: 380, minTxMs: 270 },
      ebgpMultiHop: true,
      connectTime: 120,
      nodeSelectors: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['worker-1', 'worker-2'] }] }],
      gracefulRestart: { enabled: true },
      passwordSecretRef: { name: 'peer-bgp-password', namespace: 'admitlb-system' },
    });
    assert.deepEqual(find(r, 'Secret', 'peer-bgp-password').stringData, { password: 'plaintext-pw' });
  });

  it('BGPPeer: dynamicASN internal is iBGP, peerASN = myASN', () => {
    assert.deepEqual(find(r, 'BGPPeer', 'peerv6').spec, { peerAddress: 'fc00:f853:ccd:e793::5', peerASN: 64512, myASN: 64512 });
  });

  it('notes: Community, Secret moves (BFDProfile carries over into the peer: no note)', () => {
    assert.deepEqual(r.notes, [
      'metallb-0.13.yaml: Community "community1": admitlb has no community aliases; the values are written into the BGPAdvertisements that use them',
      'metallb-0.13.yaml: BGPPeer "peer-with-secret": Secret metallb-system/secretname copied to admitlb-system/secretname (spec.passwordSecretRef)',
      'metallb-0.13.yaml: BGPPeer "peer": password moved to Secret admitlb-system/peer-bgp-password (spec.passwordSecretRef); the output holds it in clear text',
    ]);
  });

  it('AddressPool (the 0.12–0.13 CRD of the ConfigMap pool): protocol, bgpAdvertisements, Community aliases', () => {
    const m = migrateMetalLB(
      doc(
        'apiVersion: metallb.io/v1beta1\nkind: AddressPool\nmetadata: {name: l2, namespace: metallb-system}\nspec: {protocol: layer2, addresses: [192.168.1.240-192.168.1.250], autoAssign: false}\n---\n' +
          'apiVersion: metallb.io/v1beta1\nkind: AddressPool\nmetadata: {name: bgp, namespace: metallb-system, labels: {zone: a}}\nspec:\n  protocol: bgp\n  addresses: [198.51.100.0/24]\n  avoidBuggyIPs: true\n' +
          '  bgpAdvertisements:\n  - {aggregationLength: 32, localPref: 100, communities: [NO_ADVERTISE, "large:1:2:3"]}\n  - {aggregationLength: 24}\n---\n' +
          'apiVersion: metallb.io/v1beta1\nkind: Community\nmetadata: {name: c}\nspec: {communities: [{name: NO_ADVERTISE, value: "65535:65282"}]}\n',
      ),
    );
    assertValid(m);
    assert.deepEqual(m.objects, [
      admitlb('IPPool', 'l2', { addresses: ['192.168.1.240-192.168.1.250'], autoAssign: false }),
      admitlb('IPPool', 'bgp', { addresses: ['198.51.100.0/24'], avoidBuggyIPs: true }, { zone: 'a' }),
      admitlb('L2Advertisement', 'l2', { ipPools: ['l2'] }),
      admitlb('BGPAdvertisement', 'bgp-1', { ipPools: ['bgp'], aggregationLength: 32, localPref: 100, communities: ['65535:65282'], largeCommunities: ['1:2:3'] }),
      admitlb('BGPAdvertisement', 'bgp-2', { ipPools: ['bgp'], aggregationLength: 24 }),
    ]);
    assert.deepEqual(m.notes, ['in.yaml: Community "c": admitlb has no community aliases; the values are written into the BGPAdvertisements that use them']);
    rejects(doc('apiVersion: metallb.io/v1beta1\nkind: AddressPool\nmetadata: {name: x}\nspec: {protocol: vxlan, addresses: [10.0.0.0/24]}\n'), /^in\.yaml, document 1: AddressPool "x": spec\.protocol: unknown protocol "vxlan"/);
  });

  it('generated names never collide: two sessions to one router on different ports', () => {
    const m = migrateMetalLB(doc(configMap('peers:\n- {peer-address: 10.0.0.1, peer-asn: 1, my-asn: 2}\n- {peer-address: 10.0.0.1, peer-asn: 1, my-asn: 2, peer-port: 1179}')));
    assert.deepEqual(kinds(m), ['BGPPeer/peer-10-0-0-1', 'BGPPeer/peer-10-0-0-1-2']);
    assert.equal((find(m, 'BGPPeer', 'peer-10-0-0-1-2').spec as { peerPort: number }).peerPort, 1179);
  });

  it('a List as kubectl get -o yaml prints it: server metadata, status and last-applied dropped without notes', () => {
    const l = migrateMetalLB([fixture('metallb-0.13-list.yaml')]);
    assertValid(l);
    assert.deepEqual(l.objects, [
      admitlb('IPPool', 'first-pool', { addresses: ['192.168.1.240-192.168.1.250'], autoAssign: true, avoidBuggyIPs: false }),
      admitlb('L2Advertisement', 'example', { ipPools: ['first-pool'] }),
    ]);
    assert.deepEqual(l.notes, []);
  });

  it('several files are one configuration: references and Community aliases across files', () => {
    const text = readFileSync(join(FIXTURES, 'metallb-0.13.yaml'), 'utf8');
    const docs = text.split(/^---$/m);
    const pools = docs.filter((d) => /kind: (IPAddressPool|Community)\b/.test(d)).join('---\n');
    const rest = docs.filter((d) => !/kind: (IPAddressPool|Community)\b/.test(d)).join('---\n');
    const split = migrateMetalLB([
      { name: 'advertisements.yaml', text: rest },
      { name: 'pools.yaml', text: pools },
    ]);
    assertValid(split);
    assert.deepEqual(split.objects, r.objects);
  });

  it('a reference to an object missing from the input is noted, not fatal', () => {
    const m = migrateMetalLB(doc('apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2, namespace: metallb-system}\nspec: {ipAddressPools: [first-pool]}\n'));
    assert.deepEqual(m.objects, [admitlb('L2Advertisement', 'l2', { ipPools: ['first-pool'] })]);
    assert.deepEqual(m.notes, ['in.yaml: L2Advertisement "l2": spec.ipPools[0]: IPPool "first-pool" is not in the input; apply it first or admitlb refuses the L2Advertisement']);
  });

  it('objects that are not MetalLB configuration are skipped with a note (configsamples/deployment_bgp.yaml)', () => {
    const m = migrateMetalLB(
      doc(
        'apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: example, namespace: metallb-system}\nspec: {addresses: [192.168.10.0/24]}\n---\n' +
          'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: nginx}\nspec: {}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: nginx}\nspec: {type: LoadBalancer}\n',
      ),
    );
    assert.deepEqual(kinds(m), ['IPPool/example']);
    assert.deepEqual(m.notes, ['in.yaml: Deployment "nginx": not MetalLB configuration; skipped', 'in.yaml: Service "nginx": not MetalLB configuration; skipped']);
  });

  it('a passwordSecret that is not in the input: referenced, and the copy is asked for', () => {
    const m = migrateMetalLB(doc('apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: p, namespace: metallb-system}\nspec: {myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, passwordSecret: {name: bgp-secret}}\n'));
    assertValid(m);
    assert.deepEqual((find(m, 'BGPPeer', 'p').spec as Record<string, unknown>).passwordSecretRef, { name: 'bgp-secret', namespace: 'admitlb-system' });
    assert.deepEqual(m.notes, ['in.yaml: BGPPeer "p": spec.passwordSecret metallb-system/bgp-secret must be copied to admitlb-system/bgp-secret (key "password"); it is not in the input']);
  });

  it('the Secret may come in its own file; Secrets no BGPPeer names are noted, not copied', () => {
    const peer = 'apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: p, namespace: metallb-system}\nspec: {myASN: 64512, peerASN: 64513, peerAddress: 192.0.2.1, passwordSecret: {name: bgp-secret, namespace: metallb-system}}\n';
    const secrets =
      'apiVersion: v1\nkind: Secret\nmetadata: {name: bgp-secret, namespace: metallb-system}\ntype: kubernetes.io/basic-auth\ndata: {password: c2VjcmV0}\n---\n' +
      'apiVersion: v1\nkind: Secret\nmetadata: {name: other, namespace: metallb-system}\ndata: {token: eA==}\n';
    const m = migrateMetalLB([
      { name: 'peer.yaml', text: peer },
      { name: 'secrets.yaml', text: secrets },
    ]);
    assertValid(m);
    assert.deepEqual(find(m, 'Secret', 'bgp-secret'), {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'bgp-secret', namespace: 'admitlb-system' },
      type: 'kubernetes.io/basic-auth',
      data: { password: 'c2VjcmV0' },
    });
    assert.deepEqual(kinds(m), ['Secret/bgp-secret', 'BGPPeer/p']);
    assert.deepEqual(m.notes, [
      'peer.yaml: BGPPeer "p": Secret metallb-system/bgp-secret copied to admitlb-system/bgp-secret (spec.passwordSecretRef)',
      'secrets.yaml: Secret "metallb-system/other": not the passwordSecret of a BGPPeer in the input; skipped',
    ]);
  });

  it('output YAML is safe for YAML 1.1 readers (kubectl): look-alike numbers and booleans are quoted', () => {
    const text = toYaml([{ apiVersion: 'admitlb.io/v1alpha1', kind: 'IPPool', metadata: { name: 'p', labels: { enabled: 'yes', port: '8080' } }, spec: { addresses: ['10.0.0.0/24'] } }]);
    assert.match(text, /enabled: "yes"/);
    assert.match(text, /port: "8080"/);
    assert.match(toYaml([{ apiVersion: 'v1', kind: 'x', metadata: {}, spec: { communities: ['64512:1'] } }]), /- "64512:1"/);
  });

  it('peers admitlb cannot make are skipped with the reason: unnumbered (interface), dynamicASN external', () => {
    const m = migrateMetalLB(
      doc(
        'apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: unnumbered}\nspec: {myASN: 64512, peerASN: 64513, interface: eth1}\n---\n' +
          'apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: ext}\nspec: {myASN: 64512, dynamicASN: external, peerAddress: 192.0.2.9}\n---\n' +
          'apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: [192.0.2.128/25]}\n',
      ),
    );
    assert.deepEqual(kinds(m), ['IPPool/p']);
    assert.deepEqual(m.notes, [
      'in.yaml: BGPPeer "unnumbered": interface "eth1" (unnumbered BGP) has no admitlb equivalent: admitlb peers by address; peer skipped',
      'in.yaml: BGPPeer "ext": dynamicASN "external" has no admitlb equivalent (the peer ASN must be written out); peer skipped',
    ]);
  });

  it('fields nobody knows are noted, never dropped silently', () => {
    const m = migrateMetalLB(
      doc(
        'apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2, annotations: {team: net}}\nspec: {interfaces: [eth0], serviceSelectors: [{matchLabels: {a: b}}]}\n---\n' +
          'apiVersion: metallb.io/v1beta1\nkind: ServiceBGPStatus\nmetadata: {name: s}\n---\napiVersion: metallb.io/v1beta1\nkind: Tunnel\nmetadata: {name: t}\nspec: {}\n',
      ),
    );
    assert.deepEqual(find(m, 'L2Advertisement', 'l2').spec, { interfaces: ['eth0'] });
    assert.deepEqual(m.notes, [
      'in.yaml: L2Advertisement "l2": metadata.annotations (team) not copied: they belong to the MetalLB object',
      'in.yaml: L2Advertisement "l2": spec.serviceSelectors has no admitlb equivalent; dropped',
      'in.yaml: Tunnel "t": metallb.io/v1beta1 Tunnel has no admitlb equivalent; skipped',
    ]);
  });
});

describe('migrate: BGPPeer session options', () => {
  it('ebgpMultiHop on iBGP and a sub-second connectTime are dropped with a note; the result is valid', () => {
    const m = migrateMetalLB(
      doc('apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {name: ibgp}\nspec: {myASN: 64512, peerASN: 64512, peerAddress: 198.51.100.9, ebgpMultiHop: true, connectTime: 500ms}\n'),
    );
    assertValid(m);
    assert.deepEqual(find(m, 'BGPPeer', 'ibgp').spec, { peerAddress: '198.51.100.9', peerASN: 64512, myASN: 64512 });
    assert.deepEqual(m.notes, [
      'in.yaml: BGPPeer "ibgp": spec.ebgpMultiHop on an iBGP session (myASN = peerASN) has no effect (iBGP uses the kernel default TTL); dropped',
      'in.yaml: BGPPeer "ibgp": spec.connectTime "500ms" is below 1 s; dropped (the default backoff applies)',
    ]);
  });
});

describe('migrate: reading addresses and names as MetalLB did', () => {
  it('a CIDR with host bits set is the network MetalLB used, noted; spaces in ranges are dropped', () => {
    const m = migrateMetalLB(doc(configMap('address-pools:\n- name: p\n  protocol: layer2\n  addresses: [10.0.0.5/24, "10.1.0.1 - 10.1.0.9", "2001:db8::7/64"]')));
    assert.deepEqual(find(m, 'IPPool', 'p').spec, { addresses: ['10.0.0.0/24', '10.1.0.1-10.1.0.9', '2001:db8::/64'] });
    assert.deepEqual(m.notes, [
      'in.yaml: address pool "p": addresses[0] "10.0.0.5/24" has host bits set; MetalLB used 10.0.0.0/24, and so does the IPPool',
      'in.yaml: address pool "p": addresses[2] "2001:db8::7/64" has host bits set; MetalLB used 2001:db8::/64, and so does the IPPool',
    ]);
  });

  it('a pool name that is not a Kubernetes name is renamed, with a note for Services that ask for it', () => {
    const m = migrateMetalLB(doc(configMap('address-pools:\n- name: Prod_Pool\n  protocol: bgp\n  addresses: [10.0.0.0/24]')));
    assert.deepEqual(kinds(m), ['IPPool/prod-pool', 'BGPAdvertisement/prod-pool']);
    assert.deepEqual(find(m, 'BGPAdvertisement', 'prod-pool').spec, { ipPools: ['prod-pool'] });
    assert.match(m.notes[0]!, /address pool "Prod_Pool": renamed IPPool "prod-pool".*ask for "prod-pool"/);
  });

  it('toObjectName and parseGoDuration', () => {
    assert.equal(toObjectName('Prod_Pool'), 'prod-pool');
    assert.equal(toObjectName('peer-2001-db8--1'), 'peer-2001-db8-1');
    assert.equal(toObjectName('__'), 'unnamed');
    assert.equal(parseGoDuration('90s'), 90);
    assert.equal(parseGoDuration('1m30s'), 90);
    assert.equal(parseGoDuration('9m0s'), 540);
    assert.equal(parseGoDuration('1h'), 3600);
    assert.equal(parseGoDuration('2500ms'), 2);
    assert.equal(parseGoDuration('0s'), 0);
    assert.equal(parseGoDuration(120), 120);
    assert.equal(parseGoDuration('120'), 120);
    assert.equal(parseGoDuration('ninety'), undefined);
    assert.equal(parseGoDuration('90x'), undefined);
    assert.equal(parseGoDuration(''), undefined);
  });
});

describe('migrate: input it cannot read fails, naming the file and document', () => {
  it('not YAML', () => rejects(doc('a: [1, 2\n', 'broken.yaml'), /^broken\.yaml, document 1: not valid YAML: /));

  it('a ConfigMap whose config is not YAML', () => rejects(doc(configMap('address-pools: [\n'), 'cm.yaml'), /^cm\.yaml, document 1: ConfigMap "config": data\.config is not valid YAML/));

  it('YAML that is not MetalLB configuration', () => {
    rejects(doc('apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n', 'deploy.yaml'), /^deploy\.yaml: no MetalLB configuration found/);
    rejects(doc('hello: world\n', 'hello.yaml'), /^hello\.yaml, document 1: not MetalLB configuration/);
    rejects(doc('- 1\n- 2\n', 'list.yaml'), /^list\.yaml, document 1: not MetalLB configuration/);
    rejects(doc('', 'empty.yaml'), /^empty\.yaml: no MetalLB configuration found/);
  });

  it('an invalid CIDR or range', () => {
    const pool = (a: string) => `apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: ok}\nspec: {addresses: [192.0.2.0/24]}\n---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: bad}\nspec: {addresses: ["${a}"]}\n`;
    rejects(doc(pool('10.0.0.0/33'), 'pools.yaml'), /^pools\.yaml, document 2: IPAddressPool "bad": spec\.addresses\[0\]: invalid CIDR "10\.0\.0\.0\/33"/);
    rejects(doc(pool('10.0.0.300/24'), 'pools.yaml'), /^pools\.yaml, document 2: IPAddressPool "bad": spec\.addresses\[0\]: invalid CIDR/);
    rejects(doc(pool('10.0.0.9-10.0.0.1'), 'pools.yaml'), /document 2: IPAddressPool "bad": spec\.addresses\[0\]: invalid address range "10\.0\.0\.9-10\.0\.0\.1": .*ends before it starts/);
    rejects(doc(pool('10.0.0.1'), 'pools.yaml'), /document 2: IPAddressPool "bad": spec\.addresses\[0\]: invalid CIDR "10\.0\.0\.1"/);
    rejects(doc(configMap('address-pools:\n- name: p\n  protocol: layer2\n  addresses: [192.168.1.0/99]'), 'cm.yaml'), /^cm\.yaml, document 1: address pool "p": addresses\[0\]: invalid CIDR/);
  });

  it('an unknown or missing protocol', () => {
    rejects(doc(configMap('address-pools:\n- name: p\n  protocol: ospf\n  addresses: [10.0.0.0/24]'), 'cm.yaml'), /^cm\.yaml, document 1: address pool "p": protocol: unknown protocol "ospf"/);
    rejects(
      doc(configMap('address-pools:\n- name: a\n  protocol: bgp\n  addresses: [10.0.0.0/24]\n- name: b\n  addresses: [10.1.0.0/24]'), 'cm.yaml'),
      /address pool "b": protocol is missing/,
    );
  });

  it('a List item names its index', () => {
    rejects(
      doc('apiVersion: v1\nkind: List\nitems:\n- apiVersion: metallb.io/v1beta1\n  kind: IPAddressPool\n  metadata: {name: a}\n  spec: {addresses: [nope]}\n', 'list.yaml'),
      /^list\.yaml, document 1, items\[0\]: IPAddressPool "a": spec\.addresses\[0\]/,
    );
  });

  it('what MetalLB itself refused, or admitlb would refuse', () => {
    const cm = (c: string) => doc(configMap(c), 'cm.yaml');
    rejects(cm('address-pools:\n- name: p\n  protocol: layer2\n  addresses: [10.0.0.0/24]\n  bgp-advertisements: [{aggregation-length: 24}]'), /a layer2 pool cannot have BGP advertisements/);
    rejects(cm('peers:\n- {peer-address: 10.0.0.1, peer-asn: 1, my-asn: 2, hold-time: 2s}'), /peer 10\.0\.0\.1: the BGPPeer would be invalid: spec\.holdTime: must be 0 .*or at least 3/);
    rejects(cm('peers:\n- {peer-address: 10.0.0.1, peer-asn: 1, my-asn: 2, hold-time: 30s, keepalive-time: 60s}'), /keepaliveTime: 60 is above holdTime \(30\)/);
    rejects(cm('peers:\n- {peer-address: 10.0.0.1, peer-asn: 1, my-asn: 2, router-id: "2001:db8::1"}'), /routerID: "2001:db8::1" is not an IPv4 address/);
    rejects(cm('peers:\n- {peer-address: not-an-ip, peer-asn: 1, my-asn: 2}'), /peers\[0\]: peer-address: .*not a valid IP address/);
    rejects(cm('peers:\n- {peer-address: 10.0.0.1, my-asn: 2}'), /peer 10\.0\.0\.1: peer-asn: expected an integer/);
    rejects(cm('peers:\n- peer-address: 10.0.0.1\n  peer-asn: 1\n  my-asn: 2\n  node-selectors: [{match-expressions: [{key: a, operator: Gt, values: ["1"]}]}]'), /operator: "Gt" is not a label selector operator/);
    rejects(
      cm('address-pools:\n- {name: a, protocol: layer2, addresses: [10.0.0.0/24]}\n- {name: b, protocol: layer2, addresses: [10.0.0.128/25]}'),
      /address pool "b": spec\.addresses\[0\]: 10\.0\.0\.128\/25 overlaps pool "a"/,
    );
    rejects(cm('address-pools:\n- {name: a, protocol: bgp, addresses: [10.0.0.0/24], bgp-advertisements: [{aggregation-length: 16}]}'), /the BGPAdvertisement would be refused: spec\.aggregationLength: 16 is shorter than the \/24/);
    rejects(cm('address-pools:\n- {name: a, protocol: bgp, addresses: [10.0.0.0/24], bgp-advertisements: [{communities: [undefined-alias]}]}'), /communities\[0\]: "undefined-alias" is not a BGP community/);
    rejects(
      doc('apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: a}\nspec: {communities: [MY_ALIAS]}\n', 'ad.yaml'),
      /^ad\.yaml, document 1: BGPAdvertisement "a": spec\.communities\[0\]: "MY_ALIAS" is neither ASN:VALUE, large:A:B:C nor an alias defined by a Community object/,
    );
  });

  it('names must stay unique once namespaces are gone', () => {
    const pool = (ns: string, a: string) => `apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p, namespace: ${ns}}\nspec: {addresses: [${a}]}\n`;
    rejects([{ name: 'a.yaml', text: pool('metallb-system', '10.0.0.0/24') }, { name: 'b.yaml', text: pool('other', '10.1.0.0/24') }], /^b\.yaml, document 1: IPAddressPool "p": a IPPool named "p" comes from a\.yaml, document 1 already/);
  });
});
