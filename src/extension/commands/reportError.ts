import * as vscode from 'vscode';
import { Command } from '../commandIds';
import { isInferenceError } from '../inference/inferenceClient';
import { noModelActions, offerModelActions } from '../model/modelActions';

/** Tells the user what went wrong, with the way out when there is one (no model: get one). */
export async function reportError(err: unknown, doing: string): Promise<void> {
  if (isInferenceError(err, 'CANCELLED')) return;
  const message = err instanceof Error ? err.message : String(err);
  if (isInferenceError(err, 'NO_MODEL')) {
    await offerModelActions(
      (text, ...items) => vscode.window.showErrorMessage(text, ...items),
      `BEiT Lens: ${doing}: no model yet.`,
      noModelActions(),
      (command) => vscode.commands.executeCommand(command),
    );
    return;
  }
  const doctor = 'Run Doctor';
  const choice = await vscode.window.showErrorMessage(`BEiT Lens: ${doing}: ${message}`, doctor);
  if (choice === doctor) void vscode.commands.executeCommand(Command.doctor);
}
