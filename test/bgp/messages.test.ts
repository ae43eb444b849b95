// Golden bytes for every message type (hand-assembled from the RFCs, not produced by the encoder),
// and the decoder's answers to malformed input.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AttrSetTable, MessageWriter, SessionEncoder, writeAnnouncements, writeWithdrawals } from '../../src/bgp/adj-rib-out.ts';
import { decodeCapabilities, encodeCapability } from '../../src/bgp/capabilities.ts';
import {
  FrameReader,
  decodeMessage,
  encodeEndOfRib,
  encodeKeepalive,
  encodeNotification,
  encodeOpen,
  encodeRouteRefresh,
  encodeUpdate,
  shutdownCommunication,
  type UpdateMessage,
} from '../../src/bgp/messages.ts';
import { formatIpv6, parseIpv6, parsePrefix, prefixKeyToText } from '../../src/bgp/prefix.ts';
import type { Socket } from 'node:net';

const MARKER = 'ff'.repeat(16);
const hex = (s: string) => Buffer.from(s.replace(/[^0-9a-f]/gi, ''), 'hex');
const msg = (lengthAndType: string, body = '') => hex(MARKER + lengthAndType + body);
/** A message whose header length is computed, for decoder tests that are about the body. */
const auto = (type: number, body: string) => {
  const b = hex(body);
  return Buffer.concat([hex(MARKER), Buffer.from([(19 + b.length) >> 8, (19 + b.length) & 0xff, type]), b]);
};

/** Collects what the fast-path writers emit, without a socket. */
async function collect(fn: (w: MessageWriter) => Promise<void>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const fake = {
    destroyed: false,
    write: (b: Buffer) => {
      chunks.push(Buffer.from(b));
      return true;
    },
  } as unknown as Socket;
  const w = new MessageWriter(fake, 8192);
  await fn(w);
  await w.flush();
  return Buffer.concat(chunks);
}

function decodeOk(buf: Buffer, as4 = true) {
  const r = decodeMessage(buf, { as4 });
  assert.ok(r.ok, r.ok ? '' : `unexpected error ${r.error.code}/${r.error.subcode}: ${r.error.reason}`);
  return r.message;
}

function decodeErr(buf: Buffer, as4 = true) {
  const r = decodeMessage(buf, { as4 });
  assert.ok(!r.ok, 'expected a NOTIFICATION');
  return r.error;
}

describe('golden bytes: encoding', () => {
  it('OPEN with multiprotocol, route refresh and 4-octet AS capabilities', () => {
    const got = encodeOpen({
      asn: 65001,
      holdTime: 90,
      routerId: '192.0.2.1',
      capabilities: [{ code: 1, afi: 1, safi: 1 }, { code: 2 }, { code: 65, asn: 65001 }],
    });
    assert.deepEqual(got, msg('002d 01', '04 fde9 005a c0000201 10 020e 010400010001 0200 41040000fde9'));
  });

  it('OPEN with a 4-octet ASN puts AS_TRANS in My AS', () => {
    const got = encodeOpen({ asn: 4200000001, holdTime: 0, routerId: '198.51.100.1', capabilities: [{ code: 65, asn: 4200000001 }] });
    assert.deepEqual(got, msg('0025 01', '04 5ba0 0000 c6336401 08 0206 4104fa56ea01'));
  });

  it('graceful restart capability with restart time, R bit and F bit', () => {
    const cap = encodeCapability({ code: 64, restarting: true, notification: false, restartTime: 120, families: [{ afi: 1, safi: 1, forwardingPreserved: true }, { afi: 2, safi: 1, forwardingPreserved: false }] });
    assert.deepEqual(cap, hex('40 0a 8078 0001 01 80 0002 01 00'));
  });

  it('KEEPALIVE', () => {
    assert.deepEqual(encodeKeepalive(), msg('0013 04'));
  });

  it('NOTIFICATION Cease / Administrative Shutdown with an RFC 8203 message', () => {
    assert.deepEqual(encodeNotification(6, 2, shutdownCommunication('bye')), msg('0019 03', '06 02 03 627965'));
  });

  it('ROUTE-REFRESH for IPv6 unicast', () => {
    assert.deepEqual(encodeRouteRefresh(2, 1), msg('0017 05', '0002 00 01'));
  });

  it('End-of-RIB for IPv4 (empty UPDATE) and IPv6 (empty MP_UNREACH_NLRI)', () => {
    assert.deepEqual(encodeEndOfRib(1), msg('0017 02', '0000 0000'));
    assert.deepEqual(encodeEndOfRib(2), msg('001d 02', '0000 0006 800f03 0002 01'));
  });

  const v4Update = msg(
    '0050 02',
    '0000 0035' +
      '400101 00' + // ORIGIN IGP
      '400206 02 01 0000fde9' + // AS_PATH AS_SEQUENCE [65001]
      '400304 c0000201' + // NEXT_HOP 192.0.2.1
      '800404 0000000a' + // MED 10
      'c00808 ffffff01 fde90064' + // COMMUNITIES NO_EXPORT 65001:100
      'c0200c 0000fde9 00000001 00000002' + // LARGE_COMMUNITY 65001:1:2
      '18 cb0071', // 203.0.113.0/24
  );

  it('UPDATE (IPv4): every attribute we send, via the general encoder', () => {
    const got = encodeUpdate(
      {
        attributes: {
          origin: 'igp',
          asPath: [{ type: 'sequence', asns: [65001] }],
          nextHop: '192.0.2.1',
          med: 10,
          communities: [0xffffff01, (65001 << 16) | 100],
          largeCommunities: [[65001, 1, 2]],
        },
        nlri: ['203.0.113.0/24'],
      },
      { as4: true },
    );
    assert.deepEqual(got, v4Update);
  });

  it('UPDATE (IPv4): the same bytes from the per-session fast path', async () => {
    const table = new AttrSetTable();
    const set = table.intern(1, { med: 10, communities: ['NO_EXPORT', '65001:100'], largeCommunities: ['65001:1:2'] });
    const enc = new SessionEncoder({ ibgp: false, as4: true, localAsn: 65001, nextHopIpv4: '192.0.2.1', nextHopIpv6: undefined, linkLocalIpv6: undefined });
    const got = await collect((w) => writeAnnouncements(w, enc.encode(1, set)!, [parsePrefix('203.0.113.0/24').key]));
    assert.deepEqual(got, v4Update);
  });

  it('UPDATE (iBGP): empty AS_PATH and LOCAL_PREF', async () => {
    const table = new AttrSetTable();
    const set = table.intern(1, { localPref: 200 });
    const enc = new SessionEncoder({ ibgp: true, as4: true, localAsn: 65001, nextHopIpv4: '192.0.2.1', nextHopIpv6: undefined, linkLocalIpv6: undefined });
    const got = await collect((w) => writeAnnouncements(w, enc.encode(1, set)!, [parsePrefix('203.0.113.10/32').key]));
    assert.deepEqual(got, msg('0031 02', '0000 0015 400101 00 400200 400304 c0000201 400504 000000c8 20 cb00710a'));
  });

  it('UPDATE (IPv6): MP_REACH_NLRI with a global next hop', async () => {
    const table = new AttrSetTable();
    const set = table.intern(2, {});
    const enc = new SessionEncoder({ ibgp: false, as4: true, localAsn: 65001, nextHopIpv4: undefined, nextHopIpv6: '2001:db8:1::1', linkLocalIpv6: undefined });
    const got = await collect((w) => writeAnnouncements(w, enc.encode(2, set)!, [parsePrefix('2001:db8:ff::10/128').key]));
    const expected = msg(
      '004e 02',
      '0000 0037 400101 00 400206 02 01 0000fde9' +
        '900e 0026 0002 01 10 20010db8000100000000000000000001 00' +
        '80 20010db800ff00000000000000000010',
    );
    assert.deepEqual(got, expected);
  });

  it('UPDATE (IPv6): global plus link-local next hop (32 octets), large community after MP_REACH_NLRI', async () => {
    const table = new AttrSetTable();
    const set = table.intern(2, { largeCommunities: [[1, 2, 3]] });
    const enc = new SessionEncoder({ ibgp: false, as4: true, localAsn: 65001, nextHopIpv4: undefined, nextHopIpv6: '2001:db8:1::1', linkLocalIpv6: 'fe80::1' });
    const got = await collect((w) => writeAnnouncements(w, enc.encode(2, set)!, [parsePrefix('2001:db8::/32').key]));
    const expected = msg(
      '0061 02',
      '0000 004a 400101 00 400206 02 01 0000fde9' +
        '900e 002a 0002 01 20 20010db8000100000000000000000001 fe800000000000000000000000000001 00' +
        '20 20010db8' +
        'c0200c 00000001 00000002 00000003',
    );
    assert.deepEqual(got, expected);
  });

  it('UPDATE on a 2-octet AS session: AS_TRANS in AS_PATH and the real path in AS4_PATH', async () => {
    const table = new AttrSetTable();
    const set = table.intern(1, {});
    const enc = new SessionEncoder({ ibgp: false, as4: false, localAsn: 4200000001, nextHopIpv4: '192.0.2.1', nextHopIpv6: undefined, linkLocalIpv6: undefined });
    const got = await collect((w) => writeAnnouncements(w, enc.encode(1, set)!, [parsePrefix('198.51.100.0/24').key]));
    assert.deepEqual(got, msg('0036 02', '0000 001b 400101 00 400204 02 01 5ba0 400304 c0000201 c01106 02 01 fa56ea01 18 c63364'));
  });

  it('withdrawals: withdrawn-routes field for IPv4, MP_UNREACH_NLRI for IPv6', async () => {
    const v4 = await collect((w) => writeWithdrawals(w, 1, [parsePrefix('203.0.113.0/24').key]));
    assert.deepEqual(v4, msg('001b 02', '0004 18cb0071 0000'));
    assert.deepEqual(encodeUpdate({ withdrawn: ['203.0.113.0/24'] }, { as4: true }), v4);
    const v6 = await collect((w) => writeWithdrawals(w, 2, [parsePrefix('2001:db8:ff::10/128').key]));
    assert.deepEqual(v6, msg('002f 02', '0000 0018 900f 0014 0002 01 80 20010db800ff00000000000000000010'));
  });

  it('packs prefixes with the same attributes into as few UPDATEs as fit in 4096 octets', async () => {
    const table = new AttrSetTable();
    const set = table.intern(1, {});
    const enc = new SessionEncoder({ ibgp: false, as4: true, localAsn: 65001, nextHopIpv4: '192.0.2.1', nextHopIpv6: undefined, linkLocalIpv6: undefined });
    const keys = Array.from({ length: 2000 }, (_, i) => parsePrefix(`198.18.${i >> 8}.${i & 255}/32`).key);
    const out = await collect((w) => writeAnnouncements(w, enc.encode(1, set)!, keys));
    const reader = new FrameReader();
    reader.push(out);
    const sizes: number[] = [];
    let prefixes = 0;
    for (let f = reader.next(); f !== null; f = reader.next()) {
      assert.ok(Buffer.isBuffer(f));
      sizes.push(f.length);
      prefixes += (decodeOk(f) as UpdateMessage).nlri.length;
    }
    assert.equal(prefixes, 2000);
    // 20 octets of attributes + 23 fixed: (4096-43)/5 = 810 prefixes per full UPDATE.
    assert.deepEqual(sizes, [4093, 4093, 23 + 20 + 380 * 5]);
  });
});

describe('golden bytes: decoding', () => {
  it('decodes an OPEN, taking the real ASN from the 4-octet AS capability', () => {
    const m = decodeOk(msg('0025 01', '04 5ba0 0000 c6336401 08 0206 4104fa56ea01'));
    assert.equal(m.type, 'open');
    if (m.type !== 'open') return;
    assert.equal(m.myAs, 23456);
    assert.equal(m.asn, 4200000001);
    assert.equal(m.routerId, '198.51.100.1');
    assert.equal(m.holdTime, 0);
  });

  it('decodes every attribute of the golden IPv4 UPDATE', () => {
    const m = decodeOk(
      msg('0050 02', '0000 0035 40010100 40020602010000fde9 400304c0000201 8004040000000a c00808ffffff01fde90064 c0200c0000fde90000000100000002 18cb0071'),
    ) as UpdateMessage;
    assert.deepEqual(m.nlri, ['203.0.113.0/24']);
    assert.deepEqual(m.attributes, {
      origin: 'igp',
      asPath: [{ type: 'sequence', asns: [65001] }],
      nextHop: '192.0.2.1',
      med: 10,
      communities: [0xffffff01, 0xfde90064],
      largeCommunities: [[65001, 1, 2]],
    });
    assert.deepEqual(m.treatAsWithdraw, []);
  });

  it('decodes 2-octet AS_PATH when 4-octet AS was not negotiated', () => {
    const m = decodeOk(msg('0036 02', '0000 001b 400101 00 400204 02 01 5ba0 400304 c0000201 c01106 02 01 fa56ea01 18 c63364'), false) as UpdateMessage;
    assert.deepEqual(m.attributes.asPath, [{ type: 'sequence', asns: [23456] }]);
    assert.deepEqual(m.attributes.as4Path, [{ type: 'sequence', asns: [4200000001] }]);
  });

  it('recognizes both End-of-RIB forms', () => {
    assert.deepEqual((decodeOk(encodeEndOfRib(1)) as UpdateMessage).endOfRib, { afi: 1, safi: 1 });
    assert.deepEqual((decodeOk(encodeEndOfRib(2)) as UpdateMessage).endOfRib, { afi: 2, safi: 1 });
    assert.equal((decodeOk(encodeUpdate({ withdrawn: ['203.0.113.0/24'] }, { as4: true })) as UpdateMessage).endOfRib, undefined);
  });

  it('decodes NOTIFICATION, KEEPALIVE and ROUTE-REFRESH', () => {
    assert.deepEqual(decodeOk(msg('0019 03', '06 02 03 627965')), { type: 'notification', code: 6, subcode: 2, data: hex('03627965') });
    assert.deepEqual(decodeOk(msg('0013 04')), { type: 'keepalive' });
    assert.deepEqual(decodeOk(msg('0017 05', '0002 00 01')), { type: 'route-refresh', afi: 2, safi: 1, subtype: 0 });
  });

  it('round-trips the graceful restart capability', () => {
    const caps = decodeCapabilities(hex('40 0a 8078 0001 01 80 0002 01 00'));
    assert.deepEqual(caps, [
      { code: 64, restarting: true, notification: false, restartTime: 120, families: [{ afi: 1, safi: 1, forwardingPreserved: true }, { afi: 2, safi: 1, forwardingPreserved: false }] },
    ]);
  });
});

describe('malformed input gets the RFC 4271 / RFC 7606 answer', () => {
  it('bad marker: 1/1 Connection Not Synchronized', () => {
    const e = decodeErr(hex(`${'ff'.repeat(15)}00 0013 04`));
    assert.deepEqual([e.code, e.subcode], [1, 1]);
  });

  it('length below 19 or above 4096: 1/2 with the length field as data', () => {
    const short = decodeErr(msg('0012 04'));
    assert.deepEqual([short.code, short.subcode, short.data.toString('hex')], [1, 2, '0012']);
    const reader = new FrameReader();
    reader.push(msg('1001 02'));
    const e = reader.next();
    assert.ok(e && !Buffer.isBuffer(e), 'a framing error, not a frame');
    assert.deepEqual([e.code, e.subcode, e.data.toString('hex')], [1, 2, '1001']);
  });

  it('KEEPALIVE with a body: 1/2', () => {
    const e = decodeErr(msg('0014 04', '00'));
    assert.deepEqual([e.code, e.subcode], [1, 2]);
  });

  it('unknown type: 1/3 with the type as data', () => {
    const e = decodeErr(msg('0013 09'));
    assert.deepEqual([e.code, e.subcode, e.data.toString('hex')], [1, 3, '09']);
  });

  it('truncated frame: the reader waits for the rest, then yields it', () => {
    const full = encodeKeepalive();
    const reader = new FrameReader();
    reader.push(full.subarray(0, 10));
    assert.equal(reader.next(), null);
    reader.push(Buffer.concat([full.subarray(10), full.subarray(0, 5)]));
    assert.deepEqual(reader.next(), full);
    assert.equal(reader.next(), null);
    assert.equal(reader.buffered, 5);
  });

  it('OPEN version 3: 2/1 with the supported version as data', () => {
    const e = decodeErr(msg('001d 01', '03 fde9 005a c0000201 00'));
    assert.deepEqual([e.code, e.subcode, e.data.toString('hex')], [2, 1, '0004']);
  });

  it('OPEN with an unsupported optional parameter type: 2/4', () => {
    const e = decodeErr(msg('0020 01', '04 fde9 005a c0000201 03 0101 00'));
    assert.deepEqual([e.code, e.subcode], [2, 4]);
  });

  it('OPEN whose optional parameter length disagrees with the message: 2/0', () => {
    const e = decodeErr(msg('001e 01', '04 fde9 005a c0000201 05 00'));
    assert.deepEqual([e.code, e.subcode], [2, 0]);
  });

  it('UPDATE with withdrawn-routes length beyond the message: 3/1', () => {
    const e = decodeErr(msg('0017 02', '0010 0000'));
    assert.deepEqual([e.code, e.subcode], [3, 1]);
  });

  it('UPDATE with total path attribute length beyond the message: 3/1', () => {
    const e = decodeErr(msg('0017 02', '0000 0010'));
    assert.deepEqual([e.code, e.subcode], [3, 1]);
  });

  it('NLRI with prefix length 33: 3/10 Invalid Network Field', () => {
    const e = decodeErr(auto(2, '0000 000e 400101 00 400200 400304 c0000201 21 c0000201'));
    assert.deepEqual([e.code, e.subcode], [3, 10]);
  });

  it('unrecognized well-known attribute: 3/2 with the attribute as data', () => {
    const e = decodeErr(msg('001a 02', '0000 0003 406300'));
    assert.deepEqual([e.code, e.subcode, e.data.toString('hex')], [3, 2, '406300']);
  });

  it('ORIGIN value 5: treat-as-withdraw', () => {
    const m = decodeOk(auto(2, '0000 000e 400101 05 400200 400304 c0000201 18cb0071')) as UpdateMessage;
    assert.deepEqual(m.treatAsWithdraw, ['malformed ORIGIN']);
    assert.deepEqual(m.nlri, ['203.0.113.0/24']);
  });

  it('missing NEXT_HOP with IPv4 NLRI: treat-as-withdraw', () => {
    const m = decodeOk(auto(2, '0000 0007 400101 00 400200 18cb0071')) as UpdateMessage;
    assert.deepEqual(m.treatAsWithdraw, ['missing NEXT_HOP']);
  });

  it('COMMUNITIES of 3 octets: treat-as-withdraw', () => {
    const m = decodeOk(auto(2, '0000 0014 400101 00 400200 400304 c0000201 c00803 000000 18cb0071')) as UpdateMessage;
    assert.deepEqual(m.treatAsWithdraw, ['malformed COMMUNITIES']);
  });

  it('attribute length overrunning the attribute field: treat-as-withdraw', () => {
    const m = decodeOk(auto(2, '0000 0007 400101 00 400209 18cb0071')) as UpdateMessage;
    assert.deepEqual(m.treatAsWithdraw, ['attribute 2 length 9 overruns the path attributes']);
  });

  it('duplicate MP_REACH_NLRI: session reset 3/1', () => {
    const mp = '900e 0005 0001 01 00 00';
    const body = `0000 0012${mp}${mp}`;
    const e = decodeErr(auto(2, body));
    assert.deepEqual([e.code, e.subcode], [3, 1]);
  });

  it('MP_REACH_NLRI with unparseable NLRI: session reset 3/9', () => {
    // IPv6, next hop length 16, then a prefix length of 129
    const e = decodeErr(auto(2, '0000 0019 800e16 0002 01 10 20010db8000100000000000000000001 00 81 00'));
    assert.deepEqual([e.code, e.subcode], [3, 9]);
  });

  it('duplicate ORIGIN: the second one is discarded', () => {
    const m = decodeOk(auto(2, '0000 0012 400101 00 400101 02 400200 400304 c0000201 18cb0071')) as UpdateMessage;
    assert.equal(m.attributes.origin, 'igp');
    assert.deepEqual(m.discarded, ['duplicate attribute 1']);
  });

  it('malformed AS4_PATH: attribute discard, route kept', () => {
    const m = decodeOk(auto(2, '0000 0012 400101 00 400200 400304 c0000201 c01101 02 18cb0071')) as UpdateMessage;
    assert.deepEqual(m.treatAsWithdraw, []);
    assert.deepEqual(m.discarded, ['malformed AS4_PATH']);
  });
});

describe('prefixes and addresses', () => {
  it('parses and formats IPv4 and IPv6 prefixes canonically', () => {
    assert.equal(parsePrefix('203.0.113.10').text, '203.0.113.10/32');
    assert.equal(parsePrefix('2001:DB8:0:0::1/128').text, '2001:db8::1/128');
    assert.equal(prefixKeyToText(2, parsePrefix('2001:db8::/32').key), '2001:db8::/32');
    assert.equal(formatIpv6(parseIpv6('2001:db8:0:1:0:0:0:1')!), '2001:db8:0:1::1');
    assert.equal(formatIpv6(parseIpv6('::ffff:198.51.100.1')!), '::ffff:c633:6401');
  });

  it('rejects malformed prefixes and host bits', () => {
    for (const bad of ['203.0.113.0/33', '203.0.113.1/24', '256.0.0.0/8', '2001:db8::/129', '1:2:3:4:5:6:7:8:9', 'x', '10.0.0.0/ 8']) {
      assert.throws(() => parsePrefix(bad), /invalid prefix/, bad);
    }
  });
});
