/**
 * The dataset view's host side (DatasetSession) against a real results table on a generated results file:
 * paging, sorting, filtering, the histogram, the label check and its corrections, suspects ranking,
 * thumbnails (only for rows of the scan), open, copy, export in the CLI's schema, stale and malformed
 * messages, and following a file another process appends to. Inference is a stand-in here; the real
 * worker is exercised in extension-datasetWorker.test.ts.
 */
import assert from 'node:assert/strict';
import { appendFile, readFile, rm } from 'node:fs/promises';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Prediction } from '../../src/core/predictions';
import { LabelChecker, mapFolders, type LabelOverrides } from '../../src/core/scan/labelCheck';
import { searchLabels } from '../../src/core/scan/labelSearch';
import { CSV_COLUMNS, parseJsonLine, toJsonLine, type ScanRecord } from '../../src/core/scan/output';
import { ResultTable } from '../../src/core/scan/resultTable';
import { DatasetSession, type DatasetSessionDeps } from '../../src/extension/dataset/datasetSession';
import { InferenceError } from '../../src/extension/inference/inferenceClient';
import { silentLogger, type Logger } from '../../src/extension/util/logger';
import type { FolderOverrides } from '../../src/extension/worker/workerProtocol';
import type { DatasetHostMessage, DatasetQueryDto, DatasetRowDto } from '../../src/shared/protocol';
import { FIXTURE_DIR, tempDir } from '../helpers/fixtures';

const LABELS: string[] = (() => {
  const config = require(path.join(FIXTURE_DIR, 'config.json')) as { id2label: Record<string, string> };
  return Object.keys(config.id2label)
    .sort((a, b) => Number(a) - Number(b))
    .map((k) => config.id2label[k]);
})();
const FOLDERS = ['tabby', 'river_otters', 'balloon', 'xyz', null] as const;
const TABBY = 9;
const OTTER = 7;
const N = 600;

/** RFC 4180 records with a header row, as objects (enough for csv-stringify's output). */
function parseCsv(text: string): Record<string, string>[] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') cell += text[++i];
      else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') (row.push(cell), (cell = ''));
    else if (c === '\n') (row.push(cell), rows.push(row), (row = []), (cell = ''));
    else if (c !== '\r') cell += c;
  }
  if (cell || row.length) (row.push(cell), rows.push(row));
  const [header, ...body] = rows;
  return body.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]])));
}

/** Deterministic rows: mostly agreeing with their folder, some confidently not, some low-scored, some errors. */
function record(i: number, root: string): ScanRecord {
  const folderLabel = FOLDERS[i % FOLDERS.length];
  const image = path.join(root, folderLabel ?? '', `img_${i}.png`);
  const base = { image, folder: folderLabel ?? '', folderLabel };
  if (i % 97 === 13) return { ...base, error: i % 2 ? 'file is empty (0 bytes)' : 'not a recognised image format', errorCode: 'IMAGE_DECODE' };
  const home = folderLabel === 'tabby' ? TABBY : folderLabel === 'river_otters' ? OTTER : folderLabel === 'balloon' ? 6 : (i * 3) % 10;
  const wrong = i % 11 === 0;
  const top1 = wrong ? (home + 1 + (i % 3)) % 10 : home;
  const s1 = 0.05 + ((i * 37) % 90) / 100;
  const order = [top1, ...Array.from({ length: 10 }, (_, k) => k).filter((k) => k !== top1 && !(wrong && k === home))].slice(0, 5);
  const top: Prediction[] = order.map((index, k) => ({ index, label: LABELS[index], score: k === 0 ? s1 : (1 - s1) / (k + 2) }));
  return { ...base, top };
}

interface Harness {
  session: DatasetSession;
  posted: DatasetHostMessage[];
  opened: string[];
  copied: string[];
  thumbnailCalls: string[];
  overrides: FolderOverrides;
  exportTo: { file?: string };
  warnings: string[];
  table: ResultTable;
}

/** A stand-in for the inference client: the label work uses the real core functions the worker uses. */
function fakeInference(thumbnailCalls: string[], thumbnailDelayMs = 0): DatasetSessionDeps['inference'] {
  const call = async (name: string, args: any, options: { signal?: AbortSignal } = {}): Promise<unknown> => {
    switch (name) {
      case 'mapFolders': {
        const automatic = mapFolders(args.folders, LABELS, { candidates: 8 });
        return mapFolders(args.folders, LABELS, { overrides: args.overrides as LabelOverrides, candidates: 8 }).map((m, i) => ({
          ...m,
          candidates: m.kind === 'override' ? automatic[i].candidates : m.candidates,
          acceptedLabels: m.accepted.map((k) => LABELS[k]),
        }));
      }
      case 'searchLabels':
        return searchLabels(LABELS, args.query, args.limit);
      case 'thumbnail': {
        thumbnailCalls.push(args.file);
        if (thumbnailDelayMs) await sleep(thumbnailDelayMs);
        if (options.signal?.aborted) throw new InferenceError('CANCELLED', 'cancelled');
        return `data:image/png;base64,${Buffer.from(path.basename(args.file)).toString('base64')}`;
      }
      default:
        throw new Error(`unexpected call ${name}`);
    }
  };
  return { call: call as DatasetSessionDeps['inference']['call'] };
}

async function harness(table: ResultTable, options: { thumbnailDelayMs?: number; log?: Logger } = {}): Promise<Harness> {
  const h = { posted: [], opened: [], copied: [], thumbnailCalls: [], overrides: {}, exportTo: {}, warnings: [], table } as unknown as Harness;
  h.session = new DatasetSession('Dataset: data', path.dirname(table.file), {
    inference: fakeInference(h.thumbnailCalls, options.thumbnailDelayMs),
    post: (m) => h.posted.push(m),
    openImage: (file) => h.opened.push(file),
    copyText: async (text) => h.copied.push(text),
    pickExportFile: async () => h.exportTo.file,
    overrides: { get: () => h.overrides, set: (value) => (h.overrides = value) },
    log: options.log ?? { ...silentLogger, warn: (m: string) => h.warnings.push(m) },
    infoIntervalMs: 0,
  });
  await h.session.setTable(table);
  return h;
}

function last<T extends DatasetHostMessage['type']>(h: Harness, type: T): Extract<DatasetHostMessage, { type: T }> | undefined {
  return h.posted.filter((m): m is Extract<DatasetHostMessage, { type: T }> => m.type === type).at(-1);
}

async function page(h: Harness, query: Partial<DatasetQueryDto>, offset = 0, limit = 100): Promise<{ total: number; rows: DatasetRowDto[] }> {
  const requestId = h.posted.length + 1000;
  const full: DatasetQueryDto = { mode: 'all', filter: {}, sort: { key: 'order', descending: false }, ...query };
  await h.session.receive({ type: 'query', requestId, generation: h.session.currentGeneration, query: full, offset, limit });
  const reply = h.posted.find((m) => m.type === 'page' && m.requestId === requestId);
  assert.ok(reply && reply.type === 'page', `no page for ${JSON.stringify(full)}`);
  return reply;
}

let dir: string;
let records: ScanRecord[];
let table: ResultTable;

before(async () => {
  dir = await tempDir('beit-dataset-session-');
  records = Array.from({ length: N }, (_, i) => record(i, path.join(dir, 'data')));
  table = await ResultTable.create(path.join(dir, 'results.jsonl'));
  for (const r of records) table.append(r);
});

after(async () => {
  await table?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('DatasetSession', () => {
  it('answers ready with the dataset, the scan state and the label check', async () => {
    const h = await harness(table);
    h.posted.length = 0;
    await h.session.receive({ type: 'ready' });
    const info = last(h, 'dataset')!.info;
    assert.equal(info.rows, N);
    assert.equal(info.errors, records.filter((r) => r.error).length);
    assert.deepEqual(info.folders.map((f) => [f.folderLabel, f.count]), FOLDERS.map((f) => [f, N / FOLDERS.length]));
    assert.equal(last(h, 'scan')!.state.status, 'idle');
    const check = last(h, 'labelCheck')!.check;
    const byFolder = Object.fromEntries(check.mappings.map((m) => [m.folder, m]));
    assert.deepEqual(Object.keys(byFolder).sort(), ['balloon', 'river_otters', 'tabby', 'xyz']);
    assert.equal(byFolder.river_otters.kind, 'exact');
    assert.equal(byFolder.tabby.kind, 'fuzzy');
    assert.deepEqual(byFolder.tabby.accepted, [{ index: TABBY, label: LABELS[TABBY] }]);
    assert.equal(byFolder.xyz.kind, 'none');
    assert.ok(byFolder.tabby.candidates.length > 0);
  });

  it('pages and sorts by every column from the table', async () => {
    const h = await harness(table);
    const first = await page(h, {}, 0, 50);
    assert.equal(first.total, N);
    assert.deepEqual(first.rows.map((r) => r.row), Array.from({ length: 50 }, (_, i) => i));
    assert.equal(first.rows[1].name, 'img_1.png');
    const beyond = await page(h, {}, N - 10, 100);
    assert.equal(beyond.rows.length, 10);

    const byScore = await page(h, { sort: { key: 'score', descending: true } }, 0, 500);
    const scores = byScore.rows.filter((r) => r.top).map((r) => r.top![0].score);
    assert.deepEqual(scores, [...scores].sort((a, b) => b - a));
    const byPath = await page(h, { sort: { key: 'path', descending: false } }, 0, 500);
    const paths = byPath.rows.map((r) => r.image);
    assert.deepEqual(paths, [...paths].sort(new Intl.Collator(undefined, { numeric: true }).compare));
    assert.ok(paths.indexOf(records[5].image) < paths.indexOf(records[10].image), 'natural order');
    const byFolderDesc = await page(h, { sort: { key: 'folder', descending: true } }, 0, 500);
    assert.equal(byFolderDesc.rows[0].folderLabel, 'xyz');
    const byLabel = await page(h, { mode: 'all', filter: {}, sort: { key: 'label', descending: false } }, 0, 500);
    const labels = byLabel.rows.filter((r) => r.top).map((r) => r.top![0].label);
    assert.deepEqual(labels, [...labels].sort((a, b) => a.localeCompare(b)));
  });

  it('filters by label text, score range, folder, errors, and a histogram bar', async () => {
    const h = await harness(table);
    const otters = await page(h, { filter: { labelText: 'OTTER', minScore: 0.3, maxScore: 0.8 } }, 0, 500);
    const expected = records.filter((r) => r.top && r.top[0].label === 'river otter' && r.top[0].score >= 0.3 && r.top[0].score <= 0.8);
    assert.equal(otters.total, expected.length);
    assert.ok(otters.rows.every((r) => r.top![0].label === 'river otter' && r.top![0].score >= 0.3 - 1e-6 && r.top![0].score <= 0.8 + 1e-6));
    const root = await page(h, { filter: { folderLabel: null } }, 0, 500);
    assert.equal(root.total, N / FOLDERS.length);
    assert.ok(root.rows.every((r) => r.folderLabel === null));
    const errors = await page(h, { mode: 'errors' }, 0, 500);
    assert.equal(errors.total, records.filter((r) => r.error).length);
    assert.ok(errors.rows.every((r) => r.error && r.errorCode === 'IMAGE_DECODE' && r.top === undefined));
    assert.match(errors.rows[0].error!, /empty \(0 bytes\)|not a recognised image/);

    await h.session.receive({ type: 'histogram', requestId: 7, generation: h.session.currentGeneration, query: { mode: 'all', filter: { folderLabel: 'tabby' }, sort: { key: 'order', descending: false } }, limit: 3 });
    const histogram = last(h, 'histogram')!;
    const tabbyRows = records.filter((r) => r.folderLabel === 'tabby' && r.top);
    assert.equal(histogram.total, tabbyRows.length);
    assert.equal(histogram.bars.length, 3);
    assert.equal(histogram.bars[0].index, TABBY, 'most tabby-folder images are predicted tabby');
    const bar = await page(h, { filter: { labelIndex: histogram.bars[1].index, folderLabel: 'tabby' } }, 0, 500);
    assert.equal(bar.total, histogram.bars[1].count);
  });

  it('ranks suspects like the CLI’s label check, flags rows, and applies a correction', async () => {
    const h = await harness(table);
    const suspects = await page(h, { mode: 'suspects' }, 0, 500);
    const checker = new LabelChecker(LABELS);
    for (const r of records) checker.add(r);
    const reference = checker.suspects();
    assert.equal(suspects.total, reference.length);
    assert.deepEqual(suspects.rows.map((r) => r.image), reference.slice(0, 500).map((s) => s.image));
    assert.ok(suspects.rows[0].check!.reasons.includes('disagree'));
    const margins = suspects.rows.filter((r) => r.check!.reasons.includes('disagree')).map((r) => r.check!.confidence);
    assert.deepEqual(margins, [...margins].sort((a, b) => b - a), 'most confident disagreement first');
    assert.equal(last(h, 'labelCheck'), undefined, 'the check is computed on demand, posted when asked');

    // In "all" too, each row of a mapped folder carries its check.
    const all = await page(h, {}, 0, 20);
    const misfiled = all.rows.find((r) => r.row === 0)!;
    assert.equal(misfiled.folderLabel, 'tabby');
    assert.deepEqual(misfiled.check?.reasons.includes('disagree'), true);
    assert.equal(misfiled.check?.expected?.index, TABBY);

    // Only suspects in one folder, sorted by score instead of rank.
    const tabbyByScore = await page(h, { mode: 'suspects', filter: { folderLabel: 'tabby' }, sort: { key: 'score', descending: false } }, 0, 500);
    assert.ok(tabbyByScore.rows.every((r) => r.folderLabel === 'tabby' && r.check!.reasons.length > 0));
    const s = tabbyByScore.rows.map((r) => r.top![0].score);
    assert.deepEqual(s, [...s].sort((a, b) => a - b));

    // The user says "xyz" holds glacier lilies: the folder is mapped, and its disagreements appear.
    await h.session.receive({ type: 'setMapping', folder: 'xyz', labels: [4] });
    assert.deepEqual(h.overrides, { xyz: [4] });
    const corrected = last(h, 'labelCheck')!.check;
    const xyz = corrected.mappings.find((m) => m.folder === 'xyz')!;
    assert.equal(xyz.kind, 'override');
    assert.deepEqual(xyz.accepted, [{ index: 4, label: 'glacier lily' }]);
    const withOverride = new LabelChecker(LABELS, { overrides: { xyz: [4] } });
    for (const r of records) withOverride.add(r);
    assert.equal(corrected.disagreements, withOverride.summary.disagreements);
    assert.ok(corrected.disagreements > checker.summary.disagreements);
    assert.equal(xyz.disagreements, records.filter((r) => r.folderLabel === 'xyz' && r.top && !r.top.some((p) => p.index === 4)).length);
    const after = await page(h, { mode: 'suspects' }, 0, 500);
    assert.equal(after.total, withOverride.suspects().length);

    // Several labels accepted, then back to automatic.
    await h.session.receive({ type: 'setMapping', folder: 'tabby', labels: [TABBY, OTTER] });
    assert.deepEqual(last(h, 'labelCheck')!.check.mappings.find((m) => m.folder === 'tabby')!.accepted.map((a) => a.index), [TABBY, OTTER]);
    await h.session.receive({ type: 'setMapping', folder: 'xyz', labels: 'auto' });
    await h.session.receive({ type: 'setMapping', folder: 'tabby', labels: 'auto' });
    assert.deepEqual(h.overrides, {});
    assert.equal(last(h, 'labelCheck')!.check.mappings.find((m) => m.folder === 'xyz')!.kind, 'none');

    await h.session.receive({ type: 'searchLabels', requestId: 77, query: 'otter', limit: 5 });
    assert.deepEqual(last(h, 'labels'), { type: 'labels', requestId: 77, results: [{ index: OTTER, label: 'river otter' }] });
  });

  it('fetches thumbnails only for rows of this scan, once, and cancels those scrolled away', async () => {
    const h = await harness(table, { thumbnailDelayMs: 30 });
    const gen = h.session.currentGeneration;
    const errorRow = records.findIndex((r) => r.error);
    await h.session.receive({ type: 'thumbnails', generation: gen, rows: [0, 1, errorRow, N + 5] });
    await sleep(80);
    assert.deepEqual(h.thumbnailCalls, [records[0].image, records[1].image], 'not the error row, not a row that does not exist');
    const thumbs = h.posted.filter((m) => m.type === 'thumbnail');
    assert.deepEqual(thumbs.map((m) => m.type === 'thumbnail' && m.row).sort(), [0, 1]);
    assert.match((thumbs[0] as { src: string }).src, /^data:image\/png;base64,/);
    // Cached: asking again posts at once without another call.
    await h.session.receive({ type: 'thumbnails', generation: gen, rows: [0] });
    assert.equal(h.thumbnailCalls.length, 2);
    assert.equal(h.posted.filter((m) => m.type === 'thumbnail').length, 3);
    // Scrolling on before the first batch is answered: the rows that left the screen are dropped.
    h.posted.length = 0;
    await h.session.receive({ type: 'thumbnails', generation: gen, rows: [20, 21, 22] });
    await h.session.receive({ type: 'thumbnails', generation: gen, rows: [22, 23] });
    await sleep(100);
    assert.deepEqual(h.posted.filter((m) => m.type === 'thumbnail').map((m) => m.type === 'thumbnail' && m.row).sort(), [22, 23]);
  });

  it('opens, copies and exports rows by id; a file path from the webview is never accepted', async () => {
    const h = await harness(table);
    const gen = h.session.currentGeneration;
    await h.session.receive({ type: 'open', generation: gen, row: 3 });
    assert.deepEqual(h.opened, [records[3].image]);
    await h.session.receive({ type: 'open', generation: gen, row: records.findIndex((r) => r.error) });
    await h.session.receive({ type: 'open', generation: gen, row: N + 1 });
    await h.session.receive({ type: 'open', generation: gen, path: '/etc/passwd' });
    await h.session.receive({ type: 'open', generation: gen + 1, row: 4 });
    assert.deepEqual(h.opened, [records[3].image], 'error rows, missing rows, paths and stale tables open nothing');
    assert.ok(h.warnings.some((w) => /dropped an invalid message/.test(w)));

    await h.session.receive({ type: 'copyPaths', generation: gen, rows: [5, 2] });
    assert.deepEqual(h.copied, [`${records[5].image}\n${records[2].image}`]);
    assert.deepEqual(last(h, 'copied'), { type: 'copied', count: 2 });

    // Export all as JSONL: the CLI's lines, in file order.
    h.exportTo.file = path.join(dir, 'all.jsonl');
    await h.session.receive({ type: 'export', generation: gen, scope: 'all', format: 'jsonl' });
    const lines = (await readFile(h.exportTo.file, 'utf8')).trimEnd().split('\n');
    assert.deepEqual(lines, records.map((r) => toJsonLine(r)));
    assert.deepEqual(last(h, 'exported'), { type: 'exported', file: h.exportTo.file, count: N, format: 'jsonl' });

    // Export the current view (tabby suspects by rank) as CSV.
    h.exportTo.file = path.join(dir, 'view.csv');
    const view: DatasetQueryDto = { mode: 'suspects', filter: { folderLabel: 'tabby' }, sort: { key: 'order', descending: false } };
    await h.session.receive({ type: 'export', generation: gen, scope: 'view', format: 'csv', query: view });
    const csv = parseCsv(await readFile(h.exportTo.file, 'utf8'));
    const shown = await page(h, view, 0, 500);
    assert.deepEqual(Object.keys(csv[0]), [...CSV_COLUMNS]);
    assert.deepEqual(csv.map((r) => r.image), shown.rows.map((r) => r.image));
    assert.equal(Number(csv[0].top1_score), shown.rows[0].top![0].score);

    // Selected rows; the typed extension wins over the format picked.
    h.exportTo.file = path.join(dir, 'picked.jsonl');
    await h.session.receive({ type: 'export', generation: gen, scope: 'selection', format: 'csv', rows: [9, 1] });
    const picked = (await readFile(h.exportTo.file, 'utf8')).trimEnd().split('\n').map((l) => parseJsonLine(l)!.image);
    assert.deepEqual(picked, [records[9].image, records[1].image]);
    assert.equal(last(h, 'exported')!.format, 'jsonl');

    // Cancelled save dialog: nothing written, nothing posted.
    h.exportTo.file = undefined;
    const before = h.posted.length;
    await h.session.receive({ type: 'export', generation: gen, scope: 'all', format: 'csv' });
    assert.equal(h.posted.length, before);
  });

  it('follows rows another process appends and drops requests about a replaced table', async () => {
    const file = path.join(dir, 'growing.jsonl');
    const reader = await ResultTable.create(file);
    const writer = await ResultTable.open(file);
    const h = await harness(reader);
    try {
      for (const r of records.slice(0, 40)) writer.append(r);
      assert.equal(await h.session.refresh(), 40);
      await sleep(10);
      assert.equal(last(h, 'dataset')!.info.rows, 40);
      assert.equal((await page(h, {}, 0, 100)).total, 40);
      // Half a line (the writer is mid-write) is not a row yet.
      await appendFile(file, toJsonLine(records[40]).slice(0, 20));
      assert.equal(await h.session.refresh(), 0);
      await appendFile(file, `${toJsonLine(records[40]).slice(20)}\n`);
      assert.equal(await h.session.refresh(), 1);

      const oldGeneration = h.session.currentGeneration;
      await h.session.setTable(table);
      h.posted.length = 0;
      await h.session.receive({ type: 'query', requestId: 5, generation: oldGeneration, query: { mode: 'all', filter: {}, sort: { key: 'order', descending: false } }, offset: 0, limit: 10 });
      await h.session.receive({ type: 'thumbnails', generation: oldGeneration, rows: [0] });
      assert.deepEqual(h.posted, [], 'nothing answered for the replaced table');
    } finally {
      await writer.close();
      await reader.close();
    }
  });
});
