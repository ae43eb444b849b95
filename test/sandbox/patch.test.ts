// The patch formats' results as the registry stores them: an object, or a clear error.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyMergePatch, patchedObject, PatchError, strategicMerge } from '../../src/sandbox/patch.ts';

describe('patchedObject', () => {
  const live = { metadata: { name: 'a', labels: { x: '1' } }, spec: { b: 2 } };
  const cases: { name: string; result: () => unknown; want: object | typeof PatchError }[] = [
    { name: 'merge patch of fields', result: () => applyMergePatch(live, { metadata: { labels: { x: null, y: '2' } } }), want: { metadata: { name: 'a', labels: { y: '2' } }, spec: { b: 2 } } },
    { name: 'strategic merge of fields', result: () => strategicMerge(live, { spec: { c: 3 } }), want: { metadata: { name: 'a', labels: { x: '1' } }, spec: { b: 2, c: 3 } } },
    { name: 'merge patch that is a list', result: () => applyMergePatch(live, [1]), want: PatchError },
    { name: 'merge patch that is a string', result: () => applyMergePatch(live, 'x'), want: PatchError },
    { name: 'strategic merge that is null', result: () => strategicMerge(live, null), want: PatchError },
  ];
  for (const c of cases) {
    it(c.name, () => {
      if (c.want === PatchError) assert.throws(() => patchedObject(c.result()), PatchError);
      else assert.deepEqual(patchedObject(c.result()), c.want);
    });
  }
});
