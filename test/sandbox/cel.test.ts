// The double's CEL: the Kubernetes IP library subset (semantics of apiserver/pkg/cel/library/ip.go)
// and the IPClaim CRD rule, which must accept exactly the names claimNameFor gives.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { celBindings, evaluate } from '../../src/sandbox/cel.ts';
import { claimNameFor, formatIP, type IP } from '../../src/allocation/addresses.ts';
import { IPCLAIM_NAME_RULE } from '../../src/config/schemas.ts';

const value = (expr: string, vars: Record<string, unknown> = {}) => {
  const out = evaluate(expr, celBindings(vars));
  return 'error' in out ? { error: out.error } : out.value;
};

describe('the Kubernetes IP library in the double', () => {
  const table: [string, unknown][] = [
    ["isIP('192.0.2.1')", true],
    ["isIP('2001:db8::1')", true],
    ["isIP('192.0.2.01')", false], // leading zeros
    ["isIP('::ffff:192.0.2.1')", false], // IPv4-mapped
    ["isIP('fe80::1%eth0')", false], // zone
    ["isIP(' 192.0.2.1')", false],
    ["isIP('192.0.2.0/24')", false],
    ["ip.isCanonical('2001:db8::abcd')", true],
    ["ip.isCanonical('2001:DB8::ABCD')", false],
    ["ip.isCanonical('2001:db8::0:0:0:abcd')", false],
    ["ip.isCanonical('127.0.0.1')", true],
    ["string(ip('2001:0db8:0000:0000:0000:0000:0000:0001'))", '2001:db8::1'],
    ["ip('192.0.2.1').family()", 4n],
    ["ip('::1').family()", 6n],
    ["ip('2001:db8::1') == ip('2001:DB8::1')", true],
    ["'a-b-c'.replace('-', ':')", 'a:b:c'],
  ];
  for (const [expr, want] of table) {
    it(`${expr} → ${String(want)}`, () => assert.equal(value(expr), want));
  }

  it('a refused address is an evaluation error with the library message', () => {
    assert.deepEqual(value("ip('192.0.2.256')"), { error: 'IP Address "192.0.2.256" parse error during conversion from string: "192.0.2.256" is not a valid IP address' });
    assert.deepEqual(value("ip('::ffff:192.0.2.1')"), { error: 'IPv4-mapped IPv6 address "::ffff:192.0.2.1" is not allowed' });
    assert.deepEqual(value("ip.isCanonical('fe80::1%eth0')"), { error: 'IP address "fe80::1%eth0" with zone value is not allowed' });
  });

  it('an unknown function fails to evaluate (kube-apiserver would refuse the expression when stored)', () => {
    assert.ok('error' in (value("cidr('192.0.2.0/24').containsIP('192.0.2.1')") as object));
  });
});

describe('the IPClaim name rule', () => {
  const rule = (name: string, address: string) => value(IPCLAIM_NAME_RULE.rule, { self: { metadata: { name }, spec: { address } } });
  const arbIP = fc.oneof(
    fc.bigInt({ min: 0n, max: (1n << 32n) - 1n }).map((v): IP => ({ family: 4, value: v })),
    fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }).map((v): IP => ({ family: 6, value: v })),
  ).filter((ip) => !(ip.family === 6 && ip.value >> 32n === 0xffffn)); // IPv4-mapped: not an IP to the library

  it('accepts claimNameFor(ip) with the canonical address, for every address', () => {
    fc.assert(fc.property(arbIP, (ip) => rule(claimNameFor(ip), formatIP(ip)) === true), { numRuns: 500 });
  });

  it("refuses another address's name", () => {
    fc.assert(
      fc.property(arbIP, arbIP, (a, b) => {
        fc.pre(formatIP(a) !== formatIP(b));
        return rule(claimNameFor(a), formatIP(b)) === false;
      }),
      { numRuns: 500 },
    );
  });

  const refused: [string, string][] = [
    ['198.51.100.8', '198.51.100.08'],
    ['198.51.100.08', '198.51.100.8'],
    ['2001:db8::1', '2001:db8::1'],
    ['2001-db8-0-0-0-0-0-1', '2001:db8::1'],
    ['2001-0db8-0000-0000-0000-0000-0000-0001', '2001:DB8::1'],
    ['0000-0000-0000-0000-0000-0000-123.4.5.6', '::7b04:506'],
    ['shadow', '198.51.100.8'],
  ];
  for (const [name, address] of refused) {
    it(`refuses ${name} for ${address}`, () => assert.equal(rule(name, address), false));
  }
});
