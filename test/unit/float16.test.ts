import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { onnx } from 'onnx-proto';
import { ModelSession } from '../../src/core/backend/onnxRuntime';
import { BeitModel } from '../../src/core/beitModel';
import { convertModel } from '../../src/core/convert';
import { runDoctor } from '../../src/core/doctor';
import { computePrecision, loadModelDirectory } from '../../src/core/modelDirectory';
import { fromFloat16, toFloat16 } from '../../src/core/halfFloat';
import { convertModelToFloat16, convertToFloat16Compute, FLOAT16_COMPUTE_METADATA } from '../../src/core/onnx/float16';
import { CLASSIFIER_WEIGHT } from '../../src/core/onnx/beitGraph';
import { GraphBuilder } from '../../src/core/onnx/graphBuilder';
import { attentionRollout } from '../../src/core/rollout';
import { expected, FIXTURE_DIR, FIXTURE_IMAGES, FP16_U, fp16LogitTolerance, maxAbsDiff, rawPixelValues, tempDir } from '../helpers/fixtures';

const D = onnx.TensorProto.DataType;
const T = 197;

/**
 * Tolerances. fp16 has an 11-bit significand: unit roundoff u = 2^-11 ~ 4.9e-4, so every weight and every
 * intermediate tensor carries a relative error up to u. Through this 2-layer model (a few dozen roundings in
 * sequence, errors partly cancelling) logits move by about u * (logit range); we allow 10 u * range, which is
 * 0.018 for pixel_values_0.bin (range 3.7; measured 1.9e-3, ~1 u * range). Attention probabilities lie in [0, 1]:
 * their own fp16 rounding is up to u/2 and the scores' errors add a few u, so 4 u ~ 2e-3 absolute (measured
 * 2.7e-4-6.1e-4). Patch logits: like logits, 10 u * range of the reference logits (measured 5e-3-6.5e-3).
 */
const U = FP16_U;
const logitTolerance = fp16LogitTolerance;
const ATTENTION_TOLERANCE = 4 * U;

function decode(bytes: Uint8Array): onnx.ModelProto {
  return onnx.ModelProto.decode(bytes);
}

function metadata(model: onnx.IModelProto): Record<string, string> {
  return Object.fromEntries((model.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? '']));
}

function elemTypes(values: onnx.IValueInfoProto[] | null | undefined): Record<string, number> {
  return Object.fromEntries((values ?? []).map((v) => [v.name ?? '', v.type?.tensorType?.elemType ?? -1]));
}

function castTo(node: onnx.INodeProto): number {
  return Number(node.attribute?.find((a) => a.name === 'to')?.i);
}

function sameSet(a: number[], b: number[]): boolean {
  return [...a].sort((x, y) => x - y).join() === [...b].sort((x, y) => x - y).join();
}

describe('fp16 pass on a hand-built graph', () => {
  const w = Float32Array.from({ length: 64 }, (_, i) => Math.sin(i * 0.7) * 0.5);
  const b = Float32Array.from({ length: 8 }, (_, i) => i * 0.1 - 0.3);
  const stored = Float32Array.from({ length: 8 }, (_, i) => Math.cos(i) * 0.25);

  /** pixel_values [n,4,8] -> MatMul, Add, (+ an fp16-stored weight Cast to float), LayerNorm, Softmax, ReduceMean, Div, Mul by a Constant; plus an int64 Shape output. */
  function miniGraph(options: { extraOp?: string; usedMean?: boolean; bigWeight?: boolean } = {}): Uint8Array {
    const g = new GraphBuilder('mini');
    // ModelSession feeds `pixel_values`.
    const x = g.input('pixel_values', { elemType: 'float32', dims: ['n', 4, 8] });
    let h = g.node('Add', [g.node('MatMul', [x, g.initializer('w', options.bigWeight ? w.map((v) => v * 1e6) : w, [8, 8])]), g.initializer('b', b, [8])]);
    const half = g.initializer('stored_fp16', toFloat16(stored), [8], { float16: true });
    h = g.node('Add', [h, g.node('Cast', [half], { attributes: { to: D.FLOAT } })]);
    const [normed, mean] = g.nodeMulti('LayerNormalization', [h, g.initializer('ln_w', Float32Array.of(1, 1.1, 0.9, 1, 1.2, 0.8, 1, 1), [8]), g.initializer('ln_b', new Float32Array(8).fill(0.05), [8])], {
      attributes: { axis: -1, epsilon: { float: 1e-12 } },
      outputs: 3,
    });
    h = g.node('Softmax', [options.usedMean ? g.node('Add', [normed, mean]) : normed], { attributes: { axis: -1 } });
    if (options.extraOp) h = g.node(options.extraOp, [h]);
    h = g.node('ReduceMean', [h], { attributes: { axes: [1], keepdims: 0 } });
    h = g.node('Div', [h, g.constFloat(3)]);
    h = g.node('Mul', [h, g.node('Constant', [], { attributes: { value_float: { float: 2.5 } } })]);
    g.output('y', h, { elemType: 'float32', dims: ['n', 8] });
    g.output('x_shape', g.node('Shape', [x]), { elemType: 'float32', dims: [3] });
    return g.encode({ opset: 17, metadata: { 'beit_lens.weight_type': 'fp32' } });
  }

  function fixShapeOutput(bytes: Uint8Array): Uint8Array {
    // GraphBuilder's ValueShape only knows float types: declare the Shape output as int64.
    const model = decode(bytes);
    model.graph!.output!.find((o) => o.name === 'x_shape')!.type!.tensorType!.elemType = D.INT64;
    return onnx.ModelProto.encode(model).finish();
  }

  it('makes every float tensor fp16 inside and keeps the float32 interface', async () => {
    const fp32 = fixShapeOutput(miniGraph());
    const { bytes, report } = convertToFloat16Compute(fp32);
    const model = decode(bytes);
    const graph = model.graph!;
    assert.deepEqual(
      graph.initializer!.filter((t) => t.dataType === D.FLOAT).map((t) => t.name),
      [],
      'no FLOAT initializer left',
    );
    for (const name of ['w', 'b', 'ln_w', 'ln_b', 'stored_fp16']) assert.equal(graph.initializer!.find((t) => t.name === name)?.dataType, D.FLOAT16, name);
    const wHalf = graph.initializer!.find((t) => t.name === 'w')!;
    const raw = new Uint8Array(wHalf.rawData!);
    assert.deepEqual(Array.from(new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2)), Array.from(toFloat16(w)));
    assert.deepEqual(elemTypes(graph.input), { pixel_values: D.FLOAT });
    assert.deepEqual(elemTypes(graph.output), { y: D.FLOAT, x_shape: D.INT64 });

    const nodes = graph.node!;
    const producer = (name: string) => nodes.find((n) => n.output?.includes(name));
    // Input: one Cast to fp16, and nothing else reads pixel_values.
    assert.equal(nodes[0].opType, 'Cast');
    assert.deepEqual([nodes[0].input, castTo(nodes[0])], [['pixel_values'], D.FLOAT16]);
    assert.deepEqual(nodes.filter((n) => n.input?.includes('pixel_values')), [nodes[0]]);
    // Output: y comes from a Cast to float; the int64 output is untouched.
    assert.deepEqual([producer('y')?.opType, castTo(producer('y')!)], ['Cast', D.FLOAT]);
    assert.equal(producer('x_shape')?.opType, 'Identity');
    // The weight-only fp16 Cast is gone: the Add reads the fp16 initializer directly.
    assert.equal(report.castsRemoved, 1);
    assert.ok(nodes.some((n) => n.opType === 'Add' && n.input?.includes('stored_fp16')));
    assert.ok(!nodes.some((n) => n.opType === 'Cast' && n.input?.includes('stored_fp16')));
    // No Cast to FLOAT is left except around the fp32 island and at the output.
    const reduce = nodes.find((n) => n.opType === 'ReduceMean')!;
    const before = producer(reduce.input![0])!;
    const after = nodes.find((n) => n.input?.includes(reduce.output![0]))!;
    assert.deepEqual([before.opType, castTo(before), after.opType, castTo(after)], ['Cast', D.FLOAT, 'Cast', D.FLOAT16]);
    assert.deepEqual(
      nodes.filter((n) => n.opType === 'Cast' && castTo(n) === D.FLOAT).map((n) => n.output![0]),
      [before.output![0], 'y'],
    );
    // The Constant's float scalar became an fp16 tensor.
    const constant = nodes.find((n) => n.opType === 'Constant')!;
    assert.deepEqual(constant.attribute!.map((a) => [a.name, a.t?.dataType]), [['value', D.FLOAT16]]);
    assert.deepEqual(metadata(model), { 'beit_lens.weight_type': 'fp16', [FLOAT16_COMPUTE_METADATA]: 'fp16' });
    assert.deepEqual({ tensors: report.tensors, float32Ops: report.float32Ops }, { tensors: 6, float32Ops: 1 });

    // Same results within fp16 precision.
    const xs = Float32Array.from({ length: 2 * 4 * 8 }, (_, i) => Math.sin(i * 1.3) * 2);
    const run = async (m: Uint8Array) => {
      const s = await ModelSession.create(m, { provider: 'cpu' });
      try {
        return await s.run(xs, [2, 4, 8], ['y', 'x_shape']);
      } finally {
        await s.release();
      }
    };
    const [r32, r16] = [await run(fp32), await run(bytes)];
    assert.ok(r16.y.data instanceof Float32Array);
    assert.deepEqual(r16.y.dims, [2, 8]);
    const diff = maxAbsDiff(r16.y.data, r32.y.data);
    assert.ok(diff > 0 && diff <= 8 * U * Math.max(...r32.y.data.map(Math.abs)), `mini graph diff ${diff}`);
    assert.deepEqual(Array.from(r16.x_shape.data as unknown as BigInt64Array), [2n, 4n, 8n]);
  });

  it('refuses ops it does not know, values outside the fp16 range, and used fp32-only outputs', () => {
    assert.throws(() => convertToFloat16Compute(miniGraph({ extraOp: 'Exp' })), /op Exp .* not known to be valid in float16/);
    assert.throws(() => convertToFloat16Compute(miniGraph({ bigWeight: true })), /initializer w holds .* outside the float16 range/);
    assert.throws(() => convertToFloat16Compute(miniGraph({ usedMean: true })), /output 1 of LayerNormalization .* is float32 whatever the input type, but it is used/);
  });

  it('can keep other ops in fp32, and converts a decoded ModelProto in place', () => {
    const model = decode(miniGraph());
    const report = convertModelToFloat16(model, { keepFloat32Ops: ['ReduceMean', 'Softmax'] });
    assert.equal(report.float32Ops, 2);
    const softmax = model.graph!.node!.find((n) => n.opType === 'Softmax')!;
    assert.ok(softmax.input![0].endsWith('_fp32'));
    assert.throws(() => convertModelToFloat16(decode(miniGraph()), { keepFloat32Ops: ['Shape'] }), /cannot keep Shape in fp32/);
  });

  it('fromFloat16 inverts toFloat16 on representable values', () => {
    const values = Float32Array.of(0, -0, 1, -2.5, 65504, 2 ** -24, 2 ** -14, 0.333251953125, Infinity, -Infinity);
    assert.deepEqual(Array.from(fromFloat16(toFloat16(values))), Array.from(values));
    assert.ok(Number.isNaN(fromFloat16(toFloat16(Float32Array.of(NaN)))[0]));
  });
});

describe('convert --dtype fp16 on the tiny fixture', () => {
  let dir16: string;
  let dir32: string;
  const logs: string[] = [];

  before(async () => {
    dir16 = await tempDir('beit-fp16-');
    dir32 = await tempDir('beit-fp32-');
    await convertModel({ from: FIXTURE_DIR, out: dir16, dtype: 'fp16', onLog: (m) => logs.push(m) });
    await convertModel({ from: FIXTURE_DIR, out: dir32 });
  });

  async function runFile(file: string, outputs?: string[]) {
    const s = await ModelSession.create(file, { provider: 'cpu' });
    try {
      return await s.run(rawPixelValues(), [1, 3, 224, 224], outputs ?? s.outputNames);
    } finally {
      await s.release();
    }
  }

  it('writes fp16-compute graphs with a float32 interface, and says so in the manifest and metadata', async () => {
    for (const [file, outputs] of [['model.onnx', ['logits', 'attentions', 'patch_logits', 'pooled_output']], ['model.logits.onnx', ['logits', 'pooled_output']]] as const) {
      const model = decode(await readFile(path.join(dir16, file)));
      const graph = model.graph!;
      const types = new Set(graph.initializer!.map((t) => t.dataType));
      assert.deepEqual([...types].sort(), [D.INT64, D.FLOAT16].sort(), `${file}: initializer types`);
      assert.deepEqual(elemTypes(graph.input), { pixel_values: D.FLOAT });
      assert.deepEqual(
        graph.input![0].type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue)),
        ['batch', 3, 224, 224],
      );
      assert.deepEqual(elemTypes(graph.output), Object.fromEntries(outputs.map((o) => [o, D.FLOAT])));
      // Every float Cast inside casts to fp16, except into the two fp32 islands (mean pooling; the logits
      // classifier's product, both its operands: the fp16-stored weight is cast once, folded at load) and
      // before the outputs.
      const toFloat = graph.node!.filter((n) => n.opType === 'Cast' && castTo(n) === D.FLOAT);
      assert.equal(toFloat.length, outputs.length + 3, `${file}: Casts to float`);
      const weightCast = toFloat.find((c) => c.input![0] === CLASSIFIER_WEIGHT)!;
      const classifier = graph.node!.find((n) => n.opType === 'MatMul' && n.input!.includes(weightCast.output![0]))!;
      assert.ok(classifier.input!.every((i) => toFloat.some((c) => c.output![0] === i)), `${file}: the classifier product takes float32 operands`);
      assert.deepEqual(metadata(model)['beit_lens.weight_type'], 'fp16');
      assert.deepEqual(metadata(model)[FLOAT16_COMPUTE_METADATA], 'fp16');
    }
    const manifest = JSON.parse(await readFile(path.join(dir16, 'beit-lens.json'), 'utf8'));
    assert.deepEqual([manifest.dtype, manifest.compute], ['fp16', 'fp16']);
    assert.equal(computePrecision(await loadModelDirectory(dir16)), 'fp16');
    assert.equal(computePrecision(await loadModelDirectory(dir32)), 'fp32');
    assert.ok(logs.some((l) => /model\.logits\.onnx: fp16 compute: \d+ weights/.test(l)), logs.join('\n'));
  });

  it('logits agree with PyTorch within 10 u * logit range, same top-1 and top-5 set (both graphs)', async () => {
    const ref: number[] = expected.raw_input_check.logits;
    const tol = logitTolerance(ref);
    const fp32 = (await runFile(path.join(dir32, 'model.logits.onnx'))).logits.data;
    for (const file of ['model.onnx', 'model.logits.onnx']) {
      const logits = (await runFile(path.join(dir16, file), ['logits'])).logits.data;
      const diff = maxAbsDiff(logits, ref);
      const vsFp32 = maxAbsDiff(logits, fp32);
      assert.ok(diff <= tol, `${file}: max |fp16 - torch| ${diff} > ${tol}`);
      // The fp16 rounding is there (fp32 agrees with torch to ~1e-6): the graph really computes in fp16.
      assert.ok(vsFp32 >= 1e-4, `${file}: fp16 vs fp32 only ${vsFp32}`);
      const top = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]).slice(0, 5);
      assert.equal(top[0], expected.raw_input_check.argmax);
      assert.ok(sameSet(top, expected.raw_input_check.top5.map((p: { index: number }) => p.index)), `${file}: top-5 ${top}`);
      // eslint-disable-next-line no-console
      console.log(`# fp16 ${file}: max |logit - torch| ${diff.toExponential(2)} (tolerance ${tol.toExponential(2)}), vs our fp32 ${vsFp32.toExponential(2)}`);
    }
  });

  it('attentions match the reference within 4 u; patch logits within 10 u * range; the patch grid agrees except near ties', async () => {
    const out = await runFile(path.join(dir16, 'model.onnx'));
    const ref32 = await runFile(path.join(dir32, 'model.onnx'));
    const att = out.attentions.data;
    assert.deepEqual(out.attentions.dims, [1, 2, 4, T, T]);
    const image0 = expected.images[0];
    assert.ok(maxAbsDiff(att.subarray(0, T), image0.attention_layer0_head0_cls_row) <= ATTENTION_TOLERANCE);
    image0.attentions.forEach((layer: { heads: Record<string, number | number[]>[] }, l: number) => {
      layer.heads.forEach((ref, h) => {
        const plane = (l * 4 + h) * T * T;
        assert.ok(maxAbsDiff(att.subarray(plane, plane + 8), ref.cls_row_first8 as number[]) <= ATTENTION_TOLERANCE, `layer ${l} head ${h} cls row`);
        assert.ok(maxAbsDiff(att.subarray(plane + T, plane + T + 8), ref.patch0_row_first8 as number[]) <= ATTENTION_TOLERANCE, `layer ${l} head ${h} patch0 row`);
        let max = 0;
        let rowSumDev = 0;
        for (let i = 0; i < T * T; i++) max = Math.max(max, att[plane + i]);
        for (let q = 0; q < T; q++) rowSumDev = Math.max(rowSumDev, Math.abs(att.subarray(plane + q * T, plane + (q + 1) * T).reduce((a, b) => a + b, 0) - 1));
        assert.ok(Math.abs(max - (ref.max as number)) <= ATTENTION_TOLERANCE, `layer ${l} head ${h} max`);
        // Each probability is rounded to fp16 (<= u/2 relative), so a row of 197 sums to 1 within u/2.
        assert.ok(rowSumDev <= U, `layer ${l} head ${h} row sums off by ${rowSumDev}`);
      });
    });
    assert.ok(maxAbsDiff(att, ref32.attentions.data) <= ATTENTION_TOLERANCE);

    const L = 10;
    const patchTol = logitTolerance(expected.raw_input_check.logits);
    const patches16 = out.patch_logits.data;
    const patches32 = ref32.patch_logits.data;
    assert.ok(maxAbsDiff(patches16.subarray(0, L), image0.per_patch.patch0_logits) <= patchTol);
    assert.ok(maxAbsDiff(patches16, patches32) <= patchTol);
    const grid: number[] = image0.per_patch.argmax_grid_14x14.flat();
    let agree = 0;
    for (let p = 0; p < 196; p++) {
      const row16 = patches16.subarray(p * L, (p + 1) * L);
      const row32 = patches32.subarray(p * L, (p + 1) * L);
      const pick = row16.indexOf(Math.max(...row16));
      if (pick === grid[p]) agree++;
      // A different pick is only allowed where the reference's top two are within the patch-logit tolerance.
      else assert.ok(row32[grid[p]] - row32[pick] <= 2 * patchTol, `patch ${p}: fp16 picks ${pick}, reference ${grid[p]}`);
    }
    assert.ok(agree >= 190, `patch grid agreement ${agree}/196`);
  });

  it('explain (rollout, patch grid) works on the fp16 full model through BeitModel, with a CPU note', async () => {
    const notes: string[] = [];
    const m16 = await BeitModel.load(dir16, { provider: 'cpu', onNote: (n) => notes.push(n) });
    const m32 = await BeitModel.load(dir32, { provider: 'cpu', onNote: (n) => notes.push(`fp32: ${n}`) });
    try {
      assert.equal(notes.length, 1);
      assert.match(notes[0], /^note: this model computes in fp16, .*on the CPU it is no faster than fp32.*--dtype fp32\|int8/);
      assert.ok(m16.canExplain);
      for (const file of ['gradient_640x480.jpg', 'exif_orientation6_320x240.jpg', 'tiny_17x9.png']) {
        const image = path.join(FIXTURE_IMAGES, file);
        const [e16, e32] = [await m16.explain(image), await m32.explain(image)];
        assert.deepEqual(e16.top.map((p) => p.index), e32.top.map((p) => p.index), file);
        assert.ok(maxAbsDiff(e16.top.map((p) => p.score), e32.top.map((p) => p.score)) <= 1e-3, file);
        assert.equal(e16.rollout.length, 196);
        assert.ok(e16.rollout.every(Number.isFinite));
        assert.equal(Math.max(...e16.rollout), 1);
        // The rollout's discard threshold separates values ~1e-6 apart (fixture README), so fp16 attention
        // can drop a different entry: the normalised maps agree to 0.02 (measured <= 4.5e-3).
        assert.ok(maxAbsDiff(e16.rollout, e32.rollout) <= 0.02, `${file} rollout ${maxAbsDiff(e16.rollout, e32.rollout)}`);
        const agree = e16.patchArgmax.filter((v, i) => v === e32.patchArgmax[i]).length;
        assert.ok(agree >= 190, `${file} patch grid ${agree}/196`);
        const heat = m16.classHeatmap(e16, e16.top[0].index);
        assert.ok(maxAbsDiff(heat, m32.classHeatmap(e32, e16.top[0].index)) <= logitTolerance(Array.from(e32.patchLogits)));
      }
      // And on the raw tensor, against the reference's rollout variant that model.test.ts checks for fp32.
      const out = await runFile(path.join(dir16, 'model.onnx'), ['attentions']);
      const rollout = attentionRollout(out.attentions.data, { layers: 2, heads: 4, tokens: T, leadingTokens: 1 }, { headFusion: 'mean', discardRatio: 0.9 });
      assert.ok(maxAbsDiff(rollout, expected.images[0].attention_rollout.diagnostic_only_row_normalised_variant_14x14.flat()) <= 0.02);
    } finally {
      await m16.dispose();
      await m32.dispose();
    }
  });

  it('doctor says the model computes in fp16 and notes the CPU', async () => {
    const cacheDir = await tempDir('beit-doctor-');
    const r16 = await runDoctor({ modelDir: dir16, cacheDir, provider: 'cpu' });
    assert.equal(r16.model?.compute, 'fp16');
    assert.match(r16.text, /running on: cpu \(computes in fp16\)\n {2}note: this model computes in fp16/);
    const r32 = await runDoctor({ modelDir: dir32, cacheDir, provider: 'cpu' });
    assert.equal(r32.model?.compute, 'fp32');
    assert.equal(r32.model?.note, undefined);
    assert.doesNotMatch(r32.text, /note:/);
  });

  it('--plain --dtype fp16 works too (the plain logits-only graph, fp16 compute)', async () => {
    const dir = await tempDir('beit-fp16-plain-');
    const result = await convertModel({ from: FIXTURE_DIR, out: dir, dtype: 'fp16', plain: true });
    assert.deepEqual([result.manifest.dtype, result.manifest.compute, result.manifest.style], ['fp16', 'fp16', 'plain']);
    const model = decode(await readFile(path.join(dir, 'model.onnx')));
    assert.ok(!model.graph!.initializer!.some((t) => t.dataType === D.FLOAT));
    const logits = (await runFile(path.join(dir, 'model.onnx'))).logits.data;
    const ref: number[] = expected.raw_input_check.logits;
    assert.ok(maxAbsDiff(logits, ref) <= logitTolerance(ref), `plain fp16 diff ${maxAbsDiff(logits, ref)}`);
    assert.equal(logits.indexOf(Math.max(...logits)), expected.raw_input_check.argmax);
  });
});
