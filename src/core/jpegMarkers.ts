/**
 * A walk over a JPEG's marker structure, for the one libjpeg warning that is harmless by construction:
 * JWRN_EXTRANEOUS_DATA ("N extraneous bytes before marker 0xXX"). Whenever libjpeg expects a marker (after SOI and
 * after every marker segment) its next_marker() skips forward to the next FF-then-marker-code and only counts what
 * it skipped: non-FF bytes, and FF 00 pairs. FF fill bytes before a marker are legal and not counted. The skipped
 * bytes are never interpreted, so a copy without them decodes to the same pixels, and whether that copy decodes
 * without any warning is a question libjpeg answers for this image alone (image.ts).
 *
 * Bytes between the end of a scan's entropy-coded data and the next marker are out of reach: libjpeg's Huffman
 * decoder reads a few bytes ahead, so which of them it "skips" depends on where decoding stopped, which only a
 * Huffman decode can tell. Such files stay refused.
 */

const EOI = 0xd9;
const SOS = 0xda;
const TEM = 0x01;

function isRst(code: number): boolean {
  return code >= 0xd0 && code <= 0xd7;
}

/** Segments without a length field. */
function isStandalone(code: number): boolean {
  return isRst(code) || code === TEM || code === 0xd8;
}

/**
 * Where `from` starts a marker (after any FF fill bytes), the index of its code byte; otherwise the index of the
 * code byte of the next marker libjpeg's next_marker() would find, or -1 when there is none before the end.
 */
function nextMarkerCode(buf: Uint8Array, from: number): number {
  let i = from;
  while (i < buf.length) {
    if (buf[i] !== 0xff) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < buf.length && buf[j] === 0xff) j++;
    if (j >= buf.length) return -1;
    if (buf[j] !== 0) return j;
    i = j + 1; // FF 00 where a marker is expected: discarded, counted as extraneous
  }
  return -1;
}

/** After an SOS header: the index of the FF that ends the entropy-coded data (RSTn and FF 00 belong to it). */
function endOfEntropyData(buf: Uint8Array, from: number): number {
  for (let i = from; i < buf.length - 1; i++) {
    if (buf[i] !== 0xff) continue;
    let j = i + 1;
    while (j < buf.length && buf[j] === 0xff) j++;
    if (j >= buf.length) return -1;
    if (buf[j] !== 0 && !isRst(buf[j])) return i;
    i = j;
  }
  return -1;
}

/**
 * The JPEG without the bytes libjpeg would report as extraneous before a marker, or undefined when there are
 * none or the structure is broken (no EOI, a segment running past the end): then the strict decode's verdict
 * stands. One pass over the bytes, each visited a bounded number of times.
 */
export function withoutExtraneousBytes(jpeg: Uint8Array): Buffer | undefined {
  if (jpeg.length < 4 || jpeg[0] !== 0xff || jpeg[1] !== 0xd8) return undefined;
  const kept: Uint8Array[] = [];
  let keptFrom = 0;
  let removed = 0;
  let pos = 2;
  for (;;) {
    const code = nextMarkerCode(jpeg, pos);
    if (code < 0) return undefined;
    // The marker's first FF: the start of the run of FF bytes ending at the code.
    let ff = code - 1;
    while (ff > pos && jpeg[ff - 1] === 0xff) ff--;
    if (ff > pos) {
      kept.push(jpeg.subarray(keptFrom, pos));
      removed += ff - pos;
      keptFrom = ff;
    }
    const marker = jpeg[code];
    if (marker === EOI) {
      if (removed === 0) return undefined;
      kept.push(jpeg.subarray(keptFrom, code + 1));
      return Buffer.concat(kept);
    }
    if (isStandalone(marker)) {
      pos = code + 1;
      continue;
    }
    if (code + 2 >= jpeg.length) return undefined;
    const length = (jpeg[code + 1] << 8) | jpeg[code + 2];
    if (length < 2) return undefined;
    const end = code + 1 + length;
    if (end > jpeg.length) return undefined;
    if (marker !== SOS) {
      pos = end;
      continue;
    }
    const scanEnd = endOfEntropyData(jpeg, end);
    if (scanEnd < 0) return undefined;
    pos = scanEnd;
  }
}
