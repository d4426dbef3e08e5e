/**
 * The Model view's label search, DOM-free so it is the same code the browser test drives. A label's index is its
 * row in the classifier (what predictions report as #N); its id2label key differs once the config skips keys
 * (the official checkpoint skips 9205 and 15027, so label 9205 has key 9206).
 */
export interface LabelRow {
  index: number;
  key: number;
  label: string;
}

/** id2label key of every label, in index order. */
export function labelKeys(count: number, missingKeys: readonly number[]): number[] {
  const missing = new Set(missingKeys);
  const keys: number[] = [];
  for (let key = 0; keys.length < count; key++) if (!missing.has(key)) keys.push(key);
  return keys;
}

/**
 * Labels matching `query`: case-insensitive words all found in the label, or a number (optionally `#N`) equal to
 * an index or a key. At most `limit` rows; `total` says how many matched.
 */
export function filterLabels(labels: readonly string[], keys: readonly number[], query: string, limit: number): { rows: LabelRow[]; total: number } {
  const q = query.trim().toLowerCase();
  const number = /^#?(\d+)$/.exec(q);
  const words = q.split(/\s+/).filter(Boolean);
  const rows: LabelRow[] = [];
  let total = 0;
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i];
    const hit = number ? Number(number[1]) === i || Number(number[1]) === keys[i] : words.every((w) => label.toLowerCase().includes(w));
    if (!hit) continue;
    total++;
    if (rows.length < limit) rows.push({ index: i, key: keys[i], label });
  }
  return { rows, total };
}
