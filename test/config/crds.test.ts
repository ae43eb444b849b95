import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { renderCrdsYaml } from '../../src/config/crds.ts';

const committed = readFileSync(new URL('../../webhook-manifests/crds.yaml', import.meta.url), 'utf8');

/** Walks a schema and returns the paths that break Kubernetes' structural-schema rules. */
function structuralProblems(node: any, path = ''): string[] {
  const problems: string[] = [];
  if (node === null || typeof node !== 'object') return problems;
  for (const bad of ['$schema', 'propertyNames', 'anyOf', 'oneOf', '$ref']) if (bad in node) problems.push(`${path}: ${bad}`);
  if (node.additionalProperties === false) problems.push(`${path}: additionalProperties false`);
  if (!('type' in node) && !node['x-kubernetes-int-or-string'] && !node['x-kubernetes-preserve-unknown-fields']) problems.push(`${path}: no type`);
  for (const [k, v] of Object.entries(node.properties ?? {})) problems.push(...structuralProblems(v, `${path}.${k}`));
  if (node.items) problems.push(...structuralProblems(node.items, `${path}[]`));
  if (typeof node.additionalProperties === 'object') problems.push(...structuralProblems(node.additionalProperties, `${path}{}`));
  return problems;
}

describe('CRDs generated from the zod schemas', () => {
  it('the committed webhook-manifests/crds.yaml is up to date (run npm run gen:crds)', () => {
    assert.equal(committed, renderCrdsYaml());
  });

  it('every schema is structural and carries the defaults', () => {
    const docs = parseAllDocuments(committed).map((d) => d.toJS());
    assert.deepEqual(docs.map((d) => d.spec.names.kind), ['IPPool', 'IPClaim']);
    for (const crd of docs) {
      const schema = crd.spec.versions[0].schema.openAPIV3Schema;
      assert.deepEqual(structuralProblems(schema), [], crd.metadata.name);
    }
    const pool = docs[0].spec.versions[0].schema.openAPIV3Schema.properties.spec.properties;
    assert.equal(pool.autoAssign.default, true);
    assert.equal(pool.avoidBuggyIPs.default, false);
    assert.deepEqual(pool.usage.default, ['LoadBalancer']);
    assert.deepEqual(pool.usage.items.enum, ['LoadBalancer', 'ExternalIP']);
    assert.equal(docs[0].spec.scope, 'Cluster');
    assert.deepEqual(docs[1].spec.names.shortNames, ['ipc']);
    assert.ok(docs[1].spec.versions[0].additionalPrinterColumns.some((c: any) => c.jsonPath === '.spec.heldBy'));
  });
});
