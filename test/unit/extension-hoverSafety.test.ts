/**
 * What a hover (or a panel) may touch, since any text in any document can trigger one:
 *  - network paths are refused before any file system call (opening \\server\share on Windows sends
 *    the user's NTLM credentials to that server), links included, unless the user opened that share;
 *  - in Restricted Mode only files whose real path is inside a workspace folder are read;
 *  - an uncached hover reads the file once (the hashed bytes go to the worker, which opens nothing),
 *    a cached one reads nothing, and `explain` decodes its image once.
 * Path rules are tested with path.win32 on any platform; file system access through recording fakes
 * or, for links, a real temporary folder.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, readFile, rm, symlink, unlink, writeFile } from 'node:fs/promises';
import { promises as fsp } from 'node:fs';
import Module from 'node:module';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BeitModel } from '../../src/core/beitModel';
import { decodeImage, encodeDisplayDataUri, makeThumbnail, makeThumbnailDataUri } from '../../src/core/image';
import { FileHasher, readFileBytes } from '../../src/extension/hover/fileHasher';
import { HoverPreviews } from '../../src/extension/hover/hoverPreviews';
import { findImageFile, imagePathCandidates, isInside, networkLocation, openedShares, ResolutionFs } from '../../src/extension/hover/imagePathResolution';
import { InferenceWorkerHandlers, WorkerImageFunctions } from '../../src/extension/worker/workerHandlers';
import { convertedTinyModel, FIXTURE_IMAGES, tempDir } from '../helpers/fixtures';

const win = path.win32;

/** A file system that records every call and knows only the files it is given (win32 paths). */
function recordingFs(files: Record<string, { size: number } | { link: string }> = {}): ResolutionFs & { calls: string[] } {
  const calls: string[] = [];
  const lookup = (f: string) => files[f] ?? (Object.keys(files).some((k) => k.toLowerCase().startsWith(`${f.toLowerCase()}\\`)) || /^[a-z]:\\?$/i.test(f) ? { dir: true } : undefined);
  const missing = () => Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
  return {
    calls,
    stat: async (f) => {
      calls.push(`stat ${f}`);
      const e = lookup(f);
      if (!e || 'link' in e) throw missing();
      return { isFile: () => 'size' in e, size: 'size' in e ? e.size : 0, mtimeMs: 1 };
    },
    lstat: async (f) => {
      calls.push(`lstat ${f}`);
      const e = lookup(f);
      if (!e) throw missing();
      return { isSymbolicLink: () => 'link' in e };
    },
    readlink: async (f) => {
      calls.push(`readlink ${f}`);
      const e = lookup(f);
      if (!e || !('link' in e)) throw missing();
      return e.link;
    },
  };
}

describe('network paths (Windows semantics, tested on any platform)', () => {
  it('knows which paths leave the machine', () => {
    const table: [string, string | undefined][] = [
      ['\\\\server\\share\\x.png', '\\\\server\\share'],
      ['\\\\Server\\Share\\sub\\x.png', '\\\\server\\share'],
      ['//server/share/x.png', '\\\\server\\share'],
      ['\\/server\\share\\x.png', '\\\\server\\share'],
      ['\\\\server', '\\\\server'],
      ['\\\\?\\UNC\\server\\share\\x.png', '\\\\server\\share'],
      ['\\\\?\\unc\\server\\share\\x.png', '\\\\server\\share'],
      ['//?/UNC/server/share/x.png', '\\\\server\\share'],
      ['\\\\.\\UNC\\server\\share\\x.png', '\\\\server\\share'],
      ['\\\\.\\pipe\\x.png', 'device'],
      ['\\\\.\\C:\\x.png', 'device'],
      ['\\\\?\\GLOBALROOT\\Device\\Mup\\server\\share\\x.png', 'device'],
      ['\\\\?\\Volume{0b7d1a2c-0000-0000-0000-100000000000}\\x.png', 'device'],
      ['\\??\\UNC\\server\\share\\x.png', 'device'],
      ['\\\\?\\UNC\\', 'device'],
      ['\\\\?\\C:\\data\\x.png', undefined],
      ['C:\\data\\x.png', undefined],
      ['C:/data/x.png', undefined],
      ['\\data\\x.png', undefined],
      ['data\\x.png', undefined],
    ];
    for (const [file, expected] of table) assert.equal(networkLocation(file, win), expected, file);
    // On POSIX `//x` is the local `/x`: nothing leaves the machine by path alone.
    assert.equal(networkLocation('//server/share/x.png', path.posix), undefined);
  });

  it('never lets a file: URI name a host', () => {
    const context = { documentDir: '/work/p', workspaceFolders: ['/work/p'], homeDir: '/home/me', path: path.posix };
    assert.deepEqual(imagePathCandidates('file://server/share/x.png', context), []);
    assert.deepEqual(imagePathCandidates('file://attacker.example/x.png', context), []);
    assert.deepEqual(imagePathCandidates('file://localhost/work/p/x.png', context), ['/work/p/x.png']);
  });

  it('refuses UNC, device and \\\\?\\UNC paths without a single file system call', async () => {
    const fs = recordingFs({ 'C:\\work\\a.png': { size: 10 } });
    for (const file of ['\\\\server\\share\\x.png', '//server/share/x.png', '\\\\?\\UNC\\server\\share\\x.png', '\\\\.\\pipe\\x.png', '\\??\\UNC\\evil\\s\\x.png']) {
      const candidates = imagePathCandidates(file, { documentDir: 'C:\\work', workspaceFolders: ['C:\\work'], homeDir: 'C:\\Users\\me', path: win });
      assert.ok(candidates.length > 0, file);
      const found = await findImageFile(candidates, { maxBytes: 100, fs, path: win, allowedShares: openedShares({ documentDir: 'C:\\work', workspaceFolders: ['C:\\work'], path: win }) });
      assert.equal(found.kind, 'refused', file);
      assert.equal(found.kind === 'refused' && found.reason, 'network', file);
    }
    assert.deepEqual(fs.calls, []);
  });

  it('refuses a local link that points at a share, before following it', async () => {
    const fs = recordingFs({ 'C:\\work\\cat.png': { link: '\\\\attacker\\s\\cat.png' }, 'C:\\work\\dir': { link: '//attacker/s' } });
    const options = { maxBytes: 100, fs, path: win };
    assert.deepEqual(await findImageFile(['C:\\work\\cat.png'], options), { kind: 'refused', file: 'C:\\work\\cat.png', reason: 'network' });
    assert.deepEqual(await findImageFile(['C:\\work\\dir\\x.png'], options), { kind: 'refused', file: 'C:\\work\\dir\\x.png', reason: 'network' });
    assert.ok(fs.calls.every((c) => !/attacker/i.test(c)), fs.calls.join('\n'));
  });

  it('allows the share the user opened, and no other host (relative paths cannot climb out of it)', async () => {
    const fs = recordingFs({ '\\\\nas\\team\\proj\\img\\a.png': { size: 10 }, '\\\\nas\\team\\b.png': { size: 20 } });
    const context = { documentDir: '\\\\nas\\team\\proj', workspaceFolders: ['\\\\NAS\\Team\\proj'], homeDir: 'C:\\Users\\me', path: win };
    const options = { maxBytes: 100, fs, path: win, allowedShares: openedShares(context) };
    assert.deepEqual(options.allowedShares, ['\\\\nas\\team', '\\\\nas\\team']);
    const a = await findImageFile(imagePathCandidates('img\\a.png', context), options);
    assert.equal(a.kind === 'found' && a.realPath, '\\\\nas\\team\\proj\\img\\a.png');
    // path.win32 keeps `..` inside the share root.
    assert.deepEqual(imagePathCandidates('..\\..\\..\\b.png', context), ['\\\\nas\\team\\b.png', '\\\\NAS\\Team\\b.png']);
    assert.equal((await findImageFile(imagePathCandidates('..\\..\\..\\b.png', context), options)).kind, 'found');
    fs.calls.length = 0;
    assert.equal((await findImageFile(imagePathCandidates('\\\\nas\\other\\c.png', context), options)).kind, 'refused');
    assert.equal((await findImageFile(imagePathCandidates('\\\\evil\\team\\c.png', context), options)).kind, 'refused');
    assert.deepEqual(fs.calls, []);
  });

  it('isInside compares like the platform', () => {
    assert.ok(isInside('C:\\Work\\A\\x.png', 'c:\\work', win));
    assert.ok(!isInside('C:\\work2\\x.png', 'C:\\work', win));
    assert.ok(!isInside('D:\\work\\x.png', 'C:\\work', win));
    assert.ok(isInside('/w/a/..x.png', '/w/a', path.posix));
    assert.ok(!isInside('/w/a/../b/x.png', '/w/a', path.posix));
    assert.ok(!isInside('/w/ab/x.png', '/w/a', path.posix));
  });
});

describe('Restricted Mode: only files really inside the workspace folders', () => {
  let root: string;
  let workspace: string;
  let outside: string;
  before(async () => {
    root = await tempDir('beit-lens-trust-');
    workspace = path.join(root, 'workspace');
    outside = path.join(root, 'outside');
    await mkdir(path.join(workspace, 'pics'), { recursive: true });
    await mkdir(outside);
    await writeFile(path.join(workspace, 'pics', 'inside.png'), 'inside');
    await writeFile(path.join(outside, 'secret.png'), 'secret');
    await symlink(path.join(outside, 'secret.png'), path.join(workspace, 'link.png'));
    await symlink(outside, path.join(workspace, 'linkdir'));
    await symlink(path.join(workspace, 'pics', 'inside.png'), path.join(workspace, 'alias.png'));
    // The workspace reached through a link of its own (/home/me -> /data/me): still the workspace.
    await symlink(workspace, path.join(root, 'ws-link'));
  });
  after(() => rm(root, { recursive: true, force: true }));

  function recordingRealFs(): ResolutionFs & { calls: string[] } {
    const calls: string[] = [];
    return {
      calls,
      stat: (f) => (calls.push(f), fsp.stat(f)),
      lstat: (f) => (calls.push(f), fsp.lstat(f)),
      readlink: (f) => (calls.push(f), fsp.readlink(f)),
    };
  }

  it('reads files inside, and links that stay inside', async () => {
    const fs = recordingRealFs();
    const found = await findImageFile([path.join(workspace, 'pics', 'inside.png')], { maxBytes: 100, fs, confineTo: [workspace] });
    assert.deepEqual(found.kind === 'found' && [found.realPath, found.size], [path.join(workspace, 'pics', 'inside.png'), 6]);
    const alias = await findImageFile([path.join(workspace, 'alias.png')], { maxBytes: 100, fs, confineTo: [workspace] });
    assert.equal(alias.kind === 'found' && alias.realPath, path.join(workspace, 'pics', 'inside.png'));
    const viaLink = await findImageFile([path.join(root, 'ws-link', 'pics', 'inside.png')], { maxBytes: 100, fs, confineTo: [path.join(root, 'ws-link')] });
    assert.equal(viaLink.kind, 'found');
  });

  it('refuses files outside and links leading out, without touching anything outside', async () => {
    const fs = recordingRealFs();
    const options = { maxBytes: 100, fs, confineTo: [workspace] };
    assert.deepEqual(await findImageFile([path.join(outside, 'secret.png')], options), { kind: 'refused', file: path.join(outside, 'secret.png'), reason: 'untrusted' });
    assert.deepEqual(await findImageFile([path.join(workspace, 'link.png')], options), { kind: 'refused', file: path.join(workspace, 'link.png'), reason: 'untrusted' });
    assert.deepEqual(await findImageFile([path.join(workspace, 'linkdir', 'secret.png')], options), { kind: 'refused', file: path.join(workspace, 'linkdir', 'secret.png'), reason: 'untrusted' });
    assert.deepEqual(await findImageFile([path.join(workspace, 'pics', '..', '..', 'outside', 'secret.png')], options), { kind: 'refused', file: path.join(outside, 'secret.png'), reason: 'untrusted' });
    assert.ok(fs.calls.every((c) => !c.startsWith(outside)), fs.calls.join('\n'));
    // Trusted, the same link is followed as before.
    const trusted = await findImageFile([path.join(workspace, 'link.png')], { maxBytes: 100 });
    assert.equal(trusted.kind === 'found' && trusted.realPath, path.join(outside, 'secret.png'));
  });

  it('a workspace folder that is gone does not break the others; no folder at all reads nothing', async () => {
    const found = await findImageFile([path.join(workspace, 'pics', 'inside.png')], { maxBytes: 100, confineTo: [path.join(root, 'gone'), workspace] });
    assert.equal(found.kind, 'found');
    const fs = recordingRealFs();
    assert.equal((await findImageFile([path.join(workspace, 'pics', 'inside.png')], { maxBytes: 100, fs, confineTo: [] })).kind, 'refused');
    assert.deepEqual(fs.calls, []);
  });

  it('prefers a candidate inside over a refused one', async () => {
    const found = await findImageFile([path.join(outside, 'secret.png'), path.join(workspace, 'pics', 'inside.png')], { maxBytes: 100, confineTo: [workspace] });
    assert.equal(found.kind, 'found');
  });
});

// ---- the hover provider end to end, against a stand-in for vscode ------------------------------

let trusted = true;
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
    get isTrusted() {
      return trusted;
    },
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

describe('a hover reads its image once', () => {
  let root: string;
  let ProviderClass: typeof import('../../src/extension/hover/imageHoverProvider').ImageHoverProvider;
  before(async () => {
    root = await tempDir('beit-lens-hover-');
    await mkdir(path.join(root, 'ws'));
    await mkdir(path.join(root, 'elsewhere'));
    await copyFile(path.join(FIXTURE_IMAGES, 'gradient_640x480.jpg'), path.join(root, 'ws', 'a.jpg'));
    await copyFile(path.join(FIXTURE_IMAGES, 'gradient_640x480.jpg'), path.join(root, 'ws', 'copy.jpg'));
    await copyFile(path.join(FIXTURE_IMAGES, 'tiny_17x9.png'), path.join(root, 'elsewhere', 'b.png'));
    const mod = await import('../../src/extension/hover/imageHoverProvider');
    ProviderClass = mod.ImageHoverProvider;
  });
  after(() => rm(root, { recursive: true, force: true }));

  function setup() {
    const reads: string[] = [];
    const previewCalls: { bytes: Uint8Array }[] = [];
    const inference = {
      state: { kind: 'ready', model: { modelDir: '/m', modelId: 'tiny', provider: 'cpu', providerAttempts: [], canExplain: true, numLabels: 10 } },
      call: async (name: string, args: { bytes: Uint8Array }) => {
        assert.equal(name, 'preview');
        previewCalls.push(args);
        return { top: [{ index: 1, label: 'gradient', score: 0.9 }], thumbnail: 'data:image/jpeg;base64,/9j/' };
      },
    };
    const previews = new HoverPreviews(inference as never, { waitMs: 5000 });
    const hasher = new FileHasher(100, (f, max) => (reads.push(f), readFileBytes(f, max)));
    const provider = new ProviderClass({ inference: inference as never, previews, hasher });
    const hoverOver = async (line: string, documentPath = path.join(root, 'ws', 'main.py')) => {
      const doc = { uri: { scheme: 'file', fsPath: documentPath }, languageId: 'python', lineAt: () => ({ text: line }) };
      const result = (await provider.provideHover(doc as never, { line: 0, character: 3 } as never, { isCancellationRequested: false, onCancellationRequested: () => ({ dispose() {} }) } as never)) as { contents: { value: string } } | undefined;
      return result?.contents.value;
    };
    return { reads, previewCalls, hoverOver };
  }

  it('uncached: one read, and the worker gets exactly those bytes; cached: no read at all', async () => {
    trusted = true;
    workspaceFolders = [path.join(root, 'ws')];
    const { reads, previewCalls, hoverOver } = setup();
    const first = await hoverOver('x("a.jpg")');
    assert.match(first ?? '', /gradient/);
    assert.deepEqual(reads, [path.join(root, 'ws', 'a.jpg')]);
    assert.equal(previewCalls.length, 1);
    assert.deepEqual(Buffer.from(previewCalls[0].bytes), await readFile(path.join(root, 'ws', 'a.jpg')));
    assert.ok(!('file' in previewCalls[0]), 'the worker is given no path to open');
    assert.match((await hoverOver('x("a.jpg")')) ?? '', /gradient/);
    assert.equal(reads.length, 1, 'a repeated hover reads nothing');
    // A copy has the same content: read once to hash it, answered from the cache without the worker.
    assert.match((await hoverOver('x("copy.jpg")')) ?? '', /gradient/);
    assert.equal(reads.length, 2);
    assert.equal(previewCalls.length, 1);
  });

  it('Restricted Mode: a path outside the workspace is not read, and the hover says why', async () => {
    trusted = false;
    workspaceFolders = [path.join(root, 'ws')];
    const { reads, previewCalls, hoverOver } = setup();
    const text = await hoverOver(`x("${path.join(root, 'elsewhere', 'b.png')}")`);
    assert.ok(text?.includes('Not previewed in Restricted Mode'), text);
    assert.deepEqual(reads, []);
    assert.deepEqual(previewCalls, []);
    // A document outside the workspace cannot reach its own folder either.
    const relative = await hoverOver('x("b.png")', path.join(root, 'elsewhere', 'notes.py'));
    assert.ok(relative?.includes('Restricted Mode'), relative);
    assert.deepEqual(reads, []);
    // Inside the workspace, hovers work as usual.
    assert.match((await hoverOver('x("a.jpg")')) ?? '', /gradient/);
    assert.equal(reads.length, 1);
    trusted = true;
    assert.match((await hoverOver(`x("${path.join(root, 'elsewhere', 'b.png')}")`)) ?? '', /gradient/);
  });
});

// ---- the worker: one decode per explanation, no file opened for a preview -----------------------

describe('worker image handling', () => {
  let modelDir: string;
  let root: string;
  before(async () => {
    modelDir = await convertedTinyModel();
    root = await tempDir('beit-lens-decode-once-');
  });
  after(() => rm(root, { recursive: true, force: true }));

  function countingImages() {
    const counts = { decode: 0, thumbnail: 0, display: 0 };
    const images: WorkerImageFunctions = {
      decodeImage: async (input, options) => {
        counts.decode++;
        const decoded = await decodeImage(input, options);
        // Whatever comes after must use this decode: the file is gone.
        if (typeof input === 'string') await unlink(input);
        return decoded;
      },
      makeThumbnailDataUri: (input, side, options) => (counts.thumbnail++, makeThumbnailDataUri(input, side, options)),
      makeThumbnail: (input, side, options) => (counts.thumbnail++, makeThumbnail(input, side, options)),
      encodeDisplayDataUri: (image, side) => (counts.display++, encodeDisplayDataUri(image, side)),
    };
    return { counts, images };
  }

  const ctx = { signal: new AbortController().signal, progress: () => undefined };
  /** Worker handlers with the tiny model loaded, as the extension's worker holds them. */
  async function loadedHandlers(images: ReturnType<typeof countingImages>['images']): Promise<InferenceWorkerHandlers> {
    const handlers = new InferenceWorkerHandlers(images);
    try {
      await handlers.run('load', { source: { kind: 'folder', dir: modelDir }, provider: 'cpu', preprocess: { fast: false, applyExifOrientation: true } }, ctx);
      return handlers;
    } catch (err) {
      await handlers.dispose();
      throw err;
    }
  }

  it('explain decodes the image once and sends it as a data URI at the displayed size', async () => {
    const { counts, images } = countingImages();
    const handlers = await loadedHandlers(images);
    const reference = await BeitModel.load(modelDir);
    try {
      for (const name of ['gradient_640x480.jpg', 'exif_orientation6_320x240.jpg', 'alpha_300x200.png', 'gray16_200x150.png']) {
        const file = path.join(root, name);
        await copyFile(path.join(FIXTURE_IMAGES, name), file);
        const expected = await reference.explain(path.join(FIXTURE_IMAGES, name), { topK: 5 });
        const before = counts.decode;
        const summary = (await handlers.run('explain', { file, topK: 5, headFusion: 'mean', discardRatio: 0.9 }, ctx)) as { src: string; width: number; height: number; top: unknown; patchArgmax: number[] };
        assert.equal(counts.decode - before, 1, name);
        assert.deepEqual(summary.top, expected.top, name);
        assert.deepEqual(summary.patchArgmax, Array.from(expected.patchArgmax), name);
        const decoded = await decodeImage(path.join(FIXTURE_IMAGES, name));
        assert.deepEqual([summary.width, summary.height], [decoded.width, decoded.height], name);
        const jpeg = Buffer.from(summary.src.replace(/^data:image\/jpeg;base64,/, ''), 'base64');
        assert.deepEqual([...jpeg.subarray(0, 3)], [0xff, 0xd8, 0xff], `${name}: a JPEG data URI`);
        const shown = await decodeImage(jpeg);
        assert.deepEqual([shown.width, shown.height], [decoded.width, decoded.height], `${name}: shown at full size (under 2048 px)`);
      }
      assert.equal(counts.display, 4);
    } finally {
      await handlers.dispose();
      await reference.dispose();
    }
  });

  it('a large image is shown at most 2048 px a side', async () => {
    const { images } = countingImages();
    const handlers = await loadedHandlers(images);
    try {
      const file = path.join(root, 'wide.png');
      const sharp = (await import('sharp')).default;
      await sharp({ create: { width: 3000, height: 1000, channels: 3, background: { r: 200, g: 30, b: 90 } } }).png().toFile(file);
      const summary = (await handlers.run('explain', { file, topK: 3, headFusion: 'mean', discardRatio: 0.9 }, ctx)) as { src: string; width: number; height: number };
      assert.deepEqual([summary.width, summary.height], [3000, 1000]);
      const shown = await decodeImage(Buffer.from(summary.src.slice(summary.src.indexOf(',') + 1), 'base64'));
      assert.deepEqual([shown.width, shown.height], [2048, 683]);
    } finally {
      await handlers.dispose();
    }
  });

  it('preview classifies the bytes it is given and opens no file', async () => {
    const { counts, images } = countingImages();
    const handlers = await loadedHandlers(images);
    const reference = await BeitModel.load(modelDir);
    try {
      const file = path.join(FIXTURE_IMAGES, 'gradient_640x480.jpg');
      // As IPC delivers it: a plain Uint8Array, not a Buffer.
      const bytes = new Uint8Array(await readFile(file));
      const preview = (await handlers.run('preview', { bytes, topK: 5, thumbnailSide: 160 }, ctx)) as { top: unknown; thumbnail: string };
      assert.deepEqual(preview.top, await reference.classify(file, 5));
      assert.match(preview.thumbnail, /^data:image\/jpeg;base64,/);
      assert.equal(counts.thumbnail, 1);
      await assert.rejects(handlers.run('preview', { bytes: 'some/file.png' as never, topK: 5, thumbnailSide: 160 }, ctx), /preview needs the image bytes/);
    } finally {
      await handlers.dispose();
      await reference.dispose();
    }
  });
});
