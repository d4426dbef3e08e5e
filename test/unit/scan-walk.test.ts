import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { before, describe, it } from 'node:test';
import fc from 'fast-check';
import { decodeFileName, displayPath, encodeFileName, fsPath } from '../../src/core/scan/fileNames';
import { countImages, walkImages, type WalkEntry, type WalkWarning } from '../../src/core/scan/walk';
import { tempDir } from '../helpers/fixtures';
import { makeScanFixture, type ScanFixture } from '../helpers/scanFixtures';

async function collect(args: string[], options: Parameters<typeof walkImages>[1] = {}): Promise<WalkEntry[]> {
  const out: WalkEntry[] = [];
  for await (const e of walkImages(args, options)) out.push(e);
  return out;
}

function touch(file: string, content = 'x'): void {
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, content);
}

describe('scan file names (surrogate escapes for non-UTF-8 bytes)', () => {
  it('round-trips any byte string, and leaves valid UTF-8 alone', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const b = Buffer.from(bytes);
        assert.deepEqual(encodeFileName(decodeFileName(b)), b);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 30 }), (s) => {
        assert.equal(decodeFileName(Buffer.from(s, 'utf8')), s);
        assert.equal(fsPath(s), s);
      }),
    );
  });

  it('writes undecodable bytes as \\udcXX in JSON, readable back, and shows U+FFFD to people', () => {
    const name = decodeFileName(Buffer.from([0x63, 0xe9, 0x2e, 0x70, 0x6e, 0x67]));
    assert.equal(name, 'c\udce9.png');
    assert.equal(JSON.stringify(name), '"c\\udce9.png"');
    assert.equal(JSON.parse(JSON.stringify(name)), name);
    assert.deepEqual(fsPath(name), Buffer.from([0x63, 0xe9, 0x2e, 0x70, 0x6e, 0x67]));
    assert.equal(displayPath(name), 'c\uFFFD.png');
    // A surrogate pair (astral character) is not an escape.
    assert.equal(fsPath('\u{1F600}.png'), '\u{1F600}.png');
  });
});

describe('walkImages', () => {
  let fixture: ScanFixture;
  before(async () => {
    fixture = await makeScanFixture(await tempDir('beit-walk-'));
  });

  it('finds every image once: gitignore (nested, negated), link loop, odd names; streams in name order', async () => {
    const warnings: WalkWarning[] = [];
    const entries = await collect([fixture.root], { onWarning: (w) => warnings.push(w) });
    const paths = entries.map((e) => e.path);
    assert.equal(new Set(paths).size, paths.length, 'no duplicates');
    assert.deepEqual([...paths].sort(), [...fixture.expected].sort());
    for (const h of fixture.hidden) assert.ok(!paths.includes(h), `${h} must be hidden`);
    assert.ok(warnings.some((w) => w.path.endsWith(path.join('tabby', 'loop')) && w.skipped === 'linkLoop' && /symbolic link loop/.test(w.message)));
    // Within a folder, names are in order; folders are visited depth-first in order.
    const tabby = entries.filter((e) => e.folder === 'tabby').map((e) => e.relative);
    assert.deepEqual(tabby, [...tabby].sort());
    const nonUtf8 = entries.find((e) => e.path === fixture.nonUtf8)!;
    assert.ok(nonUtf8.signature && nonUtf8.signature.size > 0, 'non-UTF-8 name is statted through its bytes');
    assert.equal(nonUtf8.folderLabel, 'xyz');
    const long = entries.find((e) => e.path === fixture.longName)!;
    assert.ok(path.basename(long.path).length > 200 && long.signature);
    const dangling = entries.find((e) => e.path.endsWith('dangling.jpg'))!;
    assert.equal(dangling.statError?.code, 'ENOENT');
    assert.equal(await countImages([fixture.root]), entries.length);
  });

  it('reports folder and ImageFolder label relative to the root', async () => {
    const entries = await collect([fixture.root]);
    const e = entries.find((x) => x.relative === 'river_otters/river_otters_00003.png')!;
    assert.equal(e.folder, 'river_otters');
    assert.equal(e.folderLabel, 'river_otters');
    assert.equal(e.path, path.join(fixture.root, 'river_otters', 'river_otters_00003.png'));
    assert.equal(e.absolute, e.path);
  });

  it('honours exclude globs (names and paths) and --no-gitignore', async () => {
    const byName = await collect([fixture.root], { exclude: ['*_0000?.png'] });
    assert.ok(!byName.some((e) => /_0000\d\.png$/.test(e.path)));
    assert.ok(byName.some((e) => e.path.endsWith('_00010.png')));
    const byFolder = await collect([fixture.root], { exclude: ['balloon'] });
    assert.ok(!byFolder.some((e) => e.folder === 'balloon'));
    const everything = await collect([fixture.root], { gitignore: false });
    for (const h of fixture.hidden.filter((f) => !f.includes('loop'))) assert.ok(everything.some((e) => e.path === h), h);
  });

  it('takes globs and single files, and refuses a path that is neither', async () => {
    const globbed = await collect([path.join(fixture.root, '*', 'tabby_0000[0-2].png')]);
    assert.deepEqual(
      globbed.map((e) => path.basename(e.path)),
      ['tabby_00000.png', 'tabby_00001.png', 'tabby_00002.png'],
    );
    const single = await collect([path.join(fixture.root, 'tabby', 'tabby_00001.png')]);
    assert.equal(single.length, 1);
    assert.equal(single[0].folderLabel, null);
    await assert.rejects(collect([path.join(fixture.root, 'nope')]), /no such file or folder/);
  });

  it('applies .gitignore files above the root inside a git work tree, and not outside one', async () => {
    const repo = await tempDir('beit-walk-repo-');
    mkdirSync(path.join(repo, '.git'));
    writeFileSync(path.join(repo, '.gitignore'), 'data/train/tmp/\n');
    touch(path.join(repo, 'data', 'train', 'cat', 'a.png'));
    touch(path.join(repo, 'data', 'train', 'tmp', 'b.png'));
    const inRepo = await collect([path.join(repo, 'data', 'train')]);
    assert.deepEqual(inRepo.map((e) => e.relative), ['cat/a.png']);
    const plain = await tempDir('beit-walk-plain-');
    writeFileSync(path.join(plain, '.gitignore'), 'sub/tmp/\n');
    touch(path.join(plain, 'sub', 'tmp', 'b.png'));
    assert.equal((await collect([path.join(plain, 'sub')])).length, 1);
  });

  it('enters a folder reached through two links only once', async () => {
    const dir = await tempDir('beit-walk-links-');
    touch(path.join(dir, 'real', 'x.png'));
    symlinkSync(path.join(dir, 'real'), path.join(dir, 'alias'));
    const warnings: WalkWarning[] = [];
    const entries = await collect([dir], { onWarning: (w) => warnings.push(w) });
    // Folders are entered before links in the same folder, so the folder is reported under its own name.
    assert.deepEqual(entries.map((e) => e.path), [path.join(dir, 'real', 'x.png')]);
    assert.deepEqual(warnings.map((w) => [w.path, w.skipped]), [[path.join(dir, 'alias'), 'alreadyScanned']]);
  });

  it('stops when the signal is aborted', async () => {
    const controller = new AbortController();
    let n = 0;
    for await (const e of walkImages([fixture.root], { signal: controller.signal })) {
      void e;
      if (++n === 5) controller.abort();
    }
    assert.ok(n < 40, `walked ${n} after abort`);
  });
});
