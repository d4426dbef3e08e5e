/**
 * Finds the image path under the cursor in one line of any document. Pure (no vscode, no file
 * system) so it can be tested against a table of real snippets; resolution to a file happens in
 * imagePathResolution.ts.
 *
 * Each syntax is tried in order of how specific it is (a Markdown link before a bare word), and
 * the first one that yields an image path wins. A URL with any scheme other than `file:` under the
 * cursor ends the search: a hover must never fetch from the network, and part of a URL is not a
 * local path.
 */

// No BMP: the bundled libvips cannot decode it, so a hover would only ever show an error (image.ts refuses it by name).
export const IMAGE_EXTENSIONS = ['png', 'jpg', 'jpeg', 'gif', 'webp', 'tif', 'tiff'] as const;
const IMAGE_EXTENSION_RE = new RegExp(`\\.(?:${IMAGE_EXTENSIONS.join('|')})$`, 'i');

/** Lines longer than this are only searched near the cursor (minified files, data URIs). */
const MAX_WINDOW = 4096;
const MAX_PATH_LENGTH = 4096;

export type PathSyntax = 'markdown' | 'html' | 'css' | 'string' | 'cell' | 'bare';

export interface ImagePathMatch {
  /** The path as meant (escapes undone, Markdown percent-encoding decoded); may be a `file:` URI. */
  path: string;
  /** Where the written path is on the line (end exclusive), for the hover's highlight range. */
  start: number;
  end: number;
  syntax: PathSyntax;
}

export function hasImageExtension(file: string): boolean {
  return IMAGE_EXTENSION_RE.test(file);
}

type Family = 'markdown' | 'html' | 'css' | 'csv' | 'tsv' | 'code' | 'plain';

const HTML_LANGUAGES = new Set(['html', 'xml', 'xhtml', 'vue', 'svelte', 'php', 'astro', 'handlebars', 'razor', 'django-html', 'jinja-html']);
const CSS_LANGUAGES = new Set(['css', 'scss', 'less', 'sass', 'stylus']);
const MARKDOWN_LANGUAGES = new Set(['markdown', 'mdx', 'quarto', 'rmd']);

function familyOf(languageId: string): Family {
  const id = languageId.toLowerCase();
  if (MARKDOWN_LANGUAGES.has(id)) return 'markdown';
  if (HTML_LANGUAGES.has(id)) return 'html';
  if (CSS_LANGUAGES.has(id)) return 'css';
  if (id === 'csv' || id.startsWith('csv')) return 'csv';
  if (id === 'tsv') return 'tsv';
  if (id === 'plaintext' || id === 'log' || id === '') return 'plain';
  return 'code';
}

/** A candidate path on the line: where it is written, and where a cursor counts as on it. */
interface Span {
  raw: string;
  /** The written path (highlight range), end exclusive. */
  start: number;
  end: number;
  /** The whole construct (link, attribute, literal with its quotes), end exclusive. */
  hitStart: number;
  hitEnd: number;
  syntax: PathSyntax;
  /** Percent-decode (Markdown link destinations are URLs). */
  decode?: boolean;
}

type Finder = (line: string, at: number, languageId: string) => Span[];

const FINDERS: Record<Family, Finder[]> = {
  markdown: [markdownLinks, htmlAttributes, bareWord],
  html: [htmlAttributes, cssUrls, quotedStrings, bareWord],
  css: [cssUrls, quotedStrings, bareWord],
  csv: [(l, a) => delimitedCell(l, a, ',')],
  tsv: [(l, a) => delimitedCell(l, a, '\t')],
  code: [quotedStrings, bareWord],
  plain: [quotedStrings, bareWord],
};

export function findImagePathAt(lineText: string, character: number, languageId: string): ImagePathMatch | undefined {
  if (character < 0 || character > lineText.length) return undefined;
  // Search a window around the cursor so a 5 MB minified line costs no more than a short one.
  const offset = Math.max(0, character - MAX_WINDOW);
  const line = lineText.slice(offset, character + MAX_WINDOW);
  const at = character - offset;
  const family = familyOf(languageId);
  for (const finder of FINDERS[family]) {
    for (const span of finder(line, at, languageId)) {
      if (!(span.hitStart <= at && at < span.hitEnd)) continue;
      const verdict = acceptPath(span.raw, span.decode ?? false);
      if (verdict === 'url') return undefined;
      if (verdict) return { path: verdict, start: span.start + offset, end: span.end + offset, syntax: span.syntax };
    }
  }
  return undefined;
}

/** The path meant by `raw`, 'url' for a non-file URL (ends the search), or undefined. */
function acceptPath(raw: string, decode: boolean): string | 'url' | undefined {
  let text = raw.trim();
  if (!text || text.length > MAX_PATH_LENGTH) return undefined;
  if (/^\/\//.test(text)) return 'url';
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text);
  const isDrive = /^[a-z]:[\\/]/i.test(text);
  if (scheme && !isDrive) {
    if (scheme[1].toLowerCase() !== 'file') return 'url';
    let url: URL;
    try {
      url = new URL(text);
    } catch {
      return undefined;
    }
    url.search = '';
    url.hash = '';
    return hasImageExtension(decodeURIComponentSafe(url.pathname)) ? url.href : undefined;
  }
  if (decode) text = decodeURIComponentSafe(text);
  if (hasImageExtension(text)) return text;
  // A bundler query or fragment (`./cat.png?url`, `sprite.png#icon`) is not part of the file name.
  const bare = text.replace(/[?#].*$/, '');
  return bare !== text && hasImageExtension(bare) ? bare : undefined;
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

// ---- Markdown ------------------------------------------------------------------------------------

const MD_INLINE = /!?\[(?:[^\]\\]|\\.)*\]\(\s*(<[^>\n]*>|[^\s()]*(?:\([^\s()]*\)[^\s()]*)*)(?:\s+(?:"[^"]*"|'[^']*'|\([^)]*\)))?\s*\)/dg;
const MD_REFERENCE = /^ {0,3}\[[^\]]+\]:\s*(<[^>\n]*>|\S+)/d;

/** Links and images; hovering anywhere on `![cat](cat.png)`, the alt text included, counts. */
function markdownLinks(line: string): Span[] {
  const spans: Span[] = [];
  for (const m of line.matchAll(MD_INLINE)) spans.push(destination(m[1], m.indices![1][0], m.index, m.index + m[0].length));
  const ref = MD_REFERENCE.exec(line);
  if (ref) spans.push(destination(ref[1], ref.indices![1][0], 0, ref[0].length));
  return spans;
}

function destination(text: string, start: number, hitStart: number, hitEnd: number): Span {
  const angled = text.startsWith('<') && text.endsWith('>');
  const raw = angled ? text.slice(1, -1) : text;
  const rawStart = angled ? start + 1 : start;
  return { raw, start: rawStart, end: rawStart + raw.length, hitStart, hitEnd, syntax: 'markdown', decode: true };
}

// ---- HTML and CSS --------------------------------------------------------------------------------

const HTML_ATTRIBUTE = /\b(?:src|href|poster|data-src|xlink:href)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+))/dgi;
const CSS_URL = /url\(\s*(?:"([^"]*)"|'([^']*)'|([^)\s'"]*))\s*\)/dgi;

/** Hovering anywhere on `src="..."` or `url(...)` counts; the highlight is the value. */
function valueSpans(line: string, re: RegExp, syntax: PathSyntax): Span[] {
  const spans: Span[] = [];
  for (const m of line.matchAll(re)) {
    const group = [1, 2, 3].find((g) => m[g] !== undefined);
    if (group === undefined) continue;
    const [start, end] = m.indices![group];
    spans.push({ raw: m[group], start, end, hitStart: m.index, hitEnd: m.index + m[0].length, syntax });
  }
  return spans;
}

function htmlAttributes(line: string): Span[] {
  return valueSpans(line, HTML_ATTRIBUTE, 'html');
}

function cssUrls(line: string): Span[] {
  return valueSpans(line, CSS_URL, 'css');
}

// ---- string literals -------------------------------------------------------------------------------

/** Languages whose single-quoted strings have no escapes ('' is a quote in YAML; TOML literal strings). */
const RAW_SINGLE_QUOTES = new Set(['yaml', 'toml', 'shellscript', 'sql', 'powershell', 'bat']);

/**
 * Every string literal on the line, scanned left to right so an apostrophe inside a string does
 * not start another. Understands backslash escapes, Python raw strings (r'...'), and the quoting
 * of YAML and TOML.
 */
function quotedStrings(line: string, _at: number, languageId: string): Span[] {
  const lang = languageId.toLowerCase();
  const spans: Span[] = [];
  let i = 0;
  while (i < line.length) {
    const quote = line[i];
    if (quote !== '"' && quote !== "'" && quote !== '`') {
      i++;
      continue;
    }
    const prefix = /([rRbBuUfF]{0,2})$/.exec(line.slice(Math.max(0, i - 2), i))?.[1] ?? '';
    const pythonRaw = lang === 'python' && /r/i.test(prefix);
    const noEscapes = pythonRaw || (quote === "'" && RAW_SINGLE_QUOTES.has(lang));
    let j = i + 1;
    let value = '';
    let closed = false;
    while (j < line.length) {
      const c = line[j];
      if (c === '\\' && !noEscapes && j + 1 < line.length) {
        value += unescapeChar(line[j + 1]);
        j += 2;
        continue;
      }
      if (c === quote) {
        // YAML's '' inside a single-quoted string is one quote.
        if (quote === "'" && lang === 'yaml' && line[j + 1] === "'") {
          value += "'";
          j += 2;
          continue;
        }
        closed = true;
        break;
      }
      value += c;
      j++;
    }
    if (!closed) break;
    spans.push({ raw: value, start: i + 1, end: j, hitStart: i, hitEnd: j + 1, syntax: 'string' });
    i = j + 1;
  }
  return spans;
}

function unescapeChar(c: string): string {
  switch (c) {
    case 'n':
      return '\n';
    case 't':
      return '\t';
    default:
      // \\ \" \' \/ and anything else: the character itself (Windows paths in JSON are C:\\x).
      return c;
  }
}

// ---- CSV and TSV -----------------------------------------------------------------------------------

/** The cell under the cursor, with RFC 4180 quoting ("" inside a quoted cell is one quote). */
function delimitedCell(line: string, at: number, delimiter: string): Span[] {
  let start = 0;
  while (start <= line.length) {
    let i = start;
    let value = '';
    let valueStart = start;
    let valueEnd: number;
    while (line[i] === ' ') i++;
    if (line[i] === '"') {
      valueStart = i + 1;
      i++;
      while (i < line.length) {
        if (line[i] === '"' && line[i + 1] === '"') {
          value += '"';
          i += 2;
        } else if (line[i] === '"') {
          break;
        } else {
          value += line[i++];
        }
      }
      valueEnd = i;
      const next = line.indexOf(delimiter, i);
      i = next < 0 ? line.length : next;
    } else {
      const next = line.indexOf(delimiter, start);
      i = next < 0 ? line.length : next;
      value = line.slice(start, i);
      valueStart = start + (value.length - value.trimStart().length);
      value = value.trim();
      valueEnd = valueStart + value.length;
    }
    if (at >= start && at <= i) return [{ raw: value, start: valueStart, end: valueEnd, hitStart: start, hitEnd: i + 1, syntax: 'cell' }];
    start = i + 1;
  }
  return [];
}

// ---- bare paths ------------------------------------------------------------------------------------

/** Characters that cannot be part of an unquoted path in prose or code. */
const NOT_PATH_CHAR = /[\s"'`<>()[\]{},;|*?!=]/;

function bareWord(line: string, at: number): Span[] {
  let start = at;
  while (start > 0 && !NOT_PATH_CHAR.test(line[start - 1])) start--;
  let end = at;
  while (end < line.length && !NOT_PATH_CHAR.test(line[end])) end++;
  // Sentence punctuation after a path ("see cat.png.") is not part of it.
  while (end > start && /[.,:;]/.test(line[end - 1])) end--;
  if (end <= start || at > end) return [];
  // The cursor just after a path (keyboard hover at the end of a word) still counts.
  return [{ raw: line.slice(start, end), start, end, hitStart: start, hitEnd: end + 1, syntax: 'bare' }];
}
