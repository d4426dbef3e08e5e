/**
 * Measures the near-duplicate threshold for a model on a folder of real, distinct images (#13: the default T
 * must be chosen for the real checkpoint). For every image it makes the copies a dataset picks up by accident
 * (JPEG recompression at q 75 and q 40, resized to half and back, a Gaussian blur, a 5% crop, a small brightness
 * change), embeds originals and copies, and prints the cosine distributions of copy↔original pairs and of
 * distinct-image pairs, with the threshold that separates them best (highest F1 over the pairs) and the
 * percentiles on either side.
 *
 *   node --import tsx bench/duplicateThreshold.ts --model DIR --images FOLDER [--limit 300]
 *
 * Update DEFAULT_NEAR_DUPLICATE_THRESHOLD (src/core/similarity/duplicates.ts) and the README from its output.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import sharp, { type Sharp } from 'sharp';
import { BeitModel } from '../src/core/beitModel';
import { embeddingSetFrom } from '../src/core/similarity/embeddingSet';
import { dot } from '../src/core/similarity/vectorMath';

const IMAGE = /\.(jpe?g|png|webp|gif|tiff?|avif|bmp)$/i;

const AUGMENTATIONS: [string, (src: string, width: number, height: number) => Sharp][] = [
  ['jpeg q75', (src) => sharp(src).jpeg({ quality: 75 })],
  ['jpeg q40', (src) => sharp(src).jpeg({ quality: 40 })],
  ['half size and back', (src, w, h) => sharp(src).resize(Math.max(1, Math.round(w / 2))).resize(w, h).png()],
  ['blur sigma 1.5', (src) => sharp(src).blur(1.5).png()],
  ['crop 5%', (src, w, h) => sharp(src).extract({ left: Math.round(w * 0.025), top: Math.round(h * 0.025), width: Math.max(1, Math.round(w * 0.95)), height: Math.max(1, Math.round(h * 0.95)) }).png()],
  ['brightness +10%', (src) => sharp(src).modulate({ brightness: 1.1 }).png()],
];

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.floor(p * (sorted.length - 1))))];
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { model: { type: 'string' }, images: { type: 'string' }, limit: { type: 'string', default: '300' } } });
  if (!values.model || !values.images) throw new Error('usage: duplicateThreshold.ts --model DIR --images FOLDER [--limit N]');
  const files = (await readdir(values.images, { recursive: true, withFileTypes: true }))
    .filter((e) => e.isFile() && IMAGE.test(e.name))
    .map((e) => path.join(e.parentPath, e.name))
    .sort()
    .slice(0, Number(values.limit));
  if (files.length < 2) throw new Error(`${values.images}: fewer than two images`);
  const work = await mkdtemp(path.join(os.tmpdir(), 'beit-threshold-'));
  try {
    const copies: { file: string; of: number; how: string }[] = [];
    for (const [of, src] of files.entries()) {
      const { width, height } = await sharp(src).metadata();
      if (!width || !height) continue;
      for (const [k, [how, make]] of AUGMENTATIONS.entries()) {
        const file = path.join(work, `${of}-${k}.${how.startsWith('jpeg') ? 'jpg' : 'png'}`);
        await make(src, width, height).toFile(file);
        copies.push({ file, of, how });
      }
    }
    const model = await BeitModel.load(values.model);
    const results = await model.embedFiles([...files, ...copies.map((c) => c.file)]);
    await model.dispose();
    const bad = results.filter((r) => !r.embedding);
    for (const r of bad) process.stderr.write(`skipped ${r.image}: ${r.error}\n`);
    const ok = results.map((r, i) => ({ r, i })).filter(({ r }) => r.embedding);
    const set = embeddingSetFrom(ok.map(({ r, i }) => ({ image: r.image, hash: String(i), root: 0, embedding: r.embedding! })), model.embeddingSize, [values.images]);
    const rowOf = new Map(ok.map(({ i }, row) => [i, row]));
    const cos = (a: number, b: number) => dot(set.vectors, a * set.dim, set.vectors, b * set.dim, set.dim);

    const copyScores: number[] = [];
    const byHow = new Map<string, number[]>();
    copies.forEach((c, k) => {
      const a = rowOf.get(c.of);
      const b = rowOf.get(files.length + k);
      if (a === undefined || b === undefined) return;
      const s = cos(a, b);
      copyScores.push(s);
      byHow.set(c.how, [...(byHow.get(c.how) ?? []), s]);
    });
    const distinct: number[] = [];
    for (let a = 0; a < files.length; a++) {
      for (let b = a + 1; b < files.length; b++) {
        const ra = rowOf.get(a);
        const rb = rowOf.get(b);
        if (ra !== undefined && rb !== undefined) distinct.push(cos(ra, rb));
      }
    }
    const same = Float64Array.from(copyScores).sort();
    const other = Float64Array.from(distinct).sort();
    // Best F1 over candidate thresholds: every observed score is a candidate.
    let best = { t: 1, f1: -1, precision: 0, recall: 0 };
    for (const t of [...same, ...other]) {
      const tp = same.length - lowerBound(same, t);
      const fp = other.length - lowerBound(other, t);
      const precision = tp / Math.max(1, tp + fp);
      const recall = tp / same.length;
      const f1 = (2 * precision * recall) / Math.max(1e-12, precision + recall);
      if (f1 > best.f1) best = { t, f1, precision, recall };
    }
    const lines = [
      `model ${values.model}; ${files.length} images (${bad.length} unreadable), ${same.length} copy pairs, ${other.length} distinct pairs`,
      `copies ↔ original: min ${same[0].toFixed(4)}, 1% ${percentile(same, 0.01).toFixed(4)}, 5% ${percentile(same, 0.05).toFixed(4)}, median ${percentile(same, 0.5).toFixed(4)}`,
      ...[...byHow].map(([how, s]) => `  ${how.padEnd(20)} min ${Math.min(...s).toFixed(4)}, median ${percentile(Float64Array.from(s).sort(), 0.5).toFixed(4)}`),
      `distinct pairs: median ${percentile(other, 0.5).toFixed(4)}, 99% ${percentile(other, 0.99).toFixed(4)}, 99.9% ${percentile(other, 0.999).toFixed(4)}, max ${other[other.length - 1].toFixed(4)}`,
      `best threshold (F1 over pairs): ${best.t.toFixed(4)} (F1 ${best.f1.toFixed(3)}, precision ${best.precision.toFixed(3)}, recall ${best.recall.toFixed(3)})`,
    ];
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** First index in ascending `sorted` whose value is ≥ t. */
function lowerBound(sorted: Float64Array, t: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

main().catch((err) => {
  process.stderr.write(`duplicateThreshold failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
