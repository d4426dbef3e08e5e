/**
 * The dataset view's messages in both directions, and the webview's DOM-free parts: the zod schema the
 * extension validates inbound messages with (valid, malformed, unknown), the hand-written checks the
 * webview applies to what the extension sends, the stored-query restore, the virtualised table's layout
 * math and page cache, and the progress text.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { scanProgressText, scanState } from '../../src/extension/dataset/scanProgressText';
import { clockDuration } from '../../src/shared/clockDuration';
import { parseDatasetViewMessage, parseWebviewMessage, type DatasetHostMessage, type DatasetQueryDto, type DatasetViewMessage } from '../../src/shared/protocol';
import { checkText, scanText } from '../../src/webview/dataset/format';
import { skippedText } from '../../src/core/scan/skips';
import { asHostMessage, DEFAULT_QUERY, restoreQuery, restoreThumbnailSize } from '../../src/webview/dataset/messages';
import { PageCache } from '../../src/webview/dataset/pageCache';
import { RowLayout } from '../../src/webview/dataset/rowLayout';

const query: DatasetQueryDto = { mode: 'suspects', filter: { labelText: 'otter', minScore: 0.1, maxScore: 0.9, folderLabel: null, labelIndex: 3 }, sort: { key: 'score', descending: true } };

describe('dataset view -> extension messages (zod)', () => {
  const valid: DatasetViewMessage[] = [
    { type: 'ready' },
    { type: 'query', requestId: 1, generation: 2, query, offset: 100, limit: 100 },
    { type: 'query', requestId: 1, generation: 0, query: { mode: 'all', filter: {}, sort: { key: 'path', descending: false } }, offset: 0, limit: 1 },
    { type: 'histogram', requestId: 3, generation: 1, query, limit: 15 },
    { type: 'labelCheck' },
    { type: 'searchLabels', requestId: 4, query: 'tabby', limit: 20 },
    { type: 'setMapping', folder: 'tabby', labels: [9] },
    { type: 'setMapping', folder: 'pets', labels: [9, 7] },
    { type: 'setMapping', folder: 'junk', labels: null },
    { type: 'setMapping', folder: 'tabby', labels: 'auto' },
    { type: 'thumbnails', generation: 1, rows: [0, 1, 2] },
    { type: 'open', generation: 1, row: 5 },
    { type: 'copyPaths', generation: 1, rows: [5, 6] },
    { type: 'export', generation: 1, scope: 'all', format: 'csv' },
    { type: 'export', generation: 1, scope: 'view', format: 'jsonl', query },
    { type: 'export', generation: 1, scope: 'selection', format: 'csv', rows: [1, 2] },
    // Similarity: a row set in the query, its order and uniqueness, Find Similar on a row, duplicates, a group shown.
    { type: 'query', requestId: 5, generation: 1, query: { mode: 'all', filter: {}, sort: { key: 'given', descending: false }, rowSet: 3 }, offset: 0, limit: 100 },
    { type: 'query', requestId: 6, generation: 1, query: { mode: 'all', filter: {}, sort: { key: 'uniqueness', descending: true } }, offset: 0, limit: 100 },
    { type: 'findSimilar', generation: 1, row: 7 },
    { type: 'duplicates', requestId: 8, generation: 1, threshold: 0.95 },
    { type: 'showRows', generation: 1, rows: [4, 9], label: 'Exact duplicates of a.png' },
  ];

  it('accepts every well-formed message unchanged', () => {
    for (const m of valid) assert.deepEqual(parseDatasetViewMessage(m), { ok: true, message: m }, m.type);
  });

  it('rejects malformed messages with the reason', () => {
    const bad: Array<[unknown, RegExp]> = [
      [{ type: 'query', requestId: 1, generation: 1, query, offset: 0, limit: 501 }, /limit/],
      [{ type: 'query', requestId: -1, generation: 1, query, offset: 0, limit: 10 }, /requestId/],
      [{ type: 'query', requestId: 1, generation: 1, query: { ...query, mode: 'everything' }, offset: 0, limit: 10 }, /mode/],
      [{ type: 'query', requestId: 1, generation: 1, query: { ...query, filter: { minScore: 2 } }, offset: 0, limit: 10 }, /minScore/],
      [{ type: 'query', requestId: 1, generation: 1, query: { ...query, filter: { path: '/etc' } }, offset: 0, limit: 10 }, /filter/],
      [{ type: 'query', requestId: 1, generation: 1, query: { ...query, sort: { key: 'random', descending: false } }, offset: 0, limit: 10 }, /sort/],
      [{ type: 'thumbnails', generation: 1, rows: Array.from({ length: 201 }, (_, i) => i) }, /rows/],
      [{ type: 'thumbnails', generation: 1, rows: [1.5] }, /rows/],
      [{ type: 'open', generation: 1, row: -1 }, /row/],
      [{ type: 'open', generation: 1, path: '/etc/passwd' }, /row|path/],
      [{ type: 'open', generation: 1, row: 1, path: '/etc/passwd' }, /path|Unrecognized/i],
      [{ type: 'copyPaths', generation: 1, rows: [] }, /rows/],
      [{ type: 'setMapping', folder: '', labels: [1] }, /folder/],
      [{ type: 'setMapping', folder: 'a', labels: [] }, /labels/],
      [{ type: 'setMapping', folder: 'a', labels: 'tabby' }, /labels/],
      [{ type: 'searchLabels', requestId: 1, query: 'x'.repeat(201), limit: 5 }, /query/],
      [{ type: 'export', generation: 1, scope: 'selection', format: 'csv' }, /selection/],
      [{ type: 'export', generation: 1, scope: 'view', format: 'csv' }, /view/],
      [{ type: 'export', generation: 1, scope: 'all', format: 'xlsx' }, /format/],
      [{ type: 'export', generation: 1, scope: 'all', format: 'csv', file: '/tmp/x.csv' }, /file|Unrecognized/i],
      [{ type: 'query', requestId: 1, generation: 1, query: { ...query, rowSet: 0 }, offset: 0, limit: 10 }, /rowSet/],
      [{ type: 'query', requestId: 1, generation: 1, query: { ...query, rowSet: 1.5 }, offset: 0, limit: 10 }, /rowSet/],
      [{ type: 'findSimilar', generation: 1, row: -3 }, /row/],
      [{ type: 'findSimilar', generation: 1, file: '/etc/passwd' }, /row|file|Unrecognized/i],
      [{ type: 'duplicates', requestId: 1, generation: 1, threshold: 0.2 }, /threshold/],
      [{ type: 'duplicates', requestId: 1, generation: 1, threshold: 1.5 }, /threshold/],
      [{ type: 'showRows', generation: 1, rows: [], label: 'x' }, /rows/],
      [{ type: 'showRows', generation: 1, rows: Array.from({ length: 10_001 }, (_, i) => i), label: 'x' }, /rows/],
      [{ type: 'showRows', generation: 1, rows: [1], label: 'x'.repeat(201) }, /label/],
      [{ type: 'showRows', generation: 1, rows: [1], label: 'x', images: ['/etc/passwd'] }, /images|Unrecognized/i],
    ];
    for (const [message, reason] of bad) {
      const parsed = parseDatasetViewMessage(message);
      assert.equal(parsed.ok, false, JSON.stringify(message));
      if (!parsed.ok) assert.match(parsed.error, reason, JSON.stringify(message));
    }
  });

  it('rejects unknown types, the explanation panel’s messages, and junk, without throwing', () => {
    for (const junk of [{ type: 'readFile', path: '/etc/passwd' }, { type: 'setRollout', requestId: 1, headFusion: 'mean', discardRatio: 0.5 }, null, 42, 'ready', [], {}]) {
      assert.equal(parseDatasetViewMessage(junk).ok, false, JSON.stringify(junk));
    }
    // Nor do the dataset view's messages pass the explanation panel's schema.
    assert.equal(parseWebviewMessage({ type: 'open', generation: 1, row: 5 }).ok, false);
    // The panel's Find Similar names no file (the extension uses the panel's own image).
    assert.equal(parseWebviewMessage({ type: 'findSimilar' }).ok, true);
    assert.equal(parseWebviewMessage({ type: 'findSimilar', file: '/etc/passwd' }).ok, false);
    fc.assert(fc.property(fc.anything({ withBigInt: true, withMap: true, withSet: true, withTypedArray: true, withNullPrototype: true }), (data) => void parseDatasetViewMessage(data)), { numRuns: 1000 });
  });
});

describe('extension -> dataset view messages (the webview’s checks)', () => {
  const row = { row: 3, image: '/d/tabby/a.png', name: 'a.png', folder: 'tabby', folderLabel: 'tabby', top: [{ index: 9, label: 'tabby kitten', score: 0.4 }], check: { reasons: ['disagree' as const], confidence: 0.2, folderRank: null, expected: { index: 9, label: 'tabby kitten' } } };
  const mapping = { folder: 'tabby', kind: 'fuzzy' as const, index: 9, label: 'tabby kitten', synonym: 'tabby kitten', score: 0.7, accepted: [{ index: 9, label: 'tabby kitten' }], candidates: [{ index: 9, label: 'tabby kitten', kind: 'fuzzy' as const, score: 0.7, synonym: 'tabby kitten' }], images: 4, disagreements: 1, lowConfidence: 0 };
  const valid: DatasetHostMessage[] = [
    { type: 'dataset', info: { generation: 1, title: 'Dataset: d', folder: '/d', rows: 10, errors: 1, folders: [{ folderLabel: 'tabby', count: 9 }, { folderLabel: null, count: 1 }] } },
    { type: 'scan', state: { status: 'running', done: 3, total: 10, imagesPerSecond: 5.5, etaSeconds: 1.2, classified: 2, cached: 1, errors: 0 } },
    { type: 'page', requestId: 2, generation: 1, offset: 0, total: 1, rows: [row, { row: 4, image: '/d/x.png', name: 'x.png', folder: '', folderLabel: null, error: 'file is empty (0 bytes)', errorCode: 'IMAGE_DECODE' }] },
    { type: 'histogram', requestId: 3, generation: 1, total: 5, bars: [{ index: 9, label: 'tabby kitten', count: 5 }] },
    { type: 'labelCheck', generation: 1, check: { mappings: [mapping, { ...mapping, folder: 'xyz', kind: 'none', index: null, label: null, synonym: undefined, accepted: [], candidates: [] }], checked: 4, disagreements: 1, lowConfidence: 0, unmapped: 0, suspects: 1, lowScore: 0.2 } },
    { type: 'labels', requestId: 4, results: [{ index: 1, label: 'x' }] },
    { type: 'thumbnail', generation: 1, row: 3, src: 'data:image/jpeg;base64,AAAA' },
    { type: 'thumbnail', generation: 1, row: 3, src: '' },
    { type: 'exported', file: '/tmp/x.csv', count: 3, format: 'csv' },
    { type: 'copied', count: 2 },
    { type: 'error', message: 'no' },
    { type: 'error', requestId: 2, message: 'no' },
    { type: 'page', requestId: 5, generation: 1, offset: 0, total: 1, rows: [{ ...row, similarity: 0.93, uniqueness: 0.4 }] },
    { type: 'similarity', generation: 1, state: { status: 'ready', images: 9, missing: 1, splits: ['test', 'train'], threshold: 0.95 } },
    { type: 'similarity', generation: 1, state: { status: 'failed', images: 0, missing: 0, splits: [], threshold: 0.95, message: 'no model' } },
    { type: 'rowSet', generation: 1, set: { id: 2, kind: 'similar', label: 'Similar to a.png', count: 5 } },
    { type: 'duplicates', requestId: 8, generation: 1, threshold: 0.95, total: 1, leakage: 1, groups: [{ kind: 'exact', similarity: 1, rows: [3, 4], images: ['/d/train/a.png', '/d/test/a.png'], splits: ['test', 'train'], leakage: true }] },
  ];

  it('accepts every well-formed message', () => {
    for (const m of valid) assert.equal(asHostMessage(JSON.parse(JSON.stringify(m))) !== undefined, true, JSON.stringify(m));
  });

  it('drops malformed ones: a bad row, a script URL as a thumbnail, a negative count', () => {
    const bad: unknown[] = [
      { type: 'page', requestId: 2, generation: 1, offset: 0, total: 1, rows: [{ ...row, row: -1 }] },
      { type: 'page', requestId: 2, generation: 1, offset: 0, total: 1, rows: [{ ...row, top: undefined }] },
      { type: 'page', requestId: 2, generation: 1, offset: 0, total: 1, rows: [{ ...row, top: [{ index: 1, label: 2, score: 0.1 }] }] },
      { type: 'thumbnail', generation: 1, row: 3, src: 'javascript:alert(1)' },
      { type: 'thumbnail', generation: 1, row: 3, src: 'https://evil.example/x.png' },
      { type: 'copied', count: -2 },
      { type: 'scan', state: { status: 'exploded', done: 0, imagesPerSecond: 0, classified: 0, cached: 0, errors: 0 } },
      { type: 'labelCheck', generation: 1, check: { mappings: [{ ...mapping, kind: 'guess' }], checked: 0, disagreements: 0, lowConfidence: 0, unmapped: 0, suspects: 0, lowScore: 0.2 } },
      { type: 'nope' },
      null,
      'page',
      { type: 'page', requestId: 5, generation: 1, offset: 0, total: 1, rows: [{ ...row, similarity: '0.9' }] },
      { type: 'similarity', generation: 1, state: { status: 'ready', images: 9, missing: 1, splits: 'train', threshold: 0.95 } },
      { type: 'rowSet', generation: 1, set: { id: 2, kind: 'map', label: 'x', count: 5 } },
      // A group of one is no group, and every row needs its path.
      { type: 'duplicates', requestId: 8, generation: 1, threshold: 0.95, total: 1, leakage: 0, groups: [{ kind: 'exact', similarity: 1, rows: [3], images: ['/d/a.png'], splits: [], leakage: false }] },
      { type: 'duplicates', requestId: 8, generation: 1, threshold: 0.95, total: 1, leakage: 0, groups: [{ kind: 'near', similarity: 0.9, rows: [3, 4], images: ['/d/a.png'], splits: [], leakage: false }] },
    ];
    for (const m of bad) assert.equal(asHostMessage(m), undefined, JSON.stringify(m));
    fc.assert(fc.property(fc.anything({ withNullPrototype: true, withTypedArray: true, withSparseArray: true }), (data) => void asHostMessage(data)), { numRuns: 1000 });
  });

  it('restores a stored query part by part, falling back to defaults', () => {
    assert.deepEqual(restoreQuery(undefined), DEFAULT_QUERY);
    assert.deepEqual(restoreQuery(JSON.parse(JSON.stringify(query))), query);
    assert.deepEqual(restoreQuery({ mode: 'evil', filter: { minScore: 5, labelText: 3, folderLabel: 'tabby' }, sort: { key: 'hack', descending: 'yes' } }), { mode: 'all', filter: { folderLabel: 'tabby' }, sort: { key: 'path', descending: false } });
    // Path order unless the stored view says otherwise; the suspects' default is their rank.
    assert.deepEqual(DEFAULT_QUERY.sort, { key: 'path', descending: false });
    assert.deepEqual(restoreQuery({ mode: 'suspects', filter: {} }).sort, { key: 'order', descending: false });
    assert.deepEqual(restoreQuery({ mode: 'errors', filter: {}, sort: { key: 'order', descending: true } }).sort, { key: 'order', descending: true }, 'an explicit "#" order is kept');
    // A row set lives only while the extension runs: a restored view shows all rows, in path order.
    assert.deepEqual(restoreQuery({ mode: 'all', filter: {}, sort: { key: 'given', descending: false }, rowSet: 4 }), DEFAULT_QUERY);
    assert.deepEqual(restoreQuery({ mode: 'all', filter: {}, sort: { key: 'uniqueness', descending: true } }).sort, { key: 'uniqueness', descending: true });
    for (const size of [48, 72, 96]) assert.equal(restoreThumbnailSize(size), size);
    for (const bad of [undefined, 0, 49, '72', 1e9, null]) assert.equal(restoreThumbnailSize(bad), 48);
  });
});

describe('virtualised table layout', () => {
  it('places rows without gaps or overlaps, with expanded rows taller, and finds the row at any y', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3000 }), fc.array(fc.nat(3000), { maxLength: 30 }), fc.integer({ min: 1, max: 80 }), fc.integer({ min: 0, max: 200 }), (n, toggles, h, extra) => {
        const layout = new RowLayout(h, h + extra);
        layout.count = n;
        const expanded = new Set<number>();
        for (const t of toggles) {
          if (t >= n) continue;
          const on = layout.toggle(t);
          if (on) expanded.add(t);
          else expanded.delete(t);
        }
        let y = 0;
        for (let p = 0; p < Math.min(n, 400); p++) {
          assert.equal(layout.offsetOf(p), y);
          assert.equal(layout.isExpanded(p), expanded.has(p));
          const height = layout.heightOf(p);
          assert.equal(layout.indexAt(y), p);
          assert.equal(layout.indexAt(y + height - 0.5), p);
          y += height;
        }
        assert.equal(layout.totalHeight, n * h + expanded.size * extra);
        if (n > 0) assert.equal(layout.indexAt(layout.totalHeight + 1000), n - 1);
        else assert.equal(layout.indexAt(0), -1);
      }),
      { numRuns: 300 },
    );
  });

  it('returns only the rows on screen plus overscan, whatever the list size', () => {
    const layout = new RowLayout(56, 166);
    layout.count = 1_000_000;
    layout.toggle(10);
    const { first, last } = layout.visibleRange(56 * 500_000, 600, 4);
    assert.equal(first, 500_000 - 2 - 4);
    assert.ok(last - first < 20, `${first}..${last}`);
    layout.count = 5;
    assert.deepEqual(layout.visibleRange(0, 10_000, 4), { first: 0, last: 4 });
  });

  it('page cache: asks once per page and version, keeps stale pages on screen, bounds memory', () => {
    const cache = new PageCache<number>(100, 3);
    assert.deepEqual(cache.wanted(0, 250), [0, 1, 2]);
    for (const p of [0, 1, 2]) cache.markRequested(p);
    assert.deepEqual(cache.wanted(0, 250), []);
    cache.store(0, Array.from({ length: 100 }, (_, i) => i), cache.version);
    assert.equal(cache.get(42), 42);
    cache.invalidate();
    assert.equal(cache.get(42), 42, 'stale rows stay shown');
    assert.deepEqual(cache.wanted(0, 50), [0], 'and are asked for again');
    cache.store(0, [100, 101], cache.version);
    cache.store(0, [7], cache.version - 1);
    assert.equal(cache.get(0), 100, 'an older reply does not replace a newer page');
    for (const p of [5, 6, 7]) cache.store(p, [p], cache.version);
    assert.equal(cache.get(0), undefined, 'the farthest page was evicted');
    cache.clear();
    assert.equal(cache.get(500), undefined);
  });
});

describe('progress text', () => {
  it('shows counts, images/s and ETA in the notification and the view', () => {
    const p = { found: 40, total: 100, done: 40, classified: 30, cached: 8, errors: 2, imagesPerSecond: 12.345, etaSeconds: 125, elapsedMs: 3000, finished: false };
    assert.equal(scanProgressText(p), '40 of 100 images · 12.3 images/s · ETA 2:05 · 8 from cache · 2 errors');
    assert.equal(clockDuration(3725), '1:02:05');
    assert.equal(scanText(scanState('running', p)), 'Scanning: 40 of 100 images · 12.3 images/s · ETA 2:05 (30 classified, 8 from cache, 2 errors)');
    assert.match(scanText(scanState('cancelled', p)), /cancelled after 40 images.*resumes from the cache/);
    assert.equal(scanState('done', p).etaSeconds, undefined);
    // What the walk skipped reaches the view's summary, in the words the CLI prints.
    const skipped = skippedText({ outsideRoots: 2, linkLoop: 1, alreadyScanned: 0 })!;
    assert.equal(skipped, 'skipped 2 symbolic links leading outside the scanned folders, 1 symbolic link loop');
    assert.equal(scanText(scanState('done', p, 'Skipped 1 symbolic link leading outside the scanned folders.')), 'Scanned 40 images (30 classified, 8 from cache, 2 errors). Skipped 1 symbolic link leading outside the scanned folders.');
    assert.equal(skippedText({ outsideRoots: 0, linkLoop: 0, alreadyScanned: 0 }), undefined);
    assert.equal(checkText({ reasons: ['disagree', 'low-confidence'], confidence: 0.4213, folderRank: null, expected: null }), 'disagrees 0.42, low score');
  });
});
