import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import type { Prediction } from '../../src/core/predictions';
import fc from 'fast-check';
import { BigramIndex, buildLabelIndex, canonicalToken, checkImage, editDistance, LabelChecker, mapFolder, mapFolders, nameTokens } from '../../src/core/scan/labelCheck';
import { FIXTURE_DIR } from '../helpers/fixtures';

const config = JSON.parse(readFileSync(path.join(FIXTURE_DIR, 'config.json'), 'utf8')) as { id2label: Record<string, string> };
const TINY_LABELS = Object.keys(config.id2label)
  .sort((a, b) => Number(a) - Number(b))
  .map((k) => config.id2label[k]);
/** A slice of real ImageNet-22k labels, including a synonym shared by two classes. */
const IMAGENET_LIKE = ['tabby, tabby cat', 'tiger cat', 'crane', 'crane', 'hot-air balloon', 'otter', 'wolf', 'knife', 'Persian cat', 'puppy'];

const p = (index: number, score: number, labels = TINY_LABELS): Prediction => ({ index, label: labels[index], score });

describe('label check: folder names to labels', () => {
  it('normalises case, separators, accents, camelCase and plurals', () => {
    assert.deepEqual(nameTokens('River_Otters'), nameTokens('river otter'));
    assert.deepEqual(nameTokens('HotAirBalloons'), nameTokens('hot air balloon'));
    assert.deepEqual(nameTokens('crème-brûlée'), nameTokens('creme brulee'));
    for (const [plural, singular] of [['wolves', 'wolf'], ['knives', 'knife'], ['puppies', 'puppy'], ['boxes', 'box'], ['geese', 'goose'], ['glasses', 'glass'], ['whistles', 'whistle'], ['cookies', 'cookie']]) {
      assert.equal(canonicalToken(plural), canonicalToken(singular), `${plural} ~ ${singular}`);
    }
    assert.equal(canonicalToken('bus'), 'bus');
  });

  it('maps the constructed case: exact, fuzzy, none (tiny model labels)', () => {
    const byFolder = Object.fromEntries(mapFolders(['tabby', 'river_otters', 'balloon', 'xyz'], TINY_LABELS).map((m) => [m.folder, m]));
    assert.equal(byFolder.river_otters.kind, 'exact');
    assert.equal(byFolder.river_otters.label, 'river otter');
    assert.equal(byFolder.river_otters.score, 1);
    assert.equal(byFolder.tabby.kind, 'fuzzy');
    assert.equal(byFolder.tabby.label, 'tabby kitten, tiger-striped kitten');
    assert.equal(byFolder.balloon.kind, 'fuzzy');
    assert.equal(byFolder.balloon.label, 'hot air balloon');
    assert.ok(byFolder.balloon.score > 0.5 && byFolder.balloon.score < 1);
    assert.equal(byFolder.xyz.kind, 'none');
    assert.equal(byFolder.xyz.index, null);
    assert.deepEqual(byFolder.xyz.accepted, []);
  });

  it('"tabby" matches the synonym list "tabby, tabby cat" exactly; shared synonyms prefer the main name', () => {
    const index = buildLabelIndex(IMAGENET_LIKE);
    const tabby = mapFolder('Tabbies', index);
    assert.equal(tabby.kind, 'exact');
    assert.equal(tabby.index, 0);
    assert.equal(tabby.synonym, 'tabby');
    const cranes = mapFolder('cranes', index);
    assert.equal(cranes.kind, 'exact');
    assert.deepEqual(cranes.candidates.map((c) => c.index), [2, 3], 'both cranes offered');
    assert.equal(mapFolder('hot_air_balloons', index).index, 4, 'hyphen in the label, underscores in the folder');
    const typo = mapFolder('persain_cat', index);
    assert.equal(typo.kind, 'fuzzy');
    assert.equal(typo.index, 8);
  });

  it('applies overrides by index, label text, several indices, or null', () => {
    const m = mapFolders(['tabby', 'xyz', 'pets', 'junk'], TINY_LABELS, { overrides: { xyz: 'glacier lily', pets: [9, 7], junk: null, tabby: 9 } });
    const byFolder = Object.fromEntries(m.map((x) => [x.folder, x]));
    assert.deepEqual([byFolder.xyz.kind, byFolder.xyz.index], ['override', 4]);
    assert.deepEqual(byFolder.pets.accepted, [9, 7]);
    assert.deepEqual([byFolder.junk.index, byFolder.junk.accepted], [null, []]);
    assert.equal(byFolder.tabby.index, 9);
    assert.throws(() => mapFolders(['a'], TINY_LABELS, { overrides: { a: 'no such label' } }), /not a label/);
  });

  it('the bigram prefilter never drops a string within the edit-similarity bound', () => {
    const word = fc.string({ unit: fc.constantFrom('a', 'b', 'c', 'd', ' '), minLength: 1, maxLength: 12 });
    fc.assert(
      fc.property(fc.array(word, { minLength: 1, maxLength: 30 }), word, fc.constantFrom(0.5, 0.75, 0.8), (strings, query, atLeast) => {
        const found = new Set(new BigramIndex(strings).candidates(query, atLeast));
        strings.forEach((s, id) => {
          const similarity = 1 - editDistance(query, s) / Math.max(query.length, s.length);
          if (similarity >= atLeast) assert.ok(found.has(id), `"${s}" ~ "${query}" (${similarity})`);
        });
      }),
      { numRuns: 3000 },
    );
  });

  it('handles 21,841 labels quickly', () => {
    const labels = Array.from({ length: 21_841 }, (_, i) => `thing ${i}, object number ${i}${i % 3 ? '' : ', widget'}`);
    labels[12_345] = 'tabby, tabby cat';
    const t = performance.now();
    const index = buildLabelIndex(labels);
    const mapped = mapFolders(['tabby', 'widgets', 'tabyy_cat', 'zzz'], index);
    assert.equal(mapped[0].index, 12_345);
    assert.equal(mapped[2].index, 12_345);
    assert.ok(performance.now() - t < 5000);
  });
});

describe('label check: images against their folder', () => {
  it('agreement, disagreement with its margin, and low confidence', () => {
    const agrees = checkImage([p(9, 0.7), p(7, 0.2)], [9]);
    assert.deepEqual(agrees.reasons, []);
    assert.equal(agrees.folderRank, 0);
    const second = checkImage([p(7, 0.6), p(9, 0.3)], [9]);
    assert.deepEqual(second.reasons, []);
    assert.equal(second.folderRank, 1);
    assert.ok(Math.abs(second.confidence - 0.3) < 1e-12);
    const wrong = checkImage([p(7, 0.9), p(0, 0.05), p(1, 0.02)], [9]);
    assert.deepEqual(wrong.reasons, ['disagree']);
    assert.equal(wrong.folderRank, null);
    assert.ok(Math.abs(wrong.confidence - 0.88) < 1e-12, 'top-1 minus the K-th score bounds the margin');
    assert.deepEqual(checkImage([p(7, 0.1), p(9, 0.08)], [9]).reasons, ['low-confidence']);
    assert.deepEqual(checkImage([p(7, 0.9)], []).reasons, [], 'unmapped folder: no disagreement');
  });

  it('ranks a confidently misfiled image first among the constructed folders', () => {
    const checker = new LabelChecker(TINY_LABELS, { lowScore: 0.15 });
    const results = [
      { image: 'tabby/1.png', folderLabel: 'tabby', top: [p(9, 0.8), p(7, 0.1), p(6, 0.05)] },
      { image: 'tabby/misfiled.png', folderLabel: 'tabby', top: [p(7, 0.95), p(0, 0.02), p(1, 0.01)] },
      { image: 'tabby/unsure.png', folderLabel: 'tabby', top: [p(3, 0.4), p(2, 0.3), p(1, 0.2)] },
      { image: 'river_otters/1.png', folderLabel: 'river_otters', top: [p(7, 0.6), p(9, 0.3), p(6, 0.05)] },
      { image: 'river_otters/2.png', folderLabel: 'river_otters', top: [p(0, 0.5), p(7, 0.45), p(6, 0.05)] },
      { image: 'balloon/1.png', folderLabel: 'balloon', top: [p(6, 0.12), p(5, 0.11), p(4, 0.1)] },
      { image: 'xyz/1.png', folderLabel: 'xyz', top: [p(1, 0.99), p(2, 0.005), p(3, 0.005)] },
      { image: 'root.png', folderLabel: null, top: [p(1, 0.1)] },
      { image: 'tabby/broken.png', folderLabel: 'tabby' },
    ];
    for (const r of results) checker.add(r);
    const suspects = checker.suspects();
    assert.deepEqual(
      suspects.map((s) => s.image),
      ['tabby/misfiled.png', 'tabby/unsure.png', 'balloon/1.png'],
    );
    assert.deepEqual(suspects[0].expected, { index: 9, label: TINY_LABELS[9] });
    assert.equal(suspects[0].top1.index, 7);
    assert.deepEqual(suspects[2].reasons, ['low-confidence']);
    assert.deepEqual(checker.summary, { checked: 7, disagreements: 2, lowConfidence: 1, unmapped: 1 });
    assert.deepEqual(
      checker.folderMappings().map((m) => [m.folder, m.kind]),
      [['balloon', 'fuzzy'], ['river_otters', 'exact'], ['tabby', 'fuzzy'], ['xyz', 'none']],
    );
  });
});
