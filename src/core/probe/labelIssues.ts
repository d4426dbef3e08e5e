import {
  chooseL2ByCrossValidation, CV_GRADIENT_TOLERANCE, fitStandardisedLogistic, predictProbabilities, selectRows, stratifiedFolds,
  type FeatureMatrix,
} from './logisticRegression';

export interface LabelIssue {
  readonly row: number;
  readonly givenLabel: number;
  readonly suggestedLabel: number;
  /** Out-of-fold probability of the given label (cleanlab's default ranking score). */
  readonly selfConfidence: number;
  /** 1 = most suspicious. */
  readonly rank: number;
}

export interface ClassLabelSummary {
  readonly label: number;
  readonly count: number;
  /** Share of this class's images whose confident-joint class differs from the given one. */
  readonly estimatedWrongShare: number;
}

export interface LabelIssueReport {
  readonly issues: LabelIssue[];
  readonly classes: ClassLabelSummary[];
  readonly l2: number;
}

/**
 * K-fold out-of-fold probabilities from the linear probe, every image ranked by self-confidence.
 * The per-class wrong-label share follows cleanlab's confident joint: a class's threshold is the mean
 * self-confidence of images given that class; an image counts towards the most probable class whose
 * probability reaches that class's threshold (or its given class when none does).
 */
export function findLabelIssues(
  x: FeatureMatrix, labels: Int32Array, classCount: number,
  options: { folds?: number; seed: number; l2?: number; signal?: AbortSignal; onProgress?: (done: number, total: number) => void },
): LabelIssueReport {
  const folds = options.folds ?? 5;
  if (!Number.isInteger(folds) || folds < 2) throw new Error(`label issues: --folds must be an integer ≥ 2, got ${folds}`);
  const l2 = options.l2 ?? chooseL2ByCrossValidation(x, labels, classCount, { seed: options.seed, signal: options.signal }).l2;
  const assignment = stratifiedFolds(labels, folds, options.seed);
  const probabilities = new Float64Array(x.rows * classCount);
  for (let fold = 0; fold < folds; fold++) {
    options.signal?.throwIfAborted();
    const train: number[] = [];
    const test: number[] = [];
    assignment.forEach((f, row) => (f === fold ? test : train).push(row));
    if (test.length === 0) continue;
    const model = fitStandardisedLogistic(selectRows(x, train), Int32Array.from(train, (r) => labels[r]), classCount, { l2, gradientTolerance: CV_GRADIENT_TOLERANCE });
    const p = predictProbabilities(model, selectRows(x, test));
    test.forEach((row, i) => probabilities.set(p.subarray(i * classCount, (i + 1) * classCount), row * classCount));
    options.onProgress?.(fold + 1, folds);
  }
  const scored = Array.from(labels, (given, row) => {
    let suggested = 0;
    for (let c = 1; c < classCount; c++) if (probabilities[row * classCount + c] > probabilities[row * classCount + suggested]) suggested = c;
    return { row, givenLabel: given, suggestedLabel: suggested, selfConfidence: probabilities[row * classCount + given] };
  });
  scored.sort((a, b) => a.selfConfidence - b.selfConfidence || a.row - b.row);
  const issues = scored.map((s, i) => ({ ...s, rank: i + 1 }));

  const thresholdSum = new Float64Array(classCount);
  const counts = new Int32Array(classCount);
  labels.forEach((given, row) => { thresholdSum[given] += probabilities[row * classCount + given]; counts[given]++; });
  const threshold = Array.from(thresholdSum, (sum, c) => (counts[c] > 0 ? sum / counts[c] : Infinity));
  const offDiagonal = new Int32Array(classCount);
  labels.forEach((given, row) => {
    let best = -1;
    for (let c = 0; c < classCount; c++) {
      const p = probabilities[row * classCount + c];
      if (p >= threshold[c] && (best < 0 || p > probabilities[row * classCount + best])) best = c;
    }
    if (best >= 0 && best !== given) offDiagonal[given]++;
  });
  const classes = Array.from(counts, (count, label) => ({
    label, count, estimatedWrongShare: count > 0 ? offDiagonal[label] / count : 0,
  }));
  return { issues, classes, l2 };
}
