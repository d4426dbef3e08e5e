/**
 * What every family's config parser produces: one pre-norm ViT-style encoder described by its sizes and by the
 * architecture options the graph builder (onnx/beitGraph.ts) reads. Families differ only in these options and in
 * their weight prefix, so a new family is a new parser (models/<family>/), not a new graph.
 */
import { z } from 'zod';
import { BeitLensError } from '../errors';
import { LabelTable, labelsFromId2Label } from '../labels';

export type FamilyId = 'beit' | 'data2vec-vision' | 'vit';

/**
 * Where a family's patch tokens sit in the encoder's sequence, and how the classifier pools them. Rollout, the patch
 * maps, the worker and the panel read this (through the Explanation and ModelInfo), never a fixed "CLS + patches".
 */
export interface TokenLayout {
  /** Tokens before the patch tokens: a CLS token, register or distillation tokens; 0 for a model with none. */
  leadingTokens: number;
  /** `mean`: LayerNorm(mean of the patch tokens) through `${prefix}.pooler.layernorm`; `cls`: `${prefix}.layernorm` of every token, then the CLS token. */
  pooling: 'mean' | 'cls';
}

export interface VisionArchitecture extends TokenLayout {
  family: FamilyId;
  /** The encoder's weight prefix in the HF checkpoint: `beit`, `data2vec_vision`, `vit`. */
  prefix: string;
  /**
   * The graph builder (onnx/beitGraph.ts) embeds exactly one CLS token before the patches, as all three families
   * do; everything downstream takes any count from the TokenLayout, so a family with registers widens only this.
   */
  leadingTokens: 1;
  /** `${prefix}.embeddings.position_embeddings` [1, tokens, hidden] added to [CLS; patches]. */
  absolutePositionEmbeddings: boolean;
  /** A relative position bias table in every layer (`...attention.attention.relative_position_bias...`). */
  perLayerRelativeBias: boolean;
  /** One table for all layers (`${prefix}.encoder.relative_position_bias...`); HF adds it to a per-layer one when both are on. */
  sharedRelativeBias: boolean;
  /** `lambda_1` / `lambda_2` per layer (BEiT's layer scale); absent when the config's init value is 0. */
  layerScale: boolean;
  /** ViT has a key bias; BEiT has query and value biases only. */
  keyBias: boolean;
}

export interface VisionConfig {
  architecture: VisionArchitecture;
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
  /** Patch tokens plus the leading tokens (197 for 224/16). */
  numTokens: number;
  labels: LabelTable;
  numLabels: number;
}

/** Bounds keep a hostile config from asking for terabytes before any weight is read. */
const dim = (max: number) => z.number().int().positive().max(max);

/**
 * Patches per side. Released BEiT checkpoints use 14 (224/16), 24 (384/16) and 32 (512/16); the relative position
 * index and bias grow with the fourth power of this, before any weight can say otherwise.
 */
const MAX_GRID = 64;
/** heads * tokens^2: one layer's relative position bias and attention scores. BEiT-large at 512 px needs 16.8M. */
const MAX_ATTENTION_VALUES = 64 * 1024 * 1024;

/** The fields every family's config.json spells the same way (HF's PretrainedConfig and the ViT-style configs). */
export const encoderFields = {
  hidden_size: dim(8192),
  num_hidden_layers: dim(128),
  num_attention_heads: dim(256),
  intermediate_size: dim(65536),
  hidden_act: z.string().default('gelu'),
  layer_norm_eps: z.number().positive().max(1).default(1e-12),
  image_size: dim(4096).default(224),
  patch_size: dim(256).default(16),
  num_channels: z.literal(3).default(3),
  // Keys are checked (and bounded by the row count) in labelsFromId2Label, before anything is built from them.
  id2label: z.record(z.string(), z.string()),
};

type EncoderFields = { [K in keyof typeof encoderFields]: z.output<(typeof encoderFields)[K]> };

/** Parses `json` with a family's schema, worded as every config error is: `file: field: problem`. */
export function parseWithSchema<T>(schema: z.ZodType<T>, json: unknown, file: string): T {
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue.path.join('.') || '(root)';
    const message = issue.path[0] === 'id2label' && issue.code === 'invalid_type' ? 'config has no id2label' : `${where}: ${issue.message}`;
    throw new BeitLensError('CONFIG_INVALID', message, file);
  }
  return parsed.data;
}

/** A config field whose value this converter does not build, named with the value and what is supported. */
export function unsupportedField(field: string, value: unknown, supported: string, file: string): BeitLensError {
  return new BeitLensError('CONFIG_INVALID', `${field} ${String(value)} is not supported (${supported})`, file);
}

/** The shared checks and derived sizes, after a family has checked its own options. */
export function visionConfig(c: EncoderFields, architecture: VisionArchitecture, file: string): VisionConfig {
  if (c.hidden_act !== 'gelu') throw unsupportedField('hidden_act', c.hidden_act, 'only "gelu", the exact erf form', file);
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
  const numTokens = gridSize * gridSize + architecture.leadingTokens;
  const attentionValues = c.num_attention_heads * numTokens ** 2;
  if (attentionValues > MAX_ATTENTION_VALUES) {
    throw new BeitLensError('CONFIG_INVALID', `${c.num_attention_heads} heads over ${numTokens} tokens need ${attentionValues} attention values per layer; at most ${MAX_ATTENTION_VALUES} are supported`, file);
  }
  const labels = labelsFromId2Label(c.id2label, file);
  if (labels.labels.length === 0) throw new BeitLensError('CONFIG_INVALID', 'id2label is empty', file);
  if (labels.labels.length > 1_000_000) throw new BeitLensError('CONFIG_INVALID', `id2label has ${labels.labels.length} entries`, file);
  return {
    architecture,
    hiddenSize: c.hidden_size,
    numLayers: c.num_hidden_layers,
    numHeads: c.num_attention_heads,
    headDim: c.hidden_size / c.num_attention_heads,
    intermediateSize: c.intermediate_size,
    layerNormEps: c.layer_norm_eps,
    imageSize: c.image_size,
    patchSize: c.patch_size,
    gridSize,
    numTokens,
    labels,
    numLabels: labels.labels.length,
  };
}

/**
 * One model family: how its config.json is recognised and read. Everything after parsing (weight names, graph,
 * fp16/int8, outputs, token layout, pooling) follows from the VisionArchitecture the parser returns.
 */
export interface ModelFamily {
  id: FamilyId;
  /** As the model view and `info` show it. */
  displayName: string;
  /** config.json `model_type` values of this family. */
  modelTypes: readonly string[];
  /** The HF class with the image-classification head, the one `architectures` must name. */
  classifierClass: string;
  parseConfig(json: unknown, file: string): VisionConfig;
}
