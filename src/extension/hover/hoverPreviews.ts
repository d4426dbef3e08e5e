/**
 * Hover results: a cache keyed by model and image content, one request per image however many
 * hovers ask for it, and a bound on how many uncached images wait in the worker's queue.
 * Pure (no vscode) so its behaviour under 1,000 rapid hovers can be tested.
 */
import { InferenceService, isInferenceError } from '../inference/inferenceClient';
import { HoverPreview, HoverThumbnail } from '../worker/workerProtocol';
import { LruCache } from './lruCache';

/** A thumbnail alone is what a hover without a model gets (keyed apart from previews: see thumbnailCacheKey). */
export type CachedPreview = HoverPreview | HoverThumbnail | { error: string };

export type PreviewOutcome<T = HoverPreview> =
  | { kind: 'done'; preview: T }
  | { kind: 'error'; message: string }
  /** Still running; the next hover over the same image gets it from the cache. */
  | { kind: 'pending' }
  | { kind: 'cancelled' };

export interface HoverPreviewsOptions {
  /** How long a hover waits for an uncached result before answering "classifying…". */
  waitMs?: number;
  /** Uncached images allowed to wait in the queue; older ones are dropped as the cursor moves on. */
  maxPending?: number;
  maxEntries?: number;
  maxBytes?: number;
  thumbnailSide?: number;
}

interface Fetch {
  promise: Promise<CachedPreview>;
  controller: AbortController;
  /** Hovers currently waiting on this fetch. */
  waiters: number;
  /** A hover gave up waiting and promised the user a result next time: keep running. */
  kept: boolean;
}

export const HOVER_LANE = 'hover';

/** Errors that say something about the image (cache them); the rest are transient. */
const TRANSIENT = new Set(['WORKER_CRASHED', 'WORKER_UNAVAILABLE', 'TIMEOUT', 'CANCELLED', 'NO_MODEL', 'MODEL_FAILED', 'DISPOSED', 'INTERNAL']);

export function previewCacheKey(modelId: string, sha256: string, topK: number): string {
  return `${modelId}\0${sha256}\0${topK}`;
}

/** The model does not change a thumbnail, so it is keyed by content and size alone. */
export function thumbnailCacheKey(sha256: string, side: number): string {
  return `thumbnail\0${sha256}\0${side}`;
}

export class HoverPreviews {
  readonly cache: LruCache<string, CachedPreview>;
  private readonly fetches = new Map<string, Fetch>();
  private readonly options: Required<HoverPreviewsOptions>;

  constructor(
    private readonly inference: InferenceService,
    options: HoverPreviewsOptions = {},
  ) {
    this.options = { waitMs: 300, maxPending: 8, maxEntries: 1000, maxBytes: 32 * 1024 * 1024, thumbnailSide: 160, ...options };
    this.cache = new LruCache<string, CachedPreview>({
      maxEntries: this.options.maxEntries,
      maxWeight: this.options.maxBytes,
      weigh: (v) => ('thumbnail' in v ? v.thumbnail.length : 0) + 512,
    });
  }

  get pendingCount(): number {
    return this.fetches.size;
  }

  cached(key: string): CachedPreview | undefined {
    return this.cache.get(key);
  }

  /**
   * The preview for the image `bytes` (the file as read and hashed for `key`), from the cache, or by
   * asking the worker and waiting at most `waitMs`. Aborting `signal` (the hover went away) cancels
   * the request unless another hover wants it.
   */
  async preview(key: string, bytes: Uint8Array, topK: number, signal?: AbortSignal): Promise<PreviewOutcome> {
    return this.fetchOnce(key, (s) => this.inference.call('preview', { bytes, topK, thumbnailSide: this.options.thumbnailSide }, { lane: HOVER_LANE, signal: s }), signal) as Promise<PreviewOutcome>;
  }

  /** The thumbnail, size and format without a model, with the same caching, sharing and bounds as {@link preview}. */
  async thumbnail(sha256: string, bytes: Uint8Array, signal?: AbortSignal): Promise<PreviewOutcome<HoverThumbnail>> {
    const key = thumbnailCacheKey(sha256, this.options.thumbnailSide);
    return this.fetchOnce(key, (s) => this.inference.call('hoverThumbnail', { bytes, thumbnailSide: this.options.thumbnailSide }, { lane: HOVER_LANE, signal: s }), signal);
  }

  private async fetchOnce(key: string, run: (signal: AbortSignal) => Promise<HoverPreview | HoverThumbnail>, signal?: AbortSignal): Promise<PreviewOutcome<HoverPreview | HoverThumbnail>> {
    const hit = this.cache.get(key);
    if (hit) return toOutcome(hit);
    if (signal?.aborted) return { kind: 'cancelled' };
    const fetch = this.fetches.get(key) ?? this.start(key, run);
    fetch.waiters++;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const waited = await Promise.race([
      fetch.promise.then((value) => ({ value })),
      new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), this.options.waitMs))),
      new Promise<'cancelled'>((resolve) => {
        onAbort = () => resolve('cancelled');
        signal?.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
    fetch.waiters--;
    if (waited === 'cancelled') {
      if (fetch.waiters === 0 && !fetch.kept) fetch.controller.abort();
      return { kind: 'cancelled' };
    }
    if (waited === 'timeout') {
      fetch.kept = true;
      return { kind: 'pending' };
    }
    return toOutcome(waited.value);
  }

  /** Cancels everything still waiting (model changed, extension shutting down). */
  cancelAll(): void {
    for (const f of this.fetches.values()) f.controller.abort();
  }

  private start(key: string, run: (signal: AbortSignal) => Promise<HoverPreview | HoverThumbnail>): Fetch {
    const controller = new AbortController();
    const fetch: Fetch = { promise: Promise.resolve({ error: '' }), controller, waiters: 0, kept: false };
    fetch.promise = run(controller.signal)
      .then(
        (preview: HoverPreview | HoverThumbnail): CachedPreview => {
          this.cache.set(key, preview);
          return preview;
        },
        (err: unknown): CachedPreview => {
          const message = (err as Error).message;
          if (!isInferenceError(err) || !TRANSIENT.has(err.code)) this.cache.set(key, { error: message });
          return { error: message };
        },
      )
      .finally(() => {
        if (this.fetches.get(key) === fetch) this.fetches.delete(key);
      });
    this.fetches.set(key, fetch);
    this.dropOldest(fetch);
    return fetch;
  }

  /** The cursor has moved on from the oldest uncached images: stop them taking the worker's time. */
  private dropOldest(newest: Fetch): void {
    for (const [key, fetch] of this.fetches) {
      if (this.fetches.size <= this.options.maxPending) break;
      if (fetch === newest || fetch.waiters > 0) continue;
      fetch.controller.abort();
      this.fetches.delete(key);
    }
  }
}

function toOutcome(value: CachedPreview): PreviewOutcome<HoverPreview | HoverThumbnail> {
  return 'error' in value ? { kind: 'error', message: value.error } : { kind: 'done', preview: value };
}
