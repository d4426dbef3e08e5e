import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { BeitModel } from '../../src/core/beitModel';
import { describeModel } from '../../src/core/modelInfo';
import { readSafetensors } from '../../src/core/weights/safetensors';
import { convertedTinyModel, FIXTURE_DIR } from '../helpers/fixtures';
import { gappedTinyModel } from '../helpers/gappedModel';

describe('describeModel (the Model view data)', () => {
  it('says what the folder holds: configuration, both graphs, parameters, precision, provider, files, labels', async () => {
    const dir = await convertedTinyModel();
    const model = await BeitModel.load(dir, { provider: 'cpu' });
    try {
      const info = await describeModel(model);
      const config = JSON.parse(await readFile(path.join(FIXTURE_DIR, 'config.json'), 'utf8'));
      assert.equal(info.family, 'BEiT');
      assert.deepEqual(
        { hiddenSize: info.config.hiddenSize, numLayers: info.config.numLayers, numHeads: info.config.numHeads, intermediateSize: info.config.intermediateSize, patchSize: info.config.patchSize, imageSize: info.config.imageSize },
        { hiddenSize: config.hidden_size, numLayers: config.num_hidden_layers, numHeads: config.num_attention_heads, intermediateSize: config.intermediate_size, patchSize: config.patch_size, imageSize: config.image_size },
      );
      assert.equal(info.config.gridSize, 14);
      assert.equal(info.config.numTokens, 197);
      assert.deepEqual(info.graphs.map((g) => [g.file, g.role]), [['model.logits.onnx', 'classify'], ['model.onnx', 'explain']]);
      for (const g of info.graphs) assert.deepEqual(g.inputs.map((t) => [t.name, t.type, t.shape.slice(1)]), [['pixel_values', 'float32', [3, 224, 224]]]);
      assert.deepEqual(info.graphs[0].outputs.map((t) => [t.name, t.shape.slice(1)]), [['logits', [10]], ['pooled_output', [config.hidden_size]]]);
      assert.ok(info.graphs[1].outputs.length > 1, 'the explain graph has attentions and patch logits too');
      assert.equal(typeof info.graphs[0].inputs[0].shape[0], 'string', 'the batch dimension is symbolic');

      // PyTorch's sum(p.numel()) over the checkpoint's parameters: its float tensors, less the index buffers.
      const sd = await readSafetensors(path.join(FIXTURE_DIR, 'model.safetensors'));
      let expected = 0;
      for (const [name, t] of sd) if (!name.endsWith('relative_position_index') && t.dtype.startsWith('float')) expected += t.shape.reduce((a, b) => a * b, 1);
      assert.equal(info.parameters, expected);

      assert.equal(info.dtype, 'fp32');
      assert.equal(info.compute, 'fp32');
      assert.equal(info.provider, 'cpu');
      const names = info.files.map((f) => f.name);
      for (const f of ['config.json', 'preprocessor_config.json', 'beit-lens.json', 'model.onnx', 'model.logits.onnx', 'model.weights']) assert.ok(names.includes(f), f);
      for (const f of info.files) assert.ok(f.bytes > 0, f.name);
      assert.equal(info.labels.length, 10);
      assert.deepEqual(info.missingLabelKeys, []);
    } finally {
      await model.dispose();
    }
  });

  it('lists the id2label keys a gapped config skips', async () => {
    const model = await BeitModel.load(await gappedTinyModel(), { provider: 'cpu' });
    try {
      const info = await describeModel(model);
      assert.deepEqual(info.missingLabelKeys, [3]);
      assert.equal(info.labels.length, 10);
    } finally {
      await model.dispose();
    }
  });
});
