import { ModelSession, type ExecutionProviderName, type ModelSessionOptions, type OutputTensor, type ProviderAttempt } from './backend/onnxRuntime';
import { BeitLensError } from './errors';

/** A float32 tensor fed to a session by input name. */
export interface InputTensor {
  data: Float32Array;
  dims: number[];
}

/**
 * What BeitModel needs of a session, whatever runs it: the graph's interface, and runs with inputs and outputs
 * named. A local onnxruntime session is one; a remote inference server (issue #16) is another.
 */
export interface InferenceSession {
  /** The model file, or a label (an endpoint) naming where the session runs; used in error messages. */
  readonly file: string;
  readonly provider: ExecutionProviderName;
  readonly attempts: readonly ProviderAttempt[];
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** Element type and shape declared for an input (symbolic dimensions as strings or -1), if it is a tensor. */
  inputTensor(name: string): { type: string; shape: ReadonlyArray<number | string> } | undefined;
  run(inputs: Readonly<Record<string, InputTensor>>, outputs: readonly string[]): Promise<Record<string, OutputTensor>>;
  release(): Promise<void>;
}

/** Where BeitModel gets its sessions from, so tests pass fakes and a remote server can stand in for onnxruntime. */
export interface SessionFactory {
  /** `model` is the graph file in the converted folder the session must run (classify or explain graph). */
  create(model: string, options: ModelSessionOptions): Promise<InferenceSession>;
}

/** Today's behaviour: an onnxruntime session of the file, providers tried in order with a CPU fallback. */
export class LocalSessionFactory implements SessionFactory {
  async create(model: string, options: ModelSessionOptions): Promise<InferenceSession> {
    return new LocalSession(await ModelSession.create(model, options));
  }
}

class LocalSession implements InferenceSession {
  constructor(private readonly session: ModelSession) {}

  get file(): string {
    return this.session.file;
  }

  get provider(): ExecutionProviderName {
    return this.session.provider;
  }

  get attempts(): readonly ProviderAttempt[] {
    return this.session.attempts;
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }

  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  inputTensor(name: string): { type: string; shape: ReadonlyArray<number | string> } | undefined {
    return this.session.inputTensor(name);
  }

  run(inputs: Readonly<Record<string, InputTensor>>, outputs: readonly string[]): Promise<Record<string, OutputTensor>> {
    // Our graphs have the one input; ModelSession feeds it under that name.
    const names = Object.keys(inputs);
    const pixels = inputs.pixel_values;
    if (!pixels || names.length !== 1) {
      return Promise.reject(new BeitLensError('INTERNAL', `a local session takes the one input pixel_values, was given ${names.join(', ') || 'none'}`, this.session.file));
    }
    return this.session.run(pixels.data, pixels.dims, outputs);
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
