// native.ts on loopback sockets only: the TTL-255 receive filter for BFD (RFC 5881 §5) drops
// datagrams sent with any other TTL / hop limit, IPv4 and IPv6; TCP MD5 key errors are values.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { closeFd, nativeUnavailable, setTcpMd5Key, tcpSocketFor, udpSocketTtl255 } from '../../src/bgp/native.ts';

const noKoffi = nativeUnavailable();
const skip = noKoffi && process.env.CI !== 'true' ? `koffi unavailable: ${noKoffi}` : false;

async function received(family: 4 | 6, ttl: number): Promise<boolean> {
  const any = family === 4 ? '127.0.0.1' : '::1';
  const fd = udpSocketTtl255(any, 0);
  assert.ok(fd.ok, fd.ok ? '' : fd.error);
  const rx = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
  const tx = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
  try {
    await new Promise<void>((resolve) => rx.bind({ fd: fd.value } as dgram.BindOptions, () => resolve()));
    const got = new Promise<boolean>((resolve) => {
      rx.once('message', () => resolve(true));
      setTimeout(() => resolve(false), 300).unref();
    });
    await new Promise<void>((resolve) => tx.bind(0, any, () => resolve()));
    tx.setTTL(ttl);
    tx.send(Buffer.from('x'), rx.address().port, any);
    return await got;
  } finally {
    rx.close();
    tx.close();
  }
}

describe('native socket options (koffi)', { skip }, () => {
  for (const family of [4, 6] as const) {
    it(`IPv${family}: a datagram with TTL 255 passes the filter, TTL 254 and 64 do not`, async () => {
      assert.equal(await received(family, 255), true);
      assert.equal(await received(family, 254), false);
      assert.equal(await received(family, 64), false);
    });
  }

  it('TCP MD5 keys: set and removed on IPv4 and IPv6 sockets; wrong family and oversized keys are errors, not exceptions', () => {
    const v4 = tcpSocketFor('192.0.2.1');
    const v6 = tcpSocketFor('2001:db8::1');
    assert.ok(v4.ok, `IPv4 socket: ${JSON.stringify(v4)}`);
    assert.ok(v6.ok, `IPv6 socket: ${JSON.stringify(v6)}`);
    try {
      assert.deepEqual(setTcpMd5Key(v4.value, 4, '192.0.2.1', 'k'), { ok: true, value: undefined });
      assert.deepEqual(setTcpMd5Key(v4.value, 4, '192.0.2.1', null), { ok: true, value: undefined });
      assert.deepEqual(setTcpMd5Key(v4.value, 4, '192.0.2.1', null), { ok: true, value: undefined }, 'removing a missing key is fine');
      assert.deepEqual(setTcpMd5Key(v6.value, 6, '2001:db8::1', 'k'), { ok: true, value: undefined });
      assert.deepEqual(setTcpMd5Key(v6.value, 6, '192.0.2.1', 'k'), { ok: true, value: undefined }, 'IPv4-mapped on an IPv6 socket');
      const wrong = setTcpMd5Key(v4.value, 4, '2001:db8::1', 'k');
      assert.equal(wrong.ok, false);
      const long = setTcpMd5Key(v4.value, 4, '192.0.2.1', 'x'.repeat(81));
      assert.ok(!long.ok && /at most 80/.test(long.error), JSON.stringify(long));
      const bad = setTcpMd5Key(-1, 4, '192.0.2.1', 'k');
      assert.ok(!bad.ok && /EBADF|Bad file descriptor/i.test(bad.error) && bad.errno === 9, JSON.stringify(bad));
    } finally {
      closeFd(v4.value);
      closeFd(v6.value);
    }
  });
});
