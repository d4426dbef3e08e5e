/**
 * Label check for ImageFolder datasets: which model label each class folder means, and which images the model
 * believes are in the wrong folder. Pure functions over labels and results; nothing here reads files.
 *
 * Folder -> label, in order of trust:
 *  1. exact: the folder name equals one of a label's comma-separated synonyms after normalisation (case,
 *     accents, '_' / '-' / spaces / camelCase, English plurals): "river_otters" -> "river otter".
 *  2. fuzzy: the best synonym by token overlap (all folder words inside a synonym counts most: "balloon" ->
 *     "hot air balloon") or by edit distance for typos ("ballon"), if it scores at least `minFuzzyScore`.
 *  3. none.
 * Every mapping carries its kind, score and runner-up candidates so a user can confirm or correct it, and
 * overrides (folder -> label index, label text, several indices, or null) replace the guess.
 *
 * Image checks: an image is a *disagreement* when none of its folder's accepted labels is in its top-K, ranked
 * by how confident the model is that the folder is wrong; it is *low confidence* when its top-1 score is under
 * `lowScore`.
 */
import type { Prediction } from '../predictions';

export type MatchKind = 'exact' | 'fuzzy' | 'none' | 'override';

export interface LabelCandidate {
  index: number;
  label: string;
  /** The synonym of the label that matched. */
  synonym: string;
  kind: 'exact' | 'fuzzy';
  /** 1 for exact matches; in (0, 1) for fuzzy ones. */
  score: number;
}

export interface FolderMapping {
  folder: string;
  kind: MatchKind;
  /** The label the folder is taken to mean, or null. */
  index: number | null;
  label: string | null;
  synonym?: string;
  score: number;
  /** Labels that count as "agreeing" for images in this folder (an override may accept several). */
  accepted: number[];
  /** The best candidates, the chosen one first: what a user picks from to correct the mapping. */
  candidates: LabelCandidate[];
}

/** Folder name -> label index, label text (any of its synonyms or the whole label), several indices, or null. */
export type LabelOverrides = Readonly<Record<string, number | string | readonly number[] | null>>;

export interface MapOptions {
  minFuzzyScore?: number;
  /** Candidates kept per folder (default 5). */
  candidates?: number;
  overrides?: LabelOverrides;
}

const IRREGULAR: Readonly<Record<string, string>> = {
  mice: 'mouse',
  geese: 'goose',
  feet: 'foot',
  teeth: 'tooth',
  children: 'child',
  oxen: 'ox',
  people: 'person',
  lice: 'louse',
  men: 'man',
  women: 'woman',
};

/**
 * A canonical stem shared by the singular and plural of most English nouns (not a real lemma: "horse" and
 * "horses" both become "hors"). Good enough to match folder names to labels, which is all it is for.
 */
export function canonicalToken(word: string): string {
  let w = IRREGULAR[word] ?? word;
  if (w.length > 3 && !/\d/.test(w)) {
    if (w.endsWith('men') && w.length > 4) w = `${w.slice(0, -3)}man`;
    else if (w.endsWith('ies')) w = `${w.slice(0, -3)}y`;
    else if (w.endsWith('ves') && w.length > 4) w = `${w.slice(0, -3)}f`;
    else if (w.endsWith('es')) w = w.slice(0, -2);
    else if (w.endsWith('s') && !/(ss|us|is)$/.test(w)) w = w.slice(0, -1);
    if (w.endsWith('ie')) w = `${w.slice(0, -2)}y`;
    else if (w.endsWith('fe')) w = w.slice(0, -1);
    else if (w.endsWith('e') && w.length > 3) w = w.slice(0, -1);
  }
  return w;
}

/** Words of a name, lower-case, accents and punctuation gone, camelCase split, each canonicalised. */
export function nameTokens(name: string): string[] {
  return name
    .replace(/(\p{Ll})(\p{Lu})/gu, '$1 $2')
    .normalize('NFKD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/['’]/g, '')
    .split(/[^\p{L}\p{N}]+/u)
    .filter(Boolean)
    .map(canonicalToken);
}

/** The synonyms of an ImageNet-style label ("tabby, tabby cat" -> ["tabby", "tabby cat"]). */
export function labelSynonyms(label: string): string[] {
  return label
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

interface Synonym {
  index: number;
  text: string;
  tokens: string[];
  key: string;
  primary: boolean;
}

/**
 * Strings indexed by their character bigrams, to find those within a given edit similarity of a query without
 * computing the edit distance to every one of 21,841 labels' synonyms. Each edit destroys at most two bigrams,
 * so a string within distance k of the query shares at least (distinct bigrams of the query) - 2k of them.
 */
export class BigramIndex {
  private readonly postings = new Map<string, number[]>();
  private readonly lengths: number[] = [];

  constructor(readonly strings: readonly string[]) {
    strings.forEach((text, id) => {
      this.lengths.push(text.length);
      for (const gram of bigrams(text)) push(this.postings, gram, id);
    });
  }

  /** Ids of strings that may have `similarity(query, s) >= atLeast` (a superset; verify with the real distance). */
  candidates(query: string, atLeast: number): number[] {
    const grams = bigrams(query);
    const maxLength = Math.floor(query.length / atLeast + 1e-9);
    const minLength = Math.ceil(query.length * atLeast - 1e-9);
    // Too short for the bigram bound to exclude anything: check every string of a compatible length.
    if (grams.size - 2 * allowedEdits(atLeast, maxLength) <= 0) {
      return this.lengths.flatMap((n, id) => (n >= minLength && n <= maxLength ? [id] : []));
    }
    const shared = new Map<number, number>();
    for (const gram of grams) for (const id of this.postings.get(gram) ?? []) shared.set(id, (shared.get(id) ?? 0) + 1);
    const out: number[] = [];
    for (const [id, count] of shared) {
      const n = this.lengths[id];
      if (n < minLength || n > maxLength) continue;
      if (count >= grams.size - 2 * allowedEdits(atLeast, Math.max(n, query.length))) out.push(id);
    }
    return out;
  }
}

/** Edits allowed within `length` at this similarity; the epsilon keeps 5 * (1 - 0.8) from flooring to 0. */
function allowedEdits(atLeast: number, length: number): number {
  return Math.floor((1 - atLeast) * length + 1e-9);
}

function bigrams(text: string): Set<string> {
  const grams = new Set<string>();
  for (let i = 0; i + 1 < text.length; i++) grams.add(text.slice(i, i + 2));
  return grams;
}

/** Labels prepared once for matching many folders (21,841 labels: build it once per model). */
export interface LabelIndex {
  labels: readonly string[];
  synonyms: Synonym[];
  exact: Map<string, Synonym[]>;
  byToken: Map<string, Synonym[]>;
  /** Synonym keys, for typo matches of whole names. */
  names: BigramIndex;
  /** Distinct words of all synonyms, for typo matches of single words. */
  words: BigramIndex;
}

export function buildLabelIndex(labels: readonly string[]): LabelIndex {
  const synonyms: Synonym[] = [];
  const exact = new Map<string, Synonym[]>();
  const byToken = new Map<string, Synonym[]>();
  labels.forEach((label, index) => {
    labelSynonyms(label).forEach((text, i) => {
      const tokens = nameTokens(text);
      if (tokens.length === 0) return;
      const synonym: Synonym = { index, text, tokens, key: tokens.join(' '), primary: i === 0 };
      synonyms.push(synonym);
      for (const key of new Set([synonym.key, tokens.join('')])) push(exact, key, synonym);
      for (const token of new Set(tokens)) push(byToken, token, synonym);
    });
  });
  return { labels, synonyms, exact, byToken, names: new BigramIndex(synonyms.map((x) => x.key)), words: new BigramIndex([...byToken.keys()]) };
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/** Levenshtein distance, or `limit + 1` as soon as it must exceed `limit`. */
export function editDistance(a: string, b: string, limit = Infinity): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let previous = new Int32Array(b.length + 1).map((_, j) => j);
  let current = new Int32Array(b.length + 1);
  for (let i = 1; i <= a.length; i++) {
    current[0] = i;
    let rowMin = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a.charCodeAt(i - 1) === b.charCodeAt(j - 1) ? 0 : 1;
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost);
      if (current[j] < rowMin) rowMin = current[j];
    }
    if (rowMin > limit) return limit + 1;
    [previous, current] = [current, previous];
  }
  return previous[b.length];
}

function similarity(a: string, b: string, atLeast: number): number {
  const longest = Math.max(a.length, b.length);
  if (longest === 0) return 1;
  const limit = allowedEdits(atLeast, longest);
  const d = editDistance(a, b, limit);
  return d > limit ? 0 : 1 - d / longest;
}

/** Words this long may differ by a typo and still count as the same word. */
const TYPO_MIN_LENGTH = 5;
const TYPO_SIMILARITY = 0.8;
/** Whole-name edit similarity needed for a typo match ("ballon" vs "balloon"). */
const NAME_SIMILARITY = 0.75;

function tokensMatch(a: string, b: string): boolean {
  return a === b || (a.length >= TYPO_MIN_LENGTH && b.length >= TYPO_MIN_LENGTH && similarity(a, b, TYPO_SIMILARITY) >= TYPO_SIMILARITY);
}

/**
 * Fuzzy score of a folder against one synonym: the share of folder words found in the synonym counts most
 * (a folder "balloon" is a fair name for "hot air balloon"), overall word overlap breaks ties, and a close
 * whole-name spelling (typos) can stand in for both.
 */
function fuzzyScore(folderTokens: readonly string[], folderKey: string, synonym: Synonym): number {
  let matched = 0;
  for (const token of folderTokens) if (synonym.tokens.some((t) => tokensMatch(token, t))) matched++;
  const containment = matched / folderTokens.length;
  const jaccard = matched / (folderTokens.length + synonym.tokens.length - matched);
  const overlap = matched === 0 ? 0 : 0.6 * containment + 0.4 * jaccard;
  const spelling = similarity(folderKey, synonym.key, NAME_SIMILARITY);
  return Math.min(0.99, Math.max(overlap, spelling >= NAME_SIMILARITY ? spelling : 0));
}

function candidateOf(index: LabelIndex, s: Synonym, kind: 'exact' | 'fuzzy', score: number): LabelCandidate {
  return { index: s.index, label: index.labels[s.index], synonym: s.text, kind, score };
}

/** Best-first, one entry per label. */
function bestPerLabel(candidates: LabelCandidate[], limit: number): LabelCandidate[] {
  candidates.sort((a, b) => b.score - a.score || a.index - b.index);
  const seen = new Set<number>();
  const out: LabelCandidate[] = [];
  for (const c of candidates) {
    if (seen.has(c.index)) continue;
    seen.add(c.index);
    out.push(c);
    if (out.length === limit) break;
  }
  return out;
}

/** Guesses the label a class folder means (see the module comment). */
export function mapFolder(folder: string, index: LabelIndex, options: MapOptions = {}): FolderMapping {
  const minFuzzy = options.minFuzzyScore ?? 0.5;
  const limit = Math.max(1, options.candidates ?? 5);
  const tokens = nameTokens(folder);
  const none: FolderMapping = { folder, kind: 'none', index: null, label: null, score: 0, accepted: [], candidates: [] };
  if (tokens.length === 0) return none;
  const key = tokens.join(' ');

  const exact = [...(index.exact.get(key) ?? []), ...(index.exact.get(tokens.join('')) ?? [])];
  if (exact.length > 0) {
    // Several labels can share a synonym (ImageNet has two "crane"s): prefer the one whose main name it is.
    exact.sort((a, b) => Number(b.primary) - Number(a.primary) || a.index - b.index);
    const candidates = bestPerLabel(exact.map((s) => candidateOf(index, s, 'exact', 1)), limit);
    const best = exact[0];
    return { folder, kind: 'exact', index: best.index, label: index.labels[best.index], synonym: best.text, score: 1, accepted: [best.index], candidates };
  }

  const scored: LabelCandidate[] = [];
  const considered = new Set<Synonym>();
  const consider = (s: Synonym) => {
    if (considered.has(s)) return;
    considered.add(s);
    const score = fuzzyScore(tokens, key, s);
    if (score > 0) scored.push(candidateOf(index, s, 'fuzzy', score));
  };
  // Synonyms sharing a word (or a near-identical word) with the folder, then whole-name near spellings.
  for (const token of new Set(tokens)) {
    index.byToken.get(token)?.forEach(consider);
    if (token.length < TYPO_MIN_LENGTH) continue;
    for (const id of index.words.candidates(token, TYPO_SIMILARITY)) {
      const word = index.words.strings[id];
      if (word !== token && tokensMatch(token, word)) index.byToken.get(word)!.forEach(consider);
    }
  }
  for (const id of index.names.candidates(key, NAME_SIMILARITY)) consider(index.synonyms[id]);
  const candidates = bestPerLabel(scored, limit);
  const best = candidates[0];
  if (!best || best.score < minFuzzy) return { ...none, candidates };
  return { folder, kind: 'fuzzy', index: best.index, label: best.label, synonym: best.synonym, score: best.score, accepted: [best.index], candidates };
}

function resolveOverride(folder: string, value: number | string | readonly number[] | null, index: LabelIndex): FolderMapping {
  const base = { folder, kind: 'override' as const, score: 1, candidates: [] };
  if (value === null) return { ...base, index: null, label: null, accepted: [] };
  const indices = typeof value === 'number' ? [value] : typeof value === 'string' ? [labelIndexOf(value, index)] : [...value];
  for (const i of indices) {
    if (!Number.isInteger(i) || i < 0 || i >= index.labels.length) {
      throw new RangeError(`label override for folder "${folder}": ${JSON.stringify(value)} is not a label of this model`);
    }
  }
  return { ...base, index: indices[0] ?? null, label: indices.length ? index.labels[indices[0]] : null, accepted: indices };
}

/**
 * The class a user named on a command line: a decimal index in 0..labels-1, a whole label, or one of its synonyms
 * (the comma-separated names). Anything else is refused, naming it.
 */
export function classIndexFromArgument(value: string, labels: readonly string[], option = '--class'): number {
  const text = value.trim();
  if (/^[+-]?[0-9]+$/.test(text)) {
    const index = Number(text);
    if (index < 0 || index >= labels.length) throw new RangeError(`${option} ${text} is outside 0..${labels.length - 1} (this model has ${labels.length} labels)`);
    return index;
  }
  const index = text === '' ? -1 : labelIndexOf(text, buildLabelIndex(labels));
  if (index < 0) throw new RangeError(`${option} ${JSON.stringify(value)} is neither a class index in 0..${labels.length - 1} nor a label of this model`);
  return index;
}

function labelIndexOf(text: string, index: LabelIndex): number {
  const whole = index.labels.indexOf(text);
  if (whole >= 0) return whole;
  const found = index.exact.get(nameTokens(text).join(' '));
  return found?.length ? found.sort((a, b) => Number(b.primary) - Number(a.primary) || a.index - b.index)[0].index : -1;
}

/** Maps every folder; overrides win over guesses. */
export function mapFolders(folders: Iterable<string>, labels: readonly string[] | LabelIndex, options: MapOptions = {}): FolderMapping[] {
  const index = Array.isArray(labels) ? buildLabelIndex(labels) : (labels as LabelIndex);
  const out: FolderMapping[] = [];
  for (const folder of new Set(folders)) {
    const override = options.overrides && Object.prototype.hasOwnProperty.call(options.overrides, folder) ? options.overrides[folder] : undefined;
    out.push(override !== undefined ? resolveOverride(folder, override, index) : mapFolder(folder, index, options));
  }
  return out;
}

export type CheckReason = 'disagree' | 'low-confidence';

export interface ImageCheck {
  reasons: CheckReason[];
  /** Position (0-based) of the best accepted label in the top-K, or null when none is there. */
  folderRank: number | null;
  /** Score of that label when it is in the top-K. */
  folderScore?: number;
  /**
   * How sure the model is that the folder is wrong: top-1 score minus the folder label's score. When the folder
   * label is not in the top-K its score is at most the K-th score, which is used (a lower bound on the margin).
   * 0 when the model agrees or the folder is unmapped.
   */
  confidence: number;
}

export interface CheckOptions {
  /** Top-1 scores below this flag an image as low confidence (default 0.2; 0 disables). */
  lowScore?: number;
}

/** Checks one image's predictions against the labels its folder accepts (empty: folder not mapped). */
export function checkImage(top: readonly Prediction[], accepted: readonly number[], options: CheckOptions = {}): ImageCheck {
  const lowScore = options.lowScore ?? 0.2;
  const reasons: CheckReason[] = [];
  if (top.length === 0) return { reasons, folderRank: null, confidence: 0 };
  const rank = top.findIndex((p) => accepted.includes(p.index));
  const top1 = top[0].score;
  let confidence = 0;
  if (accepted.length > 0 && rank < 0) {
    reasons.push('disagree');
    confidence = Math.max(0, top1 - top[top.length - 1].score);
    // With K = 1 the bound is 0; the top-1 score alone still says how sure the model is.
    if (top.length === 1) confidence = top1;
  } else if (rank > 0) {
    confidence = Math.max(0, top1 - top[rank].score);
  }
  if (lowScore > 0 && top1 < lowScore) reasons.push('low-confidence');
  return { reasons, folderRank: rank >= 0 ? rank : null, folderScore: rank >= 0 ? top[rank].score : undefined, confidence };
}

export interface Suspect extends ImageCheck {
  image: string;
  folderLabel: string;
  /** The label the folder maps to, if any. */
  expected: { index: number; label: string } | null;
  top1: Prediction;
}

/** Disagreements first, most confident first; then low-confidence images, least confident first. */
export function compareSuspects(a: ImageCheck & { top1: Prediction }, b: ImageCheck & { top1: Prediction }): number {
  const da = a.reasons.includes('disagree') ? 1 : 0;
  const db = b.reasons.includes('disagree') ? 1 : 0;
  if (da !== db) return db - da;
  if (da) return b.confidence - a.confidence || b.top1.score - a.top1.score;
  return a.top1.score - b.top1.score;
}

export interface LabelCheckSummary {
  checked: number;
  disagreements: number;
  lowConfidence: number;
  /** Images whose folder maps to no label: only the low-confidence check applies to them. */
  unmapped: number;
}

/**
 * Streaming label check for a scan: maps each folder when its first image arrives, checks images as they come,
 * and keeps the `maxSuspects` best-ranked suspects (so memory does not grow with the folder).
 */
export class LabelChecker {
  private readonly index: LabelIndex;
  private readonly mappings = new Map<string, FolderMapping>();
  private flagged: Suspect[] = [];
  private readonly counts: LabelCheckSummary = { checked: 0, disagreements: 0, lowConfidence: 0, unmapped: 0 };

  constructor(
    labels: readonly string[] | LabelIndex,
    private readonly options: MapOptions & CheckOptions & { maxSuspects?: number } = {},
  ) {
    this.index = Array.isArray(labels) ? buildLabelIndex(labels) : (labels as LabelIndex);
  }

  mappingFor(folderLabel: string): FolderMapping {
    let mapping = this.mappings.get(folderLabel);
    if (!mapping) {
      mapping = mapFolders([folderLabel], this.index, this.options)[0];
      this.mappings.set(folderLabel, mapping);
    }
    return mapping;
  }

  /** Checks one result (error rows and files outside class folders are skipped); returns it when flagged. */
  add(result: { image: string; folderLabel: string | null; top?: readonly Prediction[] }): Suspect | undefined {
    if (!result.top?.length || result.folderLabel === null) return undefined;
    const mapping = this.mappingFor(result.folderLabel);
    const check = checkImage(result.top, mapping.accepted, this.options);
    this.counts.checked++;
    if (mapping.accepted.length === 0) this.counts.unmapped++;
    if (check.reasons.includes('disagree')) this.counts.disagreements++;
    if (check.reasons.includes('low-confidence')) this.counts.lowConfidence++;
    if (check.reasons.length === 0) return undefined;
    const suspect: Suspect = {
      ...check,
      image: result.image,
      folderLabel: result.folderLabel,
      expected: mapping.index !== null ? { index: mapping.index, label: mapping.label! } : null,
      top1: result.top[0],
    };
    this.flagged.push(suspect);
    const max = this.options.maxSuspects ?? 10_000;
    if (this.flagged.length > 2 * max) this.flagged = this.flagged.sort(compareSuspects).slice(0, max);
    return suspect;
  }

  folderMappings(): FolderMapping[] {
    return [...this.mappings.values()].sort((a, b) => (a.folder < b.folder ? -1 : a.folder > b.folder ? 1 : 0));
  }

  suspects(limit = this.options.maxSuspects ?? 10_000): Suspect[] {
    return [...this.flagged].sort(compareSuspects).slice(0, limit);
  }

  get summary(): LabelCheckSummary {
    return { ...this.counts };
  }
}
