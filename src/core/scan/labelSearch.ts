/**
 * Finding a label by typing part of it: what a user correcting a folder -> label mapping needs among 21,841
 * ImageNet-22k labels. Substring matches come first, ranked so that "otter" puts "otter" and "river otter"
 * before "sea otter's fur"; typos ("ballon") fall back to the label check's fuzzy folder matching.
 */
import { buildLabelIndex, mapFolder, type LabelIndex } from './labelCheck';

export interface LabelMatch {
  index: number;
  label: string;
}

/** Lower-cased labels, computed once per label list (the list of a loaded model does not change). */
const lowered = new WeakMap<readonly string[], string[]>();

function lowerLabels(labels: readonly string[]): string[] {
  let out = lowered.get(labels);
  if (!out) {
    out = labels.map((l) => l.toLowerCase());
    lowered.set(labels, out);
  }
  return out;
}

/** 0 best: a whole synonym, then the label's start, a synonym's start, a word's start, anywhere. */
function matchRank(text: string, needle: string): number {
  const at = text.indexOf(needle);
  if (at < 0) return -1;
  const synonyms = text.split(',').map((s) => s.trim());
  if (synonyms.includes(needle)) return 0;
  if (at === 0) return 1;
  if (synonyms.some((s) => s.startsWith(needle))) return 2;
  if (/[\s\-'(]/.test(text[at - 1])) return 3;
  return 4;
}

/**
 * Up to `limit` labels for `query`: a label number ("281") first, then substring matches best-first, then
 * fuzzy matches. `index` (from {@link buildLabelIndex}) is built on demand when typo matching is needed.
 */
export function searchLabels(labels: readonly string[], query: string, limit = 20, index?: () => LabelIndex): LabelMatch[] {
  const q = query.trim();
  if (!q || limit < 1) return [];
  const out: LabelMatch[] = [];
  const seen = new Set<number>();
  const add = (i: number) => {
    if (seen.has(i) || out.length >= limit) return;
    seen.add(i);
    out.push({ index: i, label: labels[i] });
  };
  if (/^\d+$/.test(q) && Number(q) < labels.length) add(Number(q));

  const needle = q.toLowerCase();
  const texts = lowerLabels(labels);
  const hits: Array<[rank: number, index: number]> = [];
  for (let i = 0; i < texts.length; i++) {
    const rank = matchRank(texts[i], needle);
    if (rank >= 0) hits.push([rank, i]);
  }
  hits.sort((a, b) => a[0] - b[0] || labels[a[1]].length - labels[b[1]].length || a[1] - b[1]);
  for (const [, i] of hits) add(i);

  if (out.length < limit && q.length >= 3) {
    const labelIndex = index ? index() : buildLabelIndex(labels);
    for (const c of mapFolder(q, labelIndex, { candidates: limit, minFuzzyScore: 0 }).candidates) add(c.index);
  }
  return out;
}
