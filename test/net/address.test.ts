// The one address parser and formatter: strict at the edge, RFC 5952 text out, bytes and bigints
// agreeing; ip-address (a well-kept library) is the oracle for random addresses.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Address4, Address6 } from 'ip-address';
import { AddressError, canonicalIP, familyOf, formatIP, ipFromBytes, ipToBytes, parseIP, tryParseIP } from '../../src/net/address.ts';

describe('src/net/address.ts', () => {
  it('canonical text (RFC 5952 §4: lowercase, longest zero run, a lone 0 group kept)', () => {
    const cases: [string, string][] = [
      ['192.0.2.1', '192.0.2.1'],
      ['2001:DB8::1', '2001:db8::1'],
      ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1'],
      ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['0:0:0:0:0:0:0:0', '::'],
      ['::ffff:192.0.2.1', '::ffff:c000:201'],
      [' 203.0.113.7 ', '203.0.113.7'],
    ];
    for (const [input, want] of cases) assert.equal(canonicalIP(input), want, input);
  });

  it('refuses what is not exactly one address', () => {
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '01.2.3.4', '256.1.1.1', '192.0.2.0/24', 'fe80::1%eth0', '1::2::3', '2001:db8::g', '1:2:3:4:5:6:7:8:9', 'localhost']) {
      assert.throws(() => parseIP(bad), AddressError, bad);
      assert.equal(tryParseIP(bad), undefined, bad);
      assert.equal(familyOf(bad), undefined, bad);
    }
  });

  it('families', () => {
    assert.equal(familyOf('198.51.100.1'), 4);
    assert.equal(familyOf('2001:db8::1'), 6);
  });

  it('random addresses: text, bigint and bytes agree with ip-address, both ways', () => {
    for (let i = 0; i < 500; i++) {
      const v6 = i % 2 === 1;
      const bytes = randomBytes(v6 ? 16 : 4);
      // Zero runs of various lengths exercise the compression.
      if (v6 && i % 3 === 0) bytes.fill(0, 2 * (i % 8), Math.min(16, 2 * (i % 8) + 2 * ((i % 5) + 1)));
      const ip = ipFromBytes(bytes);
      const text = formatIP(ip);
      const oracle = v6 ? Address6.fromUnsignedByteArray([...bytes]).correctForm() : Address4.fromInteger(Number(ip.value)).correctForm();
      assert.equal(text, oracle, `bytes ${bytes.toString('hex')}`);
      assert.deepEqual(parseIP(text), ip);
      assert.deepEqual(ipToBytes(ip), bytes);
    }
  });
});
