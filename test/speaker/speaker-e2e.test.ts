// The speaker end to end: the sandbox API double (webhook + controller) in this process, two
// `admitlb speaker` CHILD PROCESSES each inside its own "node" network namespace, and a client
// namespace, on one bridge (test/bgp/lab/topo.ts), documentation addresses only (192.0.2.0/24).
//
// Reaching the API from a node namespace without touching the main namespace: the API listens on
// 127.0.0.1:<port> here; this process also listens on a Unix socket (the filesystem is shared
// across network namespaces) that forwards to it, and in each node namespace a tiny forwarder
// (`ip netns exec NS node fwd.mjs`) listens on 127.0.0.1:<port> and forwards to the socket. The
// speakers therefore use the sandbox's own kubeconfig (https://127.0.0.1:<port>) unchanged.
//
// Needs root, iproute2, iputils-arping, iputils-ping and kubectl; skipped with a reason when
// missing, except under CI=true where that fails the suite.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Topo, labNamespaces, sweepStale, type LabNode } from '../bgp/lab/topo.ts';
import { missingRequirements, run, runOk, sleep, waitFor } from '../bgp/lab/sys.ts';
import { BirdPeer } from '../bgp/lab/peers.ts';
import { objectBody, PROJECT_ROOT } from '../../src/cmd/sandbox.ts';
import { pool, startCluster, type E2eCluster } from '../e2e/cluster-helpers.ts';
import { FORWARDER, LAB_CRD_KINDS, spawnInNamespace, type Child } from './lab.ts';

const missing = missingRequirements(['arping', 'ping', 'kubectl', 'bird', 'birdc', 'ss']);
const inCI = process.env.CI === 'true';
const skip = missing.length > 0 && !inCI ? `speaker e2e lab unavailable (needs ${missing.join(', ')}); set CI=true to make this a failure` : false;
if (skip) console.log(`# skipping speaker e2e: ${skip}`);

/**
 * The speaker's defaults: a 1.5 s node Lease renewed every 375 ms, so a dead node's addresses
 * move about 1.4 s after it dies. The bound is generous (a loaded CI machine); the figure is printed.
 */
const FAILOVER_BOUND_MS = 4000;
/** SIGTERM releases the Lease, so the takeover does not wait for it to lapse (≈ 0.1 s; generous for CI). */
const SIGTERM_TAKEOVER_BOUND_MS = 1200;
/** ADMITLB_E2E_LEASE_SECONDS=3 measures a longer lease (renewed every quarter of it, at most 1 s). */
const LEASE_SECONDS = Number(process.env.ADMITLB_E2E_LEASE_SECONDS ?? 1.5);
const RENEW_MS = Math.min(1000, Math.floor((LEASE_SECONDS * 1000) / 4));
const VIP_RANGE = '192.0.2.200-192.0.2.209';
const FORGED = '192.0.2.230';

describe('admitlb speaker: two nodes in network namespaces, L2 election and failover, BGP to BIRD', { skip, concurrency: 1, timeout: 180_000 }, () => {
  let topo: Topo | undefined;
  let cluster: E2eCluster | undefined;
  let bridge: net.Server | undefined;
  let workDir = '';
  const children = new Set<Child>();
  const speakers = new Map<string, Child>();
  let nodes: Record<string, LabNode> = {};
  let macs: Record<string, string> = {};
  let client: LabNode;
  let apiPort = 0;
  let vip = '';
  let bird: BirdPeer | undefined;

  const spawnIn = (name: string, ns: string, argv: string[]): Child => spawnInNamespace(children, name, ns, argv);

  async function kill(c: Child): Promise<void> {
    if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGKILL');
    await Promise.race([c.exited, sleep(5000)]);
  }

  async function startSpeaker(node: string): Promise<Child> {
    const c = spawnIn(`speaker-${node}`, nodes[node]!.ns, [
      process.execPath,
      join(PROJECT_ROOT, 'bin/admitlb.js'),
      'speaker',
      '--node-name', node,
      '--signing-keys-dir', cluster!.sandbox.files.signingKeysDir,
      '--kubeconfig', await cluster!.sandbox.identity('speaker'),
      '--namespace', 'admitlb-system',
      '--host', '127.0.0.1',
      '--port', '7472',
      '--lease-duration-seconds', String(LEASE_SECONDS),
      '--lease-renew-ms', String(RENEW_MS),
      '--log-level', 'info',
    ]);
    speakers.set(node, c);
    await waitFor(`speaker ${node} ready`, async () => {
      if (c.child.exitCode !== null) throw new Error(`speaker ${node} exited: ${c.out()}`);
      return (await metrics(node)).includes('admitlb_speaker_live_nodes') && c.out().includes('admitlb speaker running');
    }, { timeoutMs: 30_000, intervalMs: 200 });
    return c;
  }

  /** The speaker's /metrics, fetched from inside its namespace. */
  async function metrics(node: string): Promise<string> {
    const r = await run('ip', ['netns', 'exec', nodes[node]!.ns, process.execPath, '-e', "fetch('http://127.0.0.1:7472/metrics').then(r=>r.text()).then(t=>process.stdout.write(t)).catch(()=>process.exit(1))"], { timeoutMs: 10_000 });
    return r.code === 0 ? r.stdout : '';
  }

  const holders = async (address: string): Promise<string[]> => {
    const out: string[] = [];
    for (const [name, n] of Object.entries(nodes)) {
      const addrs = JSON.parse(await runOk('ip', ['-n', n.ns, '-j', 'addr', 'show'])) as { addr_info?: { local: string }[] }[];
      if (addrs.some((l) => l.addr_info?.some((a) => a.local === address))) out.push(name);
    }
    return out;
  };

  /** arping from the client: the MAC that answered, or null when nobody did. */
  async function arp(address: string): Promise<string | null> {
    const r = await run('ip', ['netns', 'exec', client.ns, 'arping', '-f', '-c1', '-w1', '-I', client.ifname, address], { timeoutMs: 5000 });
    const m = /\[([0-9a-f:]{17})\]/i.exec(r.stdout);
    return r.code === 0 && m ? m[1]!.toLowerCase() : null;
  }

  async function ping(address: string): Promise<boolean> {
    return (await run('ip', ['netns', 'exec', client.ns, 'ping', '-4', '-c1', '-W1', address], { timeoutMs: 5000 })).code === 0;
  }

  async function neigh(address: string): Promise<string | null> {
    const out = await runOk('ip', ['-n', client.ns, '-j', 'neigh', 'show', address, 'dev', client.ifname]);
    const [e] = JSON.parse(out || '[]') as { lladdr?: string }[];
    return e?.lladdr?.toLowerCase() ?? null;
  }

  async function kubectlOk(args: string[], input?: string): Promise<string> {
    const r = await cluster!.kubectl(args, input);
    if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  }

  before(async () => {
    await sweepStale();
    workDir = mkdtempSync(join(tmpdir(), `admitlb-spk-e2e-${process.pid}-`));
    topo = await Topo.create({ nodes: ['node-a', 'node-b', 'client', 'router'], ipv4Prefix: '192.0.2.', ipv6Prefix: '2001:db8:2::' });
    nodes = { 'node-a': topo.node('node-a'), 'node-b': topo.node('node-b') };
    client = topo.node('client');
    macs = { 'node-a': await topo.mac('node-a'), 'node-b': await topo.mac('node-b') };

    cluster = await startCluster('speaker', { defaultPool: false });
    apiPort = Number(new URL(cluster.sandbox.api.url).port);

    // Unix socket → the API's TCP port, in this (the main) namespace.
    const sock = join(workDir, 'api.sock');
    bridge = net.createServer((c) => {
      const u = net.connect(apiPort, '127.0.0.1');
      c.pipe(u);
      u.pipe(c);
      for (const [a, b] of [[c, u], [u, c]] as const) {
        a.on('error', () => b.destroy());
        a.on('close', () => b.destroy());
      }
    });
    await new Promise<void>((resolve) => bridge!.listen(sock, resolve));
    const fwd = join(workDir, 'fwd.mjs');
    writeFileSync(fwd, FORWARDER);
    for (const [name, n] of Object.entries(nodes)) {
      const c = spawnIn(`fwd-${name}`, n.ns, [process.execPath, fwd, String(apiPort), sock]);
      await waitFor(`forwarder in ${name}`, () => c.out().includes('ready'), { timeoutMs: 10_000 });
    }

    // The config kinds: served from webhook-manifests/crds.yaml once they land there; a permissive
    // stand-in CRD otherwise, so this test does not depend on the order of merges.
    for (const [kind, plural] of LAB_CRD_KINDS) {
      const r = await cluster.request('GET', `/apis/admitlb.io/v1alpha1/${plural}`);
      if (r.status === 200) continue;
      await cluster.apply({
        apiVersion: 'apiextensions.k8s.io/v1',
        kind: 'CustomResourceDefinition',
        metadata: { name: `${plural}.admitlb.io` },
        spec: {
          group: 'admitlb.io',
          names: { kind, plural, singular: kind.toLowerCase(), listKind: `${kind}List` },
          scope: 'Cluster',
          versions: [{ name: 'v1alpha1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
        },
      });
      await waitFor(`${plural} served`, async () => (await cluster!.request('GET', `/apis/admitlb.io/v1alpha1/${plural}`)).status === 200, { timeoutMs: 10_000 });
    }

    // Two Ready nodes.
    for (const name of Object.keys(nodes)) {
      await cluster.apply({ apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name } } });
      await kubectlOk(['patch', 'node', name, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'lab' }], addresses: [{ type: 'InternalIP', address: nodes[name]!.ipv4 }] } })]);
    }
    await cluster.apply(pool('lab', { addresses: [VIP_RANGE] }));
    await cluster.waitForPool('lab');
    await cluster.apply({ apiVersion: 'admitlb.io/v1alpha1', kind: 'L2Advertisement', metadata: { name: 'lab' }, spec: { ipPools: ['lab'] } });

    // BGP: BIRD in the router namespace (AS 64512) peers with node-a only (AS 64513).
    const router = topo.node('router');
    bird = new BirdPeer({ node: router, asn: 64512, neighbor: { address: nodes['node-a']!.ipv4, asn: 64513, passive: true } });
    await bird.start();
    await cluster.apply(
      { apiVersion: 'admitlb.io/v1alpha1', kind: 'BGPPeer', metadata: { name: 'router' }, spec: { peerAddress: router.ipv4, peerASN: 64512, myASN: 64513, holdTime: 9, nodeSelectors: [{ matchLabels: { 'kubernetes.io/hostname': 'node-a' } }] } },
      { apiVersion: 'admitlb.io/v1alpha1', kind: 'BGPAdvertisement', metadata: { name: 'lab' }, spec: { ipPools: ['lab'], communities: ['65000:42'], largeCommunities: ['64513:1:2'] } },
    );

    for (const name of Object.keys(nodes)) await startSpeaker(name);
  });

  after(async () => {
    for (const c of [...children]) await kill(c);
    await bird?.destroy();
    await new Promise<void>((resolve) => (bridge ? bridge.close(() => resolve()) : resolve()));
    await topo?.destroy();
    await cluster?.close();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
    assert.deepEqual(await labNamespaces(), [], 'lab namespaces left behind');
  });

  it('a LoadBalancer Service created with kubectl is announced by exactly one node; the client reaches it there', async (t) => {
    await kubectlOk(['create', 'service', 'loadbalancer', 'web', '--tcp=80:80']);
    // No endpoints yet: nobody announces.
    vip = await waitFor('status ingress', async () => (await kubectlOk(['get', 'svc', 'web', '-o', 'jsonpath={.status.loadBalancer.ingress[0].ip}'])).trim());
    await sleep(500);
    assert.deepEqual(await holders(vip), [], 'announced without any ready endpoint');
    await cluster!.apply({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: 'web-abcde', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' } },
      addressType: 'IPv4',
      endpoints: [{ addresses: ['10.244.1.5'], nodeName: 'node-b', conditions: { ready: true } }],
      ports: [{ name: 'p0-80', port: 80, protocol: 'TCP' }],
    });
    const [owner] = await waitFor('one node announces', async () => {
      const h = await holders(vip);
      return h.length === 1 ? h : null;
    });
    await sleep(300);
    assert.deepEqual(await holders(vip), [owner], 'exactly one node announces');
    assert.equal(await arp(vip), macs[owner!], 'the owner answers ARP');
    assert.ok(await ping(vip), 'ping from the client');
    assert.equal(await neigh(vip), macs[owner!], "the client's neighbour entry points at the owner");
    t.diagnostic(`${vip} announced by ${owner}`);

    const m = await metrics(owner!);
    assert.match(m, /admitlb_speaker_announced_addresses\{protocol="l2"\} 1/);
    assert.match(m, new RegExp(`admitlb_speaker_address_announced\\{address="${vip.replace(/\./g, '\\.')}",protocol="l2"\\} 1`));
    const other = owner === 'node-a' ? 'node-b' : 'node-a';
    assert.doesNotMatch(await metrics(other), new RegExp(`admitlb_speaker_address_announced\\{address="${vip.replace(/\./g, '\\.')}",protocol="l2"\\}`));
    assert.match(m, /admitlb_speaker_live_nodes 2/);
    assert.match(m, /admitlb_speaker_elections_total\{result="won"\} [1-9]/);
    // node-a also announces over BGP (its own nodeAssigned Event); the L2 one names the owner.
    const l2 = new RegExp(`from node ${owner} \\(L2`);
    const events = await waitFor('nodeAssigned event for L2', async () => {
      const r = await cluster!.request('GET', '/api/v1/namespaces/default/events');
      const list = (objectBody(r).items as { reason: string; message: string; involvedObject: { name: string } }[]).filter((e) => e.involvedObject.name === 'web' && e.reason === 'nodeAssigned');
      return list.some((e) => l2.test(e.message)) ? list : null;
    });
    assert.ok(events.every((e) => /from node node-[ab] \((L2|BGP)/.test(e.message)), events.map((e) => e.message).join('; '));
  });

  it('BGP: node-a announces the /32 to BIRD with the advertisement\'s communities', async (t) => {
    const prefix = `${vip}/32`;
    const route = await waitFor('route in BIRD', () => bird!.route(prefix), { timeoutMs: 15_000, intervalMs: 50 });
    assert.deepEqual(route.communities, ['65000:42']);
    assert.deepEqual(route.largeCommunities, ['64513:1:2']);
    assert.deepEqual(route.asPath, [64513]);
    assert.deepEqual(route.nextHops, [nodes['node-a']!.ipv4]);
    assert.match(await metrics('node-a'), /admitlb_speaker_bgp_session_up\{peer="router"\} 1/);
    t.diagnostic(`BIRD holds ${prefix} with ${route.communities} / ${route.largeCommunities}`);
  });

  it('kill -9 of the owning speaker (and its address gone, as with a dead node): the other node takes over', async (t) => {
    const [owner] = await holders(vip);
    const survivor = owner === 'node-a' ? 'node-b' : 'node-a';
    assert.ok(owner);
    const t0 = performance.now();
    const killedAtWall = Date.now();
    await kill(speakers.get(owner)!);
    await run('ip', ['-n', nodes[owner]!.ns, 'addr', 'del', `${vip}/32`, 'dev', nodes[owner]!.ifname]);
    const lease = JSON.parse(await kubectlOk(['get', 'lease', '-n', 'admitlb-system', `admitlb-speaker-${owner}`, '-o', 'json'])) as { spec: { renewTime: string } };
    const lapseWall = Date.parse(lease.spec.renewTime) + LEASE_SECONDS * 1000;

    const deadline = t0 + 15_000;
    let tBound = 0;
    for (;;) {
      if ((await holders(vip)).includes(survivor)) {
        tBound = performance.now() - t0;
        break;
      }
      if (performance.now() > deadline) throw new Error(`${survivor} did not take over ${vip}: ${speakers.get(survivor)!.out().slice(-3000)}`);
      await sleep(10);
    }
    const takeoverWall = killedAtWall + tBound;
    const tNeigh = await waitFor('client neighbour → survivor', async () => ((await neigh(vip)) === macs[survivor] ? performance.now() - t0 : null), { timeoutMs: 5000, intervalMs: 10 });
    assert.ok(await ping(vip), 'ping answered after failover');
    const tPing = performance.now() - t0;
    assert.equal(await arp(vip), macs[survivor]);
    const line = `kill -9 → ${survivor} holds ${vip}: ${tBound.toFixed(0)} ms; client neighbour moved: ${tNeigh.toFixed(0)} ms; ping answered: ${tPing.toFixed(0)} ms; lease lapse (last renew + ${LEASE_SECONDS} s) → takeover: ${(takeoverWall - lapseWall).toFixed(0)} ms`;
    t.diagnostic(line);
    console.log(`# speaker failover: ${line}`);
    assert.ok(tPing < FAILOVER_BOUND_MS, `failover took ${tPing} ms`);
    assert.deepEqual(await holders(vip), [survivor]);
  });

  it('a forged status.loadBalancer.ingress is not announced by anyone', async () => {
    const r = await cluster!.kubectl(['patch', 'svc', 'web', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status: { loadBalancer: { ingress: [{ ip: vip }, { ip: FORGED }] } } })]);
    assert.equal(r.code, 0, r.stderr);
    await sleep(1500);
    assert.deepEqual(await holders(FORGED), []);
    assert.equal(await arp(FORGED), null, `someone answers ARP for the forged ${FORGED}`);
    assert.equal((await holders(vip)).length, 1, 'the real address is still announced');
  });

  /** (Re)starts every speaker that is not running and waits until both see each other and one owns `vip`. */
  async function bothRunning(): Promise<string> {
    for (const name of Object.keys(nodes)) {
      const c = speakers.get(name);
      if (!c || c.child.exitCode !== null || c.child.signalCode !== null) await startSpeaker(name);
    }
    await waitFor('both speakers see two live nodes', async () => {
      for (const name of Object.keys(nodes)) if (!/admitlb_speaker_live_nodes 2\b/.test(await metrics(name))) return false;
      return true;
    }, { timeoutMs: 15_000, intervalMs: 100 });
    const [owner] = await waitFor(`one owner of ${vip}`, async () => {
      const h = await holders(vip);
      return h.length === 1 ? h : null;
    }, { timeoutMs: 10_000, intervalMs: 50 });
    return owner!;
  }

  /**
   * BIRD's view during a graceful restart: whether it holds the route, and whether it is still in
   * graceful restart with this peer. BIRD 2.0.12 keeps the routes of a GR-capable peer whose session
   * dropped without a NOTIFICATION (stale, though `show route` marks only long-lived-stale routes with
   * "s") and shows "Neighbor graceful restart active" until the new session has delivered End-of-RIB
   * for every family; at that point any route not re-announced is flushed.
   */
  async function birdGr(prefix: string): Promise<{ route: string | undefined; grActive: boolean; restartTimer: string | undefined }> {
    const routes = await bird!.birdc(`show route ${prefix} table bgp4`);
    const proto = await bird!.birdc('show protocols all spk');
    return {
      route: routes.split('\n').find((l) => l.startsWith(prefix))?.trim(),
      grActive: /Neighbor graceful restart active/.test(proto),
      restartTimer: /Restart timer:\s*([\d.]+)/.exec(proto)?.[1],
    };
  }

  const leaseStatus = async (node: string) => (await cluster!.request('GET', `/apis/coordination.k8s.io/v1/namespaces/admitlb-system/leases/admitlb-speaker-${node}`)).status;

  async function sigterm(node: string): Promise<{ exited: Promise<number> }> {
    const c = speakers.get(node)!;
    const t0 = performance.now();
    c.child.kill('SIGTERM');
    return { exited: c.exited.then(() => performance.now() - t0) };
  }

  it('SIGTERM of the owning speaker: it deletes its Lease first, the other node takes over without waiting for the lease to lapse', async (t) => {
    const owner = await bothRunning();
    const survivor = owner === 'node-a' ? 'node-b' : 'node-a';
    assert.equal(await leaseStatus(owner), 200);
    const t0 = performance.now();
    const { exited } = await sigterm(owner);
    let tLease = 0;
    let tTake = 0;
    let tGone = 0;
    for (const deadline = t0 + 15_000; !(tLease && tTake && tGone); ) {
      if (!tLease && (await leaseStatus(owner)) === 404) tLease = performance.now() - t0;
      const h = await holders(vip);
      if (!tGone && !h.includes(owner)) tGone = performance.now() - t0;
      if (!tTake && h.includes(survivor)) tTake = performance.now() - t0;
      if (performance.now() > deadline) throw new Error(`no takeover after SIGTERM of ${owner} (lease ${tLease}, gone ${tGone}, take ${tTake})\n${speakers.get(survivor)!.out().slice(-3000)}`);
      await sleep(5);
    }
    const tExit = await exited;
    const c = speakers.get(owner)!;
    assert.equal(c.child.exitCode, 0, `the SIGTERM'd speaker exits cleanly: ${c.out().slice(-2000)}`);
    assert.equal(await arp(vip), macs[survivor]);
    assert.ok(await ping(vip));
    const line = `SIGTERM ${owner} → its Lease deleted: ${tLease.toFixed(0)} ms; its address removed: ${tGone.toFixed(0)} ms; ${survivor} holds ${vip}: ${tTake.toFixed(0)} ms; process exited: ${tExit.toFixed(0)} ms (lease ${LEASE_SECONDS} s)`;
    t.diagnostic(line);
    console.log(`# speaker graceful shutdown: ${line}`);
    // The Lease is released, not left to lapse: the takeover is well under the lease duration.
    assert.ok(tLease <= tTake + 5, 'the lease was deleted before the takeover');
    assert.ok(tTake < SIGTERM_TAKEOVER_BOUND_MS, `takeover after SIGTERM took ${tTake.toFixed(0)} ms`);
  });

  it('SIGTERM of node-a without graceful restart on the BGPPeer: BIRD drops the route at once (Cease, not the hold timer)', async (t) => {
    await bothRunning();
    const prefix = `${vip}/32`;
    await waitFor('route in BIRD', () => bird!.has(prefix), { timeoutMs: 15_000, intervalMs: 50 });
    const { exited } = await sigterm('node-a');
    const t0 = performance.now();
    const tGone = await waitFor('route withdrawn at BIRD', async () => (!(await bird!.has(prefix)) ? performance.now() - t0 : null), { timeoutMs: 15_000, intervalMs: 10 });
    await exited;
    const why = (await bird!.birdc('show protocols all spk')).split('\n').find((l) => /Last error|Received|Cease|shutdown/i.test(l))?.trim() ?? '';
    t.diagnostic(`SIGTERM node-a → ${prefix} gone at BIRD after ${tGone.toFixed(0)} ms (hold time 9 s); BIRD: ${why}`);
    console.log(`# speaker SIGTERM without GR: route gone at BIRD after ${tGone.toFixed(0)} ms; ${why}`);
    assert.ok(tGone < 3000, `BIRD kept the route ${tGone.toFixed(0)} ms: withdrawn by the hold timer, not at shutdown`);
  });

  it('SIGTERM of node-a with gracefulRestart on the BGPPeer: BIRD keeps the route (stale) through the restart; the restarted speaker re-announces and its End-of-RIB ends the graceful restart', async (t) => {
    await bothRunning();
    const prefix = `${vip}/32`;
    const peer = (gr: boolean) => ({ apiVersion: 'admitlb.io/v1alpha1', kind: 'BGPPeer', metadata: { name: 'router' }, spec: { peerAddress: topo!.node('router').ipv4, peerASN: 64512, myASN: 64513, holdTime: 9, nodeSelectors: [{ matchLabels: { 'kubernetes.io/hostname': 'node-a' } }], ...(gr ? { gracefulRestart: { enabled: true, restartTime: 30 } } : {}) } });
    await cluster!.apply(peer(true));
    try {
      await gracefulRestartScenario(t, prefix);
    } finally {
      // Whatever happened: node-a running again and the BGPPeer back to no graceful restart.
      const a = speakers.get('node-a');
      if (!a || a.child.exitCode !== null || a.child.signalCode !== null) await startSpeaker('node-a').catch(() => {});
      await cluster!.apply(peer(false));
    }
    await waitFor('route in BIRD without GR', () => bird!.has(prefix), { timeoutMs: 20_000, intervalMs: 50 });
  });

  async function gracefulRestartScenario(t: { diagnostic(m: string): void }, prefix: string): Promise<void> {
    // The changed spec re-creates the session, now advertising graceful restart.
    await waitFor('BIRD sees graceful restart from node-a', async () => /Neighbor capabilities[\s\S]*Graceful restart/.test(await bird!.birdc('show protocols all spk')) && (await bird!.established()), { timeoutMs: 20_000, intervalMs: 100 });
    await waitFor('route in BIRD', () => bird!.has(prefix), { timeoutMs: 15_000, intervalMs: 50 });
    assert.equal((await birdGr(prefix)).grActive, false, 'no graceful restart in progress before the SIGTERM');

    const t0 = performance.now();
    const { exited } = await sigterm('node-a');
    await exited;
    await waitFor('BIRD notices the session is gone', async () => !(await bird!.established()), { timeoutMs: 15_000, intervalMs: 20 });
    const tDown = performance.now() - t0;
    const during = await waitFor('BIRD in graceful restart, route kept', async () => {
      const g = await birdGr(prefix);
      return g.grActive && g.route ? g : null;
    }, { timeoutMs: 5000, intervalMs: 20 }).catch(async (err: Error) => {
      throw new Error(`${err.message}\n${await bird!.birdc(`show route all ${prefix} table bgp4`)}\n${await bird!.birdc('show protocols all spk')}\n${speakers.get('node-a')!.out().slice(-3000)}`);
    });
    await sleep(1000);
    const later = await birdGr(prefix);
    assert.ok(later.route && later.grActive, `BIRD keeps the route while the speaker restarts: ${JSON.stringify(later)}`);

    // Restart: the route must never disappear; once the new session delivered End-of-RIB, BIRD leaves
    // graceful restart, and the route is still there because the new process re-announced it.
    let dropped = false;
    let sawEstablishedInGr = false;
    const r0 = performance.now();
    const restarting = startSpeaker('node-a');
    const tDone = await waitFor('graceful restart completed (End-of-RIB)', async () => {
      const g = await birdGr(prefix);
      if (!g.route) dropped = true;
      const est = await bird!.established();
      if (est && g.grActive) sawEstablishedInGr = true;
      return est && !g.grActive ? performance.now() - r0 : null;
    }, { timeoutMs: 30_000, intervalMs: 10 });
    await restarting;
    assert.ok((await birdGr(prefix)).route, 'the re-announced route is there after End-of-RIB');
    const line = `GR: SIGTERM node-a → BIRD session down ${tDown.toFixed(0)} ms, ${prefix} kept (restart timer ${during.restartTimer}/30 s); restarted speaker → Established and End-of-RIB, graceful restart over after ${tDone.toFixed(0)} ms${sawEstablishedInGr ? ' (seen Established while still in GR)' : ''}`;
    t.diagnostic(line);
    console.log(`# speaker graceful restart: ${line}`);
    assert.equal(dropped, false, 'the route disappeared during the graceful restart');
  }

  it('the Service deleted: its address is withdrawn (no ARP reply)', async () => {
    await kubectlOk(['delete', 'svc', 'web']);
    await waitFor('withdrawn', async () => (await holders(vip)).length === 0, { timeoutMs: 10_000, intervalMs: 50 });
    assert.equal(await arp(vip), null, `someone still answers ARP for ${vip}`);
    await waitFor('BGP route withdrawn', async () => !(await bird!.has(`${vip}/32`)), { timeoutMs: 10_000, intervalMs: 50 });
  });
});
