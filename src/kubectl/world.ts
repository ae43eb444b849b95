// The cluster state the plugin's decisions run over: pools, claims, namespaces and Services read
// once from the API, and an in-memory copy of it (MemoryCluster, with the API server's create and
// compare-and-swap semantics) as the claim store. The webhook's and the controller's own decision
// code then runs unchanged: its claim writes land in that copy, never in the cluster.
import { decodeProtectedHeader, type JWK } from 'jose';
import { ANN_ALLOCATION } from '../config/annotations.ts';
import { API_GROUP_VERSION, type IPClaim, type IPPool } from '../config/schemas.ts';
import { admissionConfigSchema, type AdmissionConfig } from '../config/webhook-config.ts';
import { generateSigningKey } from '../certs/generate.ts';
import { PUBLIC_KEYS_CONFIGMAP_NAME } from '../certs/command.ts';
import type { AdmissionDeps } from '../admission/admit-service.ts';
import { LiveAllocationState } from '../kube/allocation-state.ts';
import { MemoryCluster } from '../kube/memory.ts';
import type { Namespace, Service } from '../kube/types.ts';
import { keySetFromJwks, verifyAssignment, type Assignment, type KeySet } from '../signing/assignment.ts';
import type { KubeApi } from './kube.ts';

export const ADMITLB_NAMESPACE = 'admitlb-system';
export const WEBHOOK_DEPLOYMENT = 'admitlb-webhook';

export interface World {
  pools: IPPool[];
  claims: IPClaim[];
  namespaces: Namespace[];
  services: Service[];
  /** The webhook's admission flags as its Deployment sets them (defaults when it has none or is not found). */
  config: AdmissionConfig;
  /** Public keys the assignments verify with (ConfigMap admitlb-signing-public-keys); none when unreadable. */
  publicKeys: JWK[];
}

const groupPath = (plural: string) => `/apis/${API_GROUP_VERSION}/${plural}`;

export async function readWorld(api: KubeApi): Promise<World> {
  const [pools, claims, namespaces, services, deployment, keys] = await Promise.all([
    api.list(groupPath('ippools')),
    api.list(groupPath('ipclaims')),
    api.list('/api/v1/namespaces'),
    api.list('/api/v1/services'),
    api.request('GET', `/apis/apps/v1/namespaces/${ADMITLB_NAMESPACE}/deployments/${WEBHOOK_DEPLOYMENT}`).catch(() => undefined),
    api.request('GET', `/api/v1/namespaces/${ADMITLB_NAMESPACE}/configmaps/${PUBLIC_KEYS_CONFIGMAP_NAME}`).catch(() => undefined),
  ]);
  const args: string[] = deployment?.status === 200 ? (deployment.body?.spec?.template?.spec?.containers?.[0]?.args ?? []) : [];
  const publicKeys: JWK[] = [];
  if (keys?.status === 200) {
    for (const [file, text] of Object.entries((keys.body?.data ?? {}) as Record<string, string>)) {
      if (!file.endsWith('.jwk.json')) continue;
      try {
        publicKeys.push(JSON.parse(text) as JWK);
      } catch {
        // a broken entry verifies nothing; the others still do
      }
    }
  }
  return { pools, claims, namespaces, services, config: admissionConfigFromArgs(args), publicKeys };
}

/** The webhook's admission flags from its container args (`--flag=value` or `--flag value`). */
export function admissionConfigFromArgs(args: string[]): AdmissionConfig {
  const flag = (name: string) => {
    for (let i = 0; i < args.length; i++) {
      const a = args[i]!;
      if (a.startsWith(`--${name}=`)) return a.slice(name.length + 3);
      if (a === `--${name}`) return args[i + 1];
    }
    return undefined;
  };
  const parsed = admissionConfigSchema.safeParse(
    Object.fromEntries(
      Object.entries({ loadBalancerClass: flag('load-balancer-class'), defaultFamily: flag('default-family'), externalIPMode: flag('external-ip-mode') }).filter(([, v]) => v !== undefined),
    ),
  );
  return parsed.success ? parsed.data : admissionConfigSchema.parse({});
}

export interface DryCluster {
  memory: MemoryCluster;
  state: LiveAllocationState;
  deps: AdmissionDeps;
  namespaceLabels(namespace: string): Record<string, string> | undefined;
}

/**
 * The cluster as an in-memory copy, with the admission's dependencies over it. The signing key is
 * generated for this run only: an assignment it signs is never written anywhere.
 * `deterministic` as the controller decides (lowest free address, always).
 */
export async function dryCluster(world: Pick<World, 'pools' | 'claims' | 'namespaces' | 'config'>, deterministic: boolean): Promise<DryCluster> {
  const memory = new MemoryCluster();
  for (const p of world.pools) memory.setPool(p);
  for (const n of world.namespaces) memory.setNamespace(n.metadata.name ?? '', n.metadata.labels ?? {});
  for (const c of world.claims) await memory.create(structuredClone(c));
  const state = new LiveAllocationState(memory);
  const key = await generateSigningKey();
  const keys: KeySet = await keySetFromJwks([{ jwk: key.privateJwk }]);
  const namespaceLabels = (ns: string) => memory.namespace(ns)?.metadata.labels;
  return { memory, state, deps: { state, store: memory, keys, config: world.config, namespaceLabels, deterministic }, namespaceLabels };
}

export interface ReadAssignment {
  assignment: Assignment;
  token: string;
  /** 'verified' with the cluster's public keys; 'unverified' when none could be read (decoded only); */
  trust: 'verified' | 'unverified' | 'invalid';
  why?: string;
}

/**
 * The Service's signed assignment. Verified with the public keys when the cluster publishes them;
 * otherwise decoded and reported as unverified (the decisions below take it as the webhook would
 * if it verified). An assignment that fails verification is `invalid`: the webhook treats it as absent.
 */
export async function readAssignment(service: Service, publicKeys: JWK[]): Promise<ReadAssignment | undefined> {
  const token = service.metadata.annotations?.[ANN_ALLOCATION];
  if (!token) return undefined;
  const who = { namespace: service.metadata.namespace ?? 'default', name: service.metadata.name ?? '' };
  if (publicKeys.length > 0) {
    try {
      const keys = await keySetFromJwks(publicKeys.map((jwk) => ({ jwk })));
      const a = await verifyAssignment(keys, token, who);
      return { assignment: { namespace: a.namespace, name: a.name, ips: a.ips, pool: a.pool, externalIPs: a.externalIPs }, token, trust: 'verified' };
    } catch (err) {
      const decoded = decodeAssignment(token);
      return decoded ? { assignment: decoded, token, trust: 'invalid', why: (err as Error).message } : undefined;
    }
  }
  const decoded = decodeAssignment(token);
  if (!decoded) return undefined;
  if (decoded.namespace !== who.namespace || decoded.name !== who.name) {
    return { assignment: decoded, token, trust: 'invalid', why: `assignment was issued for ${decoded.namespace}/${decoded.name}` };
  }
  return { assignment: decoded, token, trust: 'unverified', why: `no public keys readable (ConfigMap ${ADMITLB_NAMESPACE}/${PUBLIC_KEYS_CONFIGMAP_NAME})` };
}

function decodeAssignment(token: string): Assignment | undefined {
  try {
    decodeProtectedHeader(token);
    const p = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8'));
    if (typeof p?.ns !== 'string' || typeof p?.n !== 'string' || !Array.isArray(p.ips)) return undefined;
    return { namespace: p.ns, name: p.n, ips: p.ips, pool: p.pool ?? '', externalIPs: Array.isArray(p.eips) ? p.eips : [] };
  } catch {
    return undefined;
  }
}
