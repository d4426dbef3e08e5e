/**
 * Image path detection under the cursor, per language, and resolution of what was found to a file.
 * In each snippet `‸` marks the cursor (it is removed before detection).
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { findImagePathAt, hasImageExtension, IMAGE_EXTENSIONS } from '../../src/extension/hover/imagePathDetection';
import { findImageFile, imagePathCandidates } from '../../src/extension/hover/imagePathResolution';

const CURSOR = '‸';

interface Row {
  language: string;
  snippet: string;
  expected: string | undefined;
  /** The written text the hover highlights, when it differs from `expected`. */
  written?: string;
}

const rows: Row[] = [
  // Python
  { language: 'python', snippet: `img = Image.open("data/train/ca‸t_001.jpg")`, expected: 'data/train/cat_001.jpg' },
  { language: 'python', snippet: `img = Image.open('‸images/dog.png').convert("RGB")`, expected: 'images/dog.png' },
  { language: 'python', snippet: `p = r"C:\\data\\im‸g.tif"`, expected: 'C:\\data\\img.tif', written: 'C:\\data\\img.tif' },
  { language: 'python', snippet: `paths = ["a.png", "b.jp‸g", "c.gif"]`, expected: 'b.jpg' },
  { language: 'python', snippet: `x = 'don\\'t', "it‸'s/cat.webp"`, expected: "it's/cat.webp" },
  { language: 'python', snippet: `model = load("weights/mo‸del.onnx")`, expected: undefined },
  { language: 'python', snippet: `url = "https://example.com/c‸at.png"`, expected: undefined },
  { language: 'python', snippet: `img = Image.open("cat.png")  # the ‸cat`, expected: undefined },
  // TypeScript / JavaScript
  { language: 'typescript', snippet: `import logo from './assets/lo‸go.svg';`, expected: undefined },
  { language: 'typescript', snippet: `import hero from './assets/he‸ro.webp?url';`, expected: './assets/hero.webp', written: './assets/hero.webp?url' },
  { language: 'javascript', snippet: 'const src = `${base}/fixtures/‸tiny_17x9.png`;', expected: '${base}/fixtures/tiny_17x9.png' },
  { language: 'javascriptreact', snippet: `<img src={require("../img/ba‸nner.jpeg")} />`, expected: '../img/banner.jpeg' },
  { language: 'typescript', snippet: `fetch('http://localhost:8080/im‸g.png')`, expected: undefined },
  // JSON
  { language: 'json', snippet: `  "image": "train/00‸42.png",`, expected: 'train/0042.png' },
  { language: 'json', snippet: `  "file": "D:\\\\datasets\\\\c‸at.JPG"`, expected: 'D:\\datasets\\cat.JPG', written: 'D:\\\\datasets\\\\cat.JPG' },
  { language: 'jsonc', snippet: `  "ima‸ge": "train/0042.png",`, expected: undefined },
  // YAML and TOML
  { language: 'yaml', snippet: `  - path: images/val/‸bird.webp`, expected: 'images/val/bird.webp' },
  // BMP cannot be decoded (the bundled libvips has none), so no hover offers it.
  { language: 'yaml', snippet: `  - path: images/val/‸bird.bmp`, expected: undefined },
  { language: 'yaml', snippet: `cover: 'it''s ‸here.png'`, expected: "it's here.png", written: "it''s here.png" },
  { language: 'yaml', snippet: `source: s3://bucket/ph‸oto.jpg`, expected: undefined },
  { language: 'toml', snippet: `icon = 'C:\\icons\\a‸pp.png'`, expected: 'C:\\icons\\app.png' },
  { language: 'toml', snippet: `banner = "~/Pictures/‸banner.jpg"`, expected: '~/Pictures/banner.jpg' },
  // Markdown
  { language: 'markdown', snippet: `![A tabby ‸kitten](images/kitten.jpg "Kitten")`, expected: 'images/kitten.jpg' },
  { language: 'markdown', snippet: `See [the grid](docs/pa‸tch%20grid.png) for details.`, expected: 'docs/patch grid.png', written: 'docs/patch%20grid.png' },
  { language: 'markdown', snippet: `![logo](<my im‸ages/logo.png>)`, expected: 'my images/logo.png' },
  { language: 'markdown', snippet: `[ref]: ./figures/‸fig1.png "Figure 1"`, expected: './figures/fig1.png' },
  { language: 'markdown', snippet: `<img src="screen‸shots/panel.png" width="400">`, expected: 'screenshots/panel.png' },
  { language: 'markdown', snippet: `![remote](https://example.com/‸x.png)`, expected: undefined },
  { language: 'markdown', snippet: `I don't think ‸the cat.png is right`, expected: undefined },
  { language: 'markdown', snippet: `Compare cat.png with ‸dog.png.`, expected: 'dog.png' },
  // HTML and CSS
  { language: 'html', snippet: `<img class="hero" src="/static/he‸ro.gif" alt="">`, expected: '/static/hero.gif' },
  { language: 'html', snippet: `<img src=photos/‸a.jpg>`, expected: 'photos/a.jpg' },
  { language: 'html', snippet: `<img src="//cdn.example.com/‸a.jpg">`, expected: undefined },
  { language: 'css', snippet: `background: url(../img/‸bg.webp) no-repeat;`, expected: '../img/bg.webp' },
  // CSV and TSV
  { language: 'csv', snippet: `0,images/‸cat 01.png,tabby`, expected: 'images/cat 01.png' },
  { language: 'csv', snippet: `1,"images/a, b.‸jpg",label`, expected: 'images/a, b.jpg' },
  { language: 'csv', snippet: `2,images/cat.png,‸tabby`, expected: undefined },
  { language: 'tsv', snippet: `3\t/data/‸x.tiff\tlabel`, expected: '/data/x.tiff' },
  // Bare paths and URIs
  { language: 'plaintext', snippet: `saved to /tmp/out/over‸lay.png, done`, expected: '/tmp/out/overlay.png' },
  { language: 'log', snippet: `[info] wrote file:///home/me/pic‸tures/a%20b.png`, expected: 'file:///home/me/pictures/a%20b.png' },
  { language: 'shellscript', snippet: `beit-lens classify ~/Pictures/‸cat.jpg --top 5`, expected: '~/Pictures/cat.jpg' },
  { language: 'plaintext', snippet: `open https://example.com/a.‸png now`, expected: undefined },
  { language: 'plaintext', snippet: `notes.txt ‸ and more`, expected: undefined },
  { language: 'plaintext', snippet: `report.pdf and dia‸gram.PDF`, expected: undefined },
];

function detect(row: Row) {
  const at = row.snippet.indexOf(CURSOR);
  assert.ok(at >= 0, `snippet needs a cursor: ${row.snippet}`);
  const line = row.snippet.slice(0, at) + row.snippet.slice(at + CURSOR.length);
  return { line, match: findImagePathAt(line, at, row.language) };
}

describe('findImagePathAt', () => {
  assert.ok(rows.length >= 25);
  for (const row of rows) {
    it(`${row.language}: ${row.snippet} -> ${row.expected ?? 'nothing'}`, () => {
      const { line, match } = detect(row);
      assert.equal(match?.path, row.expected);
      if (match) assert.equal(line.slice(match.start, match.end), row.written ?? row.expected);
    });
  }

  it('finds nothing when the cursor is outside every path', () => {
    const line = `img = Image.open("data/cat.png")`;
    for (const at of [0, 3, 10, line.length]) assert.equal(findImagePathAt(line, at, 'python'), undefined, `at ${at}`);
    assert.equal(findImagePathAt(line, line.indexOf('cat'), 'python')?.path, 'data/cat.png');
    assert.equal(findImagePathAt(line, -1, 'python'), undefined);
    assert.equal(findImagePathAt(line, line.length + 5, 'python'), undefined);
  });

  it('searches only near the cursor on enormous lines', () => {
    const line = 'x'.repeat(2_000_000) + ' "a.png" ' + 'y'.repeat(2_000_000);
    const at = line.indexOf('a.png');
    const started = performance.now();
    assert.equal(findImagePathAt(line, at, 'javascript')?.path, 'a.png');
    assert.ok(performance.now() - started < 200);
  });

  it('knows the image extensions', () => {
    for (const f of ['a.png', 'a.JPG', 'a.jpeg', 'a.gif', 'a.webp', 'a.tif', 'a.TIFF']) assert.ok(hasImageExtension(f), f);
    for (const f of ['a.svg', 'a.png.txt', 'png', 'a.pngx', 'a.onnx', 'a.heic', 'a.bmp', 'a.BMP']) assert.ok(!hasImageExtension(f), f);
  });
});

describe('imagePathCandidates', () => {
  const context = { documentDir: '/work/project/notebooks', workspaceFolders: ['/work/project', '/work/other'], homeDir: '/home/me', path: path.posix };

  it('tries the document folder first, then each workspace folder', () => {
    assert.deepEqual(imagePathCandidates('data/cat.png', context), ['/work/project/notebooks/data/cat.png', '/work/project/data/cat.png', '/work/other/data/cat.png']);
    assert.deepEqual(imagePathCandidates('../data/cat.png', context), ['/work/project/data/cat.png', '/work/data/cat.png']);
  });

  it('uses only workspace folders for untitled documents', () => {
    assert.deepEqual(imagePathCandidates('./cat.png', { ...context, documentDir: undefined }), ['/work/project/cat.png', '/work/other/cat.png']);
  });

  it('takes absolute paths, ~ and file: URIs as they are', () => {
    assert.deepEqual(imagePathCandidates('/data/x/../cat.png', context), ['/data/cat.png']);
    assert.deepEqual(imagePathCandidates('~/Pictures/cat.jpg', context), ['/home/me/Pictures/cat.jpg']);
    assert.deepEqual(imagePathCandidates('file:///home/me/a%20b.png', context), ['/home/me/a b.png']);
  });

  it('refuses anything that is not an image path', () => {
    assert.deepEqual(imagePathCandidates('file:///home/me/notes.txt', context), []);
    assert.deepEqual(imagePathCandidates('data/cat.txt', context), []);
    assert.deepEqual(imagePathCandidates('file://remote-host/share/a.png', context), []);
  });

  it('resolves Windows paths with path.win32', () => {
    const win = { documentDir: 'C:\\work\\nb', workspaceFolders: ['C:\\work'], homeDir: 'C:\\Users\\me', path: path.win32 };
    assert.deepEqual(imagePathCandidates('data\\cat.png', win), ['C:\\work\\nb\\data\\cat.png', 'C:\\work\\data\\cat.png']);
    assert.deepEqual(imagePathCandidates('D:\\images\\a.tif', win), ['D:\\images\\a.tif']);
  });
});

describe('findImageFile', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'beit-lens-paths-'));
    await writeFile(path.join(dir, 'small.png'), Buffer.alloc(100));
    await writeFile(path.join(dir, 'big.png'), Buffer.alloc(5000));
    await mkdir(path.join(dir, 'folder.png'));
    await symlink('/dev/zero', path.join(dir, 'zero.png')).catch(() => undefined);
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('returns the first regular file among the candidates', async () => {
    const found = await findImageFile([path.join(dir, 'missing.png'), path.join(dir, 'small.png'), path.join(dir, 'big.png')], { maxBytes: 1000 });
    assert.equal(found.kind, 'found');
    assert.equal(found.kind === 'found' && found.file, path.join(dir, 'small.png'));
    assert.equal(found.kind === 'found' && found.size, 100);
  });

  it('never returns a directory, a device or a file over the limit', async () => {
    assert.deepEqual(await findImageFile([path.join(dir, 'folder.png'), path.join(dir, 'zero.png')], { maxBytes: 1000 }), { kind: 'missing' });
    assert.deepEqual(await findImageFile([path.join(dir, 'big.png')], { maxBytes: 1000 }), { kind: 'tooLarge', file: path.join(dir, 'big.png'), size: 5000 });
    assert.deepEqual(await findImageFile([path.join(dir, 'small.txt')], { maxBytes: 1000 }), { kind: 'missing' });
  });
});

describe('the image extensions agree everywhere', () => {
  it('every menu `when` clause, the hover and the folder scan offer the same formats, and none offers BMP', async () => {
    const { readFileSync } = await import('node:fs');
    const { IMAGE_EXTENSIONS: SCAN_EXTENSIONS } = await import('../../src/core/scan/walk');
    const manifest = JSON.parse(readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { contributes: { menus: Record<string, { when?: string }[]> } };
    const clauses = Object.values(manifest.contributes.menus)
      .flat()
      .map((m) => m.when ?? '')
      .filter((w) => w.includes('resourceExtname'));
    assert.ok(clauses.length >= 4, 'the explorer and editor-title menus filter by extension');
    for (const when of clauses) {
      const m = /resourceExtname =~ \/(.+)\/i/.exec(when);
      assert.ok(m, when);
      const re = new RegExp(m[1], 'i');
      for (const ext of IMAGE_EXTENSIONS) assert.ok(re.test(`.${ext}`), `${when} should offer .${ext}`);
      for (const ext of ['bmp', 'BMP', 'svg', 'heic']) assert.ok(!re.test(`.${ext}`), `${when} must not offer .${ext}`);
    }
    for (const ext of IMAGE_EXTENSIONS) assert.ok((SCAN_EXTENSIONS as readonly string[]).includes(ext), `scan walks .${ext}`);
    assert.ok(!(SCAN_EXTENSIONS as readonly string[]).includes('bmp'));
    assert.ok(!hasImageExtension('photo.bmp'));
  });
});
