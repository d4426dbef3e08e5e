import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { encodeNpyFloat32 } from '../../src/core/embeddingFile';
import { convertedTinyModel, expected, FIXTURE_DIR, FIXTURE_IMAGES, maxAbsDiff, removedAfterTests } from '../helpers/fixtures';

/** The built CLI (dist/cli.js), as cli.test.ts runs it: `npm run build` first. */
const CLI = path.resolve(__dirname, '..', '..', 'dist', 'cli.js');
const run = promisify(execFile);
const tempDir = removedAfterTests();

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { timeout: 120_000, maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** NPY 1.0 read by the format's definition (numpy.lib.format), independently of the writer. */
function parseNpy(bytes: Buffer): { descr: string; fortran: boolean; shape: number[]; data: Float32Array } {
  assert.deepEqual([...bytes.subarray(0, 8)], [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 'magic and version 1.0');
  const headerLength = bytes.readUInt16LE(8);
  assert.equal((10 + headerLength) % 64, 0, 'data aligned to 64 bytes');
  const header = bytes.subarray(10, 10 + headerLength).toString('latin1');
  assert.ok(header.endsWith('\n'));
  const m = /^\{'descr': '([^']+)', 'fortran_order': (True|False), 'shape': \(([\d, ]*)\), \} *\n$/.exec(header);
  assert.ok(m, `header ${JSON.stringify(header)}`);
  const shape = m[3].split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const body = bytes.subarray(10 + headerLength);
  assert.equal(body.length, 4 * shape.reduce((a, b) => a * b, 1));
  const data = new Float32Array(body.length / 4);
  for (let i = 0; i < data.length; i++) data[i] = body.readFloatLE(4 * i);
  return { descr: m[1], fortran: m[2] === 'True', shape, data };
}

const hasNumpy = (() => {
  try {
    execFileSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

describe('beit-lens embed (built bundle)', () => {
  let model: string;
  before(async () => {
    assert.ok(existsSync(CLI), 'dist/cli.js missing: run `npm run build` first');
    model = await convertedTinyModel();
  });

  it('--json: one line per input in order, reference embeddings, a bad file an error line; --out writes the same numbers as .npy', async () => {
    const good = ['gradient_640x480.jpg', 'alpha_300x200.png', 'gray_256x256.png'].map((f) => path.join(FIXTURE_IMAGES, f));
    const dir = await tempDir('beit-embed-cli-');
    const notImage = path.join(dir, 'not-an-image.jpg');
    await writeFile(notImage, 'this is text, not a JPEG');
    const missing = path.join(dir, 'missing.png');
    const inputs = [good[0], notImage, good[1], missing, good[2]];
    const npy = path.join(dir, 'emb.npy');
    const r = await cli(['embed', '--model', model, '--json', '--batch', '2', '--out', npy, ...inputs]);
    assert.equal(r.code, 1, 'a failed image makes the exit code 1');
    const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.image), inputs);
    assert.deepEqual(Object.keys(lines[0]), ['image', 'embedding']);
    assert.ok(lines[1].error.includes(notImage), lines[1].error);
    assert.equal(lines[1].errorCode, 'IMAGE_DECODE');
    assert.match(lines[3].error, /missing\.png: .*not found/);
    for (const i of [0, 2, 4]) {
      assert.equal(lines[i].embedding.length, 32);
      const ref = expected.images.find((e: { file: string }) => path.join(FIXTURE_DIR, e.file) === inputs[i]).pooled_output_first8;
      assert.ok(maxAbsDiff(lines[i].embedding.slice(0, 8), ref) <= 1e-4, inputs[i]);
    }
    assert.match(r.stderr, /wrote float32 \[3, 32\] to .*emb\.npy, image paths to .*emb\.paths\.json \(2 failed, left out\)/);

    const parsed = parseNpy(await readFile(npy));
    assert.equal(parsed.descr, '<f4');
    assert.equal(parsed.fortran, false);
    assert.deepEqual(parsed.shape, [3, 32]);
    const okLines = lines.filter((l) => l.embedding);
    // Exactly equal: the JSON prints each float32's exact value.
    assert.deepEqual(Array.from(parsed.data), okLines.flatMap((l) => l.embedding));
    assert.deepEqual(JSON.parse(await readFile(path.join(dir, 'emb.paths.json'), 'utf8')), good);

    if (hasNumpy) {
      // numpy itself reads it: shape, dtype and values; the paths file with the standard json module.
      const script = [
        'import json, sys, numpy as np',
        'a = np.load(sys.argv[1])',
        'p = json.load(open(sys.argv[2]))',
        'print(json.dumps({"shape": list(a.shape), "dtype": a.dtype.str, "c": bool(a.flags.c_contiguous), "values": [float(v) for v in a.ravel()], "paths": p}))',
      ].join('\n');
      const np = JSON.parse(execFileSync('python3', ['-c', script, npy, path.join(dir, 'emb.paths.json')], { encoding: 'utf8' }));
      assert.deepEqual(np.shape, [3, 32]);
      assert.equal(np.dtype, '<f4');
      assert.equal(np.c, true);
      assert.deepEqual(np.values, Array.from(parsed.data));
      assert.deepEqual(np.paths, good);
    } else {
      process.stdout.write('# python3 with numpy is not installed here: the .npy was checked by the format parser above only\n');
    }
  });

  it('without --json: a line per image and the summary on stdout, errors on stderr; exit 0 when all succeed', async () => {
    const images = ['gradient_640x480.jpg', 'tiny_17x9.png'].map((f) => path.join(FIXTURE_IMAGES, f));
    const npy = path.join(await tempDir('beit-embed-cli-'), 'all.NPY');
    const r = await cli(['embed', '--model', model, '--out', npy, ...images]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines.length, 3);
    lines.slice(0, 2).forEach((l, i) => assert.match(l, new RegExp(`^${images[i].replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}  32 floats  \\[-?\\d`)));
    assert.match(lines[2], /^wrote float32 \[2, 32\] to .*all\.NPY, image paths to .*all\.paths\.json$/);
    assert.deepEqual(parseNpy(await readFile(npy)).shape, [2, 32]);
  });

  it('--out that is not .npy is refused before any work, naming the file', async () => {
    const bad = path.join(await tempDir('beit-embed-cli-'), 'emb.csv');
    const r = await cli(['embed', '--model', model, '--out', bad, path.join(FIXTURE_IMAGES, 'gradient_640x480.jpg')]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr.trim(), new RegExp(`^beit-lens: ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: --out must name a \\.npy file`));
    assert.equal(existsSync(bad), false);
  });
});

describe('encodeNpyFloat32', () => {
  it('writes the NPY 1.0 layout for any row count, zero rows included', () => {
    for (const [rows, cols] of [[0, 768], [1, 3], [5, 768]]) {
      const data = Float32Array.from({ length: rows * cols }, (_, i) => (i % 7) - 3.25);
      const parsed = parseNpy(encodeNpyFloat32(data, rows, cols));
      assert.deepEqual(parsed.shape, [rows, cols]);
      assert.deepEqual(parsed.data, data);
    }
    assert.throws(() => encodeNpyFloat32(new Float32Array(5), 2, 3), /do not fill \[2, 3\]/);
  });
});
