// The speaker end to end with THREE nodes (test/speaker/lab.ts): three `admitlb speaker` child
// processes in their own node namespaces, a client, a BIRD router and an FRR router on one segment
// (192.0.2.0/24, 2001:db8:2::/64). Covers: every eligible node's path at both routers (ECMP in the
// router's FIB, communities), externalTrafficPolicy Local following the endpoints, an externalIP
// bound locally, IPv6 over NDP and over MP-BGP on an IPv4 session, and failover when the owner's
// link is cut (data link down AND its API access gone).
//
// Needs root, iproute2, iputils-arping, iputils-ping, ndisc6, na6 (ipv6toolkit), kubectl, BIRD 2
// and FRR; skipped with a reason when missing, except under CI=true where that fails the suite.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { missingRequirements } from '../bgp/lab/sys.ts';
import { objectBody } from '../../src/sandbox/api-client.ts';
import { pool } from '../e2e/cluster-helpers.ts';
import { MultiBird, MultiFrr, SpeakerLab, labNamespaces, run, sleep, waitFor, which, type LabNode } from './lab.ts';

const missing = missingRequirements(['arping', 'ping', 'ndisc6', 'tcpdump', ...(which('ndsend') ? [] : ['na6']), 'kubectl', 'bird', 'birdc', 'bgpd', 'vtysh', 'ss']);
const inCI = process.env.CI === 'true';
const skip = missing.length > 0 && !inCI ? `speaker e2e lab unavailable (needs ${missing.join(', ')}); set CI=true to make this a failure` : false;
if (skip) console.log(`# skipping 3-node speaker e2e: ${skip}`);

const NODES = ['node-a', 'node-b', 'node-c'];
const HOLD_TIME = 3;
/** Generous bound for a takeover after the owner's link is cut (lease 2 s; printed either way). */
const FAILOVER_BOUND_MS = 4500;
const COMMUNITIES = ['65000:42'];
const LARGE = ['64513:1:2'];

describe('admitlb speaker: three nodes, BIRD and FRR, ECMP, Local policy, externalIPs, IPv6, link cut', { skip, concurrency: 1, timeout: 240_000 }, () => {
  let lab: SpeakerLab | undefined;
  let bird: MultiBird;
  let frr: MultiFrr;
  let client: LabNode;

  const allNodes = () => [...NODES].sort();

  async function svcIP(name: string): Promise<string> {
    return waitFor(`${name} assigned`, async () => (await lab!.kubectlOk(['get', 'svc', name, '-o', 'jsonpath={.metadata.annotations.admitlb\\.io/assigned-ips}'])).trim());
  }

  async function birdFrom(prefix: string, want: string[], what: string, timeoutMs = 15_000): Promise<void> {
    await waitFor(`${what}: BIRD paths for ${prefix} from ${want}`, async () => JSON.stringify(await bird.from(prefix)) === JSON.stringify(want), { timeoutMs, intervalMs: 50 });
  }

  async function frrFrom(prefix: string, want: string[], what: string, timeoutMs = 15_000): Promise<void> {
    await waitFor(`${what}: FRR paths for ${prefix} from ${want}`, async () => JSON.stringify(await frr.from(prefix)) === JSON.stringify(want), { timeoutMs, intervalMs: 100 });
  }

  before(async () => {
    lab = await SpeakerLab.create({ nodes: NODES, extra: ['client', 'router', 'frr'] });
    client = lab.node('client');
    const rtr = lab.node('router');
    const frrNode = lab.node('frr');
    // NDP: the client learns entries from NS/NA as any host; nothing to set. The router gets the
    // NETLAB settings so that unsolicited NA / gratuitous ARP may create entries there too.
    const neighbors = NODES.map((n) => ({ name: n, address: lab!.nodes[n]!.ipv4, asn: 64513 }));
    bird = new MultiBird(lab, rtr, 64512, neighbors, HOLD_TIME);
    frr = new MultiFrr(lab, frrNode, 64512, neighbors, HOLD_TIME);
    await Promise.all([bird.start(), frr.start()]);

    await lab.apply(
      pool('lab', { addresses: ['192.0.2.200-192.0.2.209'] }),
      pool('lab6', { addresses: ['2001:db8:2::200-2001:db8:2::20f'] }),
      pool('ext', { addresses: ['192.0.2.220-192.0.2.229'], usage: ['ExternalIP'], autoAssign: false }),
    );
    await lab.cluster.waitForPool('lab');
    await lab.cluster.waitForPool('lab6');
    await lab.apply(
      { apiVersion: 'admitlb.io/v1alpha1', kind: 'L2Advertisement', metadata: { name: 'lab' }, spec: { ipPools: ['lab', 'lab6'] } },
      { apiVersion: 'admitlb.io/v1alpha1', kind: 'BGPPeer', metadata: { name: 'bird' }, spec: { peerAddress: rtr.ipv4, peerASN: 64512, myASN: 64513, holdTime: HOLD_TIME } },
      { apiVersion: 'admitlb.io/v1alpha1', kind: 'BGPPeer', metadata: { name: 'frr' }, spec: { peerAddress: frrNode.ipv4, peerASN: 64512, myASN: 64513, holdTime: HOLD_TIME } },
      { apiVersion: 'admitlb.io/v1alpha1', kind: 'BGPAdvertisement', metadata: { name: 'lab' }, spec: { ipPools: ['lab', 'lab6', 'ext'], communities: COMMUNITIES, largeCommunities: LARGE } },
    );
    await Promise.all(NODES.map((n) => lab!.startSpeaker(n)));
    await waitFor('three sessions at BIRD', async () => (await bird.established()).length === 3, { timeoutMs: 20_000, intervalMs: 100 });
  });

  after(async () => {
    await lab?.destroy();
    assert.deepEqual(await labNamespaces(), [], 'lab namespaces left behind');
  });

  it('BGP: every eligible node announces the /32; BIRD installs a 3-way ECMP route, FRR selects 3 multipaths; communities as configured', async (t) => {
    await lab!.kubectlOk(['create', 'service', 'loadbalancer', 'web', '--tcp=80:80']);
    const vip = await svcIP('web');
    await lab!.apply(lab!.endpointSlice('web', ['node-b']));
    const prefix = `${vip}/32`;
    await birdFrom(prefix, allNodes(), 'cluster policy');
    const paths = await bird.paths(prefix);
    for (const p of paths) {
      assert.deepEqual(p.communities, COMMUNITIES, `communities from ${p.from}`);
      assert.deepEqual(p.largeCommunities, LARGE, `large communities from ${p.from}`);
      assert.deepEqual(p.asPath, [64513]);
      assert.equal(p.nextHop, lab!.nodes[p.from]!.ipv4, `next hop of the path from ${p.from}`);
    }
    const fib = await waitFor('ECMP route in the router FIB', async () => {
      const gw = await bird.fib(prefix);
      return gw.length === 3 ? gw : null;
    }, { timeoutMs: 5000, intervalMs: 50 });
    assert.deepEqual(fib, NODES.map((n) => lab!.nodes[n]!.ipv4).sort());
    await frrFrom(prefix, allNodes(), 'cluster policy');
    const fp = await frr.paths(prefix);
    assert.ok(fp.every((p) => p.selected), `FRR did not select all paths: ${JSON.stringify(fp)}`);
    assert.ok(fp.every((p) => JSON.stringify(p.communities) === JSON.stringify(COMMUNITIES) && JSON.stringify(p.largeCommunities) === JSON.stringify(LARGE)), JSON.stringify(fp));
    // L2 at the same time: exactly one owner.
    const owners = await waitFor('one L2 owner', async () => {
      const h = await lab!.holders(vip);
      return h.length === 1 ? h : null;
    });
    t.diagnostic(`${prefix}: BIRD FIB nexthops ${fib.join(', ')}; FRR multipaths from ${fp.map((p) => p.from).join(', ')}; L2 owner ${owners[0]}`);
  });

  it('externalTrafficPolicy Local: only nodes with a ready endpoint announce, and the announcement follows the endpoint', async (t) => {
    await lab!.apply({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'loc', namespace: 'default' },
      spec: { type: 'LoadBalancer', externalTrafficPolicy: 'Local', selector: { app: 'loc' }, ports: [{ name: 'p0-80', port: 80, protocol: 'TCP', targetPort: 80 }] },
    });
    const vip = await svcIP('loc');
    const prefix = `${vip}/32`;
    await sleep(300);
    assert.deepEqual(await bird.from(prefix), [], 'announced without endpoints');
    assert.deepEqual(await lab!.holders(vip), []);

    await lab!.apply(lab!.endpointSlice('loc', ['node-b']));
    await birdFrom(prefix, ['node-b'], 'endpoint on node-b');
    await waitFor('L2 owner node-b', async () => JSON.stringify(await lab!.holders(vip)) === '["node-b"]', { timeoutMs: 10_000, intervalMs: 50 });
    assert.ok(await lab!.ping(client, vip));
    assert.equal(await lab!.neigh(client, vip), lab!.macs['node-b']);

    // The endpoint moves to node-c.
    const t0 = performance.now();
    await lab!.apply(lab!.endpointSlice('loc', ['node-c']));
    await waitFor('L2 owner node-c', async () => JSON.stringify(await lab!.holders(vip)) === '["node-c"]', { timeoutMs: 10_000, intervalMs: 20 });
    const tL2 = performance.now() - t0;
    await waitFor('client neighbour → node-c', async () => (await lab!.neigh(client, vip)) === lab!.macs['node-c'], { timeoutMs: 5000, intervalMs: 20 });
    await birdFrom(prefix, ['node-c'], 'endpoint moved to node-c');
    const tBgp = performance.now() - t0;
    await frrFrom(prefix, ['node-c'], 'endpoint moved to node-c');

    // Two endpoints: both of those nodes (and only they) announce by BGP; one of them owns L2.
    await lab!.apply(lab!.endpointSlice('loc', ['node-a', 'node-c']));
    await birdFrom(prefix, ['node-a', 'node-c'], 'endpoints on node-a and node-c');
    const owner = await waitFor('one L2 owner', async () => {
      const h = await lab!.holders(vip);
      return h.length === 1 ? h[0] : null;
    });
    assert.ok(owner === 'node-a' || owner === 'node-c', `L2 owner ${owner} has no endpoint`);
    t.diagnostic(`endpoint node-b → node-c: L2 moved in ${tL2.toFixed(0)} ms, BIRD paths in ${tBgp.toFixed(0)} ms; with endpoints on a and c the L2 owner is ${owner}`);
    await lab!.kubectlOk(['delete', 'svc', 'loc']);
    await birdFrom(prefix, [], 'deleted');
  });

  it('an externalIP Service from an ExternalIP pool is bound locally (admitlb0 or lo) on the announcing nodes and removed on delete', async (t) => {
    const ext = '192.0.2.220';
    await lab!.apply(
      {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: { name: 'ext', namespace: 'default' },
        spec: { type: 'ClusterIP', externalIPs: [ext], selector: { app: 'ext' }, ports: [{ name: 'p0-80', port: 80, protocol: 'TCP', targetPort: 80 }] },
      },
      lab!.endpointSlice('ext', ['node-a']),
    );
    const claim = await waitFor('IPClaim for the externalIP', async () => {
      const r = await lab!.cluster.request('GET', `/apis/admitlb.io/v1alpha1/ipclaims/${ext}`);
      return r.status === 200 ? objectBody(r) : null;
    });
    assert.equal(claim.spec.holders[0].use, 'ExternalIP');
    const bound = await waitFor('bound on every announcing node', async () => {
      const b = await lab!.bindings(ext);
      return Object.keys(b).length === 3 ? b : null;
    }, { timeoutMs: 10_000, intervalMs: 50 });
    for (const [n, devs] of Object.entries(bound)) assert.ok(devs.every((d) => d === 'admitlb0' || d === 'lo'), `${ext} on ${devs} of ${n}`);
    await birdFrom(`${ext}/32`, allNodes(), 'externalIP');
    t.diagnostic(`${ext} bound on ${Object.entries(bound).map(([n, d]) => `${n}:${d.join('+')}`).join(', ')}; BIRD has 3 paths`);

    await lab!.kubectlOk(['delete', 'svc', 'ext']);
    await waitFor('unbound everywhere', async () => Object.keys(await lab!.bindings(ext)).length === 0, { timeoutMs: 10_000, intervalMs: 50 });
    await birdFrom(`${ext}/32`, [], 'externalIP deleted');
  });

  it('IPv6: the owner answers NDP (ndisc6, ping -6) with its MAC; the /128 reaches BIRD and FRR over the IPv4 sessions from all 3 nodes', async (t) => {
    await lab!.apply({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'web6', namespace: 'default', annotations: { 'admitlb.io/pool': 'lab6' } },
      spec: { type: 'LoadBalancer', ipFamilies: ['IPv6'], ipFamilyPolicy: 'SingleStack', selector: { app: 'web6' }, ports: [{ name: 'p0-80', port: 80, protocol: 'TCP', targetPort: 80 }] },
    });
    const vip6 = await svcIP('web6');
    assert.match(vip6, /^2001:db8:2::2/);
    await lab!.apply(lab!.endpointSlice('web6', ['node-a'], { family: 6 }));
    const [owner] = await waitFor('one IPv6 owner', async () => {
      const h = await lab!.holders(vip6);
      return h.length === 1 ? h : null;
    });
    assert.equal(await lab!.ndisc(client, vip6), lab!.macs[owner!], 'ndisc6 answered by the owner');
    assert.ok(await lab!.ping(client, vip6), 'ping -6');
    assert.equal(await lab!.neigh(client, vip6), lab!.macs[owner!], "the client's IPv6 neighbour entry points at the owner");
    const prefix = `${vip6}/128`;
    await birdFrom(prefix, allNodes(), 'IPv6');
    const paths = await bird.paths(prefix);
    for (const p of paths) {
      assert.equal(p.nextHop, lab!.nodes[p.from]!.ipv6, `IPv6 next hop from ${p.from}`);
      assert.deepEqual(p.communities, COMMUNITIES);
    }
    const fib = await bird.fib(prefix);
    await frrFrom(prefix, allNodes(), 'IPv6');
    t.diagnostic(`${vip6}: L2 owner ${owner} (ndisc6 + ping -6); /128 at BIRD from 3 nodes (FIB nexthops ${fib.join(', ')}) and FRR`);
  });

  it('ARP/NDP requests answered: the owner counts the client\'s arpings and neighbour solicitations (tcpdump capture), the other nodes do not', async (t) => {
    const N = 5;
    const vip = await svcIP('web');
    const vip6 = await svcIP('web6');
    const [o4] = await lab!.holders(vip);
    const [o6] = await lab!.holders(vip6);
    assert.ok(o4 && o6, `owners: ${o4} ${o6}`);
    // Each owner's capture is up on its lab interface (it starts with the first L2 address there).
    for (const o of new Set([o4, o6])) {
      await waitFor(`capture on ${o}`, () => /capturing ARP\/NS requests/.test(lab!.speakers.get(o)!.out()), { timeoutMs: 10_000, intervalMs: 50 });
    }
    const counters = async () =>
      Object.fromEntries(
        await Promise.all(
          NODES.map(async (n) => {
            const m = await lab!.metrics(n);
            const v = (f: string) => Number(new RegExp(`admitlb_speaker_neighbor_requests_answered_total\\{family="${f}"\\} (\\d+)`).exec(m)?.[1] ?? NaN);
            return [n, { ipv4: v('ipv4'), ipv6: v('ipv6') }] as const;
          }),
        ),
      );
    const before = await counters();
    for (const n of NODES) assert.ok(Number.isFinite(before[n]!.ipv4) && Number.isFinite(before[n]!.ipv6), `${n} exposes both series: ${JSON.stringify(before[n])}`);
    for (let i = 0; i < N; i++) {
      assert.equal(await lab!.arp(client, vip), lab!.macs[o4], `arping ${i + 1} answered by ${o4}`);
      assert.equal(await lab!.ndisc(client, vip6), lab!.macs[o6], `ndisc6 ${i + 1} answered by ${o6}`);
    }
    const after = await waitFor('the owners counted them', async () => {
      const c = await counters();
      return c[o4]!.ipv4 - before[o4]!.ipv4 >= N && c[o6]!.ipv6 - before[o6]!.ipv6 >= N ? c : null;
    }, { timeoutMs: 5000, intervalMs: 50 });
    for (const n of NODES) {
      if (n !== o4) assert.equal(after[n]!.ipv4, before[n]!.ipv4, `${n} (not the owner of ${vip}) counted ARP requests`);
      if (n !== o6) assert.equal(after[n]!.ipv6, before[n]!.ipv6, `${n} (not the owner of ${vip6}) counted neighbour solicitations`);
    }
    t.diagnostic(`${N} arpings of ${vip} → ${o4} ipv4 +${after[o4]!.ipv4 - before[o4]!.ipv4}; ${N} ndisc6 of ${vip6} → ${o6} ipv6 +${after[o6]!.ipv6 - before[o6]!.ipv6}; others unchanged (${JSON.stringify(after)})`);
  });

  it('nodePreference: the preferred node owns the address and alone announces it; an excluded preferred node hands over to the next weight, and takes it back', async (t) => {
    const pref = (nodes: Record<string, number>) => Object.entries(nodes).map(([n, weight]) => ({ nodeSelector: { matchLabels: { 'kubernetes.io/hostname': n } }, weight }));
    // node-c first, node-b next, node-a a backup only; the hash alone would pick any of the three.
    const weights = pref({ 'node-c': 100, 'node-b': 50 });
    await lab!.apply(pool('pref', { addresses: ['192.0.2.210-192.0.2.214'], autoAssign: false }));
    await lab!.cluster.waitForPool('pref');
    await lab!.apply(
      { apiVersion: 'admitlb.io/v1alpha1', kind: 'L2Advertisement', metadata: { name: 'pref' }, spec: { ipPools: ['pref'], nodePreference: weights } },
      { apiVersion: 'admitlb.io/v1alpha1', kind: 'BGPAdvertisement', metadata: { name: 'pref' }, spec: { ipPools: ['pref'], nodePreference: weights } },
    );
    await lab!.apply({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: 'pref', namespace: 'default', annotations: { 'admitlb.io/pool': 'pref' } },
      spec: { type: 'LoadBalancer', selector: { app: 'pref' }, ports: [{ name: 'p0-80', port: 80, protocol: 'TCP', targetPort: 80 }] },
    });
    const vip = await svcIP('pref');
    await lab!.apply(lab!.endpointSlice('pref', ['node-a']));
    const prefix = `${vip}/32`;
    const expect = async (owner: string, what: string) => {
      await waitFor(`${what}: L2 owner ${owner}`, async () => JSON.stringify(await lab!.holders(vip)) === JSON.stringify([owner]), { timeoutMs: 15_000, intervalMs: 50 });
      await birdFrom(prefix, [owner], what);
    };
    await expect('node-c', 'every node eligible');
    // The Node label that takes a node out of load balancing makes node-c ineligible: node-b, the next weight.
    await lab!.kubectlOk(['label', 'node', 'node-c', 'node.kubernetes.io/exclude-from-external-load-balancers=']);
    await expect('node-b', 'node-c excluded');
    await lab!.kubectlOk(['label', 'node', 'node-c', 'node.kubernetes.io/exclude-from-external-load-balancers-']);
    await expect('node-c', 'node-c back');
    t.diagnostic(`${vip}: owner and only BGP path node-c, node-b while node-c was excluded, node-c again after`);
    await lab!.kubectlOk(['delete', 'service', 'pref']);
    await lab!.kubectlOk(['delete', 'l2advertisement', 'pref']);
    await lab!.kubectlOk(['delete', 'bgpadvertisement', 'pref']);
    await waitFor(`${vip} released`, async () => (await lab!.holders(vip)).length === 0 && (await bird.from(prefix)).length === 0, { timeoutMs: 15_000, intervalMs: 100 });
  });

  it("the owner's link cut (veth down and its API forwarder gone): the client's neighbour entry moves, the routers drop its paths; it comes back after repair", async (t) => {
    const vip = await svcIP('web');
    const prefix = `${vip}/32`;
    const [owner] = await lab!.holders(vip);
    assert.ok(owner, 'web has an owner');
    assert.ok(await lab!.ping(client, vip));
    assert.equal(await lab!.neigh(client, vip), lab!.macs[owner]);
    const n = lab!.nodes[owner]!;

    const t0 = performance.now();
    await run('ip', ['-n', n.ns, 'link', 'set', n.ifname, 'down']);
    await lab!.stopForwarder(owner);
    const tCut = performance.now() - t0;
    let tNeigh = 0;
    let newOwner = '';
    for (const deadline = t0 + 15_000; ; ) {
      const mac = await lab!.neigh(client, vip);
      const who = Object.keys(lab!.macs).find((k) => lab!.macs[k] === mac);
      if (who && who !== owner) {
        tNeigh = performance.now() - t0;
        newOwner = who;
        break;
      }
      if (performance.now() > deadline) throw new Error(`no takeover of ${vip} after cutting ${owner}\n${lab!.logs()}`);
      await sleep(10);
    }
    assert.ok(await lab!.ping(client, vip), 'ping answered by the new owner');
    const tPing = performance.now() - t0;
    await birdFrom(prefix, allNodes().filter((x) => x !== owner), `${owner} cut`, 10_000);
    const tBird = performance.now() - t0;
    await frrFrom(prefix, allNodes().filter((x) => x !== owner), `${owner} cut`, 10_000);
    const tFrr = performance.now() - t0;
    const line = `cut ${owner} (${tCut.toFixed(0)} ms to cut) → client neighbour on ${newOwner}: ${tNeigh.toFixed(0)} ms; ping: ${tPing.toFixed(0)} ms; BIRD dropped ${owner}: ${tBird.toFixed(0)} ms; FRR: ${tFrr.toFixed(0)} ms (hold time ${HOLD_TIME} s)`;
    t.diagnostic(line);
    console.log(`# speaker link-cut failover: ${line}`);
    assert.ok(tPing < FAILOVER_BOUND_MS, `takeover took ${tPing.toFixed(0)} ms`);
    // The surviving nodes agree: exactly one of them holds it (the cut node may still hold it on
    // its dead link, where nobody can reach it).
    assert.deepEqual((await lab!.holders(vip)).filter((h) => h !== owner), [newOwner]);

    // Repair: link up, API back. Everything converges: one owner, three BGP paths again.
    const r0 = performance.now();
    await run('ip', ['-n', n.ns, 'link', 'set', n.ifname, 'up']);
    await lab!.startForwarder(owner);
    await birdFrom(prefix, allNodes(), 'repaired', 30_000);
    const [finalOwner] = await waitFor('one owner after repair', async () => {
      const h = await lab!.holders(vip);
      return h.length === 1 ? h : null;
    }, { timeoutMs: 30_000, intervalMs: 50 });
    await waitFor('client neighbour on the final owner', async () => (await lab!.ping(client, vip)) && (await lab!.neigh(client, vip)) === lab!.macs[finalOwner!], { timeoutMs: 10_000, intervalMs: 100 });
    t.diagnostic(`repaired: ${owner} back at BIRD and a single owner (${finalOwner}) after ${(performance.now() - r0).toFixed(0)} ms`);
  });
  it('a node cut off the API only (link up) never takes addresses another node owns; everything converges after repair', async (t) => {
    // Several addresses, spread over the nodes by rendezvous hashing.
    const names = ['p1', 'p2', 'p3', 'p4', 'p5'];
    for (const name of names) {
      await lab!.kubectlOk(['create', 'service', 'loadbalancer', name, '--tcp=80:80']);
      await lab!.apply(lab!.endpointSlice(name, NODES));
    }
    const vips = await Promise.all(names.map((n) => svcIP(n)));
    const owners = async () => Object.fromEntries(await Promise.all(vips.map(async (v) => [v, await lab!.holders(v)] as const)));
    const before = await waitFor('one owner each', async () => {
      const o = await owners();
      return Object.values(o).every((h) => h.length === 1) ? o : null;
    }, { timeoutMs: 10_000, intervalMs: 50 });
    // The node that owns the fewest of them: it must not take the others'.
    const count = (n: string) => Object.values(before).filter((h) => h[0] === n).length;
    const cut = [...NODES].sort((a, b) => count(a) - count(b))[0]!;
    const others = vips.filter((v) => before[v]![0] !== cut);
    assert.ok(others.length > 0);
    await lab!.stopForwarder(cut);
    const t0 = performance.now();
    const grabbed = new Set<string>();
    while (performance.now() - t0 < (lab!.leaseSeconds + 2) * 1000) {
      for (const v of others) if ((await lab!.holders(v)).includes(cut)) grabbed.add(v);
      await sleep(50);
    }
    await lab!.startForwarder(cut);
    const r0 = performance.now();
    await waitFor('one owner each after repair', async () => Object.values(await owners()).every((h) => h.length === 1), { timeoutMs: 30_000, intervalMs: 100 });
    t.diagnostic(`${cut} cut off the API (owned ${vips.length - others.length} of ${vips.length}); it took ${grabbed.size ? [...grabbed].join(', ') : 'nothing'}; one owner each again ${(performance.now() - r0).toFixed(0)} ms after repair`);
    assert.deepEqual([...grabbed], [], `${cut}, cut off the API, announced addresses other nodes own\n${lab!.logs(30)}`);
    for (const name of names) await lab!.kubectlOk(['delete', 'svc', name, '--wait=false']);
  });

});
