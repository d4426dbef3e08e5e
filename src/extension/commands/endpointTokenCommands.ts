/**
 * `beitLens.setEndpointToken` and `beitLens.clearEndpointToken`: the bearer token for `beitLens.endpoint`, kept in
 * VS Code's secret storage. The model controller reloads when it changes.
 */
import * as vscode from 'vscode';
import { Command } from '../commandIds';
import { clearEndpointToken, endpointTokenProblem, storeEndpointToken } from '../model/endpointToken';

export function registerSetEndpointTokenCommand(secrets: vscode.SecretStorage): vscode.Disposable {
  return vscode.commands.registerCommand(Command.setEndpointToken, async (): Promise<boolean> => {
    const answer = await vscode.window.showInputBox({
      title: 'BEiT Lens: endpoint bearer token',
      prompt: 'Sent as "Authorization: Bearer …" to the servers in beitLens.endpoint; kept in VS Code\'s secret storage, never in settings.',
      password: true,
      ignoreFocusOut: true,
      validateInput: endpointTokenProblem,
    });
    if (answer === undefined) return false;
    try {
      await storeEndpointToken(secrets, answer);
      void vscode.window.showInformationMessage('BEiT Lens: endpoint token stored.');
      return true;
    } catch (err) {
      void vscode.window.showErrorMessage(`BEiT Lens: the endpoint token was not stored: ${(err as Error).message}`);
      return false;
    }
  });
}

export function registerClearEndpointTokenCommand(secrets: vscode.SecretStorage): vscode.Disposable {
  return vscode.commands.registerCommand(Command.clearEndpointToken, async (): Promise<boolean> => {
    const removed = await clearEndpointToken(secrets);
    void vscode.window.showInformationMessage(removed ? 'BEiT Lens: endpoint token removed.' : 'BEiT Lens: no endpoint token was stored.');
    return removed;
  });
}
