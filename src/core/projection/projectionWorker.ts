/**
 * A worker thread running one projection: a UMAP of 100,000 points computes for a minute or two without
 * yielding, and the inference worker's own thread must keep answering hovers and classifications meanwhile.
 * Cancel is the parent terminating this thread (the neighbour search inside umap-js has no point to stop at).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { lowerThreadPriority } from '../workerThreads';
import { projectEmbeddings, type ProjectionMethod, type ProjectionProgress } from './projection';

export interface ProjectionJob {
  vectors: Float32Array;
  count: number;
  dim: number;
  /** Computed in this order, each answered as soon as it is done (the map shows PCA while UMAP runs). */
  methods: ProjectionMethod[];
  seed?: number;
}

export type ProjectionReply =
  | { type: 'progress'; progress: ProjectionProgress }
  | { type: 'points'; method: ProjectionMethod; points: Float32Array }
  | { type: 'done' }
  | { type: 'error'; message: string; code?: string };

const port = parentPort;
if (port) {
  lowerThreadPriority((workerData as { niceness?: number } | undefined)?.niceness ?? 0);
  port.once('message', (job: ProjectionJob) => {
    try {
      for (const method of job.methods) {
        const points = projectEmbeddings(job.vectors, job.count, job.dim, {
          method,
          seed: job.seed,
          onProgress: (progress) => port.postMessage({ type: 'progress', progress } satisfies ProjectionReply),
        });
        port.postMessage({ type: 'points', method, points } satisfies ProjectionReply, [points.buffer as ArrayBuffer]);
      }
      port.postMessage({ type: 'done' } satisfies ProjectionReply);
    } catch (err) {
      const e = err as { message?: string; code?: string };
      port.postMessage({ type: 'error', message: String(e?.message ?? err), code: e?.code } satisfies ProjectionReply);
    }
  });
}
