import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { cp, readFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { onnx } from 'onnx-proto';
import { BeitModel } from '../../src/core/beitModel';
import { convertModel } from '../../src/core/convert';
import { LOGITS_MODEL_FILE, MANIFEST_FILE } from '../../src/core/modelDirectory';
import { EMBEDDING_OUTPUT } from '../../src/core/onnx/beitGraph';
import { ModelVerifier } from '../../src/core/modelIntegrity';
import { convertedTinyModel, expected, FIXTURE_DIR, FIXTURE_IMAGES, hfFolderWith, maxAbsDiff, rawPixelValues, removedAfterTests } from '../helpers/fixtures';

const tempDir = removedAfterTests();
const verifier = async () => new ModelVerifier({ recordDir: await tempDir('beit-embed-records-') });

function cosine(a: ArrayLike<number>, b: ArrayLike<number>): number {
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

/** The reference entry an image gets with the default preprocessing (EXIF applied, 16-bit scaled), as model.test.ts picks it. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const defaultEntry = (i: any) => i.variants?.exif_transposed ?? i.variants?.scaled_16bit_to_8bit ?? i;

describe('the embedding output (pooled_output) of converted models', () => {
  for (const weights of ['model.safetensors', 'pytorch_model.bin'] as const) {
    it(`from ${weights}: matches the PyTorch pooled_output on pixel_values_0.bin and every fixture image within 1e-4`, async () => {
      const out = await tempDir('beit-embed-model-');
      await convertModel({ from: await hfFolderWith(weights), out });
      const model = await BeitModel.load(out, { verifier: await verifier() });
      try {
        assert.ok(model.canEmbed);
        assert.equal(model.embeddingSize, 32);
        const raw = await model.embeddings(rawPixelValues(), 1);
        const d = maxAbsDiff(raw, expected.raw_input_check.pooled_output);
        assert.ok(d <= 1e-4, `raw input pooled_output diff ${d}`);
        const files = expected.images.map((i: { file: string }) => path.join(FIXTURE_DIR, i.file));
        const results = await model.embedFiles(files, { batchSize: 4 });
        results.forEach((r, k) => {
          assert.equal(r.error, undefined, r.error);
          assert.equal(r.embedding!.length, 32);
          const ref = defaultEntry(expected.images[k]).pooled_output_first8;
          const di = maxAbsDiff(r.embedding!.subarray(0, 8), ref);
          assert.ok(di <= 1e-4, `${files[k]}: pooled_output_first8 diff ${di}`);
        });
      } finally {
        await model.dispose();
      }
    });
  }

  it('EXIF ignored gives the untransposed reference embedding', async () => {
    const model = await BeitModel.load(await convertedTinyModel(), { preprocess: { applyExifOrientation: false }, verifier: await verifier() });
    try {
      const entry = expected.images.find((i: { file: string }) => i.file === 'images/exif_orientation6_320x240.jpg');
      const [r] = await model.embedFiles([path.join(FIXTURE_DIR, entry.file)]);
      assert.ok(maxAbsDiff(r.embedding!.subarray(0, 8), entry.pooled_output_first8) <= 1e-4);
      assert.ok(maxAbsDiff(r.embedding!.subarray(0, 8), entry.variants.exif_transposed.pooled_output_first8) > 1e-2, 'the variants differ, so the check above means something');
    } finally {
      await model.dispose();
    }
  });

  it('a bad file becomes an error result naming it; the rest of its batch gets the embeddings it gets alone', async () => {
    const model = await BeitModel.load(await convertedTinyModel(), { verifier: await verifier() });
    try {
      const files = ['gradient_640x480.jpg', 'does-not-exist.png', 'alpha_300x200.png', 'gray_256x256.png'].map((f) => path.join(FIXTURE_IMAGES, f));
      const truncated = path.join(await tempDir('beit-embed-bad-'), 'truncated.png');
      await writeFile(truncated, (await readFile(files[2])).subarray(0, 100));
      files.splice(3, 0, truncated);
      const seen: string[] = [];
      const results = await model.embedFiles(files, { batchSize: 3, onResult: (r) => seen.push(r.image) });
      assert.deepEqual(seen, files);
      assert.match(results[1].error ?? '', /does-not-exist\.png: .*not found/);
      assert.equal(results[1].code, 'FILE_NOT_FOUND');
      assert.ok(results[3].error?.includes(truncated), results[3].error);
      for (const i of [0, 2, 4]) {
        const [alone] = await model.embedFiles([files[i]]);
        assert.ok(maxAbsDiff(results[i].embedding!, alone.embedding!) <= 1e-5, files[i]);
      }
    } finally {
      await model.dispose();
    }
  });

  it('classification is unchanged: reference logits, and results without an embedding', async () => {
    const model = await BeitModel.load(await convertedTinyModel(), { verifier: await verifier() });
    try {
      assert.ok(maxAbsDiff(await model.logits(rawPixelValues(), 1), expected.raw_input_check.logits) <= 1e-4);
      const [r] = await model.classifyFiles([path.join(FIXTURE_IMAGES, 'gradient_640x480.jpg')], { topK: 3 });
      assert.deepEqual(Object.keys(r), ['image', 'top']);
    } finally {
      await model.dispose();
    }
  });
});

describe('a folder converted before the embedding output existed', () => {
  it('still loads and classifies; embedding it is a clear error naming the graph and the fix', async () => {
    const dir = await tempDir('beit-embed-old-');
    await cp(await convertedTinyModel(), dir, { recursive: true });
    // What an older convert wrote: the same logits graph without the pooled_output output, and a manifest matching it.
    const file = path.join(dir, LOGITS_MODEL_FILE);
    const model = onnx.ModelProto.decode(await readFile(file));
    model.graph!.output = model.graph!.output!.filter((o) => o.name !== EMBEDDING_OUTPUT);
    const bytes = onnx.ModelProto.encode(model).finish();
    await writeFile(file, bytes);
    const manifest = JSON.parse(await readFile(path.join(dir, MANIFEST_FILE), 'utf8'));
    manifest.files[LOGITS_MODEL_FILE] = { ...manifest.files[LOGITS_MODEL_FILE], bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') };
    await writeFile(path.join(dir, MANIFEST_FILE), JSON.stringify(manifest));

    const old = await BeitModel.load(dir, { verifier: await verifier() });
    try {
      assert.equal(old.integrity.state, 'verified');
      assert.equal(old.canEmbed, false);
      assert.ok(maxAbsDiff(await old.logits(rawPixelValues(), 1), expected.raw_input_check.logits) <= 1e-4);
      await assert.rejects(old.embedFiles([path.join(FIXTURE_IMAGES, 'gradient_640x480.jpg')]), (err: Error) => {
        assert.ok(err.message.includes(file), err.message);
        assert.match(err.message, /no pooled_output output .*convert the model again/);
        return true;
      });
    } finally {
      await old.dispose();
    }
  });
});

describe('fp16 and int8 embeddings: drift from fp32', () => {
  const inputs: string[] = readdirSync(FIXTURE_IMAGES).sort().map((f) => path.join(FIXTURE_IMAGES, f));
  const fp32: Float32Array[] = [];

  before(async () => {
    const model = await BeitModel.load(await convertedTinyModel(), { verifier: await verifier() });
    try {
      fp32.push(await model.embeddings(rawPixelValues(), 1));
      for (const r of await model.embedFiles(inputs)) fp32.push(r.embedding!);
    } finally {
      await model.dispose();
    }
  });

  // Bounds: about twice the worst drift measured over these inputs (fp16: worst cosine 0.9999998, max abs 1.84e-3;
  // int8: worst cosine 0.99998, max abs 1.80e-2), the cosine's distance from 1 likewise; the figures are in the README.
  for (const [dtype, minCosine, maxAbs] of [['fp16', 0.999999, 4e-3], ['int8', 0.99995, 0.04]] as const) {
    it(`${dtype}: cosine and max abs difference to fp32 on every fixture input stay within the measured bounds`, async () => {
      const out = await tempDir(`beit-embed-${dtype}-`);
      await convertModel({ from: FIXTURE_DIR, out, dtype });
      const model = await BeitModel.load(out, { verifier: await verifier(), onNote: () => undefined });
      try {
        const got = [await model.embeddings(rawPixelValues(), 1), ...(await model.embedFiles(inputs)).map((r) => r.embedding!)];
        let worstCos = 1;
        let worstAbs = 0;
        got.forEach((e, i) => {
          worstCos = Math.min(worstCos, cosine(e, fp32[i]));
          worstAbs = Math.max(worstAbs, maxAbsDiff(e, fp32[i]));
        });
        process.stdout.write(`# ${dtype} embedding drift from fp32 over ${got.length} inputs: worst cosine ${worstCos.toFixed(7)}, worst max abs ${worstAbs.toExponential(2)}\n`);
        assert.ok(worstAbs > 0, `${dtype} is not fp32`);
        assert.ok(worstCos >= minCosine, `${dtype} worst cosine ${worstCos}`);
        assert.ok(worstAbs <= maxAbs, `${dtype} worst max abs ${worstAbs}`);
      } finally {
        await model.dispose();
      }
    });
  }
});
