/** How scan progress reads in the progress notification: counts, images/s and ETA. Pure, for tests. */
import type { ScanProgress } from '../../core/scan/scanner';
import type { ScanStateDto, ScanStatus } from '../../shared/protocol';
import { clockDuration } from '../../shared/clockDuration';


export function scanProgressText(p: ScanProgress): string {
  const count = p.total !== undefined ? `${p.done} of ${p.total}` : `${p.done}`;
  const parts = [`${count} images`, `${p.imagesPerSecond.toFixed(1)} images/s`];
  if (p.etaSeconds !== undefined && !p.finished) parts.push(`ETA ${clockDuration(p.etaSeconds)}`);
  if (p.cached > 0) parts.push(`${p.cached} from cache`);
  if (p.errors > 0) parts.push(`${p.errors} errors`);
  return parts.join(' · ');
}

export function scanState(status: ScanStatus, p: ScanProgress | undefined, message?: string): ScanStateDto {
  return {
    status,
    done: p?.done ?? 0,
    ...(p?.total !== undefined ? { total: p.total } : {}),
    imagesPerSecond: p?.imagesPerSecond ?? 0,
    ...(p?.etaSeconds !== undefined && status === 'running' ? { etaSeconds: p.etaSeconds } : {}),
    classified: p?.classified ?? 0,
    cached: p?.cached ?? 0,
    errors: p?.errors ?? 0,
    ...(message ? { message } : {}),
  };
}
