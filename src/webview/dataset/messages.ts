import type { DatasetHostMessage, DatasetLayout, DatasetQueryDto, DatasetRowDto, FolderMappingDto, LabelCheckDto, ScanStateDto } from '../../shared/protocol';

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
          i.folders.every((f) => isObject(f) && isNullableString(f.folderLabel) && isIndex(f.count)),
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
    case 'error':
      return ok(isOptional(m.requestId, isIndex) && isString(m.message));
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
  const s = isObject(stored.sort) ? stored.sort : {};
  if (!['order', 'path', 'folder', 'label', 'score'].includes(s.key as string)) return { mode, filter, sort: defaultSort(mode) };
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
