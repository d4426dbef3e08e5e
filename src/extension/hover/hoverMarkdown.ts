/**
 * The hover's Markdown. Everything that comes from a file name, a label or an error message is
 * escaped, so a crafted path or model config cannot inject links or command URIs into a hover
 * that is trusted to run our own commands.
 */
import type { Prediction } from '../../core/predictions';

export const PROVIDER_NAMES: Record<string, string> = { cuda: 'CUDA', dml: 'DirectML', coreml: 'CoreML', webgpu: 'WebGPU', cpu: 'CPU' };

export function providerName(provider: string): string {
  return PROVIDER_NAMES[provider] ?? provider;
}

export function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_{}[\]()#+\-.!|<>~]/g, (c) => `\\${c}`).replace(/\r?\n/g, ' ');
}

/** `title` is ours (it may hold a $(codicon)); arguments are JSON and URI-encoded, so any path is safe. */
export function commandLink(title: string, command: string, args: readonly unknown[] = []): string {
  const query = args.length ? `?${encodeURIComponent(JSON.stringify(args))}` : '';
  return `[${title}](command:${command}${query})`;
}

export function formatScore(score: number): string {
  const pct = score * 100;
  return `${pct >= 10 ? pct.toFixed(1) : pct.toFixed(2)}%`;
}

/** For text inside the hover's HTML (its table), where Markdown is not parsed but tags are. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`).replace(/\r?\n/g, ' ');
}

export function formatSize(bytes: number): string {
  return bytes < 2 ** 20 ? `${Math.ceil(bytes / 1024)} KB` : `${(bytes / 2 ** 20).toFixed(1)} MB`;
}

/** libvips' container names as people write them; the bundled libvips reads AVIF only of the HEIF family. */
const FORMAT_NAMES: Record<string, string> = { jpeg: 'JPEG', png: 'PNG', gif: 'GIF', webp: 'WebP', tiff: 'TIFF', heif: 'AVIF' };

export interface ImageFacts {
  width: number;
  height: number;
  format: string;
}

/** What Image Preview shows in its status bar: dimensions, file size, format. */
export function imageFactsLines(facts: ImageFacts | undefined, size: number): string[] {
  if (!facts) return [formatSize(size)];
  return [`${facts.width} × ${facts.height}`, `${formatSize(size)} · ${FORMAT_NAMES[facts.format] ?? facts.format.toUpperCase()}`];
}

/**
 * VS Code caps a hover at about 250 px before it scrolls, so the thumbnail sits beside the table
 * (not above it) at no more than this many pixels a side, and the Explain link stays in view.
 */
export const THUMBNAIL_DISPLAY_SIDE = 96;

const DATA_URI = /^data:image\/(png|jpeg);base64,[A-Za-z0-9+/=]+$/;

/** The thumbnail scaled to fit {@link THUMBNAIL_DISPLAY_SIDE}, with its shape from the image's size. */
function thumbnailTag(thumbnail: string | undefined, facts: ImageFacts | undefined): string {
  // Data URIs are checked, so the src attribute cannot be broken out of.
  if (!thumbnail || !DATA_URI.test(thumbnail)) return '';
  const w = facts?.width ?? THUMBNAIL_DISPLAY_SIDE;
  const h = facts?.height ?? THUMBNAIL_DISPLAY_SIDE;
  const scale = Math.min(1, THUMBNAIL_DISPLAY_SIDE / Math.max(w, h));
  const width = Math.max(1, Math.round(w * scale));
  const height = Math.max(1, Math.round(h * scale));
  return `<img src="${thumbnail}" width="${width}" height="${height}" alt="thumbnail">`;
}

/** One HTML block (no blank lines, or Markdown would end it): thumbnail and facts on the left, `right` beside them. */
function sideBySide(left: string, right: string): string {
  return `<table><tr><td>${left}</td><td>${right}</td></tr></table>`;
}

export interface PreviewMarkdownInput {
  fileName: string;
  thumbnail?: string;
  /** From the header the thumbnail was made from; absent for results cached without them. */
  image?: ImageFacts;
  /** Bytes, from the stat the hover made before reading. */
  size: number;
  top: readonly Prediction[];
  provider: string;
  explainLink: string;
}

export function previewMarkdown(input: PreviewMarkdownInput): string {
  const header = `**BEiT Lens** · ${escapeMarkdown(input.fileName)} · ${escapeMarkdown(providerName(input.provider))}`;
  const left = [thumbnailTag(input.thumbnail, input.image), ...imageFactsLines(input.image, input.size).map(escapeHtml)].filter(Boolean).join('<br>');
  const rows = input.top.map((p, i) => `<tr><td align="right">${i + 1}</td><td>${escapeHtml(p.label)}</td><td align="right">${formatScore(p.score)}</td></tr>`);
  const table = `<table><tr><th align="right">#</th><th align="left">label</th><th align="right">score</th></tr>${rows.join('')}</table>`;
  return [header, '', sideBySide(left, table), '', input.explainLink].join('\n');
}

export interface ThumbnailMarkdownInput {
  fileName: string;
  thumbnail?: string;
  image?: ImageFacts;
  size: number;
  /** Markdown, already escaped: the model state (describeModelState) or why there is no thumbnail. */
  status: readonly string[];
  links: readonly string[];
}

/** No model to classify with: the image anyway, as Image Preview would show it, and the model's state. */
export function thumbnailMarkdown(input: ThumbnailMarkdownInput): string {
  const left = thumbnailTag(input.thumbnail, input.image);
  const facts = imageFactsLines(input.image, input.size).map(escapeHtml).join('<br>');
  const lines = [`**BEiT Lens** · ${escapeMarkdown(input.fileName)}`, '', left ? sideBySide(left, facts) : facts, ''];
  lines.push(input.status.join('\n\n'));
  if (input.links.length) lines.push('', input.links.join(' · '));
  return lines.join('\n');
}

export interface TriedPlace {
  file: string;
  /** Where that candidate came from, in words ("this document's folder"). */
  where: string;
}

const MAX_TRIED_SHOWN = 6;

/** A path that names an image nobody has: say so, and where it was looked for. */
export function notFoundMarkdown(written: string, tried: readonly TriedPlace[]): string {
  const name = written.split(/[\\/]/).filter(Boolean).pop() ?? written;
  const shown = tried.slice(0, MAX_TRIED_SHOWN).map((t) => `- ${escapeMarkdown(t.file)} (${escapeMarkdown(t.where)})`);
  if (tried.length > MAX_TRIED_SHOWN) shown.push(`- and ${tried.length - MAX_TRIED_SHOWN} more`);
  return [`**BEiT Lens** · ${escapeMarkdown(name)}`, '', `Not found: ${escapeMarkdown(written)}, looked for`, '', ...shown].join('\n');
}

export function messageMarkdown(fileName: string, message: string, links: readonly string[] = []): string {
  const tail = links.length ? `\n\n${links.join(' · ')}` : '';
  return `**BEiT Lens** · ${escapeMarkdown(fileName)}\n\n${escapeMarkdown(message)}${tail}`;
}
