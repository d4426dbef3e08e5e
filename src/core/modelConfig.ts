import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { BeitLensError, errorMessage } from './errors';
import { LabelTable, labelsFromId2Label } from './labels';

/** Bounds keep a hostile config from asking for terabytes before any weight is read. */
const dim = (max: number) => z.number().int().positive().max(max);

/**
 * Patches per side. Released BEiT checkpoints use 14 (224/16), 24 (384/16) and 32 (512/16); the relative position
 * index and bias grow with the fourth power of this, before any weight can say otherwise.
 */
const MAX_GRID = 64;
/** heads * tokens^2: one layer's relative position bias and attention scores. BEiT-large at 512 px needs 16.8M. */
const MAX_ATTENTION_VALUES = 64 * 1024 * 1024;

const BeitConfigSchema = z.object({
  model_type: z.literal('beit').optional(),
  hidden_size: dim(8192),
  num_hidden_layers: dim(128),
  num_attention_heads: dim(256),
  intermediate_size: dim(65536),
  hidden_act: z.string().default('gelu'),
  layer_norm_eps: z.number().positive().max(1).default(1e-12),
  image_size: dim(4096).default(224),
  patch_size: dim(256).default(16),
  num_channels: z.literal(3).default(3),
  use_absolute_position_embeddings: z.boolean().default(false),
  use_relative_position_bias: z.boolean().default(false),
  use_shared_relative_position_bias: z.boolean().default(false),
  use_mean_pooling: z.boolean().default(true),
  // Keys are checked (and bounded by the row count) in labelsFromId2Label, before anything is built from them.
  id2label: z.record(z.string(), z.string()),
});

export interface BeitConfig {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  headDim: number;
  intermediateSize: number;
  layerNormEps: number;
  imageSize: number;
  patchSize: number;
  /** Patches per side (14 for 224/16). */
  gridSize: number;
  /** Patch tokens plus CLS (197 for 224/16). */
  numTokens: number;
  labels: LabelTable;
  numLabels: number;
}

export function parseBeitConfig(json: unknown, file = 'config.json'): BeitConfig {
  const parsed = BeitConfigSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.join('.') || '(root)';
    const message = issue.path[0] === 'id2label' && issue.code === 'invalid_type' ? 'config has no id2label' : `${where}: ${issue.message}`;
    throw new BeitLensError('CONFIG_INVALID', message, file);
  }
  const c = parsed.data;
  const unsupported = (what: string) => new BeitLensError('CONFIG_INVALID', `unsupported BEiT variant: ${what}`, file);
  if (c.hidden_act !== 'gelu') throw unsupported(`hidden_act ${c.hidden_act} (only exact gelu)`);
  if (c.use_absolute_position_embeddings) throw unsupported('absolute position embeddings');
  if (!c.use_relative_position_bias || c.use_shared_relative_position_bias) {
    throw unsupported('per-layer relative position bias is required (use_relative_position_bias true, shared false)');
  }
  if (!c.use_mean_pooling) throw unsupported('CLS pooling (use_mean_pooling false)');
  if (c.hidden_size % c.num_attention_heads !== 0) {
    throw new BeitLensError('CONFIG_INVALID', `hidden_size ${c.hidden_size} is not divisible by num_attention_heads ${c.num_attention_heads}`, file);
  }
  if (c.image_size % c.patch_size !== 0) {
    throw new BeitLensError('CONFIG_INVALID', `image_size ${c.image_size} is not a multiple of patch_size ${c.patch_size}`, file);
  }
  const gridSize = c.image_size / c.patch_size;
  if (gridSize > MAX_GRID) {
    throw new BeitLensError('CONFIG_INVALID', `image_size ${c.image_size} / patch_size ${c.patch_size} gives ${gridSize} patches per side; at most ${MAX_GRID} are supported`, file);
  }
  const attentionValues = c.num_attention_heads * (gridSize * gridSize + 1) ** 2;
  if (attentionValues > MAX_ATTENTION_VALUES) {
    throw new BeitLensError('CONFIG_INVALID', `${c.num_attention_heads} heads over ${gridSize * gridSize + 1} tokens need ${attentionValues} attention values per layer; at most ${MAX_ATTENTION_VALUES} are supported`, file);
  }
  const labels = labelsFromId2Label(c.id2label, file);
  if (labels.labels.length === 0) throw new BeitLensError('CONFIG_INVALID', 'id2label is empty', file);
  if (labels.labels.length > 1_000_000) throw new BeitLensError('CONFIG_INVALID', `id2label has ${labels.labels.length} entries`, file);
  return {
    hiddenSize: c.hidden_size,
    numLayers: c.num_hidden_layers,
    numHeads: c.num_attention_heads,
    headDim: c.hidden_size / c.num_attention_heads,
    intermediateSize: c.intermediate_size,
    layerNormEps: c.layer_norm_eps,
    imageSize: c.image_size,
    patchSize: c.patch_size,
    gridSize,
    numTokens: gridSize * gridSize + 1,
    labels,
    numLabels: labels.labels.length,
  };
}

export async function readJsonFile(file: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new BeitLensError(code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_UNREADABLE', code === 'ENOENT' ? 'file not found' : errorMessage(err), file);
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new BeitLensError('CONFIG_INVALID', `invalid JSON (${errorMessage(err)})`, file);
  }
}

export async function loadBeitConfig(file: string): Promise<BeitConfig> {
  return parseBeitConfig(await readJsonFile(file), file);
}
