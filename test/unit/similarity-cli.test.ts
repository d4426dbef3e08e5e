import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import sharp, { type Sharp } from 'sharp';
import { BeitModel } from '../../src/core/beitModel';
import { writeSyntheticDataset } from '../../src/core/scan/scanBench';
import { embeddingSetFrom } from '../../src/core/similarity/embeddingSet';
import { SimilarityIndex } from '../../src/core/similarity/search';
import { convertedTinyModel, FIXTURE_IMAGES, removedAfterTests } from '../helpers/fixtures';

/** The CLI from source, as scan-cli.test.ts runs it. */
const ENTRY = path.resolve(__dirname, '..', '..', 'src', 'cli', 'index.ts');
const run = promisify(execFile);
const tempDir = removedAfterTests();

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', ENTRY, ...args], { timeout: 180_000, maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}
const jsonLines = (text: string) => text.trimEnd().split('\n').filter(Boolean).map((l) => JSON.parse(l));

function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    ab += a[i] * b[i];
    aa += a[i] * a[i];
    bb += b[i] * b[i];
  }
  return ab / Math.sqrt(aa * bb);
}

/**
 * Distinct originals (synthetic gradients of three classes and the opaque fixture photos) and, for some of them,
 * a recompressed, a resized and a blurred copy made with sharp. (A transparent PNG flattened to JPEG is another
 * picture, not a copy, so copies are made of opaque images only; the transparent fixture stays as a distractor.)
 */
async function retrievalSet(dir: string): Promise<{ originals: string[]; copies: { file: string; of: number; how: string }[] }> {
  const originals = await writeSyntheticDataset(path.join(dir, 'originals'), { classes: ['a', 'b', 'c'], perClass: 4, width: 160, height: 120, seed: 3 });
  for (const f of ['gradient_640x480.jpg', 'exif_orientation6_320x240.jpg', 'gray_256x256.png', 'alpha_300x200.png']) {
    const to = path.join(dir, 'originals', f);
    await copyFile(path.join(FIXTURE_IMAGES, f), to);
    originals.push(to);
  }
  await mkdir(path.join(dir, 'copies'));
  const copies: { file: string; of: number; how: string }[] = [];
  for (const of of [0, 5, 10, 12, 13, 14]) {
    const src = originals[of];
    const base = path.join(dir, 'copies', path.basename(src).replace(/\.\w+$/, ''));
    const { width } = await sharp(src).metadata();
    const made: [string, string, Sharp][] = [
      ['recompressed (JPEG q40)', `${base}-q40.jpg`, sharp(src).jpeg({ quality: 40 })],
      ['resized to half', `${base}-half.png`, sharp(src).resize(Math.round(width! / 2)).png()],
      ['blurred (sigma 2)', `${base}-blur.png`, sharp(src).blur(2).png()],
    ];
    for (const [how, file, pipeline] of made) {
      await pipeline.toFile(file);
      copies.push({ file, of, how });
    }
  }
  return { originals, copies };
}

describe('retrieval with the tiny fixture model', () => {
  it('recompressed, resized and blurred copies find their original before any other image', async () => {
    const dir = await tempDir('beit-sim-retrieval-');
    const { originals, copies } = await retrievalSet(dir);
    const model = await BeitModel.load(await convertedTinyModel());
    try {
      const results = await model.embedFiles([...originals, ...copies.map((c) => c.file)]);
      const set = embeddingSetFrom(results.map((r, i) => ({ image: r.image, hash: `h${i}`, root: 0, embedding: r.embedding! })), model.embeddingSize, [dir]);
      const index = await SimilarityIndex.open(set);
      const margins: string[] = [];
      for (let c = 0; c < copies.length; c++) {
        const copy = copies[c];
        // Other copies of the same original may rank anywhere; no image of another original may rank above it.
        const ranked = index.neighboursOf(originals.length + c, set.count - 1).filter((n) => n.row < originals.length || copies[n.row - originals.length].of !== copy.of);
        assert.equal(ranked[0].row, copy.of, `${copy.how} copy of ${path.basename(originals[copy.of])}: nearest is ${path.basename(set.images[ranked[0].row])} (${ranked[0].similarity}), not its original`);
        margins.push(`${ranked[0].similarity.toFixed(4)}>${ranked[1].similarity.toFixed(4)}`);
      }
      index.close();
      // The tiny random model maps every image close together (distinct images at cosine ≈ 0.98), so the margins
      // are small; they are printed for the notes.
      console.log(`retrieval margins (original > next other image): ${margins.join(' ')}`);
    } finally {
      await model.dispose();
    }
  });
});

describe('beit-lens similar and duplicates (CLI)', () => {
  let model: string;
  let data: string;
  let cache: string;
  before(async () => {
    model = await convertedTinyModel();
    data = await tempDir('beit-sim-cli-');
    cache = path.join(await tempDir('beit-sim-cache-'), 'cache.log');
    await writeSyntheticDataset(path.join(data, 'train'), { classes: ['a', 'b'], perClass: 5, width: 64, height: 48, seed: 5 });
    await writeSyntheticDataset(path.join(data, 'val'), { classes: ['a', 'b'], perClass: 3, width: 64, height: 48, seed: 6 });
    // Leakage: one train image copied into val byte for byte, another re-encoded into val.
    await copyFile(path.join(data, 'train', 'a', 'a_00000.png'), path.join(data, 'val', 'a', 'copy_of_train_a0.png'));
    await sharp(path.join(data, 'train', 'b', 'b_00001.png')).jpeg({ quality: 90 }).toFile(path.join(data, 'val', 'b', 'reencoded_train_b1.jpg'));
    await writeFile(path.join(data, 'val', 'b', 'broken.png'), 'not an image');
  });

  it('similar --json: most similar first, exact cosines, the query left out when it is inside the folder', async () => {
    const query = path.join(data, 'train', 'a', 'a_00002.png');
    const r = await cli(['similar', query, '--in', path.join(data, 'train'), '--model', model, '--cache', cache, '--top-k', '4', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const lines = jsonLines(r.stdout);
    assert.equal(lines.length, 4);
    assert.ok(lines.every((l) => Object.keys(l).join() === 'image,similarity'));
    assert.ok(lines.every((l) => path.resolve(l.image) !== query), 'the query is left out');
    for (let i = 1; i < lines.length; i++) assert.ok(lines[i - 1].similarity >= lines[i].similarity);
    // The cosines are the embeddings' own: recompute them with the model.
    const m = await BeitModel.load(model);
    try {
      const [q, ...others] = await m.embedFiles([query, ...lines.map((l) => l.image)]);
      others.forEach((o, i) => assert.ok(Math.abs(cosine(q.embedding!, o.embedding!) - lines[i].similarity) < 2e-3, `${lines[i].image}: ${lines[i].similarity}`));
      // And they are the top 4 of the folder: no other train image is closer.
      const all = await m.embedFiles((await import('node:fs')).readdirSync(path.join(data, 'train'), { recursive: true, withFileTypes: true }).filter((e) => e.isFile()).map((e) => path.join(e.parentPath, e.name)));
      const sims = all.filter((e) => path.resolve(e.image) !== query).map((e) => cosine(q.embedding!, e.embedding!)).sort((a, b) => b - a);
      assert.ok(Math.abs(sims[3] - lines[3].similarity) < 2e-3, `4th best ${sims[3]} vs ${lines[3].similarity}`);
    } finally {
      await m.dispose();
    }
    assert.match(r.stderr, /4 most similar of 9 images/);
  });

  it('similar works for a query outside the folder (text output), answered from the cache', async () => {
    const outside = path.join(await tempDir('beit-sim-q-'), 'query.png');
    await sharp(path.join(data, 'train', 'b', 'b_00003.png')).blur(1).png().toFile(outside);
    const r = await cli(['similar', outside, '--in', path.join(data, 'train'), '--model', model, '--cache', cache, '--top-k', '3']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0], /^\d\.\d{4} {2}.*b_00003\.png$/, 'its blurred source first');
    assert.match(r.stderr, /10 images embedded \(10 from the cache\)/);
  });

  it('duplicates across train/ val/: the byte copy is an exact group, the re-encode a near one, both leakage; the summary says so', async () => {
    const r = await cli(['duplicates', path.join(data, 'train'), path.join(data, 'val'), '--model', model, '--cache', cache, '--threshold', '0.995', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const groups = jsonLines(r.stdout);
    const exact = groups.find((g) => g.kind === 'exact');
    assert.ok(exact, r.stdout);
    assert.deepEqual(exact.images.map((i: string) => path.basename(i)).sort(), ['a_00000.png', 'copy_of_train_a0.png']);
    assert.equal(exact.similarity, 1);
    assert.equal(exact.leakage, true);
    assert.deepEqual(exact.folders, [path.join(data, 'train'), path.join(data, 'val')]);
    const near = groups.find((g) => g.kind === 'near' && g.images.some((i: string) => i.endsWith('reencoded_train_b1.jpg')));
    assert.ok(near, `the re-encoded copy is in a near group: ${r.stdout}`);
    // With the tiny random model, distinct images of this set reach cosine 0.988 and the q90 re-encode 0.996.
    assert.deepEqual(near.images.map((i: string) => path.relative(data, i)).sort(), [path.join('train', 'b', 'b_00001.png'), path.join('val', 'b', 'reencoded_train_b1.jpg')]);
    assert.ok(near.similarity >= 0.995 && near.similarity < 1);
    assert.equal(groups.length, 2, 'no other group at 0.995');
    assert.equal(near.leakage, true);
    assert.match(r.stderr, /broken\.png: .*not a recognised image/);
    assert.match(r.stderr, /1 image could not be embedded/);
    assert.match(r.stderr, /duplicate groups? \(1 exact, \d+ near at cosine >= 0\.995\)/);
    assert.match(r.stderr, /\d+ groups? spans? two or more of the folders given: split leakage, the classic bug/);
  });

  it('duplicates text output marks leakage; bad arguments are one line', async () => {
    const r = await cli(['duplicates', path.join(data, 'train'), path.join(data, 'val'), '--model', model, '--cache', cache, '--threshold', '0.995']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^exact 1\.0000 {2}.*a_00000\.png {2}.*copy_of_train_a0\.png {2}LEAKAGE across .*train, .*val$/m);
    const bad = await cli(['duplicates', data, '--threshold', '2']);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /^beit-lens: option '--threshold <t>' argument '2' is invalid\. must be a cosine in \(0, 1\]; see `beit-lens duplicates --help`\n$/);
    const noIn = await cli(['similar', path.join(data, 'train', 'a', 'a_00000.png')]);
    assert.equal(noIn.code, 1);
    assert.match(noIn.stderr, /required option '--in <dir>' not specified/);
  });
});
