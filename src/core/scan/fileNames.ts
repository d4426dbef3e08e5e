/**
 * File names are bytes on POSIX, but scan results are JSON strings. A name that is not valid UTF-8 is decoded
 * the way Python's `os.fsdecode` does it ("surrogateescape"): each byte b that does not decode becomes the lone
 * surrogate U+DC00+b. The mapping is lossless and reversible (valid UTF-8 never encodes a lone surrogate),
 * `JSON.stringify` writes such characters as `\udcXX` escapes, and Python's `json` + `open()` accept the string
 * as is, so a results file can be read back and the files opened by either language.
 *
 * Node's fs, given a string, would encode a lone surrogate as U+FFFD and miss the file, so every fs call in the
 * scanner goes through {@link fsPath}, which hands fs the original bytes for such names. On Windows names are
 * UTF-16 already and strings are passed through untouched.
 */

const ESCAPED_BYTE = /[\uDC80-\uDCFF]/u;
const ESCAPED_BYTES = /[\uDC80-\uDCFF]/gu;

export const BYTE_NAMES = process.platform !== 'win32';

/** A directory entry name (raw bytes) as a string, with undecodable bytes surrogate-escaped. */
export function decodeFileName(bytes: Buffer): string {
  const text = bytes.toString('utf8');
  // The common case: valid UTF-8. U+FFFD can also be a genuine character, so a name containing one is re-checked.
  if (!text.includes('\uFFFD') || Buffer.from(text, 'utf8').equals(bytes)) return text;
  return decodeEscaping(bytes);
}

function decodeEscaping(bytes: Buffer): string {
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const b0 = bytes[i];
    if (b0 < 0x80) {
      out += String.fromCharCode(b0);
      i++;
      continue;
    }
    const extra = b0 >= 0xc2 && b0 <= 0xdf ? 1 : b0 >= 0xe0 && b0 <= 0xef ? 2 : b0 >= 0xf0 && b0 <= 0xf4 ? 3 : 0;
    let cp = extra === 1 ? b0 & 0x1f : extra === 2 ? b0 & 0x0f : b0 & 0x07;
    let valid = extra > 0 && i + extra < bytes.length;
    for (let k = 1; valid && k <= extra; k++) {
      const b = bytes[i + k];
      if ((b & 0xc0) !== 0x80) valid = false;
      else cp = (cp << 6) | (b & 0x3f);
    }
    const minimum = extra === 1 ? 0x80 : extra === 2 ? 0x800 : 0x10000;
    if (valid && cp >= minimum && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff)) {
      out += String.fromCodePoint(cp);
      i += extra + 1;
    } else {
      out += String.fromCharCode(0xdc00 + b0);
      i++;
    }
  }
  return out;
}

/** Whether a path holds surrogate-escaped bytes, i.e. cannot be handed to fs as a string. */
export function hasEscapedBytes(p: string): boolean {
  return BYTE_NAMES && ESCAPED_BYTE.test(p);
}

/** The exact bytes of a (possibly surrogate-escaped) path. */
export function encodeFileName(p: string): Buffer {
  const parts: Buffer[] = [];
  let last = 0;
  for (const match of p.matchAll(ESCAPED_BYTES)) {
    const at = match.index ?? 0;
    parts.push(Buffer.from(p.slice(last, at), 'utf8'), Buffer.of(p.charCodeAt(at) - 0xdc00));
    last = at + 1;
  }
  parts.push(Buffer.from(p.slice(last), 'utf8'));
  return Buffer.concat(parts);
}

/** What to hand to fs for a scanner path: the string itself, or its bytes when it has escaped ones. */
export function fsPath(p: string): string | Buffer {
  return hasEscapedBytes(p) ? encodeFileName(p) : p;
}

/** For people (progress lines, messages): escaped bytes shown as U+FFFD. */
export function displayPath(p: string): string {
  return BYTE_NAMES ? p.replace(ESCAPED_BYTES, '\uFFFD') : p;
}
