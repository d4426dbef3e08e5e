/**
 * Worker thread entry for {@link PreprocessPool}: decodes and preprocesses the file bytes it is sent and sends
 * back the model input, moving both buffers rather than copying them. Bundled as dist/scanWorker.js; run from
 * source (tsx) as this .ts file.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { preprocessBytes, type PreprocessSetup } from './preprocessJob';

export interface WorkerJob {
  id: number;
  bytes: Uint8Array;
}

export type WorkerReply = { type: 'ready' } | { type: 'done'; id: number; outcome: Awaited<ReturnType<typeof preprocessBytes>> };

if (parentPort) {
  const port = parentPort;
  const setup = workerData as PreprocessSetup;
  port.on('message', (job: WorkerJob) => {
    void preprocessBytes(job.bytes, setup).then((outcome) => {
      const reply: WorkerReply = { type: 'done', id: job.id, outcome };
      port.postMessage(reply, outcome.ok ? [outcome.pixelValues.buffer as ArrayBuffer] : []);
    });
  });
  port.postMessage({ type: 'ready' } satisfies WorkerReply);
}
