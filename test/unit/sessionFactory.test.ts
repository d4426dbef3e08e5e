import assert from 'node:assert/strict';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import type { ModelSessionOptions, OutputTensor } from '../../src/core/backend/onnxRuntime';
import { BeitModel } from '../../src/core/beitModel';
import { BeitLensError } from '../../src/core/errors';
import { InferenceSession, InputTensor, LocalSessionFactory, SessionFactory } from '../../src/core/sessionFactory';
import { convertedTinyModel, expected, FIXTURE_DIR, maxAbsDiff } from '../helpers/fixtures';

const first = expected.images[0];
const firstFile = path.join(FIXTURE_DIR, first.file);

/** Records what BeitModel asks of its sessions and serves them from real local ones, so results stay checkable. */
class RecordingFactory implements SessionFactory {
  readonly created: { model: string; options: ModelSessionOptions }[] = [];
  readonly runs: { model: string; inputs: string[]; dims: number[][]; outputs: string[] }[] = [];
  released = 0;
  constructor(private readonly inner: SessionFactory = new LocalSessionFactory()) {}

  async create(model: string, options: ModelSessionOptions): Promise<InferenceSession> {
    this.created.push({ model, options });
    const session = await this.inner.create(model, options);
    const factory = this;
    return {
      file: session.file,
      provider: session.provider,
      attempts: session.attempts,
      inputNames: session.inputNames,
      outputNames: session.outputNames,
      inputTensor: (name) => session.inputTensor(name),
      run(inputs: Readonly<Record<string, InputTensor>>, outputs: readonly string[]): Promise<Record<string, OutputTensor>> {
        factory.runs.push({ model, inputs: Object.keys(inputs), dims: Object.values(inputs).map((t) => t.dims), outputs: [...outputs] });
        return session.run(inputs, outputs);
      },
      async release() {
        factory.released++;
        await session.release();
      },
    };
  }
}

/** A session whose declared interface is given, for the interface checks BeitModel makes at load. */
function fixedInterface(input: { name: string; type: string; shape: (number | string)[] }, outputs: string[]): SessionFactory {
  return {
    async create(model) {
      return {
        file: model,
        provider: 'cpu',
        attempts: [],
        inputNames: [input.name],
        outputNames: outputs,
        inputTensor: (name) => (name === input.name ? { type: input.type, shape: input.shape } : undefined),
        run: () => Promise.reject(new Error('not run in this test')),
        release: async () => {},
      };
    },
  };
}

describe('SessionFactory seam', () => {
  it('the default and an explicit LocalSessionFactory give identical logits, equal to the PyTorch reference', async () => {
    const dir = await convertedTinyModel();
    const byDefault = await BeitModel.load(dir, { provider: 'cpu', verifier: false });
    const explicit = await BeitModel.load(dir, { provider: 'cpu', verifier: false, sessions: new LocalSessionFactory() });
    try {
      const a = await byDefault.classify(firstFile, 5);
      const b = await explicit.classify(firstFile, 5);
      assert.deepEqual(b, a);
      assert.deepEqual(a.map((p) => p.index), first.top5.map((p: any) => p.index));
      assert.ok(maxAbsDiff(a.map((p) => p.score), first.top5.map((p: any) => p.prob)) <= 1e-5);
    } finally {
      await byDefault.dispose();
      await explicit.dispose();
    }
  });

  it('BeitModel takes every session from the factory and feeds and fetches tensors by name', async () => {
    const dir = await convertedTinyModel();
    const factory = new RecordingFactory();
    const model = await BeitModel.load(dir, { provider: 'cpu', verifier: false, intraOpThreads: 1, sessions: factory });
    try {
      assert.equal(factory.created.length, 1, 'the explain session waits for the first explanation');
      assert.equal(factory.created[0].model, model.directory.classifyModel);
      assert.deepEqual(factory.created[0].options, { provider: 'cpu', intraOpThreads: 1 });

      const logits = await model.logits(await pixelsOf(model, firstFile), 1);
      assert.ok(maxAbsDiff(logits, first.logits) <= 1e-4, `logits differ by ${maxAbsDiff(logits, first.logits)}`);
      assert.deepEqual(factory.runs.at(-1), { model: model.directory.classifyModel, inputs: ['pixel_values'], dims: [[1, 3, 224, 224]], outputs: ['logits'] });

      const explanation = await model.explain(firstFile);
      assert.equal(factory.created.length, 2);
      assert.equal(factory.created[1].model, model.directory.fullModel);
      assert.equal(factory.created[1].options.provider, 'cpu');
      assert.deepEqual(factory.runs.at(-1)?.outputs, ['logits', 'attentions', 'patch_logits']);
      assert.ok(maxAbsDiff(explanation.top.map((p) => p.score), first.top5.map((p: any) => p.prob)) <= 1e-5);
    } finally {
      await model.dispose();
    }
    assert.equal(factory.released, 2, 'dispose releases both sessions the factory made');
  });

  it('a session whose interface is not a BEiT Lens model is refused at load, naming the tensor', async () => {
    const dir = await convertedTinyModel();
    await assert.rejects(
      BeitModel.load(dir, { verifier: false, sessions: fixedInterface({ name: 'pixel_values', type: 'float32', shape: ['batch', 3, 224, 224] }, ['pooled_output']) }),
      (err: unknown) => err instanceof BeitLensError && /missing output logits/.test(err.message),
    );
    await assert.rejects(
      BeitModel.load(dir, { verifier: false, sessions: fixedInterface({ name: 'pixel_values', type: 'float32', shape: ['batch', 3, 384, 384] }, ['logits']) }),
      (err: unknown) => err instanceof BeitLensError && /input pixel_values is float32 \[batch,3,384,384\], expected float32 \[batch,3,224,224\]/.test(err.message),
    );
    await assert.rejects(
      BeitModel.load(dir, { verifier: false, sessions: fixedInterface({ name: 'images', type: 'float32', shape: ['batch', 3, 224, 224] }, ['logits']) }),
      (err: unknown) => err instanceof BeitLensError && /expected input pixel_values, found images/.test(err.message),
    );
  });

  it('a local session refuses inputs other than pixel_values by name', async () => {
    const dir = await convertedTinyModel();
    const model = await BeitModel.load(dir, { provider: 'cpu', verifier: false });
    const real = await new LocalSessionFactory().create(model.directory.classifyModel, { provider: 'cpu' });
    try {
      await assert.rejects(real.run({ images: { data: new Float32Array(3 * 224 * 224), dims: [1, 3, 224, 224] } }, ['logits']), /takes the one input pixel_values, was given images/);
    } finally {
      await real.release();
      await model.dispose();
    }
  });
});

async function pixelsOf(model: BeitModel, file: string): Promise<Float32Array> {
  const { preprocessImage } = await import('../../src/core/preprocess');
  return (await preprocessImage(file, model.directory.preprocessor)).pixelValues;
}
