import { BeitLensError } from './errors';

/**
 * The official ImageNet-22k config has 21,841 labels whose keys run 0..21842 with 9205 and 15027
 * missing: two synsets were deleted without renumbering. Logit i belongs to the i-th label in key
 * order, so `id2label[argmax]` (what HF's pipeline and transformers.js do) is wrong from 9205 on.
 */
export interface LabelTable {
  labels: string[];
  /** Keys absent from an otherwise 0-based run, e.g. [9205, 15027] for the official checkpoint. */
  missingKeys: number[];
}

/** Decimal digits without sign, exponent or leading zeros: "7" and "007" would otherwise name one row twice. */
const CANONICAL_KEY = /^(0|[1-9]\d*)$/;

/**
 * Checks every key before anything is built from them: the gap list (and the manifest that stores it) grows with
 * the largest key, so a 1.6 KB config with the key 4294967295 once made V8 abort on a 2.5 GB array. The classifier
 * has one row per entry, so keys are bounded by the row count: below twice the number of labels (the gaps never
 * outnumber the labels; the official config has 2 gaps in 21,841), or below 65,536 whatever the count, so that a
 * fine-tuned subset keeping its original ImageNet-22k ids (keys up to 21,842) still loads.
 */
const KEY_FLOOR = 65_536;

export function labelsFromId2Label(id2label: Record<string, string>, file?: string): LabelTable {
  const rows = Object.keys(id2label).length;
  const limit = Math.max(2 * rows, KEY_FLOOR);
  const keys = Object.keys(id2label)
    .map((raw) => {
      const shown = raw.length > 24 ? `${JSON.stringify(raw.slice(0, 24)).slice(0, -1)}..."` : JSON.stringify(raw);
      if (!CANONICAL_KEY.test(raw)) {
        throw new BeitLensError('CONFIG_INVALID', `id2label key ${shown} is not a non-negative integer written plainly (no sign, exponent, fraction or leading zeros)`, file);
      }
      // Past 16 digits a double no longer holds the key exactly; such a key is far past any limit anyway.
      const key = raw.length > 16 ? Infinity : Number(raw);
      if (key >= limit) {
        throw new BeitLensError('CONFIG_INVALID', `id2label key ${shown} is out of range: ${rows} labels (classifier rows) allow keys 0..${limit - 1} (the larger of twice the rows and ${KEY_FLOOR})`, file);
      }
      return { key, raw };
    })
    .sort((a, b) => a.key - b.key);
  const labels = keys.map(({ raw }) => id2label[raw]);
  const missingKeys: number[] = [];
  let expected = 0;
  for (const { key } of keys) {
    for (; expected < key; expected++) missingKeys.push(expected);
    expected = key + 1;
  }
  return { labels, missingKeys };
}

export function describeLabelGaps(table: LabelTable, file: string): string | undefined {
  if (table.missingKeys.length === 0) return undefined;
  const shown = table.missingKeys.slice(0, 5).join(', ');
  const more = table.missingKeys.length > 5 ? ` and ${table.missingKeys.length - 5} more` : '';
  return (
    `${file}: id2label keys have gaps (missing ${shown}${more}); ` +
    `logit i is given the i-th label in key order, not id2label[i]`
  );
}
