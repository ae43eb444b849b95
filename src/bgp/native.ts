// Socket options that node:net and node:dgram cannot set, applied through koffi (FFI with prebuilt
// binaries, no compiler and no install-time download) on libc:
//
// - TCP_MD5SIG (RFC 2385, Linux `struct tcp_md5sig` from linux/tcp.h) on BGP sockets. The kernel
//   signs and checks every segment once a key for the peer is set on the socket, so an active
//   session needs the key before connect(): Node creates its TCP socket and connects in one step,
//   so the socket is created here, keyed, and handed to net.Socket as a file descriptor. A
//   listening socket takes one key per peer address; keys apply from the next SYN.
// - a classic BPF filter that accepts only datagrams whose IP TTL / IPv6 hop limit is 255, for BFD's
//   GTSM check (RFC 5881 §5). node:dgram cannot read the TTL of a datagram (no IP_RECVTTL, no
//   recvmsg), and IP_MINTTL is not enforced for UDP; a socket filter drops the packet in the kernel
//   before dgram sees it.
//
// - the TTL / hop limit of a BGP session's segments (IP_TTL, IPV6_UNICAST_HOPS) and the GTSM lower
//   bound on received ones (IP_MINTTL, IPV6_MINHOPCOUNT; RFC 5082). net.Socket can set neither on
//   TCP, and the TTL of the SYN must be right already, so an outgoing socket is created here too.
//
// Everything returns a NativeResult instead of throwing. When koffi cannot be loaded (another OS,
// another architecture without a prebuilt binary) every call says so, and callers refuse what they
// cannot do safely (a password) or degrade with a logged reason (the TTL check).
import { createRequire } from 'node:module';
import { parseIp } from './prefix.ts';

export type NativeResult<T> = { ok: true; value: T } | { ok: false; error: string; errno?: number };

const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_ATTACH_FILTER = 26;
const IPPROTO_IP = 0;
const IP_TTL = 2;
const IP_MINTTL = 21;
const IPPROTO_TCP = 6;
const IPV6_UNICAST_HOPS = 16;
const IPV6_MINHOPCOUNT = 73;
const IPPROTO_IPV6 = 41;
const IPV6_V6ONLY = 26;
const TCP_MD5SIG = 14;
/** sizeof(struct tcp_md5sig): sockaddr_storage (128), flags, prefixlen, keylen (u16), ifindex (i32), key[80]. */
const TCP_MD5SIG_SIZE = 216;
export const TCP_MD5SIG_MAXKEYLEN = 80;

interface Libc {
  socket(domain: number, type: number, protocol: number): number;
  setsockopt(fd: number, level: number, name: number, value: Buffer, len: number): number;
  setFilter(fd: number, level: number, name: number, value: { len: number; filter: SockFilter[] }, len: number): number;
  bind(fd: number, addr: Buffer, len: number): number;
  close(fd: number): number;
  strerror(errnum: number): string;
  errno(): number;
  fprogSize: number;
}
interface SockFilter {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

let loaded: Libc | string | undefined;

function libc(): Libc | string {
  if (loaded !== undefined) return loaded;
  try {
    const koffi = createRequire(import.meta.url)('koffi') as typeof import('koffi');
    if (process.platform !== 'linux') throw new Error(`not Linux (${process.platform})`);
    const lib = koffi.load('libc.so.6');
    koffi.struct('admitlb_sock_filter', { code: 'uint16_t', jt: 'uint8_t', jf: 'uint8_t', k: 'uint32_t' });
    const fprog = koffi.struct('admitlb_sock_fprog', { len: 'uint16_t', filter: 'admitlb_sock_filter *' });
    loaded = {
      socket: lib.func('int socket(int domain, int type, int protocol)'),
      setsockopt: lib.func('int setsockopt(int fd, int level, int name, const void *value, uint32_t len)'),
      setFilter: lib.func('int setsockopt(int fd, int level, int name, const admitlb_sock_fprog *value, uint32_t len)'),
      bind: lib.func('int bind(int fd, const void *addr, uint32_t len)'),
      close: lib.func('int close(int fd)'),
      strerror: lib.func('const char *strerror(int errnum)'),
      errno: () => koffi.errno(),
      fprogSize: koffi.sizeof(fprog),
    } as Libc;
  } catch (err) {
    loaded = `koffi could not be loaded: ${(err as Error).message}`;
  }
  return loaded;
}

/** null when native socket options are available, else why not. */
export function nativeUnavailable(): string | null {
  const l = libc();
  return typeof l === 'string' ? l : null;
}

function fail<T>(l: Libc, what: string): NativeResult<T> {
  const errno = l.errno();
  return { ok: false, error: `${what}: ${l.strerror(errno)} (errno ${errno})`, errno };
}

/**
 * A sockaddr_in / sockaddr_in6 for `address` into `buf` at `offset`. `mapped`: an IPv4 address as
 * ::ffff:a.b.c.d in a sockaddr_in6, for keys on a dual-stack IPv6 socket.
 */
function writeSockaddr(buf: Buffer, offset: number, address: string, port: number, mapped = false): NativeResult<4 | 6> {
  const ip = parseIp(address);
  if (!ip) return { ok: false, error: `"${address}" is not an IP address` };
  if (ip.afi === 1 && !mapped) {
    buf.writeUInt16LE(AF_INET, offset); // sa_family is host order (little-endian on the supported targets)
    buf.writeUInt16BE(port, offset + 2);
    ip.bytes.copy(buf, offset + 4);
    return { ok: true, value: 4 };
  }
  buf.writeUInt16LE(AF_INET6, offset);
  buf.writeUInt16BE(port, offset + 2);
  if (ip.afi === 1) {
    buf.writeUInt16BE(0xffff, offset + 18);
    ip.bytes.copy(buf, offset + 20);
  } else {
    ip.bytes.copy(buf, offset + 8);
  }
  return { ok: true, value: 6 };
}

/** A new, unconnected TCP socket (close-on-exec) of the family of `address`. */
export function tcpSocketFor(address: string): NativeResult<number> {
  const l = libc();
  if (typeof l === 'string') return { ok: false, error: l };
  const ip = parseIp(address);
  if (!ip) return { ok: false, error: `"${address}" is not an IP address` };
  const fd = l.socket(ip.afi === 1 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  return fd < 0 ? fail(l, 'socket()') : { ok: true, value: fd };
}

/**
 * Sets (key non-empty) or removes (key null) the TCP MD5 key for `peer` on socket `fd`.
 * `socketFamily` is the family of the socket itself: an IPv4 peer on an IPv6 (dual-stack) socket is
 * keyed by its IPv4-mapped address, which is how the kernel sees it there.
 */
export function setTcpMd5Key(fd: number, socketFamily: 4 | 6, peer: string, key: string | null): NativeResult<void> {
  const l = libc();
  if (typeof l === 'string') return { ok: false, error: l };
  const keyBytes = Buffer.from(key ?? '', 'utf8');
  if (keyBytes.length > TCP_MD5SIG_MAXKEYLEN) return { ok: false, error: `the TCP MD5 key is ${keyBytes.length} bytes, at most ${TCP_MD5SIG_MAXKEYLEN} are allowed (RFC 2385 keys are limited by the kernel)` };
  const peerFamily = parseIp(peer)?.afi === 2 ? 6 : 4;
  if (socketFamily === 4 && peerFamily === 6) return { ok: false, error: `IPv6 peer ${peer} on an IPv4 socket` };
  const buf = Buffer.alloc(TCP_MD5SIG_SIZE);
  const addr = writeSockaddr(buf, 0, peer, 0, socketFamily === 6 && peerFamily === 4);
  if (!addr.ok) return addr;
  buf.writeUInt16LE(keyBytes.length, 130); // tcpm_keylen; 0 deletes the key
  keyBytes.copy(buf, 136);
  const rc = l.setsockopt(fd, IPPROTO_TCP, TCP_MD5SIG, buf, TCP_MD5SIG_SIZE);
  if (rc === 0) return { ok: true, value: undefined };
  const r = fail<void>(l, `setsockopt(TCP_MD5SIG) for ${peer}`);
  // Removing a key that is not there is not an error for our purposes.
  if (key === null && !r.ok && r.errno === 2) return { ok: true, value: undefined };
  return r;
}

/** What a BGP socket sends and accepts at the IP layer; unset fields are left as the kernel has them. */
export interface HopOptions {
  /** TTL (IPv4) / hop limit (IPv6) of every segment sent, 1..255. */
  ttl?: number | undefined;
  /** Segments that arrive with a lower TTL / hop limit are dropped by the kernel (GTSM), 1..255. */
  minTtl?: number | undefined;
}

/**
 * Sets the TTL and the minimum received TTL on TCP socket `fd` for traffic with `peer`. The level
 * follows the peer's family: an IPv4 peer on a dual-stack IPv6 socket (::ffff:a.b.c.d) travels in
 * IPv4 packets, and Linux takes the IPv4 options on such a socket.
 */
export function setHopOptions(fd: number, peer: string, options: HopOptions): NativeResult<void> {
  const l = libc();
  if (typeof l === 'string') return { ok: false, error: l };
  const v6 = parseIp(peer)?.afi === 2;
  const int = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v, 0);
    return b;
  };
  const steps: [string, number, number, number | undefined][] = [
    [v6 ? 'IPV6_UNICAST_HOPS' : 'IP_TTL', v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_UNICAST_HOPS : IP_TTL, options.ttl],
    [v6 ? 'IPV6_MINHOPCOUNT' : 'IP_MINTTL', v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_MINHOPCOUNT : IP_MINTTL, options.minTtl],
  ];
  for (const [what, level, name, value] of steps) {
    if (value === undefined) continue;
    if (!Number.isInteger(value) || value < 0 || value > 255) return { ok: false, error: `${what} ${value} is not in 0..255` };
    if (l.setsockopt(fd, level, name, int(value), 4) !== 0) return fail(l, `setsockopt(${what}=${value}) for ${peer}`);
  }
  return { ok: true, value: undefined };
}

export function closeFd(fd: number): void {
  const l = libc();
  if (typeof l !== 'string') l.close(fd);
}

/**
 * A UDP socket bound to address:port (address "0.0.0.0" or "::" for any; IPv6 sockets are
 * IPv6-only) whose kernel filter passes only datagrams received with IPv4 TTL / IPv6 hop limit 255.
 * Hand the descriptor to dgram with `socket.bind({ fd })`.
 */
export function udpSocketTtl255(address: string, port: number): NativeResult<number> {
  const l = libc();
  if (typeof l === 'string') return { ok: false, error: l };
  const ip = parseIp(address);
  if (!ip) return { ok: false, error: `"${address}" is not an IP address` };
  const v6 = ip.afi === 2;
  const fd = l.socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail(l, 'socket()');
  const one = Buffer.alloc(4);
  one.writeInt32LE(1, 0);
  const steps: [string, () => number][] = [
    ['SO_REUSEADDR', () => l.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, one, 4)],
    ...(v6 ? ([['IPV6_V6ONLY', () => l.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, one, 4)]] as [string, () => number][]) : []),
    // SKF_NET_OFF (-0x100000) addresses the network header: the TTL is byte 8 of an IPv4 header,
    // the hop limit byte 7 of an IPv6 header. ld b; jeq #255 → accept (whole packet), else drop.
    ['SO_ATTACH_FILTER', () => l.setFilter(fd, SOL_SOCKET, SO_ATTACH_FILTER, { len: 4, filter: ttlFilter(v6 ? 7 : 8) }, l.fprogSize)],
    [
      `bind(${address}:${port})`,
      () => {
        const sa = Buffer.alloc(v6 ? 28 : 16);
        writeSockaddr(sa, 0, address, port);
        return l.bind(fd, sa, sa.length);
      },
    ],
  ];
  for (const [what, step] of steps) {
    if (step() !== 0) {
      const r = fail<number>(l, what);
      l.close(fd);
      return r;
    }
  }
  return { ok: true, value: fd };
}

function ttlFilter(offset: number): SockFilter[] {
  const BPF_LD_B_ABS = 0x30;
  const BPF_JMP_JEQ_K = 0x15;
  const BPF_RET_K = 0x06;
  return [
    { code: BPF_LD_B_ABS, jt: 0, jf: 0, k: (0xfff00000 + offset) >>> 0 },
    { code: BPF_JMP_JEQ_K, jt: 0, jf: 1, k: 255 },
    { code: BPF_RET_K, jt: 0, jf: 0, k: 0xffffffff },
    { code: BPF_RET_K, jt: 0, jf: 0, k: 0 },
  ];
}
