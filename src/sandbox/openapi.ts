// Minimal OpenAPI v3 (kube-openapi handler3): enough for kubectl's field-validation check
// (cli-runtime/pkg/resource/query_param_verifier_v3.go looks for a PATCH operation with
// x-kubernetes-group-version-kind and a "fieldValidation" parameter). Schemas are published for CRDs
// (their openAPIV3Schema) and left empty for built-ins.
import { createHash } from 'node:crypto';
import type { ResourceDef, ResourceRegistry } from './resources.ts';

function gvPath(group: string, version: string): string {
  return group ? `apis/${group}/${version}` : `api/${version}`;
}

function gvDocument(defs: ResourceDef[], group: string, version: string): Record<string, unknown> {
  const paths: Record<string, unknown> = {};
  const schemas: Record<string, unknown> = {};
  const params = [
    { name: 'dryRun', in: 'query', schema: { type: 'string', uniqueItems: true } },
    { name: 'fieldManager', in: 'query', schema: { type: 'string', uniqueItems: true } },
    { name: 'fieldValidation', in: 'query', schema: { type: 'string', uniqueItems: true } },
    { name: 'force', in: 'query', schema: { type: 'boolean', uniqueItems: true } },
  ];
  for (const d of defs) {
    const base = `/${gvPath(group, version)}${d.namespaced ? '/namespaces/{namespace}' : ''}/${d.resource}`;
    const gvk = { group, version, kind: d.kind };
    const schemaName = `${group ? group.split('.').reverse().join('.') : 'io.k8s.api.core'}.${version}.${d.kind}`;
    schemas[schemaName] = d.crd?.schema ? { ...d.crd.schema, 'x-kubernetes-group-version-kind': [gvk] } : { type: 'object', 'x-kubernetes-group-version-kind': [gvk] };
    const ref = { content: { 'application/json': { schema: { $ref: `#/components/schemas/${schemaName}` } } } };
    paths[`${base}/{name}`] = {
      get: { operationId: `read${d.kind}`, 'x-kubernetes-action': 'get', 'x-kubernetes-group-version-kind': gvk, responses: { '200': { description: 'OK', ...ref } } },
      put: { operationId: `replace${d.kind}`, 'x-kubernetes-action': 'put', 'x-kubernetes-group-version-kind': gvk, parameters: params.filter((x) => x.name !== 'force'), requestBody: ref, responses: { '200': { description: 'OK', ...ref } } },
      // query_param_verifier_v3.go reads the PATCH operation's own parameters
      patch: { operationId: `patch${d.kind}`, 'x-kubernetes-action': 'patch', 'x-kubernetes-group-version-kind': gvk, parameters: params, responses: { '200': { description: 'OK', ...ref } } },
      delete: { operationId: `delete${d.kind}`, 'x-kubernetes-action': 'delete', 'x-kubernetes-group-version-kind': gvk, responses: { '200': { description: 'OK' } } },
      // kube-openapi puts the path's own parameters here and the write options on each operation
      parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string', uniqueItems: true } }, ...pathParams(d.namespaced)],
    };
    paths[base] = {
      get: { operationId: `list${d.kind}`, 'x-kubernetes-action': 'list', 'x-kubernetes-group-version-kind': gvk, responses: { '200': { description: 'OK' } } },
      post: { operationId: `create${d.kind}`, 'x-kubernetes-action': 'post', 'x-kubernetes-group-version-kind': gvk, parameters: params.filter((x) => x.name !== 'force'), requestBody: ref, responses: { '201': { description: 'Created', ...ref } } },
      parameters: pathParams(d.namespaced),
    };
  }
  return { openapi: '3.0.0', info: { title: 'Kubernetes', version: 'v1.32.4' }, paths, components: { schemas } };
}

function pathParams(namespaced: boolean): Record<string, unknown>[] {
  return [
    ...(namespaced ? [{ name: 'namespace', in: 'path', required: true, schema: { type: 'string', uniqueItems: true } }] : []),
    { name: 'pretty', in: 'query', schema: { type: 'string', uniqueItems: true } },
  ];
}

export class OpenApiV3 {
  constructor(private readonly registry: ResourceRegistry) {}

  private docs(): Map<string, { doc: Record<string, unknown>; hash: string }> {
    const out = new Map<string, { doc: Record<string, unknown>; hash: string }>();
    for (const g of this.registry.groups()) {
      for (const v of g.versions) {
        const defs = this.registry.all().filter((d) => d.group === g.group && d.version === v);
        const doc = gvDocument(defs, g.group, v);
        const hash = createHash('sha512').update(JSON.stringify(doc)).digest('hex').slice(0, 128).toUpperCase();
        out.set(gvPath(g.group, v), { doc, hash });
      }
    }
    return out;
  }

  root(): Record<string, unknown> {
    const paths: Record<string, unknown> = {};
    for (const [p, { hash }] of this.docs()) paths[p] = { serverRelativeURL: `/openapi/v3/${p}?hash=${hash}` };
    return { paths };
  }

  groupVersion(path: string): Record<string, unknown> | undefined {
    return this.docs().get(path)?.doc;
  }
}
