import type { DatasetMode, DatasetQueryDto, DatasetRowDto } from '../../shared/protocol';
import { thumbnailSideFor } from '../../shared/thumbnailSides';
import { el } from '../dom';
import { type DatasetDom } from './dom';
import { score } from './format';
import { GALLERY_GAP, GridLayout } from './gridLayout';
import { GALLERY_SIZE } from './messages';

/** Rows of cells drawn beyond the viewport on each side, so a scroll by a row never shows a blank. */
const OVERSCAN_ROWS = 1;

/** What the gallery reads of the view: the same query's rows, thumbnails, selection and cursor as the table. */
export interface GallerySource {
  readonly total: number;
  readonly totalKnown: boolean;
  readonly active: number;
  row(position: number): DatasetRowDto | undefined;
  /** The best picture held for a row, and the side it was made at (0 when none is held). */
  thumbnail(row: number): { src: string; side: number } | undefined;
  isSelected(row: number): boolean;
}

/** What the gallery asks of the view; selection and opening are the table's, so both behave alike. */
export interface GalleryActions {
  /** A click on a cell, with the table's selection rules (Shift: range from the anchor, Ctrl/Cmd: toggle). */
  select(position: number, modifiers: { shiftKey: boolean; ctrlKey: boolean; metaKey: boolean }): void;
  /** Double-click or Enter: the explanation panel, as a click on a table row. */
  open(position: number): void;
  toggleSelected(position: number): void;
  moveTo(position: number): void;
  /** The cells on screen changed (scroll, resize, size): ask for their pages and thumbnails. */
  visibleChanged(): void;
  sizeChanged(size: number): void;
  /** The gallery has no column headers: its sort menu sets the query's sort, as a header click does. */
  sort(sort: DatasetQueryDto['sort']): void;
}

/** The orders the gallery's menu offers; the table's headers offer these and the reverse of each. */
const SORTS: Array<{ value: string; text: string; sort: DatasetQueryDto['sort'] }> = [
  { value: 'path', text: 'Path', sort: { key: 'path', descending: false } },
  { value: 'folder', text: 'Folder', sort: { key: 'folder', descending: false } },
  { value: 'label', text: 'Top-1 label', sort: { key: 'label', descending: false } },
  { value: 'score-desc', text: 'Score, highest first', sort: { key: 'score', descending: true } },
  { value: 'score-asc', text: 'Score, lowest first', sort: { key: 'score', descending: false } },
  { value: 'order', text: 'Scan order', sort: { key: 'order', descending: false } },
];
/** Shown when the table's order is none of {@link SORTS} (a reversed column, a Find Similar ranking). */
const OTHER_SORT = 'other';

export interface GalleryDom {
  /** Table / Gallery, on the filter line. */
  layoutButtons: { table: HTMLButtonElement; gallery: HTMLButtonElement };
  sizeLabel: HTMLElement;
  size: HTMLInputElement;
  sort: HTMLSelectElement;
  root: HTMLElement;
  viewport: HTMLElement;
  spacer: HTMLElement;
  cells: HTMLElement;
  empty: HTMLElement;
}

/** Builds the gallery's elements into the table tab: its controls on the filter line, its grid beside the table. */
export function buildGalleryDom(dom: Pick<DatasetDom, 'table' | 'clearFilters'>): GalleryDom {
  const layoutButtons = {
    table: el('button', { id: 'layout-table', class: 'mode', type: 'button', 'aria-pressed': 'true', title: 'One row per image' }, ['Table']),
    gallery: el('button', { id: 'layout-gallery', class: 'mode', type: 'button', 'aria-pressed': 'false', title: 'A grid of thumbnails with the top-1 label and score' }, ['Gallery']),
  };
  const size = el('input', {
    id: 'gallery-size',
    type: 'range',
    min: GALLERY_SIZE.min,
    max: GALLERY_SIZE.max,
    step: GALLERY_SIZE.step,
    value: GALLERY_SIZE.default,
    'aria-label': 'Gallery thumbnail size',
    title: 'Thumbnail size',
  });
  const sort = el('select', { id: 'gallery-sort', 'aria-label': 'Sort the gallery', title: 'Sort' }, [
    ...SORTS.map((s) => el('option', { value: s.value }, [s.text])),
    el('option', { value: OTHER_SORT, disabled: true }, ["The table's order"]),
  ]);
  const sizeLabel = el('span', { class: 'gallery-size', hidden: true }, [sort, el('label', {}, ['Size ', size])]);
  // On the filter line, which wraps: the actions line is kept to one line down to about 760 px.
  dom.clearFilters.after(el('span', { class: 'modes layout', role: 'group', 'aria-label': 'Layout' }, [layoutButtons.table, layoutButtons.gallery]), sizeLabel);

  const cells = el('div', { id: 'gallery-cells', class: 'gallery-cells' });
  const spacer = el('div', { id: 'gallery-spacer', class: 'spacer' }, [cells]);
  const viewport = el(
    'div',
    {
      id: 'gallery-viewport',
      class: 'viewport',
      tabindex: 0,
      role: 'listbox',
      'aria-multiselectable': 'true',
      'aria-label': 'Scan results as thumbnails; arrow keys move, Enter explains, Space selects',
    },
    [spacer],
  );
  const empty = el('div', { id: 'gallery-empty', class: 'empty', hidden: true });
  const root = el('div', { id: 'gallery', class: 'gallery', hidden: true }, [viewport, empty]);
  dom.table.after(root);
  return { layoutButtons, sizeLabel, size, sort, root, viewport, spacer, cells, empty };
}

/**
 * Gallery mode of the table tab: the table's query (filters, sort, a Find Similar or Map restriction) as a
 * virtualised grid of thumbnails. Only the cells on screen are in the DOM; the view fetches their pages and,
 * once scrolling settles, their thumbnails at the side the cell size needs (and the host drops requests for
 * cells scrolled away). The cell size is the slider's, kept in the webview state by the view.
 */
export class Gallery {
  private readonly layout: GridLayout;

  constructor(
    readonly dom: GalleryDom,
    private readonly source: GallerySource,
    private readonly actions: GalleryActions,
    size: number,
  ) {
    this.layout = new GridLayout(size, 0);
    this.applySize();
    dom.size.addEventListener('input', () => this.setSize(Number(dom.size.value)));
    dom.sort.addEventListener('change', () => {
      const chosen = SORTS.find((s) => s.value === dom.sort.value);
      if (chosen) actions.sort(chosen.sort);
    });
    dom.viewport.addEventListener('scroll', () => actions.visibleChanged());
    // A double-click is the second click's count, not a dblclick event: the first click re-renders the
    // cells, and a dblclick is only sent when both clicks hit the same element.
    dom.cells.addEventListener('click', (event) => {
      const position = this.positionOf(event.target);
      if (position === undefined) return;
      if (event.detail === 2 && !event.shiftKey && !event.ctrlKey && !event.metaKey) actions.open(position);
      else actions.select(position, event);
    });
    dom.viewport.addEventListener('keydown', (event) => this.onKey(event));
  }

  get size(): number {
    return this.layout.cell;
  }

  /** The thumbnail side (one of THUMBNAIL_SIDES) that fills a cell on this screen. */
  get thumbnailSide(): number {
    return thumbnailSideFor(this.layout.cell, window.devicePixelRatio);
  }

  get shown(): boolean {
    return !this.dom.root.hidden;
  }

  show(on: boolean): void {
    this.dom.root.hidden = !on;
    this.dom.sizeLabel.hidden = !on;
    this.dom.layoutButtons.table.setAttribute('aria-pressed', String(!on));
    this.dom.layoutButtons.gallery.setAttribute('aria-pressed', String(on));
  }

  /** Positions to fetch pages for: the cells on screen and a row of cells each side. */
  visibleRange(): { first: number; last: number } {
    this.measure();
    return this.layout.visibleRange(this.dom.viewport.scrollTop, this.viewportHeight(), OVERSCAN_ROWS);
  }

  /** Rows on screen (not error rows) without a picture of the side their cell needs. */
  rowsNeedingThumbnails(): number[] {
    const side = this.thumbnailSide;
    return [...this.dom.cells.querySelectorAll<HTMLElement>('.g-cell[data-row]:not(.error)')]
      .map((cell) => Number(cell.dataset.row))
      .filter((row) => (this.source.thumbnail(row)?.side ?? 0) < side);
  }

  /** Puts the query's order into the sort menu ("Rank" for the ranked Suspects). */
  syncSort(sort: DatasetQueryDto['sort'], mode: DatasetMode): void {
    const match = SORTS.find((s) => s.sort.key === sort.key && s.sort.descending === sort.descending);
    this.dom.sort.value = match?.value ?? OTHER_SORT;
    const order = [...this.dom.sort.options].find((o) => o.value === 'order');
    if (order) order.textContent = mode === 'suspects' ? 'Rank' : 'Scan order';
  }

  /** A new query: back to the top. */
  reset(): void {
    this.dom.viewport.scrollTop = 0;
  }

  scrollIntoView(position: number): void {
    if (position < 0) return;
    this.measure();
    const { top } = this.layout.offsetOf(position);
    const bottom = top + this.layout.rowPitch;
    const viewport = this.dom.viewport;
    if (top < viewport.scrollTop) viewport.scrollTop = Math.max(0, top - GALLERY_GAP);
    else if (bottom > viewport.scrollTop + this.viewportHeight()) viewport.scrollTop = bottom - this.viewportHeight();
  }

  render(emptyText: string): void {
    this.measure();
    const d = this.dom;
    d.spacer.style.height = `${this.layout.totalHeight}px`;
    const { first, last } = this.layout.visibleRange(d.viewport.scrollTop, this.viewportHeight(), OVERSCAN_ROWS);
    const cells: HTMLElement[] = [];
    for (let p = first; p <= last; p++) cells.push(this.cell(p, this.source.row(p)));
    d.cells.replaceChildren(...cells);
    d.viewport.setAttribute('aria-setsize', String(this.source.total));
    d.empty.hidden = !(this.source.totalKnown && this.source.total === 0);
    d.empty.textContent = emptyText;
  }

  private setSize(size: number): void {
    // The cell at the top of the viewport stays there, as the table's rows do when their size changes.
    this.measure();
    const top = this.layout.positionAt(this.dom.viewport.scrollTop);
    this.layout.cell = size;
    this.applySize();
    if (top >= 0) this.dom.viewport.scrollTop = this.layout.offsetOf(top).top - GALLERY_GAP;
    this.actions.sizeChanged(size);
    this.actions.visibleChanged();
  }

  private applySize(): void {
    this.dom.root.style.setProperty('--cell', `${this.layout.cell}px`);
    this.dom.size.value = String(this.layout.cell);
  }

  private measure(): void {
    this.layout.count = this.source.totalKnown ? this.source.total : 0;
    this.layout.width = this.dom.viewport.clientWidth || 800;
  }

  private viewportHeight(): number {
    return this.dom.viewport.clientHeight || 400;
  }

  private positionOf(target: EventTarget | null): number | undefined {
    const cell = (target as HTMLElement | null)?.closest<HTMLElement>('.g-cell[data-row]');
    return cell ? Number(cell.dataset.position) : undefined;
  }

  private cell(position: number, r: DatasetRowDto | undefined): HTMLElement {
    const { left, top } = this.layout.offsetOf(position);
    const place = (node: HTMLElement) => {
      node.style.left = `${left}px`;
      node.style.top = `${top}px`;
      return node;
    };
    if (!r) return place(el('div', { class: 'g-cell loading', role: 'option', 'aria-busy': 'true', 'aria-posinset': position + 1, 'aria-selected': 'false', 'data-position': position }, [el('div', { class: 'g-thumb' }), el('div', { class: 'g-caption muted' }, ['…'])]));
    const selected = this.source.isSelected(r.row);
    const failed = r.error !== undefined;
    const suspect = (r.check?.reasons.length ?? 0) > 0;
    const top1 = r.top?.[0];
    const held = this.source.thumbnail(r.row);
    const picture = held?.src ? el('img', { src: held.src, alt: '', draggable: 'false' }) : el('span', { class: 'no-thumb', 'aria-hidden': 'true' });
    const badges: HTMLElement[] = [];
    if (failed) badges.push(el('span', { class: 'g-badge g-error', title: r.errorCode ? `${r.errorCode}: ${r.error}` : r.error }, ['!']));
    else if (suspect) badges.push(el('span', { class: 'g-badge g-suspect', title: 'Suspect: see the Check column of the table' }, ['?']));
    const caption = failed
      ? [el('span', { class: 'g-label error-text', title: r.error }, [r.errorCode ?? 'error']), el('span', { class: 'g-name muted', title: r.image }, [r.name])]
      : [el('span', { class: 'g-label', title: top1?.label ?? '' }, [top1?.label ?? '']), el('span', { class: 'g-score' }, [score(top1?.score)])];
    const classes = ['g-cell', failed ? 'error' : '', suspect ? 'suspect' : '', selected ? 'selected' : '', position === this.source.active ? 'active' : ''].filter(Boolean).join(' ');
    return place(
      el('div', { class: classes, role: 'option', 'data-row': r.row, 'data-position': position, 'aria-posinset': position + 1, 'aria-selected': String(selected), title: r.image }, [
        el('div', { class: 'g-thumb' }, [picture, ...badges]),
        el('div', { class: 'g-caption' }, caption),
      ]),
    );
  }

  private onKey(event: KeyboardEvent): void {
    const total = this.source.total;
    if (event.target !== this.dom.viewport || total === 0) return;
    this.measure();
    const columns = this.layout.columns;
    const current = this.source.active < 0 ? 0 : this.source.active;
    const screen = Math.max(1, Math.floor(this.viewportHeight() / this.layout.rowPitch)) * columns;
    const move = (to: number) => this.actions.moveTo(Math.max(0, Math.min(total - 1, to)));
    switch (event.key) {
      case 'ArrowRight':
        move(this.source.active < 0 ? 0 : current + 1);
        break;
      case 'ArrowLeft':
        move(current - 1);
        break;
      case 'ArrowDown':
        move(this.source.active < 0 ? 0 : current + columns);
        break;
      case 'ArrowUp':
        move(current - columns);
        break;
      case 'PageDown':
        move(current + screen);
        break;
      case 'PageUp':
        move(current - screen);
        break;
      case 'Home':
        move(0);
        break;
      case 'End':
        move(total - 1);
        break;
      case 'Enter':
        this.actions.open(current);
        break;
      case ' ':
        this.actions.toggleSelected(current);
        break;
      default:
        return;
    }
    event.preventDefault();
  }
}
