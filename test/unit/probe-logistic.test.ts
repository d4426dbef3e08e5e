import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import {
  chooseL2ByCrossValidation, fitLogistic, fitStandardisedLogistic, predictProbabilities, stratifiedFolds,
} from '../../src/core/probe/logisticRegression';
import { findLabelIssues } from '../../src/core/probe/labelIssues';

interface Reference {
  n: number; d: number; k: number; C: number;
  x: number[]; y: number[]; coef: number[]; intercept: number[]; probabilities: number[];
}

const reference = JSON.parse(
  readFileSync(path.join(__dirname, '../fixtures/probe/logistic-reference.json'), 'utf8'),
) as Reference;
const x = { values: Float64Array.from(reference.x), rows: reference.n, columns: reference.d };
const labels = Int32Array.from(reference.y);

function maxAbsDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

describe('probe logistic regression', () => {
  it('matches sklearn LogisticRegression (multinomial, L2, lbfgs) on a fixed problem', () => {
    // sklearn minimises C·Σloss + ½‖W‖²; ours is Σloss/n + l2/2·‖W‖², so l2 = 1/(C·n).
    const model = fitLogistic(x, labels, reference.k, { l2: 1 / (reference.C * reference.n), gradientTolerance: 1e-10, maxIterations: 5000 });
    // sklearn's multinomial coefficients are identifiable only because of the penalty; the bias is unpenalised,
    // so its free per-row constant is fixed by centring, as sklearn's solution also sums to zero.
    const biasMean = model.bias.reduce((s, v) => s + v, 0) / reference.k;
    const refBiasMean = reference.intercept.reduce((s, v) => s + v, 0) / reference.k;
    assert.ok(maxAbsDifference(model.weights, reference.coef) < 1e-5, `weights differ by ${maxAbsDifference(model.weights, reference.coef)}`);
    assert.ok(maxAbsDifference(model.bias.map((b) => b - biasMean), reference.intercept.map((b) => b - refBiasMean)) < 1e-5);
    assert.ok(maxAbsDifference(predictProbabilities(model, x), reference.probabilities) < 1e-6);
  });

  it('folds standardisation into the weights: raw-feature predictions equal the standardised fit', () => {
    const shifted = { ...x, values: x.values.map((v, i) => v * (1 + (i % reference.d)) * 10 + 100) };
    const model = fitStandardisedLogistic(shifted, labels, reference.k, { l2: 1e-2, gradientTolerance: 1e-10, maxIterations: 5000 });
    const p = predictProbabilities(model, shifted);
    // Standardising makes the fit invariant to per-column scale and shift, so the folded model on the
    // rescaled features must predict exactly what the folded model on the original features predicts.
    const unscaled = fitStandardisedLogistic(x, labels, reference.k, { l2: 1e-2, gradientTolerance: 1e-10, maxIterations: 5000 });
    assert.ok(maxAbsDifference(p, predictProbabilities(unscaled, x)) < 1e-6);
  });

  it('stratified folds are balanced per class and reproducible with the seed', () => {
    const a = stratifiedFolds(labels, 5, 7);
    assert.deepEqual(a, stratifiedFolds(labels, 5, 7));
    for (let fold = 0; fold < 5; fold++) {
      for (let c = 0; c < reference.k; c++) {
        const count = [...labels].filter((label, row) => label === c && a[row] === fold).length;
        assert.equal(count, 4);
      }
    }
  });

  it('cross-validation picks an L2 from the grid with the lowest held-out loss', () => {
    const { l2, losses } = chooseL2ByCrossValidation(x, labels, reference.k, { seed: 3, grid: [10, 1e-2] });
    assert.equal(losses.length, 2);
    assert.ok(losses.every(Number.isFinite));
    // A penalty of 10 on standardised features flattens the softmax; it must lose to 1e-2 on this separable-ish data.
    assert.equal(l2, 1e-2);
    assert.ok(losses[1] < losses[0]);
  });
});

describe('probe label issues', () => {
  it('ranks transplanted wrong-class points first and suggests their true class', async () => {
    const { seededNormal } = await import('../../src/core/seededRandom');
    const normal = seededNormal(11);
    const k = 3;
    const d = 8;
    const perClass = 40;
    const rows = k * perClass;
    const values = new Float64Array(rows * d);
    const truth = new Int32Array(rows);
    for (let row = 0; row < rows; row++) {
      truth[row] = row % k;
      for (let j = 0; j < d; j++) values[row * d + j] = (j === truth[row] ? 6 : 0) + normal();
    }
    const given = Int32Array.from(truth);
    const transplanted = [5, 31, 62];
    for (const row of transplanted) given[row] = (truth[row] + 1) % k;
    const report = findLabelIssues({ values, rows, columns: d }, given, k, { seed: 2, folds: 5 });
    assert.equal(report.issues.length, rows);
    assert.deepEqual(report.issues.slice(0, 3).map((i) => i.row).sort((a, b) => a - b), transplanted);
    for (const issue of report.issues.slice(0, 3)) {
      assert.equal(issue.suggestedLabel, truth[issue.row]);
      assert.ok(issue.selfConfidence < 1 / k, `self-confidence ${issue.selfConfidence}`);
    }
    assert.deepEqual(report.issues.map((i) => i.rank), Array.from({ length: rows }, (_, i) => i + 1));
    // Rows 5 and 62 (truly 2) were given 0, row 31 (truly 1) was given 2; on data this well separated the
    // confident joint counts no clean image, and (being conservative: a point must reach the other class's
    // mean self-confidence) at least half of the transplanted ones.
    assert.deepEqual(report.classes.map((c) => [c.label, c.count]), [[0, 42], [1, 39], [2, 39]]);
    assert.ok([1 / 42, 2 / 42].includes(report.classes[0].estimatedWrongShare), JSON.stringify(report.classes[0]));
    assert.equal(report.classes[1].estimatedWrongShare, 0);
    assert.ok([0, 1 / 39].includes(report.classes[2].estimatedWrongShare), JSON.stringify(report.classes[2]));
    const counted = report.classes[0].estimatedWrongShare * 42 + report.classes[2].estimatedWrongShare * 39;
    assert.ok(Math.round(counted) >= 2, `confident joint counted ${counted} of 3`);
  });

  it('refuses fewer than two folds', () => {
    assert.throws(() => findLabelIssues(x, labels, reference.k, { seed: 1, folds: 1, l2: 1e-2 }), /--folds must be an integer ≥ 2, got 1/);
  });
});
