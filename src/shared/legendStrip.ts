/**
 * The legend strip under an exported overlay PNG: what the overlay is (kind and parameters), its
 * colour scale or class swatches, and the top-1 label and score. One layout and one pixel painter
 * for the panel's export and `beit-lens explain --out`, so both PNGs carry the same strip. Pure (no
 * DOM, no fonts, no native modules): text is drawn with the 5x7 bitmap font below, which keeps the
 * pixels identical on every machine and testable.
 */
import { VIRIDIS_LUT, lutOffset, type Rgb } from './palette';

export interface LegendStripSpec {
  /** The overlay kind and its parameters, e.g. "Attention rollout - mean head fusion, discard 0.90". */
  title: string;
  scale: { kind: 'heat'; low: string; high: string } | { kind: 'classes'; entries: { label: string; color: Rgb }[] } | { kind: 'none' };
  top1?: { label: string; score: number };
}

export type LegendItem =
  | { kind: 'text'; x: number; y: number; text: string }
  | { kind: 'bar'; x: number; y: number; width: number; height: number }
  | { kind: 'swatch'; x: number; y: number; size: number; color: Rgb };

export interface LegendLayout {
  width: number;
  height: number;
  /** Pixels per font pixel. */
  scale: number;
  items: LegendItem[];
}

export const STRIP_BACKGROUND: Rgb = [255, 255, 255];
export const STRIP_TEXT: Rgb = [24, 24, 24];
export const STRIP_RULE: Rgb = [200, 200, 200];

const GLYPH_W = 5;
const GLYPH_H = 7;
/** Advance per character and per line, in font pixels (one column and two rows of spacing). */
const ADVANCE = GLYPH_W + 1;
const LINE = GLYPH_H + 3;
/** At most this many rows of class swatches; the rest are summarised as "+N more". */
const MAX_SWATCH_ROWS = 3;

/**
 * Printable ASCII (0x20-0x7e), five columns per glyph, bit 0 the top row. Anything else is drawn
 * as "?": labels come from a model's config and may hold any character.
 */
const FONT = [
  '0000000000', '00005f0000', '0007000700', '147f147f14', '242a7f2a12', '2313086462', '3649552250', '0005030000',
  '001c224100', '0041221c00', '14083e0814', '08083e0808', '0050300000', '0808080808', '0060600000', '2010080402',
  '3e5149453e', '00427f4000', '4261514946', '2141454b31', '1814127f10', '2745454539', '3c4a494930', '0171090503',
  '3649494936', '064949291e', '0036360000', '0056360000', '0814224100', '1414141414', '0041221408', '0201510906',
  '324979413e', '7e1111117e', '7f49494936', '3e41414122', '7f4141221c', '7f49494941', '7f09090901', '3e4149497a',
  '7f0808087f', '00417f4100', '2040413f01', '7f08142241', '7f40404040', '7f020c027f', '7f0408107f', '3e4141413e',
  '7f09090906', '3e4151215e', '7f09192946', '4649494931', '01017f0101', '3f4040403f', '1f2040201f', '3f4038403f',
  '6314081463', '0708700807', '6151494543', '007f414100', '0204081020', '0041417f00', '0402010204', '4040404040',
  '0001020400', '2054545478', '7f48444438', '3844444420', '384444487f', '3854545418', '087e090102', '0c5252523e',
  '7f08040478', '00447d4000', '2040443d00', '7f10284400', '00417f4000', '7c04180478', '7c08040478', '3844444438',
  '7c14141408', '081414187c', '7c08040408', '4854545420', '043f444020', '3c4040207c', '1c2040201c', '3c4030403c',
  '4428102844', '0c5050503c', '4464544c44', '0008364100', '00007f0000', '0041360800', '1008081008',
].map((hex) => Array.from({ length: GLYPH_W }, (_, i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16)));

function glyph(char: string): number[] {
  const code = char.charCodeAt(0);
  return FONT[code >= 0x20 && code <= 0x7e ? code - 0x20 : 0x3f - 0x20];
}

/** Accents dropped ("crème brûlée" -> "creme brulee"); what is still not printable ASCII becomes "?". */
export function asciiText(text: string): string {
  return text.normalize('NFD').replace(/[\u0300-\u036f]/g, '').replace(/[^\x20-\x7e]/g, '?');
}

/** Width in pixels of `text` at `scale`. */
export function textWidth(text: string, scale: number): number {
  return text.length === 0 ? 0 : (text.length * ADVANCE - 1) * scale;
}

/** Cuts `text` to fit `maxWidth`, ending in "..." when cut. */
export function fitText(text: string, maxWidth: number, scale: number): string {
  const max = Math.floor((maxWidth / scale + 1) / ADVANCE);
  if (text.length <= max) return text;
  return max <= 3 ? text.slice(0, Math.max(0, max)) : `${text.slice(0, max - 3)}...`;
}

/** Greedy word wrap into at most `maxLines` lines; the last one is cut with "..." if the text goes on. */
export function wrapText(text: string, maxWidth: number, scale: number, maxLines: number): string[] {
  const lines: string[] = [];
  let line = '';
  const words = text.split(' ');
  for (let i = 0; i < words.length; i++) {
    const candidate = line ? `${line} ${words[i]}` : words[i];
    if (textWidth(candidate, scale) <= maxWidth || !line) {
      line = candidate;
      continue;
    }
    if (lines.length === maxLines - 1) return [...lines, fitText(`${line} ${words.slice(i).join(' ')}`, maxWidth, scale)];
    lines.push(line);
    line = words[i];
  }
  return [...lines, fitText(line, maxWidth, scale)];
}

/** Font pixel size for an image `width` wide: legible on a 224-pixel export, not huge on a photo. */
export function legendScale(width: number): number {
  return Math.max(1, Math.min(4, Math.floor(width / 320)));
}

/** Where everything in the strip goes, for an image `width` pixels wide. */
export function layoutLegendStrip(width: number, input: LegendStripSpec): LegendLayout {
  const spec = asciiSpec(input);
  const scale = legendScale(width);
  const pad = 4 * scale;
  const lineH = LINE * scale;
  const inner = Math.max(1, width - 2 * pad);
  const items: LegendItem[] = [];
  let y = pad;
  for (const line of wrapText(spec.title, inner, scale, 2)) {
    items.push({ kind: 'text', x: pad, y, text: line });
    y += lineH;
  }

  const { scale: key } = spec;
  if (key.kind === 'heat') {
    const lowW = textWidth(key.low, scale);
    const highW = textWidth(key.high, scale);
    const gap = 3 * scale;
    const barW = Math.max(8, Math.min(inner - lowW - highW - 2 * gap, 160 * scale));
    items.push({ kind: 'text', x: pad, y, text: key.low });
    items.push({ kind: 'bar', x: pad + lowW + gap, y, width: barW, height: GLYPH_H * scale });
    items.push({ kind: 'text', x: pad + lowW + gap + barW + gap, y, text: key.high });
    y += lineH;
  } else if (key.kind === 'classes') {
    const size = GLYPH_H * scale;
    let x = pad;
    let rows = 1;
    let shown = 0;
    for (const entry of key.entries) {
      const label = fitText(entry.label, inner - size - 2 * scale, scale);
      const w = size + 2 * scale + textWidth(label, scale);
      if (x > pad && x + w > pad + inner) {
        if (rows === MAX_SWATCH_ROWS) break;
        rows++;
        x = pad;
        y += lineH;
      }
      items.push({ kind: 'swatch', x, y, size, color: entry.color });
      items.push({ kind: 'text', x: x + size + 2 * scale, y, text: label });
      x += w + 6 * scale;
      shown++;
    }
    if (shown < key.entries.length) {
      const more = `+${key.entries.length - shown} more`;
      if (x + textWidth(more, scale) > pad + inner) y += lineH, (x = pad);
      items.push({ kind: 'text', x, y, text: more });
    }
    y += lineH;
  }
  if (spec.top1) {
    const score = `${(spec.top1.score * 100).toFixed(1)}%`;
    const prefix = 'Top-1: ';
    const room = inner - textWidth(`${prefix} ${score}`, scale) - ADVANCE * scale;
    // Too narrow for even a cut label: the line is cut as a whole instead.
    const text = room >= textWidth('ab...', scale) ? `${prefix}${fitText(spec.top1.label, room, scale)} ${score}` : fitText(`${prefix}${spec.top1.label} ${score}`, inner, scale);
    items.push({ kind: 'text', x: pad, y, text });
    y += lineH;
  }
  return { width, height: y + pad - 2 * scale, scale, items };
}

function asciiSpec(spec: LegendStripSpec): LegendStripSpec {
  const scale = spec.scale.kind === 'classes' ? { kind: 'classes' as const, entries: spec.scale.entries.map((e) => ({ label: asciiText(e.label), color: e.color })) } : spec.scale;
  return { title: asciiText(spec.title), scale, top1: spec.top1 && { label: asciiText(spec.top1.label), score: spec.top1.score } };
}

/** The strip as RGBA pixels (opaque), `width` wide; a one-pixel rule along its top edge. */
export function paintLegendStrip(width: number, spec: LegendStripSpec): { layout: LegendLayout; rgba: Uint8ClampedArray } {
  const layout = layoutLegendStrip(width, spec);
  const { height, scale } = layout;
  const rgba = new Uint8ClampedArray(width * height * 4);
  const set = (x: number, y: number, c: Rgb): void => {
    if (x < 0 || y < 0 || x >= width || y >= height) return;
    const o = (y * width + x) * 4;
    rgba[o] = c[0];
    rgba[o + 1] = c[1];
    rgba[o + 2] = c[2];
    rgba[o + 3] = 255;
  };
  const rect = (x0: number, y0: number, w: number, h: number, c: Rgb): void => {
    for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) set(x, y, c);
  };
  rect(0, 0, width, height, STRIP_BACKGROUND);
  rect(0, 0, width, 1, STRIP_RULE);
  for (const item of layout.items) {
    if (item.kind === 'swatch') rect(item.x, item.y, item.size, item.size, item.color);
    else if (item.kind === 'bar') {
      for (let x = 0; x < item.width; x++) {
        const o = lutOffset(item.width > 1 ? x / (item.width - 1) : 0);
        rect(item.x + x, item.y, 1, item.height, [VIRIDIS_LUT[o], VIRIDIS_LUT[o + 1], VIRIDIS_LUT[o + 2]]);
      }
    } else {
      for (let i = 0; i < item.text.length; i++) {
        const columns = glyph(item.text[i]);
        const gx = item.x + i * ADVANCE * scale;
        for (let col = 0; col < GLYPH_W; col++) {
          for (let row = 0; row < GLYPH_H; row++) if (columns[col] & (1 << row)) rect(gx + col * scale, item.y + row * scale, scale, scale, STRIP_TEXT);
        }
      }
    }
  }
  return { layout, rgba };
}

/** What an export shows, in the terms both the panel and the CLI have at hand. */
export type LegendOverlay =
  | { kind: 'rollout'; headFusion: string; discardRatio: number }
  | { kind: 'patches'; entries: { label: string; color: Rgb }[] }
  | { kind: 'class'; label: string }
  | { kind: 'occlusion'; label: string; window: number }
  | { kind: 'patchAttention'; patch: number; layer: number; head: number | 'mean' }
  | { kind: 'none' };

/** The strip's contents for an overlay; `layer` is 0-based, shown 1-based as in the panel's controls. */
export function legendSpec(overlay: LegendOverlay, top1: { label: string; score: number } | undefined, opacity: number): LegendStripSpec {
  const alpha = `opacity ${Math.round(opacity * 100)}%`;
  const heat = { kind: 'heat', low: 'low', high: 'high' } as const;
  switch (overlay.kind) {
    case 'rollout':
      return { title: `Attention rollout - ${overlay.headFusion} head fusion, discard ${overlay.discardRatio.toFixed(2)}, ${alpha}`, scale: heat, top1 };
    case 'patches':
      return { title: `Patch predictions - ${overlay.entries.length} classes, ${alpha}`, scale: { kind: 'classes', entries: overlay.entries }, top1 };
    case 'class':
      return { title: `Class heatmap - ${overlay.label} (logits, min-max scaled), ${alpha}`, scale: heat, top1 };
    case 'occlusion':
      return { title: `Occlusion - ${overlay.label}, ${overlay.window}x${overlay.window} patches (probability drop, max scaled), ${alpha}`, scale: heat, top1 };
    case 'patchAttention': {
      const head = overlay.head === 'mean' ? 'mean of heads' : `head ${overlay.head + 1}`;
      return { title: `Attention from patch ${overlay.patch} - layer ${overlay.layer + 1}, ${head} (min-max scaled), ${alpha}`, scale: heat, top1 };
    }
    case 'none':
      return { title: 'Image only (no overlay)', scale: { kind: 'none' }, top1 };
  }
}
