// The verified-assignment memo: a token is verified once per Service, never reused for another
// token, and never after the token's own expiry.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { VerifiedMemo } from '../../src/signing/memo.ts';

describe('VerifiedMemo', () => {
  const world = () => {
    let nowMs = 1_000_000;
    const memo = new VerifiedMemo<string | undefined>(() => nowMs);
    return { memo, advance: (ms: number) => (nowMs += ms) };
  };

  it('answers for the same key and token only', () => {
    const { memo } = world();
    memo.remember('ns/a', 'tok1', 'A');
    assert.deepEqual(memo.lookup('ns/a', 'tok1'), { value: 'A' });
    assert.equal(memo.lookup('ns/a', 'tok2'), undefined, 'another token is verified again');
    assert.equal(memo.lookup('ns/b', 'tok1'), undefined, 'another Service is verified again');
  });

  it('remembers a failed verification (undefined) as an answer, distinct from a miss', () => {
    const { memo } = world();
    memo.remember('ns/a', 'bad', undefined);
    assert.deepEqual(memo.lookup('ns/a', 'bad'), { value: undefined });
  });

  it('an expiring token is a miss from its exp on, and its entry is dropped', () => {
    const { memo, advance } = world();
    memo.remember('ns/a', 'tok', 'A', { expiresAt: 1_000 + 30 });
    advance(29_000);
    assert.deepEqual(memo.lookup('ns/a', 'tok'), { value: 'A' }, 'before exp');
    advance(1_000);
    assert.equal(memo.lookup('ns/a', 'tok'), undefined, 'at exp');
    assert.equal(memo.size, 0);
  });

  it('a token without exp stays valid however long it is remembered', () => {
    const { memo, advance } = world();
    memo.remember('ns/a', 'tok', 'A', { expiresAt: undefined });
    advance(10 * 365 * 86_400_000);
    assert.deepEqual(memo.lookup('ns/a', 'tok'), { value: 'A' });
  });

  it('retain drops the Services that are gone; forget drops one', () => {
    const { memo } = world();
    memo.remember('ns/a', 't', 'A');
    memo.remember('ns/b', 't', 'B');
    memo.remember('ns/c', 't', 'C');
    memo.retain(new Set(['ns/a', 'ns/c']));
    memo.forget('ns/c');
    assert.equal(memo.size, 1);
    assert.equal(memo.tokenOf('ns/a'), 't');
    assert.equal(memo.tokenOf('ns/b'), undefined);
  });
});
