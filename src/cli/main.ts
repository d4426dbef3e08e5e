import { Command, Option } from 'commander';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { EXECUTION_PROVIDERS, ProviderPreference } from '../core/backend/onnxRuntime';
import { BeitModel, ClassifyResult, EmbedResult } from '../core/beitModel';
import { convertModel } from '../core/convert';
import { runDoctor } from '../core/doctor';
import { checkNpyPath, writeEmbeddingsNpy } from '../core/embeddingFile';
import { BeitLensError, errorMessage } from '../core/errors';
import { defaultCacheDir } from '../core/hub';
import { decodeImage, encodePng } from '../core/image';
import { ensureModel, OFFICIAL_MODEL_ID } from '../core/modelStore';
import { blendHeatmap, blendPatchClasses, normalizeMap, patchLegend, withLegendStrip } from '../core/overlay';
import { legendSpec, type LegendOverlay } from '../shared/legendStrip';
import { resizePil } from '../core/pilResize';
import { safeJson, terminalLines, terminalText } from '../core/safeOutput';
import { preprocessImage } from '../core/preprocess';
import { loadPreprocessorConfig } from '../core/preprocessorConfig';
import { writeRandomBeit } from '../core/randomModel';
import { HeadFusion, RolloutSource } from '../core/rollout';
import { DEFAULT_FAITHFULNESS_STEPS } from '../core/faithfulness';
import { classIndexFromArgument } from '../core/scan/labelCheck';
import { oneLineArgumentErrors } from './argumentErrors';
import { downloadProgressPrinter, resolveModelDir } from './modelResolution';
import { checkOutputFoldersFirst } from './outputFolder';
import { providerFallbackLine } from './providerNote';
import { addRemoteOptions, remoteSessions, type RemoteFlags } from './remoteOptions';
import { registerProbeCommands } from './probeCommands';
import { registerScanCommand } from './scanCommand';
import { registerSimilarityCommands } from './similarityCommands';
import { registerTritonCommand } from './tritonCommand';
import { positiveInt, ratio } from './argumentParsers';

/**
 * A thin layer over src/core: parse arguments, call one core function, print. Every user error is
 * a BeitLensError printed as one line with a non-zero exit.
 */


const providerOption = () => new Option('--provider <name>', 'execution provider').choices(['auto', ...EXECUTION_PROVIDERS]).default('auto');

/** With endpoint and remoteModel: the graphs run on KServe v2 servers; preprocessing, labels and config stay local. */
interface ModelFlags extends RemoteFlags {
  model?: string;
  provider: ProviderPreference;
  fast?: boolean;
  exif: boolean;
}

// Everything printed goes through these: names and labels come from other people's files, and a terminal would
// act on their escape sequences, or show a name with a newline in it as two lines.
function out(line: string): void {
  process.stdout.write(terminalText(line) + '\n');
}

function outJson(value: unknown): void {
  process.stdout.write(safeJson(value) + '\n');
}

function err(line: string): void {
  process.stderr.write(terminalText(line) + '\n');
}

async function loadModel(flags: ModelFlags): Promise<BeitModel> {
  const dir = await resolveModelDir(flags.model);
  const sessions = remoteSessions(flags);
  const model = await BeitModel.load(dir, { provider: flags.provider, preprocess: { fast: flags.fast, applyExifOrientation: flags.exif }, ...(sessions ? { sessions } : {}) });
  if (sessions) return model;
  const fallback = providerFallbackLine(flags.provider, model.provider, model.providerAttempts);
  if (fallback) err(fallback);
  return model;
}

function printResult(r: ClassifyResult, json: boolean): void {
  if (json) {
    // errorCode as in `scan`'s JSONL, so scripts can tell a broken model (NON_FINITE_OUTPUT) from a bad image.
    outJson(r.error !== undefined ? { image: r.image, error: r.error, ...(r.code ? { errorCode: r.code } : {}) } : { image: r.image, top: r.top });
    return;
  }
  if (r.error !== undefined) {
    err(`beit-lens: ${r.error}`);
    return;
  }
  out(r.image);
  for (const p of r.top ?? []) out(`  ${(p.score * 100).toFixed(2).padStart(6)}%  ${p.label}  (#${p.index})`);
}

function printEmbedding(r: EmbedResult, json: boolean): void {
  if (r.error !== undefined) {
    if (json) outJson({ image: r.image, error: r.error, ...(r.code ? { errorCode: r.code } : {}) });
    else err(`beit-lens: ${r.error}`);
    return;
  }
  const e = r.embedding!;
  if (json) {
    // Array.from: a Float32Array would serialise as an object. Each value is the float32's exact double, printed
    // so that it reads back to that double: the JSON and the .npy hold the same numbers.
    outJson({ image: r.image, embedding: Array.from(e) });
    return;
  }
  const preview = Array.from(e.subarray(0, 4), (v) => v.toFixed(4)).join(', ');
  out(`${r.image}  ${e.length} floats  [${preview}${e.length > 4 ? ', …' : ''}]`);
}

export function buildProgram(): Command {
  const program = new Command('beit-lens')
    .description('Classify and explain images with Microsoft BEiT (ImageNet-22k) locally')
    .version('0.1.0')
    .configureOutput({ outputError: (text, write) => write(terminalLines(text)) });

  program
    .command('convert')
    .description('convert a Hugging Face image-classifier folder (BEiT, DiT, data2vec-vision or ViT; safetensors or pytorch_model.bin) to ONNX')
    .requiredOption('--from <dir>', 'Hugging Face model folder')
    .requiredOption('--out <dir>', 'output folder')
    .addOption(new Option('--dtype <dtype>', 'precision: fp32, fp16 (computes in fp16: for GPUs) or int8 (dynamic quantisation: fastest on CPUs)').choices(['fp32', 'fp16', 'int8']).default('fp32'))
    .option('--plain', 'PyTorch-export-like graph: standard ops, logits only (benchmark peer)')
    .action(async (o: { from: string; out: string; dtype: 'fp32' | 'fp16' | 'int8'; plain?: boolean }) => {
      const result = await convertModel({ from: o.from, out: o.out, dtype: o.dtype, plain: o.plain, onLog: err });
      for (const w of result.warnings) err(`warning: ${w}`);
      out(`converted ${o.from} -> ${o.out} (${result.files.join(', ')})`);
    });

  program
    .command('make-random')
    .description('write a Hugging Face BEiT folder with random weights (base = real dimensions, 21,841 labels)')
    .addOption(new Option('--config <size>', 'model size').choices(['base', 'tiny']).default('base'))
    .requiredOption('--out <dir>', 'output folder')
    .option('--seed <n>', 'random seed', positiveInt('--seed'), 1234)
    .action(async (o: { config: 'base' | 'tiny'; out: string; seed: number }) => {
      await writeRandomBeit(o.out, o.config, o.seed);
      out(`wrote random ${o.config} BEiT to ${o.out}`);
    });

  program
    .command('preprocess')
    .description('write the float32 little-endian NCHW tensor classification would feed the model')
    .requiredOption('--model <dir>', 'model folder (its preprocessor_config.json is used)')
    .requiredOption('--out <file>', 'output .bin file')
    .option('--fast', "use sharp's resize instead of the exact PIL bilinear")
    .option('--no-exif', 'ignore EXIF orientation (as BeitImageProcessor alone does)')
    .argument('<image>')
    .action(async (image: string, o: { model: string; out: string; fast?: boolean; exif: boolean }) => {
      // Converted and Hugging Face folders carry the same preprocessor_config.json.
      const config = await loadPreprocessorConfig(path.join(o.model, 'preprocessor_config.json'));
      const { pixelValues, width, height } = await preprocessImage(image, config, { fast: o.fast, applyExifOrientation: o.exif });
      await writeFile(o.out, Buffer.from(pixelValues.buffer, pixelValues.byteOffset, pixelValues.byteLength));
      out(`wrote ${o.out}: float32 [1,3,${height},${width}]`);
    });

  addRemoteOptions(program.command('classify'))
    .description('top-K labels for each image')
    .option('--model <dir>', 'converted model folder (default: the official model, downloaded on first use)')
    .option('--top-k <k>', 'labels per image', positiveInt('--top-k'), 5)
    .option('--batch <n>', 'images per inference batch', positiveInt('--batch'), 8)
    .option('--json', 'one JSON line per image')
    .option('--fast', "use sharp's resize instead of the exact PIL bilinear")
    .option('--no-exif', 'ignore EXIF orientation')
    .addOption(providerOption())
    .argument('<images...>')
    .action(async (images: string[], o: ModelFlags & { topK: number; batch: number; json?: boolean }) => {
      const model = await loadModel(o);
      try {
        const results = await model.classifyFiles(images, { topK: o.topK, batchSize: o.batch, onResult: (r) => printResult(r, !!o.json) });
        if (results.some((r) => r.error !== undefined)) process.exitCode = 1;
      } finally {
        await model.dispose();
      }
    });

  addRemoteOptions(program.command('embed'))
    .description("each image's embedding: the pooled output the classifier reads (hidden-size floats)")
    .option('--model <dir>', 'converted model folder (default: the official model, downloaded on first use)')
    .option('--batch <n>', 'images per inference batch', positiveInt('--batch'), 8)
    .option('--json', 'one JSON line per image: {"image", "embedding"} or {"image", "error"}')
    .option('--out <file.npy>', 'also write a float32 [N, D] .npy, and the image of each row beside it (.paths.json); failed images are left out')
    .option('--fast', "use sharp's resize instead of the exact PIL bilinear")
    .option('--no-exif', 'ignore EXIF orientation')
    .addOption(providerOption())
    .argument('<images...>')
    .action(async (images: string[], o: ModelFlags & { batch: number; json?: boolean; out?: string }) => {
      // Refused before the model loads: a wrong --out would otherwise be found after every image was embedded.
      if (o.out !== undefined) checkNpyPath(o.out);
      const model = await loadModel(o);
      try {
        const results = await model.embedFiles(images, { batchSize: o.batch, onResult: (r) => printEmbedding(r, !!o.json) });
        const failed = results.filter((r) => r.error !== undefined).length;
        if (o.out !== undefined) {
          const rows = results.flatMap((r) => (r.embedding ? [{ image: r.image, embedding: r.embedding }] : []));
          const written = await writeEmbeddingsNpy(o.out, rows, model.embeddingSize);
          // On stderr with --json, so stdout stays one JSON object a line.
          (o.json ? err : out)(`wrote float32 [${written.shape.join(', ')}] to ${written.npy}, image paths to ${written.paths}${failed ? ` (${failed} failed, left out)` : ''}`);
        }
        if (failed) process.exitCode = 1;
      } finally {
        await model.dispose();
      }
    });

  addRemoteOptions(program.command('explain'))
    .description('attention rollout, patch predictions, class heatmaps, occlusion and faithfulness scores for one image')
    .option('--model <dir>', 'converted model folder (default: the official model)')
    .option('--json', 'print the explanation as JSON')
    .option('--out <png>', 'write the image with the overlay as PNG')
    .addOption(new Option('--overlay <kind>', 'overlay drawn by --out').choices(['relevance', 'occlusion', 'rollout', 'patches', 'class']).default('rollout'))
    .option('--class <class>', 'class index or label for the class heatmap, occlusion and faithfulness (default: top-1)')
    .addOption(new Option('--head-fusion <f>', 'how heads are fused in the rollout').choices(['mean', 'max', 'min']).default('mean'))
    .option('--discard-ratio <r>', 'fraction of lowest attention discarded per layer', ratio, 0.9)
    .addOption(new Option('--rollout-from <rows>', 'rollout rows the map reads (default: patches for mean-pooling models, else cls)').choices(['patches', 'cls']))
    .option('--occlusion-window <w>', 'side of the occluded block in patches (odd)', positiveInt('--occlusion-window'), 1)
    .option('--faithfulness', 'deletion, insertion and random-deletion AUCs of the rollout, class and occlusion maps')
    .option('--top-k <k>', 'labels to show', positiveInt('--top-k'), 5)
    .option('--opacity <o>', 'overlay opacity', ratio, 0.5)
    .option('--fast', "use sharp's resize instead of the exact PIL bilinear")
    .option('--no-exif', 'ignore EXIF orientation')
    .addOption(providerOption())
    .argument('<image>')
    .action(async (image: string, o: ModelFlags & { json?: boolean; out?: string; overlay: string; class?: string; headFusion: HeadFusion; discardRatio: number; rolloutFrom?: RolloutSource; occlusionWindow: number; faithfulness?: boolean; topK: number; opacity: number }) => {
      if (o.overlay === 'relevance') {
        throw new BeitLensError('CONFIG_INVALID', '--overlay relevance needs the gradient explanation graph (a backward pass written by the converter), which this version does not build; --overlay occlusion gives a class-specific map');
      }
      const model = await loadModel(o);
      try {
        const rollout = { headFusion: o.headFusion, discardRatio: o.discardRatio, from: o.rolloutFrom ?? model.rolloutSource };
        const e = await model.explain(image, { topK: o.topK, rollout });
        let classIndex = e.top[0].index;
        if (o.class !== undefined) {
          try {
            classIndex = classIndexFromArgument(o.class, model.labels);
          } catch (error) {
            throw new BeitLensError('CONFIG_INVALID', errorMessage(error));
          }
        }
        const classLabel = model.labels[classIndex] ?? `class ${classIndex}`;
        const grid = (values: ArrayLike<number>) => Array.from({ length: e.grid }, (_, r) => Array.from(values).slice(r * e.grid, (r + 1) * e.grid));
        const legend = patchLegend(e.patchArgmax, model.labels);
        const classLogits = model.classHeatmap(e, classIndex);
        const occlusion = o.overlay === 'occlusion' || o.faithfulness ? await model.occlusion(e, classIndex, { window: o.occlusionWindow }) : undefined;
        // The maps a user can pick between, scored on the same class so the AUCs compare.
        let faithfulness: Record<string, { deletionAuc: number; insertionAuc: number; randomDeletionAuc: number }> | undefined;
        if (o.faithfulness && occlusion) {
          faithfulness = {};
          for (const [name, map] of Object.entries({ rollout: e.rollout, class: classLogits, occlusion: occlusion.map })) {
            const { deletionAuc, insertionAuc, randomDeletionAuc } = await model.faithfulness(e, classIndex, map);
            faithfulness[name] = { deletionAuc, insertionAuc, randomDeletionAuc };
          }
        }
        if (o.out) {
          const src = await decodeImage(image, { applyExifOrientation: o.exif });
          const scale = Math.min(1, 512 / Math.max(src.width, src.height));
          const w = Math.max(1, Math.round(src.width * scale));
          const h = Math.max(1, Math.round(src.height * scale));
          const base = scale < 1 ? resizePil(src.data, src.width, src.height, 3, w, h, 2) : src.data;
          const colors = new Map(legend.map((l) => [l.index, l.color]));
          const heat = o.overlay === 'class' ? normalizeMap(classLogits) : o.overlay === 'occlusion' ? occlusion!.map : e.rollout;
          const rgb = o.overlay === 'patches' ? blendPatchClasses(base, w, h, e.patchArgmax, e.grid, (c) => colors.get(c) ?? [0, 0, 0], o.opacity) : blendHeatmap(base, w, h, heat, e.grid, o.opacity);
          // The same legend strip as the panel's export: overlay and parameters, scale or swatches, top-1.
          const shown: LegendOverlay =
            o.overlay === 'patches'
              ? { kind: 'patches', entries: legend }
              : o.overlay === 'class'
                ? { kind: 'class', label: classLabel }
                : o.overlay === 'occlusion'
                  ? { kind: 'occlusion', label: classLabel, window: o.occlusionWindow }
                  : { kind: 'rollout', headFusion: o.headFusion, discardRatio: o.discardRatio };
          const framed = withLegendStrip(rgb, w, h, legendSpec(shown, e.top[0], o.opacity));
          await writeFile(o.out, await encodePng(framed.rgb, w, framed.height, 3));
        }
        if (o.json) {
          outJson({
            image,
            top: e.top,
            rollout: { ...rollout, map: grid(e.rollout) },
            patches: { argmax: grid(e.patchArgmax), legend: legend.map(({ index, label, patches, share }) => ({ index, label, patches, share })) },
            classHeatmap: { index: classIndex, label: model.labels[classIndex], logits: grid(classLogits) },
            ...(occlusion ? { occlusion: { index: classIndex, label: model.labels[classIndex], window: occlusion.window, baseProbability: occlusion.baseProbability, map: grid(occlusion.map) } } : {}),
            ...(faithfulness ? { faithfulness: { index: classIndex, steps: DEFAULT_FAITHFULNESS_STEPS, ...faithfulness } } : {}),
            ...(o.out ? { overlay: o.out } : {}),
          });
        } else {
          out(image);
          for (const p of e.top) out(`  ${(p.score * 100).toFixed(2).padStart(6)}%  ${p.label}  (#${p.index})`);
          out('patch classes:');
          for (const l of legend.slice(0, 10)) out(`  ${(l.share * 100).toFixed(1).padStart(5)}%  ${l.label}`);
          if (faithfulness) {
            out(`faithfulness for ${classLabel} (#${classIndex}), ${DEFAULT_FAITHFULNESS_STEPS} steps: deletion AUC (lower is better) / insertion AUC (higher) / random-order deletion AUC`);
            for (const [name, f] of Object.entries(faithfulness)) out(`  ${name.padEnd(9)}  ${f.deletionAuc.toFixed(4)} / ${f.insertionAuc.toFixed(4)} / ${f.randomDeletionAuc.toFixed(4)}`);
          }
          if (o.out) out(`overlay written to ${o.out}`);
        }
      } finally {
        await model.dispose();
      }
    });

  program
    .command('download')
    .description('download the model from the Hugging Face hub (HF_ENDPOINT, HF_TOKEN honoured) and convert it')
    .option('--model-id <id>', 'hub model id', OFFICIAL_MODEL_ID)
    .option('--revision <rev>', 'branch, tag or commit', 'main')
    .option('--cache-dir <dir>', 'cache folder (default: $BEIT_LENS_CACHE or ~/.cache/beit-lens)')
    .addOption(new Option('--dtype <dtype>', 'precision: fp32, fp16 (computes in fp16: for GPUs) or int8 (dynamic quantisation: fastest on CPUs)').choices(['fp32', 'fp16', 'int8']).default('fp32'))
    .action(async (o: { modelId: string; revision: string; cacheDir?: string; dtype: 'fp32' | 'fp16' | 'int8' }) => {
      const controller = new AbortController();
      process.once('SIGINT', () => controller.abort());
      const dir = await ensureModel({
        cacheDir: o.cacheDir ?? defaultCacheDir(),
        modelId: o.modelId,
        revision: o.revision,
        dtype: o.dtype,
        signal: controller.signal,
        onProgress: downloadProgressPrinter(),
        onLog: err,
      });
      out(dir);
    });

  registerScanCommand(program);
  registerSimilarityCommands(program);
  registerProbeCommands(program);
  registerTritonCommand(program);

  program
    .command('doctor')
    .description('report execution providers tried, versions, model files and cache locations')
    .option('--model <dir>', 'model folder to check')
    .option('--json', 'print the report as JSON')
    .addOption(providerOption())
    .action(async (o: { model?: string; json?: boolean; provider: ProviderPreference }) => {
      const report = await runDoctor({ modelDir: o.model, cacheDir: defaultCacheDir(), provider: o.provider });
      process.stdout.write((o.json ? safeJson(report, 2) : terminalLines(report.text)) + '\n');
      if (!report.ok) process.exitCode = 1;
    });

  // Last, so they cover every command registered above.
  oneLineArgumentErrors(program);
  checkOutputFoldersFirst(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (error) {
    // terminalText, not terminalLines: a failure is one line whatever the message holds.
    process.stderr.write(`beit-lens: ${terminalText(errorMessage(error))}\n`);
    process.exitCode = error instanceof BeitLensError && error.code === 'CANCELLED' ? 130 : 1;
  }
}
