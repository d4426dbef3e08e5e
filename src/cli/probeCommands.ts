/**
 * `beit-lens train-head` and `beit-lens label-issues`: thin layers over src/core/probe. Both embed the labelled
 * dataset through the scan (cached embeddings are reused, never recomputed), then fit linear probes on the
 * embeddings. Results go to stdout (text, or JSON with --json); progress, warnings and summaries go to stderr.
 */
import type { Command } from 'commander';
import * as path from 'node:path';
import { BeitModel } from '../core/beitModel';
import { BeitLensError } from '../core/errors';
import { safeJson, terminalText } from '../core/safeOutput';
import { displayPath } from '../core/scan/fileNames';
import { ResultStore } from '../core/scan/resultStore';
import { exportHuggingFaceHead } from '../core/probe/huggingFaceExport';
import { findLabelIssues } from '../core/probe/labelIssues';
import { loadProbeData, type ProbeData } from '../core/probe/probeData';
import { DEFAULT_HOLDOUT, DEFAULT_SEED, trainHead, type Evaluation } from '../core/probe/trainHead';
import { datasetContentHash, writeTrainedModelFolder } from '../core/probe/trainedModelFolder';
import { resolveModelDir } from './modelResolution';
import { providerFallbackLine } from './providerNote';
import { nonNegativeInt, ratio, wholeNumber } from './argumentParsers';
import { embeddingScanOptions, progressReporter, type EmbeddingScanFlags } from './scanCommand';

interface DataFlags extends EmbeddingScanFlags {
  labels?: string;
  json?: boolean;
  seed: number;
}

const WARNINGS_SHOWN = 20;

function dataOptions(command: Command): Command {
  return embeddingScanOptions(command.argument('<dir>', 'dataset folder: one subfolder per class (ImageFolder layout)'))
    .option('--labels <file.csv>', 'path,label CSV (paths relative to the CSV) that overrides the folder layout')
    .option('--json', 'print JSON')
    .option('--seed <n>', 'seed of the splits and folds', nonNegativeInt('--seed'), DEFAULT_SEED);
}

export function registerProbeCommands(program: Command): void {
  dataOptions(
    program
      .command('train-head')
      .description('train a linear head (multinomial logistic regression, L2 by cross-validation) on the embeddings of a labelled folder, report holdout metrics and write a model folder that classifies into its classes')
      .requiredOption('--out <dir>', 'the trained model folder to write')
      .option('--holdout <f>', `share of each class held out for evaluation (default ${DEFAULT_HOLDOUT}; 0: none)`, ratio, DEFAULT_HOLDOUT)
      .option('--export-hf <dir>', 'also write a Hugging Face folder (config.json, preprocessor_config.json, model.safetensors) with the new classifier; needs --hf-base')
      .option('--hf-base <dir>', 'the Hugging Face folder the base model was converted from (its weights go into --export-hf)'),
  ).action(async (dir: string, flags: TrainFlags) => runTrainHead(dir, flags));

  dataOptions(
    program
      .command('label-issues')
      .description('rank the images of a labelled folder by how likely their label is wrong: K-fold out-of-fold probabilities of a linear head, lowest probability of the given label first')
      .option('--folds <k>', 'cross-validation folds (default 5)', wholeNumber('--folds', 2), 5),
  ).action(async (dir: string, flags: DataFlags & { folds: number }) => runLabelIssues(dir, flags));
}

async function withProbeData<T>(dir: string, flags: DataFlags, body: (data: ProbeData, model: BeitModel, signal: AbortSignal) => Promise<T>): Promise<T> {
  const preprocess = { fast: flags.fast, applyExifOrientation: flags.exif };
  const model = await BeitModel.load(await resolveModelDir(flags.model), { provider: flags.provider, preprocess });
  const fallback = providerFallbackLine(flags.provider, model.provider, model.providerAttempts);
  if (fallback) process.stderr.write(terminalText(fallback) + '\n');
  const controller = new AbortController();
  const onSigint = () => {
    process.stderr.write('\nstopping\n');
    controller.abort();
  };
  process.once('SIGINT', onSigint);
  const bar = progressReporter(process.stderr);
  let store: ResultStore | undefined;
  let warnings = 0;
  try {
    if (flags.cache !== false) store = await ResultStore.open(flags.cache, { onWarning: (m) => bar.note(`warning: ${terminalText(m)}`) });
    const data = await loadProbeData(dir, {
      model,
      store,
      labelsFile: flags.labels,
      batchSize: flags.batch,
      exclude: flags.exclude,
      gitignore: flags.gitignore,
      preprocess,
      pool: { workers: flags.workers },
      signal: controller.signal,
      onProgress: bar.update,
      onWarning: (w) => bar.note(`warning: ${terminalText(w.path)}: ${terminalText(w.message)}`),
      onDatasetWarning: (line) => {
        if (warnings++ < WARNINGS_SHOWN) bar.note(`warning: ${terminalText(line)}`);
      },
    });
    bar.done();
    if (warnings > WARNINGS_SHOWN) process.stderr.write(`... and ${warnings - WARNINGS_SHOWN} more warnings\n`);
    const { features, dataset } = data;
    process.stderr.write(
      `${features.x.rows} images in ${dataset.classes.length} classes embedded (${features.summary.cached} from the cache)${features.failed.length ? `, ${features.failed.length} skipped` : ''} in ${(features.summary.elapsedMs / 1000).toFixed(1)} s\n`,
    );
    return await body(data, model, controller.signal);
  } finally {
    process.off('SIGINT', onSigint);
    bar.done();
    await store?.close();
    await model.dispose();
  }
}

const percent = (v: number | null) => (v === null ? '   -  ' : `${(v * 100).toFixed(1).padStart(5)}%`);

function evaluationLines(evaluation: Evaluation, holdoutImages: number): string[] {
  const lines: string[] = [];
  if (evaluation.accuracy === null) {
    lines.push('no holdout (--holdout 0): no evaluation');
    return lines;
  }
  lines.push(`holdout accuracy ${(evaluation.accuracy * 100).toFixed(2)}% on ${holdoutImages} images`);
  const width = Math.min(32, Math.max(5, ...evaluation.classes.map((c) => terminalText(c.name).length)));
  lines.push(`  ${'class'.padEnd(width)}  precision  recall  support`);
  for (const c of evaluation.classes) lines.push(`  ${terminalText(c.name).padEnd(width)}  ${percent(c.precision).padStart(9)}  ${percent(c.recall).padStart(6)}  ${String(c.support).padStart(7)}`);
  lines.push('confusion matrix (rows: given class, columns: predicted, in class order above):');
  for (const [c, row] of evaluation.confusion.entries()) lines.push(`  ${terminalText(evaluation.classes[c].name).padEnd(width)}  ${row.map((n) => String(n).padStart(5)).join(' ')}`);
  return lines;
}

type TrainFlags = DataFlags & { out: string; holdout: number; exportHf?: string; hfBase?: string };

async function runTrainHead(dir: string, flags: TrainFlags): Promise<void> {
  if ((flags.exportHf === undefined) !== (flags.hfBase === undefined)) {
    throw new BeitLensError('CONFIG_INVALID', '--export-hf and --hf-base go together: a converted folder keeps no PyTorch-layout weights, so the export reads them from the Hugging Face folder the base model was converted from');
  }
  await withProbeData(dir, flags, async ({ dataset, features }, model, signal) => {
    const started = Date.now();
    const trained = trainHead(features.x, features.labels, dataset.classes, { holdout: flags.holdout, seed: flags.seed, signal });
    const trainSeconds = (Date.now() - started) / 1000;
    const folder = await writeTrainedModelFolder({
      base: model.directory,
      out: flags.out,
      classNames: dataset.classes,
      head: trained.model,
      provenance: {
        baseModelId: model.directory.modelId,
        datasetSha256: datasetContentHash(features.hashes, features.labels, dataset.classes),
        images: features.x.rows,
        holdoutAccuracy: trained.evaluation.accuracy,
        holdoutImages: trained.split.holdout.length,
        l2: trained.l2,
        seed: flags.seed,
        trainedAt: new Date().toISOString(),
      },
    });
    const exported = flags.exportHf
      ? await exportHuggingFaceHead({ hfBase: flags.hfBase!, out: flags.exportHf, classNames: dataset.classes, head: trained.model, baseParameters: model.directory.manifest?.parameters })
      : undefined;
    const { evaluation } = trained;
    if (flags.json) {
      process.stdout.write(
        safeJson({
          holdoutAccuracy: evaluation.accuracy,
          classes: evaluation.classes,
          confusion: evaluation.confusion,
          l2: trained.l2,
          trainImages: trained.split.train.length,
          holdoutImages: trained.split.holdout.length,
          skipped: features.failed,
          out: folder.dir,
          ...(exported ? { exportHf: exported.dir } : {}),
          modelId: folder.manifest.modelId,
        }) + '\n',
      );
    } else {
      process.stdout.write(evaluationLines(evaluation, trained.split.holdout.length).join('\n') + '\n');
    }
    const weights = folder.weights === 'linked' ? 'weights hard-linked to the base folder' : folder.weights === 'copied' ? 'weights copied (the file system cannot hard-link them)' : 'weights in the graphs';
    process.stderr.write(
      terminalText(`trained on ${trained.split.train.length} images (L2 ${trained.l2} by 3-fold cross-validation) in ${trainSeconds.toFixed(1)} s; wrote ${path.resolve(folder.dir)} (${weights}), model id ${folder.manifest.modelId}${exported ? `; Hugging Face folder ${path.resolve(exported.dir)}` : ''}`) + '\n',
    );
  });
}

async function runLabelIssues(dir: string, flags: DataFlags & { folds: number }): Promise<void> {
  await withProbeData(dir, flags, async ({ dataset, features }, _model, signal) => {
    const report = findLabelIssues(features.x, features.labels, dataset.classes.length, { folds: flags.folds, seed: flags.seed, signal });
    const names = dataset.classes;
    const lines = report.issues.map((issue) => {
      const image = features.images[issue.row];
      const entry = { image, givenLabel: names[issue.givenLabel], suggestedLabel: names[issue.suggestedLabel], selfConfidence: issue.selfConfidence, rank: issue.rank };
      if (flags.json) return safeJson(entry);
      return terminalText(`${String(issue.rank).padStart(5)}  ${issue.selfConfidence.toFixed(4)}  ${displayPath(image)}  given ${JSON.stringify(entry.givenLabel)}, suggested ${JSON.stringify(entry.suggestedLabel)}`);
    });
    if (lines.length) process.stdout.write(lines.join('\n') + '\n');
    const width = Math.min(32, Math.max(5, ...names.map((n) => terminalText(n).length)));
    const summary = [`${flags.folds}-fold out-of-fold probabilities (L2 ${report.l2}); estimated share of wrong labels per class:`];
    for (const c of report.classes) summary.push(`  ${terminalText(names[c.label]).padEnd(width)}  ${(c.estimatedWrongShare * 100).toFixed(1).padStart(5)}% of ${c.count}`);
    process.stderr.write(summary.join('\n') + '\n');
  });
}
