/**
 * Measurements for `npm run bench` (bench/bench.ts calls {@link benchmarkScan}): scan throughput against the
 * model alone on pre-stacked batches in the same run, re-scan time of the unchanged folder, and peak memory.
 * Also a synthetic ImageFolder generator so the bench and the tests scan the same kind of data.
 */
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { encodePng } from '../image';
import { preprocessImage, type PreprocessOptions } from '../preprocess';
import { PreprocessPool } from './preprocessPool';
import { ResultStore } from './resultStore';
import { scanDataset, type ScanModel, type ScanSummary } from './scanner';
import { walkImages } from './walk';

export interface SyntheticDatasetOptions {
  classes?: readonly string[];
  perClass?: number;
  width?: number;
  height?: number;
  /** Varies the pixel pattern, so two datasets with different seeds share no file content. */
  seed?: number;
}

/**
 * Writes `classes x perClass` PNGs (`dir/<class>/<class>_<i>.png`), every one different: a smooth gradient
 * whose colours and phase depend on class, index and seed. Returns the files written.
 */
export async function writeSyntheticDataset(dir: string, options: SyntheticDatasetOptions = {}): Promise<string[]> {
  const classes = options.classes ?? ['class_a', 'class_b', 'class_c', 'class_d'];
  const perClass = options.perClass ?? 50;
  const width = options.width ?? 64;
  const height = options.height ?? 48;
  const seed = options.seed ?? 1;
  const files: string[] = [];
  for (const [c, name] of classes.entries()) {
    await mkdir(path.join(dir, name), { recursive: true });
    const pending: Array<Promise<void>> = [];
    for (let i = 0; i < perClass; i++) {
      const rgb = new Uint8Array(width * height * 3);
      const phase = (seed * 7919 + c * 104729 + i * 131) % 997;
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) {
          const o = (y * width + x) * 3;
          rgb[o] = (x * (3 + c) + phase) & 255;
          rgb[o + 1] = (y * (5 + (i % 7)) + phase * 3) & 255;
          rgb[o + 2] = ((x + y) * (1 + ((seed + i) % 5)) + c * 60) & 255;
        }
      }
      const file = path.join(dir, name, `${name}_${String(i).padStart(5, '0')}.png`);
      files.push(file);
      pending.push(encodePng(rgb, width, height, 3).then((png) => writeFile(file, png)));
      if (pending.length >= 16) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);
  }
  return files;
}

export interface ScanBenchOptions {
  model: ScanModel;
  /** A folder of images to scan (e.g. from {@link writeSyntheticDataset}). */
  images: string;
  batchSize?: number;
  topK?: number;
  preprocess?: PreprocessOptions;
  workers?: number;
  /** Nice value of the preprocessing threads (PreprocessPoolOptions.niceness; default there). */
  niceness?: number;
  /** Where the cache log goes (default: a temp folder, removed afterwards). Must not exist yet. */
  cacheFile?: string;
  /** Model-only repetitions over the folder's image count (default 1). */
  modelOnlyRounds?: number;
}

export interface ScanBenchResult {
  images: number;
  batchSize: number;
  workers: number;
  /** Images/s of model.logits alone on already-preprocessed batches. */
  modelOnlyImagesPerSecond: number;
  /** Images/s of a first scan (empty cache): walk, read, hash, decode, preprocess, infer, write the cache. */
  scanImagesPerSecond: number;
  /** scan / model-only: the target is >= 0.9. */
  scanVsModelOnly: number;
  /** Share of the first scan's time spent inside model.logits. */
  modelBusyFraction: number;
  firstScanMs: number;
  /** Re-scan of the unchanged folder (cache only): the target is < 2% of the first scan. */
  rescanMs: number;
  rescanFraction: number;
  rescanSummary: ScanSummary;
  /** Peak resident set size and main-thread heap + array buffers during the first scan. */
  peakRssBytes: number;
  peakHeapBytes: number;
}

function sampleMemory(): { stop(): { rss: number; heap: number } } {
  let rss = 0;
  let heap = 0;
  const take = () => {
    const m = process.memoryUsage();
    rss = Math.max(rss, m.rss);
    heap = Math.max(heap, m.heapUsed + m.arrayBuffers);
  };
  take();
  const timer = setInterval(take, 25);
  return {
    stop: () => {
      clearInterval(timer);
      take();
      return { rss, heap };
    },
  };
}

export async function benchmarkScan(options: ScanBenchOptions): Promise<ScanBenchResult> {
  const batchSize = options.batchSize ?? 8;
  const { model } = options;
  const preprocessor = model.directory.preprocessor;
  const files: string[] = [];
  for await (const entry of walkImages([options.images])) files.push(entry.path);
  if (files.length === 0) throw new RangeError(`no images under ${options.images}`);

  // Model only: the same number of images, as full batches of already-preprocessed input.
  const samples = await Promise.all(files.slice(0, batchSize).map((f) => preprocessImage(f, preprocessor, options.preprocess).then((p) => p.pixelValues)));
  const per = samples[0].length;
  const batch = new Float32Array(batchSize * per);
  for (let i = 0; i < batchSize; i++) batch.set(samples[i % samples.length], i * per);
  await model.logits(batch, batchSize);
  const rounds = Math.max(1, options.modelOnlyRounds ?? 1);
  const batches = Math.ceil(files.length / batchSize) * rounds;
  let t = performance.now();
  for (let b = 0; b < batches; b++) await model.logits(batch, batchSize);
  const modelOnlyImagesPerSecond = (batches * batchSize) / ((performance.now() - t) / 1000);

  const tempRoot = options.cacheFile ? undefined : await mkdtemp(path.join(tmpdir(), 'beit-scan-bench-'));
  const cacheFile = options.cacheFile ?? path.join(tempRoot!, 'cache.log');
  const pool = new PreprocessPool({ preprocessor, options: options.preprocess ?? {}, workers: options.workers, niceness: options.niceness });
  try {
    // Start the workers outside the timed region, as a long-lived extension host would have them.
    await Promise.all(Array.from({ length: Math.max(1, pool.workerCount) }, () => pool.run(new Uint8Array(0))));
    const store = await ResultStore.open(cacheFile);
    const memory = sampleMemory();
    let first: ScanSummary;
    try {
      t = performance.now();
      first = await scanDataset({ roots: [options.images], model, store, topK: options.topK, batchSize, preprocess: options.preprocess, pool, countFirst: false });
    } finally {
      await store.close();
    }
    const firstScanMs = performance.now() - t;
    const peak = memory.stop();

    const again = await ResultStore.open(cacheFile);
    let rescanSummary: ScanSummary;
    try {
      t = performance.now();
      rescanSummary = await scanDataset({ roots: [options.images], model, store: again, topK: options.topK, batchSize, preprocess: options.preprocess, pool, countFirst: false });
    } finally {
      await again.close();
    }
    const rescanMs = performance.now() - t;
    const scanImagesPerSecond = first.done / (firstScanMs / 1000);
    return {
      images: files.length,
      batchSize,
      workers: pool.workerCount,
      modelOnlyImagesPerSecond,
      scanImagesPerSecond,
      scanVsModelOnly: scanImagesPerSecond / modelOnlyImagesPerSecond,
      modelBusyFraction: first.modelMs / firstScanMs,
      firstScanMs,
      rescanMs,
      rescanFraction: rescanMs / firstScanMs,
      rescanSummary,
      peakRssBytes: peak.rss,
      peakHeapBytes: peak.heap,
    };
  } finally {
    await pool.close();
    if (tempRoot) await rm(tempRoot, { recursive: true, force: true });
  }
}

export interface EmbeddingScanBenchOptions {
  /** A model that can embed (BeitModel). */
  model: ScanModel;
  images: string;
  batchSize?: number;
  preprocess?: PreprocessOptions;
  workers?: number;
  /** Scans of each kind (default 3), timed in alternation. */
  rounds?: number;
}

export interface EmbeddingScanBenchResult {
  images: number;
  rounds: number;
  /** Median images/s of a first scan (empty cache) storing embeddings beside the predictions. */
  withImagesPerSecond: number;
  /** The same scan with embeddings off (logits only, nothing extra stored). */
  withoutImagesPerSecond: number;
  /** with / without: the target is >= 0.97. */
  ratio: number;
  /** Cache log bytes per image, with embeddings and without. */
  cacheBytesPerImage: { with: number; without: number };
}

/**
 * First-scan throughput with embeddings stored against the same scan without them, each into a fresh cache,
 * in alternation (and alternating which goes first) so the machine's drift lands on both alike.
 */
export async function benchmarkScanEmbeddings(options: EmbeddingScanBenchOptions): Promise<EmbeddingScanBenchResult> {
  const { model } = options;
  const batchSize = options.batchSize ?? 8;
  const rounds = Math.max(1, options.rounds ?? 3);
  const tempRoot = await mkdtemp(path.join(tmpdir(), 'beit-scan-emb-bench-'));
  const pool = new PreprocessPool({ preprocessor: model.directory.preprocessor, options: options.preprocess ?? {}, workers: options.workers });
  const rates: Record<'with' | 'without', number[]> = { with: [], without: [] };
  const bytes = { with: 0, without: 0 };
  let images = 0;
  try {
    await Promise.all(Array.from({ length: Math.max(1, pool.workerCount) }, () => pool.run(new Uint8Array(0))));
    // Untimed: files into the page cache, the session warm.
    await scanDataset({ roots: [options.images], model, batchSize, preprocess: options.preprocess, pool, countFirst: false, embeddings: false });
    let n = 0;
    const once = async (kind: 'with' | 'without') => {
      const cacheFile = path.join(tempRoot, `cache-${n++}.log`);
      const store = await ResultStore.open(cacheFile);
      let summary: ScanSummary;
      const t = performance.now();
      try {
        summary = await scanDataset({ roots: [options.images], model, store, batchSize, preprocess: options.preprocess, pool, countFirst: false, embeddings: kind === 'with' });
      } finally {
        await store.close();
      }
      const ms = performance.now() - t;
      if (kind === 'with' && summary.embeddings !== 'stored') throw new RangeError('the model did not give embeddings: it cannot be benchmarked storing them');
      images = summary.done;
      rates[kind].push(summary.done / (ms / 1000));
      bytes[kind] = (await stat(cacheFile)).size / Math.max(1, summary.done);
      await rm(cacheFile, { force: true });
    };
    for (let r = 0; r < rounds; r++) {
      const order: Array<'with' | 'without'> = r % 2 === 0 ? ['without', 'with'] : ['with', 'without'];
      for (const kind of order) await once(kind);
    }
  } finally {
    await pool.close();
    await rm(tempRoot, { recursive: true, force: true });
  }
  const median = (v: number[]) => {
    const s = [...v].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const withImagesPerSecond = median(rates.with);
  const withoutImagesPerSecond = median(rates.without);
  return { images, rounds, withImagesPerSecond, withoutImagesPerSecond, ratio: withImagesPerSecond / withoutImagesPerSecond, cacheBytesPerImage: bytes };
}
