// The coded-error catalogue: codes are unique and stable in shape, and README's table lists each
// with the status the webhook answers (so the documentation cannot drift from the code).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERRORS } from '../../src/errors.ts';

describe('the coded-error catalogue', () => {
  it('every code is unique and ADMITLB_ upper case; every status is an HTTP error status', () => {
    const codes = Object.values(ERRORS).map((e) => e.code);
    assert.equal(new Set(codes).size, codes.length, 'duplicate codes');
    for (const e of Object.values(ERRORS)) {
      assert.match(e.code, /^ADMITLB_[A-Z_]+$/);
      assert.ok(e.status >= 400 && e.status <= 599, `${e.code}: status ${e.status}`);
    }
  });

  it("README's table lists every code with its status and reason, and nothing else", () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const rows = [...readme.matchAll(/^\| `(ADMITLB_[A-Z_]+)` \| (\d{3}) (\w+) \|/gm)].map((m) => `${m[1]} ${m[2]} ${m[3]}`);
    assert.deepEqual(rows.sort(), Object.values(ERRORS).map((e) => `${e.code} ${e.status} ${e.reason}`).sort());
  });
});
