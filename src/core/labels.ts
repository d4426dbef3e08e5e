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

export function labelsFromId2Label(id2label: Record<string, string>): LabelTable {
  const keys = Object.keys(id2label)
    .map((k) => ({ key: Number(k), raw: k }))
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
