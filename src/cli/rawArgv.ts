import { readFileSync } from 'node:fs';
import { decodeFileName } from '../core/scan/fileNames';

/**
 * Node.js decodes argv as UTF-8 and turns each invalid byte into U+FFFD, so a file whose name is not UTF-8 cannot
 * be named on the command line by the string it gives us. On Linux the kernel keeps the exact bytes in
 * /proc/self/cmdline; arguments holding U+FFFD are re-read from there into the surrogate-escaped form that `scan`
 * uses for such names (fileNames.ts), which the image reader opens by its bytes. Anything unexpected (no /proc,
 * a rewritten process title, a mismatch) leaves argv as it was.
 */
export function recoverRawArgv(argv: readonly string[], cmdline?: Buffer): string[] {
  if (!argv.slice(2).some((a) => a.includes('\uFFFD'))) return [...argv];
  let raw = cmdline;
  if (raw === undefined) {
    if (process.platform !== 'linux') return [...argv];
    try {
      raw = readFileSync('/proc/self/cmdline');
    } catch {
      return [...argv];
    }
  }
  const parts: Buffer[] = [];
  for (let start = 0; start < raw.length; ) {
    const end = raw.indexOf(0, start);
    parts.push(raw.subarray(start, end < 0 ? raw.length : end));
    start = end < 0 ? raw.length : end + 1;
  }
  // Node's own options (node --inspect cli.js ...) are in cmdline but not in argv, so the user's arguments, last
  // in both, are matched from the end; each must decode to what Node gave us, or nothing is changed.
  const user = argv.length - 2;
  if (parts.length < user + 1) return [...argv];
  const tail = parts.slice(parts.length - user);
  const sameText = (a: string, b: string) => a.replace(/\uFFFD+/g, '\uFFFD') === b.replace(/\uFFFD+/g, '\uFFFD');
  if (!tail.every((bytes, i) => sameText(bytes.toString('utf8'), argv[i + 2]))) return [...argv];
  return argv.map((a, i) => (i >= 2 && a.includes('\uFFFD') ? decodeFileName(tail[i - 2]) : a));
}
