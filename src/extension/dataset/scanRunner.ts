/**
 * Runs a dataset scan in the inference worker and sees it through worker crashes: when the worker dies
 * mid-scan the client restarts it, and the same job is sent again. The job resumes from the persistent
 * cache and skips rows already in the results file (see worker/scanJob.ts), so nothing is lost or written
 * twice. Cancelling asks the worker to stop and returns its partial summary; results so far stay.
 */
import type { ScanProgress } from '../../core/scan/scanner';
import { InferenceService, isInferenceError } from '../inference/inferenceClient';
import type { ScanJobArgs, ScanJobSummary } from '../worker/workerProtocol';

export interface DatasetScanOutcome {
  /** The last run's summary; absent when the scan was cancelled before the worker started it. */
  summary?: ScanJobSummary;
  cancelled: boolean;
  /** Times the job was sent again after the worker died. */
  restarts: number;
}

export interface RunDatasetScanOptions {
  signal?: AbortSignal;
  onProgress?: (progress: ScanProgress) => void;
  /** The worker died mid-scan and the job is being sent again (after the model has reloaded). */
  onRestart?: (restart: { attempt: number; reason: string }) => void;
  onLog?: (message: string) => void;
  /**
   * Worker deaths survived within one scan. A file that crashes the decoder natively would crash every
   * resumed run too; after this many the scan fails with the crash instead of looping.
   */
  maxRestarts?: number;
  lane?: string;
}

let scans = 0;

export async function runDatasetScan(inference: Pick<InferenceService, 'call'>, job: ScanJobArgs, options: RunDatasetScanOptions = {}): Promise<DatasetScanOutcome> {
  const maxRestarts = options.maxRestarts ?? 3;
  const lane = options.lane ?? `dataset-scan-${++scans}`;
  let restarts = 0;
  for (;;) {
    if (options.signal?.aborted) return { cancelled: true, restarts };
    try {
      const summary = await inference.call('scan', job, {
        lane,
        signal: options.signal,
        onProgress: (event) => {
          if (event.kind === 'scan') options.onProgress?.(event.progress);
          else if (event.kind === 'log') options.onLog?.(event.message);
        },
      });
      return { summary, cancelled: summary.cancelled, restarts };
    } catch (err) {
      if (isInferenceError(err, 'CANCELLED')) return { cancelled: true, restarts };
      if (isInferenceError(err, 'WORKER_CRASHED')) {
        if (options.signal?.aborted) return { cancelled: true, restarts };
        if (restarts < maxRestarts) {
          restarts++;
          options.onRestart?.({ attempt: restarts, reason: err.message });
          continue;
        }
      }
      throw err;
    }
  }
}
