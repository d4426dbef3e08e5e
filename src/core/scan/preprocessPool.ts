/**
 * Decoding and preprocessing on worker threads, so the model (whose onnxruntime calls run off the main
 * thread) never waits for images and the main thread stays free to read, hash and batch.
 *
 * The pool itself queues without limit; the scanner bounds how many files are in flight, which is where
 * backpressure belongs (it knows the batch size). Each worker gets up to `jobsPerWorker` jobs at a time so it
 * starts the next image while the last result travels back.
 *
 * Memory: worker threads decode in this process, so they draw on this thread's decode budget (decodeBudget.ts).
 * Asking for every image costs a message round trip per image (10% of a scan of small JPEGs), so each thread
 * holds a standing credit, acquired from the budget when the thread starts ({@link workerCreditBytes}): an image
 * whose cost fits in what is free of its thread's credit decodes without asking. Anything larger asks for its
 * bytes ('acquire'), waits for 'granted' and says 'release' when done. Credits and grants are both taken from
 * the one budget, FIFO with every other decode of the process, so the total held by the process (credits,
 * grants, the main thread's own decodes) is at most the budget, however many threads decode. A request that
 * cannot fit beside the credits takes them back first ('revoke'; each thread returns its credit once its
 * decodes on it are done), and the credits are re-acquired behind it, so it waits its turn instead of forever.
 * A worker that dies or is stopped gives its credit and grants back.
 *
 * Worker script: dist/scanWorker.js next to the bundle, or preprocessWorker.ts next to this file when running
 * from source under tsx (started with tsx's require hook). Both are overridable.
 */
import { availableParallelism } from 'node:os';
import * as path from 'node:path';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { type BudgetRelease, type DecodeBudget, processDecodeBudget } from '../decodeBudget';
import { BeitLensError, errorMessage } from '../errors';
import { sourceWorkerEnv, sourceWorkerExecArgv as defaultExecArgv } from '../workerThreads';
import type { PreprocessOutcome, PreprocessSetup } from './preprocessJob';
import type { BudgetGrant, WorkerJob, WorkerReply } from './preprocessWorker';

export type { PreprocessOutcome } from './preprocessJob';

/** The file webpack must emit next to the bundle: entry `scanWorker: './src/core/scan/preprocessWorker.ts'`. */
export const BUNDLED_WORKER_FILE = 'scanWorker.js';

export function defaultWorkerScript(): string {
  return __filename.endsWith('.ts') ? path.join(__dirname, 'preprocessWorker.ts') : path.join(__dirname, BUNDLED_WORKER_FILE);
}

export const DEFAULT_WORKER_NICENESS = 19;

/** A standing credit covers a 12-megapixel JPEG's exact decode (about 50 MB); more would only idle. */
export const MAX_WORKER_CREDIT_BYTES = 64 * 1024 * 1024;
/** Below this a credit covers too few images to save round trips, and only keeps bytes from everyone else. */
export const MIN_WORKER_CREDIT_BYTES = 16 * 1024 * 1024;

/**
 * Each thread's standing credit: at most a 1/(threads + 1) share of the budget, so at least one share is left for
 * the main thread and the images that ask; 0 (ask for every image) when the share is under
 * {@link MIN_WORKER_CREDIT_BYTES}.
 */
export function workerCreditBytes(budgetBytes: number, threads: number): number {
  const credit = Math.min(MAX_WORKER_CREDIT_BYTES, Math.floor(budgetBytes / (Math.max(1, threads) + 1)));
  return credit >= MIN_WORKER_CREDIT_BYTES ? credit : 0;
}

/**
 * At normal priority: half the cores (at most 8), since onnxruntime already runs one thread per physical core.
 * At low priority (Linux): one per core (at least 2, at most 8). Those threads only get the cores while
 * inference leaves them, which on a saturated machine is the moment between two batches, so the images for
 * the next batch are finished by all cores at once instead of one.
 */
export function defaultWorkerCount(niceness = DEFAULT_WORKER_NICENESS, platform: NodeJS.Platform = process.platform, cores = availableParallelism()): number {
  if (platform === 'linux' && niceness > 0) return Math.max(2, Math.min(8, cores));
  return Math.max(1, Math.min(8, Math.floor(cores / 2)));
}

/** What the pool needs of a worker; tests pass fakes. */
export interface WorkerLike {
  postMessage(message: WorkerJob | BudgetGrant, transfer: ArrayBuffer[]): void;
  on(event: 'message', listener: (reply: WorkerReply) => void): unknown;
  on(event: 'error', listener: (err: Error) => void): unknown;
  on(event: 'exit', listener: (code: number) => void): unknown;
  terminate(): Promise<number>;
}

export interface PreprocessPoolOptions extends PreprocessSetup {
  /** Worker threads; 0 preprocesses on the calling thread (no parallelism, same results). */
  workers?: number;
  workerScript?: string;
  execArgv?: string[];
  jobsPerWorker?: number;
  /**
   * Nice value for the worker threads (Linux only; default 19). Inference splits each matrix product evenly
   * across onnxruntime's threads, so a preprocessing thread that takes a core away from one of them stalls
   * the whole product; at low priority preprocessing runs in the gaps instead. 0 keeps normal priority.
   */
  niceness?: number;
  createWorker?: (script: string, options: WorkerOptions) => WorkerLike;
}

interface Job {
  id: number;
  bytes: Uint8Array;
  resolve(outcome: PreprocessOutcome): void;
}

interface Slot {
  worker: WorkerLike;
  ready: boolean;
  running: Map<number, Job>;
  /** Budget the worker holds, by its ticket. */
  leases: Map<number, BudgetRelease>;
  /** The standing credit, once granted; 'revoking' until the worker says it is no longer using it. */
  credit?: BudgetRelease;
  creditState: 'none' | 'pending' | 'held' | 'revoking';
  dead: boolean;
}

/** A worker that dies before saying it is ready cannot run any job: the setup is broken, not an image. */
export class PoolStartError extends BeitLensError {}

export class PreprocessPool {
  private readonly queue: Job[] = [];
  private readonly slots: Slot[] = [];
  private readonly size: number;
  private readonly jobsPerWorker: number;
  private nextId = 1;
  private closed = false;
  private crashes = 0;
  private startError?: PoolStartError;
  private readonly budget: DecodeBudget;
  private readonly creditBytes: number;
  private requests = 0;
  /** Requests granted or waiting that could not fit beside the credits; credits are not kept meanwhile. */
  private starving = 0;

  constructor(private readonly options: PreprocessPoolOptions) {
    this.size = Math.max(0, options.workers ?? defaultWorkerCount(options.niceness ?? DEFAULT_WORKER_NICENESS));
    this.jobsPerWorker = Math.max(1, options.jobsPerWorker ?? 2);
    this.budget = options.options.budget ?? processDecodeBudget();
    this.creditBytes = workerCreditBytes(this.budget.totalBytes, this.size);
  }

  /** Budget requests the workers have sent ('acquire' messages): the round trips the credits save. */
  get budgetRequests(): number {
    return this.requests;
  }

  /** Each worker's standing credit in bytes (0: none). */
  get workerCredit(): number {
    return this.creditBytes;
  }

  /** Jobs queued or running. */
  get pending(): number {
    return this.queue.length + this.slots.reduce((n, s) => n + s.running.size, 0);
  }

  get workerCount(): number {
    return this.size;
  }

  /**
   * Preprocesses one encoded image. The bytes' buffer is transferred to a worker (unusable afterwards) when it
   * is not a slice of a shared pool buffer. Resolves with an error outcome for a bad image; rejects only when
   * the workers cannot start at all, or after {@link close}.
   */
  run(bytes: Uint8Array): Promise<PreprocessOutcome> {
    if (this.startError) return Promise.reject(this.startError);
    if (this.closed) return Promise.reject(new BeitLensError('CANCELLED', 'preprocessing pool closed'));
    // Loaded on demand: the job pulls in sharp, which a process that only hands work to workers never needs.
    if (this.size === 0) return import('./preprocessJob').then((job) => job.preprocessBytes(bytes, this.options));
    return new Promise((resolve, reject) => {
      const job: Job = {
        id: this.nextId++,
        bytes,
        resolve: (outcome) => (this.startError ? reject(this.startError) : resolve(outcome)),
      };
      this.queue.push(job);
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length > 0 && !this.closed) {
      let best: Slot | undefined;
      for (const slot of this.slots) {
        if (!slot.dead && slot.running.size < this.jobsPerWorker && (!best || slot.running.size < best.running.size)) best = slot;
      }
      if (!best || (best.running.size > 0 && this.slots.length < this.size)) best = this.spawn() ?? best;
      if (!best || best.running.size >= this.jobsPerWorker) return;
      const job = this.queue.shift()!;
      best.running.set(job.id, job);
      const transferable = job.bytes.byteOffset === 0 && job.bytes.byteLength === job.bytes.buffer.byteLength;
      best.worker.postMessage({ id: job.id, bytes: job.bytes }, transferable ? [job.bytes.buffer as ArrayBuffer] : []);
    }
  }

  private spawn(): Slot | undefined {
    const live = this.slots.filter((s) => !s.dead);
    if (live.length >= this.size) return undefined;
    const script = this.options.workerScript ?? defaultWorkerScript();
    // The budget object stays here (it cannot be cloned, and must be this thread's); the worker learns its size.
    const { budget: _budget, ...options } = this.options.options;
    const setup: PreprocessSetup = { preprocessor: this.options.preprocessor, options, niceness: this.options.niceness ?? DEFAULT_WORKER_NICENESS, budgetBytes: this.budget.totalBytes };
    const env = sourceWorkerEnv(script);
    const workerOptions: WorkerOptions = { workerData: setup, execArgv: this.options.execArgv ?? defaultExecArgv(script), ...(env ? { env } : {}) };
    const create = this.options.createWorker ?? ((s: string, o: WorkerOptions) => new Worker(s, o));
    const slot: Slot = { worker: create(script, workerOptions), ready: false, running: new Map(), leases: new Map(), creditState: 'none', dead: false };
    slot.worker.on('message', (reply) => {
      if (reply.type === 'ready') {
        slot.ready = true;
        return;
      }
      if (reply.type === 'acquire') {
        this.requests++;
        this.grant(slot, reply.ticket, reply.bytes);
        return;
      }
      if (reply.type === 'credit-returned') {
        if (slot.creditState !== 'revoking') return;
        slot.credit?.();
        slot.credit = undefined;
        slot.creditState = 'none';
        if (this.starving === 0) this.acquireCredit(slot);
        return;
      }
      if (reply.type === 'release') {
        slot.leases.get(reply.ticket)?.();
        slot.leases.delete(reply.ticket);
        return;
      }
      const job = slot.running.get(reply.id);
      if (!job) return;
      slot.running.delete(reply.id);
      this.crashes = 0;
      job.resolve(reply.outcome);
      this.dispatch();
    });
    const fail = (reason: string) => {
      if (slot.dead) return;
      slot.dead = true;
      releaseLeases(slot);
      const index = this.slots.indexOf(slot);
      if (index >= 0) this.slots.splice(index, 1);
      const held = [...slot.running.values()];
      slot.running.clear();
      if (this.closed) return;
      if (!slot.ready) {
        this.startError ??= new PoolStartError('INTERNAL', `preprocessing worker ${script} failed to start: ${reason}`);
        this.failAll(held);
        return;
      }
      // A worker that dies mid-job (native crash in a decoder, out of memory) fails only the jobs it held;
      // a fresh worker takes the queue. Repeated deaths without any success mean something systematic.
      this.crashes++;
      for (const job of held) job.resolve({ ok: false, code: 'INTERNAL', error: `preprocessing worker stopped: ${reason}` });
      if (this.crashes > 5) {
        this.startError ??= new PoolStartError('INTERNAL', `preprocessing workers keep failing: ${reason}`);
        this.failAll([]);
        return;
      }
      this.dispatch();
    };
    slot.worker.on('error', (err) => fail(errorMessage(err)));
    slot.worker.on('exit', (code) => fail(`exited with code ${code}`));
    this.slots.push(slot);
    this.acquireCredit(slot);
    return slot;
  }

  /** Queued behind everything already waiting; not while a request that needed the credits back waits. */
  private acquireCredit(slot: Slot): void {
    if (this.creditBytes === 0 || slot.dead || this.closed || this.starving > 0 || slot.creditState !== 'none') return;
    slot.creditState = 'pending';
    this.budget.acquire(this.creditBytes).then(
      (release) => {
        if (slot.dead || this.closed) return release();
        if (this.starving > 0) {
          // Granted ahead of a request that needs it: given back, and asked for again once that one is granted.
          release();
          slot.creditState = 'none';
          return;
        }
        slot.credit = release;
        slot.creditState = 'held';
        slot.worker.postMessage({ type: 'credit', bytes: this.creditBytes }, []);
      },
      () => {
        slot.creditState = 'none';
      },
    );
  }

  /** Bytes of the budget the credits hold or are about to. */
  private creditsOutstanding(): number {
    return this.slots.reduce((n, s) => n + (s.creditState === 'none' ? 0 : this.creditBytes), 0);
  }

  private grant(slot: Slot, ticket: number, bytes: number): void {
    const starving = bytes > this.budget.totalBytes - this.creditsOutstanding();
    if (starving) {
      this.starving++;
      for (const s of this.slots) {
        if (s.creditState !== 'held') continue;
        s.creditState = 'revoking';
        s.worker.postMessage({ type: 'revoke' }, []);
      }
    }
    const settled = () => {
      if (!starving || --this.starving > 0) return;
      for (const s of this.slots) this.acquireCredit(s);
    };
    this.budget.acquire(bytes).then(
      (release) => {
        settled();
        if (slot.dead) return release();
        slot.leases.set(ticket, release);
        slot.worker.postMessage({ type: 'granted', ticket }, []);
      },
      (err: unknown) => {
        settled();
        if (!slot.dead) slot.worker.postMessage({ type: 'denied', ticket, error: errorMessage(err) }, []);
      },
    );
  }

  private failAll(held: Job[]): void {
    const error = { ok: false as const, code: 'INTERNAL' as const, error: this.startError?.message ?? 'preprocessing failed' };
    for (const job of [...held, ...this.queue.splice(0)]) job.resolve(error);
    for (const slot of this.slots) {
      for (const job of slot.running.values()) job.resolve(error);
      slot.running.clear();
    }
  }

  /** Stops the workers; jobs not yet finished resolve as cancelled. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const cancelled: PreprocessOutcome = { ok: false, code: 'CANCELLED', error: 'cancelled' };
    for (const job of this.queue.splice(0)) job.resolve(cancelled);
    const slots = this.slots.splice(0);
    for (const slot of slots) {
      for (const job of slot.running.values()) job.resolve(cancelled);
      slot.running.clear();
    }
    await Promise.all(slots.map((s) => s.worker.terminate().catch(() => 0)));
    for (const slot of slots) {
      slot.dead = true;
      releaseLeases(slot);
    }
  }
}

function releaseLeases(slot: Slot): void {
  for (const release of slot.leases.values()) release();
  slot.leases.clear();
  slot.credit?.();
  slot.credit = undefined;
}
