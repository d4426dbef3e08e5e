/**
 * Similarity benchmark rows (#13), over 100,000 synthetic clustered 768-d embeddings generated here, each figure
 * a ratio to a peer measured in the same run:
 *
 *   - `similar`: p50 of one query (k = 10) through SimilarityIndex (approximate index, exact re-rank) against
 *     exact brute force over the same rows. Target p50 ≤ 50 ms.
 *   - recall@10 of those queries against exact search (reported beside the row).
 *   - index: opening the persisted index against building it from scratch.
 *   - `duplicates`: findDuplicates over all rows (index already open) against the exact all-pairs pass, timed on
 *     4,096 rows and scaled by (n / 4096)² (running it on 100,000 would take hours). Target ≤ 60 s, with and
 *     without the index build counted.
 *   - uniqueness over all rows, against the same extrapolated exact pass.
 *
 * Run directly: `node --import tsx bench/similarity.ts` (SIM_COUNT=20000 for a quicker pass); `npm run bench`
 * runs it too (bench.ts appends these rows). Results also go to bench/similarity-results.json.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { findDuplicates } from '../src/core/similarity/duplicates';
import type { EmbeddingSet } from '../src/core/similarity/embeddingSet';
import { SimilarityIndex } from '../src/core/similarity/search';
import { clusteredSet, gaussian, seededRandom } from '../src/core/similarity/syntheticSet';
import { uniqueness } from '../src/core/similarity/uniqueness';
import { type BenchRow } from './timing';


const DIM = 768;
const QUERIES = 100;
const EXACT_SAMPLE = 4096;

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}
const log = (line: string) => process.stderr.write(`[similarity] ${line}\n`);

/**
 * The clustered set with 1% of rows replaced by near copies of other rows (cosine ≈ 0.99) and 0.5% by exact copies
 * (same hash), so the duplicates pass has real groups to find and union.
 */
function benchSet(count: number): EmbeddingSet {
  const set = clusteredSet({ count, dim: DIM, clusters: Math.max(10, Math.round(count / 100)), spread: 0.6, seed: 42 });
  const next = seededRandom(99);
  const hashes = [...set.hashes];
  const v = set.vectors;
  for (let row = 0; row < count; row++) {
    const r = next();
    if (r >= 0.015) continue;
    const source = Math.floor(next() * count);
    if (source === row) continue;
    let norm = 0;
    for (let i = 0; i < DIM; i++) {
      v[row * DIM + i] = v[source * DIM + i] + (r < 0.005 ? 0 : 0.004 * gaussian(next));
      norm += v[row * DIM + i] ** 2;
    }
    norm = Math.sqrt(norm);
    for (let i = 0; i < DIM; i++) v[row * DIM + i] /= norm;
    if (r < 0.005) hashes[row] = hashes[source];
  }
  return { ...set, hashes };
}

function subset(set: EmbeddingSet, count: number): EmbeddingSet {
  return { ...set, count, vectors: set.vectors.subarray(0, count * set.dim), images: set.images.slice(0, count), hashes: set.hashes.slice(0, count), roots: set.roots.subarray(0, count) };
}

export async function benchmarkSimilarity(count = Number(process.env.SIM_COUNT ?? 100_000)): Promise<{ rows: BenchRow[]; recallAt10: number; groups: number }> {
  const rows: BenchRow[] = [];
  const add = (r: Omit<BenchRow, 'ratio'>) => rows.push({ ...r, ratio: r.ours / r.peer });
  log(`generating ${count} x ${DIM} clustered embeddings`);
  const set = benchSet(count);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'beit-sim-bench-'));
  const indexFile = path.join(dir, 'bench.usearch');
  try {
    log('building the approximate index');
    let t = performance.now();
    const built = await SimilarityIndex.open(set, { mode: 'approximate', indexFile });
    const buildMs = performance.now() - t;
    built.close();
    t = performance.now();
    const index = await SimilarityIndex.open(set, { mode: 'approximate', indexFile, onWarning: (w) => log(`unexpected warning: ${w}`) });
    const openMs = performance.now() - t;
    add({ figure: `similarity index, ${count} x ${DIM}: open the persisted file (vs build it)`, ours: openMs, peer: buildMs, unit: 'ms', peerName: 'build' });
    const exact = await SimilarityIndex.open(set, { mode: 'exact' });

    log('similar: approximate vs exact, alternating');
    const next = seededRandom(5);
    const approxTimes: number[] = [];
    const exactTimes: number[] = [];
    let hits = 0;
    for (let q = 0; q < QUERIES; q++) {
      const row = Math.floor(next() * count);
      t = performance.now();
      const got = index.neighboursOf(row, 10);
      approxTimes.push(performance.now() - t);
      t = performance.now();
      const want = exact.neighboursOf(row, 10);
      exactTimes.push(performance.now() - t);
      const wanted = new Set(want.map((n) => n.row));
      for (const n of got) if (wanted.has(n.row)) hits++;
    }
    const recallAt10 = hits / (QUERIES * 10);
    const p50 = median(approxTimes);
    add({ figure: `similar over ${count} stored ${DIM}-d embeddings, p50 per query, k=10 (recall@10 ${recallAt10.toFixed(3)}) (vs exact brute force)`, ours: p50, peer: median(exactTimes), unit: 'ms', peerName: 'brute force', target: 'p50 <= 50 ms', met: p50 <= 50 });

    log('duplicates over the whole set');
    t = performance.now();
    const groups = await findDuplicates(set, index);
    const dupMs = performance.now() - t;
    log(`duplicates: ${groups.length} groups in ${(dupMs / 1000).toFixed(1)} s`);
    const sample = subset(set, Math.min(EXACT_SAMPLE, count));
    const sampleIndex = await SimilarityIndex.open(sample, { mode: 'exact' });
    t = performance.now();
    await findDuplicates(sample, sampleIndex);
    const exactDupMs = ((performance.now() - t) * (count / sample.count) ** 2);
    add({ figure: `duplicates over ${count}, index open (vs exact all pairs, timed on ${sample.count} and scaled by n²)`, ours: dupMs, peer: exactDupMs, unit: 'ms', peerName: 'exact, extrapolated', target: '<= 60 s', met: dupMs <= 60_000 });
    add({ figure: `duplicates over ${count}, building the index first (vs exact all pairs, extrapolated)`, ours: dupMs + buildMs, peer: exactDupMs, unit: 'ms', peerName: 'exact, extrapolated', target: '<= 60 s', met: dupMs + buildMs <= 60_000 });

    log('uniqueness over the whole set');
    t = performance.now();
    await uniqueness(set, index);
    const uniqMs = performance.now() - t;
    t = performance.now();
    await uniqueness(sample, sampleIndex);
    const exactUniqMs = (performance.now() - t) * (count / sample.count) ** 2;
    add({ figure: `uniqueness over ${count}, index open (vs exact all pairs, extrapolated)`, ours: uniqMs, peer: exactUniqMs, unit: 'ms', peerName: 'exact, extrapolated' });
    index.close();
    exact.close();
    sampleIndex.close();
    return { rows, recallAt10, groups: groups.length };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  benchmarkSimilarity()
    .then(async ({ rows, recallAt10, groups }) => {
      const machine = `${os.cpus()[0]?.model ?? 'unknown'}, ${os.cpus().length} cores, ${process.platform}-${process.arch}, Node ${process.version}`;
      await writeFile(path.join(__dirname, 'similarity-results.json'), JSON.stringify({ date: new Date().toISOString(), machine, recallAt10, groups, rows }, null, 2) + '\n');
      const fmt = (v: number) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));
      process.stdout.write(
        [
          `similarity benchmark — ${machine}`,
          '',
          '| figure | ours | peer | ratio (ours/peer) | target |',
          '| --- | ---: | ---: | ---: | --- |',
          ...rows.map((r) => `| ${r.figure} | ${fmt(r.ours)} ${r.unit} | ${fmt(r.peer)} ${r.unit} (${r.peerName}) | ${r.ratio.toFixed(3)}x | ${r.target ? `${r.target} ${r.met ? 'met' : 'NOT met'}` : ''} |`),
        ].join('\n') + '\n',
      );
    })
    .catch((err) => {
      process.stderr.write(`similarity bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    });
}
