/** `beitLens.classifyImage`: top-K labels for one image in a QuickPick, with a way into the panel. */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Prediction } from '../../core/predictions';
import { Command } from '../commandIds';
import { formatScore, providerName } from '../hover/hoverMarkdown';
import { InferenceService } from '../inference/inferenceClient';
import { CONFIG_SECTION, readViewSettings } from '../settings';
import { resolveImageTarget, selectedUris } from './imageTarget';
import { ModelNotices } from '../model/modelNotices';
import { reportError } from './reportError';
import { showSelectionResults, type SelectionResultsDeps } from './selectionResults';

const OPEN_PANEL_LABEL = '$(eye) Open explanation panel';

/** `resultsDir`: where a multi-selection's results CSV goes (see selectionResults.ts). */
export function registerClassifyImageCommand(inference: InferenceService, notices: ModelNotices, selection: Pick<SelectionResultsDeps, 'resultsDir'>): vscode.Disposable {
  return vscode.commands.registerCommand(Command.classifyImage, async (arg?: unknown, all?: unknown): Promise<Prediction[] | undefined> => {
    const many = selectedUris(arg, all);
    if (many.length > 1) {
      await showSelectionResults({ inference, notices, resultsDir: selection.resultsDir }, many.map((u) => u.fsPath), `${many.length} selected images`);
      return undefined;
    }
    const uri = await resolveImageTarget(arg);
    if (!uri) return undefined;
    const { topK } = readViewSettings((key) => vscode.workspace.getConfiguration(CONFIG_SECTION).get(key));
    const name = path.basename(uri.fsPath);
    try {
      const top = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: `BEiT Lens: classifying ${name}` }, () =>
        inference.call('classify', { file: uri.fsPath, topK }, { lane: 'command' }),
      );
      showPredictions(uri, top, inference.model?.provider ?? '');
      return top;
    } catch (err) {
      void reportError(err, `classifying ${name}`, notices);
      return undefined;
    }
  });
}

/** One QuickPick row per prediction (also the notebook output results' rows). */
export function predictionItems(top: readonly Prediction[]): (vscode.QuickPickItem & { label: string; prediction: Prediction })[] {
  return top.map((p, i) => ({ label: p.label, description: formatScore(p.score), detail: `#${i + 1} · class ${p.index}`, prediction: p }));
}

/** Accepting a prediction row copies its label. */
export function copyPredictionLabel(prediction: Prediction): void {
  void vscode.env.clipboard.writeText(prediction.label);
  vscode.window.setStatusBarMessage(`BEiT Lens: copied "${prediction.label}"`, 3000);
}

/** Shown, not awaited: the command's result is the predictions, whatever the user picks. */
function showPredictions(uri: vscode.Uri, top: readonly Prediction[], provider: string): void {
  type Item = vscode.QuickPickItem & { prediction?: Prediction; openPanel?: boolean };
  const pick = vscode.window.createQuickPick<Item>();
  const explainButton: vscode.QuickInputButton = { iconPath: new vscode.ThemeIcon('eye'), tooltip: 'Open explanation panel' };
  pick.title = `BEiT: ${path.basename(uri.fsPath)}${provider ? ` (${providerName(provider)})` : ''}`;
  pick.placeholder = 'Pick a label to copy it, or open the explanation panel';
  pick.buttons = [explainButton];
  pick.matchOnDescription = true;
  pick.items = [
    ...predictionItems(top),
    { label: '', kind: vscode.QuickPickItemKind.Separator },
    { label: OPEN_PANEL_LABEL, openPanel: true, alwaysShow: true },
  ];
  const openPanel = () => {
    pick.hide();
    void vscode.commands.executeCommand(Command.explainImage, uri);
  };
  pick.onDidTriggerButton(openPanel);
  pick.onDidAccept(() => {
    const item = pick.selectedItems[0];
    if (item?.openPanel) return openPanel();
    if (item?.prediction) copyPredictionLabel(item.prediction);
    pick.hide();
  });
  pick.onDidHide(() => pick.dispose());
  pick.show();
}
