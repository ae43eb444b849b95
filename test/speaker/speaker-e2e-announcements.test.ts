// NodeAnnouncements end to end (test/speaker/lab.ts): two `admitlb speaker` processes in node
// namespaces (heartbeats on, as installed), one Service announced by L2 and by BGP to a BIRD router
// that starts after the speakers. Covers: each node's object lists what it announces (L2 on the
// owner with its interface, BGP on both with the peer) and is owned by its Node; the BGP session
// coming up shows as Established; a kill -9 of the L2 owner rewrites the survivor's object exactly
// once (counted in the API double's request log, or kube-apiserver's audit log) and `kubectl admitlb
// status` names the survivor, not the dead node; a graceful shutdown deletes the node's object.
//
// Needs root, iproute2, iputils-arping, kubectl, BIRD; skipped with a reason when missing, except
// under CI=true where that fails the suite.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { missingRequirements } from '../bgp/lab/sys.ts';
import { pool } from '../e2e/cluster-helpers.ts';
import { objectBody } from '../../src/sandbox/api-client.ts';
import { PROJECT_ROOT } from '../../src/cmd/sandbox.ts';
import { readAuditLog } from '../../src/sandbox/real-control-plane.ts';
import type { NodeAnnouncement } from '../../src/config/schemas.ts';
import type { StatusReport } from '../../src/kubectl/status.ts';
import { MultiBird, SpeakerLab, labNamespaces, sleep, waitFor } from './lab.ts';

const missing = missingRequirements(['arping', 'ping', 'kubectl', 'bird', 'birdc', 'ss']);
const inCI = process.env.CI === 'true';
const skip = missing.length > 0 && !inCI ? `speaker announcements lab unavailable (needs ${missing.join(', ')}); set CI=true to make this a failure` : false;
if (skip) console.log(`# skipping NodeAnnouncement e2e: ${skip}`);

const NODES = ['node-a', 'node-b'];
const HOLD_TIME = 3;
const PATH = '/apis/admitlb.io/v1alpha1/nodeannouncements';

describe('admitlb speaker: NodeAnnouncements (L2 and BGP, a session coming up, failover, shutdown)', { skip, concurrency: 1, timeout: 240_000 }, () => {
  let lab: SpeakerLab | undefined;
  let bird: MultiBird;
  let vip = '';

  const get = async (node: string): Promise<NodeAnnouncement | undefined> => {
    const r = await lab!.cluster.request('GET', `${PATH}/${node}`);
    return r.status === 200 ? (objectBody(r) as unknown as NodeAnnouncement) : undefined;
  };
  const oneOwner = (address: string) => waitFor(`one owner of ${address}`, async () => {
    const h = await lab!.holders(address);
    return h.length === 1 ? h[0]! : null;
  }, { timeoutMs: 20_000, intervalMs: 50 });
  /** `kubectl admitlb status -o json`, run as kubectl runs the plugin. */
  const status = () =>
    new Promise<StatusReport>((resolve, reject) => {
      const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin/kubectl-admitlb.js'), 'status', '-o', 'json', '--kubeconfig', lab!.cluster.kubeconfig], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
      child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
      child.on('close', (code) => (code === 0 ? resolve(JSON.parse(out) as StatusReport) : reject(new Error(`status exited ${code}: ${err}`))));
    });

  before(async () => {
    lab = await SpeakerLab.create({ nodes: NODES, extra: ['router'] });
    const rtr = lab.node('router');
    bird = new MultiBird(lab, rtr, 64512, NODES.map((n) => ({ name: n, address: lab!.nodes[n]!.ipv4, asn: 64513 })), HOLD_TIME);
    await lab.apply(pool('lab', { addresses: ['192.0.2.200-192.0.2.209'] }));
    await lab.cluster.waitForPool('lab');
    await lab.apply(
      { apiVersion: 'admitlb.io/v1alpha1', kind: 'L2Advertisement', metadata: { name: 'lab' }, spec: { ipPools: ['lab'] } },
      { apiVersion: 'admitlb.io/v1alpha1', kind: 'BGPPeer', metadata: { name: 'bird' }, spec: { peerAddress: rtr.ipv4, peerASN: 64512, myASN: 64513, holdTime: HOLD_TIME } },
      { apiVersion: 'admitlb.io/v1alpha1', kind: 'BGPAdvertisement', metadata: { name: 'lab' }, spec: { ipPools: ['lab'] } },
    );
    await Promise.all(NODES.map((n) => lab!.startSpeaker(n)));
    await lab.kubectlOk(['create', 'service', 'loadbalancer', 'web', '--tcp=80:80']);
    await lab.apply(lab.endpointSlice('web', NODES));
    vip = await waitFor('web assigned', async () => (await lab!.kubectlOk(['get', 'svc', 'web', '-o', 'jsonpath={.metadata.annotations.admitlb\\.io/assigned-ips}'])).trim());
  });

  after(async () => {
    await lab?.destroy();
    assert.deepEqual(await labNamespaces(), [], 'lab namespaces left behind');
  });

  it("each node's NodeAnnouncement: L2 on the owner with its interface, BGP on both with the peer (session down), owned by the Node", async (t) => {
    const owner = await oneOwner(vip);
    const other = NODES.find((n) => n !== owner)!;
    const objects = await waitFor('both objects show the address', async () => {
      const o = await Promise.all(NODES.map(get));
      return o.every((x) => x?.status?.bgp?.some((r) => r.address === vip)) && o.some((x) => x?.status?.l2?.length) ? o : null;
    }, { timeoutMs: 20_000, intervalMs: 100 });
    const byNode = Object.fromEntries(NODES.map((n, i) => [n, objects[i]!]));
    assert.deepEqual(byNode[owner]!.status!.l2!.map((a) => [a.address, a.interface, a.services]), [[vip, lab!.nodes[owner]!.ifname, ['default/web']]]);
    assert.deepEqual(byNode[other]!.status!.l2, [], 'only the owner announces by L2');
    for (const n of NODES) {
      const o = byNode[n]!;
      assert.equal(o.spec.nodeName, n);
      assert.deepEqual(o.status!.bgp, [{ address: vip, prefix: `${vip}/32`, services: ['default/web'], peers: ['bird'] }]);
      assert.deepEqual(o.status!.bgpSessions!.map((s) => [s.peer, s.peerAddress, s.state]), [['bird', lab!.node('router').ipv4, 'Down']], 'BIRD is not running yet');
      assert.equal(o.status!.sessions, '0/1');
      const node = objectBody(await lab!.cluster.request('GET', `/api/v1/nodes/${n}`));
      assert.deepEqual((o.metadata as { ownerReferences?: unknown }).ownerReferences, [{ apiVersion: 'v1', kind: 'Node', name: n, uid: node.metadata.uid }]);
    }
    const table = await lab!.kubectlOk(['get', 'nodeannouncements']);
    t.diagnostic(`kubectl get nodeannouncements:\n${table}`);
    assert.match(table, /^NAME +ADDRESSES +BGP SESSIONS UP +AGE\n/);
    assert.match(table, new RegExp(`\\n${owner} +${vip.replace(/\./g, '\\.')} +0/1 +`));
  });

  it('the BGP session coming up shows as Established on both nodes', async () => {
    await bird.start();
    await waitFor('two sessions at BIRD', async () => (await bird.established()).length === 2, { timeoutMs: 30_000, intervalMs: 100 });
    const objects = await waitFor('both objects show the session Established', async () => {
      const o = await Promise.all(NODES.map(get));
      return o.every((x) => x?.status?.bgpSessions?.[0]?.state === 'Established') ? o : null;
    }, { timeoutMs: 10_000, intervalMs: 100 });
    for (const o of objects) {
      assert.equal(o!.status!.sessions, '1/1');
      assert.ok(Date.parse(o!.status!.bgpSessions![0]!.since!) > 0);
    }
    const report = await status();
    assert.deepEqual(report.bgp.sessions.map((s) => [s.node, s.peer, s.state]), NODES.map((n) => [n, 'bird', 'Established']));
  });

  it('kill -9 of the L2 owner: the survivor\'s object is written once and shows the address; status names the survivor only', async (t) => {
    const owner = await oneOwner(vip);
    const survivor = NODES.find((n) => n !== owner)!;
    await lab!.quiet();
    const isWrite = (verb: string) => !['get', 'list', 'watch'].includes(verb.toLowerCase());
    const audited = () => readAuditLog(lab!.cluster.dataDir).filter((e) => e.user.endsWith(':admitlb-speaker') && isWrite(e.verb) && e.resource === 'nodeannouncements' && e.name === survivor);
    const auditBefore = audited().length;
    const rvBefore = (await get(survivor))!.metadata.resourceVersion;
    const written = async () => Number(/admitlb_speaker_announcement_writes_total\{result="written"\} (\d+)/.exec(await lab!.metrics(survivor))?.[1] ?? NaN);
    const writtenBefore = await written();
    lab!.startRecording();
    await lab!.killSpeaker(owner);
    await waitFor(`${survivor}'s object shows ${vip} on L2`, async () => (await get(survivor))?.status?.l2?.some((a) => a.address === vip) ?? false, { timeoutMs: 15_000, intervalMs: 50 });
    await sleep(3000); // anything that would follow (a second write) has happened by now
    const recorded = lab!.stopRecording().filter((r) => isWrite(r.method) && r.url.includes(`/nodeannouncements/${survivor}`));
    const writes = recorded.length + audited().length - auditBefore;
    const after = (await get(survivor))!;
    t.diagnostic(`kill -9 ${owner}: ${survivor}'s NodeAnnouncement written ${writes} time(s): ${recorded.map((r) => `${r.method} ${r.url}`).join(', ') || 'audit log'}; resourceVersion ${rvBefore} → ${after.metadata.resourceVersion}`);
    assert.equal(writes, 1, `one write of ${survivor}'s NodeAnnouncement for the failover`);
    assert.equal((await written()) - writtenBefore, 1, `${survivor}'s admitlb_speaker_announcement_writes_total{result="written"} counts that write`);
    assert.deepEqual(after.status!.l2!.map((a) => [a.address, a.interface]), [[vip, lab!.nodes[survivor]!.ifname]]);
    // The killed node could not update its object: it still lists the address, and its Lease is fresh
    // for 40 s. The report trusts the newer claim (the survivor took the address over).
    assert.ok((await get(owner))?.status?.l2?.some((a) => a.address === vip), 'the dead node\'s object is as it left it');
    const report = await status();
    assert.deepEqual(report.announcements.items.filter((a) => a.protocol === 'L2').map((a) => [a.address, a.node]), [[vip, survivor]]);
    await lab!.startSpeaker(owner);
    await waitFor('the restarted owner takes the address back and reports it', async () => (await lab!.holders(vip)).join() === owner && ((await get(owner))?.status?.l2?.length ?? 0) === 1 && ((await get(survivor))?.status?.l2?.length ?? 1) === 0, { timeoutMs: 20_000, intervalMs: 100 });
    assert.deepEqual((await status()).announcements.items.filter((a) => a.protocol === 'L2').map((a) => [a.address, a.node]), [[vip, owner]]);
  });

  it("a graceful shutdown (SIGTERM) deletes the node's object; status no longer lists the node", async () => {
    const node = NODES[1]!;
    await lab!.kill(lab!.speakers.get(node)!, 'SIGTERM');
    lab!.speakers.delete(node);
    await waitFor(`${node}'s NodeAnnouncement deleted`, async () => (await get(node)) === undefined, { timeoutMs: 10_000, intervalMs: 100 });
    const report = await status();
    assert.ok(!report.announcements.items.some((a) => a.node === node), JSON.stringify(report.announcements));
    assert.ok(!report.bgp.sessions.some((s) => s.node === node));
  });
});
