// `kubectl admitlb explain svc/NAME [-n NS]` (or `-f service.yaml` for one not created yet): why the
// Service has its address, or why it is denied or pending. The answer comes from the decision code
// itself, run over the cluster state read from the API, with no writes:
//   - a Service that exists: the controller's check (assignmentProblem, overQuota). An assignment
//     that stands is explained by the rule that chose it; one that does not is re-decided the way
//     the controller's back-stop does (admitService as an UPDATE, deterministic);
//   - a Service from a file: the webhook's CREATE decision (admitService, dry run).
// admitService's claim writes land in an in-memory copy of the cluster (world.ts).
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { admitService } from '../admission/admit-service.ts';
import type { AdmissionRequest } from '../admission/review.ts';
import { readIntent, type ServiceIntent } from '../admission/service-intent.ts';
import { familyName, formatIP, type Family } from '../net/address.ts';
import { poolAdmits, poolCapacity } from '../allocation/pools.ts';
import { assignmentProblem, keyOf, overQuota, type ServiceView } from '../controller/plan.ts';
import type { Service } from '../kube/types.ts';
import { KUBE_FLAGS_USAGE, parseCommandArgs, renderTable, structured } from './common.ts';
import { CommandError, UsageError, type PluginIO } from './io.ts';
import { kubeApi, loadKubeConfig } from './kube.ts';
import { dryCluster, readAssignment, readWorld, type World } from './world.ts';
import type { KubeEvent } from './status.ts';

export const EXPLAIN_USAGE = `usage: kubectl admitlb explain svc/NAME [-n NAMESPACE] [-o yaml|json]
       kubectl admitlb explain -f service.yaml [-o yaml|json]

Explains why a Service has its address, or why it is denied or pending, with the webhook's and the
controller's own decision code run over the cluster's current pools, claims and namespace labels.
Writes nothing. With -f, explains what creating the Service would get (a denial included).

  -n, --namespace NS     the Service's namespace (default: the context's namespace, else default)
  -f, --filename FILE    a Service manifest (- for stdin) instead of a Service in the cluster
  -o, --output FORMAT    yaml or json (default: text)
${KUBE_FLAGS_USAGE}`;

export type Verdict = 'kept' | 'assigned' | 'moved' | 'pending' | 'denied' | 'not-managed';

export interface PoolCandidate {
  name: string;
  serves: string[];
  autoAssign: boolean;
  priority?: number;
  /** Whether the pool's namespace and Service selectors admit this Service. */
  admits: boolean;
  deleting: boolean;
  free: Record<string, string>;
  quota?: { perNamespace: number; heldByNamespace: number };
  invalid?: string;
}

export interface ExplainReport {
  service: string;
  exists: boolean;
  decidedBy: 'webhook (CREATE, dry run)' | 'controller (assignment check)' | 'controller (back-stop, as an UPDATE)' | 'none';
  verdict: Verdict;
  addresses: string[];
  pool?: string;
  reason: string;
  /** What the controller finds wrong with the recorded assignment, when it re-decides. */
  problem?: string;
  intent?: { loadBalancer: boolean; families: string[]; policy: string; requested?: string[]; requestedBy?: string; pool?: string; poolBy?: string; sharingKey?: string; ports: string[]; externalIPs: string[] };
  recorded?: { addresses: string[]; pool: string; signature: string; status: string[] };
  warnings: string[];
  pools: PoolCandidate[];
  events: { type: string; reason: string; message: string; at: string }[];
}

const statusIPs = (s: Service) => (s.status?.loadBalancer?.ingress ?? []).map((i) => i.ip ?? i.hostname ?? '');

function describeIntent(intent: ServiceIntent): NonNullable<ExplainReport['intent']> {
  return {
    loadBalancer: intent.isLoadBalancer,
    families: intent.families.map((f) => familyName(f)),
    policy: intent.policy,
    ...(intent.requested?.ips.length ? { requested: intent.requested.ips.map(formatIP), requestedBy: intent.requested.field } : {}),
    ...(intent.pool ? { pool: intent.pool.name, poolBy: intent.pool.field } : {}),
    ...(intent.sharingKey ? { sharingKey: intent.sharingKey } : {}),
    ports: intent.ports.map((p) => `${p.port}/${p.protocol}`),
    externalIPs: intent.externalIPs.map((e) => e.text),
  };
}

/**
 * Explains one Service over `world`. `exists`: the Service is stored in the cluster (else it is
 * explained as a create). `events`: the Service's own Events, newest first.
 */
export async function explainService(world: World, service: Service, exists: boolean, events: KubeEvent[] = []): Promise<ExplainReport> {
  const namespace = service.metadata.namespace || 'default';
  const name = service.metadata.name ?? '';
  const dry = await dryCluster(world, true);
  const base = {
    service: `${namespace}/${name}`,
    exists,
    warnings: [] as string[],
    events: events.slice(0, 10).map((e) => ({ type: e.type ?? '', reason: e.reason ?? '', message: e.message ?? '', at: e.lastTimestamp ?? e.eventTime ?? e.firstTimestamp ?? '' })),
  };
  const svc: Service = { ...service, metadata: { ...service.metadata, namespace } };
  const intent = readIntent(svc, world.config);
  const subject = { namespace, labels: svc.metadata.labels, namespaceLabels: dry.namespaceLabels(namespace) };
  const pools: PoolCandidate[] = [
    ...dry.state.pools.map((p) => {
      const free: Record<string, string> = {};
      for (const f of [4, 6] as Family[]) if (p.families.has(f)) free[familyName(f)] = String(poolCapacity(p, f) - BigInt(dry.state.claims.inUse(p.name, f)));
      return {
        name: p.name,
        serves: [...p.usage].sort(),
        autoAssign: p.autoAssign,
        ...(p.priority !== undefined ? { priority: p.priority } : {}),
        admits: poolAdmits(p, subject),
        deleting: p.deleting,
        free,
        ...(p.quotaPerNamespace !== undefined ? { quota: { perNamespace: p.quotaPerNamespace, heldByNamespace: dry.state.claims.heldByNamespace(p.name, namespace) } } : {}),
      };
    }),
    ...[...dry.state.invalidPools].map(([n, why]) => ({ name: n, serves: [], autoAssign: false, admits: false, deleting: false, free: {}, invalid: why })),
  ];

  const read = exists ? await readAssignment(svc, world.publicKeys) : undefined;
  const recorded = read
    ? {
        addresses: [...read.assignment.ips, ...read.assignment.externalIPs],
        pool: read.assignment.pool,
        signature: read.trust === 'verified' ? 'verified' : `${read.trust}${read.why ? `: ${read.why}` : ''}`,
        status: statusIPs(svc),
      }
    : exists && statusIPs(svc).length
      ? { addresses: [], pool: '', signature: 'none', status: statusIPs(svc) }
      : undefined;
  const common = { ...base, pools, ...(recorded ? { recorded } : {}) };
  if ('error' in intent) {
    return { ...common, decidedBy: 'none', verdict: 'denied', addresses: [], reason: `${intent.field}: ${intent.message}` };
  }
  common.warnings.push(...intent.warnings);
  const described = { ...common, intent: describeIntent(intent) };
  if (!intent.isLoadBalancer && intent.externalIPs.length === 0 && !intent.pool) {
    const why =
      svc.spec?.type === 'LoadBalancer'
        ? `spec.loadBalancerClass is "${svc.spec.loadBalancerClass}": another load balancer implementation serves it (admitlb serves "${world.config.loadBalancerClass}" and Services without a class)`
        : `the Service is of type ${svc.spec?.type ?? 'ClusterIP'}: admitlb assigns addresses to Services of type LoadBalancer (and to externalIPs)`;
    return { ...described, decidedBy: 'none', verdict: 'not-managed', addresses: [], reason: why };
  }

  if (exists) {
    const assignment = read && read.trust !== 'invalid' ? read.assignment : undefined;
    const view: ServiceView = { key: keyOf(namespace, name), namespace, name, service: svc, ...(assignment ? { assignment } : {}) };
    const ctx = { state: dry.state, config: world.config, namespaceLabels: dry.namespaceLabels };
    const views = new Map<string, ServiceView>();
    for (const s of world.services) {
      const ns = s.metadata.namespace ?? 'default';
      const r = await readAssignment(s, world.publicKeys);
      const a = r && r.trust !== 'invalid' ? r.assignment : undefined;
      views.set(keyOf(ns, s.metadata.name ?? ''), { key: keyOf(ns, s.metadata.name ?? ''), namespace: ns, name: s.metadata.name ?? '', service: s, ...(a ? { assignment: a } : {}) });
    }
    views.set(view.key, view);
    const quotaPool = overQuota(dry.state, views).get(view.key);
    const problem = assignmentProblem(ctx, view) ?? (quotaPool ? `over the per-namespace quota of IPPool "${quotaPool}"` : undefined);
    if (problem === undefined) {
      return {
        ...described,
        decidedBy: 'controller (assignment check)',
        verdict: 'kept',
        addresses: [...(assignment?.ips ?? []), ...(assignment?.externalIPs ?? [])],
        ...(assignment?.pool ? { pool: assignment.pool } : {}),
        reason: keptReason(intent, assignment?.pool ?? '', namespace, pools),
      };
    }
    const request = admissionRequest(svc, 'UPDATE');
    const token = svc.metadata.annotations?.['admitlb.io/allocation'];
    const outcome = await admitService(dry.deps, request, { current: assignment && token ? { assignment, token } : null, reallocate: !!quotaPool });
    return { ...described, decidedBy: 'controller (back-stop, as an UPDATE)', problem, ...fromOutcome(outcome, assignment ? 'moved' : 'assigned', problem) };
  }

  const outcome = await admitService(dry.deps, admissionRequest(svc, 'CREATE'));
  return { ...described, decidedBy: 'webhook (CREATE, dry run)', ...fromOutcome(outcome, 'assigned', undefined) };
}

function admissionRequest(svc: Service, operation: 'CREATE' | 'UPDATE'): AdmissionRequest {
  return {
    uid: 'kubectl-admitlb-explain',
    kind: { group: '', version: 'v1', kind: 'Service' },
    resource: { group: '', version: 'v1', resource: 'services' },
    operation,
    namespace: svc.metadata.namespace,
    name: svc.metadata.name,
    object: svc as unknown as Record<string, unknown>,
    oldObject: operation === 'UPDATE' ? (svc as unknown as Record<string, unknown>) : null,
    dryRun: true,
  } as AdmissionRequest;
}

type Decided = Pick<ExplainReport, 'verdict' | 'addresses' | 'pool' | 'reason'> & { warnings?: string[] };

function fromOutcome(outcome: Awaited<ReturnType<typeof admitService>>, allowedVerdict: Verdict, problem: string | undefined): Decided {
  if (!outcome.allowed) return { verdict: 'denied', addresses: [], reason: outcome.status?.message ?? 'denied' };
  if (outcome.pending) return { verdict: 'pending', addresses: [], reason: `no address can be assigned: ${outcome.pending}` };
  const addresses = outcome.audit.addresses ?? [];
  if (addresses.length === 0) return { verdict: 'not-managed', addresses, reason: 'nothing to assign' };
  const why = problem ? `the recorded assignment does not stand (${problem}); the controller's back-stop assigns` : 'the webhook assigns';
  return { verdict: outcome.audit.reason === 'kept' ? 'kept' : allowedVerdict, addresses, ...(outcome.audit.pool ? { pool: outcome.audit.pool } : {}), reason: `${why} ${addresses.join(', ')}${outcome.audit.pool ? ` from IPPool "${outcome.audit.pool}"` : ''}` };
}

/** Which allocation rule the standing assignment follows. */
function keptReason(intent: ServiceIntent, pool: string, namespace: string, pools: PoolCandidate[]): string {
  if (intent.requested?.ips.length) return `the addresses were requested (${intent.requested.field}); they are in IPPool "${pool}", which admits the Service, and the Service holds their IPClaims`;
  if (intent.pool) return `IPPool "${pool}" is named (${intent.pool.field}) and admits the Service; the Service holds the IPClaims of its addresses`;
  if (!intent.isLoadBalancer) return `the externalIPs are in IPPool "${pool || pools.find((p) => p.serves.includes('ExternalIP'))?.name}", which serves externalIPs to the Service; the Service holds their IPClaims`;
  const earlier = pools.filter((p) => p.autoAssign && p.admits && !p.deleting && p.serves.includes('LoadBalancer') && p.name !== pool);
  return (
    `automatic assignment: IPPool "${pool}" is an autoAssign pool that admits Services in namespace "${namespace}" ` +
    `(pools are tried by priority, then name${earlier.length ? `; the others that admit it: ${earlier.map((p) => p.name).join(', ')}` : ''}); ` +
    'the assignment is kept while it fits the pool and the Service holds the IPClaims of its addresses'
  );
}

export function renderExplain(r: ExplainReport): string {
  const lines: string[] = [];
  lines.push(`Service:    ${r.service}${r.exists ? '' : ' (not in the cluster: explained as a create)'}`);
  const verdictText: Record<Verdict, string> = {
    kept: `has ${r.addresses.join(', ')}${r.pool ? ` from IPPool "${r.pool}"` : ''}`,
    assigned: `${r.exists ? 'would be assigned' : 'a create would get'} ${r.addresses.join(', ')}${r.pool ? ` from IPPool "${r.pool}"` : ''}`,
    moved: `would move to ${r.addresses.join(', ')}${r.pool ? ` from IPPool "${r.pool}"` : ''}`,
    pending: 'pending: no address',
    denied: r.exists ? 'denied: the controller cannot assign an address' : 'denied: the create would be rejected',
    'not-managed': 'not admitlb\'s',
  };
  lines.push(`Verdict:    ${verdictText[r.verdict]}`);
  lines.push(`Why:        ${r.reason}`);
  if (r.problem) lines.push(`Problem:    ${r.problem}`);
  lines.push(`Decided by: ${r.decidedBy}`);
  if (r.recorded) {
    lines.push(`Recorded:   ${r.recorded.addresses.length ? r.recorded.addresses.join(', ') : '(no assignment)'}${r.recorded.pool ? ` from IPPool "${r.recorded.pool}"` : ''} (signature ${r.recorded.signature}); status: ${r.recorded.status.join(', ') || '(none)'}`);
  }
  if (r.intent) {
    const i = r.intent;
    const asks = [
      `${i.policy} ${i.families.join(',')}`,
      i.requested ? `addresses ${i.requested.join(',')} (${i.requestedBy})` : '',
      i.pool ? `pool ${i.pool} (${i.poolBy})` : '',
      i.sharingKey ? `sharing key ${i.sharingKey}` : '',
      i.ports.length ? `ports ${i.ports.join(',')}` : '',
      i.externalIPs.length ? `externalIPs ${i.externalIPs.join(',')}` : '',
    ].filter(Boolean);
    lines.push(`Asks for:   ${asks.join('; ')}`);
  }
  for (const w of r.warnings) lines.push(`Warning:    ${w}`);
  lines.push('');
  lines.push('Pools:');
  if (r.pools.length === 0) lines.push('  none');
  else {
    const table = renderTable(
      ['NAME', 'SERVES', 'AUTO', 'PRIORITY', 'ADMITS', 'FREE', 'QUOTA (NAMESPACE)'],
      r.pools.map((p) => [
        p.name,
        p.invalid ? `invalid: ${p.invalid}` : p.serves.join(','),
        p.autoAssign ? 'yes' : 'no',
        p.priority === undefined ? '-' : String(p.priority),
        p.deleting ? 'no (deleting)' : p.admits ? 'yes' : 'no',
        Object.entries(p.free).map(([f, n]) => `${f} ${n}`).join(', ') || '-',
        p.quota ? `${p.quota.heldByNamespace}/${p.quota.perNamespace}` : '-',
      ]),
    );
    lines.push(...table.trimEnd().split('\n').map((l) => `  ${l}`));
  }
  if (r.events.length) {
    lines.push('');
    lines.push('Events (newest first):');
    for (const e of r.events) lines.push(`  ${e.at}  ${e.type}  ${e.reason}  ${e.message}`);
  }
  return `${lines.join('\n')}\n`;
}

function parseTarget(positionals: string[]): string | undefined {
  if (positionals.length === 0) return undefined;
  if (positionals.length > 1) throw new UsageError(`expected one Service, got ${positionals.join(' ')}`, EXPLAIN_USAGE);
  const m = /^(?:svc|service|services)\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/.exec(positionals[0]!);
  if (!m) throw new UsageError(`expected svc/NAME, got "${positionals[0]}"`, EXPLAIN_USAGE);
  return m[1]!;
}

function readServiceFile(file: string, text: string): Service {
  let docs: unknown[];
  try {
    docs = parseAllDocuments(text).map((d) => {
      if (d.errors.length) throw new Error(d.errors[0]!.message);
      return d.toJS();
    }).filter((d) => d != null);
  } catch (err) {
    throw new CommandError(`${file}: not YAML or JSON: ${(err as Error).message}`);
  }
  const services = docs.filter((d): d is Service => (d as { kind?: string })?.kind === 'Service');
  if (services.length !== 1) throw new CommandError(`${file}: expected exactly one Service, found ${services.length}`);
  const s = services[0]!;
  if (!s.metadata?.name) throw new CommandError(`${file}: the Service has no metadata.name`);
  return s;
}

export async function runExplainCommand(args: string[], io: PluginIO): Promise<number> {
  const { common, values, positionals } = parseCommandArgs(args, EXPLAIN_USAGE, { namespace: { type: 'string', short: 'n' }, filename: { type: 'string', short: 'f' } }, true);
  if (common.help) {
    io.stdout(`${EXPLAIN_USAGE}\n`);
    return 0;
  }
  const name = parseTarget(positionals);
  const file = values.filename as string | undefined;
  if (!name === !file) throw new UsageError(name ? 'give svc/NAME or -f FILE, not both' : 'svc/NAME or -f FILE is required', EXPLAIN_USAGE);
  let fromFile: Service | undefined;
  if (file) {
    let text: string;
    try {
      text = file === '-' ? await io.readStdin() : readFileSync(file, 'utf8');
    } catch (err) {
      throw new CommandError(`${file}: cannot read it: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (err as Error).message}`);
    }
    fromFile = readServiceFile(file, text);
  }
  const kc = loadKubeConfig(common);
  const namespace = (values.namespace as string | undefined) ?? fromFile?.metadata.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
  const api = kubeApi(kc);
  const world = await readWorld(api);
  let report: ExplainReport;
  if (fromFile) {
    const existing = world.services.find((s) => s.metadata.namespace === namespace && s.metadata.name === fromFile.metadata.name);
    if (existing) throw new CommandError(`service "${fromFile.metadata.name}" already exists in namespace "${namespace}": explain it with svc/${fromFile.metadata.name}`);
    report = await explainService(world, { ...fromFile, metadata: { ...fromFile.metadata, namespace } }, false);
  } else {
    const service = world.services.find((s) => s.metadata.namespace === namespace && s.metadata.name === name);
    if (!service) throw new CommandError(`service "${name}" not found in namespace "${namespace}" (a create that was denied leaves no Service: explain its manifest with -f)`);
    const events = (await api.list(`/api/v1/namespaces/${encodeURIComponent(namespace)}/events`))
      .filter((e: KubeEvent) => e.involvedObject?.kind === 'Service' && e.involvedObject?.name === name)
      .sort((a: KubeEvent, b: KubeEvent) => ((a.lastTimestamp ?? a.eventTime ?? '') < (b.lastTimestamp ?? b.eventTime ?? '') ? 1 : -1));
    report = await explainService(world, service, true, events);
  }
  io.stdout(common.output === 'table' ? renderExplain(report) : structured(report, common.output));
  return 0;
}
