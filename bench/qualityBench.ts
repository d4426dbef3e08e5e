/**
 * What the image-quality measures add to the scan's preprocessing (#13 quality flags): preprocessImage with
 * `measureQuality` against the same call without it, timed in alternation on the same files. Run alone with
 * `node --import tsx bench/qualityBench.ts` (generates its own JPEGs); bench.ts adds its rows on its images.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { preprocessImage } from '../src/core/preprocess';
import type { PreprocessorConfig } from '../src/core/preprocessorConfig';
import { type BenchRow, median } from './timing';



/** Rows for each named file: per-image preprocessing ms with the measures vs without. */
export async function qualityRows(files: ReadonlyArray<readonly [name: string, file: string]>, preprocessor: PreprocessorConfig, reps: number): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const [name, file] of files) {
    const run = (measureQuality: boolean) => preprocessImage(file, preprocessor, { measureQuality });
    for (let i = 0; i < 2; i++) await Promise.all([run(true), run(false)]);
    const withQ: number[] = [];
    const without: number[] = [];
    for (let i = 0; i < reps; i++) {
      let t = performance.now();
      await run(true);
      withQ.push(performance.now() - t);
      t = performance.now();
      await run(false);
      without.push(performance.now() - t);
    }
    const ours = median(withQ);
    const peer = median(without);
    rows.push({ figure: `scan preprocessing with quality measures, ${name} (vs without)`, ours, peer, unit: 'ms', peerName: 'preprocessing alone', ratio: ours / peer, target: '<= 1.10x', met: ours / peer <= 1.1 });
  }
  return rows;
}

/** A photo-like JPEG: gradients, edges and noise, so neither the decoder nor the measures get an easy image. */
async function photo(file: string, width: number, height: number): Promise<void> {
  const rgb = Buffer.alloc(width * height * 3);
  let s = 12345;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      s = (s * 1103515245 + 12345) >>> 0;
      const i = 3 * (y * width + x);
      const edge = ((x >> 5) + (y >> 5)) % 2 ? 40 : 0;
      rgb[i] = ((x * 200) / width + edge + (s >>> 28)) & 255;
      rgb[i + 1] = ((y * 200) / height + edge + ((s >>> 24) & 15)) & 255;
      rgb[i + 2] = (((x + y) * 100) / (width + height) + 60 + ((s >>> 20) & 15)) & 255;
    }
  }
  await sharp(rgb, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toFile(file);
}

async function main(): Promise<void> {
  const dir = await mkdtemp(path.join(tmpdir(), 'beit-quality-bench-'));
  try {
    const small = path.join(dir, 'small.jpg');
    const large = path.join(dir, 'large.jpg');
    await photo(small, 640, 480);
    await photo(large, 4000, 3000);
    // The BEiT checkpoints' processor: 224 x 224, bilinear (2), rescale and normalise.
    const preprocessor: PreprocessorConfig = { doResize: true, width: 224, height: 224, resample: 2, doCenterCrop: false, cropWidth: 224, cropHeight: 224, doRescale: true, rescaleFactor: 1 / 255, doNormalize: true, imageMean: [0.5, 0.5, 0.5], imageStd: [0.5, 0.5, 0.5] };
    const rows = await qualityRows([['640x480 JPEG', small], ['4000x3000 JPEG', large]], preprocessor, Number(process.env.REPS ?? 15));
    for (const r of rows) console.log(`${r.figure}: ${r.ours.toFixed(2)} ms vs ${r.peer.toFixed(2)} ms = ${r.ratio.toFixed(3)}x (target ${r.target}: ${r.met ? 'met' : 'NOT met'})`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (require.main === module) void main();
