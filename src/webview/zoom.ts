/**
 * Fit, zoom and pan for the image stage. "Fit" sizes the stage to the largest that fits the
 * viewport (its width, and the height the stylesheet caps or gives it), refitted whenever the viewport
 * resizes; any other zoom is a scale of the image's own pixels (1 = 1:1) and the viewport scrolls,
 * so panning is scrolling — by scroll bars, wheel, or dragging the image.
 */

export const MIN_SCALE = 0.05;
export const MAX_SCALE = 8;
const STEP = 1.25;
/** Pointer travel (CSS px) before a press on the image counts as a pan rather than a patch click. */
const DRAG_THRESHOLD = 4;

export type ZoomMode = { kind: 'fit' } | { kind: 'scale'; scale: number };

export interface ZoomElements {
  viewport: HTMLElement;
  stage: HTMLElement;
  zoomIn: HTMLButtonElement;
  zoomOut: HTMLButtonElement;
  fitToggle: HTMLButtonElement;
  zoomValue: HTMLOutputElement;
}

export class ZoomController {
  private mode: ZoomMode = { kind: 'fit' };
  private image?: { width: number; height: number };
  private drag?: { x: number; y: number; left: number; top: number; moved: boolean; pointer: number };
  /** Set after a drag so the click that ends it does not also select a patch. */
  private swallowClick = false;
  private readonly observer: ResizeObserver;

  constructor(private readonly els: ZoomElements) {
    this.observer = new ResizeObserver(() => {
      if (this.mode.kind === 'fit') this.apply();
    });
    this.observer.observe(els.viewport);
    els.zoomIn.addEventListener('click', () => this.zoomBy(STEP));
    els.zoomOut.addEventListener('click', () => this.zoomBy(1 / STEP));
    els.fitToggle.addEventListener('click', () => this.set(this.mode.kind === 'fit' ? { kind: 'scale', scale: 1 } : { kind: 'fit' }));
    els.viewport.addEventListener('wheel', (e) => this.onWheel(e), { passive: false });
    els.viewport.addEventListener('pointerdown', (e) => this.onPointerDown(e));
    els.viewport.addEventListener('pointermove', (e) => this.onPointerMove(e));
    els.viewport.addEventListener('pointerup', (e) => this.endDrag(e));
    els.viewport.addEventListener('pointercancel', (e) => this.endDrag(e));
    // Capture phase: runs before the canvas's own click handler.
    els.viewport.addEventListener(
      'click',
      (e) => {
        if (!this.swallowClick) return;
        this.swallowClick = false;
        e.stopPropagation();
        e.preventDefault();
      },
      true,
    );
  }

  /** The image's natural size; the zoom starts over at "fit" for each new image. */
  setImage(width: number, height: number): void {
    this.image = { width, height };
    this.mode = { kind: 'fit' };
    this.apply();
  }

  set(mode: ZoomMode, anchor?: { x: number; y: number }): void {
    const before = this.scale();
    this.mode = mode.kind === 'scale' ? { kind: 'scale', scale: clamp(mode.scale) } : mode;
    this.apply(anchor, before);
  }

  /** The stage's current scale relative to the image's own pixels. */
  scale(): number {
    return this.mode.kind === 'fit' ? this.fitScale() : this.mode.scale;
  }

  get fitted(): boolean {
    return this.mode.kind === 'fit';
  }

  dispose(): void {
    this.observer.disconnect();
  }

  private zoomBy(factor: number, anchor?: { x: number; y: number }): void {
    this.set({ kind: 'scale', scale: this.scale() * factor }, anchor);
  }

  private fitScale(): number {
    const { viewport } = this.els;
    if (!this.image) return 1;
    const style = getComputedStyle(viewport);
    const maxHeight = Number.parseFloat(style.maxHeight);
    const width = viewport.clientWidth;
    // Stacked, the stylesheet caps the viewport's height; beside the controls it gives it one.
    const height = Number.isFinite(maxHeight) && maxHeight > 0 ? maxHeight : viewport.clientHeight || Infinity;
    const s = Math.min(width / this.image.width, height / this.image.height);
    return Number.isFinite(s) && s > 0 ? s : 1;
  }

  /** Sizes the stage; with an anchor (viewport coordinates), the image point under it stays put. */
  private apply(anchor?: { x: number; y: number }, before?: number): void {
    const { stage, viewport, zoomValue, fitToggle, zoomIn, zoomOut } = this.els;
    if (!this.image) return;
    const scale = this.scale();
    // Whole CSS pixels in fit mode, so the stage never overflows the viewport by a rounding error.
    const round = this.mode.kind === 'fit' ? Math.floor : Math.round;
    stage.style.width = `${Math.max(1, round(this.image.width * scale))}px`;
    stage.style.height = `${Math.max(1, round(this.image.height * scale))}px`;
    viewport.dataset.zoom = this.mode.kind === 'fit' ? 'fit' : String(scale);
    if (anchor && before) {
      const ratio = scale / before;
      viewport.scrollLeft = (viewport.scrollLeft + anchor.x) * ratio - anchor.x;
      viewport.scrollTop = (viewport.scrollTop + anchor.y) * ratio - anchor.y;
    }
    zoomValue.textContent = this.mode.kind === 'fit' ? `Fit (${Math.round(scale * 100)}%)` : `${Math.round(scale * 100)}%`;
    fitToggle.textContent = this.mode.kind === 'fit' ? '1:1' : 'Fit';
    fitToggle.title = this.mode.kind === 'fit' ? 'Show the image at its own size (1:1)' : 'Fit the image to the view';
    zoomIn.disabled = scale >= MAX_SCALE;
    zoomOut.disabled = scale <= MIN_SCALE;
  }

  private onWheel(e: WheelEvent): void {
    // Plain wheel scrolls (pans); Ctrl or Cmd with the wheel (and pinch, which Chromium reports so) zooms.
    if (!e.ctrlKey && !e.metaKey) return;
    e.preventDefault();
    const box = this.els.viewport.getBoundingClientRect();
    this.zoomBy(e.deltaY < 0 ? STEP : 1 / STEP, { x: e.clientX - box.left, y: e.clientY - box.top });
  }

  private scrollable(): boolean {
    const v = this.els.viewport;
    return v.scrollWidth > v.clientWidth || v.scrollHeight > v.clientHeight;
  }

  private onPointerDown(e: PointerEvent): void {
    if (e.button !== 0 || !this.scrollable()) return;
    const v = this.els.viewport;
    this.drag = { x: e.clientX, y: e.clientY, left: v.scrollLeft, top: v.scrollTop, moved: false, pointer: e.pointerId };
  }

  private onPointerMove(e: PointerEvent): void {
    const d = this.drag;
    if (!d || e.pointerId !== d.pointer) return;
    const dx = e.clientX - d.x;
    const dy = e.clientY - d.y;
    if (!d.moved && Math.hypot(dx, dy) < DRAG_THRESHOLD) return;
    if (!d.moved) {
      d.moved = true;
      this.els.viewport.setPointerCapture(e.pointerId);
      this.els.viewport.classList.add('panning');
    }
    this.els.viewport.scrollLeft = d.left - dx;
    this.els.viewport.scrollTop = d.top - dy;
  }

  private endDrag(e: PointerEvent): void {
    const d = this.drag;
    if (!d || e.pointerId !== d.pointer) return;
    this.drag = undefined;
    if (!d.moved) return;
    // The click that may follow this pointerup comes before any timer; clear the flag after it
    // either way, so a drag that ends without a click cannot eat the next real one.
    this.swallowClick = e.type === 'pointerup';
    setTimeout(() => (this.swallowClick = false), 0);
    this.els.viewport.classList.remove('panning');
    if (this.els.viewport.hasPointerCapture(e.pointerId)) this.els.viewport.releasePointerCapture(e.pointerId);
  }
}

function clamp(scale: number): number {
  return Math.min(MAX_SCALE, Math.max(MIN_SCALE, scale));
}
