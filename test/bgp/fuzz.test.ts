// Property tests: the decoder answers every input with a message or a defined NOTIFICATION, never
// an exception; the stream reader is insensitive to how TCP splits the bytes; and what the sender
// encodes decodes back to the attributes it was given.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Socket } from 'node:net';
import { AttrSetTable, MessageWriter, SessionEncoder, writeAnnouncements } from '../../src/bgp/adj-rib-out.ts';
import {
  FrameReader,
  decodeMessage,
  encodeEndOfRib,
  encodeKeepalive,
  encodeNotification,
  encodeOpen,
  encodeRouteRefresh,
  encodeUpdate,
  type DecodeResult,
  type UpdateMessage,
} from '../../src/bgp/messages.ts';
import { parsePrefix } from '../../src/bgp/prefix.ts';

const allowedSubcodes: Record<number, number[]> = {
  1: [1, 2, 3],
  2: [0, 1, 2, 3, 4, 6, 7],
  3: [1, 2, 3, 4, 5, 6, 8, 9, 10, 11],
};

function assertDefined(r: DecodeResult): void {
  if (r.ok) {
    assert.ok(['open', 'update', 'notification', 'keepalive', 'route-refresh'].includes(r.message.type));
    if (r.message.type === 'update') {
      assert.ok(Array.isArray(r.message.treatAsWithdraw), 'treatAsWithdraw is a list');
      assert.ok(Array.isArray(r.message.discarded), 'discarded is a list');
    }
    return;
  }
  assert.doesNotMatch(r.error.reason, /internal decoder error/, 'the catch-all must never be reached');
  const subs = allowedSubcodes[r.error.code];
  assert.ok(subs, `unexpected error code ${r.error.code}`);
  assert.ok(subs.includes(r.error.subcode), `unexpected subcode ${r.error.code}/${r.error.subcode} (${r.error.reason})`);
  assert.ok(Buffer.isBuffer(r.error.data));
}

function withHeader(type: number, body: Uint8Array): Buffer {
  const b = Buffer.alloc(19 + body.length, 0xff);
  b.writeUInt16BE(19 + body.length, 16);
  b[18] = type;
  Buffer.from(body).copy(b, 19);
  return b;
}

const valid: Buffer[] = [
  encodeOpen({ asn: 4200000001, holdTime: 90, routerId: '192.0.2.1', capabilities: [{ code: 1, afi: 1, safi: 1 }, { code: 1, afi: 2, safi: 1 }, { code: 2 }, { code: 64, restarting: false, notification: false, restartTime: 120, families: [{ afi: 1, safi: 1, forwardingPreserved: true }] }, { code: 65, asn: 4200000001 }] }),
  encodeUpdate(
    {
      withdrawn: ['198.51.100.0/24'],
      attributes: {
        origin: 'egp',
        asPath: [{ type: 'sequence', asns: [65001, 4200000001] }, { type: 'set', asns: [1, 2] }],
        nextHop: '192.0.2.1',
        med: 5,
        localPref: 100,
        atomicAggregate: true,
        aggregator: { asn: 65001, address: '192.0.2.9' },
        communities: [1, 2],
        originatorId: '192.0.2.7',
        clusterList: ['192.0.2.8'],
        mpReach: { afi: 2, safi: 1, nextHops: ['2001:db8::1', 'fe80::1'], nlri: ['2001:db8:1::/48'] },
        mpUnreach: { afi: 2, safi: 1, withdrawn: ['2001:db8:2::/48'] },
        largeCommunities: [[1, 2, 3]],
        unknown: [{ flags: 0xc0, type: 99, value: Buffer.from([1, 2, 3]) }],
      },
      nlri: ['203.0.113.0/24', '203.0.113.128/25'],
    },
    { as4: true },
  ),
  encodeEndOfRib(2),
  encodeNotification(6, 2, Buffer.from([3, 0x62, 0x79, 0x65])),
  encodeKeepalive(),
  encodeRouteRefresh(1, 1),
];

describe('decoder fuzz (fast-check)', () => {
  it('arbitrary bytes: a message or a defined NOTIFICATION, never an exception', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.boolean(), (bytes, as4) => {
        assertDefined(decodeMessage(Buffer.from(bytes), { as4 }));
      }),
      { numRuns: 3000 },
    );
  });

  it('valid header, random body of every type: defined answer', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.uint8Array({ minLength: 0, maxLength: 400 }), fc.boolean(), fc.boolean(), (type, body, as4, ibgp) => {
        assertDefined(decodeMessage(withHeader(type, body), { as4, ibgp }));
      }),
      { numRuns: 5000 },
    );
  });

  it('UPDATE built from random attribute TLVs (flags, type, length) around real NLRI: defined answer', () => {
    const tlv = fc.record({
      flags: fc.constantFrom(0x40, 0x80, 0xc0, 0x50, 0x90, 0xd0, 0x00, 0xe0),
      type: fc.constantFrom(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 17, 18, 32, 99, 255),
      value: fc.uint8Array({ maxLength: 40 }),
      lengthDelta: fc.constantFrom(0, 0, 0, -1, 1, 7),
    });
    fc.assert(
      fc.property(fc.array(tlv, { maxLength: 6 }), fc.uint8Array({ maxLength: 12 }), fc.boolean(), (tlvs, nlri, as4) => {
        const attrs = Buffer.concat(
          tlvs.map((t) => {
            const ext = (t.flags & 0x10) !== 0;
            const len = Math.max(0, t.value.length + t.lengthDelta);
            const head = ext ? Buffer.from([t.flags, t.type, len >> 8, len & 0xff]) : Buffer.from([t.flags, t.type, len & 0xff]);
            return Buffer.concat([head, Buffer.from(t.value)]);
          }),
        );
        const body = Buffer.concat([Buffer.from([0, 0, attrs.length >> 8, attrs.length & 0xff]), attrs, Buffer.from(nlri)]);
        if (body.length + 19 > 4096) return;
        assertDefined(decodeMessage(withHeader(2, body), { as4 }));
      }),
      { numRuns: 5000 },
    );
  });

  it('mutated valid messages (byte flips, truncation, extension): defined answer', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...valid),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }),
        fc.integer({ min: -20, max: 20 }),
        fc.boolean(),
        (base, flips, resize, fixLength) => {
          let b = Buffer.from(base);
          for (const [pos, value] of flips) if (b.length > 19) b[19 + (pos % (b.length - 19))] = value;
          if (resize < 0) b = b.subarray(0, Math.max(0, b.length + resize));
          else if (resize > 0) b = Buffer.concat([b, Buffer.alloc(resize, resize)]);
          if (fixLength && b.length >= 19) b.writeUInt16BE(Math.min(b.length, 0xffff), 16);
          assertDefined(decodeMessage(b));
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('the frame reader yields the same messages however the stream is split, and reports garbage', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...valid), { minLength: 1, maxLength: 8 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 50 }), (messages, cuts) => {
        const stream = Buffer.concat(messages);
        const reader = new FrameReader();
        const out: Buffer[] = [];
        let pos = 0;
        for (let i = 0; pos < stream.length; i++) {
          const n = cuts[i % cuts.length]!;
          reader.push(stream.subarray(pos, pos + n));
          pos += n;
          for (let f = reader.next(); f !== null; f = reader.next()) {
            assert.ok(Buffer.isBuffer(f));
            out.push(Buffer.from(f));
          }
        }
        assert.deepEqual(out, messages);
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 19, maxLength: 200 }), (bytes) => {
        const reader = new FrameReader();
        reader.push(Buffer.from(bytes));
        for (let i = 0; i < 50; i++) {
          const f = reader.next();
          if (f === null) return;
          if (!Buffer.isBuffer(f)) {
            assert.ok(f.code === 1 && [1, 2, 3].includes(f.subcode), `a header error 1/1-3, got ${f.code}/${f.subcode}`);
            return;
          }
          assertDefined(decodeMessage(f));
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('what the sender encodes decodes back to the same attributes and prefixes', async () => {
    const community = fc.oneof(fc.constantFrom('NO_EXPORT', 'NO_ADVERTISE', 'BLACKHOLE'), fc.tuple(fc.integer({ min: 0, max: 65535 }), fc.integer({ min: 0, max: 65535 })).map(([a, b]) => `${a}:${b}`));
    const u32 = fc.integer({ min: 0, max: 0xffffffff });
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          origin: fc.constantFrom('igp' as const, 'egp' as const, 'incomplete' as const),
          med: fc.option(u32, { nil: undefined }),
          localPref: fc.option(u32, { nil: undefined }),
          communities: fc.array(community, { maxLength: 20 }),
          largeCommunities: fc.array(fc.tuple(u32, u32, u32), { maxLength: 10 }),
        }),
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 1, max: 0xffffffff }),
        fc.uniqueArray(fc.integer({ min: 0, max: 0x1ffff }), { minLength: 1, maxLength: 1500 }),
        fc.boolean(),
        async (input, ibgp, as4, asn, hosts, v6) => {
          const afi = v6 ? 2 : 1;
          const table = new AttrSetTable();
          const set = table.intern(afi, input);
          const enc = new SessionEncoder({ ibgp, as4, localAsn: asn, nextHopIpv4: '192.0.2.1', nextHopIpv6: '2001:db8::1', linkLocalIpv6: undefined });
          const prefixes = hosts.map((h) => (v6 ? `2001:db8::${(h >> 16).toString(16)}:${(h & 0xffff).toString(16)}/128` : `198.${18 + (h >> 16)}.${(h >> 8) & 255}.${h & 255}/32`));
          const chunks: Buffer[] = [];
          const fake = {
            destroyed: false,
            write: (b: Buffer) => {
              chunks.push(Buffer.from(b));
              return true;
            },
          } as unknown as Socket;
          const w = new MessageWriter(fake, 16384);
          await writeAnnouncements(w, enc.encode(afi, set)!, prefixes.map((p) => parsePrefix(p).key));
          await w.flush();
          const reader = new FrameReader();
          reader.push(Buffer.concat(chunks));
          const seen: string[] = [];
          for (let f = reader.next(); f !== null; f = reader.next()) {
            assert.ok(Buffer.isBuffer(f) && f.length <= 4096, Buffer.isBuffer(f) ? `a frame of ${f.length} bytes` : `a framing error ${f.code}/${f.subcode}`);
            const r = decodeMessage(f, { as4, ibgp });
            assert.ok(r.ok);
            const m = r.message as UpdateMessage;
            assert.deepEqual(m.treatAsWithdraw, []);
            const a = m.attributes;
            assert.equal(a.origin, input.origin);
            assert.equal(a.med, input.med);
            assert.equal(a.localPref, ibgp ? (input.localPref ?? 100) : undefined);
            const expectedPath = ibgp ? [] : [{ type: 'sequence', asns: [as4 || asn <= 0xffff ? asn : 23456] }];
            assert.deepEqual(a.asPath, expectedPath);
            if (!as4 && !ibgp && asn > 0xffff) assert.deepEqual(a.as4Path, [{ type: 'sequence', asns: [asn] }]);
            assert.deepEqual(a.communities ?? [], set.communities);
            assert.deepEqual(a.largeCommunities ?? [], set.largeCommunities);
            seen.push(...(v6 ? a.mpReach!.nlri : m.nlri));
          }
          assert.deepEqual(seen, prefixes.map((p) => parsePrefix(p).text));
        },
      ),
      { numRuns: 200 },
    );
  });
});
