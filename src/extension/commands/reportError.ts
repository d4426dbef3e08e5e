import * as vscode from 'vscode';
import { Command } from '../commandIds';
import { isInferenceError } from '../inference/inferenceClient';
import { DOCTOR_ACTION, noModelActions, SELECT_ACTION } from '../model/modelActions';
import { ModelNotices } from '../model/modelNotices';

/**
 * Tells the user what went wrong, with the way out when there is one (no model: get one). Failures that come from
 * the model's state are notices that close once that state changes; the others are error messages.
 */
export async function reportError(err: unknown, doing: string, notices: ModelNotices): Promise<void> {
  if (isInferenceError(err, 'CANCELLED')) return;
  const message = err instanceof Error ? err.message : String(err);
  if (isInferenceError(err, 'NO_MODEL')) {
    await notices.show(`BEiT Lens: ${doing}: no model yet.`, noModelActions());
    return;
  }
  if (isInferenceError(err, 'MODEL_FAILED')) {
    await notices.show(`BEiT Lens: ${doing}: ${message}`, [SELECT_ACTION, DOCTOR_ACTION]);
    return;
  }
  const choice = await vscode.window.showErrorMessage(`BEiT Lens: ${doing}: ${message}`, DOCTOR_ACTION.title);
  if (choice === DOCTOR_ACTION.title) void vscode.commands.executeCommand(Command.doctor);
}
