import { classColor } from '../../shared/palette';
import type { DatasetHostMessage, DatasetViewMessage, MapMethod, MapPointsDto } from '../../shared/protocol';
import { el } from '../dom';

/**
 * The dataset view's Map tab: a 2-D scatter of the scan's embeddings, PCA at once and UMAP when the worker has
 * it, drawn into one canvas from an ImageData (100,000 points are 100,000 pixel squares, never DOM nodes).
 * Wheel zooms about the pointer, dragging pans; Box and Lasso select points, and the selection restricts the
 * table (the extension applies it as the table's row filter and the table shows a "Map selection (N) ×" chip).
 * Hover shows the image's thumbnail (the table's thumbnail request) and path.
 */

type Tool = 'pan' | 'box' | 'lasso';
type Maybe<T> = T | undefined;

/** Categories beyond this many share the "other" grey; more distinct hues would not be told apart. */
const MAX_COLOURS = 20;
const OTHER: readonly [number, number, number] = [128, 128, 128];
/** Side of a point's square, in CSS pixels: bigger while few points leave room, down to 2 px for 100,000. */
function pointSize(points: number): number {
  return points <= 2_000 ? 5 : points <= 20_000 ? 3 : 2;
}
/** How near (CSS px) the pointer must be to a point for its hover card. */
const HOVER_RADIUS = 6;
/** Pointer travel (CSS px) before a press counts as a drag. */
const DRAG_THRESHOLD = 3;
const DIMMED_ALPHA = 50;
const MAX_THUMBNAILS = 500;

export interface MapTabDeps {
  post(message: DatasetViewMessage): void;
  /** The table generation the view shows (row ids belong to it). */
  generation(): number;
  /** The host applied (or cleared) a map selection: the table's rows changed, ask again. */
  onTableRestricted(count: number): void;
  /** Where the table shows its "Map selection (N) ×" chip. */
  chipParent: HTMLElement;
}

interface MapElements {
  status: HTMLElement;
  progress: HTMLProgressElement;
  cancel: HTMLButtonElement;
  recompute: HTMLButtonElement;
  colourBy: HTMLSelectElement;
  tools: Record<Tool, HTMLButtonElement>;
  resetView: HTMLButtonElement;
  stage: HTMLElement;
  canvas: HTMLCanvasElement;
  legend: HTMLElement;
  hover: HTMLElement;
  hoverImage: HTMLImageElement;
  hoverPath: HTMLElement;
  selectionText: HTMLElement;
  clearSelection: HTMLButtonElement;
  chip: HTMLButtonElement;
}

export class MapTab {
  private readonly els: MapElements;
  private map?: MapPointsDto;
  /** The generation `map` belongs to; a new scan makes it stale. */
  private mapGeneration = -1;
  private requestId = 0;
  private running = false;
  private tool: Tool = 'pan';
  /** Data -> CSS px: x' = x * scale + tx, y' = -y * scale + ty (y up, as in a plot). */
  private view = { scale: 1, tx: 0, ty: 0 };
  private colours = new Uint8ClampedArray(0);
  /** Point indices (into map.rows) that are selected; empty: no selection. */
  private selected = new Set<number>();
  private layer?: ImageData;
  private drag?: { x: number; y: number; tx: number; ty: number; moved: boolean; path: Array<[number, number]>; pointer: number };
  private hovered = -1;
  private readonly thumbnails = new Map<number, string>();
  private frame = 0;
  private visible = false;

  constructor(
    panel: HTMLElement,
    private readonly deps: MapTabDeps,
  ) {
    this.els = buildMapDom(panel, deps.chipParent);
    const e = this.els;
    e.cancel.addEventListener('click', () => this.cancel());
    e.recompute.addEventListener('click', () => this.request());
    e.colourBy.addEventListener('change', () => this.recolour());
    for (const tool of Object.keys(e.tools) as Tool[]) e.tools[tool].addEventListener('click', () => this.setTool(tool));
    e.resetView.addEventListener('click', () => this.fit());
    e.chip.addEventListener('click', () => this.clearSelection());
    e.clearSelection.addEventListener('click', () => this.clearSelection());
    e.canvas.addEventListener('wheel', (event) => this.onWheel(event), { passive: false });
    e.canvas.addEventListener('pointerdown', (event) => this.onPointerDown(event));
    e.canvas.addEventListener('pointermove', (event) => this.onPointerMove(event));
    e.canvas.addEventListener('pointerup', (event) => this.onPointerUp(event));
    e.canvas.addEventListener('pointercancel', () => (this.drag = undefined));
    e.canvas.addEventListener('pointerleave', () => this.setHovered(-1));
    new ResizeObserver(() => this.visible && this.resize()).observe(e.stage);
  }

  /** The tab was shown or hidden: a shown map sizes itself and asks for points if it has none for this scan. */
  setVisible(visible: boolean): void {
    this.visible = visible;
    if (!visible) return this.setHovered(-1);
    this.resize();
    if (!this.running && this.mapGeneration !== this.deps.generation() && this.deps.generation() >= 0) this.request();
  }

  /** A new scan's table: row ids changed, so the points, selection and thumbnails are stale. */
  reset(): void {
    if (this.running) this.cancel();
    this.map = undefined;
    this.mapGeneration = -1;
    this.selected.clear();
    this.thumbnails.clear();
    this.layer = undefined;
    this.setHovered(-1);
    this.showChip(0);
    this.setStatus('');
    this.renderLegend();
    this.draw();
    if (this.visible) this.request();
  }

  /** Messages for the map (and thumbnails, which it shares with the table). */
  handle(m: DatasetHostMessage): void {
    switch (m.type) {
      case 'mapProgress': {
        if (m.requestId !== this.requestId || m.generation !== this.deps.generation()) return;
        const what = m.phase === 'pca' ? 'PCA' : m.phase === 'neighbours' ? 'UMAP: finding neighbours' : 'UMAP: laying out';
        this.els.progress.hidden = false;
        if (m.phase === 'layout' && m.total > 0) {
          this.els.progress.value = m.done / m.total;
          this.setStatus(`${this.methodText()}${what} ${Math.round((100 * m.done) / m.total)}%`);
        } else {
          this.els.progress.removeAttribute('value');
          this.setStatus(`${this.methodText()}${what}…`);
        }
        return;
      }
      case 'mapPoints':
        if (m.requestId !== this.requestId || m.generation !== this.deps.generation()) return;
        return this.show(m.map, m.generation);
      case 'mapEnded':
        if (m.requestId !== this.requestId) return;
        this.setRunning(false);
        if (m.status === 'failed') this.setStatus(m.message ?? 'The map could not be computed', 'error');
        else if (m.status === 'cancelled') this.setStatus(this.map ? `${this.methodText()}UMAP cancelled` : 'Cancelled');
        else this.setStatus(this.methodText().replace(/ · $/, ''));
        return;
      case 'mapSelection':
        if (m.generation !== this.deps.generation()) return;
        this.showChip(m.count);
        this.deps.onTableRestricted(m.count);
        return;
      case 'thumbnail':
        if (m.generation !== this.deps.generation()) return;
        this.thumbnails.set(m.row, m.src);
        if (this.thumbnails.size > MAX_THUMBNAILS) this.thumbnails.delete(this.thumbnails.keys().next().value as number);
        if (this.hovered >= 0 && this.map?.rows[this.hovered] === m.row) this.renderHover();
        return;
      default:
        return;
    }
  }

  // ---- requests --------------------------------------------------------------------------------

  private request(): void {
    const generation = this.deps.generation();
    if (generation < 0) return;
    // A new request supersedes the old: the host cancels it, and its late replies carry the old id.
    this.requestId++;
    this.setRunning(true);
    this.setStatus('Computing the map…');
    this.deps.post({ type: 'map', requestId: this.requestId, generation });
  }

  private cancel(): void {
    if (!this.running) return;
    this.deps.post({ type: 'cancelMap', requestId: this.requestId });
  }

  private setRunning(running: boolean): void {
    this.running = running;
    this.els.cancel.hidden = !running;
    this.els.progress.hidden = !running;
  }

  private show(map: MapPointsDto, generation: number): void {
    const sameRows = this.map && this.map.rows.length === map.rows.length && this.map.rows.every((r, i) => r === map.rows[i]);
    if (!sameRows) this.selected.clear();
    this.map = map;
    this.mapGeneration = generation;
    this.els.stage.dataset.method = map.method;
    this.els.stage.dataset.points = String(map.rows.length);
    const previous = this.els.colourBy.value;
    this.els.colourBy.replaceChildren(...map.colourings.map((c) => el('option', { value: c.key }, [c.title])));
    if (map.colourings.some((c) => c.key === previous)) this.els.colourBy.value = previous;
    this.els.colourBy.disabled = map.colourings.length === 0;
    this.setStatus(`${this.methodText()}${map.method === 'pca' ? 'UMAP computing…' : ''}`);
    this.computeColours();
    this.renderLegend();
    this.fit();
  }

  private methodText(): string {
    if (!this.map) return '';
    const n = this.map.rows.length.toLocaleString('en');
    return `${n} points · ${methodName(this.map.method)} · `;
  }

  // ---- colours ----------------------------------------------------------------------------------

  private recolour(): void {
    this.computeColours();
    this.renderLegend();
    this.paint();
  }

  private colouring(): Maybe<MapPointsDto['colourings'][number]> {
    return this.map?.colourings.find((c) => c.key === this.els.colourBy.value) ?? this.map?.colourings[0];
  }

  /** Colours by frequency rank: the commonest categories get the most distinct hues (palette.ts's classColor). */
  private categoryRanks(): Maybe<{ ranks: Int32Array; counts: number[]; order: number[] }> {
    const c = this.colouring();
    if (!c) return undefined;
    const counts = new Array<number>(c.names.length).fill(0);
    for (const v of c.values) if (v >= 0) counts[v]++;
    const order = counts.map((_, i) => i).sort((a, b) => counts[b] - counts[a] || a - b);
    const ranks = new Int32Array(c.names.length);
    order.forEach((category, rank) => (ranks[category] = rank));
    return { ranks, counts, order };
  }

  private computeColours(): void {
    const map = this.map;
    if (!map) return;
    const n = map.rows.length;
    this.colours = new Uint8ClampedArray(n * 3);
    const c = this.colouring();
    const info = this.categoryRanks();
    for (let i = 0; i < n; i++) {
      const v = c ? c.values[i] : -1;
      const rank = v >= 0 && info ? info.ranks[v] : -1;
      const rgb = rank >= 0 && rank < MAX_COLOURS ? classColor(rank) : OTHER;
      this.colours.set(rgb, i * 3);
    }
  }

  private renderLegend(): void {
    const c = this.colouring();
    const info = this.categoryRanks();
    if (!c || !info) return this.els.legend.replaceChildren();
    const items = info.order.filter((k) => info.counts[k] > 0).slice(0, MAX_COLOURS);
    const rest = info.order.slice(MAX_COLOURS).reduce((n, k) => n + info.counts[k], 0) + c.values.filter((v) => v < 0).length;
    // Through the CSSOM: the view's CSP refuses style attributes.
    const swatch = (rgb: readonly number[]) => {
      const span = el('span', { class: 'map-swatch' });
      span.style.background = `rgb(${rgb.join(',')})`;
      return span;
    };
    const entries = items.map((k) => el('li', { title: c.names[k] }, [swatch(classColor(info.ranks[k])), el('span', { class: 'map-legend-name' }, [c.names[k]]), el('span', { class: 'muted' }, [String(info.counts[k])])]));
    if (rest > 0) entries.push(el('li', {}, [swatch(OTHER), el('span', { class: 'map-legend-name' }, ['other']), el('span', { class: 'muted' }, [String(rest)])]));
    this.els.legend.replaceChildren(el('h3', {}, [c.title]), el('ul', {}, entries));
  }

  // ---- view ---------------------------------------------------------------------------------------

  private resize(): void {
    const { canvas, stage } = this.els;
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(stage.clientWidth * dpr));
    const h = Math.max(1, Math.round(stage.clientHeight * dpr));
    if (canvas.width === w && canvas.height === h) return;
    const fitted = this.layer === undefined;
    canvas.width = w;
    canvas.height = h;
    if (fitted) this.fit();
    else this.paint();
  }

  /** The whole map in view, with a margin. */
  private fit(): void {
    const map = this.map;
    const { clientWidth: w, clientHeight: h } = this.els.stage;
    if (!map || map.rows.length === 0 || w === 0 || h === 0) return this.paint();
    let minX = Infinity;
    let maxX = -Infinity;
    let minY = Infinity;
    let maxY = -Infinity;
    for (let i = 0; i < map.rows.length; i++) {
      const x = map.points[2 * i];
      const y = map.points[2 * i + 1];
      if (x < minX) minX = x;
      if (x > maxX) maxX = x;
      if (y < minY) minY = y;
      if (y > maxY) maxY = y;
    }
    const margin = 16;
    const scale = Math.min((w - 2 * margin) / Math.max(maxX - minX, 1e-9), (h - 2 * margin) / Math.max(maxY - minY, 1e-9));
    this.view = { scale, tx: w / 2 - ((minX + maxX) / 2) * scale, ty: h / 2 + ((minY + maxY) / 2) * scale };
    this.paint();
  }

  private toScreen(i: number): [number, number] {
    const p = this.map!.points;
    return [p[2 * i] * this.view.scale + this.view.tx, -p[2 * i + 1] * this.view.scale + this.view.ty];
  }

  /** Redraws the point layer (on the next frame). */
  private paint(): void {
    this.layer = undefined;
    this.draw();
  }

  private draw(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.drawNow();
    });
  }

  private drawNow(): void {
    const { canvas } = this.els;
    const ctx = canvas.getContext('2d');
    if (!ctx) return;
    const map = this.map;
    if (!map) return ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (!this.layer || this.layer.width !== canvas.width || this.layer.height !== canvas.height) this.layer = this.rasterise(canvas.width, canvas.height);
    ctx.putImageData(this.layer, 0, 0);
    const dpr = window.devicePixelRatio || 1;
    ctx.save();
    ctx.scale(dpr, dpr);
    const fg = getComputedStyle(this.els.stage).color || '#ccc';
    if (this.hovered >= 0) {
      const [x, y] = this.toScreen(this.hovered);
      ctx.strokeStyle = fg;
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.arc(x, y, 5, 0, 2 * Math.PI);
      ctx.stroke();
    }
    const drag = this.drag;
    if (drag?.moved && this.tool !== 'pan' && drag.path.length > 1) {
      ctx.strokeStyle = fg;
      ctx.setLineDash([4, 3]);
      ctx.lineWidth = 1;
      ctx.beginPath();
      if (this.tool === 'box') {
        const [x1, y1] = drag.path[drag.path.length - 1];
        ctx.rect(drag.x, drag.y, x1 - drag.x, y1 - drag.y);
      } else {
        drag.path.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
        ctx.closePath();
      }
      ctx.stroke();
    }
    ctx.restore();
  }

  /** The points as pixels; with a selection, the rest are faded and the selected drawn last (on top). */
  private rasterise(width: number, height: number): ImageData {
    const map = this.map!;
    const image = new ImageData(width, height);
    const data = image.data;
    const dpr = window.devicePixelRatio || 1;
    const side = Math.max(1, Math.round(pointSize(map.rows.length) * dpr));
    const half = Math.floor(side / 2);
    const { scale, tx, ty } = this.view;
    const selecting = this.selected.size > 0;
    const plot = (i: number, alpha: number) => {
      const cx = Math.round((map.points[2 * i] * scale + tx) * dpr) - half;
      const cy = Math.round((-map.points[2 * i + 1] * scale + ty) * dpr) - half;
      if (cx + side <= 0 || cy + side <= 0 || cx >= width || cy >= height) return;
      const r = this.colours[3 * i];
      const g = this.colours[3 * i + 1];
      const b = this.colours[3 * i + 2];
      for (let y = Math.max(0, cy); y < Math.min(height, cy + side); y++) {
        let o = (y * width + Math.max(0, cx)) * 4;
        for (let x = Math.max(0, cx); x < Math.min(width, cx + side); x++, o += 4) {
          data[o] = r;
          data[o + 1] = g;
          data[o + 2] = b;
          data[o + 3] = alpha;
        }
      }
    };
    for (let i = 0; i < map.rows.length; i++) if (!selecting || !this.selected.has(i)) plot(i, selecting ? DIMMED_ALPHA : 255);
    if (selecting) for (const i of this.selected) plot(i, 255);
    return image;
  }

  // ---- interaction -------------------------------------------------------------------------------

  private setTool(tool: Tool): void {
    this.tool = tool;
    for (const t of Object.keys(this.els.tools) as Tool[]) this.els.tools[t].setAttribute('aria-pressed', String(t === tool));
    this.els.canvas.dataset.tool = tool;
  }

  private local(event: MouseEvent): [number, number] {
    const rect = this.els.canvas.getBoundingClientRect();
    return [event.clientX - rect.left, event.clientY - rect.top];
  }

  private onWheel(event: WheelEvent): void {
    if (!this.map) return;
    event.preventDefault();
    const [x, y] = this.local(event);
    const factor = Math.exp(-event.deltaY * 0.0015);
    const { scale, tx, ty } = this.view;
    this.view = { scale: scale * factor, tx: x - (x - tx) * factor, ty: y - (y - ty) * factor };
    this.paint();
  }

  private onPointerDown(event: PointerEvent): void {
    if (!this.map || event.button !== 0) return;
    const [x, y] = this.local(event);
    this.els.canvas.setPointerCapture(event.pointerId);
    this.drag = { x, y, tx: this.view.tx, ty: this.view.ty, moved: false, path: [[x, y]], pointer: event.pointerId };
    this.setHovered(-1);
  }

  private onPointerMove(event: PointerEvent): void {
    const [x, y] = this.local(event);
    const drag = this.drag;
    if (!drag) return this.hoverAt(x, y);
    if (!drag.moved && Math.hypot(x - drag.x, y - drag.y) < DRAG_THRESHOLD) return;
    drag.moved = true;
    if (this.tool === 'pan') {
      this.view = { ...this.view, tx: drag.tx + x - drag.x, ty: drag.ty + y - drag.y };
      return this.paint();
    }
    drag.path.push([x, y]);
    this.draw();
  }

  private onPointerUp(event: PointerEvent): void {
    const drag = this.drag;
    this.drag = undefined;
    if (!drag || !this.map) return;
    if (this.els.canvas.hasPointerCapture(event.pointerId)) this.els.canvas.releasePointerCapture(event.pointerId);
    if (!drag.moved || this.tool === 'pan') return this.draw();
    const [x1, y1] = this.local(event);
    drag.path.push([x1, y1]);
    const inside = this.tool === 'box' ? boxTest(drag.x, drag.y, x1, y1) : lassoTest(drag.path);
    const picked = new Set<number>();
    for (let i = 0; i < this.map.rows.length; i++) {
      const [sx, sy] = this.toScreen(i);
      if (inside(sx, sy)) picked.add(i);
    }
    if (picked.size === 0) return this.draw();
    this.selected = picked;
    this.paint();
    this.deps.post({ type: 'mapSelection', generation: this.deps.generation(), rows: [...picked].map((i) => this.map!.rows[i]) });
  }

  private clearSelection(): void {
    this.selected.clear();
    this.paint();
    this.deps.post({ type: 'mapSelection', generation: this.deps.generation(), rows: null });
  }

  /** The selection as the host applied it: the table's chip, and the count and Clear button on the map. */
  private showChip(count: number): void {
    this.els.chip.hidden = count === 0;
    this.els.chip.textContent = `Map selection (${count.toLocaleString('en')}) ×`;
    this.els.clearSelection.hidden = count === 0;
    this.els.selectionText.textContent = count === 0 ? '' : `${count.toLocaleString('en')} selected; the table shows only these`;
    if (count === 0 && this.selected.size > 0) {
      this.selected.clear();
      this.paint();
    }
  }

  /** The nearest point within HOVER_RADIUS (a scan of every point: about a millisecond for 100,000). */
  private hoverAt(x: number, y: number): void {
    const map = this.map;
    if (!map) return;
    let best = -1;
    let bestDistance = HOVER_RADIUS * HOVER_RADIUS;
    const { scale, tx, ty } = this.view;
    for (let i = 0; i < map.rows.length; i++) {
      const dx = map.points[2 * i] * scale + tx - x;
      const dy = -map.points[2 * i + 1] * scale + ty - y;
      const d = dx * dx + dy * dy;
      if (d <= bestDistance) [best, bestDistance] = [i, d];
    }
    this.setHovered(best);
  }

  private setHovered(i: number): void {
    if (i === this.hovered) return;
    this.hovered = i;
    this.renderHover();
    this.draw();
    if (i < 0 || !this.map) return;
    const row = this.map.rows[i];
    if (!this.thumbnails.has(row)) this.deps.post({ type: 'thumbnails', generation: this.deps.generation(), rows: [row] });
  }

  private renderHover(): void {
    const { hover, hoverImage, hoverPath, stage } = this.els;
    const map = this.map;
    if (this.hovered < 0 || !map) {
      hover.hidden = true;
      return;
    }
    const row = map.rows[this.hovered];
    const src = this.thumbnails.get(row);
    hoverImage.hidden = !src;
    if (src) hoverImage.src = src;
    hoverPath.textContent = map.paths[this.hovered] ?? '';
    const c = this.colouring();
    const v = c?.values[this.hovered] ?? -1;
    hover.dataset.row = String(row);
    hover.title = c && v >= 0 ? `${c.title}: ${c.names[v]}` : '';
    hover.hidden = false;
    const [x, y] = this.toScreen(this.hovered);
    // Beside the point, flipped to stay inside the stage.
    const left = x + 12 + hover.offsetWidth > stage.clientWidth ? x - 12 - hover.offsetWidth : x + 12;
    const top = y + 12 + hover.offsetHeight > stage.clientHeight ? y - 12 - hover.offsetHeight : y + 12;
    hover.style.left = `${Math.max(0, left)}px`;
    hover.style.top = `${Math.max(0, top)}px`;
  }

  private setStatus(text: string, kind?: 'error'): void {
    this.els.status.textContent = text;
    this.els.status.classList.toggle('error-text', kind === 'error');
  }
}

function methodName(method: MapMethod): string {
  return method === 'pca' ? 'PCA' : 'UMAP';
}

function boxTest(x0: number, y0: number, x1: number, y1: number): (x: number, y: number) => boolean {
  const [left, right] = x0 < x1 ? [x0, x1] : [x1, x0];
  const [top, bottom] = y0 < y1 ? [y0, y1] : [y1, y0];
  return (x, y) => x >= left && x <= right && y >= top && y <= bottom;
}

/** Even-odd rule over the closed lasso path. */
function lassoTest(path: Array<[number, number]>): (x: number, y: number) => boolean {
  return (x, y) => {
    let inside = false;
    for (let i = 0, j = path.length - 1; i < path.length; j = i++) {
      const [xi, yi] = path[i];
      const [xj, yj] = path[j];
      if (yi > y !== yj > y && x < ((xj - xi) * (y - yi)) / (yj - yi) + xi) inside = !inside;
    }
    return inside;
  };
}

function buildMapDom(panel: HTMLElement, chipParent: HTMLElement): MapElements {
  const status = el('span', { id: 'map-status', class: 'map-status', role: 'status' });
  const progress = el('progress', { id: 'map-progress', max: 1, 'aria-label': 'Map progress', hidden: true });
  const cancel = el('button', { id: 'map-cancel', type: 'button', hidden: true }, ['Cancel']);
  const recompute = el('button', { id: 'map-recompute', type: 'button', title: 'Compute the map again (after a re-scan)' }, ['Recompute']);
  const colourBy = el('select', { id: 'map-colour', 'aria-label': 'Colour points by', disabled: true });
  const tool = (t: Tool, text: string, title: string) => el('button', { id: `map-tool-${t}`, class: 'mode', type: 'button', 'aria-pressed': String(t === 'pan'), title }, [text]);
  const tools = {
    pan: tool('pan', 'Pan', 'Drag to pan; the wheel zooms'),
    box: tool('box', 'Box', 'Drag a rectangle to select points; the table then shows only them'),
    lasso: tool('lasso', 'Lasso', 'Draw around points to select them; the table then shows only them'),
  };
  const resetView = el('button', { id: 'map-reset', type: 'button' }, ['Fit']);
  const selectionText = el('span', { id: 'map-selection', class: 'muted' });
  const clearSelection = el('button', { id: 'map-clear-selection', type: 'button', hidden: true, title: 'Show every row in the table again' }, ['Clear selection']);
  const toolbar = el('div', { class: 'toolbar map-toolbar', role: 'toolbar', 'aria-label': 'Map' }, [
    el('label', {}, ['Colour by ', colourBy]),
    el('div', { class: 'modes', role: 'group', 'aria-label': 'Pointer tool' }, [tools.pan, tools.box, tools.lasso]),
    resetView,
    selectionText,
    clearSelection,
    el('span', { class: 'spring' }),
    progress,
    status,
    cancel,
    recompute,
  ]);
  const canvas = el('canvas', { id: 'map-canvas', 'aria-label': 'Map of the images: similar images lie close together', 'data-tool': 'pan' });
  const hoverImage = el('img', { alt: '', draggable: 'false' });
  const hoverPath = el('span', { class: 'map-hover-path' });
  const hover = el('div', { id: 'map-hover', class: 'map-hover', hidden: true }, [hoverImage, hoverPath]);
  const stage = el('div', { id: 'map-stage', class: 'map-stage' }, [canvas, hover]);
  const legend = el('aside', { id: 'map-legend', class: 'map-legend card' });
  panel.replaceChildren(toolbar, el('div', { class: 'map-body' }, [stage, legend]));
  const chip = el('button', { id: 'map-selection-chip', class: 'chip', type: 'button', hidden: true, title: 'The table shows only the points selected on the map; click to show every row' });
  chipParent.append(chip);
  return { status, progress, cancel, recompute, colourBy, tools, resetView, stage, canvas, legend, hover, hoverImage, hoverPath, selectionText, clearSelection, chip };
}
