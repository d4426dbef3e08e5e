/**
 * Predictions on hover for an image path in any document. Never blocks typing: cached answers are
 * immediate, an uncached one waits a few hundred milliseconds for the worker and otherwise says
 * "classifying…" (the next hover has the result), and a hover that goes away cancels its request.
 *
 * A hover is triggered by whatever text a document holds, so what it may touch is decided before
 * any file system call (imagePathResolution.ts): no network host the user did not open, and in
 * Restricted Mode nothing outside the workspace folders. Refusals say so in one line rather than
 * showing nothing, so a missing preview is never a mystery.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { Command } from '../commandIds';
import { InferenceService } from '../inference/inferenceClient';
import type { HoverPreview } from '../worker/workerProtocol';
import { CONFIG_SECTION, readViewSettings } from '../settings';
import { FileHasher, HashedFile } from './fileHasher';
import { describe as describeModelState } from '../model/describeModelState';
import type { ModelState } from '../inference/inferenceClient';
import { commandLink, escapeMarkdown, formatSize, messageMarkdown, notFoundMarkdown, previewMarkdown, thumbnailMarkdown } from './hoverMarkdown';
import { HoverPreviews, previewCacheKey, PreviewOutcome } from './hoverPreviews';
import { findImagePathAt } from './imagePathDetection';
import { noModelActions } from '../model/modelActions';
import { describeCandidates, documentFolder, findImageFile, imagePathCandidates, NOTEBOOK_CELL_SCHEME, openedShares, ResolutionFs } from './imagePathResolution';

/** Files, untitled documents and notebook cells (of any language, Markdown included). */
export const IMAGE_HOVER_SELECTOR: vscode.DocumentSelector = [{ scheme: 'file' }, { scheme: 'untitled' }, { scheme: NOTEBOOK_CELL_SCHEME }];

const TRUSTED_COMMANDS = [Command.explainImage, Command.classifyImage, Command.downloadModel, Command.selectModel, Command.doctor];

export interface ImageHoverDeps {
  inference: InferenceService;
  previews: HoverPreviews;
  hasher: FileHasher;
  /** What path resolution calls; tests pass a recording fake. */
  fs?: ResolutionFs;
  homeDir?: string;
}

export const NETWORK_REFUSED = 'Not previewed: a network path (hovers never contact another machine).';
export const UNTRUSTED_REFUSED = 'Not previewed in Restricted Mode: only images inside the workspace folders are read.';

export class ImageHoverProvider implements vscode.HoverProvider {
  constructor(private readonly deps: ImageHoverDeps) {}

  async provideHover(document: vscode.TextDocument, position: vscode.Position, token: vscode.CancellationToken): Promise<vscode.Hover | undefined> {
    const settings = readViewSettings((key) => vscode.workspace.getConfiguration(CONFIG_SECTION).get(key));
    if (!settings.hoverEnabled) return undefined;
    const line = document.lineAt(position.line).text;
    const match = findImagePathAt(line, position.character, document.languageId);
    if (!match) return undefined;
    const range = new vscode.Range(position.line, match.start, position.line, match.end);

    const context = {
      documentDir: documentFolder(document.uri, notebookOf(document)?.uri),
      workspaceFolders: (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath),
      homeDir: this.deps.homeDir ?? os.homedir(),
    };
    const candidates = imagePathCandidates(match.path, context);
    const found = await findImageFile(candidates, {
      maxBytes: settings.hoverMaxBytes,
      fs: this.deps.fs,
      allowedShares: openedShares(context),
      confineTo: vscode.workspace.isTrusted ? undefined : context.workspaceFolders,
    });
    if (token.isCancellationRequested) return undefined;
    // No candidates: not a path we resolve at all (a host in a file: URI, a bad URI): no hover, as before.
    if (found.kind === 'missing') return candidates.length ? hover(notFoundMarkdown(match.path, describeCandidates(candidates, match.path, context)), range) : undefined;
    const name = path.basename(found.file);
    if (found.kind === 'refused') return hover(messageMarkdown(name, found.reason === 'network' ? NETWORK_REFUSED : UNTRUSTED_REFUSED), range);
    if (found.kind === 'tooLarge') {
      return hover(messageMarkdown(name, `${formatSize(found.size)} is over the hover limit of ${formatSize(settings.hoverMaxBytes)} (beitLens.hover.maxFileSizeMB).`, [classifyLink(found.file)]), range);
    }

    const state = this.deps.inference.state;
    if (state.kind !== 'ready') return this.withoutModel(state, found, name, range, token);

    // A version of the file hashed before needs no read when its preview is cached; otherwise the
    // file is read once, and those bytes are both the cache key and what the worker classifies.
    const known = this.deps.hasher.known(found.realPath, found);
    const cached = known === undefined ? undefined : this.deps.previews.cached(previewCacheKey(state.model.modelId, known, 5));
    let outcome: PreviewOutcome;
    if (cached) {
      outcome = 'error' in cached ? { kind: 'error', message: cached.error } : 'top' in cached ? { kind: 'done', preview: cached as HoverPreview } : { kind: 'pending' };
    } else {
      const read: HashedFile | undefined = await this.deps.hasher.read(found.realPath, found).catch(() => undefined);
      if (!read || token.isCancellationRequested) return undefined;
      const signal = abortSignalOf(token);
      outcome = await this.deps.previews.preview(previewCacheKey(state.model.modelId, read.sha256, 5), read.bytes, 5, signal.signal);
      signal.dispose();
    }
    switch (outcome.kind) {
      case 'done':
        return hover(
          previewMarkdown({ fileName: name, thumbnail: outcome.preview.thumbnail, image: facts(outcome.preview), size: found.size, top: outcome.preview.top, provider: state.model.provider, explainLink: explainLink(found.file) }),
          range,
        );
      case 'pending':
        return hover(messageMarkdown(name, 'classifying… (hover again for the result)'), range);
      case 'error':
        return hover(messageMarkdown(name, outcome.message), range);
      case 'cancelled':
        return undefined;
    }
  }

  /**
   * No model to classify with (none yet, failed, loading): the thumbnail, size and format anyway, as
   * Image Preview would show them, with the model's state in the words of the status bar's tooltip.
   * The file is read once, as for a preview, and the worker makes the thumbnail from those bytes.
   */
  private async withoutModel(state: Exclude<ModelState, { kind: 'ready' }>, found: { realPath: string; size: number; mtimeMs: number }, name: string, range: vscode.Range, token: vscode.CancellationToken): Promise<vscode.Hover | undefined> {
    const status = [describeModelState(state).tooltip];
    const links = modelLinks(state);
    const read: HashedFile | undefined = await this.deps.hasher.read(found.realPath, found).catch(() => undefined);
    if (!read || token.isCancellationRequested) return undefined;
    const signal = abortSignalOf(token);
    const outcome = await this.deps.previews.thumbnail(read.sha256, read.bytes, signal.signal);
    signal.dispose();
    if (outcome.kind === 'cancelled') return undefined;
    if (outcome.kind === 'pending') status.unshift('making the thumbnail… (hover again for it)');
    if (outcome.kind === 'error') status.unshift(escapeMarkdown(outcome.message));
    const picture = outcome.kind === 'done' ? outcome.preview : undefined;
    return hover(thumbnailMarkdown({ fileName: name, thumbnail: picture?.thumbnail, image: picture && facts(picture), size: found.size, status, links }), range);
  }
}

/** The notebook a cell's document belongs to (undefined for any other document). */
function notebookOf(document: vscode.TextDocument): vscode.NotebookDocument | undefined {
  if (document.uri.scheme !== NOTEBOOK_CELL_SCHEME) return undefined;
  return vscode.workspace.notebookDocuments.find((notebook) => notebook.getCells().some((cell) => cell.document === document));
}

/** Results cached by an older worker may lack the facts; show none rather than wrong ones. */
function facts(p: { width?: number; height?: number; format?: string }): { width: number; height: number; format: string } | undefined {
  return typeof p.width === 'number' && typeof p.height === 'number' && typeof p.format === 'string' ? { width: p.width, height: p.height, format: p.format } : undefined;
}

function modelLinks(state: Exclude<ModelState, { kind: 'ready' }>): string[] {
  if (state.kind === 'noModel') return noModelActions().map((a) => commandLink(a.title, a.command));
  if (state.kind === 'failed') return [commandLink('Doctor', Command.doctor)];
  return [];
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
  // The thumbnail-beside-table layout is HTML (Markdown has no side by side); hoverMarkdown.ts
  // escapes everything from a file, a label or an error, for HTML and Markdown alike.
  md.supportHtml = true;
  return new vscode.Hover(md, range);
}

/** A CancellationToken as an AbortSignal, for the vscode-free modules. */
export function abortSignalOf(token: vscode.CancellationToken): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  if (token.isCancellationRequested) controller.abort();
  const subscription = token.onCancellationRequested(() => controller.abort());
  return { signal: controller.signal, dispose: () => subscription.dispose() };
}
