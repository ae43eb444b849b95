// Builders for allocator and webhook tests: pools, claims and a fully wired in-memory admission.
import pino from 'pino';
import type { IPClaim, IPPool, IPPoolSpec } from '../../src/config/schemas.ts';
import { admissionConfigSchema, type AdmissionConfig } from '../../src/config/webhook-config.ts';
import { ClaimIndex } from '../../src/allocation/claim-index.ts';
import { compilePool, type PoolModel } from '../../src/allocation/pools.ts';
import { parseIP, claimNameFor } from '../../src/allocation/addresses.ts';
import { MemoryCluster } from '../../src/kube/memory.ts';
import { LiveAllocationState } from '../../src/kube/allocation-state.ts';
import { keySetFromJwks, type KeySet } from '../../src/signing/assignment.ts';
import { generateKeyPair, exportJWK, calculateJwkThumbprint } from 'jose';
import type { AdmissionDeps } from '../../src/admission/admit-service.ts';
import type { ClaimHolder } from '../../src/config/schemas.ts';

export function pool(name: string, spec: Partial<IPPoolSpec> & { addresses: string[] }, annotations?: Record<string, string>): IPPool {
  return { apiVersion: 'admitlb.io/v1alpha1', kind: 'IPPool', metadata: { name, ...(annotations ? { annotations } : {}) }, spec: spec as IPPoolSpec };
}

export function model(name: string, spec: Partial<IPPoolSpec> & { addresses: string[] }): PoolModel {
  return compilePool(pool(name, spec));
}

export function claim(address: string, poolName: string, holders: Partial<ClaimHolder>[], sharingKey?: string): IPClaim {
  return {
    metadata: { name: claimNameFor(parseIP(address)), resourceVersion: '1' },
    spec: {
      address,
      pool: poolName,
      ...(sharingKey ? { sharingKey } : {}),
      holders: holders.map((h) => ({ namespace: 'default', name: 'x', use: 'LoadBalancer', ports: [], backend: '', ...h })),
    },
  };
}

export function index(claims: IPClaim[]): ClaimIndex {
  const i = new ClaimIndex();
  for (const c of claims) i.upsert(c);
  return i;
}

export async function testKeys(): Promise<{ keys: KeySet; jwk: Awaited<ReturnType<typeof exportJWK>> }> {
  const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
  const jwk = await exportJWK(privateKey);
  jwk.kid = await calculateJwkThumbprint(jwk);
  return { keys: await keySetFromJwks([{ jwk }]), jwk };
}

export interface Harness {
  cluster: MemoryCluster;
  state: LiveAllocationState;
  deps: AdmissionDeps;
  keys: KeySet;
}

export async function harness(pools: IPPool[], config: Partial<AdmissionConfig> = {}, keys?: KeySet): Promise<Harness> {
  const cluster = new MemoryCluster();
  for (const p of pools) cluster.setPool(p);
  cluster.setNamespace('default');
  cluster.setNamespace('team-a', { team: 'a' });
  cluster.setNamespace('team-b', { team: 'b' });
  const state = new LiveAllocationState(cluster.cache);
  const k = keys ?? (await testKeys()).keys;
  const deps: AdmissionDeps = {
    state,
    store: cluster.claims,
    keys: k,
    // These tests drive the mutating phase alone (nothing commits): the cap on unconfirmed claims
    // is off unless a test sets it (test/webhook/unconfirmed-claims.test.ts).
    config: admissionConfigSchema.parse({ maxUnconfirmedClaims: 1_000_000, ...config }),
    namespaceLabels: (ns) => cluster.namespace(ns)?.metadata.labels,
    namespaceExists: (ns) => cluster.namespace(ns) !== undefined,
  };
  return { cluster, state, deps, keys: k };
}

export const silentLogger = () => pino({ level: 'silent' });
