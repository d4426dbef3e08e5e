/**
 * Notebook scenarios (N1–N3) for workbench.e2e.ts: a `.ipynb` with stored outputs opened in
 * code-server's built-in notebook editor (the ipynb serializer ships with it; no kernel runs).
 * Expected predictions are the CLI's for the same images as files, so "the output's bytes give
 * what the file gives" is checked against an independent process.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import type { Locator } from 'playwright-core';
import { cliExplain, FixtureWorkspace, Prediction, shownScore } from '../fixtureWorkspace';
import { QuickPickRow, Workbench } from '../workbench';

export interface NotebookChecks {
  /** The CLI's predictions for a workspace file. */
  expectedFor(file: string): Prediction[];
  hoverTable(hover: Locator): Promise<string[][]>;
  assertPredictionRows(rows: QuickPickRow[], want: Prediction[], what: string): void;
  provider: string;
}

const CODE_CELL = 'Image.open';
const MARKDOWN_CELL = '![otter]';
const PNG_CELL = 'gray.png';
const JPEG_CELL = 'crane.jpg';

async function assertCellHover(w: Workbench, fx: FixtureWorkspace, checks: NotebookChecks, image: string, where: string): Promise<void> {
  const name = path.basename(image);
  const started = performance.now();
  const hover = await w.hoverForPrediction(name, name, 90_000, w.notebookEditor());
  const seconds = (performance.now() - started) / 1000;
  assert.deepEqual(
    await checks.hoverTable(hover),
    checks.expectedFor(path.join(fx.workspace, image)).slice(0, 5).map((p, i) => [String(i + 1), p.label, shownScore(p.score)]),
    `hover over ${name} in the ${where} of ${fx.notebook}: the top-5 differs from beit-lens classify --json`,
  );
  assert.equal(await hover.locator('img[src^="data:image/"]').count(), 1, `the hover in the ${where} shows no thumbnail`);
  console.log(`  hover in the notebook's ${where}: ${seconds.toFixed(1)} s to the predictions`);
}

/** N1: hovers in a code cell and a Markdown cell, the paths relative to the notebook's folder. */
export async function notebookHovers(w: Workbench, fx: FixtureWorkspace, checks: NotebookChecks): Promise<void> {
  // The earlier scenarios leave several editor groups open; in a narrow one the cells' paths are cut off.
  await w.closeAllEditorGroups();
  await w.openNotebook(fx.notebook, CODE_CELL);
  await w.screenshot('N1-notebook-open');
  await assertCellHover(w, fx, checks, fx.notebookCodeImage, 'code cell');
  await w.screenshot('N1-hover-code-cell');
  await w.page.mouse.move(5, 5);
  await w.editMarkdownCellAfter(CODE_CELL, MARKDOWN_CELL);
  await assertCellHover(w, fx, checks, fx.notebookMarkdownImage, 'Markdown cell');
  await w.screenshot('N1-hover-markdown-cell');
  await w.page.keyboard.press('Escape');
}

/** N2: Classify Output Images from the cell toolbar, on a stored PNG and a stored JPEG output. */
export async function classifyOutputImages(w: Workbench, fx: FixtureWorkspace, checks: NotebookChecks, title: string): Promise<void> {
  const cells: [string, string, number, string][] = [
    [PNG_CELL, fx.notebookPngImage, 3, 'PNG'],
    [JPEG_CELL, fx.notebookJpegImage, 4, 'JPEG'],
  ];
  for (const [cellText, image, number, kind] of cells) {
    await w.cellToolbarAction(cellText, title);
    const { title: shown, rows } = await w.quickPickRows(5);
    assert.equal(shown, `BEiT: ${path.basename(fx.notebook)} · cell ${number} (${checks.provider})`);
    checks.assertPredictionRows(rows, checks.expectedFor(path.join(fx.workspace, image)), `the ${kind} output of cell ${number} (the bytes of ${image})`);
    await w.screenshot(`N2-classify-${kind.toLowerCase()}-output`);
    await w.closeQuickPick();
  }
}

/** N3: Explain Output Image from the cell's menu opens the panel on the output, named after the notebook and cell. */
export async function explainOutputImage(w: Workbench, fx: FixtureWorkspace, item: string): Promise<void> {
  const oracle = await cliExplain(fx.userModel, path.join(fx.workspace, fx.notebookPngImage));
  await w.cellMenuItem(PNG_CELL, item);
  const name = `${path.basename(fx.notebook)} · cell 3`;
  await w.page.locator('.tab.active', { hasText: `BEiT: ${name}` }).waitFor({ timeout: 90_000 });
  const panel = await w.webview('#legend');
  await panel.locator('#legend li').first().waitFor({ timeout: 90_000 });
  assert.equal((await panel.locator('#title').innerText()).trim(), name);
  const top = await panel.locator('.top-k li .label').allInnerTexts();
  assert.deepEqual(top, oracle.top.map((p) => p.label), 'the panel top-K for the PNG output differs from beit-lens explain --json on the same bytes as a file');
  await panel.locator('#image').evaluate((img: any) => (img.complete && img.naturalWidth ? undefined : new Promise((resolve) => img.addEventListener('load', resolve, { once: true }))));
  await w.screenshot('N3-explain-output-image');
  await w.page.locator('.tab.active', { hasText: `BEiT: ${name}` }).locator('.codicon-close').click();
}
