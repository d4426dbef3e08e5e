import * as vscode from 'vscode';
import { Command } from '../commandIds';
import { isInferenceError } from '../inference/inferenceClient';

/** Tells the user what went wrong, with the way out when there is one (no model: get one). */
export async function reportError(err: unknown, doing: string): Promise<void> {
  if (isInferenceError(err, 'CANCELLED')) return;
  const message = err instanceof Error ? err.message : String(err);
  if (isInferenceError(err, 'NO_MODEL')) {
    const download = 'Download Model';
    const select = 'Select Model Folder…';
    const choice = await vscode.window.showErrorMessage(`BEiT Lens: ${doing}: no model yet.`, download, select);
    if (choice === download) void vscode.commands.executeCommand(Command.downloadModel);
    if (choice === select) void vscode.commands.executeCommand(Command.selectModel);
    return;
  }
  const doctor = 'Run Doctor';
  const choice = await vscode.window.showErrorMessage(`BEiT Lens: ${doing}: ${message}`, doctor);
  if (choice === doctor) void vscode.commands.executeCommand(Command.doctor);
}
