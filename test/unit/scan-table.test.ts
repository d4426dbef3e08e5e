import assert from 'node:assert/strict';
import { appendFileSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { createCsvWriter, createJsonlWriter, CSV_COLUMNS, exportResults, parseJsonLine, toCsvRow, toJsonLine, type ScanRecord } from '../../src/core/scan/output';
import { ResultTable } from '../../src/core/scan/resultTable';
import type { ScanResult } from '../../src/core/scan/scanner';
import { tempDir } from '../helpers/fixtures';

const LABELS = ['tabby, tabby cat', 'river otter', 'hot air balloon', 'glacier lily'];
const FOLDERS = ['tabby', 'river_otters', 'balloon', null] as const;

function result(i: number): ScanResult {
  const folderLabel = FOLDERS[i % 4];
  const base = { image: `/data/${folderLabel ?? ''}/img_${String(i).padStart(4, '0')}.png`, folder: folderLabel ?? '', folderLabel, seq: i, root: 0, rootName: '/data', source: 'model' as const };
  if (i % 50 === 7) return { ...base, error: 'file is empty (0 bytes)', errorCode: 'IMAGE_DECODE' };
  const top1 = (i * 7) % 4;
  const score = ((i * 37) % 100) / 100;
  return { ...base, top: [{ index: top1, label: LABELS[top1], score }, { index: (top1 + 1) % 4, label: LABELS[(top1 + 1) % 4], score: (1 - score) / 2 }] };
}

async function drain(stream: PassThrough): Promise<string> {
  let text = '';
  stream.on('data', (d) => (text += d));
  await new Promise((r) => stream.on('end', r));
  return text;
}

describe('ResultTable: sort, filter and page without loading results', () => {
  it('restricts to a given row list, in its order or sorted, combined with the other filters', async () => {
    const file = path.join(await tempDir('beit-table-'), 'results.jsonl');
    const table = await ResultTable.create(file);
    const all = Array.from({ length: 60 }, (_, i) => result(i));
    for (const r of all) table.append(r);
    const list = [42, 3, 57, 7, 3, 999, -1, 1.5, 20];
    const given = await table.query({ filter: { rows: list }, sort: { key: 'given' } });
    assert.deepEqual(given.rows.map((r) => r.row), [42, 3, 57, 7, 20], 'unknown, negative, fractional and repeated ids are dropped');
    const reversed = await table.query({ filter: { rows: list }, sort: { key: 'given', descending: true } });
    assert.deepEqual(reversed.rows.map((r) => r.row), [20, 7, 57, 3, 42]);
    const byOrder = await table.query({ filter: { rows: list, errors: 'exclude' }, sort: { key: 'order' } });
    assert.deepEqual(byOrder.rows.map((r) => r.row), [3, 20, 42], 'rows 7 and 57 are error rows');
    const none = await table.query({ filter: { rows: [] } });
    assert.equal(none.total, 0);
    await table.close();
  });

  it('answers queries from its columns and reads back only the page', async () => {
    const file = path.join(await tempDir('beit-table-'), 'results.jsonl');
    const table = await ResultTable.create(file);
    const all = Array.from({ length: 1000 }, (_, i) => result(i));
    for (const r of all) table.append(r);
    assert.equal(table.size, 1000);

    const byScore = await table.query({ sort: { key: 'score', descending: true }, limit: 5 });
    assert.equal(byScore.total, 1000);
    const okScores = all.filter((r) => r.top).map((r) => r.top![0].score).sort((a, b) => b - a);
    assert.deepEqual(byScore.rows.map((r) => r.top![0].score), okScores.slice(0, 5));
    const lastPage = await table.query({ sort: { key: 'score', descending: true }, offset: 990, limit: 50 });
    assert.equal(lastPage.rows.length, 10);
    assert.ok(lastPage.rows.every((r) => r.error !== undefined), 'error rows (no score) sort last');

    const otters = await table.query({ filter: { labelText: 'OTTER', minScore: 0.5 }, limit: 1000 });
    assert.equal(otters.total, all.filter((r) => r.top && r.top[0].index === 1 && r.top[0].score >= 0.5).length);
    assert.ok(otters.rows.every((r) => r.top![0].label === 'river otter' && r.top![0].score >= 0.5));
    const folder = await table.query({ filter: { folderLabel: 'balloon', errors: 'exclude' }, sort: { key: 'order' }, limit: 3 });
    assert.deepEqual(folder.rows.map((r) => r.image), all.filter((r) => r.folderLabel === 'balloon' && !r.error).slice(0, 3).map((r) => r.image));
    const root = await table.query({ filter: { folderLabel: null }, limit: 1 });
    assert.equal(root.total, 250);
    const errors = await table.query({ filter: { errors: 'only' } });
    assert.equal(errors.total, 20);
    assert.deepEqual(errors.rows[0], { ...parseJsonLine(toJsonLine(all[7]))!, row: 7 });

    const histogram = table.histogram();
    assert.equal(histogram.reduce((n, h) => n + h.count, 0), 980);
    assert.deepEqual(histogram.map((h) => h.index).sort(), [0, 1, 2, 3]);
    const lilies = table.histogram({ labelIndex: 3 });
    assert.deepEqual(lilies.map((h) => h.label), ['glacier lily']);
    assert.deepEqual(table.folders().map((f) => [f.folderLabel, f.count]), [['tabby', 250], ['river_otters', 250], ['balloon', 250], [null, 250]]);
    const byLabel = await table.query({ sort: { key: 'label' }, filter: { errors: 'exclude' }, limit: 1000 });
    const labelsInOrder = byLabel.rows.map((r) => r.top![0].label);
    assert.deepEqual(labelsInOrder, [...labelsInOrder].sort((a, b) => a.localeCompare(b)));

    let streamed = 0;
    for await (const row of table.rows({ folderLabel: 'tabby' })) {
      assert.equal(row.folderLabel, 'tabby');
      streamed++;
    }
    assert.equal(streamed, 250);
    await table.close();

    // A results file reopens to the same table; a torn last line is ignored.
    appendFileSync(file, '{"image":"/data/torn');
    const reopened = await ResultTable.open(file);
    assert.equal(reopened.size, 1000);
    assert.deepEqual((await reopened.query({ sort: { key: 'score', descending: true }, limit: 5 })).rows, byScore.rows);
    await reopened.close();
  });

  it('path order is the same for two scans that finished their rows in different orders, ties included', async () => {
    // Names the numeric collator calls equal ("img2"/"img02", "a"/"A" in some locales): without a
    // tie-break on the text they would fall back to the row id, which is completion order.
    const names = ['img10.png', 'img2.png', 'img02.png', 'img1.png', 'A.png', 'a.png', 'b.png', 'img002.png', 'ü.png', 'u.png'];
    const records = names.flatMap((n, i) => [
      { image: `/data/tabby/${n}`, folder: 'tabby', folderLabel: 'tabby', top: [{ index: 0, label: LABELS[0], score: 0.5 + i / 100 }] },
      { image: `/data/balloon/${n}`, folder: 'balloon', folderLabel: 'balloon', error: 'file is empty (0 bytes)', errorCode: 'IMAGE_DECODE' },
    ]) as ScanRecord[];
    const dir = await tempDir('beit-table-order-');
    const orders: string[][] = [];
    // Three completion orders: as listed, reversed, and interleaved (what a pool of decoders produces).
    for (const [k, order] of [records, [...records].reverse(), [...records.filter((_, i) => i % 3 === 1), ...records.filter((_, i) => i % 3 !== 1)]].entries()) {
      const table = await ResultTable.create(path.join(dir, `scan-${k}.jsonl`));
      for (const r of order) table.append(r);
      const page = await table.query({ sort: { key: 'path' }, limit: 100 });
      orders.push(page.rows.map((r) => r.image));
      const descending = await table.query({ sort: { key: 'path', descending: true }, limit: 100 });
      assert.deepEqual(descending.rows.map((r) => r.image), [...orders[k]].reverse(), 'descending is the exact reverse');
      await table.close();
    }
    assert.equal(new Set(orders[0]).size, records.length);
    assert.deepEqual(orders[1], orders[0]);
    assert.deepEqual(orders[2], orders[0]);
    // Numeric-aware: img1 < img2 < img10 within a folder; the folder comes first in the path.
    const tabby = orders[0].filter((p) => p.startsWith('/data/tabby/')).map((p) => path.basename(p));
    assert.ok(tabby.indexOf('img1.png') < tabby.indexOf('img2.png') && tabby.indexOf('img2.png') < tabby.indexOf('img10.png'), tabby.join(' '));
    assert.ok(orders[0].indexOf('/data/balloon/img1.png') < orders[0].indexOf('/data/tabby/a.png'));
  });
});

describe('scan output writers', () => {
  const tricky: ScanRecord = {
    image: '/data/caf\udce9 "quoted", name.png',
    folder: 'x',
    folderLabel: 'x',
    top: [{ index: 3, label: 'crème brûlée, burnt cream', score: 0.5 }, ...Array.from({ length: 6 }, (_, i) => ({ index: i + 10, label: `l${i}`, score: 0.01 }))],
  };

  it('JSONL keeps the classify --json schema plus the folder, the content hash and the root, and round-trips odd bytes', async () => {
    const hash = 'ab'.repeat(32);
    const line = toJsonLine({ ...tricky, hash, root: 1, rootName: 'val/', seq: 4, source: 'cache' } satisfies ScanResult);
    assert.deepEqual(Object.keys(JSON.parse(line)), ['image', 'folder', 'folderLabel', 'top', 'sha256', 'root']);
    assert.ok(line.includes('\\udce9'));
    assert.deepEqual(parseJsonLine(line), { ...tricky, sha256: hash, root: 'val/' });
    assert.deepEqual(Object.keys(JSON.parse(toJsonLine({ ...tricky, root: 0, rootName: 'x', seq: 0, source: 'model' }))), ['image', 'folder', 'folderLabel', 'top', 'root'], 'no sha256 for a file never read');
    const error = toJsonLine({ image: 'a.png', folder: '', folderLabel: null, error: 'permission denied', errorCode: 'FILE_UNREADABLE' });
    assert.deepEqual(JSON.parse(error), { image: 'a.png', folder: '', folderLabel: null, error: 'permission denied', errorCode: 'FILE_UNREADABLE' });
    const out = new PassThrough();
    const writer = createJsonlWriter(out);
    const text = drain(out);
    await writer.write(tricky);
    await writer.close();
    assert.equal(await text, `${toJsonLine(tricky)}\n`);
  });

  it('CSV quotes with csv-stringify and has the shared columns', async () => {
    assert.deepEqual(toCsvRow(tricky).slice(0, 5), ['/data/caf\uFFFD "quoted", name.png', 'x', 3, 'crème brûlée, burnt cream', 0.5]);
    assert.equal(JSON.parse(toCsvRow(tricky)[5] as string).length, 5);
    const out = new PassThrough();
    const writer = createCsvWriter(out);
    const text = drain(out);
    await writer.write(tricky);
    await writer.write({ image: 'b.png', folder: '', folderLabel: null, error: 'bad, "very"' });
    await writer.close();
    const lines = (await text).trimEnd().split('\n');
    assert.equal(lines[0], CSV_COLUMNS.join(','));
    assert.ok(lines[1].startsWith('"/data/caf\uFFFD ""quoted"", name.png",x,3,"crème brûlée, burnt cream",0.5,"[{""index"":3'));
    assert.equal(lines[2], 'b.png,,,,,,"bad, ""very"""');
  });

  it('exports a filtered selection from a table to CSV and JSONL files', async () => {
    const dir = await tempDir('beit-export-');
    const table = await ResultTable.create(path.join(dir, 'table.jsonl'));
    for (let i = 0; i < 100; i++) table.append(result(i));
    const n = await exportResults(path.join(dir, 'sel.csv'), table.rows({ folderLabel: 'tabby', errors: 'exclude' }));
    assert.equal(n, 25);
    assert.equal(readFileSync(path.join(dir, 'sel.csv'), 'utf8').trimEnd().split('\n').length, 26);
    assert.equal(await exportResults(path.join(dir, 'all.jsonl'), table.rows()), 100);
    assert.equal(readFileSync(path.join(dir, 'all.jsonl'), 'utf8'), readFileSync(path.join(dir, 'table.jsonl'), 'utf8'));
    await table.close();
  });
});
