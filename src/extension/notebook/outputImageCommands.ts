/**
 * `beitLens.classifyOutputImages` and `beitLens.explainOutputImage`: the images a notebook cell
 * outputs (matplotlib, PIL, IPython.display), from the output items' bytes. The bytes take the
 * same way through the worker as a file's (BeitModel.classify / explain on a Buffer: the same
 * format sniffing, so SVG is refused; the same byte limits and decode budget).
 */
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Prediction } from '../../core/predictions';
import { Command } from '../commandIds';
import { copyPredictionLabel, predictionItems } from '../commands/classifyImageCommand';
import { reportError } from '../commands/reportError';
import { ModelNotices } from '../model/modelNotices';
import { providerName } from '../hover/hoverMarkdown';
import { InferenceService } from '../inference/inferenceClient';
import { ExplanationPanels } from '../panel/explanationPanel';
import { CONFIG_SECTION, readViewSettings } from '../settings';
import { cellName, cellOutputImages, noImagesMessage, OutputImage, outputImageName } from './outputImages';

/** What Classify Output Images returns per image (also what the tests read). */
export interface OutputImageResult {
  name: string;
  outputIndex: number;
  mime: string;
  top?: Prediction[];
  error?: string;
}

export function registerOutputImageCommands(inference: InferenceService, notices: ModelNotices, panels: ExplanationPanels): vscode.Disposable {
  return vscode.Disposable.from(
    vscode.commands.registerCommand(Command.classifyOutputImages, async (arg?: unknown): Promise<OutputImageResult[] | undefined> => {
      const target = outputTarget(arg);
      if (!target) return undefined;
      const { topK } = readViewSettings((key) => vscode.workspace.getConfiguration(CONFIG_SECTION).get(key));
      const results: OutputImageResult[] = [];
      let firstError: { err: unknown; name: string } | undefined;
      await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: `BEiT Lens: classifying the images of ${target.name}` }, async () => {
        // One at a time, in order: each is its own command-lane call, so hovers still get turns.
        for (const image of target.images) {
          const name = outputImageName(target.notebookName, target.cell.index, image, target.images.length);
          try {
            results.push({ name, outputIndex: image.outputIndex, mime: image.mime, top: await inference.call('classifyBytes', { bytes: image.bytes, topK }, { lane: 'command' }) });
          } catch (err) {
            firstError ??= { err, name };
            results.push({ name, outputIndex: image.outputIndex, mime: image.mime, error: `${name} (output ${image.outputIndex + 1}, ${image.mime}): ${(err as Error).message}` });
          }
        }
      });
      // The first failure as the classify command reports one (no model: the way to get one).
      if (firstError) void reportError(firstError.err, `classifying ${firstError.name}`, notices);
      if (results.some((r) => r.top)) showOutputResults(target, results, inference.model?.provider ?? '');
      return results;
    }),
    vscode.commands.registerCommand(Command.explainOutputImage, async (arg?: unknown): Promise<string | undefined> => {
      const target = outputTarget(arg);
      if (!target) return undefined;
      const image = target.images.length === 1 ? target.images[0] : await pickImage(target);
      if (!image) return undefined;
      const name = outputImageName(target.notebookName, target.cell.index, image, target.images.length);
      // The panel's own copy: the output may be re-run, cleared or edited while the panel is open.
      const bytes = Uint8Array.prototype.slice.call(image.bytes);
      const digest = createHash('sha256').update(bytes).digest('hex').slice(0, 16);
      const notebook = target.cell.notebook.uri;
      const panel = panels.openBytes({
        key: `${notebook.toString()}#cell-${target.cell.index}-output-${image.outputIndex}-${digest}`,
        bytes,
        name,
        exportDir: notebook.scheme === 'file' ? path.dirname(notebook.fsPath) : (vscode.workspace.workspaceFolders?.[0]?.uri.fsPath ?? ''),
      });
      return panel.title;
    }),
  );
}

interface OutputTarget {
  cell: vscode.NotebookCell;
  notebookName: string;
  /** "plots.ipynb · cell 3" */
  name: string;
  images: OutputImage[];
}

/**
 * The cell the command is about: the one whose toolbar or menu ran it (VS Code passes the
 * NotebookCell), else the active notebook editor's selected cell. Says why when there is nothing
 * to classify.
 */
function outputTarget(arg: unknown): OutputTarget | undefined {
  const cell = isNotebookCell(arg) ? arg : selectedCell();
  if (!cell) {
    void vscode.window.showErrorMessage('BEiT Lens: select a notebook cell that shows an image, then run this again.');
    return undefined;
  }
  const notebookName = path.basename(cell.notebook.uri.path);
  const name = cellName(notebookName, cell.index);
  const found = cellOutputImages(cell);
  if (found.images.length === 0) {
    void vscode.window.showErrorMessage(`BEiT Lens: ${noImagesMessage(name, found)}`);
    return undefined;
  }
  return { cell, notebookName, name, images: found.images };
}

function isNotebookCell(arg: unknown): arg is vscode.NotebookCell {
  const c = arg as Partial<vscode.NotebookCell> | undefined;
  return typeof c === 'object' && c !== null && typeof c.index === 'number' && Array.isArray(c.outputs) && typeof c.notebook === 'object';
}

function selectedCell(): vscode.NotebookCell | undefined {
  const editor = vscode.window.activeNotebookEditor;
  if (!editor) return undefined;
  const range = editor.selection;
  return range.isEmpty ? undefined : editor.notebook.cellAt(range.start);
}

async function pickImage(target: OutputTarget): Promise<OutputImage | undefined> {
  const picked = await vscode.window.showQuickPick(
    target.images.map((image) => ({ label: `image ${image.ordinal}`, description: `output ${image.outputIndex + 1} · ${image.mime} · ${Math.ceil(image.bytes.byteLength / 1024)} KB`, image })),
    { title: `BEiT Lens: which image of ${target.name}?`, placeHolder: 'Pick the output image to explain' },
  );
  return picked?.image;
}

/** Shown, not awaited: one section per image, a failed image as its own row naming it and why. */
function showOutputResults(target: OutputTarget, results: readonly OutputImageResult[], provider: string): void {
  type Item = vscode.QuickPickItem & { label: string; prediction?: Prediction };
  const pick = vscode.window.createQuickPick<Item>();
  pick.title = `BEiT: ${target.name}${provider ? ` (${providerName(provider)})` : ''}`;
  pick.placeholder = 'Pick a label to copy it';
  pick.matchOnDescription = true;
  const several = results.length > 1;
  pick.items = results.flatMap((r): Item[] => [
    ...(several ? [{ label: r.name, kind: vscode.QuickPickItemKind.Separator }] : []),
    ...(r.top ? predictionItems(r.top) : [{ label: '$(error) could not classify', detail: r.error }]),
  ]);
  pick.onDidAccept(() => {
    const item = pick.selectedItems[0];
    if (item?.prediction) copyPredictionLabel(item.prediction);
    pick.hide();
  });
  pick.onDidHide(() => pick.dispose());
  pick.show();
}
