/**
 * Classifies a list of images in batches through the worker. A worker crash fails one batch; its
 * images are then retried one by one, so a single image that crashes the worker costs only its
 * own row, and every input gets exactly one result, in input order.
 */
import { stringify } from 'csv-stringify/sync';
import type { ClassifyResult } from '../../core/beitModel';
import { SAFE_CSV_CAST } from '../../core/safeOutput';
import { InferenceService, isInferenceError } from '../inference/inferenceClient';

export interface ClassifySelectionOptions {
  topK: number;
  batchSize?: number;
  signal?: AbortSignal;
  lane?: string;
  onProgress?: (done: number, total: number) => void;
}

export interface ClassifySelectionResult {
  /** One per input file, in input order; shorter than the input only when cancelled. */
  results: ClassifyResult[];
  cancelled: boolean;
  /** Batches that were retried image by image after the worker stopped. */
  batchesRetried: number;
}

const RETRYABLE = ['WORKER_CRASHED', 'TIMEOUT'] as const;

function isRetryable(err: unknown): boolean {
  return RETRYABLE.some((code) => isInferenceError(err, code));
}

let scans = 0;

export async function classifySelection(inference: InferenceService, files: readonly string[], options: ClassifySelectionOptions): Promise<ClassifySelectionResult> {
  const batchSize = Math.max(1, options.batchSize ?? 8);
  const lane = options.lane ?? `scan-${++scans}`;
  const results: ClassifyResult[] = [];
  let batchesRetried = 0;
  const cancelled = (): ClassifySelectionResult => ({ results, cancelled: true, batchesRetried });

  for (let start = 0; start < files.length; start += batchSize) {
    if (options.signal?.aborted) return cancelled();
    const batch = files.slice(start, start + batchSize);
    try {
      const answered = await inference.call('classifyBatch', { files: [...batch], topK: options.topK }, { lane, signal: options.signal });
      results.push(...answered);
    } catch (err) {
      if (isInferenceError(err, 'CANCELLED')) return cancelled();
      if (!isRetryable(err)) throw err;
      batchesRetried++;
      for (const file of batch) {
        try {
          results.push({ image: file, top: await inference.call('classify', { file, topK: options.topK }, { lane, signal: options.signal }) });
        } catch (single) {
          if (isInferenceError(single, 'CANCELLED')) return cancelled();
          if (isRetryable(single) || (isInferenceError(single) && !isFatal(single.code))) results.push({ image: file, error: (single as Error).message });
          else throw single;
        }
      }
    }
    options.onProgress?.(results.length, files.length);
  }
  return { results, cancelled: false, batchesRetried };
}

/** Errors that mean no further image can succeed either. */
function isFatal(code: string): boolean {
  return code === 'NO_MODEL' || code === 'MODEL_FAILED' || code === 'DISPOSED' || code === 'WORKER_UNAVAILABLE';
}

/** `file,label1,score1,...,error`: one row per image, readable by any CSV tool (and hoverable). */
export function resultsCsv(results: readonly ClassifyResult[], topK: number): string {
  const header = ['file', ...Array.from({ length: topK }, (_, i) => [`label${i + 1}`, `score${i + 1}`]).flat(), 'error'];
  const rows = results.map((r) => {
    const cells = [r.image];
    for (let i = 0; i < topK; i++) {
      const p = r.top?.[i];
      cells.push(p ? p.label : '', p ? p.score.toFixed(6) : '');
    }
    cells.push(r.error ?? '');
    return cells;
  });
  // Cells with edge spaces are quoted too, so readers that trim unquoted cells keep the name intact.
  return stringify([header, ...rows], { cast: SAFE_CSV_CAST, quoted_match: /^\s|\s$/ });
}
