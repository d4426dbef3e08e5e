/**
 * BEiT's config.json (HF `BeitConfig`), and data2vec-vision's, which is the same architecture and the same options
 * under another model_type and weight prefix. Every option the classification checkpoints use is built; a value
 * that is not is refused by field name.
 */
import { z } from 'zod';
import { encoderFields, FamilyId, parseWithSchema, unsupportedField, visionConfig, VisionConfig } from '../visionConfig';

/** Defaults are BeitConfig's (and Data2VecVisionConfig's, which match), so a config that leaves a field out means what HF reads. */
const BeitConfigSchema = z.object({
  ...encoderFields,
  use_absolute_position_embeddings: z.boolean().default(false),
  use_relative_position_bias: z.boolean().default(false),
  use_shared_relative_position_bias: z.boolean().default(false),
  use_mean_pooling: z.boolean().default(true),
  layer_scale_init_value: z.number().finite().default(0.1),
});

export function parseBeitFamilyConfig(json: unknown, file: string, family: Extract<FamilyId, 'beit' | 'data2vec-vision'>): VisionConfig {
  const c = parseWithSchema(BeitConfigSchema, json, file);
  // HF creates lambda_1/lambda_2 only for a positive init value; a negative one is a typo, not a variant.
  if (c.layer_scale_init_value < 0) throw unsupportedField('layer_scale_init_value', c.layer_scale_init_value, '0 for no layer scale or a positive value', file);
  return visionConfig(
    c,
    {
      family,
      prefix: family === 'beit' ? 'beit' : 'data2vec_vision',
      leadingTokens: 1,
      pooling: c.use_mean_pooling ? 'mean' : 'cls',
      absolutePositionEmbeddings: c.use_absolute_position_embeddings,
      perLayerRelativeBias: c.use_relative_position_bias,
      sharedRelativeBias: c.use_shared_relative_position_bias,
      layerScale: c.layer_scale_init_value > 0,
      keyBias: false,
    },
    file,
  );
}
