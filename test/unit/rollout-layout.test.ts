import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { attentionFromPatch, attentionRollout, type HeadFusion } from '../../src/core/rollout';

interface LayoutCase {
  leadingTokens: number;
  grid: number;
  layers: number;
  heads: number;
  tokens: number;
  attentions: number[];
  rollouts: { headFusion: HeadFusion; discardRatio: number; map: number[] }[];
  fromPatch: { patch: number; layer: number; head: number | 'mean'; map: number[] }[];
}

const fixture = JSON.parse(readFileSync(path.join(__dirname, '../fixtures/rollout-layout/rollout-layout.json'), 'utf8')) as { cases: LayoutCase[] };

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('rollout and patch attention take the token layout (NumPy references, test/fixtures/rollout-layout)', () => {
  for (const c of fixture.cases) {
    const attentions = Float32Array.from(c.attentions);
    const layout = { layers: c.layers, heads: c.heads, tokens: c.tokens, leadingTokens: c.leadingTokens };
    it(`${c.leadingTokens} leading tokens: rollout over the ${c.grid * c.grid} patches`, () => {
      for (const r of c.rollouts) {
        const map = attentionRollout(attentions, layout, { headFusion: r.headFusion, discardRatio: r.discardRatio });
        assert.ok(maxAbsDiff(map, r.map) <= 1e-6, `${r.headFusion} discard ${r.discardRatio}: ${maxAbsDiff(map, r.map)}`);
      }
    });
    it(`${c.leadingTokens} leading tokens: attention from a patch`, () => {
      for (const p of c.fromPatch) {
        const map = attentionFromPatch(attentions, layout, p.patch, p.layer, p.head);
        assert.ok(maxAbsDiff(map, p.map) <= 1e-7, `patch ${p.patch} layer ${p.layer} head ${p.head}`);
      }
      assert.throws(() => attentionFromPatch(attentions, layout, c.grid * c.grid, 0, 0), /patch 9 is out of range \(0\.\.8\)/);
    });
  }

  it('refuses a layout whose leading tokens do not fit', () => {
    assert.throws(() => attentionRollout(new Float32Array(4), { layers: 1, heads: 1, tokens: 2, leadingTokens: 2 }), /2 leading tokens do not fit in 2 tokens/);
  });
});
