/**
 * Predictions on hover for an image path in any document. Never blocks typing: cached answers are
 * immediate, an uncached one waits a few hundred milliseconds for the worker and otherwise says
 * "classifying…" (the next hover has the result), and a hover that goes away cancels its request.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { Command } from '../commandIds';
import { InferenceService } from '../inference/inferenceClient';
import { CONFIG_SECTION, readViewSettings } from '../settings';
import { FileHasher } from './fileHasher';
import { commandLink, messageMarkdown, previewMarkdown } from './hoverMarkdown';
import { HoverPreviews, previewCacheKey } from './hoverPreviews';
import { findImagePathAt } from './imagePathDetection';
import { findImageFile, imagePathCandidates } from './imagePathResolution';

export const IMAGE_HOVER_SELECTOR: vscode.DocumentSelector = [{ scheme: 'file' }, { scheme: 'untitled' }];

const TRUSTED_COMMANDS = [Command.explainImage, Command.classifyImage, Command.downloadModel, Command.selectModel, Command.doctor];

export class ImageHoverProvider implements vscode.HoverProvider {
  constructor(
    private readonly inference: InferenceService,
    private readonly previews: HoverPreviews,
    private readonly hasher: FileHasher,
  ) {}

  async provideHover(document: vscode.TextDocument, position: vscode.Position, token: vscode.CancellationToken): Promise<vscode.Hover | undefined> {
    const settings = readViewSettings((key) => vscode.workspace.getConfiguration(CONFIG_SECTION).get(key));
    if (!settings.hoverEnabled) return undefined;
    const line = document.lineAt(position.line).text;
    const match = findImagePathAt(line, position.character, document.languageId);
    if (!match) return undefined;
    const range = new vscode.Range(position.line, match.start, position.line, match.end);

    const candidates = imagePathCandidates(match.path, {
      documentDir: document.uri.scheme === 'file' ? path.dirname(document.uri.fsPath) : undefined,
      workspaceFolders: (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath),
      homeDir: os.homedir(),
    });
    const found = await findImageFile(candidates, settings.hoverMaxBytes);
    if (found.kind === 'missing' || token.isCancellationRequested) return undefined;
    const name = path.basename(found.file);
    if (found.kind === 'tooLarge') {
      return hover(messageMarkdown(name, `${formatSize(found.size)} is over the hover limit of ${formatSize(settings.hoverMaxBytes)} (beitLens.hover.maxFileSizeMB).`, [classifyLink(found.file)]), range);
    }

    const state = this.inference.state;
    if (state.kind !== 'ready') {
      if (state.kind === 'noModel') return hover(messageMarkdown(name, 'No model yet.', [commandLink('Download Model', Command.downloadModel), commandLink('Select Model Folder', Command.selectModel)]), range);
      if (state.kind === 'failed') return hover(messageMarkdown(name, `The model failed to load: ${state.message}`, [commandLink('Doctor', Command.doctor)]), range);
      return hover(messageMarkdown(name, 'The model is loading…'), range);
    }

    const sha256 = await this.hasher.sha256(found.file, found).catch(() => undefined);
    if (!sha256 || token.isCancellationRequested) return undefined;
    const key = previewCacheKey(state.model.modelId, sha256, 5);
    const signal = abortSignalOf(token);
    const outcome = await this.previews.preview(key, found.file, 5, signal.signal);
    signal.dispose();
    switch (outcome.kind) {
      case 'done':
        return hover(previewMarkdown({ fileName: name, thumbnail: outcome.preview.thumbnail, top: outcome.preview.top, provider: state.model.provider, explainLink: explainLink(found.file) }), range);
      case 'pending':
        return hover(messageMarkdown(name, 'classifying… (hover again for the result)'), range);
      case 'error':
        return hover(messageMarkdown(name, outcome.message), range);
      case 'cancelled':
        return undefined;
    }
  }
}

function formatSize(bytes: number): string {
  return bytes < 2 ** 20 ? `${Math.ceil(bytes / 1024)} KB` : `${(bytes / 2 ** 20).toFixed(1)} MB`;
}

function explainLink(file: string): string {
  return commandLink('$(eye) Explain', Command.explainImage, [vscode.Uri.file(file).toString()]);
}

function classifyLink(file: string): string {
  return commandLink('Classify anyway', Command.classifyImage, [vscode.Uri.file(file).toString()]);
}

function hover(markdown: string, range: vscode.Range): vscode.Hover {
  const md = new vscode.MarkdownString(markdown, true);
  md.isTrusted = { enabledCommands: TRUSTED_COMMANDS };
  return new vscode.Hover(md, range);
}

/** A CancellationToken as an AbortSignal, for the vscode-free modules. */
export function abortSignalOf(token: vscode.CancellationToken): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  if (token.isCancellationRequested) controller.abort();
  const subscription = token.onCancellationRequested(() => controller.abort());
  return { signal: controller.signal, dispose: () => subscription.dispose() };
}
