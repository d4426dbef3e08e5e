/**
 * The dataset scanning engine shared by `beit-lens scan` and the editor's dataset view.
 *
 * Pipeline, every stage bounded and running concurrently:
 *
 *   walk (stream) -> cache by path+stat -> read + sha256 -> cache by content -> worker pool -> batch -> model
 *
 * - An unchanged file whose answer is cached is never opened; a moved or copied one is read and hashed only.
 * - At most `batchSize * (prefetchBatches + batchesInFlight)` files are between "read" and "answered", and the raw bytes held
 *   for them are capped by `maxBytesInFlight`, so memory does not grow with the folder.
 * - Each answer is appended to the cache before it is reported, so a report is never lost to a crash, and the
 *   next scan of the same folder picks up where a cancelled or killed one stopped.
 * - A file that cannot be read or decoded becomes an error row (file + reason); nothing stops the scan except
 *   cancellation, a model that fails on every image, or a worker script that cannot start.
 *
 * Results are reported in completion order (cache hits first); `seq` gives the walk order.
 *
 * Embeddings: a model that can embed gives its logits and its pooled output from one session run, and both are
 * cached under the same key. A cached prediction without its embedding (an older cache, a damaged record) is
 * not a cache hit while embeddings are wanted: the image goes to the model again, so no result lacks one.
 * Fresh embeddings are rounded through float16, as stored, so a fresh and a cached scan give the same vectors.
 */
import { createHash } from 'node:crypto';
import { DEFAULT_DECODE_BUDGET_BYTES, processDecodeBudget } from '../decodeBudget';
import { BeitLensError, errorMessage, type ErrorCode } from '../errors';
import { finiteFromFloat16, toFloat16 } from '../halfFloat';
import { checkFiniteLogits, topKPredictions, type Prediction } from '../predictions';
import type { PreprocessOptions } from '../preprocess';
import { modelInputSize, type PreprocessorConfig } from '../preprocessorConfig';
import { QUALITY_REVISION, imageFlags, type QualityFlag, type QualityMeasures } from '../quality/measures';
import { readRegularFile } from '../regularFile';
import { fsPath } from './fileNames';
import { Changes, Gate, RateMeter } from './flow';
import { PoolStartError, PreprocessPool, type PreprocessPoolOptions } from './preprocessPool';
import type { CachedPrediction, ResultStore } from './resultStore';
import { countImages, noSkips, walkImages, type FileSignature, type WalkEntry, type WalkSkipCounts, type WalkWarning } from './walk';

/** What the scanner needs of a model; `BeitModel` is one, tests pass counting or fake ones. */
export interface ScanModel {
  readonly modelId: string;
  readonly labels: readonly string[];
  readonly directory: {
    readonly preprocessor: PreprocessorConfig;
    /** The graph that computes the logits, named in errors about them. */
    readonly classifyModel?: string;
    readonly manifest?: { readonly source: { readonly revision?: string; readonly commit?: string } };
  };
  logits(pixelValues: Float32Array, n: number): Promise<Float32Array>;
  /** Whether {@link logitsAndEmbeddings} works (BeitModel: the graph has the embedding output). */
  readonly canEmbed?: boolean;
  /** Floats per embedding. */
  readonly embeddingSize?: number;
  /** Logits and `[n, embeddingSize]` embeddings from one model run; without it the scan stores no embeddings. */
  logitsAndEmbeddings?(pixelValues: Float32Array, n: number): Promise<{ logits: Float32Array; embeddings: Float32Array }>;
  /** How the model's files were checked (BeitModel.integrity); an 'unverified' model never uses the cache. */
  readonly integrity?: { readonly state: 'verified' | 'nothing-to-verify' | 'unverified' };
}

export interface ScanResult {
  /** The file, as the root argument was written joined with the path below it (see fileNames.ts for bytes). */
  image: string;
  /** Parent folder below the root, '/'-separated; '' for files directly in the root. */
  folder: string;
  /** ImageFolder class: the immediate parent folder's name; null for files directly in the root. */
  folderLabel: string | null;
  top?: Prediction[];
  error?: string;
  errorCode?: ErrorCode;
  /** Image-quality measures (cleanvision's image properties), when this scan decoded the image or the store had them. */
  quality?: QualityMeasures;
  /**
   * The quality issues this image raises on its own; odd_size is relative to the dataset and is decided where
   * the whole dataset is at hand (ResultTable, the CLI's summary), never stored per image.
   */
  flags?: QualityFlag[];
  /** sha256 (hex) of the file's content, whenever the file was read or its hash is known from the cache. */
  hash?: string;
  /** Index into {@link ScanOptions.roots} of the argument the file was found under. */
  root: number;
  /** That argument, as given (what results files record). */
  rootName: string;
  /** The model's pooled output (`embeddingSize` floats, float16-exact); absent for errors or when not stored. */
  embedding?: Float32Array;
  /** Not exported: whether the answer came from the cache or the model (errors: where it was found). */
  source: 'model' | 'cache' | 'file';
  /** Not exported: position in walk order, 0-based. */
  seq: number;
}

export interface ScanProgress {
  /** Files the walk has found so far. */
  found: number;
  /** Files in total, once the counting pass (or the walk) has finished. */
  total?: number;
  done: number;
  classified: number;
  cached: number;
  errors: number;
  /** Files answered per second over the last few seconds. */
  imagesPerSecond: number;
  etaSeconds?: number;
  elapsedMs: number;
  finished: boolean;
}

export interface ScanSummary {
  found: number;
  done: number;
  classified: number;
  cached: number;
  errors: number;
  cancelled: boolean;
  elapsedMs: number;
  modelBatches: number;
  /** Time inside model.logits: close to elapsedMs when the model never waited for images. */
  modelMs: number;
  imagesPerSecond: number;
  /** What the walk left out on its own: links leading outside the roots, link loops, folders reached twice. */
  skipped: WalkSkipCounts;
  /**
   * 'stored': results carry embeddings and the cache keeps them; 'off': not asked for; 'unavailable': the model
   * cannot embed (a graph converted before the embedding output existed), so the scan only classified.
   */
  embeddings: 'stored' | 'off' | 'unavailable';
}

export interface ScanOptions {
  /** Folders, files or globs. */
  roots: readonly string[];
  model: ScanModel;
  /** The persistent cache; without one every file is read and classified. */
  store?: ResultStore;
  /** Fetch, cache and report each image's embedding where the model can embed (default true). */
  embeddings?: boolean;
  topK?: number;
  batchSize?: number;
  exclude?: readonly string[];
  gitignore?: boolean;
  extensions?: readonly string[];
  /** How images are preprocessed (should match how the model was loaded); part of the cache key. */
  preprocess?: PreprocessOptions;
  /** Model revision for the cache key; default: the converted folder's recorded source commit or revision. */
  revision?: string;
  /** Worker settings, or a pool shared across scans (then the caller closes it). */
  pool?: PreprocessPool | Pick<PreprocessPoolOptions, 'workers' | 'workerScript' | 'execArgv' | 'createWorker' | 'jobsPerWorker'>;
  signal?: AbortSignal;
  onProgress?: (progress: ScanProgress) => void;
  /** Awaited: a slow consumer (a file writer) slows the scan instead of piling results up in memory. */
  onResult?: (result: ScanResult) => void | Promise<void>;
  onWarning?: (warning: WalkWarning) => void;
  progressIntervalMs?: number;
  /**
   * Batches given to the model at once (default 1): more only pays where the model runs them apart, as a
   * remote session with several endpoints does.
   */
  batchesInFlight?: number;
  /** Batches prepared ahead of the ones the model is running (default 2). */
  prefetchBatches?: number;
  /** Raw file bytes held at once, summed (default 256 MiB); a larger single file still goes through alone. */
  maxBytesInFlight?: number;
  /** Concurrent file reads (default 4). */
  readConcurrency?: number;
  /** Files larger than this become error rows without being read (default 512 MiB). */
  maxFileBytes?: number;
  /** Run a counting walk beside the scan so progress has a total and an ETA (default true). */
  countFirst?: boolean;
  now?: () => number;
  /** The file walk (default {@link walkImages}); tests wrap it to make files vanish at a chosen moment. */
  walk?: typeof walkImages;
}

/** Errors the same bytes would always produce again: worth caching by content hash. */
const CONTENT_ERRORS: ReadonlySet<ErrorCode> = new Set(['IMAGE_DECODE', 'IMAGE_UNSUPPORTED', 'IMAGE_TOO_LARGE']);
const DEFAULT_MAX_FILE_BYTES = 512 * 1024 * 1024;

/**
 * What a cached answer depends on besides the image bytes: the model (weights and graph), its revision, and
 * the preprocessing variant. `topK` is not part of it: a cached answer with at least K labels serves any K.
 */
/**
 * Cached answers and refusals depend on what the decoder accepts, not only on the model: bumped whenever that
 * changes, so older caches are not served (2: damaged JPEGs are refused instead of classified as grey).
 */
const DECODER_REVISION = 'dec2';

export function scanModelKey(model: ScanModel, preprocess: PreprocessOptions = {}, revision?: string): string {
  const source = model.directory.manifest?.source;
  const rev = revision ?? source?.commit ?? source?.revision;
  const variant = [preprocess.fast ? 'fast' : 'exact', preprocess.applyExifOrientation === false ? 'noexif' : 'exif', DECODER_REVISION];
  if (preprocess.maxPixels !== undefined) variant.push(`maxpx${preprocess.maxPixels}`);
  // Both decide which images are refused, and refusals are cached by content.
  if (preprocess.maxAspectRatio !== undefined) variant.push(`maxar${preprocess.maxAspectRatio}`);
  const budget = (preprocess.budget ?? processDecodeBudget()).totalBytes;
  if (budget !== DEFAULT_DECODE_BUDGET_BYTES) variant.push(`budget${budget}`);
  return `${model.modelId}${rev ? `@${rev}` : ''}#${variant.join(',')}`;
}

interface PreparedItem {
  entry: WalkEntry;
  seq: number;
  hash: string;
  pixelValues?: Float32Array;
  quality?: QualityMeasures;
}

/** A cache hit: the prediction, and the embedding when the scan wants embeddings. */
interface CacheHit {
  cached: CachedPrediction;
  embedding?: Float32Array;
  quality?: QualityMeasures;
}

/** float16 bits and their float32 values; undefined for a vector with a value float16 cannot hold. */
function roundToHalf(values: Float32Array): { half: Uint16Array; floats: Float32Array } | undefined {
  const half = toFloat16(values);
  const floats = finiteFromFloat16(half);
  return floats && { half, floats };
}

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function fileSystemError(err: unknown): BeitLensError {
  if (err instanceof BeitLensError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  switch (code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return new BeitLensError('FILE_NOT_FOUND', 'file not found (deleted or moved during the scan, or a broken symbolic link)');
    case 'EACCES':
    case 'EPERM':
      return new BeitLensError('FILE_UNREADABLE', 'permission denied');
    case 'ELOOP':
      return new BeitLensError('FILE_UNREADABLE', 'too many levels of symbolic links');
    case 'ENXIO':
      return new BeitLensError('FILE_UNREADABLE', 'is a socket or device without a reader, not an image file');
    default:
      return new BeitLensError('FILE_UNREADABLE', `cannot read file (${code ?? errorMessage(err)})`);
  }
}

/** A whole file in a buffer of its own (so it can be moved to a worker, not copied); FIFOs and devices never opened. */
async function readFileBytes(file: string, maxFileBytes: number): Promise<Buffer> {
  try {
    return await readRegularFile(fsPath(file), maxFileBytes, { transferable: true });
  } catch (err) {
    throw fileSystemError(err);
  }
}

export async function scanDataset(options: ScanOptions): Promise<ScanSummary> {
  const { model } = options;
  // Answers from files nobody checked must not be served later to the model the manifest names, nor may its
  // answers be taken from the cache (they are the good model's).
  const store = model.integrity?.state === 'unverified' ? undefined : options.store;
  const now = options.now ?? (() => performance.now());
  const started = now();
  const topK = Math.max(1, options.topK ?? 5);
  const batchSize = Math.max(1, options.batchSize ?? 8);
  const maxFileBytes = options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
  const budget = Math.max(1, options.maxBytesInFlight ?? 256 * 1024 * 1024);
  const preprocess = options.preprocess ?? {};
  const modelKey = scanModelKey(model, preprocess, options.revision);
  // The fast JPEG path measures shrunk pixels: its values are kept apart from exact ones.
  const qualityKey = preprocess.fast ? `${QUALITY_REVISION}-fast` : QUALITY_REVISION;
  const labels = model.labels;
  const numLabels = labels.length;
  const modelFile = model.directory.classifyModel ?? model.modelId;
  const { width, height } = modelInputSize(model.directory.preprocessor);
  const inputValues = 3 * width * height;
  const canEmbed = !!model.canEmbed && typeof model.logitsAndEmbeddings === 'function' && (model.embeddingSize ?? 0) > 0;
  const embed = options.embeddings !== false && canEmbed;
  const dim = embed ? model.embeddingSize! : 0;
  const rootIndex = (entry: WalkEntry) => (entry.rootIndex >= 0 && entry.rootIndex < options.roots.length ? entry.rootIndex : 0);

  const ownsPool = !(options.pool instanceof PreprocessPool);
  const pool = options.pool instanceof PreprocessPool ? options.pool : new PreprocessPool({ preprocessor: model.directory.preprocessor, options: preprocess, ...options.pool });

  // One controller for "stop": the caller's signal, or a fatal error inside the pipeline.
  const stop = new AbortController();
  let fatal: unknown;
  const failWith = (err: unknown) => {
    fatal ??= err;
    stop.abort();
  };
  const stopped = () => stop.signal.aborted;

  const batchesInFlight = Math.max(1, Math.floor(options.batchesInFlight ?? 1));
  const slots = new Gate(batchSize * (Math.max(1, options.prefetchBatches ?? 2) + batchesInFlight));
  const bytes = new Gate(budget);
  const reads = new Gate(Math.max(1, options.readConcurrency ?? 4));
  const changes = new Changes();
  const prepared: PreparedItem[] = [];
  let active = 0;
  let walkDone = false;
  const counters = { found: 0, done: 0, classified: 0, cached: 0, errors: 0, batches: 0, modelMs: 0 };
  let total: number | undefined;
  const skipped = noSkips();

  stop.signal.addEventListener('abort', () => {
    slots.close();
    bytes.close();
    reads.close();
    if (ownsPool) void pool.close();
    changes.notify();
  });
  const onCallerAbort = () => stop.abort();
  if (options.signal?.aborted) stop.abort();
  options.signal?.addEventListener('abort', onCallerAbort, { once: true });

  // Results reach the caller one at a time, in order of completion; the chain is the backpressure.
  let delivered: Promise<void> = Promise.resolve();
  const emit = (result: ScanResult): Promise<void> => {
    counters.done++;
    if (result.error !== undefined) counters.errors++;
    else if (result.source === 'cache') counters.cached++;
    const { onResult } = options;
    if (onResult) delivered = delivered.then(() => onResult(result)).catch(failWith);
    return delivered;
  };

  const rate = new RateMeter();
  const progress = (finished: boolean) => {
    const elapsedMs = now() - started;
    const recent = rate.sample(elapsedMs, counters.done);
    const imagesPerSecond = finished || recent === 0 ? (elapsedMs > 0 ? counters.done / (elapsedMs / 1000) : 0) : recent;
    const remaining = total !== undefined ? Math.max(0, total - counters.done) : undefined;
    options.onProgress?.({
      found: counters.found,
      total,
      done: counters.done,
      classified: counters.classified,
      cached: counters.cached,
      errors: counters.errors,
      imagesPerSecond,
      etaSeconds: remaining !== undefined && imagesPerSecond > 0 ? remaining / imagesPerSecond : undefined,
      elapsedMs,
      finished,
    });
  };
  const ticker = options.onProgress ? setInterval(() => progress(false), Math.max(20, options.progressIntervalMs ?? 250)) : undefined;
  ticker?.unref();

  const walkOptions = { exclude: options.exclude, gitignore: options.gitignore, extensions: options.extensions, signal: stop.signal };
  if (options.countFirst !== false && options.onProgress) {
    countImages(options.roots, walkOptions).then(
      (n) => {
        if (!walkDone) total = n;
      },
      () => undefined,
    );
  }

  const base = (entry: WalkEntry, seq: number, hash: string | undefined) => {
    const root = rootIndex(entry);
    return { image: entry.path, folder: entry.folder, folderLabel: entry.folderLabel, ...(hash ? { hash } : {}), root, rootName: options.roots[root] ?? entry.root, seq };
  };
  const errorRow = (entry: WalkEntry, seq: number, code: ErrorCode, error: string, source: ScanResult['source'], hash?: string): ScanResult => ({
    ...base(entry, seq, hash),
    error,
    errorCode: code,
    source,
  });
  const withQuality = (quality: QualityMeasures | undefined) => (quality ? { quality, flags: imageFlags(quality) } : {});
  const fromCache = (entry: WalkEntry, seq: number, hash: string, { cached, embedding, quality }: CacheHit): ScanResult =>
    cached.kind === 'error'
      ? errorRow(entry, seq, cached.code, cached.error, 'cache', hash)
      : {
          ...base(entry, seq, hash),
          top: cached.top.slice(0, topK).map(([index, score]) => ({ index, label: labels[index] ?? `class ${index}`, score })),
          ...(embedding ? { embedding } : {}),
          ...withQuality(quality),
          source: 'cache',
        };
  /**
   * The cached answer: complete when it is an error or its quality measures are stored too. A prediction without
   * its embedding (while embeddings are wanted) is no answer at all: the image goes to the model again.
   */
  const lookup = async (hash: string): Promise<{ hit: CacheHit; complete: boolean } | undefined> => {
    const cached = await store?.lookupPrediction(hash, modelKey, topK);
    if (!cached) return undefined;
    if (cached.kind === 'error') return { hit: { cached }, complete: true };
    let embedding: Float32Array | undefined;
    if (embed) {
      embedding = await store!.lookupEmbedding(hash, modelKey, dim);
      if (!embedding) return undefined;
    }
    const quality = await store!.lookupQuality(hash, qualityKey);
    return { hit: { cached, embedding, quality }, complete: quality !== undefined };
  };

  /** Read, hash, look up by content, preprocess. Holds one slot, released here unless the item is batched. */
  const processFile = async (entry: WalkEntry, seq: number, signature: FileSignature, knownHash: string | undefined): Promise<void> => {
    let batched = false;
    let heldBytes = 0;
    try {
      if (signature.size > maxFileBytes) {
        await emit(errorRow(entry, seq, 'FILE_TOO_LARGE', `file is ${signature.size} bytes; the limit is ${maxFileBytes}`, 'file'));
        return;
      }
      heldBytes = Math.min(Math.max(1, signature.size), budget);
      if (!(await bytes.acquire(heldBytes))) {
        heldBytes = 0;
        return;
      }
      if (!(await reads.acquire())) return;
      let data: Buffer;
      try {
        data = await readFileBytes(entry.source ?? entry.absolute, maxFileBytes);
      } catch (err) {
        const e = fileSystemError(err);
        if (!stopped()) await emit(errorRow(entry, seq, e.code, e.message, 'file'));
        return;
      } finally {
        reads.release();
      }
      if (stopped()) return;
      const hash = knownHash ?? sha256(data);
      const fileRecord = store?.fileRecord(entry.absolute, signature, hash);
      const found = await lookup(hash);
      if (found?.complete) {
        store!.append([fileRecord!]);
        await emit(fromCache(entry, seq, hash, found.hit));
        return;
      }
      const outcome = await pool.run(data);
      bytes.release(heldBytes);
      heldBytes = 0;
      if (stopped()) return;
      if (!outcome.ok) {
        if (outcome.code === 'CANCELLED') return;
        if (store && CONTENT_ERRORS.has(outcome.code)) {
          store.append([fileRecord!, store.predictionRecord(hash, modelKey, { kind: 'error', code: outcome.code, error: outcome.error })]);
        }
        await emit(errorRow(entry, seq, outcome.code, outcome.error, 'file', hash));
        return;
      }
      if (found) {
        // Answered by the cache, measured only now (a cache from before quality measures): the model is not run.
        if (outcome.quality) store!.append([fileRecord!, store!.qualityRecord(hash, qualityKey, outcome.quality)]);
        await emit(fromCache(entry, seq, hash, { ...found.hit, quality: outcome.quality }));
        return;
      }
      if (outcome.pixelValues.length !== inputValues) {
        await emit(errorRow(entry, seq, 'INTERNAL', `preprocessing produced ${outcome.pixelValues.length} values, expected ${inputValues}`, 'file', hash));
        return;
      }
      prepared.push({ entry, seq, hash, pixelValues: outcome.pixelValues, quality: outcome.quality });
      batched = true;
      changes.notify();
    } catch (err) {
      if (err instanceof PoolStartError) failWith(err);
      else if (!stopped()) await emit(errorRow(entry, seq, 'INTERNAL', errorMessage(err), 'file'));
    } finally {
      if (heldBytes > 0) bytes.release(heldBytes);
      if (!batched) slots.release();
    }
  };

  const producer = (async () => {
    try {
      const walk = options.walk ?? walkImages;
      const onWarning = (warning: WalkWarning) => {
        if (warning.skipped) skipped[warning.skipped]++;
        options.onWarning?.(warning);
      };
      for await (const entry of walk(options.roots, { ...walkOptions, onWarning })) {
        if (stopped()) break;
        const seq = counters.found++;
        if (entry.statError || !entry.signature) {
          const e = fileSystemError(entry.statError);
          await emit(errorRow(entry, seq, e.code, e.message, 'file'));
          continue;
        }
        // Unchanged since a scan with this model: answered from the log without opening the file.
        const knownHash = store ? await store.lookupFile(entry.absolute, entry.signature) : undefined;
        if (knownHash) {
          const found = await lookup(knownHash);
          if (found?.complete) {
            await emit(fromCache(entry, seq, knownHash, found.hit));
            continue;
          }
        }
        if (!(await slots.acquire())) break;
        active++;
        void processFile(entry, seq, entry.signature, knownHash).finally(() => {
          active--;
          changes.notify();
        });
      }
    } catch (err) {
      failWith(err);
    } finally {
      walkDone = true;
      if (!stopped()) total = counters.found;
      changes.notify();
    }
  })();

  const classifyBatch = async (batch: PreparedItem[]): Promise<void> => {
    const n = batch.length;
    const input = new Float32Array(n * inputValues);
    batch.forEach((item, i) => {
      input.set(item.pixelValues!, i * inputValues);
      item.pixelValues = undefined;
    });
    interface ModelOutput {
      logits: Float32Array;
      embeddings?: Float32Array;
    }
    const runModel = async (values: Float32Array, count: number): Promise<ModelOutput> => {
      const t = now();
      try {
        const out: ModelOutput = embed ? await model.logitsAndEmbeddings!(values, count) : { logits: await model.logits(values, count) };
        if (out.logits.length !== count * numLabels) throw new BeitLensError('MODEL_INVALID', `model returned ${out.logits.length} logits for ${count} images of ${numLabels} labels`);
        if (out.embeddings && out.embeddings.length !== count * dim) throw new BeitLensError('MODEL_INVALID', `model returned ${out.embeddings.length} embedding values for ${count} images of ${dim}`);
        return out;
      } finally {
        counters.modelMs += now() - t;
        counters.batches++;
      }
    };
    const answered: Array<{ item: PreparedItem; top?: Prediction[]; embedding?: { half: Uint16Array; floats: Float32Array }; error?: string; code?: ErrorCode }> = [];
    /**
     * Non-finite logits are this image's error row, never a result (nor a cache record). An embedding float16
     * cannot hold is left out (the image is still classified; the next scan tries it again).
     */
    const answer = (item: PreparedItem, out: ModelOutput, k: number) => {
      try {
        checkFiniteLogits(out.logits, modelFile, k * numLabels, numLabels);
        const top = topKPredictions(out.logits, labels, topK, k * numLabels, numLabels);
        answered.push({ item, top, embedding: out.embeddings ? roundToHalf(out.embeddings.subarray(k * dim, (k + 1) * dim)) : undefined });
      } catch (err) {
        if (!(err instanceof BeitLensError)) throw err;
        answered.push({ item, error: err.message, code: err.code });
      }
    };
    try {
      const out = await runModel(input, n);
      batch.forEach((item, i) => answer(item, out, i));
    } catch (err) {
      if (n === 1) throw err;
      // The batch failed as a whole: find out whether one image is to blame or the model fails on anything.
      let failures = 0;
      for (let i = 0; i < n; i++) {
        try {
          const out = await runModel(input.subarray(i * inputValues, (i + 1) * inputValues).slice(), 1);
          answer(batch[i], out, 0);
        } catch (single) {
          failures++;
          answered.push({ item: batch[i], error: `model failed on this image: ${errorMessage(single)}` });
        }
      }
      if (failures === n) throw err;
    }
    if (store) {
      const records: object[] = [];
      for (const { item, top, embedding } of answered) {
        if (!top) continue;
        records.push(store.fileRecord(item.entry.absolute, item.entry.signature!, item.hash));
        records.push(store.predictionRecord(item.hash, modelKey, { kind: 'top', k: topK, top: top.map((p) => [p.index, p.score] as const) }));
        if (embedding) records.push(store.embeddingRecord(item.hash, modelKey, embedding.half));
        if (item.quality) records.push(store.qualityRecord(item.hash, qualityKey, item.quality));
      }
      store.append(records);
    }
    for (const { item, top, embedding, error, code } of answered) {
      if (top) {
        counters.classified++;
        await emit({ ...base(item.entry, item.seq, item.hash), top, ...(embedding ? { embedding: embedding.floats } : {}), ...withQuality(item.quality), source: 'model' });
      } else {
        await emit(errorRow(item.entry, item.seq, code ?? 'INTERNAL', error!, 'file', item.hash));
      }
    }
  };

  const consumer = (async () => {
    const running = new Set<Promise<void>>();
    try {
      for (;;) {
        while (!stopped() && prepared.length < batchSize && !(walkDone && active === 0)) await changes.wait();
        if (stopped()) break;
        if (prepared.length === 0) break;
        const batch = prepared.splice(0, batchSize);
        const job: Promise<void> = classifyBatch(batch)
          .catch(failWith)
          .finally(() => {
            slots.release(batch.length);
            running.delete(job);
          });
        running.add(job);
        while (running.size >= batchesInFlight) await Promise.race(running);
      }
    } catch (err) {
      failWith(err);
    }
    await Promise.all(running);
  })();

  try {
    await Promise.all([producer, consumer]);
    // After a stop, files still being read or preprocessed finish (or are cancelled by the pool) quietly.
    while (active > 0) await changes.wait();
    await delivered;
  } finally {
    options.signal?.removeEventListener('abort', onCallerAbort);
    if (ticker) clearInterval(ticker);
    if (ownsPool) await pool.close();
  }
  if (fatal !== undefined) throw fatal;
  const cancelled = stopped();
  const elapsedMs = now() - started;
  if (options.onProgress) progress(true);
  return {
    found: counters.found,
    done: counters.done,
    classified: counters.classified,
    cached: counters.cached,
    errors: counters.errors,
    cancelled,
    elapsedMs,
    modelBatches: counters.batches,
    modelMs: counters.modelMs,
    imagesPerSecond: elapsedMs > 0 ? counters.done / (elapsedMs / 1000) : 0,
    skipped,
    embeddings: embed ? 'stored' : canEmbed || options.embeddings === false ? 'off' : 'unavailable',
  };
}
