import { el } from '../dom';
import { THUMBNAIL_SIZES } from './messages';
import { qualityFilter, qualityHeader } from './qualityColumn';

/**
 * The dataset view's DOM, built in script so the host's HTML is only the CSP, the stylesheet and the
 * bundle. All text goes in through textContent: labels come from a model's config, paths from the disk.
 */

export interface DatasetDom {
  title: HTMLElement;
  folder: HTMLElement;
  scanText: HTMLElement;
  scanProgress: HTMLProgressElement;
  modes: Record<'all' | 'suspects' | 'errors', HTMLButtonElement>;
  labelText: HTMLInputElement;
  minScore: HTMLInputElement;
  maxScore: HTMLInputElement;
  folderSelect: HTMLSelectElement;
  qualitySelect: HTMLSelectElement;
  clearFilters: HTMLButtonElement;
  /** "Similar to X (N) ×": the row set the table is restricted to (a Find Similar result, a duplicate group). */
  rowSetChip: HTMLElement;
  rowSetText: HTMLElement;
  clearRowSet: HTMLButtonElement;
  mostUnique: HTMLButtonElement;
  leastUnique: HTMLButtonElement;
  resultCount: HTMLElement;
  selectionCount: HTMLElement;
  copyPaths: HTMLButtonElement;
  clearSelection: HTMLButtonElement;
  exportFormat: HTMLSelectElement;
  exportAll: HTMLButtonElement;
  exportView: HTMLButtonElement;
  exportSelection: HTMLButtonElement;
  thumbnailSize: HTMLSelectElement;
  headers: Record<'order' | 'path' | 'folder' | 'label' | 'score' | 'given' | 'uniqueness', HTMLButtonElement>;
  table: HTMLElement;
  viewport: HTMLElement;
  spacer: HTMLElement;
  rows: HTMLElement;
  empty: HTMLElement;
  status: HTMLElement;
  histogram: HTMLElement;
  histogramNote: HTMLElement;
  labelSummary: HTMLElement;
  mappings: HTMLTableSectionElement;
  /** The view's tabs; a feature's tab button stays hidden until that feature mounts into its panel (tabs.ts). */
  tabs: Record<DatasetTab, HTMLButtonElement>;
  panels: Record<DatasetTab, HTMLElement>;
}

export const DATASET_TABS = ['table', 'duplicates', 'map'] as const;
export type DatasetTab = (typeof DATASET_TABS)[number];
const TAB_TITLES: Record<DatasetTab, string> = { table: 'Table', duplicates: 'Duplicates', map: 'Map' };

const MODE_TITLES = { all: 'All', suspects: 'Suspects', errors: 'Errors' } as const;

export function buildDom(root: HTMLElement): DatasetDom {
  const title = el('h1', { id: 'title' }, ['Dataset']);
  const folder = el('span', { id: 'folder', class: 'muted' });
  const scanText = el('span', { id: 'scan-text' });
  const scanProgress = el('progress', { id: 'scan-progress', max: 1, value: 0, 'aria-label': 'Scan progress', hidden: true });
  const header = el('header', { class: 'ds-header' }, [el('div', { class: 'title-line' }, [title, folder]), el('div', { id: 'scan-status', class: 'scan-status', role: 'status' }, [scanProgress, scanText])]);

  const modes = {
    all: el('button', { id: 'mode-all', class: 'mode', 'aria-pressed': 'true', type: 'button' }, [MODE_TITLES.all]),
    suspects: el('button', { id: 'mode-suspects', class: 'mode', 'aria-pressed': 'false', type: 'button', title: 'Images whose folder the model disagrees with, or with a low top-1 score, most confident disagreement first' }, [MODE_TITLES.suspects]),
    errors: el('button', { id: 'mode-errors', class: 'mode', 'aria-pressed': 'false', type: 'button', title: 'Files that could not be read or decoded, with the reason' }, [MODE_TITLES.errors]),
  };
  const labelText = el('input', { id: 'filter-label', type: 'search', placeholder: 'Filter by label', 'aria-label': 'Filter by top-1 label text', spellcheck: 'false' });
  const minScore = el('input', { id: 'filter-min', type: 'number', min: 0, max: 1, step: 0.05, placeholder: '0', 'aria-label': 'Minimum top-1 score (0 to 1)' });
  const maxScore = el('input', { id: 'filter-max', type: 'number', min: 0, max: 1, step: 0.05, placeholder: '1', 'aria-label': 'Maximum top-1 score (0 to 1)' });
  const folderSelect = el('select', { id: 'filter-folder', 'aria-label': 'Folder' });
  const qualitySelect = qualityFilter();
  const clearFilters = el('button', { id: 'clear-filters', type: 'button' }, ['Clear filters']);
  const rowSetText = el('span', { class: 'chip-text' });
  const clearRowSet = el('button', { id: 'clear-row-set', class: 'chip-clear', type: 'button', 'aria-label': 'Show all rows again', title: 'Show all rows again' }, ['×']);
  const rowSetChip = el('span', { id: 'row-set', class: 'chip', role: 'status', hidden: true }, [rowSetText, clearRowSet]);
  const mostUnique = el('button', { id: 'most-unique', type: 'button', hidden: true, title: 'Sort by uniqueness, most unique first (mean distance to the nearest neighbours)' }, ['Most unique']);
  const leastUnique = el('button', { id: 'least-unique', type: 'button', hidden: true, title: 'Sort by uniqueness, least unique first: near-duplicates and over-represented images' }, ['Least unique']);
  const toolbar = el('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'Filters' }, [
    el('div', { class: 'modes', role: 'group', 'aria-label': 'Rows' }, [modes.all, modes.suspects, modes.errors]),
    labelText,
    el('span', { class: 'score-range' }, ['Score ', minScore, ' – ', maxScore]),
    folderSelect,
    qualitySelect,
    clearFilters,
    mostUnique,
    leastUnique,
    rowSetChip,
  ]);

  const resultCount = el('span', { id: 'result-count' });
  const selectionCount = el('span', { id: 'selection-count', class: 'muted' });
  const copyPaths = el('button', { id: 'copy-paths', type: 'button', disabled: true }, ['Copy paths']);
  const clearSelection = el('button', { id: 'clear-selection', type: 'button', disabled: true }, ['Clear selection']);
  const exportFormat = el('select', { id: 'export-format', 'aria-label': 'Export format' }, [el('option', { value: 'csv' }, ['CSV']), el('option', { value: 'jsonl' }, ['JSONL'])]);
  const exportSelection = el('button', { id: 'export-selection', type: 'button', disabled: true }, ['Export selected…']);
  const exportView = el('button', { id: 'export-view', type: 'button' }, ['Export view…']);
  const exportAll = el('button', { id: 'export-all', type: 'button' }, ['Export all…']);
  const sizeNames = ['Small', 'Medium', 'Large'];
  const thumbnailSize = el(
    'select',
    { id: 'thumbnail-size', 'aria-label': 'Thumbnail size', title: 'Thumbnail size' },
    THUMBNAIL_SIZES.map((px, i) => el('option', { value: px }, [`${sizeNames[i]} thumbnails`])),
  );
  // Buttons never wrap inside themselves; the counts shrink first (see media/dataset.css).
  const actions = el('div', { class: 'actions' }, [
    resultCount,
    selectionCount,
    el('span', { class: 'spring' }),
    thumbnailSize,
    copyPaths,
    clearSelection,
    el('span', { class: 'export-group', role: 'group', 'aria-label': 'Export' }, [exportFormat, exportSelection, exportView, exportAll]),
  ]);

  const headerCell = (key: keyof DatasetDom['headers'], text: string, cls: string) => el('button', { class: `th sort ${cls}`, type: 'button', 'data-sort': key, role: 'columnheader', 'aria-sort': 'none' }, [text]);
  const headers = {
    order: headerCell('order', '#', 'c-order'),
    path: headerCell('path', 'Path', 'c-path'),
    folder: headerCell('folder', 'Folder', 'c-folder'),
    label: headerCell('label', 'Top-1 label', 'c-label'),
    score: headerCell('score', 'Score', 'c-score'),
    // Shown only while they mean something: a Find Similar result, and a dataset with embeddings.
    given: headerCell('given', 'Similarity', 'c-sim'),
    uniqueness: headerCell('uniqueness', 'Uniqueness', 'c-uniq'),
  };
  headers.uniqueness.title = 'Mean cosine distance to the nearest neighbours (FiftyOne’s uniqueness)';
  const thead = el('div', { class: 'thead', role: 'row' }, [
    headers.order,
    el('span', { class: 'th c-thumb', role: 'columnheader' }, ['Image']),
    headers.path,
    headers.folder,
    headers.label,
    headers.score,
    el('span', { class: 'th c-check', role: 'columnheader' }, ['Check']),
    qualityHeader(),
    headers.given,
    headers.uniqueness,
  ]);
  const rows = el('div', { id: 'rows', class: 'rows', role: 'rowgroup' });
  const spacer = el('div', { id: 'spacer', class: 'spacer' }, [rows]);
  const viewport = el('div', { id: 'viewport', class: 'viewport', tabindex: 0, 'aria-label': 'Scan results; arrow keys move, Enter explains, Space selects, Right shows the top-5' }, [spacer]);
  const empty = el('div', { id: 'empty', class: 'empty', hidden: true });
  const table = el('div', { id: 'table', class: 'table', role: 'grid', 'aria-rowcount': 0 }, [thead, viewport, empty]);
  const status = el('div', { id: 'status', class: 'status', role: 'status', hidden: true });
  const main = el('main', { class: 'ds-main' }, [toolbar, actions, table, status]);

  const histogram = el('div', { id: 'histogram', class: 'histogram' });
  const histogramNote = el('p', { id: 'histogram-note', class: 'muted' });
  const labelSummary = el('p', { id: 'label-summary' });
  const mappings = el('tbody', { id: 'mappings' });
  const mappingTable = el('table', { id: 'mapping-table', class: 'mappings' }, [
    el('thead', {}, [
      el('tr', {}, [
        el('th', { class: 'm-folder' }, ['Folder → model label']),
        el('th', { class: 'm-kind' }, ['Match']),
        el('th', { class: 'm-count num', title: 'Images whose folder label is not in their top-K, of the images in the folder' }, ['Disagree']),
        el('th', { class: 'm-edit' }, [el('span', { class: 'visually-hidden' }, ['Correct'])]),
      ]),
    ]),
    mappings,
  ]);
  const side = el('aside', { class: 'ds-side' }, [
    el('section', { class: 'card', id: 'histogram-card', 'aria-labelledby': 'histogram-title' }, [el('h2', { id: 'histogram-title' }, ['Top-1 classes']), histogram, histogramNote]),
    el('section', { class: 'card', id: 'label-check', 'aria-labelledby': 'label-check-title' }, [el('h2', { id: 'label-check-title' }, ['Label check']), labelSummary, mappingTable]),
  ]);

  const tabs = Object.fromEntries(
    DATASET_TABS.map((tab) => [tab, el('button', { id: `tab-${tab}`, class: 'tab', role: 'tab', type: 'button', 'aria-selected': String(tab === 'table'), 'aria-controls': `panel-${tab}`, hidden: tab !== 'table' }, [TAB_TITLES[tab]])]),
  ) as Record<DatasetTab, HTMLButtonElement>;
  const panels: Record<DatasetTab, HTMLElement> = {
    table: el('div', { id: 'panel-table', class: 'ds-layout', role: 'tabpanel', 'aria-labelledby': 'tab-table' }, [main, side]),
    duplicates: el('div', { id: 'panel-duplicates', class: 'ds-panel', role: 'tabpanel', 'aria-labelledby': 'tab-duplicates', hidden: true }),
    map: el('div', { id: 'panel-map', class: 'ds-panel', role: 'tabpanel', 'aria-labelledby': 'tab-map', hidden: true }),
  };
  const tabBar = el('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Dataset views' }, DATASET_TABS.map((tab) => tabs[tab]));

  root.replaceChildren(header, tabBar, ...DATASET_TABS.map((tab) => panels[tab]));
  return {
    tabs,
    panels,
    title,
    folder,
    scanText,
    scanProgress,
    modes,
    labelText,
    minScore,
    maxScore,
    folderSelect,
    qualitySelect,
    clearFilters,
    rowSetChip,
    rowSetText,
    clearRowSet,
    mostUnique,
    leastUnique,
    resultCount,
    selectionCount,
    copyPaths,
    clearSelection,
    exportFormat,
    exportAll,
    exportView,
    exportSelection,
    thumbnailSize,
    headers,
    table,
    viewport,
    spacer,
    rows,
    empty,
    status,
    histogram,
    histogramNote,
    labelSummary,
    mappings,
  };
}
