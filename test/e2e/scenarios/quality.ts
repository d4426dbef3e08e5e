/**
 * Image-quality flags in the workbench's dataset view (issue #13): the Quality column's chips and the quality
 * filter on the fixture workspace's dataset/ folder. Registered in workbench.e2e.ts as step Q1 (after step 7);
 * needs only scenario 1 before it. The expected flags are computed here with the core measures on the same
 * files, so the step checks that the editor shows what core decides (the fixture's two grey images are
 * `grayscale`; the 640x480 JPEG is `odd_size` among sizes around 250 px).
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import sharp from 'sharp';
import { decodeImage } from '../../../src/core/image';
import { flagsFromBits, imageFlags, measureQuality, oddSizeFlags, QUALITY_FLAGS, type QualityFlag } from '../../../src/core/quality/measures';
import type { Workbench } from '../workbench';

export interface QualityScenarioDeps {
  /** Workspace-relative path → absolute path of every image under dataset/. */
  dataset: Map<string, string>;
  classifyFolder: string;
}

async function expectedFlags(files: string[]): Promise<Map<string, QualityFlag[]>> {
  const measured = await Promise.all(
    files.map(async (file) => {
      const decoded = await decodeImage(file);
      const { channels } = await sharp(file).metadata();
      return measureQuality(decoded.data, decoded.width, decoded.height, channels === 1);
    }),
  );
  const odd = oddSizeFlags(measured.map((m) => m.size));
  const oddBit = 1 << QUALITY_FLAGS.indexOf('odd_size');
  return new Map(files.map((file, i) => [path.basename(file), flagsFromBits(imageFlags(measured[i]).reduce((bits, f) => bits | (1 << QUALITY_FLAGS.indexOf(f)), odd[i] ? oddBit : 0))]));
}

/** Q1: the Quality column shows each image's flags as chips, and the filter narrows the table to one flag, then any. */
export async function qualityColumnAndFilter(w: Workbench, deps: QualityScenarioDeps): Promise<void> {
  const expected = await expectedFlags([...deps.dataset.values()]);
  assert.deepEqual([...expected].filter(([, f]) => f.includes('grayscale')).map(([n]) => n).sort(), ['gray16_200x150.png', 'gray_256x256.png'], 'the fixture has its two grey images');
  await w.closeAllEditorGroups();
  await w.explorerContextMenu('dataset', deps.classifyFolder);
  await w.page.locator('.tab.active', { hasText: 'Dataset: dataset' }).waitFor();
  const view = await w.webview('#rows');
  const count = deps.dataset.size;
  await view.locator('#scan-status[data-status="done"] #scan-text', { hasText: new RegExp(`^Scanned ${count} images`) }).waitFor({ timeout: 120_000 });
  // More width: beside the explorer the table is narrower than its columns. (One editor group, so the
  // maximise-group toggle that step 6 uses is not offered.)
  await w.runCommand('View: Toggle Primary Side Bar Visibility');
  await view.click('#clear-filters');
  const shown = async (rows: number) => {
    await view.locator('#result-count', { hasText: new RegExp(`^${rows} rows?$`) }).waitFor({ state: 'attached' });
    await view.locator('#rows .row[data-row]').nth(rows - 1).waitFor();
    const cells = await view.locator('#rows .row[data-row]').evaluateAll((els: any[]) =>
      els.map((row) => [row.querySelector('.c-path .name').textContent, [...row.querySelectorAll('.c-quality .chip')].map((c: any) => c.dataset.flag)]),
    );
    return new Map(cells as Array<[string, QualityFlag[]]>);
  };
  assert.deepEqual(await shown(count), expected, 'the Quality column differs from the core measures');

  await view.selectOption('#filter-quality', 'grayscale');
  assert.deepEqual([...(await shown(2)).keys()].sort(), ['gray16_200x150.png', 'gray_256x256.png']);
  await view.selectOption('#filter-quality', '*');
  const flagged = [...expected].filter(([, f]) => f.length > 0);
  assert.deepEqual(await shown(flagged.length), new Map(flagged));
  await w.screenshot('Q1-dataset-quality');
  await view.click('#clear-filters');
  await shown(count);
  await w.runCommand('View: Toggle Primary Side Bar Visibility');
  await w.explorerRow('dataset').waitFor();
}
