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

export interface PreviewMarkdownInput {
  fileName: string;
  thumbnail?: string;
  top: readonly Prediction[];
  provider: string;
  explainLink: string;
}

export function previewMarkdown(input: PreviewMarkdownInput): string {
  const lines: string[] = [];
  lines.push(`**BEiT Lens** · ${escapeMarkdown(input.fileName)} · ${escapeMarkdown(providerName(input.provider))}`, '');
  // Data URIs never contain ')' or whitespace, so they are safe inside the image syntax.
  if (input.thumbnail && /^data:image\/(png|jpeg);base64,[A-Za-z0-9+/=]+$/.test(input.thumbnail)) lines.push(`![thumbnail](${input.thumbnail})`, '');
  lines.push('| | label | score |', '|--:|:--|--:|');
  input.top.forEach((p, i) => lines.push(`| ${i + 1} | ${escapeMarkdown(p.label)} | ${formatScore(p.score)} |`));
  lines.push('', input.explainLink);
  return lines.join('\n');
}

export function messageMarkdown(fileName: string, message: string, links: readonly string[] = []): string {
  const tail = links.length ? `\n\n${links.join(' · ')}` : '';
  return `**BEiT Lens** · ${escapeMarkdown(fileName)}\n\n${escapeMarkdown(message)}${tail}`;
}
