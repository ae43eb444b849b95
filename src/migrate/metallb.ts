// MetalLB configuration → admitlb objects (`kubectl admitlb migrate`). A pure function of the input
// texts: it returns the objects to apply and one note per thing that has no admitlb equivalent, or
// throws MigrateError naming the file, the document and the field it cannot read.
//
// Three generations of MetalLB configuration are read, detected per document:
//  - the ConfigMap (metallb-system/config, key `config`) of MetalLB 0.2: BGP only, pools with `cidr`
//    and `advertisements`, community aliases under `communities`;
//  - the ConfigMap of MetalLB 0.3–0.12: pools with `protocol: layer2|bgp`, `addresses`,
//    `bgp-advertisements`, aliases under `bgp-communities`, peers with node selectors, timers,
//    passwords and (0.12, FRR mode) BFD profiles;
//  - the metallb.io CRDs of MetalLB 0.13+ (IPAddressPool, L2Advertisement, BGPAdvertisement, BGPPeer,
//    Community, BFDProfile, and the older AddressPool), alone, in multi-document files or in a
//    `kind: List`.
// The bare content of the ConfigMap's `config` key is accepted too (what
// `kubectl get cm config -o jsonpath='{.data.config}'` prints).
//
// Every key of every MetalLB object is either mapped or reported: the readers below mark the keys they
// consume and report the rest, so that a field nobody thought of is never dropped silently.
// Every emitted object is parsed with admitlb's own schemas and checked with the validating webhook's
// rules (pool addresses and overlaps, aggregation lengths, local preferences) before it is printed.
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import type { z } from 'zod';
import { type AddressError, formatIP, parseIP, parseRange } from '../allocation/addresses.ts';
import { compilePool, overlapsWith, PoolInvalidError, type PoolModel } from '../allocation/pools.ts';
import { validateSpeakerConfig, type SpeakerConfigKind } from '../admission/validate-speaker-config.ts';
import {
  API_GROUP_VERSION,
  bgpAdvertisementSchema,
  bgpPeerSchema,
  ipPoolSchema,
  l2AdvertisementSchema,
  WELL_KNOWN_COMMUNITIES,
  type LabelSelector,
} from '../config/schemas.ts';

/** Where BGP passwords go: the namespace whose Secrets the speaker may read, under key `password`. */
export const PASSWORD_SECRET_NAMESPACE = 'admitlb-system';
export const PASSWORD_SECRET_KEY = 'password';

export class MigrateError extends Error {
  override name = 'MigrateError';
}

export interface MigrateSource {
  /** The file name as the user gave it (`-` or `<stdin>` for standard input). */
  name: string;
  text: string;
}

export type KubeObject = { apiVersion: string; kind: string; metadata: Record<string, unknown>; [key: string]: unknown };

export interface MigrateResult {
  /** In apply order: IPPools, Secrets, BGPPeers, L2Advertisements, BGPAdvertisements. */
  objects: KubeObject[];
  /** One line per thing that has no admitlb equivalent (or needs the user's action). */
  notes: string[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** One document (or List item) of one input file. */
interface Doc {
  file: string;
  /** `file, document 2` or `file, document 1, items[3]`: what error messages name. */
  where: string;
  value: Obj;
}

const KIND_ORDER = ['IPPool', 'Secret', 'BGPPeer', 'L2Advertisement', 'BGPAdvertisement'] as const;
type OutKind = (typeof KIND_ORDER)[number];

/** Server-populated metadata: not configuration, so dropped without a note. */
const SERVER_METADATA = new Set(['uid', 'resourceVersion', 'generation', 'creationTimestamp', 'deletionTimestamp', 'deletionGracePeriodSeconds', 'managedFields', 'selfLink', 'finalizers', 'ownerReferences', 'namespace', 'generateName']);
const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

/** Reads the keys of one MetalLB object and reports those nobody read. */
class Fields {
  private readonly used = new Set<string>();
  constructor(
    readonly obj: Obj,
    /** The prefix of field names in messages: `spec.`, `` (ConfigMap keys). */
    readonly prefix: string,
  ) {}
  get(key: string): unknown {
    this.used.add(key);
    return this.obj[key];
  }
  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }
  /** Keys present but never read, with their full field name. */
  unread(): string[] {
    return Object.keys(this.obj)
      .filter((k) => !this.used.has(k) && this.obj[k] !== undefined && this.obj[k] !== null)
      .map((k) => `${this.prefix}${k}`);
  }
}

/** Go's time.ParseDuration, in whole seconds rounded down as MetalLB does; a bare number is seconds. */
export function parseGoDuration(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? Math.floor(value) : undefined;
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  if (text === '0' || /^\d+$/.test(text)) return Number(text);
  const units: Record<string, number> = { ns: 1e-9, us: 1e-6, 'µs': 1e-6, 'μs': 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };
  const part = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let seconds = 0;
  let pos = text.startsWith('+') ? 1 : 0;
  if (pos >= text.length) return undefined;
  while (pos < text.length) {
    part.lastIndex = pos;
    const m = part.exec(text);
    if (!m) return undefined;
    seconds += Number(m[1]) * units[m[2]!]!;
    pos = part.lastIndex;
  }
  return Math.floor(seconds + 1e-9);
}

/** A valid object name made of `raw` (lowercase, other characters replaced by `-`). */
export function toObjectName(raw: string): string {
  const s = raw
    .toLowerCase()
    .replace(/[^a-z0-9.-]+/g, '-')
    .split('.')
    .map((seg) => seg.replace(/-+/g, '-').replace(/^-+|-+$/g, ''))
    .filter(Boolean)
    .join('.')
    .slice(0, 253)
    .replace(/[^a-z0-9]+$/, '');
  return s || 'unnamed';
}

/** Where one generation keeps the fields of an address pool. */
interface PoolDialect {
  subject(name: string): string;
  /** Prefix of field names in messages. */
  prefix: string;
  /** Whether pools name their protocol (0.2 pools were all BGP). */
  protocol: boolean;
  keys: {
    /** Candidates, the first present is read (0.3 still wrote `cidr`). */
    addresses: string[];
    autoAssign: string;
    avoidBuggyIPs: string;
    ads: string;
    aggregationLength: string;
    aggregationLengthV6: string;
    localPref: string;
  };
}

const CONFIGMAP_KEYS = { autoAssign: 'auto-assign', avoidBuggyIPs: 'avoid-buggy-ips', aggregationLength: 'aggregation-length', aggregationLengthV6: 'aggregation-length-v6', localPref: 'localpref' };
const CONFIGMAP_02: PoolDialect = { subject: (n) => `address pool "${n}"`, prefix: '', protocol: false, keys: { ...CONFIGMAP_KEYS, addresses: ['cidr'], ads: 'advertisements' } };
const CONFIGMAP_03: PoolDialect = { subject: (n) => `address pool "${n}"`, prefix: '', protocol: true, keys: { ...CONFIGMAP_KEYS, addresses: ['addresses', 'cidr'], ads: 'bgp-advertisements' } };
const ADDRESS_POOL_CRD: PoolDialect = {
  subject: (n) => `AddressPool "${n}"`,
  prefix: 'spec.',
  protocol: true,
  keys: { addresses: ['addresses'], autoAssign: 'autoAssign', avoidBuggyIPs: 'avoidBuggyIPs', ads: 'bgpAdvertisements', aggregationLength: 'aggregationLength', aggregationLengthV6: 'aggregationLengthV6', localPref: 'localPref' },
};

class Migration {
  readonly notes: string[] = [];
  private readonly out = new Map<OutKind, { object: KubeObject; where: string; subject: string }[]>(KIND_ORDER.map((k) => [k, []]));
  private readonly names = new Map<OutKind, Map<string, string>>(KIND_ORDER.map((k) => [k, new Map()]));
  /** Community aliases of the metallb.io Community objects (CRD generation). */
  private readonly crdCommunities = new Map<string, { value: string; where: string }>();
  /** BFD profiles of the input by name, as admitlb's BGPPeer spec.bfd (MetalLB names them on peers). */
  private readonly bfdProfiles = new Map<string, { bfd: Obj; where: string }>();
  /** v1 Secrets of the input, by namespace/name: MetalLB BGPPeer passwordSecret references. */
  private readonly secrets = new Map<string, Doc>();
  private readonly usedSecrets = new Set<string>();

  note(file: string, subject: string, message: string) {
    this.notes.push(`${file}: ${subject}: ${message}`);
  }

  fail(where: string, subject: string, message: string): never {
    throw new MigrateError(`${where}: ${subject ? `${subject}: ` : ''}${message}`);
  }

  /** Reserves an output name. Names the user chose must be unique; generated ones get a suffix. */
  reserve(kind: OutKind, name: string, where: string, subject: string, generated: boolean): string {
    const taken = this.names.get(kind)!;
    if (!generated) {
      const previous = taken.get(name);
      if (previous !== undefined) this.fail(where, subject, `a ${kind} named "${name}" comes from ${previous} already (admitlb objects are cluster-scoped: names must be unique across namespaces)`);
      taken.set(name, where);
      return name;
    }
    let candidate = name;
    for (let i = 2; taken.has(candidate); i++) candidate = `${name}-${i}`;
    taken.set(candidate, where);
    return candidate;
  }

  emit(kind: OutKind, object: KubeObject, where: string, subject: string) {
    this.out.get(kind)!.push({ object, where, subject });
  }

  reportUnread(file: string, subject: string, fields: Fields) {
    for (const field of fields.unread()) this.note(file, subject, `${field} has no admitlb equivalent; dropped`);
  }

  // ---- reading the input -----------------------------------------------------------------------

  read(sources: MigrateSource[]): { legacy: Doc[]; crds: Doc[] } {
    const legacy: Doc[] = [];
    const crds: Doc[] = [];
    for (const source of sources) {
      let found = 0;
      const docs = parseAllDocuments(source.text);
      // parseAllDocuments returns an EmptyStream for an empty text; a non-array means no document.
      const list = Array.isArray(docs) ? docs : [];
      list.forEach((doc, i) => {
        const where = `${source.name}, document ${i + 1}`;
        if (doc.errors.length > 0) this.fail(where, '', `not valid YAML: ${doc.errors[0]!.message.split('\n')[0]!.replace(/:$/, '')}`);
        const value: unknown = doc.toJS();
        if (value === null || value === undefined) return;
        found += this.classify({ file: source.name, where, value: value as Obj }, legacy, crds);
      });
      if (found === 0) {
        this.fail(
          source.name,
          '',
          'no MetalLB configuration found: expected the MetalLB ConfigMap (metallb-system/config, key "config", MetalLB 0.2–0.12) or metallb.io objects (IPAddressPool, L2Advertisement, BGPAdvertisement, BGPPeer, Community; MetalLB 0.13+)',
        );
      }
    }
    return { legacy, crds };
  }

  /** Sorts one document; returns how many MetalLB configurations or objects it held. */
  private classify(doc: Doc, legacy: Doc[], crds: Doc[]): number {
    const v = doc.value;
    if (!isObj(v)) this.fail(doc.where, '', 'not MetalLB configuration: expected a Kubernetes object or the MetalLB ConfigMap');
    const apiVersion = typeof v.apiVersion === 'string' ? v.apiVersion : '';
    const kind = typeof v.kind === 'string' ? v.kind : '';
    const name = isObj(v.metadata) && typeof v.metadata.name === 'string' ? v.metadata.name : '';
    if (!apiVersion && !kind) {
      if ('address-pools' in v || 'peers' in v) {
        legacy.push(doc);
        return 1;
      }
      this.fail(doc.where, '', 'not MetalLB configuration: neither a Kubernetes object nor the content of the MetalLB ConfigMap (no address-pools or peers)');
    }
    if (kind === 'List' || kind.endsWith('List')) {
      if (!Array.isArray(v.items)) this.fail(doc.where, kind, 'items is not a list');
      let found = 0;
      v.items.forEach((item, j) => {
        const where = `${doc.where}, items[${j}]`;
        if (!isObj(item)) this.fail(where, '', 'not a Kubernetes object');
        found += this.classify({ file: doc.file, where, value: item }, legacy, crds);
      });
      return found;
    }
    if (apiVersion.startsWith('metallb.io/')) {
      crds.push(doc);
      return 1;
    }
    if (kind === 'ConfigMap' && apiVersion === 'v1') {
      const data = isObj(v.data) ? v.data : {};
      if (typeof data.config === 'string') {
        let config: unknown;
        try {
          config = parseYaml(data.config);
        } catch (err) {
          this.fail(doc.where, `ConfigMap "${name}"`, `data.config is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
        }
        if (config === null || config === undefined) config = {};
        if (!isObj(config)) this.fail(doc.where, `ConfigMap "${name}"`, 'data.config is not MetalLB configuration (not a mapping)');
        // An empty configuration counts only under MetalLB's own ConfigMap name.
        if ('address-pools' in config || 'peers' in config || (Object.keys(config).length === 0 && name === 'config')) {
          for (const key of Object.keys(data)) {
            if (key !== 'config') this.note(doc.file, `ConfigMap "${name}"`, `data.${key} is not MetalLB configuration; ignored`);
          }
          legacy.push({ ...doc, value: config });
          return 1;
        }
      }
    }
    if (kind === 'Secret' && apiVersion === 'v1') {
      // Read only when a BGPPeer's passwordSecret names it (finish() notes the others); a file may
      // hold just the Secrets that go with the peers of another file.
      const namespace = isObj(v.metadata) && typeof v.metadata.namespace === 'string' ? v.metadata.namespace : '';
      this.secrets.set(`${namespace}/${name}`, doc);
      return 1;
    }
    this.note(doc.file, `${kind || 'object'} "${name}"`, 'not MetalLB configuration; skipped');
    return 0;
  }

  // ---- shared field readers ----------------------------------------------------------------------

  str(value: unknown, where: string, subject: string, field: string): string {
    if (typeof value !== 'string' || value.trim() === '') this.fail(where, subject, `${field}: expected a non-empty string, got ${JSON.stringify(value)}`);
    return value.trim();
  }

  int(value: unknown, where: string, subject: string, field: string, min: number, max: number): number {
    const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) this.fail(where, subject, `${field}: expected an integer from ${min} to ${max}, got ${JSON.stringify(value)}`);
    return n;
  }

  bool(value: unknown, where: string, subject: string, field: string): boolean {
    if (typeof value !== 'boolean') this.fail(where, subject, `${field}: expected true or false, got ${JSON.stringify(value)}`);
    return value;
  }

  strList(value: unknown, where: string, subject: string, field: string): string[] {
    if (!Array.isArray(value)) this.fail(where, subject, `${field}: expected a list, got ${JSON.stringify(value)}`);
    return value.map((item, i) => {
      if (typeof item === 'number') return String(item);
      return this.str(item, where, subject, `${field}[${i}]`);
    });
  }

  list(value: unknown, where: string, subject: string, field: string): unknown[] {
    if (value === undefined || value === null) return [];
    if (!Array.isArray(value)) this.fail(where, subject, `${field}: expected a list, got ${JSON.stringify(value)}`);
    return value;
  }

  ip(value: unknown, where: string, subject: string, field: string): string {
    const text = this.str(value, where, subject, field);
    try {
      parseIP(text);
    } catch (err) {
      this.fail(where, subject, `${field}: ${(err as Error).message}`);
    }
    return text;
  }

  duration(value: unknown, where: string, subject: string, field: string): number {
    const seconds = parseGoDuration(value);
    if (seconds === undefined) this.fail(where, subject, `${field}: ${JSON.stringify(value)} is not a duration (e.g. 90s, 3m)`);
    return seconds;
  }

  /**
   * A MetalLB pool entry as an admitlb one: CIDRs as they are (host bits cleared, as MetalLB's
   * net.ParseCIDR did, with a note), ranges without the spaces MetalLB tolerated.
   */
  address(file: string, value: unknown, where: string, subject: string, field: string): string {
    const text = typeof value === 'string' ? value.trim() : '';
    if (!text) this.fail(where, subject, `${field}: expected a CIDR or a range, got ${JSON.stringify(value)}`);
    const dash = text.indexOf('-');
    if (dash > 0 && !text.includes('/')) {
      const entry = `${text.slice(0, dash).trim()}-${text.slice(dash + 1).trim()}`;
      try {
        parseRange(entry);
      } catch (err) {
        this.fail(where, subject, `${field}: invalid address range "${text}": ${(err as Error).message}`);
      }
      return entry;
    }
    const slash = text.indexOf('/');
    if (slash < 0) this.fail(where, subject, `${field}: invalid CIDR "${text}": not a CIDR or a range (a single address is written as a /32 or /128)`);
    try {
      parseRange(text);
      return text;
    } catch (err) {
      // MetalLB reads 192.0.2.7/24 as 192.0.2.0/24; admitlb wants that written out.
      let base;
      try {
        base = parseIP(text.slice(0, slash));
      } catch {
        this.fail(where, subject, `${field}: invalid CIDR "${text}": ${(err as Error).message}`);
      }
      const lenText = text.slice(slash + 1);
      const bits = base.family === 4 ? 32 : 128;
      if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > bits) this.fail(where, subject, `${field}: invalid CIDR "${text}": ${(err as AddressError).message}`);
      const hostBits = BigInt(bits - Number(lenText));
      const network = `${formatIP({ family: base.family, value: (base.value >> hostBits) << hostBits })}/${lenText}`;
      this.note(file, subject, `${field} "${text}" has host bits set; MetalLB used ${network}, and so does the IPPool`);
      return network;
    }
  }

  /** A ConfigMap-style selector (match-labels, match-expressions) as a LabelSelector. */
  legacySelector(file: string, value: unknown, where: string, subject: string, field: string): LabelSelector {
    if (!isObj(value)) this.fail(where, subject, `${field}: expected a selector, got ${JSON.stringify(value)}`);
    const f = new Fields(value, `${field}.`);
    const selector: LabelSelector = {};
    const labels = f.get('match-labels');
    if (labels !== undefined && labels !== null) {
      if (!isObj(labels)) this.fail(where, subject, `${field}.match-labels: expected a map`);
      selector.matchLabels = Object.fromEntries(Object.entries(labels).map(([k, v]) => [k, String(v)]));
    }
    const expressions = this.list(f.get('match-expressions'), where, subject, `${field}.match-expressions`);
    if (expressions.length) {
      selector.matchExpressions = expressions.map((e, i) => {
        const ef = `${field}.match-expressions[${i}]`;
        if (!isObj(e)) this.fail(where, subject, `${ef}: expected {key, operator, values}`);
        const ff = new Fields(e, `${ef}.`);
        const operator = this.str(ff.get('operator'), where, subject, `${ef}.operator`);
        const canonical = ['In', 'NotIn', 'Exists', 'DoesNotExist'].find((o) => o.toLowerCase() === operator.toLowerCase());
        if (!canonical) this.fail(where, subject, `${ef}.operator: "${operator}" is not a label selector operator (In, NotIn, Exists, DoesNotExist)`);
        const requirement: NonNullable<LabelSelector['matchExpressions']>[number] = {
          key: this.str(ff.get('key'), where, subject, `${ef}.key`),
          operator: canonical as 'In',
        };
        const values = ff.get('values');
        if (values !== undefined && values !== null) requirement.values = this.strList(values, where, subject, `${ef}.values`);
        this.reportUnread(file, subject, ff);
        return requirement;
      });
    }
    this.reportUnread(file, subject, f);
    return selector;
  }

  /** A CRD selector list (metav1.LabelSelector), checked by the output schema. */
  selectors(value: unknown, where: string, subject: string, field: string): LabelSelector[] {
    const list = this.list(value, where, subject, field);
    return list.map((s, i) => {
      if (!isObj(s)) this.fail(where, subject, `${field}[${i}]: expected a label selector`);
      const selector: LabelSelector = {};
      if (s.matchLabels !== undefined && s.matchLabels !== null) selector.matchLabels = s.matchLabels as Record<string, string>;
      if (s.matchExpressions !== undefined && s.matchExpressions !== null) selector.matchExpressions = s.matchExpressions as LabelSelector['matchExpressions'];
      const extra = Object.keys(s).filter((k) => k !== 'matchLabels' && k !== 'matchExpressions');
      if (extra.length) this.fail(where, subject, `${field}[${i}]: unknown selector field(s) ${extra.join(', ')}`);
      return selector;
    });
  }

  // ---- MetalLB 0.2–0.12: the ConfigMap ---------------------------------------------------------

  legacy(doc: Doc) {
    const config = doc.value;
    const pools = this.list(config['address-pools'], doc.where, '', 'address-pools');
    // 0.2 had BGP only: pools without a protocol, `cidr`, `advertisements`, aliases under `communities`.
    // 0.3 introduced `protocol`, `bgp-advertisements` and `bgp-communities` (and soon `addresses`).
    const modern =
      'bgp-communities' in config ||
      pools.some((p) => isObj(p) && ('protocol' in p || 'addresses' in p || 'bgp-advertisements' in p));
    const f = new Fields(config, '');
    f.get('address-pools');
    f.get('peers');
    const communities = new Map<string, string>();
    const aliasKey = modern ? 'bgp-communities' : 'communities';
    const aliases = f.get(aliasKey);
    if (aliases !== undefined && aliases !== null) {
      if (!isObj(aliases)) this.fail(doc.where, '', `${aliasKey}: expected a map of name: ASN:VALUE`);
      for (const [alias, value] of Object.entries(aliases)) {
        communities.set(alias, this.community(String(value), doc.where, `${aliasKey} "${alias}"`, 'value', true).value);
      }
    }
    if (!modern && f.has('protocol')) {
      // Early configurations named the (only) protocol at the top.
      const protocol = f.get('protocol');
      if (protocol !== 'bgp') this.fail(doc.where, '', `protocol: MetalLB 0.2 spoke only bgp, got ${JSON.stringify(protocol)}`);
    }
    this.list(f.get('bfd-profiles'), doc.where, '', 'bfd-profiles').forEach((profile, i) => {
      if (!isObj(profile)) this.fail(doc.where, `bfd-profiles[${i}]`, 'expected a mapping');
      const name = this.str(profile.name, doc.where, `bfd-profiles[${i}]`, 'name');
      const subject = `bfd-profile "${name}"`;
      const pf = new Fields(profile, '');
      pf.get('name');
      this.bfdProfile(doc.file, doc.where, subject, name, pf, { rx: 'receive-interval', tx: 'transmit-interval', mult: 'detect-multiplier', others: ['echo-interval', 'echo-mode', 'passive-mode', 'minimum-ttl'] });
      this.reportUnread(doc.file, subject, pf);
    });
    this.reportUnread(doc.file, 'configuration', f);

    this.list(config.peers, doc.where, '', 'peers').forEach((peer, i) => this.legacyPeer(doc, peer, i));
    const resolve = (text: string, subject: string, field: string) => ({ large: false, value: communities.get(text) ?? this.community(text, doc.where, subject, field, true).value });
    pools.forEach((pool, i) => this.legacyPool(doc, pool, i, modern ? CONFIGMAP_03 : CONFIGMAP_02, resolve));
  }

  legacyPeer(doc: Doc, raw: unknown, index: number) {
    if (!isObj(raw)) this.fail(doc.where, `peers[${index}]`, 'expected a mapping');
    const where = doc.where;
    const address = this.ip(raw['peer-address'], where, `peers[${index}]`, 'peer-address');
    const subject = `peer ${address}`;
    const f = new Fields(raw, '');
    f.get('peer-address');
    const spec: Obj = {
      peerAddress: address,
      peerASN: this.int(f.get('peer-asn'), where, subject, 'peer-asn', 1, 4294967295),
      myASN: this.int(f.get('my-asn'), where, subject, 'my-asn', 1, 4294967295),
    };
    if (f.has('peer-port')) spec.peerPort = this.int(f.get('peer-port'), where, subject, 'peer-port', 1, 65535);
    if (f.has('hold-time')) spec.holdTime = this.duration(f.get('hold-time'), where, subject, 'hold-time');
    if (f.has('keepalive-time')) spec.keepaliveTime = this.duration(f.get('keepalive-time'), where, subject, 'keepalive-time');
    if (f.has('source-address')) spec.sourceAddress = this.ip(f.get('source-address'), where, subject, 'source-address');
    if (f.has('router-id')) spec.routerID = this.ip(f.get('router-id'), where, subject, 'router-id');
    const selectors = this.list(f.get('node-selectors'), where, subject, 'node-selectors');
    if (selectors.length) spec.nodeSelectors = selectors.map((s, i) => this.legacySelector(doc.file, s, where, subject, `node-selectors[${i}]`));
    if (f.has('bfd-profile')) this.peerBfd(doc.file, subject, spec, 'bfd-profile', this.str(f.get('bfd-profile'), where, subject, 'bfd-profile'));
    if (f.has('ebgp-multihop') && this.bool(f.get('ebgp-multihop'), where, subject, 'ebgp-multihop')) this.ebgpMultiHop(doc.file, subject, spec, 'ebgp-multihop');
    const name = this.reserve('BGPPeer', toObjectName(`peer-${address.replace(/[:.]/g, '-')}`), where, subject, true);
    if (f.has('password')) this.password(doc, subject, name, spec, this.str(f.get('password'), where, subject, 'password'));
    this.reportUnread(doc.file, subject, f);
    this.emit('BGPPeer', object('BGPPeer', name, spec), where, subject);
  }

  /**
   * A MetalLB BFD profile as admitlb's spec.bfd: receive/transmit intervals and the detect
   * multiplier map one to one (same units, ms); echo mode, passive mode and a minimum TTL have no
   * equivalent (admitlb's BFD is single-hop asynchronous and always checks TTL 255).
   */
  bfdProfile(file: string, where: string, subject: string, name: string, f: Fields, keys: { rx: string; tx: string; mult: string; others: string[] }) {
    const bfd: Obj = {};
    if (f.has(keys.rx)) bfd.minRxMs = this.int(f.get(keys.rx), where, subject, f.prefix + keys.rx, 10, 60000);
    if (f.has(keys.tx)) bfd.minTxMs = this.int(f.get(keys.tx), where, subject, f.prefix + keys.tx, 10, 60000);
    if (f.has(keys.mult)) bfd.multiplier = this.int(f.get(keys.mult), where, subject, f.prefix + keys.mult, 1, 255);
    for (const k of keys.others) {
      if (!f.has(k)) continue;
      const value = f.get(k);
      if (value === false || value === null) continue;
      this.note(file, subject, `${f.prefix}${k} ${JSON.stringify(value)} has no admitlb equivalent (single-hop asynchronous BFD, TTL 255 checked); dropped`);
    }
    const previous = this.bfdProfiles.get(name);
    if (previous) this.fail(where, subject, `BFD profile "${name}" is defined in ${previous.where} already`);
    this.bfdProfiles.set(name, { bfd, where });
  }

  /** A peer's BFD profile reference: the profile's settings become the peer's spec.bfd. */
  peerBfd(file: string, subject: string, spec: Obj, field: string, name: string) {
    const profile = this.bfdProfiles.get(name);
    if (profile) spec.bfd = { ...profile.bfd };
    else this.note(file, subject, `${field} "${name}" is not defined in the input; BFD dropped`);
  }

  /** MetalLB's ebgp-multihop flag: the same field for eBGP; an iBGP session is multihop anyway. */
  ebgpMultiHop(file: string, subject: string, spec: Obj, field: string) {
    if (spec.myASN === spec.peerASN) this.note(file, subject, `${field} on an iBGP session (myASN = peerASN) has no effect (iBGP uses the kernel default TTL); dropped`);
    else spec.ebgpMultiHop = true;
  }

  /** A plaintext password: into a Secret in admitlb-system, referenced by spec.passwordSecretRef. */
  password(doc: Doc, subject: string, peerName: string, spec: Obj, password: string) {
    const secretName = this.reserve('Secret', `${peerName}-bgp-password`, doc.where, subject, true);
    this.emit(
      'Secret',
      {
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: secretName, namespace: PASSWORD_SECRET_NAMESPACE },
        type: 'kubernetes.io/basic-auth',
        stringData: { [PASSWORD_SECRET_KEY]: password },
      },
      doc.where,
      subject,
    );
    spec.passwordSecretRef = { name: secretName, namespace: PASSWORD_SECRET_NAMESPACE };
    this.note(doc.file, subject, `password moved to Secret ${PASSWORD_SECRET_NAMESPACE}/${secretName} (spec.passwordSecretRef); the output holds it in clear text`);
  }

  /**
   * One address pool of the ConfigMap (or of the AddressPool CRD, which carried the same fields in
   * camelCase): an IPPool, and the L2Advertisement or BGPAdvertisements that MetalLB implied.
   */
  legacyPool(doc: Doc, raw: unknown, index: number, dialect: PoolDialect, resolve: (text: string, subject: string, field: string) => { large: boolean; value: string }, labels?: Record<string, string>) {
    const where = doc.where;
    const k = dialect.keys;
    const p = dialect.prefix;
    if (!isObj(raw)) this.fail(where, `address-pools[${index}]`, 'expected a mapping');
    const f = new Fields(raw, p);
    const rawName = this.str(f.get('name'), where, `address-pools[${index}]`, 'name');
    const subject = dialect.subject(rawName);
    let protocol = 'bgp';
    if (dialect.protocol) {
      const value = f.get('protocol');
      if (value === undefined || value === null || value === '') this.fail(where, subject, `${p}protocol is missing (layer2 or bgp)`);
      protocol = String(value);
      if (protocol === 'arp') protocol = 'layer2'; // MetalLB 0.3's name for it
      if (protocol !== 'layer2' && protocol !== 'bgp') this.fail(where, subject, `${p}protocol: unknown protocol "${String(value)}" (MetalLB knows layer2 and bgp)`);
    }
    const addressKey = k.addresses.find((key) => f.has(key)) ?? k.addresses[0]!;
    const entries = this.list(f.get(addressKey), where, subject, `${p}${addressKey}`);
    if (entries.length === 0) this.fail(where, subject, `${p}${addressKey}: the pool has no addresses`);
    const name = toObjectName(rawName);
    if (name !== rawName) {
      this.note(doc.file, subject, `renamed IPPool "${name}" (admitlb names must be lowercase DNS names); Services that ask for "${rawName}" by annotation must ask for "${name}"`);
    }
    this.reserve('IPPool', name, where, subject, false);
    const spec: Obj = { addresses: entries.map((e, i) => this.address(doc.file, e, where, subject, `${p}${addressKey}[${i}]`)) };
    if (f.has(k.autoAssign)) spec.autoAssign = this.bool(f.get(k.autoAssign), where, subject, `${p}${k.autoAssign}`);
    if (f.has(k.avoidBuggyIPs)) spec.avoidBuggyIPs = this.bool(f.get(k.avoidBuggyIPs), where, subject, `${p}${k.avoidBuggyIPs}`);
    if (f.has('arp-network')) this.note(doc.file, subject, `arp-network "${String(f.get('arp-network'))}" has no admitlb equivalent (avoidBuggyIPs skips .0 and .255 addresses); dropped`);
    const pool = object('IPPool', name, spec);
    if (labels) pool.metadata.labels = labels;
    this.emit('IPPool', pool, where, subject);

    const ads = this.list(f.get(k.ads), where, subject, `${p}${k.ads}`);
    this.reportUnread(doc.file, subject, f);
    if (protocol === 'layer2') {
      if (ads.length) this.fail(where, subject, `${p}${k.ads}: a layer2 pool cannot have BGP advertisements`);
      const adName = this.reserve('L2Advertisement', name, where, subject, true);
      this.emit('L2Advertisement', object('L2Advertisement', adName, { ipPools: [name] }), where, subject);
      return;
    }
    // A BGP pool without advertisements is announced once per address (MetalLB's default).
    const list = ads.length ? ads : [{}];
    list.forEach((ad, i) => {
      const adSubject = ads.length ? `${subject} ${p}${k.ads}[${i}]` : subject;
      if (!isObj(ad)) this.fail(where, adSubject, 'expected a mapping');
      const af = new Fields(ad, '');
      const adSpec: Obj = { ipPools: [name] };
      if (af.has(k.aggregationLength)) adSpec.aggregationLength = this.int(af.get(k.aggregationLength), where, adSubject, k.aggregationLength, 0, 32);
      if (af.has(k.aggregationLengthV6)) adSpec.aggregationLengthV6 = this.int(af.get(k.aggregationLengthV6), where, adSubject, k.aggregationLengthV6, 0, 128);
      if (af.has(k.localPref)) adSpec.localPref = this.int(af.get(k.localPref), where, adSubject, k.localPref, 0, 4294967295);
      const standard: string[] = [];
      const large: string[] = [];
      this.list(af.get('communities'), where, adSubject, 'communities').forEach((c, j) => {
        const resolved = resolve(String(c).trim(), adSubject, `communities[${j}]`);
        (resolved.large ? large : standard).push(resolved.value);
      });
      if (standard.length) adSpec.communities = standard;
      if (large.length) adSpec.largeCommunities = large;
      this.reportUnread(doc.file, adSubject, af);
      const adName = this.reserve('BGPAdvertisement', list.length > 1 ? `${name}-${i + 1}` : name, where, adSubject, true);
      this.emit('BGPAdvertisement', object('BGPAdvertisement', adName, adSpec), where, adSubject);
    });
  }

  /** MetalLB 0.12–0.13's AddressPool CRD (metallb.io v1alpha1/v1beta1): the ConfigMap pool in camelCase. */
  addressPool(doc: Doc) {
    const { name, subject, spec, labels } = this.crdHead(doc, 'AddressPool');
    if ('name' in spec) this.note(doc.file, subject, 'spec.name has no admitlb equivalent; dropped');
    this.legacyPool(doc, { ...spec, name }, 0, ADDRESS_POOL_CRD, (text, s, field) => this.crdCommunity(text, doc.where, s, field), labels);
  }

  /**
   * A community value as MetalLB writes it: `ASN:VALUE` (16 bits each) or, in the CRDs,
   * `large:GLOBAL:LOCAL1:LOCAL2`. Aliases are resolved by the caller.
   */
  community(text: string, where: string, subject: string, field: string, standardOnly: boolean): { large: boolean; value: string } {
    const t = text.trim();
    const std = /^(\d+):(\d+)$/.exec(t);
    if (std && Number(std[1]) <= 65535 && Number(std[2]) <= 65535) return { large: false, value: `${Number(std[1])}:${Number(std[2])}` };
    const large = /^large:(\d+):(\d+):(\d+)$/i.exec(t);
    if (!standardOnly && large && large.slice(1).every((p) => Number(p) <= 4294967295)) {
      return { large: true, value: large.slice(1).map(Number).join(':') };
    }
    this.fail(where, subject, `${field}: "${text}" is not a BGP community (ASN:VALUE, each 0..65535${standardOnly ? '' : ', or large:A:B:C'}) nor a defined alias`);
  }

  // ---- MetalLB 0.13+: the metallb.io CRDs ------------------------------------------------------

  crds(docs: Doc[]) {
    // Community aliases first: BGPAdvertisements anywhere in the input may use them.
    for (const doc of docs) {
      if (doc.value.kind !== 'Community') continue;
      const { subject, spec } = this.crdHead(doc, 'Community');
      const f = new Fields(spec, 'spec.');
      this.list(f.get('communities'), doc.where, subject, 'spec.communities').forEach((c, i) => {
        if (!isObj(c)) this.fail(doc.where, subject, `spec.communities[${i}]: expected {name, value}`);
        const alias = this.str(c.name, doc.where, subject, `spec.communities[${i}].name`);
        const value = this.str(c.value, doc.where, subject, `spec.communities[${i}].value`);
        this.community(value, doc.where, subject, `spec.communities[${i}].value`, false);
        const previous = this.crdCommunities.get(alias);
        if (previous && previous.value !== value) this.fail(doc.where, subject, `community alias "${alias}" is defined as ${previous.value} in ${previous.where} already`);
        this.crdCommunities.set(alias, { value, where: doc.where });
      });
      this.reportUnread(doc.file, subject, f);
      this.note(doc.file, subject, 'admitlb has no community aliases; the values are written into the BGPAdvertisements that use them');
    }
    // BFD profiles too: admitlb has none; their settings go into the BGPPeers that name them.
    for (const doc of docs) {
      if (doc.value.kind !== 'BFDProfile') continue;
      const { name, subject, spec } = this.crdHead(doc, 'BFDProfile');
      const f = new Fields(spec ?? {}, 'spec.');
      this.bfdProfile(doc.file, doc.where, subject, name, f, { rx: 'receiveInterval', tx: 'transmitInterval', mult: 'detectMultiplier', others: ['echoInterval', 'echoMode', 'passiveMode', 'minimumTtl'] });
      this.reportUnread(doc.file, subject, f);
    }
    for (const doc of docs) {
      switch (doc.value.kind) {
        case 'IPAddressPool':
          this.ipAddressPool(doc);
          break;
        case 'L2Advertisement':
          this.l2Advertisement(doc);
          break;
        case 'BGPAdvertisement':
          this.bgpAdvertisement(doc);
          break;
        case 'BGPPeer':
          this.bgpPeer(doc);
          break;
        case 'AddressPool':
          this.addressPool(doc);
          break;
        case 'Community':
          break;
        case 'BFDProfile':
          break; // read first (below the Community aliases): peers anywhere in the input use them
        case 'ServiceL2Status':
        case 'ServiceBGPStatus':
        case 'BGPSessionState':
          break; // status MetalLB writes, not configuration
        default:
          this.note(doc.file, `${String(doc.value.kind)} "${crdName(doc.value)}"`, `${String(doc.value.apiVersion)} ${String(doc.value.kind)} has no admitlb equivalent; skipped`);
      }
    }
  }

  /** Name, subject and spec of a CRD object; metadata other than name and labels is reported. */
  private crdHead(doc: Doc, kind: string): { name: string; subject: string; spec: Obj; labels?: Record<string, string> | undefined } {
    const v = doc.value;
    const name = crdName(v);
    const subject = `${kind} "${name}"`;
    if (!name) this.fail(doc.where, kind, 'metadata.name is missing');
    const meta = isObj(v.metadata) ? v.metadata : {};
    let labels: Record<string, string> | undefined;
    for (const [key, value] of Object.entries(meta)) {
      if (key === 'name' || SERVER_METADATA.has(key) || value === null || value === undefined) continue;
      if (key === 'labels' && isObj(value)) {
        if (Object.keys(value).length) labels = Object.fromEntries(Object.entries(value).map(([k, l]) => [k, String(l)]));
      } else if (key === 'annotations' && isObj(value)) {
        const kept = Object.keys(value).filter((a) => a !== LAST_APPLIED);
        if (kept.length) this.note(doc.file, subject, `metadata.annotations (${kept.join(', ')}) not copied: they belong to the MetalLB object`);
      } else {
        this.note(doc.file, subject, `metadata.${key} has no admitlb equivalent; dropped`);
      }
    }
    for (const key of Object.keys(v)) {
      if (!['apiVersion', 'kind', 'metadata', 'spec', 'status'].includes(key)) this.note(doc.file, subject, `${key} has no admitlb equivalent; dropped`);
    }
    if (v.spec !== undefined && v.spec !== null && !isObj(v.spec)) this.fail(doc.where, subject, 'spec: expected a mapping');
    return { name, subject, spec: isObj(v.spec) ? v.spec : {}, labels };
  }

  private crdObject(kind: OutKind, name: string, labels: Record<string, string> | undefined, spec: Obj): KubeObject {
    const o = object(kind, name, spec);
    if (labels) o.metadata.labels = labels;
    return o;
  }

  ipAddressPool(doc: Doc) {
    const { name, subject, spec: raw, labels } = this.crdHead(doc, 'IPAddressPool');
    const where = doc.where;
    this.reserve('IPPool', name, where, subject, false);
    const f = new Fields(raw, 'spec.');
    const entries = this.list(f.get('addresses'), where, subject, 'spec.addresses');
    if (entries.length === 0) this.fail(where, subject, 'spec.addresses: the pool has no addresses');
    const spec: Obj = { addresses: entries.map((e, i) => this.address(doc.file, e, where, subject, `spec.addresses[${i}]`)) };
    if (f.has('autoAssign')) spec.autoAssign = this.bool(f.get('autoAssign'), where, subject, 'spec.autoAssign');
    if (f.has('avoidBuggyIPs')) spec.avoidBuggyIPs = this.bool(f.get('avoidBuggyIPs'), where, subject, 'spec.avoidBuggyIPs');
    if (f.has('serviceAllocation')) {
      const sa = f.get('serviceAllocation');
      if (!isObj(sa)) this.fail(where, subject, 'spec.serviceAllocation: expected a mapping');
      const sf = new Fields(sa, 'spec.serviceAllocation.');
      const allocateTo: Obj = {};
      if (sf.has('priority')) {
        const priority = this.int(sf.get('priority'), where, subject, 'spec.serviceAllocation.priority', 0, 2147483647);
        // MetalLB's 0 is "no priority" (omitempty); admitlb's unset means the same.
        if (priority > 0) allocateTo.priority = priority;
      }
      if (sf.has('namespaces')) {
        const namespaces = this.strList(sf.get('namespaces'), where, subject, 'spec.serviceAllocation.namespaces');
        if (namespaces.length) allocateTo.namespaces = namespaces;
      }
      const ns = this.selectors(sf.get('namespaceSelectors'), where, subject, 'spec.serviceAllocation.namespaceSelectors');
      if (ns.length) allocateTo.namespaceSelectors = ns;
      const ss = this.selectors(sf.get('serviceSelectors'), where, subject, 'spec.serviceAllocation.serviceSelectors');
      if (ss.length) allocateTo.serviceSelectors = ss;
      this.reportUnread(doc.file, subject, sf);
      if (Object.keys(allocateTo).length) spec.allocateTo = allocateTo;
    }
    this.reportUnread(doc.file, subject, f);
    this.emit('IPPool', this.crdObject('IPPool', name, labels, spec), where, subject);
  }

  /** ipAddressPools / ipAddressPoolSelectors / nodeSelectors, shared by both advertisements. */
  private selection(f: Fields, spec: Obj, where: string, subject: string) {
    if (f.has('ipAddressPools')) {
      const pools = this.strList(f.get('ipAddressPools'), where, subject, 'spec.ipAddressPools');
      if (pools.length) spec.ipPools = pools;
    }
    const poolSelectors = this.selectors(f.get('ipAddressPoolSelectors'), where, subject, 'spec.ipAddressPoolSelectors');
    if (poolSelectors.length) spec.ipPoolSelectors = poolSelectors;
    const nodeSelectors = this.selectors(f.get('nodeSelectors'), where, subject, 'spec.nodeSelectors');
    if (nodeSelectors.length) spec.nodeSelectors = nodeSelectors;
  }

  l2Advertisement(doc: Doc) {
    const { name, subject, spec: raw, labels } = this.crdHead(doc, 'L2Advertisement');
    this.reserve('L2Advertisement', name, doc.where, subject, false);
    const f = new Fields(raw, 'spec.');
    const spec: Obj = {};
    this.selection(f, spec, doc.where, subject);
    if (f.has('interfaces')) {
      const interfaces = this.strList(f.get('interfaces'), doc.where, subject, 'spec.interfaces');
      if (interfaces.length) spec.interfaces = interfaces;
    }
    this.reportUnread(doc.file, subject, f);
    this.emit('L2Advertisement', this.crdObject('L2Advertisement', name, labels, spec), doc.where, subject);
  }

  bgpAdvertisement(doc: Doc) {
    const { name, subject, spec: raw, labels } = this.crdHead(doc, 'BGPAdvertisement');
    const where = doc.where;
    this.reserve('BGPAdvertisement', name, where, subject, false);
    const f = new Fields(raw, 'spec.');
    const spec: Obj = {};
    this.selection(f, spec, where, subject);
    if (f.has('peers')) {
      const peers = this.strList(f.get('peers'), where, subject, 'spec.peers');
      if (peers.length) spec.peers = peers;
    }
    if (f.has('aggregationLength')) spec.aggregationLength = this.int(f.get('aggregationLength'), where, subject, 'spec.aggregationLength', 0, 32);
    if (f.has('aggregationLengthV6')) spec.aggregationLengthV6 = this.int(f.get('aggregationLengthV6'), where, subject, 'spec.aggregationLengthV6', 0, 128);
    if (f.has('localPref')) spec.localPref = this.int(f.get('localPref'), where, subject, 'spec.localPref', 0, 4294967295);
    const standard: string[] = [];
    const large: string[] = [];
    this.list(f.get('communities'), where, subject, 'spec.communities').forEach((c, i) => {
      const resolved = this.crdCommunity(String(c).trim(), where, subject, `spec.communities[${i}]`);
      (resolved.large ? large : standard).push(resolved.value);
    });
    if (standard.length) spec.communities = standard;
    if (large.length) spec.largeCommunities = large;
    this.reportUnread(doc.file, subject, f);
    this.emit('BGPAdvertisement', this.crdObject('BGPAdvertisement', name, labels, spec), where, subject);
  }

  /** A community of a metallb.io object: a Community alias, a well-known name admitlb knows, or a value. */
  crdCommunity(text: string, where: string, subject: string, field: string): { large: boolean; value: string } {
    const alias = this.crdCommunities.get(text);
    if (alias) return this.community(alias.value, where, subject, field, false);
    if (text in WELL_KNOWN_COMMUNITIES) return { large: false, value: text };
    if (/^(\d+:\d+|large:\d+:\d+:\d+)$/i.test(text)) return this.community(text, where, subject, field, false);
    this.fail(where, subject, `${field}: "${text}" is neither ASN:VALUE, large:A:B:C nor an alias defined by a Community object in the input`);
  }

  bgpPeer(doc: Doc) {
    const { name, subject, spec: raw, labels } = this.crdHead(doc, 'BGPPeer');
    const where = doc.where;
    const f = new Fields(raw, 'spec.');
    const myASN = this.int(f.get('myASN'), where, subject, 'spec.myASN', 1, 4294967295);
    let peerASN: number | undefined;
    if (f.has('peerASN')) peerASN = this.int(f.get('peerASN'), where, subject, 'spec.peerASN', 1, 4294967295);
    if (f.has('dynamicASN')) {
      const dynamic = f.get('dynamicASN');
      if (dynamic === 'internal' && peerASN === undefined) {
        peerASN = myASN; // iBGP: the peer's AS is ours
      } else if (peerASN === undefined) {
        // The whole peer is skipped: one note says so, not one per field.
        this.note(doc.file, subject, `dynamicASN "${String(dynamic)}" has no admitlb equivalent (the peer ASN must be written out); peer skipped`);
        return;
      }
    }
    if (peerASN === undefined) this.fail(where, subject, 'spec.peerASN is missing');
    if (!f.has('peerAddress')) {
      const iface = f.get('interface');
      if (iface) {
        this.note(doc.file, subject, `interface "${String(iface)}" (unnumbered BGP) has no admitlb equivalent: admitlb peers by address; peer skipped`);
        return;
      }
      this.fail(where, subject, 'spec.peerAddress is missing');
    }
    this.reserve('BGPPeer', name, where, subject, false);
    const spec: Obj = { peerAddress: this.ip(f.get('peerAddress'), where, subject, 'spec.peerAddress'), peerASN, myASN };
    if (f.has('peerPort')) spec.peerPort = this.int(f.get('peerPort'), where, subject, 'spec.peerPort', 1, 65535);
    if (f.has('holdTime')) spec.holdTime = this.duration(f.get('holdTime'), where, subject, 'spec.holdTime');
    if (f.has('keepaliveTime')) spec.keepaliveTime = this.duration(f.get('keepaliveTime'), where, subject, 'spec.keepaliveTime');
    if (f.has('sourceAddress')) spec.sourceAddress = this.ip(f.get('sourceAddress'), where, subject, 'spec.sourceAddress');
    if (f.has('routerID')) spec.routerID = this.ip(f.get('routerID'), where, subject, 'spec.routerID');
    const nodeSelectors = this.selectors(f.get('nodeSelectors'), where, subject, 'spec.nodeSelectors');
    if (nodeSelectors.length) spec.nodeSelectors = nodeSelectors;
    if (f.has('enableGracefulRestart') && this.bool(f.get('enableGracefulRestart'), where, subject, 'spec.enableGracefulRestart')) spec.gracefulRestart = { enabled: true };
    if (f.has('bfdProfile') && f.get('bfdProfile') !== '') this.peerBfd(doc.file, subject, spec, 'spec.bfdProfile', this.str(f.get('bfdProfile'), where, subject, 'spec.bfdProfile'));
    if (f.has('ebgpMultiHop') && this.bool(f.get('ebgpMultiHop'), where, subject, 'spec.ebgpMultiHop')) this.ebgpMultiHop(doc.file, subject, spec, 'spec.ebgpMultiHop');
    for (const flag of ['disableMP', 'dualStackAddressFamily'] as const) {
      if (f.has(flag) && this.bool(f.get(flag), where, subject, `spec.${flag}`)) {
        const why = flag === 'disableMP' ? '' : ' (each session carries its own family)';
        this.note(doc.file, subject, `spec.${flag} has no admitlb equivalent${why}; dropped`);
      }
    }
    if (f.has('connectTime') && f.get('connectTime') !== '') {
      // admitlb counts whole seconds, at least 1 (FRR's connect timer has the same unit).
      const seconds = this.duration(f.get('connectTime'), where, subject, 'spec.connectTime');
      if (seconds >= 1) spec.connectTime = Math.min(seconds, 65535);
      else this.note(doc.file, subject, `spec.connectTime "${String(f.get('connectTime'))}" is below 1 s; dropped (the default backoff applies)`);
    }
    if (f.has('vrf') && f.get('vrf') !== '') this.note(doc.file, subject, `spec.vrf "${String(f.get('vrf'))}" has no admitlb equivalent; dropped`);
    const password = f.get('password');
    const secretRef = f.get('passwordSecret');
    if (typeof password === 'string' && password !== '') {
      this.password(doc, subject, name, spec, password);
    } else if (isObj(secretRef) && typeof secretRef.name === 'string' && secretRef.name !== '') {
      this.passwordSecret(doc, subject, spec, secretRef);
    }
    this.reportUnread(doc.file, subject, f);
    this.emit('BGPPeer', this.crdObject('BGPPeer', name, labels, spec), where, subject);
  }

  /** MetalLB's passwordSecret: the same Secret (key `password`), in admitlb-system. */
  private passwordSecret(doc: Doc, subject: string, spec: Obj, ref: Obj) {
    const name = String(ref.name);
    const namespace = typeof ref.namespace === 'string' && ref.namespace ? ref.namespace : String((doc.value.metadata as Obj | undefined)?.namespace ?? 'metallb-system');
    spec.passwordSecretRef = { name, namespace: PASSWORD_SECRET_NAMESPACE };
    const key = this.secrets.has(`${namespace}/${name}`) ? `${namespace}/${name}` : `/${name}`;
    const source = this.secrets.get(key);
    if (!source) {
      this.note(doc.file, subject, `spec.passwordSecret ${namespace}/${name} must be copied to ${PASSWORD_SECRET_NAMESPACE}/${name} (key "${PASSWORD_SECRET_KEY}"); it is not in the input`);
      return;
    }
    if (this.usedSecrets.has(key)) return;
    this.usedSecrets.add(key);
    const secret = source.value;
    const data = isObj(secret.data) ? secret.data : undefined;
    const stringData = isObj(secret.stringData) ? secret.stringData : undefined;
    if (!(data && PASSWORD_SECRET_KEY in data) && !(stringData && PASSWORD_SECRET_KEY in stringData)) {
      this.fail(source.where, `Secret "${name}"`, `has no key "${PASSWORD_SECRET_KEY}" (the key MetalLB and admitlb read)`);
    }
    const copy: KubeObject = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: this.reserve('Secret', name, source.where, `Secret "${name}"`, false), namespace: PASSWORD_SECRET_NAMESPACE },
      type: typeof secret.type === 'string' ? secret.type : 'kubernetes.io/basic-auth',
    };
    if (data) copy.data = data;
    if (stringData) copy.stringData = stringData;
    this.emit('Secret', copy, source.where, `Secret "${name}"`);
    this.note(doc.file, subject, `Secret ${namespace}/${name} copied to ${PASSWORD_SECRET_NAMESPACE}/${name} (spec.passwordSecretRef)`);
  }

  // ---- checking the result -------------------------------------------------------------------

  finish(): MigrateResult {
    const schemas: Record<Exclude<OutKind, 'Secret'>, z.ZodType> = {
      IPPool: ipPoolSchema,
      BGPPeer: bgpPeerSchema,
      L2Advertisement: l2AdvertisementSchema,
      BGPAdvertisement: bgpAdvertisementSchema,
    };
    const models: PoolModel[] = [];
    const poolLabels = new Map<string, Record<string, string> | undefined>();
    for (const kind of KIND_ORDER) {
      if (kind === 'Secret') continue;
      for (const { object: o, where, subject } of this.out.get(kind)!) {
        const parsed = schemas[kind].safeParse(o);
        if (!parsed.success) {
          const issue = parsed.error.issues[0]!;
          this.fail(where, subject, `the ${kind} would be invalid: ${['', ...issue.path].map(String).join('.').slice(1) || '(object)'}: ${issue.message}`);
        }
      }
    }
    for (const { object: o, where, subject } of this.out.get('IPPool')!) {
      let model: PoolModel;
      try {
        model = compilePool(o as never);
      } catch (err) {
        if (err instanceof PoolInvalidError) this.fail(where, subject, `the IPPool would be invalid: ${err.message}`);
        throw err;
      }
      const overlaps = overlapsWith(model, models, (o.spec as { addresses: string[] }).addresses);
      if (overlaps.length) this.fail(where, subject, `${overlaps[0]!.field}: ${overlaps[0]!.message}`);
      models.push(model);
      poolLabels.set(model.name, o.metadata.labels as Record<string, string> | undefined);
    }
    const peers = this.out.get('BGPPeer')!.map((e) => e.object as { metadata: { name?: string } });
    const advertisements = this.out.get('BGPAdvertisement')!.map((e) => e.object as never);
    for (const kind of ['L2Advertisement', 'BGPAdvertisement'] as SpeakerConfigKind[]) {
      for (const { object: o, where, subject } of this.out.get(kind as OutKind)!) {
        const problems = validateSpeakerConfig(kind, o, { pools: models, peers, advertisements, poolLabels: (n) => poolLabels.get(n) });
        for (const problem of problems) {
          // The input may be partial (one file of several): a reference to an object not in it is a
          // reminder, not an error.
          if (/does not exist$/.test(problem.message)) {
            const file = where.split(', document')[0]!;
            this.note(file, subject, `${problem.field}: ${problem.message.replace('does not exist', 'is not in the input')}; apply it first or admitlb refuses the ${kind}`);
          } else {
            this.fail(where, subject, `the ${kind} would be refused: ${problem.field}: ${problem.message}`);
          }
        }
      }
    }
    for (const [key, secret] of this.secrets) {
      if (!this.usedSecrets.has(key)) this.note(secret.file, `Secret "${key.replace(/^\//, '')}"`, 'not the passwordSecret of a BGPPeer in the input; skipped');
    }
    return { objects: KIND_ORDER.flatMap((k) => this.out.get(k)!.map((e) => e.object)), notes: this.notes };
  }
}

function crdName(v: Obj): string {
  return isObj(v.metadata) && typeof v.metadata.name === 'string' ? v.metadata.name : '';
}

function object(kind: OutKind, name: string, spec: Obj): KubeObject {
  return { apiVersion: API_GROUP_VERSION, kind, metadata: { name }, spec };
}

/** Converts MetalLB configuration to admitlb objects; throws MigrateError for input it cannot read. */
export function migrateMetalLB(sources: MigrateSource[]): MigrateResult {
  const m = new Migration();
  const { legacy, crds } = m.read(sources);
  for (const doc of legacy) m.legacy(doc);
  m.crds(crds);
  return m.finish();
}
