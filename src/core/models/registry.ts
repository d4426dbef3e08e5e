/**
 * The model families BEiT Lens converts, chosen from config.json's `model_type` (and checked against
 * `architectures`, which names the head: a checkpoint without the classification head cannot classify).
 * Adding a family is a folder under models/ and one entry here.
 */
import { z } from 'zod';
import { BeitLensError } from '../errors';
import { BEIT_FAMILY, DATA2VEC_VISION_FAMILY } from './beit';
import { VIT_FAMILY } from './vit';
import { FamilyId, ModelFamily, VisionConfig } from './visionConfig';

export const MODEL_FAMILIES: readonly ModelFamily[] = [BEIT_FAMILY, DATA2VEC_VISION_FAMILY, VIT_FAMILY];

// HF writes null for an unset field.
const FamilyKeysSchema = z.object({
  model_type: z.string().nullish(),
  architectures: z.array(z.string()).nullish(),
});

/** The family of a config.json: by model_type, else by the classification class; neither means BEiT (older files leave both out). */
export function familyOf(json: unknown, file: string): ModelFamily {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new BeitLensError('CONFIG_INVALID', '(root): expected object', file);
  const parsed = FamilyKeysSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new BeitLensError('CONFIG_INVALID', `${issue.path.join('.')}: ${issue.message}`, file);
  }
  const { model_type: modelType, architectures } = parsed.data;
  const known = MODEL_FAMILIES.flatMap((f) => f.modelTypes).join(', ');
  let family: ModelFamily | undefined;
  if (modelType !== undefined && modelType !== null) {
    family = MODEL_FAMILIES.find((f) => f.modelTypes.includes(modelType));
    if (!family) throw new BeitLensError('CONFIG_INVALID', `model_type "${modelType}" is not supported (supported: ${known})`, file);
  } else if (architectures?.length) {
    family = MODEL_FAMILIES.find((f) => architectures.includes(f.classifierClass));
  } else {
    family = BEIT_FAMILY;
  }
  if (architectures?.length && (!family || !architectures.includes(family.classifierClass))) {
    const wanted = family ? family.classifierClass : MODEL_FAMILIES.map((f) => f.classifierClass).join(', ');
    throw new BeitLensError('CONFIG_INVALID', `architectures ${JSON.stringify(architectures)} is not supported: BEiT Lens converts image classifiers (${wanted})`, file);
  }
  return family!;
}

export function familyById(id: FamilyId): ModelFamily {
  return MODEL_FAMILIES.find((f) => f.id === id)!;
}

export function parseModelConfig(json: unknown, file = 'config.json'): VisionConfig {
  return familyOf(json, file).parseConfig(json, file);
}
