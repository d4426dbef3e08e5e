import type { DatasetHostMessage, DatasetViewMessage, DuplicateGroupDto, SimilarityStateDto } from '../../shared/protocol';
import { el } from '../dom';
import { count } from './format';

type DuplicatesMessage = Extract<DatasetHostMessage, { type: 'duplicates' }>;

/** What the tab needs of the view: its messages, table generation, thumbnails and the one selection. */
export interface DuplicatesHost {
  post(message: DatasetViewMessage): void;
  generation(): number;
  /** The scanned folder: group paths are shown relative to it. */
  folder(): string;
  thumbnail(row: number): string | undefined;
  readonly selection: Set<number>;
  /** The selection changed here: the table's counts and buttons follow. */
  selectionChanged(): void;
  copySelection(): void;
  exportSelection(): void;
}

/** Groups drawn at once; "Show more" adds as many again (a 100,000-image dataset can have thousands). */
const GROUPS_PER_PAGE = 100;
/** The extension answers at most this many thumbnails per request (DatasetViewMessageSchema). */
const MAX_THUMBNAILS_PER_REQUEST = 200;
const THRESHOLD_DELAY_MS = 300;

/**
 * The Duplicates tab: exact (same content) and near (cosine ≥ threshold) groups with their thumbnails side by
 * side, leakage across split folders flagged. The groups are computed in the inference worker; this only asks
 * for them (again when the threshold changes) and draws them. Selecting a group's images feeds the view's one
 * selection, so Copy paths and Export selected work as in the table; clicking a group shows it in the table.
 */
export class DuplicatesTab {
  private state?: SimilarityStateDto;
  private threshold?: number;
  private groups: DuplicateGroupDto[] = [];
  private total = 0;
  private leakage = 0;
  private shownGroups = GROUPS_PER_PAGE;
  private requestId = 0;
  private nextRequestId = 1_000_000;
  /** The generation and threshold the groups on screen (or on their way) are for. */
  private asked?: { generation: number; threshold: number };
  private visible = false;
  private loading = false;
  private thresholdTimer?: number;
  private thumbnailTimer?: number;
  private readonly thresholdInput: HTMLInputElement;
  private readonly summary: HTMLElement;
  private readonly list: HTMLElement;
  private readonly selectionText: HTMLElement;
  private readonly selectExtra: HTMLButtonElement;
  private readonly clearSelection: HTMLButtonElement;
  private readonly copy: HTMLButtonElement;
  private readonly exportButton: HTMLButtonElement;

  constructor(
    panel: HTMLElement,
    private readonly host: DuplicatesHost,
  ) {
    this.thresholdInput = el('input', { id: 'dup-threshold', type: 'number', min: 0.5, max: 1, step: 0.01, 'aria-label': 'Near-duplicate threshold (cosine similarity, 0.5 to 1)' });
    this.summary = el('p', { id: 'dup-summary', role: 'status' });
    this.selectionText = el('span', { id: 'dup-selection', class: 'muted' });
    this.selectExtra = el('button', { id: 'dup-select-extra', type: 'button', title: 'Select every image of every group but its first: the copies to remove' }, ['Select copies']);
    this.clearSelection = el('button', { id: 'dup-clear-selection', type: 'button' }, ['Clear selection']);
    this.copy = el('button', { id: 'dup-copy', type: 'button' }, ['Copy paths']);
    this.exportButton = el('button', { id: 'dup-export', type: 'button' }, ['Export selected…']);
    this.list = el('div', { id: 'dup-groups', class: 'dup-groups', role: 'list', 'aria-label': 'Duplicate groups' });
    panel.append(
      el('div', { class: 'toolbar dup-toolbar', role: 'toolbar', 'aria-label': 'Duplicates' }, [
        el('label', { class: 'dup-threshold' }, ['Near if cosine ≥ ', this.thresholdInput]),
        this.selectionText,
        el('span', { class: 'spring' }),
        this.selectExtra,
        this.clearSelection,
        this.copy,
        this.exportButton,
      ]),
      this.summary,
      this.list,
    );
    this.bind();
  }

  /** Whether the dataset has embeddings; the view enables the tab once it has. */
  setState(state: SimilarityStateDto): void {
    this.state = state;
    if (this.threshold === undefined) {
      this.threshold = state.threshold;
      this.thresholdInput.value = String(state.threshold);
    }
    this.asked = undefined;
    if (this.visible) this.ask();
    this.render();
  }

  /** A new table: its row ids mean other images. */
  reset(): void {
    this.groups = [];
    this.total = this.leakage = 0;
    this.asked = undefined;
    this.loading = false;
    this.state = undefined;
    this.render();
  }

  show(visible: boolean): void {
    this.visible = visible;
    if (visible) {
      this.ask();
      this.requestThumbnails();
    }
  }

  onDuplicates(m: DuplicatesMessage): void {
    if (m.requestId !== this.requestId || m.generation !== this.host.generation()) return;
    this.loading = false;
    this.groups = m.groups;
    this.total = m.total;
    this.leakage = m.leakage;
    this.shownGroups = GROUPS_PER_PAGE;
    this.render();
    this.requestThumbnails();
  }

  onThumbnail(row: number): void {
    for (const img of this.list.querySelectorAll<HTMLImageElement>(`img[data-row="${row}"]`)) img.src = this.host.thumbnail(row) ?? '';
  }

  /** The selection changed elsewhere (the table). */
  syncSelection(): void {
    for (const box of this.list.querySelectorAll<HTMLInputElement>('input.dup-select')) box.checked = this.host.selection.has(Number(box.dataset.row));
    this.renderSelection();
  }

  private ask(): void {
    const generation = this.host.generation();
    const threshold = this.threshold;
    if (this.state?.status !== 'ready' || threshold === undefined || generation < 0) return;
    if (this.asked?.generation === generation && this.asked.threshold === threshold) return;
    this.asked = { generation, threshold };
    this.requestId = this.nextRequestId++;
    this.loading = true;
    this.summary.textContent = 'Finding duplicates…';
    this.host.post({ type: 'duplicates', requestId: this.requestId, generation, threshold });
  }

  private bind(): void {
    this.thresholdInput.addEventListener('input', () => {
      const value = Number(this.thresholdInput.value);
      const valid = this.thresholdInput.value.trim() !== '' && Number.isFinite(value) && value >= 0.5 && value <= 1;
      this.thresholdInput.setAttribute('aria-invalid', String(!valid));
      if (!valid) return;
      window.clearTimeout(this.thresholdTimer);
      this.thresholdTimer = window.setTimeout(() => {
        this.threshold = value;
        this.ask();
      }, THRESHOLD_DELAY_MS);
    });
    this.selectExtra.addEventListener('click', () => {
      for (const g of this.groups) for (const row of g.rows.slice(1)) this.host.selection.add(row);
      this.selectionChanged();
    });
    this.clearSelection.addEventListener('click', () => {
      this.host.selection.clear();
      this.selectionChanged();
    });
    this.copy.addEventListener('click', () => this.host.copySelection());
    this.exportButton.addEventListener('click', () => this.host.exportSelection());
    this.list.addEventListener('click', (event) => {
      const target = event.target as HTMLElement;
      const card = target.closest<HTMLElement>('.dup-group');
      if (!card) return;
      const group = this.groups[Number(card.dataset.group)];
      if (!group) return;
      if (target.matches('input.dup-select')) {
        const row = Number(target.dataset.row);
        if ((target as HTMLInputElement).checked) this.host.selection.add(row);
        else this.host.selection.delete(row);
        return this.selectionChanged();
      }
      const action = target.closest<HTMLElement>('button')?.dataset.action;
      if (action === 'select-group') {
        for (const row of group.rows) this.host.selection.add(row);
        return this.selectionChanged();
      }
      if (action === 'show-group') this.showInTable(group);
    });
    this.list.addEventListener('dblclick', (event) => {
      const card = (event.target as HTMLElement).closest<HTMLElement>('.dup-group');
      const group = card && this.groups[Number(card.dataset.group)];
      if (group) this.showInTable(group);
    });
    this.list.addEventListener('scroll', () => {
      window.clearTimeout(this.thumbnailTimer);
      this.thumbnailTimer = window.setTimeout(() => this.requestThumbnails(), 80);
    });
  }

  private showInTable(group: DuplicateGroupDto): void {
    const name = group.images[0].split(/[\\/]/).pop() ?? group.images[0];
    const label = `${group.kind === 'exact' ? 'Exact duplicates' : 'Near duplicates'} of ${name}`;
    this.host.post({ type: 'showRows', generation: this.host.generation(), rows: group.rows, label });
  }

  private selectionChanged(): void {
    this.syncSelection();
    this.host.selectionChanged();
  }

  private render(): void {
    const state = this.state;
    if (!state || state.status !== 'ready') {
      this.summary.textContent = state?.status === 'failed' ? `No embeddings: ${state.message ?? 'unknown error'}` : state?.status === 'loading' ? 'Loading the embeddings…' : '';
      this.list.replaceChildren();
      return this.renderSelection();
    }
    if (this.loading) return this.renderSelection();
    const exact = this.groups.filter((g) => g.kind === 'exact').length;
    const splits = state.splits.length >= 2 ? state.splits.join(', ') : '';
    const leakText = splits ? ` ${count(this.leakage)} span two split folders (${splits}): the same picture in training and evaluation data, the classic split-leakage bug.` : ' Leakage is checked when the scanned folder has split folders (train, val, test…).';
    this.summary.textContent =
      this.total === 0
        ? `No duplicates among ${count(state.images)} images at cosine ≥ ${this.threshold}.${splits ? '' : leakText}`
        : `${count(this.total)} ${this.total === 1 ? 'group' : 'groups'} (${count(exact)} exact, ${count(this.total - exact)} near at cosine ≥ ${this.threshold}) among ${count(state.images)} images.${leakText}${this.groups.length < this.total ? ` The ${count(this.groups.length)} largest are listed.` : ''}`;
    const cards = this.groups.slice(0, this.shownGroups).map((g, i) => this.card(g, i));
    if (this.groups.length > this.shownGroups) {
      const more = el('button', { type: 'button', class: 'dup-more' }, [`Show ${count(Math.min(GROUPS_PER_PAGE, this.groups.length - this.shownGroups))} more`]);
      more.addEventListener('click', () => {
        this.shownGroups += GROUPS_PER_PAGE;
        this.render();
        this.requestThumbnails();
      });
      cards.push(more);
    }
    this.list.replaceChildren(...cards);
    this.renderSelection();
  }

  private card(g: DuplicateGroupDto, index: number): HTMLElement {
    const kind = g.kind === 'exact' ? 'Exact' : `Near · lowest cosine ${g.similarity.toFixed(3)}`;
    const folder = this.host.folder().replace(/[\\/]+$/, '');
    const items = g.rows.map((row, k) => {
      const image = g.images[k];
      const name = image.split(/[\\/]/).pop() ?? image;
      const relative = folder && image.startsWith(folder) && /[\\/]/.test(image[folder.length] ?? '') ? image.slice(folder.length + 1) : image;
      const dir = relative.slice(0, Math.max(0, relative.length - name.length - 1)) || '.';
      return el('figure', { class: 'dup-item', 'data-row': row, title: image }, [
        el('img', { src: this.host.thumbnail(row) ?? '', alt: '', 'data-row': row, draggable: 'false' }),
        el('figcaption', {}, [
          el('label', { class: 'dup-line' }, [el('input', { type: 'checkbox', class: 'dup-select', 'data-row': row, 'aria-label': `Select ${image}`, checked: this.host.selection.has(row) }), el('span', { class: 'dup-name' }, [name])]),
          el('span', { class: 'dup-dir muted' }, [dir]),
        ]),
      ]);
    });
    return el('section', { class: `dup-group${g.leakage ? ' leakage' : ''}`, role: 'listitem', 'data-group': index, 'data-kind': g.kind, 'aria-label': `${kind}: ${g.rows.length} images` }, [
      el('header', { class: 'dup-head' }, [
        el('span', { class: `kind kind-${g.kind}` }, [kind]),
        el('span', { class: 'muted' }, [`${count(g.rows.length)} images`]),
        ...(g.leakage ? [el('span', { class: 'leak-badge', title: 'The group spans two split folders' }, [`Leakage: ${g.splits.join(' + ')}`])] : []),
        el('span', { class: 'spring' }),
        el('button', { type: 'button', 'data-action': 'select-group' }, ['Select']),
        el('button', { type: 'button', 'data-action': 'show-group', title: 'Show this group in the table' }, ['Show in table']),
      ]),
      el('div', { class: 'dup-items' }, items),
    ]);
  }

  private renderSelection(): void {
    const n = this.host.selection.size;
    this.selectionText.textContent = n ? `${count(n)} selected` : '';
    this.copy.disabled = this.exportButton.disabled = this.clearSelection.disabled = n === 0;
    this.selectExtra.disabled = this.groups.length === 0;
  }

  /** Thumbnails of the groups in sight, through the view's one thumbnail path (the extension reads the rows). */
  private requestThumbnails(): void {
    if (!this.visible) return;
    const box = this.list.getBoundingClientRect();
    const rows: number[] = [];
    for (const card of this.list.querySelectorAll<HTMLElement>('.dup-group')) {
      const r = card.getBoundingClientRect();
      if (r.bottom < box.top - 200 || r.top > box.bottom + 200) continue;
      for (const img of card.querySelectorAll<HTMLImageElement>('img[data-row]')) {
        const row = Number(img.dataset.row);
        if (!this.host.thumbnail(row)) rows.push(row);
      }
    }
    if (rows.length > 0) this.host.post({ type: 'thumbnails', generation: this.host.generation(), rows: [...new Set(rows)].slice(0, MAX_THUMBNAILS_PER_REQUEST) });
  }
}
