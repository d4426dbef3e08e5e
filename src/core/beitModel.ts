import { BeitLensError, errorMessage, type ErrorCode } from './errors';
import { ModelSessionOptions, ProviderAttempt, ExecutionProviderName } from './backend/onnxRuntime';
import { computePrecision, loadModelDirectory, ModelDirectory } from './modelDirectory';
import { ModelIntegrity, ModelVerifier } from './modelIntegrity';
import { EMBEDDING_OUTPUT } from './onnx/beitGraph';
import { cpuFloat16Note } from './onnx/float16';
import { checkFiniteLogits, classPatchLogits, patchArgmax, Prediction, topKPredictions } from './predictions';
import type { DecodedImage } from './image';
import { preprocessImage, PreprocessOptions } from './preprocess';
import { attentionRollout, DEFAULT_ROLLOUT, RolloutOptions, RolloutSource } from './rollout';
import { occlusionMap, OcclusionOptions, OcclusionResult, PatchGeometry } from './occlusion';
import { faithfulnessScores, FaithfulnessScores, gaussianBlur } from './faithfulnessScores';
import { InferenceSession, LocalSessionFactory, SessionFactory } from './sessionFactory';

export interface ClassifyResult {
  image: string;
  top?: Prediction[];
  error?: string;
  /** With `error`: its code, where the failure was a BeitLensError. */
  code?: ErrorCode;
}

export interface EmbedResult {
  image: string;
  /** The model's pooled output (hidden-size floats), as the classifier reads it. */
  embedding?: Float32Array;
  error?: string;
  code?: ErrorCode;
}

export interface BatchOptions<R> {
  batchSize?: number;
  signal?: AbortSignal;
  onResult?: (r: R) => void;
}

export interface Explanation {
  top: Prediction[];
  /** grid*grid rollout values in [0, 1], row-major. */
  rollout: Float32Array;
  /** Argmax class per patch, row-major. */
  patchArgmax: Int32Array;
  /** [patches, numLabels] per-patch logits. */
  patchLogits: Float32Array;
  /** [layers, heads, tokens, tokens] attention probabilities. */
  attentions: Float32Array;
  grid: number;
  layers: number;
  heads: number;
  tokens: number;
  /** The family's tokens before the patches (attentions and rollout index patches after them). */
  leadingTokens: number;
  numLabels: number;
  /** The model-size RGB image the explanation refers to. */
  resized: Uint8Array;
  /** [3, size, size] preprocessed input, kept so occlusion and faithfulness perturb exactly what was explained. */
  pixelValues: Float32Array;
  size: number;
}

export interface BeitModelOptions extends Omit<ModelSessionOptions, 'optimizedModelPath'> {
  preprocess?: PreprocessOptions;
  /** One-line notes on how the model runs (an fp16-compute model on the CPU); default: written to stderr. */
  onNote?: (note: string) => void;
  /**
   * Checks the folder's files against its manifest before the first session exists (default: a verifier keeping
   * its records in the default cache folder). `false` skips it: the model then reports itself unverified and
   * scans neither read nor write the result cache for it.
   */
  verifier?: ModelVerifier | false;
  /** Where the classify and explain sessions come from (default: local onnxruntime sessions of the folder's graphs). */
  sessions?: SessionFactory;
}

/**
 * The model as users see it: a converted folder, a classify session (logits-only graph), and an
 * explain session created on first use so plain classification never pays for attentions.
 */
export class BeitModel {
  private explainSession?: Promise<InferenceSession>;
  /** Insertion's blurred start image per explained input, so scoring several maps of one image blurs it once. */
  private readonly blurredInputs = new WeakMap<Float32Array, Float32Array>();

  private constructor(
    readonly directory: ModelDirectory,
    private readonly classifySession: InferenceSession,
    private readonly options: BeitModelOptions,
    readonly integrity: ModelIntegrity,
  ) {}

  static async load(dir: string, options: BeitModelOptions = {}): Promise<BeitModel> {
    const directory = await loadModelDirectory(dir);
    const integrity: ModelIntegrity = options.verifier === false ? { state: 'unverified' } : await (options.verifier ?? new ModelVerifier()).verify(directory);
    const session = await sessionFactory(options).create(directory.classifyModel, sessionOptions(options));
    try {
      checkInterface(session, ['logits'], directory.classifyModel, directory.config.imageSize);
    } catch (err) {
      await session.release();
      throw err;
    }
    // Allowed, but said once: fp16 on the CPU provider is slower than the fp32 model.
    const note = session.provider === 'cpu' ? cpuFloat16Note(computePrecision(directory), session.provider) : undefined;
    if (note) (options.onNote ?? ((n: string) => process.stderr.write(`${n}\n`)))(note);
    return new BeitModel(directory, session, options, integrity);
  }

  get labels(): readonly string[] {
    return this.directory.config.labels.labels;
  }

  get modelId(): string {
    return this.directory.modelId;
  }

  get provider(): ExecutionProviderName {
    return this.classifySession.provider;
  }

  get providerAttempts(): readonly ProviderAttempt[] {
    return this.classifySession.attempts;
  }

  get canExplain(): boolean {
    return this.directory.fullModel !== undefined;
  }

  /** Logits for a batch already preprocessed into [n, 3, size, size], as the model returned them (finite or not). */
  async logits(pixelValues: Float32Array, n: number): Promise<Float32Array> {
    const size = this.directory.config.imageSize;
    const out = await this.classifySession.run(pixelInput(pixelValues, n, size), ['logits']);
    checkLogits(out.logits.dims, n, this.directory.config.numLabels, this.directory.classifyModel);
    return out.logits.data;
  }

  async classify(image: string | Buffer, topK = 5): Promise<Prediction[]> {
    const { pixelValues } = await preprocessImage(image, this.directory.preprocessor, this.options.preprocess);
    const logits = await this.logits(pixelValues, 1);
    checkFiniteLogits(logits, this.directory.classifyModel);
    return topKPredictions(logits, this.labels, topK);
  }

  /**
   * Classifies files in batches; a file that fails to decode becomes an error result and the rest
   * of its batch still runs. Results arrive in input order through `onResult` as they complete.
   */
  async classifyFiles(files: readonly string[], options: BatchOptions<ClassifyResult> & { topK?: number } = {}): Promise<ClassifyResult[]> {
    const topK = options.topK ?? 5;
    const numLabels = this.directory.config.numLabels;
    return this.runFiles(files, options, (n, batch) => this.logits(batch, n), (logits, k, image) => {
      checkFiniteLogits(logits, this.directory.classifyModel, k * numLabels, numLabels);
      return { image, top: topKPredictions(logits, this.labels, topK, k * numLabels, numLabels) };
    });
  }

  /** Whether the classify graph has the embedding output (folders converted before it existed do not). */
  get canEmbed(): boolean {
    return this.classifySession.outputNames.includes(EMBEDDING_OUTPUT);
  }

  /** Embedding width (the model's hidden size). */
  get embeddingSize(): number {
    return this.directory.config.hiddenSize;
  }

  /**
   * Embeddings ([n, hidden], row-major) for a batch already preprocessed into [n, 3, size, size]: the classify
   * session's `pooled_output`, fetched alone so the classifier head is not run.
   */
  async embeddings(pixelValues: Float32Array, n: number): Promise<Float32Array> {
    this.requireEmbedding();
    const size = this.directory.config.imageSize;
    const out = await this.classifySession.run(pixelInput(pixelValues, n, size), [EMBEDDING_OUTPUT]);
    this.checkEmbeddingDims(out[EMBEDDING_OUTPUT].dims, n);
    return out[EMBEDDING_OUTPUT].data;
  }

  /**
   * Logits and embeddings of one batch from a single session run: the scan stores both, and the embedding is
   * the head's input, so fetching it beside the logits costs an output copy, not a second forward pass.
   */
  async logitsAndEmbeddings(pixelValues: Float32Array, n: number): Promise<{ logits: Float32Array; embeddings: Float32Array }> {
    this.requireEmbedding();
    const size = this.directory.config.imageSize;
    const out = await this.classifySession.run(pixelInput(pixelValues, n, size), ['logits', EMBEDDING_OUTPUT]);
    checkLogits(out.logits.dims, n, this.directory.config.numLabels, this.directory.classifyModel);
    this.checkEmbeddingDims(out[EMBEDDING_OUTPUT].dims, n);
    return { logits: out.logits.data, embeddings: out[EMBEDDING_OUTPUT].data };
  }

  private checkEmbeddingDims(dims: readonly number[], n: number): void {
    const hidden = this.embeddingSize;
    if (dims.length !== 2 || dims[0] !== n || dims[1] !== hidden) {
      throw new BeitLensError('MODEL_INVALID', `model returned ${EMBEDDING_OUTPUT} [${dims.join(',')}], expected [${n},${hidden}] (config.json and the graph disagree)`, this.directory.classifyModel);
    }
  }

  /**
   * Embeds files in batches, with classifyFiles' decoding and error handling: a file that fails becomes an
   * error result and the rest of its batch still runs. A non-finite embedding is an error, as non-finite logits are.
   */
  async embedFiles(files: readonly string[], options: BatchOptions<EmbedResult> = {}): Promise<EmbedResult[]> {
    // Checked once up front: an old graph would otherwise fail every batch with the same error.
    this.requireEmbedding();
    const hidden = this.embeddingSize;
    return this.runFiles(files, options, (n, batch) => this.embeddings(batch, n), (data, k, image) => {
      const embedding = data.slice(k * hidden, (k + 1) * hidden);
      const bad = embedding.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0) throw new BeitLensError('NON_FINITE_OUTPUT', `the model returned a non-finite embedding value (${embedding[bad]} at element ${bad} of ${hidden}): its weights or graph are broken (convert the model again)`, this.directory.classifyModel);
      return { image, embedding };
    });
  }

  private requireEmbedding(): void {
    if (!this.canEmbed) {
      throw new BeitLensError('MODEL_INVALID', `this model folder's graph has no ${EMBEDDING_OUTPUT} output (converted by an older beit-lens, or a plain graph); convert the model again to embed images`, this.directory.classifyModel);
    }
  }

  /**
   * The one batching path of classifyFiles and embedFiles: decode and preprocess a chunk in parallel, run the
   * images that decoded as one batch, and turn each into a result (or an error result naming its file).
   */
  private async runFiles<R extends { image: string; error?: string; code?: ErrorCode }>(
    files: readonly string[],
    options: BatchOptions<R>,
    infer: (n: number, batch: Float32Array) => Promise<Float32Array>,
    toResult: (output: Float32Array, k: number, image: string) => R,
  ): Promise<R[]> {
    const batchSize = Math.max(1, options.batchSize ?? 8);
    const per = 3 * this.directory.config.imageSize ** 2;
    const results: R[] = [];
    for (let start = 0; start < files.length; start += batchSize) {
      if (options.signal?.aborted) throw new BeitLensError('CANCELLED', 'classification cancelled');
      const chunk = files.slice(start, start + batchSize);
      const prepared = await Promise.all(chunk.map((f) => preprocessImage(f, this.directory.preprocessor, this.options.preprocess).then((p) => p.pixelValues, (err: unknown) => err)));
      const ok = prepared.map((p, i) => ({ p, i })).filter((x): x is { p: Float32Array; i: number } => x.p instanceof Float32Array);
      const batch = new Float32Array(ok.length * per);
      ok.forEach(({ p }, k) => batch.set(p, k * per));
      const output = ok.length > 0 ? await infer(ok.length, batch) : new Float32Array(0);
      const chunkResults: R[] = chunk.map((image, i) => {
        const k = ok.findIndex((x) => x.i === i);
        try {
          if (k < 0) throw prepared[i];
          return toResult(output, k, image);
        } catch (err) {
          return { image, error: errorMessage(err), ...(err instanceof BeitLensError ? { code: err.code } : {}) } as R;
        }
      });
      for (const r of chunkResults) {
        results.push(r);
        options.onResult?.(r);
      }
    }
    return results;
  }

  /** `image` may be already decoded (decodeImage), so a caller that also displays it decodes the file once. */
  async explain(image: string | Buffer | DecodedImage, options: { topK?: number; rollout?: RolloutOptions } = {}): Promise<Explanation> {
    const session = await this.getExplainSession();
    const cfg = this.directory.config;
    const pre = await preprocessImage(image, this.directory.preprocessor, this.options.preprocess);
    const out = await session.run(pixelInput(pre.pixelValues, 1, cfg.imageSize), ['logits', 'attentions', 'patch_logits']);
    checkLogits(out.logits.dims, 1, cfg.numLabels, session.file);
    checkFiniteLogits(out.logits.data, session.file);
    const patches = cfg.gridSize * cfg.gridSize;
    const attentions = out.attentions.data;
    const layout = { layers: cfg.numLayers, heads: cfg.numHeads, tokens: cfg.numTokens, leadingTokens: cfg.architecture.leadingTokens };
    return {
      top: topKPredictions(out.logits.data, this.labels, options.topK ?? 5),
      rollout: attentionRollout(attentions, layout, options.rollout ?? DEFAULT_ROLLOUT),
      patchArgmax: patchArgmax(out.patch_logits.data, patches, cfg.numLabels),
      patchLogits: out.patch_logits.data,
      attentions,
      grid: cfg.gridSize,
      ...layout,
      numLabels: cfg.numLabels,
      resized: pre.resized,
      pixelValues: pre.pixelValues,
      size: cfg.imageSize,
    };
  }

  classHeatmap(explanation: Explanation, classIndex: number): Float32Array {
    return classPatchLogits(explanation.patchLogits, explanation.grid ** 2, explanation.numLabels, classIndex);
  }

  /** Occlusion map of one class for an explained image, on the classify session (so fp16, int8 and remote work). */
  occlusion(explanation: Explanation, classIndex: number, options: OcclusionOptions = {}): Promise<OcclusionResult> {
    return occlusionMap((batch, n) => this.logits(batch, n), explanation.pixelValues, this.patchGeometry(), classIndex, options);
  }

  /** Deletion, insertion and random-deletion scores of a relevance map (grid*grid values) for one class. */
  faithfulness(explanation: Explanation, classIndex: number, relevance: ArrayLike<number>, options: { steps?: number; batchSize?: number } = {}): Promise<FaithfulnessScores> {
    const geometry = this.patchGeometry();
    let blurred = this.blurredInputs.get(explanation.pixelValues);
    if (!blurred) this.blurredInputs.set(explanation.pixelValues, (blurred = gaussianBlur(explanation.pixelValues, geometry.channels, explanation.size)));
    return faithfulnessScores((batch, n) => this.logits(batch, n), explanation.pixelValues, geometry, classIndex, relevance, { ...options, blurred });
  }

  /** The rollout rows a map should read for this model: the patch rows when the head mean-pools them, else CLS. */
  get rolloutSource(): RolloutSource {
    return this.directory.config.architecture.pooling === 'mean' ? 'patches' : 'cls';
  }

  private patchGeometry(): PatchGeometry {
    const cfg = this.directory.config;
    return { channels: 3, grid: cfg.gridSize, patchSize: cfg.patchSize, numLabels: cfg.numLabels };
  }

  private getExplainSession(): Promise<InferenceSession> {
    const file = this.directory.fullModel;
    if (!file) {
      return Promise.reject(new BeitLensError('MODEL_INVALID', 'this model folder has no explanation graph (model.onnx with attentions); re-run `beit-lens convert`', this.directory.dir));
    }
    const cfg = this.directory.config;
    this.explainSession ??= sessionFactory(this.options).create(file, { ...sessionOptions(this.options), provider: this.classifySession.provider }).then((s) => {
      checkInterface(s, ['logits', 'attentions', 'patch_logits'], file, cfg.imageSize);
      return s;
    });
    return this.explainSession;
  }

  async dispose(): Promise<void> {
    await this.classifySession.release();
    const explain = await this.explainSession?.catch(() => undefined);
    await explain?.release();
  }
}

const localSessions = new LocalSessionFactory();

function sessionFactory(options: BeitModelOptions): SessionFactory {
  return options.sessions ?? localSessions;
}

/** The session options proper: BeitModel's own options (preprocessing, the factory) stay out of the factory's view. */
function sessionOptions(options: BeitModelOptions): ModelSessionOptions {
  return { ...(options.provider !== undefined ? { provider: options.provider } : {}), ...(options.intraOpThreads !== undefined ? { intraOpThreads: options.intraOpThreads } : {}) };
}

function pixelInput(pixelValues: Float32Array, n: number, size: number): Record<string, { data: Float32Array; dims: number[] }> {
  return { pixel_values: { data: pixelValues, dims: [n, 3, size, size] } };
}

function checkInterface(session: InferenceSession, outputs: string[], file: string, imageSize: number): void {
  if (!session.inputNames.includes('pixel_values')) {
    throw new BeitLensError('MODEL_INVALID', `not a BEiT Lens model: expected input pixel_values, found ${session.inputNames.join(', ') || 'none'}`, file);
  }
  // Checked here rather than left to the first run, where it would fail every batch with an onnxruntime message.
  // A fixed batch size is refused too: classification batches several images.
  const input = session.inputTensor('pixel_values');
  const shape = input?.shape ?? [];
  const dynamic = (dim: number | string | undefined) => (typeof dim === 'string' && dim !== '') || dim === -1;
  const fits = (dim: number | string | undefined, size: number) => dim === size || dynamic(dim);
  if (!input || input.type !== 'float32' || shape.length !== 4 || !dynamic(shape[0]) || !fits(shape[1], 3) || !fits(shape[2], imageSize) || !fits(shape[3], imageSize)) {
    const found = input ? `${input.type} [${shape.join(',')}]` : 'not a tensor';
    throw new BeitLensError('MODEL_INVALID', `not a BEiT Lens model: input pixel_values is ${found}, expected float32 [batch,3,${imageSize},${imageSize}] (config.json image_size ${imageSize})`, file);
  }
  const missing = outputs.filter((o) => !session.outputNames.includes(o));
  if (missing.length) throw new BeitLensError('MODEL_INVALID', `not a BEiT Lens model: missing output ${missing.join(', ')}`, file);
}

function checkLogits(dims: number[], n: number, numLabels: number, file: string): void {
  if (dims.length !== 2 || dims[0] !== n || dims[1] !== numLabels) {
    throw new BeitLensError('MODEL_INVALID', `model returned logits [${dims.join(',')}], expected [${n},${numLabels}] (config.json and model.onnx disagree)`, file);
  }
}
