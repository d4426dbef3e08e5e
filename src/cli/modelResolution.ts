import { defaultCacheDir } from '../core/hub';
import type { DownloadProgress } from '../core/hub';
import { ensureModel, OFFICIAL_MODEL_ID } from '../core/modelStore';

/** Model resolution and download progress shared by the CLI's commands. */

/** --model, or the converted official model in the cache (downloaded and converted on first use). */
export async function resolveModelDir(model: string | undefined): Promise<string> {
  if (model) return model;
  return ensureModel({ cacheDir: defaultCacheDir(), modelId: OFFICIAL_MODEL_ID, onLog: (m) => process.stderr.write(m + '\n'), onProgress: downloadProgressPrinter() });
}

/** One updating line on a terminal, a line every half second otherwise. */
export function downloadProgressPrinter(): (p: DownloadProgress) => void {
  let last = 0;
  return (p) => {
    const now = Date.now();
    if (now - last < 500 && p.received !== p.total) return;
    last = now;
    const pct = p.total ? ` ${((100 * p.received) / p.total).toFixed(1)}%` : '';
    const line = `downloading ${p.file}: ${(p.received / 1e6).toFixed(1)} MB${p.total ? ` of ${(p.total / 1e6).toFixed(1)} MB` : ''}${pct}`;
    process.stderr.write(process.stderr.isTTY ? `\r${line}` : line + '\n');
    if (process.stderr.isTTY && p.total && p.received >= p.total) process.stderr.write('\n');
  };
}
