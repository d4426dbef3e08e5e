import type { ModelHostMessage, ModelInfoDto } from '../../shared/protocol';
import { el } from '../dom';
import { filterLabels, labelKeys } from './labelFilter';

/** Rows drawn at once: 21,841 labels as DOM rows would make typing in the filter lag; the filter narrows them. */
export const MAX_LABEL_ROWS = 500;

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MB`;
  return `${(n / 1024 ** 3).toFixed(2)} GB`;
}

const shape = (s: (number | string)[]) => `[${s.join(', ')}]`;

function table(head: string[], rows: (string | number)[][], attrs: Record<string, string> = {}): HTMLTableElement {
  return el('table', attrs, [el('thead', {}, [el('tr', {}, head.map((h) => el('th', {}, [h])))]), el('tbody', {}, rows.map((r) => el('tr', {}, r.map((c) => el('td', {}, [String(c)])))))]);
}

/** Renders what the host sends; the only input is the label filter. */
export class ModelView {
  private keys: number[] = [];

  constructor(private readonly root: HTMLElement) {
    root.replaceChildren(el('p', { class: 'status', 'data-testid': 'status' }, ['Loading the model…']));
  }

  handleMessage(raw: unknown): void {
    const m = raw as ModelHostMessage;
    if (m?.type === 'modelInfo') this.show(m.info);
    else if (m?.type === 'error') this.root.replaceChildren(el('p', { class: 'status error', 'data-testid': 'status' }, [String(m.message)]));
  }

  private show(info: ModelInfoDto): void {
    this.keys = labelKeys(info.labels.length, info.missingLabelKeys);
    const c = info.config;
    const filter = el('input', { type: 'search', placeholder: 'Filter labels: words, an index or an id2label key', 'aria-label': 'Filter labels', 'data-testid': 'label-filter' });
    const count = el('p', { class: 'count', 'data-testid': 'label-count' });
    const list = el('div', { class: 'labels', 'data-testid': 'labels' });
    this.root.replaceChildren(
      el('h1', {}, [`${info.family} model`]),
      el('section', { 'data-testid': 'summary' }, [
        table(
          ['', ''],
          [
            ['folder', info.dir],
            ['model id', info.modelId],
            ['architecture', info.architecture],
            ['parameters', info.parameters === null ? 'not recorded (converted before the count was kept: convert again)' : info.parameters.toLocaleString('en-US')],
            ['weights dtype', info.dtype],
            ['compute type', info.compute],
            info.remote
              ? ['runs on', `${info.remote.endpoints.join(', ')} (model ${info.remote.modelName}, beitLens.endpoint)`]
              : ['provider in use', info.provider],
          ],
          { class: 'kv' },
        ),
      ]),
      el('h2', {}, ['Configuration']),
      table(
        ['hidden size', 'layers', 'heads', 'head dim', 'MLP size', 'image', 'patch', 'grid', 'tokens', 'leading tokens', 'pooling', 'LayerNorm eps'],
        [[c.hiddenSize, c.numLayers, c.numHeads, c.headDim, c.intermediateSize, `${c.imageSize}x${c.imageSize}`, `${c.patchSize}x${c.patchSize}`, `${c.gridSize}x${c.gridSize}`, c.numTokens, c.leadingTokens, c.pooling, c.layerNormEps]],
        { 'data-testid': 'config' },
      ),
      el('h2', {}, ['Inputs and outputs']),
      table(
        ['graph', 'for', 'direction', 'name', 'type', 'shape'],
        info.graphs.flatMap((g) => [...g.inputs.map((t) => [g.file, g.role, 'input', t.name, t.type, shape(t.shape)]), ...g.outputs.map((t) => [g.file, g.role, 'output', t.name, t.type, shape(t.shape)])]),
        { 'data-testid': 'io' },
      ),
      el('h2', {}, ['Files']),
      table(['file', 'size'], info.files.map((f) => [f.name, formatBytes(f.bytes)]), { 'data-testid': 'files' }),
      el('h2', {}, [`Labels (${info.labels.length.toLocaleString('en-US')})`]),
      el('p', { 'data-testid': 'gaps' }, [
        info.missingLabelKeys.length === 0
          ? 'id2label keys run 0..N-1 without gaps: index and key are the same.'
          : `id2label skips key${info.missingLabelKeys.length > 1 ? 's' : ''} ${info.missingLabelKeys.join(', ')}: from the first gap on, a label's key is its index plus the gaps below it.`,
      ]),
      filter,
      count,
      list,
    );
    const render = () => {
      const { rows, total } = filterLabels(info.labels, this.keys, filter.value, MAX_LABEL_ROWS);
      count.textContent = total > rows.length ? `${total.toLocaleString('en-US')} labels match; the first ${rows.length} are shown: narrow the filter` : `${total.toLocaleString('en-US')} ${total === 1 ? 'label matches' : 'labels match'}`;
      list.replaceChildren(
        table(
          ['index', 'id2label key', 'label'],
          rows.map((r) => [r.index, r.key, r.label]),
          { 'data-testid': 'label-table' },
        ),
      );
      const body = list.querySelector('tbody');
      // Keys that differ from the index are marked, so the gap is visible where it matters.
      rows.forEach((r, i) => {
        if (r.key !== r.index) body?.children[i]?.classList.add('shifted');
      });
    };
    filter.addEventListener('input', render);
    render();
  }
}
