/**
 * The map's projections: PCA against numpy's SVD, UMAP's determinism and cluster separation, and the worker
 * thread they run on (same answer as in-process, cancel stops it).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { pcaFit, pcaProject } from '../../src/core/projection/pca';
import { projectEmbeddings } from '../../src/core/projection/projection';
import { projectOnThread } from '../../src/core/projection/projectionThread';
import { UMAP } from 'umap-js';
import type { SparseMatrix } from 'umap-js/dist/matrix';
import { fuzzyUnion, nearestNeighbours, umapLayout } from '../../src/core/projection/umap';
import { seededNormal, seededUniform } from '../../src/core/seededRandom';

interface Reference {
  rows: number;
  dim: number;
  matrix: number[];
  components: number[][];
  variance: number[];
}

const reference = JSON.parse(readFileSync(path.join(__dirname, '..', 'fixtures', 'pca', 'reference.json'), 'utf8')) as Reference;

/** `clusters` well-separated Gaussian blobs in `dim` dimensions; label of each row beside it. */
function blobs(clusters: number, perCluster: number, dim: number, seed: number): { vectors: Float32Array; labels: number[] } {
  const normal = seededNormal(seed);
  const centres = Array.from({ length: clusters }, () => Array.from({ length: dim }, () => normal() * 10));
  const vectors = new Float32Array(clusters * perCluster * dim);
  const labels: number[] = [];
  for (let c = 0; c < clusters; c++) {
    for (let p = 0; p < perCluster; p++) {
      const row = c * perCluster + p;
      for (let j = 0; j < dim; j++) vectors[row * dim + j] = centres[c][j] + normal();
      labels.push(c);
    }
  }
  return { vectors, labels };
}

function distance(points: Float32Array, a: number, b: number): number {
  return Math.hypot(points[a * 2] - points[b * 2], points[a * 2 + 1] - points[b * 2 + 1]);
}

describe('PCA', () => {
  const matrix = Float32Array.from(reference.matrix);

  it("finds numpy's principal directions and variances (sign-insensitive)", () => {
    const fit = pcaFit(matrix, reference.rows, reference.dim, { components: 3 });
    for (let c = 0; c < 3; c++) {
      let dot = 0;
      for (let j = 0; j < reference.dim; j++) dot += fit.directions[c * reference.dim + j] * reference.components[c][j];
      assert.ok(Math.abs(Math.abs(dot) - 1) < 1e-6, `direction ${c}: |cos| with numpy's is ${Math.abs(dot)}`);
      assert.ok(Math.abs(fit.variance[c] - reference.variance[c]) / reference.variance[c] < 1e-6, `variance ${c}: ${fit.variance[c]} vs ${reference.variance[c]}`);
    }
  });

  it('projects onto those directions: centred coordinates whose variance is the direction variance', () => {
    const fit = pcaFit(matrix, reference.rows, reference.dim, { components: 2 });
    const points = pcaProject(fit, matrix, reference.rows);
    for (let c = 0; c < 2; c++) {
      let sum = 0;
      let squares = 0;
      for (let r = 0; r < reference.rows; r++) {
        sum += points[r * 2 + c];
        squares += points[r * 2 + c] ** 2;
      }
      assert.ok(Math.abs(sum / reference.rows) < 1e-3, `coordinate ${c} has mean ${sum / reference.rows}`);
      assert.ok(Math.abs(squares / (reference.rows - 1) / reference.variance[c] - 1) < 1e-4);
    }
  });

  it('fitted on a sample of a large set, still finds the top directions', () => {
    const fit = pcaFit(matrix, reference.rows, reference.dim, { components: 2, sampleRows: 150 });
    let dot = 0;
    for (let j = 0; j < reference.dim; j++) dot += fit.directions[j] * reference.components[0][j];
    assert.ok(Math.abs(dot) > 0.99, `|cos| of the first direction is ${Math.abs(dot)}`);
  });

  it('is the same for the same seed, and refuses impossible sizes', () => {
    const a = pcaFit(matrix, reference.rows, reference.dim, { components: 2, seed: 7, sampleRows: 100 });
    const b = pcaFit(matrix, reference.rows, reference.dim, { components: 2, seed: 7, sampleRows: 100 });
    assert.deepEqual(a.directions, b.directions);
    assert.throws(() => pcaFit(matrix, reference.rows, reference.dim, { components: 0 }), RangeError);
    assert.throws(() => pcaFit(matrix, 1, reference.dim, { components: 2 }), RangeError);
  });
});

describe('UMAP', () => {
  const { vectors, labels } = blobs(3, 40, 16, 5);
  const count = labels.length;

  it('is deterministic for a seed and keeps clusters apart', () => {
    const a = umapLayout(vectors, count, 16, { seed: 3, nEpochs: 200 });
    const b = umapLayout(vectors, count, 16, { seed: 3, nEpochs: 200 });
    assert.deepEqual(a, b);
    assert.ok(a.every(Number.isFinite));
    // Every point's nearest 2-D neighbour is in its own cluster, and clusters are far apart on average.
    let within = 0;
    let withinPairs = 0;
    let across = 0;
    let acrossPairs = 0;
    for (let i = 0; i < count; i++) {
      let nearest = -1;
      let best = Infinity;
      for (let j = 0; j < count; j++) {
        if (j === i) continue;
        const d = distance(a, i, j);
        if (d < best) [best, nearest] = [d, j];
        if (j > i) {
          if (labels[i] === labels[j]) [within, withinPairs] = [within + d, withinPairs + 1];
          else [across, acrossPairs] = [across + d, acrossPairs + 1];
        }
      }
      assert.equal(labels[nearest], labels[i], `point ${i}'s nearest neighbour is in another cluster`);
    }
    assert.ok(across / acrossPairs > 3 * (within / withinPairs), `mean distance across ${across / acrossPairs} vs within ${within / withinPairs}`);
  });

  it("builds umap-js's own fuzzy graph: the same entries, in the same order, with the same values", () => {
    const rows: number[][] = [];
    for (let r = 0; r < count; r++) rows.push(Array.from(vectors.subarray(r * 16, (r + 1) * 16)));
    for (const setOpMixRatio of [1, 0.7]) {
      const umap = new UMAP({ nComponents: 2, nNeighbors: 10, setOpMixRatio, random: seededUniform(5) });
      const internals = umap as unknown as { knnIndices: number[][]; knnDistances: number[][]; nearestNeighbors(X: number[][]): { knnIndices: number[][]; knnDistances: number[][] }; fuzzySimplicialSet(X: number[][], k: number, mix: number): SparseMatrix };
      ({ knnIndices: internals.knnIndices, knnDistances: internals.knnDistances } = internals.nearestNeighbors(rows));
      // A repeated neighbour and a missing one (-1), as the neighbour search can leave them.
      internals.knnIndices[4][3] = internals.knnIndices[4][2];
      internals.knnIndices[7][9] = -1;
      const theirs = internals.fuzzySimplicialSet(rows, 10, setOpMixRatio);
      const ours = fuzzyUnion(umap, count);
      assert.deepEqual(ours.getRows(), theirs.getRows(), `mix ${setOpMixRatio}: rows`);
      assert.deepEqual(ours.getCols(), theirs.getCols(), `mix ${setOpMixRatio}: cols`);
      assert.deepEqual(ours.getValues(), theirs.getValues(), `mix ${setOpMixRatio}: values`);
    }
  });

  it("gives umap-js's own layout for the seed, on the exact neighbour graph", () => {
    const rows: number[][] = [];
    for (let r = 0; r < count; r++) rows.push(Array.from(vectors.subarray(r * 16, (r + 1) * 16)));
    // The neighbours by brute force, nearest first (ties by row), as our index must find them at this size.
    const knnIndices: number[][] = [];
    const knnDistances: number[][] = [];
    for (let i = 0; i < count; i++) {
      const ranked = rows.map((row, j) => ({ j, d: Math.sqrt(row.reduce((sum, v, c) => sum + Math.pow(v - rows[i][c], 2), 0)) })).sort((a, b) => a.d - b.d || a.j - b.j).slice(0, 15);
      knnIndices.push(ranked.map((r) => r.j));
      knnDistances.push(ranked.map((r) => r.d));
    }
    const umap = new UMAP({ nComponents: 2, nNeighbors: 15, minDist: 0.1, nEpochs: 60, random: seededUniform(3) });
    umap.setPrecomputedKNN(knnIndices, knnDistances);
    const plain = umap.fit(rows);
    assert.deepEqual(Array.from(umapLayout(vectors, count, 16, { seed: 3, nEpochs: 60 })), plain.flatMap((p) => [Math.fround(p[0]), Math.fround(p[1])]));
  });

  it("finds the neighbours of 2,000 points (itself first, nearest first) at least as well as umap-js's neighbour descent", () => {
    const big = blobs(8, 250, 24, 11);
    const n = big.labels.length;
    const rows = Array.from({ length: n }, (_, r) => Array.from(big.vectors.subarray(r * 24, (r + 1) * 24)));
    const k = 15;
    const ours = nearestNeighbours(big.vectors, n, 24, k);
    const descent = (new UMAP({ nNeighbors: k, random: seededUniform(1) }) as unknown as { nearestNeighbors(X: number[][]): { knnIndices: number[][] } }).nearestNeighbors(rows);
    let same = 0;
    let theirsSame = 0;
    for (let i = 0; i < n; i++) {
      const exact = rows.map((row, j) => ({ j, d: Math.hypot(...row.map((v, c) => v - rows[i][c])) })).sort((a, b) => a.d - b.d || a.j - b.j).slice(0, k);
      assert.equal(ours.indices[i][0], i, `row ${i} is not its own first neighbour`);
      const exactSet = new Set(exact.map((e) => e.j));
      same += ours.indices[i].filter((j) => exactSet.has(j)).length;
      for (let j = 1; j < k; j++) assert.ok(ours.distances[i][j] >= ours.distances[i][j - 1], `row ${i} is not ordered by distance`);
      theirsSame += descent.knnIndices[i].filter((j) => exactSet.has(j)).length;
    }
    // umap-js's own neighbour descent, which this replaces, on the same points: at least as good, and nearly exact.
    assert.ok(same >= theirsSame, `recall ${same / (n * k)} vs umap-js's ${theirsSame / (n * k)}`);
    assert.ok(same / (n * k) >= 0.98, `recall ${same / (n * k)}`);
  });

  it('a different seed gives a different layout', () => {
    assert.notDeepEqual(umapLayout(vectors, count, 16, { seed: 1, nEpochs: 50 }), umapLayout(vectors, count, 16, { seed: 2, nEpochs: 50 }));
  });

  it('reports progress and stops with CANCELLED when its signal aborts', () => {
    const controller = new AbortController();
    const seen: string[] = [];
    assert.throws(
      () =>
        umapLayout(vectors, count, 16, {
          nEpochs: 200,
          signal: controller.signal,
          onProgress: (phase, done) => {
            seen.push(phase);
            if (phase === 'layout' && done >= 20) controller.abort();
          },
        }),
      (err: Error & { code?: string }) => err.code === 'CANCELLED',
    );
    assert.equal(seen[0], 'neighbours');
    assert.ok(seen.includes('layout'));
  });
});

describe('projection thread', () => {
  const { vectors, labels } = blobs(2, 30, 64, 9);
  const count = labels.length;

  it('answers what the in-process projection answers, with progress', async () => {
    for (const method of ['pca', 'umap'] as const) {
      const phases = new Set<string>();
      const onThread = await projectOnThread(vectors, count, 64, { methods: [method], seed: 11, onProgress: (p) => phases.add(p.phase) });
      assert.deepEqual(onThread, projectEmbeddings(vectors, count, 64, { method, seed: 11 }));
      assert.ok(phases.has(method === 'pca' ? 'pca' : 'layout'), [...phases].join());
    }
  });

  it('answers each method as it is done, and can take the vectors instead of copying them', async () => {
    const copy = vectors.slice();
    const answers: Array<[string, Float32Array]> = [];
    const last = await projectOnThread(copy, count, 64, { methods: ['pca', 'umap'], seed: 11, transfer: true, onPoints: (method, points) => answers.push([method, points]) });
    assert.equal(copy.length, 0, 'the transferred array is detached');
    assert.deepEqual(answers.map(([m]) => m), ['pca', 'umap']);
    assert.deepEqual(answers[0][1], projectEmbeddings(vectors, count, 64, { method: 'pca', seed: 11 }));
    assert.equal(last, answers[1][1]);
  });

  it('cancel terminates the thread at once, even mid-layout', async () => {
    const big = blobs(4, 500, 64, 2);
    const controller = new AbortController();
    let aborted = 0;
    const job = projectOnThread(big.vectors, big.labels.length, 64, {
      methods: ['umap'],
      signal: controller.signal,
      onProgress: (p) => {
        if (p.phase === 'layout' && !aborted) {
          aborted = performance.now();
          controller.abort();
        }
      },
    });
    await assert.rejects(job, (err: Error & { code?: string }) => err.code === 'CANCELLED');
    assert.ok(performance.now() - aborted < 1000);
    await assert.rejects(projectOnThread(vectors, count, 64, { methods: ['pca'], signal: AbortSignal.abort() }), (err: Error & { code?: string }) => err.code === 'CANCELLED');
  });
});
