/**
 * The conversation between one explanation panel's webview and the worker, without vscode: every
 * inbound message is parsed with the shared protocol schema (anything else is logged and
 * dropped), and no message can name a file — the session only ever explains the image it was
 * created for, and exports go where the user picks in a save dialog.
 */
import * as path from 'node:path';
import { Command } from '../commandIds';
import { ExplanationDto, ExtensionToWebviewMessage, OverlayKind, parseWebviewMessage, RecoveryCommand, WebviewToExtensionMessage } from '../../shared/protocol';
import { InferenceService, isInferenceError } from '../inference/inferenceClient';
import { Logger } from '../util/logger';
import { ViewSettings } from '../settings';
import { ExplanationSummary } from '../worker/workerProtocol';

export interface ExplanationSessionOptions {
  /** The image file; for an image that is not a file (`bytes`), what the panel is keyed and saved by. */
  imagePath: string;
  /**
   * An image that is not a file (a notebook output): the session's own copy, so the panel keeps
   * working after the output it came from changes or goes away.
   */
  bytes?: Uint8Array;
  /** What the panel calls the image; default the file's name. */
  name?: string;
  inference: InferenceService;
  post: (message: ExtensionToWebviewMessage) => unknown;
  settings: () => ViewSettings;
  /** Asks the user where to save; returns the file written, or undefined if they cancelled. */
  saveExport: (png: Uint8Array, suggestedName: string) => Promise<string | undefined>;
  onViewState?: (state: { overlay: OverlayKind; opacity: number }) => void;
  /** Shows a file this session wrote (the last export) in the editor's explorer or the OS's. */
  revealFile?: (file: string) => Promise<unknown>;
  /** Runs one of the model recovery commands the panel's empty state offers. */
  runCommand?: (command: RecoveryCommand) => Promise<unknown>;
  /** Find Similar Images for this panel's image; absent for an image that is not a file (a notebook output). */
  findSimilar?: () => Promise<unknown>;
  log: Logger;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

type FollowUp = 'rollout' | 'class' | 'patch';

export class ExplanationSession {
  private requestId = 0;
  private handle?: string;
  private dto?: ExplanationDto;
  private explaining?: AbortController;
  private explainRunning = false;
  private readonly followUps = new Map<FollowUp, AbortController>();
  private disposed = false;
  /** The PNG this panel last exported: the only file `revealExport` may show. */
  private lastExport?: string;
  /** Every panel gets its own lane, so ten open panels take turns with each other and with hovers. */
  private readonly lane: string;
  private static nextLane = 1;

  constructor(private readonly options: ExplanationSessionOptions) {
    this.lane = `panel-${ExplanationSession.nextLane++}`;
  }

  get imagePath(): string {
    return this.options.imagePath;
  }

  private get name(): string {
    return this.options.name ?? path.basename(this.options.imagePath);
  }

  /** Entry point for everything the webview posts. Never throws. */
  async receive(raw: unknown): Promise<void> {
    if (this.disposed) return;
    const parsed = parseWebviewMessage(raw);
    if (!parsed.ok) {
      this.options.log.warn(`explanation panel: dropped an invalid message (${parsed.error})`);
      return;
    }
    try {
      await this.dispatch(parsed.message);
    } catch (err) {
      this.options.log.error(`explanation panel: ${(err as Error).message}`);
    }
  }

  /** Starts (or restarts) the explanation of this panel's image. */
  async explain(): Promise<void> {
    this.explaining?.abort();
    const controller = new AbortController();
    this.explaining = controller;
    const requestId = ++this.requestId;
    await this.releaseHandle();
    if (controller.signal.aborted || this.disposed) return;
    this.dto = undefined;
    this.post({ type: 'loading', requestId, image: this.options.bytes ? this.name : this.options.imagePath });
    this.explainRunning = true;
    try {
      const summary = await this.runExplain(controller.signal);
      if (controller.signal.aborted || this.disposed) return;
      this.dto = toDto(summary, requestId, this.options.imagePath, this.options.name);
      this.post({ type: 'explanation', explanation: this.dto });
    } catch (err) {
      if (isInferenceError(err, 'CANCELLED') || controller.signal.aborted || this.disposed) return;
      if (isInferenceError(err, 'NO_MODEL') || isInferenceError(err, 'MODEL_FAILED')) {
        this.post({ type: 'modelUnavailable', requestId, reason: err.code === 'NO_MODEL' ? 'noModel' : 'failed', message: err.message });
      } else {
        this.post({ type: 'error', requestId, message: (err as Error).message });
      }
    } finally {
      if (this.explaining === controller) this.explainRunning = false;
    }
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.explaining?.abort();
    for (const c of this.followUps.values()) c.abort();
    void this.releaseHandle();
  }

  private async dispatch(message: WebviewToExtensionMessage): Promise<void> {
    switch (message.type) {
      case 'ready':
        // A webview that was hidden and shown again starts over: it gets what we already have, or
        // (after an error) another try.
        if (this.dto) this.post({ type: 'explanation', explanation: this.dto });
        else if (this.explainRunning) this.post({ type: 'loading', requestId: this.requestId, image: this.options.bytes ? this.name : this.options.imagePath });
        else await this.explain();
        return;
      case 'setRollout':
        return this.followUp('rollout', message.requestId, async (signal) => {
          const map = await this.withHandle(signal, (handle) => this.options.inference.call('rollout', { handle, headFusion: message.headFusion, discardRatio: message.discardRatio }, { lane: this.lane, signal }));
          this.post({ type: 'rollout', requestId: message.requestId, headFusion: message.headFusion, discardRatio: message.discardRatio, map });
        });
      case 'selectClass':
        return this.followUp('class', message.requestId, async (signal) => {
          const heat = await this.withHandle(signal, (handle) => this.options.inference.call('classHeatmap', { handle, classIndex: message.classIndex }, { lane: this.lane, signal }));
          this.post({ type: 'classHeatmap', requestId: message.requestId, classIndex: message.classIndex, label: heat.label, logits: heat.logits });
        });
      case 'selectPatch':
        return this.followUp('patch', message.requestId, async (signal) => {
          const map = await this.withHandle(signal, (handle) => this.options.inference.call('patchAttention', { handle, patch: message.patch, layer: message.layer, head: message.head }, { lane: this.lane, signal }));
          this.post({ type: 'patchAttention', requestId: message.requestId, patch: message.patch, layer: message.layer, head: message.head, map });
        });
      case 'exportPng':
        return this.exportPng(message.dataUrl, message.suggestedName);
      case 'state':
        this.options.onViewState?.({ overlay: message.overlay, opacity: message.opacity });
        return;
      case 'revealExport':
        if (this.lastExport && this.options.revealFile) await this.options.revealFile(this.lastExport);
        else this.options.log.warn('explanation panel: nothing exported yet to reveal');
        return;
      case 'findSimilar':
        if (!this.options.findSimilar) return this.options.log.warn('explanation panel: this image is not a file, so it cannot be searched for');
        await this.options.findSimilar();
        return;
      case 'runCommand':
        if (!this.options.runCommand) return this.options.log.warn(`explanation panel: cannot run ${message.command} here`);
        await this.options.runCommand(message.command);
        // A model chosen or downloaded from the empty state: try this image again (the call waits for the load).
        if (!this.dto && !this.explainRunning && message.command !== Command.doctor) await this.explain();
        return;
    }
  }

  /**
   * Runs a follow-up question about the current explanation. A newer question of the same kind
   * cancels an older one still queued (dragging a slider sends many), and a reply for an
   * explanation that has since been replaced is not asked at all.
   */
  private async followUp(kind: FollowUp, requestId: number, run: (signal: AbortSignal) => Promise<void>): Promise<void> {
    if (requestId !== this.requestId) {
      this.options.log.debug(`explanation panel: ignored a ${kind} request for stale explanation ${requestId}`);
      return;
    }
    this.followUps.get(kind)?.abort();
    const controller = new AbortController();
    this.followUps.set(kind, controller);
    try {
      await run(controller.signal);
    } catch (err) {
      if (isInferenceError(err, 'CANCELLED') || controller.signal.aborted || this.disposed) return;
      this.post({ type: 'error', requestId, message: (err as Error).message });
    } finally {
      if (this.followUps.get(kind) === controller) this.followUps.delete(kind);
    }
  }

  /** The worker may have restarted (or evicted the tensors): recompute once, quietly, and retry. */
  private async withHandle<T>(signal: AbortSignal, ask: (handle: string) => Promise<T>): Promise<T> {
    if (!this.handle) await this.refreshHandle(signal);
    try {
      return await ask(this.handle!);
    } catch (err) {
      if (!isInferenceError(err, 'EXPLANATION_GONE') && !isInferenceError(err, 'WORKER_CRASHED')) throw err;
      await this.refreshHandle(signal);
      return ask(this.handle!);
    }
  }

  private async refreshHandle(signal: AbortSignal): Promise<void> {
    await this.runExplain(signal);
  }

  private async runExplain(signal: AbortSignal): Promise<ExplanationSummary> {
    const settings = this.options.settings();
    const rollout = { topK: settings.topK, headFusion: settings.headFusion, discardRatio: settings.discardRatio };
    const summary = await this.options.inference.call('explain', this.options.bytes ? { bytes: this.options.bytes, ...rollout } : { file: this.options.imagePath, ...rollout }, { lane: this.lane, signal });
    if (this.disposed) {
      this.options.inference.call('release', { handle: summary.handle }).catch(() => undefined);
    } else {
      this.handle = summary.handle;
    }
    return summary;
  }

  private async releaseHandle(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    if (handle) await this.options.inference.call('release', { handle }).catch(() => undefined);
  }

  private async exportPng(dataUrl: string, suggestedName: string): Promise<void> {
    const bytes = Buffer.from(dataUrl.slice(dataUrl.indexOf(',') + 1), 'base64');
    if (bytes.length < PNG_SIGNATURE.length || !bytes.subarray(0, PNG_SIGNATURE.length).equals(PNG_SIGNATURE)) {
      this.options.log.warn('explanation panel: dropped an export that is not a PNG');
      return;
    }
    const base = path.basename(suggestedName.replace(/[\u0000-\u001f<>:"|?*]/g, '_')) || 'overlay';
    const name = /\.png$/i.test(base) ? base : `${base}.png`;
    const saved = await this.options.saveExport(bytes, name);
    if (!saved) return;
    this.lastExport = saved;
    this.post({ type: 'exported', file: saved });
  }

  private post(message: ExtensionToWebviewMessage): void {
    if (this.disposed) return;
    try {
      const result = this.options.post(message);
      // Webview.postMessage returns a Thenable that rejects when the panel is gone.
      if (result && typeof (result as PromiseLike<unknown>).then === 'function') (result as PromiseLike<unknown>).then(undefined, () => undefined);
    } catch {
      // The panel was closed between our check and the post.
    }
  }
}

export function toDto(summary: ExplanationSummary, requestId: number, imagePath: string, name?: string): ExplanationDto {
  return {
    requestId,
    image: { src: summary.src, name: name ?? path.basename(imagePath), width: summary.width, height: summary.height },
    top: summary.top,
    grid: summary.grid,
    leadingTokens: summary.leadingTokens,
    layers: summary.layers,
    heads: summary.heads,
    rollout: summary.rollout,
    patchArgmax: summary.patchArgmax,
    patchScore: summary.patchScore,
    legend: summary.legend,
    provider: summary.provider,
  };
}
