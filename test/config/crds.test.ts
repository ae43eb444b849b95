import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { renderCrdsYaml } from '../../src/config/crds.ts';

const committed = readFileSync(new URL('../../webhook-manifests/crds.yaml', import.meta.url), 'utf8');

/** Walks a schema and returns the paths that break Kubernetes' structural-schema rules. */
function structuralProblems(node: any, path = ''): string[] {
  const problems: string[] = [];
  if (node === null || typeof node !== 'object') return problems;
  for (const bad of ['$schema', 'propertyNames', 'anyOf', 'oneOf', '$ref']) if (bad in node) problems.push(`${path}: ${bad}`);
  if (node.additionalProperties === false) problems.push(`${path}: additionalProperties false`);
  if (!('type' in node) && !node['x-kubernetes-int-or-string'] && !node['x-kubernetes-preserve-unknown-fields']) problems.push(`${path}: no type`);
  for (const [k, v] of Object.entries(node.properties ?? {})) problems.push(...structuralProblems(v, `${path}.${k}`));
  if (node.items) problems.push(...structuralProblems(node.items, `${path}[]`));
  if (typeof node.additionalProperties === 'object') problems.push(...structuralProblems(node.additionalProperties, `${path}{}`));
  return problems;
}

describe('CRDs generated from the zod schemas', () => {
  it('the committed webhook-manifests/crds.yaml is up to date (run npm run gen:crds)', () => {
    assert.equal(committed, renderCrdsYaml());
  });

  it('every schema is structural and carries the defaults', () => {
    const docs = parseAllDocuments(committed).map((d) => d.toJS());
    assert.deepEqual(docs.map((d) => d.spec.names.kind), ['IPPool', 'IPClaim', 'L2Advertisement', 'BGPPeer', 'BGPAdvertisement', 'NodeAnnouncement']);
    for (const crd of docs) {
      const schema = crd.spec.versions[0].schema.openAPIV3Schema;
      assert.deepEqual(structuralProblems(schema), [], crd.metadata.name);
    }
    const pool = docs[0].spec.versions[0].schema.openAPIV3Schema.properties.spec.properties;
    assert.equal(pool.autoAssign.default, true);
    assert.equal(pool.avoidBuggyIPs.default, false);
    assert.deepEqual(pool.usage.default, ['LoadBalancer']);
    assert.deepEqual(pool.usage.items.enum, ['LoadBalancer', 'ExternalIP']);
    assert.equal(docs[0].spec.scope, 'Cluster');
    assert.deepEqual(docs[1].spec.names.shortNames, ['ipc']);
    assert.ok(docs[1].spec.versions[0].additionalPrinterColumns.some((c: any) => c.jsonPath === '.spec.heldBy'));
  });

  it('the speaker configuration kinds: cluster-scoped, no status, defaults, patterns and printer columns', () => {
    const docs = parseAllDocuments(committed).map((d) => d.toJS());
    const byKind = Object.fromEntries(docs.map((d) => [d.spec.names.kind, d]));
    for (const [kind, plural] of [['L2Advertisement', 'l2advertisements'], ['BGPPeer', 'bgppeers'], ['BGPAdvertisement', 'bgpadvertisements']] as const) {
      const crd = byKind[kind];
      assert.equal(crd.metadata.name, `${plural}.admitlb.io`);
      assert.equal(crd.spec.group, 'admitlb.io');
      assert.equal(crd.spec.scope, 'Cluster');
      const version = crd.spec.versions[0];
      assert.equal(version.name, 'v1alpha1');
      assert.equal(version.subresources, undefined, `${kind} has no status subresource`);
      assert.equal(version.schema.openAPIV3Schema.properties.status, undefined);
      assert.deepEqual(crd.spec.names.categories, ['admitlb']);
      assert.ok(version.additionalPrinterColumns.some((c: any) => c.name === 'Age'));
    }
    const columns = (kind: string) => byKind[kind].spec.versions[0].additionalPrinterColumns.filter((c: any) => !c.priority).map((c: any) => `${c.name}=${c.jsonPath}`);
    assert.deepEqual(columns('BGPPeer'), ['Peer=.spec.peerAddress', 'Peer ASN=.spec.peerASN', 'My ASN=.spec.myASN', 'Hold=.spec.holdTime', 'Age=.metadata.creationTimestamp']);
    assert.deepEqual(columns('BGPAdvertisement'), ['Pools=.spec.ipPools', 'Peers=.spec.peers', 'Aggregation=.spec.aggregationLength', 'Age=.metadata.creationTimestamp']);
    assert.deepEqual(columns('L2Advertisement'), ['Pools=.spec.ipPools', 'Interfaces=.spec.interfaces', 'Age=.metadata.creationTimestamp']);

    const spec = (kind: string) => byKind[kind].spec.versions[0].schema.openAPIV3Schema.properties.spec;
    const peer = spec('BGPPeer');
    assert.deepEqual(peer.required, ['peerAddress', 'peerASN', 'myASN']);
    assert.equal(peer.properties.peerPort.default, 179);
    assert.equal(peer.properties.holdTime.default, 90);
    assert.equal(peer.properties.keepaliveTime.default, undefined, 'holdTime/3 is applied by the schema, not the CRD');
    assert.equal(peer.properties.keepaliveTime.maximum, 21845);
    assert.equal(peer.properties.passive.default, false);
    assert.equal(peer.properties.peerASN.maximum, 4294967295);
    assert.equal(peer.properties.gracefulRestart.properties.restartTime.default, 120);
    assert.equal(peer.properties.gracefulRestart.properties.restartTime.maximum, 4095);
    assert.equal(peer.properties.password.type, 'string', 'declared so that it survives pruning and reaches the webhook, which rejects it');
    const adv = spec('BGPAdvertisement');
    assert.equal(adv.properties.aggregationLength.default, 32);
    assert.equal(adv.properties.aggregationLengthV6.default, 128);
    assert.equal(adv.properties.aggregationLengthV6.maximum, 128);
    assert.match('65535:65282', new RegExp(adv.properties.communities.items.pattern));
    assert.match('no-export', new RegExp(adv.properties.communities.items.pattern));
    assert.doesNotMatch('65535', new RegExp(adv.properties.communities.items.pattern));
    assert.match('1:2:3', new RegExp(adv.properties.largeCommunities.items.pattern));
    const l2 = spec('L2Advertisement');
    assert.deepEqual(Object.keys(l2.properties), ['ipPools', 'ipPoolSelectors', 'nodeSelectors', 'interfaces', 'excludeInterfaces', 'nodePreference']);
    assert.equal(l2.properties.nodePreference.items.properties.weight.maximum, 1000);
    assert.equal(peer.properties.ebgpMultiHop.default, false);
    assert.equal(peer.properties.gtsm.properties.hops.maximum, 254);
    assert.equal(peer.properties.connectTime.minimum, 1);
    assert.equal(peer.properties.nodeOverrides.items.properties.routerID.type, 'string');
    assert.equal(l2.properties.ipPoolSelectors.items.type, 'object');
  });

  it('NodeAnnouncement: cluster-scoped, a status subresource, named after its node, printer columns', () => {
    const crd = parseAllDocuments(committed).map((d) => d.toJS()).find((d) => d.spec.names.kind === 'NodeAnnouncement');
    assert.equal(crd.metadata.name, 'nodeannouncements.admitlb.io');
    assert.equal(crd.spec.scope, 'Cluster');
    const version = crd.spec.versions[0];
    assert.deepEqual(version.subresources, { status: {} }, 'the speaker writes status only');
    const schema = version.schema.openAPIV3Schema;
    assert.deepEqual(schema['x-kubernetes-validations'].map((v: any) => v.rule), ['self.metadata.name == self.spec.nodeName']);
    assert.deepEqual(Object.keys(schema.properties.status.properties), ['addresses', 'sessions', 'l2', 'bgp', 'bgpSessions', 'omitted']);
    assert.deepEqual(schema.properties.status.properties.bgpSessions.items.properties.state.enum, ['Established', 'Down']);
    assert.deepEqual(version.additionalPrinterColumns.map((c: any) => `${c.name}=${c.jsonPath}`), ['Addresses=.status.addresses', 'BGP Sessions Up=.status.sessions', 'Age=.metadata.creationTimestamp']);
  });
});
