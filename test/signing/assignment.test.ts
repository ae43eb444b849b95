import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signAssignment, verifyAssignment, loadKeySet, keySetFromJwks, VerificationError } from '../../src/signing/assignment.ts';
import { generateSigningKey, writeSigningKey } from '../../src/certs/generate.ts';
import { testKeys } from '../helpers/state.ts';

const a = { namespace: 'default', name: 'web', ips: ['203.0.113.5'], pool: 'default', externalIPs: [] };
const reason = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'verified';
  } catch (err) {
    assert.ok(err instanceof VerificationError, String(err));
    return err.reason;
  }
};

describe('signed assignments', () => {
  it('round-trips the assignment', async () => {
    const { keys } = await testKeys();
    const v = await verifyAssignment(keys, await signAssignment(keys, a), { namespace: 'default', name: 'web' });
    assert.deepEqual([v.namespace, v.name, v.ips, v.pool], ['default', 'web', ['203.0.113.5'], 'default']);
    assert.equal(v.kid, keys.signingKid);
  });
  it('refuses another Service', async () => {
    const { keys } = await testKeys();
    assert.equal(await reason(verifyAssignment(keys, await signAssignment(keys, a), { namespace: 'other', name: 'web' })), 'wrong-service');
  });
  it('refuses a key it does not know', async () => {
    const mine = await testKeys();
    const theirs = await testKeys();
    assert.equal(await reason(verifyAssignment(mine.keys, await signAssignment(theirs.keys, a), { namespace: 'default', name: 'web' })), 'unknown-key');
  });
  it('refuses a tampered payload', async () => {
    const { keys } = await testKeys();
    const [h, p, s] = (await signAssignment(keys, a)).split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString());
    payload.ips = ['203.0.113.66'];
    const forged = [h, Buffer.from(JSON.stringify(payload)).toString('base64url'), s].join('.');
    assert.equal(await reason(verifyAssignment(keys, forged, { namespace: 'default', name: 'web' })), 'bad-signature');
  });
  it('refuses garbage', async () => {
    const { keys } = await testKeys();
    assert.equal(await reason(verifyAssignment(keys, 'not-a-jws', { namespace: 'default', name: 'web' })), 'malformed');
  });
  it('refuses an expired assignment and one older than maxAge', async () => {
    const { keys } = await testKeys();
    const now = Date.now();
    const token = await signAssignment(keys, a, { now: now - 120_000, ttlSeconds: 60 });
    assert.equal(await reason(verifyAssignment(keys, token, { namespace: 'default', name: 'web' }, { now })), 'expired');
    const old = await signAssignment(keys, a, { now: now - 3_600_000 });
    assert.equal(await reason(verifyAssignment(keys, old, { namespace: 'default', name: 'web' }, { now, maxAgeSeconds: 600 })), 'expired');
  });
  it('rotation: the active key signs, the old key still verifies', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'admitlb-keys-'));
    try {
      const oldKey = await generateSigningKey();
      await writeSigningKey(dir, oldKey);
      const before = await loadKeySet(dir);
      const oldToken = await signAssignment(before, a);
      const newKey = await generateSigningKey();
      await writeSigningKey(dir, newKey);
      const after = await loadKeySet(dir);
      assert.equal(after.signingKid, newKey.kid);
      assert.equal((await verifyAssignment(after, oldToken, { namespace: 'default', name: 'web' })).kid, oldKey.kid);
      const verifyOnly = await keySetFromJwks([{ jwk: newKey.publicJwk }]);
      assert.equal(await reason(verifyAssignment(verifyOnly, oldToken, { namespace: 'default', name: 'web' })), 'unknown-key');
      await assert.rejects(verifyOnly.sign(new Uint8Array()), /no private signing key/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
