/** `beitLens.explainImage`: the explanation panel for an image (revealed if already open). */
import * as vscode from 'vscode';
import { Command } from '../commandIds';
import { ExplanationPanels } from '../panel/explanationPanel';
import { resolveImageTarget } from './imageTarget';

export function registerExplainImageCommand(panels: ExplanationPanels): vscode.Disposable {
  return vscode.commands.registerCommand(Command.explainImage, async (arg?: unknown): Promise<string | undefined> => {
    const uri = await resolveImageTarget(arg);
    if (!uri) return undefined;
    return panels.open(uri.fsPath).imagePath;
  });
}
