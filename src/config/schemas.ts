// The zod schemas are admitlb's single source of truth for its API: the CRD YAML in
// webhook-manifests/ is generated from them (scripts/gen-crds.ts) and the TypeScript types are
// inferred from them, so the two cannot drift.
import { z } from 'zod';
import { parseIP, tryParseIP, type IP } from '../net/address.ts';

export const API_GROUP = 'admitlb.io';
export const API_VERSION = 'v1alpha1';
export const API_GROUP_VERSION = `${API_GROUP}/${API_VERSION}`;

/** metav1.LabelSelector (matchLabels ANDed with matchExpressions). */
export const labelSelectorRequirementSchema = z.object({
  key: z.string().min(1),
  operator: z.enum(['In', 'NotIn', 'Exists', 'DoesNotExist']),
  values: z.array(z.string()).optional(),
});
export const labelSelectorSchema = z
  .object({
    matchLabels: z.record(z.string(), z.string()).optional(),
    matchExpressions: z.array(labelSelectorRequirementSchema).optional(),
  })
  .describe('A Kubernetes label selector (matchLabels and matchExpressions are ANDed).');
export type LabelSelector = z.infer<typeof labelSelectorSchema>;

export const poolUsageSchema = z.enum(['LoadBalancer', 'ExternalIP']);
export type PoolUsage = z.infer<typeof poolUsageSchema>;

export const ipPoolSpecSchema = z.object({
  addresses: z
    .array(z.string().min(1))
    .min(1)
    .describe('CIDRs (203.0.113.0/24, 2001:db8:100::/64) and inclusive ranges (198.51.100.10-198.51.100.20), IPv4 and IPv6 mixed.'),
  autoAssign: z.boolean().default(true).describe('false: the pool serves only explicit requests.'),
  avoidBuggyIPs: z.boolean().default(false).describe('Never hand out IPv4 addresses ending in .0 or .255.'),
  usage: z
    .array(poolUsageSchema)
    .min(1)
    .default(['LoadBalancer'])
    .describe('What the pool serves: LoadBalancer addresses, externalIPs, or both.'),
  allocateTo: z
    .object({
      priority: z.number().int().min(0).optional().describe('Lower first; pools without a priority come after every prioritized pool.'),
      namespaces: z.array(z.string().min(1)).optional(),
      namespaceSelectors: z.array(labelSelectorSchema).optional(),
      serviceSelectors: z.array(labelSelectorSchema).optional(),
    })
    .optional()
    .describe('Which Services may use the pool; nothing set means every Service.'),
  quota: z
    .object({
      perNamespace: z.number().int().min(1).optional().describe('Cap on the addresses one namespace may hold from this pool.'),
    })
    .optional(),
  sharing: z
    .object({
      crossNamespace: z.boolean().default(false).describe('Whether Services of different namespaces may share an address of this pool.'),
    })
    .optional(),
});
export type IPPoolSpec = z.infer<typeof ipPoolSpecSchema>;

export const conditionSchema = z.object({
  type: z.string(),
  status: z.enum(['True', 'False', 'Unknown']),
  reason: z.string().optional(),
  message: z.string().optional(),
  lastTransitionTime: z.string().optional(),
  observedGeneration: z.number().int().optional(),
});

// IPv6 capacities exceed 2^53, so counts are decimal strings.
const familyCountsSchema = z.object({ ipv4: z.string().optional(), ipv6: z.string().optional() });
export const ipPoolStatusSchema = z.object({
  capacity: familyCountsSchema.optional().describe('Assignable addresses per family (decimal strings).'),
  inUse: familyCountsSchema.optional().describe('Addresses held per family (decimal strings).'),
  conditions: z.array(conditionSchema).optional(),
});

export const objectMetaSchema = z
  .object({
    name: z.string().optional(),
    namespace: z.string().optional(),
    uid: z.string().optional(),
    resourceVersion: z.string().optional(),
    generation: z.number().optional(),
    creationTimestamp: z.string().nullable().optional(),
    deletionTimestamp: z.string().nullable().optional(),
    labels: z.record(z.string(), z.string()).optional(),
    annotations: z.record(z.string(), z.string()).optional(),
    finalizers: z.array(z.string()).optional(),
  })
  .loose();

export const ipPoolSchema = z.object({
  apiVersion: z.literal(API_GROUP_VERSION).optional(),
  kind: z.literal('IPPool').optional(),
  metadata: objectMetaSchema,
  spec: ipPoolSpecSchema,
  status: ipPoolStatusSchema.optional(),
});
export type IPPool = z.infer<typeof ipPoolSchema>;

export const protocolSchema = z.enum(['TCP', 'UDP', 'SCTP']);
export const servicePortRefSchema = z.object({ protocol: protocolSchema, port: z.number().int().min(1).max(65535) });
export type ServicePortRef = z.infer<typeof servicePortRefSchema>;

export const claimHolderSchema = z.object({
  namespace: z.string().min(1),
  name: z.string().min(1),
  uid: z.string().optional().describe('Set by the controller once the Service exists.'),
  use: poolUsageSchema.describe('Whether the Service holds the address as a LoadBalancer IP or an externalIP.'),
  ports: z.array(servicePortRefSchema).default([]),
  backend: z
    .string()
    .default('')
    .describe('Empty for externalTrafficPolicy Cluster; the canonical selector for Local (sharing needs the same backend).'),
});
export type ClaimHolder = z.infer<typeof claimHolderSchema>;

export const ipClaimSpecSchema = z.object({
  // 39 = the longest canonical IPv6 text; the bound also keeps the CRD rule's CEL cost estimate small.
  address: z.string().min(1).max(39).describe('The claimed address in canonical form.'),
  pool: z.string().min(1),
  sharingKey: z.string().optional(),
  holders: z.array(claimHolderSchema).min(1),
  heldBy: z.string().optional().describe('namespace/name of every holder, comma-separated: what kubectl get ipclaims shows.'),
});
export type IPClaimSpec = z.infer<typeof ipClaimSpecSchema>;

export const ipClaimSchema = z.object({
  apiVersion: z.literal(API_GROUP_VERSION).optional(),
  kind: z.literal('IPClaim').optional(),
  metadata: objectMetaSchema,
  spec: ipClaimSpecSchema,
});
export type IPClaim = z.infer<typeof ipClaimSchema>;

/**
 * The API server refuses a claim whose name is not claimNameFor(spec.address) (addresses.ts): a claim
 * under another name would be a second, shadowing claim for the same address. IPv4: the name is the
 * canonical address itself; IPv6: 8 groups of 4 lowercase hex digits joined by '-', which is the
 * address again once '-' becomes ':'. Uses the Kubernetes CEL IP library (isIP, ip, ip.isCanonical,
 * string(ip): kube-apiserver 1.31 or newer) and the strings extension (replace); the API double
 * evaluates the same rule (src/sandbox/cel.ts). IPv4-mapped IPv6 addresses are not IPs to that
 * library, so a claim for one is refused.
 */
export const IPCLAIM_NAME_RULE = {
  rule: [
    'isIP(self.spec.address) && ip.isCanonical(self.spec.address) && (ip(self.spec.address).family() == 4',
    '? self.metadata.name == self.spec.address',
    ": self.metadata.name.matches('^[0-9a-f]{4}(-[0-9a-f]{4}){7}$') && string(ip(self.metadata.name.replace('-', ':'))) == self.spec.address)",
  ].join(' '),
  message: "spec.address must be an IP address in canonical form and metadata.name its claim name (IPv4: the address; IPv6: all 32 hex digits in groups of 4 joined by '-')",
  fieldPath: '.spec.address',
  reason: 'FieldValueInvalid',
} as const;

// ---- speaker configuration: L2Advertisement, BGPPeer, BGPAdvertisement ----------------------------
// Field rules that need only the field (address syntax, ranges, hold time 1–2) and rules between the
// fields of one object (keepalive vs. hold, address families) live here, so that the speaker and the
// validating webhook (src/admission/validate-speaker-config.ts) apply the same ones. Rules that need
// other objects (references, aggregation vs. pools, local preference conflicts) live in the webhook.

/** Built-in interface exclusions of L2 announcements; spec.excludeInterfaces adds to them. */
export const DEFAULT_EXCLUDED_INTERFACES = ['veth*', 'cali*', 'kube-ipvs*', 'lo', 'docker*', 'cni*', 'flannel*', 'vxlan*', 'tunl*'] as const;

export const TCP_MD5_UNSUPPORTED =
  'a plaintext TCP MD5 password is not accepted (anyone who can read BGPPeers could read it): put it in a Secret in admitlb-system under the key "password" and set spec.passwordSecretRef';

/** Where BGP passwords live: the speaker may read Secrets of this namespace only (webhook-manifests/rbac.yaml). */
export const BGP_PASSWORD_NAMESPACE = 'admitlb-system';
/** The key of the password in a passwordSecretRef Secret (MetalLB's). */
export const BGP_PASSWORD_KEY = 'password';

export const WELL_KNOWN_COMMUNITIES = {
  'no-export': '65535:65281',
  'no-advertise': '65535:65282',
  'no-export-subconfed': '65535:65283',
  'no-peer': '65535:65284',
} as const;

const UINT32_MAX = 4294967295;
const asnSchema = z.number().int().min(1).max(UINT32_MAX);
const nameListSchema = z.array(z.string().min(1));
const poolSelectionFields = {
  ipPools: nameListSchema.optional().describe('IPPool names. With ipPoolSelectors unset too: every pool.'),
  ipPoolSelectors: z.array(labelSelectorSchema).optional().describe('Label selectors over IPPools (a pool matching any is selected).'),
};
const nodeSelectorsField = z.array(labelSelectorSchema).optional().describe('Nodes that announce (a node matching any); unset means every node.');
/** The highest preference of any node; one number per tier is plenty. */
export const MAX_NODE_PREFERENCE = 1000;
const nodePreferenceField = z
  .array(
    z.object({
      nodeSelector: labelSelectorSchema,
      weight: z.number().int().min(1).max(MAX_NODE_PREFERENCE).describe('Higher wins; a node matching no entry has weight 0.'),
    }),
  )
  .optional();

/** Interface names and glob patterns (`eth*`, `en[op]*`): no whitespace, no slash. */
const interfacePatternSchema = z
  .string()
  .min(1)
  .regex(/^[^\s/]+$/, { message: 'must be an interface name or glob pattern (no whitespace or "/")' });

function ipIssue(text: string, want?: 4 | 6): string | undefined {
  let ip: IP;
  try {
    ip = parseIP(text);
  } catch (err) {
    return (err as Error).message;
  }
  if (want && ip.family !== want) return `"${text}" is not an IPv${want} address`;
  if (ip.value === 0n) return `"${text}" is the unspecified address`;
  return undefined;
}
const ipAddressSchema = (want?: 4 | 6) =>
  z.string().superRefine((text, ctx) => {
    const message = ipIssue(text, want);
    if (message) ctx.addIssue({ code: 'custom', message });
  });

export const l2AdvertisementSpecSchema = z.object({
  ...poolSelectionFields,
  nodeSelectors: nodeSelectorsField,
  interfaces: z
    .array(interfacePatternSchema)
    .optional()
    .describe('Interfaces to announce on: names or glob patterns (eth*). Unset: the interface whose network holds the address.'),
  excludeInterfaces: z
    .array(interfacePatternSchema)
    .optional()
    .describe(`Glob patterns never announced on, in addition to the built-in ${DEFAULT_EXCLUDED_INTERFACES.join(', ')}.`),
  nodePreference: nodePreferenceField.describe(
    "Preferred owners: a node's weight is the highest weight of the entries whose nodeSelector it matches (0 for none). The owner of an address is elected among the live eligible nodes of the highest weight present, by the usual hash; the other nodes stay backups.",
  ),
});
export type L2AdvertisementSpec = z.infer<typeof l2AdvertisementSpecSchema>;

export const bgpPeerSpecSchema = z
  .object({
    peerAddress: ipAddressSchema().describe('The peer router: an IPv4 or IPv6 address.'),
    peerASN: asnSchema.describe('The peer AS number (4-byte ASNs allowed).'),
    myASN: asnSchema.describe('The speaker AS number; equal to peerASN for iBGP.'),
    peerPort: z.number().int().min(1).max(65535).default(179),
    holdTime: z
      .number()
      .int()
      .min(0)
      .max(65535)
      .refine((v) => v === 0 || v >= 3, { message: 'must be 0 (no keepalives) or at least 3 seconds (RFC 4271 §4.2)' })
      .default(90)
      .describe('Hold time offered in OPEN, seconds: 0 or 3..65535.'),
    keepaliveTime: z
      .number()
      .int()
      .min(0)
      .max(21845)
      .optional()
      .describe('Seconds between KEEPALIVEs; default holdTime/3; never above holdTime, 0 when holdTime is 0.'),
    sourceAddress: ipAddressSchema().optional().describe('Local address of the session; same family as peerAddress.'),
    routerID: ipAddressSchema(4).optional().describe('BGP identifier, an IPv4 dotted quad; default: chosen by the speaker per node.'),
    passive: z.boolean().default(false).describe('Wait for the peer to connect instead of connecting.'),
    ebgpMultiHop: z
      .boolean()
      .default(false)
      .describe('eBGP only. false: the session is single-hop, sent with TTL 1 as routers do (the peer must be directly connected). true: sent with TTL 255, for a peer several hops away (configure the peer for multihop too).'),
    gtsm: z
      .object({
        hops: z.number().int().min(1).max(254).default(1).describe('How far the peer may be: 1 = directly connected.'),
      })
      .optional()
      .describe('Generalized TTL Security (RFC 5082): the session is sent with TTL 255 and the kernel drops segments from the peer that arrive with a TTL below 256 - hops. The peer must do the same (FRR: neighbor X ttl-security hops N; BIRD: ttl security on).'),
    connectTime: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .optional()
      .describe('Seconds between connection attempts to the peer (the ConnectRetry timer, each wait jittered to 75–100 %). Unset: 1 s, doubling after every failure up to 120 s.'),
    nodeOverrides: z
      .array(
        z.object({
          nodeName: z.string().min(1).optional().describe('The node this entry applies to.'),
          nodeSelector: labelSelectorSchema.optional().describe('Nodes this entry applies to (instead of nodeName).'),
          sourceAddress: ipAddressSchema().optional().describe('Replaces spec.sourceAddress on these nodes.'),
          routerID: ipAddressSchema(4).optional().describe('Replaces spec.routerID on these nodes.'),
        }),
      )
      .optional()
      .describe('Per-node session settings: the first entry that names the node (nodeName) or selects it (nodeSelector) replaces sourceAddress and/or routerID there.'),
    nodeSelectors: z.array(labelSelectorSchema).optional().describe('Nodes that peer (a node matching any); unset means every node.'),
    gracefulRestart: z
      .object({
        enabled: z.boolean().default(false),
        restartTime: z.number().int().min(1).max(4095).default(120).describe('Restart time advertised in the capability, seconds.'),
      })
      .optional()
      .describe('Graceful restart (RFC 4724).'),
    password: z
      .string()
      .optional()
      .refine((v) => v === undefined, { message: TCP_MD5_UNSUPPORTED })
      .describe('Not accepted: use passwordSecretRef (any value here is rejected).'),
    passwordSecretRef: z
      .object({
        name: z.string().min(1).max(253).regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, { message: 'must be a Secret name (DNS subdomain)' }),
        namespace: z
          .string()
          .optional()
          .refine((v) => v === undefined || v === BGP_PASSWORD_NAMESPACE, { message: `must be ${BGP_PASSWORD_NAMESPACE} (the speaker can read Secrets there only)` }),
      })
      .optional()
      .describe(`TCP MD5 signatures (RFC 2385): a Secret in ${BGP_PASSWORD_NAMESPACE} whose key "${BGP_PASSWORD_KEY}" holds the password (1..80 bytes).`),
    bfd: z
      .object({
        minRxMs: z.number().int().min(10).max(60000).default(300).describe('Required Min RX Interval, ms: the fastest the peer may send.'),
        minTxMs: z.number().int().min(10).max(60000).default(300).describe('Desired Min TX Interval once Up, ms.'),
        multiplier: z.number().int().min(1).max(255).default(3).describe('Detect Mult: the peer declares this node down after this many of its intervals without a packet.'),
      })
      .optional()
      .describe('Single-hop BFD (RFC 5880/5881) to the peer; when it goes down the BGP session is closed at once. The router declares the node down after multiplier × the agreed interval.'),
  })
  .superRefine((spec, ctx) => {
    if (spec.keepaliveTime !== undefined) {
      if (spec.holdTime === 0 && spec.keepaliveTime !== 0) {
        ctx.addIssue({ code: 'custom', path: ['keepaliveTime'], message: 'must be 0 when holdTime is 0' });
      } else if (spec.keepaliveTime > spec.holdTime) {
        ctx.addIssue({ code: 'custom', path: ['keepaliveTime'], message: `${spec.keepaliveTime} is above holdTime (${spec.holdTime})` });
      }
    }
    const sameFamily = (text: string | undefined, path: (string | number)[]) => {
      if (text === undefined) return;
      const peer = tryParseIP(spec.peerAddress);
      const source = tryParseIP(text);
      if (peer && source && peer.family !== source.family) {
        ctx.addIssue({ code: 'custom', path, message: `"${text}" is IPv${source.family} but peerAddress "${spec.peerAddress}" is IPv${peer.family}` });
      }
    };
    sameFamily(spec.sourceAddress, ['sourceAddress']);
    if (spec.ebgpMultiHop && spec.myASN === spec.peerASN) {
      ctx.addIssue({ code: 'custom', path: ['ebgpMultiHop'], message: 'applies to eBGP only (myASN differs from peerASN); iBGP sessions use the kernel default TTL (64)' });
    }
    if (spec.ebgpMultiHop && spec.gtsm) {
      ctx.addIssue({ code: 'custom', path: ['gtsm'], message: 'gtsm sends TTL 255 itself: drop ebgpMultiHop and set gtsm.hops to the number of hops to the peer' });
    }
    (spec.nodeOverrides ?? []).forEach((o, i) => {
      if ((o.nodeName === undefined) === (o.nodeSelector === undefined)) {
        ctx.addIssue({ code: 'custom', path: ['nodeOverrides', i], message: 'set exactly one of nodeName and nodeSelector' });
      }
      if (o.sourceAddress === undefined && o.routerID === undefined) {
        ctx.addIssue({ code: 'custom', path: ['nodeOverrides', i], message: 'set sourceAddress, routerID or both' });
      }
      sameFamily(o.sourceAddress, ['nodeOverrides', i, 'sourceAddress']);
    });
  })
  // Defaults that depend on another field, and the refused password dropped from the parsed type.
  .transform(({ password: _password, ...spec }) => ({ ...spec, keepaliveTime: spec.keepaliveTime ?? Math.floor(spec.holdTime / 3) }));
export type BGPPeerSpec = z.output<typeof bgpPeerSpecSchema>;

const COMMUNITY = /^(\d{1,5}:\d{1,5}|no-export|no-advertise|no-export-subconfed|no-peer)$/;
const LARGE_COMMUNITY = /^\d{1,10}:\d{1,10}:\d{1,10}$/;
const partsWithin = (text: string, max: number) => text.split(':').every((p) => !/^\d+$/.test(p) || Number(p) <= max);

export const bgpAdvertisementSpecSchema = z.object({
  ...poolSelectionFields,
  peers: nameListSchema.optional().describe('BGPPeer names; unset means every peer.'),
  nodeSelectors: nodeSelectorsField,
  aggregationLength: z
    .number()
    .int()
    .min(0)
    .max(32)
    .default(32)
    .describe('IPv4 prefix length announced for each address; not shorter than the prefix of any selected pool range (a range counts as its exact CIDR decomposition).'),
  aggregationLengthV6: z.number().int().min(0).max(128).default(128).describe('As aggregationLength, for IPv6.'),
  communities: z
    .array(
      z
        .string()
        .regex(COMMUNITY, { message: 'must be ASN:VALUE (each 0..65535) or one of no-export, no-advertise, no-export-subconfed, no-peer' })
        .refine((c) => partsWithin(c, 65535), { message: 'each half must be 0..65535' }),
    )
    .optional()
    .describe('Standard communities (RFC 1997): 65535:65282 form or no-export, no-advertise, no-export-subconfed, no-peer.'),
  largeCommunities: z
    .array(
      z
        .string()
        .regex(LARGE_COMMUNITY, { message: 'must be GLOBAL:LOCAL1:LOCAL2, each 0..4294967295' })
        .refine((c) => partsWithin(c, UINT32_MAX), { message: 'each part must be 0..4294967295' }),
    )
    .optional()
    .describe('Large communities (RFC 8092): a:b:c, each 0..4294967295.'),
  localPref: z.number().int().min(0).max(UINT32_MAX).optional().describe('LOCAL_PREF sent to iBGP peers.'),
  nodePreference: nodePreferenceField.describe(
    "Preferred announcers: a node's weight is the highest weight of the entries whose nodeSelector it matches (0 for none). Of the live nodes eligible for an address, only those of the highest weight present announce it; the others withdraw it and take over when no node of a higher weight is left.",
  ),
});
export type BGPAdvertisementSpec = z.output<typeof bgpAdvertisementSpecSchema>;

export const l2AdvertisementSchema = z.object({
  apiVersion: z.literal(API_GROUP_VERSION).optional(),
  kind: z.literal('L2Advertisement').optional(),
  metadata: objectMetaSchema,
  spec: l2AdvertisementSpecSchema,
});
export type L2Advertisement = z.output<typeof l2AdvertisementSchema>;

export const bgpPeerSchema = z.object({
  apiVersion: z.literal(API_GROUP_VERSION).optional(),
  kind: z.literal('BGPPeer').optional(),
  metadata: objectMetaSchema,
  spec: bgpPeerSpecSchema,
});
export type BGPPeer = z.output<typeof bgpPeerSchema>;

export const bgpAdvertisementSchema = z.object({
  apiVersion: z.literal(API_GROUP_VERSION).optional(),
  kind: z.literal('BGPAdvertisement').optional(),
  metadata: objectMetaSchema,
  spec: bgpAdvertisementSpecSchema,
});
export type BGPAdvertisement = z.output<typeof bgpAdvertisementSchema>;

// NodeAnnouncement: what one node's speaker announces right now, written by that speaker only when
// it changes (src/speaker/announcements.ts). One object per node, named after the node: a failover
// rewrites the objects of the nodes involved, never one object per Service, so API writes follow
// changes of the data plane, not the number of Services nor time.
export const nodeAnnouncementSpecSchema = z.object({
  nodeName: z.string().min(1).describe('The node whose speaker writes this object (equal to metadata.name).'),
});

export const l2AnnouncementStatusSchema = z.object({
  address: z.string().min(1),
  interface: z.string().min(1).describe('The interface the address is held on (ARP / NDP answered there).'),
  services: z.array(z.string()).describe('namespace/name of every Service the address is announced for.'),
  since: z.string().describe('When this node started announcing it (RFC 3339, the node\'s clock).'),
});

export const bgpAnnouncementStatusSchema = z.object({
  address: z.string().min(1),
  prefix: z.string().min(1).describe('The route advertised for the address (aggregated per the BGPAdvertisement).'),
  services: z.array(z.string()),
  peers: z.array(z.string()).describe('BGPPeers the route is offered to (see bgpSessions for whether each is established).'),
});

export const bgpSessionStatusSchema = z.object({
  peer: z.string().min(1).describe('The BGPPeer name.'),
  peerAddress: z.string(),
  // Coarse on purpose: the FSM cycles Idle/Connect/Active on every retry of a session that cannot
  // come up; writing each of those steps would make writes follow time instead of changes.
  state: z.enum(['Established', 'Down']),
  since: z.string().optional().describe('When the session reached this state (RFC 3339, the node\'s clock).'),
  bfd: z.enum(['AdminDown', 'Down', 'Init', 'Up']).optional().describe('The BFD session state (peers with spec.bfd only).'),
  lastError: z.string().optional().describe('Why the session last failed or went down.'),
});

export const nodeAnnouncementStatusSchema = z.object({
  addresses: z.string().optional().describe('The addresses this node announces (L2 and BGP), comma-separated, the first 8 and "(+N)" for the rest: what kubectl get shows.'),
  sessions: z.string().optional().describe('BGP sessions established / configured, e.g. 1/2.'),
  l2: z.array(l2AnnouncementStatusSchema).optional(),
  bgp: z.array(bgpAnnouncementStatusSchema).optional(),
  bgpSessions: z.array(bgpSessionStatusSchema).optional(),
  omitted: z.number().int().min(0).optional().describe('Entries of l2 and bgp left out to keep the object small (each list holds at most 2000).'),
});
export type NodeAnnouncementStatus = z.infer<typeof nodeAnnouncementStatusSchema>;

export const nodeAnnouncementSchema = z.object({
  apiVersion: z.literal(API_GROUP_VERSION).optional(),
  kind: z.literal('NodeAnnouncement').optional(),
  metadata: objectMetaSchema,
  spec: nodeAnnouncementSpecSchema,
  status: nodeAnnouncementStatusSchema.optional(),
});
export type NodeAnnouncement = z.infer<typeof nodeAnnouncementSchema>;

/** A NodeAnnouncement describes the node it is named after. */
export const NODE_ANNOUNCEMENT_NAME_RULE = { rule: 'self.metadata.name == self.spec.nodeName', message: 'metadata.name must equal spec.nodeName', fieldPath: '.spec.nodeName' } as const;

export type SpeakerConfigKind = 'L2Advertisement' | 'BGPPeer' | 'BGPAdvertisement';
/** The object schema of each speaker configuration kind. */
export const speakerConfigSchemas = {
  L2Advertisement: l2AdvertisementSchema,
  BGPPeer: bgpPeerSchema,
  BGPAdvertisement: bgpAdvertisementSchema,
} as const;

/** How a CRD is declared: the zod schemas above plus what kubectl shows. */
export interface CrdDefinition {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  categories: string[];
  scope: 'Cluster' | 'Namespaced';
  spec: z.ZodType;
  status?: z.ZodType;
  printerColumns: { name: string; type: string; jsonPath: string; priority?: number; description?: string }[];
  /** CEL rules on the whole object (x-kubernetes-validations at the schema root: self.metadata.name is visible there). */
  validations?: readonly { rule: string; message: string; fieldPath?: string; reason?: string }[];
}

export const crdDefinitions: CrdDefinition[] = [
  {
    kind: 'IPPool',
    plural: 'ippools',
    singular: 'ippool',
    shortNames: ['ipp'],
    categories: ['admitlb'],
    scope: 'Cluster',
    spec: ipPoolSpecSchema,
    status: ipPoolStatusSchema,
    printerColumns: [
      { name: 'Addresses', type: 'string', jsonPath: '.spec.addresses' },
      { name: 'Auto Assign', type: 'boolean', jsonPath: '.spec.autoAssign' },
      { name: 'IPv4 In Use', type: 'string', jsonPath: '.status.inUse.ipv4' },
      { name: 'IPv6 In Use', type: 'string', jsonPath: '.status.inUse.ipv6' },
      { name: 'Priority', type: 'integer', jsonPath: '.spec.allocateTo.priority', priority: 1 },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  },
  {
    kind: 'IPClaim',
    plural: 'ipclaims',
    singular: 'ipclaim',
    shortNames: ['ipc'],
    categories: ['admitlb'],
    scope: 'Cluster',
    spec: ipClaimSpecSchema,
    validations: [IPCLAIM_NAME_RULE],
    printerColumns: [
      { name: 'Address', type: 'string', jsonPath: '.spec.address' },
      { name: 'Pool', type: 'string', jsonPath: '.spec.pool' },
      { name: 'Held By', type: 'string', jsonPath: '.spec.heldBy' },
      { name: 'Sharing Key', type: 'string', jsonPath: '.spec.sharingKey', priority: 1 },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  },
  {
    kind: 'L2Advertisement',
    plural: 'l2advertisements',
    singular: 'l2advertisement',
    shortNames: ['l2adv'],
    categories: ['admitlb'],
    scope: 'Cluster',
    spec: l2AdvertisementSpecSchema,
    printerColumns: [
      { name: 'Pools', type: 'string', jsonPath: '.spec.ipPools' },
      { name: 'Pool Selectors', type: 'string', jsonPath: '.spec.ipPoolSelectors', priority: 1 },
      { name: 'Interfaces', type: 'string', jsonPath: '.spec.interfaces' },
      { name: 'Node Selectors', type: 'string', jsonPath: '.spec.nodeSelectors', priority: 1 },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  },
  {
    kind: 'BGPPeer',
    plural: 'bgppeers',
    singular: 'bgppeer',
    shortNames: ['bgpp'],
    categories: ['admitlb'],
    scope: 'Cluster',
    spec: bgpPeerSpecSchema,
    printerColumns: [
      { name: 'Peer', type: 'string', jsonPath: '.spec.peerAddress' },
      { name: 'Peer ASN', type: 'integer', jsonPath: '.spec.peerASN' },
      { name: 'My ASN', type: 'integer', jsonPath: '.spec.myASN' },
      { name: 'Hold', type: 'integer', jsonPath: '.spec.holdTime' },
      { name: 'Port', type: 'integer', jsonPath: '.spec.peerPort', priority: 1 },
      { name: 'Passive', type: 'boolean', jsonPath: '.spec.passive', priority: 1 },
      { name: 'Node Selectors', type: 'string', jsonPath: '.spec.nodeSelectors', priority: 1 },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  },
  {
    kind: 'BGPAdvertisement',
    plural: 'bgpadvertisements',
    singular: 'bgpadvertisement',
    shortNames: ['bgpadv'],
    categories: ['admitlb'],
    scope: 'Cluster',
    spec: bgpAdvertisementSpecSchema,
    printerColumns: [
      { name: 'Pools', type: 'string', jsonPath: '.spec.ipPools' },
      { name: 'Pool Selectors', type: 'string', jsonPath: '.spec.ipPoolSelectors', priority: 1 },
      { name: 'Peers', type: 'string', jsonPath: '.spec.peers' },
      { name: 'Aggregation', type: 'integer', jsonPath: '.spec.aggregationLength' },
      { name: 'Aggregation V6', type: 'integer', jsonPath: '.spec.aggregationLengthV6', priority: 1 },
      { name: 'Local Pref', type: 'integer', jsonPath: '.spec.localPref', priority: 1 },
      { name: 'Communities', type: 'string', jsonPath: '.spec.communities', priority: 1 },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  },
  {
    kind: 'NodeAnnouncement',
    plural: 'nodeannouncements',
    singular: 'nodeannouncement',
    shortNames: ['nann'],
    categories: ['admitlb'],
    scope: 'Cluster',
    spec: nodeAnnouncementSpecSchema,
    status: nodeAnnouncementStatusSchema,
    validations: [NODE_ANNOUNCEMENT_NAME_RULE],
    printerColumns: [
      { name: 'Addresses', type: 'string', jsonPath: '.status.addresses' },
      { name: 'BGP Sessions Up', type: 'string', jsonPath: '.status.sessions' },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  },
];
