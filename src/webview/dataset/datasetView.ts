import { TabBar } from './tabs';
import { DuplicatesTab } from './duplicatesTab';
import type {
  DatasetHostMessage,
  DatasetInfoDto,
  DatasetLayout,
  DatasetMode,
  DatasetPanelState,
  DatasetQueryDto,
  DatasetRowDto,
  DatasetSortKey,
  DatasetViewMessage,
  FolderMappingDto,
  HistogramBarDto,
  LabelCheckDto,
  LabelChoiceDto,
  RowSetDto,
  ScanStateDto,
  SimilarityStateDto,
} from '../../shared/protocol';
import { el } from '../dom';
import { type DatasetDom } from './dom';
import { checkText, count, scanText, score } from './format';
import { Gallery, buildGalleryDom } from './gallery';
import { MapTab } from './mapTab';
import { asHostMessage, defaultSort, GALLERY_SIZE, restoreThumbnailSize, THUMBNAIL_SIZES } from './messages';
import { PageCache } from './pageCache';
import { flagsFromFilterValue, qualityCell, renderQualityFilter } from './qualityColumn';
import { RowLayout } from './rowLayout';

/** What the view needs of VS Code's webview API (the dataset view's own message types). */
export interface DatasetVsCodeApi {
  postMessage(message: DatasetViewMessage): void;
  getState(): unknown;
  setState(state: DatasetPanelState): void;
}

/** Heights in CSS pixels; media/dataset.css lays rows out to match (through --thumb and --row-height). */
export const ROW_MARGIN = 8;
export const ROW_HEIGHT = 48 + ROW_MARGIN;
/** What an expanded row adds: the top-5 list, five lines of 20 px and a margin. */
export const TOP5_HEIGHT = 5 * 20 + 10;
export const EXPANDED_HEIGHT = ROW_HEIGHT + TOP5_HEIGHT;
export const PAGE_SIZE = 100;
const OVERSCAN = 4;
const HISTOGRAM_BARS = 15;
/** While a scan streams rows in, the table and histogram are asked again at most this often. */
const REFRESH_MS = 500;
const THUMBNAIL_DELAY_MS = 60;
const SEARCH_DELAY_MS = 200;
const FILTER_DELAY_MS = 250;
/** Thumbnails held by the webview: data URIs of ~3 KB for the table, up to ~40 KB for a large gallery. */
const MAX_THUMBNAILS = 3000;
const MAX_THUMBNAIL_CHARS = 48 * 1024 * 1024;

const DEFAULT_DESCENDING: Record<DatasetSortKey, boolean> = { order: false, path: false, folder: false, label: false, score: true, given: false, uniqueness: true };
/** Widths of the similarity and uniqueness columns, appended to the table's grid while they are shown. */
const EXTRA_COLUMN = '86px';

/**
 * The dataset view: a virtualised results table (only the rows on screen are in the DOM; rows come a page
 * at a time from the extension, which answers from its results table), a class histogram, and the label
 * check's folder mappings with corrections. Rows are referred to by id; the extension resolves paths.
 */
export class DatasetView {
  private info?: DatasetInfoDto;
  private generation = -1;
  private scan?: ScanStateDto;
  private total = 0;
  private totalKnown = false;
  private readonly layout: RowLayout;
  private readonly pages = new PageCache<DatasetRowDto>(PAGE_SIZE);
  private readonly pageRequests = new Map<number, { page: number; version: number; epoch: number }>();
  /** Changes with every new query: replies for older ones are dropped. */
  private epoch = 0;
  private nextRequestId = 1;
  private histogramRequest = 0;
  private searchRequest = 0;
  /** Row -> the largest picture held and the side it was made at ('' for a file without one). */
  private readonly thumbnails = new Map<number, { src: string; side: number }>();
  private thumbnailChars = 0;
  /** Rows (and the side) of the latest thumbnail request: the extension drops the rest of earlier ones (scrolled away). */
  private thumbnailsAsked = new Map<number, number>();
  private readonly selection = new Set<number>();
  private anchor?: number;
  private active = -1;
  private labelCheck?: LabelCheckDto;
  private editingFolder?: string;
  private searchResults: LabelChoiceDto[] = [];
  private searchText = '';
  private frame = 0;
  private thumbnailTimer?: number;
  private refreshTimer?: number;
  private lastRefresh = 0;
  private filterTimer?: number;
  private searchTimer?: number;

  /** The tab bar; features with a tab of their own (Duplicates, Map) mount into dom.panels and enable theirs. */
  readonly tabs: TabBar;
  private readonly duplicates: DuplicatesTab;
  private similarity?: SimilarityStateDto;
  /** The row set the query names (query.rowSet), as the extension described it. */
  private rowSet?: RowSetDto;
  private readonly map: MapTab;
  /** The table tab's other layout: the same rows as a grid of thumbnails. */
  private readonly gallery: Gallery;

  constructor(
    private readonly dom: DatasetDom,
    private readonly api: DatasetVsCodeApi,
    private readonly folder: string,
    private query: DatasetQueryDto,
    private thumbnailSize: number = THUMBNAIL_SIZES[0],
    prefs: { layout?: DatasetLayout; gallerySize?: number } = {},
  ) {
    this.tabs = new TabBar(dom);
    this.duplicates = new DuplicatesTab(dom.panels.duplicates, {
      post: (message) => this.post(message),
      generation: () => this.generation,
      folder: () => this.info?.folder ?? this.folder,
      thumbnail: (row) => this.thumbnails.get(row)?.src,
      selection: this.selection,
      selectionChanged: () => this.render(),
      copySelection: () => this.dom.copyPaths.click(),
      exportSelection: () => this.dom.exportSelection.click(),
    });
    this.tabs.onChange((tab) => {
      this.duplicates.show(tab === 'duplicates');
      if (tab === 'table') {
        this.render();
        this.requestVisible();
      }
    });
    // The map's selection chip sits with the filters: it is one more restriction on the table's rows.
    this.map = new MapTab(dom.panels.map, { post: (m) => this.post(m), generation: () => this.generation, onTableRestricted: () => this.newQuery(), chipParent: dom.clearFilters.parentElement ?? dom.panels.table });
    this.tabs.enable('map');
    this.tabs.onChange((tab) => this.map.setVisible(tab === 'map'));
    this.layout = new RowLayout(thumbnailSize + ROW_MARGIN, thumbnailSize + ROW_MARGIN + TOP5_HEIGHT);
    this.gallery = this.mountGallery(prefs.gallerySize ?? GALLERY_SIZE.default);
    this.showLayout(prefs.layout ?? 'table');
    this.applyThumbnailSize();
    this.bindControls();
    this.syncControls();
    this.render();
  }

  handleMessage(data: unknown): void {
    const message = asHostMessage(data);
    if (!message) {
      console.warn('BEiT Lens: dropped a malformed message', data);
      return;
    }
    this.dispatch(message);
  }

  // ---- messages from the extension ------------------------------------------------------------

  private dispatch(m: DatasetHostMessage): void {
    switch (m.type) {
      case 'dataset':
        return this.onDataset(m.info);
      case 'scan':
        this.scan = m.state;
        return this.renderScan();
      case 'page': {
        const request = this.pageRequests.get(m.requestId);
        this.pageRequests.delete(m.requestId);
        if (!request || request.epoch !== this.epoch || m.generation !== this.generation) return;
        this.total = m.total;
        this.totalKnown = true;
        this.layout.count = m.total;
        this.pages.store(request.page, m.rows, request.version);
        if (this.active >= m.total) this.active = m.total - 1;
        return this.scheduleRender();
      }
      case 'histogram':
        if (m.requestId === this.histogramRequest && m.generation === this.generation) this.renderHistogram(m.bars, m.total);
        return;
      case 'labelCheck':
        if (m.generation !== this.generation) return;
        this.labelCheck = m.check;
        this.renderLabelCheck();
        this.renderModes();
        // A corrected mapping changes every row's check, and in the Suspects view which rows there are.
        this.pages.invalidate();
        this.requestVisible();
        return;
      case 'labels':
        if (m.requestId !== this.searchRequest) return;
        this.searchResults = m.results;
        return this.renderLabelCheck();
      case 'mapProgress':
      case 'mapPoints':
      case 'mapEnded':
      case 'mapSelection':
        return this.map.handle(m);
      case 'thumbnail':
        if (m.generation !== this.generation) return;
        this.map.handle(m);
        this.storeThumbnail(m.row, m.src, m.side ?? THUMBNAIL_SIZES[THUMBNAIL_SIZES.length - 1]);
        this.duplicates.onThumbnail(m.row);
        return this.scheduleRender();
      case 'similarity':
        if (m.generation !== this.generation) return;
        this.similarity = m.state;
        if (m.state.status === 'ready') this.tabs.enable('duplicates');
        this.duplicates.setState(m.state);
        this.syncControls();
        // The rows on screen gain their uniqueness and ≈ button: ask for them again.
        this.pages.invalidate();
        this.requestVisible();
        return this.render();
      case 'rowSet':
        if (m.generation !== this.generation) return;
        // A Find Similar result or a duplicate group: the table shows just those rows, in their order.
        this.rowSet = m.set;
        this.tabs.select('table');
        return this.setQuery({ mode: 'all', filter: {}, sort: { key: 'given', descending: false }, rowSet: m.set.id });
      case 'duplicates':
        return this.duplicates.onDuplicates(m);
      case 'exported':
        return this.setStatus(`Exported ${count(m.count)} rows (${m.format.toUpperCase()}) to ${m.file}`);
      case 'copied':
        return this.setStatus(`Copied ${count(m.count)} ${m.count === 1 ? 'path' : 'paths'} to the clipboard`);
      case 'error':
        return this.setStatus(m.message, 'error');
    }
  }

  private onDataset(info: DatasetInfoDto): void {
    const fresh = info.generation !== this.generation;
    this.info = info;
    this.generation = info.generation;
    this.dom.title.textContent = info.title;
    this.dom.folder.textContent = info.folder;
    this.dom.folder.title = info.folder;
    this.renderFolders();
    renderQualityFilter(this.dom.qualitySelect, info.flagCounts, this.query.filter.flags);
    this.renderModes();
    if (fresh) {
      // A new scan: new row ids. Everything held about the old table goes.
      this.labelCheck = undefined;
      this.thumbnails.clear();
      this.thumbnailChars = 0;
      this.thumbnailsAsked = new Map();
      this.selection.clear();
      this.renderLabelCheck();
      this.similarity = undefined;
      this.duplicates.reset();
      // Row sets name rows of the old table.
      this.rowSet = undefined;
      if (this.query.rowSet !== undefined) this.query = withoutRowSet(this.query);
      this.map.reset();
      this.newQuery();
      return;
    }
    // More rows streamed in: ask again for what is on screen, at most every REFRESH_MS.
    this.refreshSoon();
  }

  private refreshSoon(): void {
    if (this.refreshTimer !== undefined) return;
    const wait = Math.max(0, this.lastRefresh + REFRESH_MS - Date.now());
    this.refreshTimer = window.setTimeout(() => {
      this.refreshTimer = undefined;
      this.lastRefresh = Date.now();
      this.pages.invalidate();
      this.requestVisible();
      this.requestHistogram();
      this.post({ type: 'labelCheck' });
    }, wait);
  }

  // ---- queries --------------------------------------------------------------------------------

  /** The query changed (or the table did): start over from the top. */
  private newQuery(): void {
    this.epoch++;
    this.pages.clear();
    this.pageRequests.clear();
    this.total = 0;
    this.totalKnown = false;
    this.layout.count = 0;
    this.layout.collapseAll();
    this.active = -1;
    this.anchor = undefined;
    this.dom.viewport.scrollTop = 0;
    this.gallery.reset();
    this.saveState();
    this.syncControls();
    this.requestVisible();
    this.requestHistogram();
    this.render();
  }

  private saveState(): void {
    this.api.setState({ folder: this.folder, query: this.query, thumbnailSize: this.thumbnailSize, layout: this.gallery.shown ? 'gallery' : 'table', gallerySize: this.gallery.size });
  }

  /** Thumbnails and rows change size together; the row at the top of the viewport stays there. */
  private setThumbnailSize(size: number): void {
    const top = this.layout.indexAt(this.dom.viewport.scrollTop);
    this.thumbnailSize = size;
    this.layout.setHeights(size + ROW_MARGIN, size + ROW_MARGIN + TOP5_HEIGHT);
    this.applyThumbnailSize();
    this.saveState();
    this.render();
    if (top >= 0) this.dom.viewport.scrollTop = this.layout.offsetOf(top);
    this.render();
    this.requestVisible();
  }

  private applyThumbnailSize(): void {
    this.dom.table.style.setProperty('--thumb', `${this.thumbnailSize}px`);
    this.dom.table.style.setProperty('--row-height', `${this.layout.rowHeight}px`);
    this.dom.thumbnailSize.value = String(this.thumbnailSize);
  }

  private requestVisible(): void {
    if (this.generation < 0) return;
    const { first, last } = !this.totalKnown ? { first: 0, last: 0 } : this.gallery.shown ? this.gallery.visibleRange() : this.layout.visibleRange(this.dom.viewport.scrollTop, this.viewportHeight(), OVERSCAN);
    for (const page of this.pages.wanted(first, Math.max(first, last))) {
      const requestId = this.nextRequestId++;
      this.pages.markRequested(page);
      this.pageRequests.set(requestId, { page, version: this.pages.version, epoch: this.epoch });
      this.post({ type: 'query', requestId, generation: this.generation, query: this.query, offset: page * PAGE_SIZE, limit: PAGE_SIZE });
    }
  }

  /** The histogram ignores the label filters, so clicking a bar narrows the table, not the histogram. */
  private requestHistogram(): void {
    if (this.generation < 0) return;
    const { labelText: _text, labelIndex: _index, ...rest } = this.query.filter;
    this.histogramRequest = this.nextRequestId++;
    this.post({ type: 'histogram', requestId: this.histogramRequest, generation: this.generation, query: { mode: 'all', filter: rest, sort: { key: 'order', descending: false } }, limit: HISTOGRAM_BARS });
  }

  private setQuery(change: Partial<DatasetQueryDto>): void {
    this.query = { ...this.query, ...change };
    this.newQuery();
  }

  private setFilter(change: Partial<DatasetQueryDto['filter']>): void {
    const filter = { ...this.query.filter, ...change };
    for (const key of Object.keys(filter) as Array<keyof typeof filter>) if (filter[key] === undefined) delete filter[key];
    this.setQuery({ filter });
  }

  // ---- controls -------------------------------------------------------------------------------

  private bindControls(): void {
    const d = this.dom;
    for (const mode of ['all', 'suspects', 'errors'] as DatasetMode[]) {
      d.modes[mode].addEventListener('click', () => {
        if (this.query.mode === mode) return;
        // Suspects are ranked; the other views start in path order.
        this.setQuery({ mode, sort: defaultSort(mode) });
      });
    }
    for (const [key, button] of Object.entries(d.headers) as Array<[DatasetSortKey, HTMLButtonElement]>) {
      button.addEventListener('click', () => {
        const same = this.query.sort.key === key;
        this.setQuery({ sort: { key, descending: same ? !this.query.sort.descending : DEFAULT_DESCENDING[key] } });
      });
    }
    d.labelText.addEventListener('input', () => {
      window.clearTimeout(this.filterTimer);
      this.filterTimer = window.setTimeout(() => this.setFilter({ labelText: d.labelText.value.trim() || undefined, labelIndex: undefined }), FILTER_DELAY_MS);
    });
    const scoreInput = (input: HTMLInputElement, key: 'minScore' | 'maxScore') =>
      input.addEventListener('change', () => {
        const value = input.value.trim() === '' ? undefined : Number(input.value);
        const valid = value === undefined || (Number.isFinite(value) && value >= 0 && value <= 1);
        input.setAttribute('aria-invalid', String(!valid));
        if (valid) this.setFilter({ [key]: value });
      });
    scoreInput(d.minScore, 'minScore');
    scoreInput(d.maxScore, 'maxScore');
    d.folderSelect.addEventListener('change', () => {
      const v = d.folderSelect.value;
      this.setFilter({ folderLabel: v === '*' ? undefined : v === '' ? null : v.slice(1) });
    });
    d.qualitySelect.addEventListener('change', () => this.setFilter({ flags: flagsFromFilterValue(d.qualitySelect.value) }));
    d.clearFilters.addEventListener('click', () => this.setQuery({ filter: {} }));
    d.clearRowSet.addEventListener('click', () => {
      this.rowSet = undefined;
      this.query = withoutRowSet(this.query);
      this.newQuery();
    });
    d.mostUnique.addEventListener('click', () => this.setQuery({ sort: { key: 'uniqueness', descending: true } }));
    d.leastUnique.addEventListener('click', () => this.setQuery({ sort: { key: 'uniqueness', descending: false } }));
    d.thumbnailSize.addEventListener('change', () => this.setThumbnailSize(restoreThumbnailSize(Number(d.thumbnailSize.value))));

    d.copyPaths.addEventListener('click', () => this.selection.size > 0 && this.post({ type: 'copyPaths', generation: this.generation, rows: [...this.selection] }));
    d.clearSelection.addEventListener('click', () => {
      this.selection.clear();
      this.render();
    });
    const format = () => (d.exportFormat.value === 'jsonl' ? 'jsonl' : 'csv');
    d.exportAll.addEventListener('click', () => this.post({ type: 'export', generation: this.generation, scope: 'all', format: format() }));
    d.exportView.addEventListener('click', () => this.post({ type: 'export', generation: this.generation, scope: 'view', format: format(), query: this.query }));
    d.exportSelection.addEventListener('click', () => this.selection.size > 0 && this.post({ type: 'export', generation: this.generation, scope: 'selection', format: format(), rows: [...this.selection] }));

    d.viewport.addEventListener('scroll', () => {
      this.scheduleRender();
      this.requestVisible();
    });
    window.addEventListener('resize', () => {
      this.scheduleRender();
      this.requestVisible();
    });
    d.rows.addEventListener('click', (event) => this.onRowClick(event));
    d.viewport.addEventListener('keydown', (event) => this.onKey(event));
    d.histogram.addEventListener('click', (event) => {
      const bar = (event.target as HTMLElement).closest<HTMLElement>('[data-index]');
      if (!bar) return;
      const index = Number(bar.dataset.index);
      // A second click on the chosen bar clears it.
      this.setFilter({ labelIndex: this.query.filter.labelIndex === index ? undefined : index, labelText: undefined });
    });
    d.mappings.addEventListener('click', (event) => this.onMappingClick(event));
    d.mappings.addEventListener('input', (event) => {
      const input = event.target as HTMLInputElement;
      if (!input.matches('.label-search')) return;
      this.searchText = input.value;
      window.clearTimeout(this.searchTimer);
      this.searchTimer = window.setTimeout(() => {
        this.searchRequest = this.nextRequestId++;
        if (input.value.trim()) this.post({ type: 'searchLabels', requestId: this.searchRequest, query: input.value.trim(), limit: 20 });
        else {
          this.searchResults = [];
          this.renderLabelCheck();
        }
      }, SEARCH_DELAY_MS);
    });
  }

  /** Puts the query into the controls (after a restore or a histogram click). */
  private syncControls(): void {
    const d = this.dom;
    const f = this.query.filter;
    if (document.activeElement !== d.labelText) d.labelText.value = f.labelText ?? '';
    d.minScore.value = f.minScore !== undefined ? String(f.minScore) : '';
    d.maxScore.value = f.maxScore !== undefined ? String(f.maxScore) : '';
    this.renderFolders();
    renderQualityFilter(d.qualitySelect, this.info?.flagCounts, f.flags);
    this.renderModes();
    for (const [key, button] of Object.entries(d.headers) as Array<[DatasetSortKey, HTMLButtonElement]>) {
      const on = this.query.sort.key === key;
      button.setAttribute('aria-sort', on ? (this.query.sort.descending ? 'descending' : 'ascending') : 'none');
      button.dataset.direction = on ? (this.query.sort.descending ? 'desc' : 'asc') : '';
    }
    const similar = this.query.rowSet !== undefined && this.rowSet?.kind === 'similar';
    const unique = this.similarity?.status === 'ready';
    d.rowSetChip.hidden = this.query.rowSet === undefined || !this.rowSet;
    d.rowSetText.textContent = this.rowSet ? `${this.rowSet.label} (${count(this.rowSet.count)})` : '';
    d.headers.given.hidden = !similar;
    d.headers.uniqueness.hidden = d.mostUnique.hidden = d.leastUnique.hidden = !unique;
    d.table.classList.toggle('with-similarity', similar);
    d.table.classList.toggle('with-uniqueness', unique);
    const extra = [similar ? EXTRA_COLUMN : '', unique ? EXTRA_COLUMN : ''].filter(Boolean).join(' ');
    if (extra) d.table.style.setProperty('--extra-columns', extra);
    else d.table.style.removeProperty('--extra-columns');
    this.gallery.syncSort(this.query.sort, this.query.mode);
    d.headers.order.textContent = this.query.mode === 'suspects' ? 'Rank' : '#';
    d.headers.order.title = this.query.mode === 'suspects' ? 'Most confident disagreement first' : 'The order the scan wrote results in (cached images first); differs between scans';
  }

  private onRowClick(event: MouseEvent): void {
    const target = event.target as HTMLElement;
    const rowEl = target.closest<HTMLElement>('.row');
    if (!rowEl || rowEl.dataset.row === undefined) return;
    const position = Number(rowEl.dataset.position);
    const row = Number(rowEl.dataset.row);
    this.active = position;
    if (target.closest('.expand')) {
      this.layout.toggle(position);
      return this.render();
    }
    if (target.closest('.find-similar')) return this.post({ type: 'findSimilar', generation: this.generation, row });
    if (target.matches('input[type=checkbox]')) {
      this.toggleSelected(row, (target as HTMLInputElement).checked);
      this.anchor = position;
      return this.render();
    }
    // A plain click on a row explains the image (and makes it the selection).
    if (this.select(position, row, event)) this.open(position);
  }

  /**
   * The selection rules of a click, for table rows and gallery cells alike: Shift adds the range from the
   * anchor, Ctrl/Cmd toggles one; a plain click makes it the only one selected, and returns true.
   */
  private select(position: number, row: number, event: { shiftKey: boolean; ctrlKey: boolean; metaKey: boolean }): boolean {
    this.active = position;
    if (event.shiftKey && this.anchor !== undefined) {
      const [from, to] = this.anchor < position ? [this.anchor, position] : [position, this.anchor];
      for (let p = from; p <= to; p++) {
        const r = this.pages.get(p);
        if (r) this.selection.add(r.row);
      }
      this.render();
      return false;
    }
    this.anchor = position;
    if (event.ctrlKey || event.metaKey) {
      this.toggleSelected(row, !this.selection.has(row));
      this.render();
      return false;
    }
    this.selection.clear();
    this.selection.add(row);
    this.render();
    return true;
  }

  private open(position: number): void {
    const row = this.pages.get(position);
    if (row && row.error === undefined) this.post({ type: 'open', generation: this.generation, row: row.row });
  }

  private toggleSelected(row: number, on: boolean): void {
    if (on) this.selection.add(row);
    else this.selection.delete(row);
  }

  private onKey(event: KeyboardEvent): void {
    if (event.target !== this.dom.viewport || this.total === 0) return;
    const move = (to: number) => {
      this.active = Math.max(0, Math.min(this.total - 1, to));
      this.scrollIntoView(this.active);
      this.render();
    };
    const current = this.active < 0 ? 0 : this.active;
    const page = Math.max(1, Math.floor(this.viewportHeight() / this.layout.rowHeight) - 1);
    switch (event.key) {
      case 'ArrowDown':
        move(this.active < 0 ? 0 : current + 1);
        break;
      case 'ArrowUp':
        move(current - 1);
        break;
      case 'PageDown':
        move(current + page);
        break;
      case 'PageUp':
        move(current - page);
        break;
      case 'Home':
        move(0);
        break;
      case 'End':
        move(this.total - 1);
        break;
      case 'Enter':
        this.open(current);
        break;
      case ' ': {
        const row = this.pages.get(current);
        if (row) this.toggleSelected(row.row, !this.selection.has(row.row));
        this.render();
        break;
      }
      case 'ArrowRight':
      case 'ArrowLeft':
        if (this.layout.isExpanded(current) !== (event.key === 'ArrowRight')) this.layout.toggle(current);
        this.render();
        break;
      default:
        return;
    }
    event.preventDefault();
  }

  private scrollIntoView(position: number): void {
    const top = this.layout.offsetOf(position);
    const bottom = top + this.layout.heightOf(position);
    const viewport = this.dom.viewport;
    if (top < viewport.scrollTop) viewport.scrollTop = top;
    else if (bottom > viewport.scrollTop + this.viewportHeight()) viewport.scrollTop = bottom - this.viewportHeight();
    this.requestVisible();
  }

  private onMappingClick(event: MouseEvent): void {
    const target = (event.target as HTMLElement).closest<HTMLElement>('button');
    if (!target) return;
    const folder = target.closest<HTMLElement>('[data-folder]')?.dataset.folder;
    if (folder === undefined) return;
    switch (target.dataset.action) {
      case 'filter-folder':
        return this.setFilter({ folderLabel: folder });
      case 'edit':
        this.editingFolder = this.editingFolder === folder ? undefined : folder;
        this.searchResults = [];
        this.searchText = '';
        this.renderLabelCheck();
        this.dom.mappings.querySelector<HTMLInputElement>('.label-search')?.focus();
        return;
      case 'choose':
        this.editingFolder = undefined;
        this.post({ type: 'setMapping', folder, labels: [Number(target.dataset.index)] });
        return;
      case 'none':
        this.editingFolder = undefined;
        this.post({ type: 'setMapping', folder, labels: null });
        return;
      case 'auto':
        this.editingFolder = undefined;
        this.post({ type: 'setMapping', folder, labels: 'auto' });
        return;
    }
  }

  // ---- rendering ------------------------------------------------------------------------------

  private scheduleRender(): void {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  private viewportHeight(): number {
    return this.dom.viewport.clientHeight || 400;
  }

  private render(): void {
    const d = this.dom;
    if (this.gallery.shown) {
      d.rows.replaceChildren();
      this.gallery.render(this.emptyText());
    } else {
      d.spacer.style.height = `${this.layout.totalHeight}px`;
      d.table.setAttribute('aria-rowcount', String(this.total));
      const { first, last } = this.layout.visibleRange(d.viewport.scrollTop, this.viewportHeight(), OVERSCAN);
      const elements: HTMLElement[] = [];
      for (let p = first; p <= last; p++) {
        const row = this.pages.get(p);
        elements.push(row ? this.rowElement(p, row) : this.placeholder(p));
      }
      d.rows.replaceChildren(...elements);
      this.gallery.dom.cells.replaceChildren();
    }
    d.resultCount.textContent = this.totalKnown ? `${count(this.total)} ${this.total === 1 ? 'row' : 'rows'}` : 'Loading…';
    d.selectionCount.textContent = this.selection.size ? `${count(this.selection.size)} selected` : '';
    d.copyPaths.disabled = d.exportSelection.disabled = d.clearSelection.disabled = this.selection.size === 0;
    d.empty.hidden = !(this.totalKnown && this.total === 0);
    d.empty.textContent = this.emptyText();
    this.askThumbnails();
    this.duplicates.syncSelection();
  }

  private emptyText(): string {
    if (this.query.mode === 'errors') return 'No error rows: every file could be read and decoded.';
    if (this.query.mode === 'suspects') return this.labelCheck ? 'No suspects: the model agrees with every folder it could check.' : 'The label check is still running.';
    if (Object.keys(this.query.filter).length > 0) return 'No rows match the filters.';
    return this.scan?.status === 'running' ? 'Waiting for the first results…' : 'No images.';
  }

  /** Rows on screen (table rows or gallery cells) without a picture they can show, and the side to ask for. */
  private wantedThumbnails(): { rows: number[]; side?: number } {
    if (this.gallery.shown) return { rows: this.gallery.rowsNeedingThumbnails(), side: this.gallery.thumbnailSide };
    // The table takes a picture of any side (CSS scales it); without a side the host makes its default.
    return { rows: [...this.dom.rows.querySelectorAll<HTMLElement>('.row[data-row]:not(.error)')].map((e) => Number(e.dataset.row)).filter((r) => !this.thumbnails.has(r)) };
  }

  /** Asks for the thumbnails of the rows on screen (after scrolling settles a little). */
  private askThumbnails(): void {
    // A hidden table asks for nothing: its request would cancel the shown tab's (the extension keeps one).
    if (this.tabs.selected !== 'table') return;
    const first = this.wantedThumbnails();
    if (first.rows.every((r) => (this.thumbnailsAsked.get(r) ?? -1) >= (first.side ?? 0))) return;
    window.clearTimeout(this.thumbnailTimer);
    this.thumbnailTimer = window.setTimeout(() => {
      // Everything still on screen without a picture: the extension cancels what scrolled away.
      const { rows: visible, side } = this.wantedThumbnails();
      if (visible.length === 0) return;
      const rows = visible.slice(0, 200);
      this.thumbnailsAsked = new Map(rows.map((r) => [r, side ?? 0]));
      this.post(side === undefined ? { type: 'thumbnails', generation: this.generation, rows } : { type: 'thumbnails', generation: this.generation, rows, side });
    }, THUMBNAIL_DELAY_MS);
  }

  /** Keeps the larger of two pictures of a row; the oldest go first past the count or the size bound. */
  private storeThumbnail(row: number, src: string, side: number): void {
    const held = this.thumbnails.get(row);
    if (held && held.src && held.side >= side) return;
    // A file without a picture is never asked again, at any side.
    const entry = { src, side: src ? side : Number.MAX_SAFE_INTEGER };
    if (held) {
      this.thumbnailChars -= held.src.length;
      this.thumbnails.delete(row);
    }
    this.thumbnails.set(row, entry);
    this.thumbnailChars += src.length;
    while (this.thumbnails.size > MAX_THUMBNAILS || this.thumbnailChars > MAX_THUMBNAIL_CHARS) {
      const [oldest, value] = this.thumbnails.entries().next().value as [number, { src: string }];
      this.thumbnails.delete(oldest);
      this.thumbnailChars -= value.src.length;
    }
  }

  private mountGallery(size: number): Gallery {
    const view = this;
    const gallery = new Gallery(
      buildGalleryDom(this.dom),
      {
        get total() {
          return view.total;
        },
        get totalKnown() {
          return view.totalKnown;
        },
        get active() {
          return view.active;
        },
        row: (position) => this.pages.get(position),
        thumbnail: (row) => this.thumbnails.get(row),
        isSelected: (row) => this.selection.has(row),
      },
      {
        select: (position, modifiers) => {
          const row = this.pages.get(position);
          if (row) this.select(position, row.row, modifiers);
        },
        open: (position) => this.open(position),
        toggleSelected: (position) => {
          const row = this.pages.get(position);
          if (row) this.toggleSelected(row.row, !this.selection.has(row.row));
          this.active = position;
          this.render();
        },
        moveTo: (position) => {
          this.active = position;
          gallery.scrollIntoView(position);
          this.render();
          this.requestVisible();
        },
        visibleChanged: () => {
          this.scheduleRender();
          this.requestVisible();
        },
        sizeChanged: () => this.saveState(),
        sort: (sort) => this.setQuery({ sort }),
      },
      size,
    );
    gallery.dom.layoutButtons.table.addEventListener('click', () => this.setLayout('table'));
    gallery.dom.layoutButtons.gallery.addEventListener('click', () => this.setLayout('gallery'));
    return gallery;
  }

  private showLayout(layout: DatasetLayout): void {
    this.gallery.show(layout === 'gallery');
    this.dom.table.hidden = layout === 'gallery';
    // The table's Small/Medium/Large is the row height; the gallery has its slider.
    this.dom.thumbnailSize.hidden = layout === 'gallery';
  }

  /** Table or gallery: the same query and selection; the cursor's row stays in view. */
  private setLayout(layout: DatasetLayout): void {
    if (this.gallery.shown === (layout === 'gallery')) return;
    const at = this.active >= 0 ? this.active : this.gallery.shown ? this.gallery.visibleRange().first : this.layout.indexAt(this.dom.viewport.scrollTop);
    this.showLayout(layout);
    this.saveState();
    if (layout === 'gallery') this.gallery.scrollIntoView(at);
    else if (at >= 0) this.scrollIntoView(at);
    this.render();
    this.requestVisible();
    (layout === 'gallery' ? this.gallery.dom.viewport : this.dom.viewport).focus();
  }

  private placeholder(position: number): HTMLElement {
    const row = el('div', { class: 'row loading', role: 'row', 'aria-rowindex': position + 1, 'aria-busy': 'true' }, [el('span', { class: 'cell muted' }, ['…'])]);
    this.place(row, position);
    return row;
  }

  private place(node: HTMLElement, position: number): void {
    node.style.top = `${this.layout.offsetOf(position)}px`;
    node.style.height = `${this.layout.heightOf(position)}px`;
  }

  private rowElement(position: number, r: DatasetRowDto): HTMLElement {
    const selected = this.selection.has(r.row);
    const expanded = this.layout.isExpanded(position);
    const suspect = (r.check?.reasons.length ?? 0) > 0;
    const classes = ['row', r.error !== undefined ? 'error' : '', suspect ? 'suspect' : '', selected ? 'selected' : '', position === this.active ? 'active' : '', expanded ? 'expanded' : ''].filter(Boolean).join(' ');
    const top1 = r.top?.[0];
    const thumb = this.thumbnails.get(r.row)?.src;
    const picture = thumb ? el('img', { src: thumb, alt: '', draggable: 'false' }) : el('span', { class: r.error !== undefined ? 'no-thumb error-mark' : 'no-thumb', 'aria-hidden': 'true' }, [r.error !== undefined ? '!' : '']);
    const labelCell =
      r.error !== undefined
        ? el('span', { class: 'cell c-label error-text', role: 'gridcell', title: r.errorCode ? `${r.errorCode}: ${r.error}` : r.error }, [r.error])
        : el('span', { class: 'cell c-label', role: 'gridcell', title: top1?.label ?? '' }, [top1?.label ?? '']);
    const scoreCell = el('span', { class: 'cell c-score', role: 'gridcell' }, top1 ? [el('span', { class: 'score-text' }, [score(top1.score)]), scoreBar(top1.score)] : []);
    const check = checkText(r.check);
    const checkTitle = r.check?.expected
      ? `folder "${r.folderLabel}" means ${r.check.expected.label}: ${r.check.folderRank !== null ? `rank ${r.check.folderRank + 1} in the top-K` : 'not in the top-K'}; margin ${r.check.confidence.toFixed(3)} (top-1 score minus the folder label's)`
      : '';
    const row = el('div', { class: classes, role: 'row', 'data-row': r.row, 'data-position': position, 'aria-rowindex': position + 1, 'aria-selected': String(selected) }, [
      el('span', { class: 'cell c-order', role: 'gridcell' }, [
        el('input', { type: 'checkbox', class: 'select', 'aria-label': `Select ${r.name}`, checked: selected, tabindex: -1 }),
        el('button', { type: 'button', class: 'expand', 'aria-label': expanded ? `Hide the top-5 of ${r.name}` : `Show the top-5 of ${r.name}`, 'aria-expanded': String(expanded), tabindex: -1, disabled: r.error !== undefined }, [expanded ? '▾' : '▸']),
        el('span', { class: 'position muted' }, [String(position + 1)]),
        el('button', { type: 'button', class: 'find-similar', 'aria-label': `Find images similar to ${r.name}`, title: 'Find similar images', tabindex: -1, hidden: r.error !== undefined || this.similarity?.status !== 'ready' }, ['≈']),
      ]),
      el('span', { class: 'cell c-thumb', role: 'gridcell' }, [picture]),
      // The folder column already names the class folder: the path cell adds the directory only when it says more.
      el('span', { class: 'cell c-path', role: 'gridcell', title: r.image }, [el('span', { class: 'name' }, [r.name]), ...(r.folder !== (r.folderLabel ?? '') ? [el('span', { class: 'dir muted' }, [r.folder || '.'])] : [])]),
      el('span', { class: 'cell c-folder', role: 'gridcell' }, [r.folderLabel ?? el('span', { class: 'muted' }, ['(root)'])]),
      labelCell,
      scoreCell,
      el('span', { class: `cell c-check${suspect ? ' flagged' : ''}`, role: 'gridcell', title: r.error !== undefined ? (r.errorCode ?? 'error') : [check, checkTitle].filter(Boolean).join(': ') }, [r.error !== undefined ? (r.errorCode ?? 'error') : check]),
      qualityCell(r),
      el('span', { class: 'cell c-sim num', role: 'gridcell', title: r.similarity !== undefined ? `cosine similarity ${r.similarity}` : '' }, [r.similarity !== undefined ? r.similarity.toFixed(3) : '']),
      el('span', { class: 'cell c-uniq num', role: 'gridcell' }, r.uniqueness !== undefined ? [el('span', { class: 'score-text' }, [r.uniqueness.toFixed(3)]), scoreBar(r.uniqueness)] : []),
    ]);
    if (expanded && r.top) {
      row.append(
        el(
          'ol',
          { class: 'top5', 'aria-label': `Top-5 predictions for ${r.name}` },
          r.top.slice(0, 5).map((p) => el('li', {}, [el('span', { class: 'top5-label', title: p.label }, [p.label]), el('span', { class: 'top5-score' }, [score(p.score)]), scoreBar(p.score)])),
        ),
      );
    }
    this.place(row, position);
    return row;
  }

  private renderScan(): void {
    const s = this.scan;
    const d = this.dom;
    if (!s) return;
    d.scanText.textContent = scanText(s);
    d.scanText.parentElement!.dataset.status = s.status;
    const running = s.status === 'running' || s.status === 'restarting';
    d.scanProgress.hidden = !running || s.total === undefined;
    if (s.total) {
      d.scanProgress.max = s.total;
      d.scanProgress.value = Math.min(s.done, s.total);
    }
  }

  private renderModes(): void {
    const d = this.dom;
    const counts: Record<DatasetMode, number | undefined> = { all: this.info?.rows, suspects: this.labelCheck?.suspects, errors: this.info?.errors };
    for (const mode of ['all', 'suspects', 'errors'] as DatasetMode[]) {
      const title = mode === 'all' ? 'All' : mode === 'suspects' ? 'Suspects' : 'Errors';
      const n = counts[mode];
      d.modes[mode].textContent = n === undefined ? title : `${title} (${count(n)})`;
      d.modes[mode].setAttribute('aria-pressed', String(this.query.mode === mode));
    }
  }

  private renderFolders(): void {
    const select = this.dom.folderSelect;
    const current = this.query.filter.folderLabel;
    const options = [el('option', { value: '*' }, ['All folders'])];
    const folders = [...(this.info?.folders ?? [])].sort((a, b) => (a.folderLabel ?? '').localeCompare(b.folderLabel ?? ''));
    // A restored filter for a folder this scan has not reached (yet) still shows as chosen.
    if (current !== undefined && !folders.some((f) => f.folderLabel === current)) folders.push({ folderLabel: current, count: 0 });
    for (const f of folders) options.push(el('option', { value: f.folderLabel === null ? '' : `=${f.folderLabel}` }, [`${f.folderLabel ?? '(root)'} (${count(f.count)})`]));
    select.replaceChildren(...options);
    select.value = current === undefined ? '*' : current === null ? '' : `=${current}`;
  }

  private renderHistogram(bars: HistogramBarDto[], total: number): void {
    const d = this.dom;
    const max = Math.max(1, ...bars.map((b) => b.count));
    d.histogram.replaceChildren(
      ...bars.map((b) => {
        const chosen = this.query.filter.labelIndex === b.index;
        const fill = el('span', { class: 'bar-fill', 'aria-hidden': 'true' });
        fill.style.width = `${(100 * b.count) / max}%`;
        return el('button', { type: 'button', class: 'bar', 'data-index': b.index, 'aria-pressed': String(chosen), title: `${b.label}: ${count(b.count)} images (click to filter)` }, [
          fill,
          el('span', { class: 'bar-label' }, [b.label]),
          el('span', { class: 'bar-count' }, [count(b.count)]),
        ]);
      }),
    );
    const shown = bars.reduce((n, b) => n + b.count, 0);
    d.histogramNote.textContent = total === 0 ? 'No classified images yet.' : shown < total ? `Top ${bars.length} classes; ${count(total - shown)} images in other classes.` : `${count(total)} classified images.`;
  }

  private renderLabelCheck(): void {
    const d = this.dom;
    const check = this.labelCheck;
    if (!check) {
      d.labelSummary.textContent = this.generation < 0 ? '' : 'Checking folders against the model’s labels…';
      d.mappings.replaceChildren();
      return;
    }
    if (check.mappings.length === 0) {
      d.labelSummary.textContent = 'No class folders: the label check needs images in folders named after their class (ImageFolder layout).';
      d.mappings.replaceChildren();
      return;
    }
    const low = `${Math.round(check.lowScore * 100)}%`;
    d.labelSummary.textContent = `${count(check.checked)} images checked: ${count(check.disagreements)} disagree with their folder (its label is not in their top-K), ${count(check.lowConfidence)} have a top-1 score under ${low}${check.unmapped ? `; ${count(check.unmapped)} are in folders without a label` : ''}.`;
    const rows: HTMLElement[] = [];
    for (const m of check.mappings) {
      rows.push(this.mappingRow(m));
      if (this.editingFolder === m.folder) rows.push(this.mappingEditor(m));
    }
    d.mappings.replaceChildren(...rows);
  }

  private mappingRow(m: FolderMappingDto): HTMLElement {
    const kindText = m.kind === 'fuzzy' ? `fuzzy ${m.score.toFixed(2)}` : m.kind === 'override' ? 'corrected' : m.kind;
    const label = m.accepted.length > 0 ? m.accepted.map((a) => a.label).join(' | ') : '—';
    const matched = m.kind === 'override' ? 'set by you' : m.synonym ? `matched "${m.synonym}"` : 'no label matches this folder name';
    return el('tr', { 'data-folder': m.folder, 'data-kind': m.kind }, [
      el('td', { class: 'm-folder' }, [
        el('button', { type: 'button', class: 'link', 'data-action': 'filter-folder', title: `Show only ${m.folder}` }, [m.folder]),
        el('span', { class: 'mapped-label', title: `${label} (${matched})` }, [label]),
      ]),
      el('td', {}, [el('span', { class: `kind kind-${m.kind}`, title: matched }, [kindText])]),
      el('td', { class: 'num', title: `${count(m.disagreements)} of ${count(m.images)} images disagree; ${count(m.lowConfidence)} low confidence` }, [`${count(m.disagreements)} / ${count(m.images)}`]),
      el('td', {}, [el('button', { type: 'button', class: 'edit', 'data-action': 'edit', 'aria-expanded': String(this.editingFolder === m.folder), 'aria-label': `Correct the label of ${m.folder}`, title: 'Correct the label' }, ['✎'])]),
    ]);
  }

  private mappingEditor(m: FolderMappingDto): HTMLElement {
    const choice = (c: LabelChoiceDto, extra = '') =>
      el('button', { type: 'button', class: 'choice', 'data-action': 'choose', 'data-index': c.index, 'aria-pressed': String(m.accepted.some((a) => a.index === c.index)) }, [c.label + extra]);
    const search = el('input', { type: 'search', class: 'label-search', placeholder: 'Search all labels', 'aria-label': `Search labels for ${m.folder}`, spellcheck: 'false' });
    search.value = this.searchText;
    const body = el('div', { class: 'editor-body' }, [
      el('div', { class: 'editor-title' }, [`Which label do the images in “${m.folder}” have?`]),
      m.candidates.length ? el('div', { class: 'choices', role: 'group', 'aria-label': 'Candidates' }, m.candidates.map((c) => choice(c, c.kind === 'fuzzy' ? ` (${c.score.toFixed(2)})` : ''))) : el('p', { class: 'muted' }, ['No close labels; search below.']),
      search,
      el('div', { class: 'choices results', role: 'group', 'aria-label': 'Search results' }, this.searchResults.map((c) => choice(c))),
      el('div', { class: 'editor-actions' }, [
        el('button', { type: 'button', 'data-action': 'none' }, ['No label']),
        el('button', { type: 'button', 'data-action': 'auto', disabled: m.kind !== 'override' }, ['Automatic']),
      ]),
    ]);
    return el('tr', { class: 'editor', 'data-folder': m.folder }, [el('td', { colspan: 4 }, [body])]);
  }

  private setStatus(text: string, kind: 'info' | 'error' = 'info'): void {
    this.dom.status.hidden = false;
    this.dom.status.textContent = text;
    this.dom.status.dataset.kind = kind;
  }

  private post(message: DatasetViewMessage): void {
    this.api.postMessage(message);
  }
}

function withoutRowSet(query: DatasetQueryDto): DatasetQueryDto {
  const { rowSet: _gone, ...rest } = query;
  return rest.sort.key === 'given' ? { ...rest, sort: defaultSort(rest.mode) } : rest;
}

function scoreBar(value: number): HTMLElement {
  const fill = el('span', { class: 'score-fill' });
  fill.style.width = `${Math.max(0, Math.min(1, value)) * 100}%`;
  return el('span', { class: 'score-bar', 'aria-hidden': 'true' }, [fill]);
}
