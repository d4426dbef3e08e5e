/**
 * What the inference worker does for each call. Kept apart from the process plumbing in
 * inferenceWorker.ts so the two can be read (and changed) separately.
 */
import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import { BeitModel, Explanation } from '../../core/beitModel';
import { runDoctor } from '../../core/doctor';
import { describeModel } from '../../core/modelInfo';
import { BeitLensError } from '../../core/errors';
import { defaultCacheDir, HubUnreachableError } from '../../core/hub';
import { decodeImage, encodeDisplayDataUri, makeThumbnail, makeThumbnailDataUri } from '../../core/image';
import { MANIFEST_FILE } from '../../core/modelDirectory';
import { convertedModelDir, convertLocalModel, ensureModel, OFFICIAL_MODEL_ID } from '../../core/modelStore';
import { patchLegend } from '../../core/overlay';
import { RemoteSessionFactory } from '../../core/remote/v2Client';
import { SECRET_TOKEN_SOURCE } from '../model/endpointToken';
import { attentionFromPatch, attentionRollout, HeadFusion } from '../../core/rollout';
import { buildLabelIndex, mapFolders, type LabelIndex } from '../../core/scan/labelCheck';
import { searchLabels } from '../../core/scan/labelSearch';
import type { ScanModel } from '../../core/scan/scanner';
import { scanModelKey } from '../../core/scan/scanner';
import { DatasetEmbeddingsHandles, EmbeddingsGoneError } from './datasetEmbeddings';
import { ModelTurns } from './modelTurns';
import { runScanJob } from './scanJob';
import { projectDataset } from './projectJob';
import { CallArgs, CallName, CallResult, ExplanationSummary, HoverThumbnail, LoadModelArgs, ProgressEvent, RemoteModelArgs, RemoteTarget, ScanJobSummary } from './workerProtocol';

export class WorkerCallError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface CallContext {
  signal: AbortSignal;
  progress: (event: ProgressEvent) => void;
}

/** Candidates offered per folder when the user corrects a label mapping. */
const MAPPING_CANDIDATES = 8;
const MAX_LABEL_RESULTS = 100;

/**
 * Explanations hold ~40 MB of tensors each for the base model, so only the most recent few are
 * kept; a panel whose explanation was evicted gets EXPLANATION_GONE and asks for a new one.
 */
const MAX_EXPLANATIONS = 12;

/** The panel never draws wider or taller than this (MAX_SURFACE_SIDE in the webview). */
const DISPLAY_SIDE = 2048;

/** The image functions the worker calls; tests wrap them to count decodes. */
export interface WorkerImageFunctions {
  decodeImage: typeof decodeImage;
  makeThumbnailDataUri: typeof makeThumbnailDataUri;
  makeThumbnail: typeof makeThumbnail;
  encodeDisplayDataUri: typeof encodeDisplayDataUri;
}

const IMAGE_FUNCTIONS: WorkerImageFunctions = { decodeImage, makeThumbnailDataUri, makeThumbnail, encodeDisplayDataUri };

/**
 * The sessions for beitLens.endpoint. The token is the one from SecretStorage or none: never the worker's
 * environment, so the extension sends only what the user stored for it.
 */
export function remoteSessionFactory(remote: RemoteModelArgs): RemoteSessionFactory {
  return new RemoteSessionFactory({
    endpoint: remote.endpoints,
    modelName: remote.modelName,
    ...(remote.caFile ? { caFile: remote.caFile } : {}),
    token: remote.token ?? '',
    tokenSource: SECRET_TOKEN_SOURCE,
  });
}

/** Bytes that came through IPC arrive as a plain Uint8Array; the core wants a Buffer over the same memory. */

function asBuffer(bytes: unknown, call: CallName): Buffer {
  if (!(bytes instanceof Uint8Array)) throw new WorkerCallError('BAD_REQUEST', `${call} needs the image bytes`);
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

type Handler<K extends CallName> = (args: CallArgs<K>, ctx: CallContext) => Promise<CallResult<K>>;

export class InferenceWorkerHandlers {
  private model?: BeitModel;
  private modelDir?: string;
  /** Where the loaded model's graphs run when not here (beitLens.endpoint); never the token. */
  private remote?: RemoteTarget;
  /** Calls running on each model: a replaced model is released only once its last call is done. */
  private readonly busy = new Map<BeitModel, number>();
  private readonly retired = new Set<BeitModel>();
  private readonly explanations = new Map<string, Explanation>();
  private nextHandle = 1;
  private preprocess: LoadModelArgs['preprocess'] = { fast: false, applyExifOrientation: true };
  private readonly turns = new ModelTurns();
  /** Label index of the current model's labels, built on first use (about 0.2 s for 21,841 labels). */
  private labelIndex?: { labels: readonly string[]; index: LabelIndex };
  /** Scans by results file: a new scan of the same file waits until a cancelled one has stopped writing. */
  private readonly scansByFile = new Map<string, Promise<unknown>>();
  /** Datasets' embeddings and indexes, by handle; dropped when the model changes (their key is the model's). */
  private readonly embeddings = new DatasetEmbeddingsHandles();

  constructor(private readonly images: WorkerImageFunctions = IMAGE_FUNCTIONS) {}

  readonly handlers: { [K in CallName]: Handler<K> } = {
    load: (args) => this.load(args),
    unload: async () => this.unload(),
    classify: ({ file, topK }) => this.withModel((model) => this.turns.run(() => model.classify(file, topK))),
    classifyBytes: ({ bytes, topK }) => this.withModel((model) => this.turns.run(() => model.classify(asBuffer(bytes, 'classifyBytes'), topK))),
    classifyBatch: ({ files, topK }, { signal }) => this.withModel((model) => this.turns.run(() => model.classifyFiles(files, { topK, signal }))),
    // The host read and hashed these bytes for its cache key: the worker opens no file, so the
    // result is for exactly the content that was hashed.
    preview: ({ bytes, topK, thumbnailSide }) =>
      this.withModel(async (model) => {
        const image = asBuffer(bytes, 'preview');
        const [top, picture] = await Promise.all([this.turns.run(() => model.classify(image, topK)), this.hoverThumbnail(image, thumbnailSide)]);
        return { top, ...picture };
      }),
    // Without a model the hover still shows the image (and its size and format), as Image Preview does.
    hoverThumbnail: async ({ bytes, thumbnailSide }) => this.hoverThumbnail(asBuffer(bytes, 'hoverThumbnail'), thumbnailSide),
    thumbnail: async ({ file, maxSide }) => this.images.makeThumbnailDataUri(file, maxSide),
    explain: (args) => this.withModel((model) => this.turns.run(() => this.explain(model, args))),
    rollout: async ({ handle, headFusion, discardRatio }) => {
      const e = this.explanation(handle);
      return Array.from(attentionRollout(e.attentions, e, { headFusion, discardRatio }));
    },
    classHeatmap: async ({ handle, classIndex }) => {
      const e = this.explanation(handle);
      const model = this.requireModel();
      if (!Number.isInteger(classIndex) || classIndex < 0 || classIndex >= e.numLabels) throw new WorkerCallError('BAD_REQUEST', `class ${classIndex} is out of range (0..${e.numLabels - 1})`);
      return { label: model.labels[classIndex] ?? `class ${classIndex}`, logits: Array.from(model.classHeatmap(e, classIndex)) };
    },
    patchAttention: async ({ handle, patch, layer, head }) => {
      const e = this.explanation(handle);
      if (!Number.isInteger(patch) || patch < 0 || patch >= e.grid * e.grid) throw new WorkerCallError('BAD_REQUEST', `patch ${patch} is out of range (0..${e.grid * e.grid - 1})`);
      if (!Number.isInteger(layer) || layer < 0 || layer >= e.layers) throw new WorkerCallError('BAD_REQUEST', `layer ${layer} is out of range (0..${e.layers - 1})`);
      if (head !== 'mean' && (!Number.isInteger(head) || head < 0 || head >= e.heads)) throw new WorkerCallError('BAD_REQUEST', `head ${head} is out of range (0..${e.heads - 1})`);
      return Array.from(attentionFromPatch(e.attentions, e, patch, layer, head));
    },
    release: async ({ handle }) => {
      this.explanations.delete(handle);
    },
    ensureModel: async ({ cacheDir, modelId }, { signal, progress }) => {
      try {
        const dir = await ensureModel({
          cacheDir,
          modelId: modelId ?? OFFICIAL_MODEL_ID,
          signal,
          onProgress: (p) => progress({ kind: 'download', progress: p }),
          onLog: (message) => progress({ kind: 'log', message }),
        });
        return { dir };
      } catch (err) {
        // The core's message points at the CLI and this repository, which an installed extension has neither.
        if (err instanceof HubUnreachableError) throw new WorkerCallError('HUB_UNREACHABLE', `could not reach ${err.endpoint} (offline?)`);
        throw err;
      }
    },
    convertFolder: async ({ from, cacheDir }, { signal, progress }) => {
      if (typeof from !== 'string' || !path.isAbsolute(from) || typeof cacheDir !== 'string') throw new WorkerCallError('BAD_REQUEST', 'convertFolder needs an absolute source folder and a cache folder');
      const result = await convertLocalModel({ from, cacheDir, signal, onLog: (message) => progress({ kind: 'log', message }) });
      return { dir: result.dir, warnings: result.warnings };
    },
    doctor: async ({ modelDir, cacheDir, provider }) => {
      const report = await runDoctor({ modelDir: modelDir ?? this.modelDir, cacheDir, provider });
      return { ok: report.ok, text: report.text };
    },
    scan: (args, ctx) => this.withModel((model) => this.scan(model, args, ctx)),
    // Not a model turn: the projection runs on its own thread, so hovers and classifications go on meanwhile.
    project: (args, ctx) => this.withModel((model) => projectDataset(args, { model, preprocess: this.preprocess, ...ctx })),
    mapFolders: ({ folders, overrides }) =>
      this.withModel(async (model) => {
        if (!Array.isArray(folders) || !folders.every((f) => typeof f === 'string')) throw new WorkerCallError('BAD_REQUEST', 'folders must be a list of names');
        const index = this.labelIndexOf(model);
        const automatic = mapFolders(folders, index, { candidates: MAPPING_CANDIDATES });
        return mapFolders(folders, index, { overrides: overrides ?? {}, candidates: MAPPING_CANDIDATES }).map((m, i) => ({
          ...m,
          candidates: m.kind === 'override' ? automatic[i].candidates : m.candidates,
          acceptedLabels: m.accepted.map((k) => model.labels[k]),
        }));
      }),
    searchLabels: ({ query, limit }) =>
      this.withModel(async (model) => searchLabels(model.labels, String(query ?? ''), Math.max(1, Math.min(MAX_LABEL_RESULTS, Number(limit) || 20)), () => this.labelIndexOf(model))),
    modelInfo: () => this.withModel(async (model) => ({ ...(await describeModel(model)), ...(this.remote ? { remote: this.remote } : {}) })),
    loadEmbeddings: (args, { signal, progress }) =>
      this.withModel((model) => {
        if (typeof args.resultsFile !== 'string' || typeof args.cacheFile !== 'string') throw new WorkerCallError('BAD_REQUEST', 'loadEmbeddings needs a results file and a cache file');
        const modelKey = scanModelKey(this.scanModelOf(model), this.preprocess);
        return this.embeddings.load(model, { ...args, modelKey }, {
          signal,
          onProgress: (done, total) => progress({ kind: 'similarity', stage: 'index', done, total }),
          onWarning: (message) => progress({ kind: 'log', message }),
        });
      }),
    similarImages: ({ handle, query, k }) =>
      this.withModel((model) => {
        const valid = typeof query === 'object' && query !== null && (('row' in query && Number.isInteger(query.row) && query.row >= 0) || ('file' in query && typeof query.file === 'string' && path.isAbsolute(query.file)));
        if (!valid || !Number.isInteger(k) || k < 1 || k > 10_000) throw new WorkerCallError('BAD_REQUEST', 'similarImages needs a row or an absolute file, and 1 ≤ k ≤ 10000');
        // Only a file outside the dataset is run through the model: that takes a turn like a scan batch.
        return this.turns.run(() => this.embeddings.similar(model, handle, query, k));
      }),
    duplicateGroups: ({ handle, threshold }, { signal, progress }) =>
      this.withModel(async () => {
        if (!(typeof threshold === 'number' && threshold > 0 && threshold <= 1)) throw new WorkerCallError('BAD_REQUEST', `threshold ${threshold} is not in (0, 1]`);
        return this.embeddings.duplicates(handle, threshold, { signal, onProgress: (done, total) => progress({ kind: 'similarity', stage: 'duplicates', done, total }) });
      }),
    uniqueness: ({ handle }, { signal }) => this.withModel(async () => this.embeddings.uniqueness(handle, { signal })),
    releaseEmbeddings: async ({ handle }) => this.embeddings.release(handle),
  };

  async run(name: CallName, args: unknown, ctx: CallContext): Promise<unknown> {
    const handler = this.handlers[name] as Handler<CallName> | undefined;
    if (!handler) throw new WorkerCallError('BAD_REQUEST', `unknown call ${String(name)}`);
    return handler(args as never, ctx);
  }

  async dispose(): Promise<void> {
    await this.unload();
  }

  private async load(args: LoadModelArgs): Promise<CallResult<'load'>> {
    const dir = await this.locate(args);
    const model = await BeitModel.load(dir, { provider: args.provider, preprocess: args.preprocess, ...(args.remote ? { sessions: remoteSessionFactory(args.remote) } : {}) });
    // Swap only once the new model is up, so a failed switch leaves nothing half-released.
    const previous = this.model;
    this.model = model;
    this.modelDir = dir;
    this.remote = args.remote ? { endpoints: [...args.remote.endpoints], modelName: args.remote.modelName } : undefined;
    this.preprocess = args.preprocess;
    this.explanations.clear();
    this.embeddings.clear();
    if (previous) await this.retire(previous);
    return {
      modelDir: dir,
      modelId: model.modelId,
      provider: model.provider,
      providerAttempts: [...model.providerAttempts],
      canExplain: model.canExplain,
      numLabels: model.labels.length,
      ...(this.remote ? { remote: this.remote } : {}),
    };
  }

  private async locate(args: LoadModelArgs): Promise<string> {
    if (args.source.kind === 'folder') return args.source.dir;
    const cacheDirs = [...args.source.cacheDirs, ...(args.source.includeCliCache ? [defaultCacheDir()] : [])];
    for (const cacheDir of cacheDirs) {
      const dir = convertedModelDir(cacheDir, OFFICIAL_MODEL_ID, 'main', 'fp32');
      // The manifest is written last, so its presence means the conversion finished.
      if ((await stat(path.join(dir, MANIFEST_FILE)).catch(() => undefined))?.isFile()) return dir;
    }
    throw new WorkerCallError('NO_MODEL', `no converted model in ${cacheDirs.join(' or ')}`);
  }

  private async unload(): Promise<void> {
    const model = this.model;
    this.model = undefined;
    this.modelDir = undefined;
    this.remote = undefined;
    this.explanations.clear();
    this.embeddings.clear();
    if (model) await this.retire(model);
  }

  private async hoverThumbnail(image: Buffer, side: number): Promise<HoverThumbnail> {
    const t = await this.images.makeThumbnail(image, side);
    return { thumbnail: t.dataUri, width: t.width, height: t.height, format: t.format };
  }

  private requireModel(): BeitModel {
    if (!this.model) throw new WorkerCallError('NO_MODEL', 'no model is loaded');
    return this.model;
  }

  /** Runs `fn` on the current model, keeping that model alive until it returns. */
  private async withModel<T>(fn: (model: BeitModel) => Promise<T>): Promise<T> {
    const model = this.requireModel();
    this.busy.set(model, (this.busy.get(model) ?? 0) + 1);
    try {
      return await fn(model);
    } finally {
      const left = (this.busy.get(model) ?? 1) - 1;
      if (left > 0) this.busy.set(model, left);
      else {
        this.busy.delete(model);
        if (this.retired.delete(model)) await model.dispose().catch(() => undefined);
      }
    }
  }

  /** Releasing native sessions under a running inference would crash the process, so wait for it. */
  private async retire(model: BeitModel): Promise<void> {
    if (this.busy.has(model)) this.retired.add(model);
    else await model.dispose().catch(() => undefined);
  }

  private labelIndexOf(model: BeitModel): LabelIndex {
    if (this.labelIndex?.labels !== model.labels) this.labelIndex = { labels: model.labels, index: buildLabelIndex(model.labels) };
    return this.labelIndex.index;
  }

  private async scan(model: BeitModel, args: CallArgs<'scan'>, { signal, progress }: CallContext): Promise<ScanJobSummary> {
    if (!Array.isArray(args.roots) || typeof args.resultsFile !== 'string') throw new WorkerCallError('BAD_REQUEST', 'a scan needs roots and a results file');
    const previous = this.scansByFile.get(args.resultsFile);
    const turnTaking = this.scanModelOf(model);
    const job = (previous ?? Promise.resolve())
      .catch(() => undefined)
      .then(() =>
        runScanJob(args, {
          model: turnTaking,
          preprocess: this.preprocess,
          signal,
          onProgress: (p) => progress({ kind: 'scan', progress: p }),
          onWarning: (message) => progress({ kind: 'log', message }),
        }),
      );
    this.scansByFile.set(args.resultsFile, job);
    try {
      return await job;
    } finally {
      if (this.scansByFile.get(args.resultsFile) === job) this.scansByFile.delete(args.resultsFile);
    }
  }

  /** The model as the scan engine sees it. Each batch takes a turn, so queued calls (hovers, panels) get in between. */
  private scanModelOf(model: BeitModel): ScanModel {
    return {
      modelId: model.modelId,
      labels: model.labels,
      directory: model.directory,
      integrity: model.integrity,
      logits: (pixelValues, n) => this.turns.run(() => model.logits(pixelValues, n)),
      // The dataset's embeddings come from the same turn as its logits (similarity, duplicates and the map read them).
      canEmbed: model.canEmbed,
      embeddingSize: model.embeddingSize,
      logitsAndEmbeddings: (pixelValues, n) => this.turns.run(() => model.logitsAndEmbeddings(pixelValues, n)),
    };
  }

  private explanation(handle: string): Explanation {
    const e = this.explanations.get(handle);
    if (!e) throw new WorkerCallError('EXPLANATION_GONE', 'the explanation is no longer in memory; it will be recomputed');
    return e;
  }

  private async explain(model: BeitModel, args: CallArgs<'explain'>): Promise<ExplanationSummary> {
    const rollout = { headFusion: args.headFusion as HeadFusion, discardRatio: args.discardRatio };
    // One decode serves the model input, the displayed size and the displayed image, so the file is
    // read once and only one full-size pixel buffer ever exists (it is dropped once this returns).
    const decoded = await this.images.decodeImage(args.bytes !== undefined ? asBuffer(args.bytes, 'explain') : args.file, { applyExifOrientation: this.preprocess.applyExifOrientation });
    const e = await model.explain(decoded, { topK: args.topK, rollout });
    const src = await this.images.encodeDisplayDataUri(decoded, DISPLAY_SIDE);
    const handle = `${process.pid}-${this.nextHandle++}`;
    this.explanations.set(handle, e);
    while (this.explanations.size > MAX_EXPLANATIONS) this.explanations.delete(this.explanations.keys().next().value as string);
    return {
      handle,
      top: e.top,
      grid: e.grid,
      leadingTokens: e.leadingTokens,
      layers: e.layers,
      heads: e.heads,
      rollout: { ...rollout, map: Array.from(e.rollout) },
      patchArgmax: Array.from(e.patchArgmax),
      patchScore: argmaxProbabilities(e.patchLogits, e.grid * e.grid, e.numLabels),
      legend: patchLegend(e.patchArgmax, model.labels),
      provider: model.provider,
      width: decoded.width,
      height: decoded.height,
      src,
    };
  }
}

/** Softmax probability of each patch's own argmax class: 1 / sum(exp(logit - max)). */
export function argmaxProbabilities(patchLogits: Float32Array, patches: number, numLabels: number): number[] {
  const out = new Array<number>(patches);
  for (let p = 0; p < patches; p++) {
    const row = p * numLabels;
    let max = -Infinity;
    for (let c = 0; c < numLabels; c++) max = Math.max(max, patchLogits[row + c]);
    let sum = 0;
    for (let c = 0; c < numLabels; c++) sum += Math.exp(patchLogits[row + c] - max);
    out[p] = 1 / sum;
  }
  return out;
}

export function toWireError(err: unknown): { message: string; code?: string } {
  if (err instanceof WorkerCallError || err instanceof BeitLensError || err instanceof EmbeddingsGoneError) return { message: err.message, code: err.code };
  if (err instanceof RangeError) return { message: err.message, code: 'BAD_REQUEST' };
  if (err instanceof Error) return { message: err.message.split('\n', 1)[0], code: 'INTERNAL' };
  return { message: String(err), code: 'INTERNAL' };
}
