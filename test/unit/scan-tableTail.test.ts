/**
 * ResultTable as the dataset view uses it across processes: a writer that was killed mid-line, a reader
 * following a file another process appends to, sequential reads, and path order.
 */
import assert from 'node:assert/strict';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { toJsonLine, type ScanRecord } from '../../src/core/scan/output';
import { ResultTable } from '../../src/core/scan/resultTable';
import { tempDir } from '../helpers/fixtures';

const rec = (name: string, score = 0.5): ScanRecord => ({ image: `/d/c/${name}`, folder: 'c', folderLabel: 'c', top: [{ index: 1, label: 'one', score }] });

describe('ResultTable across processes', () => {
  it('a writer reopening after a kill mid-line starts a new line instead of gluing onto the fragment', async () => {
    const file = path.join(await tempDir('beit-tail-'), 'r.jsonl');
    writeFileSync(file, `${toJsonLine(rec('a.png'))}\n${toJsonLine(rec('b.png')).slice(0, 15)}`);
    const writer = await ResultTable.open(file);
    assert.equal(writer.size, 1);
    writer.append(rec('c.png'));
    await writer.close();
    const again = await ResultTable.open(file);
    assert.deepEqual((await again.query({ limit: 10 })).rows.map((r) => r.image), ['/d/c/a.png', '/d/c/c.png']);
    await again.close();
  });

  it('a whole record missing only its newline is kept, once', async () => {
    const file = path.join(await tempDir('beit-tail-'), 'r.jsonl');
    writeFileSync(file, `${toJsonLine(rec('a.png'))}\n${toJsonLine(rec('b.png'))}`);
    const writer = await ResultTable.open(file);
    assert.equal(writer.size, 2);
    writer.append(rec('c.png'));
    assert.deepEqual((await writer.query({ limit: 10 })).rows.map((r) => r.image), ['/d/c/a.png', '/d/c/b.png', '/d/c/c.png']);
    await writer.close();
    assert.equal(readFileSync(file, 'utf8').split('\n').filter(Boolean).length, 3);
  });

  it('a reader follows appends by complete lines, and reads everything in order in chunks', async () => {
    const file = path.join(await tempDir('beit-tail-'), 'r.jsonl');
    const reader = await ResultTable.create(file);
    const names = Array.from({ length: 3000 }, (_, i) => `img${i}.png`);
    appendFileSync(file, names.slice(0, 1000).map((n) => `${toJsonLine(rec(n, 0.1))}\n`).join(''));
    const [a, b] = await Promise.all([reader.refresh(), reader.refresh()]);
    assert.equal(a + b, 1000, 'concurrent refreshes index each line once');
    appendFileSync(file, `${names.slice(1000).map((n) => toJsonLine(rec(n))).join('\n')}\n{"image":"/d/c/half`);
    assert.equal(await reader.refresh(), 2000);
    assert.equal(reader.size, 3000);
    const seen: string[] = [];
    for await (const row of reader.entries()) seen.push(row.image);
    assert.deepEqual(seen, names.map((n) => `/d/c/${n}`));
    const slice: number[] = [];
    for await (const row of reader.entries(10, 13)) slice.push(row.row);
    assert.deepEqual(slice, [10, 11, 12]);

    const byPath = await reader.query({ sort: { key: 'path' }, limit: 12 });
    assert.deepEqual(byPath.rows.map((r) => r.image.slice(5)), ['img0.png', 'img1.png', 'img2.png', 'img3.png', 'img4.png', 'img5.png', 'img6.png', 'img7.png', 'img8.png', 'img9.png', 'img10.png', 'img11.png']);
    const ids = await reader.ids({}, { key: 'path', descending: true });
    assert.equal(ids[0], 2999);
    await reader.close();
  });
});
