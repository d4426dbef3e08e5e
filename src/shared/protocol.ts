import { z } from 'zod';

/**
 * Every message between the explanation panel's webview and the extension, both directions, as
 * discriminated unions on `type`. Messages from the webview are untrusted: the extension parses
 * them with `parseWebviewMessage` and drops anything that does not match.
 */

export type HeadFusion = 'mean' | 'max' | 'min';
export type OverlayKind = 'rollout' | 'patches' | 'class' | 'patchAttention' | 'none';

export interface PredictionDto {
  index: number;
  label: string;
  score: number;
}

export interface LegendEntryDto {
  index: number;
  label: string;
  patches: number;
  share: number;
  color: [number, number, number];
}

export interface ExplanationDto {
  /** Which image this is; echoed back so stale replies for another image can be ignored. */
  requestId: number;
  image: { src: string; name: string; width: number; height: number };
  top: PredictionDto[];
  grid: number;
  layers: number;
  heads: number;
  rollout: { headFusion: HeadFusion; discardRatio: number; map: number[] };
  /** Argmax class per patch, row-major, and its softmax probability over the patch's own logits. */
  patchArgmax: number[];
  patchScore: number[];
  legend: LegendEntryDto[];
  provider: string;
}

// ---- extension -> webview ------------------------------------------------------------------

export type ExtensionToWebviewMessage =
  | { type: 'loading'; requestId: number; image: string }
  | { type: 'explanation'; explanation: ExplanationDto }
  | { type: 'rollout'; requestId: number; headFusion: HeadFusion; discardRatio: number; map: number[] }
  | { type: 'classHeatmap'; requestId: number; classIndex: number; label: string; logits: number[] }
  | { type: 'patchAttention'; requestId: number; patch: number; layer: number; head: number | 'mean'; map: number[] }
  | { type: 'error'; requestId: number; message: string }
  | { type: 'exported'; file: string };

// ---- webview -> extension ------------------------------------------------------------------

const requestId = z.number().int().nonnegative();

export const WebviewMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('ready') }).strict(),
  z.object({ type: z.literal('setRollout'), requestId, headFusion: z.enum(['mean', 'max', 'min']), discardRatio: z.number().min(0).lt(1) }).strict(),
  z.object({ type: z.literal('selectClass'), requestId, classIndex: z.number().int().nonnegative().max(10_000_000) }).strict(),
  z
    .object({
      type: z.literal('selectPatch'),
      requestId,
      patch: z.number().int().nonnegative().max(1_000_000),
      layer: z.number().int().nonnegative().max(1000),
      head: z.union([z.number().int().nonnegative().max(1000), z.literal('mean')]),
    })
    .strict(),
  // The webview renders the overlay; the extension only writes bytes where the user chooses.
  z.object({ type: z.literal('exportPng'), dataUrl: z.string().max(64 * 1024 * 1024).startsWith('data:image/png;base64,'), suggestedName: z.string().max(255).regex(/^[^/\\]*$/) }).strict(),
  z.object({ type: z.literal('state'), overlay: z.enum(['rollout', 'patches', 'class', 'patchAttention', 'none']), opacity: z.number().min(0).max(1) }).strict(),
]);

export type WebviewToExtensionMessage = z.infer<typeof WebviewMessageSchema>;

export type ParsedWebviewMessage = { ok: true; message: WebviewToExtensionMessage } | { ok: false; error: string };

export function parseWebviewMessage(raw: unknown): ParsedWebviewMessage {
  const parsed = WebviewMessageSchema.safeParse(raw);
  if (parsed.success) return { ok: true, message: parsed.data };
  const issue = parsed.error.issues[0];
  return { ok: false, error: `${issue.path.join('.') || 'message'}: ${issue.message}` };
}

/** What the panel serializer stores so a panel comes back after a reload. */
export interface PanelState {
  imagePath: string;
  overlay?: OverlayKind;
  opacity?: number;
}
