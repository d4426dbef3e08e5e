/**
 * `preprocessor_config.json` as HF's `BeitImageProcessor` reads it, so a checkpoint's own file decides resize,
 * crop, rescale and normalisation. Missing keys take BeitImageProcessor's constructor defaults (size 256x256,
 * BICUBIC, centre crop to 224x224, rescale 1/255, mean = std = 0.5); the real BEiT checkpoints spell every key out.
 */
import { promises as fsp } from 'node:fs';
import { z } from 'zod';

import { BeitLensError, errorMessage } from './errors';
import { PilResample, isSupportedPilResample } from './pilResize';

export interface PreprocessorConfig {
  /** Resize target (before any centre crop). */
  width: number;
  height: number;
  /** Pillow resampling filter number (2 = BILINEAR for the BEiT checkpoints). */
  resample: number;
  doResize: boolean;
  doRescale: boolean;
  rescaleFactor: number;
  doNormalize: boolean;
  imageMean: [number, number, number];
  imageStd: [number, number, number];
  doCenterCrop: boolean;
  cropWidth: number;
  cropHeight: number;
}

/** Larger than any sensible model input; keeps a typo like 22400 from allocating gigabytes per image. */
const MAX_SIDE = 8192;
const MAX_CONFIG_BYTES = 1024 * 1024;
/** 1/65535 (16-bit data to [0, 1]) rounded down; released checkpoints use 1/255. */
const MIN_RESCALE = 1e-5;
/** The smallest std, as a fraction of the pixel range (ImageNet's smallest is 0.224 of it). */
const MIN_STD_FRACTION = 1e-4;

const RESAMPLE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(PilResample).map(([name, value]) => [value, name]),
);

const side = z.number().int().min(1).max(MAX_SIDE);

/**
 * HF's get_size_dict(default_to_square=True): a bare integer is a square (legacy BeitFeatureExtractor files say
 * `"size": 224`, meaning 224x224; transformers.js wrongly reads it as a shortest edge). Aspect-preserving forms
 * are refused: BeitImageProcessor itself rejects them, since BEiT needs exactly the model's input size.
 */
const sizeField = z.unknown().transform((value, ctx): { width: number; height: number } => {
  if (typeof value === 'number') {
    const parsed = side.safeParse(value);
    if (parsed.success) return { width: value, height: value };
  } else if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if ('shortest_edge' in value || 'longest_edge' in value || 'max_height' in value || 'max_width' in value) {
      ctx.addIssue({
        code: 'custom',
        message: `aspect-preserving size ${JSON.stringify(value)} is not supported; BEiT needs {"height": H, "width": W}`,
      });
      return z.NEVER;
    }
    const record = value as Record<string, unknown>;
    const height = side.safeParse(record.height);
    const width = side.safeParse(record.width);
    if (keys.length === 2 && height.success && width.success) return { width: width.data, height: height.data };
  }
  ctx.addIssue({
    code: 'custom',
    message: `must be an integer 1-${MAX_SIDE} or {"height": H, "width": W}, got ${JSON.stringify(value)}`,
  });
  return z.NEVER;
});

const PER_CHANNEL_MESSAGE = 'must be a number or an array of 3 numbers';

/** A float or one float per RGB channel, as HF accepts for image_mean / image_std. */
const perChannel = z
  .union([z.number().finite(), z.array(z.number().finite()).length(3, PER_CHANNEL_MESSAGE)], {
    error: PER_CHANNEL_MESSAGE,
  })
  .transform((v): [number, number, number] => (typeof v === 'number' ? [v, v, v] : [v[0], v[1], v[2]]));

const schema = z.object({
  do_resize: z.boolean().default(true),
  size: sizeField.optional(),
  resample: z
    .number()
    .int()
    .default(PilResample.BICUBIC)
    .refine(isSupportedPilResample, {
      error: (issue) =>
        `${String(issue.input)} (${RESAMPLE_NAMES[Number(issue.input)] ?? 'unknown'}) is not supported; ` +
        'use 1 LANCZOS, 2 BILINEAR, 3 BICUBIC, 4 BOX or 5 HAMMING',
    }),
  do_center_crop: z.boolean().default(true),
  crop_size: sizeField.optional(),
  do_rescale: z.boolean().default(true),
  rescale_factor: z.number().finite().default(1 / 255),
  do_normalize: z.boolean().default(true),
  image_mean: perChannel.default([0.5, 0.5, 0.5]),
  image_std: perChannel.default([0.5, 0.5, 0.5]),
}).superRefine((c, ctx) => {
  // Finite is not enough: std 1e-50 or a rescale of 1e300 overflow float32 and every score becomes NaN. Ranges are
  // set against the largest pixel value after rescaling (1 for the 1/255 every released checkpoint uses), so
  // |(x - mean) / std| <= 1 / MIN_STD_FRACTION whatever the scale, and a mean on the 0-255 scale with
  // rescaling on (a real mistake, silently wrong in HF) is caught.
  if (c.do_rescale && !(c.rescale_factor >= MIN_RESCALE && c.rescale_factor <= 1)) {
    ctx.addIssue({ code: 'custom', path: ['rescale_factor'], message: `must be in [${MIN_RESCALE}, 1] (1/255 for 8-bit pixels), got ${c.rescale_factor}` });
    return;
  }
  const top = c.do_rescale ? 255 * c.rescale_factor : 255;
  const range = (lo: number) => `[${+lo.toPrecision(6)}, ${+top.toPrecision(6)}]`;
  const slack = top * 1e-9;
  const mean = c.image_mean.find((m) => !(m >= -slack && m <= top + slack));
  if (mean !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['image_mean'], message: `must be in ${range(0)}, the pixel range after rescaling, got ${mean}` });
  }
  const std = c.image_std.find((v) => !(v >= top * MIN_STD_FRACTION - slack && v <= top + slack));
  if (std !== undefined) {
    ctx.addIssue({ code: 'custom', path: ['image_std'], message: `must be in ${range(top * MIN_STD_FRACTION)} (${MIN_STD_FRACTION} to 1 times the largest pixel value after rescaling), got ${std}` });
  }
});

function describeIssue(issue: z.core.$ZodIssue): string {
  const field = issue.path.length > 0 ? issue.path.map(String).join('.') : '(top level)';
  let message = issue.message;
  if (issue.code === 'invalid_type') message = `must be ${issue.expected}`;
  return `"${field}" ${message}`;
}

/**
 * ViT checkpoints name ViTImageProcessor (or the legacy ViTFeatureExtractor): its defaults are a 224x224 BILINEAR
 * resize, and it has no centre crop at all (a do_center_crop key in such a file is ignored by HF, so here too).
 */
const VIT_PROCESSOR_DEFAULTS = { size: { height: 224, width: 224 }, resample: PilResample.BILINEAR };

function isViTProcessor(json: Record<string, unknown>): boolean {
  const type = json.image_processor_type ?? json.feature_extractor_type;
  return typeof type === 'string' && /^ViT(ImageProcessor|ImageProcessorFast|FeatureExtractor)$/.test(type);
}

/** Validates a parsed preprocessor_config.json; errors are CONFIG_INVALID naming the offending field. */
export function parsePreprocessorConfig(json: unknown, file?: string): PreprocessorConfig {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new BeitLensError('CONFIG_INVALID', 'preprocessor config must be a JSON object', file);
  }
  // HF writes null for an unset option and then applies the constructor default; do the same.
  let present: Record<string, unknown> = Object.fromEntries(Object.entries(json).filter(([, v]) => v !== null));
  if (isViTProcessor(present)) present = { ...VIT_PROCESSOR_DEFAULTS, ...present, do_center_crop: false };
  const result = schema.safeParse(present);
  if (!result.success) {
    throw new BeitLensError('CONFIG_INVALID', `preprocessor config: ${describeIssue(result.error.issues[0])}`, file);
  }
  const c = result.data;
  const size = c.size ?? { width: 256, height: 256 };
  const crop = c.crop_size ?? { width: 224, height: 224 };
  return {
    width: size.width,
    height: size.height,
    resample: c.resample,
    doResize: c.do_resize,
    doRescale: c.do_rescale,
    rescaleFactor: c.rescale_factor,
    doNormalize: c.do_normalize,
    imageMean: c.image_mean,
    imageStd: c.image_std,
    doCenterCrop: c.do_center_crop,
    cropWidth: crop.width,
    cropHeight: crop.height,
  };
}

/** Reads and validates `preprocessor_config.json`. */
export async function loadPreprocessorConfig(file: string): Promise<PreprocessorConfig> {
  let text: string;
  try {
    const stats = await fsp.stat(file);
    if (!stats.isFile()) throw new BeitLensError('FILE_UNREADABLE', 'is not a regular file', file);
    if (stats.size > MAX_CONFIG_BYTES) {
      throw new BeitLensError('FILE_TOO_LARGE', `config is ${stats.size} bytes; the limit is ${MAX_CONFIG_BYTES}`, file);
    }
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    if (err instanceof BeitLensError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new BeitLensError('FILE_NOT_FOUND', 'file not found', file);
    throw new BeitLensError('FILE_UNREADABLE', `cannot read file (${code ?? errorMessage(err)})`, file);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new BeitLensError('CONFIG_INVALID', `preprocessor config is not valid JSON: ${errorMessage(err)}`, file);
  }
  return parsePreprocessorConfig(json, file);
}

/** Size of the tensor the processor produces: the crop when centre-cropping, else the resize target. */
export function modelInputSize(config: PreprocessorConfig): { width: number; height: number } {
  return config.doCenterCrop
    ? { width: config.cropWidth, height: config.cropHeight }
    : { width: config.width, height: config.height };
}
