// Shared by the migrate tests: what every output of `migrate` must satisfy.
import assert from 'node:assert/strict';
import type { z } from 'zod';
import { bgpAdvertisementSchema, bgpPeerSchema, ipPoolSchema, l2AdvertisementSchema } from '../../src/config/schemas.ts';
import type { MigrateResult } from '../../src/migrate/metallb.ts';

const SCHEMAS: Record<string, z.ZodType> = {
  IPPool: ipPoolSchema,
  BGPPeer: bgpPeerSchema,
  L2Advertisement: l2AdvertisementSchema,
  BGPAdvertisement: bgpAdvertisementSchema,
};
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * Every emitted document is valid: admitlb kinds parse with their schema, Secrets are where the
 * speaker reads BGP passwords (admitlb-system, key "password"), every passwordSecretRef names one.
 */
export function assertValid(result: MigrateResult) {
  for (const o of result.objects) {
    const where = `${o.kind} ${String(o.metadata.name)}`;
    assert.ok(DNS_SUBDOMAIN.test(String(o.metadata.name)), `${where}: name`);
    if (o.kind === 'Secret') {
      assert.equal(o.apiVersion, 'v1');
      assert.equal(o.metadata.namespace, 'admitlb-system', where);
      const data = { ...(o.data as object), ...(o.stringData as object) };
      assert.ok('password' in data, `${where}: key "password"`);
      continue;
    }
    assert.equal(o.apiVersion, 'admitlb.io/v1alpha1', where);
    const schema = SCHEMAS[o.kind];
    assert.ok(schema, `${where}: unexpected kind`);
    const parsed = schema.safeParse(o);
    assert.ok(parsed.success, `${where}: ${JSON.stringify(parsed.error?.issues)}`);
    assert.equal(o.metadata.namespace, undefined, `${where}: admitlb objects are cluster-scoped`);
    const spec = o.spec as Record<string, unknown>;
    assert.equal(spec.password, undefined, `${where}: a plaintext password is never emitted`);
    if (o.kind === 'BGPPeer' && spec.passwordSecretRef !== undefined) {
      // The field another change adds to BGPPeer: {name, namespace?}, Secret key "password", namespace
      // admitlb-system. Until the schema has it, zod strips it; once it does, it must come through.
      const ref = spec.passwordSecretRef as { name: string; namespace?: string };
      assert.deepEqual(Object.keys(ref).sort(), ['name', 'namespace']);
      assert.ok(DNS_SUBDOMAIN.test(ref.name));
      assert.equal(ref.namespace, 'admitlb-system');
      const out = (parsed.data as { spec: Record<string, unknown> }).spec;
      if ('passwordSecretRef' in out) assert.deepEqual(out.passwordSecretRef, ref);
      const secret = result.objects.find((s) => s.kind === 'Secret' && s.metadata.name === ref.name);
      assert.ok(secret || result.notes.some((n) => n.includes(`admitlb-system/${ref.name}`)), `${where}: Secret ${ref.name} neither emitted nor announced`);
    }
  }
  // Apply order: what others refer to first.
  const order = ['IPPool', 'Secret', 'BGPPeer', 'L2Advertisement', 'BGPAdvertisement'];
  const ranks = result.objects.map((o) => order.indexOf(o.kind));
  assert.deepEqual(ranks, [...ranks].sort((a, b) => a - b));
}

