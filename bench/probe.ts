/**
 * Linear-probe benchmark rows (#14), over synthetic labelled 768-d embeddings generated here (10 classes around
 * random centres, anisotropic noise, 2% of labels flipped), each a ratio to scikit-learn doing the same work in
 * the same run (bench/probe_peer.py, Debian's /usr/bin/python3 with python3-sklearn):
 *
 *   - training: `trainHead` on all rows with no holdout (L2 chosen by 3-fold cross-validation over the same
 *     7-value grid, then the final fit) against LogisticRegressionCV(lbfgs, that grid, 3 stratified folds,
 *     log-loss scoring) on standardised rows. Target ≤ 10 s.
 *   - label issues: `findLabelIssues` with 5 folds (its L2 search included) against cross_val_predict of
 *     LogisticRegression at that L2 (cleanlab's own way to get out-of-fold probabilities), 5 folds. Target ≤ 60 s.
 *
 * Run directly: `node --import tsx bench/probe.ts` (PROBE_COUNT=2000 for a quicker pass); `npm run bench` runs it
 * too. Without sklearn the peer columns are NaN and say so.
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { encodeNpyFloat32 } from '../src/core/embeddingFile';
import { findLabelIssues } from '../src/core/probe/labelIssues';
import { DEFAULT_L2_GRID, type FeatureMatrix } from '../src/core/probe/logisticRegression';
import { trainHead } from '../src/core/probe/trainHead';
import { seededNormal, seededUniform } from '../src/core/seededRandom';
import { type BenchRow } from './timing';


const DIM = 768;
const CLASSES = 10;
const PYTHON = '/usr/bin/python3';

/** Labelled rows around CLASSES random centres; per-dimension noise scales in [0.3, 1.5]; 2% of labels flipped. */
export function syntheticLabelledEmbeddings(count: number, seed = 7): { x: FeatureMatrix; labels: Int32Array; names: string[] } {
  const normal = seededNormal(seed);
  const uniform = seededUniform(seed + 1);
  const centres = Float32Array.from({ length: CLASSES * DIM }, () => 0.12 * normal());
  const scales = Float32Array.from({ length: DIM }, () => 0.3 + 1.2 * uniform());
  const values = new Float32Array(count * DIM);
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const c = i % CLASSES;
    for (let j = 0; j < DIM; j++) values[i * DIM + j] = centres[c * DIM + j] + scales[j] * normal();
    labels[i] = uniform() < 0.02 ? Math.floor(uniform() * CLASSES) : c;
  }
  return { x: { values, rows: count, columns: DIM }, labels, names: Array.from({ length: CLASSES }, (_, c) => `class ${c}`) };
}

function sklearnPeer(l2: number, dir: string): { trainSeconds: number; labelIssuesSeconds: number } | undefined {
  try {
    execFileSync(PYTHON, ['-c', 'import sklearn'], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  return JSON.parse(
    execFileSync(PYTHON, [path.join(__dirname, 'probe_peer.py'), path.join(dir, 'x.npy'), path.join(dir, 'y.npy'), String(l2), JSON.stringify(DEFAULT_L2_GRID)], {
      encoding: 'utf8',
      maxBuffer: 16 << 20,
    }),
  );
}

export async function benchmarkProbe(count: number): Promise<BenchRow[]> {
  const { x, labels, names } = syntheticLabelledEmbeddings(count);
  const log = (m: string) => process.stderr.write(`probe bench: ${m}\n`);
  let t = performance.now();
  const trained = trainHead(x, labels, names, { holdout: 0, seed: 0 });
  const trainSeconds = (performance.now() - t) / 1000;
  log(`train-head ${trainSeconds.toFixed(1)} s (L2 ${trained.l2})`);
  t = performance.now();
  const issues = findLabelIssues(x, labels, CLASSES, { folds: 5, seed: 0 });
  const labelIssuesSeconds = (performance.now() - t) / 1000;
  log(`label-issues ${labelIssuesSeconds.toFixed(1)} s (L2 ${issues.l2})`);

  const dir = await mkdtemp(path.join(os.tmpdir(), 'probe-bench-'));
  let peer: { trainSeconds: number; labelIssuesSeconds: number } | undefined;
  try {
    await writeFile(path.join(dir, 'x.npy'), encodeNpyFloat32(x.values as Float32Array, x.rows, x.columns));
    await writeFile(path.join(dir, 'y.npy'), encodeNpyFloat32(Float32Array.from(labels), labels.length, 1));
    peer = sklearnPeer(issues.l2, dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  if (peer) log(`sklearn: train ${peer.trainSeconds.toFixed(1)} s, out-of-fold ${peer.labelIssuesSeconds.toFixed(1)} s`);
  const peerName = peer ? 'scikit-learn' : 'scikit-learn (not available)';
  const rows: BenchRow[] = [
    {
      figure: `train-head on ${count} ${DIM}-d embeddings, ${CLASSES} classes, L2 search by 3-fold CV over ${DEFAULT_L2_GRID.length} values (vs LogisticRegressionCV lbfgs)`,
      ours: trainSeconds,
      peer: peer?.trainSeconds ?? NaN,
      unit: 's',
      peerName,
      ratio: trainSeconds / (peer?.trainSeconds ?? NaN),
      target: '<= 10 s',
      met: trainSeconds <= 10,
    },
    {
      figure: `label-issues, 5 folds on ${count} (L2 search included) (vs cross_val_predict of LogisticRegression at that L2)`,
      ours: labelIssuesSeconds,
      peer: peer?.labelIssuesSeconds ?? NaN,
      unit: 's',
      peerName,
      ratio: labelIssuesSeconds / (peer?.labelIssuesSeconds ?? NaN),
      target: '<= 60 s',
      met: labelIssuesSeconds <= 60,
    },
  ];
  return rows;
}

if (require.main === module) {
  benchmarkProbe(Number(process.env.PROBE_COUNT ?? 10_000))
    .then((rows) => process.stdout.write(JSON.stringify(rows, null, 2) + '\n'))
    .catch((err) => {
      process.stderr.write(`probe bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
      process.exitCode = 1;
    });
}
