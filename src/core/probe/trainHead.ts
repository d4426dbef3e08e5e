/**
 * Trains the linear head: a stratified holdout split, L2 chosen by cross-validation on the training part only
 * (the holdout never influences the model), the standardised fit folded back into raw-feature weights, and the
 * holdout's evaluation.
 */
import { seededUniform } from '../seededRandom';
import {
  chooseL2ByCrossValidation, fitStandardisedLogistic, predictProbabilities, selectRows,
  type FeatureMatrix, type LogisticModel,
} from './logisticRegression';

export const DEFAULT_HOLDOUT = 0.2;
export const DEFAULT_SEED = 0;

export interface HoldoutSplit {
  readonly train: number[];
  readonly holdout: number[];
}

/**
 * Per class, round(fraction · count) rows go to the holdout, at least one when the fraction is positive, and
 * always leaving one to train on; a class with a single image stays wholly in training.
 */
export function stratifiedHoldout(labels: Int32Array, classCount: number, fraction: number, seed: number): HoldoutSplit {
  const random = seededUniform(seed);
  const byClass: number[][] = Array.from({ length: classCount }, () => []);
  labels.forEach((label, row) => byClass[label].push(row));
  const train: number[] = [];
  const holdout: number[] = [];
  for (const rows of byClass) {
    for (let i = rows.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [rows[i], rows[j]] = [rows[j], rows[i]];
    }
    const wanted = fraction > 0 && rows.length >= 2 ? Math.min(rows.length - 1, Math.max(1, Math.round(fraction * rows.length))) : 0;
    holdout.push(...rows.slice(0, wanted));
    train.push(...rows.slice(wanted));
  }
  return { train: train.sort((a, b) => a - b), holdout: holdout.sort((a, b) => a - b) };
}

export interface ClassMetrics {
  readonly name: string;
  /** Of the holdout images predicted as this class, the share that are; null when none was predicted. */
  readonly precision: number | null;
  /** Of the holdout images of this class, the share predicted so; null when the holdout has none. */
  readonly recall: number | null;
  /** Holdout images of this class. */
  readonly support: number;
  /** Training images of this class. */
  readonly trained: number;
}

export interface Evaluation {
  /** Null when there is no holdout. */
  readonly accuracy: number | null;
  readonly classes: ClassMetrics[];
  /** confusion[given][predicted], holdout counts. */
  readonly confusion: number[][];
}

export function evaluate(model: LogisticModel, x: FeatureMatrix, labels: Int32Array, classNames: readonly string[], trainedPerClass: readonly number[]): Evaluation {
  const k = model.classCount;
  const confusion = Array.from({ length: k }, () => new Array<number>(k).fill(0));
  const p = x.rows > 0 ? predictProbabilities(model, x) : new Float64Array(0);
  let correct = 0;
  for (let i = 0; i < x.rows; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (p[i * k + c] > p[i * k + best]) best = c;
    confusion[labels[i]][best]++;
    if (best === labels[i]) correct++;
  }
  const classes = classNames.map((name, c) => {
    const support = confusion[c].reduce((a, b) => a + b, 0);
    const predicted = confusion.reduce((a, row) => a + row[c], 0);
    return {
      name,
      precision: predicted > 0 ? confusion[c][c] / predicted : null,
      recall: support > 0 ? confusion[c][c] / support : null,
      support,
      trained: trainedPerClass[c],
    };
  });
  return { accuracy: x.rows > 0 ? correct / x.rows : null, classes, confusion };
}

export interface TrainedHead {
  /** Takes raw embeddings: logits = W·embedding + b. */
  readonly model: LogisticModel;
  readonly l2: number;
  readonly evaluation: Evaluation;
  readonly split: HoldoutSplit;
}

export interface TrainHeadOptions {
  readonly holdout?: number;
  readonly seed?: number;
  readonly signal?: AbortSignal;
}

export function trainHead(x: FeatureMatrix, labels: Int32Array, classNames: readonly string[], options: TrainHeadOptions = {}): TrainedHead {
  const k = classNames.length;
  const seed = options.seed ?? DEFAULT_SEED;
  const split = stratifiedHoldout(labels, k, options.holdout ?? DEFAULT_HOLDOUT, seed);
  const trainX = selectRows(x, split.train);
  const trainY = Int32Array.from(split.train, (r) => labels[r]);
  const { l2 } = chooseL2ByCrossValidation(trainX, trainY, k, { seed, signal: options.signal });
  options.signal?.throwIfAborted();
  const model = fitStandardisedLogistic(trainX, trainY, k, { l2 });
  const trainedPerClass = new Array<number>(k).fill(0);
  for (const y of trainY) trainedPerClass[y]++;
  const evaluation = evaluate(model, selectRows(x, split.holdout), Int32Array.from(split.holdout, (r) => labels[r]), classNames, trainedPerClass);
  return { model, l2, evaluation, split };
}
