/**
 * The legend strip under exported overlays (src/shared/legendStrip.ts) and the one palette behind
 * both exports (src/shared/palette.ts): the CLI's `explain --out` PNG, decoded with sharp, ends in
 * the strip the shared layout describes, with swatches in the legend's colours and a colour bar
 * from the panel's viridis table.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import sharp from 'sharp';
import { BeitModel } from '../../src/core/beitModel';
import { heatColor, normalizeMap, patchLegend } from '../../src/core/overlay';
import { asciiText, layoutLegendStrip, legendSpec, paintLegendStrip, STRIP_BACKGROUND, STRIP_TEXT, type LegendItem } from '../../src/shared/legendStrip';
import { classColor, colormap, minMaxNormalize } from '../../src/shared/palette';
import { colormap as webviewColormap } from '../../src/webview/colormap';
import { convertedTinyModel, expected, FIXTURE_DIR, tempDir } from '../helpers/fixtures';

const ROOT = path.resolve(__dirname, '..', '..');
const run = promisify(execFile);

/** The CLI from source (the built bundle is the same code; this needs no build). */
async function cli(args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src', 'cli', 'index.ts'), ...args], { cwd: ROOT, timeout: 120_000, maxBuffer: 64 << 20 });
  return stdout;
}

async function decodePng(file: string): Promise<{ data: Buffer; width: number; height: number }> {
  const { data, info } = await sharp(file).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  assert.equal(info.channels, 3);
  return { data, width: info.width, height: info.height };
}

function rgbAt(img: { data: Buffer; width: number }, x: number, y: number): number[] {
  const o = (y * img.width + x) * 3;
  return [img.data[o], img.data[o + 1], img.data[o + 2]];
}

function itemsOf<K extends LegendItem['kind']>(items: LegendItem[], kind: K): Extract<LegendItem, { kind: K }>[] {
  return items.filter((i): i is Extract<LegendItem, { kind: K }> => i.kind === kind);
}

describe('shared palette', () => {
  it('is the one the CLI and the webview both draw with', () => {
    for (let i = 0; i <= 100; i++) {
      const t = i / 100;
      assert.deepEqual(heatColor(t), colormap(t));
      assert.deepEqual(webviewColormap(t), colormap(t));
    }
    const values = Float32Array.from([3, -1, 7, 7, 0]);
    assert.deepEqual(Array.from(normalizeMap(values)), Array.from(minMaxNormalize(values)));
    assert.deepEqual(Array.from(minMaxNormalize([2, 2, 2])), [0, 0, 0]);
  });
});

describe('legend strip layout', () => {
  const entries = Array.from({ length: 30 }, (_, i) => ({ label: `a rather long class label number ${i}`, color: classColor(i) }));
  const specs = [
    legendSpec({ kind: 'rollout', headFusion: 'max', discardRatio: 0.5 }, { label: 'tabby, tabby cat', score: 0.4321 }, 0.6),
    legendSpec({ kind: 'patches', entries }, { label: 'crème brûlée', score: 0.9 }, 0.5),
    legendSpec({ kind: 'class', label: 'x'.repeat(300) }, undefined, 1),
    legendSpec({ kind: 'patchAttention', patch: 17, layer: 2, head: 'mean' }, { label: 'dog', score: 0.1 }, 0.3),
    legendSpec({ kind: 'none' }, { label: 'dog', score: 0.1 }, 0.3),
    legendSpec({ kind: 'occlusion', label: 'harp seal pup, whitecoat', window: 3 }, { label: 'dog', score: 0.1 }, 0.5),
  ];

  it('keeps every item inside the strip at any image width', () => {
    for (const width of [16, 64, 224, 480, 512, 1024, 2048]) {
      for (const spec of specs) {
        const { width: w, height, scale, items } = layoutLegendStrip(width, spec);
        assert.equal(w, width);
        for (const item of items) {
          const right = item.kind === 'text' ? item.x + item.text.length * 6 * scale - scale : item.kind === 'bar' ? item.x + item.width : item.x + item.size;
          const bottom = item.y + (item.kind === 'bar' ? item.height : item.kind === 'swatch' ? item.size : 7 * scale);
          if (width >= 64) assert.ok(right <= width, `${JSON.stringify(item)} ends at ${right} in a ${width}-wide strip`);
          assert.ok(bottom <= height, `${JSON.stringify(item)} ends below the ${height}-high strip`);
          if (item.kind === 'text') assert.match(item.text, /^[\x20-\x7e]*$/);
        }
      }
    }
  });

  it('names the overlay, its parameters and the top-1 label and score', () => {
    const texts = (i: number) => itemsOf(layoutLegendStrip(1024, specs[i]).items, 'text').map((t) => t.text).join(' ');
    assert.match(texts(0), /Attention rollout - max head fusion, discard 0\.50, opacity 60%/);
    assert.match(texts(0), /Top-1: tabby, tabby cat 43\.2%/);
    assert.match(texts(1), /Top-1: creme brulee 90\.0%/);
    assert.match(texts(1), /\+\d+ more/);
    assert.match(texts(3), /Attention from patch 17 - layer 3, mean of heads/);
    assert.match(texts(5), /Occlusion - harp seal pup, whitecoat, 3x3 patches \(probability drop, max scaled\), opacity 50%/);
    assert.equal(asciiText('naïve 猫'), 'naive ?');
  });

  it('paints text in the text colour, on the background, and the bar from the palette', () => {
    const { layout, rgba } = paintLegendStrip(640, specs[0]);
    const px = (x: number, y: number) => Array.from(rgba.subarray((y * 640 + x) * 4, (y * 640 + x) * 4 + 3));
    const bar = itemsOf(layout.items, 'bar')[0];
    assert.deepEqual(px(bar.x, bar.y + 1), colormap(0));
    assert.deepEqual(px(bar.x + bar.width - 1, bar.y + 1), colormap(1));
    const title = itemsOf(layout.items, 'text')[0];
    let ink = 0;
    for (let y = title.y; y < title.y + 7 * layout.scale; y++) for (let x = title.x; x < 640; x++) if (px(x, y).join() === STRIP_TEXT.join()) ink++;
    assert.ok(ink > 200, `title has ${ink} text pixels`);
    assert.deepEqual(px(639, layout.height - 1), [...STRIP_BACKGROUND]);
  });
});

describe('beit-lens explain --out', () => {
  let model: string;
  let labels: readonly string[];
  const image = path.join(FIXTURE_DIR, expected.images[0].file);
  before(async () => {
    model = await convertedTinyModel();
    const m = await BeitModel.load(model, { provider: 'cpu' });
    labels = m.labels;
    await m.dispose();
  });

  it('appends the legend strip: swatches in the legend colours (patches), the palette bar (rollout), the image untouched above', async () => {
    const dir = await tempDir();
    const patchesPng = path.join(dir, 'patches.png');
    const rolloutPng = path.join(dir, 'rollout.png');
    const json = JSON.parse(await cli(['explain', '--model', model, '--json', '--overlay', 'patches', '--out', patchesPng, image]));
    await cli(['explain', '--model', model, '--overlay', 'rollout', '--discard-ratio', '0.5', '--out', rolloutPng, image]);

    const argmax = Int32Array.from(json.patches.argmax.flat());
    const legend = patchLegend(argmax, labels);
    const patchesSpec = legendSpec({ kind: 'patches', entries: legend }, json.top[0], 0.5);
    const patches = await decodePng(patchesPng);
    const strip = layoutLegendStrip(512, patchesSpec);
    assert.equal(patches.width, 512);
    assert.equal(patches.height, 384 + strip.height, 'image height plus the strip');
    const swatches = itemsOf(strip.items, 'swatch');
    assert.equal(swatches.length, legend.length, 'one swatch per patch class (the tiny model has few)');
    for (const [i, s] of swatches.entries()) {
      assert.deepEqual(rgbAt(patches, s.x + (s.size >> 1), 384 + s.y + (s.size >> 1)), legend[i].color, `swatch ${i} (${legend[i].label})`);
      assert.deepEqual(legend[i].color, classColor(i));
    }
    const texts = itemsOf(strip.items, 'text').map((t) => t.text);
    assert.ok(texts.includes(`Top-1: ${asciiText(json.top[0].label)} ${(json.top[0].score * 100).toFixed(1)}%`), texts.join(' | '));
    // The strip is exactly what the shared painter makes.
    const { rgba } = paintLegendStrip(512, patchesSpec);
    for (let y = 0; y < strip.height; y += 3) for (let x = 0; x < 512; x += 5) assert.deepEqual(rgbAt(patches, x, 384 + y), Array.from(rgba.subarray((y * 512 + x) * 4, (y * 512 + x) * 4 + 3)), `strip pixel ${x},${y}`);

    const rollout = await decodePng(rolloutPng);
    const rolloutStrip = layoutLegendStrip(512, legendSpec({ kind: 'rollout', headFusion: 'mean', discardRatio: 0.5 }, json.top[0], 0.5));
    assert.equal(rollout.height, 384 + rolloutStrip.height);
    const bar = itemsOf(rolloutStrip.items, 'bar')[0];
    assert.deepEqual(rgbAt(rollout, bar.x, 384 + bar.y), colormap(0));
    assert.deepEqual(rgbAt(rollout, bar.x + bar.width - 1, 384 + bar.y), colormap(1));
    // Above the strip is the blended photo, not background.
    assert.notDeepEqual(rgbAt(rollout, 256, 383), [...STRIP_BACKGROUND]);
  });
});
