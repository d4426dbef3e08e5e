/**
 * What a hover shows (issue #17): the thumbnail beside a compact top-5 table with the image's size,
 * file size and format, a "not found" that lists where it looked, and the thumbnail without a
 * model. The Markdown is checked as built; the provider runs against the real worker handlers (real
 * sharp decoding, no model loaded) behind a stand-in for vscode. That it fits VS Code's hover
 * without scrolling is measured in the workbench (test/e2e/scenarios/hover.ts).
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, rm } from 'node:fs/promises';
import Module from 'node:module';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { decodeImage, makeThumbnail } from '../../src/core/image';
import { FileHasher, readFileBytes } from '../../src/extension/hover/fileHasher';
import { escapeHtml, imageFactsLines, notFoundMarkdown, previewMarkdown, THUMBNAIL_DISPLAY_SIDE, thumbnailMarkdown } from '../../src/extension/hover/hoverMarkdown';
import { HoverPreviews } from '../../src/extension/hover/hoverPreviews';
import { describeCandidates, imagePathCandidates } from '../../src/extension/hover/imagePathResolution';
import { InferenceWorkerHandlers } from '../../src/extension/worker/workerHandlers';
import { FIXTURE_IMAGES, tempDir } from '../helpers/fixtures';

const TOP = [
  { index: 3, label: 'harp seal', score: 0.61234 },
  { index: 7, label: 'river <otter> & "friends"', score: 0.2 },
  { index: 1, label: 'tabby, tabby cat', score: 0.1 },
  { index: 9, label: 'goldfish', score: 0.05 },
  { index: 2, label: 'ice_bear *bold*', score: 0.0123 },
];
const THUMB = 'data:image/jpeg;base64,/9j/4AAQSkZJRg==';

describe('hover Markdown', () => {
  const md = previewMarkdown({ fileName: 'a.jpg', thumbnail: THUMB, image: { width: 640, height: 480, format: 'jpeg' }, size: 37_123, top: TOP, provider: 'cpu', explainLink: '[$(eye) Explain](command:beitLens.explainImage)' });

  it('puts the thumbnail beside the table in one HTML block, the Explain link after it', () => {
    const blocks = md.split('\n\n');
    assert.equal(blocks.length, 3, md);
    assert.equal(blocks[0], '**BEiT Lens** · a\\.jpg · CPU');
    // A blank line would end the HTML block and the rest would be shown as text.
    assert.ok(!blocks[1].includes('\n'), 'the HTML block has no line breaks');
    assert.match(blocks[1], /^<table><tr><td><img src="data:image\/jpeg;base64,\/9j\/4AAQSkZJRg==" width="96" height="72" alt="thumbnail"><br>640 × 480<br>37 KB · JPEG<\/td><td><table>/);
    assert.equal(blocks[2], '[$(eye) Explain](command:beitLens.explainImage)');
  });

  it('has one row per prediction: rank, label (HTML-escaped), score', () => {
    const rows = [...md.matchAll(/<tr><td align="right">(\d)<\/td><td>(.*?)<\/td><td align="right">(.*?)<\/td><\/tr>/g)].map((m) => [m[1], m[2], m[3]]);
    assert.deepEqual(rows, [
      ['1', 'harp seal', '61.2%'],
      ['2', 'river &#60;otter&#62; &#38; &#34;friends&#34;', '20.0%'],
      ['3', 'tabby, tabby cat', '10.0%'],
      ['4', 'goldfish', '5.00%'],
      ['5', 'ice_bear *bold*', '1.23%'],
    ]);
    assert.ok(!md.includes('<otter>'), 'a label cannot add a tag');
  });

  it('scales the thumbnail to fit the hover whatever its shape, and drops one that is not a data URI', () => {
    const tall = previewMarkdown({ fileName: 't.png', thumbnail: THUMB, image: { width: 100, height: 4000, format: 'png' }, size: 10, top: [], provider: 'cpu', explainLink: '' });
    assert.match(tall, new RegExp(`width="2" height="${THUMBNAIL_DISPLAY_SIDE}"`));
    const small = previewMarkdown({ fileName: 's.png', thumbnail: THUMB, image: { width: 17, height: 9, format: 'png' }, size: 10, top: [], provider: 'cpu', explainLink: '' });
    assert.match(small, /width="17" height="9"/, 'never enlarged');
    const evil = previewMarkdown({ fileName: 'e.png', thumbnail: 'data:image/png;base64,AAAA" onerror="x', top: [], size: 10, provider: 'cpu', explainLink: '' });
    assert.ok(!evil.includes('<img'), evil);
  });

  it('states dimensions, file size and format as Image Preview does', () => {
    assert.deepEqual(imageFactsLines({ width: 320, height: 240, format: 'heif' }, 3 * 2 ** 20 + 100), ['320 × 240', '3.0 MB · AVIF']);
    assert.deepEqual(imageFactsLines(undefined, 2048), ['2 KB'], 'without the header, only what the stat said');
    assert.equal(escapeHtml("a'b\nc"), 'a&#39;b c');
  });

  it('without a model: the thumbnail and facts, then the state and links', () => {
    const text = thumbnailMarkdown({ fileName: 'a.jpg', thumbnail: THUMB, image: { width: 640, height: 480, format: 'jpeg' }, size: 37_123, status: ['No model: none\\.'], links: ['[Download Model](command:x)'] });
    assert.equal(
      text,
      '**BEiT Lens** · a\\.jpg\n\n<table><tr><td><img src="data:image/jpeg;base64,/9j/4AAQSkZJRg==" width="96" height="72" alt="thumbnail"></td><td>640 × 480<br>37 KB · JPEG</td></tr></table>\n\nNo model: none\\.\n\n[Download Model](command:x)',
    );
  });

  it('not found: the path as written and every place it was looked for, escaped', () => {
    const context = { documentDir: '/ws/src', workspaceFolders: ['/ws', '/data'], homeDir: '/home/me', path: path.posix };
    const candidates = imagePathCandidates('img/[x].png', context);
    const text = notFoundMarkdown('img/[x].png', describeCandidates(candidates, 'img/[x].png', context));
    assert.equal(
      text,
      "**BEiT Lens** · \\[x\\]\\.png\n\nNot found: img/\\[x\\]\\.png, looked for\n\n- /ws/src/img/\\[x\\]\\.png (this document's folder)\n- /ws/img/\\[x\\]\\.png (workspace folder ws)\n- /data/img/\\[x\\]\\.png (workspace folder data)",
    );
    const absolute = imagePathCandidates('/nowhere/y.jpg', context);
    assert.deepEqual(describeCandidates(absolute, '/nowhere/y.jpg', context), [{ file: '/nowhere/y.jpg', where: 'as written' }]);
    const many = notFoundMarkdown('z.png', Array.from({ length: 9 }, (_, i) => ({ file: `/w${i}/z.png`, where: `workspace folder w${i}` })));
    assert.match(many, /- \/w5\/z\\\.png \(workspace folder w5\)\n- and 3 more$/);
  });
});

describe('image facts come from the header the thumbnail is made from', () => {
  it('makeThumbnail: size as displayed (EXIF applied), format from the magic bytes', async () => {
    const exif = await makeThumbnail(path.join(FIXTURE_IMAGES, 'exif_orientation6_320x240.jpg'), 160);
    // Orientation 6 is a quarter turn: stored 320x240, shown 240x320, as the decoder returns it.
    const decoded = await decodeImage(path.join(FIXTURE_IMAGES, 'exif_orientation6_320x240.jpg'));
    assert.deepEqual([exif.width, exif.height, exif.format], [decoded.width, decoded.height, 'jpeg']);
    assert.deepEqual([exif.width, exif.height], [240, 320]);
    const png = await makeThumbnail(await readFile(path.join(FIXTURE_IMAGES, 'alpha_300x200.png')), 160);
    assert.deepEqual([png.width, png.height, png.format], [300, 200, 'png']);
    assert.match(png.dataUri, /^data:image\/png;base64,/);
  });

  it('the worker makes the hover thumbnail from the bytes it is given, with no model loaded', async () => {
    const handlers = new InferenceWorkerHandlers();
    const ctx = { signal: new AbortController().signal, progress: () => undefined };
    try {
      const bytes = new Uint8Array(await readFile(path.join(FIXTURE_IMAGES, 'gradient_640x480.jpg')));
      const t = await handlers.handlers.hoverThumbnail({ bytes, thumbnailSide: 160 }, ctx);
      assert.deepEqual([t.width, t.height, t.format], [640, 480, 'jpeg']);
      const shown = await decodeImage(Buffer.from(t.thumbnail.slice(t.thumbnail.indexOf(',') + 1), 'base64'));
      assert.deepEqual([shown.width, shown.height], [160, 120]);
      await assert.rejects(handlers.handlers.hoverThumbnail({ bytes: 'a.png' as never, thumbnailSide: 160 }, ctx), /hoverThumbnail needs the image bytes/);
      await assert.rejects(handlers.handlers.hoverThumbnail({ bytes: new Uint8Array(Buffer.from('not an image')), thumbnailSide: 160 }, ctx), /not a recognised image/);
    } finally {
      await handlers.dispose();
    }
  });
});

// ---- the provider, against a stand-in for vscode and the real worker handlers -------------------

let workspaceFolders: string[] = [];
const vscodeFake = {
  Uri: { file: (p: string) => ({ scheme: 'file', fsPath: p, toString: () => `file://${p}` }) },
  Range: class {
    constructor(...args: number[]) {
      void args;
    }
  },
  MarkdownString: class {
    isTrusted: unknown;
    constructor(readonly value: string) {}
  },
  Hover: class {
    constructor(readonly contents: { value: string }) {}
  },
  workspace: {
    isTrusted: true,
    get workspaceFolders() {
      return workspaceFolders.map((f) => ({ uri: { scheme: 'file', fsPath: f } }));
    },
    getConfiguration: () => ({ get: () => undefined }),
  },
};
const originalLoad = (Module as unknown as { _load: (request: string, ...rest: unknown[]) => unknown })._load;
(Module as unknown as { _load: typeof originalLoad })._load = function (request: string, ...rest: unknown[]) {
  return request === 'vscode' ? vscodeFake : originalLoad.call(this, request, ...rest);
};

describe('hover provider: not found, and no model', () => {
  let root: string;
  let handlers: InferenceWorkerHandlers;
  let ProviderClass: typeof import('../../src/extension/hover/imageHoverProvider').ImageHoverProvider;
  before(async () => {
    root = await tempDir('beit-lens-hover-content-');
    await mkdir(path.join(root, 'ws', 'src'), { recursive: true });
    await copyFile(path.join(FIXTURE_IMAGES, 'gradient_640x480.jpg'), path.join(root, 'ws', 'a.jpg'));
    handlers = new InferenceWorkerHandlers();
    ProviderClass = (await import('../../src/extension/hover/imageHoverProvider')).ImageHoverProvider;
  });
  after(async () => {
    await handlers.dispose();
    await rm(root, { recursive: true, force: true });
  });

  function setup(state: unknown) {
    const reads: string[] = [];
    const calls: string[] = [];
    const ctx = { signal: new AbortController().signal, progress: () => undefined };
    const inference = {
      state,
      // The worker's own handlers: without a model, a preview is refused and a thumbnail is made.
      call: (name: 'hoverThumbnail', args: never) => (calls.push(name), handlers.handlers[name](args, ctx)),
    };
    const previews = new HoverPreviews(inference as never, { waitMs: 10_000 });
    const hasher = new FileHasher(100, (f, max) => (reads.push(f), readFileBytes(f, max)));
    const provider = new ProviderClass({ inference: inference as never, previews, hasher });
    const hoverOver = async (line: string) => {
      const doc = { uri: { scheme: 'file', fsPath: path.join(root, 'ws', 'src', 'main.py') }, languageId: 'python', lineAt: () => ({ text: line }) };
      const token = { isCancellationRequested: false, onCancellationRequested: () => ({ dispose() {} }) };
      const result = (await provider.provideHover(doc as never, { line: 0, character: 3 } as never, token as never)) as { contents: { value: string; supportHtml?: boolean } } | undefined;
      // The layout is HTML: without supportHtml VS Code drops the table and the thumbnail.
      if (result) assert.equal(result.contents.supportHtml, true, 'the hover does not enable HTML');
      return result?.contents.value;
    };
    return { reads, calls, hoverOver };
  }

  it('a missing image says "not found" and where it looked; text that is no image path gets no hover', async () => {
    workspaceFolders = [path.join(root, 'ws')];
    const { reads, hoverOver } = setup({ kind: 'ready', model: { modelDir: '/m', modelId: 'tiny', provider: 'cpu' } });
    const text = (await hoverOver('x("img/gone.png")')) ?? '';
    const esc = (p: string) => p.replace(/[\\`*_{}[\]()#+\-.!|<>~]/g, (c) => `\\${c}`);
    assert.ok(text.startsWith('**BEiT Lens** · gone\\.png\n\nNot found: img/gone\\.png, looked for'), text);
    assert.ok(text.includes(`- ${esc(path.join(root, 'ws', 'src', 'img', 'gone.png'))} (this document's folder)`), text);
    assert.ok(text.includes(`- ${esc(path.join(root, 'ws', 'img', 'gone.png'))} (workspace folder ws)`), text);
    assert.deepEqual(reads, [], 'nothing was read');
    assert.equal(await hoverOver('x("notes.txt")'), undefined);
    assert.equal(await hoverOver('x = 3 + 4'), undefined);
  });

  for (const [what, state, wantStatus, wantLink] of [
    ['no model', { kind: 'noModel', message: 'no model is configured' }, 'No model: no model is configured. Run "BEiT Lens: Download Model"', 'command:beitLens.downloadModel'],
    ['a model that failed', { kind: 'failed', message: 'bad model.onnx' }, 'The model could not be loaded: bad model\\.onnx', 'command:beitLens.doctor'],
  ] as const) {
    it(`${what}: the thumbnail, its size and format, and the model state; the file read once`, async () => {
      workspaceFolders = [path.join(root, 'ws')];
      const { reads, calls, hoverOver } = setup(state);
      const text = (await hoverOver('x("../a.jpg")')) ?? '';
      const img = /<img src="(data:image\/jpeg;base64,[^"]+)" width="96" height="72" alt="thumbnail">/.exec(text);
      assert.ok(img, text);
      const shown = await decodeImage(Buffer.from(img[1].slice(img[1].indexOf(',') + 1), 'base64'));
      assert.deepEqual([shown.width, shown.height], [160, 120]);
      assert.ok(text.includes('640 × 480<br>38 KB · JPEG'), text);
      assert.ok(text.includes(wantStatus), text);
      assert.ok(text.includes(wantLink), text);
      assert.ok(!text.includes('<th'), 'no prediction table without a model');
      assert.deepEqual(reads, [path.join(root, 'ws', 'a.jpg')]);
      assert.deepEqual(calls, ['hoverThumbnail']);
      // The thumbnail is cached by content: a second hover reads the file (to hash it) but asks the worker nothing.
      assert.equal(await hoverOver('x("../a.jpg")'), text);
      assert.deepEqual(calls, ['hoverThumbnail']);
    });
  }
});
