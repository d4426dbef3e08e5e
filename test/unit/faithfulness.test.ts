import { it as test } from 'node:test';
import assert from 'node:assert/strict';
import { copyPatches, curveArea, patchOrderByRelevance, randomPatchOrder, stepPatchCounts } from '../../src/core/faithfulness';

test('patches are ordered most relevant first, ties by lower index', () => {
  assert.deepEqual(patchOrderByRelevance([0.1, 0.9, 0.5, 0.9, 0]), [1, 3, 2, 0, 4]);
  assert.deepEqual(patchOrderByRelevance(new Float32Array([0, 0, 0])), [0, 1, 2]);
});

test('a non-finite relevance value is refused by index', () => {
  assert.throws(() => patchOrderByRelevance([0.2, Number.NaN]), /value 1 is not a finite number/);
});

test('step counts run from 0 to every patch in the requested number of steps', () => {
  assert.deepEqual(stepPatchCounts(196, 4), [0, 49, 98, 147, 196]);
  const counts = stepPatchCounts(196);
  assert.equal(counts.length, 21);
  assert.equal(counts[0], 0);
  assert.equal(counts[20], 196);
  for (let k = 1; k < counts.length; k++) assert.ok(counts[k] >= counts[k - 1]);
  assert.deepEqual(stepPatchCounts(3, 2), [0, 2, 3]);
  assert.throws(() => stepPatchCounts(196, 0), /steps must be a positive integer/);
  assert.throws(() => stepPatchCounts(0, 20), /patch count must be a positive integer/);
});

test('curve area is the trapezoid rule over evenly spaced fractions', () => {
  assert.equal(curveArea([1, 1]), 1);
  assert.equal(curveArea([1, 0]), 0.5);
  // linear fall 1 -> 0 in 4 steps: exact area 0.5
  assert.ok(Math.abs(curveArea([1, 0.75, 0.5, 0.25, 0]) - 0.5) < 1e-12);
  // (0.5*0.8 + 0.4 + 0.5*0.1) / 2
  assert.ok(Math.abs(curveArea([0.8, 0.4, 0.1]) - 0.425) < 1e-12);
  assert.throws(() => curveArea([0.5]), /at least 2 points/);
  assert.throws(() => curveArea([0.5, Number.POSITIVE_INFINITY]), /point 1 is not a finite number/);
});

test('the random baseline order is a seeded permutation of every patch', () => {
  const order = randomPatchOrder(196, 7);
  assert.deepEqual([...order].sort((a, b) => a - b), Array.from({ length: 196 }, (_, i) => i));
  assert.deepEqual(randomPatchOrder(196, 7), order);
  assert.notDeepEqual(randomPatchOrder(196, 8), order);
  assert.notDeepEqual(order, Array.from({ length: 196 }, (_, i) => i));
  assert.throws(() => randomPatchOrder(0, 1), /patch count must be a positive integer/);
});

test('copying patches replaces exactly those patch pixels in every channel', () => {
  // 2 channels, 2x2 grid of 2x2 patches: a 4x4 image per channel
  const target = new Float32Array(2 * 16);
  const source = Float32Array.from({ length: 32 }, (_, i) => i + 1);
  copyPatches(target, source, [1, 2], 2, 2, 2);
  const channel0 = [
    0, 0, 3, 4,
    0, 0, 7, 8,
    9, 10, 0, 0,
    13, 14, 0, 0,
  ];
  assert.deepEqual(Array.from(target.subarray(0, 16)), channel0);
  assert.deepEqual(Array.from(target.subarray(16)), channel0.map((v) => (v === 0 ? 0 : v + 16)));
  assert.throws(() => copyPatches(target, source, [4], 2, 2, 2), /patch index 4 is outside 0..3/);
  assert.throws(() => copyPatches(new Float32Array(3), source, [0], 2, 2, 2), /must hold 2x4x4 = 32 values/);
});
