/**
 * Runs a projection on its own worker thread (see projectionWorker.ts) at low priority. Abort terminates the
 * thread, which is immediate even inside umap-js's neighbour search, and rejects with CANCELLED.
 *
 * Worker script: dist/projectionWorker.js next to the bundle, or projectionWorker.ts next to this file under tsx.
 */
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { BeitLensError } from '../errors';
import { sourceWorkerEnv, sourceWorkerExecArgv } from '../workerThreads';
import type { ProjectionMethod, ProjectionProgress } from './projection';
import type { ProjectionJob, ProjectionReply } from './projectionWorker';

/** The file webpack emits next to the inference worker's bundle. */
export const BUNDLED_PROJECTION_WORKER_FILE = 'projectionWorker.js';

export function defaultProjectionWorkerScript(): string {
  return __filename.endsWith('.ts') ? path.join(__dirname, 'projectionWorker.ts') : path.join(__dirname, BUNDLED_PROJECTION_WORKER_FILE);
}

export interface ProjectionThreadOptions {
  /** Computed in this order; `onPoints` hears each as it is done. */
  methods: ProjectionMethod[];
  onPoints?: (method: ProjectionMethod, points: Float32Array) => void;
  /**
   * Moves `vectors` to the thread instead of copying it (the caller's array is detached): a copy of 100,000 x 768
   * floats would hold the calling thread for a fraction of a second and double the memory meanwhile.
   */
  transfer?: boolean;
  seed?: number;
  signal?: AbortSignal;
  onProgress?: (progress: ProjectionProgress) => void;
  /** Nice value of the thread (Linux). Default 10: below inference, above nothing. */
  niceness?: number;
  script?: string;
}

/** Row-major [count, 2] points of the last method. */
export function projectOnThread(vectors: Float32Array, count: number, dim: number, options: ProjectionThreadOptions): Promise<Float32Array> {
  const { signal } = options;
  if (signal?.aborted) return Promise.reject(new BeitLensError('CANCELLED', 'the projection was cancelled'));
  const script = options.script ?? defaultProjectionWorkerScript();
  const env = sourceWorkerEnv(script);
  const worker = new Worker(script, { execArgv: sourceWorkerExecArgv(script), workerData: { niceness: options.niceness ?? 10 }, ...(env ? { env } : {}) });
  return new Promise<Float32Array>((resolve, reject) => {
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      void worker.terminate();
      fn();
    };
    const onAbort = () => finish(() => reject(new BeitLensError('CANCELLED', 'the projection was cancelled')));
    signal?.addEventListener('abort', onAbort, { once: true });
    let last: Float32Array | undefined;
    worker.on('message', (reply: ProjectionReply) => {
      if (reply.type === 'progress') options.onProgress?.(reply.progress);
      else if (reply.type === 'points') {
        last = reply.points;
        options.onPoints?.(reply.method, reply.points);
      } else if (reply.type === 'done') finish(() => (last ? resolve(last) : reject(new Error('the projection thread answered no points'))));
      else finish(() => reject(reply.code === 'CANCELLED' ? new BeitLensError('CANCELLED', reply.message) : new Error(reply.message)));
    });
    worker.on('error', (err) => finish(() => reject(err)));
    worker.on('exit', (code) => finish(() => reject(new Error(`the projection thread exited (code ${code}) before answering`))));
    const job: ProjectionJob = { vectors, count, dim, methods: options.methods, seed: options.seed };
    worker.postMessage(job, options.transfer ? [vectors.buffer as ArrayBuffer] : []);
  });
}
