import type { ExplanationDto, ExtensionToWebviewMessage, HeadFusion, OverlayKind } from '../shared/protocol';
import { exportComposite, exportFileName } from './exportPng';
import { cellOf, patchAt, surfaceSize } from './geometry';
import { asExtensionMessage } from './messages';
import { hidePatchTooltip, showPatchTooltip } from './patchTooltip';
import { minMaxNormalize, OverlayPainter, type OverlayLayer, type Rgb } from './render';
import type { PersistedState } from './state';
import type { VsCodeApi } from './vscodeApi';
import { percent, roundedPercents } from './format';
import { el } from './dom';
import { type PanelView } from './view';
import { ZoomController } from './zoom';
import { legendSpec, type LegendOverlay } from '../shared/legendStrip';

/** Canvas backing-store cap: keeps a redraw of a 24-megapixel photo's heatmap well under a frame budget. */
const MAX_SURFACE_SIDE = 2048;

interface RolloutSettings {
  headFusion: HeadFusion;
  discardRatio: number;
}

interface PatchQuery {
  patch: number;
  layer: number;
  head: number | 'mean';
}

/** Heat overlays keep the raw values too: the tooltip shows a logit or a probability, not a 0..1 shade. */
interface HeatData {
  raw: Float32Array;
  values01: Float32Array;
}

/** Everything derived from the current explanation; replaced as a whole when a new one arrives. */
interface Current {
  explanation: ExplanationDto;
  labels: Map<number, string>;
  classColors: Map<number, Rgb>;
  rollout: RolloutSettings & HeatData;
  classHeatmap?: HeatData & { classIndex: number; label: string };
  patchAttention?: HeatData & PatchQuery;
}

/** What was asked for and not yet answered: replies to anything older are stale and dropped. */
interface Pending {
  rollout?: RolloutSettings;
  classIndex?: number;
  patch?: PatchQuery;
}

function sameRollout(a: RolloutSettings, b: RolloutSettings): boolean {
  return a.headFusion === b.headFusion && Math.abs(a.discardRatio - b.discardRatio) < 1e-9;
}

function samePatchQuery(a: PatchQuery, b: PatchQuery): boolean {
  return a.patch === b.patch && a.layer === b.layer && a.head === b.head;
}

function heat(values: ArrayLike<number>, alreadyScaled: boolean): HeatData {
  const raw = Float32Array.from(values);
  return { raw, values01: alreadyScaled ? raw.map((v) => Math.min(1, Math.max(0, v))) : minMaxNormalize(raw) };
}

export class ExplanationPanel {
  private current?: Current;
  /** Set by `loading`: only the explanation with this id may replace the current one. */
  private awaitedRequestId?: number;
  private pending: Pending = {};
  private selectedPatch?: number;
  private cursorPatch?: number;
  /** The patch the tooltip describes, so it can be rewritten when the overlay under it changes. */
  private tooltipAt?: { patch: number; anchor?: { x: number; y: number } };
  private frame = 0;
  private readonly painter: OverlayPainter;
  private readonly zoom: ZoomController;

  constructor(
    private readonly view: PanelView,
    private readonly api: VsCodeApi,
    private state: PersistedState,
  ) {
    this.painter = new OverlayPainter(view.canvas);
    this.zoom = new ZoomController(view);
    this.syncOverlayControls();
    this.bindControls();
    this.redraw();
  }

  /** Entry point for `window` message events; anything that is not a valid protocol message is dropped. */
  handleMessage(data: unknown): void {
    const patches = this.current ? this.current.explanation.grid ** 2 : undefined;
    const message = asExtensionMessage(data, patches);
    if (!message) {
      const type = typeof data === 'object' && data !== null ? String((data as { type?: unknown }).type) : typeof data;
      console.warn(`BEiT Lens: dropped a message the panel does not understand (type ${type})`);
      return;
    }
    this.dispatch(message);
  }

  private dispatch(message: ExtensionToWebviewMessage): void {
    switch (message.type) {
      case 'loading':
        this.awaitedRequestId = message.requestId;
        this.showEmptyState(undefined);
        this.view.root.setAttribute('aria-busy', 'true');
        this.setStatus(`Explaining ${message.image}…`);
        return;
      case 'explanation':
        if (this.awaitedRequestId !== undefined && message.explanation.requestId !== this.awaitedRequestId) return;
        this.showExplanation(message.explanation);
        return;
      case 'rollout':
        return this.onRollout(message);
      case 'classHeatmap':
        return this.onClassHeatmap(message);
      case 'patchAttention':
        return this.onPatchAttention(message);
      case 'error':
        if (message.requestId !== this.current?.explanation.requestId && message.requestId !== this.awaitedRequestId) return;
        // Pending requests stay pending: the next request of each kind replaces them, and until then
        // a late reply to an older one must still be dropped.
        this.view.root.setAttribute('aria-busy', 'false');
        this.setStatus(message.message, 'error');
        return;
      case 'modelUnavailable':
        if (message.requestId !== this.awaitedRequestId && message.requestId !== this.current?.explanation.requestId) return;
        this.view.root.setAttribute('aria-busy', 'false');
        this.setStatus('');
        this.showEmptyState(message);
        return;
      case 'exported':
        this.setStatus('');
        this.view.exportFile.textContent = message.file;
        this.view.exportDone.hidden = false;
        this.view.revealButton.focus();
        return;
    }
  }

  private isCurrent(requestId: number): boolean {
    return this.current !== undefined && requestId === this.current.explanation.requestId;
  }

  // ---- explanation ------------------------------------------------------------------------

  private showExplanation(explanation: ExplanationDto): void {
    const { view } = this;
    const labels = new Map<number, string>();
    for (const p of explanation.top) labels.set(p.index, p.label);
    for (const l of explanation.legend) labels.set(l.index, l.label);
    this.current = {
      explanation,
      labels,
      classColors: new Map(explanation.legend.map((l) => [l.index, l.color])),
      rollout: { headFusion: explanation.rollout.headFusion, discardRatio: explanation.rollout.discardRatio, ...heat(explanation.rollout.map, true) },
    };
    this.awaitedRequestId = undefined;
    this.pending = {};
    this.selectedPatch = undefined;
    this.cursorPatch = undefined;
    this.showPatchInfo(undefined);
    this.showEmptyState(undefined);
    view.exportDone.hidden = true;

    view.root.setAttribute('aria-busy', 'false');
    view.title.textContent = explanation.image.name;
    view.provider.textContent = explanation.provider ? `on ${explanation.provider}` : '';
    this.setStatus('');
    this.loadImage(explanation);
    this.fillRolloutControls(explanation.rollout);
    this.fillPatchControls(explanation);
    this.fillTopList(explanation);
    this.fillLegend(explanation);

    // A restored panel may come back on the class overlay: give it the top class to show.
    if (this.state.overlay === 'class') this.requestClass(explanation.top[0]?.index);
    this.redraw();
  }

  private loadImage(explanation: ExplanationDto): void {
    const { image, canvas, stage } = this.view;
    const size = surfaceSize(explanation.image.width, explanation.image.height, MAX_SURFACE_SIDE);
    canvas.width = size.width;
    canvas.height = size.height;
    // The stage keeps the image's aspect before (and if ever) the image loads, so the overlay never collapses.
    stage.style.aspectRatio = `${explanation.image.width} / ${explanation.image.height}`;
    this.zoom.setImage(explanation.image.width, explanation.image.height);
    // Webview resources come from another origin that answers with Access-Control-Allow-Origin: *;
    // asking for CORS keeps the export canvas untainted. Data URIs need (and allow) no such request.
    if (!explanation.image.src.startsWith('data:')) image.crossOrigin = 'anonymous';
    else image.removeAttribute('crossorigin');
    image.alt = explanation.image.name;
    image.src = explanation.image.src;
  }

  private fillRolloutControls(settings: RolloutSettings): void {
    this.view.headFusion.value = settings.headFusion;
    this.view.discardRatio.value = String(settings.discardRatio);
    this.view.discardRatioValue.textContent = settings.discardRatio.toFixed(2);
  }

  private fillPatchControls(explanation: ExplanationDto): void {
    const { layer, head } = this.view;
    layer.replaceChildren(...Array.from({ length: explanation.layers }, (_, i) => el('option', { value: i }, [`Layer ${i + 1}`])));
    // The last layer is where the patch tokens have mixed the most: the most telling default.
    layer.value = String(Math.max(0, explanation.layers - 1));
    head.replaceChildren(el('option', { value: 'mean' }, ['Mean of heads']), ...Array.from({ length: explanation.heads }, (_, i) => el('option', { value: i }, [`Head ${i + 1}`])));
    head.value = 'mean';
  }

  private fillTopList(explanation: ExplanationDto): void {
    this.view.topList.replaceChildren(
      ...explanation.top.map((p) => {
        const button = el('button', { type: 'button', class: 'label-button', 'data-class-index': p.index, 'aria-pressed': 'false' }, [el('span', { class: 'label' }, [p.label]), el('span', { class: 'score' }, [percent(p.score)])]);
        button.addEventListener('click', () => this.requestClass(p.index));
        return el('li', {}, [button]);
      }),
    );
  }

  private fillLegend(explanation: ExplanationDto): void {
    const shares = roundedPercents(explanation.legend.map((l) => l.share));
    this.view.legendList.replaceChildren(
      ...explanation.legend.map((entry, i) => {
        const swatch = el('span', { class: 'swatch', 'aria-hidden': 'true' });
        swatch.style.backgroundColor = `rgb(${entry.color.join(', ')})`;
        const button = el('button', { type: 'button', class: 'label-button', 'data-class-index': entry.index, 'aria-pressed': 'false', title: `${entry.patches} of ${explanation.grid ** 2} patches` }, [
          swatch,
          el('span', { class: 'label' }, [entry.label]),
          el('span', { class: 'share' }, [`${shares[i]}%`]),
        ]);
        button.addEventListener('click', () => this.requestClass(entry.index));
        return el('li', { 'data-class-index': entry.index }, [button]);
      }),
    );
  }

  // ---- requests and their replies ---------------------------------------------------------

  private requestRollout(): void {
    if (!this.current) return;
    const settings: RolloutSettings = { headFusion: this.view.headFusion.value as HeadFusion, discardRatio: Number(this.view.discardRatio.value) };
    this.pending.rollout = settings;
    this.api.postMessage({ type: 'setRollout', requestId: this.current.explanation.requestId, ...settings });
    this.setStatus('Computing attention rollout…');
    this.setOverlay('rollout');
  }

  private onRollout(reply: Extract<ExtensionToWebviewMessage, { type: 'rollout' }>): void {
    if (!this.current || !this.isCurrent(reply.requestId)) return;
    // A slider drag sends several requests; only the answer to the last one may be drawn.
    if (this.pending.rollout && !sameRollout(this.pending.rollout, reply)) return;
    this.pending.rollout = undefined;
    this.current.rollout = { headFusion: reply.headFusion, discardRatio: reply.discardRatio, ...heat(reply.map, true) };
    this.fillRolloutControls(reply);
    this.setStatus('');
    if (this.state.overlay === 'rollout') this.redraw();
  }

  private requestClass(classIndex: number | undefined): void {
    if (!this.current || classIndex === undefined) return;
    this.pending.classIndex = classIndex;
    this.api.postMessage({ type: 'selectClass', requestId: this.current.explanation.requestId, classIndex });
    this.setStatus(`Computing the heatmap of ${this.current.labels.get(classIndex) ?? `class ${classIndex}`}…`);
  }

  private onClassHeatmap(reply: Extract<ExtensionToWebviewMessage, { type: 'classHeatmap' }>): void {
    if (!this.current || !this.isCurrent(reply.requestId)) return;
    if (this.pending.classIndex !== undefined && this.pending.classIndex !== reply.classIndex) return;
    this.pending.classIndex = undefined;
    this.current.classHeatmap = { classIndex: reply.classIndex, label: reply.label, ...heat(reply.logits, false) };
    this.setStatus('');
    this.setOverlay('class');
  }

  private selectedHead(): number | 'mean' {
    const v = this.view.head.value;
    return v === 'mean' || v === '' ? 'mean' : Number(v);
  }

  private requestPatch(patch: number): void {
    if (!this.current) return;
    const query: PatchQuery = { patch, layer: Number(this.view.layer.value) || 0, head: this.selectedHead() };
    this.selectedPatch = patch;
    this.pending.patch = query;
    this.api.postMessage({ type: 'selectPatch', requestId: this.current.explanation.requestId, ...query });
    const { row, col } = cellOf(patch, this.current.explanation.grid);
    this.setStatus(`Computing attention from patch ${patch} (row ${row}, col ${col})…`);
  }

  private onPatchAttention(reply: Extract<ExtensionToWebviewMessage, { type: 'patchAttention' }>): void {
    if (!this.current || !this.isCurrent(reply.requestId)) return;
    if (this.pending.patch && !samePatchQuery(this.pending.patch, reply)) return;
    if (reply.patch >= this.current.explanation.grid ** 2) return;
    this.pending.patch = undefined;
    this.current.patchAttention = { patch: reply.patch, layer: reply.layer, head: reply.head, ...heat(reply.map, false) };
    this.selectedPatch = reply.patch;
    this.setStatus('');
    this.setOverlay('patchAttention');
  }

  // ---- overlay and drawing ----------------------------------------------------------------

  private setOverlay(kind: OverlayKind): void {
    const changed = kind !== this.state.overlay;
    this.state = { ...this.state, overlay: kind };
    this.syncOverlayControls();
    this.syncPressedLabel();
    if (kind === 'class' && this.current && !this.current.classHeatmap && this.pending.classIndex === undefined) {
      this.requestClass(this.current.explanation.top[0]?.index);
    }
    this.redraw();
    if (changed) this.persist(true);
  }

  /**
   * A label is pressed only while its class heatmap is the overlay on show: after switching to
   * another overlay no label stays highlighted, and switching back shows which class it is again.
   */
  private syncPressedLabel(): void {
    const shown = this.state.overlay === 'class' ? this.current?.classHeatmap?.classIndex : undefined;
    for (const button of this.view.root.querySelectorAll<HTMLElement>('.label-button')) {
      button.setAttribute('aria-pressed', String(shown !== undefined && button.dataset.classIndex === String(shown)));
    }
  }

  /**
   * Without a model there is nothing to control: the controls give way to what can fix it. The
   * message says what went wrong (from the extension); the buttons run the recovery commands.
   */
  private showEmptyState(problem: { reason: 'noModel' | 'failed'; message: string } | undefined): void {
    const v = this.view;
    v.emptyState.hidden = problem === undefined;
    v.layout.hidden = problem !== undefined;
    if (!problem) return;
    this.current = undefined;
    v.title.textContent = 'BEiT Lens';
    v.provider.textContent = '';
    v.emptyTitle.textContent = problem.reason === 'failed' ? 'The model could not be loaded' : 'No model to explain with';
    v.emptyMessage.textContent = problem.message;
  }

  private layerFor(kind: OverlayKind): OverlayLayer {
    const c = this.current;
    if (!c) return { kind: 'empty' };
    const grid = c.explanation.grid;
    switch (kind) {
      case 'rollout':
        return { kind: 'heat', grid, values01: c.rollout.values01 };
      case 'patches':
        return { kind: 'classes', grid, argmax: c.explanation.patchArgmax, colorOf: (cls) => c.classColors.get(cls) };
      case 'class':
        return c.classHeatmap ? { kind: 'heat', grid, values01: c.classHeatmap.values01 } : { kind: 'empty' };
      case 'patchAttention':
        return c.patchAttention ? { kind: 'heat', grid, values01: c.patchAttention.values01 } : { kind: 'empty' };
      case 'none':
        return { kind: 'empty' };
    }
  }

  private redraw(): void {
    const { canvas } = this.view;
    const kind = this.state.overlay;
    const layer = this.layerFor(kind);
    // Outline the patch the drawn map belongs to, not a newer click whose answer is still pending.
    const shown = kind === 'patchAttention' ? this.current?.patchAttention : undefined;
    const highlight = shown && this.current ? { patch: shown.patch, grid: this.current.explanation.grid, color: getComputedStyle(canvas).color } : undefined;
    this.painter.draw(layer, this.state.opacity, highlight);
    canvas.dataset.overlay = kind;
    canvas.dataset.frame = String(++this.frame);
    canvas.setAttribute('aria-label', this.describeOverlay(kind));
    this.view.scaleCaption.textContent = this.scaleCaption(kind);
    this.view.stage.closest('.stage-column')?.classList.toggle('categorical', layer.kind !== 'heat');
    this.view.patchHint.hidden = kind === 'patchAttention' && this.current?.patchAttention !== undefined;
    // A tooltip still open over the image describes the overlay that was drawn before (say, the
    // rollout value after a click switched to attention from that patch): rewrite it.
    if (this.tooltipAt) this.showPatchInfo(this.tooltipAt.patch, this.tooltipAt.anchor);
  }

  private describeOverlay(kind: OverlayKind): string {
    const c = this.current;
    if (!c) return 'No explanation yet';
    const name = c.explanation.image.name;
    switch (kind) {
      case 'rollout':
        return `${name}: attention rollout, ${c.rollout.headFusion} head fusion, discard ratio ${c.rollout.discardRatio.toFixed(2)}`;
      case 'patches':
        return `${name}: patch predictions, ${c.explanation.legend.length} classes (see the legend)`;
      case 'class':
        return c.classHeatmap ? `${name}: class heatmap of ${c.classHeatmap.label}` : `${name}: choose a label for its class heatmap`;
      case 'patchAttention':
        return c.patchAttention ? `${name}: attention from patch ${c.patchAttention.patch}` : `${name}: choose a patch to see where it attends`;
      case 'none':
        return name;
    }
  }

  private scaleCaption(kind: OverlayKind): string {
    const c = this.current;
    if (!c) return '';
    if (kind === 'rollout') return `rollout, relative to the most attended patch (${c.rollout.headFusion}, discard ${c.rollout.discardRatio.toFixed(2)})`;
    if (kind === 'class' && c.classHeatmap) return `logits of ${c.classHeatmap.label}, min–max scaled`;
    if (kind === 'patchAttention' && c.patchAttention) {
      const head = c.patchAttention.head === 'mean' ? 'mean of heads' : `head ${c.patchAttention.head + 1}`;
      return `attention of patch ${c.patchAttention.patch}, layer ${c.patchAttention.layer + 1}, ${head}, min–max scaled`;
    }
    return '';
  }

  // ---- patch hover, click and keyboard ------------------------------------------------------

  private patchFromPointer(event: MouseEvent): number | undefined {
    if (!this.current) return undefined;
    const rect = this.view.canvas.getBoundingClientRect();
    return patchAt(event.clientX - rect.left, event.clientY - rect.top, rect.width, rect.height, this.current.explanation.grid)?.index;
  }

  private showPatchInfo(patch: number | undefined, anchor?: { x: number; y: number }): void {
    const c = this.current;
    if (!c || patch === undefined) {
      this.tooltipAt = undefined;
      hidePatchTooltip(this.view);
      return;
    }
    this.tooltipAt = { patch, anchor };
    const grid = c.explanation.grid;
    const cell = cellOf(patch, grid);
    const cls = c.explanation.patchArgmax[patch];
    const lines = [`Patch ${patch} (row ${cell.row}, col ${cell.col}; token ${c.explanation.leadingTokens + patch})`, `${c.labels.get(cls) ?? `class ${cls}`}: ${percent(c.explanation.patchScore[patch])}`];
    const value = this.overlayValueAt(patch);
    if (value) lines.push(value);
    showPatchTooltip(this.view, cell, grid, lines, anchor);
  }

  private overlayValueAt(patch: number): string | undefined {
    const c = this.current;
    if (!c) return undefined;
    switch (this.state.overlay) {
      case 'rollout':
        return `Rollout ${c.rollout.raw[patch].toFixed(3)}`;
      case 'class':
        return c.classHeatmap ? `Logit of ${c.classHeatmap.label}: ${c.classHeatmap.raw[patch].toFixed(3)}` : undefined;
      case 'patchAttention':
        return c.patchAttention ? `Attention from patch ${c.patchAttention.patch}: ${c.patchAttention.raw[patch].toFixed(4)}` : undefined;
      default:
        return undefined;
    }
  }

  private onKey(event: KeyboardEvent): void {
    const c = this.current;
    if (!c) return;
    const grid = c.explanation.grid;
    const start = this.cursorPatch ?? this.selectedPatch ?? Math.floor(grid / 2) * grid + Math.floor(grid / 2);
    const { row, col } = cellOf(start, grid);
    const moves: Record<string, [number, number]> = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    const move = moves[event.key];
    if (move) {
      const r = Math.min(grid - 1, Math.max(0, row + move[0]));
      const k = Math.min(grid - 1, Math.max(0, col + move[1]));
      this.cursorPatch = r * grid + k;
      this.showPatchInfo(this.cursorPatch);
    } else if (event.key === 'Enter' || event.key === ' ') {
      this.cursorPatch = start;
      this.requestPatch(start);
    } else if (event.key === 'Escape') {
      this.showPatchInfo(undefined);
      return;
    } else {
      return;
    }
    event.preventDefault();
  }

  // ---- controls, persistence, export ---------------------------------------------------------

  private bindControls(): void {
    const v = this.view;
    for (const [kind, radio] of v.overlayRadios) radio.addEventListener('change', () => radio.checked && this.setOverlay(kind));
    v.opacity.addEventListener('input', () => {
      this.state = { ...this.state, opacity: Number(v.opacity.value) / 100 };
      this.syncOverlayControls();
      this.redraw();
      this.persist(false);
    });
    // `change` fires once the user lets go, so the extension hears about a drag once, not per pixel.
    v.opacity.addEventListener('change', () => this.persist(true));
    v.headFusion.addEventListener('change', () => this.requestRollout());
    v.discardRatio.addEventListener('input', () => (v.discardRatioValue.textContent = Number(v.discardRatio.value).toFixed(2)));
    v.discardRatio.addEventListener('change', () => this.requestRollout());
    const requery = (): void => {
      if (this.selectedPatch !== undefined) this.requestPatch(this.selectedPatch);
    };
    v.layer.addEventListener('change', requery);
    v.head.addEventListener('change', requery);

    v.canvas.addEventListener('mousemove', (e) => this.showPatchInfo(this.patchFromPointer(e), { x: e.clientX, y: e.clientY }));
    v.canvas.addEventListener('mouseleave', () => this.showPatchInfo(undefined));
    v.canvas.addEventListener('click', (e) => {
      const patch = this.patchFromPointer(e);
      if (patch !== undefined) this.requestPatch(patch);
    });
    v.canvas.addEventListener('keydown', (e) => this.onKey(e));
    v.canvas.addEventListener('blur', () => this.showPatchInfo(undefined));
    v.exportButton.addEventListener('click', () => this.exportPng());
    v.revealButton.addEventListener('click', () => this.api.postMessage({ type: 'revealExport' }));
    v.findSimilarButton.addEventListener('click', () => this.api.postMessage({ type: 'findSimilar' }));
    for (const [command, button] of v.recoveryButtons) button.addEventListener('click', () => this.api.postMessage({ type: 'runCommand', command }));
  }

  private syncOverlayControls(): void {
    const v = this.view;
    for (const [kind, radio] of v.overlayRadios) radio.checked = kind === this.state.overlay;
    v.opacity.value = String(Math.round(this.state.opacity * 100));
    v.opacityValue.textContent = percent(this.state.opacity, 0);
  }

  /** Always saves for reloads; tells the extension only when asked, so slider drags are not chatty. */
  private persist(notifyHost: boolean): void {
    this.api.setState(this.state);
    if (notifyHost) this.api.postMessage({ type: 'state', overlay: this.state.overlay, opacity: this.state.opacity });
  }

  private exportPng(): void {
    const c = this.current;
    if (!c) return;
    const result = exportComposite(this.view.image, this.view.canvas, legendSpec(this.legendOverlay(), c.explanation.top[0], this.state.opacity));
    if (!result.ok) {
      this.setStatus(result.error, 'error');
      return;
    }
    this.api.postMessage({ type: 'exportPng', dataUrl: result.dataUrl, suggestedName: exportFileName(c.explanation.image.name, this.state.overlay) });
    this.setStatus('Exporting…');
  }

  /** What the export's legend strip describes: the overlay drawn, or none when it has no data yet. */
  private legendOverlay(): LegendOverlay {
    const c = this.current;
    if (!c) return { kind: 'none' };
    switch (this.state.overlay) {
      case 'rollout':
        return { kind: 'rollout', headFusion: c.rollout.headFusion, discardRatio: c.rollout.discardRatio };
      case 'patches':
        return { kind: 'patches', entries: c.explanation.legend.map((l) => ({ label: l.label, color: l.color })) };
      case 'class':
        return c.classHeatmap ? { kind: 'class', label: c.classHeatmap.label } : { kind: 'none' };
      case 'patchAttention':
        return c.patchAttention ? { kind: 'patchAttention', patch: c.patchAttention.patch, layer: c.patchAttention.layer, head: c.patchAttention.head } : { kind: 'none' };
      case 'none':
        return { kind: 'none' };
    }
  }

  private setStatus(text: string, kind: 'info' | 'error' = 'info'): void {
    this.view.status.textContent = text;
    this.view.status.dataset.kind = kind;
    this.view.status.hidden = text === '';
  }
}
