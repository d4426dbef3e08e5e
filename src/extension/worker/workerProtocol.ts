/**
 * The messages between the extension host (InferenceClient) and the inference child process. Both
 * sides are our own code, so the types are the contract; the host still checks the envelope of
 * everything it receives because a dying process can send half a message.
 *
 * No module here imports onnxruntime, sharp or vscode: the host side stays free of native code.
 */
import type { ProviderAttempt, ProviderPreference } from '../../core/backend/onnxRuntime';
import type { ClassifyResult } from '../../core/beitModel';
import type { DownloadProgress } from '../../core/hub';
import type { Prediction } from '../../core/predictions';
import type { ProjectionMethod, ProjectionProgress } from '../../core/projection/projection';
import type { HeadFusion } from '../../core/rollout';
import type { FolderMapping } from '../../core/scan/labelCheck';
import type { LabelMatch } from '../../core/scan/labelSearch';
import type { ScanProgress, ScanSummary } from '../../core/scan/scanner';
import type { ExplanationDto, ModelInfoDto } from '../../shared/protocol';

/**
 * Where the worker finds its model: a folder the user chose, or the converted official model in a
 * cache (`includeCliCache` adds the one `beit-lens download` fills, which the worker knows).
 */
export type ModelSource = { kind: 'folder'; dir: string } | { kind: 'cache'; cacheDirs: string[]; includeCliCache?: boolean };

export interface LoadModelArgs {
  source: ModelSource;
  provider: ProviderPreference;
  preprocess: { fast: boolean; applyExifOrientation: boolean };
  /** Run the graphs on these KServe v2 servers; the folder still gives preprocessing, labels and config. */
  remote?: RemoteModelArgs;
}

/** Where a model's graphs run when they run on KServe v2 servers. */
export interface RemoteTarget {
  endpoints: string[];
  modelName: string;
}

export interface RemoteModelArgs extends RemoteTarget {
  caFile?: string;
  /** From SecretStorage; without it no Authorization header is sent. Only ever in this message: never logged or written. */
  token?: string;
}

export interface LoadedModel {
  modelDir: string;
  modelId: string;
  provider: string;
  providerAttempts: ProviderAttempt[];
  canExplain: boolean;
  numLabels: number;
  /** Set when the graphs run on beitLens.endpoint. */
  remote?: RemoteTarget;
}

/** A hover's picture of an image: what the worker learns from the bytes it is given, model or not. */
export interface HoverThumbnail {
  /** A small JPEG/PNG data URI, so hovers work over Remote SSH, WSL and code-server. */
  thumbnail: string;
  /** As displayed (EXIF orientation applied), from the header the thumbnail was made from. */
  width: number;
  height: number;
  /** jpeg, png, gif, webp, tiff or heif (from the magic bytes, not the name). */
  format: string;
}

export interface HoverPreview extends HoverThumbnail {
  top: Prediction[];
}

/**
 * What the panel needs from an explanation. The tensors behind it (attentions, per-patch logits)
 * stay in the worker under `handle` so re-parameterising the rollout, class heatmaps and
 * patch attention are answered there instead of shipping tens of megabytes to the host.
 */
export interface ExplanationSummary extends Omit<ExplanationDto, 'requestId' | 'image'> {
  handle: string;
  /** Size of the image as displayed (after EXIF orientation). */
  width: number;
  height: number;
  /**
   * The image as a JPEG data URI (at most 2048 px a side), made from the decode the explanation
   * used, so the webview needs no access to the image's folder.
   */
  src: string;
}

/**
 * A dataset scan run by the worker: results go to `resultsFile` (JSONL, appended; rows already in it are not
 * written again, which is how a scan resumes after the worker was killed) and to the scan cache.
 */
export interface ScanJobArgs {
  roots: string[];
  resultsFile: string;
  /** The persistent scan cache (append-only log); none: every file is read and classified. */
  cacheFile?: string;
  topK: number;
  batchSize?: number;
  exclude?: string[];
}

export interface ScanJobSummary extends ScanSummary {
  /** Rows in the results file at the end. */
  rows: number;
  /** Rows this call appended. */
  written: number;
  /** Rows that were in the file already when this call started (a resumed scan). */
  alreadyInFile: number;
}

/** Label check overrides as the dataset view stores them: folder -> accepted label indices, or null for none. */
export type FolderOverrides = Record<string, number[] | null>;

/**
 * A folder's mapping with the names of all accepted labels (the host has no label list). A corrected
 * folder keeps the automatic candidates, so the user can pick another one or go back.
 */
export interface FolderMappingResult extends FolderMapping {
  acceptedLabels: string[];
}

/** A dataset's embeddings loaded into the worker (loadEmbeddings): the host refers to them by `handle`. */
export interface DatasetEmbeddingsInfo {
  handle: string;
  /** Rows with an embedding. */
  images: number;
  /** Rows without one (errors, a graph without the embedding output, a record that failed its checksum). */
  missing: number;
  dim: number;
  missingExamples: Array<{ image: string; reason: string }>;
}

/** A neighbour, by results-table row id; `similarity` is the exact cosine. */
export interface SimilarImage {
  row: number;
  similarity: number;
}

/** A duplicate group by results-table row ids (the host decides what a split folder is, from the paths). */
export interface DatasetDuplicateGroup {
  kind: 'exact' | 'near';
  similarity: number;
  rows: number[];
}

/**
 * A map of a scanned dataset: its stored embeddings (results file + scan cache) projected to 2-D on a worker
 * thread, each method in turn ('pca' first for an instant view, then 'umap').
 */
export interface ProjectArgs {
  resultsFile: string;
  cacheFile: string;
  methods: ProjectionMethod[];
  seed?: number;
}

export interface ProjectionAnswer {
  method: ProjectionMethod;
  /** The results table row id of each point. */
  rows: Int32Array;
  /** x0, y0, x1, y1, ... */
  points: Float32Array;
}

export type ProgressEvent =
  | { kind: 'download'; progress: DownloadProgress }
  | { kind: 'log'; message: string }
  | { kind: 'scan'; progress: ScanProgress }
  /** A similarity call's work (loading and indexing embeddings, the duplicate search). */
  | { kind: 'similarity'; stage: string; done: number; total: number }
  | { kind: 'projection'; progress: ProjectionProgress }
  /** A method other than the last is done: its points, before the call's result (the last method's). */
  | { kind: 'projectionPoints'; answer: ProjectionAnswer };

/** Every call the worker answers: its arguments and its result. */
export interface WorkerCalls {
  load: { args: LoadModelArgs; result: LoadedModel };
  unload: { args: Record<string, never>; result: void };
  classify: { args: { file: string; topK: number }; result: Prediction[] };
  /**
   * An image that is not a file (a notebook cell's output): the same decode checks, byte limits and
   * decode budget as a file, since `classify` and this both end in BeitModel.classify.
   */
  classifyBytes: { args: { bytes: Uint8Array; topK: number }; result: Prediction[] };
  classifyBatch: { args: { files: string[]; topK: number }; result: ClassifyResult[] };
  /** `bytes`: the file as the host read and hashed it (the worker opens nothing). */
  preview: { args: { bytes: Uint8Array; topK: number; thumbnailSide: number }; result: HoverPreview };
  thumbnail: { args: { file: string; maxSide: number }; result: string };
  /** The hover's thumbnail without a model; `bytes` as for preview. */
  hoverThumbnail: { args: { bytes: Uint8Array; thumbnailSide: number }; result: HoverThumbnail };
  /** `bytes` instead of `file`: an image that is not a file (a notebook output), held by the panel. */
  explain: { args: ({ file: string; bytes?: undefined } | { bytes: Uint8Array; file?: undefined }) & { topK: number; headFusion: HeadFusion; discardRatio: number }; result: ExplanationSummary };
  rollout: { args: { handle: string; headFusion: HeadFusion; discardRatio: number }; result: number[] };
  classHeatmap: { args: { handle: string; classIndex: number }; result: { label: string; logits: number[] } };
  patchAttention: { args: { handle: string; patch: number; layer: number; head: number | 'mean' }; result: number[] };
  release: { args: { handle: string }; result: void };
  ensureModel: { args: { cacheDir: string; modelId?: string }; result: { dir: string } };
  /** A Hugging Face folder on disk converted into `cacheDir` (progress: log events; cancellable). */
  convertFolder: { args: { from: string; cacheDir: string }; result: { dir: string; warnings: string[] } };
  doctor: { args: { modelDir?: string; cacheDir: string; provider: ProviderPreference }; result: { ok: boolean; text: string } };
  scan: { args: ScanJobArgs; result: ScanJobSummary };
  project: { args: ProjectArgs; result: ProjectionAnswer };
  /** Folder names -> model labels for the label check (the worker holds the labels and their index). */
  mapFolders: { args: { folders: string[]; overrides: FolderOverrides }; result: FolderMappingResult[] };
  searchLabels: { args: { query: string; limit: number }; result: LabelMatch[] };
  /** The loaded model as the Model view shows it: configuration, graphs, parameters, files, labels. */
  modelInfo: { args: Record<string, never>; result: ModelInfoDto };
  /**
   * A dataset's embeddings (from its results file and the scan cache, for the loaded model) and its similarity
   * index (persisted in `indexFile`), held in the worker under a handle. A model change drops every handle:
   * calls on a dropped one fail with EMBEDDINGS_GONE and the host loads again.
   */
  loadEmbeddings: { args: { resultsFile: string; cacheFile: string; indexFile?: string }; result: DatasetEmbeddingsInfo };
  /** Most similar first; the query (a table row, or any image file) is left out. */
  similarImages: { args: { handle: string; query: { row: number } | { file: string }; k: number }; result: SimilarImage[] };
  duplicateGroups: { args: { handle: string; threshold: number }; result: DatasetDuplicateGroup[] };
  /** Per table row; NaN where a row has no embedding. */
  uniqueness: { args: { handle: string }; result: Float32Array };
  releaseEmbeddings: { args: { handle: string }; result: void };
}

export type CallName = keyof WorkerCalls;
export type CallArgs<K extends CallName> = WorkerCalls[K]['args'];
export type CallResult<K extends CallName> = WorkerCalls[K]['result'];

/**
 * Long jobs (a dataset scan runs for minutes or hours). They do not take the fair queue's slot, which would
 * make every hover wait for the whole scan; instead the worker interleaves them with queued calls batch by
 * batch (see ModelTurns). They wait for the model like queued calls, have no timeout, and answer a cancel
 * with their partial result instead of an error.
 */
export const JOB_CALLS: ReadonlySet<CallName> = new Set<CallName>(['scan', 'project']);

/** Calls that need the model (or its labels): they wait for it to be ready. */
export const MODEL_CALLS: ReadonlySet<CallName> = new Set<CallName>(['classify', 'classifyBytes', 'classifyBatch', 'preview', 'explain', 'rollout', 'classHeatmap', 'patchAttention', 'scan', 'project', 'mapFolders', 'searchLabels', 'modelInfo', 'loadEmbeddings', 'similarImages', 'duplicateGroups', 'uniqueness']);

/**
 * Similarity calls need the model (its key picks the embeddings; a file query is embedded) but not the fair
 * queue's slot: a 100,000-image duplicate search would hold every hover for its duration. They run beside
 * the queue, yield between chunks, and a file query takes a model turn like a scan batch.
 */
const UNQUEUED_MODEL_CALLS: ReadonlySet<CallName> = new Set<CallName>(['loadEmbeddings', 'similarImages', 'duplicateGroups', 'uniqueness']);

/** Calls that compete for the worker's CPU and so go through the queue even without a model. */
export const QUEUED_CALLS: ReadonlySet<CallName> = new Set<CallName>([...[...MODEL_CALLS].filter((name) => !JOB_CALLS.has(name) && !UNQUEUED_MODEL_CALLS.has(name)), 'thumbnail', 'hoverThumbnail']);

export type InferenceErrorCode =
  | 'WORKER_CRASHED'
  | 'WORKER_UNAVAILABLE'
  | 'TIMEOUT'
  | 'CANCELLED'
  | 'NO_MODEL'
  | 'MODEL_FAILED'
  | 'EXPLANATION_GONE'
  | 'EMBEDDINGS_GONE'
  | 'DISPOSED'
  | 'BAD_REQUEST'
  | 'INTERNAL'
  // BeitLensError codes pass through unchanged.
  | (string & {});

export interface WireError {
  message: string;
  code?: InferenceErrorCode;
}

// ---- host -> worker ----
export type HostToWorkerMessage = { type: 'call'; id: number; name: CallName; args: unknown } | { type: 'cancel'; id: number };

// ---- worker -> host ----
export type WorkerToHostMessage =
  | { type: 'started'; pid: number }
  | { type: 'result'; id: number; value: unknown }
  | { type: 'error'; id: number; error: WireError }
  | { type: 'progress'; id: number; event: ProgressEvent };

export function isWorkerToHostMessage(raw: unknown): raw is WorkerToHostMessage {
  if (typeof raw !== 'object' || raw === null) return false;
  const m = raw as { type?: unknown; id?: unknown };
  if (m.type === 'started') return true;
  return (m.type === 'result' || m.type === 'error' || m.type === 'progress') && typeof m.id === 'number';
}
