/** The status bar item: what the model is doing, and where to click (the doctor) when it is not fine. */
import * as vscode from 'vscode';
import { Command } from '../commandIds';
import type { InferenceService, ModelState } from '../inference/inferenceClient';
import { describe } from './describeModelState';

export class ModelStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('beitLens.model', vscode.StatusBarAlignment.Right, 100);
  private readonly subscriptions: { dispose(): void }[] = [];

  constructor(inference: InferenceService) {
    this.item.name = 'BEiT Lens Model';
    this.item.command = Command.doctor;
    this.subscriptions.push(
      inference.onDidChangeState((state) => this.show(state)),
      inference.onDidWorkerExit((exit) => {
        if (exit.willRestart) vscode.window.setStatusBarMessage('$(warning) BEiT Lens: the inference worker stopped and was restarted', 5000);
        else void vscode.window.showErrorMessage('BEiT Lens: the inference worker keeps crashing and was not restarted. Run "BEiT Lens: Doctor" for details.');
      }),
    );
    this.show(inference.state);
    this.item.show();
  }

  private show(state: ModelState): void {
    const { text, tooltip, error } = describe(state);
    this.item.text = text;
    // The one command link is allowed by name, so nothing else in the tooltip can run a command.
    const markdown = new vscode.MarkdownString(`${tooltip}\n\nClick for the BEiT Lens doctor report, or [show the model](command:${Command.showModel}).`);
    markdown.isTrusted = { enabledCommands: [Command.showModel] };
    this.item.tooltip = markdown;
    this.item.backgroundColor = error ? new vscode.ThemeColor('statusBarItem.errorBackground') : undefined;
  }

  dispose(): void {
    for (const s of this.subscriptions) s.dispose();
    this.item.dispose();
  }
}
