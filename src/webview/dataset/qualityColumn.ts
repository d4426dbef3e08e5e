import { QUALITY_FLAGS, type QualityFlag } from '../../core/quality/flags';
import type { DatasetRowDto } from '../../shared/protocol';
import { el } from '../dom';
import { count } from './format';

/**
 * The Dataset view's image-quality column (one chip per flag) and its filter, kept in one module so the
 * table only places them. Flags are cleanvision's issue types; the chips use plainer words.
 */

const CHIP_TEXT: Record<QualityFlag, string> = {
  dark: 'dark',
  light: 'overexposed',
  odd_aspect_ratio: 'odd aspect',
  low_information: 'low info',
  blurry: 'blurry',
  grayscale: 'grayscale',
  odd_size: 'odd size',
};

const CHIP_TITLE: Record<QualityFlag, string> = {
  dark: 'Dark: the 99th percentile of pixel brightness is under 0.32',
  light: 'Overexposed: the 5th percentile of pixel brightness is over 0.95',
  odd_aspect_ratio: 'Odd aspect ratio: the shorter side is under 0.35 of the longer',
  low_information: 'Low information: histogram entropy under 3 bits',
  blurry: 'Blurry: few edges in the 64 px grey copy (cleanvision blurriness score under 0.29)',
  grayscale: 'Grayscale: the file has a single grey band',
  odd_size: 'Odd size: far outside the scan’s usual image size (3 IQRs past the quartiles)',
};

/** The filter's values: '' no filter, '*' any flag, else one flag name. */
const ANY = '*';

export function qualityHeader(): HTMLElement {
  return el('span', { class: 'th c-quality', role: 'columnheader', title: 'Image-quality flags (cleanvision’s issue types and thresholds)' }, ['Quality']);
}

export function qualityCell(r: DatasetRowDto): HTMLElement {
  const flags = r.flags ?? [];
  return el(
    'span',
    { class: 'cell c-quality', role: 'gridcell', title: flags.map((f) => CHIP_TITLE[f]).join('\n') },
    flags.map((f) => el('span', { class: `chip q-${f}`, 'data-flag': f }, [CHIP_TEXT[f]])),
  );
}

export function qualityFilter(): HTMLSelectElement {
  return el('select', { id: 'filter-quality', 'aria-label': 'Image quality' });
}

/** Options with the scan's counts; the current choice stays shown even when no row raises it (yet). */
export function renderQualityFilter(select: HTMLSelectElement, counts: ReadonlyArray<{ flag: QualityFlag; count: number }> | undefined, current: readonly QualityFlag[] | undefined): void {
  const byFlag = new Map((counts ?? []).map((c) => [c.flag, c.count]));
  const flagged = QUALITY_FLAGS.filter((f) => (byFlag.get(f) ?? 0) > 0 || current?.length === 1 && current[0] === f);
  select.replaceChildren(
    el('option', { value: '' }, ['Any quality']),
    el('option', { value: ANY }, ['Any quality flag']),
    ...flagged.map((f) => el('option', { value: f, title: CHIP_TITLE[f] }, [`${CHIP_TEXT[f]} (${count(byFlag.get(f) ?? 0)})`])),
  );
  select.value = !current?.length ? '' : current.length === 1 ? current[0] : ANY;
}

export function flagsFromFilterValue(value: string): QualityFlag[] | undefined {
  if (value === ANY) return [...QUALITY_FLAGS];
  return QUALITY_FLAGS.includes(value as QualityFlag) ? [value as QualityFlag] : undefined;
}
