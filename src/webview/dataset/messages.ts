import { isQualityFlagList as isFlagList } from '../../core/quality/flags';
import type { DatasetHostMessage, DatasetLayout, DatasetQueryDto, DatasetRowDto, DuplicateGroupDto, FolderMappingDto, LabelCheckDto, MapPointsDto, RowSetDto, ScanStateDto, SimilarityStateDto } from '../../shared/protocol';

/**
 * Shape checks for what the extension posts to the dataset view (by hand, to keep zod out of the bundle).
 * A host bug or a message from another version is dropped whole instead of half-rendering a table.
 */

type Obj = Record<string, unknown>;

const isObject = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isIndex = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isString = (v: unknown): v is string => typeof v === 'string';
const isOptional = <T>(v: unknown, check: (x: unknown) => x is T): boolean => v === undefined || check(v);
const isNullableString = (v: unknown): v is string | null => v === null || isString(v);

function isPrediction(v: unknown): boolean {
  return isObject(v) && isIndex(v.index) && isString(v.label) && isNumber(v.score);
}

function isChoice(v: unknown): boolean {
  return isObject(v) && isIndex(v.index) && isString(v.label);
}

function isCheck(v: unknown): boolean {
  return (
    isObject(v) &&
    Array.isArray(v.reasons) &&
    v.reasons.every((r) => r === 'disagree' || r === 'low-confidence') &&
    isNumber(v.confidence) &&
    (v.folderRank === null || isIndex(v.folderRank)) &&
    (v.expected === null || isChoice(v.expected))
  );
}

export function isRow(v: unknown): v is DatasetRowDto {
  return (
    isObject(v) &&
    isIndex(v.row) &&
    isString(v.image) &&
    isString(v.name) &&
    isString(v.folder) &&
    isNullableString(v.folderLabel) &&
    (v.top === undefined || (Array.isArray(v.top) && v.top.every(isPrediction))) &&
    isOptional(v.error, isString) &&
    isOptional(v.errorCode, isString) &&
    (v.check === undefined || isCheck(v.check)) &&
    (v.flags === undefined || isFlagList(v.flags)) &&
    isOptional(v.similarity, isNumber) &&
    isOptional(v.uniqueness, isNumber) &&
    (v.top !== undefined || v.error !== undefined)
  );
}

function isScanState(v: unknown): v is ScanStateDto {
  return (
    isObject(v) &&
    ['idle', 'running', 'restarting', 'done', 'cancelled', 'failed'].includes(v.status as string) &&
    isIndex(v.done) &&
    isOptional(v.total, isIndex) &&
    isNumber(v.imagesPerSecond) &&
    isOptional(v.etaSeconds, isNumber) &&
    isIndex(v.classified) &&
    isIndex(v.cached) &&
    isIndex(v.errors) &&
    isOptional(v.message, isString)
  );
}

function isMapping(v: unknown): v is FolderMappingDto {
  return (
    isObject(v) &&
    isString(v.folder) &&
    ['exact', 'fuzzy', 'none', 'override'].includes(v.kind as string) &&
    (v.index === null || isIndex(v.index)) &&
    isNullableString(v.label) &&
    isOptional(v.synonym, isString) &&
    isNumber(v.score) &&
    Array.isArray(v.accepted) &&
    v.accepted.every(isChoice) &&
    Array.isArray(v.candidates) &&
    v.candidates.every((c) => isChoice(c) && isObject(c) && (c.kind === 'exact' || c.kind === 'fuzzy') && isNumber(c.score) && isString(c.synonym)) &&
    isIndex(v.images) &&
    isIndex(v.disagreements) &&
    isIndex(v.lowConfidence)
  );
}

function isLabelCheck(v: unknown): v is LabelCheckDto {
  return (
    isObject(v) &&
    Array.isArray(v.mappings) &&
    v.mappings.every(isMapping) &&
    isIndex(v.checked) &&
    isIndex(v.disagreements) &&
    isIndex(v.lowConfidence) &&
    isIndex(v.unmapped) &&
    isIndex(v.suspects) &&
    isNumber(v.lowScore)
  );
}

const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);

function isSimilarityState(v: unknown): v is SimilarityStateDto {
  return (
    isObject(v) &&
    ['unavailable', 'loading', 'ready', 'failed'].includes(v.status as string) &&
    isIndex(v.images) &&
    isIndex(v.missing) &&
    isStrings(v.splits) &&
    isNumber(v.threshold) &&
    isOptional(v.message, isString)
  );
}

function isRowSet(v: unknown): v is RowSetDto {
  return isObject(v) && isIndex(v.id) && (v.kind === 'similar' || v.kind === 'group') && isString(v.label) && isIndex(v.count);
}

function isGroup(v: unknown): v is DuplicateGroupDto {
  return (
    isObject(v) &&
    (v.kind === 'exact' || v.kind === 'near') &&
    isNumber(v.similarity) &&
    Array.isArray(v.rows) &&
    v.rows.length >= 2 &&
    v.rows.every(isIndex) &&
    isStrings(v.images) &&
    v.images.length === v.rows.length &&
    isStrings(v.splits) &&
    typeof v.leakage === 'boolean'
  );
}

/** Every array the right length and kind: a short or non-numeric array would draw points at the wrong rows. */
function isMapPoints(v: unknown): v is MapPointsDto {
  if (!isObject(v) || (v.method !== 'pca' && v.method !== 'umap') || !Array.isArray(v.rows) || !Array.isArray(v.points) || !Array.isArray(v.colourings)) return false;
  const n = v.rows.length;
  return (
    v.rows.every(isIndex) &&
    v.points.length === 2 * n &&
    v.points.every(isNumber) &&
    Array.isArray(v.paths) &&
    v.paths.length === n &&
    v.paths.every(isString) &&
    v.colourings.every(
      (c) => isObject(c) && isString(c.key) && isString(c.title) && Array.isArray(c.names) && c.names.every(isString) && Array.isArray(c.values) && c.values.length === n && c.values.every((x) => Number.isInteger(x) && (x as number) >= -1 && (x as number) < (c.names as unknown[]).length),
    )
  );
}

export function asHostMessage(data: unknown): DatasetHostMessage | undefined {
  if (!isObject(data) || !isString(data.type)) return undefined;
  const m = data;
  const ok = (valid: boolean) => (valid ? (m as DatasetHostMessage) : undefined);
  switch (m.type) {
    case 'dataset': {
      const i = m.info;
      return ok(
        isObject(i) &&
          isIndex(i.generation) &&
          isString(i.title) &&
          isString(i.folder) &&
          isIndex(i.rows) &&
          isIndex(i.errors) &&
          Array.isArray(i.folders) &&
          i.folders.every((f) => isObject(f) && isNullableString(f.folderLabel) && isIndex(f.count)) &&
          (i.flagCounts === undefined || (Array.isArray(i.flagCounts) && i.flagCounts.every((c) => isObject(c) && isFlagList([c.flag]) && isIndex(c.count)))),
      );
    }
    case 'scan':
      return ok(isScanState(m.state));
    case 'page':
      return ok(isIndex(m.requestId) && isIndex(m.generation) && isIndex(m.offset) && isIndex(m.total) && Array.isArray(m.rows) && m.rows.every(isRow));
    case 'histogram':
      return ok(isIndex(m.requestId) && isIndex(m.generation) && isIndex(m.total) && Array.isArray(m.bars) && m.bars.every((b) => isChoice(b) && isObject(b) && isIndex(b.count)));
    case 'labelCheck':
      return ok(isIndex(m.generation) && isLabelCheck(m.check));
    case 'labels':
      return ok(isIndex(m.requestId) && Array.isArray(m.results) && m.results.every(isChoice));
    case 'thumbnail':
      return ok(isIndex(m.generation) && isIndex(m.row) && isString(m.src) && (m.src === '' || /^data:image\/(png|jpeg|webp|gif);base64,/.test(m.src)) && isOptional(m.side, isIndex));
    case 'exported':
      return ok(isString(m.file) && isIndex(m.count) && (m.format === 'csv' || m.format === 'jsonl'));
    case 'copied':
      return ok(isIndex(m.count));
    case 'similarity':
      return ok(isIndex(m.generation) && isSimilarityState(m.state));
    case 'rowSet':
      return ok(isIndex(m.generation) && isRowSet(m.set));
    case 'duplicates':
      return ok(isIndex(m.requestId) && isIndex(m.generation) && isNumber(m.threshold) && Array.isArray(m.groups) && m.groups.every(isGroup) && isIndex(m.total) && isIndex(m.leakage));
    case 'error':
      return ok(isOptional(m.requestId, isIndex) && isString(m.message));
    case 'mapProgress':
      return ok(isIndex(m.requestId) && isIndex(m.generation) && ['pca', 'neighbours', 'layout'].includes(m.phase as string) && isIndex(m.done) && isIndex(m.total));
    case 'mapPoints':
      return ok(isIndex(m.requestId) && isIndex(m.generation) && isMapPoints(m.map));
    case 'mapEnded':
      return ok(isIndex(m.requestId) && isIndex(m.generation) && ['done', 'cancelled', 'failed'].includes(m.status as string) && isOptional(m.message, isString));
    case 'mapSelection':
      return ok(isIndex(m.generation) && isIndex(m.count));
    default:
      return undefined;
  }
}

/**
 * Path order by default: deterministic and the same for two scans of one folder, where "#" (the order rows
 * were written, cache hits first) is not. The suspects are ranked, so their default is the rank ('order').
 */
export function defaultSort(mode: DatasetQueryDto['mode']): DatasetQueryDto['sort'] {
  return { key: mode === 'suspects' ? 'order' : 'path', descending: false };
}

export const DEFAULT_QUERY: DatasetQueryDto = { mode: 'all', filter: {}, sort: defaultSort('all') };

/** A stored query, taking each part only if valid (state written by another version must not break the view). */
export function restoreQuery(stored: unknown): DatasetQueryDto {
  if (!isObject(stored)) return DEFAULT_QUERY;
  const mode = stored.mode === 'suspects' || stored.mode === 'errors' ? stored.mode : 'all';
  const f = isObject(stored.filter) ? stored.filter : {};
  const filter: DatasetQueryDto['filter'] = {};
  if (isString(f.labelText) && f.labelText.length <= 200) filter.labelText = f.labelText;
  if (isIndex(f.labelIndex)) filter.labelIndex = f.labelIndex;
  if (isNumber(f.minScore) && f.minScore >= 0 && f.minScore <= 1) filter.minScore = f.minScore;
  if (isNumber(f.maxScore) && f.maxScore >= 0 && f.maxScore <= 1) filter.maxScore = f.maxScore;
  if (isNullableString(f.folderLabel)) filter.folderLabel = f.folderLabel;
  if (isFlagList(f.flags) && f.flags.length > 0) filter.flags = f.flags;
  const s = isObject(stored.sort) ? stored.sort : {};
  // Not 'given': the row set it ordered is gone after a reload (the extension holds row sets only while it runs).
  if (!['order', 'path', 'folder', 'label', 'score', 'uniqueness'].includes(s.key as string)) return { mode, filter, sort: defaultSort(mode) };
  return { mode, filter, sort: { key: s.key as DatasetQueryDto['sort']['key'], descending: s.descending === true } };
}

/** Thumbnail sizes the view offers, in CSS pixels; the extension makes thumbnails of up to 96 px. */
export const THUMBNAIL_SIZES = [48, 72, 96] as const;

/** A stored thumbnail size, or the smallest (the default) when it is not one of {@link THUMBNAIL_SIZES}. */
export function restoreThumbnailSize(stored: unknown): number {
  return THUMBNAIL_SIZES.includes(stored as (typeof THUMBNAIL_SIZES)[number]) ? (stored as number) : THUMBNAIL_SIZES[0];
}

/** The gallery's cell sizes (its slider), in CSS pixels: from a contact sheet to a picture you can judge. */
export const GALLERY_SIZE = { min: 64, max: 320, step: 16, default: 128 } as const;

/** A stored gallery cell size, snapped onto the slider's steps; the default when it is not a number. */
export function restoreGallerySize(stored: unknown): number {
  if (!isNumber(stored)) return GALLERY_SIZE.default;
  const snapped = GALLERY_SIZE.min + Math.round((stored - GALLERY_SIZE.min) / GALLERY_SIZE.step) * GALLERY_SIZE.step;
  return Math.max(GALLERY_SIZE.min, Math.min(GALLERY_SIZE.max, snapped));
}

export function restoreLayout(stored: unknown): DatasetLayout {
  return stored === 'gallery' ? 'gallery' : 'table';
}
