/**
 * The inference child process (dist/inferenceWorker.js). It owns everything native — onnxruntime
 * and libvips — so a crash or out-of-memory here ends this process, not the extension host; the
 * host's InferenceClient sees the exit and starts a new one.
 *
 * Calls are handled as they arrive; the host decides how many run at once.
 */
import { CallName, HostToWorkerMessage, ProgressEvent, WorkerToHostMessage } from './workerProtocol';
import { InferenceWorkerHandlers, toWireError } from './workerHandlers';

function send(message: WorkerToHostMessage): void {
  // After the host has gone, there is nobody to tell.
  if (process.connected) process.send?.(message);
}

function main(): void {
  if (!process.send) {
    process.stderr.write('inferenceWorker: must be started with child_process.fork (no IPC channel)\n');
    process.exit(2);
  }
  const handlers = new InferenceWorkerHandlers();
  const running = new Map<number, AbortController>();

  process.on('message', (raw: HostToWorkerMessage) => {
    if (raw?.type === 'cancel') {
      running.get(raw.id)?.abort();
      return;
    }
    if (raw?.type !== 'call' || typeof raw.id !== 'number') return;
    const { id, name, args } = raw;
    const controller = new AbortController();
    running.set(id, controller);
    const progress = (event: ProgressEvent) => send({ type: 'progress', id, event });
    handlers
      .run(name as CallName, args, { signal: controller.signal, progress })
      .then(
        (value) => send({ type: 'result', id, value }),
        (err: unknown) => send({ type: 'error', id, error: toWireError(err) }),
      )
      .finally(() => running.delete(id));
  });

  // The host went away (closed window, crashed extension host): don't linger as an orphan.
  process.on('disconnect', () => {
    void handlers.dispose().finally(() => process.exit(0));
  });

  send({ type: 'started', pid: process.pid });
}

main();
