// The resource types the double serves: built-ins and CRD-defined kinds (registered when a CRD is stored).
import type { KubeObject } from './store.ts';

export interface PrinterColumn {
  name: string;
  type: string;
  format?: string;
  description?: string;
  priority?: number;
  jsonPath: string;
}

export interface CrdVersionInfo {
  /** openAPIV3Schema of this version */
  schema?: KubeObject;
  printerColumns: PrinterColumn[];
  crdName: string;
}

export interface ResourceDef {
  group: string;
  version: string;
  /** plural */
  resource: string;
  kind: string;
  singular: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  /** subresources served (only "status" here) */
  subresources: string[];
  verbs: string[];
  /** rest.RESTUpdateStrategy.AllowCreateOnUpdate */
  allowCreateOnUpdate: boolean;
  /** rest.RESTUpdateStrategy.AllowUnconditionalUpdate */
  allowUnconditionalUpdate: boolean;
  /** metadata.generation maintained (1 on create, +1 on spec change) */
  tracksGeneration: boolean;
  /** status is reset on create and only writable through /status */
  statusSubresource: boolean;
  /** storage key shared by several API versions/groups (events) */
  storageGr: string;
  crd?: CrdVersionInfo;
  /** conversion between storage form and this version (events.k8s.io/v1 ↔ core/v1) */
  toStorage?: (obj: KubeObject) => KubeObject;
  fromStorage?: (obj: KubeObject) => KubeObject;
}

export const standardVerbs = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];

export function apiVersionOf(def: { group: string; version: string }): string {
  return def.group ? `${def.group}/${def.version}` : def.version;
}

function builtin(p: Partial<ResourceDef> & Pick<ResourceDef, 'group' | 'version' | 'resource' | 'kind' | 'namespaced'>): ResourceDef {
  return {
    singular: p.kind.toLowerCase(),
    shortNames: [],
    categories: [],
    subresources: [],
    verbs: standardVerbs,
    allowCreateOnUpdate: false,
    allowUnconditionalUpdate: true,
    tracksGeneration: false,
    statusSubresource: false,
    storageGr: `${p.group}/${p.resource}`,
    ...p,
  };
}

// core/v1 Event fields ↔ events.k8s.io/v1 Event fields (pkg/apis/events/v1/conversion.go)
const eventFieldMap: [string, string][] = [
  ['involvedObject', 'regarding'],
  ['message', 'note'],
  ['source', 'deprecatedSource'],
  ['firstTimestamp', 'deprecatedFirstTimestamp'],
  ['lastTimestamp', 'deprecatedLastTimestamp'],
  ['count', 'deprecatedCount'],
  ['reportingComponent', 'reportingController'],
];

function eventsV1ToCore(obj: KubeObject): KubeObject {
  const out: KubeObject = { ...obj, apiVersion: 'v1', kind: 'Event' };
  for (const [core, ev] of eventFieldMap) {
    delete out[ev];
    if (obj[ev] !== undefined) out[core] = obj[ev];
  }
  return out;
}

function coreToEventsV1(obj: KubeObject): KubeObject {
  const out: KubeObject = { ...obj, apiVersion: 'events.k8s.io/v1', kind: 'Event' };
  for (const [core, ev] of eventFieldMap) {
    delete out[core];
    if (obj[core] !== undefined) out[ev] = obj[core];
  }
  return out;
}

export const builtinResources: ResourceDef[] = [
  builtin({ group: '', version: 'v1', resource: 'namespaces', kind: 'Namespace', namespaced: false, shortNames: ['ns'], subresources: ['status'], verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'] }),
  builtin({ group: '', version: 'v1', resource: 'services', kind: 'Service', namespaced: true, shortNames: ['svc'], categories: ['all'], subresources: ['status'], statusSubresource: true }),
  // Stored only (no scheduler, no kubelet): external-dns's service source lists and watches them.
  builtin({ group: '', version: 'v1', resource: 'pods', kind: 'Pod', namespaced: true, shortNames: ['po'], categories: ['all'], subresources: ['status'], statusSubresource: true }),
  builtin({ group: '', version: 'v1', resource: 'nodes', kind: 'Node', namespaced: false, shortNames: ['no'], subresources: ['status'], statusSubresource: true }),
  builtin({ group: '', version: 'v1', resource: 'events', kind: 'Event', namespaced: true, shortNames: ['ev'], allowCreateOnUpdate: true, storageGr: '/events' }),
  builtin({ group: '', version: 'v1', resource: 'secrets', kind: 'Secret', namespaced: true }),
  builtin({ group: '', version: 'v1', resource: 'configmaps', kind: 'ConfigMap', namespaced: true, shortNames: ['cm'] }),
  builtin({ group: 'events.k8s.io', version: 'v1', resource: 'events', kind: 'Event', namespaced: true, shortNames: ['ev'], allowCreateOnUpdate: true, storageGr: '/events', toStorage: eventsV1ToCore, fromStorage: coreToEventsV1 }),
  builtin({ group: 'discovery.k8s.io', version: 'v1', resource: 'endpointslices', kind: 'EndpointSlice', namespaced: true, allowCreateOnUpdate: true }),
  builtin({ group: 'coordination.k8s.io', version: 'v1', resource: 'leases', kind: 'Lease', namespaced: true, allowCreateOnUpdate: true }),
  builtin({ group: 'apps', version: 'v1', resource: 'deployments', kind: 'Deployment', namespaced: true, shortNames: ['deploy'], categories: ['all'], subresources: ['status'], statusSubresource: true, tracksGeneration: true }),
  builtin({ group: 'apiextensions.k8s.io', version: 'v1', resource: 'customresourcedefinitions', kind: 'CustomResourceDefinition', namespaced: false, shortNames: ['crd', 'crds'], categories: ['api-extensions'], subresources: ['status'], statusSubresource: true, tracksGeneration: true }),
  builtin({ group: 'admissionregistration.k8s.io', version: 'v1', resource: 'mutatingwebhookconfigurations', kind: 'MutatingWebhookConfiguration', namespaced: false, categories: ['api-extensions'], tracksGeneration: true }),
  builtin({ group: 'admissionregistration.k8s.io', version: 'v1', resource: 'validatingwebhookconfigurations', kind: 'ValidatingWebhookConfiguration', namespaced: false, categories: ['api-extensions'], tracksGeneration: true }),
  builtin({ group: 'admissionregistration.k8s.io', version: 'v1', resource: 'validatingadmissionpolicies', kind: 'ValidatingAdmissionPolicy', namespaced: false, categories: ['api-extensions'], subresources: ['status'], statusSubresource: true, tracksGeneration: true }),
  builtin({ group: 'admissionregistration.k8s.io', version: 'v1', resource: 'validatingadmissionpolicybindings', kind: 'ValidatingAdmissionPolicyBinding', namespaced: false, categories: ['api-extensions'], tracksGeneration: true }),
];

/** Lookup of served resources, rebuilt when CRDs change. */
export class ResourceRegistry {
  private crdDefs: ResourceDef[] = [];

  all(): ResourceDef[] {
    return [...builtinResources, ...this.crdDefs];
  }

  setCrdDefs(defs: ResourceDef[]): void {
    this.crdDefs = defs;
  }

  find(group: string, version: string, resource: string): ResourceDef | undefined {
    return this.all().find((d) => d.group === group && d.version === version && d.resource === resource);
  }

  /** Group/versions in preference order for discovery (builtin group order first, then CRD groups). */
  groups(): { group: string; versions: string[] }[] {
    const out: { group: string; versions: string[] }[] = [];
    for (const d of this.all()) {
      let g = out.find((x) => x.group === d.group);
      if (!g) out.push((g = { group: d.group, versions: [] }));
      if (!g.versions.includes(d.version)) g.versions.push(d.version);
    }
    return out;
  }
}
