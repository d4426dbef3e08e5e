import { defaultCacheDir } from '../core/hub';
import type { DownloadProgress } from '../core/hub';
import { ensureModel, OFFICIAL_MODEL_ID } from '../core/modelStore';
import { terminalText } from '../core/safeOutput';

/** Model resolution and download progress shared by the CLI's commands. */

/** --model, or the converted official model in the cache (downloaded and converted on first use). */
export async function resolveModelDir(model: string | undefined): Promise<string> {
  if (model) return model;
  return ensureModel({ cacheDir: defaultCacheDir(), modelId: OFFICIAL_MODEL_ID, onLog: (m) => process.stderr.write(terminalText(m) + '\n'), onProgress: downloadProgressPrinter() });
}

/** One updating line on a terminal, a line every half second otherwise. */
export function downloadProgressPrinter(): (p: DownloadProgress) => void {
  let last = 0;
  return (p) => {
    const now = Date.now();
    if (now - last < 500 && p.received !== p.total) return;
    last = now;
    const pct = p.total ? ` ${((100 * p.received) / p.total).toFixed(1)}%` : '';
    const line = p.waiting
      ? `waiting for ${terminalText(p.waiting.host)}… ${p.waiting.seconds} s (timeout ${p.waiting.timeoutSeconds} s)`
      : `downloading ${terminalText(p.file)}: ${(p.received / 1e6).toFixed(1)} MB${p.total ? ` of ${(p.total / 1e6).toFixed(1)} MB` : ''}${pct}`;
    // Erase to the end of the line: a waiting line and a progress line differ in length.
    process.stderr.write(process.stderr.isTTY ? `\r${line}\x1b[K` : line + '\n');
    if (process.stderr.isTTY && p.total && p.received >= p.total) process.stderr.write('\n');
  };
}
