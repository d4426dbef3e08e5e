/**
 * BEiT Lens in a real VS Code: activation, every command, the hover, the panel, and a worker crash.
 * The runner (test/vscode/run.ts) sets the tiny fixture model as the user's beitLens.modelPath.
 */
import assert from 'node:assert/strict';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { BeitLensApi } from '../../../src/extension/extension';
import { eventually, test } from './harness';

const EXTENSION_ID = 'beit-lens.beit-lens';
const TINY_LABELS = ['harp seal pup, whitecoat', 'cobblestone alley', 'origami crane', 'crème brûlée, burnt cream', 'glacier lily', 'tin whistle, penny whistle', 'hot air balloon', 'river otter', 'copper weathervane, wind vane', 'tabby kitten, tiger-striped kitten'];

const workspaceDir = process.env.BEIT_LENS_TEST_WORKSPACE!;
const modelDir = process.env.BEIT_LENS_TEST_MODEL!;
const image = (name: string) => vscode.Uri.file(path.join(workspaceDir, 'images', name));

let api: BeitLensApi;

async function closeEverything(): Promise<void> {
  await vscode.commands.executeCommand('workbench.action.closeQuickOpen');
  await vscode.commands.executeCommand('workbench.action.closeAllEditors');
}

test('activates quickly without waiting for the model, then loads it on CPU', async () => {
  const extension = vscode.extensions.getExtension<BeitLensApi>(EXTENSION_ID);
  assert.ok(extension, `${EXTENSION_ID} is not installed in the test instance`);
  const started = Date.now();
  api = await extension.activate();
  assert.ok(Date.now() - started < 2000, `activation took ${Date.now() - started} ms`);
  const state = await api.modelSettled();
  assert.equal(state.kind, 'ready', JSON.stringify(state));
  if (state.kind === 'ready') {
    assert.equal(state.model.modelDir, modelDir);
    assert.equal(state.model.provider, 'cpu');
  }
});

test('registers every command', async () => {
  const commands = await vscode.commands.getCommands(true);
  for (const id of ['beitLens.classifyImage', 'beitLens.explainImage', 'beitLens.classifyFolder', 'beitLens.downloadModel', 'beitLens.selectModel', 'beitLens.doctor']) {
    assert.ok(commands.includes(id), id);
  }
});

test('beitLens.classifyImage returns the top-K predictions and shows them', async () => {
  const top = await vscode.commands.executeCommand<{ index: number; label: string; score: number }[]>('beitLens.classifyImage', image('gradient_640x480.jpg'));
  assert.equal(top?.length, 5);
  assert.ok(top.every((p) => TINY_LABELS.includes(p.label) && p.score > 0 && p.score < 1));
  assert.ok(top[0].score >= top[1].score);
  await closeEverything();
});

test('beitLens.classifyImage uses the active image preview when given no argument', async () => {
  await vscode.commands.executeCommand('vscode.openWith', image('gray_256x256.png'), 'imagePreview.previewEditor');
  const top = await vscode.commands.executeCommand<unknown[]>('beitLens.classifyImage');
  assert.equal(top?.length, 5);
  await closeEverything();
});

test('beitLens.explainImage opens one panel per image and reveals it again', async () => {
  const opened = await vscode.commands.executeCommand<string>('beitLens.explainImage', image('alpha_300x200.png'));
  assert.equal(opened, image('alpha_300x200.png').fsPath);
  assert.equal(api.explanationPanels.openCount, 1);
  await vscode.commands.executeCommand('beitLens.explainImage', image('alpha_300x200.png'));
  assert.equal(api.explanationPanels.openCount, 1);
  await vscode.commands.executeCommand('beitLens.explainImage', image('tiny_17x9.png'));
  assert.equal(api.explanationPanels.openCount, 2);
  const tab = vscode.window.tabGroups.all.flatMap((g) => g.tabs).find((t) => t.label === 'BEiT: tiny_17x9.png');
  assert.ok(tab, 'panel tab titled after its image');
  await closeEverything();
  await eventually(() => (api.explanationPanels.openCount === 0 ? true : undefined), 5000, 'panels to close');
});

test('hover over an image path in Markdown shows the thumbnail, predictions and an Explain link', async () => {
  const document = await vscode.workspace.openTextDocument(path.join(workspaceDir, 'README.md'));
  await vscode.window.showTextDocument(document);
  const position = new vscode.Position(2, document.lineAt(2).text.indexOf('gray_256') + 2);
  const text = await eventually(async () => {
    const hovers = await vscode.commands.executeCommand<vscode.Hover[]>('vscode.executeHoverProvider', document.uri, position);
    const markdown = hovers.flatMap((h) => h.contents.map((c) => (typeof c === 'string' ? c : c.value))).join('\n');
    return TINY_LABELS.some((l) => markdown.includes(l.split(',')[0])) ? markdown : undefined;
  }, 20_000, 'a hover with predictions');
  assert.match(text, /!\[thumbnail\]\(data:image\/(png|jpeg);base64,/);
  assert.match(text, /command:beitLens\.explainImage\?/);
  assert.match(text, /\d+(\.\d+)?%/);
  await closeEverything();
});

test('hover in Python finds the string literal; a non-image path gets no hover', async () => {
  const python = await vscode.workspace.openTextDocument(path.join(workspaceDir, 'train.py'));
  const at = new vscode.Position(1, python.lineAt(1).text.indexOf('gradient') + 3);
  await eventually(async () => {
    const hovers = await vscode.commands.executeCommand<vscode.Hover[]>('vscode.executeHoverProvider', python.uri, at);
    const markdown = hovers.flatMap((h) => h.contents.map((c) => (typeof c === 'string' ? c : c.value))).join('\n');
    return markdown.includes('BEiT Lens') && markdown.includes('%') ? true : undefined;
  }, 20_000, 'a hover in Python');
  const notes = await vscode.workspace.openTextDocument(path.join(workspaceDir, 'notes.txt'));
  const hovers = await vscode.commands.executeCommand<vscode.Hover[]>('vscode.executeHoverProvider', notes.uri, new vscode.Position(0, 22));
  assert.ok(!hovers.some((h) => h.contents.some((c) => (typeof c === 'string' ? c : c.value).includes('BEiT Lens'))));
});

test('beitLens.classifyFolder scans in the worker and opens the dataset view, one row per image', async () => {
  const result = await vscode.commands.executeCommand<{ resultsFile: string; rows: number; cancelled: boolean }>('beitLens.classifyFolder', vscode.Uri.file(path.join(workspaceDir, 'images')));
  assert.ok(result);
  assert.equal(result.cancelled, false);
  assert.equal(result.rows, 6);
  assert.equal(api.datasetPanels.openCount, 1);
  const text = new TextDecoder().decode(await vscode.workspace.fs.readFile(vscode.Uri.file(result.resultsFile)));
  const rows = text.trim().split('\n').map((line) => JSON.parse(line) as { image: string; top?: { label: string }[] });
  assert.equal(rows.length, 6);
  assert.ok(rows.every((r) => r.image.startsWith(path.join(workspaceDir, 'images')) && r.top?.every((p) => TINY_LABELS.includes(p.label))));
  const tab = vscode.window.tabGroups.all.flatMap((g) => g.tabs).find((t) => t.label === 'Dataset: images');
  assert.ok(tab, 'a dataset view tab titled after the folder');
  await closeEverything();
  await eventually(() => (api.datasetPanels.openCount === 0 ? true : undefined), 5000, 'the dataset view to close');
});

test('beitLens.doctor reports versions, trust, the model and the providers tried', async () => {
  const text = await vscode.commands.executeCommand<string>('beitLens.doctor');
  assert.match(text, /^# BEiT Lens doctor/);
  assert.match(text, /workspace trusted: yes/);
  assert.match(text, /onnxruntime/i);
  assert.match(text, /running on: cpu/);
  assert.ok(text.includes(modelDir));
  await closeEverything();
});

test('beitLens.selectModel validates the folder and writes the user setting', async () => {
  const chosen = await vscode.commands.executeCommand<string>('beitLens.selectModel', vscode.Uri.file(modelDir));
  assert.equal(chosen, modelDir);
  assert.equal(vscode.workspace.getConfiguration('beitLens').inspect('modelPath')?.globalValue, modelDir);
  const rejected = await vscode.commands.executeCommand<string | undefined>('beitLens.selectModel', vscode.Uri.file(workspaceDir));
  assert.equal(rejected, undefined);
  await closeEverything();
});

test('beitLens.downloadModel finds the converted model in its cache without a network', async () => {
  const dir = await vscode.commands.executeCommand<string>('beitLens.downloadModel');
  assert.ok(dir && dir.includes(path.join('converted', 'microsoft--beit-base-patch16-224-pt22k-ft22k')), dir);
  assert.equal((await api.modelSettled()).kind, 'ready');
});

test('a killed inference worker is restarted and the next request succeeds', async () => {
  const pid = api.inference.workerPid;
  assert.ok(api.inference.kill());
  await eventually(() => (api.inference.workerPid && api.inference.workerPid !== pid ? true : undefined), 10_000, 'a new worker');
  assert.equal((await api.modelSettled()).kind, 'ready');
  const top = await vscode.commands.executeCommand<unknown[]>('beitLens.classifyImage', image('tiny_17x9.png'));
  assert.equal(top?.length, 5);
  await closeEverything();
});
