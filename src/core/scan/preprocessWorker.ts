/**
 * Worker thread entry for {@link PreprocessPool}: decodes and preprocesses the file bytes it is sent and sends
 * back the model input, moving both buffers rather than copying them. Bundled as dist/scanWorker.js; run from
 * source (tsx) as this .ts file.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import type { BudgetRelease, DecodeBudget } from '../decodeBudget';
import { lowerThreadPriority } from '../workerThreads';
import { preprocessBytes, type PreprocessSetup } from './preprocessJob';

export interface WorkerJob {
  id: number;
  bytes: Uint8Array;
}

/**
 * The pool's answer to an 'acquire'; or a standing credit for this thread ('credit'), or the pool taking it back
 * ('revoke') because a large image cannot fit beside the credits.
 */
export type BudgetGrant =
  | { type: 'granted'; ticket: number }
  | { type: 'denied'; ticket: number; error: string }
  | { type: 'credit'; bytes: number }
  | { type: 'revoke' };

export type WorkerReply =
  | { type: 'ready' }
  | { type: 'done'; id: number; outcome: Awaited<ReturnType<typeof preprocessBytes>> }
  | { type: 'acquire'; ticket: number; bytes: number }
  | { type: 'release'; ticket: number }
  | { type: 'credit-returned' };

/**
 * This thread's view of the pool's decode budget. A decode that fits in what is free of the thread's standing
 * credit (bytes the pool already holds of the process budget for this thread) takes it here, with no message;
 * anything else is a round trip to the main thread. A thread runs up to `jobsPerWorker` decodes at once, so the
 * credit is counted, not assumed free.
 */
export class ParentBudget implements DecodeBudget {
  private nextTicket = 1;
  private credit = 0;
  private creditUsed = 0;
  private returning = false;
  private readonly pending = new Map<number, { resolve(release: BudgetRelease): void; reject(err: Error): void }>();

  constructor(
    readonly totalBytes: number,
    private readonly port: Pick<MessagePort, 'postMessage'>,
  ) {}

  /** Bytes of the standing credit in use by this thread's decodes. */
  get creditInUse(): number {
    return this.creditUsed;
  }

  acquire(bytes: number): Promise<BudgetRelease> {
    if (bytes >= 0 && this.creditUsed + bytes <= this.credit) {
      const amount = Math.ceil(bytes);
      this.creditUsed += amount;
      let released = false;
      return Promise.resolve(() => {
        if (released) return;
        released = true;
        this.creditUsed -= amount;
        this.returnCreditIfIdle();
      });
    }
    const ticket = this.nextTicket++;
    return new Promise((resolve, reject) => {
      this.pending.set(ticket, { resolve, reject });
      this.port.postMessage({ type: 'acquire', ticket, bytes } satisfies WorkerReply);
    });
  }

  /** Handles a {@link BudgetGrant} from the pool. */
  answer(grant: BudgetGrant): void {
    if (grant.type === 'credit') {
      this.credit = grant.bytes;
      this.returning = false;
      return;
    }
    if (grant.type === 'revoke') {
      // No new decodes on the credit; it goes back once the ones using it are done.
      this.credit = 0;
      this.returning = true;
      this.returnCreditIfIdle();
      return;
    }
    const waiter = this.pending.get(grant.ticket);
    if (!waiter) return;
    this.pending.delete(grant.ticket);
    if (grant.type === 'denied') return waiter.reject(new RangeError(grant.error));
    let released = false;
    waiter.resolve(() => {
      if (released) return;
      released = true;
      this.port.postMessage({ type: 'release', ticket: grant.ticket } satisfies WorkerReply);
    });
  }

  private returnCreditIfIdle(): void {
    if (!this.returning || this.creditUsed > 0) return;
    this.returning = false;
    this.port.postMessage({ type: 'credit-returned' } satisfies WorkerReply);
  }
}

if (parentPort) {
  const port = parentPort;
  const setup = workerData as PreprocessSetup;
  lowerThreadPriority(setup.niceness ?? 0);
  const budget = setup.budgetBytes !== undefined ? new ParentBudget(setup.budgetBytes, port) : undefined;
  const jobSetup: PreprocessSetup = budget ? { ...setup, options: { ...setup.options, budget } } : setup;
  port.on('message', (message: WorkerJob | BudgetGrant) => {
    if ('type' in message) return budget?.answer(message);
    const job = message;
    void preprocessBytes(job.bytes, jobSetup).then((outcome) => {
      const reply: WorkerReply = { type: 'done', id: job.id, outcome };
      port.postMessage(reply, outcome.ok ? [outcome.pixelValues.buffer as ArrayBuffer] : []);
    });
  });
  port.postMessage({ type: 'ready' } satisfies WorkerReply);
}
