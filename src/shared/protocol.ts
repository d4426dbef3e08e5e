import { z } from 'zod';
import { Command } from '../extension/commandIds';
import { QUALITY_FLAGS, type QualityFlag } from '../core/quality/flags';
import { THUMBNAIL_SIDES } from './thumbnailSides';

/**
 * Every message between the explanation panel's webview and the extension, both directions, as
 * discriminated unions on `type`. Messages from the webview are untrusted: the extension parses
 * them with `parseWebviewMessage` and drops anything that does not match.
 */

export type HeadFusion = 'mean' | 'max' | 'min';
export type OverlayKind = 'rollout' | 'patches' | 'class' | 'patchAttention' | 'none';

export interface PredictionDto {
  index: number;
  label: string;
  score: number;
}

export interface LegendEntryDto {
  index: number;
  label: string;
  patches: number;
  share: number;
  color: [number, number, number];
}

export interface ExplanationDto {
  /** Which image this is; echoed back so stale replies for another image can be ignored. */
  requestId: number;
  image: { src: string; name: string; width: number; height: number };
  top: PredictionDto[];
  grid: number;
  /** The family's tokens before the patches (a CLS token: 1): patch p is token leadingTokens + p. */
  leadingTokens: number;
  layers: number;
  heads: number;
  rollout: { headFusion: HeadFusion; discardRatio: number; map: number[] };
  /** Argmax class per patch, row-major, and its softmax probability over the patch's own logits. */
  patchArgmax: number[];
  patchScore: number[];
  legend: LegendEntryDto[];
  provider: string;
}

// ---- extension -> webview ------------------------------------------------------------------

export type ExtensionToWebviewMessage =
  | { type: 'loading'; requestId: number; image: string }
  | { type: 'explanation'; explanation: ExplanationDto }
  | { type: 'rollout'; requestId: number; headFusion: HeadFusion; discardRatio: number; map: number[] }
  | { type: 'classHeatmap'; requestId: number; classIndex: number; label: string; logits: number[] }
  | { type: 'patchAttention'; requestId: number; patch: number; layer: number; head: number | 'mean'; map: number[] }
  | { type: 'error'; requestId: number; message: string }
  /** No model, or it failed to load: the panel shows the recovery actions instead of its controls. */
  | { type: 'modelUnavailable'; requestId: number; reason: 'noModel' | 'failed'; message: string }
  | { type: 'exported'; file: string };

/** What the panel's empty state may ask the extension to run: the model recovery commands, nothing else. */
export const RECOVERY_COMMANDS = [Command.downloadModel, Command.convertModel, Command.selectModel, Command.doctor] as const;
export type RecoveryCommand = (typeof RECOVERY_COMMANDS)[number];

// ---- webview -> extension ------------------------------------------------------------------

const requestId = z.number().int().nonnegative();

export const WebviewMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready') }).strict(),
  z.object({ type: z.literal('setRollout'), requestId, headFusion: z.enum(['mean', 'max', 'min']), discardRatio: z.number().min(0).lt(1) }).strict(),
  z.object({ type: z.literal('selectClass'), requestId, classIndex: z.number().int().nonnegative().max(10_000_000) }).strict(),
  z
    .object({
      type: z.literal('selectPatch'),
      requestId,
      patch: z.number().int().nonnegative().max(1_000_000),
      layer: z.number().int().nonnegative().max(1000),
      head: z.union([z.number().int().nonnegative().max(1000), z.literal('mean')]),
    })
    .strict(),
  // The webview renders the overlay; the extension only writes bytes where the user chooses.
  z.object({ type: z.literal('exportPng'), dataUrl: z.string().max(64 * 1024 * 1024).startsWith('data:image/png;base64,'), suggestedName: z.string().max(255).regex(/^[^/\\]*$/) }).strict(),
  z.object({ type: z.literal('state'), overlay: z.enum(['rollout', 'patches', 'class', 'patchAttention', 'none']), opacity: z.number().min(0).max(1) }).strict(),
  // Names no file: the extension reveals the PNG it last wrote for this panel.
  z.object({ type: z.literal('revealExport') }).strict(),
  z.object({ type: z.literal('runCommand'), command: z.enum(RECOVERY_COMMANDS) }).strict(),
  // Names no file: Find Similar Images for the panel's own image.
  z.object({ type: z.literal('findSimilar') }).strict(),
]);

export type WebviewToExtensionMessage = z.infer<typeof WebviewMessageSchema>;

export type ParsedWebviewMessage = { ok: true; message: WebviewToExtensionMessage } | { ok: false; error: string };

export function parseWebviewMessage(raw: unknown): ParsedWebviewMessage {
  const parsed = WebviewMessageSchema.safeParse(raw);
  if (parsed.success) return { ok: true, message: parsed.data };
  const issue = parsed.error.issues[0];
  return { ok: false, error: `${issue.path.join('.') || 'message'}: ${issue.message}` };
}

/** What the panel serializer stores so a panel comes back after a reload. */
export interface PanelState {
  imagePath: string;
  overlay?: OverlayKind;
  opacity?: number;
}

// ==== the dataset view ======================================================================
//
// A second webview (view type `beitLens.dataset`) with its own unions, so neither panel can be sent the
// other's messages. The webview never names a file: it refers to rows of the scan by id (`row`), and the
// extension reads the path from its results table, so a compromised webview can only touch images that
// are rows of this scan. `generation` changes whenever the table is replaced (a new scan); requests about
// an older generation are dropped.

export type DatasetMode = 'all' | 'suspects' | 'errors';
/** 'given': a row set's own order (a Find Similar result: most similar first); 'uniqueness': the embedding's uniqueness. */
export type DatasetSortKey = 'order' | 'path' | 'folder' | 'label' | 'score' | 'given' | 'uniqueness';
export type ExportScope = 'all' | 'view' | 'selection';
export type ExportFormat = 'csv' | 'jsonl';

export interface DatasetFilter {
  /** Case-insensitive text the top-1 label must contain. */
  labelText?: string;
  /** Top-1 label index (a histogram bar). */
  labelIndex?: number;
  minScore?: number;
  maxScore?: number;
  /** Folder label; null: files directly in the scanned folder. */
  folderLabel?: string | null;
  /** Rows raising at least one of these image-quality flags. */
  flags?: QualityFlag[];
}

export interface DatasetQueryDto {
  mode: DatasetMode;
  filter: DatasetFilter;
  /** 'order' is file order in "all" and "errors", and suspicion rank in "suspects". */
  sort: { key: DatasetSortKey; descending: boolean };
  /** Only the rows of a row set the extension holds (a Find Similar result, a duplicate group); see RowSetDto. */
  rowSet?: number;
}

export interface RowCheckDto {
  reasons: Array<'disagree' | 'low-confidence'>;
  /** How sure the model is that the folder is wrong (top-1 score minus the folder label's, bounded below). */
  confidence: number;
  /** Rank of the folder's label in the top-K, or null when it is not there. */
  folderRank: number | null;
  expected: { index: number; label: string } | null;
}

export interface DatasetRowDto {
  row: number;
  /** For display (bytes that are not UTF-8 shown as U+FFFD). */
  image: string;
  name: string;
  folder: string;
  folderLabel: string | null;
  top?: PredictionDto[];
  error?: string;
  errorCode?: string;
  check?: RowCheckDto;
  /** Image-quality flags (odd_size decided over the whole scan); absent for rows that were not measured. */
  flags?: QualityFlag[];
  /** Cosine similarity to the query of the row set shown (a Find Similar result). */
  similarity?: number;
  /** Mean distance to the nearest neighbours (FiftyOne's uniqueness, 0..1); absent without an embedding. */
  uniqueness?: number;
}

export interface FolderCountDto {
  folderLabel: string | null;
  count: number;
}

export interface DatasetInfoDto {
  generation: number;
  title: string;
  folder: string;
  rows: number;
  errors: number;
  folders: FolderCountDto[];
  /** Rows raising each quality flag, in QUALITY_FLAGS order. */
  flagCounts?: Array<{ flag: QualityFlag; count: number }>;
}

export type ScanStatus = 'idle' | 'running' | 'restarting' | 'done' | 'cancelled' | 'failed';

export interface ScanStateDto {
  status: ScanStatus;
  done: number;
  total?: number;
  imagesPerSecond: number;
  etaSeconds?: number;
  classified: number;
  cached: number;
  errors: number;
  /** failed: the error; restarting: what happened; done or cancelled: what the walk skipped, if anything. */
  message?: string;
}

export interface HistogramBarDto {
  index: number;
  label: string;
  count: number;
}

export interface LabelChoiceDto {
  index: number;
  label: string;
}

export interface LabelCandidateDto extends LabelChoiceDto {
  kind: 'exact' | 'fuzzy';
  score: number;
  synonym: string;
}

export type MappingKind = 'exact' | 'fuzzy' | 'none' | 'override';

export interface FolderMappingDto {
  folder: string;
  kind: MappingKind;
  index: number | null;
  label: string | null;
  synonym?: string;
  score: number;
  /** Labels that count as agreeing with the folder (an override may accept several). */
  accepted: LabelChoiceDto[];
  candidates: LabelCandidateDto[];
  images: number;
  disagreements: number;
  lowConfidence: number;
}

export interface LabelCheckDto {
  mappings: FolderMappingDto[];
  checked: number;
  disagreements: number;
  lowConfidence: number;
  unmapped: number;
  /** Images flagged for either reason (what the Suspects view lists). */
  suspects: number;
  /** Top-1 scores below this are "low confidence". */
  lowScore: number;
}

/**
 * Rows the extension picked for the view (a Find Similar result, a duplicate group), held by the extension under
 * `id`: the view's query names the id, so paging, sorting, filtering and "Export view" all apply to the set.
 */
export interface RowSetDto {
  id: number;
  kind: 'similar' | 'group';
  /** What the chip says, e.g. "Similar to cat.jpg". */
  label: string;
  count: number;
}

export interface DuplicateGroupDto {
  kind: 'exact' | 'near';
  /** Lowest cosine between two linked images of the group (1 for exact: the same content). */
  similarity: number;
  rows: number[];
  /** Display paths of the rows, in the same order. */
  images: string[];
  /** The split folders the group's images are in (see SimilarityStateDto.splits). */
  splits: string[];
  /** The group spans two split folders: the same picture in train and test. */
  leakage: boolean;
}

export interface SimilarityStateDto {
  status: 'unavailable' | 'loading' | 'ready' | 'failed';
  /** Images with an embedding. */
  images: number;
  /** Rows without one (errors, a model without the embedding output). */
  missing: number;
  /** The split folders leakage is checked across: the scanned folder's train/val/test-like subfolders. */
  splits: string[];
  /** The near-duplicate threshold the Duplicates tab starts from (cosine). */
  threshold: number;
  message?: string;
}

// ---- the Map tab ---------------------------------------------------------------------------

export type MapMethod = 'pca' | 'umap';
export type MapPhase = 'pca' | 'neighbours' | 'layout';

/**
 * One way to colour the map: a category per point (an index into `names`, or -1 for none). Folder, top-1 label
 * and suspect status come from the results table; another feature (quality flags) adds its own the same way.
 */
export interface MapColouringDto {
  key: string;
  title: string;
  names: string[];
  /** Per point, in the order of the map's `rows`. */
  values: number[];
}

export interface MapPointsDto {
  method: MapMethod;
  /** Row id of each point (rows without an embedding, such as decode errors, are not points). */
  rows: number[];
  /** x0, y0, x1, y1, ...: two per row. */
  points: number[];
  /** Each point's path for its hover card, as the table shows it. */
  paths: string[];
  colourings: MapColouringDto[];
}

// ---- extension -> dataset webview ----------------------------------------------------------

export type DatasetHostMessage =
  | { type: 'dataset'; info: DatasetInfoDto }
  | { type: 'scan'; state: ScanStateDto }
  | { type: 'page'; requestId: number; generation: number; offset: number; total: number; rows: DatasetRowDto[] }
  | { type: 'histogram'; requestId: number; generation: number; total: number; bars: HistogramBarDto[] }
  | { type: 'labelCheck'; generation: number; check: LabelCheckDto }
  | { type: 'labels'; requestId: number; results: LabelChoiceDto[] }
  /** `side`: the longest side it was made at (a request without one gets DEFAULT_THUMBNAIL_SIDE). */
  | { type: 'thumbnail'; generation: number; row: number; src: string; side?: number }
  | { type: 'exported'; file: string; count: number; format: ExportFormat }
  | { type: 'copied'; count: number }
  | { type: 'similarity'; generation: number; state: SimilarityStateDto }
  /** Show this row set (the view switches its query to it). */
  | { type: 'rowSet'; generation: number; set: RowSetDto }
  | { type: 'duplicates'; requestId: number; generation: number; threshold: number; groups: DuplicateGroupDto[]; total: number; leakage: number }
  | { type: 'error'; requestId?: number; message: string }
  | { type: 'mapProgress'; requestId: number; generation: number; phase: MapPhase; done: number; total: number }
  | { type: 'mapPoints'; requestId: number; generation: number; map: MapPointsDto }
  /** The map request is over: UMAP done, cancelled (the PCA view stays), or failed with the reason. */
  | { type: 'mapEnded'; requestId: number; generation: number; status: 'done' | 'cancelled' | 'failed'; message?: string }
  /** The rows the table is restricted to by a Map selection (0: none), after the host applied it. */
  | { type: 'mapSelection'; generation: number; count: number };

// ---- dataset webview -> extension ----------------------------------------------------------

const generation = z.number().int().nonnegative();
const rowId = z.number().int().nonnegative().max(2 ** 31 - 1);
/** Enough for any real selection; a bound so one message cannot ask for unbounded work. */
const MAX_ROWS_PER_MESSAGE = 1_000_000;

const DatasetFilterSchema = z
  .object({
    labelText: z.string().max(200).optional(),
    labelIndex: z.number().int().nonnegative().max(10_000_000).optional(),
    minScore: z.number().min(0).max(1).optional(),
    maxScore: z.number().min(0).max(1).optional(),
    folderLabel: z.string().max(4096).nullable().optional(),
    flags: z.array(z.enum(QUALITY_FLAGS)).max(QUALITY_FLAGS.length).optional(),
  })
  .strict();

const DatasetQuerySchema = z
  .object({
    mode: z.enum(['all', 'suspects', 'errors']),
    filter: DatasetFilterSchema,
    sort: z.object({ key: z.enum(['order', 'path', 'folder', 'label', 'score', 'given', 'uniqueness']), descending: z.boolean() }).strict(),
    rowSet: z.number().int().positive().max(2 ** 31 - 1).optional(),
  })
  .strict();

export const DatasetViewMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready') }).strict(),
  z.object({ type: z.literal('query'), requestId, generation, query: DatasetQuerySchema, offset: z.number().int().nonnegative().max(2 ** 31 - 1), limit: z.number().int().min(1).max(500) }).strict(),
  z.object({ type: z.literal('histogram'), requestId, generation, query: DatasetQuerySchema, limit: z.number().int().min(1).max(200) }).strict(),
  z.object({ type: z.literal('labelCheck') }).strict(),
  z.object({ type: z.literal('searchLabels'), requestId, query: z.string().max(200), limit: z.number().int().min(1).max(100) }).strict(),
  // labels: accepted label indices; null: the folder has no label; 'auto': forget the correction.
  z.object({ type: z.literal('setMapping'), folder: z.string().min(1).max(4096), labels: z.union([z.array(z.number().int().nonnegative().max(10_000_000)).min(1).max(100), z.null(), z.literal('auto')]) }).strict(),
  // side: the gallery's larger pictures; one of THUMBNAIL_SIDES, so the host's cache holds a few sizes, not any.
  z.object({ type: z.literal('thumbnails'), generation, rows: z.array(rowId).max(200), side: z.number().refine((s) => (THUMBNAIL_SIDES as readonly number[]).includes(s), { message: `not one of the thumbnail sides ${THUMBNAIL_SIDES.join(', ')}` }).optional() }).strict(),
  z.object({ type: z.literal('open'), generation, row: rowId }).strict(),
  z.object({ type: z.literal('findSimilar'), generation, row: rowId }).strict(),
  z.object({ type: z.literal('duplicates'), requestId, generation, threshold: z.number().min(0.5).max(1) }).strict(),
  // A duplicate group clicked in the Duplicates tab: the table shows just these rows.
  z.object({ type: z.literal('showRows'), generation, rows: z.array(rowId).min(1).max(10_000), label: z.string().min(1).max(200) }).strict(),
  z.object({ type: z.literal('copyPaths'), generation, rows: z.array(rowId).min(1).max(MAX_ROWS_PER_MESSAGE) }).strict(),
  // The Map tab: a PCA view at once, then UMAP; a new request supersedes (cancels) the one before.
  z.object({ type: z.literal('map'), requestId, generation }).strict(),
  z.object({ type: z.literal('cancelMap'), requestId }).strict(),
  // A box or lasso selection restricts the table to these rows; null clears it.
  z.object({ type: z.literal('mapSelection'), generation, rows: z.array(rowId).max(MAX_ROWS_PER_MESSAGE).nullable() }).strict(),
  z
    .object({
      type: z.literal('export'),
      generation,
      scope: z.enum(['all', 'view', 'selection']),
      format: z.enum(['csv', 'jsonl']),
      query: DatasetQuerySchema.optional(),
      rows: z.array(rowId).max(MAX_ROWS_PER_MESSAGE).optional(),
    })
    .strict()
    .refine((m) => (m.scope === 'view' ? m.query !== undefined : m.scope === 'selection' ? (m.rows?.length ?? 0) > 0 : true), { message: 'a "view" export needs the query, a "selection" export its rows' }),
]);

export type DatasetViewMessage = z.infer<typeof DatasetViewMessageSchema>;

export type ParsedDatasetViewMessage = { ok: true; message: DatasetViewMessage } | { ok: false; error: string };

export function parseDatasetViewMessage(raw: unknown): ParsedDatasetViewMessage {
  const parsed = DatasetViewMessageSchema.safeParse(raw);
  if (parsed.success) return { ok: true, message: parsed.data };
  const issue = parsed.error.issues[0];
  return { ok: false, error: `${issue.path.join('.') || 'message'}: ${issue.message}` };
}

/** What the dataset view keeps in its webview state, so the serializer can reopen it after a reload. */
export interface DatasetPanelState {
  folder: string;
  query?: DatasetQueryDto;
  /** Thumbnail side in CSS pixels (one of the view's sizes); rows are this plus a margin high. */
  thumbnailSize?: number;
  /** Table or gallery (a grid of thumbnails) on the table tab. */
  layout?: DatasetLayout;
  /** The gallery's cell size in CSS pixels (its slider). */
  gallerySize?: number;
}

export type DatasetLayout = 'table' | 'gallery';

// ---- model view --------------------------------------------------------------------------------

/** What the Model view shows (src/core/modelInfo.ts builds it; repeated here so the webview imports no Node code). */
export interface ModelInfoDto {
  dir: string;
  modelId: string;
  family: string;
  architecture: string;
  config: { hiddenSize: number; numLayers: number; numHeads: number; headDim: number; intermediateSize: number; imageSize: number; patchSize: number; gridSize: number; numTokens: number; leadingTokens: number; pooling: 'mean' | 'cls'; layerNormEps: number };
  graphs: { file: string; role: 'classify' | 'explain'; inputs: TensorInfoDto[]; outputs: TensorInfoDto[] }[];
  /** The checkpoint's parameter count, recorded by `convert`; null for folders converted before it was. */
  parameters: number | null;
  dtype: string;
  compute: string;
  provider: string;
  /** Set when the graphs run on KServe v2 servers (beitLens.endpoint) instead of in the worker. */
  remote?: { endpoints: string[]; modelName: string };
  files: { name: string; bytes: number }[];
  labels: string[];
  missingLabelKeys: number[];
}

export interface TensorInfoDto {
  name: string;
  type: string;
  shape: (number | string)[];
}

export type ModelHostMessage = { type: 'modelInfo'; info: ModelInfoDto } | { type: 'error'; message: string };

export const ModelViewMessageSchema = z.discriminatedUnion('type', [z.object({ type: z.literal('ready') }).strict()]);

export type ModelViewMessage = z.infer<typeof ModelViewMessageSchema>;

export function parseModelViewMessage(raw: unknown): { ok: true; message: ModelViewMessage } | { ok: false; error: string } {
  const parsed = ModelViewMessageSchema.safeParse(raw);
  if (parsed.success) return { ok: true, message: parsed.data };
  const issue = parsed.error.issues[0];
  return { ok: false, error: `${issue.path.join('.') || 'message'}: ${issue.message}` };
}
