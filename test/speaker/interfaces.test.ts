// The interface chooser and the `ip -j` parsers, on recorded `ip -j addr` output: no namespaces.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chooseInterface, candidateLinks, globToRegExp } from '../../src/speaker/interfaces.ts';
import { hostAddressArgs, parseDefaultRoutes, parseIpAddrJson } from '../../src/speaker/ip.ts';
import { OWNER_TAG } from '../../src/speaker/announcer.ts';

const up = ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP'];
const link = (ifindex: number, ifname: string, addrs: Array<Record<string, unknown>>, extra: Record<string, unknown> = {}) => ({
  ifindex,
  ifname,
  flags: up,
  mtu: 1500,
  operstate: 'UP',
  link_type: 'ether',
  address: `02:00:00:00:00:${ifindex.toString(16).padStart(2, '0')}`,
  addr_info: addrs.map((a) => ({ scope: 'global', valid_life_time: 4294967295, preferred_life_time: 4294967295, ...a })),
  ...extra,
});

// What a typical node looks like (shape of iproute2 6.1 `ip -j addr show`).
const NODE = JSON.stringify([
  link(1, 'lo', [{ family: 'inet', local: '127.0.0.1', prefixlen: 8, scope: 'host' }, { family: 'inet6', local: '::1', prefixlen: 128, scope: 'host' }], {
    flags: ['LOOPBACK', 'UP', 'LOWER_UP'],
    operstate: 'UNKNOWN',
    link_type: 'loopback',
    address: '00:00:00:00:00:00',
  }),
  link(2, 'eth0', [
    { family: 'inet', local: '192.0.2.10', prefixlen: 24 },
    { family: 'inet', local: '203.0.113.7', prefixlen: 32, metric: OWNER_TAG, noprefixroute: true },
    { family: 'inet6', local: '2001:db8:2::10', prefixlen: 64 },
    { family: 'inet6', local: 'fe80::1', prefixlen: 64, scope: 'link' },
  ]),
  link(3, 'eth1', [{ family: 'inet', local: '198.51.100.10', prefixlen: 25 }, { family: 'inet', local: '198.51.100.130', prefixlen: 26 }]),
  link(4, 'eth2', [{ family: 'inet', local: '198.51.100.140', prefixlen: 28 }], { flags: ['BROADCAST', 'MULTICAST'], operstate: 'DOWN' }),
  link(5, 'cali12345', [{ family: 'inet', local: '192.0.2.200', prefixlen: 30 }]),
  link(6, 'veth9', [{ family: 'inet', local: '203.0.113.1', prefixlen: 24 }]),
  link(7, 'kube-ipvs0', [{ family: 'inet', local: '203.0.113.50', prefixlen: 32 }], { flags: ['BROADCAST', 'NOARP'], operstate: 'DOWN' }),
  link(8, 'bond0', []),
]);
const links = parseIpAddrJson(NODE);
const routes = { v4: ['eth1'], v6: ['eth0'] };

describe('interface chooser', () => {
  it('parses ip -j addr', () => {
    const eth0 = links.find((l) => l.ifname === 'eth0')!;
    assert.equal(eth0.mac, '02:00:00:00:00:02');
    assert.deepEqual(eth0.addrs[1], {
      family: 4,
      local: '203.0.113.7',
      prefixlen: 32,
      metric: OWNER_TAG,
      scope: 'global',
      noprefixroute: true,
      nodad: false,
      deprecated: false,
      tentative: false,
      validLft: 4294967295,
      preferredLft: 4294967295,
    });
    assert.deepEqual(parseIpAddrJson(''), []);
  });

  it('parses default routes, lowest metric first, including multipath', () => {
    assert.deepEqual(
      parseDefaultRoutes(
        JSON.stringify([
          { dst: 'default', gateway: '192.0.2.1', dev: 'eth1', metric: 200 },
          { dst: 'default', gateway: '192.0.2.1', dev: 'eth0', metric: 100 },
          { dst: 'default', nexthops: [{ dev: 'eth2' }, { dev: 'eth3' }], metric: 300 },
          { dst: '192.0.2.0/24', dev: 'eth9' },
        ]),
      ),
      ['eth0', 'eth1', 'eth2', 'eth3'],
    );
  });

  it('picks the interface whose subnet contains the address (longest prefix)', () => {
    assert.deepEqual(chooseInterface('192.0.2.100', links, routes), { ifname: 'eth0', reason: 'subnet' });
    assert.deepEqual(chooseInterface('2001:db8:2::100', links, routes), { ifname: 'eth0', reason: 'subnet' });
    assert.deepEqual(chooseInterface('198.51.100.20', links, routes), { ifname: 'eth1', reason: 'subnet' });
    assert.deepEqual(chooseInterface('198.51.100.131', links, routes), { ifname: 'eth1', reason: 'subnet' });
  });

  it('ignores host addresses (ours or anyone\'s), excluded, down and NOARP links when matching subnets', () => {
    // 203.0.113.7/32 on eth0 is ours; 203.0.113.0/24 on veth9 is excluded: falls to the default route.
    assert.deepEqual(chooseInterface('203.0.113.8', links, routes), { ifname: 'eth1', reason: 'default-route' });
    // 192.0.2.200/30 on cali* is excluded; eth0's /24 matches.
    assert.deepEqual(chooseInterface('192.0.2.201', links, routes), { ifname: 'eth0', reason: 'subnet' });
    // eth2 is down.
    assert.deepEqual(chooseInterface('198.51.100.141', links, routes), { ifname: 'eth1', reason: 'subnet' });
    assert.deepEqual(
      candidateLinks(links).map((l) => l.ifname),
      ['eth0', 'eth1', 'bond0'],
    );
  });

  it('falls back to the default route of the family, then to the configured interfaces', () => {
    assert.deepEqual(chooseInterface('2001:db8:99::1', links, routes), { ifname: 'eth0', reason: 'default-route' });
    const none = chooseInterface('2001:db8:99::1', links, { v4: [], v6: [] });
    assert.equal(none.ifname, null);
    assert.match(none.reason, /configure interfaces/);
    assert.deepEqual(chooseInterface('2001:db8:99::1', links, { v4: [], v6: [] }, { interfaces: ['bond*', 'eth1'] }), { ifname: 'bond0', reason: 'configured' });
  });

  it('honours allow lists (names and globs) and explicit names over default exclusions', () => {
    // Only eth1 allowed: eth0's subnet no longer counts.
    assert.deepEqual(chooseInterface('192.0.2.100', links, routes, { interfaces: ['eth1'] }), { ifname: 'eth1', reason: 'default-route' });
    // An explicit name beats the default exclusion (veth*), a glob does not.
    assert.deepEqual(chooseInterface('203.0.113.9', links, { v4: [], v6: [] }, { interfaces: ['veth9'] }), { ifname: 'veth9', reason: 'subnet' });
    assert.equal(chooseInterface('203.0.113.9', links, { v4: [], v6: [] }, { interfaces: ['veth*'] }).ifname, null);
    // A custom exclusion list replaces the default one.
    assert.deepEqual(chooseInterface('192.0.2.100', links, routes, { exclude: ['eth0'] }), { ifname: 'eth1', reason: 'default-route' });
    assert.equal(chooseInterface('192.0.2.100', [], routes).ifname, null);
    assert.ok(globToRegExp('kube-ipvs*').test('kube-ipvs0'));
    assert.ok(!globToRegExp('br-*').test('bridge0'));
    assert.ok(globToRegExp('eth?.100').test('eth0.100'));
  });
});

describe('host address arguments', () => {
  it('IPv4: /32, tagged, no prefix route, finite lifetime', () => {
    assert.deepEqual(hostAddressArgs({ address: '192.0.2.100', dev: 'eth0', tag: 7, lifetimeSeconds: 90 }, 'add'), [
      'addr', 'add', '192.0.2.100/32', 'dev', 'eth0', 'metric', '7', 'noprefixroute', 'valid_lft', '90', 'preferred_lft', '90',
    ]);
  });
  it('IPv6: /128, nodad, deprecated, forever when the lifetime is 0', () => {
    assert.deepEqual(hostAddressArgs({ address: '2001:db8:2::100', dev: 'eth0', tag: 7, lifetimeSeconds: 0 }, 'change'), [
      'addr', 'change', '2001:db8:2::100/128', 'dev', 'eth0', 'metric', '7', 'noprefixroute', 'nodad', 'valid_lft', 'forever', 'preferred_lft', '0',
    ]);
  });
});
