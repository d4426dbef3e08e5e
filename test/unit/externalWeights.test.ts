import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { onnx } from 'onnx-proto';
import { convertModel } from '../../src/core/convert';
import { loadBeitConfig } from '../../src/core/modelConfig';
import { buildBeitGraph } from '../../src/core/onnx/beitGraph';
import { EXTERNAL_ALIGNMENT, MIN_EXTERNAL_BYTES } from '../../src/core/onnx/externalWeights';
import { getFloat, loadStateDict } from '../../src/core/weights/stateDict';
import { FIXTURE_DIR, tempDir } from '../helpers/fixtures';

const EXTERNAL = onnx.TensorProto.DataLocation.EXTERNAL;

function externalRef(t: onnx.ITensorProto): { location: string; offset: number; length: number } {
  const get = (key: string) => t.externalData?.find((e) => e.key === key)?.value ?? '';
  return { location: get('location'), offset: Number(get('offset')), length: Number(get('length')) };
}

describe('converted weights in one external file', () => {
  let dir: string;
  const logs: string[] = [];

  before(async () => {
    dir = await tempDir('beit-external-');
    await convertModel({ from: FIXTURE_DIR, out: dir, onLog: (m) => logs.push(m) });
  });

  it('every tensor of 64 KiB or more is in model.weights, aligned, byte for byte the in-line graph, each stored once', async () => {
    const weights = await readFile(path.join(dir, 'model.weights'));
    const manifest = JSON.parse(await readFile(path.join(dir, 'beit-lens.json'), 'utf8'));
    assert.equal(manifest.weights.file, 'model.weights');
    assert.equal(manifest.weights.bytes, weights.byteLength);
    const config = await loadBeitConfig(path.join(FIXTURE_DIR, 'config.json'));
    const { stateDict, source } = await loadStateDict(FIXTURE_DIR);
    let end = 0;
    for (const [file, outputs] of [['model.onnx', 'full'], ['model.logits.onnx', 'logits']] as const) {
      const stored = onnx.ModelProto.decode(await readFile(path.join(dir, file)));
      const inline = onnx.ModelProto.decode(buildBeitGraph(config, (n, s) => getFloat(stateDict, n, s, source), { outputs, style: 'optimized', weightType: 'fp32' }));
      const reference = new Map(inline.graph!.initializer!.map((t) => [t.name!, t]));
      assert.equal(stored.graph!.initializer!.length, reference.size);
      let external = 0;
      for (const t of stored.graph!.initializer!) {
        const want = reference.get(t.name!)!;
        assert.deepEqual(t.dims!.map(Number), want.dims!.map(Number), t.name!);
        assert.equal(t.dataType, want.dataType, t.name!);
        if (want.rawData!.byteLength < MIN_EXTERNAL_BYTES) {
          assert.notEqual(t.dataLocation, EXTERNAL, `${t.name} is small and stays in-line`);
          continue;
        }
        external++;
        assert.equal(t.dataLocation, EXTERNAL, t.name!);
        assert.equal(t.rawData?.byteLength ?? 0, 0);
        const ref = externalRef(t);
        assert.equal(ref.location, 'model.weights');
        assert.equal(ref.offset % EXTERNAL_ALIGNMENT, 0, `${t.name} offset ${ref.offset}`);
        assert.ok(Buffer.from(want.rawData!).equals(weights.subarray(ref.offset, ref.offset + ref.length)), `${file}: ${t.name} bytes`);
        end = Math.max(end, ref.offset + ref.length);
      }
      assert.ok(external >= 3, `${file}: ${external} external tensors`);
    }
    // The logits graph added nothing: every large tensor it has, the explanation graph had already stored.
    assert.ok(logs.some((l) => /^model\.logits\.onnx: 0 tensors moved to model\.weights, \d+ shared/.test(l)), logs.join('\n'));
    assert.equal(weights.byteLength, end, 'the file ends with the last tensor');
  });

  it('the model id covers the weights: same graphs with other weights get another id', async () => {
    const first = JSON.parse(await readFile(path.join(dir, 'beit-lens.json'), 'utf8'));
    const again = await tempDir('beit-external-again-');
    const second = (await convertModel({ from: FIXTURE_DIR, out: again })).manifest;
    assert.equal(second.modelId, first.modelId, 'conversion is deterministic');
    assert.equal(second.weights?.sha256, first.weights.sha256);
    // A model id must change when only model.weights differs: it is derived from the graph and weights hashes together.
    assert.notEqual(first.modelId.split('@')[1], first.files['model.logits.onnx'].sha256.slice(0, 16));
  });
});
