// Allocation cost per address with 1k, 10k and 100k addresses already allocated, in pools from a /24
// to an IPv4 /8 and an IPv6 /48. The claim index keeps allocated addresses as coalesced intervals in a
// B-tree, so the cost must stay flat (100k vs 1k within 2x). Run: npm run bench (node --expose-gc).
import { allocateLoadBalancer, type AllocationRequest } from '../src/allocation/allocator.ts';
import { ClaimIndex } from '../src/allocation/claim-index.ts';
import { compilePool } from '../src/allocation/pools.ts';
import { claimNameFor, type IP } from '../src/allocation/addresses.ts';
import { buildClaim } from '../src/admission/admit-service.ts';

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function req(i: number, family: 4 | 6): AllocationRequest {
  return { namespace: 'bench', name: `svc-${i}`, labels: {}, namespaceLabels: {}, families: [family], policy: 'SingleStack', ports: [{ protocol: 'TCP', port: 80 }], backend: '' };
}

function claimFor(ip: IP, i: number, pool: string) {
  return buildClaim(claimNameFor(ip), ip, pool, undefined, [{ namespace: 'bench', name: `svc-${i}`, use: 'LoadBalancer', ports: [{ protocol: 'TCP', port: 80 }], backend: '' }]);
}

/** Pre-allocates `n` addresses scattered through the pool (every other address), so the index holds n intervals. */
function prefill(claims: ClaimIndex, first: bigint, family: 4 | 6, n: number, pool: string) {
  for (let i = 0; i < n; i++) {
    const ip: IP = { family, value: first + 1n + BigInt(i) * 2n };
    claims.upsert(claimFor(ip, 1e9 + i, pool));
  }
}

const cases: { label: string; cidr: string; family: 4 | 6; first: bigint }[] = [
  { label: 'IPv4 /24', cidr: '203.0.113.0/24', family: 4, first: 0xcb007100n },
  { label: 'IPv4 /16', cidr: '10.1.0.0/16', family: 4, first: 0x0a010000n },
  { label: 'IPv4 /8', cidr: '10.0.0.0/8', family: 4, first: 0x0a000000n },
  { label: 'IPv6 /48', cidr: '2001:db8:100::/48', family: 6, first: 0x20010db8010000000000000000000000n },
];
const sizes = [1_000, 10_000, 100_000];
const PER_ROUND = 2_000;

console.log('allocation cost per address (median of 5 rounds of %d allocations; prefill every other address)', PER_ROUND);
console.log('pool        prefilled   µs/alloc   bytes/claim   ratio vs 1k');
for (const c of cases) {
  const capacity = c.family === 4 ? 2 ** (32 - Number(c.cidr.split('/')[1])) : Infinity;
  let base: number | undefined;
  for (const n of sizes) {
    // Small pools cannot hold n claims: they are measured once, filled to 40 %, with smaller rounds.
    const perRound = Math.min(PER_ROUND, Math.floor(capacity / 20));
    const fill = Math.min(n, Math.floor((capacity * 0.8) / 2));
    if (fill < n && n !== sizes[0]) continue;
    gc();
    const heapBefore = process.memoryUsage().heapUsed;
    const claims = new ClaimIndex();
    prefill(claims, c.first, c.family, fill, 'p');
    gc();
    const bytesPerClaim = (process.memoryUsage().heapUsed - heapBefore) / fill;
    const pool = compilePool({ metadata: { name: 'p' }, spec: { addresses: [c.cidr], autoAssign: true, avoidBuggyIPs: false, usage: ['LoadBalancer'] } });
    const state = { pools: [pool], claims };
    const rounds: number[] = [];
    let k = 0;
    for (let r = 0; r < 5; r++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < perRound; i++, k++) {
        const res = allocateLoadBalancer(state, req(k, c.family));
        if (!res.ok) throw new Error(`allocation failed: ${res.denial.message}`);
        claims.upsert(claimFor(res.ips[0]!, k, 'p'));
      }
      rounds.push(Number(process.hrtime.bigint() - t0) / 1e3 / perRound);
    }
    const us = median(rounds);
    base ??= us;
    console.log(`${c.label.padEnd(11)} ${String(fill).padStart(9)}   ${us.toFixed(2).padStart(8)}   ${bytesPerClaim.toFixed(0).padStart(11)}   ${(us / base).toFixed(2).padStart(11)}`);
  }
}
