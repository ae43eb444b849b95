// The monitoring component (webhook-manifests/monitoring/): its PrometheusRule passes `promtool check
// rules` and the promtool unit tests in this folder (each alert fires on its input and stays silent
// on the case beside it), the dashboard's queries are PromQL promtool accepts, and every metric and
// label the rules and the dashboard read is one the code registers, so neither can silently refer to
// nothing. Also: the component renders with `kubectl kustomize` and selects the real workloads.
// promtool is built by `npm run tools:build` (test/tools/promtool/); without it this fails under
// CI=true and skips otherwise.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { Registry } from 'prom-client';
import { TOOLS_BUILD_HINT, toolBinary } from '../../src/sandbox/tool-binaries.ts';
import { createWebhookMetrics } from '../../src/webhook/metrics.ts';
import { createControllerMetrics } from '../../src/controller/metrics.ts';
import { createSpeakerMetrics } from '../../src/speaker/speaker.ts';
import { ClaimIndex } from '../../src/allocation/claim-index.ts';
import { DASHBOARD_CONFIGMAP, DATASOURCE_VARIABLE, dashboardQueries, renderDashboardConfigMap, renderDashboardJson } from '../../src/monitoring/dashboard.ts';
import { runCertsCommand } from '../../src/certs/command.ts';
import { REPO_MANIFESTS, find, kustomize, tempInstall, type K8sObject } from '../certs/helpers.ts';

const COMPONENT = join(REPO_MANIFESTS, 'monitoring');
const TESTS_DIR = import.meta.dirname;
const promtool = toolBinary('promtool');
const skipPromtool = !promtool && process.env.CI !== 'true' ? `promtool is not built: ${TOOLS_BUILD_HINT}` : false;
if (skipPromtool) console.log(`# skipping the promtool checks: ${skipPromtool}`);

interface RuleGroup {
  name: string;
  rules: { alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }[];
}
const ruleObject = parse(readFileSync(join(COMPONENT, 'prometheus-rule.yaml'), 'utf8')) as { kind: string; spec: { groups: RuleGroup[] } };
const groups = ruleObject.spec.groups;
const alerts = groups.flatMap((g) => g.rules);

/** Runs promtool; a failure shows its output. */
function runPromtool(args: string[], cwd: string): { status: number | null; out: string } {
  assert.ok(promtool, `promtool is not built: ${TOOLS_BUILD_HINT}`);
  const r = spawnSync(promtool, args, { cwd, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}\n${r.stderr}` };
}

/** Grafana's interval variable as a fixed range, so that the query is plain PromQL. */
const withoutGrafanaVariables = (expr: string) => expr.replaceAll('$__rate_interval', '5m');

// ---- what the code registers ----

/** Series names (histograms: _bucket/_sum/_count) → label names, from the components' real registries. */
function registeredSeries(): Map<string, Set<string>> {
  const webhook = createWebhookMetrics({ pools: [], claims: new ClaimIndex() }, { defaultMetrics: true }).registry;
  createControllerMetrics(webhook); // the controller registers into the webhook's registry
  const speaker = new Registry();
  createSpeakerMetrics(speaker);
  const out = new Map<string, Set<string>>();
  for (const registry of [webhook, speaker]) {
    for (const m of registry.getMetricsAsArray()) {
      const { name, type, labelNames } = m as unknown as { name: string; type: string; labelNames?: string[] };
      const labels = new Set(labelNames ?? []);
      if (type === 'histogram') {
        out.set(`${name}_bucket`, new Set([...labels, 'le']));
        out.set(`${name}_sum`, labels);
        out.set(`${name}_count`, labels);
      } else out.set(name, labels);
    }
  }
  return out;
}

// Labels that Prometheus (target labels) or the PodMonitor's relabeling add to every series.
const TARGET_LABELS = new Set(['job', 'instance', 'namespace', 'pod', 'container', 'service', 'endpoint', 'node']);
const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'inf', 'nan']);

/** The metric selectors of an expression (name and the label names of its matchers) and its grouping labels. */
function promqlReferences(expr: string): { selectors: { name: string; labels: string[] }[]; grouping: string[] } {
  const plain = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\[[^\]]*\]/g, '');
  const grouping: string[] = [];
  const noGroups = plain.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g, (_m, _k, list: string) => {
    grouping.push(...list.split(',').map((l) => l.trim()).filter(Boolean));
    return ' ';
  });
  const selectors: { name: string; labels: string[] }[] = [];
  for (const m of noGroups.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?(\s*\()?/g)) {
    const [, name, matchers, call] = m as unknown as [string, string, string | undefined, string | undefined];
    if (call || KEYWORDS.has(name.toLowerCase())) continue; // a function or aggregation, or a keyword
    if (m.index > 0 && /[0-9.]/.test(noGroups[m.index - 1]!)) continue; // an exponent or a unit of a number
    const labels = [...(matchers ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/g)].map((l) => l[1]!);
    selectors.push({ name, labels });
  }
  return { selectors, grouping };
}

/** Problems of one expression against the registered series: unknown metrics, unknown labels. */
function referenceProblems(expr: string, series: Map<string, Set<string>>): string[] {
  const { selectors, grouping } = promqlReferences(expr);
  const problems: string[] = [];
  if (selectors.length === 0) problems.push('reads no metric');
  const known = new Set<string>(TARGET_LABELS);
  for (const s of selectors) {
    const labels = series.get(s.name);
    if (!labels) {
      problems.push(`${s.name} is not registered by the code`);
      continue;
    }
    for (const l of labels) known.add(l);
    for (const l of s.labels) if (!labels.has(l) && !TARGET_LABELS.has(l)) problems.push(`${s.name} has no label ${l}`);
  }
  for (const l of grouping) if (!known.has(l)) problems.push(`no metric of the expression has the label ${l}`);
  return problems;
}

describe('monitoring: metric names and labels', () => {
  const series = registeredSeries();

  it('the reference check itself finds unknown metrics and labels', () => {
    assert.deepEqual(referenceProblems('sum by (pool) (admitlb_pool_adresses_in_use)', series), ['admitlb_pool_adresses_in_use is not registered by the code', 'no metric of the expression has the label pool']);
    assert.deepEqual(referenceProblems('admitlb_admission_decisions_total{outcome="error"}', series), ['admitlb_admission_decisions_total has no label outcome']);
    assert.deepEqual(referenceProblems('histogram_quantile(0.99, sum by (le) (rate(admitlb_admission_duration_seconds_bucket[5m]))) > 1e0', series), []);
    assert.deepEqual(referenceProblems('vector(1)', series), ['reads no metric']);
  });

  it('every alert reads metrics and labels the code registers', () => {
    assert.ok(alerts.length >= 7);
    const problems = alerts.flatMap((a) => referenceProblems(a.expr, series).map((p) => `${a.alert}: ${p}`));
    assert.deepEqual(problems, []);
  });

  it('every dashboard query reads metrics and labels the code registers', () => {
    const queries = dashboardQueries();
    assert.ok(queries.length >= 20);
    const problems = queries.flatMap((q) => referenceProblems(withoutGrafanaVariables(q.expr), series).map((p) => `${q.panel}: ${p}`));
    assert.deepEqual(problems, []);
  });

  it('the alerts are the documented ones', () => {
    assert.deepEqual(
      alerts.map((a) => a.alert),
      ['AdmitlbPoolNearlyExhausted', 'AdmitlbPoolExhausted', 'AdmitlbWebhookErrors', 'AdmitlbWebhookSlow', 'AdmitlbBGPSessionDown', 'AdmitlbBFDSessionDown', 'AdmitlbAddressNotAnnounced'],
    );
    const readme = readFileSync(join(REPO_MANIFESTS, '..', 'README.md'), 'utf8');
    for (const a of alerts) {
      assert.match(a.labels?.severity ?? '', /^(warning|critical)$/, `${a.alert} severity`);
      assert.ok(a.annotations?.summary && a.annotations.description, `${a.alert} summary and description`);
      assert.ok(new RegExp(`\\b${a.alert}\\b`).test(readme), `${a.alert} is explained in the README`);
    }
  });
});

describe('monitoring: promtool', { skip: skipPromtool }, () => {
  let dir = '';
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'admitlb-promtool-'));
    writeFileSync(join(dir, 'rules.yaml'), stringify({ groups }));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('promtool check rules accepts the PrometheusRule\'s groups, and rejects a broken copy', () => {
    const ok = runPromtool(['check', 'rules', 'rules.yaml'], dir);
    assert.equal(ok.status, 0, ok.out);
    assert.match(ok.out, new RegExp(`SUCCESS: ${alerts.length} rules found`));
    const broken = structuredClone(groups);
    broken[0]!.rules[0]!.expr = 'max by (pool (admitlb_pool_addresses_in_use)';
    writeFileSync(join(dir, 'broken.yaml'), stringify({ groups: broken }));
    const bad = runPromtool(['check', 'rules', 'broken.yaml'], dir);
    assert.notEqual(bad.status, 0, bad.out);
  });

  it('promtool test rules: every unit test passes, and every alert has a firing and a silent case', () => {
    const files = readdirSync(TESTS_DIR).filter((f) => f.endsWith('.yaml')).sort();
    assert.deepEqual(files, ['pools.yaml', 'speaker.yaml', 'webhook.yaml']);
    for (const f of files) copyFileSync(join(TESTS_DIR, f), join(dir, f));
    const r = runPromtool(['test', 'rules', ...files], dir);
    assert.equal(r.status, 0, r.out);
    assert.doesNotMatch(r.out, /FAILED/);
    type UnitTest = { alert_rule_test?: { alertname: string; exp_alerts?: unknown[] }[] };
    const cases = files.flatMap((f) => (parse(readFileSync(join(TESTS_DIR, f), 'utf8')) as { tests: UnitTest[] }).tests.flatMap((t) => t.alert_rule_test ?? []));
    for (const a of alerts) {
      assert.ok(cases.some((c) => c.alertname === a.alert && (c.exp_alerts ?? []).length > 0), `${a.alert} fires in some test`);
      assert.ok(cases.some((c) => c.alertname === a.alert && (c.exp_alerts ?? []).length === 0), `${a.alert} stays silent in some test`);
    }
  });

  it('a unit test with a wrong expectation fails (the runner compares)', () => {
    const wrong = readFileSync(join(TESTS_DIR, 'speaker.yaml'), 'utf8').replace('peer: tor-1 }', 'peer: tor-2 }');
    writeFileSync(join(dir, 'wrong.yaml'), wrong);
    const r = runPromtool(['test', 'rules', 'wrong.yaml'], dir);
    assert.notEqual(r.status, 0, r.out);
  });

  it('every dashboard query is PromQL that promtool accepts (as recording rules)', () => {
    const queries = dashboardQueries();
    for (const q of queries) assert.doesNotMatch(withoutGrafanaVariables(q.expr), /\$/, `${q.panel}: a Grafana variable promtool cannot read`);
    const rules = queries.map((q, i) => ({ record: `admitlb:dashboard:query_${i}`, expr: withoutGrafanaVariables(q.expr) }));
    writeFileSync(join(dir, 'dashboard-rules.yaml'), stringify({ groups: [{ name: 'dashboard', rules }] }));
    const r = runPromtool(['check', 'rules', 'dashboard-rules.yaml'], dir);
    assert.equal(r.status, 0, r.out);
    assert.match(r.out, new RegExp(`SUCCESS: ${queries.length} rules found`));
  });
});

describe('monitoring: the dashboard files', () => {
  it('dashboard.json and its ConfigMap are what `npm run gen:dashboard` writes', () => {
    assert.equal(readFileSync(join(COMPONENT, 'dashboard.json'), 'utf8'), renderDashboardJson(), 'run npm run gen:dashboard');
    assert.equal(readFileSync(join(COMPONENT, 'dashboard-configmap.yaml'), 'utf8'), renderDashboardConfigMap(), 'run npm run gen:dashboard');
  });

  it('dashboard.json parses: unique panel ids, panels inside the 24-column grid, one Prometheus data source variable', () => {
    const d = JSON.parse(readFileSync(join(COMPONENT, 'dashboard.json'), 'utf8')) as {
      uid: string;
      templating: { list: { name: string; type: string }[] };
      panels: { id: number; type: string; title: string; gridPos: { x: number; w: number }; datasource?: { uid: string }; targets?: { expr: string }[] }[];
    };
    assert.equal(d.uid, 'admitlb');
    assert.deepEqual(d.templating.list.map((v) => [v.name, v.type]), [['datasource', 'datasource']]);
    assert.equal(new Set(d.panels.map((p) => p.id)).size, d.panels.length);
    for (const p of d.panels) {
      assert.ok(p.gridPos.x + p.gridPos.w <= 24, p.title);
      if (p.type === 'row') continue;
      assert.ok((p.targets ?? []).length > 0, `${p.title} has a query`);
      assert.equal(p.datasource?.uid, DATASOURCE_VARIABLE, p.title);
    }
    const titles = d.panels.filter((p) => p.type === 'row').map((p) => p.title);
    assert.deepEqual(titles, ['Pools', 'Webhook', 'Controller', 'BGP and BFD', 'L2 and speakers']);
  });
});

describe('monitoring: the kustomize component', () => {
  const inst = tempInstall();
  let objects: K8sObject[] = [];
  before(async () => {
    await runCertsCommand({ outDir: inst.certsDir, manifestsDir: inst.manifestsDir });
    const overlay = join(inst.root, 'overlay-monitoring');
    mkdirSync(overlay);
    writeFileSync(join(overlay, 'kustomization.yaml'), 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../webhook-manifests]\ncomponents: [../webhook-manifests/monitoring]\n');
    objects = kustomize(overlay);
  });
  after(() => inst.cleanup());

  const labelsMatch = (selector: Record<string, string>, labels: Record<string, string> | undefined) => Object.entries(selector).every(([k, v]) => labels?.[k] === v);

  it('renders the ServiceMonitor, PodMonitor, PrometheusRule and dashboard ConfigMap in admitlb-system', () => {
    for (const [kind, name] of [['ServiceMonitor', 'admitlb-webhook'], ['PodMonitor', 'admitlb-speaker'], ['PrometheusRule', 'admitlb'], ['ConfigMap', DASHBOARD_CONFIGMAP]] as const) {
      assert.equal(find(objects, kind, name).metadata.namespace, 'admitlb-system', `${kind}/${name}`);
    }
    assert.deepEqual((find(objects, 'PrometheusRule', 'admitlb').spec as { groups: RuleGroup[] }).groups, groups);
    const cm = find(objects, 'ConfigMap', DASHBOARD_CONFIGMAP);
    assert.equal(cm.metadata.labels?.grafana_dashboard, '1');
    assert.equal((cm as unknown as { data: Record<string, string> }).data['admitlb.json'], renderDashboardJson());
  });

  it('the ServiceMonitor selects the webhook Service, its https port, and the CA of the serving certificate', () => {
    const sm = find(objects, 'ServiceMonitor', 'admitlb-webhook').spec as { selector: { matchLabels: Record<string, string> }; endpoints: { port: string; scheme: string; tlsConfig: { serverName: string; ca: { secret: { name: string; key: string } } } }[] };
    const services = objects.filter((o) => o.kind === 'Service' && labelsMatch(sm.selector.matchLabels, o.metadata.labels));
    assert.deepEqual(services.map((s) => s.metadata.name), ['admitlb-webhook']);
    const ports = (services[0]!.spec as { ports: { name: string }[] }).ports.map((p) => p.name);
    assert.deepEqual(sm.endpoints.map((e) => [e.port, e.scheme]), [['https', 'https']]);
    assert.ok(ports.includes('https'));
    const ep = sm.endpoints[0]!;
    assert.equal(ep.tlsConfig.serverName, `${services[0]!.metadata.name}.${services[0]!.metadata.namespace}.svc`);
    const secret = find(objects, 'Secret', ep.tlsConfig.ca.secret.name) as unknown as { data: Record<string, string> };
    assert.match(Buffer.from(secret.data[ep.tlsConfig.ca.secret.key] ?? '', 'base64').toString(), /BEGIN CERTIFICATE/);
  });

  it('the PodMonitor selects the speaker pods (and not the webhook pods) on their port 7472', () => {
    const pm = find(objects, 'PodMonitor', 'admitlb-speaker').spec as { selector: { matchLabels: Record<string, string> }; podMetricsEndpoints: { port: string; relabelings: { targetLabel: string }[] }[] };
    type Workload = { spec: { template: { metadata: { labels: Record<string, string> }; spec: { containers: { ports: { name: string; containerPort: number }[] }[] } } } };
    const speaker = find(objects, 'DaemonSet', 'admitlb-speaker') as unknown as Workload;
    const webhook = find(objects, 'Deployment', 'admitlb-webhook') as unknown as Workload;
    assert.ok(labelsMatch(pm.selector.matchLabels, speaker.spec.template.metadata.labels));
    assert.ok(!labelsMatch(pm.selector.matchLabels, webhook.spec.template.metadata.labels));
    const port = speaker.spec.template.spec.containers[0]!.ports.find((p) => p.name === pm.podMetricsEndpoints[0]!.port);
    assert.equal(port?.containerPort, 7472);
    assert.deepEqual(pm.podMetricsEndpoints[0]!.relabelings.map((r) => r.targetLabel), ['node']);
  });
});
