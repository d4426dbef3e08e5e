import type { ExplanationDto, ExtensionToWebviewMessage, HeadFusion, LegendEntryDto, PredictionDto } from '../shared/protocol';

/**
 * Shape checks for what the extension posts. The sender is trusted, but checking here (by hand, to
 * keep zod out of the bundle) means a host bug or a message from another version of the extension
 * is dropped as a whole instead of half-rendering or throwing inside a draw loop.
 */

type Obj = Record<string, unknown>;

const MAX_GRID = 64;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isFiniteNumber(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

function isIndex(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

function isNumberArray(v: unknown, length: number): v is number[] {
  return Array.isArray(v) && v.length === length && v.every(isFiniteNumber);
}

function isHeadFusion(v: unknown): v is HeadFusion {
  return v === 'mean' || v === 'max' || v === 'min';
}

function isDiscardRatio(v: unknown): v is number {
  return isFiniteNumber(v) && v >= 0 && v < 1;
}

function isPrediction(v: unknown): v is PredictionDto {
  return isObject(v) && isIndex(v.index) && typeof v.label === 'string' && isFiniteNumber(v.score);
}

function isLegendEntry(v: unknown): v is LegendEntryDto {
  return (
    isObject(v) &&
    isIndex(v.index) &&
    typeof v.label === 'string' &&
    isIndex(v.patches) &&
    isFiniteNumber(v.share) &&
    Array.isArray(v.color) &&
    v.color.length === 3 &&
    v.color.every((c) => isFiniteNumber(c) && c >= 0 && c <= 255)
  );
}

function isExplanation(v: unknown): v is ExplanationDto {
  if (!isObject(v) || !isIndex(v.requestId)) return false;
  const { image, rollout, grid } = v;
  if (!isObject(image) || typeof image.src !== 'string' || typeof image.name !== 'string') return false;
  if (!isFiniteNumber(image.width) || image.width <= 0 || !isFiniteNumber(image.height) || image.height <= 0) return false;
  if (!Number.isSafeInteger(grid) || (grid as number) < 1 || (grid as number) > MAX_GRID) return false;
  const patches = (grid as number) ** 2;
  if (!isIndex(v.leadingTokens) || !isIndex(v.layers) || !isIndex(v.heads) || typeof v.provider !== 'string') return false;
  if (!isObject(rollout) || !isHeadFusion(rollout.headFusion) || !isDiscardRatio(rollout.discardRatio) || !isNumberArray(rollout.map, patches)) return false;
  if (!isNumberArray(v.patchArgmax, patches) || !v.patchArgmax.every(isIndex) || !isNumberArray(v.patchScore, patches)) return false;
  return Array.isArray(v.top) && v.top.every(isPrediction) && Array.isArray(v.legend) && v.legend.every(isLegendEntry);
}

/**
 * Narrows anything that arrived on `window` to a message of the protocol. Map lengths can only be
 * checked against the current explanation's grid, so `expectedPatches` is passed in; replies that
 * arrive before any explanation are rejected, since there is nothing to draw them on.
 */
export function asExtensionMessage(data: unknown, expectedPatches: number | undefined): ExtensionToWebviewMessage | undefined {
  if (!isObject(data) || typeof data.type !== 'string') return undefined;
  const m = data;
  const mapOk = (map: unknown): boolean => expectedPatches !== undefined && isNumberArray(map, expectedPatches);
  switch (m.type) {
    case 'loading':
      return isIndex(m.requestId) && typeof m.image === 'string' ? (m as ExtensionToWebviewMessage) : undefined;
    case 'explanation':
      return isExplanation(m.explanation) ? (m as ExtensionToWebviewMessage) : undefined;
    case 'rollout':
      return isIndex(m.requestId) && isHeadFusion(m.headFusion) && isDiscardRatio(m.discardRatio) && mapOk(m.map) ? (m as ExtensionToWebviewMessage) : undefined;
    case 'classHeatmap':
      return isIndex(m.requestId) && isIndex(m.classIndex) && typeof m.label === 'string' && mapOk(m.logits) ? (m as ExtensionToWebviewMessage) : undefined;
    case 'patchAttention':
      return isIndex(m.requestId) && isIndex(m.patch) && isIndex(m.layer) && (m.head === 'mean' || isIndex(m.head)) && mapOk(m.map) ? (m as ExtensionToWebviewMessage) : undefined;
    case 'error':
      return isIndex(m.requestId) && typeof m.message === 'string' ? (m as ExtensionToWebviewMessage) : undefined;
    case 'modelUnavailable':
      return isIndex(m.requestId) && (m.reason === 'noModel' || m.reason === 'failed') && typeof m.message === 'string' ? (m as ExtensionToWebviewMessage) : undefined;
    case 'exported':
      return typeof m.file === 'string' ? (m as ExtensionToWebviewMessage) : undefined;
    default:
      return undefined;
  }
}
