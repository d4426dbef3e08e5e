/**
 * The extension host's side of the inference worker: a child process that runs the model, a fair
 * queue in front of it, cancellation, and restart when the process dies.
 *
 * Why a child process (not a worker thread): onnxruntime and libvips are native, and a segfault or
 * out-of-memory in a thread would take the whole extension host with it.
 */
import { ChildProcess, fork as nodeFork, ForkOptions } from 'node:child_process';
import { Emitter } from '../util/emitter';
import { Logger } from '../util/logger';
import { noModelHint } from '../model/modelActions';
import {
  CallArgs,
  CallName,
  CallResult,
  HostToWorkerMessage,
  InferenceErrorCode,
  isWorkerToHostMessage,
  JOB_CALLS,
  LoadedModel,
  LoadModelArgs,
  MODEL_CALLS,
  ProgressEvent,
  QUEUED_CALLS,
  WorkerToHostMessage,
} from '../worker/workerProtocol';
import { FairQueue } from './fairQueue';

export class InferenceError extends Error {
  constructor(
    readonly code: InferenceErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'InferenceError';
  }
}

export function isInferenceError(err: unknown, code?: InferenceErrorCode): err is InferenceError {
  return err instanceof InferenceError && (code === undefined || err.code === code);
}

/** What features need from the inference client; tests pass fakes of just this. */
export type InferenceService = Pick<InferenceClient, 'call' | 'state' | 'model' | 'onDidChangeState' | 'onDidWorkerExit' | 'queuedInLane'>;

export type ModelState =
  | { kind: 'starting' }
  | { kind: 'loading'; args: LoadModelArgs; afterCrash: boolean }
  | { kind: 'ready'; model: LoadedModel }
  | { kind: 'noModel'; message: string }
  | { kind: 'failed'; message: string };

export interface CallOptions {
  /** Requests in one lane run in order; lanes take turns. Defaults to the call's name. */
  lane?: string;
  signal?: AbortSignal;
  onProgress?: (event: ProgressEvent) => void;
  /** Overrides the client's timeout for this call; 0 disables it. */
  timeoutMs?: number;
}

export interface InferenceClientOptions {
  /** dist/inferenceWorker.js, or the .ts source with `execArgv: ['--import', 'tsx']` in tests. */
  workerScript: string;
  execArgv?: string[];
  env?: NodeJS.ProcessEnv;
  log: Logger;
  /** Queued calls sent to the worker at once. 1 keeps strict FIFO and bounds worker memory. */
  maxInFlight?: number;
  /** A queued call running longer than this means the worker is stuck: it is killed and restarted. */
  callTimeoutMs?: number;
  /** More crashes than this within the window and the client stops restarting (state `failed`). */
  maxRestarts?: number;
  restartWindowMs?: number;
  fork?: (modulePath: string, args: readonly string[], options: ForkOptions) => ChildProcess;
}

export interface WorkerExit {
  pid?: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Requests that were running in the worker and got WORKER_CRASHED. */
  failedRequests: number;
  willRestart: boolean;
}

export interface InferenceStats {
  dispatched: number;
  completed: number;
  cancelled: number;
  crashes: number;
  restarts: number;
}

interface PendingCall {
  id: number;
  name: CallName;
  args: unknown;
  lane: string;
  queued: boolean;
  needsModel: boolean;
  /** A long job (JOB_CALLS): cancelling it asks the worker to stop and waits for its partial result. */
  job: boolean;
  timeoutMs: number;
  onProgress?: (event: ProgressEvent) => void;
  resolve(value: unknown): void;
  reject(err: InferenceError): void;
  /** The caller has its answer (or its error); a late reply from the worker is dropped. */
  settled: boolean;
  worker?: ChildProcess;
  timer?: NodeJS.Timeout;
  detachSignal?: () => void;
}

const RESTART_DELAYS_MS = [0, 250, 1000, 3000, 5000];

export class InferenceClient {
  private readonly options: Required<Omit<InferenceClientOptions, 'env' | 'fork'>> & Pick<InferenceClientOptions, 'env' | 'fork'>;
  private readonly queue = new FairQueue<PendingCall>();
  private readonly sent = new Map<number, PendingCall>();
  /** Jobs waiting for the model to be ready; they bypass the queue, so the queue cannot hold them. */
  private parked: PendingCall[] = [];
  private child?: ChildProcess;
  private nextId = 1;
  private runningQueued = 0;
  private disposed = false;
  private modelArgs?: LoadModelArgs;
  private loadGeneration = 0;
  private crashTimes: number[] = [];
  private restartTimer?: NodeJS.Timeout;
  private currentState: ModelState = { kind: 'starting' };
  private readonly stateEmitter = new Emitter<ModelState>();
  private readonly exitEmitter = new Emitter<WorkerExit>();
  readonly stats: InferenceStats = { dispatched: 0, completed: 0, cancelled: 0, crashes: 0, restarts: 0 };

  /** Fires on every model state change (loading, ready, failed...). */
  readonly onDidChangeState = this.stateEmitter.event;
  /** Fires when the worker process died unexpectedly; explanation handles from it are gone. */
  readonly onDidWorkerExit = this.exitEmitter.event;

  constructor(options: InferenceClientOptions) {
    this.options = {
      execArgv: [],
      maxInFlight: 1,
      callTimeoutMs: 120_000,
      maxRestarts: 5,
      restartWindowMs: 60_000,
      ...options,
    };
  }

  get state(): ModelState {
    return this.currentState;
  }

  /** The ready model, if any. */
  get model(): LoadedModel | undefined {
    return this.currentState.kind === 'ready' ? this.currentState.model : undefined;
  }

  get workerPid(): number | undefined {
    return this.child?.pid;
  }

  get queuedCount(): number {
    return this.queue.size;
  }

  queuedInLane(lane: string): number {
    return this.queue.laneSize(lane);
  }

  /**
   * Loads (or with `undefined`, unloads) the model. Never rejects: the outcome is the new state,
   * also announced through onDidChangeState. A later call supersedes an earlier one still loading.
   */
  async setModel(args: LoadModelArgs | undefined, noModelMessage = 'no model is configured'): Promise<ModelState> {
    if (this.disposed) return this.currentState;
    const generation = ++this.loadGeneration;
    this.modelArgs = args;
    this.crashTimes = [];
    if (!args) {
      this.setState({ kind: 'noModel', message: noModelMessage });
      if (this.child) this.call('unload', {}).catch(() => undefined);
      return this.currentState;
    }
    return this.load(args, generation, false);
  }

  /** Settings that cannot be used: nothing is loaded and the state is `failed` with `message` (it names the setting). */
  refuseModel(message: string): ModelState {
    if (this.disposed) return this.currentState;
    ++this.loadGeneration;
    this.modelArgs = undefined;
    this.crashTimes = [];
    this.setState({ kind: 'failed', message });
    if (this.child) this.call('unload', {}).catch(() => undefined);
    return this.currentState;
  }

  /** The state once any loading in progress (including a reload after a crash) has finished. */
  whenSettled(): Promise<ModelState> {
    const settled = (s: ModelState) => s.kind !== 'loading' && s.kind !== 'starting';
    if (settled(this.currentState) || this.disposed) return Promise.resolve(this.currentState);
    return new Promise((resolve) => {
      const subscription = this.onDidChangeState((s) => {
        if (!settled(s)) return;
        subscription.dispose();
        resolve(s);
      });
    });
  }

  call<K extends CallName>(name: K, args: CallArgs<K>, options: CallOptions = {}): Promise<CallResult<K>> {
    return new Promise<CallResult<K>>((resolve, reject) => {
      if (this.disposed) return reject(new InferenceError('DISPOSED', 'BEiT Lens is shutting down'));
      if (options.signal?.aborted) {
        this.stats.cancelled++;
        return reject(cancelledError());
      }
      const queued = QUEUED_CALLS.has(name);
      const needsModel = MODEL_CALLS.has(name);
      if (needsModel) {
        const unavailable = this.modelUnavailableError();
        if (unavailable) return reject(unavailable);
      }
      const entry: PendingCall = {
        id: this.nextId++,
        name,
        args,
        lane: options.lane ?? name,
        queued,
        needsModel,
        job: JOB_CALLS.has(name),
        timeoutMs: options.timeoutMs ?? (queued ? this.options.callTimeoutMs : 0),
        onProgress: options.onProgress,
        resolve: resolve as (value: unknown) => void,
        reject,
        settled: false,
      };
      if (options.signal) {
        const signal = options.signal;
        const onAbort = () => this.cancel(entry);
        signal.addEventListener('abort', onAbort, { once: true });
        entry.detachSignal = () => signal.removeEventListener('abort', onAbort);
      }
      if (queued) {
        this.queue.enqueue(entry.lane, entry);
        this.pump();
      } else if (needsModel && this.currentState.kind !== 'ready') {
        this.parked.push(entry);
      } else {
        this.send(entry);
      }
    });
  }

  /** Test hook: kills the worker as a native crash would. Returns false when none is running. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): boolean {
    return this.child?.kill(signal) ?? false;
  }

  /** Stops the worker and fails everything pending. Resolves once the process has exited. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    clearTimeout(this.restartTimer);
    const err = new InferenceError('DISPOSED', 'BEiT Lens is shutting down');
    for (const entry of this.queue.drain()) this.settle(entry, err);
    for (const entry of this.parked.splice(0)) this.settle(entry, err);
    for (const entry of this.sent.values()) this.settle(entry, err);
    this.sent.clear();
    this.setState({ kind: 'failed', message: 'BEiT Lens has shut down' });
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const forced = setTimeout(() => child.kill('SIGKILL'), 2000);
      await exited;
      clearTimeout(forced);
    }
    this.stateEmitter.dispose();
    this.exitEmitter.dispose();
  }

  // ---- model state ----------------------------------------------------------------------------

  private async load(args: LoadModelArgs, generation: number, afterCrash: boolean): Promise<ModelState> {
    this.setState({ kind: 'loading', args, afterCrash });
    try {
      const model = await this.call('load', args);
      if (generation === this.loadGeneration && !this.disposed) {
        this.setState({ kind: 'ready', model });
        this.options.log.info(`model ready: ${model.modelId} from ${model.modelDir} on ${model.provider}`);
        this.pump();
      }
    } catch (err) {
      if (generation !== this.loadGeneration || this.disposed) return this.currentState;
      const e = err as InferenceError;
      // A crash during load is handled by the restart path, which loads again.
      if (e.code === 'WORKER_CRASHED') return this.currentState;
      if (e.code === 'NO_MODEL') this.setState({ kind: 'noModel', message: e.message });
      else this.setState({ kind: 'failed', message: e.message });
      this.options.log.warn(`model not loaded: ${e.message}`);
    }
    return this.currentState;
  }

  private setState(state: ModelState): void {
    this.currentState = state;
    if (state.kind === 'noModel' || state.kind === 'failed') {
      const err = this.modelUnavailableError()!;
      for (const entry of this.queue.drain((e) => e.needsModel)) this.settle(entry, err);
      for (const entry of this.parked.splice(0)) this.settle(entry, err);
    }
    this.stateEmitter.fire(state);
  }

  private modelUnavailableError(): InferenceError | undefined {
    const s = this.currentState;
    if (s.kind === 'noModel') return new InferenceError('NO_MODEL', `no model: ${s.message}. ${noModelHint()}.`);
    if (s.kind === 'failed') return new InferenceError('MODEL_FAILED', `the model could not be loaded: ${s.message}`);
    return undefined;
  }

  // ---- queue and transport ----------------------------------------------------------------------

  private pump(): void {
    if (this.disposed) return;
    if (this.currentState.kind === 'ready') for (const entry of this.parked.splice(0)) this.send(entry);
    while (this.runningQueued < this.options.maxInFlight) {
      const ready = this.currentState.kind === 'ready';
      const entry = this.queue.dequeue((e) => ready || !e.needsModel);
      if (!entry) return;
      this.runningQueued++;
      this.send(entry);
    }
  }

  private send(entry: PendingCall): void {
    const child = this.ensureWorker();
    if (!child) {
      if (entry.queued) this.runningQueued--;
      this.settle(entry, new InferenceError('WORKER_UNAVAILABLE', 'the inference worker could not be started'));
      return;
    }
    entry.worker = child;
    this.sent.set(entry.id, entry);
    this.stats.dispatched++;
    if (entry.timeoutMs > 0) entry.timer = setTimeout(() => this.onTimeout(entry), entry.timeoutMs);
    const message: HostToWorkerMessage = { type: 'call', id: entry.id, name: entry.name, args: entry.args };
    // A failed send means the channel is closing; the exit handler fails the call.
    child.send(message, (err) => err && this.options.log.debug(`send to worker failed: ${err.message}`));
  }

  private cancel(entry: PendingCall): void {
    if (entry.settled) return;
    this.stats.cancelled++;
    const parkedAt = this.parked.indexOf(entry);
    if (parkedAt >= 0) this.parked.splice(parkedAt, 1);
    if (this.queue.remove(entry) || parkedAt >= 0) {
      this.settle(entry, cancelledError());
      return;
    }
    if (this.sent.has(entry.id)) {
      entry.worker?.send({ type: 'cancel', id: entry.id } satisfies HostToWorkerMessage, () => undefined);
      // A job's answer to a cancel is what it did so far (a scan's summary): the caller waits for it.
      if (entry.job) return;
      // The caller is answered now; the worker slot stays taken until the worker replies, so a
      // cancelled-but-running call never overlaps the next one.
      this.settle(entry, cancelledError());
    }
  }

  private onTimeout(entry: PendingCall): void {
    if (!this.sent.has(entry.id)) return;
    this.options.log.error(`${entry.name} took longer than ${entry.timeoutMs} ms; restarting the inference worker`);
    this.settle(entry, new InferenceError('TIMEOUT', `${entry.name} timed out after ${Math.round(entry.timeoutMs / 1000)} s; the inference worker was restarted`));
    entry.worker?.kill('SIGKILL');
  }

  private settle(entry: PendingCall, err: InferenceError | undefined, value?: unknown): void {
    clearTimeout(entry.timer);
    if (entry.settled) return;
    entry.settled = true;
    entry.detachSignal?.();
    // One place sees every failed request (decode errors, refused formats, failed downloads, timeouts), so
    // the Output channel has each one with its reason even when no toast names it (a hover fails quietly).
    if (err && err.code !== 'CANCELLED') this.options.log.warn(`${entry.name} failed${describeTarget(entry.args, err.message)} (${err.code}): ${err.message}`);
    if (err) entry.reject(err);
    else entry.resolve(value);
  }

  private onMessage(child: ChildProcess, raw: unknown): void {
    if (!isWorkerToHostMessage(raw)) {
      this.options.log.warn('dropped a malformed message from the inference worker');
      return;
    }
    const message: WorkerToHostMessage = raw;
    if (message.type === 'started') {
      this.options.log.debug(`inference worker ${message.pid} started`);
      return;
    }
    const entry = this.sent.get(message.id);
    if (!entry || entry.worker !== child) return;
    if (message.type === 'progress') {
      if (!entry.settled) entry.onProgress?.(message.event);
      return;
    }
    this.sent.delete(entry.id);
    this.stats.completed++;
    if (entry.queued) this.runningQueued--;
    if (message.type === 'result') this.settle(entry, undefined, message.value);
    else this.settle(entry, new InferenceError(message.error.code ?? 'INTERNAL', message.error.message));
    this.pump();
  }

  // ---- the worker process -----------------------------------------------------------------------

  private ensureWorker(): ChildProcess | undefined {
    if (this.child) return this.child;
    if (this.disposed) return undefined;
    const fork = this.options.fork ?? nodeFork;
    let child: ChildProcess;
    try {
      child = fork(this.options.workerScript, [], {
        execArgv: this.options.execArgv,
        // Inside VS Code process.execPath is Electron; this makes it behave as plain Node.
        env: { ...(this.options.env ?? process.env), ELECTRON_RUN_AS_NODE: '1' },
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        // Structured clone keeps typed arrays and large strings cheap to pass.
        serialization: 'advanced',
      });
    } catch (err) {
      this.options.log.error(`could not start the inference worker: ${(err as Error).message}`);
      return undefined;
    }
    this.child = child;
    const forward = (stream: NodeJS.ReadableStream | null, level: 'debug' | 'warn') =>
      stream?.on('data', (chunk: Buffer) => {
        for (const line of chunk.toString('utf8').split(/\r?\n/)) if (line.trim()) this.options.log[level](`[worker ${child.pid}] ${line}`);
      });
    forward(child.stdout, 'debug');
    forward(child.stderr, 'warn');
    child.on('message', (m) => this.onMessage(child, m));
    child.on('error', (err) => {
      this.options.log.error(`inference worker error: ${err.message}`);
      if (child.exitCode === null && child.signalCode === null && child.pid === undefined) this.onExit(child, null, null);
    });
    child.once('exit', (code, signal) => this.onExit(child, code, signal));
    return child;
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child !== this.child) return;
    this.child = undefined;
    this.runningQueued = 0;
    const how = signal ? `was killed (${signal})` : `exited with code ${code}`;
    const failed = [...this.sent.values()].filter((e) => e.worker === child);
    for (const entry of failed) this.sent.delete(entry.id);
    if (this.disposed) return;

    this.stats.crashes++;
    const now = Date.now();
    this.crashTimes = [...this.crashTimes.filter((t) => now - t < this.options.restartWindowMs), now];
    const willRestart = this.crashTimes.length <= this.options.maxRestarts;
    this.options.log.error(`the inference worker ${how}; ${failed.length} request(s) failed; ${willRestart ? 'restarting it' : 'it keeps crashing, so it is not restarted'}`);

    // Mark the model as loading before anyone hears of the crash, so a request made in response
    // (a retry) waits for the reload instead of reaching a worker without a model.
    if (willRestart && this.modelArgs) this.setState({ kind: 'loading', args: this.modelArgs, afterCrash: true });
    const err = new InferenceError('WORKER_CRASHED', `the inference worker ${how} while handling this request${willRestart ? '; it has been restarted' : ''}`);
    for (const entry of failed) this.settle(entry, err);
    this.exitEmitter.fire({ pid: child.pid, code, signal, failedRequests: failed.length, willRestart });

    if (!willRestart) {
      this.setState({ kind: 'failed', message: `the inference worker crashed ${this.crashTimes.length} times in ${Math.round(this.options.restartWindowMs / 1000)} s (last: ${how}). Run "BEiT Lens: Doctor".` });
      const unavailable = new InferenceError('WORKER_UNAVAILABLE', 'the inference worker keeps crashing');
      for (const entry of this.queue.drain()) this.settle(entry, unavailable);
      return;
    }
    const delay = RESTART_DELAYS_MS[Math.min(this.crashTimes.length - 1, RESTART_DELAYS_MS.length - 1)];
    this.restartTimer = setTimeout(() => this.restart(), delay);
  }

  private restart(): void {
    if (this.disposed) return;
    this.stats.restarts++;
    if (this.modelArgs) void this.load(this.modelArgs, this.loadGeneration, true);
    else this.pump();
  }
}

function cancelledError(): InferenceError {
  return new InferenceError('CANCELLED', 'cancelled');
}

/** The file a failed call was about, when its arguments name one and its message does not already. */
function describeTarget(args: unknown, message: string): string {
  const file = typeof args === 'object' && args !== null ? ((args as { file?: unknown; from?: unknown }).file ?? (args as { from?: unknown }).from) : undefined;
  return typeof file === 'string' && !message.includes(file) ? ` for ${file}` : '';
}
