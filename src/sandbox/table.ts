// Server-side printing (meta.k8s.io/v1 Table): columns from pkg/printers/internalversion/printers.go for
// the built-in kinds, additionalPrinterColumns for CRs (apiextensions tableconvertor), and
// rest.DefaultTableConvertor (Name, Created At) otherwise.
import type { PrinterColumn, ResourceDef } from './resources.ts';
import type { KubeObject } from './store.ts';

export interface ColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

const col = (name: string, type = 'string', format = '', priority = 0, description = ''): ColumnDefinition => ({ name, type, format, description, priority });
const nameCol = col('Name', 'string', 'name', 0, 'Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names');
const ageCol = col('Age', 'string', '', 0, 'CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata');

/** apimachinery/pkg/util/duration HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.floor(hours / 24) % 365;
    return dy === 0 ? `${Math.floor(hours / 24 / 365)}y` : `${Math.floor(hours / 24 / 365)}y${dy}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}

function age(obj: KubeObject): string {
  const ts = obj.metadata?.creationTimestamp;
  return ts ? humanDuration(Date.now() - Date.parse(ts)) : '<unknown>';
}

/** printers.go getServiceExternalIP */
function serviceExternalIP(svc: KubeObject): string {
  const spec = svc.spec ?? {};
  const externalIPs = (spec.externalIPs ?? []) as string[];
  switch (spec.type) {
    case 'ClusterIP':
    case 'NodePort':
      return externalIPs.length ? externalIPs.join(',') : '<none>';
    case 'LoadBalancer': {
      const ingress = ((svc.status?.loadBalancer?.ingress ?? []) as KubeObject[]).map((i) => i.ip || i.hostname).filter(Boolean);
      const all = [...ingress, ...externalIPs];
      return all.length ? all.join(',') : '<pending>';
    }
    case 'ExternalName':
      return spec.externalName ?? '<none>';
    default:
      return '<unknown>';
  }
}

function servicePorts(svc: KubeObject): string {
  const ports = (svc.spec?.ports ?? []) as KubeObject[];
  if (!ports.length) return '<none>';
  return ports.map((p) => (p.nodePort ? `${p.port}:${p.nodePort}/${p.protocol}` : `${p.port}/${p.protocol}`)).join(',');
}

function selectorString(sel: Record<string, string> | undefined): string {
  const entries = Object.entries(sel ?? {}).sort(([a], [b]) => (a < b ? -1 : 1));
  return entries.length ? entries.map(([k, v]) => `${k}=${v}`).join(',') : '<none>';
}

interface Printer {
  columns: ColumnDefinition[];
  cells: (obj: KubeObject) => unknown[];
}

/** printers.go printEvent: works on core/v1 and events.k8s.io/v1 field names (both map to one internal type). */
function eventCells(e: KubeObject): unknown[] {
  const involved = e.involvedObject ?? e.regarding ?? {};
  const last = e.lastTimestamp ?? e.deprecatedLastTimestamp ?? e.eventTime ?? e.series?.lastObservedTime ?? e.metadata?.creationTimestamp;
  const first = e.firstTimestamp ?? e.deprecatedFirstTimestamp ?? e.eventTime;
  const since = (t: string | undefined) => (t ? humanDuration(Date.now() - Date.parse(t)) : '<unknown>');
  const source = e.source?.component ?? e.deprecatedSource?.component ?? e.reportingComponent ?? e.reportingController ?? '';
  return [
    since(last),
    e.type ?? '',
    e.reason ?? '',
    `${String(involved.kind ?? '').toLowerCase()}/${involved.name ?? ''}`,
    involved.fieldPath ?? '',
    source,
    (e.message ?? e.note ?? '').trim(),
    since(first),
    e.count ?? e.deprecatedCount ?? e.series?.count ?? 1,
    e.metadata.name,
  ];
}

const printers: Record<string, Printer> = {
  '/events': {
    columns: [col('Last Seen'), col('Type'), col('Reason'), col('Object'), col('Subobject', 'string', '', 1), col('Source', 'string', '', 1), col('Message'), col('First Seen', 'string', '', 1), col('Count', 'string', '', 1), col('Name', 'string', '', 1)],
    cells: eventCells,
  },
  '/services': {
    // descriptions: the swagger docs of the fields (printers.go columns via the OpenAPI docs)
    columns: [nameCol, col('Type', 'string', '', 0, "type determines how the Service is exposed. Defaults to ClusterIP. Valid options are ExternalName, ClusterIP, NodePort, and LoadBalancer. \"ClusterIP\" allocates a cluster-internal IP address for load-balancing to endpoints. Endpoints are determined by the selector or if that is not specified, by manual construction of an Endpoints object or EndpointSlice objects. If clusterIP is \"None\", no virtual IP is allocated and the endpoints are published as a set of endpoints rather than a virtual IP. \"NodePort\" builds on ClusterIP and allocates a port on every node which routes to the same endpoints as the clusterIP. \"LoadBalancer\" builds on NodePort and creates an external load-balancer (if supported in the current cloud) which routes to the same endpoints as the clusterIP. \"ExternalName\" aliases this service to the specified externalName. Several other fields do not apply to ExternalName services. More info: https://kubernetes.io/docs/concepts/services-networking/service/#publishing-services-service-types"), col('Cluster-IP', 'string', '', 0, "clusterIP is the IP address of the service and is usually assigned randomly. If an address is specified manually, is in-range (as per system configuration), and is not in use, it will be allocated to the service; otherwise creation of the service will fail. This field may not be changed through updates unless the type field is also being changed to ExternalName (which requires this field to be blank) or the type field is being changed from ExternalName (in which case this field may optionally be specified, as describe above).  Valid values are \"None\", empty string (\"\"), or a valid IP address. Setting this to \"None\" makes a \"headless service\" (no virtual IP), which is useful when direct endpoint connections are preferred and proxying is not required.  Only applies to types ClusterIP, NodePort, and LoadBalancer. If this field is specified when creating a Service of type ExternalName, creation will fail. This field will be wiped when updating a Service to type ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies"), col('External-IP', 'string', '', 0, "externalIPs is a list of IP addresses for which nodes in the cluster will also accept traffic for this service.  These IPs are not managed by Kubernetes.  The user is responsible for ensuring that traffic arrives at a node with this IP.  A common example is external load-balancers that are not part of the Kubernetes system."), col('Port(s)', 'string', '', 0, "The list of ports that are exposed by this service. More info: https://kubernetes.io/docs/concepts/services-networking/service/#virtual-ips-and-service-proxies"), ageCol, col('Selector', 'string', '', 1, "Route service traffic to pods with label keys and values matching this selector. If empty or not present, the service is assumed to have an external process managing its endpoints, which Kubernetes will not modify. Only applies to types ClusterIP, NodePort, and LoadBalancer. Ignored if type is ExternalName. More info: https://kubernetes.io/docs/concepts/services-networking/service/")],
    cells: (s) => [s.metadata.name, s.spec?.type ?? '', s.spec?.clusterIP || '<none>', serviceExternalIP(s), servicePorts(s), age(s), selectorString(s.spec?.selector)],
  },
  '/namespaces': {
    columns: [nameCol, col('Status', 'string', '', 0, 'The status of the namespace'), ageCol],
    cells: (n) => [n.metadata.name, n.status?.phase ?? '', age(n)],
  },
  '/configmaps': {
    columns: [nameCol, col('Data', 'string', '', 0, "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not overlap with the keys in the BinaryData field, this is enforced during validation process."), ageCol],
    cells: (c) => [c.metadata.name, Object.keys(c.data ?? {}).length + Object.keys(c.binaryData ?? {}).length, age(c)],
  },
  '/secrets': {
    columns: [nameCol, col('Type', 'string'), col('Data', 'string'), ageCol],
    cells: (c) => [c.metadata.name, c.type ?? 'Opaque', Object.keys(c.data ?? {}).length, age(c)],
  },
  'apps/deployments': {
    columns: [nameCol, col('Ready', 'string'), col('Up-to-date', 'string'), col('Available', 'string'), ageCol],
    cells: (d) => [d.metadata.name, `${d.status?.readyReplicas ?? 0}/${d.spec?.replicas ?? 1}`, d.status?.updatedReplicas ?? 0, d.status?.availableReplicas ?? 0, age(d)],
  },
  'coordination.k8s.io/leases': {
    columns: [nameCol, col('Holder', 'string'), ageCol],
    cells: (l) => [l.metadata.name, l.spec?.holderIdentity ?? '', age(l)],
  },
  'admissionregistration.k8s.io/mutatingwebhookconfigurations': {
    columns: [nameCol, col('Webhooks', 'integer'), ageCol],
    cells: (w) => [w.metadata.name, (w.webhooks ?? []).length, age(w)],
  },
  'admissionregistration.k8s.io/validatingwebhookconfigurations': {
    columns: [nameCol, col('Webhooks', 'integer'), ageCol],
    cells: (w) => [w.metadata.name, (w.webhooks ?? []).length, age(w)],
  },
};

const defaultPrinter: Printer = {
  columns: [nameCol, col('Created At', 'date', '', 0, 'CreationTimestamp is a timestamp representing the server time when this object was created.')],
  cells: (o) => [o.metadata.name, o.metadata?.creationTimestamp ?? ''],
};

/** A simple JSONPath evaluator for CRD printer columns (".spec.x", ".status.conditions[0].type"). */
function evalJsonPath(obj: KubeObject, path: string): unknown {
  let p = path.trim();
  if (p.startsWith('{') && p.endsWith('}')) p = p.slice(1, -1);
  if (p.startsWith('$')) p = p.slice(1);
  const tokens = [...p.matchAll(/\.([^.[\]]+)|\[(\d+|'[^']*'|"[^"]*")\]/g)].map((m) => m[1] ?? m[2]!.replace(/^['"]|['"]$/g, ''));
  let cur: unknown = obj;
  for (const t of tokens) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = Array.isArray(cur) ? cur[Number(t)] : (cur as Record<string, unknown>)[t];
  }
  return cur;
}

function crdPrinter(columns: PrinterColumn[]): Printer {
  const cols = [nameCol, ...columns.map((c) => col(c.name, c.type, c.format ?? '', c.priority ?? 0, c.description || `Custom resource definition column (in JSONPath format): ${c.jsonPath}`))];
  return {
    columns: cols,
    cells: (o) => [
      o.metadata.name,
      ...columns.map((c) => {
        const v = evalJsonPath(o, c.jsonPath);
        if (v === undefined || v === null) return null;
        if (c.type === 'date' && typeof v === 'string') return humanDuration(Date.now() - Date.parse(v));
        if (typeof v === 'object') return JSON.stringify(v);
        return v;
      }),
    ],
  };
}

function printerFor(def: ResourceDef): Printer {
  if (def.crd) {
    // A CRD without additionalPrinterColumns gets the Age column (apiextensions defaulting).
    const cols = def.crd.printerColumns.length ? def.crd.printerColumns : [{ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' }];
    return crdPrinter(cols);
  }
  if (def.storageGr === 'apiextensions.k8s.io/customresourcedefinitions') return defaultPrinter;
  return printers[def.storageGr] ?? defaultPrinter;
}

export function rowObject(obj: KubeObject, includeObject: string): unknown {
  if (includeObject === 'None') return undefined;
  if (includeObject === 'Object') return obj;
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: obj.metadata };
}

export function toTable(def: ResourceDef, objects: KubeObject[], listMeta: KubeObject, includeObject = 'Metadata', withColumns = true): KubeObject {
  const printer = printerFor(def);
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: listMeta,
    ...(withColumns ? { columnDefinitions: printer.columns } : {}),
    rows: objects.map((o) => {
      const row: KubeObject = { cells: printer.cells(o) };
      const ro = rowObject(o, includeObject);
      if (ro !== undefined) row.object = ro;
      return row;
    }),
  };
}
