/** Text of the dataset view that tests check in Node: counts, scores, scan progress. */
import type { RowCheckDto, ScanStateDto } from '../../shared/protocol';
import { clockDuration } from '../../shared/clockDuration';

export function count(n: number): string {
  return n.toLocaleString('en-US');
}

export function score(value: number | undefined): string {
  return value === undefined || !Number.isFinite(value) ? '' : `${(value * 100).toFixed(1)}%`;
}


export function scanText(state: ScanStateDto): string {
  const of = state.total !== undefined ? `${count(state.done)} of ${count(state.total)}` : count(state.done);
  const details = [`${count(state.classified)} classified`, `${count(state.cached)} from cache`, `${count(state.errors)} errors`].join(', ');
  switch (state.status) {
    case 'idle':
      return '';
    case 'running': {
      const speed = `${state.imagesPerSecond.toFixed(1)} images/s`;
      return `Scanning: ${of} images · ${speed}${state.etaSeconds !== undefined ? ` · ETA ${clockDuration(state.etaSeconds)}` : ''} (${details})`;
    }
    case 'restarting':
      return state.message ?? 'The inference worker stopped; resuming from the cache…';
    case 'done':
      return `Scanned ${count(state.done)} images (${details}).${state.message ? ` ${state.message}` : ''}`;
    case 'cancelled':
      return `Scan cancelled after ${count(state.done)} images (${details}). Results so far are kept; scanning again resumes from the cache.${state.message ? ` ${state.message}` : ''}`;
    case 'failed':
      return `Scan failed: ${state.message ?? 'unknown error'}`;
  }
}

/** The check column: why a row is suspicious. */
export function checkText(check: RowCheckDto | undefined): string {
  if (!check || check.reasons.length === 0) return '';
  const parts: string[] = [];
  if (check.reasons.includes('disagree')) parts.push(`disagrees ${check.confidence.toFixed(2)}`);
  if (check.reasons.includes('low-confidence')) parts.push('low score');
  return parts.join(', ');
}
