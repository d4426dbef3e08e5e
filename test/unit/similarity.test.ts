import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DEFAULT_NEAR_DUPLICATE_THRESHOLD, findDuplicates } from '../../src/core/similarity/duplicates';
import { EmbeddingEntry, embeddingSetFrom, EmbeddingSet } from '../../src/core/similarity/embeddingSet';
import { SimilarityIndex } from '../../src/core/similarity/search';
import { clusteredVectors, gaussian, seededRandom as rng } from '../../src/core/similarity/syntheticSet';
import { uniqueness } from '../../src/core/similarity/uniqueness';

/** `count` vectors around `clusters` random centres, one Float32Array each. */
function clustered(count: number, dim: number, clusters: number, spread: number, seed: number): Float32Array[] {
  const flat = clusteredVectors({ count, dim, clusters, spread, seed });
  return Array.from({ length: count }, (_, row) => flat.slice(row * dim, (row + 1) * dim));
}

function setOf(vectors: Float32Array[], options: { hashes?: string[]; roots?: number[]; rootNames?: string[] } = {}): EmbeddingSet {
  const entries: EmbeddingEntry[] = vectors.map((embedding, i) => ({
    image: `/data/img${i}.png`,
    hash: options.hashes?.[i] ?? `h${i}`,
    root: options.roots?.[i] ?? 0,
    embedding,
  }));
  return embeddingSetFrom(entries, vectors[0].length, options.rootNames ?? ['/data']);
}

/** Cosine in float64 from the raw (unnormalised) vectors: independent of every kernel under test. */
function cosine64(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

function naiveTop(vectors: Float32Array[], query: ArrayLike<number>, k: number, skip: (row: number) => boolean): { row: number; similarity: number }[] {
  return vectors
    .map((v, row) => ({ row, similarity: cosine64(v, query) }))
    .filter((n) => !skip(n.row))
    .sort((a, b) => b.similarity - a.similarity || a.row - b.row)
    .slice(0, k);
}

describe('SimilarityIndex, exact search', () => {
  const vectors = clustered(400, 48, 12, 0.6, 1);
  const set = setOf(vectors, { hashes: vectors.map((_, i) => (i === 7 ? 'h3' : `h${i}`)) });

  it('returns the same neighbours and cosines as a naive float64 reference, most similar first', async () => {
    const index = await SimilarityIndex.open(set);
    assert.equal(index.approximate, false);
    const next = rng(2);
    for (let q = 0; q < 20; q++) {
      const query = Float32Array.from({ length: 48 }, () => gaussian(next) * 5);
      const got = index.search(query, 10);
      const want = naiveTop(vectors, query, 10, () => false);
      assert.deepEqual(got.map((n) => n.row), want.map((n) => n.row));
      got.forEach((n, i) => assert.ok(Math.abs(n.similarity - want[i].similarity) < 1e-5, `${n.similarity} vs ${want[i].similarity}`));
    }
    index.close();
  });

  it('neighboursOf leaves the row out but keeps its exact copies (same hash) at similarity 1', async () => {
    const index = await SimilarityIndex.open(set);
    // Row 7 carries row 3's hash but its own vector; make the copy real: a set where row 1 duplicates row 0.
    const copies = setOf([vectors[0], vectors[0], ...vectors.slice(2, 50)], { hashes: ['same', 'same', ...vectors.slice(2, 50).map((_, i) => `x${i}`)] });
    const copyIndex = await SimilarityIndex.open(copies);
    const near = copyIndex.neighboursOf(0, 5);
    assert.equal(near[0].row, 1);
    assert.ok(Math.abs(near[0].similarity - 1) < 1e-6);
    assert.ok(near.every((n) => n.row !== 0));
    const want = naiveTop(vectors, vectors[5], 6, (row) => row === 5);
    assert.deepEqual(index.neighboursOf(5, 6).map((n) => n.row), want.map((n) => n.row));
    index.close();
    copyIndex.close();
  });

  it('excludeHashes and excludeRows leave those rows out; k larger than the set returns every row', async () => {
    const index = await SimilarityIndex.open(set);
    const got = index.search(vectors[3], 5, { excludeHashes: new Set(['h3']) });
    assert.ok(got.every((n) => n.row !== 3 && n.row !== 7), 'rows 3 and 7 share hash h3');
    assert.deepEqual(got.map((n) => n.row), naiveTop(vectors, vectors[3], 5, (r) => r === 3 || r === 7).map((n) => n.row));
    assert.ok(index.search(vectors[3], 3, { excludeRows: new Set([3]) }).every((n) => n.row !== 3));
    assert.equal(index.search(vectors[0], 10_000).length, 400);
    assert.deepEqual(index.search(vectors[0], 0), []);
    index.close();
  });

  it('refuses a query of the wrong dimension or without direction, naming the problem', async () => {
    const index = await SimilarityIndex.open(set);
    assert.throws(() => index.search(new Float32Array(47), 3), /47 floats.*48/);
    assert.throws(() => index.search(new Float32Array(48), 3), /no direction/);
    index.close();
    assert.throws(() => index.search(vectors[0], 3), /closed/);
  });
});

describe('SimilarityIndex, approximate index', () => {
  it('recall@10 ≥ 0.95 against exact search, and every reported similarity is the exact cosine', async () => {
    const vectors = clustered(3000, 64, 30, 0.8, 3);
    const set = setOf(vectors);
    const exact = await SimilarityIndex.open(set, { mode: 'exact' });
    const approx = await SimilarityIndex.open(set, { mode: 'approximate' });
    assert.equal(approx.approximate, true);
    let hits = 0;
    const queries = 100;
    for (let q = 0; q < queries; q++) {
      const row = (q * 29) % 3000;
      const want = new Set(exact.neighboursOf(row, 10).map((n) => n.row));
      const got = approx.neighboursOf(row, 10);
      assert.equal(got.length, 10);
      for (const n of got) {
        if (want.has(n.row)) hits++;
        assert.ok(Math.abs(n.similarity - cosine64(vectors[row], vectors[n.row])) < 1e-5, `row ${n.row}: ${n.similarity} is not the exact cosine`);
      }
      for (let i = 1; i < got.length; i++) assert.ok(got[i - 1].similarity >= got[i].similarity, 'most similar first');
    }
    const recall = hits / (queries * 10);
    assert.ok(recall >= 0.95, `recall@10 ${recall}`);
    exact.close();
    approx.close();
  });
});

describe('findDuplicates', () => {
  // Five well-separated directions, then copies and near copies placed by hand.
  const dim = 16;
  const axis = (i: number, scale = 1) => Float32Array.from({ length: dim }, (_, j) => (j === i ? scale : 0));
  const tilt = (i: number, j: number, cos: number) => Float32Array.from({ length: dim }, (_, d) => (d === i ? cos : d === j ? Math.sqrt(1 - cos * cos) : 0));
  const vectors = [
    axis(0), // 0 a          root 0
    axis(0, 3), // 1 a's copy (same hash, other norm: a re-encode with equal content is impossible, but the hash decides) root 1
    axis(1), // 2 b          root 0
    tilt(1, 2, 0.99), // 3 b' near b    root 0
    tilt(1, 2, 0.97), // 4 b'' near b and b' root 0
    axis(3), // 5 c          root 0
    tilt(3, 4, 0.96), // 6 c' near c   root 2 (leak)
    axis(5), // 7 alone
    axis(6), // 8 alone
  ];
  const hashes = ['A', 'A', 'B', 'B1', 'B2', 'C', 'C1', 'D', 'E'];
  const roots = [0, 1, 0, 0, 0, 0, 2, 0, 0];
  const set = setOf(vectors, { hashes, roots, rootNames: ['train', 'val', 'test'] });

  for (const mode of ['exact', 'approximate'] as const) {
    it(`groups exact copies and near copies, reports the lowest cosine and leakage across roots (${mode} index)`, async () => {
      const index = await SimilarityIndex.open(set, { mode });
      const progress: number[] = [];
      const groups = await findDuplicates(set, index, { threshold: 0.95, onProgress: (done) => progress.push(done) });
      index.close();
      assert.equal(groups.length, 3);
      assert.deepEqual(groups[0], { kind: 'exact', similarity: 1, rows: [0, 1], roots: [0, 1], leakage: true });
      assert.equal(groups[1].kind, 'near');
      assert.deepEqual(groups[1].rows, [2, 3, 4]);
      assert.ok(Math.abs(groups[1].similarity - 0.97) < 1e-5, `lowest cosine in b's group: ${groups[1].similarity}`);
      assert.equal(groups[1].leakage, false);
      assert.deepEqual(groups[1].roots, [0]);
      assert.deepEqual(groups[2].rows, [5, 6]);
      assert.ok(Math.abs(groups[2].similarity - 0.96) < 1e-5);
      assert.deepEqual(groups[2].roots, [0, 2]);
      assert.equal(groups[2].leakage, true);
      assert.equal(progress.at(-1), 8, 'progress ends at the number of distinct contents');
    });
  }

  it('a chain links images below the threshold pairwise, and its similarity says so', async () => {
    const chain = [tilt(0, 1, 1), tilt(0, 1, Math.cos(0.25)), tilt(0, 1, Math.cos(0.5)), axis(7)];
    const chainSet = setOf(chain);
    const index = await SimilarityIndex.open(chainSet);
    const groups = await findDuplicates(chainSet, index, { threshold: 0.96 });
    assert.equal(groups.length, 1);
    assert.deepEqual(groups[0].rows, [0, 1, 2]);
    assert.ok(Math.abs(groups[0].similarity - Math.cos(0.5)) < 1e-5 && groups[0].similarity < 0.96);
    index.close();
  });

  it('a higher threshold splits near groups; a bad threshold is refused; a cancel stops it', async () => {
    const index = await SimilarityIndex.open(set);
    // b'·b'' = cos(acos 0.97 − acos 0.99) ≈ 0.9945: the only near link left above 0.992.
    const strict = await findDuplicates(set, index, { threshold: 0.992 });
    assert.deepEqual(strict.map((g) => g.rows), [[0, 1], [3, 4]]);
    await assert.rejects(findDuplicates(set, index, { threshold: 1.5 }), /threshold 1.5/);
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(findDuplicates(set, index, { signal: controller.signal }), /cancelled/);
    assert.ok(DEFAULT_NEAR_DUPLICATE_THRESHOLD > 0.5 && DEFAULT_NEAR_DUPLICATE_THRESHOLD < 1);
    index.close();
  });
});

/**
 * FiftyOne's uniqueness transliterated step by step (fiftyone-brain uniqueness.py + sklearn.py): centre, cosine
 * distance matrix, the three nearest others, weights [0.6, 0.3, 0.1], mean, divide by the max. Float64 throughout.
 */
function fiftyOneUniqueness(raw: Float32Array[]): number[] {
  const n = raw.length;
  const dim = raw[0].length;
  if (n <= 3) return raw.map(() => 1);
  const mean = new Float64Array(dim);
  for (const v of raw) for (let i = 0; i < dim; i++) mean[i] += v[i] / n;
  const centred = raw.map((v) => Array.from(v, (x, i) => x - mean[i]));
  const scores = centred.map((a, i) => {
    const dists = centred.map((b, j) => (j === i ? Infinity : 1 - cosine64(a, b))).sort((x, y) => x - y);
    return (dists[0] * 0.6 + dists[1] * 0.3 + dists[2] * 0.1) / 3;
  });
  const max = Math.max(...scores);
  return scores.map((s) => s / max);
}

describe('uniqueness', () => {
  it("matches FiftyOne's formula computed by hand on unit vectors (exact and approximate index)", async () => {
    // Unit rows: FiftyOne centres the raw vectors, we centre the unit rows; on unit input the two are the same.
    const vectors = clustered(120, 24, 5, 0.7, 9).map((v) => {
      const norm = Math.hypot(...v);
      return v.map((x) => x / norm);
    });
    const set = setOf(vectors);
    const want = fiftyOneUniqueness(vectors);
    for (const mode of ['exact', 'approximate'] as const) {
      const index = await SimilarityIndex.open(set, { mode });
      const got = await uniqueness(set, index);
      index.close();
      assert.equal(got.length, 120);
      for (let i = 0; i < 120; i++) assert.ok(Math.abs(got[i] - want[i]) < 1e-4, `${mode} row ${i}: ${got[i]} vs FiftyOne ${want[i]}`);
      assert.ok(Math.abs(Math.max(...got) - 1) < 1e-6, 'the most unique image scores 1');
    }
  });

  it('a worked example: four points on a circle and an outlier', async () => {
    // Points at 0°, 10°, 20°, 30° and one at 180°, in 2-D. Centred on their mean, FiftyOne's weighted distances
    // put the 180° point far above the rest; the 10° and 20° points (two close neighbours each) lowest.
    const deg = (d: number) => Float32Array.of(Math.cos((d * Math.PI) / 180), Math.sin((d * Math.PI) / 180));
    const vectors = [deg(0), deg(10), deg(20), deg(30), deg(180)];
    const set = setOf(vectors);
    const index = await SimilarityIndex.open(set);
    const got = Array.from(await uniqueness(set, index));
    index.close();
    const want = fiftyOneUniqueness(vectors);
    got.forEach((u, i) => assert.ok(Math.abs(u - want[i]) < 1e-5, `${i}: ${u} vs ${want[i]}`));
    assert.equal(got[4], 1);
    assert.ok(got[1] < got[0] && got[2] < got[3]);
  });

  it('three images or fewer all score 1, as FiftyOne returns; a cancel stops it', async () => {
    const set = setOf(clustered(3, 8, 1, 0.5, 4));
    const index = await SimilarityIndex.open(set);
    assert.deepEqual(Array.from(await uniqueness(set, index)), [1, 1, 1]);
    index.close();
    const big = setOf(clustered(50, 8, 2, 0.5, 5));
    const bigIndex = await SimilarityIndex.open(big);
    const controller = new AbortController();
    controller.abort();
    await assert.rejects(uniqueness(big, bigIndex, { signal: controller.signal }), /cancelled/);
    bigIndex.close();
  });
});
