import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { claimNameFor, countBuggy, formatIP, ipFromClaimName, parseIP, parseRange, rangeSize } from '../../src/allocation/addresses.ts';
import { IntervalSet } from '../../src/allocation/interval-set.ts';

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

describe('addresses', () => {
  it('parses CIDRs and ranges of both families', () => {
    assert.equal(rangeSize(parseRange('203.0.113.0/24')), 256n);
    assert.equal(rangeSize(parseRange('198.51.100.10-198.51.100.20')), 11n);
    assert.equal(rangeSize(parseRange('2001:db8:100::/48')), 1n << 80n);
    assert.equal(rangeSize(parseRange('10.0.0.0/8')), 1n << 24n);
  });
  it('rejects host bits, reversed and mixed ranges, and junk with a clear message', () => {
    assert.throws(() => parseRange('203.0.113.1/24'), /host bits set \(did you mean 203\.0\.113\.0\/24\?\)/);
    assert.throws(() => parseRange('203.0.113.9-203.0.113.1'), /ends before it starts/);
    assert.throws(() => parseRange('203.0.113.1-2001:db8::1'), /mixes IPv4 and IPv6/);
    assert.throws(() => parseRange('203.0.113.1'), /neither a CIDR nor a range/);
    assert.throws(() => parseRange('203.0.113.0/33'), /invalid prefix length/);
    assert.throws(() => parseIP('010.0.0.1'), /not a valid IP address/);
  });
  it('counts .0/.255 addresses arithmetically', () => {
    assert.equal(countBuggy(parseRange('10.0.0.0/8')), 2n * 65536n);
    assert.equal(countBuggy(parseRange('10.0.0.255-10.0.1.0')), 2n);
    assert.equal(countBuggy(parseRange('10.0.0.1-10.0.0.254')), 0n);
    assert.equal(countBuggy(parseRange('0.0.0.0/32')), 1n);
  });
  it('claim names are valid object names and reversible for every address, :: and ::1 included', () => {
    for (const a of ['::', '::1', '0.0.0.0', '255.255.255.255', 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '2001:db8::7']) {
      const ip = parseIP(a);
      const name = claimNameFor(ip);
      assert.match(name, DNS1123_SUBDOMAIN);
      assert.ok(name.length <= 253);
      assert.equal(formatIP(ipFromClaimName(name)), formatIP(ip));
    }
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (text) => {
        const ip = parseIP(text);
        const name = claimNameFor(ip);
        assert.match(name, DNS1123_SUBDOMAIN);
        const back = ipFromClaimName(name);
        assert.equal(back.family, ip.family);
        assert.equal(back.value, ip.value);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('interval set', () => {
  it('matches a naive set under random adds and deletes', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 60 })), { maxLength: 200 }), (ops) => {
        const s = new IntervalSet();
        const naive = new Set<number>();
        for (const [add, v] of ops) {
          if (add) {
            assert.equal(s.add(BigInt(v)), !naive.has(v));
            naive.add(v);
          } else {
            assert.equal(s.delete(BigInt(v)), naive.has(v));
            naive.delete(v);
          }
        }
        assert.equal(s.size, BigInt(naive.size));
        for (let v = 0; v <= 62; v++) {
          assert.equal(s.has(BigInt(v)), naive.has(v));
          let expect = v;
          while (naive.has(expect)) expect++;
          assert.equal(s.nextAbsent(BigInt(v)), BigInt(expect));
        }
      }),
      { numRuns: 300 },
    );
  });
});
