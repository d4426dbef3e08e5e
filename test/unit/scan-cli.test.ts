import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { CSV_COLUMNS, parseJsonLine } from '../../src/core/scan/output';
import { ResultStore } from '../../src/core/scan/resultStore';
import { writeSyntheticDataset } from '../../src/core/scan/scanBench';
import { convertedTinyModel, tempDir } from '../helpers/fixtures';

/** The CLI from source, so these tests do not depend on a build that knows the scan worker entry. */
const ENTRY = path.resolve(__dirname, '..', '..', 'src', 'cli', 'index.ts');
const run = promisify(execFile);

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', ENTRY, ...args], { timeout: 120_000, maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

describe('beit-lens scan (CLI)', () => {
  let model: string;
  let root: string;
  let files: string[];
  before(async () => {
    model = await convertedTinyModel();
    root = await tempDir('beit-cli-scan-');
    files = await writeSyntheticDataset(root, { classes: ['tabby', 'river_otters', 'balloon', 'xyz'], perClass: 50, width: 32, height: 24, seed: 9 });
    writeFileSync(path.join(root, 'tabby', 'broken.png'), 'not an image');
    files.push(path.join(root, 'tabby', 'broken.png'));
  });

  it('writes CSV with the shared columns, prints progress and the label check', async () => {
    const dir = await tempDir('beit-cli-out-');
    const out = path.join(dir, 'results.csv');
    const labelMap = path.join(dir, 'map.json');
    writeFileSync(labelMap, JSON.stringify({ xyz: 'glacier lily' }));
    const r = await cli(['scan', root, '--model', model, '--out', out, '--cache', path.join(dir, 'cache.log'), '--label-check', '--label-map', labelMap, '--top-k', '3']);
    assert.equal(r.code, 0, r.stderr);
    const lines = readFileSync(out, 'utf8').trimEnd().split('\n');
    assert.equal(lines[0], CSV_COLUMNS.join(','));
    assert.equal(lines.length, files.length + 1);
    const broken = lines.find((l) => l.includes('broken.png'))!;
    assert.match(broken, /,tabby,,,,,"not a recognised image/);
    assert.match(r.stderr, /^progress: .*\d+\/201 100%/m);
    assert.match(r.stderr, /scanned 201 files .* 200 classified, 0 from cache, 1 errors/);
    assert.match(r.stdout, /river_otters\s+-> river otter\s+\(exact/);
    assert.match(r.stdout, /balloon\s+-> hot air balloon\s+\(fuzzy/);
    assert.match(r.stdout, /xyz\s+-> glacier lily\s+\(--label-map\)/);
    assert.match(r.stdout, /200 images checked: \d+ disagree/);

    const again = await cli(['scan', root, '--model', model, '--out', path.join(dir, 'again.jsonl'), '--cache', path.join(dir, 'cache.log'), '--top-k', '3']);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /0 classified, 200 from cache, 1 errors/);
    const records = readFileSync(path.join(dir, 'again.jsonl'), 'utf8').trimEnd().split('\n').map((l) => parseJsonLine(l)!);
    assert.equal(records.length, files.length);
    assert.ok(records.every((x) => x.folderLabel === path.basename(path.dirname(x.image))));
    assert.ok(records.every((x) => x.root === root), 'each row names the root argument it was found under');
    assert.ok(records.every((x) => x.sha256 === createHash('sha256').update(readFileSync(x.image)).digest('hex')), 'each row has its content hash');
    const store = await ResultStore.open(path.join(dir, 'cache.log'), { readOnly: true });
    try {
      assert.equal(store.stats.embeddings, 200, 'the scan stored the embedding of every classified image');
    } finally {
      await store.close();
    }
  });

  it('--no-embeddings classifies without storing embeddings; a later scan adds them', async () => {
    const dir = await tempDir('beit-cli-noemb-');
    const cache = path.join(dir, 'cache.log');
    const embeddingsIn = async () => {
      const store = await ResultStore.open(cache, { readOnly: true });
      const n = store.stats.embeddings;
      await store.close();
      return n;
    };
    const off = await cli(['scan', path.join(root, 'xyz'), '--model', model, '--cache', cache, '--no-embeddings', '--out', path.join(dir, 'a.jsonl')]);
    assert.equal(off.code, 0, off.stderr);
    assert.match(off.stderr, /50 classified/);
    assert.equal(await embeddingsIn(), 0);
    const on = await cli(['scan', path.join(root, 'xyz'), '--model', model, '--cache', cache, '--out', path.join(dir, 'b.jsonl')]);
    assert.equal(on.code, 0, on.stderr);
    assert.match(on.stderr, /50 classified, 0 from cache/, 'cached predictions without embeddings are embedded again');
    assert.equal(await embeddingsIn(), 50);
    const help = await cli(['scan', '--help']);
    assert.match(help.stdout.replace(/\s+/g, ' '), /embedding is stored in the cache beside its predictions/);
    assert.match(help.stdout, /--no-embeddings/);
  });

  it('streams JSONL to stdout with --no-cache, honouring --exclude', async () => {
    const r = await cli(['scan', path.join(root, 'xyz'), path.join(root, 'tabby'), '--model', model, '--no-cache', '--exclude', '*_0001?.png']);
    assert.equal(r.code, 0, r.stderr);
    const records = r.stdout.trimEnd().split('\n').map((l) => parseJsonLine(l)!);
    assert.equal(records.length, 2 * 50 - 2 * 10 + 1);
    assert.ok(records.every((x) => !/_0001\d\.png$/.test(x.image)));
    assert.ok(records.every((x) => x.folderLabel === null), 'files directly in a root have no folder label');
  });

  it('stops on Ctrl-C with exit code 130, keeping results, and the next run resumes from the cache', async () => {
    const dir = await tempDir('beit-cli-sigint-');
    const cache = path.join(dir, 'cache.log');
    const child = spawn(process.execPath, ['--import', 'tsx', ENTRY, 'scan', root, '--model', model, '--cache', cache, '--batch', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    let lines = 0;
    for await (const line of createInterface({ input: child.stdout! })) {
      assert.ok(parseJsonLine(line));
      if (++lines === 10) child.kill('SIGINT');
    }
    assert.equal(await exited, 130, stderr);
    assert.ok(lines >= 10 && lines < files.length, `${lines} lines`);
    assert.match(stderr, /scan cancelled; run the same command again to resume/);

    const resumed = await cli(['scan', root, '--model', model, '--cache', cache, '--out', path.join(dir, 'r.jsonl')]);
    assert.equal(resumed.code, 0, resumed.stderr);
    const fromCache = Number(/(\d+) from cache/.exec(resumed.stderr)![1]);
    assert.ok(fromCache >= lines - 1, `${fromCache} from cache after ${lines} results`);
  });

  it('refuses a --cache file that is not a scan cache, and a path that does not exist', async () => {
    const dir = await tempDir('beit-cli-bad-');
    const notCache = path.join(dir, 'results.csv');
    writeFileSync(notCache, 'a,b\n1,2\n');
    const r = await cli(['scan', root, '--model', model, '--cache', notCache]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not a BEiT Lens scan cache/);
    const missing = await cli(['scan', path.join(root, 'nope'), '--model', model, '--no-cache']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /nope: no such file or folder/);
  });
});
