import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { relativePositionTableRows } from './models/beit/relativePosition';
import { writeSafetensors } from './weights/safetensors';
import { StateDict } from './weights/stateDict';
import { seededNormal } from './seededRandom';

export type RandomModelSize = 'base' | 'tiny';

interface Dimensions {
  hidden: number;
  layers: number;
  heads: number;
  intermediate: number;
  /** Label keys, with the official checkpoint's gaps for `base`. */
  labelKeys: number[];
}

/** The official ImageNet-22k config numbers its 21,841 labels 0..21842 without 9205 and 15027. */
const OFFICIAL_MISSING_KEYS = new Set([9205, 15027]);

const SIZES: Record<RandomModelSize, Dimensions> = {
  base: { hidden: 768, layers: 12, heads: 12, intermediate: 3072, labelKeys: [...Array(21843).keys()].filter((k) => !OFFICIAL_MISSING_KEYS.has(k)) },
  tiny: { hidden: 32, layers: 2, heads: 4, intermediate: 128, labelKeys: [...Array(10).keys()] },
};

/**
 * Writes a Hugging Face BEiT folder with random weights but the real structure: config.json,
 * preprocessor_config.json in the official legacy form, and model.safetensors.
 */
export async function writeRandomBeit(out: string, size: RandomModelSize, seed = 1234): Promise<void> {
  const d = SIZES[size];
  const H = d.hidden;
  const gaussian = seededNormal(seed);
  const normal = (shape: number[], std: number, mean = 0) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < data.length; i++) data[i] = mean + std * gaussian();
    return { dtype: 'float32' as const, shape, data };
  };
  const sd: StateDict = new Map();
  sd.set('beit.embeddings.cls_token', normal([1, 1, H], 0.02));
  sd.set('beit.embeddings.patch_embeddings.projection.weight', normal([H, 3, 16, 16], 0.02));
  sd.set('beit.embeddings.patch_embeddings.projection.bias', normal([H], 0.02));
  const rows = relativePositionTableRows(14);
  for (let i = 0; i < d.layers; i++) {
    const p = `beit.encoder.layer.${i}`;
    const a = `${p}.attention.attention`;
    sd.set(`${p}.layernorm_before.weight`, normal([H], 0.1, 1));
    sd.set(`${p}.layernorm_before.bias`, normal([H], 0.02));
    sd.set(`${a}.query.weight`, normal([H, H], 0.02));
    sd.set(`${a}.query.bias`, normal([H], 0.02));
    sd.set(`${a}.key.weight`, normal([H, H], 0.02));
    sd.set(`${a}.value.weight`, normal([H, H], 0.02));
    sd.set(`${a}.value.bias`, normal([H], 0.02));
    sd.set(`${a}.relative_position_bias.relative_position_bias_table`, normal([rows, d.heads], 0.5));
    sd.set(`${p}.attention.output.dense.weight`, normal([H, H], 0.02));
    sd.set(`${p}.attention.output.dense.bias`, normal([H], 0.02));
    sd.set(`${p}.lambda_1`, normal([H], 0.02, 0.1));
    sd.set(`${p}.layernorm_after.weight`, normal([H], 0.1, 1));
    sd.set(`${p}.layernorm_after.bias`, normal([H], 0.02));
    sd.set(`${p}.intermediate.dense.weight`, normal([d.intermediate, H], 0.02));
    sd.set(`${p}.intermediate.dense.bias`, normal([d.intermediate], 0.02));
    sd.set(`${p}.output.dense.weight`, normal([H, d.intermediate], 0.02));
    sd.set(`${p}.output.dense.bias`, normal([H], 0.02));
    sd.set(`${p}.lambda_2`, normal([H], 0.02, 0.1));
  }
  sd.set('beit.pooler.layernorm.weight', normal([H], 0.1, 1));
  sd.set('beit.pooler.layernorm.bias', normal([H], 0.02));
  sd.set('classifier.weight', normal([d.labelKeys.length, H], 0.02));
  sd.set('classifier.bias', normal([d.labelKeys.length], 0.02));

  const id2label: Record<string, string> = {};
  const label2id: Record<string, number> = {};
  for (const key of d.labelKeys) {
    id2label[String(key)] = `random class ${key}`;
    label2id[`random class ${key}`] = key;
  }
  const config = {
    architectures: ['BeitForImageClassification'],
    model_type: 'beit',
    hidden_size: H,
    num_hidden_layers: d.layers,
    num_attention_heads: d.heads,
    intermediate_size: d.intermediate,
    hidden_act: 'gelu',
    hidden_dropout_prob: 0,
    attention_probs_dropout_prob: 0,
    layer_norm_eps: 1e-12,
    image_size: 224,
    patch_size: 16,
    num_channels: 3,
    use_mask_token: false,
    use_absolute_position_embeddings: false,
    use_relative_position_bias: true,
    use_shared_relative_position_bias: false,
    layer_scale_init_value: 0.1,
    use_mean_pooling: true,
    id2label,
    label2id,
  };
  const preprocessor = {
    crop_size: 224,
    do_center_crop: false,
    do_normalize: true,
    do_resize: true,
    feature_extractor_type: 'BeitFeatureExtractor',
    image_mean: [0.5, 0.5, 0.5],
    image_std: [0.5, 0.5, 0.5],
    resample: 2,
    size: 224,
  };
  await mkdir(out, { recursive: true });
  await writeFile(path.join(out, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  await writeFile(path.join(out, 'preprocessor_config.json'), JSON.stringify(preprocessor, null, 2) + '\n');
  await writeSafetensors(path.join(out, 'model.safetensors'), sd, { format: 'pt' });
}
