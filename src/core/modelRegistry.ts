/**
 * The registry of models BEiT Lens knows (models/registry.json). It is imported rather than read
 * from disk so the bundled CLI and extension carry it without locating the repository at runtime,
 * and validated so a hand edit that breaks it fails loudly at load instead of deep in a download.
 */
import { z } from 'zod';
import bundledRegistry from '../../models/registry.json';
import { BeitLensError } from './errors';

const positiveInt = z.number().int().positive();

const RegistryFileSchema = z.object({
  path: z.string().regex(/^[\w.-]+$/, 'file paths are plain file names'),
  role: z.enum(['config', 'preprocessor', 'weights']),
  lfs: z.boolean(),
  /** Exact size in bytes, or null when it is only known from the hub at download time. */
  size: positiveInt.nullable(),
  approxSize: z.string().optional(),
  /** Pinned sha256, or null when the hub's LFS / git metadata is the only source (never guessed). */
  sha256: z.string().regex(/^[0-9a-f]{64}$/).nullable(),
  comment: z.string().optional(),
});

const RegistryModelSchema = z.object({
  id: z.string().regex(/^[\w.-]+\/[\w.-]+$/, 'model ids are owner/name'),
  revision: z.string().min(1),
  license: z.string().min(1),
  task: z.literal('image-classification'),
  num_labels: positiveInt,
  paper: z.url().optional(),
  /**
   * The checkpoint's config.json fields that decide conversion (sizes and the family's options, as HF spells them),
   * so a test can parse each entry as the real config and see it convert or be refused by field.
   */
  architecture: z.object({
    type: z.string().min(1),
    model_type: z.string().min(1),
    summary: z.string().min(1),
    hidden_size: positiveInt,
    num_hidden_layers: positiveInt,
    num_attention_heads: positiveInt,
    intermediate_size: positiveInt,
    hidden_act: z.string(),
    layer_norm_eps: z.number().positive(),
    image_size: positiveInt,
    patch_size: positiveInt,
    // BEiT and data2vec-vision only.
    use_relative_position_bias: z.boolean().optional(),
    use_shared_relative_position_bias: z.boolean().optional(),
    use_absolute_position_embeddings: z.boolean().optional(),
    use_mean_pooling: z.boolean().optional(),
    layer_scale_init_value: z.number().nonnegative().optional(),
    // ViT only.
    qkv_bias: z.boolean().optional(),
  }),
  preprocessing: z.object({
    resize: z.tuple([positiveInt, positiveInt]),
    resample: z.enum(['bilinear', 'bicubic', 'nearest']),
    center_crop: z.boolean(),
    rescale: z.number().positive(),
    image_mean: z.tuple([z.number(), z.number(), z.number()]),
    image_std: z.tuple([z.number().positive(), z.number().positive(), z.number().positive()]),
  }),
  files: z
    .array(RegistryFileSchema)
    .min(1)
    .refine((files) => files.some((f) => f.role === 'weights'), 'a model needs a weights file'),
});

const ModelRegistrySchema = z.object({
  $comment: z.string().optional(),
  models: z
    .array(RegistryModelSchema)
    .min(1)
    .refine((models) => new Set(models.map((m) => m.id)).size === models.length, 'model ids must be unique'),
});

export type RegistryModel = z.infer<typeof RegistryModelSchema>;
export type ModelRegistry = z.infer<typeof ModelRegistrySchema>;

/** Validates `raw` (the bundled models/registry.json unless given) into a typed registry. */
export function loadModelRegistry(raw: unknown = bundledRegistry): ModelRegistry {
  const parsed = ModelRegistrySchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BeitLensError('CONFIG_INVALID', `${issue.path.join('.') || '(root)'}: ${issue.message}`, 'models/registry.json');
  }
  return parsed.data;
}
