/**
 * Checks platform VSIXs: each must hold its platform's native files (onnxruntime_binding.node and
 * the onnxruntime library, @img/sharp-<platform> and libvips), nothing of another platform, no
 * sources, tests, fixtures or source maps, and stay within the size budget (targets.ts).
 *
 *   node --import tsx scripts/check-vsix.ts [out/vsix/beit-lens-linux-x64-0.1.0.vsix ...]
 *
 * Without arguments it checks every target's VSIX in out/vsix. Exits 1 if any check fails.
 */
import { readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { unzipSync } from 'fflate';
import { forbiddenReason, linkedOnnxruntimeLibrary, requiredEntries, requiredPatterns, ROOT, SIZE_BUDGET_MIB, Target, TARGETS, VSIX_DIR, vsixFileName } from './vsix/targets';

export function formatMiB(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** Entry names, with their uncompressed sizes, without inflating anything but the manifest. */
function listEntries(file: string): { entries: Map<string, number>; manifest: string; bindings: Map<string, Uint8Array> } {
  const entries = new Map<string, number>();
  const unzipped = unzipSync(readFileSync(file), {
    filter: (entry) => {
      entries.set(entry.name, entry.originalSize);
      return entry.name === 'extension.vsixmanifest' || entry.name.endsWith('/onnxruntime_binding.node');
    },
  });
  const manifest = unzipped['extension.vsixmanifest'];
  const bindings = new Map(Object.entries(unzipped).filter(([name]) => name.endsWith('/onnxruntime_binding.node')));
  return { entries, manifest: manifest ? Buffer.from(manifest).toString('utf8') : '', bindings };
}

/** Prints the result for one VSIX; returns whether it passed. */
export function checkVsix(file: string, target: Target): boolean {
  const problems: string[] = [];
  const size = statSync(file).size;
  if (size > SIZE_BUDGET_MIB * 2 ** 20) problems.push(`${formatMiB(size)} is over the budget of ${SIZE_BUDGET_MIB} MiB`);
  const { entries, manifest, bindings } = listEntries(file);
  if (!manifest.includes(`TargetPlatform="${target.name}"`)) problems.push(`extension.vsixmanifest does not say TargetPlatform="${target.name}"`);
  for (const entry of requiredEntries(target)) if (!entries.has(entry)) problems.push(`missing ${entry}`);
  for (const { what, pattern } of requiredPatterns(target)) if (![...entries.keys()].some((e) => pattern.test(e))) problems.push(`missing ${what} (${pattern.source})`);
  for (const [binding, bytes] of bindings) {
    const linked = linkedOnnxruntimeLibrary(bytes);
    const expected = `${path.posix.dirname(binding)}/${linked}`;
    if (!linked) problems.push(`${binding} names no onnxruntime library`);
    else if (!entries.has(expected)) problems.push(`missing ${expected} (the library ${path.posix.basename(binding)} loads)`);
  }
  for (const entry of entries.keys()) {
    const reason = forbiddenReason(entry, target);
    if (reason) problems.push(`${entry}: ${reason}`);
  }
  const unpacked = [...entries.values()].reduce((a, b) => a + b, 0);
  const name = path.relative(ROOT, file);
  if (problems.length === 0) {
    console.log(`[check] ok   ${name}: ${formatMiB(size)} of the ${SIZE_BUDGET_MIB} MiB budget (${entries.size} files, ${formatMiB(unpacked)} unpacked)`);
    return true;
  }
  console.error(`[check] FAIL ${name}: ${formatMiB(size)} (${entries.size} files)`);
  for (const p of problems.slice(0, 40)) console.error(`         - ${p}`);
  if (problems.length > 40) console.error(`         … and ${problems.length - 40} more`);
  return false;
}

function main(): void {
  const files = process.argv.slice(2);
  const { name, version } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
  const jobs = files.length
    ? files.map((file) => {
        const target = TARGETS.find((t) => path.basename(file).includes(`-${t.name}-`));
        if (!target) throw new Error(`${file}: no target name in the file name`);
        return { file, target };
      })
    : TARGETS.map((target) => ({ file: path.join(VSIX_DIR, vsixFileName(name, target, version)), target }));
  let ok = true;
  for (const { file, target } of jobs) {
    try {
      ok = checkVsix(file, target) && ok;
    } catch (err) {
      console.error(`[check] FAIL ${file}: ${(err as Error).message}`);
      ok = false;
    }
  }
  process.exit(ok ? 0 : 1);
}

if (require.main === module) main();
