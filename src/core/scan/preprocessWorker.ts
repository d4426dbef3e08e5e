/**
 * Worker thread entry for {@link PreprocessPool}: decodes and preprocesses the file bytes it is sent and sends
 * back the model input, moving both buffers rather than copying them. Bundled as dist/scanWorker.js; run from
 * source (tsx) as this .ts file.
 */
import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import * as path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { preprocessBytes, type PreprocessSetup } from './preprocessJob';

export interface WorkerJob {
  id: number;
  bytes: Uint8Array;
}

export type WorkerReply = { type: 'ready' } | { type: 'done'; id: number; outcome: Awaited<ReturnType<typeof preprocessBytes>> };

/**
 * Lowers this thread's scheduling priority. Only on Linux, where a nice value belongs to a thread: elsewhere
 * setPriority re-prioritises the whole process, model included. Best effort: without it preprocessing merely
 * competes with inference for the cores.
 */
export function lowerThreadPriority(niceness: number, platform: NodeJS.Platform = process.platform): boolean {
  if (platform !== 'linux' || !(niceness > 0)) return false;
  try {
    const tid = Number(path.basename(readlinkSync('/proc/thread-self')));
    if (!Number.isInteger(tid) || tid <= 0) return false;
    setPriority(tid, Math.min(19, Math.round(niceness)));
    return true;
  } catch {
    return false;
  }
}

if (parentPort) {
  const port = parentPort;
  const setup = workerData as PreprocessSetup;
  lowerThreadPriority(setup.niceness ?? 0);
  port.on('message', (job: WorkerJob) => {
    void preprocessBytes(job.bytes, setup).then((outcome) => {
      const reply: WorkerReply = { type: 'done', id: job.id, outcome };
      port.postMessage(reply, outcome.ok ? [outcome.pixelValues.buffer as ArrayBuffer] : []);
    });
  });
  port.postMessage({ type: 'ready' } satisfies WorkerReply);
}
