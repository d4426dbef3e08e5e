/**
 * The approximate-index choice (#13): usearch against hnswlib-node, both Node-API HNSW libraries, on the same
 * 100,000 × 768 clustered vectors in one run. For each: build time, query p50 (k = 10, one thread), recall@10
 * against exact search (raw, and after asking for 36 candidates and re-ranking exactly, as SimilarityIndex does),
 * the saved index's size, and what its native files would add to each platform VSIX (deflate-compressed, as
 * the VSIX zip stores them).
 *
 * Run directly: `node --import tsx bench/annLibraries.ts` (ANN_COUNT=20000 for a quicker pass, ANN_QUANTIZATIONS=f16,i8
 * for fewer usearch variants, ANN_SKIP_HNSWLIB=1 without hnswlib-node). hnswlib-node
 * is not a dependency of the project (it lost this comparison); the script needs it installed to compare again.
 * This is the one place besides src/core/similarity/approximateIndex.ts that imports usearch: it measures the
 * library itself, settings included, not our wrapper.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { deflateRawSync } from 'node:zlib';
import { clusteredSet, seededRandom } from '../src/core/similarity/syntheticSet';
import { dot, TopK } from '../src/core/similarity/vectorMath';
import { median } from './timing';

const COUNT = Number(process.env.ANN_COUNT ?? 100_000);
const DIM = 768;
const QUERIES = 200;
const K = 10;
const CANDIDATES = 2 * K + 16;
const MODULES = path.join(__dirname, '..', 'node_modules');

const log = (line: string) => process.stderr.write(`[ann] ${line}\n`);
const deflated = (file: string) => deflateRawSync(readFileSync(file), { level: 9 }).length;
const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(2)} MiB`;

interface Candidate {
  name: string;
  build(vectors: Float32Array, count: number): Promise<void>;
  /** Keys (rows) of the k nearest, best first. */
  query(q: Float32Array, k: number): number[];
  save(file: string): Promise<void>;
  /** Per VSIX target: the native files that would ship, or why none can. */
  natives(): Record<string, string[] | string>;
}

async function main(): Promise<void> {
  log(`generating ${COUNT} x ${DIM} clustered vectors`);
  const set = clusteredSet({ count: COUNT, dim: DIM, clusters: 1000, spread: 0.6, seed: 42 });
  const next = seededRandom(7);
  const queryRows = Array.from({ length: QUERIES }, () => Math.floor(next() * COUNT));
  log('exact neighbours of the queries (brute force)');
  const truth = queryRows.map((row) => {
    const top = new TopK(K + 1);
    const q = set.vectors.subarray(row * DIM, (row + 1) * DIM);
    for (let r = 0; r < COUNT; r++) top.push(r, dot(set.vectors, r * DIM, q, 0, DIM));
    return new Set(top.sorted().filter((n) => n.row !== row).slice(0, K).map((n) => n.row));
  });

  const usearch = await import('usearch');
  const usearchCandidate = (quantization: 'f32' | 'f16' | 'i8'): Candidate => {
    const index = new usearch.Index({ dimensions: DIM, metric: usearch.MetricKind.IP, quantization: quantization as never, connectivity: 16, expansion_add: 128, expansion_search: 96, multi: false });
    return {
      name: `usearch ${quantization} (M=16, efC=128, ef=96)`,
      async build(vectors, count) {
        const keys = new BigUint64Array(count);
        for (let i = 0; i < count; i++) keys[i] = BigInt(i);
        index.add(keys, vectors, Math.max(1, os.cpus().length));
      },
      query(q, k) {
        return Array.from(index.search(q, k, 1).keys, Number);
      },
      async save(file) {
        index.save(file);
      },
      natives() {
        const prebuilds = path.join(MODULES, 'usearch', 'prebuilds');
        const js = [path.join(MODULES, 'usearch', 'javascript', 'dist', 'cjs', 'usearch.js')];
        const byTarget: Record<string, string[] | string> = {};
        for (const target of ['linux-x64', 'linux-arm64', 'darwin-x64', 'darwin-arm64', 'win32-x64', 'win32-arm64']) {
          const dir = readdirSync(prebuilds).find((d) => d.split('-')[0] === target.split('-')[0] && d.split('-').slice(1).join('-').split('+').includes(target.split('-')[1]));
          byTarget[target] = dir ? [...js, path.join(prebuilds, dir, 'usearch.node')] : 'no prebuild in the npm package';
        }
        return byTarget;
      },
    };
  };

  // ANN_QUANTIZATIONS=f16,i8 limits the usearch runs (each 100,000-vector build takes minutes on a shared 2-core machine).
  const quantizations = (process.env.ANN_QUANTIZATIONS ?? 'f32,f16,i8').split(',') as ('f32' | 'f16' | 'i8')[];
  const candidates: Candidate[] = quantizations.map(usearchCandidate);
  // hnswlib-node is not a dependency (the comparison is rerun by hand after `npm install --no-save hnswlib-node`):
  // the module name goes through a variable so the type checker does not look for it.
  interface HnswIndex {
    initIndex(count: number, m: number, efConstruction: number, seed: number): void;
    setEf(ef: number): void;
    addPoint(point: number[], label: number): void;
    searchKnn(query: number[], k: number): { neighbors: number[]; distances: number[] };
    writeIndex(file: string): Promise<boolean>;
  }
  type HnswModule = { HierarchicalNSW: new (space: 'ip', dim: number) => HnswIndex };
  let hnswlib: HnswModule | undefined;
  try {
    if (process.env.ANN_SKIP_HNSWLIB === '1') throw new Error('skipped');
    const name = 'hnswlib-node';
    hnswlib = (await import(name)) as HnswModule;
  } catch {
    log('hnswlib-node is not installed: compared against usearch settings only');
  }
  if (hnswlib) {
    // CommonJS through import(): the named exports sit on .default under tsx.
    const { HierarchicalNSW } = ((hnswlib as { default?: typeof hnswlib }).default ?? hnswlib);
    const index = new HierarchicalNSW('ip', DIM);
    const root = path.join(MODULES, 'hnswlib-node');
    candidates.push({
      name: 'hnswlib-node (M=16, efC=128, ef=96)',
      async build(vectors, count) {
        index.initIndex(count, 16, 128, 100);
        index.setEf(96);
        // hnswlib-node adds one point per call, from JS, on one thread.
        for (let i = 0; i < count; i++) index.addPoint(Array.from(vectors.subarray(i * DIM, (i + 1) * DIM)), i);
      },
      query(q, k) {
        return index.searchKnn(Array.from(q), k).neighbors;
      },
      async save(file) {
        await index.writeIndex(file);
      },
      natives() {
        const built = path.join(root, 'build', 'Release', 'addon.node');
        const byTarget: Record<string, string[] | string> = {};
        for (const target of ['linux-x64', 'linux-arm64', 'darwin-x64', 'darwin-arm64', 'win32-x64', 'win32-arm64']) {
          byTarget[target] =
            target === `${process.platform}-${process.arch}` && existsSync(built)
              ? [path.join(root, 'lib', 'index.js'), built]
              : 'no prebuilds: compiled by node-gyp at install, so each platform VSIX needs a build on that platform';
        }
        return byTarget;
      },
    });
  }

  const dir = await mkdtemp(path.join(os.tmpdir(), 'beit-ann-'));
  const report: Record<string, unknown>[] = [];
  try {
    for (const c of candidates) {
      log(`${c.name}: building`);
      const t0 = performance.now();
      await c.build(set.vectors, COUNT);
      const buildMs = performance.now() - t0;
      const times: number[] = [];
      let rawHits = 0;
      let rerankedHits = 0;
      queryRows.forEach((row, i) => {
        const q = set.vectors.subarray(row * DIM, (row + 1) * DIM);
        const t = performance.now();
        const raw = c.query(q, K + 1);
        times.push(performance.now() - t);
        for (const key of raw.filter((key) => key !== row).slice(0, K)) if (truth[i].has(key)) rawHits++;
        const top = new TopK(K);
        for (const key of c.query(q, CANDIDATES + 1)) if (key !== row) top.push(key, dot(set.vectors, key * DIM, q, 0, DIM));
        for (const n of top.sorted()) if (truth[i].has(n.row)) rerankedHits++;
      });
      const file = path.join(dir, c.name.split(' ')[0] + report.length);
      await c.save(file);
      const natives = c.natives();
      const vsix = Object.fromEntries(Object.entries(natives).map(([t, files]) => [t, typeof files === 'string' ? files : mib(files.reduce((n, f) => n + deflated(f), 0))]));
      const row = { library: c.name, buildS: +(buildMs / 1000).toFixed(1), queryP50Ms: +median(times).toFixed(3), recallAt10: rawHits / (QUERIES * K), recallAt10Reranked36: rerankedHits / (QUERIES * K), indexFileMiB: +(statSync(file).size / 2 ** 20).toFixed(1), vsix };
      report.push(row);
      log(JSON.stringify(row));
      await rm(file, { force: true });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify({ count: COUNT, dim: DIM, queries: QUERIES, machine: `${os.cpus()[0]?.model}, ${os.cpus().length} cores (shared)`, results: report }, null, 2) + '\n');
}

main().catch((err) => {
  process.stderr.write(`annLibraries failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exitCode = 1;
});
