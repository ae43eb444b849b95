// The L2 announcer against real kernels: two "node" namespaces and a "client" namespace on one
// bridge (test/bgp/lab/topo.ts), 192.0.2.0/24 and 2001:db8:2::/64. Every ip/arping/na6 call of the
// announcer runs through `ip netns exec <node ns>`; nothing touches the main namespace. The
// client keeps the kernel's default neighbour settings (arp_accept=0, accept_untracked_na=0).
// Needs root, iproute2, iputils-arping, iputils-ping, ndisc6 and ipv6toolkit (or ndsend);
// skipped with a reason when missing, except under CI=true where that fails the suite.
import { after, before, describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { Topo, labNamespaces, sweepStale, type LabNode } from '../bgp/lab/topo.ts';
import { missingRequirements, run, runOk, sleep, waitFor, which } from '../bgp/lab/sys.ts';
import { L2Announcer, OWNER_TAG, type L2AnnouncerOptions } from '../../src/speaker/announcer.ts';
import { chooseInterface } from '../../src/speaker/interfaces.ts';
import { defaultRoutes, execRunner, listLinks, type IpLink } from '../../src/speaker/ip.ts';

const missing = missingRequirements(['arping', 'ping', 'ndisc6', ...(which('ndsend') ? [] : ['na6'])]);
const inCI = process.env.CI === 'true';
const skip = missing.length > 0 && !inCI ? `L2 lab unavailable (needs ${missing.join(', ')}); set CI=true to make this a failure` : false;
if (skip) console.log(`# skipping L2 announcer lab: ${skip}`);

/** Generous functional bound for a takeover as the client sees it (not a benchmark). */
const FAILOVER_BOUND_MS = 2000;

describe('L2 announcer in network namespaces', { skip, concurrency: 1, timeout: 120_000 }, () => {
  let topo: Topo | undefined;
  let nodeA: LabNode;
  let nodeB: LabNode;
  let client: LabNode;
  let macA: string;
  let macB: string;
  const announcers = new Set<L2Announcer>();

  /** An announcer whose every command runs inside `node`'s namespace; closed after the test. */
  function announcer(t: TestContext, node: LabNode, opts: L2AnnouncerOptions = {}): L2Announcer {
    const a = new L2Announcer({ runner: execRunner(['ip', 'netns', 'exec', node.ns]), ...opts });
    const errors: unknown[] = [];
    a.on('sendError', (e: { error: Error }) => errors.push(e.error.message));
    announcers.add(a);
    t.after(async () => {
      announcers.delete(a);
      await a.close().catch(() => {});
      assert.deepEqual(errors, [], 'gratuitous ARP / unsolicited NA failed');
    });
    return a;
  }

  const links = async (node: LabNode): Promise<IpLink[]> => listLinks(execRunner(['ip', 'netns', 'exec', node.ns]));
  const addrsOn = async (node: LabNode) =>
    (await links(node)).flatMap((l) => l.addrs.map((a) => ({ dev: l.ifname, local: a.local, prefixlen: a.prefixlen, metric: a.metric, deprecated: a.deprecated })));
  const has = async (node: LabNode, address: string) => (await addrsOn(node)).some((a) => a.local === address);

  /** The client's neighbour entry for an address: lladdr (or null) and state. */
  async function neigh(address: string): Promise<{ mac: string | null; state: string }> {
    const out = await runOk('ip', ['-n', client.ns, '-j', 'neigh', 'show', address, 'dev', client.ifname]);
    const [e] = JSON.parse(out || '[]') as Array<{ lladdr?: string; state?: string[] }>;
    return { mac: e?.lladdr?.toLowerCase() ?? null, state: e?.state?.join(',') ?? 'NONE' };
  }

  async function ping(address: string): Promise<boolean> {
    const r = await run('ip', ['netns', 'exec', client.ns, 'ping', address.includes(':') ? '-6' : '-4', '-c1', '-W1', address], { timeoutMs: 5000 });
    return r.code === 0;
  }

  /** Polls the client's neighbour table every 5 ms until it maps address → mac; returns when (ms since t0). */
  async function neighMovesTo(address: string, mac: string, t0: number): Promise<number> {
    const deadline = t0 + 5000;
    for (;;) {
      if ((await neigh(address)).mac === mac) return performance.now() - t0;
      if (performance.now() > deadline) throw new Error(`client still maps ${address} to ${JSON.stringify(await neigh(address))}, not ${mac}`);
      await sleep(5);
    }
  }

  before(async () => {
    await sweepStale();
    topo = await Topo.create({ nodes: ['node-a', 'node-b', 'client'], ipv4Prefix: '192.0.2.', ipv6Prefix: '2001:db8:2::' });
    nodeA = topo.node('node-a');
    nodeB = topo.node('node-b');
    client = topo.node('client');
    macA = await topo.mac('node-a');
    macB = await topo.mac('node-b');
    // Routes in the node namespaces for the default-route case of the chooser (documentation range).
    await runOk('ip', ['-n', nodeA.ns, 'route', 'add', 'default', 'via', '192.0.2.254', 'dev', nodeA.ifname]);
  });

  after(async () => {
    for (const a of announcers) await a.close().catch(() => {});
    await topo?.destroy();
    assert.deepEqual(await labNamespaces(), [], 'lab namespaces left behind');
  });

  it('(a) node-a announces 192.0.2.100: the client reaches it and maps it to node-a\'s MAC', async (t) => {
    const vip = '192.0.2.100';
    const choice = chooseInterface(vip, await links(nodeA), await defaultRoutes(execRunner(['ip', 'netns', 'exec', nodeA.ns])));
    assert.deepEqual(choice, { ifname: nodeA.ifname, reason: 'subnet' });
    assert.deepEqual(chooseInterface('203.0.113.5', await links(nodeA), await defaultRoutes(execRunner(['ip', 'netns', 'exec', nodeA.ns]))), {
      ifname: nodeA.ifname,
      reason: 'default-route',
    });

    const a = announcer(t, nodeA);
    await a.announce(vip, choice.ifname!);
    const added = (await addrsOn(nodeA)).find((x) => x.local === vip);
    assert.deepEqual(added, { dev: nodeA.ifname, local: vip, prefixlen: 32, metric: OWNER_TAG, deprecated: false });

    const r = await runOk('ip', ['netns', 'exec', client.ns, 'arping', '-f', '-c1', '-w2', '-I', client.ifname, vip]);
    assert.match(r.toLowerCase(), new RegExp(`\\[${macA}\\]`), r);
    assert.ok(await ping(vip), 'ping from the client');
    assert.equal((await neigh(vip)).mac, macA);

    await a.withdraw(vip);
    assert.equal(await has(nodeA, vip), false);
    assert.equal(await ping(vip), false, 'the address no longer answers after withdraw');
  });

  for (const variant of ['withdraw', 'crash'] as const) {
    it(`(b) IPv4 failover node-a → node-b (node-a's announcer ${variant === 'withdraw' ? 'withdraws' : 'is killed, its address stays'})`, async (t) => {
      const vip = variant === 'withdraw' ? '192.0.2.101' : '192.0.2.102';
      const a = announcer(t, nodeA, { repeatDelaysMs: [] });
      const b = announcer(t, nodeB);
      await a.announce(vip, nodeA.ifname);
      assert.ok(await ping(vip));
      assert.equal((await neigh(vip)).mac, macA);
      await a.flush(); // node-a's own gratuitous ARP has gone out and cannot land after node-b's

      const t0 = performance.now();
      if (variant === 'withdraw') await a.withdraw(vip);
      else await a.close({ withdraw: false }); // the process is gone; the kernel still has the address
      await b.announce(vip, nodeB.ifname);
      const tAnnounce = performance.now() - t0;
      const tNeigh = await neighMovesTo(vip, macB, t0);
      assert.ok(await ping(vip), 'ping answered after failover');
      const tPing = performance.now() - t0;
      assert.equal((await neigh(vip)).mac, macB, 'the reply came from node-b');
      t.diagnostic(`IPv4 failover (${variant}): node-b configured ${tAnnounce.toFixed(0)} ms, client neighbour → node-b ${tNeigh.toFixed(0)} ms, ping answered ${tPing.toFixed(0)} ms`);
      console.log(`# IPv4 failover (${variant}): announce ${tAnnounce.toFixed(1)} ms, neigh ${tNeigh.toFixed(1)} ms, ping ${tPing.toFixed(1)} ms`);
      assert.ok(tNeigh < FAILOVER_BOUND_MS && tPing < FAILOVER_BOUND_MS, `takeover took ${tNeigh} / ${tPing} ms`);

      if (variant === 'crash') {
        // The restarted speaker on node-a removes its leftover (and only that).
        const restarted = announcer(t, nodeA);
        assert.deepEqual(await restarted.cleanupLeftovers(), [{ address: vip, prefixlen: 32, dev: nodeA.ifname }]);
        assert.equal(await has(nodeA, vip), false);
      }
    });
  }

  it('(c) IPv6: node-a answers NS for 2001:db8:2::100 at once; failover to node-b with an unsolicited NA', async (t) => {
    const vip = '2001:db8:2::100';
    assert.deepEqual(chooseInterface(vip, await links(nodeA), { v4: [], v6: [] }), { ifname: nodeA.ifname, reason: 'subnet' });
    const a = announcer(t, nodeA, { repeatDelaysMs: [] });
    const b = announcer(t, nodeB);
    await a.announce(vip, nodeA.ifname);
    const added = (await addrsOn(nodeA)).find((x) => x.local === vip);
    assert.deepEqual(added, { dev: nodeA.ifname, local: vip, prefixlen: 128, metric: OWNER_TAG, deprecated: true });
    // NS answered right away: no DAD wait (nodad). ndisc6 sends a real NS from the client.
    const ns = await runOk('ip', ['netns', 'exec', client.ns, 'ndisc6', '-1', '-q', '-r', '1', '-w', '1000', vip, client.ifname]);
    assert.equal(ns.trim().toLowerCase(), macA);
    assert.ok(await ping(vip));
    assert.equal((await neigh(vip)).mac, macA);
    await a.flush();

    const t0 = performance.now();
    await a.withdraw(vip);
    await b.announce(vip, nodeB.ifname);
    const tAnnounce = performance.now() - t0;
    const tNeigh = await neighMovesTo(vip, macB, t0);
    assert.ok(await ping(vip), 'ping answered after failover');
    const tPing = performance.now() - t0;
    assert.equal((await neigh(vip)).mac, macB);
    t.diagnostic(`IPv6 failover: node-b configured ${tAnnounce.toFixed(0)} ms, client neighbour → node-b ${tNeigh.toFixed(0)} ms, ping answered ${tPing.toFixed(0)} ms`);
    console.log(`# IPv6 failover (withdraw): announce ${tAnnounce.toFixed(1)} ms, neigh ${tNeigh.toFixed(1)} ms, ping ${tPing.toFixed(1)} ms`);
    assert.ok(tNeigh < FAILOVER_BOUND_MS && tPing < FAILOVER_BOUND_MS, `takeover took ${tNeigh} / ${tPing} ms`);
  });

  it('(d) local binding: ours removed on close and after a crash, everyone else\'s untouched', async (t) => {
    const warnings: string[] = [];
    const first = announcer(t, nodeB);
    first.on('warning', (w: { message: string }) => warnings.push(w.message));
    const dev = await first.bindLocal('203.0.113.10');
    assert.equal(await first.bindLocal('2001:db8:3::10'), dev);
    assert.ok(dev === 'admitlb0' || dev === 'lo', dev);
    if (dev === 'lo') assert.match(warnings.join('\n'), /cannot create dummy interface admitlb0/);
    await first.announce('192.0.2.120', nodeB.ifname);
    // The addresses are local (what kube-proxy needs for externalIPs).
    const local = await runOk('ip', ['-n', nodeB.ns, 'route', 'get', '203.0.113.10']);
    assert.match(local, /^local 203\.0\.113\.10 /);

    // Someone else's addresses: on the same interfaces, untagged or with another metric.
    const foreign = [
      ['203.0.113.11/32', dev, []],
      ['192.0.2.121/32', nodeB.ifname, []],
      ['203.0.113.12/32', nodeB.ifname, ['metric', '5', 'noprefixroute']],
      ['2001:db8:3::11/128', dev, ['nodad']],
    ] as const;
    for (const [cidr, d, extra] of foreign) await runOk('ip', ['-n', nodeB.ns, 'addr', 'add', cidr, 'dev', d, ...extra]);
    // An address that was already there before we were asked to announce it is never removed.
    await first.announce('192.0.2.121', nodeB.ifname);
    assert.deepEqual(first.held().find((h) => h.address === '192.0.2.121')?.foreign, true);
    const foreignPresent = async () => {
      const now = await addrsOn(nodeB);
      return foreign.every(([cidr, d]) => now.some((a) => `${a.local}/${a.prefixlen}` === cidr && a.dev === d));
    };

    // 1. close() removes exactly ours.
    await first.close();
    for (const ours of ['203.0.113.10', '2001:db8:3::10', '192.0.2.120']) assert.equal(await has(nodeB, ours), false, `${ours} left behind`);
    assert.ok(await foreignPresent(), 'a foreign address was touched by close()');

    // 2. A crash leaves ours behind; the next start removes them (and adopts what it keeps).
    const crashed = announcer(t, nodeB);
    await crashed.bindLocal('203.0.113.20');
    await crashed.bindLocal('2001:db8:3::20');
    await crashed.announce('192.0.2.130', nodeB.ifname);
    await crashed.announce('2001:db8:2::130', nodeB.ifname);
    await crashed.close({ withdraw: false });
    for (const ours of ['203.0.113.20', '2001:db8:3::20', '192.0.2.130', '2001:db8:2::130']) assert.ok(await has(nodeB, ours));
    const restarted = announcer(t, nodeB);
    const removed = await restarted.cleanupLeftovers((x) => x.address === '192.0.2.130');
    assert.deepEqual(
      removed.map((r) => `${r.address}/${r.prefixlen}@${r.dev}`).sort(),
      [`203.0.113.20/32@${dev}`, `2001:db8:3::20/128@${dev}`, `2001:db8:2::130/128@${nodeB.ifname}`].sort(),
    );
    assert.deepEqual(restarted.held(), [{ address: '192.0.2.130', dev: nodeB.ifname, kind: 'announce', foreign: false }]);
    assert.ok(await foreignPresent(), 'a foreign address was touched by cleanupLeftovers()');
    assert.deepEqual(await new L2Announcer({ runner: execRunner(['ip', 'netns', 'exec', nodeB.ns]), refreshIntervalMs: 0, lifetimeSeconds: 0 }).cleanupLeftovers(), [
      { address: '192.0.2.130', prefixlen: 32, dev: nodeB.ifname },
    ]);
    assert.ok(await foreignPresent());
  });

  it('(d) refresh restores a deleted address and renews lifetimes; the kernel expires them when the speaker dies', async (t) => {
    // 2 s lifetimes renewed every 300 ms: on a loaded two-core machine a 1 s lifetime could lapse between
    // a renewal and the gratuitous ARP that follows it, which then fails to bind its source address.
    const a = announcer(t, nodeB, { lifetimeSeconds: 2, refreshIntervalMs: 300, repeatDelaysMs: [] });
    const restored: string[] = [];
    a.on('restored', (e: { address: string }) => restored.push(e.address));
    await a.announce('192.0.2.140', nodeB.ifname);
    await a.bindLocal('2001:db8:3::40');
    await runOk('ip', ['-n', nodeB.ns, 'addr', 'del', '192.0.2.140/32', 'dev', nodeB.ifname]);
    await waitFor('192.0.2.140 restored', () => restored.includes('192.0.2.140'), { timeoutMs: 3000 });
    await sleep(2600); // longer than the 2 s lifetime: renewals keep the addresses
    assert.ok(await has(nodeB, '192.0.2.140'));
    assert.ok(await has(nodeB, '2001:db8:3::40'));
    await a.close({ withdraw: false }); // "crash": nobody renews any more
    const t0 = performance.now();
    await waitFor('kernel expiry', async () => !(await has(nodeB, '192.0.2.140')) && !(await has(nodeB, '2001:db8:3::40')), { timeoutMs: 6000, intervalMs: 50 });
    t.diagnostic(`expired by the kernel ${(performance.now() - t0).toFixed(0)} ms after the last renewal stopped`);
  });
});
