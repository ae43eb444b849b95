// The neighbor request capture: the tcpdump line parser on recorded output (tcpdump 4.99, Debian 12,
// captured in a lab namespace with the speaker's own filter), and the capture lifecycle against a
// fake tcpdump (no network needed).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { PassThrough } from 'node:stream';
import type { ChildProcess } from 'node:child_process';
import { CAPTURE_FILTER, NeighborRequestCapture, parseTcpdumpLine, type NeighborFamily } from '../../src/speaker/neighbor-capture.ts';

// Recorded with `tcpdump -l -n -p --immediate-mode -Q in -s 128 -i va '<CAPTURE_FILTER>'` while a
// peer ran arping, arping -U and ndisc6; the -e / -v variants from the same capture.
const RECORDED = {
  arp: '13:49:15.403546 ARP, Request who-has 192.0.2.200 (ff:ff:ff:ff:ff:ff) tell 192.0.2.2, length 28',
  arpNoMac: '13:49:15.403546 ARP, Request who-has 192.0.2.200 tell 192.0.2.2, length 28',
  arpE: '13:49:15.403546 76:0f:a1:ca:4f:c9 > ff:ff:ff:ff:ff:ff, ethertype ARP (0x0806), length 42: Request who-has 192.0.2.200 tell 192.0.2.2, length 28',
  gratuitous: '13:49:15.419587 ARP, Request who-has 192.0.2.2 (ff:ff:ff:ff:ff:ff) tell 192.0.2.2, length 28',
  arpReply: '13:49:15.403600 ARP, Reply 192.0.2.200 is-at 76:0f:a1:ca:4f:c9, length 28',
  ns: '13:49:16.440126 IP6 fe80::943d:47ff:fe7b:79b8 > ff02::1:ff00:200: ICMP6, neighbor solicitation, who has 2001:db8:9::200, length 32',
  nsV: '13:49:16.440126 IP6 (hlim 255, next-header ICMPv6 (58) payload length: 32) fe80::943d:47ff:fe7b:79b8 > ff02::1:ff00:200: ICMP6, neighbor solicitation, who has 2001:db8:9::200, length 32',
  nsE: '13:49:16.440126 76:0f:a1:ca:4f:c9 > 33:33:ff:00:02:00, ethertype IPv6 (0x86dd), length 86: fe80::943d:47ff:fe7b:79b8 > ff02::1:ff00:200: ICMP6, neighbor solicitation, who has 2001:db8:9::200, length 32',
  dad: '13:49:15.385598 IP6 :: > ff02::1:ff7b:79b8: ICMP6, neighbor solicitation, who has fe80::943d:47ff:fe7b:79b8, length 32',
  na: '13:49:16.440300 IP6 2001:db8:9::200 > fe80::943d:47ff:fe7b:79b8: ICMP6, neighbor advertisement, tgt is 2001:db8:9::200, length 32',
  banner: 'listening on va, link-type EN10MB (Ethernet), snapshot length 128 bytes',
};

describe('neighbor request capture: parser', () => {
  it('ARP requests: target and sender, with or without the MAC in parentheses or the -e header', () => {
    for (const l of [RECORDED.arp, RECORDED.arpNoMac, RECORDED.arpE]) assert.deepEqual(parseTcpdumpLine(l), { family: 'ipv4', target: '192.0.2.200', sender: '192.0.2.2' });
    assert.deepEqual(parseTcpdumpLine(RECORDED.gratuitous), { family: 'ipv4', target: '192.0.2.2', sender: '192.0.2.2' });
  });

  it('neighbour solicitations (to the solicited-node group), also with -v; DAD from ::', () => {
    for (const l of [RECORDED.ns, RECORDED.nsV, RECORDED.nsE]) assert.deepEqual(parseTcpdumpLine(l), { family: 'ipv6', target: '2001:db8:9::200', sender: 'fe80::943d:47ff:fe7b:79b8' });
    assert.deepEqual(parseTcpdumpLine(RECORDED.dad), { family: 'ipv6', target: 'fe80::943d:47ff:fe7b:79b8', sender: '::' });
  });

  it('replies, advertisements and tcpdump banners are not requests', () => {
    for (const l of [RECORDED.arpReply, RECORDED.na, RECORDED.banner, '', 'garbage who has']) assert.equal(parseTcpdumpLine(l), null, l);
  });

  it('the filter selects ARP requests (opcode 1) and ICMPv6 type 135', () => {
    assert.equal(CAPTURE_FILTER, '(arp and arp[6:2] = 1) or (icmp6 and ip6[40] = 135)');
  });
});

class FakeChild extends EventEmitter {
  stdout = new PassThrough();
  stderr = new PassThrough();
  exitCode: number | null = null;
  signalCode: string | null = null;
  killed: string[] = [];
  kill(sig: string): boolean {
    this.killed.push(sig);
    this.exit(null, sig);
    return true;
  }
  exit(code: number | null, sig: string | null = null): void {
    if (this.exitCode !== null || this.signalCode !== null) return;
    this.exitCode = code;
    this.signalCode = sig;
    this.stdout.end();
    this.stderr.end();
    setImmediate(() => this.emit('close', code, sig));
  }
  ready(dev: string): void {
    this.stderr.write(`listening on ${dev}, link-type EN10MB (Ethernet), snapshot length 128 bytes\n`);
  }
}

function harness(opts: { tcpdump?: string | null } = {}) {
  const spawned: { cmd: string; args: string[]; child: FakeChild }[] = [];
  const counted: [NeighborFamily, string, string][] = [];
  const warnings: string[] = [];
  const capture = new NeighborRequestCapture({
    tcpdump: opts.tcpdump === undefined ? '/usr/bin/tcpdump' : opts.tcpdump,
    prefix: ['ip', 'netns', 'exec', 'n1'],
    backoff: { initialMs: 20, maxMs: 80 },
    logger: { info() {}, warn: (_o, m) => warnings.push(m ?? '') },
    onAnswered: (f, t, d) => counted.push([f, t, d]),
    spawn: (cmd, args) => {
      const child = new FakeChild();
      spawned.push({ cmd, args, child });
      return child as unknown as ChildProcess;
    },
  });
  return { capture, spawned, counted, warnings };
}

const tick = (ms = 5) => new Promise((r) => setTimeout(r, ms));

describe('neighbor request capture: lifecycle', () => {
  it('one tcpdump per interface with an owned address, through the prefix; counts only owned targets on that interface', async () => {
    const h = harness();
    h.capture.update([{ address: '192.0.2.200', dev: 'eth0' }, { address: '2001:DB8:9::200', dev: 'eth0' }]);
    h.capture.update([{ address: '192.0.2.200', dev: 'eth0' }, { address: '2001:DB8:9::200', dev: 'eth0' }]);
    assert.equal(h.spawned.length, 1);
    const { cmd, args, child } = h.spawned[0]!;
    assert.equal(cmd, 'ip');
    assert.deepEqual(args.slice(0, 4), ['netns', 'exec', 'n1', '/usr/bin/tcpdump']);
    assert.deepEqual(args.slice(-3), ['-i', 'eth0', CAPTURE_FILTER]);
    for (const flag of ['-p', '-l', '-n']) assert.ok(args.includes(flag), `tcpdump runs with ${flag}: ${args.join(' ')}`);
    child.ready('eth0');
    await tick();
    assert.deepEqual(h.capture.listening(), ['eth0']);
    for (const l of [RECORDED.arp, RECORDED.arp, RECORDED.gratuitous, RECORDED.ns, RECORDED.arpReply, RECORDED.ns.replace('9::200', '9::201')]) child.stdout.write(`${l}\n`);
    child.stdout.write(`${RECORDED.arp.replace('192.0.2.200', '192.0.2.201')}\n`);
    await tick();
    assert.deepEqual(h.counted, [
      ['ipv4', '192.0.2.200', 'eth0'],
      ['ipv4', '192.0.2.200', 'eth0'],
      ['ipv6', '2001:db8:9::200', 'eth0'],
    ]);
    // A request for an address held on another interface is not answered by this one.
    assert.equal(h.capture.handleLine('eth1', RECORDED.arp), null);
    await h.capture.close();
    assert.deepEqual(child.killed, ['SIGTERM']);
  });

  it('stops when the node holds nothing there; restarts with backoff if tcpdump dies', async () => {
    const h = harness();
    h.capture.update([{ address: '192.0.2.200', dev: 'eth0' }]);
    h.spawned[0]!.child.exit(1);
    await tick(10);
    assert.equal(h.spawned.length, 1, 'not restarted before the backoff');
    await tick(40);
    assert.equal(h.spawned.length, 2, 'restarted after 20 ms');
    h.spawned[1]!.child.exit(1);
    await tick(30);
    assert.equal(h.spawned.length, 2, 'second restart waits 40 ms');
    await tick(40);
    assert.equal(h.spawned.length, 3);
    assert.ok(h.warnings.some((w) => /restarting/.test(w)));
    h.capture.update([]);
    await tick();
    assert.deepEqual(h.spawned[2]!.child.killed, ['SIGTERM']);
    assert.deepEqual(h.capture.listening(), []);
    await tick(100);
    assert.equal(h.spawned.length, 3, 'no restart once nothing is held');
    await h.capture.close();
  });

  it('without tcpdump: logs once, starts nothing, counts nothing', async () => {
    const h = harness({ tcpdump: null });
    h.capture.update([{ address: '192.0.2.200', dev: 'eth0' }]);
    h.capture.update([{ address: '192.0.2.201', dev: 'eth0' }]);
    assert.equal(h.capture.available, false);
    assert.equal(h.spawned.length, 0);
    assert.equal(h.warnings.length, 1);
    assert.match(h.warnings[0]!, /tcpdump is not installed/);
    await h.capture.close();
  });
});
