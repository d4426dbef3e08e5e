/**
 * Occlusion and faithfulness (#18) against the model alone: occlusion's 197 images (the untouched one and 196
 * single-patch masks) against the same number of images run as plain batches of the classify session, and
 * `explain --faithfulness`'s curves (rollout, class heatmap and occlusion maps, 3 curves of 21 points each)
 * against that occlusion, timed in alternation. bench.ts adds these rows on its BEiT-base model; run alone with
 * `node --import tsx bench/occlusionBench.ts [MODEL_DIR] [IMAGE]` (default: a random BEiT-base converted into
 * bench/.cache/occlusion-base, and a synthetic 640x480 image), one timed round after a warm-up.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import * as path from 'node:path';
import sharp from 'sharp';
import { BeitModel } from '../src/core/beitModel';
import { convertModel } from '../src/core/convert';
import { DEFAULT_FAITHFULNESS_STEPS } from '../src/core/faithfulness';
import { writeRandomBeit } from '../src/core/randomModel';
import { type BenchRow, timeAlternating } from './timing';


/** The batch size explain uses (occlusion.ts's and faithfulnessScores.ts's default). */
const BATCH = 16;



export async function occlusionRows(model: BeitModel, image: string, reps: number, warmup = 1): Promise<BenchRow[]> {
  const e = await model.explain(image, { rollout: { headFusion: 'mean', discardRatio: 0.9, from: model.rolloutSource } });
  const classIndex = e.top[0].index;
  const patches = e.grid * e.grid;
  const images = patches + 1;
  const length = e.pixelValues.length;
  // The peer's batches are built before the clock starts: it is the model alone on as many images.
  const batches: Float32Array[] = [];
  for (let start = 0; start < images; start += BATCH) {
    const n = Math.min(BATCH, images - start);
    const batch = new Float32Array(n * length);
    for (let k = 0; k < n; k++) batch.set(e.pixelValues, k * length);
    batches.push(batch);
  }
  const modelOnly = async () => {
    for (const b of batches) await model.logits(b, b.length / length);
  };
  const occlusion = () => model.occlusion(e, classIndex, { batchSize: BATCH });
  const [occlusionMs, modelOnlyMs] = await timeAlternating(occlusion, modelOnly, reps, warmup);
  const occlusionMap = (await occlusion()).map;
  const classLogits = model.classHeatmap(e, classIndex);
  const faithfulness = async () => {
    for (const map of [e.rollout, classLogits, occlusionMap]) await model.faithfulness(e, classIndex, map, { batchSize: BATCH });
  };
  const [faithfulnessMs, occlusionAgainMs] = await timeAlternating(faithfulness, occlusion, reps, 0);
  const occlusionIps = images / (occlusionMs / 1000);
  const modelOnlyIps = images / (modelOnlyMs / 1000);
  const faithfulnessRatio = faithfulnessMs / occlusionAgainMs;
  return [
    { figure: `occlusion, ${patches} single-patch masks + the image, batch ${BATCH} (vs model-only batched, same images)`, ours: occlusionIps, peer: modelOnlyIps, unit: 'images/s', peerName: 'model only', ratio: occlusionIps / modelOnlyIps, target: '>= 0.9', met: occlusionIps / modelOnlyIps >= 0.9 },
    {
      figure: `faithfulness of 3 maps (rollout, class, occlusion), ${DEFAULT_FAITHFULNESS_STEPS} steps per curve, 3 curves each (vs occlusion)`,
      ours: faithfulnessMs,
      peer: occlusionAgainMs,
      unit: 'ms',
      peerName: 'occlusion',
      ratio: faithfulnessRatio,
      target: '<= 2x',
      met: faithfulnessRatio <= 2,
    },
  ];
}

async function standalone(): Promise<void> {
  const cache = path.join(__dirname, '.cache');
  let [dir, image] = process.argv.slice(2);
  if (!dir) {
    const hf = path.join(cache, 'occlusion-base-hf');
    dir = path.join(cache, 'occlusion-base');
    if (!existsSync(path.join(dir, 'beit-lens.json'))) {
      await mkdir(cache, { recursive: true });
      process.stderr.write('[bench] writing and converting a random BEiT-base\n');
      if (!existsSync(path.join(hf, 'model.safetensors'))) await writeRandomBeit(hf, 'base');
      await convertModel({ from: hf, out: dir });
    }
  }
  if (!image) {
    image = path.join(cache, 'occlusion-640x480.jpg');
    if (!existsSync(image)) {
      const rgb = Buffer.alloc(640 * 480 * 3);
      for (let i = 0; i < rgb.length; i++) rgb[i] = (i * 7 + Math.floor(i / 1920) * 3) & 255;
      await sharp(rgb, { raw: { width: 640, height: 480, channels: 3 } }).jpeg().toFile(image);
    }
  }
  const model = await BeitModel.load(dir, { provider: 'cpu' });
  try {
    const rows = await occlusionRows(model, image, Number(process.env.BENCH_REPS ?? 1));
    for (const r of rows) process.stdout.write(`| ${r.figure} | ${r.ours.toFixed(2)} ${r.unit} | ${r.peer.toFixed(2)} ${r.unit} (${r.peerName}) | ${r.ratio.toFixed(2)}x | ${r.target} ${r.met ? 'met' : 'NOT met'} |\n`);
  } finally {
    await model.dispose();
  }
}

if (require.main === module) {
  standalone().catch((err) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exitCode = 1;
  });
}
