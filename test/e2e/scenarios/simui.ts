/**
 * Similarity in the workbench (issue #13): Find Similar Images from the explorer opens the Dataset view on the
 * image's neighbours with a Similarity column equal to `beit-lens similar --json` on the same folder, and the
 * Duplicates tab shows an exact copy added to the dataset. Registered in workbench.e2e.ts as steps U1–U2
 * (before step 8); each needs only scenario 1 before it.
 */
import assert from 'node:assert/strict';
import { copyFile, rm } from 'node:fs/promises';
import * as path from 'node:path';
import type { Workbench } from '../workbench';

export interface SimilarityScenarioDeps {
  workspace: string;
  /** Workspace-relative path → absolute path of every image under dataset/. */
  dataset: Map<string, string>;
  /** Explorer context-menu titles. */
  findSimilar: string;
  classifyFolder: string;
  /** `beit-lens similar IMAGE --in DIR --top-k K --json`. */
  cliSimilar: (image: string, dir: string, topK: number) => Promise<Array<{ image: string; similarity: number }>>;
}

/** beitLens.similar.topK's default (package.json). */
const TOP_K = 24;
export const SIMILAR_IMAGE = 'dataset/harp_seal/gradient_640x480.jpg';

/** U1: explorer → Find Similar Images: the view lists the CLI's neighbours, in its order, with its cosines. */
export async function findSimilarFromExplorer(w: Workbench, deps: SimilarityScenarioDeps): Promise<void> {
  const oracle = await deps.cliSimilar(path.join(deps.workspace, SIMILAR_IMAGE), path.join(deps.workspace, 'dataset'), TOP_K);
  assert.ok(oracle.length > 0 && oracle.length === Math.min(TOP_K, deps.dataset.size - 1), `beit-lens similar gave ${oracle.length} rows`);
  // The dataset's view first (step 6 opens it too; with only scenario 1 before this step, nothing has): Find Similar
  // searches the open view that holds the image.
  await w.explorerContextMenu('dataset', deps.classifyFolder);
  await w.page.locator('.tab.active', { hasText: 'Dataset: dataset' }).waitFor({ timeout: 120_000 });
  let view = await w.webview('#rows');
  await view.locator('#scan-status[data-status="done"] #scan-text', { hasText: new RegExp(`^Scanned ${deps.dataset.size} images`) }).waitFor({ timeout: 120_000 });
  await w.explorerContextMenu(SIMILAR_IMAGE, deps.findSimilar);
  await w.page.locator('.tab.active', { hasText: 'Dataset: dataset' }).waitFor({ timeout: 120_000 });
  view = await w.webview('#rows');
  const name = path.basename(SIMILAR_IMAGE);
  await view.locator('#row-set:not([hidden]) .chip-text', { hasText: `Similar to ${name} (${oracle.length})` }).waitFor({ timeout: 120_000 });
  await view.locator('.thead .c-sim').waitFor();
  await view.locator('#rows .row[data-row]').nth(oracle.length - 1).waitFor();
  const shown = await view.locator('#rows .row[data-row]').evaluateAll((rows: any[]) =>
    rows.map((r) => ({ image: `${r.querySelector('.c-folder').textContent}/${r.querySelector('.c-path .name').textContent}`, similarity: r.querySelector('.c-sim').textContent })),
  );
  const expected = oracle.map((o) => ({ image: o.image.split(/[\\/]/).slice(-2).join('/'), similarity: o.similarity.toFixed(3) }));
  assert.deepEqual(shown, expected, 'the Dataset view differs from beit-lens similar --json');
  assert.ok(!shown.some((s) => s.image.endsWith(`/${name}`)), 'the query image is not one of its own neighbours');
  await w.screenshot('U1-find-similar');
  // × shows every row again.
  await view.locator('#clear-row-set').click();
  await view.locator('#result-count', { hasText: `${deps.dataset.size} rows` }).waitFor({ state: 'attached' });
}

/** U2: an exact copy added to the dataset: after a rescan the Duplicates tab shows the pair side by side. */
export async function duplicatesTabShowsCopy(w: Workbench, deps: SimilarityScenarioDeps): Promise<void> {
  const original = path.join(deps.workspace, SIMILAR_IMAGE);
  const copy = path.join(deps.workspace, 'dataset', 'river_otter', 'copy_of_gradient.jpg');
  await copyFile(original, copy);
  try {
    await w.explorerContextMenu('dataset', deps.classifyFolder);
    const view = await w.webview('#rows');
    const count = deps.dataset.size + 1;
    await view.locator('#scan-status[data-status="done"] #scan-text', { hasText: new RegExp(`^Scanned ${count} images`) }).waitFor({ timeout: 120_000 });
    await view.locator('#tab-duplicates:not([hidden])').click({ timeout: 60_000 });
    // The tiny random model puts unrelated fixture images close together, and a near link would fold the pair into a
    // "near" group: a threshold only a copy reaches keeps this about the exact pair.
    await view.locator('#dup-threshold').fill('0.999');
    await view.locator('#dup-summary', { hasText: /cosine ≥ 0\.999\b/ }).waitFor({ timeout: 60_000 });
    const group = view.locator('.dup-group[data-kind="exact"]');
    await group.first().waitFor({ timeout: 60_000 });
    assert.equal(await group.count(), 1, 'one exact group: the copy and its original');
    assert.deepEqual((await group.locator('.dup-name').allTextContents()).sort(), [path.basename(copy), path.basename(original)].sort());
    await group.locator('img[src^="data:image/"]').nth(1).waitFor();
    // Class folders are not splits: no leakage claimed.
    assert.equal(await group.locator('.leak-badge').count(), 0);
    await w.screenshot('U2-duplicates');
    // Show in table: just the pair.
    await group.locator('button[data-action="show-group"]').click();
    await view.locator('#result-count', { hasText: /^2 rows$/ }).waitFor({ state: 'attached' });
    await view.locator('#clear-row-set').click();
  } finally {
    await rm(copy, { force: true });
  }
}
