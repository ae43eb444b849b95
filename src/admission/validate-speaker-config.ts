// Validation of the speaker's configuration (L2Advertisement, BGPPeer, BGPAdvertisement) for the
// validating webhook. The schemas (src/config/schemas.ts) check each object on its own: address
// syntax and family, hold time 0 or 3..65535, keepalive not above hold, communities, no plaintext
// password (passwordSecretRef in admitlb-system instead), BFD timers.
// This module reports those with the field they name, and adds the rules that need other objects:
//
// - references: every name in spec.ipPools must be an IPPool, every name in spec.peers a BGPPeer;
// - aggregation (BGPAdvertisement, MetalLB's rule): for every entry of every selected pool of a
//   family, aggregationLength (aggregationLengthV6) must not be shorter than the entry's own prefix,
//   or the aggregate would announce addresses outside the pool. A CIDR counts with its prefix; a range
//   `a-b` counts as its exact CIDR decomposition (the fewest CIDRs whose union is exactly the range),
//   so the range needs at least the longest prefix among them (198.51.100.10-198.51.100.20 decomposes
//   into .10/31 .12/30 .16/30 .20/32 and needs /32). Entries are checked one by one, as MetalLB does:
//   two adjacent /25 entries do not make a /24 aggregate valid;
// - local preference: two BGPAdvertisements that select a common pool and a common peer must not set
//   different localPref values (the speaker could send only one LOCAL_PREF for the prefix). An unset
//   localPref has no opinion and conflicts with nothing. Node selectors are not considered.
//
// Selection: a BGPAdvertisement or L2Advertisement with neither ipPools nor ipPoolSelectors selects
// every pool (present and future), one without peers every peer. ipPoolSelectors are evaluated
// against the pools' labels when the caller supplies them (context.poolLabels); without labels,
// selector-selected pools are not checked (the webhook never denies on a guess).
import { speakerConfigSchemas, type BGPAdvertisementSpec, type LabelSelector, type SpeakerConfigKind } from '../config/schemas.ts';
import { formatIP, type AddressRange, type Family } from '../allocation/addresses.ts';
import { matchesSelector, type FieldProblem, type PoolModel } from '../allocation/pools.ts';

export type { FieldProblem, SpeakerConfigKind };

/**
 * What the checks read of the stored objects: only names and the selection of advertisements. Both the
 * parsed types (BGPPeer, BGPAdvertisement) and the stored, not-yet-defaulted ones (the schemas'
 * z.input types, as a cache returns them) fit.
 */
export interface StoredBgpPeer {
  metadata: { name?: string | undefined };
}
export interface StoredBgpAdvertisement {
  metadata: { name?: string | undefined };
  spec: { ipPools?: string[] | undefined; ipPoolSelectors?: LabelSelector[] | undefined; peers?: string[] | undefined; localPref?: number | undefined };
}

export interface SpeakerConfigContext {
  /** Compiled pools, from the allocation state. */
  pools: PoolModel[];
  /** Every BGPPeer in the cluster. */
  peers: readonly StoredBgpPeer[];
  /** Every BGPAdvertisement in the cluster (the object under review, by name, is ignored). */
  advertisements: readonly StoredBgpAdvertisement[];
  /** Labels of an IPPool by name, for ipPoolSelectors; without it selectors are not evaluated. */
  poolLabels?: ((name: string) => Record<string, string> | undefined) | undefined;
}

/** The kinds, by the resource (plural) the API server names in an AdmissionReview. */
export const SPEAKER_CONFIG_RESOURCES: Record<string, SpeakerConfigKind> = {
  l2advertisements: 'L2Advertisement',
  bgppeers: 'BGPPeer',
  bgpadvertisements: 'BGPAdvertisement',
};

/** `spec.peers[0].x` from a zod path (the notation validate-pool.ts uses). */
const fieldOf = (path: readonly PropertyKey[]) => path.map(String).join('.').replace(/\.(\d+)/g, '[$1]') || '(root)';

/** Every problem of `object` as a `kind`, each naming its field; empty when it is valid. */
export function validateSpeakerConfig(kind: SpeakerConfigKind, object: unknown, context: SpeakerConfigContext): FieldProblem[] {
  const parsed = speakerConfigSchemas[kind].safeParse(object);
  if (!parsed.success) return parsed.error.issues.map((i) => ({ field: fieldOf(i.path), message: i.message }));
  const name = parsed.data.metadata.name ?? '';
  const problems: FieldProblem[] = [];
  if (kind === 'BGPPeer') return problems;
  const spec = parsed.data.spec as { ipPools?: string[]; ipPoolSelectors?: LabelSelector[]; peers?: string[] };

  const poolNames = new Set(context.pools.map((p) => p.name));
  spec.ipPools?.forEach((pool, i) => {
    if (!poolNames.has(pool)) problems.push({ field: `spec.ipPools[${i}]`, message: `IPPool "${pool}" does not exist` });
  });
  if (kind === 'L2Advertisement') return problems;

  const ad = spec as BGPAdvertisementSpec;
  const peerNames = new Set(context.peers.map((p) => p.metadata.name ?? ''));
  ad.peers?.forEach((peer, i) => {
    if (!peerNames.has(peer)) problems.push({ field: `spec.peers[${i}]`, message: `BGPPeer "${peer}" does not exist` });
  });

  const pools = selectedPools(ad, context);
  const selected = pools === ALL ? context.pools : context.pools.filter((p) => pools.has(p.name));
  for (const pool of selected) {
    for (const range of pool.ranges) {
      const length = range.family === 4 ? ad.aggregationLength : ad.aggregationLengthV6;
      const needed = longestPrefix(range);
      if (length < needed) {
        const field = range.family === 4 ? 'spec.aggregationLength' : 'spec.aggregationLengthV6';
        problems.push({
          field,
          message: `${length} is shorter than the /${needed} of ${describeRange(range)} in IPPool "${pool.name}": the aggregate would announce addresses outside the pool (use at least ${needed})`,
        });
      }
    }
  }

  if (ad.localPref !== undefined) {
    const peers = ad.peers?.length ? new Set(ad.peers) : ALL;
    for (const other of context.advertisements) {
      const otherName = other.metadata.name ?? '';
      if (otherName === name || other.spec.localPref === undefined || other.spec.localPref === ad.localPref) continue;
      const sharedPool = intersects(pools, selectedPools(other.spec, context), 'IPPool');
      const sharedPeer = intersects(peers, other.spec.peers?.length ? new Set(other.spec.peers) : ALL, 'BGPPeer');
      if (sharedPool && sharedPeer) {
        problems.push({
          field: 'spec.localPref',
          message: `${ad.localPref} conflicts with localPref ${other.spec.localPref} of BGPAdvertisement "${otherName}", which also selects ${sharedPool} for ${sharedPeer}`,
        });
      }
    }
  }
  return problems;
}

const ALL = 'every' as const;
type Selection = Set<string> | typeof ALL;

/** The pools an advertisement selects: by name, by label, or every pool when it names neither. */
function selectedPools(spec: StoredBgpAdvertisement['spec'], context: SpeakerConfigContext): Selection {
  const names = spec.ipPools ?? [];
  const selectors = spec.ipPoolSelectors ?? [];
  if (names.length === 0 && selectors.length === 0) return ALL;
  const out = new Set(names);
  if (selectors.length > 0 && context.poolLabels) {
    for (const pool of context.pools) {
      const labels = context.poolLabels(pool.name);
      if (selectors.some((s) => matchesSelector(labels, s))) out.add(pool.name);
    }
  }
  return out;
}

/** What two selections share, worded ("every pool", IPPool "p"), or undefined when nothing. */
function intersects(a: Selection, b: Selection, kind: 'IPPool' | 'BGPPeer'): string | undefined {
  if (a === ALL && b === ALL) return kind === 'IPPool' ? 'every pool' : 'every peer';
  const common = a === ALL ? [...(b as Set<string>)] : b === ALL ? [...a] : [...a].filter((x) => b.has(x));
  return common.length ? `${kind} "${common.sort()[0]}"` : undefined;
}

const bitsOf = (f: Family) => (f === 4 ? 32 : 128);

/** The exact CIDR decomposition of an inclusive range, as [first, prefix length] blocks. */
export function rangeToCidrs(range: AddressRange): { first: bigint; prefix: number }[] {
  const bits = bitsOf(range.family);
  const out: { first: bigint; prefix: number }[] = [];
  let cur = range.first;
  while (cur <= range.last) {
    let size = 0; // log2 of the block size
    while (size < bits && (cur & ((1n << BigInt(size + 1)) - 1n)) === 0n && cur + (1n << BigInt(size + 1)) - 1n <= range.last) size++;
    out.push({ first: cur, prefix: bits - size });
    cur += 1n << BigInt(size);
  }
  return out;
}

/** The shortest aggregation length that stays inside the range: its decomposition's longest prefix. */
export function longestPrefix(range: AddressRange): number {
  return Math.max(...rangeToCidrs(range).map((c) => c.prefix));
}

function describeRange(range: AddressRange): string {
  const cidrs = rangeToCidrs(range);
  if (cidrs.length === 1) return `${formatIP({ family: range.family, value: range.first })}/${cidrs[0]!.prefix}`;
  return `${formatIP({ family: range.family, value: range.first })}-${formatIP({ family: range.family, value: range.last })}`;
}
