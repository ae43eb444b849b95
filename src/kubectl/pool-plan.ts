// `kubectl admitlb plan -f pool.yaml`: what applying an IPPool change would do to the Services that
// hold its addresses, computed by the code that would act on it, over an in-memory copy of the
// cluster (nothing is written):
//   - the validating webhook's verdict on the change (validatePool: overlaps, stranded addresses
//     without admitlb.io/force);
//   - then, as if applied, the controller's pass: assignmentProblem / overQuota per Service in the
//     controller's canonical order (oldest first), and admitService as an UPDATE for each Service
//     whose assignment no longer stands. Each decision's claims land in the copy, so later Services
//     see the addresses earlier ones took, as in the controller.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { admitService } from '../admission/admit-service.ts';
import type { AdmissionRequest } from '../admission/review.ts';
import { validatePool } from '../admission/validate-pool.ts';
import { ClaimIndex } from '../allocation/claim-index.ts';
import { compilePool, type PoolModel } from '../allocation/pools.ts';
import { ANN_ALLOCATION } from '../config/annotations.ts';
import type { IPPool } from '../config/schemas.ts';
import { assignmentProblem, canonicalOrder, isOurLoadBalancer, keyOf, overQuota, type ServiceView } from '../controller/plan.ts';
import { KUBE_FLAGS_USAGE, parseCommandArgs, renderTable, structured } from './common.ts';
import { CommandError, UsageError, type PluginIO } from './io.ts';
import { kubeApi, loadKubeConfig, type ApiJson } from './kube.ts';
import { dryCluster, readAssignment, readWorld, type World } from './world.ts';

export const PLAN_USAGE = `usage: kubectl admitlb plan -f pool.yaml [-o yaml|json]

Shows what applying the IPPool(s) in the file would do to the Services holding their addresses:
kept, moved (from -> to) or stranded (left without an address, and why), plus Services that would
get an address they are waiting for. Computed by the validating webhook's and the controller's own
decision code over the cluster's current state; writes nothing.

  -f, --filename FILE    IPPool manifest(s) (- for stdin)
  -o, --output FORMAT    yaml or json (default: text)
${KUBE_FLAGS_USAGE}`;

export type Outcome = 'kept' | 'moved' | 'stranded' | 'assigned';

export interface PlanRow {
  service: string;
  outcome: Outcome;
  from: string[];
  fromPool: string;
  to: string[];
  toPool: string;
  reason: string;
}

export interface PoolPlanReport {
  pools: { name: string; change: 'create' | 'update'; admission: { allowed: boolean; message?: string } }[];
  services: PlanRow[];
  summary: Record<Outcome, number>;
}

export async function planPoolChange(world: World, changed: IPPool[]): Promise<PoolPlanReport> {
  const names = new Set(changed.map((p) => p.metadata.name ?? ''));
  // 1. The validating webhook's answer, over the pools and claims as they are now.
  const claimsNow = new ClaimIndex();
  for (const c of world.claims) claimsNow.upsert(c);
  const others: PoolModel[] = [];
  for (const p of world.pools) {
    if (names.has(p.metadata.name ?? '')) continue;
    try {
      others.push(compilePool(p));
    } catch {
      // an invalid pool is not a pool the webhook compares against
    }
  }
  const pools = changed.map((p) => {
    const old = world.pools.find((o) => o.metadata.name === p.metadata.name);
    const outcome = validatePool(
      { pools: others, claims: claimsNow },
      { uid: 'kubectl-admitlb-plan', kind: { group: 'admitlb.io', version: 'v1alpha1', kind: 'IPPool' }, resource: { group: 'admitlb.io', version: 'v1alpha1', resource: 'ippools' }, operation: old ? 'UPDATE' : 'CREATE', name: p.metadata.name, object: p, oldObject: old ?? null, dryRun: true } as unknown as AdmissionRequest,
    );
    return { name: p.metadata.name ?? '', change: old ? ('update' as const) : ('create' as const), admission: outcome.allowed ? { allowed: true } : { allowed: false, message: outcome.status?.message ?? 'denied' } };
  });

  // 2. The controller's pass over the cluster as if the change were applied.
  const after = { ...world, pools: [...world.pools.filter((p) => !names.has(p.metadata.name ?? '')), ...changed] };
  const dry = await dryCluster(after, true);
  const ctx = { state: dry.state, config: world.config, namespaceLabels: dry.namespaceLabels };
  const views = new Map<string, ServiceView>();
  for (const s of world.services) {
    const ns = s.metadata.namespace ?? 'default';
    const name = s.metadata.name ?? '';
    const read = await readAssignment(s, world.publicKeys);
    const a = read && read.trust !== 'invalid' ? read.assignment : undefined;
    views.set(keyOf(ns, name), { key: keyOf(ns, name), namespace: ns, name, service: s, ...(a ? { assignment: a } : {}) });
  }
  const quota = overQuota(dry.state, views);
  const rows: PlanRow[] = [];
  for (const view of [...views.values()].sort(canonicalOrder)) {
    if (view.service.metadata.deletionTimestamp) continue;
    const a = view.assignment;
    const from = [...(a?.ips ?? []), ...(a?.externalIPs ?? [])];
    const holdsChanged = (a?.pool && names.has(a.pool)) || [...dry.state.claims.claimsOfService(view.namespace, view.name)].some((r) => names.has(r.pool));
    const quotaPool = quota.get(view.key);
    const problem = assignmentProblem(ctx, view) ?? (quotaPool ? `over the per-namespace quota of IPPool "${quotaPool}"` : undefined);
    const base = { service: view.key, from, fromPool: a?.pool ?? '' };
    if (problem === undefined) {
      if (holdsChanged) rows.push({ ...base, outcome: 'kept', to: from, toPool: a?.pool ?? '', reason: 'the assignment still fits the pool' });
      continue;
    }
    // Only Services the change concerns: holders of the changed pools, and Services without an
    // address that the changed pools could now serve.
    if (!holdsChanged && from.length > 0) continue;
    if (!isOurLoadBalancer(view.service, world.config) && from.length === 0) continue;
    const token = view.service.metadata.annotations?.[ANN_ALLOCATION];
    const request = {
      uid: `kubectl-admitlb-plan-${view.key}`,
      kind: { group: '', version: 'v1', kind: 'Service' },
      resource: { group: '', version: 'v1', resource: 'services' },
      operation: 'UPDATE',
      namespace: view.namespace,
      name: view.name,
      object: view.service,
      oldObject: view.service,
      dryRun: false, // the claims go to the in-memory copy, so that the next Service sees them
    } as unknown as AdmissionRequest;
    const outcome = await admitService(dry.deps, request, { current: a && token ? { assignment: a, token } : null, reallocate: !!quotaPool });
    const to = outcome.allowed && !outcome.pending ? (outcome.audit.addresses ?? []) : [];
    const toPool = outcome.allowed && !outcome.pending ? (outcome.audit.pool ?? '') : '';
    if (from.length === 0) {
      if (to.length > 0 && names.has(toPool)) rows.push({ ...base, outcome: 'assigned', to, toPool, reason: `waiting (${problem}); the changed pool can serve it` });
      continue;
    }
    if (to.length === 0) {
      const why = outcome.allowed ? (outcome.pending ?? 'no address') : (outcome.status?.message ?? 'denied');
      rows.push({ ...base, outcome: 'stranded', to, toPool, reason: `${problem}; no address can replace it: ${why}` });
    } else if (to.join() === from.join()) {
      rows.push({ ...base, outcome: 'kept', to, toPool, reason: `${problem}; the controller re-records the same address` });
    } else rows.push({ ...base, outcome: 'moved', to, toPool, reason: problem });
  }
  const summary: Record<Outcome, number> = { kept: 0, moved: 0, stranded: 0, assigned: 0 };
  for (const r of rows) summary[r.outcome]++;
  return { pools, services: rows, summary };
}

export function renderPlan(r: PoolPlanReport): string {
  const out: string[] = [];
  for (const p of r.pools) {
    out.push(`IPPool ${p.name} (${p.change}): ${p.admission.allowed ? 'the webhook would allow the change' : `the webhook would refuse the change: ${p.admission.message}`}`);
  }
  out.push('');
  if (r.services.length === 0) out.push('No Service holds or waits for an address of the changed pool(s).');
  else {
    out.push(
      renderTable(
        ['SERVICE', 'OUTCOME', 'FROM', 'TO', 'REASON'],
        r.services.map((s) => [s.service, s.outcome, s.from.length ? `${s.from.join(',')} (${s.fromPool})` : '-', s.to.length ? `${s.to.join(',')} (${s.toPool})` : '-', s.reason]),
      ).trimEnd(),
    );
  }
  out.push('');
  out.push(`${r.summary.kept} kept, ${r.summary.moved} moved, ${r.summary.stranded} stranded, ${r.summary.assigned} newly assigned`);
  return `${out.join('\n')}\n`;
}

function readPools(file: string, text: string): IPPool[] {
  let docs: ApiJson[];
  try {
    docs = parseAllDocuments(text)
      .map((d) => {
        if (d.errors.length) throw new Error(d.errors[0]!.message);
        return d.toJS();
      })
      .filter((d) => d != null)
      .flatMap((d) => (d.kind === 'List' || d.kind === 'IPPoolList' ? (d.items ?? []) : [d]));
  } catch (err) {
    throw new CommandError(`${file}: not YAML or JSON: ${(err as Error).message}`);
  }
  const pools = docs.filter((d) => d?.kind === 'IPPool');
  if (pools.length === 0) throw new CommandError(`${file}: no IPPool in it`);
  for (const p of pools) {
    if (!p.metadata?.name) throw new CommandError(`${file}: an IPPool has no metadata.name`);
    try {
      compilePool(p);
    } catch (err) {
      throw new CommandError(`${file}: IPPool "${p.metadata.name}" is invalid: ${(err as Error).message}`);
    }
  }
  return pools as IPPool[];
}

export async function runPlanCommand(args: string[], io: PluginIO): Promise<number> {
  const { common, values } = parseCommandArgs(args, PLAN_USAGE, { filename: { type: 'string', short: 'f' } });
  if (common.help) {
    io.stdout(`${PLAN_USAGE}\n`);
    return 0;
  }
  const file = values.filename as string | undefined;
  if (!file) throw new UsageError('-f FILE is required (- for stdin)', PLAN_USAGE);
  let text: string;
  try {
    text = file === '-' ? await io.readStdin() : readFileSync(file, 'utf8');
  } catch (err) {
    throw new CommandError(`${file}: cannot read it: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`);
  }
  const pools = readPools(file, text);
  const world = await readWorld(kubeApi(loadKubeConfig(common)));
  const report = await planPoolChange(world, pools);
  io.stdout(common.output === 'table' ? renderPlan(report) : structured(report, common.output));
  return 0;
}
