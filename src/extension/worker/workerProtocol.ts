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
import type { HeadFusion } from '../../core/rollout';
import type { LegendEntryDto } from '../../shared/protocol';

/**
 * Where the worker finds its model: a folder the user chose, or the converted official model in a
 * cache (`includeCliCache` adds the one `beit-lens download` fills, which the worker knows).
 */
export type ModelSource = { kind: 'folder'; dir: string } | { kind: 'cache'; cacheDirs: string[]; includeCliCache?: boolean };

export interface LoadModelArgs {
  source: ModelSource;
  provider: ProviderPreference;
  preprocess: { fast: boolean; applyExifOrientation: boolean };
}

export interface LoadedModel {
  modelDir: string;
  modelId: string;
  provider: string;
  providerAttempts: ProviderAttempt[];
  canExplain: boolean;
  numLabels: number;
}

export interface HoverPreview {
  top: Prediction[];
  /** A small JPEG/PNG data URI, so hovers work over Remote SSH, WSL and code-server. */
  thumbnail: string;
}

/**
 * What the panel needs from an explanation. The tensors behind it (attentions, per-patch logits)
 * stay in the worker under `handle` so re-parameterising the rollout, class heatmaps and
 * patch attention are answered there instead of shipping tens of megabytes to the host.
 */
export interface ExplanationSummary {
  handle: string;
  top: Prediction[];
  grid: number;
  layers: number;
  heads: number;
  rollout: { headFusion: HeadFusion; discardRatio: number; map: number[] };
  patchArgmax: number[];
  patchScore: number[];
  legend: LegendEntryDto[];
  provider: string;
  /** Size of the image as displayed (after EXIF orientation). */
  width: number;
  height: number;
}

export type ProgressEvent = { kind: 'download'; progress: DownloadProgress } | { kind: 'log'; message: string };

/** Every call the worker answers: its arguments and its result. */
export interface WorkerCalls {
  load: { args: LoadModelArgs; result: LoadedModel };
  unload: { args: Record<string, never>; result: void };
  classify: { args: { file: string; topK: number }; result: Prediction[] };
  classifyBatch: { args: { files: string[]; topK: number }; result: ClassifyResult[] };
  preview: { args: { file: string; topK: number; thumbnailSide: number }; result: HoverPreview };
  thumbnail: { args: { file: string; maxSide: number }; result: string };
  explain: { args: { file: string; topK: number; headFusion: HeadFusion; discardRatio: number }; result: ExplanationSummary };
  rollout: { args: { handle: string; headFusion: HeadFusion; discardRatio: number }; result: number[] };
  classHeatmap: { args: { handle: string; classIndex: number }; result: { label: string; logits: number[] } };
  patchAttention: { args: { handle: string; patch: number; layer: number; head: number | 'mean' }; result: number[] };
  release: { args: { handle: string }; result: void };
  ensureModel: { args: { cacheDir: string; modelId?: string }; result: { dir: string } };
  doctor: { args: { modelDir?: string; cacheDir: string; provider: ProviderPreference }; result: { ok: boolean; text: string } };
}

export type CallName = keyof WorkerCalls;
export type CallArgs<K extends CallName> = WorkerCalls[K]['args'];
export type CallResult<K extends CallName> = WorkerCalls[K]['result'];

/** Calls that run the model: they wait for it to be ready and go through the fair queue. */
export const MODEL_CALLS: ReadonlySet<CallName> = new Set<CallName>(['classify', 'classifyBatch', 'preview', 'explain', 'rollout', 'classHeatmap', 'patchAttention']);

/** Calls that compete for the worker's CPU and so go through the queue even without a model. */
export const QUEUED_CALLS: ReadonlySet<CallName> = new Set<CallName>([...MODEL_CALLS, 'thumbnail']);

export type InferenceErrorCode =
  | 'WORKER_CRASHED'
  | 'WORKER_UNAVAILABLE'
  | 'TIMEOUT'
  | 'CANCELLED'
  | 'NO_MODEL'
  | 'MODEL_FAILED'
  | 'EXPLANATION_GONE'
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
