import assert from 'node:assert/strict';
import { readFile, stat, truncate, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { EmbeddingSet } from '../../src/core/similarity/embeddingSet';
import { SimilarityIndex } from '../../src/core/similarity/search';
import { clusteredSet } from '../../src/core/similarity/syntheticSet';
import { removedAfterTests } from '../helpers/fixtures';

const tempDir = removedAfterTests();
const DIM = 32;
const base = clusteredSet({ count: 1200, dim: DIM, clusters: 20, spread: 0.7, seed: 11 });

/** The first `count` rows of a set (same hashes, same vectors). */
function prefix(set: EmbeddingSet, count: number): EmbeddingSet {
  return { ...set, count, vectors: set.vectors.slice(0, count * set.dim), images: set.images.slice(0, count), hashes: set.hashes.slice(0, count), roots: set.roots.slice(0, count) };
}

/** Opens the approximate index on `set` with warnings collected. */
async function open(set: EmbeddingSet, indexFile: string): Promise<{ index: SimilarityIndex; warnings: string[]; added: number }> {
  const warnings: string[] = [];
  let added = 0;
  const index = await SimilarityIndex.open(set, { mode: 'approximate', indexFile, onWarning: (w) => warnings.push(w), onProgress: (_done, total) => (added = total) });
  return { index, warnings, added };
}

/** The approximate index agrees with exact search on a sample of rows (recall@10 ≥ 0.9) and its similarities are exact. */
async function assertSound(set: EmbeddingSet, index: SimilarityIndex): Promise<void> {
  const exact = await SimilarityIndex.open(set, { mode: 'exact' });
  let hits = 0;
  for (let q = 0; q < 40; q++) {
    const row = (q * 31) % set.count;
    const want = exact.neighboursOf(row, 10);
    const got = index.neighboursOf(row, 10);
    const wantRows = new Set(want.map((n) => n.row));
    for (const n of got) {
      assert.ok(n.row < set.count, `row ${n.row} is not in the set`);
      const d = set.dim;
      let dot = 0;
      for (let i = 0; i < d; i++) dot += set.vectors[row * d + i] * set.vectors[n.row * d + i];
      assert.ok(Math.abs(dot - n.similarity) < 1e-5, 'exact cosine');
      if (wantRows.has(n.row)) hits++;
    }
  }
  assert.ok(hits / 400 >= 0.9, `recall@10 ${hits / 400}`);
  exact.close();
}

describe('the persisted similarity index', () => {
  it('is written on first open, reused on the next (nothing added, no warning)', async () => {
    const file = path.join(await tempDir('beit-simidx-'), 'similarity.usearch');
    const first = await open(base, file);
    assert.deepEqual(first.warnings, []);
    assert.equal(first.added, 1200);
    first.index.close();
    const header = JSON.parse(await readFile(`${file}.json`, 'utf8'));
    assert.equal(header.count, 1200);
    assert.equal(header.dim, DIM);
    assert.equal(header.indexBytes, (await stat(file)).size);
    const again = await open(base, file);
    assert.deepEqual(again.warnings, []);
    assert.equal(again.added, 0, 'every row was found in the saved index');
    await assertSound(base, again.index);
    again.index.close();
  });

  it('grows incrementally: new rows are added, rows no longer in the set are never returned', async () => {
    const file = path.join(await tempDir('beit-simidx-'), 'similarity.usearch');
    (await open(prefix(base, 800), file)).index.close();
    const grown = await open(base, file);
    assert.deepEqual(grown.warnings, []);
    assert.equal(grown.added, 400, 'only the 400 new rows are added');
    await assertSound(base, grown.index);
    grown.index.close();
    assert.equal(JSON.parse(await readFile(`${file}.json`, 'utf8')).count, 1200);
    // Drop rows 600..: the saved index still holds them but they are not in the set and must not come back.
    const shrunk = prefix(base, 700);
    const opened = await open(shrunk, file);
    assert.deepEqual(opened.warnings, []);
    assert.equal(opened.added, 0);
    await assertSound(shrunk, opened.index);
    opened.index.close();
  });

  const corruptions: [string, (file: string) => Promise<void>, RegExp][] = [
    ['a truncated index file', async (file) => truncate(file, Math.floor((await stat(file)).size / 2)), /bytes, its header says .* \(truncated\?\)/],
    [
      'a bit-flipped index file',
      async (file) => {
        const bytes = await readFile(file);
        bytes[Math.floor(bytes.length * 0.7)] ^= 0x10;
        await writeFile(file, bytes);
      },
      /fails its checksum/,
    ],
    ['a truncated header', async (file) => truncate(`${file}.json`, 100), /not valid JSON/],
    [
      'a header edited to claim other hashes',
      async (file) => {
        const header = JSON.parse(await readFile(`${file}.json`, 'utf8'));
        header.hashes[5] = 'h999999';
        await writeFile(`${file}.json`, JSON.stringify(header));
      },
      /checksum/,
    ],
    ['a missing header', async (file) => writeFile(`${file}.json`, '').then(() => truncate(`${file}.json`, 0)), /not valid JSON/],
  ];
  for (const [what, corrupt, reason] of corruptions) {
    it(`${what}: rebuilt with a warning naming the file and the problem, and the neighbours are right`, async () => {
      const file = path.join(await tempDir('beit-simidx-'), 'similarity.usearch');
      (await open(base, file)).index.close();
      await corrupt(file);
      const reopened = await open(base, file);
      assert.equal(reopened.warnings.length, 1);
      assert.ok(reopened.warnings[0].startsWith(`${file}: `), reopened.warnings[0]);
      assert.match(reopened.warnings[0], reason);
      assert.match(reopened.warnings[0], /rebuilding/);
      assert.equal(reopened.added, 1200);
      await assertSound(base, reopened.index);
      reopened.index.close();
      const healed = await open(base, file);
      assert.deepEqual(healed.warnings, [], 'the rebuilt index was saved');
      healed.index.close();
    });
  }

  it('an index built from other embeddings of the same images (another model) is detected and rebuilt', async () => {
    const file = path.join(await tempDir('beit-simidx-'), 'similarity.usearch');
    (await open(base, file)).index.close();
    const otherModel = clusteredSet({ count: 1200, dim: DIM, clusters: 20, spread: 0.7, seed: 12 });
    const reopened = await open(otherModel, file);
    assert.equal(reopened.warnings.length, 1);
    assert.match(reopened.warnings[0], /built from other embeddings/);
    await assertSound(otherModel, reopened.index);
    reopened.index.close();
  });

  it('an index of another dimension is detected and rebuilt', async () => {
    const file = path.join(await tempDir('beit-simidx-'), 'similarity.usearch');
    (await open(base, file)).index.close();
    const wider = clusteredSet({ count: 1200, dim: 48, clusters: 20, spread: 0.7, seed: 11 });
    const reopened = await open(wider, file);
    assert.match(reopened.warnings.join('\n'), /32-float embeddings, the dataset's have 48/);
    await assertSound(wider, reopened.index);
    reopened.index.close();
  });

  it('a cancel stops the build', async () => {
    const controller = new AbortController();
    const opening = SimilarityIndex.open(base, { mode: 'approximate', signal: controller.signal, onProgress: (done) => done > 0 || controller.abort() });
    await assert.rejects(opening, /cancelled/);
  });
});
