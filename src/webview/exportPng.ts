import { paintLegendStrip, type LegendStripSpec } from '../shared/legendStrip';
import type { OverlayKind } from '../shared/protocol';

export type ExportResult = { ok: true; dataUrl: string } | { ok: false; error: string };

/**
 * The image with the overlay on top, at the overlay's resolution so every overlay pixel lands on
 * exactly one output pixel: the PNG matches what the panel shows, without a second resampling.
 * Below it, the legend strip the CLI's `explain --out` draws too (src/shared/legendStrip.ts).
 */
export function exportComposite(image: HTMLImageElement, overlay: HTMLCanvasElement, legend: LegendStripSpec): ExportResult {
  if (!image.complete || image.naturalWidth === 0) return { ok: false, error: 'The image has not loaded yet, so there is nothing to export.' };
  const strip = paintLegendStrip(overlay.width, legend);
  const out = document.createElement('canvas');
  out.width = overlay.width;
  out.height = overlay.height + strip.layout.height;
  const ctx = out.getContext('2d');
  if (!ctx) return { ok: false, error: 'This webview cannot create a 2D canvas for the export.' };
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(image, 0, 0, out.width, out.height);
  ctx.drawImage(overlay, 0, 0);
  const stripPixels = ctx.createImageData(strip.layout.width, strip.layout.height);
  stripPixels.data.set(strip.rgba);
  ctx.putImageData(stripPixels, 0, overlay.height);
  try {
    return { ok: true, dataUrl: out.toDataURL('image/png') };
  } catch (err) {
    // A cross-origin image without CORS taints the canvas; say so rather than fail silently.
    return { ok: false, error: `Could not export the PNG: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** `photo.jpg` -> `photo-rollout.png`, stripped of anything the host's file-name check rejects. */
export function exportFileName(imageName: string, overlay: OverlayKind): string {
  const base = imageName.split(/[/\\]/).pop() ?? '';
  const stem = base.replace(/\.[^.]*$/, '').replace(/[\u0000-\u001f\u007f]/g, '').trim() || 'image';
  return `${stem.slice(0, 200)}-${overlay}.png`;
}
