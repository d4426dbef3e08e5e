import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { decodeImage } from '../../src/core/image';
import { classIndexFromArgument } from '../../src/core/scan/labelCheck';
import { convertedTinyModel, expected, FIXTURE_DIR, maxAbsDiff, tempDir } from '../helpers/fixtures';

/**
 * `beit-lens explain`'s occlusion, rollout-from and faithfulness forms, run from the built bundle (dist/cli.js) on the
 * tiny fixture; the numbers come from the independent PyTorch references in test/fixtures/occlusion/generate.py.
 */
const CLI = path.resolve(__dirname, '..', '..', 'dist', 'cli.js');
const run = promisify(execFile);

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { timeout: 120_000, maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const reference = JSON.parse(readFileSync(path.join(__dirname, '../fixtures/occlusion/occlusion.json'), 'utf8')) as {
  ranked: number[];
  occlusion: { classIndex: number; window: number; baseProbability: number; map: number[] }[];
  rolloutFromPatches: { discardRatio: number; map: number[] }[];
  faithfulness: { classIndex: number; deletionAuc: number; insertionAuc: number; randomDeletionAuc: number };
};

describe('beit-lens explain: occlusion, rollout rows and faithfulness (built bundle, PyTorch references)', () => {
  let model: string;
  // images[0] is the image the references were made from (its pixel values are pixel_values_0.bin).
  const image = path.join(FIXTURE_DIR, expected.images[0].file);
  before(async () => {
    assert.ok(existsSync(CLI), 'dist/cli.js missing: run `npm run build` first');
    model = await convertedTinyModel();
  });

  it('--overlay occlusion --faithfulness --json: occlusion map and the occlusion map\'s AUCs match the references', async () => {
    const dir = await tempDir();
    const png = path.join(dir, 'occlusion.png');
    const r = await cli(['explain', '--model', model, '--json', '--overlay', 'occlusion', '--faithfulness', '--out', png, image]);
    assert.equal(r.code, 0, r.stderr);
    const e = JSON.parse(r.stdout);
    const ref = reference.occlusion.find((o) => o.classIndex === reference.ranked[0] && o.window === 1)!;
    assert.equal(e.occlusion.index, ref.classIndex);
    assert.equal(e.occlusion.window, 1);
    assert.equal(e.occlusion.map.flat().length, 196);
    assert.equal(Math.max(...e.occlusion.map.flat()), 1);
    // 2e-4: occlusion.test.ts says why (normalising by the largest drop scales up float32 logit differences).
    assert.ok(maxAbsDiff(e.occlusion.map.flat(), ref.map) <= 2e-4, `occlusion max diff ${maxAbsDiff(e.occlusion.map.flat(), ref.map)}`);
    assert.ok(Math.abs(e.occlusion.baseProbability - ref.baseProbability) <= 1e-6);
    // The reference scores the PyTorch occlusion map of the top-1 class: ours orders the patches the same way.
    const f = reference.faithfulness;
    assert.equal(e.faithfulness.index, f.classIndex);
    assert.equal(e.faithfulness.steps, 20);
    for (const key of ['deletionAuc', 'insertionAuc', 'randomDeletionAuc'] as const) {
      assert.ok(Math.abs(e.faithfulness.occlusion[key] - f[key]) <= 1e-4, `occlusion ${key}: ${e.faithfulness.occlusion[key]} vs ${f[key]}`);
    }
    assert.deepEqual(Object.keys(e.faithfulness).sort(), ['class', 'index', 'occlusion', 'rollout', 'steps']);
    for (const map of ['rollout', 'class'] as const) {
      // The random baseline depends on the class and the image only, not on the map.
      assert.ok(Math.abs(e.faithfulness[map].randomDeletionAuc - f.randomDeletionAuc) <= 1e-4);
      for (const key of ['deletionAuc', 'insertionAuc'] as const) assert.ok(e.faithfulness[map][key] >= 0 && e.faithfulness[map][key] <= 1);
    }
    const decoded = await decodeImage(png);
    assert.equal(decoded.width, 512);
    assert.ok(decoded.height > 384, `height ${decoded.height}`);
  });

  it('--class by name, and --occlusion-window 3, match the low-ranked and window references', async () => {
    const low = reference.occlusion.find((o) => o.window === 1 && o.classIndex !== reference.ranked[0])!;
    const config = JSON.parse(readFileSync(path.join(FIXTURE_DIR, 'config.json'), 'utf8')) as { id2label: Record<string, string> };
    // One synonym of the label, not the whole of it, to check the name lookup.
    const name = config.id2label[String(low.classIndex)].split(',')[0];
    const byName = JSON.parse((await cli(['explain', '--model', model, '--json', '--overlay', 'occlusion', '--class', name, image])).stdout);
    assert.equal(byName.occlusion.index, low.classIndex);
    assert.equal(byName.classHeatmap.index, low.classIndex);
    assert.ok(maxAbsDiff(byName.occlusion.map.flat(), low.map) <= 2e-4, `low-ranked occlusion max diff ${maxAbsDiff(byName.occlusion.map.flat(), low.map)}`);
    const wide = reference.occlusion.find((o) => o.window === 3)!;
    const windowed = JSON.parse((await cli(['explain', '--model', model, '--json', '--overlay', 'occlusion', '--occlusion-window', '3', '--class', String(wide.classIndex), image])).stdout);
    assert.equal(windowed.occlusion.window, 3);
    assert.ok(maxAbsDiff(windowed.occlusion.map.flat(), wide.map) <= 2e-4, `window-3 occlusion max diff ${maxAbsDiff(windowed.occlusion.map.flat(), wide.map)}`);
  });

  it('the rollout reads the patch rows by default for this mean-pooling model, the CLS row with --rollout-from cls', async () => {
    const byDefault = JSON.parse((await cli(['explain', '--model', model, '--json', image])).stdout);
    assert.equal(byDefault.rollout.from, 'patches');
    assert.equal(byDefault.occlusion, undefined, 'occlusion runs only when asked for');
    const ref = reference.rolloutFromPatches.find((r) => r.discardRatio === 0.9)!.map;
    assert.ok(maxAbsDiff(byDefault.rollout.map.flat(), ref) <= 1e-4, `patch-row rollout max diff ${maxAbsDiff(byDefault.rollout.map.flat(), ref)}`);
    const fromCls = JSON.parse((await cli(['explain', '--model', model, '--json', '--rollout-from', 'cls', image])).stdout);
    assert.equal(fromCls.rollout.from, 'cls');
    assert.ok(maxAbsDiff(fromCls.rollout.map.flat(), expected.images[0].attention_rollout.diagnostic_only_row_normalised_variant_14x14.flat()) <= 1e-3);
  });

  it('refuses --overlay relevance, a class outside the labels and an unknown class name, naming them', async () => {
    const relevance = await cli(['explain', '--model', model, '--overlay', 'relevance', image]);
    assert.notEqual(relevance.code, 0);
    assert.match(relevance.stderr.trim(), /^beit-lens: --overlay relevance needs the gradient explanation graph .*this version does not build/m);
    for (const [value, problem] of [
      ['10', /^beit-lens: --class 10 is outside 0\.\.9 \(this model has 10 labels\)$/],
      ['-1', /^beit-lens: --class -1 is outside 0\.\.9/],
      ['no such label', /^beit-lens: --class "no such label" is neither a class index in 0\.\.9 nor a label of this model$/],
    ] as const) {
      const r = await cli(['explain', '--model', model, '--class', value, image]);
      assert.notEqual(r.code, 0);
      assert.match(r.stderr.trim(), problem);
    }
  });
});

describe('classIndexFromArgument', () => {
  const labels = ['harp seal pup, whitecoat', 'cobblestone alley', 'crème brûlée, burnt cream'];
  it('takes an index, a whole label or one of its comma-separated names', () => {
    assert.equal(classIndexFromArgument('2', labels), 2);
    assert.equal(classIndexFromArgument('cobblestone alley', labels), 1);
    assert.equal(classIndexFromArgument('crème brûlée, burnt cream', labels), 2);
    assert.equal(classIndexFromArgument('burnt cream', labels), 2);
    assert.equal(classIndexFromArgument('whitecoat', labels), 0);
  });
  it('refuses the rest, naming the value', () => {
    assert.throws(() => classIndexFromArgument('3', labels), /--class 3 is outside 0\.\.2/);
    assert.throws(() => classIndexFromArgument('', labels), /--class "" is neither/);
    assert.throws(() => classIndexFromArgument('seal', labels), /--class "seal" is neither/);
  });
});
