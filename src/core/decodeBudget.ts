/**
 * One byte budget for image decoding, shared by everything in the process that decodes: a batch's concurrent
 * decodes, the extension worker's hovers and panels, and a scan's preprocessing threads (which ask the main
 * thread for their share, see preprocessPool.ts). The pixel limit alone does not bound memory: eight 16-bit
 * RGBA 10000x10000 PNGs are only 6 MB of files but, decoded side by side, several GB.
 *
 * Each decode computes its cost from the header (image.ts `decodeCostBytes`, plus the resize's buffers from
 * pilResize.ts) and holds that many bytes until its pixel buffers are no longer needed. A decode that does not fit
 * waits, first come first served, so a large image is never starved by a stream of small ones; an image that
 * could not fit even into the whole budget is refused from its header.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

export const DEFAULT_DECODE_BUDGET_BYTES = 1024 * 1024 * 1024;

/** Gives back what {@link DecodeBudget.acquire} took; calling it again does nothing. */
export type BudgetRelease = () => void;

/** What a decode needs of a budget; a worker thread's stand-in forwards to the main thread's. */
export interface DecodeBudget {
  readonly totalBytes: number;
  /** Resolves once `bytes` are reserved. Rejects (RangeError) when `bytes` exceeds {@link totalBytes}. */
  acquire(bytes: number): Promise<BudgetRelease>;
}

/** An async counting semaphore over bytes, FIFO. */
export class ByteBudget implements DecodeBudget {
  private used = 0;
  private readonly waiting: { bytes: number; grant: () => void }[] = [];

  constructor(readonly totalBytes: number = DEFAULT_DECODE_BUDGET_BYTES) {
    if (!Number.isSafeInteger(totalBytes) || totalBytes < 1) throw new RangeError(`decode budget must be a positive integer number of bytes, got ${totalBytes}`);
  }

  /** Bytes currently reserved. */
  get inUse(): number {
    return this.used;
  }

  /** Decodes waiting for room. */
  get queued(): number {
    return this.waiting.length;
  }

  acquire(bytes: number): Promise<BudgetRelease> {
    if (!Number.isFinite(bytes) || bytes < 0) return Promise.reject(new RangeError(`cannot reserve ${bytes} bytes`));
    if (bytes > this.totalBytes) return Promise.reject(new RangeError(`${bytes} bytes exceed the decode budget of ${this.totalBytes}`));
    const amount = Math.ceil(bytes);
    return new Promise((resolve) => {
      this.waiting.push({ bytes: amount, grant: () => resolve(this.releaser(amount)) });
      this.grant();
    });
  }

  private releaser(bytes: number): BudgetRelease {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= bytes;
      this.grant();
    };
  }

  private grant(): void {
    // Strict FIFO: the head waits for room even if a later, smaller request would fit now.
    while (this.waiting.length > 0 && this.used + this.waiting[0].bytes <= this.totalBytes) {
      const next = this.waiting.shift()!;
      this.used += next.bytes;
      next.grant();
    }
  }
}

let processBudget: ByteBudget | undefined;

/** The budget every decode uses unless its options name another. */
export function processDecodeBudget(): ByteBudget {
  processBudget ??= new ByteBudget(DEFAULT_DECODE_BUDGET_BYTES);
  return processBudget;
}

/**
 * Replaces the process-wide budget (e.g. from a setting). Decodes already holding or waiting for the old one
 * finish against it; later decodes use the new one.
 */
export function setProcessDecodeBudget(totalBytes: number): ByteBudget {
  processBudget = new ByteBudget(totalBytes);
  return processBudget;
}

/** Decodes at least this large give their memory back (see {@link reclaimDecodedMemory}) before their budget. */
export const RECLAIM_AFTER_BYTES = 64 * 1024 * 1024;

let collect: (() => void) | null | undefined;

/**
 * Frees the pixel buffers of a decode that is over, before its budget is handed to the next one. libvips returns
 * pixels in buffers that only a garbage collection frees, and nothing prompts V8 to collect while a 10000x10000
 * image is being resized on this thread: measured, eight such images in one call peaked at 1.8 GB of RSS against a
 * 1 GiB budget, garbage buffers included. A full collection of a heap that holds no pixels costs a few ms, so it is
 * done after large decodes only; the buffers' finalizers then run on the next turn of the event loop.
 */
export async function reclaimDecodedMemory(): Promise<void> {
  if (collect === undefined) {
    try {
      // The flag only reaches contexts created after it is set, hence the fresh context.
      setFlagsFromString('--expose-gc');
      const gc: unknown = runInNewContext('gc');
      collect = typeof gc === 'function' ? (gc as () => void) : null;
    } catch {
      collect = null;
    }
  }
  collect?.();
  await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Human-readable size for error messages ("1.9 GB"). */
export function formatBytes(bytes: number): string {
  if (bytes >= 1e9) return `${(bytes / 1e9).toFixed(1)} GB`;
  if (bytes >= 1e6) return `${(bytes / 1e6).toFixed(0)} MB`;
  return `${Math.ceil(bytes / 1e3)} kB`;
}
