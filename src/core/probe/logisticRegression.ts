import { seededUniform } from '../seededRandom';

/** Row-major design matrix: `rows` × `columns` features. */
export interface FeatureMatrix {
  readonly values: Float32Array | Float64Array;
  readonly rows: number;
  readonly columns: number;
}

export interface LogisticModel {
  /** classCount × columns, row-major. */
  readonly weights: Float64Array;
  readonly bias: Float64Array;
  readonly classCount: number;
  readonly columns: number;
}

export interface LogisticFitOptions {
  /** Penalty on the mean log-loss: loss/n + l2/2·‖W‖² (the bias is not penalised). sklearn's C = 1/(n·l2). */
  readonly l2: number;
  readonly maxIterations?: number;
  /** Stop when the gradient's largest component falls below this. */
  readonly gradientTolerance?: number;
  /** Warm start along the L2 path. */
  readonly initial?: LogisticModel;
}

const LBFGS_MEMORY = 10;

function logits(model: Float64Array, x: FeatureMatrix, k: number, out: Float64Array): void {
  const d = x.columns;
  const biasOffset = k * d;
  for (let i = 0; i < x.rows; i++) {
    const rowOffset = i * d;
    for (let c = 0; c < k; c++) {
      let sum = model[biasOffset + c];
      const wOffset = c * d;
      for (let j = 0; j < d; j++) sum += model[wOffset + j] * x.values[rowOffset + j];
      out[i * k + c] = sum;
    }
  }
}

function softmaxInPlace(scores: Float64Array, rows: number, k: number): void {
  for (let i = 0; i < rows; i++) {
    let max = -Infinity;
    for (let c = 0; c < k; c++) max = Math.max(max, scores[i * k + c]);
    let total = 0;
    for (let c = 0; c < k; c++) {
      const e = Math.exp(scores[i * k + c] - max);
      scores[i * k + c] = e;
      total += e;
    }
    for (let c = 0; c < k; c++) scores[i * k + c] /= total;
  }
}

/** Objective and gradient of the penalised mean cross-entropy; parameters are [W (k×d), b (k)]. */
function objective(
  parameters: Float64Array, x: FeatureMatrix, labels: Int32Array, k: number, l2: number,
  gradient: Float64Array, scratch: Float64Array,
): number {
  const n = x.rows;
  const d = x.columns;
  logits(parameters, x, k, scratch);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    let max = -Infinity;
    for (let c = 0; c < k; c++) max = Math.max(max, scratch[i * k + c]);
    let total = 0;
    for (let c = 0; c < k; c++) total += Math.exp(scratch[i * k + c] - max);
    loss += max + Math.log(total) - scratch[i * k + labels[i]];
  }
  softmaxInPlace(scratch, n, k);
  gradient.fill(0);
  const biasOffset = k * d;
  for (let i = 0; i < n; i++) {
    scratch[i * k + labels[i]] -= 1;
    const rowOffset = i * d;
    for (let c = 0; c < k; c++) {
      const r = scratch[i * k + c];
      if (r === 0) continue;
      const wOffset = c * d;
      for (let j = 0; j < d; j++) gradient[wOffset + j] += r * x.values[rowOffset + j];
      gradient[biasOffset + c] += r;
    }
  }
  let penalty = 0;
  for (let p = 0; p < biasOffset; p++) {
    gradient[p] = gradient[p] / n + l2 * parameters[p];
    penalty += parameters[p] * parameters[p];
  }
  for (let c = 0; c < k; c++) gradient[biasOffset + c] /= n;
  return loss / n + (l2 / 2) * penalty;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Multinomial logistic regression with L2, minimised by L-BFGS with a backtracking Armijo line search. */
export function fitLogistic(x: FeatureMatrix, labels: Int32Array, classCount: number, options: LogisticFitOptions): LogisticModel {
  if (labels.length !== x.rows) throw new Error(`fitLogistic: ${labels.length} labels for ${x.rows} rows`);
  const k = classCount;
  const d = x.columns;
  const size = k * d + k;
  const parameters = new Float64Array(size);
  if (options.initial) {
    parameters.set(options.initial.weights, 0);
    parameters.set(options.initial.bias, k * d);
  }
  const gradient = new Float64Array(size);
  const scratch = new Float64Array(x.rows * k);
  const maxIterations = options.maxIterations ?? 500;
  const tolerance = options.gradientTolerance ?? 1e-6;
  const sHistory: Float64Array[] = [];
  const yHistory: Float64Array[] = [];
  const rhoHistory: number[] = [];
  let value = objective(parameters, x, labels, k, options.l2, gradient, scratch);
  const direction = new Float64Array(size);
  const candidate = new Float64Array(size);
  const candidateGradient = new Float64Array(size);
  const alpha = new Float64Array(LBFGS_MEMORY);
  for (let iteration = 0; iteration < maxIterations; iteration++) {
    let largest = 0;
    for (let p = 0; p < size; p++) largest = Math.max(largest, Math.abs(gradient[p]));
    if (largest < tolerance) break;
    // Two-loop recursion: direction = -H·gradient.
    for (let p = 0; p < size; p++) direction[p] = -gradient[p];
    for (let m = sHistory.length - 1; m >= 0; m--) {
      alpha[m] = rhoHistory[m] * dot(sHistory[m], direction);
      const yv = yHistory[m];
      for (let p = 0; p < size; p++) direction[p] -= alpha[m] * yv[p];
    }
    if (sHistory.length > 0) {
      const last = sHistory.length - 1;
      const gamma = dot(sHistory[last], yHistory[last]) / dot(yHistory[last], yHistory[last]);
      for (let p = 0; p < size; p++) direction[p] *= gamma;
    }
    for (let m = 0; m < sHistory.length; m++) {
      const beta = rhoHistory[m] * dot(yHistory[m], direction);
      const sv = sHistory[m];
      for (let p = 0; p < size; p++) direction[p] += (alpha[m] - beta) * sv[p];
    }
    let slope = dot(direction, gradient);
    if (slope >= 0) {
      for (let p = 0; p < size; p++) direction[p] = -gradient[p];
      slope = dot(direction, gradient);
      sHistory.length = 0; yHistory.length = 0; rhoHistory.length = 0;
    }
    let step = sHistory.length === 0 ? Math.min(1, 1 / Math.sqrt(-slope)) : 1;
    let candidateValue = Infinity;
    for (let tries = 0; tries < 60; tries++) {
      for (let p = 0; p < size; p++) candidate[p] = parameters[p] + step * direction[p];
      candidateValue = objective(candidate, x, labels, k, options.l2, candidateGradient, scratch);
      if (candidateValue <= value + 1e-4 * step * slope) break;
      step /= 2;
    }
    if (!(candidateValue < value) && !(candidateValue <= value)) break;
    const s = new Float64Array(size);
    const y = new Float64Array(size);
    for (let p = 0; p < size; p++) {
      s[p] = candidate[p] - parameters[p];
      y[p] = candidateGradient[p] - gradient[p];
    }
    const sy = dot(s, y);
    if (sy > 1e-12) {
      if (sHistory.length === LBFGS_MEMORY) { sHistory.shift(); yHistory.shift(); rhoHistory.shift(); }
      sHistory.push(s); yHistory.push(y); rhoHistory.push(1 / sy);
    }
    const improvement = value - candidateValue;
    parameters.set(candidate);
    gradient.set(candidateGradient);
    value = candidateValue;
    if (improvement <= 1e-15 * Math.max(1, Math.abs(value))) break;
  }
  return {
    weights: parameters.slice(0, k * d),
    bias: parameters.slice(k * d),
    classCount: k,
    columns: d,
  };
}

/** Class probabilities, rows × classCount, row-major. */
export function predictProbabilities(model: LogisticModel, x: FeatureMatrix): Float64Array {
  if (x.columns !== model.columns) throw new Error(`predictProbabilities: model expects ${model.columns} features, got ${x.columns}`);
  const k = model.classCount;
  const packed = new Float64Array(k * model.columns + k);
  packed.set(model.weights, 0);
  packed.set(model.bias, k * model.columns);
  const out = new Float64Array(x.rows * k);
  logits(packed, x, k, out);
  softmaxInPlace(out, x.rows, k);
  return out;
}

/** Per-column mean and standard deviation (population; constant columns get 1 so they drop out). */
function columnStatistics(x: FeatureMatrix): { mean: Float64Array; scale: Float64Array } {
  const mean = new Float64Array(x.columns);
  const scale = new Float64Array(x.columns);
  for (let i = 0; i < x.rows; i++) for (let j = 0; j < x.columns; j++) mean[j] += x.values[i * x.columns + j];
  for (let j = 0; j < x.columns; j++) mean[j] /= x.rows;
  for (let i = 0; i < x.rows; i++) for (let j = 0; j < x.columns; j++) {
    const v = x.values[i * x.columns + j] - mean[j];
    scale[j] += v * v;
  }
  for (let j = 0; j < x.columns; j++) {
    const sd = Math.sqrt(scale[j] / x.rows);
    scale[j] = sd > 1e-12 ? sd : 1;
  }
  return { mean, scale };
}

function standardise(x: FeatureMatrix, mean: Float64Array, scale: Float64Array): FeatureMatrix {
  const values = new Float64Array(x.rows * x.columns);
  for (let i = 0; i < x.rows; i++) for (let j = 0; j < x.columns; j++) {
    values[i * x.columns + j] = (x.values[i * x.columns + j] - mean[j]) / scale[j];
  }
  return { values, rows: x.rows, columns: x.columns };
}

/** Fits on standardised features, then folds the standardisation into the weights so the model takes raw features. */
export function fitStandardisedLogistic(x: FeatureMatrix, labels: Int32Array, classCount: number, options: LogisticFitOptions): LogisticModel {
  const { mean, scale } = columnStatistics(x);
  const fitted = fitLogistic(standardise(x, mean, scale), labels, classCount, options);
  const weights = new Float64Array(fitted.weights.length);
  const bias = Float64Array.from(fitted.bias);
  for (let c = 0; c < classCount; c++) for (let j = 0; j < x.columns; j++) {
    const w = fitted.weights[c * x.columns + j] / scale[j];
    weights[c * x.columns + j] = w;
    bias[c] -= w * mean[j];
  }
  return { weights, bias, classCount, columns: x.columns };
}

export function selectRows(x: FeatureMatrix, rows: readonly number[]): FeatureMatrix {
  const values = new Float64Array(rows.length * x.columns);
  rows.forEach((row, i) => values.set(x.values.subarray(row * x.columns, (row + 1) * x.columns), i * x.columns));
  return { values, rows: rows.length, columns: x.columns };
}

/** Stratified fold assignment: each class's rows shuffled with the seed and dealt round-robin. */
export function stratifiedFolds(labels: Int32Array, folds: number, seed: number): Int32Array {
  const random = seededUniform(seed);
  const byClass = new Map<number, number[]>();
  labels.forEach((label, row) => { const list = byClass.get(label) ?? []; list.push(row); byClass.set(label, list); });
  const assignment = new Int32Array(labels.length);
  let next = 0;
  for (const rows of [...byClass.entries()].sort((a, b) => a[0] - b[0]).map(([, r]) => r)) {
    for (let i = rows.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [rows[i], rows[j]] = [rows[j], rows[i]];
    }
    for (const row of rows) assignment[row] = next++ % folds;
  }
  return assignment;
}

/** Gradient tolerance of the fits inside the L2 search and of the out-of-fold fits (sklearn's default `tol`). */
export const CV_GRADIENT_TOLERANCE = 1e-4;

export const DEFAULT_L2_GRID: readonly number[] = [1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4];

/** L2 chosen by stratified K-fold summed held-out log-loss over the grid (give it strongest first: fits warm-start down the path). */
export function chooseL2ByCrossValidation(
  x: FeatureMatrix, labels: Int32Array, classCount: number,
  options: { folds?: number; seed: number; grid?: readonly number[]; signal?: AbortSignal },
): { l2: number; losses: number[] } {
  const grid = options.grid ?? DEFAULT_L2_GRID;
  const folds = options.folds ?? 3;
  const assignment = stratifiedFolds(labels, folds, options.seed);
  const losses = grid.map(() => 0);
  for (let fold = 0; fold < folds; fold++) {
    const train: number[] = [];
    const test: number[] = [];
    assignment.forEach((f, row) => (f === fold ? test : train).push(row));
    if (test.length === 0 || train.length === 0) continue;
    const trainRaw = selectRows(x, train);
    const { mean, scale } = columnStatistics(trainRaw);
    const trainX = standardise(trainRaw, mean, scale);
    const trainY = Int32Array.from(train, (r) => labels[r]);
    const testX = standardise(selectRows(x, test), mean, scale);
    // The grid runs strongest to weakest penalty, each fit starting from the previous one (in standardised space).
    let previous: LogisticModel | undefined;
    grid.forEach((l2, g) => {
      options.signal?.throwIfAborted();
      // Only the held-out loss at each L2 is wanted: a gradient of 1e-4 (sklearn's default tol) moves it far less
      // than the step between grid values, and the fits along the warm-started path take a fraction of the iterations.
      const model = fitLogistic(trainX, trainY, classCount, { l2, maxIterations: 300, gradientTolerance: CV_GRADIENT_TOLERANCE, initial: previous });
      previous = model;
      const p = predictProbabilities(model, testX);
      test.forEach((row, i) => { losses[g] -= Math.log(Math.max(p[i * classCount + labels[row]], 1e-15)); });
    });
  }
  let best = 0;
  losses.forEach((loss, g) => { if (loss < losses[best]) best = g; });
  return { l2: grid[best], losses };
}
