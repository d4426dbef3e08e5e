/**
 * File names and labels come from the files and models users are handed, so anything that prints them must keep
 * them inert: a spreadsheet must not run them as formulas, a terminal must not act on their escape sequences.
 * JSON needs neither (JSON.stringify escapes control characters and lone surrogates).
 */
import type { CastReturnObject } from 'csv-stringify';
import { displayPath } from './scan/fileNames';

/** The cell openings OWASP lists for CSV injection: Excel, LibreOffice and Google Sheets evaluate them as formulas. */
const FORMULA_START = /^[=+\-@\t\r]/;

/**
 * OWASP's neutralisation: a leading single quote (spreadsheets show it as a text marker, not a character) and the
 * cell quoted. Only text cells go through it: the numbers we write (indices, scores) are never negative, and a
 * number stays a number.
 */
export function csvTextCell(value: string): string | CastReturnObject {
  return FORMULA_START.test(value) ? { value: `'${value}`, quoted: true } : value;
}

/** csv-stringify's `cast` for every CSV we write. */
export const SAFE_CSV_CAST = { string: csvTextCell };

// C0 controls (ESC starts CSI/OSC sequences: clear-screen, title-set, hyperlinks; CR and LF rewrite or split a
// line), DEL, and C1 controls (0x9B is a one-character CSI on some terminals).
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

/**
 * Text for a terminal or a log: control characters shown as `\xNN`, bytes of names that are not UTF-8 as U+FFFD.
 * Backslashes are left alone so Windows paths stay readable; the exact name is in the JSON output.
 */
export function terminalText(text: string): string {
  return displayPath(text).replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** {@link terminalText} for text made of several lines: each line escaped, the line breaks kept. */
export function terminalLines(text: string): string {
  return text.split('\n').map(terminalText).join('\n');
}

/**
 * JSON.stringify escapes C0 controls but writes DEL and C1 controls raw (0x9B is CSI to some terminals); inside
 * JSON they can only be in strings, so `\u00XX` escapes keep the value exact and the line inert.
 */
export function safeJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(/[\u007f-\u009f]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
}
