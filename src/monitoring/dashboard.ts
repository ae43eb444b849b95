// The Grafana dashboard of webhook-manifests/monitoring/ (dashboard.json and the ConfigMap that the
// Grafana sidecar loads), built here so that panels stay uniform; `npm run gen:dashboard` writes both
// files and test/monitoring/rules.test.ts checks they are current and that every query is PromQL
// over metrics the code registers.
import { stringify } from 'yaml';

export const DASHBOARD_UID = 'admitlb';
export const DASHBOARD_CONFIGMAP = 'admitlb-grafana-dashboard';

interface Target {
  expr: string;
  legend: string;
  /** table panels: one row per series at the current time */
  instant?: boolean;
}

interface PanelSpec {
  title: string;
  description: string;
  type: 'timeseries' | 'stat' | 'bargauge' | 'table';
  unit?: string;
  targets: Target[];
  width?: number;
}

/** Grafana's data source variable (a template variable, not a JavaScript placeholder). */
export const DATASOURCE_VARIABLE = `$${'{datasource}'}`;
const datasource = { type: 'prometheus', uid: DATASOURCE_VARIABLE };
const R = '$__rate_interval';

const rows: { title: string; panels: PanelSpec[] }[] = [
  {
    title: 'Pools',
    panels: [
      {
        title: 'Pool use',
        description: 'Held addresses over assignable addresses, per IPPool and family (alerts at 90 % and 100 %).',
        type: 'bargauge',
        unit: 'percentunit',
        targets: [{ expr: 'max by (pool, family) (admitlb_pool_addresses_in_use) / max by (pool, family) (admitlb_pool_capacity_addresses > 0)', legend: '{{pool}} {{family}}' }],
      },
      {
        title: 'Addresses in use and capacity',
        description: 'admitlb_pool_addresses_in_use and admitlb_pool_capacity_addresses per IPPool and family.',
        type: 'timeseries',
        unit: 'short',
        targets: [
          { expr: 'max by (pool, family) (admitlb_pool_addresses_in_use)', legend: '{{pool}} {{family}} in use' },
          { expr: 'max by (pool, family) (admitlb_pool_capacity_addresses)', legend: '{{pool}} {{family}} capacity' },
        ],
      },
      {
        title: 'Assigned addresses announced by no node',
        description: 'Addresses held by a Service that no speaker holds as L2 owner nor routes to an Established BGP peer (the AdmitlbAddressNotAnnounced alert after 10 minutes).',
        type: 'stat',
        unit: 'short',
        targets: [{ expr: 'count(max by (address) (admitlb_address_assigned) unless on (address) max by (address) (admitlb_speaker_address_announced)) or vector(0)', legend: 'not announced' }],
      },
    ],
  },
  {
    title: 'Webhook',
    panels: [
      {
        title: 'Admission reviews by decision',
        description: 'Per webhook and decision (allowed, denied, skipped, error: the webhook could not decide).',
        type: 'timeseries',
        unit: 'reqps',
        targets: [{ expr: `sum by (webhook, decision) (rate(admitlb_admission_decisions_total[${R}]))`, legend: '{{webhook}} {{decision}}' }],
      },
      {
        title: 'Admission latency',
        description: 'Median and 99th percentile of the time to answer a review, per webhook (the API server gives up after 5 s).',
        type: 'timeseries',
        unit: 's',
        targets: [
          { expr: `histogram_quantile(0.5, sum by (webhook, le) (rate(admitlb_admission_duration_seconds_bucket[${R}])))`, legend: '{{webhook}} p50' },
          { expr: `histogram_quantile(0.99, sum by (webhook, le) (rate(admitlb_admission_duration_seconds_bucket[${R}])))`, legend: '{{webhook}} p99' },
        ],
      },
      {
        title: 'Admission errors',
        description: 'Share of reviews that ended in an error (alert above 5 % for 10 minutes).',
        type: 'timeseries',
        unit: 'percentunit',
        targets: [
          {
            expr: `sum by (webhook) (rate(admitlb_admission_decisions_total{decision="error"}[${R}])) / sum by (webhook) (rate(admitlb_admission_decisions_total[${R}]))`,
            legend: '{{webhook}}',
          },
        ],
      },
    ],
  },
  {
    title: 'Controller',
    panels: [
      {
        title: 'Elected controller',
        description: '1 on the webhook pod that holds the controller Lease.',
        type: 'stat',
        unit: 'short',
        targets: [{ expr: 'max by (pod) (admitlb_controller_leader)', legend: '{{pod}}' }],
      },
      {
        title: 'Reconcile passes',
        description: '99th percentile of a reconcile pass, and the Services the current pass examines.',
        type: 'timeseries',
        unit: 's',
        targets: [
          { expr: `histogram_quantile(0.99, sum by (le) (rate(admitlb_controller_reconcile_duration_seconds_bucket[${R}])))`, legend: 'p99 pass' },
          { expr: 'max(admitlb_controller_queue_depth)', legend: 'Services in the pass' },
        ],
      },
      {
        title: 'Controller writes',
        description: 'status.loadBalancer writes and released claim holders per second.',
        type: 'timeseries',
        unit: 'ops',
        targets: [
          { expr: `sum(rate(admitlb_controller_status_writes_total[${R}]))`, legend: 'status writes' },
          { expr: `sum(rate(admitlb_controller_claims_collected_total[${R}]))`, legend: 'claims collected' },
        ],
      },
    ],
  },
  {
    title: 'BGP and BFD',
    panels: [
      {
        title: 'BGP sessions Established',
        description: '1 while the session of a node to a BGPPeer is Established (alert after 5 minutes at 0).',
        type: 'timeseries',
        unit: 'short',
        targets: [{ expr: 'max by (node, peer) (admitlb_speaker_bgp_session_up)', legend: '{{node}} → {{peer}}' }],
      },
      {
        title: 'Prefixes advertised',
        description: 'Prefixes in the Adj-RIB-Out of each session.',
        type: 'timeseries',
        unit: 'short',
        targets: [{ expr: 'max by (node, peer) (admitlb_speaker_bgp_prefixes_advertised)', legend: '{{node}} → {{peer}}' }],
      },
      {
        title: 'BFD session state',
        description: 'The current BFD state of each session (BGPPeers with spec.bfd only).',
        type: 'table',
        targets: [{ expr: 'max by (node, peer, state) (admitlb_speaker_bfd_session_state == 1)', legend: '{{node}} {{peer}} {{state}}', instant: true }],
      },
      {
        title: 'BFD sessions Up',
        description: '1 while the BFD session of a node to a BGPPeer is Up.',
        type: 'timeseries',
        unit: 'short',
        targets: [{ expr: 'max by (node, peer) (admitlb_speaker_bfd_session_up)', legend: '{{node}} → {{peer}}' }],
      },
    ],
  },
  {
    title: 'L2 and speakers',
    panels: [
      {
        title: 'L2 owners',
        description: 'Which node holds each L2 address now.',
        type: 'table',
        targets: [{ expr: 'max by (address, node) (admitlb_speaker_address_announced{protocol="l2"})', legend: '{{address}} {{node}}', instant: true }],
      },
      {
        title: 'L2 owner changes',
        description: 'Owner changes each speaker computed: won (it became owner) and lost (another node did). Failovers show as bursts.',
        type: 'timeseries',
        unit: 'short',
        targets: [{ expr: `sum by (node, result) (increase(admitlb_speaker_elections_total[${R}]))`, legend: '{{node}} {{result}}' }],
      },
      {
        title: 'Announced addresses per node',
        description: 'By protocol: l2 (owner), bgp (routed), local (externalIPs bound for kube-proxy).',
        type: 'timeseries',
        unit: 'short',
        targets: [{ expr: 'max by (node, protocol) (admitlb_speaker_announced_addresses)', legend: '{{node}} {{protocol}}' }],
      },
      {
        title: 'Live nodes',
        description: 'Nodes whose speaker each speaker considers alive; nodes that disagree see different memberships.',
        type: 'timeseries',
        unit: 'short',
        targets: [{ expr: 'max by (node) (admitlb_speaker_live_nodes)', legend: '{{node}}' }],
      },
      {
        title: 'Gratuitous ARP / NA and answered requests',
        description: 'Helper runs after an address moved, and neighbour requests the kernel answered for held L2 addresses.',
        type: 'timeseries',
        unit: 'ops',
        targets: [
          { expr: `sum by (node, family) (rate(admitlb_speaker_gratuitous_messages_total[${R}]))`, legend: '{{node}} gratuitous {{family}}' },
          { expr: `sum by (node, family) (rate(admitlb_speaker_neighbor_requests_answered_total[${R}]))`, legend: '{{node}} answered {{family}}' },
        ],
      },
      {
        title: 'Announce failures and pass time',
        description: 'Failed announcements per second by protocol, and the 99th percentile of a speaker pass.',
        type: 'timeseries',
        unit: 'short',
        targets: [
          { expr: `sum by (node, protocol) (rate(admitlb_speaker_announce_failures_total[${R}]))`, legend: '{{node}} failures {{protocol}}' },
          { expr: `histogram_quantile(0.99, sum by (node, le) (rate(admitlb_speaker_reconcile_duration_seconds_bucket[${R}])))`, legend: '{{node}} p99 pass (s)' },
        ],
      },
    ],
  },
];

/** The dashboard model (Grafana's JSON, schema 39). */
export function buildDashboard(): Record<string, unknown> {
  const panels: Record<string, unknown>[] = [];
  let id = 1;
  let y = 0;
  for (const row of rows) {
    panels.push({ id: id++, type: 'row', title: row.title, collapsed: false, gridPos: { h: 1, w: 24, x: 0, y }, panels: [] });
    y += 1;
    const width = Math.floor(24 / Math.min(row.panels.length, 3));
    row.panels.forEach((p, i) => {
      const x = (i % 3) * width;
      if (i > 0 && i % 3 === 0) y += 8;
      panels.push({
        id: id++,
        type: p.type,
        title: p.title,
        description: p.description,
        datasource,
        gridPos: { h: 8, w: width, x, y },
        fieldConfig: { defaults: p.unit ? { unit: p.unit } : {}, overrides: [] },
        options: p.type === 'timeseries' ? { legend: { displayMode: 'list', placement: 'bottom', showLegend: true }, tooltip: { mode: 'multi', sort: 'desc' } } : {},
        targets: p.targets.map((t, n) => ({
          refId: String.fromCharCode(65 + n),
          datasource,
          expr: t.expr,
          legendFormat: t.legend,
          ...(t.instant ? { instant: true, range: false, format: 'table' } : { range: true }),
        })),
      });
    });
    y += 8;
  }
  return {
    uid: DASHBOARD_UID,
    title: 'admitlb',
    description: 'Pools, the admission webhook, the controller, BGP/BFD sessions and L2 ownership of admitlb.',
    tags: ['admitlb', 'loadbalancer'],
    timezone: 'browser',
    editable: true,
    graphTooltip: 1,
    schemaVersion: 39,
    version: 1,
    refresh: '30s',
    time: { from: 'now-6h', to: 'now' },
    annotations: { list: [] },
    templating: {
      list: [{ name: 'datasource', label: 'Data source', type: 'datasource', query: 'prometheus', current: {}, hide: 0, refresh: 1 }],
    },
    panels,
  };
}

/** Every PromQL query of the dashboard, with Grafana's interval variable left in. */
export function dashboardQueries(dashboard = buildDashboard()): { panel: string; expr: string }[] {
  const panels = dashboard.panels as { title: string; targets?: { expr: string }[] }[];
  return panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
}

export function renderDashboardJson(): string {
  return `${JSON.stringify(buildDashboard(), null, 2)}\n`;
}

/** The ConfigMap the Grafana sidecar picks up by its grafana_dashboard label. */
export function renderDashboardConfigMap(): string {
  const header = '# Generated by `npm run gen:dashboard` from src/monitoring/dashboard.ts (also dashboard.json): do not edit.\n';
  return (
    header +
    stringify(
      {
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: DASHBOARD_CONFIGMAP, namespace: 'admitlb-system', labels: { 'app.kubernetes.io/component': 'monitoring', grafana_dashboard: '1' } },
        data: { 'admitlb.json': renderDashboardJson() },
      },
      { lineWidth: 0 },
    )
  );
}
