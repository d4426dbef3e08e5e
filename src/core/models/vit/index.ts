/**
 * ViT (HF `ViTForImageClassification`): absolute position embeddings, query, key and value biases, no layer scale,
 * no relative position bias, and the classifier reads the CLS token after `vit.layernorm`.
 */
import { z } from 'zod';
import { encoderFields, ModelFamily, parseWithSchema, unsupportedField, visionConfig } from '../visionConfig';

const ViTConfigSchema = z.object({
  ...encoderFields,
  qkv_bias: z.boolean().default(true),
});

export const VIT_FAMILY: ModelFamily = {
  id: 'vit',
  displayName: 'ViT',
  modelTypes: ['vit'],
  classifierClass: 'ViTForImageClassification',
  parseConfig(json, file) {
    const c = parseWithSchema(ViTConfigSchema, json, file);
    if (!c.qkv_bias) throw unsupportedField('qkv_bias', c.qkv_bias, 'only true: query, key and value biases', file);
    return visionConfig(
      c,
      {
        family: 'vit',
        prefix: 'vit',
        leadingTokens: 1,
        pooling: 'cls',
        absolutePositionEmbeddings: true,
        perLayerRelativeBias: false,
        sharedRelativeBias: false,
        layerScale: false,
        keyBias: true,
      },
      file,
    );
  },
};
