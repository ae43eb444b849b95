// Generates CustomResourceDefinitions from the zod schemas. zod emits JSON Schema draft 2020-12;
// a CRD takes a structural OpenAPI v3 subset: no $schema, no propertyNames, no
// additionalProperties:false, integers without JS-specific bounds, every object typed.
import { z } from 'zod';
import { stringify } from 'yaml';
import { API_GROUP, API_VERSION, crdDefinitions, type CrdDefinition } from './schemas.ts';

type Json = Record<string, unknown>;

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** Converts one JSON Schema node to its structural OpenAPI v3 equivalent. */
export function toStructural(node: Json): Json {
  const out: Json = {};
  for (const [key, value] of Object.entries(node)) {
    switch (key) {
      case '$schema':
      case 'propertyNames':
      case '$id':
        break;
      case 'additionalProperties':
        if (value === false) break; // Kubernetes prunes unknown fields itself.
        out[key] = typeof value === 'object' ? toStructural(value as Json) : value;
        break;
      case 'properties':
        out[key] = Object.fromEntries(Object.entries(value as Json).map(([k, v]) => [k, toStructural(v as Json)]));
        break;
      case 'items':
        out[key] = toStructural(value as Json);
        break;
      case 'maximum':
      case 'minimum':
        if (Math.abs(value as number) !== MAX_SAFE) out[key] = value;
        break;
      default:
        out[key] = value;
    }
  }
  if (Array.isArray(out.anyOf) || Array.isArray(out.oneOf)) {
    throw new Error(`unions are not structural: ${JSON.stringify(node).slice(0, 120)}`);
  }
  return out;
}

export function schemaOf(type: z.ZodType): Json {
  return toStructural(z.toJSONSchema(type, { io: 'input', unrepresentable: 'throw' }) as Json);
}

export function buildCrd(def: CrdDefinition): Json {
  const properties: Json = {
    apiVersion: { type: 'string' },
    kind: { type: 'string' },
    metadata: { type: 'object' },
    spec: schemaOf(def.spec),
  };
  if (def.status) properties.status = schemaOf(def.status);
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${def.plural}.${API_GROUP}`, labels: { 'app.kubernetes.io/part-of': 'admitlb' } },
    spec: {
      group: API_GROUP,
      names: { kind: def.kind, listKind: `${def.kind}List`, plural: def.plural, singular: def.singular, shortNames: def.shortNames, categories: def.categories },
      scope: def.scope,
      versions: [
        {
          name: API_VERSION,
          served: true,
          storage: true,
          ...(def.status ? { subresources: { status: {} } } : {}),
          additionalPrinterColumns: def.printerColumns,
          schema: { openAPIV3Schema: { type: 'object', required: ['spec'], properties, ...(def.validations?.length ? { 'x-kubernetes-validations': def.validations } : {}) } },
        },
      ],
    },
  };
}

/** The committed webhook-manifests/crds.yaml, byte for byte. */
export function renderCrdsYaml(): string {
  const header = '# Generated from src/config/schemas.ts by `npm run gen:crds`. Do not edit by hand.\n';
  return header + crdDefinitions.map((d) => `---\n${stringify(buildCrd(d), { lineWidth: 0 })}`).join('');
}
