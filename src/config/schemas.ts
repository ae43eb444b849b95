// The zod schemas are admitlb's single source of truth for its API: the CRD YAML in
// webhook-manifests/ is generated from them (scripts/gen-crds.ts) and the TypeScript types are
// inferred from them, so the two cannot drift.
import { z } from 'zod';

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
  address: z.string().min(1).describe('The claimed address in canonical form.'),
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
    printerColumns: [
      { name: 'Address', type: 'string', jsonPath: '.spec.address' },
      { name: 'Pool', type: 'string', jsonPath: '.spec.pool' },
      { name: 'Held By', type: 'string', jsonPath: '.spec.heldBy' },
      { name: 'Sharing Key', type: 'string', jsonPath: '.spec.sharingKey', priority: 1 },
      { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
    ],
  },
];
