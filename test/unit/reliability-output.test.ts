/**
 * Output that is safe to read: file names and labels come from other people's files and models, so CSV cells must
 * not run as spreadsheet formulas, text output must not carry terminal escapes or split lines, and a name that is
 * not UTF-8 must be usable from the command line as it is in `scan`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { copyFile, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { before, describe, it } from 'node:test';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

import { recoverRawArgv } from '../../src/cli/rawArgv';
import { convertModel } from '../../src/core/convert';
import { csvTextCell, terminalLines, terminalText } from '../../src/core/safeOutput';
import { createCsvWriter } from '../../src/core/scan/output';
import { resultsCsv } from '../../src/extension/commands/classifySelection';
import { FIXTURE_DIR, FIXTURE_IMAGES, removedAfterTests } from '../helpers/fixtures';

const run = promisify(execFile);
const ENTRY = path.resolve(__dirname, '..', '..', 'src', 'cli', 'index.ts');
/** tsx by URL, so the CLI from source also runs with another working directory. */
const TSX = pathToFileURL(require.resolve('tsx')).href;
const BUILT = path.resolve(__dirname, '..', '..', 'dist', 'cli.js');

/** Temporary folders removed when the file's tests end. */
const tempDir = removedAfterTests();

/** Control characters a terminal acts on: C0 other than the line break, DEL, C1. */
const RAW_CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

describe('CSV cells a spreadsheet would run are neutralised (OWASP)', () => {
  it('text cells starting with = + - @ TAB CR get a leading quote and are quoted; others are untouched', () => {
    for (const v of ['=1+2', '+1', '-2+3', '@SUM(A1)', '\tcmd', '\rx', '=HYPERLINK("http://evil")']) assert.deepEqual(csvTextCell(v), { value: `'${v}`, quoted: true });
    for (const v of ['/data/=x.png', 'tabby', '', ' =x', "'=x", 'x=1', '[{"index":1}]', '0.5']) assert.equal(csvTextCell(v), v);
  });

  const hostile = { image: '=HYPERLINK("http://evil","x").png', folder: '/d', folderLabel: '@folder', top: [{ index: 3, label: '-cmd|calc', score: 0.75 }] };

  it('the scan writer (CLI --out, dataset export): paths, folder labels, labels and errors; numbers stay numbers', async () => {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    const writer = createCsvWriter(out);
    await writer.write(hostile);
    await writer.write({ image: '+x.png', folder: '/d', folderLabel: null, error: '\tfile not found', errorCode: 'FILE_NOT_FOUND' });
    await writer.write({ image: 'plain.png', folder: '/d', folderLabel: 'tabby', top: [{ index: 1, label: 'tabby, tabby cat', score: 0.5 }] });
    await writer.close();
    assert.deepEqual(Buffer.concat(chunks).toString('utf8').split('\n'), [
      'image,folder_label,top1_index,top1_label,top1_score,top5,error,quality_flags,brightness_perc_99,brightness_perc_5,entropy,blurriness,blurriness_grayscale_std,aspect_ratio,size,sha256',
      `"'=HYPERLINK(""http://evil"",""x"").png","'@folder",3,"'-cmd|calc",0.75,"[{""index"":3,""label"":""-cmd|calc"",""score"":0.75}]",,,,,,,,,,`,
      `"'+x.png",,,,,,"'\tfile not found",,,,,,,,,`,
      'plain.png,tabby,1,"tabby, tabby cat",0.5,"[{""index"":1,""label"":""tabby, tabby cat"",""score"":0.5}]",,,,,,,,,,',
      '',
    ]);
  });

  it("the extension's selection CSV: the same rule through the same helper", () => {
    const csv = resultsCsv(
      [
        { image: hostile.image, top: [{ index: 3, label: '-cmd|calc', score: 0.75 }, { index: 1, label: ' spaced ', score: 0.125 }] },
        { image: '\r=evil.png', error: '@error' },
      ],
      2,
    );
    assert.deepEqual(csv.split('\n'), [
      'file,label1,score1,label2,score2,error',
      `"'=HYPERLINK(""http://evil"",""x"").png","'-cmd|calc",0.750000," spaced ",0.125000,`,
      `"'\r=evil.png",,,,,"'@error"`,
      '',
    ]);
  });
});

describe('text output escapes control characters', () => {
  it('escapes C0, DEL and C1 as \\xNN, shows escaped bytes as U+FFFD, leaves the rest', () => {
    assert.equal(terminalText('\x1b]0;pwned\x07x.png'), '\\x1b]0;pwned\\x07x.png');
    assert.equal(terminalText('\x1b[2J\x1b[H'), '\\x1b[2J\\x1b[H');
    assert.equal(terminalText('two\nlines\r.png'), 'two\\x0alines\\x0d.png');
    assert.equal(terminalText('a\tb\x00c\x7fd\x9be\x85f'), 'a\\x09b\\x00c\\x7fd\\x9be\\x85f');
    assert.equal(terminalText('caf\udce9_\udcff.png'), 'caf\uFFFD_\uFFFD.png');
    assert.equal(terminalText('C:\\Users\\crème brûlée 🐈.png'), 'C:\\Users\\crème brûlée 🐈.png');
    assert.equal(terminalText(terminalText('\x1b')), '\\x1b', 'idempotent');
    assert.equal(terminalLines('model: \x1b[31mx\nfiles:\ty'), 'model: \\x1b[31mx\nfiles:\\x09y');
  });
});

describe('argv recovery from /proc/self/cmdline', () => {
  const nul = (...parts: (string | Buffer)[]) => Buffer.concat(parts.flatMap((p) => [Buffer.isBuffer(p) ? p : Buffer.from(p), Buffer.of(0)]));
  const raw = Buffer.concat([Buffer.from('/d/caf'), Buffer.of(0xe9), Buffer.from('_'), Buffer.of(0xff), Buffer.from('.png')]);
  const lossy = '/d/caf\uFFFD_\uFFFD.png';

  it('re-reads the arguments holding U+FFFD as surrogate-escaped bytes, matching from the end past node options', () => {
    const argv = ['/usr/bin/node', '/abs/dist/cli.js', 'classify', '--json', lossy, 'b.png'];
    const cmdline = nul('node', '--max-old-space-size=100', 'dist/cli.js', 'classify', '--json', raw, 'b.png');
    assert.deepEqual(recoverRawArgv(argv, cmdline), ['/usr/bin/node', '/abs/dist/cli.js', 'classify', '--json', '/d/caf\udce9_\udcff.png', 'b.png']);
  });

  it('leaves argv alone when nothing needs recovering, when cmdline does not match, and for a genuine U+FFFD', () => {
    const plain = ['node', 'cli.js', 'classify', 'a.png'];
    assert.deepEqual(recoverRawArgv(plain, Buffer.from('garbage')), plain);
    const argv = ['node', 'cli.js', 'classify', lossy];
    assert.deepEqual(recoverRawArgv(argv, nul('node', 'cli.js', 'classify', 'other.png')), argv, 'a different argument');
    assert.deepEqual(recoverRawArgv(argv, nul('classify')), argv, 'too short (a rewritten title)');
    const genuine = ['node', 'cli.js', 'classify', 'x\uFFFD.png'];
    assert.deepEqual(recoverRawArgv(genuine, nul('node', 'cli.js', 'classify', 'x\uFFFD.png')), genuine);
    // Empty arguments are NUL-delimited like any other.
    assert.deepEqual(recoverRawArgv(['node', 'cli.js', '', lossy], nul('node', 'cli.js', '', raw)), ['node', 'cli.js', '', '/d/caf\udce9_\udcff.png']);
  });
});

describe('the CLI with hostile names and labels', () => {
  /** Labels a model author controls: terminal escapes, a line break, formula openings. */
  const LABELS = ['\x1b]0;owned title\x07title label', 'two\nlines', '=cmd|calc', '+plus', '-minus', '@at', '\ttab', '\rcr', 'clear\x1b[2J', 'c1\x9bcsi'];
  let model: string;
  let dir: string;
  const escName = '\x1b]0;pwned\x07\x1b[2Jesc.png';
  const newlineName = 'two\nlines.png';
  const rawName = Buffer.concat([Buffer.from('caf'), Buffer.of(0xe9), Buffer.from('_'), Buffer.of(0xff), Buffer.from('.png')]);

  before(async () => {
    const hf = await tempDir('beit-lens-hostile-labels-');
    for (const f of ['model.safetensors', 'preprocessor_config.json']) await copyFile(path.join(FIXTURE_DIR, f), path.join(hf, f));
    const config = JSON.parse(readFileSync(path.join(FIXTURE_DIR, 'config.json'), 'utf8'));
    config.id2label = Object.fromEntries(LABELS.map((l, i) => [String(i), l]));
    config.label2id = Object.fromEntries(LABELS.map((l, i) => [l, i]));
    await writeFile(path.join(hf, 'config.json'), JSON.stringify(config));
    model = path.join(hf, 'out');
    await convertModel({ from: hf, out: model });
    dir = await tempDir('beit-lens-hostile-names-');
    const image = path.join(FIXTURE_IMAGES, 'gray_256x256.png');
    copyFileSync(image, path.join(dir, escName));
    copyFileSync(image, path.join(dir, newlineName));
    writeFileSync(Buffer.concat([Buffer.from(`${dir}/`), rawName]), readFileSync(image));
  });

  async function cli(entry: 'source' | 'built', args: string[], rawLast?: Buffer, cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
    const node = entry === 'source' ? [process.execPath, '--import', TSX, ENTRY] : [process.execPath, BUILT];
    // A raw byte argument goes through a shell, as from `beit-lens classify *.png`: execFile would re-encode it.
    const octal = rawLast ? [...rawLast].map((b) => (b < 0x80 && b !== 0x27 && b !== 0x25 && b !== 0x5c ? String.fromCharCode(b) : `\\${b.toString(8).padStart(3, '0')}`)).join('') : '';
    const argv = rawLast ? ['/bin/sh', ['-c', `exec "$@" "$(printf '${octal}')"`, 'sh', ...node, ...args]] : [node[0], [...node.slice(1), ...args]];
    return run(argv[0] as string, argv[1] as string[], { timeout: 120_000, maxBuffer: 16 << 20, cwd }).then(
      (r) => ({ code: 0, ...r }),
      (e: { code?: number; stdout?: string; stderr?: string }) => ({ code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
    );
  }

  it('classify: text mode escapes names and labels, one line each; --json keeps them exact', { timeout: 240_000 }, async () => {
    const files = [path.join(dir, escName), path.join(dir, newlineName), path.join(dir, 'missing\x1b[2J.png')];
    const text = await cli('source', ['classify', '--model', model, '--top-k', '10', ...files]);
    assert.equal(text.code, 1, text.stderr);
    assert.ok(!RAW_CONTROL.test(text.stdout), JSON.stringify(text.stdout));
    assert.ok(!RAW_CONTROL.test(text.stderr), JSON.stringify(text.stderr));
    const lines = text.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 2 * 11, 'a line per image and per label, no more');
    assert.equal(lines[0], path.join(dir, '\\x1b]0;pwned\\x07\\x1b[2Jesc.png'));
    assert.equal(lines[11], path.join(dir, 'two\\x0alines.png'));
    const shown = lines.slice(1, 11).map((l) => /^ +[\d.]+% {2}(.*) {2}\(#(\d+)\)$/.exec(l)!);
    assert.deepEqual(new Set(shown.map((m) => Number(m[2]))), new Set(LABELS.map((_, i) => i)));
    for (const m of shown) assert.equal(m[1], terminalText(LABELS[Number(m[2])]));
    assert.equal(text.stderr.trimEnd(), `beit-lens: ${path.join(dir, 'missing\\x1b[2J.png')}: file not found`);

    const json = await cli('source', ['classify', '--json', '--model', model, '--top-k', '10', ...files]);
    const records = json.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { image: string; top?: { index: number; label: string }[]; error?: string });
    assert.deepEqual(records.map((r) => r.image), files);
    for (const p of records[0].top!) assert.equal(p.label, LABELS[p.index]);
    assert.match(records[2].error!, /missing\x1b\[2J\.png: file not found$/);
  });

  it('a name that is not UTF-8, given on the command line, is opened by classify and explain (Linux)', { timeout: 240_000, skip: process.platform !== 'linux' && 'needs /proc/self/cmdline' }, async () => {
    const rawPath = Buffer.concat([Buffer.from(`${dir}/`), rawName]);
    const escaped = path.join(dir, 'caf\udce9_\udcff.png');
    const reference = await cli('source', ['classify', '--json', '--model', model, path.join(dir, escName)]);
    const expectedTop = (JSON.parse(reference.stdout) as { top: unknown }).top;
    for (const entry of existsSync(BUILT) ? (['source', 'built'] as const) : (['source'] as const)) {
      const json = await cli(entry, ['classify', '--json', '--model', model], rawPath);
      assert.equal(json.code, 0, `${entry}: ${json.stderr}`);
      // The same surrogate escapes as `scan` writes (\udcXX): Python's json + open() find the file from it.
      assert.ok(json.stdout.includes('caf\\udce9_\\udcff.png'), json.stdout);
      const record = JSON.parse(json.stdout) as { image: string; top: unknown };
      assert.equal(record.image, escaped);
      assert.deepEqual(record.top, expectedTop);

      const text = await cli(entry, ['classify', '--model', model, '--top-k', '1'], rawPath);
      assert.equal(text.code, 0, text.stderr);
      assert.equal(text.stdout.split('\n')[0], path.join(dir, 'caf\uFFFD_\uFFFD.png'));

      const out = path.join(dir, `overlay-${entry}.png`);
      const explain = await cli(entry, ['explain', '--model', model, '--out', out], rawPath);
      assert.equal(explain.code, 0, explain.stderr);
      assert.equal(explain.stdout.split('\n')[0], path.join(dir, 'caf\uFFFD_\uFFFD.png'));
      assert.ok(!RAW_CONTROL.test(explain.stdout), JSON.stringify(explain.stdout));
      assert.match(explain.stdout, /^patch classes:$/m);
      assert.ok(readFileSync(out).subarray(1, 4).equals(Buffer.from('PNG')));
    }
  });

  it('scan: CSV cells neutralised, progress, summary and label check escaped', { timeout: 240_000 }, async () => {
    const root = await tempDir('beit-lens-hostile-scan-');
    const folder = '=evil\x1b]0;t\x07';
    mkdirSync(path.join(root, '=top', folder), { recursive: true });
    for (const n of ['a.png', '-b.png']) copyFileSync(path.join(FIXTURE_IMAGES, 'gray_256x256.png'), path.join(root, '=top', folder, n));
    const out = path.join(root, 'results.csv');
    const r = await cli('source', ['scan', '=top', '--model', model, '--out', out, '--no-cache', '--workers', '0', '--label-check'], undefined, root);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(!RAW_CONTROL.test(r.stdout) && !RAW_CONTROL.test(r.stderr), JSON.stringify(r));
    assert.match(r.stdout, /^ {2}=evil\\x1b\]0;t\\x07 +-> /m);
    const rows = readFileSync(out, 'utf8').trimEnd().split('\n');
    assert.equal(rows.length, 3);
    for (const row of rows.slice(1)) {
      // image (relative, so it starts with the folder's "="), folder_label: both neutralised; the top-1 label too.
      assert.ok(row.startsWith(`"'=top/=evil\x1b]0;t\x07/`), row);
      assert.ok(row.includes(`,"'=evil\x1b]0;t\x07",`), row);
      const label = LABELS.find((l) => row.includes(`,${/^[=+\-@\t\r]/.test(l) ? `"'${l}"` : l.includes('\n') ? `"${l}"` : l},`));
      assert.ok(label !== undefined, row);
    }
  });
});
