// L2Announcer logic with a recording fake runner (no namespaces): what it runs, in which order,
// how it limits helper processes and what it never does.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { L2Announcer, OWNER_TAG } from '../../src/speaker/announcer.ts';
import type { CommandResult, CommandRunner, RunOptions } from '../../src/speaker/ip.ts';

interface Call {
  argv: string[];
  opts?: RunOptions;
}

/** A fake `ip`/`arping`/`na6`: `ip -j addr show` returns `addrJson()`, helpers wait `helperMs`. */
function fake(opts: { addrJson?: () => unknown[]; helperMs?: number; fail?: (argv: string[]) => CommandResult | undefined } = {}) {
  const calls: Call[] = [];
  let running = 0;
  let maxRunning = 0;
  const runner: CommandRunner = async (cmd, args, o) => {
    const argv = [cmd, ...args];
    calls.push({ argv, ...(o ? { opts: o } : {}) });
    const failed = opts.fail?.(argv);
    if (failed) return failed;
    if (cmd === 'ip' && args.join(' ') === '-j addr show') return { code: 0, stdout: JSON.stringify(opts.addrJson?.() ?? []), stderr: '' };
    if (cmd !== 'ip') {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, opts.helperMs ?? 0);
        o?.signal?.addEventListener('abort', () => {
          clearTimeout(t);
          resolve();
        });
      });
      running--;
      return { code: o?.signal?.aborted ? 137 : 0, stdout: '', stderr: '' };
    }
    return { code: 0, stdout: '', stderr: '' };
  };
  return { runner, calls, maxRunning: () => maxRunning };
}

const programs = { arping: '/usr/bin/arping', na6: '/usr/sbin/na6' };

describe('L2Announcer (fake runner)', () => {
  it('adds a tagged host address, then sends gratuitous ARP / unsolicited NA with the right arguments', async () => {
    const f = fake();
    const a = new L2Announcer({ runner: f.runner, programs, ndTool: 'na6', repeatDelaysMs: [] });
    await a.announce('192.0.2.100', 'eth0');
    await a.announce('2001:DB8:2::100', 'eth0');
    await a.flush();
    assert.deepEqual(
      f.calls.map((c) => c.argv.join(' ')),
      [
        `ip addr add 192.0.2.100/32 dev eth0 metric ${OWNER_TAG} noprefixroute valid_lft 90 preferred_lft 90`,
        '/usr/bin/arping -U -c 1 -I eth0 -s 192.0.2.100 192.0.2.100',
        `ip addr add 2001:db8:2::100/128 dev eth0 metric ${OWNER_TAG} noprefixroute nodad valid_lft 90 preferred_lft 0`,
        '/usr/sbin/na6 -i eth0 -s 2001:db8:2::100 -d ff02::1 -t 2001:db8:2::100 -o -e',
      ],
    );
    // Announcing again on the same interface is a no-op; withdraw removes with the host prefix.
    await a.announce('192.0.2.100', 'eth0');
    assert.equal(await a.withdraw('192.0.2.100'), true);
    assert.equal(await a.withdraw('192.0.2.100'), false);
    assert.equal(f.calls.at(-1)!.argv.join(' '), 'ip addr del 192.0.2.100/32 dev eth0');
    await a.close();
    assert.equal(f.calls.at(-1)!.argv.join(' '), 'ip addr del 2001:db8:2::100/128 dev eth0');
  });

  it('uses ndsend when it is installed, and arping -A in reply mode', async () => {
    const f = fake();
    const a = new L2Announcer({ runner: f.runner, programs: { arping: '/usr/bin/arping', ndsend: '/usr/sbin/ndsend' }, arpMode: 'reply', repeatDelaysMs: [] });
    await a.announce('2001:db8:2::1', 'eth1');
    await a.announce('192.0.2.1', 'eth1');
    await a.close();
    const helpers = f.calls.filter((c) => c.argv[0] !== 'ip').map((c) => c.argv.join(' '));
    assert.deepEqual(helpers, ['/usr/sbin/ndsend 2001:db8:2::1 eth1', '/usr/bin/arping -A -c 1 -I eth1 -s 192.0.2.1 192.0.2.1']);
  });

  it('limits helper processes, and a withdraw cancels queued and running sends', async () => {
    const f = fake({ helperMs: 200 });
    const a = new L2Announcer({ runner: f.runner, programs, ndTool: 'na6', maxConcurrentSends: 3, repeatDelaysMs: [] });
    for (let i = 1; i <= 10; i++) await a.announce(`198.51.100.${i}`, 'eth0');
    // Withdraw the queued ones first (while the first three still run), then the running ones.
    for (let i = 10; i >= 1; i--) await a.withdraw(`198.51.100.${i}`);
    await a.flush();
    assert.equal(f.maxRunning(), 3);
    // Only the three that had started ran; the seven queued behind them never started.
    assert.equal(f.calls.filter((c) => c.argv[0] === '/usr/bin/arping').length, 3);
    await a.close();
  });

  it('never removes an address that was there before it (untagged), and adopts its own', async () => {
    let present = [{ ifindex: 2, ifname: 'eth0', flags: ['UP'], addr_info: [{ family: 'inet', local: '192.0.2.7', prefixlen: 32 }, { family: 'inet', local: '192.0.2.8', prefixlen: 32, metric: OWNER_TAG }] }];
    const f = fake({
      addrJson: () => present,
      fail: (argv) => (argv[1] === 'addr' && argv[2] === 'add' && /^192\.0\.2\.[78]\//.test(argv[3]!) ? { code: 2, stdout: '', stderr: 'Error: ipv4: Address already assigned.\n' } : undefined),
    });
    const warnings: string[] = [];
    const a = new L2Announcer({ runner: f.runner, programs, repeatDelaysMs: [] });
    a.on('warning', (w: { message: string }) => warnings.push(w.message));
    await a.announce('192.0.2.7', 'eth0');
    await a.announce('192.0.2.8', 'eth0');
    assert.deepEqual(a.held().map((h) => [h.address, h.foreign]), [['192.0.2.7', true], ['192.0.2.8', false]]);
    assert.match(warnings.join(), /192\.0\.2\.7 is already configured on eth0 by someone else/);
    // Adopting its own renewed the lifetime.
    assert.ok(f.calls.some((c) => c.argv.join(' ') === 'ip -force -batch -' && c.opts?.input?.includes('addr change 192.0.2.8/32')), 'an ip batch with addr change 192.0.2.8/32');
    await a.close();
    const dels = f.calls.filter((c) => c.argv[2] === 'del').map((c) => c.argv[3]);
    assert.deepEqual(dels, ['192.0.2.8/32']);
    present = [];
  });

  it('reports missing helper tools instead of failing the announce, and rejects lifetimes the refresh cannot keep', async () => {
    const f = fake();
    const a = new L2Announcer({ runner: f.runner, programs: { arping: '', na6: '' }, ndTool: 'na6', repeatDelaysMs: [] });
    const errors: string[] = [];
    a.on('sendError', (e: { error: Error }) => errors.push(e.error.message));
    await a.announce('192.0.2.9', 'eth0');
    assert.match(errors.join(), /arping is not installed/);
    await a.close();
    assert.throws(() => new L2Announcer({ runner: f.runner, lifetimeSeconds: 30, refreshIntervalMs: 20_000 }), /at most a third of lifetimeSeconds/);
    assert.throws(() => new L2Announcer({ runner: f.runner, lifetimeSeconds: 30, refreshIntervalMs: 0 }), RangeError);
    new L2Announcer({ runner: f.runner, lifetimeSeconds: 0, refreshIntervalMs: 0 }).close();
  });
});
